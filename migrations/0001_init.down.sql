DROP TABLE media_reservations;
DROP TABLE media;
