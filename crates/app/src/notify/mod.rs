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
//!   store's manager ([`check_waiting`], run on a timer).
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
//! of the log ([`crate::consumer`]; checkpoint [`Notifier::NAME`]),
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

use std::time::Duration;

use chrono::{DateTime, Utc};
use larder_codec::decode;
use larder_domain::{MenuId, MenuState, OrderId, StationKey, StoreId, TenantId};
use larder_projections::waiting_lines;
use larder_store::{Database, RecordedEvent};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::consumer::{Consumer, Handler, Log, stop_task};
use crate::{App, AppError};
pub use broadcast::{Broadcast, BroadcastAudience, broadcast};
pub use deliver::{ACTOR, Cause, Delivered, MANAGER_RANK};
pub use rules::{Action, Audience, Intent, Template, low_stock_alert, order_waiting, rules};

pub(crate) use crate::consumer::storage;

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
/// `now` notifies the store's managers, once per order and station. An
/// order that cannot be notified now is logged and left to the next check;
/// the others go on.
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
        // One order's failure does not hold the others back: it is logged,
        // and the next check tries it again.
        let done = async {
            let users = deliver::resolve(app, db, &tenant, &intent.audience).await?;
            deliver::deliver(app, &tenant, &users, &intent, &cause).await
        };
        match done.await {
            Ok(done) => {
                total.recipients += done.recipients;
                total.written += done.written;
            }
            Err(error) => {
                tracing::warn!(%order_id, %station, %error, "a waiting order could not be notified");
            }
        }
    }
    Ok(total)
}

/// The notification process manager, running. Dropping the handle does not
/// stop it; call [`Notifier::stop`].
#[derive(Debug)]
pub struct Notifier {
    consumer: Consumer,
    waiting: Option<JoinHandle<()>>,
}

/// What it does with each event: the notifications it owes.
struct Rules {
    app: App,
    db: Database,
}

impl Handler for Rules {
    fn name(&self) -> &'static str {
        Notifier::NAME
    }

    fn lagging(&self) -> &'static str {
        "notifications"
    }

    async fn handle(&self, event: &RecordedEvent) -> Result<(), AppError> {
        notify_event(&self.app, &self.db, event).await.map(|_| ())
    }
}

impl Notifier {
    /// Its checkpoint's name.
    pub const NAME: &'static str = "notifier";

    /// Starts it from its checkpoint: it catches up on the log, then follows
    /// the bus, reading the store when the bus is silent for `poll_interval`
    /// (see [`crate::consumer`]). With `check_every`, it also runs the
    /// waiting-order check on that period ([`check_waiting`] with the wall
    /// clock).
    pub async fn start(
        app: App,
        db: Database,
        log: Log,
        check_every: Option<Duration>,
    ) -> Result<Self, AppError> {
        let rules = Rules {
            app: app.clone(),
            db: db.clone(),
        };
        let consumer = Consumer::start(rules, db.clone(), log).await?;
        let waiting = check_every.map(|period| {
            let mut stopping = consumer.stopping();
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
        Ok(Self { consumer, waiting })
    }

    /// The position it has committed (every notification up to it is raised).
    pub fn position(&self) -> u64 {
        self.consumer.position()
    }

    /// Progress updates, for waiting until a position is reached.
    pub fn progress(&self) -> watch::Receiver<u64> {
        self.consumer.progress()
    }

    /// Stops it between batches; the checkpoint says where to resume.
    pub async fn stop(self) {
        let waiting = self.waiting;
        self.consumer.stop().await;
        if let Some(waiting) = waiting {
            stop_task(waiting).await;
        }
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
