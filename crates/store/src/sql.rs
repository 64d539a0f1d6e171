//! The sqlx implementation of [`EventStore`] for SQLite and PostgreSQL.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use larder_bus::EventBus;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Arguments, ColumnIndex, ConnectOptions, Connection, Decode, Row, Type};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::plan::{self, Location, Plan, Snapshot};
use crate::sqlite_writer::{self, SqliteTarget};
use crate::{
    AppendResult, EventData, EventFilter, EventStore, MAX_PAGE_SIZE, Metadata, Page, RecordedEvent,
    StoreError, StreamAppend,
};

// The store's migrations are numbered from 1, and read models kept in the
// same database number theirs apart (larder-projections: from 1001): every
// migrator ignores the versions it does not own.
static SQLITE_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/sqlite")
};
static POSTGRES_MIGRATIONS: Migrator = Migrator {
    ignore_missing: true,
    ..sqlx::migrate!("./migrations/postgres")
};

/// First key of the PostgreSQL advisory lock that serialises appends. The
/// second key is a hash of the schema, so event stores in different schemas
/// of one database do not wait for each other.
/// Anything else that writes to a PostgreSQL log must take
/// `pg_advisory_xact_lock(APPEND_LOCK_CLASS, hashtext(current_schema()))` first
/// (the append function of migration 0002 spells the same call out).
pub const APPEND_LOCK_CLASS: i32 = 0x4c_41_52; // "LAR"

/// Begins an append transaction and takes the append lock, in one round trip
/// (the simple-query protocol runs both statements).
const PG_BEGIN_LOCKED: &str =
    "BEGIN; SELECT pg_advisory_xact_lock(4997458, hashtext(current_schema()))";

/// The most positions one filtered [`EventStore::read_all`] examines. On
/// SQLite the log keeps no index per tenant or store (every append would pay
/// for them), so a read for one store of a busy log scans by position;
/// bounding the scan keeps each call short.
pub const FILTER_SCAN_WINDOW: u64 = 10_000;

/// The longest stream name, event type and metadata field accepted.
const MAX_NAME_LEN: usize = 200;

/// A database a [`SqlEventStore`] runs on, for read models that want to live
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

/// How to open a [`SqlEventStore`]. Defaults suit an embedded single node.
pub struct StoreOptions {
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    max_event_bytes: usize,
    max_events_per_append: usize,
    max_batch_events: usize,
    queue_capacity: usize,
    max_connections: u32,
    pg_schema: Option<String>,
    busy_timeout: Duration,
    inline_appends: bool,
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

    /// PostgreSQL only: keep the tables in this schema (created if missing).
    /// Lets several independent stores share one database.
    pub fn pg_schema(mut self, schema: impl Into<String>) -> Self {
        self.pg_schema = Some(schema.into());
        self
    }
}

#[derive(Debug, Clone)]
enum Backend {
    Sqlite {
        reader: SqlitePool,
        writer: Arc<sqlite_writer::Writer>,
    },
    Postgres {
        pool: PgPool,
    },
}

/// How an append is answered.
pub(crate) type Reply = oneshot::Sender<Result<AppendResult, StoreError>>;

/// An append waiting for the writer.
pub(crate) struct WriteRequest {
    pub appends: Vec<StreamAppend>,
    pub reply: Reply,
}

/// Each caller of a committed batch, with its outcome.
pub(crate) type Answers = Vec<(Reply, Result<AppendResult, StoreError>)>;

/// The callers of a batch while both writers commit it: what follows the
/// commit (logging it, answering) is the same on either backend.
pub(crate) struct Callers {
    replies: Vec<Reply>,
    started: std::time::Instant,
}

impl Callers {
    /// Splits a batch into its requests, for the writer, and its callers.
    pub(crate) fn split(batch: Vec<WriteRequest>) -> (Vec<Vec<StreamAppend>>, Self) {
        let (requests, replies) = batch.into_iter().map(|r| (r.appends, r.reply)).unzip();
        let callers = Self {
            replies,
            started: std::time::Instant::now(),
        };
        (requests, callers)
    }

    /// Logs a committed batch of `events` events and pairs each caller with
    /// its outcome, to be answered once the events are published.
    pub(crate) fn committed(
        self,
        events: usize,
        outcomes: Vec<Result<AppendResult, StoreError>>,
    ) -> Answers {
        tracing::debug!(
            requests = self.replies.len(),
            events,
            elapsed_us = self.started.elapsed().as_micros() as u64,
            "committed append batch"
        );
        self.replies.into_iter().zip(outcomes).collect()
    }

    /// Logs a failed batch and answers every caller with its error.
    pub(crate) fn failed(self, error: StoreError) {
        tracing::error!(%error, requests = self.replies.len(), "append batch failed");
        for reply in self.replies {
            let _ = reply.send(Err(error.clone()));
        }
    }
}

