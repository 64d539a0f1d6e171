//! [`NatsPresence`]: the cluster protocol over core NATS subjects.
//!
//! - `{prefix}.nodes`: every node's hello, heartbeats, deltas and goodbye
//!   (one subject, so one node's messages arrive in order).
//! - `{prefix}.sync.{node}`: request/reply, a node's snapshot.
//!
//! Core NATS rather than a KV bucket: presence is ephemeral (nothing to
//! keep when every node is gone), the watchers of a KV bucket are not told
//! when an entry ages out (NATS 2.9/2.10 write no delete marker), so a node
//! would keep its own expiry timers anyway, and refreshing every entry
//! before its TTL would cost one JetStream write per user per interval
//! instead of one small heartbeat per node.

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use super::cluster::{Cluster, Reaction, Snapshot, Wire};
use super::view::{Entry, UserKey};
use super::{CHANGES_CAPACITY, Presence, PresenceChange};

/// The timing and naming of [`NatsPresence`].
#[derive(Debug, Clone)]
pub struct NatsPresenceConfig {
    /// Subjects start with this. Default `larder.presence`; nodes that
    /// share presence must share it (tests use their own).
    pub subject_prefix: String,
    /// How often a node says it is alive. Default 2 s: one message per
    /// node per interval, and what a lost delta can cost in staleness.
    pub heartbeat: Duration,
    /// A node not heard from for longer than this is dropped with its users.
    /// Default 6 s (three heartbeats: one late heartbeat is not a death).
    /// A node killed without a goodbye has its users announced `left`
    /// between `ttl - heartbeat` and `ttl + heartbeat` after it died.
    pub ttl: Duration,
    /// How long a snapshot request may take. Default 1 s.
    pub sync_timeout: Duration,
}

impl Default for NatsPresenceConfig {
    fn default() -> Self {
        Self {
            subject_prefix: "larder.presence".into(),
            heartbeat: Duration::from_secs(2),
            ttl: Duration::from_secs(6),
            sync_timeout: Duration::from_secs(1),
        }
    }
}

/// Why [`NatsPresence`] could not start.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The NATS server could not be reached.
    #[error("cannot connect to NATS at {url}: {source}")]
    Connect {
        /// The server address.
        url: String,
        /// The client's error.
        #[source]
        source: async_nats::ConnectError,
    },
    /// A subscription or the first flush failed.
    #[error("NATS presence subscription failed: {0}")]
    Subscribe(String),
}

/// Messages waiting to be published, in order. A full queue (NATS away for
/// long) drops the message: peers notice the sequence gap at the next
/// heartbeat and ask for a snapshot, so nothing is lost for good.
const OUTBOX: usize = 1_024;

struct Shared {
    client: async_nats::Client,
    cluster: Mutex<Cluster>,
    changes: broadcast::Sender<PresenceChange>,
    outbox: mpsc::Sender<Wire>,
    config: NatsPresenceConfig,
}

impl Shared {
    fn cluster(&self) -> MutexGuard<'_, Cluster> {
        self.cluster
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn queue(&self, wire: Wire) {
        if self.outbox.try_send(wire).is_err() {
            tracing::warn!("presence outbox full; peers will resynchronise");
        }
    }

    fn announce(&self, changes: Vec<PresenceChange>) {
        for change in changes {
            // No receiver (no hub yet) is fine: `users` is still right.
            let _ = self.changes.send(change);
        }
    }

    fn nodes_subject(&self) -> String {
        format!("{}.nodes", self.config.subject_prefix)
    }

    fn sync_subject(&self, node: &str) -> String {
        format!("{}.sync.{node}", self.config.subject_prefix)
    }
}

/// Presence shared by the nodes of a cluster over NATS (cargo feature
/// `nats`). Give it to the hub with
/// [`Hub::use_presence`](crate::Hub::use_presence) before serving
/// connections; call [`close`](Self::close) on shutdown so peers drop this
/// node's users at once (dropped without it, like a crash, they expire
/// after the TTL).
pub struct NatsPresence {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for NatsPresence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsPresence")
            .field("node", &self.node())
            .finish_non_exhaustive()
    }
}

