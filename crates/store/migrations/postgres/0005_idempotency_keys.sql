-- Idempotency keys, written in the same transaction as the events of the
-- append that carried them (see `idempotency.rs`), under the append lock.
-- One per (tenant, key); `created_at` is the commit time in Unix
-- milliseconds: a record older than the retention is ignored, and the
-- writer's sweep deletes it by this index.
CREATE TABLE IF NOT EXISTS idempotency_keys (
    tenant        TEXT    NOT NULL,
    key           TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    status        INTEGER NOT NULL,
    response      TEXT    NOT NULL,
    streams       TEXT    NOT NULL,
    last_position BIGINT  NOT NULL,
    created_at    BIGINT  NOT NULL,
    PRIMARY KEY (tenant, key)
);
CREATE INDEX IF NOT EXISTS idempotency_keys_created_at ON idempotency_keys (created_at);