/// Answers each caller.
pub(crate) fn answer(answers: Answers) {
    for (reply, outcome) in answers {
        // The caller may have gone away; its append stands.
        let _ = reply.send(outcome);
    }
}

/// The event store on SQLite or PostgreSQL.
///
/// Appends go through one writer per process that commits whatever is
/// waiting as one transaction (group commit): under load many appends share
/// one lock acquisition and one commit, while each keeps its own checks and
/// its own outcome. On SQLite a small append that finds the writer idle
/// commits on the caller's thread instead (see `sqlite_writer`). Reads go
/// straight to the pool.
///
/// Cloning gives another handle to the same store.
#[derive(Debug, Clone)]
pub struct SqlEventStore {
    backend: Backend,
    writer: mpsc::Sender<WriteRequest>,
    max_event_bytes: usize,
    max_events_per_append: usize,
    inline_appends: bool,
}

impl SqlEventStore {
    /// Opens the store at `url` (`sqlite://path`, `postgres://...`), creating
    /// the SQLite file if missing, and runs the migrations.
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        let (writer, queue) = mpsc::channel(options.queue_capacity);
        let backend = if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let (pool, connect) = Self::connect_postgres(url, &options).await?;
            // The writer holds a connection of its own, outside the pool:
            // no acquire per batch, and readers keep every pooled one.
            let connection = connect.connect().await?;
            tokio::spawn(run_writer(
                PgWriter {
                    connect,
                    connection: Some(connection),
                    known: Known::default(),
                },
                options.bus,
                queue,
                options.max_batch_events,
            ));
            Backend::Postgres { pool }
        } else if url.starts_with("sqlite:") {
            let (reader, target) = Self::connect_sqlite(url, &options).await?;
            let writer =
                sqlite_writer::spawn(&target, queue, options.bus, options.max_batch_events)?;
            Backend::Sqlite { reader, writer }
        } else {
            return Err(StoreError::Invalid(format!(
                "unsupported database URL scheme (expected sqlite: or postgres:): {}",
                url.split(':').next().unwrap_or_default()
            )));
        };
        Ok(Self {
            backend,
            writer,
            max_event_bytes: options.max_event_bytes,
            max_events_per_append: options.max_events_per_append,
            inline_appends: options.inline_appends,
        })
    }

    /// Opens the read pool and migrates; says where the writer's own
    /// connection must open (the same file, or the same in-memory database).
    async fn connect_sqlite(
        url: &str,
        options: &StoreOptions,
    ) -> Result<(SqlitePool, SqliteTarget), StoreError> {
        // WAL lets readers run beside the writer; synchronous=NORMAL in WAL
        // mode survives a process crash, and a power loss may lose the last
        // commits but never corrupts the file.
        let connect = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(options.busy_timeout)
            .foreign_keys(true);
        let target = SqliteTarget {
            filename: connect.get_filename().to_string_lossy().into_owned(),
            in_memory: is_in_memory(url),
            busy_timeout: options.busy_timeout,
        };
        // Migrate on one connection of its own, then read through the pool.
        // Events are written by one dedicated connection of the writer
        // thread (see `sqlite_writer`): SQLite has one writer anyway, and it
        // keeps appends from queueing behind reads.
        let migrator = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        SQLITE_MIGRATIONS.run(&migrator).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(options.max_connections)
            .connect_with(connect)
            .await?;
        migrator.close().await;
        Ok((reader, target))
    }

    async fn connect_postgres(
        url: &str,
        options: &StoreOptions,
    ) -> Result<(PgPool, PgConnectOptions), StoreError> {
        let mut connect = PgConnectOptions::from_str(url)?;
        if let Some(schema) = &options.pg_schema {
            if !is_identifier(schema) {
                return Err(StoreError::Invalid(format!(
                    "invalid schema name {schema:?}"
                )));
            }
            let admin = PgPoolOptions::new()
                .max_connections(1)
                .connect_with(connect.clone())
                .await?;
            sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\""))
                .execute(&admin)
                .await?;
            admin.close().await;
            connect = connect.options([("search_path", schema.as_str())]);
        }
        // Plan each statement for its parameters: a generic plan made while
        // the log was small (a sequential scan) would stay in use as it grows.
        connect = connect.options([("plan_cache_mode", "force_custom_plan")]);
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // A broken connection fails one call (reported as unavailable)
            // instead of every acquire paying a round trip to check.
            .test_before_acquire(false)
            .connect_with(connect.clone())
            .await?;
        POSTGRES_MIGRATIONS.run(&pool).await?;
        Ok((pool, connect))
    }

    /// The database the store runs on, for read models kept beside it.
    pub fn database(&self) -> Database {
        match &self.backend {
            Backend::Sqlite { reader, .. } => Database::Sqlite(reader.clone()),
            Backend::Postgres { pool } => Database::Postgres(pool.clone()),
        }
    }

    /// Checks an append (names, data, sizes) in the caller's task, so the
    /// writer only decides and inserts.
    fn check(&self, appends: Vec<StreamAppend>) -> Result<Vec<StreamAppend>, StoreError> {
        if appends.is_empty() {
            return Err(StoreError::Invalid(
                "an append needs at least one stream".into(),
            ));
        }
        let count: usize = appends.iter().map(|a| a.events.len()).sum();
        if count > self.max_events_per_append {
            return Err(StoreError::Invalid(format!(
                "{count} events in one append, the maximum is {}",
                self.max_events_per_append
            )));
        }
        let mut streams = HashSet::new();
        let mut ids = HashSet::new();
        for append in &appends {
            check_name("stream name", &append.stream)?;
            if !streams.insert(append.stream.as_str()) {
                return Err(StoreError::Invalid(format!(
                    "stream {} appears twice in one append",
                    append.stream
                )));
            }
            for event in &append.events {
                if !ids.insert(event.id) {
                    return Err(StoreError::Invalid(format!(
                        "event id {} appears twice",
                        event.id
                    )));
                }
                self.check_event(event)?;
            }
        }
        Ok(appends)
    }

    fn check_event(&self, event: &crate::NewEvent) -> Result<(), StoreError> {
        check_name("event type", &event.event_type)?;
        check_name("tenant", &event.metadata.tenant)?;
        check_name("entity type", &event.metadata.entity_type)?;
        check_name("entity id", &event.metadata.entity_id)?;
        for optional in [&event.metadata.store, &event.metadata.actor]
            .into_iter()
            .flatten()
        {
            check_name("metadata field", optional)?;
        }
        if !event.data.is_object() {
            return Err(StoreError::Invalid(format!(
                "event {} data must be a JSON object",
                event.id
            )));
        }
        let size = event.data.json().len()
            + event.event_type.len()
            + event.metadata.tenant.len()
            + event.metadata.entity_type.len()
            + event.metadata.entity_id.len()
            + event.metadata.store.as_ref().map_or(0, String::len)
            + event.metadata.actor.as_ref().map_or(0, String::len);
        if size > self.max_event_bytes {
            return Err(StoreError::EventTooLarge {
                id: event.id,
                size,
                max: self.max_event_bytes,
            });
        }
        Ok(())
    }
}

