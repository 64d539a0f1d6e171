-- The event log. `position` is the rowid: gap-free, assigned by the single
-- writer under BEGIN IMMEDIATE, so commit order is position order.
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY CHECK (position > 0),
    id             TEXT    NOT NULL UNIQUE,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version > 0),
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    data           TEXT    NOT NULL,
    tenant         TEXT    NOT NULL,
    store_id       TEXT,
    entity_type    TEXT    NOT NULL,
    entity_id      TEXT    NOT NULL,
    actor          TEXT,
    session        TEXT,
    correlation_id TEXT,
    causation_id   TEXT,
    recorded_at    TEXT    NOT NULL,
    UNIQUE (stream, version)
);

CREATE INDEX IF NOT EXISTS events_tenant_position ON events (tenant, position);
CREATE INDEX IF NOT EXISTS events_store_position ON events (store_id, position);
