//! Running a projection: tail the log, apply batches transactionally with
//! the checkpoint, retry on failure, report progress.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use larder_bus::EventBus;
use larder_store::{CatchUp, DEFAULT_POLL_INTERVAL, Database, EventStore, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ProjectionError;
use crate::checkpoints::{committed, lock_checkpoints, save_checkpoints, set_checkpoint};
use crate::db::Tx;
use crate::lease::{Lease, Wake, lease_ticks};

/// A read model fed by the event log.
///
/// `apply` runs inside the transaction that also moves the projection's
/// checkpoint, so each event takes effect exactly once, whatever crashes.
/// `apply` must be deterministic: a rebuild from position 0 gives the same
/// read model.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// A stable name, the key of the checkpoint.
    fn name(&self) -> &'static str;

    /// Applies one event. Events the projection does not know are ignored.
    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError>;

    /// Applies a batch of events, in position order, in one transaction.
    /// The read model must end as if each event had been applied in turn
    /// (the default does just that); a projection may write a batch with
    /// fewer statements, e.g. skipping a change a later one overwrites.
    async fn apply_batch(
        &self,
        tx: &mut Tx,
        events: &[Arc<RecordedEvent>],
    ) -> Result<(), ProjectionError> {
        for event in events {
            self.apply(tx, event).await?;
        }
        Ok(())
    }

    /// Deletes everything the projection wrote, before a rebuild.
    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError>;
}

/// Clears a projection and its checkpoint, so its next run rebuilds it from
/// position 0. Stop its runner first.
pub async fn reset(db: &Database, projection: &dyn Projection) -> Result<(), ProjectionError> {
    let mut tx = Tx::begin(db).await?;
    projection.reset(&mut tx).await?;
    set_checkpoint(&mut tx, projection.name(), 0).await?;
    tx.commit().await
}

/// How long a failing projection waits before its first retry; it doubles
/// up to [`MAX_RETRY_DELAY`]. A failing projection never fails a command: it
/// lags, says so, and retries.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// A running projection, or a group of projections applied together.
/// Dropping the handle does not stop it; call [`RunningProjection::stop`].
#[derive(Debug)]
pub struct RunningProjection {
    names: Vec<&'static str>,
    progress: watch::Receiver<u64>,
    demand: Demand,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// How long `stop` waits for a batch in flight to commit before aborting.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

impl RunningProjection {
    /// Starts `projection`: it catches up from its checkpoint, then follows
    /// the bus, refilling from the store whenever the bus lags.
    pub async fn start(
        projection: Arc<dyn Projection>,
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    ) -> Result<Self, ProjectionError> {
        Self::start_group(vec![projection], db, store, bus).await
    }

    /// Starts projections that move in one step: one tail feeds them all,
    /// and each batch is applied to every one of them, with every
    /// checkpoint, in one transaction. A reader that reads several of them
    /// in one snapshot-isolated transaction therefore sees them all at the
    /// same position (a store's snapshot reads its summary and its items
    /// that way). The price: one failing member holds the others back.
    ///
    /// Members whose checkpoints differ (e.g. they ran apart before) are
    /// caught up from the lowest one; an event reaches only the members
    /// that have not applied it yet.
    pub async fn start_group(
        projections: Vec<Arc<dyn Projection>>,
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    ) -> Result<Self, ProjectionError> {
        Self::start_group_polling(projections, db, store, bus, DEFAULT_POLL_INTERVAL).await
    }

    /// [`RunningProjection::start_group`], with the longest a caught-up
    /// runner waits on a silent bus before it reads the store
    /// ([`CatchUp::with_poll_interval`]).
    pub async fn start_group_polling(
        projections: Vec<Arc<dyn Projection>>,
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
        poll_interval: Duration,
    ) -> Result<Self, ProjectionError> {
        let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
        let lowest = committed(&db, &names).await?;
        let (report, progress) = watch::channel(if names.is_empty() { 0 } else { lowest });
        let (stop, stopping) = watch::channel(false);
        let demand = Demand::default();
        let task = tokio::spawn(run(
            projections,
            db,
            store,
            bus,
            poll_interval,
            Report {
                progress: report,
                demand: demand.clone(),
            },
            stopping,
        ));
        Ok(Self {
            names,
            progress,
            demand,
            stop,
            task,
        })
    }

    /// The projection's name (the first member's, for a group).
    pub fn name(&self) -> &'static str {
        self.names.first().copied().unwrap_or_default()
    }

    /// The names of every projection this runner applies.
    pub fn names(&self) -> &[&'static str] {
        &self.names
    }

