//! The PostgreSQL writer: a task with a connection of its own that commits
//! whatever appends are waiting as one transaction (group commit), planning
//! against what it remembers of the log when it can (one round trip) and
//! against a snapshot read under the append lock when it must.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use larder_bus::EventBus;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection};
use sqlx::{Arguments, ColumnIndex, ConnectOptions, Connection, Decode, Row, Type};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::batch::{Callers, WriteRequest, answer, take_batch, to_i64, to_u64};
use crate::idempotency::{self, Columns, CommandKey, IdempotencyRecord};
use crate::plan::{self, Location, Plan, Snapshot};
use crate::{ExpectedVersion, RecordedEvent, StoreError, StreamAppend};

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

/// Opens the writer's own connection, outside the read pool (no acquire per
/// batch, and readers keep every pooled one), and starts the writer task.
/// It runs until every handle to the store is dropped (the queue closes).
pub(crate) async fn spawn(
    connect: PgConnectOptions,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    queue: mpsc::Receiver<WriteRequest>,
    max_batch_events: usize,
    retention: std::time::Duration,
) -> Result<(), StoreError> {
    let connection = connect.connect().await?;
    tokio::spawn(run_writer(
        PgWriter {
            connect,
            connection: Some(connection),
            known: Known::default(),
            retention,
            swept: std::time::Instant::now(),
        },
        bus,
        queue,
        max_batch_events,
    ));
    Ok(())
}

/// The PostgreSQL writer's own connection, reopened after any error (the
/// error may have been the connection's), and what the writer knows of the
/// log, dropped with the connection.
struct PgWriter {
    connect: PgConnectOptions,
    connection: Option<PgConnection>,
    known: Known,
    /// How long idempotency records stay live.
    retention: std::time::Duration,
    /// When expired idempotency records were last swept.
    swept: std::time::Instant,
}

impl PgWriter {
    async fn commit(
        &mut self,
        requests: Vec<Vec<StreamAppend>>,
        keys: &[Vec<CommandKey>],
    ) -> Result<Plan, StoreError> {
        let connection = match &mut self.connection {
            Some(connection) => connection,
            None => self.connection.insert(self.connect.connect().await?),
        };
        let live_after = idempotency::live_after(self.retention);
        let committed =
            commit_postgres(connection, &mut self.known, requests, keys, live_after).await;
        if committed.is_err() {
            self.connection = None;
            self.known = Known::default();
        }
        committed
    }

