-- AI and render jobs, voice clones, and the record of the job queue's own schema.

CREATE TABLE jobs (
    id                uuid PRIMARY KEY,
    kind              text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    user_id           text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    project_id        uuid REFERENCES video_projects (id) ON DELETE CASCADE,
    status            text NOT NULL
                      CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    stage             text CHECK (length(stage) <= 80),
    progress          double precision NOT NULL DEFAULT 0 CHECK (progress BETWEEN 0 AND 1),
    input             jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(input) = 'object'),
    result            jsonb,
    error             jsonb,
    -- Credits: the estimate held when the job was queued, and what was finally captured.
    estimate          bigint NOT NULL DEFAULT 0 CHECK (estimate >= 0),
    cost              bigint CHECK (cost >= 0),
    hold_id           uuid,
    usage             jsonb,
    attempts          integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    cancel_requested  boolean NOT NULL DEFAULT false,
    -- The queue's id for the job (procrastinate_jobs.id).
    queue_job_id      bigint,
    -- Results of completed steps, so a retried job does not pay a provider twice.
    checkpoint        jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(checkpoint) = 'object'),
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    CONSTRAINT finished_iff_final
        CHECK ((status IN ('succeeded', 'failed', 'cancelled')) = (finished_at IS NOT NULL)),
    CONSTRAINT cost_within_estimate CHECK (cost IS NULL OR cost <= estimate)
);
CREATE INDEX jobs_user_idx ON jobs (user_id, created_at DESC);
CREATE INDEX jobs_project_idx ON jobs (project_id, created_at DESC);
-- Recovery scans unfinished jobs only.
CREATE INDEX jobs_unfinished_idx ON jobs (updated_at) WHERE status IN ('queued', 'running');

-- A final job stays final.
CREATE OR REPLACE FUNCTION jobs_final_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.status IN ('succeeded', 'failed', 'cancelled') AND NEW.status <> OLD.status THEN
        RAISE EXCEPTION 'job % is already %', OLD.id, OLD.status
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER final_is_final BEFORE UPDATE ON jobs
    FOR EACH ROW EXECUTE FUNCTION jobs_final_is_final();

CREATE TABLE voice_clones (
    id                 uuid PRIMARY KEY,
    user_id            text NOT NULL CHECK (length(user_id) BETWEEN 1 AND 200),
    name               text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    description        text CHECK (length(description) <= 500),
    provider           text NOT NULL DEFAULT 'elevenlabs',
    provider_voice_id  text NOT NULL CHECK (length(provider_voice_id) BETWEEN 1 AND 200),
    sample_count       integer NOT NULL CHECK (sample_count > 0),
    job_id             uuid UNIQUE,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_voice_id)
);
CREATE INDEX voice_clones_user_idx ON voice_clones (user_id, created_at DESC);

-- Users read their own jobs, and the jobs of projects they are members of (collaborators
-- see the work that lands in their timeline); voice clones are private to their owner.
ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE voice_clones ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_or_member_read ON jobs FOR SELECT TO flowai_app_user
    USING (user_id = flowai_user_id()
           OR (project_id IS NOT NULL AND flowai_is_member(project_id)));
CREATE POLICY own_read ON voice_clones FOR SELECT TO flowai_app_user
    USING (user_id = flowai_user_id());

GRANT SELECT ON jobs, voice_clones TO flowai_app_user;

-- The job queue (procrastinate) installs and upgrades its own schema from the migrate step;
-- this row says which of its migrations the database has.
CREATE TABLE job_queue_schema (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    migration   text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
