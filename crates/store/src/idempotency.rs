//! Idempotency keys: an append may carry an [`Idempotency`] record, which
//! the writer stores in the same transaction as the append's events. A
//! second append with the same (tenant, key) appends nothing and is answered
//! with the stored [`IdempotencyRecord`] ([`IdempotentAppend::Replayed`]),
//! whatever its fingerprint: the caller compares fingerprints and decides
//! (Larder's server answers a mismatch with 422).
//!
//! Records live for a retention time ([`StoreOptions::idempotency_retention`],
//! default [`DEFAULT_IDEMPOTENCY_RETENTION`]); an older record is ignored (the
//! key is fresh again) and a bounded sweep in each writer deletes it.
//!
//! This module holds the types, the SQL both writers run, and the reads and
//! sweep by pool; it imports no other module of the crate but the public
//! types (`sql`, `batch`, `plan` and both writers use it).
//!
//! [`StoreOptions::idempotency_retention`]: crate::StoreOptions::idempotency_retention

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use sqlx::{ColumnIndex, Decode, Row, Type};

use crate::{AppendResult, StoreError, StreamVersion};

/// How long an idempotency record answers retries unless configured.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

/// The longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The most expired records one sweep deletes: a sweep runs on the writer's
/// connection between batches, so it must stay short.
pub(crate) const SWEEP_LIMIT: i64 = 1_000;

/// How often a writer sweeps expired records (after a batch, at most this
/// often).
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// What an append stores under its idempotency key, besides its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    /// The tenant the key belongs to: keys of different tenants never meet.
    pub tenant: String,
    /// The key the client chose (1 to [`MAX_IDEMPOTENCY_KEY_BYTES`] bytes).
    pub key: String,
    /// A digest of the request, to tell a retry from another request that
    /// reuses the key.
    pub fingerprint: String,
    /// The status to answer a retry with (e.g. an HTTP status).
    pub status: u16,
    /// What to answer a retry with, besides what the commit gives (versions
    /// and position): e.g. a response body template.
    pub response: String,
}

/// One command's key in an append: an append may carry the events of
/// several commands (a group commit), each with its own key, stored in the
/// same transaction. `through` says which of the append's events are the
/// command's: `None`, all of them (one command per append); `Some(n)`, the
/// first stream's events up to its `n`-th (`0`: the command wrote none),
/// and the record answers with the version and position of that event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandKey {
    /// The key and what to answer a retry with.
    pub idempotency: Idempotency,
    /// How many of the first stream's events are the command's (with the
    /// ones of commands before it in the append); `None`: the whole append.
    pub through: Option<usize>,
}

impl CommandKey {
    /// A key for a whole append.
    pub fn whole(idempotency: Idempotency) -> Self {
        Self {
            idempotency,
            through: None,
        }
    }

    /// The result a record of this key answers with, from the append's
    /// `result`: the first stream's events take consecutive positions
    /// before any other stream's, so the command's last event is at
    /// `through` of them.
    pub(crate) fn result_of(&self, result: &AppendResult, appends: &[usize]) -> AppendResult {
        let (Some(through), Some(&first)) = (self.through, appends.first()) else {
            return result.clone();
        };
        let total: usize = appends.iter().sum();
        let through = through.min(first);
        let mut streams = result.streams.clone();
        if let Some(stream) = streams.first_mut() {
            stream.version = stream.version - first as u64 + through as u64;
        }
        AppendResult {
            streams,
            last_position: result.last_position - total as u64 + through as u64,
        }
    }
}

/// An idempotency record as stored: the request's [`Idempotency`] and the
/// result of the append that stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// The tenant.
    pub tenant: String,
    /// The key.
    pub key: String,
    /// The fingerprint of the request that stored it.
    pub fingerprint: String,
    /// The stored status.
    pub status: u16,
    /// The stored response.
    pub response: String,
    /// The original append's result: stream versions and position.
    pub result: AppendResult,
    /// When it was stored (the commit's time).
    pub created_at: DateTime<Utc>,
}

impl IdempotencyRecord {
    pub(crate) fn new(
        idempotency: &Idempotency,
        result: AppendResult,
        created_at: DateTime<Utc>,
    ) -> Self {
        Self {
            tenant: idempotency.tenant.clone(),
            key: idempotency.key.clone(),
            fingerprint: idempotency.fingerprint.clone(),
            status: idempotency.status,
            response: idempotency.response.clone(),
            result,
            created_at,
        }
    }

    /// Whether a request with `fingerprint` is a retry of the one that
    /// stored this record.
    pub fn matches(&self, fingerprint: &str) -> bool {
        self.fingerprint == fingerprint
    }
}

