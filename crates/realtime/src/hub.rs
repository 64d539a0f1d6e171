//! The hub: one broadcaster routing the ordered event feed into rooms, the
//! subscription registry with replay-then-live resume, presence, per-address
//! connection permits and shutdown.
//!
//! - `subscriber`: one subscriber, its queue and its states.
//! - `subscribe`: starting a subscription (replay, then live).
//! - `route`: the broadcaster, event routing.
//! - `presence`: a node's presence counts, the presence port, and the
//!   announcements to a store's room.
//! - `derived`: the state publisher of derived topics (dashboards).

mod admission;
mod derived;
mod presence;
mod route;
mod subscribe;
mod subscriber;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::frame::SharedText;
use crate::metrics as m;
use crate::presence::{LocalPresence, Presence};
use crate::{Authorizer, EventSource, Identity, RealtimeConfig, SnapshotProvider, Topic};

pub(crate) use derived::Stale;

pub use admission::{ConnectionPermit, TooManyConnections, TooManyUserConnections, UserPermit};
use route::broadcast;
pub use route::{EventFeed, catch_up_feed};
pub(crate) use subscribe::Start;
pub use subscribe::SubscribeError;
pub use subscriber::EventFrame;
pub(crate) use subscriber::{ConnSignal, Delivery, Out, Outbound, Subscriber, activate_collect};
use subscriber::{Mode, SubState, lock};

type RoomKey = (String, String);

#[derive(Debug, Default)]
struct Routing {
    /// (tenant, topic string) → subscribers. Tenant in the key makes tenant
    /// isolation structural: an event is only looked up in its own tenant.
    rooms: HashMap<RoomKey, Vec<Arc<Subscriber>>>,
    /// (tenant, store) → the station topics with a room: where an order
    /// event naming no station goes (it is about the whole order).
    stations: HashMap<RoomKey, Vec<String>>,
    /// Rooms of derived topics: while there are none, routing an event
    /// skips marking dashboards stale.
    derived_rooms: usize,
    subscriptions: usize,
}

impl Routing {
    /// Adds `sub` to the room of `topic` (`key`), making the room if needed.
    fn join(&mut self, tenant: &str, topic: &Topic, key: &str, sub: &Arc<Subscriber>) {
        let room = self
            .rooms
            .entry((tenant.to_owned(), key.to_owned()))
            .or_default();
        if room.is_empty() {
            if let Topic::Station { store, .. } = topic {
                self.stations
                    .entry((tenant.to_owned(), store.clone()))
                    .or_default()
                    .push(key.to_owned());
            }
            if topic.is_derived() {
                self.derived_rooms += 1;
            }
        }
        room.push(sub.clone());
    }

    /// Takes subscriber `id` out of the room of `topic` (`key`), removing
    /// an emptied room; whether it was there.
    fn leave(&mut self, tenant: &str, topic: &Topic, key: &str, id: u64) -> bool {
        let room_key = (tenant.to_owned(), key.to_owned());
        let Some(room) = self.rooms.get_mut(&room_key) else {
            return false;
        };
        let before = room.len();
        room.retain(|s| s.id != id);
        let found = room.len() != before;
        if room.is_empty() {
            self.rooms.remove(&room_key);
            if topic.is_derived() {
                self.derived_rooms -= 1;
            }
            if let Topic::Station { store, .. } = topic {
                let index_key = (tenant.to_owned(), store.clone());
                if let Some(keys) = self.stations.get_mut(&index_key) {
                    keys.retain(|k| k != key);
                    if keys.is_empty() {
                        self.stations.remove(&index_key);
                    }
                }
            }
        }
        found
    }
}

struct Inner {
    source: Arc<dyn EventSource>,
    authorizer: Arc<dyn Authorizer>,
    snapshots: Option<Arc<dyn SnapshotProvider>>,
    config: RealtimeConfig,
    /// Held only for short, await-free sections: the broadcaster routes one
    /// event under it, and registration reads the position under it, so a
    /// subscriber misses no event after the position it registered at.
    routing: Mutex<Routing>,
    /// The last routed position; written under `routing`.
    position: AtomicU64,
    next_id: AtomicU64,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// (tenant, user) → that user's connections on this node, counted only
    /// while `max_connections_per_user` is set. The presence port hears of
    /// every change, under this lock.
    per_user: Mutex<HashMap<(String, String), u32>>,
    connections: AtomicUsize,
    idle: Notify,
    /// (tenant, store) → user → number of that user's connections present
    /// on this node. The port hears of a user's first and last one only.
    presence: Mutex<HashMap<RoomKey, BTreeMap<String, usize>>>,
    /// Who is present across nodes ([`LocalPresence`] unless replaced by
    /// [`Hub::use_presence`]). Always taken after `presence`, never before.
    presence_port: RwLock<Arc<dyn Presence>>,
    shutdown: watch::Sender<Option<Duration>>,
    /// `executed` command frames waiting for their position to be routed.
    commands: crate::lifecycle::Waiting,
    /// Derived topics (dashboards) whose state is stale, by room: what the
    /// state publisher recomputes and pushes at its next round.
    stale: Mutex<HashMap<RoomKey, Stale>>,
}

