-- Read models of larder-projections. Versions from 1001: the event store's
-- migrations in the same database use the low numbers.
CREATE TABLE IF NOT EXISTS projection_checkpoints (
    name     TEXT    PRIMARY KEY,
    position BIGINT  NOT NULL
);

CREATE TABLE IF NOT EXISTS rm_stores (
    store_id           TEXT    PRIMARY KEY,
    tenant             TEXT    NOT NULL,
    name               TEXT    NOT NULL,
    status             TEXT    NOT NULL,
    item_count         BIGINT  NOT NULL DEFAULT 0,
    low_stock_count    BIGINT  NOT NULL DEFAULT 0,
    out_of_stock_count BIGINT  NOT NULL DEFAULT 0,
    version            BIGINT  NOT NULL,
    position           BIGINT  NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_stores_tenant ON rm_stores (tenant, name);

-- The stores projection's own view of each item's stock status, so it can
-- count without depending on the inventory projection's progress.
CREATE TABLE IF NOT EXISTS rm_store_items (
    item_id   TEXT    PRIMARY KEY,
    store_id  TEXT    NOT NULL,
    quantity  BIGINT  NOT NULL,
    threshold BIGINT  NOT NULL,
    status    TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_store_items_store ON rm_store_items (store_id, status);

CREATE TABLE IF NOT EXISTS rm_inventory (
    item_id    TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    sku        TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    unit       TEXT    NOT NULL,
    quantity   BIGINT  NOT NULL,
    threshold  BIGINT  NOT NULL,
    status     TEXT    NOT NULL,
    version    BIGINT  NOT NULL,
    position   BIGINT  NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_inventory_store ON rm_inventory (store_id, sku);

CREATE TABLE IF NOT EXISTS rm_activity (
    position    BIGINT PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    store_id    TEXT    NOT NULL,
    stream      TEXT    NOT NULL,
    version     BIGINT  NOT NULL,
    event_type  TEXT    NOT NULL,
    entity_type TEXT    NOT NULL,
    entity_id   TEXT    NOT NULL,
    actor       TEXT,
    data        TEXT    NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_activity_store ON rm_activity (store_id, position);
