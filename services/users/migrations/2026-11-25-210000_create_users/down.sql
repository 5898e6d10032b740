DROP TABLE reactions;
DROP TABLE comments;
DROP TABLE posts;
DROP TABLE profiles;
