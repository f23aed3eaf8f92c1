-- /metrics reads the last hour of job outcomes and captures every few seconds: index those
-- windows so that the sampling never scans the whole history.
CREATE INDEX jobs_finished_recent_idx ON jobs (updated_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
CREATE INDEX credit_captures_recent_idx ON credit_transactions (created_at)
    WHERE kind = 'capture';
