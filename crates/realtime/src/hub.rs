//! The hub: one broadcaster routing the ordered event feed into rooms, the
//! subscription registry with replay-then-live resume, presence, per-address
//! connection permits and shutdown.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_core::Stream;
use futures_util::StreamExt;
use larder_store::{CatchUp, EventFilter, RecordedEvent, StoreError};
use tokio::sync::{Notify, mpsc, watch};

use crate::frame::{CloseReason, SharedText, close};
use crate::metrics as m;
use crate::protocol::{
    ErrorCode, PresenceState, Resume, ServerMessage, SnapshotBody, event_frame_string, event_json,
};
use crate::{Authorizer, EventSource, Identity, RealtimeConfig, SnapshotProvider, Topic};

/// The ordered, gap-free feed of committed events the hub routes: each item's
/// position is the previous one's plus one. Build it with [`catch_up_feed`]
/// from a [`CatchUp`], or from any stream (a channel in tests). Should the
/// feed skip a position anyway, the hub refills the gap from the
/// [`EventSource`] before routing on.
pub type EventFeed = Pin<Box<dyn Stream<Item = Arc<RecordedEvent>> + Send>>;

/// Turns a [`CatchUp`] tail into an [`EventFeed`]. A failed store read is
/// logged and retried after a second: the tail does not advance on failure,
/// so nothing is skipped.
pub fn catch_up_feed(tail: CatchUp) -> EventFeed {
    let batches = futures_util::stream::unfold(tail, |mut tail| async move {
        loop {
            match tail.next_batch().await {
                Ok(batch) => return Some((futures_util::stream::iter(batch), tail)),
                Err(error) => {
                    tracing::warn!(%error, position = tail.position(), "realtime feed read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Box::pin(batches.flatten())
}

/// One routed event for one subscriber: shared strings, cloned as pointers.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) position: u64,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) topic: Arc<str>,
    pub(crate) event: Arc<str>,
    /// The WebSocket `event` message for `topic`, when already built: one
    /// buffer shared by every subscriber of the topic.
    pub(crate) frame: Option<SharedText>,
}

impl Delivery {
    pub(crate) fn ws_frame(&self) -> SharedText {
        self.frame.clone().unwrap_or_else(|| {
            SharedText::from(event_frame_string(&self.topic, self.position, &self.event))
        })
    }

    pub(crate) fn to_event_frame(&self) -> EventFrame {
        EventFrame {
            position: self.position,
            topic: self.topic.clone(),
            event: self.event.clone(),
            recorded_at: self.recorded_at,
        }
    }
}

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A shared frame; `recorded_at` is set for events (delivery latency).
    Shared(SharedText, Option<DateTime<Utc>>),
    /// A frame built for this connection only.
    Text(String),
    /// A WebSocket ping.
    Ping,
}

/// How a connection is told to close, by itself or by the hub. The first
/// reason wins.
#[derive(Debug)]
pub(crate) struct ConnSignal {
    pub(crate) close: watch::Sender<Option<CloseReason>>,
}

impl ConnSignal {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            close: watch::Sender::new(None),
        })
    }

    /// Asks the connection to close with `reason`, unless it already is.
    pub(crate) fn close(&self, reason: CloseReason) -> bool {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        })
    }
}

/// Where a subscriber's deliveries go.
#[derive(Debug)]
pub(crate) enum Out {
    /// A WebSocket connection's outbound queue.
    Ws {
        tx: mpsc::Sender<Outbound>,
        signal: Arc<ConnSignal>,
    },
    /// An SSE / long-poll stream.
    Stream(mpsc::Sender<EventFrame>),
}

#[derive(Debug)]
enum Mode {
    /// Registered, replay in progress: live events wait here.
    Buffering(Vec<Delivery>),
    /// Delivering; anything at or before `last_sent` is a duplicate.
    Live { last_sent: u64 },
    /// Closed, unsubscribed or overflowed: nothing more is delivered.
    Dead { last_sent: u64 },
}

#[derive(Debug)]
struct SubState {
    identity: Arc<Identity>,
    mode: Mode,
    /// Dropped when the subscriber dies, which ends a stream's receiver.
    out: Option<Out>,
}

/// One subscription: one topic of a WebSocket connection, or the topic set
/// of an SSE / long-poll stream. It sits in the room of each of its topics.
#[derive(Debug)]
pub(crate) struct Subscriber {
    id: u64,
    tenant: String,
    topics: Vec<(Topic, Arc<str>)>,
    state: Mutex<SubState>,
}

