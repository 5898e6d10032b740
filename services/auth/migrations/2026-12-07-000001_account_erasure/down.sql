DROP TABLE exports;
DROP TABLE revocations;
DROP TABLE deletions;
DELETE FROM users WHERE deleted_at IS NOT NULL;
ALTER TABLE users
    DROP COLUMN deleted_at,
    DROP COLUMN token_version,
    ALTER COLUMN email SET NOT NULL,
    ALTER COLUMN password_hash SET NOT NULL;
