//! Larder's read models, fed by the event log and kept in the same database
//! as the event store.
//!
//! Each projection tails the log ([`larder_store::CatchUp`]: the bus for
//! speed, the store for every gap), applies each batch of events in one
//! transaction together with its checkpoint (so every event takes effect
//! exactly once, across crashes and restarts), and can be rebuilt from
//! position 0 with the same result. The stores and inventory read models run
//! as one group, so a read transaction sees both at the same position. A failing projection never fails a
//! command: it lags, logs why, and retries with backoff.
//!
//! # Layout
//! - `runner`: the [`Projection`] trait, [`RunningProjection`] (one
//!   projection, or a group applied in one transaction), [`reset`].
//! - `checkpoints`: the committed positions ([`checkpoint`],
//!   [`lock_checkpoints`]), moved only forward.
//! - `lease`: [`Lease`], one node at a time applying each group (and
//!   running each process manager) on a shared PostgreSQL database.
//! - `larder`: Larder's projections: [`StoresProjection`],
//!   [`InventoryProjection`], [`ActivityProjection`].
//! - `kitchen`: the order and kitchen read models: [`KitchenProjection`]
//!   (the order board, each station's lines, preparation times) and
//!   [`MenuProjection`] (menu items and recipes).
//! - `notifications`: [`NotificationsProjection`] (each user's
//!   notifications: history and unread count) and the user directory the
//!   notification rules address ([`record_user`], [`audience`]).
//! - `queries`: [`ReadModels`], the query side, and its result types;
//!   `kitchen_queries` adds tickets, times, menu availability and the
//!   order board.
//! - `dashboard`: [`DashboardProjection`] (the facts the dashboard counts:
//!   orders opened, completed with their totals, cancelled; stock alerts)
//!   and [`BusinessDay`]; `dashboard_queries` reads a [`Dashboard`] from it
//!   and from the kitchen and stores read models.
//! - `db`: [`Tx`] and [`DbRow`], one statement API over SQLite and PostgreSQL.
//! - `error`: [`ProjectionError`].

mod checkpoints;
mod dashboard;
mod dashboard_queries;
mod db;
mod error;
mod kitchen;
mod kitchen_queries;
mod larder;
mod lease;
mod notifications;
mod queries;
mod runner;

use std::sync::Arc;

use larder_bus::EventBus;
use larder_store::{Database, EventStore, RecordedEvent};

use crate::queries::Progress;

pub use checkpoints::{checkpoint, lock_checkpoints};
pub use dashboard::{BUCKET_MS, BusinessDay, DashboardProjection, MAX_UTC_OFFSET_MINUTES};
pub use dashboard_queries::{AlertsBucket, Dashboard, OrdersBucket, Revenue, TOP_ITEMS, TopItem};
pub use db::{Arg, DbRow, Tx, execute, migrate};
pub use error::ProjectionError;
pub use kitchen::{KitchenProjection, MenuProjection};
pub use kitchen_queries::{
    BoardOrder, KitchenTicket, KitchenTimes, LineTime, MAX_MENU_ITEMS, MAX_TICKETS,
    MenuAvailability, MissingIngredient, RECENT_TIMES, StationTime,
};
pub use larder::{ActivityProjection, InventoryProjection, StoresProjection};
pub use lease::{LEASE_INTERVAL, Lease, Wake, lease_ticks, session_name};
pub use notifications::{
    AudienceFilter, DirectoryEntry, MAX_WAITING_LINES, NotificationEntry, NotificationsProjection,
    WaitingLine, audience, record_user, waiting_lines,
};
pub use queries::{
    ActivityEntry, AtPosition, InventoryItem, InventoryQuery, MAX_PAGE, MAX_SNAPSHOT_ITEMS,
    ReadModels, StatusFilter, StoreSnapshot, StoreSummary, micros,
};
pub use runner::{Projection, RunningProjection, reset};

/// Larder's projections, running.
#[derive(Debug)]
pub struct Projections {
    db: Database,
    running: Vec<RunningProjection>,
}

impl Projections {
    /// Larder's projections, in the order they are started.
    pub fn all() -> Vec<Arc<dyn Projection>> {
        vec![
            Arc::new(StoresProjection),
            Arc::new(InventoryProjection),
            Arc::new(ActivityProjection),
            Arc::new(KitchenProjection),
            Arc::new(MenuProjection),
            Arc::new(DashboardProjection),
            Arc::new(NotificationsProjection),
        ]
    }

    /// Larder's projections as they run: the stores and the inventory move
    /// in one step (one transaction per batch, see
    /// [`RunningProjection::start_group`]), so a store's snapshot
    /// ([`ReadModels::store_snapshot`]) reads its summary and its items at
    /// one position; the activity feed runs on its own, and so do the
    /// order and menu read models (one group: a slow kitchen write does not
    /// hold the stock read models back). The dashboard's facts move with
    /// the orders, so a dashboard reads them and the kitchen's lines at one
    /// position.
    pub fn groups() -> Vec<Vec<Arc<dyn Projection>>> {
        vec![
            vec![Arc::new(StoresProjection), Arc::new(InventoryProjection)],
            vec![Arc::new(ActivityProjection)],
            vec![
                Arc::new(KitchenProjection),
                Arc::new(MenuProjection),
                Arc::new(DashboardProjection),
            ],
            vec![Arc::new(NotificationsProjection)],
        ]
    }

    /// Creates the read-model tables if needed and starts every projection.
    pub async fn start(
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
    ) -> Result<Self, ProjectionError> {
        Self::start_polling(db, store, bus, larder_store::DEFAULT_POLL_INTERVAL).await
    }

    /// [`Projections::start`], with the longest a caught-up projection
    /// waits on a silent bus before it reads the store anyway.
    ///
    /// Several nodes may run them on one database: one node at a time
    /// applies each group (it holds the group's [`Lease`]), the others
    /// report what it has committed; and each batch is applied under its
    /// checkpoints' row locks and only past them (see [`lock_checkpoints`]),
    /// so every event takes effect once and a read model never goes back,
    /// even while a lease changes hands.
    pub async fn start_polling(
        db: Database,
        store: Arc<dyn EventStore>,
        bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
        poll_interval: std::time::Duration,
    ) -> Result<Self, ProjectionError> {
        migrate(&db).await?;
        let mut running = Vec::new();
        for group in Self::groups() {
            running.push(
                RunningProjection::start_group_polling(
                    group,
                    db.clone(),
                    store.clone(),
                    bus.clone(),
                    poll_interval,
                )
                .await?,
            );
        }
        Ok(Self { db, running })
    }

    /// The query side.
    pub fn read_models(&self) -> ReadModels {
        ReadModels::new(
            self.db.clone(),
            self.running
                .iter()
                .flat_map(|p| {
                    p.names().iter().map(|name| Progress {
                        name,
                        committed: p.progress(),
                        demand: p.demand(),
                    })
                })
                .collect(),
        )
    }

    /// Each projection's name and committed position.
    pub fn positions(&self) -> Vec<(&'static str, u64)> {
        self.running
            .iter()
            .flat_map(|p| p.names().iter().map(|name| (*name, p.position())))
            .collect()
    }

    /// Stops every projection; their checkpoints say where to resume.
    pub async fn stop(self) {
        for projection in self.running {
            projection.stop().await;
        }
    }

    /// Clears every read model and checkpoint: the next start rebuilds them
    /// from position 0. The projections must be stopped.
    pub async fn reset_all(db: &Database) -> Result<(), ProjectionError> {
        migrate(db).await?;
        for projection in Self::all() {
            reset(db, projection.as_ref()).await?;
        }
        Ok(())
    }
}
