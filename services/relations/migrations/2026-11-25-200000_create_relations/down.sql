DROP TABLE blocks;
DROP TABLE matches;
DROP TABLE likes;
DROP TABLE friend_requests;
DROP TABLE friendships;
DROP TABLE follows;
DROP TABLE accounts;
