-- The accounts this service knows (delivered by the auth service's outbox, or seen
-- first in a valid token). Usernames are immutable, so they are kept here for lists.
CREATE TABLE accounts (
    id         uuid PRIMARY KEY,
    username   text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE follows (
    follower_id uuid        NOT NULL REFERENCES accounts (id),
    followee_id uuid        NOT NULL REFERENCES accounts (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (follower_id, followee_id),
    CHECK (follower_id <> followee_id)
);
-- Followers and following lists, newest first.
CREATE INDEX follows_followee_list_idx ON follows (followee_id, created_at DESC, follower_id DESC);
CREATE INDEX follows_follower_list_idx ON follows (follower_id, created_at DESC, followee_id DESC);

-- One row per direction, so "friends of X" is one index range; both rows are written
-- and removed in the same transaction.
CREATE TABLE friendships (
    user_id    uuid        NOT NULL REFERENCES accounts (id),
    friend_id  uuid        NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, friend_id),
    CHECK (user_id <> friend_id)
);
CREATE INDEX friendships_list_idx ON friendships (user_id, created_at DESC, friend_id DESC);

-- Pending requests only: accepting, declining or cancelling deletes the row.
CREATE TABLE friend_requests (
    id         uuid PRIMARY KEY,
    from_id    uuid        NOT NULL REFERENCES accounts (id),
    to_id      uuid        NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (from_id <> to_id)
);
-- At most one pending request per pair, whichever way it goes.
CREATE UNIQUE INDEX friend_requests_pair_key
    ON friend_requests (LEAST(from_id, to_id), GREATEST(from_id, to_id));
CREATE INDEX friend_requests_incoming_idx ON friend_requests (to_id, created_at DESC, id DESC);
CREATE INDEX friend_requests_outgoing_idx ON friend_requests (from_id, created_at DESC, id DESC);

CREATE TABLE likes (
    liker_id   uuid        NOT NULL REFERENCES accounts (id),
    likee_id   uuid        NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (liker_id, likee_id),
    CHECK (liker_id <> likee_id)
);

-- A match, one row per direction, written when the second like of a pair arrives.
CREATE TABLE matches (
    user_id    uuid        NOT NULL REFERENCES accounts (id),
    other_id   uuid        NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, other_id),
    CHECK (user_id <> other_id)
);
CREATE INDEX matches_list_idx ON matches (user_id, created_at DESC, other_id DESC);

CREATE TABLE blocks (
    blocker_id uuid        NOT NULL REFERENCES accounts (id),
    blocked_id uuid        NOT NULL REFERENCES accounts (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (blocker_id, blocked_id),
    CHECK (blocker_id <> blocked_id)
);
CREATE INDEX blocks_blocked_idx ON blocks (blocked_id, blocker_id);
CREATE INDEX blocks_list_idx ON blocks (blocker_id, created_at DESC, blocked_id DESC);
