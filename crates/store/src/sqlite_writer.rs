//! The SQLite writer: one synchronous SQLite connection that commits every
//! append, a thread that feeds it batches, and a thread that checkpoints.
//!
//! The connection lives in a [`Writer`] behind a mutex. Two paths reach it:
//!
//! - **Inline.** A small append (at most [`INLINE_MAX_EVENTS`] events) made
//!   while no other append is in progress, finding the connection free,
//!   commits on the caller's own thread: no hand-off to another thread and
//!   back, which on a small machine costs more than the transaction itself.
//! - **Queued.** Everything else goes through the store's bounded queue to
//!   the writer thread, which commits whatever is waiting as one
//!   transaction (group commit) and answers each append through its
//!   oneshot channel. Under load the queue fills and appends share commits.
//!
//! Either way the transaction is the one the rest of the store relies on:
//! `BEGIN IMMEDIATE` (the write lock, so the head read under it is the head),
//! the snapshot, the decisions ([`crate::plan`]), the inserts, `COMMIT`, and
//! only then publishing to the bus and answering, all while holding the
//! mutex, so batches are published in commit order.
//!
//! Checkpoints (copying the WAL back into the database file and syncing it)
//! run on a connection of their own on the checkpoint thread, woken once
//! about 1,000 pages have gone to the WAL (SQLite's own threshold), so
//! appends do not pay for them. Once the WAL is long, the thread finishes a
//! checkpoint while holding the writer, so that the WAL starts over from its
//! beginning even under constant writes (see [`spawn_checkpointer`]). The
//! writer's connection keeps SQLite's automatic checkpoint as a backstop, at
//! a higher threshold.
//! (sqlx runs each SQLite connection on a worker thread too, but hands every
//! statement over and back.) Reads and migrations stay on sqlx.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use larder_bus::{BusError, EventBus};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::batch::{Answers, Callers, WriteRequest, answer, take_batch, to_i64, to_u64};
use crate::plan::{self, Location, Plan, Snapshot};
use crate::{AppendResult, RecordedEvent, StoreError, StreamAppend};

/// The most events an append may carry to be committed on the caller's
/// thread. A commit of this size takes a few hundred microseconds; larger
/// ones go to the writer thread rather than hold up the caller's runtime
/// worker.
pub(crate) const INLINE_MAX_EVENTS: usize = 128;

/// WAL pages after which the writer's own connection checkpoints, if the
/// checkpoint thread has not kept the WAL short (SQLite's default is 1,000;
/// the thread starts the WAL over from [`RESTART_AFTER_PAGES`]).
const WRITER_AUTOCHECKPOINT_PAGES: u32 = 16_000;

/// How often, at most, the checkpoint thread checkpoints while appends
/// keep coming.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(50);

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
    /// Opens a connection with the store's pragmas: WAL,
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

/// The writer's connection and what follows a commit, shared by the writer
/// thread and every handle of the store.
pub(crate) struct Writer {
    core: Mutex<Core>,
    /// Appends in progress through this store (either path).
    in_flight: AtomicUsize,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

struct Core {
    connection: Connection,
    publisher: Option<Publisher>,
    /// The checkpoint thread (absent for an in-memory database).
    checkpoints: Option<Checkpoints>,
    busy_timeout: Duration,
}

/// Opens the writer's connection, starts the writer and checkpoint threads.
/// They run until every handle to the store is dropped (the queue closes).
pub(crate) fn spawn(
    target: &SqliteTarget,
    queue: mpsc::Receiver<WriteRequest>,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    max_batch_events: usize,
) -> Result<Arc<Writer>, StoreError> {
    let connection = target.open()?;
    let (checkpoints, checkpointer) = if target.in_memory {
        (None, None)
    } else {
        connection.pragma_update(None, "wal_autocheckpoint", WRITER_AUTOCHECKPOINT_PAGES)?;
        let (wake, woken) = sync_channel::<()>(1);
        let checkpoints = Checkpoints { wake, frames: 0 };
        (Some(checkpoints), Some((target.open()?, woken)))
    };
    let writer = Arc::new(Writer {
        core: Mutex::new(Core {
            connection,
            publisher: bus.map(Publisher::start),
            checkpoints,
            busy_timeout: target.busy_timeout,
        }),
        in_flight: AtomicUsize::new(0),
    });
    if let Some((connection, woken)) = checkpointer {
        spawn_checkpointer(connection, woken, Arc::downgrade(&writer))?;
    }
    let shared = writer.clone();
    std::thread::Builder::new()
        .name("larder-sqlite-writer".into())
        .spawn(move || run(&shared, queue, max_batch_events))
        .map_err(thread_error)?;
    Ok(writer)
}

fn thread_error(error: std::io::Error) -> StoreError {
    StoreError::Unavailable(Arc::new(error))
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic while committing dropped its transaction (rolled back):
        // the connection is usable.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts an append in progress until the guard is dropped; the guard
    /// says whether the append was the only one when it started.
    pub(crate) fn enter(&self) -> InFlight<'_> {
        let others = self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            writer: self,
            alone: others == 0,
        }
    }

    /// Commits `appends` on the caller's thread if the connection is free;
    /// hands them back if it is busy.
    pub(crate) fn try_inline(
        &self,
        appends: Vec<StreamAppend>,
    ) -> Result<oneshot::Receiver<Result<AppendResult, StoreError>>, Vec<StreamAppend>> {
        let mut core = match self.core.try_lock() {
            Ok(core) => core,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(appends),
        };
        core.try_inline(appends)
    }
}

