//! The presence logic without IO: the merged view, and two or three nodes'
//! protocol state machines exchanging messages through an in-memory fake
//! of the shared subject (each message handed to every other node, in
//! order, or dropped on purpose).

use std::time::{Duration, Instant};

use super::cluster::{Cluster, Reaction, Wire};
use super::view::{Entry, UserKey};
use super::*;

const TTL: Duration = Duration::from_secs(6);

fn change(user: &str, state: PresenceState) -> PresenceChange {
    PresenceChange {
        tenant: "acme".into(),
        store: "s1".into(),
        user: user.into(),
        state,
    }
}

fn alice() -> Entry {
    Entry::new("acme", "s1", "alice")
}

fn bob() -> Entry {
    Entry::new("acme", "s1", "bob")
}

/// Nodes wired by a fake subject: what one publishes reaches the others.
struct Net {
    nodes: Vec<Cluster>,
    now: Instant,
    /// Changes each node announced, in order.
    announced: Vec<Vec<PresenceChange>>,
}

impl Net {
    fn new(count: usize) -> Self {
        Self {
            nodes: (0..count)
                .map(|i| Cluster::new(format!("n{i}"), TTL))
                .collect(),
            now: Instant::now(),
            announced: vec![Vec::new(); count],
        }
    }

    /// Delivers `wire` from node `from` to every other node, answering the
    /// reactions (a sync request is answered with the node's snapshot).
    fn deliver(&mut self, from: usize, wire: Wire) {
        for to in 0..self.nodes.len() {
            if to == from {
                continue;
            }
            let (changes, reaction) = self.nodes[to].receive(wire.clone(), self.now);
            self.announced[to].extend(changes);
            if let Some(Reaction::Sync(node)) = reaction {
                let source = self
                    .nodes
                    .iter()
                    .position(|n| n.me() == node)
                    .expect("known node");
                let snapshot = self.nodes[source].snapshot();
                let changes = self.nodes[to].synced(snapshot, self.now);
                self.announced[to].extend(changes);
            }
        }
    }

    fn join(&mut self, node: usize, entry: Entry) {
        let (change, wire) = self.nodes[node].join(entry);
        self.announced[node].extend(change);
        if let Some(wire) = wire {
            self.deliver(node, wire);
        }
    }

    fn leave(&mut self, node: usize, entry: Entry) {
        let (change, wire) = self.nodes[node].leave(entry);
        self.announced[node].extend(change);
        if let Some(wire) = wire {
            self.deliver(node, wire);
        }
    }

    fn count(&mut self, node: usize, user: &str, connections: u32) {
        if let Some(wire) = self.nodes[node].count(UserKey::new("acme", user), connections) {
            self.deliver(node, wire);
        }
    }

    fn elsewhere(&self, node: usize, user: &str) -> u32 {
        self.nodes[node].connections_elsewhere(&UserKey::new("acme", user))
    }

    fn beat(&mut self, node: usize) {
        let beat = self.nodes[node].beat();
        self.deliver(node, beat);
    }

    fn announced(&mut self, node: usize) -> Vec<PresenceChange> {
        std::mem::take(&mut self.announced[node])
    }
}

#[test]
fn the_merged_view_announces_the_first_node_and_the_last() {
    let mut view = View::default();
    assert_eq!(
        view.add("a", &alice()),
        Some(change("alice", PresenceState::Joined))
    );
    assert_eq!(view.add("b", &alice()), None, "already present");
    assert_eq!(view.add("b", &alice()), None, "same node twice");
    assert_eq!(view.remove("a", &alice()), None, "still on b");
    assert_eq!(view.users("acme", "s1"), vec!["alice"]);
    assert_eq!(
        view.remove("b", &alice()),
        Some(change("alice", PresenceState::Left))
    );
    assert_eq!(view.remove("b", &alice()), None, "gone already");
    assert!(view.users("acme", "s1").is_empty());
    assert!(view.users("globex", "s1").is_empty(), "tenants apart");
}

#[test]
fn local_presence_is_one_node_and_never_changes_elsewhere() {
    let local = LocalPresence::new();
    let mut changes = local.changes();
    assert_eq!(
        local.join("acme", "s1", "bob"),
        Some(change("bob", PresenceState::Joined))
    );
    assert_eq!(local.join("acme", "s1", "alice").unwrap().user, "alice");
    assert_eq!(local.users("acme", "s1"), vec!["alice", "bob"]);
    assert_eq!(
        local.leave("acme", "s1", "bob"),
        Some(change("bob", PresenceState::Left))
    );
    assert!(changes.try_recv().is_err());
}