/// The outcome of an append with an idempotency key.
///
/// ```no_run
/// use larder_store::{EventStore, ExpectedVersion, Idempotency, IdempotentAppend, Metadata, NewEvent, StreamAppend};
///
/// # async fn run(store: &dyn EventStore) -> Result<(), larder_store::StoreError> {
/// let metadata = Metadata { tenant: "acme".into(), entity_type: "item".into(), entity_id: "42".into(), ..Metadata::default() };
/// let event = NewEvent::new("StockAdjusted", 1, serde_json::json!({ "delta": -2 }), metadata);
/// let key = Idempotency {
///     tenant: "acme".into(),
///     key: "a1b2c3".into(),
///     fingerprint: "sha256 of the request".into(),
///     status: 200,
///     response: "{}".into(),
/// };
/// let appends = vec![StreamAppend::new("item-42", ExpectedVersion::Any, vec![event])];
/// match store.append_idempotent(appends, key).await? {
///     IdempotentAppend::Appended(result) => println!("appended at {}", result.last_position),
///     IdempotentAppend::Replayed(record) if record.matches("sha256 of the request") => {
///         println!("a retry: answer {} again", record.status)
///     }
///     IdempotentAppend::Replayed(_) => println!("the key was used for another request"),
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdempotentAppend {
    /// The key was fresh: the events were appended and the key stored with
    /// them.
    Appended(AppendResult),
    /// The key was stored (by an earlier append, or a concurrent one that
    /// committed first): nothing was appended. Compare the fingerprint.
    Replayed(IdempotencyRecord),
}

/// Checks an append's keys before they reach a writer: each valid, none
/// twice.
pub(crate) fn check_all(keys: &[CommandKey]) -> Result<(), StoreError> {
    for (index, key) in keys.iter().enumerate() {
        check(&key.idempotency)?;
        let same = |other: &CommandKey| {
            other.idempotency.tenant == key.idempotency.tenant
                && other.idempotency.key == key.idempotency.key
        };
        if keys[..index].iter().any(same) {
            return Err(StoreError::Invalid(format!(
                "idempotency key {:?} given twice in one append",
                key.idempotency.key
            )));
        }
    }
    Ok(())
}

