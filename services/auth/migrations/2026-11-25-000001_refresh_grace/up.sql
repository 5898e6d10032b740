-- Each refresh token remembers the token it replaced, so that re-presenting a
-- just-rotated token within the grace period can be told apart from real reuse
-- (its successor still unused).
ALTER TABLE refresh_tokens ADD COLUMN parent_id uuid REFERENCES refresh_tokens (id) ON DELETE SET NULL;
CREATE INDEX refresh_tokens_parent_idx ON refresh_tokens (parent_id) WHERE parent_id IS NOT NULL;
-- Access tokens are verified offline by every service and live 15 minutes; a password
-- change revokes every refresh token. Nothing read this column.
ALTER TABLE users DROP COLUMN password_changed_at;
