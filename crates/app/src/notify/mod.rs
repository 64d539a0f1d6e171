//! Notifications from the log: the process manager that reads every event,
//! asks the notification rules what it owes, and raises it in the inboxes
//! of the users it is for, exactly once.
//!
//! - Low stock and out of stock notify the store's managers (role `manager`
//!   or above, with the store among their stores); `Restocked` clears both
//!   alerts of the item, so the next low-stock notification is raised
//!   (until then a second one is not: the inbox's deduplication).
//! - An order ready notifies the user who took it (the actor of its
//!   `OrderOpened`).
//! - An order whose oldest unfinished line at a station has waited past the
//!   station's `late_after_secs` notifies the kitchen lead, who is the
//!   store's manager ([`Notifier::check_waiting`], run on a timer).
//! - A completed transfer notifies the managers of both stores.
//! - An administrator's broadcast ([`broadcast`]) notifies every user of the
//!   tenant, of a store, or of a role.
//!
//! "The store's managers" are looked up in the user directory
//! (`larder_projections::record_user`): a user is known once they have
//! signed in. Each inbox decides on the user's preferences and open alerts
//! (`larder_domain::inbox`).
//!
//! # Exactly once
//!
//! Like the order-to-stock process manager, it is a checkpointed consumer
//! of the log (checkpoint [`Notifier::NAME`] in `projection_checkpoints`),
//! and every inbox command carries an idempotency key
//! `notify:{rule}:{cause}:{inbox}` stored with its events; the notification
//! id is derived from the inbox and the cause as well
//! (`NotificationId::derive`), so even a replay older than the keys'
//! retention raises nothing twice: the inbox holds the id.
//!
//! # Layout
//!
//! - `rules`: the rules, pure functions of an event ([`rules`],
//!   [`order_waiting`]).
//! - `deliver`: resolving an audience and issuing the inbox commands.
//! - `broadcast`: an administrator's message ([`broadcast`]).

mod broadcast;
mod deliver;
mod rules;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use larder_bus::EventBus;
use larder_codec::decode;
use larder_domain::{MenuId, MenuState, OrderId, StationKey, StoreId, TenantId};
use larder_projections::{Tx, checkpoint, waiting_lines};
use larder_store::{CatchUp, Database, EventStore, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::{App, AppError};
pub use broadcast::{Broadcast, BroadcastAudience, broadcast};
pub use deliver::{ACTOR, Cause, Delivered, MANAGER_RANK};
pub use rules::{Action, Audience, Intent, Template, low_stock_alert, order_waiting, rules};

pub(crate) fn storage(error: larder_projections::ProjectionError) -> AppError {
    AppError::Unavailable(larder_store::StoreError::Unavailable(Arc::new(error)))
}

/// Raises what one stored event owes. `Err` only for failures that may pass.
pub async fn notify_event(
    app: &App,
    db: &Database,
    event: &RecordedEvent,
) -> Result<Delivered, AppError> {
    let domain = match decode(event) {
        Ok(domain) => domain,
        Err(error) if error.is_unknown_type() => return Ok(Delivered::default()),
        Err(error) => return Err(error.into()),
    };
    let intents = rules(&domain, event.id, &event.metadata.entity_id);
    if intents.is_empty() {
        return Ok(Delivered::default());
    }
    let tenant = TenantId::parse(&event.metadata.tenant)?;
    let cause = Cause {
        id: event.id,
        correlation_id: event.metadata.correlation_id.unwrap_or(event.id),
        key: event.id.to_string(),
    };
    let mut total = Delivered::default();
    for intent in &intents {
        let users = deliver::resolve(app, db, &tenant, &intent.audience).await?;
        let done = deliver::deliver(app, &tenant, &users, intent, &cause).await?;
        total.recipients += done.recipients;
        total.written += done.written;
    }
    Ok(total)
}

/// The waiting-order check: every order whose oldest unfinished line at a
/// station was fired more than the station's `late_after_secs` before
/// `now` notifies the store's managers, once per order and station.
pub async fn check_waiting(
    app: &App,
    db: &Database,
    now: DateTime<Utc>,
) -> Result<Delivered, AppError> {
    let lines = waiting_lines(db).await.map_err(storage)?;
    let mut total = Delivered::default();
    let mut menus: Vec<(StoreId, MenuState)> = Vec::new();
    for line in lines {
        let (Ok(tenant), Ok(store_id), Ok(order_id), Ok(station)) = (
            TenantId::parse(&line.tenant),
            line.store_id.parse::<StoreId>(),
            line.order_id.parse::<OrderId>(),
            StationKey::parse(&line.station),
        ) else {
            continue;
        };
        let menu = match menus.iter().find(|(store, _)| *store == store_id) {
            Some((_, menu)) => menu.clone(),
            None => {
                let stream = MenuId::of_store(store_id).stream_name();
                let (menu, _) = app.state::<MenuState>(&stream, false).await?;
                menus.push((store_id, menu.clone()));
                menu
            }
        };
        let Some(late) = menu.station(&station).map(|s| s.timers.late_after_secs()) else {
            continue;
        };
        let waited = (now - line.fired_at).num_seconds().max(0) as u64;
        if waited <= u64::from(late) {
            continue;
        }
        let intent = order_waiting(order_id, store_id, station.as_str(), waited, late.into());
        let cause = Cause {
            id: order_id.as_uuid(),
            correlation_id: order_id.as_uuid(),
            key: format!("{order_id}:{station}"),
        };
        let users = deliver::resolve(app, db, &tenant, &intent.audience).await?;
        let done = deliver::deliver(app, &tenant, &users, &intent, &cause).await?;
        total.recipients += done.recipients;
        total.written += done.written;
    }
    Ok(total)
}

/// How long a failing run waits before its first retry; it doubles up to
/// [`MAX_RETRY_DELAY`] (as a projection's).
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(100);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
/// How long `stop` waits for a batch in flight before aborting it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The notification process manager, running. Dropping the handle does not
/// stop it; call [`Notifier::stop`].
#[derive(Debug)]
pub struct Notifier {
    progress: watch::Receiver<u64>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    waiting: Option<JoinHandle<()>>,
}

impl Notifier {
    /// Its checkpoint's name.
    pub const NAME: &'static str = "notifier";

    /// Starts it from its checkpoint: it catches up on the log, then follows
    /// the bus. With `check_every`, it also runs the waiting-order check on
    /// that period ([`check_waiting`] with the wall clock).
    pub async fn start(
        app: App,
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
        check_every: Option<Duration>,
    ) -> Result<Self, AppError> {
        let from = checkpoint(&db, Self::NAME).await.map_err(storage)?;
        let (report, progress) = watch::channel(from);
        let (stop, stopping) = watch::channel(false);
        let waiting = check_every.map(|period| {
            let (app, db, mut stopping) = (app.clone(), db.clone(), stopping.clone());
            tokio::spawn(async move {
                let mut ticks = tokio::time::interval(period);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = stopping.wait_for(|stop| *stop) => return,
                        _ = ticks.tick() => {}
                    }
                    if let Err(error) = check_waiting(&app, &db, Utc::now()).await {
                        tracing::warn!(%error, "the waiting-order check failed; it runs again at the next tick");
                    }
                }
            })
        });
        let task = tokio::spawn(run(app, db, store, bus, report, stopping));
        Ok(Self {
            progress,
            stop,
            task,
            waiting,
        })
    }

    /// The position it has committed (every notification up to it is raised).
    pub fn position(&self) -> u64 {
        *self.progress.borrow()
    }

    /// Progress updates, for waiting until a position is reached.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.progress.clone()
    }

    /// Stops it between batches; the checkpoint says where to resume.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Some(waiting) = self.waiting {
            let abort = waiting.abort_handle();
            if tokio::time::timeout(STOP_TIMEOUT, waiting).await.is_err() {
                abort.abort();
            }
        }
        let abort = self.task.abort_handle();
        if tokio::time::timeout(STOP_TIMEOUT, self.task).await.is_err() {
            abort.abort();
        }
    }
}

