-- Accounts: usernames and emails are stored lowercase, so plain UNIQUE constraints
-- are case-insensitive in effect. Constraint names are matched by the service to
-- tell a taken username from a taken email.
CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    username            text        NOT NULL,
    email               text        NOT NULL,
    password_hash       text        NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_username_lowercase CHECK (username = lower(username)),
    CONSTRAINT users_email_lowercase CHECK (email = lower(email))
);

-- Refresh tokens: only a SHA-256 of the token is stored. Every login starts a
-- family; each refresh rotates within it. Re-using a rotated token revokes the family.
CREATE TABLE refresh_tokens (
    id          uuid PRIMARY KEY,
    family_id   uuid        NOT NULL,
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    rotated_at  timestamptz,
    revoked_at  timestamptz,
    CONSTRAINT refresh_tokens_hash_key UNIQUE (token_hash)
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_user_idx ON refresh_tokens (user_id) WHERE revoked_at IS NULL;
CREATE INDEX refresh_tokens_expiry_idx ON refresh_tokens (expires_at);
