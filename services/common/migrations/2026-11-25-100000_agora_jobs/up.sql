-- The kit's job queue (transactional outbox): a service enqueues a job in the same
-- transaction as the change it belongs to; the runner delivers it at least once.
CREATE TABLE agora_jobs (
    id           uuid PRIMARY KEY,
    kind         text        NOT NULL,
    payload      jsonb       NOT NULL,
    run_at       timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    locked_until timestamptz,
    locked_by    uuid,
    last_error   text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agora_jobs_due_idx ON agora_jobs (run_at);
