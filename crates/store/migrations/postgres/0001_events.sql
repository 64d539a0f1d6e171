-- The event log. `position` is assigned as head + 1 while the appending
-- transaction holds a transaction-scoped advisory lock, which it keeps until
-- commit: positions are gap-free and become visible in increasing order, so
-- a reader tailing by position never skips a later-committing smaller one.
CREATE TABLE IF NOT EXISTS events (
    position       BIGINT      PRIMARY KEY CHECK (position > 0),
    id             UUID        NOT NULL UNIQUE,
    stream         TEXT        NOT NULL,
    version        BIGINT      NOT NULL CHECK (version > 0),
    event_type     TEXT        NOT NULL,
    schema_version INTEGER     NOT NULL,
    data           JSONB       NOT NULL,
    tenant         TEXT        NOT NULL,
    store_id       TEXT,
    entity_type    TEXT        NOT NULL,
    entity_id      TEXT        NOT NULL,
    actor          TEXT,
    session        TEXT,
    correlation_id UUID,
    causation_id   UUID,
    recorded_at    TIMESTAMPTZ NOT NULL,
    UNIQUE (stream, version)
);

CREATE INDEX IF NOT EXISTS events_tenant_position ON events (tenant, position);
CREATE INDEX IF NOT EXISTS events_store_position ON events (store_id, position);
