//! The SQLite writer: one OS thread that owns a synchronous SQLite
//! connection and commits every batch of appends on it.
//!
//! Appends reach the thread through the store's bounded queue and are
//! answered through their oneshot channels, so a batch costs one hand-off in
//! and one out, whatever the number of statements in its transaction. (sqlx
//! runs each SQLite connection on a worker thread too, but hands every
//! statement over and back, which cost more than SQLite itself.) Reads and
//! migrations stay on sqlx.
//!
//! The transaction is the one the rest of the store relies on: `BEGIN
//! IMMEDIATE` (the write lock, so the head read under it is the head),
//! the snapshot, the decisions ([`crate::plan`]), the inserts, `COMMIT`, and
//! only then publishing to the bus and answering.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use larder_bus::{BusError, EventBus};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::plan::{self, Location, Plan, PreparedAppend, Snapshot};
use crate::sql::{Reply, WriteRequest, take_batch};
use crate::{RecordedEvent, StoreError};

/// Where and how the writer opens its connection: the same file (or shared
/// in-memory database) as the store's sqlx pools, after the migrations ran.
#[derive(Debug, Clone)]
pub(crate) struct SqliteTarget {
    /// The name sqlx passes to `sqlite3_open_v2` (a path, or a `file:` URI).
    pub filename: String,
    /// A shared-cache in-memory database (`sqlite::memory:`, `mode=memory`).
    pub in_memory: bool,
    pub busy_timeout: Duration,
}

impl SqliteTarget {
    /// Opens the writer's connection with the store's pragmas: WAL,
    /// `synchronous=NORMAL` (a process crash loses nothing, a power loss may
    /// lose the last commits), the busy timeout and foreign keys.
    pub(crate) fn open(&self) -> Result<Connection, StoreError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        flags |= if self.in_memory {
            OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE
        } else {
            OpenFlags::SQLITE_OPEN_PRIVATE_CACHE
        };
        let connection = Connection::open_with_flags(&self.filename, flags)?;
        connection.busy_timeout(self.busy_timeout)?;
        // An in-memory database answers `memory`: it has no WAL to keep.
        connection
            .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get::<_, String>(0))?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.set_prepared_statement_cache_capacity(16);
        Ok(connection)
    }
}

/// Starts the writer thread. It runs until every handle to the store is
/// dropped (the queue closes), then closes its connection.
pub(crate) fn spawn(
    connection: Connection,
    queue: mpsc::Receiver<WriteRequest>,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    max_batch_events: usize,
) -> Result<(), StoreError> {
    let publisher = bus.map(Publisher::start);
    std::thread::Builder::new()
        .name("larder-sqlite-writer".into())
        .spawn(move || run(connection, queue, publisher, max_batch_events))
        .map(drop)
        .map_err(|error| StoreError::Unavailable(Arc::new(sqlx::Error::Io(error))))
}

