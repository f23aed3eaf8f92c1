-- Credits: balances, the append-only ledger, and two-phase holds (billing/ledger.py has the rules).
-- The constraints below hold the invariants on their own, whatever the code above them does:
-- available can never go negative, a hold resolves once, the ledger is never rewritten.

CREATE TABLE user_credits (
    user_id     text PRIMARY KEY CHECK (length(user_id) BETWEEN 1 AND 200),
    balance     bigint NOT NULL DEFAULT 0,
    held        bigint NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT held_non_negative CHECK (held >= 0),
    -- available = balance - held; with held >= 0 this also keeps the balance non-negative.
    CONSTRAINT available_non_negative CHECK (balance >= held)
);

CREATE TABLE credit_holds (
    id           uuid PRIMARY KEY,
    user_id      text NOT NULL REFERENCES user_credits (user_id),
    amount       bigint NOT NULL CHECK (amount > 0),
    status       text NOT NULL CHECK (status IN ('pending', 'captured', 'released', 'expired')),
    captured     bigint NOT NULL DEFAULT 0 CHECK (captured >= 0),
    refunded     bigint NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    job_id       text CHECK (length(job_id) <= 200),
    created_at   timestamptz NOT NULL,
    -- Judged on the database clock: a hold is due once clock_timestamp() >= expires_at.
    expires_at   timestamptz NOT NULL,
    resolved_at  timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (id, user_id),
    CONSTRAINT expires_after_creation CHECK (expires_at > created_at),
    CONSTRAINT resolved_iff_not_pending CHECK ((status = 'pending') = (resolved_at IS NULL)),
    CONSTRAINT charge_only_when_captured CHECK (status = 'captured' OR (captured = 0 AND refunded = 0)),
    CONSTRAINT refund_within_charge CHECK (refunded <= captured)
);
CREATE INDEX credit_holds_user_idx ON credit_holds (user_id, created_at);
-- The sweeper's scan: pending holds by deadline.
CREATE INDEX credit_holds_due_idx ON credit_holds (expires_at) WHERE status = 'pending';

-- One row per movement; balance_delta and held_delta are what it did to the user's account.
-- Double entry: balance_delta is balanced by -balance_delta on contra_account (a system account),
-- so the users' balances plus the system accounts' always sum to zero (view credit_accounts).
CREATE TABLE credit_transactions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          text NOT NULL REFERENCES user_credits (user_id),
    kind             text NOT NULL CHECK (kind IN ('grant', 'purchase', 'hold', 'capture',
                                                   'release', 'expiry', 'refund', 'adjustment')),
    amount           bigint NOT NULL CHECK (amount >= 0),
    balance_delta    bigint NOT NULL,
    held_delta       bigint NOT NULL,
    balance_after    bigint NOT NULL,
    held_after       bigint NOT NULL,
    hold_id          uuid,
    job_id           text,
    idempotency_key  text NOT NULL CHECK (length(idempotency_key) BETWEEN 1 AND 200),
    -- Fingerprint of the request, to tell a retry from a different request with the same key.
    request_digest   text NOT NULL,
    reason           text NOT NULL DEFAULT '' CHECK (length(reason) <= 500),
    metadata         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(metadata) = 'object'),
    contra_account   text GENERATED ALWAYS AS (CASE kind
                         WHEN 'grant' THEN 'system:grants'
                         WHEN 'purchase' THEN 'system:sales'
                         WHEN 'adjustment' THEN 'system:adjustments'
                         ELSE 'system:usage' END) STORED,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key),
    FOREIGN KEY (hold_id, user_id) REFERENCES credit_holds (id, user_id),
    CONSTRAINT after_is_valid CHECK (held_after >= 0 AND balance_after >= held_after),
    CONSTRAINT amount_positive CHECK (amount > 0 OR kind = 'capture'),
    -- No transaction without its cause: hold movements name their hold, the rest a reason.
    CONSTRAINT has_cause CHECK (
        CASE WHEN kind IN ('grant', 'purchase', 'adjustment')
             THEN hold_id IS NULL AND reason <> ''
             ELSE hold_id IS NOT NULL END),
    CONSTRAINT shape_of_kind CHECK (CASE kind
        WHEN 'grant'      THEN balance_delta = amount AND held_delta = 0
        WHEN 'purchase'   THEN balance_delta = amount AND held_delta = 0
        WHEN 'refund'     THEN balance_delta = amount AND held_delta = 0
        WHEN 'adjustment' THEN abs(balance_delta) = amount AND held_delta = 0
        WHEN 'hold'       THEN balance_delta = 0 AND held_delta = amount
        WHEN 'capture'    THEN balance_delta = -amount AND held_delta < 0
        ELSE balance_delta = 0 AND held_delta = -amount END)
);
-- Newest-first pages of one user's ledger.
CREATE INDEX credit_transactions_user_idx ON credit_transactions (user_id, id);
-- A hold is placed once and resolved (captured, released or expired) at most once.
CREATE UNIQUE INDEX credit_transactions_hold_placed
    ON credit_transactions (hold_id) WHERE kind = 'hold';
CREATE UNIQUE INDEX credit_transactions_hold_resolved
    ON credit_transactions (hold_id) WHERE kind IN ('capture', 'release', 'expiry');

-- The ledger is append-only, and holds are never deleted.
CREATE OR REPLACE FUNCTION credit_refuse_rewrite() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON credit_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION credit_refuse_rewrite();

-- A hold leaves 'pending' once; after that only refunds (of a captured hold) may grow.
-- While pending, only its times may move (an operator extending or shortening a deadline).
CREATE OR REPLACE FUNCTION credit_holds_transition() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.id <> OLD.id OR NEW.user_id <> OLD.user_id OR NEW.amount <> OLD.amount
       OR NEW.job_id IS DISTINCT FROM OLD.job_id THEN
        RAISE EXCEPTION 'hold % cannot change its identity or amount', OLD.id
            USING ERRCODE = 'restrict_violation';
    END IF;
    IF OLD.status <> 'pending' AND (NEW.status <> OLD.status OR NEW.captured <> OLD.captured
       OR NEW.resolved_at IS DISTINCT FROM OLD.resolved_at OR NEW.expires_at <> OLD.expires_at
       OR NEW.created_at <> OLD.created_at OR NEW.refunded < OLD.refunded) THEN
        RAISE EXCEPTION 'hold % is already %', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER transition BEFORE UPDATE ON credit_holds
    FOR EACH ROW EXECUTE FUNCTION credit_holds_transition();
CREATE TRIGGER no_delete BEFORE DELETE OR TRUNCATE ON credit_holds
    FOR EACH STATEMENT EXECUTE FUNCTION credit_refuse_rewrite();

-- Every account of the double entry: each user's, and the system accounts they trade with.
CREATE VIEW credit_accounts AS
    SELECT 'user:' || user_id AS account, balance FROM user_credits
    UNION ALL
    SELECT contra_account, -sum(balance_delta)::bigint FROM credit_transactions
    GROUP BY contra_account;

-- Users read their own credits, holds and ledger (GET /api/credits...).
ALTER TABLE user_credits ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_holds ENABLE ROW LEVEL SECURITY;
ALTER TABLE credit_transactions ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_read ON user_credits FOR SELECT TO flowai_app_user
    USING (user_id = flowai_user_id());
CREATE POLICY own_read ON credit_holds FOR SELECT TO flowai_app_user
    USING (user_id = flowai_user_id());
CREATE POLICY own_read ON credit_transactions FOR SELECT TO flowai_app_user
    USING (user_id = flowai_user_id());

GRANT SELECT ON user_credits, credit_holds, credit_transactions TO flowai_app_user;
