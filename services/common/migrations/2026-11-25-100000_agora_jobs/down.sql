DROP TABLE agora_jobs;
