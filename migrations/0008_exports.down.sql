DROP TABLE archive_import_parts;
DROP TABLE archive_imports;
DROP TABLE export_parts;
DROP TABLE exports;
