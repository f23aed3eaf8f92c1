-- Projects, members, the document log and its snapshots, versions, and the projection.

-- Reads made for a user run as this role, with flowai.user_id set for the transaction;
-- row-level security keys every policy on it.
DO $$
BEGIN
    CREATE ROLE flowai_app_user NOLOGIN;
EXCEPTION WHEN duplicate_object THEN NULL;
END $$;
DO $$
BEGIN
    EXECUTE format('GRANT flowai_app_user TO %I', current_user);
EXCEPTION WHEN others THEN NULL;  -- superusers may already switch to any role
END $$;

CREATE OR REPLACE FUNCTION flowai_user_id() RETURNS text
LANGUAGE sql STABLE AS $$ SELECT nullif(current_setting('flowai.user_id', true), '') $$;

CREATE TABLE video_projects (
    id          uuid PRIMARY KEY,
    owner_id    text NOT NULL,
    title       text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX video_projects_owner_idx ON video_projects (owner_id);

CREATE TABLE project_members (
    project_id  uuid NOT NULL REFERENCES video_projects (id) ON DELETE CASCADE,
    user_id     text NOT NULL,
    role        text NOT NULL CHECK (role IN ('owner', 'editor', 'viewer')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, user_id)
);
CREATE INDEX project_members_user_idx ON project_members (user_id);
-- Exactly one owner per project.
CREATE UNIQUE INDEX project_members_one_owner ON project_members (project_id) WHERE role = 'owner';

-- Membership test used by the policies. SECURITY DEFINER so that the policy on
-- project_members does not recurse into itself.
CREATE OR REPLACE FUNCTION flowai_is_member(p uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public AS $$
    SELECT EXISTS (
        SELECT 1 FROM project_members m WHERE m.project_id = p AND m.user_id = flowai_user_id()
    )
$$;

-- Append-only log of Yjs updates (format 'update:v1': a Yjs v1 update).
CREATE TABLE doc_updates (
    project_id  uuid NOT NULL REFERENCES video_projects (id) ON DELETE CASCADE,
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    format      text NOT NULL DEFAULT 'update:v1',
    payload     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, seq)
);

-- The compacted state of each document (format 'state:v1': a Yjs v1 update of everything).
CREATE TABLE doc_states (
    project_id    uuid PRIMARY KEY REFERENCES video_projects (id) ON DELETE CASCADE,
    format        text NOT NULL DEFAULT 'state:v1',
    payload       bytea NOT NULL,
    state_vector  bytea NOT NULL,
    merged_count  bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE doc_versions (
    project_id  uuid NOT NULL REFERENCES video_projects (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version > 0),
    kind        text NOT NULL CHECK (kind IN ('auto', 'labelled', 'restore_point', 'restore')),
    label       text CHECK (length(label) <= 200),
    format      text NOT NULL DEFAULT 'state:v1',
    payload     bytea NOT NULL,
    created_by  text,
    restored_from integer,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, version)
);

-- Projection of the document for SQL readers; refreshed after edits settle.
CREATE TABLE video_tracks (
    project_id  uuid NOT NULL REFERENCES video_projects (id) ON DELETE CASCADE,
    track_id    text NOT NULL,
    kind        text NOT NULL,
    name        text NOT NULL,
    order_key   text NOT NULL,
    muted       boolean NOT NULL DEFAULT false,
    locked      boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, track_id)
);

CREATE TABLE video_clips (
    project_id    uuid NOT NULL REFERENCES video_projects (id) ON DELETE CASCADE,
    clip_id       text NOT NULL,
    track_id      text NOT NULL,
    kind          text NOT NULL,
    asset_id      text,
    start_ms      bigint NOT NULL,
    duration_ms   bigint NOT NULL,
    source_in_ms  bigint NOT NULL DEFAULT 0,
    volume        double precision NOT NULL DEFAULT 1,
    text          text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, clip_id)
);
CREATE INDEX video_clips_track_idx ON video_clips (project_id, track_id, start_ms);

-- Row-level security for user-facing reads.
ALTER TABLE video_projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE project_members ENABLE ROW LEVEL SECURITY;
ALTER TABLE doc_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE video_tracks ENABLE ROW LEVEL SECURITY;
ALTER TABLE video_clips ENABLE ROW LEVEL SECURITY;

CREATE POLICY member_read ON video_projects FOR SELECT TO flowai_app_user
    USING (flowai_is_member(id));
CREATE POLICY member_read ON project_members FOR SELECT TO flowai_app_user
    USING (flowai_is_member(project_id));
CREATE POLICY member_read ON doc_versions FOR SELECT TO flowai_app_user
    USING (flowai_is_member(project_id));
CREATE POLICY member_read ON video_tracks FOR SELECT TO flowai_app_user
    USING (flowai_is_member(project_id));
CREATE POLICY member_read ON video_clips FOR SELECT TO flowai_app_user
    USING (flowai_is_member(project_id));

GRANT SELECT ON video_projects, project_members, doc_versions, video_tracks, video_clips
    TO flowai_app_user;
GRANT EXECUTE ON FUNCTION flowai_user_id(), flowai_is_member(uuid) TO flowai_app_user;
