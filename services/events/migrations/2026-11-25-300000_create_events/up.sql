-- Events and RSVPs. The organizer's and attendees' usernames come from their tokens
-- (usernames are immutable), so this service needs no copy of the accounts.

CREATE TABLE events (
    id                 uuid PRIMARY KEY,
    organizer_id       uuid NOT NULL,
    organizer_username text NOT NULL,
    title              text NOT NULL CHECK (char_length(title) BETWEEN 1 AND 200),
    description        text CHECK (char_length(description) <= 5000),
    starts_at          timestamptz NOT NULL,
    ends_at            timestamptz CHECK (ends_at > starts_at),
    location           text CHECK (char_length(location) <= 200),
    visibility         text NOT NULL CHECK (visibility IN ('public', 'friends')),
    -- RSVP counts, kept by the trigger below so a page of events reads them for free.
    going              integer NOT NULL DEFAULT 0,
    interested         integer NOT NULL DEFAULT 0,
    not_going          integer NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The time-window listing walks this index in order: (starts_at, id) is the keyset.
CREATE INDEX events_starts_at ON events (starts_at, id);
-- One organizer's events (?organizer=).
CREATE INDEX events_organizer ON events (organizer_id, starts_at, id);

CREATE TABLE rsvps (
    event_id   uuid NOT NULL REFERENCES events (id) ON DELETE CASCADE,
    user_id    uuid NOT NULL,
    username   text NOT NULL,
    status     text NOT NULL CHECK (status IN ('going', 'interested', 'not_going')),
    -- First answer: the attendee list's order, stable when the answer changes.
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (event_id, user_id)
);

-- Attendee lists, all answers or one status, in answer order.
CREATE INDEX rsvps_by_time ON rsvps (event_id, created_at, user_id);
CREATE INDEX rsvps_by_status ON rsvps (event_id, status, created_at, user_id);

CREATE FUNCTION rsvps_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE events SET
            going = going - (OLD.status = 'going')::int,
            interested = interested - (OLD.status = 'interested')::int,
            not_going = not_going - (OLD.status = 'not_going')::int
        WHERE id = OLD.event_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE events SET
            going = going + (NEW.status = 'going')::int,
            interested = interested + (NEW.status = 'interested')::int,
            not_going = not_going + (NEW.status = 'not_going')::int
        WHERE id = NEW.event_id;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER rsvps_count AFTER INSERT OR DELETE OR UPDATE OF status ON rsvps
    FOR EACH ROW EXECUTE FUNCTION rsvps_count();
