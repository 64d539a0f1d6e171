//! How a [`crate::SqlEventStore`] is opened ([`StoreOptions`]), and the
//! [`Database`] it runs on, for read models kept beside it.

use std::sync::Arc;
use std::time::Duration;

use larder_bus::EventBus;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;

use crate::{RecordedEvent, StoreError};

/// A database a [`SqlEventStore`](crate::SqlEventStore) runs on, for read models that want to live
/// in the same database (and commit their checkpoint with their changes).
#[derive(Debug, Clone)]
pub enum Database {
    /// An embedded SQLite file. Write transactions must start with
    /// `BEGIN IMMEDIATE` (see [`Database::SQLITE_BEGIN_WRITE`]).
    Sqlite(SqlitePool),
    /// A PostgreSQL database (connections use the store's schema).
    Postgres(PgPool),
}

impl Database {
    /// How to begin a SQLite write transaction: taking the write lock up
    /// front means a busy database makes the caller wait (busy timeout)
    /// instead of failing when a read transaction upgrades to a write.
    pub const SQLITE_BEGIN_WRITE: &'static str = "BEGIN IMMEDIATE";

    /// Whether the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(pool) => {
                sqlx::query_scalar::<_, i64>("SELECT 1")
                    .fetch_one(pool)
                    .await?
            }
            Self::Postgres(pool) => sqlx::query_scalar::<_, i32>("SELECT 1")
                .fetch_one(pool)
                .await?
                .into(),
        };
        Ok(())
    }
}

/// How to open a [`SqlEventStore`](crate::SqlEventStore). Defaults suit an embedded single node.
pub struct StoreOptions {
    pub(crate) bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    pub(crate) max_event_bytes: usize,
    pub(crate) max_events_per_append: usize,
    pub(crate) max_batch_events: usize,
    pub(crate) queue_capacity: usize,
    pub(crate) max_connections: u32,
    pub(crate) pg_schema: Option<String>,
    pub(crate) busy_timeout: Duration,
    pub(crate) inline_appends: bool,
    pub(crate) idempotency_retention: Duration,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreOptions")
            .field("bus", &self.bus.is_some())
            .field("max_event_bytes", &self.max_event_bytes)
            .field("max_events_per_append", &self.max_events_per_append)
            .field("max_batch_events", &self.max_batch_events)
            .field("queue_capacity", &self.queue_capacity)
            .field("max_connections", &self.max_connections)
            .field("pg_schema", &self.pg_schema)
            .field("inline_appends", &self.inline_appends)
            .field("idempotency_retention", &self.idempotency_retention)
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            bus: None,
            // One event is a fact about one entity; 64 KiB is far above any
            // real inventory event and keeps a realtime frame small.
            max_event_bytes: 64 * 1024,
            // An append is one decision; ten thousand events is a bulk import.
            max_events_per_append: 10_000,
            // Group commit shares one transaction among waiting appends; this
            // caps how long one transaction holds the write lock.
            max_batch_events: 5_000,
            // Appends waiting for the writer. When full, callers wait: memory
            // stays bounded and the pressure reaches the request handlers.
            queue_capacity: 1_024,
            max_connections: 8,
            pg_schema: None,
            busy_timeout: Duration::from_secs(5),
            inline_appends: true,
            idempotency_retention: crate::DEFAULT_IDEMPOTENCY_RETENTION,
        }
    }
}

impl StoreOptions {
    /// Publish committed events to `bus`.
    pub fn bus(mut self, bus: Arc<dyn EventBus<RecordedEvent>>) -> Self {
        self.bus = Some(bus);
        self
    }

    /// The largest encoded size (data plus metadata) of one event.
    pub fn max_event_bytes(mut self, bytes: usize) -> Self {
        self.max_event_bytes = bytes;
        self
    }

    /// The most events one append may carry.
    pub fn max_events_per_append(mut self, count: usize) -> Self {
        self.max_events_per_append = count;
        self
    }

    /// Connections in the read pool. The writer holds one more connection of
    /// its own, outside the pool.
    pub fn max_connections(mut self, count: u32) -> Self {
        self.max_connections = count.max(1);
        self
    }

    /// SQLite only: whether a small append made while no other append is in
    /// progress commits on the caller's thread (the default) rather than on
    /// the writer thread. Inline commits save a hand-off to the writer
    /// thread and back, which suits a lone writer (an import, a library
    /// caller). The Larder server turns them off: on a runtime thread that
    /// also serves requests and read models they measured slower end to end
    /// (see `docs/benchmarks.md`).
    pub fn inline_appends(mut self, inline: bool) -> Self {
        self.inline_appends = inline;
        self
    }

    /// How long an idempotency record answers retries of its key (default
    /// [`crate::DEFAULT_IDEMPOTENCY_RETENTION`], 24 hours). An older record
    /// is ignored, so its key is fresh again, and each writer deletes such
    /// records in bounded sweeps.
    pub fn idempotency_retention(mut self, retention: Duration) -> Self {
        self.idempotency_retention = retention;
        self
    }

    /// PostgreSQL only: keep the tables in this schema (created if missing).
    /// Lets several independent stores share one database.
    pub fn pg_schema(mut self, schema: impl Into<String>) -> Self {
        self.pg_schema = Some(schema.into());
        self
    }
}
