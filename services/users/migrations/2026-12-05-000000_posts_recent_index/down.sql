DROP INDEX posts_recent_idx;