    /// Deletes a bounded number of expired idempotency records, at most
    /// once per [`idempotency::SWEEP_EVERY`] (autocommit: one short
    /// statement, no append lock: records are only ever read under it).
    async fn sweep_now_and_then(&mut self) {
        if self.swept.elapsed() < idempotency::SWEEP_EVERY {
            return;
        }
        self.swept = std::time::Instant::now();
        let Some(connection) = &mut self.connection else {
            return;
        };
        let swept = sqlx::query(idempotency::PG_SWEEP)
            .bind(idempotency::live_after(self.retention))
            .bind(idempotency::SWEEP_LIMIT)
            .execute(&mut *connection)
            .await;
        if let Err(error) = swept {
            tracing::warn!(%error, "sweeping expired idempotency keys failed");
        }
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
    /// A snapshot to plan `requests` against, if the version of every
    /// stream they touch is known or expected. It has no stored ids: the
    /// insert's unique index finds those. A stream's version is the first
    /// exact expectation of the batch for it, else the remembered one (the
    /// append function checks it either way): a caller that read the stream
    /// since another node appended to it plans on what it read, not on what
    /// this writer last saw. The head is where planning starts; the function
    /// places the batch after the head it finds.
    fn snapshot(&self, requests: &[Vec<StreamAppend>]) -> Option<Snapshot> {
        let mut versions = HashMap::new();
        for append in requests.iter().flatten() {
            if versions.contains_key(&append.stream) {
                continue;
            }
            let version = match append.expected {
                ExpectedVersion::Exact(version) => version,
                ExpectedVersion::NoStream => 0,
                ExpectedVersion::Any => *self.versions.get(&append.stream)?,
            };
            versions.insert(append.stream.clone(), version);
        }
        Some(Snapshot {
            head: self.head.unwrap_or(0),
            versions,
            existing: HashMap::new(),
            keys: HashMap::new(),
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

        let (requests, keys, callers) = Callers::split(batch);
        match writer.commit(requests, &keys).await {
            Ok(Plan {
                rows,
                outcomes,
                replayed,
                ..
            }) => {
                let answers = callers.committed(rows.len(), outcomes, replayed);
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
        writer.sweep_now_and_then().await;
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
/// Fast path, one round trip: when every stream of the batch has a known or
/// expected version ([`Known::snapshot`]) and every request is accepted
/// against it, the batch is planned against it and the rows go to
/// `larder_append_at` (migration 0006) in autocommit. Under the append lock
/// it checks that the streams' versions are the ones planned against,
/// inserts the rows right after the head it finds there, and the
/// statement's transaction commits. The rows' positions are then moved by
/// as much as the head had moved: positions and versions are exactly those
/// the slow path would have assigned. Other nodes' appends move the head,
/// not the streams this batch writes, so they do not send it down the slow
/// path.
///
/// Slow path, four round trips, when a stream's version is neither known
/// nor expected, when a request would be refused on that state (it may be
/// a retry, which only the stored ids can tell: a refusal is never answered
/// from memory), when two requests of the batch share an event id, when
/// the function finds a stream moved (another writer appended to it), or
/// when an event id is already stored (a retry planned as new):
/// [`commit_locked`]. So does every batch with an idempotency key: its keys
/// are read under the lock.
async fn commit_postgres(
    connection: &mut PgConnection,
    known: &mut Known,
    requests: Vec<Vec<StreamAppend>>,
    keys: &[Vec<CommandKey>],
    live_after: i64,
) -> Result<Plan, StoreError> {
    let recorded_at = Utc::now();
    let keyed = keys.iter().any(|keys| !keys.is_empty());
    let snapshot = match known.snapshot(&requests) {
        Some(snapshot) if !keyed && plan::accepts_all(&snapshot, &requests) => snapshot,
        _ => {
            let keys = Keys { keys, live_after };
            return commit_locked(connection, known, requests, keys, recorded_at).await;
        }
    };
    let head = snapshot.head;
    let (check_streams, check_versions): (Vec<String>, Vec<i64>) = snapshot
        .versions
        .iter()
        .map(|(stream, version)| (stream.clone(), to_i64(*version)))
        .unzip();
    let shapes = plan::shapes(&requests);
    let plan = plan::plan_keyed(snapshot, requests, &[], recorded_at);
    let mut arguments = PgArguments::default();
    arguments
        .add(to_i64(head))
        .and_then(|()| arguments.add(&check_streams))
        .and_then(|()| arguments.add(&check_versions))
        .map_err(|e| StoreError::from(sqlx::Error::Encode(e)))?;
    add_rows(&mut arguments, &plan.rows, recorded_at)?;
    let appended = sqlx::query_scalar_with::<_, i64, _>(PG_APPEND, arguments)
        .fetch_one(&mut *connection)
        .await;
    match appended {
        Ok(found) if found >= 0 => {
            let plan = moved_to(plan, head, to_u64(found));
            known.record(&plan.rows);
            return Ok(plan);
        }
        // A stream moved since: decide again on a fresh snapshot.
        Ok(_) => {}
        Err(sqlx::Error::Database(error)) if error.constraint() == Some(EVENT_ID_KEY) => {
            tracing::debug!("an event id of the batch is stored; deciding it on a snapshot");
        }
        Err(error) => return Err(error.into()),
    }
    let requests = plan::unplan(shapes, plan.rows);
    let keys = Keys {
        keys: &[],
        live_after,
    };
    commit_locked(connection, known, requests, keys, recorded_at).await
}

/// `plan`, planned after head `planned` and written after head `found`:
/// every position moves by the difference. A fast-path plan appends only
/// (no replays, no keys), so rows and outcomes hold every position.
fn moved_to(mut plan: Plan, planned: u64, found: u64) -> Plan {
    if found == planned {
        return plan;
    }
    let shift = |position: u64| position - planned + found;
    for row in &mut plan.rows {
        row.position = shift(row.position);
    }
    for result in plan.outcomes.iter_mut().flatten() {
        result.last_position = shift(result.last_position);
    }
    plan
}

/// A batch's idempotency keys (`keys[i]` for request `i`), and the commit
/// time a record must be newer than to be live.
struct Keys<'k> {
    keys: &'k [Vec<CommandKey>],
    live_after: i64,
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
    keys: Keys<'_>,
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
    let mut snapshot = snapshot;
    if keys.keys.iter().any(|keys| !keys.is_empty()) {
        let (tenants, names): (Vec<&str>, Vec<&str>) = keys
            .keys
            .iter()
            .flatten()
            .map(|k| (k.idempotency.tenant.as_str(), k.idempotency.key.as_str()))
            .unzip();
        let rows = sqlx::query(idempotency::PG_SELECT)
            .bind(&tenants)
            .bind(&names)
            .bind(keys.live_after)
            .fetch_all(&mut *tx)
            .await?;
        for record in idempotency::from_pg_rows(&rows)? {
            snapshot
                .keys
                .insert((record.tenant.clone(), record.key.clone()), record);
        }
    }
    known.refresh(snapshot.head, &snapshot.versions);
    let plan = plan::plan_keyed(snapshot, requests, keys.keys, recorded_at);
    if plan.rows.is_empty() && plan.new_keys.is_empty() {
        tx.rollback().await?;
        return Ok(plan);
    }
    if !plan.rows.is_empty() {
        let mut arguments = PgArguments::default();
        add_rows(&mut arguments, &plan.rows, recorded_at)?;
        sqlx::query_with(PG_INSERT, arguments)
            .execute(&mut *tx)
            .await?;
    }
    insert_keys(&mut tx, &plan.new_keys).await?;
    tx.commit().await?;
    known.record(&plan.rows);
    Ok(plan)
}

/// Stores the idempotency records of a plan's accepted requests, in one
/// statement.
async fn insert_keys(
    connection: &mut PgConnection,
    records: &[IdempotencyRecord],
) -> Result<(), StoreError> {
    if records.is_empty() {
        return Ok(());
    }
    let columns: Vec<Columns> = records.iter().map(Columns::of).collect();
    let text = |f: &dyn Fn(&Columns) -> &str| columns.iter().map(f).collect::<Vec<_>>();
    let number = |f: &dyn Fn(&Columns) -> i64| columns.iter().map(f).collect::<Vec<_>>();
    let statuses: Vec<i32> = columns
        .iter()
        .map(|c| i32::try_from(c.status).unwrap_or(i32::MAX))
        .collect();
    sqlx::query(idempotency::PG_UPSERT)
        .bind(text(&|c| &c.tenant))
        .bind(text(&|c| &c.key))
        .bind(text(&|c| &c.fingerprint))
        .bind(statuses)
        .bind(text(&|c| &c.response))
        .bind(text(&|c| &c.streams))
        .bind(number(&|c| c.last_position))
        .bind(number(&|c| c.created_at))
        .execute(&mut *connection)
        .await?;
    Ok(())
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

/// The fast path's one statement: `larder_append_at(planned head, streams,
/// versions,` then the parameters of [`PG_INSERT`] in its order (see
/// migration 0006).
const PG_APPEND: &str = "SELECT larder_append_at($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, \
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
            include_str!("../migrations/postgres/0006_append_at_head.sql"),
        ] {
            assert!(migration.contains(&format!(
                "pg_advisory_xact_lock({class}, hashtext(current_schema()))"
            )));
        }
    }
}
