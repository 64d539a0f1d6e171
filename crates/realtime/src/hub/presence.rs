//! Presence in the hub: this node counts each user's connections per store
//! and tells the [`Presence`] port of a user's first and last one; the port
//! says when the merged presence (every node) changes, and the hub
//! announces that to the store's room on this node.

use std::sync::Arc;

use tokio::sync::broadcast::error::RecvError;

use super::{Hub, lock};
use crate::frame::SharedText;
use crate::presence::{Presence, PresenceChange};
use crate::protocol::ServerMessage;

impl Hub {
    /// Shares presence through `port` instead of this node's own
    /// [`LocalPresence`](crate::LocalPresence): e.g. a `NatsPresence`
    /// (cargo feature `nats`) so that every node's users are listed and
    /// announced. Call it once, before serving connections
    /// (presence already held here is not carried over). Spawns the task
    /// that announces the changes made on other nodes; it ends with the
    /// hub or the port.
    pub fn use_presence(&self, port: Arc<dyn Presence>) {
        let mut changes = port.changes();
        *self
            .inner
            .presence_port
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = port;
        let hub = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                let change = match changes.recv().await {
                    Ok(change) => change,
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "presence announcements lagged; some were not sent");
                        continue;
                    }
                    Err(RecvError::Closed) => return,
                };
                let Some(inner) = hub.upgrade() else { return };
                Hub { inner }.presence_changed(&change);
            }
        });
    }

    pub(super) fn presence_port(&self) -> Arc<dyn Presence> {
        self.inner
            .presence_port
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Joins `user` to a store's presence; announces it if it is the user's
    /// first connection there on any node. Returns who is present.
    pub(crate) fn presence_join(&self, tenant: &str, store: &str, user: &str) -> Vec<String> {
        let port = self.presence_port();
        let key = (tenant.to_owned(), store.to_owned());
        let change = {
            // The port is told under the count's lock, so that a user's
            // join and leave on this node reach it in the order counted.
            let mut presence = lock(&self.inner.presence);
            let count = presence
                .entry(key)
                .or_default()
                .entry(user.to_owned())
                .or_insert(0);
            *count += 1;
            if *count == 1 {
                port.join(tenant, store, user)
            } else {
                None
            }
        };
        if let Some(change) = change {
            self.presence_changed(&change);
        }
        port.users(tenant, store)
    }

    /// Leaves a store's presence; announces it if it was the user's last
    /// connection there on any node.
    pub(crate) fn presence_leave(&self, tenant: &str, store: &str, user: &str) {
        let port = self.presence_port();
        let key = (tenant.to_owned(), store.to_owned());
        let change = {
            let mut presence = lock(&self.inner.presence);
            let Some(users) = presence.get_mut(&key) else {
                return;
            };
            let change = match users.get_mut(user) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    None
                }
                Some(_) => {
                    users.remove(user);
                    port.leave(tenant, store, user)
                }
                None => None,
            };
            if users.is_empty() {
                presence.remove(&key);
            }
            change
        };
        if let Some(change) = change {
            self.presence_changed(&change);
        }
    }

    /// Sends `presence_changed` to the live WebSocket subscribers of the
    /// store's topic on this node.
    fn presence_changed(&self, change: &PresenceChange) {
        let frame = SharedText::from(
            ServerMessage::PresenceChanged {
                store: change.store.clone(),
                user: change.user.clone(),
                state: change.state,
            }
            .to_json(),
        );
        let routing = lock(&self.inner.routing);
        if let Some(room) = routing
            .rooms
            .get(&(change.tenant.clone(), format!("store:{}", change.store)))
        {
            for sub in room {
                sub.notify(&frame);
            }
        }
    }
}
