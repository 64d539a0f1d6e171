use std::sync::Arc;

use uuid::Uuid;

use crate::ExpectedVersion;

/// What the event store can fail with.
/// Cloneable, so one database failure can answer every append of a batch.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the expected version; nothing was appended.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    WrongExpectedVersion {
        /// The stream whose check failed.
        stream: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's actual version (0: no stream).
        actual: u64,
    },
    /// An event id is already stored, but not as the same append: a retry
    /// with the same ids must send the same events to the same stream.
    #[error("event {id} is already stored elsewhere")]
    DuplicateEventId {
        /// The event id.
        id: Uuid,
    },
    /// The append was malformed (stream name, event type, size, count).
    #[error("invalid append: {0}")]
    Invalid(String),
    /// An event's data and metadata exceed the configured maximum.
    #[error("event {id} is {size} bytes, the maximum is {max}")]
    EventTooLarge {
        /// The event id.
        id: Uuid,
        /// Its encoded size in bytes.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The database could not be reached or the connection broke.
    #[error("database unavailable")]
    Unavailable(#[source] Arc<sqlx::Error>),
    /// The database answered with an error.
    #[error("database error")]
    Database(#[source] Arc<sqlx::Error>),
    /// The SQLite writer's connection answered with an error (appends on
    /// SQLite run on a dedicated synchronous connection).
    #[error("database error")]
    Sqlite(#[source] Arc<rusqlite::Error>),
    /// Running the migrations failed.
    #[error("migration failed")]
    Migrate(#[source] Arc<sqlx::migrate::MigrateError>),
    /// A stored row could not be decoded.
    #[error("stored event at position {position} is corrupt: {reason}")]
    Corrupt {
        /// Where.
        position: u64,
        /// Why.
        reason: String,
    },
    /// The store is shutting down and takes no more appends.
    #[error("event store is closed")]
    Closed,
}

impl StoreError {
    /// Whether retrying the same call later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Closed)
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => Self::Unavailable(Arc::new(error)),
            other => Self::Database(Arc::new(other)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Sqlite(Arc::new(error))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Migrate(Arc::new(error))
    }
}
