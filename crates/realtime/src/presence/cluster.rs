//! The presence protocol of one node, without IO: what to publish when a
//! user joins or leaves here, and what a message from another node changes.
//!
//! Each node numbers its own changes (`seq`, one per delta). A peer applies
//! a node's deltas in order; a delta it cannot place (it missed one: a full
//! queue, a slow subscriber, a reconnect) or a heartbeat whose `seq` differs
//! from what it holds makes it ask that node for a snapshot of its entries.
//! So a lost message costs one heartbeat interval of staleness, never a
//! permanent difference. A node nobody heard from for `ttl` is dropped with
//! all its users (it died without a goodbye).
//!
//! The same messages carry how many connections each user has on each node
//! (while a per-user connection limit is set): a node publishes a user's
//! count on this node when it changes, numbered in the same sequence, so a
//! node admitting a connection knows the user's connections elsewhere.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::PresenceChange;
use super::view::{Entry, UserKey, View};
use crate::PresenceState;

/// A message on the nodes' shared subject. One subject for all of them: one
/// publisher's messages reach a subscriber in the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Wire {
    /// A node started: peers answer with a heartbeat so it learns them now
    /// rather than within an interval.
    Hello { node: String },
    /// A node is alive and has made `seq` changes.
    Beat { node: String, seq: u64 },
    /// A node's `seq`th change.
    Delta {
        node: String,
        seq: u64,
        state: PresenceState,
        entry: Entry,
    },
    /// A node's `seq`th change: it now holds `connections` connections of
    /// `user` (0: none).
    Count {
        node: String,
        seq: u64,
        user: UserKey,
        connections: u32,
    },
    /// A node stops (a graceful shutdown): its users leave now.
    Bye { node: String },
}

/// A node's entries as of its `seq`th change: the answer to a sync request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub node: String,
    pub seq: u64,
    pub entries: Vec<Entry>,
    /// Its users' connection counts (absent from a node that counts none).
    #[serde(default)]
    pub connections: Vec<(UserKey, u32)>,
}

/// What the transport should do after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reaction {
    /// Ask `node` for its snapshot.
    Sync(String),
    /// Publish this node's heartbeat now (a peer said hello).
    Beat,
}

#[derive(Debug)]
struct Peer {
    seq: u64,
    entries: BTreeSet<Entry>,
    connections: HashMap<UserKey, u32>,
    last_seen: Instant,
}

impl Peer {
    fn new(now: Instant) -> Self {
        Self {
            seq: 0,
            entries: BTreeSet::new(),
            connections: HashMap::new(),
            last_seen: now,
        }
    }
}

/// One node's side of the protocol.
#[derive(Debug)]
pub(crate) struct Cluster {
    me: String,
    seq: u64,
    mine: BTreeSet<Entry>,
    /// This node's connections per user (only users with some).
    my_connections: BTreeMap<UserKey, u32>,
    peers: HashMap<String, Peer>,
    view: View,
    ttl: Duration,
}

impl Cluster {
    /// Node `me`, dropping peers silent for longer than `ttl`.
    pub(crate) fn new(me: String, ttl: Duration) -> Self {
        Self {
            me,
            seq: 0,
            mine: BTreeSet::new(),
            my_connections: BTreeMap::new(),
            peers: HashMap::new(),
            view: View::default(),
            ttl,
        }
    }

    pub(crate) fn me(&self) -> &str {
        &self.me
    }

    /// A user's first connection here: the change to announce, and the
    /// delta to publish (`None`: this node held the entry already).
    pub(crate) fn join(&mut self, entry: Entry) -> (Option<PresenceChange>, Option<Wire>) {
        if !self.mine.insert(entry.clone()) {
            return (None, None);
        }
        let change = self.view.add(&self.me, &entry);
        (change, Some(self.delta(PresenceState::Joined, entry)))
    }

    /// A user's last connection here left.
    pub(crate) fn leave(&mut self, entry: Entry) -> (Option<PresenceChange>, Option<Wire>) {
        if !self.mine.remove(&entry) {
            return (None, None);
        }
        let change = self.view.remove(&self.me, &entry);
        (change, Some(self.delta(PresenceState::Left, entry)))
    }

    fn delta(&mut self, state: PresenceState, entry: Entry) -> Wire {
        self.seq += 1;
        Wire::Delta {
            node: self.me.clone(),
            seq: self.seq,
            state,
            entry,
        }
    }

    /// This node now holds `connections` of `user`'s connections: the
    /// message to publish (`None`: the count did not change).
    pub(crate) fn count(&mut self, user: UserKey, connections: u32) -> Option<Wire> {
        let before = if connections == 0 {
            self.my_connections.remove(&user)
        } else {
            self.my_connections.insert(user.clone(), connections)
        };
        if before.unwrap_or(0) == connections {
            return None;
        }
        self.seq += 1;
        Some(Wire::Count {
            node: self.me.clone(),
            seq: self.seq,
            user,
            connections,
        })
    }

    /// `user`'s connections on the other nodes, as last heard from them.
    pub(crate) fn connections_elsewhere(&self, user: &UserKey) -> u32 {
        self.peers
            .values()
            .filter_map(|peer| peer.connections.get(user))
            .sum()
    }

    pub(crate) fn users(&self, tenant: &str, store: &str) -> Vec<String> {
        self.view.users(tenant, store)
    }

