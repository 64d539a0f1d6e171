//! The SQLite writer's transaction: reading what a batch is decided
//! against, deciding it ([`crate::plan`]) and inserting its rows.

use chrono::{SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension};
use uuid::Uuid;

use crate::batch::{to_i64, to_u64};
use crate::idempotency::{self, Columns, CommandKey, IdempotencyRecord};
use crate::plan::{self, Location, Plan, Snapshot};
use crate::{RecordedEvent, StoreError, StreamAppend};

// Each read is one index probe: the head is the last rowid, a stream's
// version the last entry of its (stream, version) index, an id one entry
// of the unique id index.
const HEAD: &str = "SELECT COALESCE(MAX(position), 0) FROM events";
const VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1";
const STORED: &str = "SELECT stream, version, position FROM events WHERE id = ?1";
const INSERT: &str = "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, \
     tenant, store_id, entity_type, entity_id, actor, session, correlation_id, causation_id, recorded_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";
/// Removes what this transaction inserted above the head it read: under the
/// write lock, those rows are its own.
const UNDO: &str = "DELETE FROM events WHERE position > ?1";

/// A `BEGIN IMMEDIATE` transaction on the writer's connection, begun and
/// committed by cached statements: preparing `BEGIN` and `COMMIT` anew for
/// every transaction, as `rusqlite::Transaction` does, costs a single-event
/// append a few percent. Dropped without [`Immediate::commit`], it rolls
/// back.
pub(super) struct Immediate<'c> {
    connection: &'c Connection,
}

impl<'c> Immediate<'c> {
    pub(super) fn begin(connection: &'c Connection) -> rusqlite::Result<Self> {
        connection.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(Self { connection })
    }

    fn commit(self) -> rusqlite::Result<()> {
        self.connection.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    }
}

impl std::ops::Deref for Immediate<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.connection
    }
}

impl Drop for Immediate<'_> {
    fn drop(&mut self) {
        // After a commit the connection is back in autocommit mode; a failed
        // commit may have ended the transaction too.
        if !self.connection.is_autocommit()
            && let Err(error) = self.connection.execute_batch("ROLLBACK")
        {
            tracing::warn!(%error, "rolling back an SQLite append failed");
        }
    }
}

/// Decides and writes one batch in one transaction.
///
/// It first decides on the head and the stream versions alone. When that
/// accepts every request (the usual case: each writer appends at the version
/// it last saw), the unique index on event ids is the idempotency check, with
/// no look-up per event. If an insert finds its id stored (a retry, planned as
/// new), the rows inserted so far are removed and the batch is decided again,
/// this time knowing which of its ids are stored, as every refused batch is.
///
/// A batch with an idempotency key reads the live records of its keys with
/// the snapshot and takes the second way at once (a request answered by a
/// record inserts no rows, so its plan could not be taken back apart); the
/// records of its accepted requests are inserted before the commit.
pub(super) fn commit(
    tx: Immediate<'_>,
    requests: Vec<Vec<StreamAppend>>,
    keys: &[Vec<CommandKey>],
    retention: std::time::Duration,
) -> Result<Plan, StoreError> {
    // Dropping the transaction without committing rolls it back.
    let recorded_at = Utc::now();
    // Stored as sqlx stores a `DateTime<Utc>`, so reads decode it alike.
    let stamp = recorded_at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
    let snapshot = read_versions(&tx, &requests)?;
    let keyed = keys.iter().any(|keys| !keys.is_empty());
    let (mut snapshot, requests) = if !keyed && plan::accepts_all(&snapshot, &requests) {
        let head = snapshot.head;
        let shapes = plan::shapes(&requests);
        let plan = plan::plan_keyed(snapshot, requests, &[], recorded_at);
        match insert(&tx, &plan.rows, &stamp) {
            Ok(()) => {
                tx.commit()?;
                return Ok(plan);
            }
            Err(error) if is_duplicate_id(&error) => {
                tracing::debug!(
                    "an event id of the batch is stored; deciding it on its stored ids"
                );
                tx.execute(UNDO, [to_i64(head)])?;
                // The plan took the snapshot; the undo restored what it read.
                let requests = plan::unplan(shapes, plan.rows);
                (read_versions(&tx, &requests)?, requests)
            }
            Err(error) => return Err(error.into()),
        }
    } else {
        (snapshot, requests)
    };
    read_stored(&tx, &requests, &mut snapshot)?;
    if keyed {
        read_keys(&tx, keys, idempotency::live_after(retention), &mut snapshot)?;
    }
    let plan = plan::plan_keyed(snapshot, requests, keys, recorded_at);
    insert(&tx, &plan.rows, &stamp)?;
    insert_keys(&tx, &plan.new_keys)?;
    tx.commit()?;
    Ok(plan)
}

