DROP TABLE url_previews;