fn check_name(what: &str, value: &str) -> Result<(), StoreError> {
    if value.is_empty() || value.len() > MAX_NAME_LEN || has_control(value) {
        return Err(StoreError::Invalid(format!(
            "{what} must be 1 to {MAX_NAME_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// Whether `value` holds a control character. Every one is encoded with a
/// byte below 0x20, 0x7f, or (U+0080 to U+009F) a leading 0xc2, so a string
/// with none of those bytes is decided without decoding it.
fn has_control(value: &str) -> bool {
    // A fold without an early exit, which the compiler turns into wide
    // comparisons: names are short, and usually clean.
    let suspect = value.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == 0x7f) | (b == 0xc2)
    });
    suspect && value.chars().any(char::is_control)
}

/// Whether a SQLite URL names an in-memory database (`sqlite::memory:`,
/// `sqlite://:memory:`, `mode=memory`), which sqlx opens with a shared cache
/// under a generated name.
fn is_in_memory(url: &str) -> bool {
    let (database, query) = url.split_once('?').unwrap_or((url, ""));
    let database = database
        .trim_start_matches("sqlite:")
        .trim_start_matches("//");
    database == ":memory:" || query.split('&').any(|pair| pair == "mode=memory")
}

fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

#[async_trait]
impl EventStore for SqlEventStore {
    async fn append_streams(&self, appends: Vec<StreamAppend>) -> Result<AppendResult, StoreError> {
        let mut appends = self.check(appends)?;
        let _in_flight;
        if let Backend::Sqlite { writer, .. } = &self.backend {
            // Commit here when the append is small and the only one: no
            // hand-off to the writer thread and back. Concurrent appends go
            // to the thread, which shares one commit among them.
            let in_flight = writer.enter();
            let events: usize = appends.iter().map(|a| a.events.len()).sum();
            if self.inline_appends
                && in_flight.alone
                && events <= sqlite_writer::INLINE_MAX_EVENTS
                && self.writer.capacity() == self.writer.max_capacity()
            {
                match writer.try_inline(appends) {
                    Ok(answer) => return answer.await.map_err(|_| StoreError::Closed)?,
                    Err(busy) => appends = busy,
                }
            }
            _in_flight = in_flight;
        }
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(WriteRequest { appends, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let limit = i64::from(limit.clamp(1, MAX_PAGE_SIZE));
        let from = to_i64(from_version);
        match &self.backend {
            Backend::Sqlite { reader, .. } => {
                let sql = format!(
                    "SELECT {SQLITE_COLUMNS} FROM events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(stream)
                    .bind(from)
                    .bind(limit)
                    .fetch_all(reader)
                    .await?;
                rows.iter().map(decode_row).collect()
            }
            Backend::Postgres { pool } => {
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM events WHERE stream = $1 AND version >= $2 ORDER BY version LIMIT $3"
                );
                let rows = sqlx::query(&sql)
                    .bind(stream)
                    .bind(from)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(decode_row).collect()
            }
        }
    }

    async fn read_event(&self, id: Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let row = match &self.backend {
            Backend::Sqlite { reader, .. } => {
                let sql = format!("SELECT {SQLITE_COLUMNS} FROM events WHERE id = $1");
                sqlx::query(&sql)
                    .bind(id.to_string())
                    .fetch_optional(reader)
                    .await?
                    .map(|row| decode_row(&row))
            }
            Backend::Postgres { pool } => {
                let sql = format!("SELECT {PG_COLUMNS} FROM events WHERE id = $1::uuid");
                sqlx::query(&sql)
                    .bind(id.to_string())
                    .fetch_optional(pool)
                    .await?
                    .map(|row| decode_row(&row))
            }
        };
        row.transpose()
    }

    async fn stream_version(&self, stream: &str) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = $1";
        let version: i64 = match &self.backend {
            Backend::Sqlite { reader, .. } => {
                sqlx::query_scalar(SQL)
                    .bind(stream)
                    .fetch_one(reader)
                    .await?
            }
            Backend::Postgres { pool } => {
                sqlx::query_scalar(SQL).bind(stream).fetch_one(pool).await?
            }
        };
        Ok(to_u64(version))
    }

    async fn read_all(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        // Read the head first and never past it: every event at or below it
        // is committed (positions become visible in order), so when fewer
        // than `limit` match, the read got through the head, even if more
        // events commit while it runs.
        let head = self.head().await?;
        if head <= after {
            return Ok(Page {
                events: Vec::new(),
                scanned_to: after,
                reached_head: true,
            });
        }
        // A filtered read looks at no more than `FILTER_SCAN_WINDOW`
        // positions: where few events match, a page ends early with what it
        // found and where it got to, and the caller reads on from there.
        let filtered = filter.tenant.is_some()
            || filter.store.is_some()
            || filter.entity_type.is_some()
            || filter.entity_id.is_some();
        let upto = if filtered {
            head.min(after.saturating_add(FILTER_SCAN_WINDOW))
        } else {
            head
        };
        let mut conditions = String::from("position > $1 AND position <= $2");
        let mut binds = Vec::new();
        for (column, value) in [
            ("tenant", &filter.tenant),
            ("store_id", &filter.store),
            ("entity_type", &filter.entity_type),
            ("entity_id", &filter.entity_id),
        ] {
            if let Some(value) = value {
                binds.push(value.as_str());
                conditions.push_str(&format!(" AND {column} = ${}", binds.len() + 2));
            }
        }
        let limit_param = binds.len() + 3;
        let events: Vec<RecordedEvent> = match &self.backend {
            Backend::Sqlite { reader, .. } => {
                let sql = format!(
                    "SELECT {SQLITE_COLUMNS} FROM events WHERE {conditions} ORDER BY position LIMIT ${limit_param}"
                );
                let mut query = sqlx::query(&sql).bind(to_i64(after)).bind(to_i64(upto));
                for value in &binds {
                    query = query.bind(*value);
                }
                let rows = query.bind(i64::from(limit)).fetch_all(reader).await?;
                rows.iter().map(decode_row).collect::<Result<_, _>>()?
            }
            Backend::Postgres { pool } => {
                let sql = format!(
                    "SELECT {PG_COLUMNS} FROM events WHERE {conditions} ORDER BY position LIMIT ${limit_param}"
                );
                let mut query = sqlx::query(&sql).bind(to_i64(after)).bind(to_i64(upto));
                for value in &binds {
                    query = query.bind(*value);
                }
                let rows = query.bind(i64::from(limit)).fetch_all(pool).await?;
                rows.iter().map(decode_row).collect::<Result<_, _>>()?
            }
        };
        let full = events.len() == limit as usize;
        let scanned_to = match events.last() {
            Some(last) if full => last.position,
            _ => upto,
        };
        Ok(Page {
            events,
            scanned_to,
            reached_head: scanned_to == head,
        })
    }

    async fn head(&self) -> Result<u64, StoreError> {
        const SQL: &str = "SELECT COALESCE(MAX(position), 0) FROM events";
        let head: i64 = match &self.backend {
            Backend::Sqlite { reader, .. } => sqlx::query_scalar(SQL).fetch_one(reader).await?,
            Backend::Postgres { pool } => sqlx::query_scalar(SQL).fetch_one(pool).await?,
        };
        Ok(to_u64(head))
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

const SQLITE_COLUMNS: &str = "position, id, stream, version, event_type, schema_version, data, tenant, \
     store_id, entity_type, entity_id, actor, correlation_id, causation_id, recorded_at, session";
const PG_COLUMNS: &str = "position, id::text, stream, version, event_type, schema_version::bigint, data::text, \
     tenant, store_id, entity_type, entity_id, actor, correlation_id::text, causation_id::text, recorded_at, session";

/// Decodes a row selected with [`SQLITE_COLUMNS`] or [`PG_COLUMNS`]: both
/// hand ids and data over as text, so one decoder serves both backends.
fn decode_row<'r, R>(row: &'r R) -> Result<RecordedEvent, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    DateTime<Utc>: Decode<'r, R::Database> + Type<R::Database>,
{
    let position = to_u64(row.try_get::<i64, _>(0)?);
    let corrupt = |reason: String| StoreError::Corrupt { position, reason };
    let uuid = |text: &str| Uuid::parse_str(text).map_err(|e| corrupt(format!("bad uuid: {e}")));
    let optional_uuid = |text: Option<String>| text.as_deref().map(uuid).transpose();
    let data: String = row.try_get(6)?;
    Ok(RecordedEvent {
        position,
        id: uuid(&row.try_get::<String, _>(1)?)?,
        stream: row.try_get(2)?,
        version: to_u64(row.try_get::<i64, _>(3)?),
        event_type: row.try_get(4)?,
        schema_version: u32::try_from(row.try_get::<i64, _>(5)?)
            .map_err(|e| corrupt(e.to_string()))?,
        data: EventData::from_json(data).map_err(|e| corrupt(format!("bad data: {e}")))?,
        metadata: Metadata {
            tenant: row.try_get(7)?,
            store: row.try_get(8)?,
            entity_type: row.try_get(9)?,
            entity_id: row.try_get(10)?,
            actor: row.try_get(11)?,
            session: row.try_get(15)?,
            correlation_id: optional_uuid(row.try_get(12)?)?,
            causation_id: optional_uuid(row.try_get(13)?)?,
        },
        recorded_at: row.try_get(14)?,
    })
}

/// Takes `first` and whatever else is waiting, up to `max_batch_events`
/// events; an append that would overflow the batch is handed back to start
/// the next one.
pub(crate) fn take_batch(
    first: WriteRequest,
    queue: &mut mpsc::Receiver<WriteRequest>,
    max_batch_events: usize,
) -> (Vec<WriteRequest>, Option<WriteRequest>) {
    let mut events = count_events(&first);
    let mut batch = vec![first];
    while events < max_batch_events {
        let Ok(next) = queue.try_recv() else { break };
        let more = count_events(&next);
        if events + more > max_batch_events {
            return (batch, Some(next));
        }
        events += more;
        batch.push(next);
    }
    (batch, None)
}

fn count_events(request: &WriteRequest) -> usize {
    request
        .appends
        .iter()
        .map(|a| a.events.len())
        .sum::<usize>()
        .max(1)
}

/// The PostgreSQL writer's own connection, reopened after any error (the
/// error may have been the connection's), and what the writer knows of the
/// log, dropped with the connection.
struct PgWriter {
    connect: PgConnectOptions,
    connection: Option<PgConnection>,
    known: Known,
}

impl PgWriter {
    async fn commit(&mut self, requests: Vec<Vec<StreamAppend>>) -> Result<Plan, StoreError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(self.connect.connect().await?),
        };
        let committed = commit_postgres(connection, &mut self.known, requests).await;
        if committed.is_err() {
            self.connection = None;
            self.known = Known::default();
        }
        committed
    }
}

/// The most stream versions the PostgreSQL writer remembers; past it the
/// cache starts over (streams it forgets go through the slow path once).
const MAX_KNOWN_STREAMS: usize = 10_000;

/// What the PostgreSQL writer knows of the log: the head after its last
/// commit or snapshot, and the versions of streams it has written or read
/// since (each as of that head). It is only a guess to plan against: the
/// append function checks it under the append lock before inserting.
#[derive(Debug, Default)]
struct Known {
    head: Option<u64>,
    versions: HashMap<String, u64>,
}

impl Known {
    /// A snapshot to plan `requests` against, if every stream they touch is
    /// known. It has no stored ids: the insert's unique index finds those.
    fn snapshot(&self, requests: &[Vec<StreamAppend>]) -> Option<Snapshot> {
        let head = self.head?;
        let mut versions = HashMap::new();
        for append in requests.iter().flatten() {
            let version = *self.versions.get(&append.stream)?;
            versions.insert(append.stream.clone(), version);
        }
        Some(Snapshot {
            head,
            versions,
            existing: HashMap::new(),
        })
    }

    /// Takes in a snapshot read under the lock. If the head moved since the
    /// last one, other writers appended and any other remembered version may
    /// be stale: forget them.
    fn refresh(&mut self, head: u64, versions: &HashMap<String, u64>) {
        if self.head != Some(head) || self.versions.len() + versions.len() > MAX_KNOWN_STREAMS {
            self.versions.clear();
        }
        self.head = Some(head);
        self.versions.extend(
            versions
                .iter()
                .map(|(stream, version)| (stream.clone(), *version)),
        );
    }

    /// Takes in the rows a batch committed (in position order).
    fn record(&mut self, rows: &[RecordedEvent]) {
        let Some(last) = rows.last() else { return };
        if self.versions.len() + rows.len() > MAX_KNOWN_STREAMS {
            self.versions.clear();
        }
        for row in rows {
            self.versions.insert(row.stream.clone(), row.version);
        }
        self.head = Some(last.position);
    }
}

/// The PostgreSQL writer task: takes whatever appends are waiting (up to a
/// bound), commits them as one transaction, publishes, and answers each.
/// (SQLite's writer is a thread of its own: see `sqlite_writer`.)
async fn run_writer(
    mut writer: PgWriter,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    mut queue: mpsc::Receiver<WriteRequest>,
    max_batch_events: usize,
) {
    let mut carried: Option<WriteRequest> = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match queue.recv().await {
                Some(request) => request,
                None => break,
            },
        };
        let (batch, next) = take_batch(first, &mut queue, max_batch_events);
        carried = next;

        let (requests, callers) = Callers::split(batch);
        match writer.commit(requests).await {
            Ok(Plan { rows, outcomes }) => {
                let answers = callers.committed(rows.len(), outcomes);
                // Publish before answering: once an append returns, its events
                // are on the bus. A failed publish loses nothing; consumers
                // refill from the store.
                if let Some(bus) = &bus
                    && !rows.is_empty()
                {
                    let events = rows.into_iter().map(Arc::new).collect();
                    if let Err(error) = bus.publish(events).await {
                        tracing::warn!(%error, "publishing committed events failed; consumers will refill from the store");
                    }
                }
                answer(answers);
            }
            Err(error) => callers.failed(error),
        }
    }
}