impl NatsPresence {
    /// Connects to the NATS server at `url` and joins the cluster as
    /// `node_id` (any name: the host name, the pod name) with the default
    /// [`NatsPresenceConfig`].
    pub async fn connect(url: &str, node_id: &str) -> Result<Self, PresenceError> {
        Self::connect_with(url, node_id, NatsPresenceConfig::default()).await
    }

    /// [`connect`](Self::connect) with a configuration.
    pub async fn connect_with(
        url: &str,
        node_id: &str,
        config: NatsPresenceConfig,
    ) -> Result<Self, PresenceError> {
        let client = async_nats::ConnectOptions::new()
            .name(format!("larder-presence-{node_id}"))
            .connect(url)
            .await
            .map_err(|source| PresenceError::Connect {
                url: url.to_owned(),
                source,
            })?;
        Self::start(client, node_id, config).await
    }

    /// Joins the cluster on an existing connection (e.g. the event bus's).
    pub async fn start(
        client: async_nats::Client,
        node_id: &str,
        config: NatsPresenceConfig,
    ) -> Result<Self, PresenceError> {
        let me = incarnation(node_id);
        let (outbox, outgoing) = mpsc::channel(OUTBOX);
        let shared = Arc::new(Shared {
            client,
            cluster: Mutex::new(Cluster::new(me.clone(), config.ttl)),
            changes: broadcast::Sender::new(CHANGES_CAPACITY),
            outbox,
            config,
        });
        let subscribe_error =
            |e: async_nats::SubscribeError| PresenceError::Subscribe(e.to_string());
        let nodes = shared
            .client
            .subscribe(shared.nodes_subject())
            .await
            .map_err(subscribe_error)?;
        let syncs = shared
            .client
            .subscribe(shared.sync_subject(&me))
            .await
            .map_err(subscribe_error)?;
        // The server has both subscriptions before anyone is told we exist.
        shared
            .client
            .flush()
            .await
            .map_err(|e| PresenceError::Subscribe(e.to_string()))?;
        let weak = Arc::downgrade(&shared);
        let tasks = vec![
            tokio::spawn(publish(weak.clone(), outgoing)),
            tokio::spawn(listen(weak.clone(), nodes)),
            tokio::spawn(answer_syncs(weak.clone(), syncs)),
            tokio::spawn(heartbeat(weak)),
        ];
        shared.queue(shared.cluster().hello());
        tracing::info!(node = %me, "presence: joined the cluster over NATS");
        Ok(Self { shared, tasks })
    }

    /// This node's name in the cluster: `node_id` and a start-time suffix,
    /// so a restarted node is a new one.
    pub fn node(&self) -> String {
        self.shared.cluster().me().to_owned()
    }

    /// Leaves the cluster: peers drop this node's users now. Presence calls
    /// after it are not published.
    pub async fn close(&self) {
        let bye = self.shared.cluster().bye();
        for task in &self.tasks {
            task.abort();
        }
        if let Ok(payload) = serde_json::to_vec(&bye) {
            let _ = self
                .shared
                .client
                .publish(self.shared.nodes_subject(), payload.into())
                .await;
        }
        let _ = self.shared.client.flush().await;
    }
}

impl Drop for NatsPresence {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Presence for NatsPresence {
    fn join(&self, tenant: &str, store: &str, user: &str) -> Option<PresenceChange> {
        let (change, wire) = self.shared.cluster().join(Entry::new(tenant, store, user));
        if let Some(wire) = wire {
            self.shared.queue(wire);
        }
        change
    }

    fn leave(&self, tenant: &str, store: &str, user: &str) -> Option<PresenceChange> {
        let (change, wire) = self.shared.cluster().leave(Entry::new(tenant, store, user));
        if let Some(wire) = wire {
            self.shared.queue(wire);
        }
        change
    }

    fn users(&self, tenant: &str, store: &str) -> Vec<String> {
        self.shared.cluster().users(tenant, store)
    }

    fn connections_here(&self, tenant: &str, user: &str, connections: u32) {
        let wire = self
            .shared
            .cluster()
            .count(UserKey::new(tenant, user), connections);
        if let Some(wire) = wire {
            self.shared.queue(wire);
        }
    }

