-- Leaving Agora: an account being erased keeps its row (without email or password)
-- while the other services erase their part, and afterwards for the username's
-- quarantine; `deleted_at` says it is no longer active.
ALTER TABLE users
    ADD COLUMN deleted_at    timestamptz,
    ADD COLUMN token_version bigint NOT NULL DEFAULT 0,
    ALTER COLUMN email DROP NOT NULL,
    ALTER COLUMN password_hash DROP NOT NULL;

-- One per erasure: the services still to acknowledge it. The id is the unguessable
-- handle the person gets; no personal data stays here once the account row goes.
CREATE TABLE deletions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    erased_at    timestamptz,
    pending      text[] NOT NULL
);
CREATE INDEX deletions_user ON deletions (user_id);

-- Access tokens refused before they expire (see the kit's `revocations`): every
-- process that verifies tokens reads the live ones every second.
CREATE TABLE revocations (
    seq           bigserial PRIMARY KEY,
    user_id       uuid NOT NULL,
    below_version bigint NOT NULL,
    until         timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX revocations_recorded ON revocations (recorded_at);

-- Data exports: the archive itself lives with the photos service's bytes
-- (`exports/<user>/<id>.zip`); this row says where it stands. One pending or running
-- export per account.
CREATE TABLE exports (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    status       text NOT NULL CHECK (status IN ('pending', 'running', 'ready', 'failed', 'expired')),
    requested_at timestamptz NOT NULL DEFAULT now(),
    ready_at     timestamptz,
    expires_at   timestamptz,
    size_bytes   bigint
);
CREATE INDEX exports_user ON exports (user_id, requested_at DESC);
CREATE UNIQUE INDEX exports_one_at_a_time ON exports (user_id)
    WHERE status IN ('pending', 'running');