    pub(crate) fn hello(&self) -> Wire {
        Wire::Hello {
            node: self.me.clone(),
        }
    }

    pub(crate) fn beat(&self) -> Wire {
        Wire::Beat {
            node: self.me.clone(),
            seq: self.seq,
        }
    }

    pub(crate) fn bye(&self) -> Wire {
        Wire::Bye {
            node: self.me.clone(),
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        Snapshot {
            node: self.me.clone(),
            seq: self.seq,
            entries: self.mine.iter().cloned().collect(),
            connections: self
                .my_connections
                .iter()
                .map(|(user, count)| (user.clone(), *count))
                .collect(),
        }
    }

    /// Handles a message from the shared subject (this node's own included,
    /// and ignored) received at `now`.
    pub(crate) fn receive(
        &mut self,
        wire: Wire,
        now: Instant,
    ) -> (Vec<PresenceChange>, Option<Reaction>) {
        let node = match &wire {
            Wire::Hello { node }
            | Wire::Beat { node, .. }
            | Wire::Delta { node, .. }
            | Wire::Count { node, .. }
            | Wire::Bye { node } => node.clone(),
        };
        if node == self.me {
            return (Vec::new(), None);
        }
        if let Wire::Bye { .. } = wire {
            return (self.drop_peer(&node), None);
        }
        let peer = self
            .peers
            .entry(node.clone())
            .or_insert_with(|| Peer::new(now));
        peer.last_seen = now;
        match wire {
            Wire::Hello { .. } => {
                // A node that starts again under the same name starts over.
                let stale: Vec<Entry> = std::mem::take(&mut peer.entries).into_iter().collect();
                peer.connections.clear();
                peer.seq = 0;
                let changes = stale
                    .iter()
                    .filter_map(|entry| self.view.remove(&node, entry))
                    .collect();
                (changes, Some(Reaction::Beat))
            }
            Wire::Beat { seq, .. } => {
                let reaction = (seq != peer.seq).then_some(Reaction::Sync(node));
                (Vec::new(), reaction)
            }
            Wire::Delta { seq, .. } | Wire::Count { seq, .. } if seq <= peer.seq => {
                (Vec::new(), None)
            }
            Wire::Delta { seq, .. } | Wire::Count { seq, .. } if seq > peer.seq + 1 => {
                (Vec::new(), Some(Reaction::Sync(node)))
            }
            Wire::Count {
                seq,
                user,
                connections,
                ..
            } => {
                peer.seq = seq;
                if connections == 0 {
                    peer.connections.remove(&user);
                } else {
                    peer.connections.insert(user, connections);
                }
                (Vec::new(), None)
            }
            Wire::Delta {
                seq, state, entry, ..
            } => {
                peer.seq = seq;
                let change = match state {
                    PresenceState::Joined => {
                        peer.entries.insert(entry.clone());
                        self.view.add(&node, &entry)
                    }
                    PresenceState::Left => {
                        peer.entries.remove(&entry);
                        self.view.remove(&node, &entry)
                    }
                };
                (change.into_iter().collect(), None)
            }
            Wire::Bye { .. } => unreachable!("handled above"),
        }
    }

    /// A peer's snapshot arrived at `now`: its entries become exactly these.
    /// An older snapshot than what is held (deltas overtook it) is ignored.
    pub(crate) fn synced(&mut self, snapshot: Snapshot, now: Instant) -> Vec<PresenceChange> {
        if snapshot.node == self.me {
            return Vec::new();
        }
        let peer = self
            .peers
            .entry(snapshot.node.clone())
            .or_insert_with(|| Peer::new(now));
        if snapshot.seq < peer.seq {
            return Vec::new();
        }
        peer.seq = snapshot.seq;
        peer.last_seen = now;
        peer.connections = snapshot.connections.into_iter().collect();
        let new: BTreeSet<Entry> = snapshot.entries.into_iter().collect();
        let old = std::mem::replace(&mut peer.entries, new.clone());
        let mut changes: Vec<PresenceChange> = old
            .difference(&new)
            .filter_map(|entry| self.view.remove(&snapshot.node, entry))
            .collect();
        changes.extend(
            new.difference(&old)
                .filter_map(|entry| self.view.add(&snapshot.node, entry)),
        );
        changes
    }

    /// Drops the peers not heard from for longer than the TTL at `now`.
    pub(crate) fn expire(&mut self, now: Instant) -> Vec<PresenceChange> {
        let ttl = self.ttl;
        let silent: Vec<String> = self
            .peers
            .iter()
            .filter(|(_, peer)| now.saturating_duration_since(peer.last_seen) > ttl)
            .map(|(node, _)| node.clone())
            .collect();
        silent
            .iter()
            .flat_map(|node| {
                tracing::info!(node, "presence: node stopped heartbeating; its users leave");
                self.drop_peer(node)
            })
            .collect()
    }

    fn drop_peer(&mut self, node: &str) -> Vec<PresenceChange> {
        let Some(peer) = self.peers.remove(node) else {
            return Vec::new();
        };
        peer.entries
            .iter()
            .filter_map(|entry| self.view.remove(node, entry))
            .collect()
    }

    /// The peers currently heard from.
    #[cfg(test)]
    pub(crate) fn peer_count(&self) -> usize {
        self.peers.len()
    }
}
