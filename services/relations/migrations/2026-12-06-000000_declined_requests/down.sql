DROP TABLE declined_requests;