/// The streams and event ids a batch touches, for the snapshot query.
fn batch_keys(requests: &[Vec<StreamAppend>]) -> (Vec<&str>, Vec<Uuid>) {
    let mut streams: Vec<&str> = requests
        .iter()
        .flatten()
        .map(|a| a.stream.as_str())
        .collect();
    streams.sort_unstable();
    streams.dedup();
    let ids = requests
        .iter()
        .flatten()
        .flat_map(|a| a.events.iter().map(|e| e.id))
        .collect();
    (streams, ids)
}

/// Decides and writes one batch on PostgreSQL.
///
/// Fast path, one round trip: when every stream of the batch is in `known`
/// and every request is accepted against it, the batch is planned against it
/// and the rows go to `larder_append` (migration 0002) in autocommit. Under
/// the append lock it checks that the head and the streams' versions are
/// still the ones planned against, inserts, and the statement's transaction
/// commits. Positions and versions are then exactly those the slow path
/// would have assigned.
///
/// Slow path, four round trips, when a stream is not known, when a request
/// would be refused on known state (it may be a retry, which only the stored
/// ids can tell: a refusal is never answered from memory), when two requests
/// of the batch share an event id, when the function finds the log moved
/// (another writer appended), or when an event id is already stored (a retry
/// planned as new): [`commit_locked`].
async fn commit_postgres(
    connection: &mut PgConnection,
    known: &mut Known,
    requests: Vec<Vec<StreamAppend>>,
) -> Result<Plan, StoreError> {
    let recorded_at = Utc::now();
    let snapshot = match known.snapshot(&requests) {
        Some(snapshot) if plan::accepts_all(&snapshot, &requests) => snapshot,
        _ => return commit_locked(connection, known, requests, recorded_at).await,
    };
    let head = snapshot.head;
    let (check_streams, check_versions): (Vec<String>, Vec<i64>) = snapshot
        .versions
        .iter()
        .map(|(stream, version)| (stream.clone(), to_i64(*version)))
        .unzip();
    let shapes = plan::shapes(&requests);
    let plan = plan::plan(snapshot, requests, recorded_at);
    let mut arguments = PgArguments::default();
    arguments
        .add(to_i64(head))
        .and_then(|()| arguments.add(&check_streams))
        .and_then(|()| arguments.add(&check_versions))
        .map_err(|e| StoreError::from(sqlx::Error::Encode(e)))?;
    add_rows(&mut arguments, &plan.rows, recorded_at)?;
    let appended = sqlx::query_scalar_with::<_, bool, _>(PG_APPEND, arguments)
        .fetch_one(&mut *connection)
        .await;
    match appended {
        Ok(true) => {
            known.record(&plan.rows);
            return Ok(plan);
        }
        // The log moved since: decide again on a fresh snapshot.
        Ok(false) => {}
        Err(sqlx::Error::Database(error)) if error.constraint() == Some(EVENT_ID_KEY) => {
            tracing::debug!("an event id of the batch is stored; deciding it on a snapshot");
        }
        Err(error) => return Err(error.into()),
    }
    let requests = plan::unplan(shapes, plan.rows);
    commit_locked(connection, known, requests, recorded_at).await
}