async fn run(
    app: App,
    db: Database,
    store: Arc<dyn EventStore>,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    report: watch::Sender<u64>,
    mut stopping: watch::Receiver<bool>,
) {
    let mut delay = FIRST_RETRY_DELAY;
    loop {
        match follow_log(&app, &db, &store, bus.as_deref(), &report, &mut stopping).await {
            Ok(()) => return,
            Err(error) => {
                tracing::warn!(
                    position = *report.borrow(),
                    %error,
                    retry_in_ms = delay.as_millis() as u64,
                    "notifications failed; they lag until the retry succeeds"
                );
                tokio::select! {
                    _ = stopping.wait_for(|stop| *stop) => return,
                    () = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(MAX_RETRY_DELAY);
            }
        }
    }
}

async fn follow_log(
    app: &App,
    db: &Database,
    store: &Arc<dyn EventStore>,
    bus: Option<&dyn EventBus<RecordedEvent>>,
    report: &watch::Sender<u64>,
    stopping: &mut watch::Receiver<bool>,
) -> Result<(), AppError> {
    // Resume from what is committed: a batch cut off re-runs, as no-ops.
    let from = checkpoint(db, Notifier::NAME).await.map_err(storage)?;
    report.send_replace(from);
    let mut tail = CatchUp::start(store.clone(), bus, from).await?;
    loop {
        let batch = tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => return Ok(()),
            batch = tail.next_batch() => batch?,
        };
        let Some(last) = batch.last().map(|e| e.position) else {
            continue;
        };
        for event in &batch {
            notify_event(app, db, event).await?;
        }
        let mut tx = Tx::begin(db).await.map_err(storage)?;
        tx.execute(
            "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            vec![Notifier::NAME.into(), last.into()],
        )
        .await
        .map_err(storage)?;
        tx.commit().await.map_err(storage)?;
        report.send_replace(last);
    }
}

impl App {
    /// A user's inbox as its stream says it is now (preferences, unread
    /// count, open alerts), with the stream's version and position.
    pub async fn inbox(
        &self,
        tenant: &TenantId,
        user: &larder_domain::UserId,
    ) -> Result<crate::Versioned<larder_domain::InboxState>, AppError> {
        let stream = larder_domain::InboxId::of_user(tenant, user).stream_name();
        let (value, version) = self
            .state::<larder_domain::InboxState>(&stream, true)
            .await?;
        let position = self.position_at(&stream, version).await?;
        Ok(crate::Versioned {
            value,
            version,
            position,
        })
    }
}
