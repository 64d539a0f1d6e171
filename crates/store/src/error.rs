use std::sync::Arc;

use uuid::Uuid;

use crate::ExpectedVersion;

/// What the event store can fail with, in the store's own terms: database
/// errors are classified where they arise (unavailable or internal), and
/// their source is kept for logs only, so callers never match on a driver's
/// error type. Cloneable, so one database failure can answer every append of
/// a batch.
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
    /// The database could not be reached or the connection broke; retrying
    /// later may succeed. The source is for logs.
    #[error("database unavailable")]
    Unavailable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The database answered with an error, or running the migrations
    /// failed. The source is for logs.
    #[error("database error")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
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

// The store's edge: every database error is classified here, once, so that
// callers match on what failed, never on a driver's error type.

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_) => Self::Unavailable(Arc::new(error)),
            other => Self::Internal(Arc::new(other)),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        Self::Internal(Arc::new(error))
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Internal(Arc::new(error))
    }
}

#[cfg(test)]
mod tests {
    use super::StoreError;

    #[test]
    fn database_errors_are_classified_at_the_edge() {
        for gone in [
            sqlx::Error::PoolClosed,
            sqlx::Error::PoolTimedOut,
            sqlx::Error::WorkerCrashed,
            sqlx::Error::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused)),
        ] {
            let error = StoreError::from(gone);
            assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
            assert!(error.is_transient());
        }
        let error = StoreError::from(sqlx::Error::RowNotFound);
        assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
        let error = StoreError::from(rusqlite::Error::InvalidQuery);
        assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
        // The source stays for logs.
        assert!(std::error::Error::source(&error).is_some());
    }
}