/// Locks a mutex, recovering from poisoning: every critical section leaves
/// the data consistent, so a panic elsewhere must not take the hub down.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Subscriber {
    fn state(&self) -> MutexGuard<'_, SubState> {
        lock(&self.state)
    }

    /// Replaces the identity deliveries are filtered with (token refresh).
    pub(crate) fn set_identity(&self, identity: Arc<Identity>) {
        self.state().identity = identity;
    }

    /// Offers a routed event. Called by the broadcaster with the routing
    /// lock held, so it never waits: a full queue kills the subscriber.
    fn offer(&self, event: &RecordedEvent, delivery: &Delivery, max_buffered: usize) {
        let mut state = self.state();
        if !state.identity.can_see(&event.metadata) {
            return;
        }
        match &mut state.mode {
            Mode::Dead { .. } => {}
            Mode::Buffering(buffer) => {
                if buffer.len() >= max_buffered {
                    kill(&mut state);
                } else {
                    buffer.push(delivery.clone());
                }
            }
            Mode::Live { last_sent } => {
                if delivery.position <= *last_sent {
                    return;
                }
                *last_sent = delivery.position;
                if !try_deliver(state.out.as_ref(), delivery) {
                    kill(&mut state);
                }
            }
        }
    }

    /// Sends a non-event frame (presence) to a live WebSocket subscriber.
    fn notify(&self, frame: &SharedText) {
        let mut state = self.state();
        if !matches!(state.mode, Mode::Live { .. }) {
            return;
        }
        if let Some(Out::Ws { tx, .. }) = &state.out {
            if tx.try_send(Outbound::Shared(frame.clone(), None)).is_err() {
                kill(&mut state);
            }
        }
    }
}

/// Hands a delivery to its queue without waiting; false if it is full.
fn try_deliver(out: Option<&Out>, delivery: &Delivery) -> bool {
    match out {
        Some(Out::Ws { tx, .. }) => tx
            .try_send(Outbound::Shared(
                delivery.ws_frame(),
                Some(delivery.recorded_at),
            ))
            .is_ok(),
        Some(Out::Stream(tx)) => tx.try_send(delivery.to_event_frame()).is_ok(),
        None => false,
    }
}

/// Marks a subscriber dead after an overflow: its connection closes as a
/// slow consumer (it resumes with `since`), its stream ends.
fn kill(state: &mut SubState) {
    let last_sent = match state.mode {
        Mode::Live { last_sent } | Mode::Dead { last_sent } => last_sent,
        Mode::Buffering(_) => 0,
    };
    state.mode = Mode::Dead { last_sent };
    metrics::counter!(m::DROPPED).increment(1);
    if let Some(Out::Ws { signal, .. }) = state.out.take() {
        if signal.close(CloseReason::new(close::SLOW_CONSUMER, "slow consumer")) {
            metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
        }
    }
}

/// An event delivered to an SSE or long-poll client.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    /// The event's global position: the SSE `id:` and the next `since`.
    pub position: u64,
    /// The (first) subscribed topic it matched.
    pub topic: Arc<str>,
    /// The event as JSON (the same text the WebSocket `event` carries).
    pub event: Arc<str>,
    /// When the event was committed.
    pub recorded_at: DateTime<Utc>,
}

/// Why a subscription could not start.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// A topic string does not parse.
    #[error(transparent)]
    InvalidTopic(#[from] crate::TopicError),
    /// The identity may not subscribe to this topic.
    #[error("not allowed to subscribe to {0}")]
    Forbidden(String),
    /// `since` is ahead of the log's head (long-poll), or otherwise unusable.
    #[error("since {since} is ahead of the head {head}")]
    InvalidSince {
        /// The requested position.
        since: u64,
        /// The head of the log.
        head: u64,
    },
    /// No topic was given.
    #[error("no topic given")]
    NoTopics,
    /// No snapshot exists for the topic, or producing it failed.
    #[error("snapshot unavailable: {0}")]
    SnapshotUnavailable(String),
    /// The event source could not be read.
    #[error("event source unavailable")]
    Unavailable(#[from] StoreError),
    /// The hub is shutting down, or the subscriber was closed meanwhile.
    #[error("the realtime hub is closed")]
    Closed,
}

impl SubscribeError {
    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidTopic(_) | Self::NoTopics => ErrorCode::InvalidTopic,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::InvalidSince { .. } => ErrorCode::InvalidSince,
            Self::SnapshotUnavailable(_) => ErrorCode::SnapshotUnavailable,
            Self::Unavailable(_) | Self::Closed => ErrorCode::Unavailable,
        }
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Live,
    Since(u64),
    Snapshot,
}