/// Checks a key before it reaches a writer.
fn check(idempotency: &Idempotency) -> Result<(), StoreError> {
    if idempotency.tenant.is_empty() {
        return Err(StoreError::Invalid(
            "an idempotency key needs a tenant".into(),
        ));
    }
    if idempotency.key.is_empty() || idempotency.key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(StoreError::Invalid(format!(
            "an idempotency key has 1 to {MAX_IDEMPOTENCY_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The (tenant, key) a record is found by.
pub(crate) type KeyId = (String, String);

/// The first commit time (Unix milliseconds) a record must be newer than to
/// be live now.
pub(crate) fn live_after(retention: Duration) -> i64 {
    let retention = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    Utc::now().timestamp_millis().saturating_sub(retention)
}

/// A stored record's columns, in the order of the `SELECT`s below.
pub(crate) struct Columns {
    pub tenant: String,
    pub key: String,
    pub fingerprint: String,
    pub status: i64,
    pub response: String,
    pub streams: String,
    pub last_position: i64,
    pub created_at: i64,
}

impl Columns {
    /// The record, or why the stored row is not one.
    pub(crate) fn record(self) -> Result<IdempotencyRecord, StoreError> {
        let position = u64::try_from(self.last_position).unwrap_or(0);
        let corrupt = |reason: String| StoreError::Corrupt { position, reason };
        let streams: Vec<StreamVersion> = serde_json::from_str(&self.streams)
            .map_err(|e| corrupt(format!("idempotency record streams: {e}")))?;
        Ok(IdempotencyRecord {
            tenant: self.tenant,
            key: self.key,
            fingerprint: self.fingerprint,
            status: u16::try_from(self.status)
                .map_err(|e| corrupt(format!("idempotency record status: {e}")))?,
            response: self.response,
            result: AppendResult {
                streams,
                last_position: position,
            },
            created_at: DateTime::from_timestamp_millis(self.created_at)
                .ok_or_else(|| corrupt("idempotency record time".into()))?,
        })
    }

    /// The columns of `record`, to insert.
    pub(crate) fn of(record: &IdempotencyRecord) -> Self {
        Self {
            tenant: record.tenant.clone(),
            key: record.key.clone(),
            fingerprint: record.fingerprint.clone(),
            status: i64::from(record.status),
            response: record.response.clone(),
            // A list of names and numbers always serialises.
            streams: serde_json::to_string(&record.result.streams).unwrap_or_default(),
            last_position: i64::try_from(record.result.last_position).unwrap_or(i64::MAX),
            created_at: record.created_at.timestamp_millis(),
        }
    }

    fn from_row<R>(row: &R) -> Result<Self, sqlx::Error>
    where
        R: Row,
        usize: ColumnIndex<R>,
        for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
        for<'r> i64: Decode<'r, R::Database> + Type<R::Database>,
    {
        Ok(Self {
            tenant: row.try_get(0)?,
            key: row.try_get(1)?,
            fingerprint: row.try_get(2)?,
            status: row.try_get(3)?,
            response: row.try_get(4)?,
            streams: row.try_get(5)?,
            last_position: row.try_get(6)?,
            created_at: row.try_get(7)?,
        })
    }
}

/// SQLite: the live record of (tenant, key), one probe of the primary key.
pub(crate) const SQLITE_SELECT: &str = "SELECT tenant, key, fingerprint, status, response, streams, \
     last_position, created_at FROM idempotency_keys WHERE tenant = ?1 AND key = ?2 AND created_at > ?3";

/// SQLite: stores a record, replacing an expired one of the same key (a
/// live one was read under the same write lock, so there is none).
pub(crate) const SQLITE_UPSERT: &str = "INSERT INTO idempotency_keys \
     (tenant, key, fingerprint, status, response, streams, last_position, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (tenant, key) DO UPDATE SET \
     fingerprint = excluded.fingerprint, status = excluded.status, response = excluded.response, \
     streams = excluded.streams, last_position = excluded.last_position, created_at = excluded.created_at";

/// SQLite: deletes up to `?2` records stored at or before `?1`.
pub(crate) const SQLITE_SWEEP: &str = "DELETE FROM idempotency_keys WHERE (tenant, key) IN \
     (SELECT tenant, key FROM idempotency_keys WHERE created_at <= ?1 LIMIT ?2)";

/// PostgreSQL: the live records of the (tenant, key) pairs `$1`, `$2`.
pub(crate) const PG_SELECT: &str = "SELECT k.tenant, k.key, k.fingerprint, k.status::bigint, k.response, \
     k.streams, k.last_position, k.created_at FROM idempotency_keys k \
     JOIN UNNEST($1::text[], $2::text[]) AS u(tenant, key) ON k.tenant = u.tenant AND k.key = u.key \
     WHERE k.created_at > $3";

/// PostgreSQL: stores records given as arrays, replacing expired ones (the
/// live ones were read under the same append lock, so there are none).
pub(crate) const PG_UPSERT: &str = "INSERT INTO idempotency_keys \
     (tenant, key, fingerprint, status, response, streams, last_position, created_at) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[], \
                          $7::bigint[], $8::bigint[]) \
     ON CONFLICT (tenant, key) DO UPDATE SET \
     fingerprint = excluded.fingerprint, status = excluded.status, response = excluded.response, \
     streams = excluded.streams, last_position = excluded.last_position, created_at = excluded.created_at";

/// PostgreSQL: deletes up to `$2` records stored at or before `$1`.
pub(crate) const PG_SWEEP: &str = "DELETE FROM idempotency_keys WHERE (tenant, key) IN \
     (SELECT tenant, key FROM idempotency_keys WHERE created_at <= $1 LIMIT $2)";

/// The live record of (tenant, key) on SQLite, read through the pool.
pub(crate) async fn find_sqlite(
    pool: &SqlitePool,
    tenant: &str,
    key: &str,
    live_after: i64,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let row = sqlx::query(SQLITE_SELECT)
        .bind(tenant)
        .bind(key)
        .bind(live_after)
        .fetch_optional(pool)
        .await?;
    row.map(|row| Columns::from_row(&row)?.record()).transpose()
}

/// The live record of (tenant, key) on PostgreSQL, read through the pool.
pub(crate) async fn find_postgres(
    pool: &PgPool,
    tenant: &str,
    key: &str,
    live_after: i64,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let row = sqlx::query(PG_SELECT)
        .bind([tenant])
        .bind([key])
        .bind(live_after)
        .fetch_optional(pool)
        .await?;
    row.map(|row| Columns::from_row(&row)?.record()).transpose()
}

/// Decodes the rows of [`PG_SELECT`].
pub(crate) fn from_pg_rows(
    rows: &[sqlx::postgres::PgRow],
) -> Result<Vec<IdempotencyRecord>, StoreError> {
    rows.iter()
        .map(|row| Columns::from_row(row)?.record())
        .collect()
}

/// Deletes up to [`SWEEP_LIMIT`] expired records through the pool; returns
/// how many.
pub(crate) async fn sweep_sqlite(pool: &SqlitePool, live_after: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(SQLITE_SWEEP)
        .bind(live_after)
        .bind(SWEEP_LIMIT)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}

/// Deletes up to [`SWEEP_LIMIT`] expired records through the pool; returns
/// how many.
pub(crate) async fn sweep_postgres(pool: &PgPool, live_after: i64) -> Result<u64, StoreError> {
    let done = sqlx::query(PG_SWEEP)
        .bind(live_after)
        .bind(SWEEP_LIMIT)
        .execute(pool)
        .await?;
    Ok(done.rows_affected())
}