/// The unique index on event ids.
const EVENT_ID_KEY: &str = "events_id_key";

/// Decides and writes one batch in one PostgreSQL transaction against a
/// full snapshot read under the lock: 4 round trips (begin and lock,
/// snapshot, insert, commit) whatever its size. Refreshes `known`.
async fn commit_locked(
    connection: &mut PgConnection,
    known: &mut Known,
    requests: Vec<Vec<StreamAppend>>,
    recorded_at: DateTime<Utc>,
) -> Result<Plan, StoreError> {
    // The lock is taken in the same round trip as BEGIN and held until
    // commit or rollback: the next batch (from this or any other node) reads
    // the head only after this one is visible, so positions commit in order.
    let mut tx = connection.begin_with(PG_BEGIN_LOCKED).await?;
    let snapshot = {
        let (streams, ids) = batch_keys(&requests);
        let rows = sqlx::query(PG_SNAPSHOT)
            .bind(&streams)
            .bind(&ids)
            .fetch_all(&mut *tx)
            .await?;
        snapshot_from_rows(&rows)?
    };
    known.refresh(snapshot.head, &snapshot.versions);
    let plan = plan::plan(snapshot, requests, recorded_at);
    if plan.rows.is_empty() {
        tx.rollback().await?;
        return Ok(plan);
    }
    let mut arguments = PgArguments::default();
    add_rows(&mut arguments, &plan.rows, recorded_at)?;
    sqlx::query_with(PG_INSERT, arguments)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    known.record(&plan.rows);
    Ok(plan)
}

