DROP TRIGGER photos_index_tags ON photos;
DROP FUNCTION photos_index_tags();
DROP TABLE tag_counts;
DROP TABLE photo_tags;
DROP TABLE photos;
DROP TABLE blobs;
