//! A checkpointed consumer of the log: the loop that the process managers
//! (order stock, notifications) share.
//!
//! It resumes from its checkpoint (a row of `projection_checkpoints`), reads
//! the log in position order (catching up from the store, then following
//! the bus, refilling from the store whenever the bus lags or is silent for
//! the poll interval), hands each event to its [`Handler`], and moves the
//! checkpoint after every event of a batch was handled. A stop or a crash
//! re-runs at most that batch: handlers make a second run a no-op (their
//! commands carry idempotency keys).
//!
//! Several nodes may run the same consumer on one database: one at a time
//! runs it (the one holding its [`Lease`]; the others stand by and take
//! over within [`larder_projections::LEASE_INTERVAL`] when it goes). Should
//! two run it at once (a lease changing hands), each skips what the shared
//! checkpoint already covers, and the checkpoint only moves forward, so a
//! node that lags never moves it back. A failing run (the
//! store unavailable, a conflict through every retry) is retried from the
//! checkpoint with backoff, as a projection's.

use std::sync::Arc;
use std::time::Duration;

use larder_bus::EventBus;
use larder_projections::{Lease, Wake, checkpoint, execute, lease_ticks};
use larder_store::{CatchUp, Database, EventStore, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::AppError;

/// What a consumer does with each event of the log.
pub trait Handler: Send + Sync + 'static {
    /// Its checkpoint's name.
    fn name(&self) -> &'static str;

    /// What lags while it fails, for the warning logged then.
    fn lagging(&self) -> &'static str;

    /// Handles one event; an error stops the batch, which runs again from
    /// the checkpoint after a delay.
    fn handle(&self, event: &RecordedEvent) -> impl Future<Output = Result<(), AppError>> + Send;
}