    /// The position every projection of this runner has committed.
    pub fn position(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Progress updates, for waiting until a position is reached. On a
    /// node that does not hold the lease they move once a second unless a
    /// reader waits for a position past them, as
    /// [`crate::ReadModels::wait_for`] does.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.clone()
    }

    /// Where a reader says which position it waits for. On a node that
    /// does not hold the lease, progress is read from the database often
    /// only while a reader waits (see [`Demand`]).
    pub(crate) fn demand(&self) -> Demand {
        self.demand.clone()
    }

    /// Stops the projection between batches: a batch in flight commits
    /// first (a transaction cut off mid-way could leave a pooled SQLite
    /// connection holding the write lock), and the checkpoint says where to
    /// resume.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_TIMEOUT, self.task).await.is_err() {
            abort.abort();
        }
    }
}

/// The highest position a reader of this node has waited for.
///
/// A node that does not hold a group's lease learns its progress by reading
/// the leader's checkpoints. It reads them within [`FOLLOWER_RECHECK`] of
/// seeing an event only while a reader waits for a position past what it
/// reported ([`crate::ReadModels::wait_for`], i.e. `?min_position`);
/// otherwise once per [`LEASE_INTERVAL`](crate::lease::LEASE_INTERVAL),
/// with its try for the lease. Idle followers cost the database one query
/// a second per group, not one per event.
#[derive(Debug, Clone, Default)]
pub(crate) struct Demand(Arc<watch::Sender<u64>>);

impl Demand {
    /// A reader waits for `position`.
    pub(crate) fn want(&self, position: u64) {
        self.0.send_if_modified(|wanted| {
            let higher = position > *wanted;
            if higher {
                *wanted = position;
            }
            higher
        });
    }
}

/// What a runner tells its readers, and hears from them.
struct Report {
    /// The position every member has committed.
    progress: watch::Sender<u64>,
    /// The position a reader waits for.
    demand: Demand,
}

/// What a runner does next, once its current role ends.
enum Next {
    /// It was asked to stop.
    Stop,
    /// It led and lost its lease: it follows again.
    Follow,
    /// It followed and took the lease: it leads.
    Lead(Lease),
}

