//! [`SqlEventStore`], the sqlx implementation of [`EventStore`] for SQLite
//! and PostgreSQL: the handle, its reads, and the hand-over of appends to the
//! backend's writer (`sqlite_writer`, `postgres_writer`). Opening it is in
//! `connect`, checking appends in `check`.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{ColumnIndex, Decode, Row, Type};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::batch::{WriteRequest, to_i64, to_u64};
use crate::check::Limits;
use crate::idempotency::{self, CommandKey, IdempotencyRecord, IdempotentAppend};
use crate::sqlite_writer;
use crate::{
    AppendResult, Database, EventData, EventFilter, EventStore, MAX_PAGE_SIZE, Metadata, Page,
    RecordedEvent, StoreError, StreamAppend,
};

/// The most positions one filtered [`EventStore::read_all`] examines. On
/// SQLite the log keeps no index per tenant or store (every append would pay
/// for them), so a read for one store of a busy log scans by position;
/// bounding the scan keeps each call short.
pub const FILTER_SCAN_WINDOW: u64 = 10_000;

/// The backend a store runs on: its read pool, and on SQLite its writer.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    Sqlite {
        reader: SqlitePool,
        writer: Arc<sqlite_writer::Writer>,
    },
    Postgres {
        pool: PgPool,
    },
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
    pub(crate) backend: Backend,
    /// The queue to the backend's writer.
    pub(crate) writer: mpsc::Sender<WriteRequest>,
    pub(crate) limits: Limits,
    pub(crate) inline_appends: bool,
    pub(crate) idempotency_retention: std::time::Duration,
}

impl SqlEventStore {
    /// The database the store runs on, for read models kept beside it.
    pub fn database(&self) -> Database {
        match &self.backend {
            Backend::Sqlite { reader, .. } => Database::Sqlite(reader.clone()),
            Backend::Postgres { pool } => Database::Postgres(pool.clone()),
        }
    }

    /// Deletes up to 1,000 idempotency records older than the retention
    /// and returns how many it deleted. The writers run the same sweep on
    /// their own every minute (after a batch); this is for operators and
    /// tests.
    pub async fn sweep_expired_idempotency_keys(&self) -> Result<u64, StoreError> {
        let live_after = idempotency::live_after(self.idempotency_retention);
        match &self.backend {
            Backend::Sqlite { reader, .. } => idempotency::sweep_sqlite(reader, live_after).await,
            Backend::Postgres { pool } => idempotency::sweep_postgres(pool, live_after).await,
        }
    }

    /// Hands a checked append to the writer (on SQLite, commits it inline
    /// when it may) and waits for its outcome.
    async fn write(
        &self,
        appends: Vec<StreamAppend>,
        keys: Vec<CommandKey>,
    ) -> Result<IdempotentAppend, StoreError> {
        let mut appends = self.limits.check(appends)?;
        let _in_flight;
        if let Backend::Sqlite { writer, .. } = &self.backend {
            // Commit here when the append is small and the only one: no
            // hand-off to the writer thread and back. Concurrent appends go
            // to the thread, which shares one commit among them.
            let in_flight = writer.enter();
            let events: usize = appends.iter().map(|a| a.events.len()).sum();
            // An append with an idempotency key goes to the writer thread,
            // which reads its key under the write lock.
            if self.inline_appends
                && keys.is_empty()
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
            .send(WriteRequest {
                appends,
                keys,
                reply,
            })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

#[async_trait]
impl EventStore for SqlEventStore {
    async fn append_streams(&self, appends: Vec<StreamAppend>) -> Result<AppendResult, StoreError> {
        match self.write(appends, Vec::new()).await? {
            IdempotentAppend::Appended(result) => Ok(result),
            // Only an append with a key is answered from a record.
            IdempotentAppend::Replayed(record) => Ok(record.result),
        }
    }

    async fn append_keyed(
        &self,
        appends: Vec<StreamAppend>,
        keys: Vec<CommandKey>,
    ) -> Result<IdempotentAppend, StoreError> {
        idempotency::check_all(&keys)?;
        self.write(appends, keys).await
    }

    async fn idempotency_record(
        &self,
        tenant: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let live_after = idempotency::live_after(self.idempotency_retention);
        match &self.backend {
            Backend::Sqlite { reader, .. } => {
                idempotency::find_sqlite(reader, tenant, key, live_after).await
            }
            Backend::Postgres { pool } => {
                idempotency::find_postgres(pool, tenant, key, live_after).await
            }
        }
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
