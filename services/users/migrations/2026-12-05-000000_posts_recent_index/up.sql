-- The home feed reads the newest posts of a set of authors. With only the per-author
-- index, PostgreSQL must fetch every post of every followee and sort them: fine for ten
-- followees, seconds for thousands (measured in docs/benchmarks.md). Newest-first over all
-- posts lets it walk from the top and stop at the page size when the set is large (a
-- small set of rarely posting authors makes that walk long: see docs/benchmarks.md).
CREATE INDEX posts_recent_idx ON posts (created_at DESC, id DESC);