/// The realtime hub: routes committed events to WebSocket connections, SSE
/// streams and long-polls. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl fmt::Debug for Hub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hub")
            .field("position", &self.position())
            .field("connections", &self.connection_count())
            .field("subscriptions", &self.subscription_count())
            .finish_non_exhaustive()
    }
}

impl Hub {
    /// Starts the hub and its broadcaster task (needs a tokio runtime).
    ///
    /// - `source` answers resume replays and refills feed gaps.
    /// - `feed` is the gap-free ordered stream of committed events after
    ///   position `after`; the hub's [`position`](Self::position) starts at
    ///   `after`. In the server: `CatchUp::start(store, Some(bus), head)` and
    ///   [`catch_up_feed`], with `after = head`.
    /// - `snapshots` is optional: without it `snapshot: true` is answered
    ///   with `snapshot_unavailable`.
    pub fn start(
        source: Arc<dyn EventSource>,
        feed: EventFeed,
        after: u64,
        authorizer: Arc<dyn Authorizer>,
        snapshots: Option<Arc<dyn SnapshotProvider>>,
        config: RealtimeConfig,
    ) -> Hub {
        let runtime = tokio::runtime::Handle::current();
        Self::start_on(&runtime, source, feed, after, authorizer, snapshots, config)
    }

    /// [`Hub::start`], with the broadcaster (routing, and the writes of
    /// event frames into the sockets: the fan-out) on `runtime`: e.g. one
    /// on a thread of its own at a lower priority, so that on a busy core
    /// commands and other requests go first and the fan-out takes the rest.
    pub fn start_on(
        runtime: &tokio::runtime::Handle,
        source: Arc<dyn EventSource>,
        feed: EventFeed,
        after: u64,
        authorizer: Arc<dyn Authorizer>,
        snapshots: Option<Arc<dyn SnapshotProvider>>,
        config: RealtimeConfig,
    ) -> Hub {
        let inner = Arc::new(Inner {
            source,
            authorizer,
            snapshots,
            config,
            routing: Mutex::new(Routing::default()),
            position: AtomicU64::new(after),
            next_id: AtomicU64::new(1),
            per_ip: Mutex::new(HashMap::new()),
            per_user: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
            presence: Mutex::new(HashMap::new()),
            presence_port: RwLock::new(Arc::new(LocalPresence::new())),
            shutdown: watch::Sender::new(None),
            commands: crate::lifecycle::Waiting::default(),
            stale: Mutex::new(HashMap::new()),
        });
        runtime.spawn(broadcast(Arc::downgrade(&inner), feed));
        Hub { inner }
    }

    /// The last position routed to subscribers.
    pub fn position(&self) -> u64 {
        self.inner.position.load(Ordering::Acquire)
    }

    /// Connections being served.
    pub fn connection_count(&self) -> usize {
        self.inner.connections.load(Ordering::Acquire)
    }

    /// Active subscriptions (one per WebSocket topic, one per stream).
    pub fn subscription_count(&self) -> usize {
        lock(&self.inner.routing).subscriptions
    }

    /// Subscribers in the room of `topic` within `tenant`.
    pub fn room_size(&self, tenant: &str, topic: &Topic) -> usize {
        lock(&self.inner.routing)
            .rooms
            .get(&(tenant.to_owned(), topic.to_string()))
            .map_or(0, Vec::len)
    }

    /// The users present in a store (on any node the presence port
    /// knows of), sorted.
    pub fn present_users(&self, tenant: &str, store: &str) -> Vec<String> {
        self.presence_port().users(tenant, store)
    }

    /// The configuration.
    pub fn config(&self) -> &RealtimeConfig {
        &self.inner.config
    }

    /// The authorizer, for the server's HTTP routes.
    pub fn authorizer(&self) -> &Arc<dyn Authorizer> {
        &self.inner.authorizer
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutdown.borrow().is_some()
    }

