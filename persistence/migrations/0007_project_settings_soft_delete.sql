-- The project row mirrors the document's `project` map (title, fps, width, height: written by
-- the projection), and a deleted project is kept, hidden, rather than erased.
--
-- Deleting a project sets deleted_at and moves its member list into deleted_members (a JSON
-- array of {user_id, role}): with no members, every read under row-level security and every
-- websocket join stops seeing it, while its document, versions, jobs and the credit ledger
-- stay as they were. Restoring means moving the members back and clearing deleted_at.
ALTER TABLE video_projects
    ADD COLUMN fps              double precision,
    ADD COLUMN width            bigint,
    ADD COLUMN height           bigint,
    ADD COLUMN deleted_at       timestamptz,
    ADD COLUMN deleted_members  jsonb
        CHECK (deleted_members IS NULL OR jsonb_typeof(deleted_members) = 'array'),
    ADD CONSTRAINT deleted_members_iff_deleted
        CHECK ((deleted_at IS NULL) = (deleted_members IS NULL));
