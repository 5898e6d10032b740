-- Notifications, made from the notices other services deliver (never written by
-- clients). Actors' usernames come with the notices (usernames are immutable), so this
-- service needs no copy of the accounts.

-- One per recipient and group: a cause's own key, or for reactions the post, so that
-- reactions on one post are one notification whose actors grow.
CREATE TABLE notifications (
    id           uuid PRIMARY KEY,           -- UUIDv7: the list's order, kept when it grows
    recipient    uuid NOT NULL,
    kind         text NOT NULL,
    group_key    text NOT NULL,
    subject_type text NOT NULL,
    subject_id   uuid NOT NULL,
    post_id      uuid,
    photo_id     uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    read_at      timestamptz,
    UNIQUE (recipient, group_key)
);
-- The list, newest first, and the unread ones (the count, `unread=true`).
CREATE INDEX notifications_list ON notifications (recipient, id DESC);
CREATE INDEX notifications_unread ON notifications (recipient, id DESC) WHERE read_at IS NULL;
-- What a deletion takes away.
CREATE INDEX notifications_subject ON notifications (subject_id);
CREATE INDEX notifications_post ON notifications (post_id) WHERE post_id IS NOT NULL;

-- The causes behind a notification (one per actor and detail: a reaction's emoji).
CREATE TABLE notification_causes (
    notification_id uuid NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    cause_key       text NOT NULL,
    actor_id        uuid NOT NULL,
    actor_username  text NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (notification_id, cause_key)
);
CREATE INDEX notification_causes_actor ON notification_causes (actor_id);

-- The latest notice seen per cause: deliveries come at least once and in any order,
-- so a notice older than the one recorded changes nothing (an undo that arrives before
-- its fact leaves nothing; a repeated delivery is recognised by its id).
CREATE TABLE causes (
    cause_key text PRIMARY KEY,
    notice_id uuid NOT NULL,
    active    boolean NOT NULL,
    at        timestamptz NOT NULL DEFAULT now()
);

-- Posts, comments, events and friend requests gone for good: a cause about one of
-- them that arrives later makes nothing.
CREATE TABLE tombstones (
    subject_id uuid PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE preferences (
    user_id     uuid PRIMARY KEY,
    muted_kinds text[] NOT NULL DEFAULT '{}'
);

-- What open streams were sent, for `Last-Event-ID` replays (kept a day). The sequence
-- is the stream's event id; a recipient's events are written under a per-recipient
-- lock, so their ids commit in order.
CREATE TABLE stream_events (
    seq        bigserial PRIMARY KEY,
    recipient  uuid NOT NULL,
    item       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX stream_events_recipient ON stream_events (recipient, seq);

-- Single-use stream tickets (only their SHA-256 is kept).
CREATE TABLE stream_tickets (
    hash       bytea PRIMARY KEY,
    user_id    uuid NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Open streams of every replica, so the per-user limit holds across replicas; a
-- replica refreshes `seen_at` of its own, and rows not refreshed are a dead replica's.
CREATE TABLE open_streams (
    id      uuid PRIMARY KEY,
    user_id uuid NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX open_streams_user ON open_streams (user_id);