/// Adds the columns of `rows` as arrays to `arguments`, in the order of
/// [`PG_INSERT`]'s parameters (`$15` is the one `recorded_at` of the batch).
fn add_rows(
    arguments: &mut PgArguments,
    rows: &[RecordedEvent],
    recorded_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    fn add<'q, T>(arguments: &mut PgArguments, value: T) -> Result<(), StoreError>
    where
        T: sqlx::Encode<'q, sqlx::Postgres> + Type<sqlx::Postgres> + 'q,
    {
        arguments
            .add(value)
            .map_err(|e| StoreError::from(sqlx::Error::Encode(e)))
    }
    let column = |f: &dyn Fn(&RecordedEvent) -> i64| rows.iter().map(f).collect::<Vec<_>>();
    let text =
        |f: &dyn for<'r> Fn(&'r RecordedEvent) -> &'r str| rows.iter().map(f).collect::<Vec<_>>();
    let optional = |f: &dyn for<'r> Fn(&'r RecordedEvent) -> Option<&'r str>| {
        rows.iter().map(f).collect::<Vec<_>>()
    };
    let uuids = |f: &dyn Fn(&RecordedEvent) -> Option<Uuid>| rows.iter().map(f).collect::<Vec<_>>();
    add(arguments, column(&|r| to_i64(r.position)))?;
    add(arguments, rows.iter().map(|r| r.id).collect::<Vec<_>>())?;
    add(arguments, text(&|r| &r.stream))?;
    add(arguments, column(&|r| to_i64(r.version)))?;
    add(arguments, text(&|r| &r.event_type))?;
    add(arguments, column(&|r| i64::from(r.schema_version)))?;
    add(arguments, text(&|r| r.data.json()))?;
    add(arguments, text(&|r| &r.metadata.tenant))?;
    add(arguments, optional(&|r| r.metadata.store.as_deref()))?;
    add(arguments, text(&|r| &r.metadata.entity_type))?;
    add(arguments, text(&|r| &r.metadata.entity_id))?;
    add(arguments, optional(&|r| r.metadata.actor.as_deref()))?;
    add(arguments, uuids(&|r| r.metadata.correlation_id))?;
    add(arguments, uuids(&|r| r.metadata.causation_id))?;
    add(arguments, recorded_at)?;
    add(arguments, optional(&|r| r.metadata.session.as_deref()))
}