#[test]
fn two_nodes_see_each_others_users() {
    let mut net = Net::new(2);
    net.join(0, alice());
    net.join(1, bob());
    for node in &net.nodes {
        assert_eq!(node.users("acme", "s1"), vec!["alice", "bob"]);
    }
    for node in 0..2 {
        assert_eq!(
            net.announced(node),
            vec![
                change("alice", PresenceState::Joined),
                change("bob", PresenceState::Joined)
            ],
            "node {node}"
        );
    }
}

#[test]
fn a_user_on_two_nodes_is_announced_once_on_each() {
    let mut net = Net::new(3);
    net.join(0, alice());
    net.join(1, alice());
    for node in 0..3 {
        assert_eq!(
            net.announced(node),
            vec![change("alice", PresenceState::Joined)],
            "node {node}"
        );
    }
    net.leave(0, alice());
    for node in 0..3 {
        assert!(net.announced(node).is_empty(), "still on node 1");
        assert_eq!(net.nodes[node].users("acme", "s1"), vec!["alice"]);
    }
    net.leave(1, alice());
    for node in 0..3 {
        assert_eq!(
            net.announced(node),
            vec![change("alice", PresenceState::Left)]
        );
        assert!(net.nodes[node].users("acme", "s1").is_empty());
    }
}

#[test]
fn a_lost_delta_is_repaired_by_the_next_heartbeat() {
    let mut net = Net::new(2);
    net.join(0, alice());
    // Bob's delta is lost on the way.
    let (_, lost) = net.nodes[0].join(bob());
    assert!(lost.is_some());
    assert_eq!(net.nodes[1].users("acme", "s1"), vec!["alice"]);
    net.announced(1);

    net.beat(0);
    assert_eq!(net.nodes[1].users("acme", "s1"), vec!["alice", "bob"]);
    assert_eq!(net.announced(1), vec![change("bob", PresenceState::Joined)]);
}

#[test]
fn a_delta_after_a_gap_asks_for_a_snapshot_instead() {
    let mut net = Net::new(2);
    let _ = net.nodes[0].join(alice());
    // Bob's delta (seq 2) arrives, alice's (seq 1) did not: node 1 syncs.
    net.join(0, bob());
    assert_eq!(net.nodes[1].users("acme", "s1"), vec!["alice", "bob"]);
    // A late, older snapshot does not undo what is known.
    let old = super::cluster::Snapshot {
        node: "n0".into(),
        seq: 1,
        entries: vec![alice()],
        connections: Vec::new(),
    };
    assert!(net.nodes[1].synced(old, net.now).is_empty());
    assert_eq!(net.nodes[1].users("acme", "s1"), vec!["alice", "bob"]);
}

#[test]
fn a_silent_node_expires_after_the_ttl_with_its_users() {
    let mut net = Net::new(2);
    net.join(0, alice());
    net.join(1, alice());
    net.join(1, bob());
    net.announced(0);

    net.now += TTL;
    assert!(net.nodes[0].expire(net.now).is_empty(), "not past the TTL");
    net.now += Duration::from_millis(1);
    let expired = net.nodes[0].expire(net.now);
    assert_eq!(
        expired,
        vec![change("bob", PresenceState::Left)],
        "alice is still here on node 0"
    );
    assert_eq!(net.nodes[0].users("acme", "s1"), vec!["alice"]);
    assert_eq!(net.nodes[0].peer_count(), 0);
}

#[test]
fn a_heartbeat_keeps_a_node_alive() {
    let mut net = Net::new(2);
    net.join(1, bob());
    net.now += TTL;
    net.beat(1);
    net.now += TTL;
    assert!(net.nodes[0].expire(net.now).is_empty());
    assert_eq!(net.nodes[0].users("acme", "s1"), vec!["bob"]);
}

