DROP TRIGGER posts_counted ON posts;
DROP FUNCTION profiles_count_posts();
DROP FUNCTION profiles_count_post(uuid, text, bigint);
ALTER TABLE profiles DROP COLUMN public_posts, DROP COLUMN friends_posts, DROP COLUMN private_posts;
