//! The ports the realtime layer depends on: where events are read from, who
//! a token belongs to, and where snapshots come from. The server plugs in the
//! event store, its JWT validation and its read models; tests plug in mocks.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use larder_store::{EventFilter, EventStore, Metadata, Page, StoreError};
use serde::{Deserialize, Serialize};

use crate::Topic;

/// Reads the global event log: resume replays and gap refills.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait EventSource: Send + Sync {
    /// Up to `limit` events after `after` that match `filter`, in position
    /// order (see [`EventStore::read_all`]).
    async fn read_after(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Page, StoreError>;

    /// The position of the last committed event (0: empty log).
    async fn head(&self) -> Result<u64, StoreError>;
}

/// The event store is an event source.
#[async_trait]
impl EventSource for Arc<dyn EventStore> {
    async fn read_after(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Page, StoreError> {
        self.read_all(after, limit, filter).await
    }

    async fn head(&self) -> Result<u64, StoreError> {
        EventStore::head(self.as_ref()).await
    }
}

/// A user's role. Only read access matters to the realtime layer, which any
/// role has; it is carried so the server can use one identity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads only.
    Viewer,
    /// Day-to-day operations.
    Staff,
    /// Manages stores and people.
    Manager,
    /// Everything in the tenant.
    Admin,
}

/// Who is connected, as proven by a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id.
    pub user: String,
    /// The tenant the user belongs to: nothing of another tenant is visible.
    pub tenant: String,
    /// The stores the user may see; `None` = every store of the tenant.
    pub stores: Option<HashSet<String>>,
    /// The user's role.
    pub role: Role,
    /// The login session (shared by all tabs of one sign-in), if any.
    pub session: Option<String>,
    /// When the token expires, in unix seconds.
    pub expires_at: u64,
}

impl Identity {
    /// Whether this identity may see an event with `metadata`: same tenant,
    /// and for a store-scoped identity, a store in its set. An event
    /// addressed to one user ([`recipient`](crate::recipient): a personal
    /// inbox's) is seen by that user only, whatever their stores.
    pub fn can_see(&self, metadata: &Metadata) -> bool {
        if metadata.tenant != self.tenant {
            return false;
        }
        if let Some(recipient) = crate::recipient(metadata) {
            return recipient == self.user;
        }
        match &self.stores {
            None => true,
            Some(stores) => metadata
                .store
                .as_ref()
                .is_some_and(|store| stores.contains(store)),
        }
    }

    /// Whether this identity may subscribe to `topic` at all.
    pub fn may_subscribe(&self, topic: &Topic) -> bool {
        match topic {
            Topic::Tenant | Topic::Type(_) | Topic::Entity { .. } | Topic::Item(_) => true,
            Topic::Store(id) | Topic::Orders(id) | Topic::Station { store: id, .. } => {
                self.stores.as_ref().is_none_or(|s| s.contains(id))
            }
            // The tenant's dashboard adds up every store: only for an
            // identity that sees them all.
            Topic::Dashboard(None) => self.stores.is_none(),
            Topic::Dashboard(Some(id)) => self.stores.as_ref().is_none_or(|s| s.contains(id)),
            Topic::User(user) => *user == self.user,
            Topic::Session(session) => self.session.as_deref() == Some(session.as_str()),
        }
    }
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Malformed, badly signed, or otherwise not acceptable.
    #[error("invalid token")]
    Invalid,
    /// Valid once, but expired.
    #[error("token expired")]
    Expired,
}

/// Turns a bearer token into an [`Identity`].
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait Authorizer: Send + Sync {
    /// Validates `token` and returns whose it is.
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthFailure>;
}

/// Produces a snapshot (the current state of a read model) for a topic, and
/// the log position it reflects, so a client can start from it and receive
/// every event after it.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait SnapshotProvider: Send + Sync {
    /// The snapshot of `topic` as `identity` may see it, with the position
    /// it is current at; `Ok(None)` when this kind of topic has none.
    async fn snapshot(
        &self,
        identity: &Identity,
        topic: &Topic,
    ) -> Result<Option<(serde_json::Value, u64)>, String>;
}

/// Computes the state of a derived topic ([`Topic::is_derived`], e.g. a
/// dashboard) for [`crate::Hub::start_state_publisher`]: the same for every
/// subscriber allowed to subscribe to the topic.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait StateProvider: Send + Sync {
    /// The state of `topic` in `tenant`, with the log position it is
    /// current at; `Ok(None)` when the topic has no state.
    async fn state(
        &self,
        tenant: &str,
        topic: &Topic,
    ) -> Result<Option<(serde_json::Value, u64)>, String>;
}