// One round trip reads everything a batch is decided against: the head, the
// versions of its streams, and which of its event ids are already stored.
// kind 0: head; 1: a stream's version; 2: a stored event id.
const PG_SNAPSHOT: &str = "\
    SELECT 0::bigint AS kind, NULL::text AS id, NULL::text AS stream, 0::bigint AS version, \
           COALESCE((SELECT MAX(position) FROM events), 0)::bigint AS position \
    UNION ALL \
    SELECT 1, NULL, s, (SELECT MAX(version) FROM events WHERE stream = s), 0 FROM unnest($1::text[]) AS s \
    UNION ALL \
    SELECT 2, id::text, stream, version, position FROM events WHERE id = ANY($2)";

/// The fast path's one statement: `larder_append(head, streams, versions,`
/// then the parameters of [`PG_INSERT`] in its order (see migration 0002).
const PG_APPEND: &str = "SELECT larder_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
     $13, $14, $15, $16, $17, $18, $19)";

const PG_INSERT: &str = "\
    INSERT INTO events (position, id, stream, version, event_type, schema_version, data, tenant, store_id, \
                        entity_type, entity_id, actor, correlation_id, causation_id, recorded_at, session) \
    SELECT p, i, s, v, t, sv, d::json, te, st, et, ei, a, c, ca, $15, se \
      FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::bigint[], $7::text[], \
                  $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::uuid[], $14::uuid[], \
                  $16::text[]) \
           AS u(p, i, s, v, t, sv, d, te, st, et, ei, a, c, ca, se)";