/// Adds to `snapshot` the live records of the batch's idempotency keys.
fn read_keys(
    tx: &Connection,
    keys: &[Vec<CommandKey>],
    live_after: i64,
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    let mut select = tx.prepare_cached(idempotency::SQLITE_SELECT)?;
    for key in keys.iter().flatten().map(|key| &key.idempotency) {
        let found = select
            .query_row(rusqlite::params![key.tenant, key.key, live_after], |row| {
                Ok(Columns {
                    tenant: row.get(0)?,
                    key: row.get(1)?,
                    fingerprint: row.get(2)?,
                    status: row.get(3)?,
                    response: row.get(4)?,
                    streams: row.get(5)?,
                    last_position: row.get(6)?,
                    created_at: row.get(7)?,
                })
            })
            .optional()?;
        if let Some(columns) = found {
            let record = columns.record()?;
            snapshot
                .keys
                .insert((record.tenant.clone(), record.key.clone()), record);
        }
    }
    Ok(())
}

/// Stores the idempotency records of a plan's accepted requests.
fn insert_keys(tx: &Connection, records: &[IdempotencyRecord]) -> rusqlite::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut upsert = tx.prepare_cached(idempotency::SQLITE_UPSERT)?;
    for record in records {
        let c = Columns::of(record);
        upsert.execute(rusqlite::params![
            c.tenant,
            c.key,
            c.fingerprint,
            c.status,
            c.response,
            c.streams,
            c.last_position,
            c.created_at
        ])?;
    }
    Ok(())
}

/// Deletes up to [`idempotency::SWEEP_LIMIT`] expired idempotency records
/// (autocommit: one short write of its own).
pub(super) fn sweep(
    connection: &Connection,
    retention: std::time::Duration,
) -> rusqlite::Result<usize> {
    connection
        .prepare_cached(idempotency::SQLITE_SWEEP)?
        .execute(rusqlite::params![
            idempotency::live_after(retention),
            idempotency::SWEEP_LIMIT
        ])
}

/// Inserts the rows of a plan, in position order.
///
/// SQLite keeps a statement's bound values from one execution to the next,
/// and binding text copies it; so a value is bound only when it differs from
/// the row before's (the events of one command share their metadata, stream
/// and recorded time). The statement comes from the cache with no values
/// bound, and goes back to it cleared.
fn insert(tx: &Connection, rows: &[RecordedEvent], stamp: &str) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut insert = tx.prepare_cached(INSERT)?;
    let mut id = Uuid::encode_buffer();
    let mut correlation = Uuid::encode_buffer();
    let mut causation = Uuid::encode_buffer();
    insert.raw_bind_parameter(16, stamp)?;
    let mut previous: Option<&RecordedEvent> = None;
    for e in rows {
        let m = &e.metadata;
        // Binds parameter `$index` to `$value` unless the row before had
        // the same `$field`.
        macro_rules! bind_changed {
            ($index:literal, $($field:ident).+, $value:expr) => {
                if previous.is_none_or(|before| before.$($field).+ != e.$($field).+) {
                    insert.raw_bind_parameter($index, $value)?;
                }
            };
        }
        insert.raw_bind_parameter(1, to_i64(e.position))?;
        insert.raw_bind_parameter(2, &*e.id.hyphenated().encode_lower(&mut id))?;
        bind_changed!(3, stream, &e.stream);
        insert.raw_bind_parameter(4, to_i64(e.version))?;
        bind_changed!(5, event_type, &e.event_type);
        insert.raw_bind_parameter(6, i64::from(e.schema_version))?;
        insert.raw_bind_parameter(7, e.data.json())?;
        bind_changed!(8, metadata.tenant, &m.tenant);
        bind_changed!(9, metadata.store, &m.store);
        bind_changed!(10, metadata.entity_type, &m.entity_type);
        bind_changed!(11, metadata.entity_id, &m.entity_id);
        bind_changed!(12, metadata.actor, &m.actor);
        bind_changed!(13, metadata.session, &m.session);
        bind_changed!(
            14,
            metadata.correlation_id,
            encode(m.correlation_id, &mut correlation)
        );
        bind_changed!(
            15,
            metadata.causation_id,
            encode(m.causation_id, &mut causation)
        );
        insert.raw_execute()?;
        previous = Some(e);
    }
    Ok(())
}

