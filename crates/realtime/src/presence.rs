//! The presence port: who is present in which store, across every node that
//! serves the same users.
//!
//! The hub counts a user's connections on its own node and tells the port
//! only when a user's first connection on this node arrives in a store
//! ([`Presence::join`]) or the last one leaves ([`Presence::leave`]). The
//! port keeps the merged view (a user is present while present on any
//! node) and says when that view changes: at once for a change made here
//! (the return value, announced by the hub before the `presence` reply), and
//! through [`Presence::changes`] for a change made elsewhere (another node
//! joined or left, or a node stopped heartbeating and its users expired).
//!
//! While a per-user connection limit is set, the hub also tells the port
//! each change of a user's connection count on this node
//! ([`Presence::connections_here`]) and asks it for the user's connections
//! on the other nodes ([`Presence::connections_elsewhere`]) before it
//! admits one more.
//!
//! - [`LocalPresence`] (the default): one node, nothing shared.
//! - `NatsPresence` (cargo feature `nats`): nodes share presence over core
//!   NATS subjects, with heartbeats and a TTL (see `docs/operations.md`,
//!   "Presence across nodes").
//!
//! - `view`: the merged view: which nodes hold a user in a store, and
//!   when the merged view changes.
//! - `cluster`: the protocol state machine of one node: deltas numbered by
//!   a per-node sequence, heartbeats, resynchronisation and expiry.
//! - `nats`: the NATS transport of the cluster protocol.

// The protocol is transport-independent; only NATS carries it so far.
#[cfg(any(feature = "nats", test))]
mod cluster;
#[cfg(feature = "nats")]
mod nats;
mod view;

#[cfg(test)]
mod tests;

use std::sync::Mutex;

use tokio::sync::broadcast;

use crate::PresenceState;
use view::View;

#[cfg(feature = "nats")]
pub use nats::{NatsPresence, NatsPresenceConfig, PresenceError};

/// The merged presence of a user in a store changed: announce it to the
/// store's subscribers on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceChange {
    /// The tenant of the store.
    pub tenant: String,
    /// The store id.
    pub store: String,
    /// The user id.
    pub user: String,
    /// Joined (first connection anywhere) or left (last one anywhere).
    pub state: PresenceState,
}

/// Where presence is kept: this node only ([`LocalPresence`]) or shared by
/// the nodes of a cluster. Held by the hub as `Arc<dyn Presence>`; calls are
/// made under the hub's presence lock, so they must not block (no IO: a
/// shared implementation publishes in the background).
#[cfg_attr(test, mockall::automock)]
pub trait Presence: Send + Sync {
    /// `user`'s first connection on this node announced itself in `store`.
    /// Returns the change to announce, if the user was present nowhere.
    fn join(&self, tenant: &str, store: &str, user: &str) -> Option<PresenceChange>;

    /// `user`'s last connection on this node left `store`. Returns the
    /// change to announce, if the user is now present nowhere.
    fn leave(&self, tenant: &str, store: &str, user: &str) -> Option<PresenceChange>;

    /// The users present in `store` on any node, sorted.
    fn users(&self, tenant: &str, store: &str) -> Vec<String>;

    /// This node now holds `connections` connections of `user` (0: none).
    /// Called on every change of the count, under the hub's count lock.
    fn connections_here(&self, tenant: &str, user: &str, connections: u32);

    /// `user`'s connections on the other nodes, as last heard from them
    /// (0 on a single node).
    fn connections_elsewhere(&self, tenant: &str, user: &str) -> u32;

    /// Changes of the merged view made elsewhere (other nodes, expiry).
    /// A receiver that lags loses announcements, not presence: `users`
    /// stays right.
    fn changes(&self) -> broadcast::Receiver<PresenceChange>;
}

/// Changes a receiver of [`Presence::changes`] may fall behind by before it
/// loses some. One hub drains it as fast as it routes frames; a burst is a
/// node's worth of users expiring at once.
#[cfg(feature = "nats")]
pub(crate) const CHANGES_CAPACITY: usize = 4_096;

/// Presence kept by this node alone: the single-node default.
#[derive(Debug)]
pub struct LocalPresence {
    view: Mutex<View>,
    /// Never sent on: nothing changes elsewhere.
    changes: broadcast::Sender<PresenceChange>,
}

impl Default for LocalPresence {
    fn default() -> Self {
        Self {
            view: Mutex::new(View::default()),
            changes: broadcast::Sender::new(1),
        }
    }
}

/// The one node of a [`LocalPresence`].
const LOCAL: &str = "local";

impl LocalPresence {
    /// An empty presence.
    pub fn new() -> Self {
        Self::default()
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Presence for LocalPresence {
    fn join(&self, tenant: &str, store: &str, user: &str) -> Option<PresenceChange> {
        self.view()
            .add(LOCAL, &view::Entry::new(tenant, store, user))
    }

    fn leave(&self, tenant: &str, store: &str, user: &str) -> Option<PresenceChange> {
        self.view()
            .remove(LOCAL, &view::Entry::new(tenant, store, user))
    }

    fn users(&self, tenant: &str, store: &str) -> Vec<String> {
        self.view().users(tenant, store)
    }

    /// The hub counts this node's connections itself: nothing to keep.
    fn connections_here(&self, _: &str, _: &str, _: u32) {}

    fn connections_elsewhere(&self, _: &str, _: &str) -> u32 {
        0
    }

    fn changes(&self) -> broadcast::Receiver<PresenceChange> {
        self.changes.subscribe()
    }
}
