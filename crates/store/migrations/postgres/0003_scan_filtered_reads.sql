-- Filtered reads (tenant, store) scan the log by position in bounded windows
-- (see `read_all`), as on SQLite, instead of every append paying for two
-- more index entries per event. What remains: the position (primary key),
-- the unique event id, and the unique (stream, version).
DROP INDEX IF EXISTS events_tenant_position;
DROP INDEX IF EXISTS events_store_position;
