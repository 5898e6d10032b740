-- The last time each recipient declined each sender's request: the same sender may
-- not ask the same person again for a while (a decline is not an invitation to ask
-- until they give in).
CREATE TABLE declined_requests (
    from_id     uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    to_id       uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    declined_at timestamptz NOT NULL,
    PRIMARY KEY (from_id, to_id)
);