fn snapshot_from_rows<R>(rows: &[R]) -> Result<Snapshot, StoreError>
where
    R: Row,
    usize: ColumnIndex<R>,
    for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<String>: Decode<'r, R::Database> + Type<R::Database>,
{
    let mut snapshot = Snapshot::default();
    for row in rows {
        let kind: i64 = row.try_get(0)?;
        let id: Option<String> = row.try_get(1)?;
        let stream: Option<String> = row.try_get(2)?;
        let version = to_u64(row.try_get::<Option<i64>, _>(3)?.unwrap_or(0));
        let position = to_u64(row.try_get(4)?);
        match (kind, id, stream) {
            (0, _, _) => snapshot.head = position,
            (1, _, Some(stream)) => {
                snapshot.versions.insert(stream, version);
            }
            (2, Some(id), Some(stream)) => {
                let id = Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
                    position,
                    reason: format!("bad uuid: {e}"),
                })?;
                snapshot.existing.insert(
                    id,
                    Location {
                        stream,
                        version,
                        position,
                    },
                );
            }
            _ => {
                return Err(StoreError::Corrupt {
                    position,
                    reason: "unexpected snapshot row".into(),
                });
            }
        }
    }
    Ok(snapshot)
}

#[cfg(test)]
mod tests {
    use super::is_in_memory;

    #[test]
    fn the_locking_begin_takes_the_append_lock() {
        let class = super::APPEND_LOCK_CLASS.to_string();
        assert!(super::PG_BEGIN_LOCKED.contains(&format!("pg_advisory_xact_lock({class},")));
    }

    #[test]
    fn the_append_function_takes_the_append_lock() {
        let class = super::APPEND_LOCK_CLASS.to_string();
        for migration in [
            include_str!("../migrations/postgres/0002_append_function.sql"),
            include_str!("../migrations/postgres/0004_data_as_json.sql"),
        ] {
            assert!(migration.contains(&format!(
                "pg_advisory_xact_lock({class}, hashtext(current_schema()))"
            )));
        }
    }

    #[test]
    fn control_characters_are_found_without_decoding_clean_names() {
        for clean in ["item-42", "Café crème", "ß€😀", ""] {
            assert!(!super::has_control(clean), "{clean:?}");
        }
        for dirty in ["a\tb", "\u{7f}", "x\u{85}y", "\u{9f}", "\u{0}"] {
            assert!(super::has_control(dirty), "{dirty:?}");
        }
        // 0xc2 also leads printable characters (U+00A0 to U+00BF).
        assert!(!super::has_control("a\u{a0}b\u{bf}"));
    }

    #[test]
    fn in_memory_urls_are_recognised() {
        assert!(is_in_memory("sqlite::memory:"));
        assert!(is_in_memory("sqlite://:memory:"));
        assert!(is_in_memory("sqlite://larder.db?mode=memory"));
        assert!(!is_in_memory("sqlite://larder.db"));
        assert!(!is_in_memory("sqlite:///tmp/memory.db?mode=rwc"));
    }
}