    fn connections_elsewhere(&self, tenant: &str, user: &str) -> u32 {
        self.shared
            .cluster()
            .connections_elsewhere(&UserKey::new(tenant, user))
    }

    fn changes(&self) -> broadcast::Receiver<PresenceChange> {
        self.shared.changes.subscribe()
    }
}

/// A name unique to this run of the node, usable as a subject token.
fn incarnation(node_id: &str) -> String {
    let name: String = node_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{name}-{:x}", started ^ u128::from(std::process::id()))
}

/// Publishes the outbox in order.
async fn publish(shared: Weak<Shared>, mut outgoing: mpsc::Receiver<Wire>) {
    while let Some(wire) = outgoing.recv().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let payload = match serde_json::to_vec(&wire) {
            Ok(payload) => payload,
            Err(error) => {
                tracing::error!(%error, "presence message not serialisable");
                continue;
            }
        };
        if let Err(error) = shared
            .client
            .publish(shared.nodes_subject(), payload.into())
            .await
        {
            tracing::warn!(%error, "presence publish failed; peers will resynchronise");
        }
    }
}

/// Applies the other nodes' messages.
async fn listen(shared: Weak<Shared>, mut nodes: async_nats::Subscriber) {
    while let Some(message) = nodes.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let wire: Wire = match serde_json::from_slice(&message.payload) {
            Ok(wire) => wire,
            Err(error) => {
                tracing::warn!(%error, subject = %message.subject, "presence: unreadable message ignored");
                continue;
            }
        };
        let (changes, reaction) = shared.cluster().receive(wire, Instant::now());
        shared.announce(changes);
        match reaction {
            Some(Reaction::Beat) => {
                let beat = shared.cluster().beat();
                shared.queue(beat);
            }
            Some(Reaction::Sync(node)) => {
                tokio::spawn(sync(Arc::downgrade(&shared), node));
            }
            None => {}
        }
    }
}

/// Asks `node` for its snapshot and applies it. A failure is logged: the
/// next heartbeat asks again.
async fn sync(shared: Weak<Shared>, node: String) {
    let Some(strong) = shared.upgrade() else {
        return;
    };
    // Not holding the presence alive while waiting for the answer.
    let client = strong.client.clone();
    let subject = strong.sync_subject(&node);
    let timeout = strong.config.sync_timeout;
    drop(strong);
    let request = client.request(subject, Bytes::new());
    let reply = match tokio::time::timeout(timeout, request).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(error)) => {
            tracing::debug!(%error, node, "presence sync failed");
            return;
        }
        Err(_) => {
            tracing::debug!(node, "presence sync timed out");
            return;
        }
    };
    let Some(shared) = shared.upgrade() else {
        return;
    };
    match serde_json::from_slice::<Snapshot>(&reply.payload) {
        Ok(snapshot) => {
            let changes = shared.cluster().synced(snapshot, Instant::now());
            shared.announce(changes);
        }
        Err(error) => tracing::warn!(%error, node, "presence: unreadable snapshot ignored"),
    }
}

/// Answers snapshot requests for this node.
async fn answer_syncs(shared: Weak<Shared>, mut syncs: async_nats::Subscriber) {
    while let Some(message) = syncs.next().await {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let Some(reply) = message.reply else {
            continue;
        };
        let snapshot = shared.cluster().snapshot();
        match serde_json::to_vec(&snapshot) {
            Ok(payload) => {
                if let Err(error) = shared.client.publish(reply, payload.into()).await {
                    tracing::warn!(%error, "presence snapshot reply failed");
                }
            }
            Err(error) => tracing::error!(%error, "presence snapshot not serialisable"),
        }
    }
}

/// Every heartbeat: say this node is alive, and drop the silent ones.
async fn heartbeat(shared: Weak<Shared>) {
    let period = match shared.upgrade() {
        Some(shared) => shared.config.heartbeat,
        None => return,
    };
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(shared) = shared.upgrade() else {
            return;
        };
        let (beat, expired) = {
            let mut cluster = shared.cluster();
            (cluster.beat(), cluster.expire(Instant::now()))
        };
        shared.queue(beat);
        shared.announce(expired);
    }
}