/// Where a consumer reads the log.
#[derive(Clone)]
pub struct Log {
    /// The event store.
    pub store: Arc<dyn EventStore>,
    /// The bus that rings when events are committed, if any.
    pub bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    /// The longest it waits on a silent bus before it reads the store.
    pub poll_interval: Duration,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("bus", &self.bus.is_some())
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// How long a failing run waits before its first retry; it doubles up to
/// [`MAX_RETRY_DELAY`].
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long `stop` waits for a batch in flight before aborting it (the
/// handlers make the aborted part a no-op when it runs again).
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer, running. Dropping the handle does not stop it; call
/// [`Consumer::stop`].
#[derive(Debug)]
pub struct Consumer {
    progress: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Consumer {
    /// Starts `handler` from its checkpoint.
    pub async fn start(handler: impl Handler, db: Database, log: Log) -> Result<Self, AppError> {
        let from = checkpoint(&db, handler.name()).await.map_err(storage)?;
        let (report, progress) = watch::channel(from);
        let (stop, stopping) = watch::channel(false);
        let task = tokio::spawn(run(handler, db, log, report, stopping));
        Ok(Self {
            progress,
            stop,
            task,
        })
    }

    /// The position it has committed (every event up to it is handled).
    pub fn position(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Progress updates, for waiting until a position is reached.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.clone()
    }

    /// A receiver that turns true when the consumer is asked to stop, for
    /// tasks that run beside it.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.stop.subscribe()
    }

    /// Stops it between batches; the checkpoint says where to resume.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        stop_task(self.task).await;
    }
}

/// Waits for a task asked to stop, at most [`STOP_TIMEOUT`], then aborts it.
pub(crate) async fn stop_task(task: JoinHandle<()>) {
    let abort = task.abort_handle();
    if tokio::time::timeout(STOP_TIMEOUT, task).await.is_err() {
        abort.abort();
    }
}

/// A read-model storage failure, as the application layer reports it.
pub(crate) fn storage(error: larder_projections::ProjectionError) -> AppError {
    AppError::Unavailable(larder_store::StoreError::Unavailable(Arc::new(error)))
}

async fn run(
    handler: impl Handler,
    db: Database,
    log: Log,
    report: watch::Sender<u64>,
    mut stopping: watch::Receiver<bool>,
) {
    let key = format!("consumer:{}", handler.name());
    let mut lease = None;
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        let next = match lease.as_mut() {
            Some(held) => follow_log(&handler, &db, &log, held, &report, &mut stopping).await,
            None => stand_by(handler.name(), &key, &db, &report, &mut stopping).await,
        };
        match next {
            Ok(Next::Stop) => return,
            Ok(Next::StandBy) => {
                tracing::warn!(consumer = handler.name(), "lease lost; standing by");
                lease = None;
            }
            Ok(Next::Run(taken)) => {
                tracing::info!(consumer = handler.name(), "lease taken; running");
                lease = Some(taken);
                delay = FIRST_RETRY_DELAY;
            }
            Err(error) => {
                tracing::warn!(
                    consumer = handler.name(),
                    position = *report.borrow(),
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "{} lag until the retry succeeds",
                    handler.lagging()
                );
                Lease::keep_if_held(&mut lease).await;
                tokio::select! {
                    _ = stopping.wait_for(|stop| *stop) => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

/// What a consumer does next, once its current role ends.
enum Next {
    /// It was asked to stop.
    Stop,
    /// It ran and lost its lease.
    StandBy,
    /// It stood by and took the lease.
    Run(Lease),
}

/// Without the lease: another node runs the consumer. Its progress is
/// reported, and the lease tried, every [`larder_projections::LEASE_INTERVAL`].
async fn stand_by(
    name: &str,
    key: &str,
    db: &Database,
    report: &watch::Sender<u64>,
    stopping: &mut watch::Receiver<bool>,
) -> Result<Next, AppError> {
    let mut ticks = lease_ticks();
    loop {
        if let Some(lease) = Lease::try_take(db, key).await.map_err(storage)? {
            return Ok(Next::Run(lease));
        }
        report.send_replace(checkpoint(db, name).await.map_err(storage)?);
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => return Ok(Next::Stop),
            _ = ticks.tick() => {}
        }
    }
}

async fn follow_log(
    handler: &impl Handler,
    db: &Database,
    log: &Log,
    lease: &mut Lease,
    report: &watch::Sender<u64>,
    stopping: &mut watch::Receiver<bool>,
) -> Result<Next, AppError> {
    let name = handler.name();
    // Resume from what is committed: a batch cut off re-runs, as no-ops.
    let from = checkpoint(db, name).await.map_err(storage)?;
    report.send_replace(from);
    let mut tail = CatchUp::start(log.store.clone(), log.bus.as_deref(), from)
        .await?
        .with_poll_interval(log.poll_interval);
    let mut ticks = lease_ticks();
    loop {
        let batch = match tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => Wake::Stop,
            _ = ticks.tick() => Wake::Tick,
            batch = tail.next_batch() => Wake::Batch(batch?),
        } {
            Wake::Stop => return Ok(Next::Stop),
            Wake::Tick if lease.holds().await => continue,
            Wake::Tick => return Ok(Next::StandBy),
            Wake::Batch(batch) => batch,
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            continue;
        };
        // Another node may have handled part of the batch already: skip
        // what the shared checkpoint covers (the handlers would make it a
        // no-op, at the price of a command each).
        let done = checkpoint(db, name).await.map_err(storage)?;
        for event in batch.iter().filter(|e| e.position > done) {
            handler.handle(event).await?;
        }
        if last > done {
            // Forward only: a node that lags never moves it back. One
            // statement, committed by itself.
            execute(
                db,
                "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
                 ON CONFLICT (name) DO UPDATE SET position = CASE \
                 WHEN excluded.position > projection_checkpoints.position THEN excluded.position \
                 ELSE projection_checkpoints.position END",
                vec![name.into(), last.into()],
            )
            .await
            .map_err(storage)?;
        }
        report.send_replace(last.max(done));
    }
}
