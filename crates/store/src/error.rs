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

/// Whether a database error means the database could not be reached or
/// dropped the connection, so that retrying later may succeed: a socket or
/// TLS failure, no pooled connection in time, or PostgreSQL ending the
/// session or refusing it for now (SQLSTATE class 08, connection
/// exception; 57P01 to 57P03, the server shutting down, crashed or
/// starting; 53300, too many connections). The one rule for every crate
/// that talks to the database (the read models use it too).
pub fn is_unavailable(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(error) => error.code().is_some_and(|code| {
            code.starts_with("08") || matches!(&*code, "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

// The store's edge: every database error is classified here, once, so that
// callers match on what failed, never on a driver's error type.

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_unavailable(&error) {
            Self::Unavailable(Arc::new(error))
        } else {
            Self::Internal(Arc::new(error))
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

    /// A PostgreSQL error with SQLSTATE `code`, as the driver reports it.
    fn database_error(code: &'static str) -> sqlx::Error {
        #[derive(Debug)]
        struct Coded(&'static str);
        impl std::fmt::Display for Coded {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "SQLSTATE {}", self.0)
            }
        }
        impl std::error::Error for Coded {}
        impl sqlx::error::DatabaseError for Coded {
            fn message(&self) -> &str {
                self.0
            }
            fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
                Some(self.0.into())
            }
            fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
                self
            }
            fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
                self
            }
            fn kind(&self) -> sqlx::error::ErrorKind {
                sqlx::error::ErrorKind::Other
            }
        }
        sqlx::Error::Database(Box::new(Coded(code)))
    }

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
        // PostgreSQL ending or refusing sessions (a restart) is not an
        // internal error; a constraint violation is.
        for (code, transient) in [
            ("57P01", true),
            ("57P02", true),
            ("57P03", true),
            ("08006", true),
            ("53300", true),
            ("23505", false),
            ("42P01", false),
        ] {
            let error = StoreError::from(database_error(code));
            assert_eq!(error.is_transient(), transient, "{code}: {error:?}");
        }
        let error = StoreError::from(rusqlite::Error::InvalidQuery);
        assert!(matches!(error, StoreError::Internal(_)), "{error:?}");
        // The source stays for logs.
        assert!(std::error::Error::source(&error).is_some());
    }
}