/// A registered subscription whose replay has been read but not yet sent.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) sub: Arc<Subscriber>,
    pub(crate) resume: Resume,
    pub(crate) position: u64,
    pub(crate) snapshot: Option<SnapshotBody>,
    pub(crate) replay: Vec<Delivery>,
    /// Deliveries at or before it are duplicates of the replay or `since`.
    pub(crate) last: u64,
}

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

type RoomKey = (String, String);

#[derive(Debug, Default)]
struct Routing {
    /// (tenant, topic string) → subscribers. Tenant in the key makes tenant
    /// isolation structural: an event is only looked up in its own tenant.
    rooms: HashMap<RoomKey, Vec<Arc<Subscriber>>>,
    subscriptions: usize,
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
    connections: AtomicUsize,
    idle: Notify,
    /// (tenant, store) → user → number of that user's connections present.
    presence: Mutex<HashMap<RoomKey, BTreeMap<String, usize>>>,
    shutdown: watch::Sender<Option<Duration>>,
    /// `executed` command frames waiting for their position to be routed.
    commands: crate::lifecycle::Waiting,
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
        let inner = Arc::new(Inner {
            source,
            authorizer,
            snapshots,
            config,
            routing: Mutex::new(Routing::default()),
            position: AtomicU64::new(after),
            next_id: AtomicU64::new(1),
            per_ip: Mutex::new(HashMap::new()),
            connections: AtomicUsize::new(0),
            idle: Notify::new(),
            presence: Mutex::new(HashMap::new()),
            shutdown: watch::Sender::new(None),
            commands: crate::lifecycle::Waiting::default(),
        });
        tokio::spawn(broadcast(Arc::downgrade(&inner), feed));
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