/// Whether an insert failed because its event id is already stored.
fn is_duplicate_id(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, Some(message))
            if failure.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && message.ends_with("events.id")
    )
}

/// Reads what a batch is first decided against, under the write lock: the
/// head and the versions of its streams.
fn read_versions(tx: &Connection, requests: &[Vec<StreamAppend>]) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot {
        head: to_u64(tx.prepare_cached(HEAD)?.query_row([], |row| row.get(0))?),
        ..Snapshot::default()
    };
    let mut version = tx.prepare_cached(VERSION)?;
    for append in requests.iter().flatten() {
        if !snapshot.versions.contains_key(&append.stream) {
            let current: i64 = version.query_row([&append.stream], |row| row.get(0))?;
            snapshot
                .versions
                .insert(append.stream.clone(), to_u64(current));
        }
    }
    Ok(snapshot)
}

/// Adds to `snapshot` which of the batch's event ids are stored, and where.
fn read_stored(
    tx: &Connection,
    requests: &[Vec<StreamAppend>],
    snapshot: &mut Snapshot,
) -> Result<(), StoreError> {
    let mut stored = tx.prepare_cached(STORED)?;
    let mut buffer = Uuid::encode_buffer();
    for event in requests.iter().flatten().flat_map(|a| &a.events) {
        let id = event.id;
        let found = stored
            .query_row([&*id.hyphenated().encode_lower(&mut buffer)], |row| {
                Ok(Location {
                    stream: row.get(0)?,
                    version: to_u64(row.get(1)?),
                    position: to_u64(row.get(2)?),
                })
            })
            .optional()?;
        if let Some(location) = found {
            snapshot.existing.insert(id, location);
        }
    }
    Ok(())
}

/// An optional id as text, written into `buffer` (no allocation).
fn encode(id: Option<Uuid>, buffer: &mut [u8; 45]) -> Option<&str> {
    match id {
        Some(id) => Some(id.hyphenated().encode_lower(buffer)),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(connection: &Connection) -> i64 {
        connection
            .query_row("SELECT COUNT(*) FROM t", [], |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn an_immediate_transaction_commits_or_rolls_back_when_dropped() {
        let connection = Connection::open_in_memory().unwrap();
        connection.execute_batch("CREATE TABLE t (x)").unwrap();

        let tx = Immediate::begin(&connection).unwrap();
        tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
        assert!(!connection.is_autocommit(), "the transaction is open");
        drop(tx);
        assert_eq!(count(&connection), 0, "dropped: rolled back");
        assert!(connection.is_autocommit());

        // Begun and committed again by the same cached statements.
        for _ in 0..2 {
            let tx = Immediate::begin(&connection).unwrap();
            tx.execute("INSERT INTO t VALUES (1)", []).unwrap();
            tx.commit().unwrap();
        }
        assert_eq!(count(&connection), 2);
        assert!(connection.is_autocommit());

        // A transaction already open: BEGIN fails, and dropping nothing
        // rolls back the other one.
        connection.execute_batch("BEGIN").unwrap();
        assert!(Immediate::begin(&connection).is_err());
        assert!(!connection.is_autocommit());
        connection.execute_batch("ROLLBACK").unwrap();
    }
}
