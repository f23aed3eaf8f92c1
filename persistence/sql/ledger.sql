-- Queries of the credit ledger (persistence/ledger_pg.py). Each operation runs as one
-- transaction: lock_account (or open_account), load_context, then apply if there is a write.

-- name: lock_account :one
-- The account's row lock serialises every operation of one user.
SELECT balance, held FROM user_credits WHERE user_id = $1 FOR UPDATE;

-- name: open_account :one
-- lock_account for requests that add credits: creates the account if needed, then locks it.
INSERT INTO user_credits AS a (user_id) VALUES ($1)
ON CONFLICT (user_id) DO UPDATE SET updated_at = a.updated_at
RETURNING balance, held;

-- name: load_context :one
-- Read after the lock, so it sees the last committed operation: the clock (the database's,
-- at this moment), the transaction already recorded under the key, and the hold in question.
SELECT clock_timestamp() AS now,
       r.id AS r_id, r.kind AS r_kind, r.amount AS r_amount,
       r.balance_delta AS r_balance_delta, r.held_delta AS r_held_delta,
       r.balance_after AS r_balance_after, r.held_after AS r_held_after,
       r.hold_id AS r_hold_id, r.job_id AS r_job_id, r.idempotency_key AS r_idempotency_key,
       r.request_digest AS r_request_digest, r.reason AS r_reason,
       r.metadata AS r_metadata, r.created_at AS r_created_at,
       h.id AS h_id, h.amount AS h_amount, h.status AS h_status, h.captured AS h_captured,
       h.refunded AS h_refunded, h.job_id AS h_job_id, h.created_at AS h_created_at,
       h.expires_at AS h_expires_at, h.resolved_at AS h_resolved_at
FROM (SELECT $1::text AS user_id) k
LEFT JOIN credit_transactions r ON r.user_id = k.user_id AND r.idempotency_key = $2
LEFT JOIN credit_holds h ON h.user_id = k.user_id AND h.id = coalesce($3::uuid, r.hold_id);

-- name: apply :one
-- Write one decision: the account's new totals, the new or changed hold (when $5 is set),
-- and the ledger entry. $2 and $3 are the totals after the entry.
WITH account AS (
    UPDATE user_credits SET balance = $2, held = $3, updated_at = $4
    WHERE user_id = $1
    RETURNING user_id
), hold AS (
    INSERT INTO credit_holds AS h
        (id, user_id, amount, status, captured, refunded, job_id, created_at, expires_at,
         resolved_at)
    SELECT $5::uuid, $1, $6::bigint, $7::text, $8::bigint, $9::bigint, $10::text,
           $11::timestamptz, $12::timestamptz, $13::timestamptz
    WHERE $5::uuid IS NOT NULL
    ON CONFLICT (id) DO UPDATE SET
        status = excluded.status, captured = excluded.captured, refunded = excluded.refunded,
        resolved_at = excluded.resolved_at, updated_at = $4
    RETURNING id
)
INSERT INTO credit_transactions
    (user_id, kind, amount, balance_delta, held_delta, balance_after, held_after, hold_id,
     job_id, idempotency_key, request_digest, reason, metadata, created_at)
SELECT account.user_id, $14::text, $15::bigint, $16::bigint, $17::bigint, $2, $3, $5::uuid,
       $10::text, $18::text, $19::text, $20::text, $21::jsonb, $4
FROM account
RETURNING id;

-- name: account :one
SELECT balance, held FROM user_credits WHERE user_id = $1;

-- name: transactions :many
-- Newest first; pages continue below the last id seen (keyset pagination).
SELECT id, user_id, kind, amount, balance_delta, held_delta, balance_after, held_after,
       hold_id, job_id, idempotency_key, request_digest, reason, metadata, created_at
FROM credit_transactions
WHERE user_id = $1 AND ($2::bigint IS NULL OR id < $2)
ORDER BY id DESC
LIMIT $3;

-- name: hold :one
SELECT id, user_id, amount, status, captured, refunded, job_id, created_at, expires_at,
       resolved_at
FROM credit_holds
WHERE user_id = $1 AND id = $2;

-- name: due_holds :many
SELECT user_id, id FROM credit_holds
WHERE status = 'pending' AND expires_at <= clock_timestamp()
ORDER BY expires_at
LIMIT $1;

-- name: audit_users :many
-- Holds and transactions reference their account, so the accounts list every user.
SELECT user_id, balance, held FROM user_credits
WHERE user_id > $1
ORDER BY user_id
LIMIT $2;

-- name: audit_holds :many
SELECT id, user_id, amount, status, captured, refunded, job_id, created_at, expires_at,
       resolved_at
FROM credit_holds
WHERE user_id = ANY($1::text[]);

-- name: audit_transactions :many
SELECT id, user_id, kind, amount, balance_delta, held_delta, balance_after, held_after,
       hold_id, job_id, idempotency_key, request_digest, reason, metadata, created_at
FROM credit_transactions
WHERE user_id = ANY($1::text[])
ORDER BY user_id, id;
