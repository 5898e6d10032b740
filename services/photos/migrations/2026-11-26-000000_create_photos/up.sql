-- Stored bytes, content-addressed by the SHA-256 of the re-encoded image. `refs` counts
-- the photos using a blob; the bytes go once it is 0 (under the blob's advisory lock, so
-- a concurrent upload of the same bytes either sees them gone or keeps them).
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL CHECK (size_bytes > 0),
    width INTEGER NOT NULL CHECK (width > 0),
    height INTEGER NOT NULL CHECK (height > 0),
    thumbnail_bytes BIGINT NOT NULL CHECK (thumbnail_bytes > 0),
    refs INTEGER NOT NULL CHECK (refs >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- The sweep of unreferenced blobs.
CREATE INDEX blobs_unreferenced ON blobs (sha256) WHERE refs = 0;

-- Ids are UUIDv7: their order is upload order, so "newest first" is `id DESC`.
CREATE TABLE photos (
    id UUID PRIMARY KEY,
    owner_id UUID NOT NULL,
    sha256 TEXT NOT NULL REFERENCES blobs (sha256),
    visibility TEXT NOT NULL CHECK (visibility IN ('public', 'private')),
    tags TEXT[] NOT NULL DEFAULT '{}',
    caption TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- `?owner=me`, newest first.
CREATE INDEX photos_owner ON photos (owner_id, id DESC);
-- Public photos without a tag filter, newest first.
CREATE INDEX photos_public ON photos (id DESC) WHERE visibility = 'public';

-- The tag search index: one row per (tag, public photo). A search walks the rarest of
-- its tags in `photo_id DESC` order and checks the others by primary key, so a page
-- costs about `limit` index probes per tag instead of sorting every match (a GIN index
-- on `tags` would find all matches, then sort them: slow for a tag on 100k photos).
CREATE TABLE photo_tags (
    tag TEXT NOT NULL,
    photo_id UUID NOT NULL REFERENCES photos (id) ON DELETE CASCADE,
    PRIMARY KEY (tag, photo_id)
);
CREATE INDEX photo_tags_photo ON photo_tags (photo_id);

-- Public photos per tag: picks the rarest tag of a search, and answers `/photos/tags`.
CREATE TABLE tag_counts (
    tag TEXT PRIMARY KEY,
    public_photos BIGINT NOT NULL CHECK (public_photos >= 0)
);
CREATE INDEX tag_counts_prefix ON tag_counts (tag text_pattern_ops) WHERE public_photos > 0;

-- Keeps photo_tags and tag_counts in step with every write to photos, in its transaction.
CREATE FUNCTION photos_index_tags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.visibility = 'public' THEN
        DELETE FROM photo_tags WHERE photo_id = OLD.id;
        UPDATE tag_counts SET public_photos = public_photos - 1 WHERE tag = ANY (OLD.tags);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.visibility = 'public' THEN
        INSERT INTO photo_tags (tag, photo_id)
            SELECT DISTINCT t, NEW.id FROM unnest(NEW.tags) AS t;
        INSERT INTO tag_counts (tag, public_photos)
            SELECT DISTINCT t, 1 FROM unnest(NEW.tags) AS t
            ON CONFLICT (tag) DO UPDATE SET public_photos = tag_counts.public_photos + 1;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER photos_index_tags
    AFTER INSERT OR DELETE OR UPDATE OF visibility, tags ON photos
    FOR EACH ROW EXECUTE FUNCTION photos_index_tags();
