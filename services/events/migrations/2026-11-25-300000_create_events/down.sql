DROP TABLE rsvps;
DROP FUNCTION rsvps_count();
DROP TABLE events;