async fn run(
    projections: Vec<Arc<dyn Projection>>,
    db: Database,
    store: Arc<dyn EventStore>,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    poll_interval: Duration,
    report: Report,
    mut stopping: watch::Receiver<bool>,
) {
    if projections.is_empty() {
        return;
    }
    let name = projections[0].name();
    let names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    let key = format!("projections:{}", names.join(","));
    let tail = Tail {
        store: &store,
        bus: bus.as_deref(),
        poll_interval,
    };
    let mut lease = None;
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        let next = match lease.as_mut() {
            Some(held) => {
                lead(
                    &projections,
                    &db,
                    &tail,
                    held,
                    &report.progress,
                    &mut stopping,
                )
                .await
            }
            None => follow(&names, &key, &db, &tail, &report, &mut stopping).await,
        };
        match next {
            Ok(Next::Stop) => return,
            Ok(Next::Follow) => {
                tracing::warn!(projection = name, "lease lost; following");
                lease = None;
            }
            Ok(Next::Lead(taken)) => {
                tracing::info!(projection = name, "lease taken; applying");
                lease = Some(taken);
                delay = FIRST_RETRY_DELAY;
            }
            Err(error) => {
                tracing::warn!(
                    projection = name,
                    position = *report.progress.borrow(),
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "projection failed; it lags until the retry succeeds"
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

/// Where a runner reads the log from.
struct Tail<'a> {
    store: &'a Arc<dyn EventStore>,
    bus: Option<&'a dyn EventBus<RecordedEvent>>,
    poll_interval: Duration,
}

impl Tail<'_> {
    async fn from(&self, position: u64) -> Result<CatchUp, ProjectionError> {
        Ok(CatchUp::start(self.store.clone(), self.bus, position)
            .await?
            .with_poll_interval(self.poll_interval))
    }
}

/// How long a follower lets the positions it has seen go by before it reads
/// how far the leader has committed, while a reader waits (so a
/// `min_position` read on this node answers at most this much after the
/// leader's commit).
const FOLLOWER_RECHECK: Duration = Duration::from_millis(10);

/// What woke a follower up.
enum Heard {
    /// What wakes every leased runner.
    Wake(Wake),
    /// A reader waits for a position.
    Asked,
    /// Time to read how far the leader has committed.
    Recheck,
}

/// Without the lease: the log is followed only to know how far it goes, and
/// progress is what the leader has committed. It is read once per
/// [`FOLLOWER_RECHECK`] at most while this node is behind and a reader
/// waits ([`Demand`]), and with every try for the lease, once per
/// [`LEASE_INTERVAL`](crate::lease::LEASE_INTERVAL), while it is behind.
async fn follow(
    names: &[&'static str],
    key: &str,
    db: &Database,
    tail: &Tail<'_>,
    report: &Report,
    stopping: &mut watch::Receiver<bool>,
) -> Result<Next, ProjectionError> {
    if let Some(lease) = Lease::try_take(db, key).await? {
        return Ok(Next::Lead(lease));
    }
    let mut wanted = report.demand.0.subscribe();
    let mut reached = committed(db, names).await?;
    report.progress.send_replace(reached);
    // From the head: what is older is the leader's to apply, not this
    // node's to read.
    let mut seen = tail.store.head().await?;
    let mut log = tail.from(seen).await?;
    let mut ticks = lease_ticks();
    let recheck = tokio::time::sleep(FOLLOWER_RECHECK);
    tokio::pin!(recheck);
    let mut armed = false;
    loop {
        // Marked seen on every pass, so `changed` below waits for a new ask.
        let asked = *wanted.borrow_and_update();
        if !armed && seen > reached && asked > reached {
            recheck
                .as_mut()
                .reset(tokio::time::Instant::now() + FOLLOWER_RECHECK);
            armed = true;
        }
        let heard = tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => Heard::Wake(Wake::Stop),
            _ = ticks.tick() => Heard::Wake(Wake::Tick),
            batch = log.next_batch() => Heard::Wake(Wake::Batch(batch?)),
            // The sender lives in `report`: it cannot close under us.
            _ = wanted.changed() => Heard::Asked,
            () = &mut recheck, if armed => Heard::Recheck,
        };
        match heard {
            Heard::Wake(Wake::Stop) => return Ok(Next::Stop),
            Heard::Wake(Wake::Tick) => {
                if let Some(lease) = Lease::try_take(db, key).await? {
                    return Ok(Next::Lead(lease));
                }
                // Positions and readiness stay within a second of the
                // leader's with no reader waiting.
                if seen > reached {
                    reached = reached.max(committed(db, names).await?);
                    report.progress.send_replace(reached);
                }
            }
            Heard::Wake(Wake::Batch(batch)) => {
                if let Some(last) = batch.last() {
                    seen = seen.max(last.position);
                }
            }
            Heard::Asked => {}
            Heard::Recheck => {
                armed = false;
                reached = reached.max(committed(db, names).await?);
                report.progress.send_replace(reached);
            }
        }
    }
}

/// With the lease: every batch is applied, with the checkpoints, in one
/// transaction. The lease is checked every [`LEASE_INTERVAL`].
async fn lead(
    projections: &[Arc<dyn Projection>],
    db: &Database,
    tail: &Tail<'_>,
    lease: &mut Lease,
    report: &watch::Sender<u64>,
    stopping: &mut watch::Receiver<bool>,
) -> Result<Next, ProjectionError> {
    // Resume from what is committed, not from memory: a failed batch was
    // rolled back, and another node may have led until now.
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let from = committed(db, &names).await?;
    report.send_replace(from);
    let mut log = tail.from(from).await?;
    let mut ticks = lease_ticks();
    loop {
        // Waiting for events is where a stop lands; applying a batch is not
        // interrupted.
        let batch = match tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => Wake::Stop,
            _ = ticks.tick() => Wake::Tick,
            batch = log.next_batch() => Wake::Batch(batch?),
        } {
            Wake::Stop => return Ok(Next::Stop),
            Wake::Tick if lease.holds().await => continue,
            Wake::Tick => return Ok(Next::Follow),
            Wake::Batch(batch) => batch,
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            continue;
        };
        // What is committed, not what this runner remembers: another node
        // may have applied part or all of the batch already (one that led
        // before this one, or still believes it leads).
        let mut tx = Tx::begin(db).await?;
        let committed = lock_checkpoints(&mut tx, &names).await?;
        for (projection, at) in projections.iter().zip(&committed) {
            // Positions rise through the batch: what this member has not
            // applied yet is a suffix of it.
            let new = &batch[batch.partition_point(|e| e.position <= *at)..];
            if !new.is_empty() {
                projection.apply_batch(&mut tx, new).await?;
            }
        }
        let behind: Vec<&str> = names
            .iter()
            .zip(&committed)
            .filter(|(_, at)| last > **at)
            .map(|(name, _)| *name)
            .collect();
        save_checkpoints(&mut tx, &behind, last).await?;
        tx.commit().await?;
        let reached = committed
            .iter()
            .map(|at| (*at).max(last))
            .min()
            .unwrap_or(last);
        report.send_replace(reached);
    }
}
