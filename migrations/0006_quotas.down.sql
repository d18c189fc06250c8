DROP TRIGGER media_usage_delete ON media;
DROP TRIGGER media_usage_insert ON media;
DROP FUNCTION user_usage_remove();
DROP FUNCTION user_usage_add();
DROP TABLE user_usage;
