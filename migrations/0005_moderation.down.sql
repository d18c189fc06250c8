DROP TABLE pending_blob_deletes;
DROP TABLE media_invalidations;
DROP TABLE admin_audit;
DROP TABLE reserved_media;
DROP TABLE media_attributes;
DROP TABLE quarantined_hashes;
DROP INDEX media_quarantined;
DROP INDEX media_creation_ts;
ALTER TABLE media DROP COLUMN quarantined_by;
