//! Admission: the bounds on how many connections (WebSockets and SSE
//! streams) one client address and one user may hold. A connection holds a
//! permit for each; dropping a permit frees its place.
//!
//! The per-address bound is this node's alone. The per-user bound counts
//! the user's connections on every node that shares presence: this node's
//! count is exact, the others' are as last heard over the presence port
//! (one message hop behind), so connections opened for one user on several
//! nodes within that hop can pass the bound together, never more than it
//! on any one node.

use std::net::IpAddr;
use std::sync::{Arc, Weak};

use super::{Hub, Inner, lock};
use crate::Identity;

/// Too many connections from one client address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many connections from {ip} (limit {limit})")]
pub struct TooManyConnections {
    /// The client address.
    pub ip: IpAddr,
    /// The configured limit.
    pub limit: usize,
}

/// A slot for one connection from one client address; dropping it frees
/// the slot. Take it with [`Hub::try_register`] before the WebSocket upgrade
/// (to answer HTTP 429) and hand it to [`ConnectionContext`](crate::ConnectionContext).
#[derive(Debug)]
pub struct ConnectionPermit {
    hub: Weak<Inner>,
    ip: IpAddr,
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        if let Some(inner) = self.hub.upgrade() {
            let mut per_ip = lock(&inner.per_ip);
            if let Some(count) = per_ip.get_mut(&self.ip) {
                *count -= 1;
                if *count == 0 {
                    per_ip.remove(&self.ip);
                }
            }
        }
    }
}

/// Too many connections for one user, on every node together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("user {user} of {tenant} has {connections} connections (limit {limit})")]
pub struct TooManyUserConnections {
    /// The user's tenant.
    pub tenant: String,
    /// The user id.
    pub user: String,
    /// The user's connections, on this node and as last heard elsewhere.
    pub connections: u32,
    /// The configured limit.
    pub limit: usize,
}

/// A place for one connection of one user; dropping it frees the place.
/// Taken with [`Hub::try_admit_user`] once the connection is authenticated.
#[derive(Debug)]
pub struct UserPermit {
    hub: Weak<Inner>,
    /// `None` while no per-user limit is set: nothing is counted.
    user: Option<(String, String)>,
}

impl Drop for UserPermit {
    fn drop(&mut self) {
        let (Some(inner), Some(key)) = (self.hub.upgrade(), self.user.take()) else {
            return;
        };
        let hub = Hub { inner };
        let port = hub.presence_port();
        let mut per_user = lock(&hub.inner.per_user);
        let Some(count) = per_user.get_mut(&key) else {
            return;
        };
        *count -= 1;
        let left = *count;
        if left == 0 {
            per_user.remove(&key);
        }
        port.connections_here(&key.0, &key.1, left);
    }
}

impl Hub {
    /// Takes a connection slot for `ip`, or says the address has too many.
    pub fn try_register(&self, ip: IpAddr) -> Result<ConnectionPermit, TooManyConnections> {
        let limit = self.inner.config.max_connections_per_ip;
        let mut per_ip = lock(&self.inner.per_ip);
        let count = per_ip.entry(ip).or_insert(0);
        if *count >= limit {
            return Err(TooManyConnections { ip, limit });
        }
        *count += 1;
        Ok(ConnectionPermit {
            hub: Arc::downgrade(&self.inner),
            ip,
        })
    }

    /// Takes a place for one more connection of `identity`'s user, or says
    /// the user has `max_connections_per_user` already, counting their
    /// connections on the other nodes as the presence port last heard.
    /// With no limit set, every connection is admitted and none counted.
    pub fn try_admit_user(
        &self,
        identity: &Identity,
    ) -> Result<UserPermit, TooManyUserConnections> {
        let limit = self.inner.config.max_connections_per_user;
        let hub = Arc::downgrade(&self.inner);
        if limit == 0 {
            return Ok(UserPermit { hub, user: None });
        }
        let port = self.presence_port();
        let key = (identity.tenant.clone(), identity.user.clone());
        let mut per_user = lock(&self.inner.per_user);
        let here = per_user.get(&key).copied().unwrap_or(0);
        let connections = here.saturating_add(port.connections_elsewhere(&key.0, &key.1));
        if connections as usize >= limit {
            return Err(TooManyUserConnections {
                tenant: key.0,
                user: key.1,
                connections,
                limit,
            });
        }
        per_user.insert(key.clone(), here + 1);
        port.connections_here(&key.0, &key.1, here + 1);
        Ok(UserPermit {
            hub,
            user: Some(key),
        })
    }
}
