ALTER TABLE users ADD COLUMN password_changed_at timestamptz NOT NULL DEFAULT now();
DROP INDEX refresh_tokens_parent_idx;
ALTER TABLE refresh_tokens DROP COLUMN parent_id;