    /// Tells every connection to reconnect elsewhere (`reconnect` with a
    /// delay spread deterministically over `window`, then close 1001), ends
    /// every SSE stream, stops routing, and waits (bounded by twice the
    /// close timeout) until the connections are gone.
    pub async fn shutdown(&self, window: Duration) {
        let idle = self.inner.idle.notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        self.inner.shutdown.send_replace(Some(window));
        {
            let routing = lock(&self.inner.routing);
            for sub in routing.rooms.values().flatten() {
                let mut state = sub.state();
                if matches!(state.out, Some(Out::Stream(_))) {
                    let last_sent = match state.mode {
                        Mode::Live { last_sent } | Mode::Dead { last_sent } => last_sent,
                        Mode::Buffering(_) => 0,
                    };
                    state.mode = Mode::Dead { last_sent };
                    state.out = None;
                }
            }
        }
        let wait = async {
            loop {
                if self.connection_count() == 0 {
                    return;
                }
                idle.as_mut().await;
                idle.set(self.inner.idle.notified());
                idle.as_mut().enable();
            }
        };
        let _ = tokio::time::timeout(self.inner.config.close_timeout * 2, wait).await;
    }

    pub(crate) fn waiting_commands(&self) -> &crate::lifecycle::Waiting {
        &self.inner.commands
    }

    /// Sends a frame that is not an event (a command's lifecycle) to the
    /// WebSocket subscribers of `topic` in `tenant` whose identity `admit`s
    /// it, live or still replaying (it goes straight to the queue); a full
    /// queue closes the connection as a slow consumer.
    pub(crate) fn notify_room(
        &self,
        tenant: &str,
        topic: &str,
        admit: impl Fn(&Identity) -> bool,
        frame: &SharedText,
    ) {
        let routing = lock(&self.inner.routing);
        let Some(room) = routing.rooms.get(&(tenant.to_owned(), topic.to_owned())) else {
            return;
        };
        for sub in room {
            sub.notify_admitted(&admit, frame);
        }
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<Option<Duration>> {
        self.inner.shutdown.subscribe()
    }

    pub(crate) fn source(&self) -> &Arc<dyn EventSource> {
        &self.inner.source
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn connection_opened(&self) {
        self.inner.connections.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!(m::CONNECTIONS).increment(1.0);
    }

    pub(crate) fn connection_closed(&self) {
        metrics::gauge!(m::CONNECTIONS).decrement(1.0);
        if self.inner.connections.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.inner.idle.notify_waiters();
        }
    }

    /// Registers a subscriber in buffering mode and returns it with the
    /// position it is registered at: every event routed after that position
    /// reaches it (buffered until [`activate_ws`](Self::activate_ws) or
    /// [`activate_collect`]).
    pub(crate) fn register(
        &self,
        identity: Arc<Identity>,
        topics: &[Topic],
        out: Out,
    ) -> (Arc<Subscriber>, u64) {
        let sub = Arc::new(Subscriber {
            id: self.next_id(),
            tenant: identity.tenant.clone(),
            topics: topics
                .iter()
                .map(|t| (t.clone(), Arc::from(t.to_string())))
                .collect(),
            state: Mutex::new(SubState {
                identity,
                mode: Mode::Buffering(Vec::new()),
                out: Some(out),
            }),
        });
        let mut routing = lock(&self.inner.routing);
        for (topic, key) in &sub.topics {
            routing.join(&sub.tenant, topic, key, &sub);
        }
        routing.subscriptions += 1;
        metrics::gauge!(m::SUBSCRIPTIONS).increment(1.0);
        let position = self.inner.position.load(Ordering::Acquire);
        (sub, position)
    }

    /// Removes a subscriber from its rooms; returns the position up to which
    /// it received every matching event (for long-poll's `next_since`).
    pub(crate) fn unregister(&self, sub: &Subscriber) -> u64 {
        let mut routing = lock(&self.inner.routing);
        let mut found = false;
        for (topic, key) in &sub.topics {
            found |= routing.leave(&sub.tenant, topic, key, sub.id);
        }
        if found {
            routing.subscriptions -= 1;
            metrics::gauge!(m::SUBSCRIPTIONS).decrement(1.0);
        }
        let position = self.inner.position.load(Ordering::Acquire);
        let mut state = sub.state();
        let covered = match state.mode {
            Mode::Live { last_sent } => last_sent.max(position),
            Mode::Dead { last_sent } => last_sent,
            Mode::Buffering(_) => 0,
        };
        state.mode = Mode::Dead { last_sent: covered };
        state.out = None;
        covered
    }
}

/// A deterministic reconnect delay for connection `id` within `window`:
/// spread so that not every client comes back at once.
pub(crate) fn reconnect_delay(id: u64, window: Duration) -> u64 {
    let window_ms = window.as_millis() as u64;
    if window_ms == 0 {
        return 0;
    }
    id.wrapping_mul(0x9E37_79B9_7F4A_7C15) % window_ms
}