    /// The users present in a store, sorted.
    pub fn present_users(&self, tenant: &str, store: &str) -> Vec<String> {
        lock(&self.inner.presence)
            .get(&(tenant.to_owned(), store.to_owned()))
            .map(|users| users.keys().cloned().collect())
            .unwrap_or_default()
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
            let mut state = sub.state();
            if matches!(state.mode, Mode::Dead { .. }) || !admit(&state.identity) {
                continue;
            }
            if let Some(Out::Ws { tx, .. }) = &state.out {
                if tx.try_send(Outbound::Shared(frame.clone(), None)).is_err() {
                    kill(&mut state);
                }
            }
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
        for (_, key) in &sub.topics {
            routing
                .rooms
                .entry((sub.tenant.clone(), key.to_string()))
                .or_default()
                .push(sub.clone());
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
        for (_, key) in &sub.topics {
            let room_key = (sub.tenant.clone(), key.to_string());
            if let Some(room) = routing.rooms.get_mut(&room_key) {
                let before = room.len();
                room.retain(|s| s.id != sub.id);
                found |= room.len() != before;
                if room.is_empty() {
                    routing.rooms.remove(&room_key);
                }
            }
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

    /// Registers a subscription and reads what it must replay. The caller
    /// sends the reply, then the replay, then activates it.
    pub(crate) async fn start_subscription(
        &self,
        identity: Arc<Identity>,
        topics: &[Topic],
        start: Start,
        out: Out,
    ) -> Result<Started, SubscribeError> {
        if topics.is_empty() {
            return Err(SubscribeError::NoTopics);
        }
        if self.is_shutting_down() {
            return Err(SubscribeError::Closed);
        }
        if let Some(topic) = topics.iter().find(|t| !identity.may_subscribe(t)) {
            return Err(SubscribeError::Forbidden(topic.to_string()));
        }
        let snapshot = match start {
            Start::Snapshot => {
                let provider = self.inner.snapshots.as_ref().ok_or_else(|| {
                    SubscribeError::SnapshotUnavailable("no snapshot provider".into())
                })?;
                match provider.snapshot(&identity, &topics[0]).await {
                    Ok(Some((data, position))) => Some(SnapshotBody { position, data }),
                    Ok(None) => {
                        return Err(SubscribeError::SnapshotUnavailable(format!(
                            "no snapshot for {}",
                            topics[0]
                        )));
                    }
                    Err(reason) => return Err(SubscribeError::SnapshotUnavailable(reason)),
                }
            }
            _ => None,
        };
        let (sub, registered_at) = self.register(identity.clone(), topics, out);
        let since = match (start, &snapshot) {
            (Start::Live, _) => None,
            (Start::Since(since), _) => Some(since),
            (Start::Snapshot, Some(body)) => Some(body.position),
            (Start::Snapshot, None) => None,
        };
        let Some(since) = since else {
            return Ok(Started {
                sub,
                resume: Resume::New,
                position: registered_at,
                snapshot: None,
                replay: Vec::new(),
                last: registered_at,
            });
        };
        let outcome = self
            .replay(&identity, &sub.topics, since, registered_at)
            .await;
        let head = match outcome {
            Ok(_) => self.inner.source.head().await,
            Err(ref error) => Err(error.clone()),
        };
        let (replay, head) = match (outcome, head) {
            (Ok(replay), Ok(head)) => (replay, head),
            (Err(error), _) | (_, Err(error)) => {
                self.unregister(&sub);
                return Err(SubscribeError::Unavailable(error));
            }
        };
        let ahead = since > head.max(registered_at);
        match replay {
            Some(replay) if !ahead => {
                let last = replay.last().map_or(since, |d| d.position.max(since));
                Ok(Started {
                    sub,
                    resume: Resume::Recovered,
                    position: since,
                    snapshot,
                    replay,
                    last,
                })
            }
            _ if snapshot.is_some() => {
                self.unregister(&sub);
                Err(SubscribeError::SnapshotUnavailable(
                    "the snapshot is too far behind the log".into(),
                ))
            }
            _ => Ok(Started {
                sub,
                resume: Resume::Reset,
                position: registered_at,
                snapshot: None,
                replay: Vec::new(),
                last: registered_at,
            }),
        }
    }

    /// Reads the events matching `topics` after `after` up to `upto` (the
    /// registration position; later ones arrive through the buffer).
    /// `None` when more than `max_replay` would be replayed.
    async fn replay(
        &self,
        identity: &Identity,
        topics: &[(Topic, Arc<str>)],
        after: u64,
        upto: u64,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        let config = &self.inner.config;
        let filter = match topics {
            [(topic, _)] => topic.filter(&identity.tenant),
            _ => EventFilter::tenant(&identity.tenant),
        };
        let mut replay = Vec::new();
        let mut cursor = after;
        while cursor < upto {
            let page = self
                .inner
                .source
                .read_after(cursor, config.replay_page, &filter)
                .await?;
            for event in &page.events {
                if event.position > upto {
                    return Ok(Some(replay));
                }
                if !identity.can_see(&event.metadata) {
                    continue;
                }
                let Some((_, topic)) = topics.iter().find(|(t, _)| t.matches(&event.metadata))
                else {
                    continue;
                };
                if replay.len() >= config.max_replay {
                    return Ok(None);
                }
                replay.push(Delivery {
                    position: event.position,
                    recorded_at: event.recorded_at,
                    topic: topic.clone(),
                    event: event_json(event),
                    frame: None,
                });
            }
            if page.reached_head || page.scanned_to <= cursor {
                break;
            }
            cursor = page.scanned_to;
        }
        Ok(Some(replay))
    }

    /// Sends the buffered live events of a WebSocket subscription after its
    /// replay, then switches it to live. Waits for queue space (bounded by
    /// `wait`) since the replay may just have filled the queue.
    pub(crate) async fn activate_ws(
        &self,
        sub: &Subscriber,
        mut last: u64,
        tx: &mpsc::Sender<Outbound>,
        wait: Duration,
    ) -> Result<(), ()> {
        loop {
            let batch = {
                let mut state = sub.state();
                match &mut state.mode {
                    Mode::Buffering(buffer) if buffer.is_empty() => {
                        state.mode = Mode::Live { last_sent: last };
                        return Ok(());
                    }
                    Mode::Buffering(buffer) => std::mem::take(buffer),
                    Mode::Live { .. } => return Ok(()),
                    Mode::Dead { .. } => return Err(()),
                }
            };
            for delivery in batch {
                if delivery.position <= last {
                    continue;
                }
                last = delivery.position;
                let item = Outbound::Shared(delivery.ws_frame(), Some(delivery.recorded_at));
                tx.send_timeout(item, wait).await.map_err(|_| ())?;
            }
        }
    }

    /// Joins `user` to a store's presence; announces it if it is the user's
    /// first connection there. Returns who is present.
    pub(crate) fn presence_join(&self, tenant: &str, store: &str, user: &str) -> Vec<String> {
        let key = (tenant.to_owned(), store.to_owned());
        let (first, users) = {
            let mut presence = lock(&self.inner.presence);
            let users = presence.entry(key).or_default();
            let count = users.entry(user.to_owned()).or_insert(0);
            *count += 1;
            (*count == 1, users.keys().cloned().collect())
        };
        if first {
            self.presence_changed(tenant, store, user, PresenceState::Joined);
        }
        users
    }

    /// Leaves a store's presence; announces it if it was the user's last
    /// connection there.
    pub(crate) fn presence_leave(&self, tenant: &str, store: &str, user: &str) {
        let key = (tenant.to_owned(), store.to_owned());
        let last = {
            let mut presence = lock(&self.inner.presence);
            let Some(users) = presence.get_mut(&key) else {
                return;
            };
            let last = match users.get_mut(user) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    users.remove(user);
                    true
                }
                None => false,
            };
            if users.is_empty() {
                presence.remove(&key);
            }
            last
        };
        if last {
            self.presence_changed(tenant, store, user, PresenceState::Left);
        }
    }

    fn presence_changed(&self, tenant: &str, store: &str, user: &str, state: PresenceState) {
        let frame = SharedText::from(
            ServerMessage::PresenceChanged {
                store: store.to_owned(),
                user: user.to_owned(),
                state,
            }
            .to_json(),
        );
        let routing = lock(&self.inner.routing);
        if let Some(room) = routing
            .rooms
            .get(&(tenant.to_owned(), format!("store:{store}")))
        {
            for sub in room {
                sub.notify(&frame);
            }
        }
    }

    /// Routes one event to every room it belongs to. The event JSON is built
    /// once, the `event` message once per room, then shared by pointer.
    pub(crate) fn route(&self, event: &RecordedEvent) {
        let json = event_json(event);
        let keys = Topic::candidates(&event.metadata);
        let max_buffered = self.inner.config.max_buffered;
        let routing = lock(&self.inner.routing);
        for key in keys {
            let room_key = (event.metadata.tenant.clone(), key);
            let Some(room) = routing.rooms.get(&room_key) else {
                continue;
            };
            let topic: Arc<str> = room_key.1.as_str().into();
            let delivery = Delivery {
                position: event.position,
                recorded_at: event.recorded_at,
                frame: Some(SharedText::from(event_frame_string(
                    &topic,
                    event.position,
                    &json,
                ))),
                topic,
                event: json.clone(),
            };
            for sub in room {
                sub.offer(event, &delivery, max_buffered);
            }
        }
        self.inner.position.store(event.position, Ordering::Release);
    }

    /// Reads and routes the events after the hub's position up to `upto`,
    /// when the feed skipped some. Retries a few times, then gives up (and
    /// logs) rather than stalling every client.
    async fn refill(&self, upto: u64) {
        let mut failures = 0;
        while self.position() < upto {
            match self
                .inner
                .source
                .read_after(self.position(), 1_000, &EventFilter::default())
                .await
            {
                Ok(page) => {
                    let before = self.position();
                    for event in page.events.iter().filter(|e| e.position <= upto) {
                        if event.position > self.position() {
                            self.route(event);
                        }
                    }
                    if self.position() == before {
                        break;
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, failures, "realtime gap refill failed");
                    if failures >= 5 {
                        tracing::error!(
                            position = self.position(),
                            upto,
                            "giving up on a feed gap"
                        );
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100 * failures)).await;
                }
            }
        }
    }
}

