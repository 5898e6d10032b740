DROP TRIGGER reactions_counted ON reactions;
DROP TRIGGER comments_counted ON comments;
DROP FUNCTION posts_count_reactions();
DROP FUNCTION posts_count_comments();
ALTER TABLE posts RESET (fillfactor);
ALTER TABLE posts DROP COLUMN reaction_counts, DROP COLUMN comment_count;
