//! Leases: with several nodes on one PostgreSQL database, one node at a
//! time applies each projection group and runs each process manager; the
//! others follow the committed checkpoints.
//!
//! A lease is a PostgreSQL session advisory lock, keyed by the schema and
//! the runner's name, held on a connection of its own for as long as the
//! node leads. When the node stops or dies, or its connection breaks, the
//! session ends, the lock goes with it, and another node takes the lease at
//! its next try ([`LEASE_INTERVAL`]); it resumes from the checkpoints, so
//! nothing is skipped.
//!
//! The lease saves work; it is not what keeps read models right. A leader
//! still applies each batch under its checkpoints' row locks and only past
//! them ([`crate::lock_checkpoints`]), so two nodes that both believe they
//! lead (a lease lost and taken over while the old holder has not noticed)
//! apply each event once, and a read model never goes back.
//!
//! On SQLite, one node owns the file: the lease is always held.

use std::time::Duration;

use std::sync::Arc;

use larder_store::{Database, RecordedEvent};
use sqlx::{Connection, PgConnection};

use crate::ProjectionError;

/// How often a node without a lease tries to take it, and how often the
/// holder checks its session still answers: the longest a group or manager
/// waits for a new leader after one dies (plus the time the database takes
/// to notice a dead connection, immediate when the node's process is gone).
pub const LEASE_INTERVAL: Duration = Duration::from_secs(1);

/// A held lease; dropping it gives it up (its session closes).
#[derive(Debug)]
pub struct Lease {
    /// The session holding the advisory lock; none on SQLite.
    session: Option<PgConnection>,
}

impl Lease {
    /// Takes the lease `name` if no other node holds it.
    pub async fn try_take(db: &Database, name: &str) -> Result<Option<Self>, ProjectionError> {
        let pool = match db {
            Database::Sqlite(_) => return Ok(Some(Self { session: None })),
            Database::Postgres(pool) => pool,
        };
        let mut connection = pool.acquire().await?;
        // The schema is part of the key: nodes of different deployments may
        // share a database.
        let taken: bool = sqlx::query_scalar(
            "SELECT pg_try_advisory_lock(hashtextextended(current_schema() || '/' || $1, 0))",
        )
        .bind(name)
        .fetch_one(&mut *connection)
        .await?;
        if !taken {
            return Ok(None);
        }
        // A connection holding the lock leaves the pool: returned to it, the
        // lock would stay with whatever borrowed it next.
        let mut session = connection.detach();
        // Named, so an operator sees who leads what (docs/operations.md).
        sqlx::query("SELECT set_config('application_name', $1, false)")
            .bind(session_name(name))
            .execute(&mut session)
            .await?;
        Ok(Some(Self {
            session: Some(session),
        }))
    }

    /// Whether the lease is still held: its session answers.
    pub async fn holds(&mut self) -> bool {
        match &mut self.session {
            None => true,
            Some(session) => session.ping().await.is_ok(),
        }
    }

    /// After a runner failed: its lease's session may be what broke. Then
    /// the lease is gone (`None`), and whoever can reach the database
    /// takes it; a lease still held is kept.
    pub async fn keep_if_held(lease: &mut Option<Self>) {
        if let Some(held) = lease.as_mut()
            && !held.holds().await
        {
            *lease = None;
        }
    }
}

/// What woke a leased runner up. It is settled before anything is awaited:
/// the stop signal's guard must not be held across an await.
#[derive(Debug)]
pub enum Wake {
    /// It was asked to stop.
    Stop,
    /// Time to take or check the lease.
    Tick,
    /// Events from the log.
    Batch(Vec<Arc<RecordedEvent>>),
}

/// The `application_name` of the session holding lease `name` (PostgreSQL
/// keeps its first 63 bytes): `larder pid <process id> lease <name>`.
pub fn session_name(name: &str) -> String {
    format!("larder pid {} lease {name}", std::process::id())
}

/// A timer that first fires one [`LEASE_INTERVAL`] from now.
pub fn lease_ticks() -> tokio::time::Interval {
    let mut ticks =
        tokio::time::interval_at(tokio::time::Instant::now() + LEASE_INTERVAL, LEASE_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks
}
