-- The W3C traceparent of the transaction that enqueued a job: its delivery joins
-- that trace. Only ids and flags, never anything a client sent.
ALTER TABLE agora_jobs ADD COLUMN trace_context text;
