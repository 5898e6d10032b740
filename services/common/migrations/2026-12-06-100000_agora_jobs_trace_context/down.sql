ALTER TABLE agora_jobs DROP COLUMN trace_context;