/// An append in progress (see [`Writer::enter`]).
pub(crate) struct InFlight<'a> {
    writer: &'a Writer,
    /// No other append was in progress when this one started: committing it
    /// inline cannot take a place in a shared commit from anyone.
    pub alone: bool,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.writer.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The writer thread: takes whatever appends are waiting (up to a bound),
/// commits them as one transaction, publishes, and answers each.
fn run(writer: &Writer, mut queue: mpsc::Receiver<WriteRequest>, max_batch_events: usize) {
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
        writer.lock().run_batch(batch);
    }
}

impl Core {
    /// Commits a small append on the caller's thread, unless SQLite's write
    /// lock is taken (by a read model's transaction, or another process):
    /// then it hands the append back for the writer thread. A runtime
    /// thread must never wait for that lock: the transaction holding it may
    /// need this very thread to finish.
    fn try_inline(
        &mut self,
        appends: Vec<StreamAppend>,
    ) -> Result<oneshot::Receiver<Result<AppendResult, StoreError>>, Vec<StreamAppend>> {
        if self.connection.busy_timeout(Duration::ZERO).is_err() {
            return Err(appends);
        }
        let Ok(tx) = Immediate::begin(&self.connection) else {
            let _ = self.connection.busy_timeout(self.busy_timeout);
            return Err(appends);
        };
        if let Err(error) = tx.busy_timeout(self.busy_timeout) {
            tracing::warn!(%error, "resetting the SQLite busy timeout failed");
        }
        let (reply, answer) = oneshot::channel();
        let batch = vec![WriteRequest { appends, reply }];
        finish(
            Ok(tx),
            batch,
            &mut self.checkpoints,
            self.publisher.as_ref(),
        );
        Ok(answer)
    }

    /// Commits one batch, waiting for the write lock if it must, then
    /// publishes it and answers its appends.
    fn run_batch(&mut self, batch: Vec<WriteRequest>) {
        let tx = Immediate::begin(&self.connection);
        finish(tx, batch, &mut self.checkpoints, self.publisher.as_ref());
    }
}

/// Decides and commits `batch` in the transaction `tx` has begun, then
/// publishes and answers.
fn finish(
    tx: rusqlite::Result<Immediate<'_>>,
    batch: Vec<WriteRequest>,
    checkpoints: &mut Option<Checkpoints>,
    publisher: Option<&Publisher>,
) {
    let (requests, callers) = Callers::split(batch);
    match tx
        .map_err(StoreError::from)
        .and_then(|tx| commit(tx, requests))
    {
        Ok(Plan { rows, outcomes }) => {
            let answers = callers.committed(rows.len(), outcomes);
            if !rows.is_empty()
                && let Some(thread) = checkpoints
                && !thread.committed(rows.len())
            {
                tracing::warn!("the SQLite checkpoint thread has stopped");
                *checkpoints = None;
            }
            let events = rows.into_iter().map(Arc::new).collect();
            match publisher {
                Some(publisher) => publisher.deliver(events, answers),
                None => answer(answers),
            }
        }
        Err(error) => callers.failed(error),
    }
}

/// WAL pages, as the writer estimates them, after which it wakes the
/// checkpoint thread: SQLite's own default threshold.
const CHECKPOINT_AFTER_FRAMES: usize = 1_000;

/// The writer's side of the checkpoint thread.
struct Checkpoints {
    wake: SyncSender<()>,
    /// WAL pages written since the thread was last woken, estimated: a
    /// commit writes the table's last page and one page of each index (3),
    /// and a page holds about eight events.
    frames: usize,
}

impl Checkpoints {
    /// Counts a commit of `events` events; wakes the thread when enough
    /// pages have gone to the WAL. False when the thread has stopped.
    fn committed(&mut self, events: usize) -> bool {
        self.frames += 3 + events / 8;
        if self.frames < CHECKPOINT_AFTER_FRAMES {
            return true;
        }
        self.frames = 0;
        !matches!(self.wake.try_send(()), Err(TrySendError::Disconnected(())))
    }
}

