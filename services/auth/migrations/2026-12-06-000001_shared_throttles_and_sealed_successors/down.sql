DROP FUNCTION login_succeeded(bytea, text, integer);
DROP FUNCTION login_attempt(bytea, text, timestamptz, integer, bigint, bigint, integer);
DROP TABLE login_budgets;
DROP TABLE login_failures;
ALTER TABLE refresh_tokens DROP COLUMN successor_sealed;
