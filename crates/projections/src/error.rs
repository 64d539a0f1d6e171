use std::sync::Arc;

/// What projecting or querying read models can fail with, in this crate's
/// own terms: database errors are classified where they arise (unavailable
/// or internal), and their source is kept for logs only.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProjectionError {
    /// The database could not be reached or the connection broke; retrying
    /// later may succeed. The source is for logs.
    #[error("read-model database unavailable")]
    Unavailable(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// The database answered with an error, or creating the read-model
    /// tables failed. The source is for logs.
    #[error("read-model database error")]
    Internal(#[source] Arc<dyn std::error::Error + Send + Sync>),
    /// Reading events from the store failed.
    #[error("reading events failed")]
    Store(#[from] larder_store::StoreError),
    /// A stored event or row could not be understood.
    #[error("cannot project event at position {position}: {reason}")]
    Corrupt {
        /// The event's position.
        position: u64,
        /// Why.
        reason: String,
    },
    /// A consistent read found read models that should move together at
    /// different positions (e.g. right after an upgrade, before their group
    /// has caught up): nothing consistent can be answered yet.
    #[error(
        "read models {first} (at {first_at}) and {second} (at {second_at}) are not aligned yet"
    )]
    Misaligned {
        /// One read model.
        first: &'static str,
        /// Its position.
        first_at: u64,
        /// The other.
        second: &'static str,
        /// Its position.
        second_at: u64,
    },
    /// A result would exceed its bound.
    #[error("more than {limit} {what}: too large to answer at once")]
    TooLarge {
        /// What was counted.
        what: &'static str,
        /// The bound.
        limit: usize,
    },
}

// This crate's edge: every database error is classified here, once.

impl From<sqlx::Error> for ProjectionError {
    fn from(error: sqlx::Error) -> Self {
        if larder_store::is_unavailable(&error) {
            Self::Unavailable(Arc::new(error))
        } else {
            Self::Internal(Arc::new(error))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for ProjectionError {
    fn from(error: sqlx::migrate::MigrateError) -> Self {
        Self::Internal(Arc::new(error))
    }
}
