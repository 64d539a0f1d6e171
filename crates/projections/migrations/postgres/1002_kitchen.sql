-- Orders and the kitchen: the order board, the kitchen's lines (tickets and
-- preparation times), the menu with its recipes (availability is read
-- against rm_inventory), and the order-to-stock process manager's refusals.
CREATE TABLE IF NOT EXISTS rm_orders (
    order_id   TEXT    PRIMARY KEY,
    tenant     TEXT    NOT NULL,
    store_id   TEXT    NOT NULL,
    service    TEXT    NOT NULL,
    table_label TEXT,
    covers     BIGINT  NOT NULL,
    rush       BIGINT  NOT NULL,
    status     TEXT    NOT NULL,
    opened_at  TIMESTAMPTZ NOT NULL,
    version    BIGINT  NOT NULL,
    position   BIGINT  NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_orders_store ON rm_orders (store_id, status, opened_at);

CREATE TABLE IF NOT EXISTS rm_kitchen_lines (
    order_id     TEXT    NOT NULL,
    line_id      TEXT    NOT NULL,
    tenant       TEXT    NOT NULL,
    store_id     TEXT    NOT NULL,
    station      TEXT    NOT NULL,
    menu_item_id TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    quantity     BIGINT  NOT NULL,
    modifiers    TEXT    NOT NULL,
    note         TEXT,
    course       BIGINT  NOT NULL,
    status       TEXT    NOT NULL,
    fired_seq    BIGINT  NOT NULL,
    fired_index  BIGINT  NOT NULL,
    fired_at     TIMESTAMPTZ NOT NULL,
    started_at   TIMESTAMPTZ,
    ready_at     TIMESTAMPTZ,
    prep_ms      BIGINT ,
    PRIMARY KEY (order_id, line_id)
);
CREATE INDEX IF NOT EXISTS rm_kitchen_lines_station ON rm_kitchen_lines (store_id, station, status, fired_seq, fired_index);

CREATE TABLE IF NOT EXISTS rm_menu_items (
    menu_item_id TEXT    PRIMARY KEY,
    tenant       TEXT    NOT NULL,
    store_id     TEXT    NOT NULL,
    name         TEXT    NOT NULL,
    station      TEXT    NOT NULL,
    price        BIGINT  NOT NULL,
    currency     TEXT    NOT NULL,
    active       BIGINT  NOT NULL,
    position     BIGINT  NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_menu_items_store ON rm_menu_items (store_id, name);

CREATE TABLE IF NOT EXISTS rm_menu_recipes (
    menu_item_id TEXT    NOT NULL,
    item_id      TEXT    NOT NULL,
    per_portion  BIGINT  NOT NULL,
    PRIMARY KEY (menu_item_id, item_id)
);

CREATE TABLE IF NOT EXISTS order_stock_refusals (
    tenant   TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    store_id TEXT    NOT NULL,
    order_id TEXT    NOT NULL,
    line_id  TEXT    NOT NULL,
    item_id  TEXT    NOT NULL,
    kind     TEXT    NOT NULL,
    quantity BIGINT  NOT NULL,
    code     TEXT    NOT NULL,
    reason   TEXT    NOT NULL,
    position BIGINT  NOT NULL,
    PRIMARY KEY (tenant, key)
);
