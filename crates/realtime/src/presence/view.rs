//! The merged view: for each store, which nodes hold each user. A user is
//! present while at least one node holds them; the view says when that
//! turns (first node: joined, last node gone: left), so each node announces
//! a user's arrival and departure once, however many nodes they use.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use super::PresenceChange;
use crate::PresenceState;

/// A user present in a store of a tenant; on the wire a 3-element array.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct Entry(pub String, pub String, pub String);

impl Entry {
    pub(crate) fn new(tenant: &str, store: &str, user: &str) -> Self {
        Self(tenant.to_owned(), store.to_owned(), user.to_owned())
    }

    fn change(&self, state: PresenceState) -> PresenceChange {
        PresenceChange {
            tenant: self.0.clone(),
            store: self.1.clone(),
            user: self.2.clone(),
            state,
        }
    }
}

/// A user of a tenant, whose connections are counted; on the wire a
/// 2-element array.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub(crate) struct UserKey(pub String, pub String);

impl UserKey {
    pub(crate) fn new(tenant: &str, user: &str) -> Self {
        Self(tenant.to_owned(), user.to_owned())
    }
}

/// (tenant, store) → user → the nodes holding the user there.
#[derive(Debug, Default)]
pub(crate) struct View {
    rooms: HashMap<(String, String), BTreeMap<String, BTreeSet<String>>>,
}

impl View {
    /// `node` holds `entry`; `joined` if no node held it before.
    pub(crate) fn add(&mut self, node: &str, entry: &Entry) -> Option<PresenceChange> {
        let nodes = self
            .rooms
            .entry((entry.0.clone(), entry.1.clone()))
            .or_default()
            .entry(entry.2.clone())
            .or_default();
        let first = nodes.is_empty();
        nodes.insert(node.to_owned());
        first.then(|| entry.change(PresenceState::Joined))
    }

    /// `node` no longer holds `entry`; `left` if no node holds it now.
    pub(crate) fn remove(&mut self, node: &str, entry: &Entry) -> Option<PresenceChange> {
        let key = (entry.0.clone(), entry.1.clone());
        let users = self.rooms.get_mut(&key)?;
        let nodes = users.get_mut(&entry.2)?;
        if !nodes.remove(node) || !nodes.is_empty() {
            return None;
        }
        users.remove(&entry.2);
        if users.is_empty() {
            self.rooms.remove(&key);
        }
        Some(entry.change(PresenceState::Left))
    }

    /// The users present in a store, sorted.
    pub(crate) fn users(&self, tenant: &str, store: &str) -> Vec<String> {
        self.rooms
            .get(&(tenant.to_owned(), store.to_owned()))
            .map(|users| users.keys().cloned().collect())
            .unwrap_or_default()
    }
}