/// Collects a stream subscriber's buffered events after its replay and
/// switches it to live in one step (a stream's consumer cannot read yet).
pub(crate) fn activate_collect(sub: &Subscriber, last: u64, into: &mut Vec<Delivery>) -> bool {
    let mut state = sub.state();
    match std::mem::replace(&mut state.mode, Mode::Live { last_sent: last }) {
        Mode::Buffering(buffer) => {
            let mut last_sent = last;
            for delivery in buffer {
                if delivery.position > last_sent {
                    last_sent = delivery.position;
                    into.push(delivery);
                }
            }
            state.mode = Mode::Live { last_sent };
            true
        }
        other => {
            state.mode = other;
            false
        }
    }
}

/// The broadcaster: routes the feed in order until it ends or the hub is
/// shut down or dropped.
async fn broadcast(hub: Weak<Inner>, mut feed: EventFeed) {
    let mut shutdown = match hub.upgrade() {
        Some(inner) => inner.shutdown.subscribe(),
        None => return,
    };
    loop {
        let event = tokio::select! {
            biased;
            _ = shutdown.wait_for(Option::is_some) => break,
            event = feed.next() => match event {
                Some(event) => event,
                None => {
                    tracing::info!("realtime feed ended");
                    break;
                }
            },
        };
        let Some(inner) = hub.upgrade() else { break };
        let hub = Hub { inner };
        let position = hub.position();
        if event.position <= position {
            continue;
        }
        if event.position > position + 1 {
            tracing::debug!(position, next = event.position, "feed skipped; refilling");
            hub.refill(event.position - 1).await;
        }
        hub.route(&event);
        hub.commands_routed();
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