#[test]
fn an_expired_node_that_comes_back_is_synced_again() {
    let mut net = Net::new(2);
    net.join(1, bob());
    net.now += TTL * 2;
    net.nodes[0].expire(net.now);
    assert!(net.nodes[0].users("acme", "s1").is_empty());
    net.announced(0);
    // Its connection to NATS was cut, not its users: its next heartbeat
    // carries a sequence node 0 does not hold.
    net.beat(1);
    assert_eq!(net.nodes[0].users("acme", "s1"), vec!["bob"]);
    assert_eq!(net.announced(0), vec![change("bob", PresenceState::Joined)]);
}

#[test]
fn a_goodbye_removes_a_nodes_users_at_once() {
    let mut net = Net::new(2);
    net.join(1, bob());
    let bye = net.nodes[1].bye();
    net.deliver(1, bye);
    assert!(net.nodes[0].users("acme", "s1").is_empty());
    assert_eq!(
        net.announced(0),
        vec![
            change("bob", PresenceState::Joined),
            change("bob", PresenceState::Left)
        ]
    );
}

#[test]
fn a_hello_is_answered_with_a_heartbeat() {
    let mut net = Net::new(2);
    net.join(0, alice());
    let fresh = Cluster::new("n9".into(), TTL);
    let (changes, reaction) = net.nodes[0].receive(fresh.hello(), net.now);
    assert!(changes.is_empty());
    assert_eq!(reaction, Some(Reaction::Beat));
    // The newcomer learns node 0 from that heartbeat and asks for a snapshot.
    let mut fresh = fresh;
    let (_, reaction) = fresh.receive(net.nodes[0].beat(), net.now);
    assert_eq!(reaction, Some(Reaction::Sync("n0".into())));
    fresh.synced(net.nodes[0].snapshot(), net.now);
    assert_eq!(fresh.users("acme", "s1"), vec!["alice"]);
}

#[test]
fn a_node_ignores_its_own_messages() {
    let mut node = Cluster::new("n0".into(), TTL);
    let (_, wire) = node.join(alice());
    let (changes, reaction) = node.receive(wire.unwrap(), Instant::now());
    assert!(changes.is_empty() && reaction.is_none());
    let (changes, _) = node.receive(node.bye(), Instant::now());
    assert!(changes.is_empty());
    assert_eq!(node.users("acme", "s1"), vec!["alice"]);
}

#[test]
fn wire_messages_are_plain_json() {
    let mut node = Cluster::new("n0".into(), TTL);
    let (_, wire) = node.join(alice());
    let json = serde_json::to_value(wire.unwrap()).unwrap();
    assert_eq!(
        json,
        serde_json::json!({
            "type": "delta", "node": "n0", "seq": 1, "state": "joined",
            "entry": ["acme", "s1", "alice"]
        })
    );
}

#[test]
fn connection_counts_add_up_across_nodes_and_survive_a_lost_message() {
    let mut net = Net::new(3);
    net.count(0, "alice", 1);
    net.count(1, "alice", 2);
    assert_eq!(
        (
            net.elsewhere(0, "alice"),
            net.elsewhere(1, "alice"),
            net.elsewhere(2, "alice")
        ),
        (2, 1, 3)
    );
    assert_eq!(net.elsewhere(2, "bob"), 0);
    assert!(
        net.nodes[0]
            .count(UserKey::new("acme", "alice"), 1)
            .is_none(),
        "unchanged: nothing to publish"
    );

    // Node 1's drop to zero is lost; its next heartbeat repairs it, and
    // the snapshot says alice has no connection there any more.
    let lost = net.nodes[1].count(UserKey::new("acme", "alice"), 0);
    assert!(lost.is_some());
    assert_eq!(net.elsewhere(2, "alice"), 3);
    net.beat(1);
    assert_eq!(net.elsewhere(2, "alice"), 1);
    assert_eq!(net.elsewhere(0, "alice"), 0);

    // Counts and presence share one sequence: a presence delta after the
    // lost count is not applied out of order.
    let _ = net.nodes[0].count(UserKey::new("acme", "alice"), 4);
    net.join(0, bob());
    assert_eq!(
        net.elsewhere(2, "alice"),
        4,
        "the gap made node 2 resynchronise"
    );
    assert_eq!(net.nodes[2].users("acme", "s1"), vec!["bob"]);

    // A node that leaves takes its counts with it.
    let bye = net.nodes[0].bye();
    net.deliver(0, bye);
    assert_eq!(net.elsewhere(2, "alice"), 0);
}
