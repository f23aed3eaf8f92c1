-- Users whose access tokens are refused before they expire (deleted or blocked accounts).
-- Supabase keeps a deleted user's tokens valid until `exp`; every instance reloads this
-- table periodically and closes the user's open connections.
CREATE TABLE revoked_users (
    user_id     text PRIMARY KEY,
    reason      text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
