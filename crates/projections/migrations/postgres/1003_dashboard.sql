-- The dashboard's own facts: each order's open, completion (with its total)
-- and cancellation times, and every stock alert. Times are unix
-- milliseconds, so a day's range and its 5-minute buckets are integer
-- arithmetic on both backends. Open orders, preparation times, top items
-- and stock counts are read from the kitchen and stores read models.
CREATE TABLE IF NOT EXISTS rm_dashboard_orders (
    order_id     TEXT    PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    store_id     TEXT    NOT NULL,
    currency     TEXT    NOT NULL,
    opened_ms    BIGINT NOT NULL,
    completed_ms BIGINT,
    cancelled_ms BIGINT,
    total_minor  BIGINT
);
CREATE INDEX IF NOT EXISTS rm_dashboard_orders_opened ON rm_dashboard_orders (tenant, store_id, opened_ms);
CREATE INDEX IF NOT EXISTS rm_dashboard_orders_completed ON rm_dashboard_orders (tenant, store_id, completed_ms);

CREATE TABLE IF NOT EXISTS rm_dashboard_alerts (
    position BIGINT PRIMARY KEY,
    tenant   TEXT    NOT NULL,
    store_id TEXT    NOT NULL,
    item_id  TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    at_ms    BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_dashboard_alerts_at ON rm_dashboard_alerts (tenant, store_id, at_ms);
