-- A profile's post count depends on who looks: the public posts, plus friends-only
-- posts for the author's friends, plus private ones for the author (and 0 for someone
-- blocked either way), so that it always matches what that viewer can list. One
-- counter per visibility, kept by a trigger in the statement that changes a post,
-- keeps a profile one row read.
-- Posts are locked against writes until the trigger exists: a post changed by a replica
-- of the previous version between the backfill and the trigger would be miscounted.
LOCK TABLE posts IN SHARE ROW EXCLUSIVE MODE;

ALTER TABLE profiles
    ADD COLUMN public_posts  bigint NOT NULL DEFAULT 0 CHECK (public_posts >= 0),
    ADD COLUMN friends_posts bigint NOT NULL DEFAULT 0 CHECK (friends_posts >= 0),
    ADD COLUMN private_posts bigint NOT NULL DEFAULT 0 CHECK (private_posts >= 0);

UPDATE profiles p SET public_posts = c.public, friends_posts = c.friends, private_posts = c.private
FROM (SELECT author_id,
             count(*) FILTER (WHERE visibility = 'public')  AS public,
             count(*) FILTER (WHERE visibility = 'friends') AS friends,
             count(*) FILTER (WHERE visibility = 'private') AS private
      FROM posts GROUP BY author_id) c
WHERE c.author_id = p.id;

CREATE FUNCTION profiles_count_post(author uuid, visibility text, delta bigint)
RETURNS void LANGUAGE sql AS $$
    UPDATE profiles SET
        public_posts  = public_posts  + CASE WHEN visibility = 'public'  THEN delta ELSE 0 END,
        friends_posts = friends_posts + CASE WHEN visibility = 'friends' THEN delta ELSE 0 END,
        private_posts = private_posts + CASE WHEN visibility = 'private' THEN delta ELSE 0 END
    WHERE id = author;
$$;

CREATE FUNCTION profiles_count_posts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        PERFORM profiles_count_post(OLD.author_id, OLD.visibility, -1);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        PERFORM profiles_count_post(NEW.author_id, NEW.visibility, 1);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER posts_counted AFTER INSERT OR DELETE OR UPDATE OF author_id, visibility ON posts
    FOR EACH ROW EXECUTE FUNCTION profiles_count_posts();
