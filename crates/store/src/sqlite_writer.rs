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
//! beginning even under constant writes (see `checkpoint::spawn`). The
//! writer's connection keeps SQLite's automatic checkpoint as a backstop, at
//! a higher threshold.
//! (sqlx runs each SQLite connection on a worker thread too, but hands every
//! statement over and back.) Reads and migrations stay on sqlx.
//!
//! This file holds the connection, the two paths and the writer thread; its
//! parts are the transaction (`commit`), publishing (`publisher`) and the
//! checkpoint thread (`checkpoint`).

mod checkpoint;
mod commit;
mod publisher;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::{Duration, Instant};

use larder_bus::EventBus;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::{mpsc, oneshot};

use crate::batch::{Callers, WriteRequest, answer, take_batch};
use crate::idempotency::IdempotentAppend;
use crate::plan::Plan;
use crate::{RecordedEvent, StoreError, StreamAppend};
use checkpoint::Checkpoints;
use commit::{Immediate, commit};
use publisher::Publisher;

/// The most events an append may carry to be committed on the caller's
/// thread. A commit of this size takes a few hundred microseconds; larger
/// ones go to the writer thread rather than hold up the caller's runtime
/// worker.
pub(crate) const INLINE_MAX_EVENTS: usize = 128;

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
    /// How long idempotency records stay live.
    retention: Duration,
    /// When expired idempotency records were last swept.
    swept: Instant,
}

/// The answer to an append committed inline.
type Answer = oneshot::Receiver<Result<IdempotentAppend, StoreError>>;

/// Opens the writer's connection, starts the writer and checkpoint threads.
/// They run until every handle to the store is dropped (the queue closes).
pub(crate) fn spawn(
    target: &SqliteTarget,
    queue: mpsc::Receiver<WriteRequest>,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    max_batch_events: usize,
    retention: Duration,
) -> Result<Arc<Writer>, StoreError> {
    let connection = target.open()?;
    let (checkpoints, checkpointer) = if target.in_memory {
        (None, None)
    } else {
        connection.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpoint::WRITER_AUTOCHECKPOINT_PAGES,
        )?;
        let (checkpoints, woken) = Checkpoints::new();
        (Some(checkpoints), Some((target.open()?, woken)))
    };
    let writer = Arc::new(Writer {
        core: Mutex::new(Core {
            connection,
            publisher: bus.map(Publisher::start),
            checkpoints,
            busy_timeout: target.busy_timeout,
            retention,
            swept: Instant::now(),
        }),
        in_flight: AtomicUsize::new(0),
    });
    if let Some((connection, woken)) = checkpointer {
        let writer = Arc::downgrade(&writer);
        checkpoint::spawn(connection, woken, move |checkpoint| {
            let Some(writer) = writer.upgrade() else {
                return false;
            };
            let _core = writer.lock();
            checkpoint();
            true
        })
        .map_err(thread_error)?;
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
    ) -> Result<Answer, Vec<StreamAppend>> {
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
    fn try_inline(&mut self, appends: Vec<StreamAppend>) -> Result<Answer, Vec<StreamAppend>> {
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
        let batch = vec![WriteRequest {
            appends,
            keys: Vec::new(),
            reply,
        }];
        finish(
            Ok(tx),
            batch,
            self.retention,
            &mut self.checkpoints,
            self.publisher.as_ref(),
        );
        self.sweep_now_and_then();
        Ok(answer)
    }

    /// Commits one batch, waiting for the write lock if it must, then
    /// publishes it and answers its appends.
    fn run_batch(&mut self, batch: Vec<WriteRequest>) {
        let tx = Immediate::begin(&self.connection);
        finish(
            tx,
            batch,
            self.retention,
            &mut self.checkpoints,
            self.publisher.as_ref(),
        );
        self.sweep_now_and_then();
    }

    /// Deletes a bounded number of expired idempotency records, at most
    /// once per [`idempotency::SWEEP_EVERY`](crate::idempotency::SWEEP_EVERY).
    fn sweep_now_and_then(&mut self) {
        if self.swept.elapsed() < crate::idempotency::SWEEP_EVERY {
            return;
        }
        self.swept = Instant::now();
        if let Err(error) = commit::sweep(&self.connection, self.retention) {
            tracing::warn!(%error, "sweeping expired idempotency keys failed");
        }
    }
}

/// Decides and commits `batch` in the transaction `tx` has begun, then
/// publishes and answers.
fn finish(
    tx: rusqlite::Result<Immediate<'_>>,
    batch: Vec<WriteRequest>,
    retention: Duration,
    checkpoints: &mut Option<Checkpoints>,
    publisher: Option<&Publisher>,
) {
    let (requests, keys, callers) = Callers::split(batch);
    match tx
        .map_err(StoreError::from)
        .and_then(|tx| commit(tx, requests, &keys, retention))
    {
        Ok(Plan {
            rows,
            outcomes,
            replayed,
            ..
        }) => {
            let answers = callers.committed(rows.len(), outcomes, replayed);
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
