-- Notifications: each user's inbox as a read model (history, unread count),
-- the user directory the notification rules address (who manages which
-- store).
CREATE TABLE IF NOT EXISTS rm_notifications (
    notification_id TEXT    PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    user_id         TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    priority        TEXT    NOT NULL,
    title           TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    subject_type    TEXT,
    subject_id      TEXT,
    store_id        TEXT,
    alert           TEXT,
    is_read         BIGINT NOT NULL,
    cleared         BIGINT NOT NULL,
    raised_at       TIMESTAMPTZ NOT NULL,
    position        BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS rm_notifications_user ON rm_notifications (tenant, user_id, position);
CREATE INDEX IF NOT EXISTS rm_notifications_alert ON rm_notifications (tenant, user_id, alert);

-- Who has signed in: recorded from each valid token (its claims), updated
-- when the claims change. stores is NULL for every store of the tenant,
-- else a JSON array of store ids.
CREATE TABLE IF NOT EXISTS user_directory (
    tenant    TEXT    NOT NULL,
    user_id   TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    role_rank BIGINT NOT NULL,
    stores    TEXT,
    last_seen TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant, user_id)
);