/// Starts the checkpoint thread on its own connection. Woken by the writer,
/// it copies what the WAL holds back into the database file (a passive
/// checkpoint: it never waits for the writer or for readers), then rests
/// [`CHECKPOINT_INTERVAL`] before the next one. It stops when the writer is
/// gone.
///
/// Under constant writes a passive checkpoint never reaches the end of the
/// WAL (commits add frames while it copies), and the WAL can only start over
/// from its beginning once every frame is copied. So when the WAL has grown
/// past [`RESTART_AFTER_PAGES`], the thread copies the rest while holding the
/// writer (no commit can add frames meanwhile): little is left by then, and
/// the next commit starts the WAL over. Appends wait for that short catch-up
/// instead of for the writer's own automatic checkpoint, which copies and
/// syncs everything the thread has not.
fn spawn_checkpointer(
    connection: Connection,
    woken: Receiver<()>,
    writer: Weak<Writer>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("larder-sqlite-checkpoint".into())
        .spawn(move || {
            while woken.recv().is_ok() {
                if let Some(wal_pages) = checkpoint(&connection)
                    && wal_pages >= RESTART_AFTER_PAGES
                {
                    // Once more without the writer: what commits added while
                    // the first copied, so that less is left for the part
                    // that holds appends up.
                    checkpoint(&connection);
                    let Some(writer) = writer.upgrade() else {
                        break;
                    };
                    let _core = writer.lock();
                    checkpoint(&connection);
                }
                std::thread::sleep(CHECKPOINT_INTERVAL);
            }
        })
        .map_err(thread_error)?;
    Ok(())
}

/// WAL pages after which the checkpoint thread finishes a checkpoint while
/// holding the writer, so that the WAL starts over.
const RESTART_AFTER_PAGES: i64 = 4_000;

/// Runs a passive checkpoint; the WAL's size in pages, if it ran.
fn checkpoint(connection: &Connection) -> Option<i64> {
    let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        Ok((row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
    });
    match result {
        Ok((wal_pages, copied)) => {
            tracing::trace!(wal_pages, copied, "checkpointed");
            Some(wal_pages)
        }
        Err(error) => {
            tracing::warn!(%error, "SQLite checkpoint failed");
            None
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

/// Publishes committed batches in commit order, each before its callers are
/// answered. A publish that completes at once (an in-process bus) runs on
/// the writer thread; one that has to wait finishes on a tokio task, and the
/// batches after it queue behind it there, so the order holds.
struct Publisher {
    bus: Arc<dyn EventBus<RecordedEvent>>,
    runtime: tokio::runtime::Handle,
    /// Unbounded: it holds at most one entry per append in flight, and an
    /// inline commit runs on a runtime thread, which must not block.
    waiting: mpsc::UnboundedSender<Waiting>,
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
        let (waiting, mut queue) = mpsc::unbounded_channel::<Waiting>();
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
        if let Err(error) = self.waiting.send(Waiting { publish, answers }) {
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
/// Removes what this transaction inserted above the head it read: under the
/// write lock, those rows are its own.
const UNDO: &str = "DELETE FROM events WHERE position > ?1";

/// A `BEGIN IMMEDIATE` transaction on the writer's connection, begun and
/// committed by cached statements: preparing `BEGIN` and `COMMIT` anew for
/// every transaction, as `rusqlite::Transaction` does, costs a single-event
/// append a few percent. Dropped without [`Immediate::commit`], it rolls
/// back.
struct Immediate<'c> {
    connection: &'c Connection,
}

impl<'c> Immediate<'c> {
    fn begin(connection: &'c Connection) -> rusqlite::Result<Self> {
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
fn commit(tx: Immediate<'_>, requests: Vec<Vec<StreamAppend>>) -> Result<Plan, StoreError> {
    // Dropping the transaction without committing rolls it back.
    let recorded_at = Utc::now();
    // Stored as sqlx stores a `DateTime<Utc>`, so reads decode it alike.
    let stamp = recorded_at.to_rfc3339_opts(SecondsFormat::AutoSi, false);
    let snapshot = read_versions(&tx, &requests)?;
    let (mut snapshot, requests) = if plan::accepts_all(&snapshot, &requests) {
        let head = snapshot.head;
        let shapes = plan::shapes(&requests);
        let plan = plan::plan(snapshot, requests, recorded_at);
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
    let plan = plan::plan(snapshot, requests, recorded_at);
    insert(&tx, &plan.rows, &stamp)?;
    tx.commit()?;
    Ok(plan)
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
