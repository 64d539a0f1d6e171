//! Why a command did not take effect.

use larder_domain::DomainError;
use larder_store::StoreError;
use uuid::Uuid;

/// Why a command did not take effect. Nothing was appended.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AppError {
    /// A domain rule refused it.
    #[error(transparent)]
    Rejected(#[from] DomainError),
    /// The target does not exist or belongs to another tenant (the two
    /// answer alike, so a tenant cannot probe another's ids).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The client's expected version is stale, or the stream kept changing
    /// through every retry.
    #[error("{stream} is at version {current_version}")]
    Conflict {
        /// The stream that changed.
        stream: String,
        /// Its version now.
        current_version: u64,
    },
    /// A recipe names an inventory item that is not an item of the menu's
    /// store: unknown, another store's or another tenant's (answered alike,
    /// so a tenant cannot probe another's ids).
    #[error("ingredient {0} is not an item of this store")]
    IngredientNotInStore(Uuid),
    /// A recipe names an item of the store that was removed.
    #[error("ingredient {0} was removed from the store")]
    IngredientRemoved(Uuid),
    /// A transfer id already names a transfer of other items or quantity.
    #[error("transfer {0} was already made with other items or another quantity")]
    TransferIdReused(Uuid),
    /// An idempotency key already answers another request (another body,
    /// path or precondition) of the tenant.
    #[error("idempotency key {0:?} was already used for another request")]
    IdempotencyKeyReused(String),
    /// The event store cannot be reached or is shutting down; retry later.
    #[error("the event store is unavailable")]
    Unavailable(#[source] StoreError),
    /// Any other failure of the event store (a malformed append, an event
    /// too large, a stored event that does not decode).
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(_) | StoreError::Closed => Self::Unavailable(error),
            error => Self::Store(error),
        }
    }
}

impl From<larder_codec::Undecodable> for AppError {
    fn from(error: larder_codec::Undecodable) -> Self {
        Self::Store(StoreError::Corrupt {
            position: error.position,
            reason: error.source.to_string(),
        })
    }
}