fn run(
    mut connection: Connection,
    mut queue: mpsc::Receiver<WriteRequest>,
    publisher: Option<Publisher>,
    max_batch_events: usize,
) {
    let mut carried: Option<WriteRequest> = None;
    loop {
        let first = match carried.take() {
            Some(request) => request,
            None => match next_request(&mut queue) {
                Some(request) => request,
                None => break,
            },
        };
        let (batch, next) = take_batch(first, &mut queue, max_batch_events);
        carried = next;

        let (requests, replies): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|r| (r.appends, r.reply)).unzip();
        let count = requests.len();
        let started = Instant::now();
        match commit(&mut connection, requests) {
            Ok(Plan { rows, outcomes }) => {
                tracing::debug!(
                    requests = count,
                    events = rows.len(),
                    elapsed_us = started.elapsed().as_micros() as u64,
                    "committed append batch"
                );
                let answers = replies.into_iter().zip(outcomes).collect();
                let events = rows.into_iter().map(|row| Arc::new(row.event)).collect();
                match &publisher {
                    Some(publisher) => publisher.deliver(events, answers),
                    None => answer(answers),
                }
            }
            Err(error) => {
                tracing::error!(%error, requests = count, "append batch failed");
                for reply in replies {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

/// How long the writer keeps looking for the next append before it sleeps.
/// A caller that gets its answer and appends again (a command handler, an
/// import) is usually back within this time, and finding its append without
/// a wake-up saves the thread a sleep and the caller a wake-up call.
const SPIN: Duration = Duration::from_micros(50);

fn next_request(queue: &mut mpsc::Receiver<WriteRequest>) -> Option<WriteRequest> {
    let started = Instant::now();
    loop {
        match queue.try_recv() {
            Ok(request) => return Some(request),
            Err(mpsc::error::TryRecvError::Disconnected) => return None,
            Err(mpsc::error::TryRecvError::Empty) if started.elapsed() < SPIN => {
                std::thread::yield_now();
            }
            Err(mpsc::error::TryRecvError::Empty) => return queue.blocking_recv(),
        }
    }
}

type Answers = Vec<(Reply, Result<crate::AppendResult, StoreError>)>;

fn answer(answers: Answers) {
    for (reply, outcome) in answers {
        // The caller may have gone away; its append stands.
        let _ = reply.send(outcome);
    }
}

/// Publishes committed batches in commit order, each before its callers are
/// answered. A publish that completes at once (an in-process bus) runs on
/// the writer thread; one that has to wait finishes on a tokio task, and the
/// batches after it queue behind it there, so the order holds.
struct Publisher {
    bus: Arc<dyn EventBus<RecordedEvent>>,
    runtime: tokio::runtime::Handle,
    waiting: mpsc::Sender<Waiting>,
    /// Batches handed to the task and not yet answered.
    behind: Arc<AtomicUsize>,
}

type Publish = Pin<Box<dyn Future<Output = Result<(), BusError>> + Send>>;

struct Waiting {
    publish: Publish,
    answers: Answers,
}

impl Publisher {
    /// Must be called inside the runtime (it spawns the waiting task).
    fn start(bus: Arc<dyn EventBus<RecordedEvent>>) -> Self {
        let (waiting, mut queue) = mpsc::channel::<Waiting>(64);
        let behind = Arc::new(AtomicUsize::new(0));
        let done = behind.clone();
        tokio::spawn(async move {
            while let Some(Waiting { publish, answers }) = queue.recv().await {
                report(publish.await);
                answer(answers);
                done.fetch_sub(1, Ordering::Release);
            }
        });
        Self {
            bus,
            runtime: tokio::runtime::Handle::current(),
            waiting,
            behind,
        }
    }

    fn deliver(&self, events: Vec<Arc<RecordedEvent>>, answers: Answers) {
        if events.is_empty() && self.behind.load(Ordering::Acquire) == 0 {
            return answer(answers);
        }
        let bus = self.bus.clone();
        let mut publish: Publish = Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            bus.publish(events).await
        });
        if self.behind.load(Ordering::Acquire) == 0 {
            // Nothing is waiting before this batch: try to publish here.
            let _runtime = self.runtime.enter();
            let mut context = Context::from_waker(Waker::noop());
            if let Poll::Ready(result) = publish.as_mut().poll(&mut context) {
                report(result);
                return answer(answers);
            }
        }
        self.behind.fetch_add(1, Ordering::AcqRel);
        if let Err(error) = self.waiting.blocking_send(Waiting { publish, answers }) {
            // The runtime is gone: nobody can publish or be answered.
            self.behind.fetch_sub(1, Ordering::Release);
            drop(error);
        }
    }
}

fn report(result: Result<(), BusError>) {
    // A failed publish loses nothing; consumers refill from the store.
    if let Err(error) = result {
        tracing::warn!(%error, "publishing committed events failed; consumers will refill from the store");
    }
}

// Each read is one index probe: the head is the last rowid, a stream's
// version the last entry of its (stream, version) index, an id one entry
// of the unique id index.
const HEAD: &str = "SELECT COALESCE(MAX(position), 0) FROM events";
const VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1";
const STORED: &str = "SELECT stream, version, position FROM events WHERE id = ?1";
const INSERT: &str = "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, \
     tenant, store_id, entity_type, entity_id, actor, session, correlation_id, causation_id, recorded_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)";

/// Decides and writes one batch in one transaction.
fn commit(
    connection: &mut Connection,
    requests: Vec<Vec<PreparedAppend>>,
) -> Result<Plan, StoreError> {
    // Dropping the transaction without committing rolls it back.
    let tx = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let snapshot = read_snapshot(&tx, &requests)?;
    let recorded_at = Utc::now();
    let plan = plan::plan(snapshot, requests, recorded_at);
    if plan.rows.is_empty() {
        return Ok(plan);
    }
    // Stored as sqlx stores a `DateTime<Utc>`, so reads decode it alike.
    let recorded_at = recorded_at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
    {
        let mut insert = tx.prepare_cached(INSERT)?;
        let mut id = Uuid::encode_buffer();
        let mut correlation = Uuid::encode_buffer();
        let mut causation = Uuid::encode_buffer();
        for row in &plan.rows {
            let e = &row.event;
            let m = &e.metadata;
            insert.execute(params![
                to_i64(e.position),
                &*e.id.hyphenated().encode_lower(&mut id),
                e.stream,
                to_i64(e.version),
                e.event_type,
                i64::from(e.schema_version),
                row.data_json,
                m.tenant,
                m.store,
                m.entity_type,
                m.entity_id,
                m.actor,
                m.session,
                encode(m.correlation_id, &mut correlation),
                encode(m.causation_id, &mut causation),
                recorded_at,
            ])?;
        }
    }
    tx.commit()?;
    Ok(plan)
}

/// Reads what the batch is decided against, under the write lock: the head,
/// the versions of its streams, which of its event ids are stored.
fn read_snapshot(
    tx: &rusqlite::Transaction<'_>,
    requests: &[Vec<PreparedAppend>],
) -> Result<Snapshot, StoreError> {
    let mut snapshot = Snapshot {
        head: to_u64(tx.prepare_cached(HEAD)?.query_row([], |row| row.get(0))?),
        ..Snapshot::default()
    };
    let mut version = tx.prepare_cached(VERSION)?;
    let mut stored = tx.prepare_cached(STORED)?;
    let mut buffer = Uuid::encode_buffer();
    for append in requests.iter().flatten() {
        if !snapshot.versions.contains_key(&append.stream) {
            let current: i64 = version.query_row([&append.stream], |row| row.get(0))?;
            snapshot
                .versions
                .insert(append.stream.clone(), to_u64(current));
        }
        for prepared in &append.events {
            let id = prepared.event.id;
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
    }
    Ok(snapshot)
}

/// An optional id as text, written into `buffer` (no allocation).
fn encode(id: Option<Uuid>, buffer: &mut [u8; 45]) -> Option<&str> {
    match id {
        Some(id) => Some(id.hyphenated().encode_lower(buffer)),
        None => None,
    }
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}
