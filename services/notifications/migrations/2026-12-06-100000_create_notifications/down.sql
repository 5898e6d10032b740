DROP TABLE open_streams;
DROP TABLE stream_tickets;
DROP TABLE stream_events;
DROP TABLE preferences;
DROP TABLE tombstones;
DROP TABLE causes;
DROP TABLE notification_causes;
DROP TABLE notifications;
