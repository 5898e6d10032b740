-- One profile per account (delivered by the auth service's outbox, or created from the
-- caller's token on first sight). Usernames are immutable.
CREATE TABLE profiles (
    id           uuid PRIMARY KEY,
    username     text        NOT NULL UNIQUE,
    display_name text,
    bio          text,
    avatar_url   text,
    location     text,
    website      text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- `?q=` username prefix search (LIKE 'ali%' needs the pattern operator class).
CREATE INDEX profiles_username_prefix_idx ON profiles (username text_pattern_ops);

CREATE TABLE posts (
    id         uuid PRIMARY KEY,
    author_id  uuid        NOT NULL REFERENCES profiles (id),
    text       text        NOT NULL,
    links      text[]      NOT NULL DEFAULT '{}',
    photo_ids  uuid[]      NOT NULL DEFAULT '{}',
    visibility text        NOT NULL CHECK (visibility IN ('public', 'friends', 'private')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
-- A user's posts and the feed (author = ANY(...)), newest first.
CREATE INDEX posts_author_idx ON posts (author_id, created_at DESC, id DESC);

CREATE TABLE comments (
    id         uuid PRIMARY KEY,
    post_id    uuid        NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    parent_id  uuid,
    author_id  uuid        NOT NULL REFERENCES profiles (id),
    text       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (post_id, id),
    -- A reply belongs to the same post as its parent, and goes with it.
    FOREIGN KEY (post_id, parent_id) REFERENCES comments (post_id, id) ON DELETE CASCADE
);
CREATE INDEX comments_post_idx ON comments (post_id, created_at, id);

CREATE TABLE reactions (
    post_id    uuid        NOT NULL REFERENCES posts (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES profiles (id),
    emoji      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (post_id, user_id, emoji)
);
-- Counts per emoji of a page of posts.
CREATE INDEX reactions_post_emoji_idx ON reactions (post_id, emoji);
