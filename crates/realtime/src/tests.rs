//! Connection-level tests: real hubs and connections over channel frames,
//! with mocked ports (mockall) and a fake in-memory log behind them.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures_util::{Sink, StreamExt};
use larder_store::{EventFilter, Metadata, Page, RecordedEvent, StoreError};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;
use tokio_stream::wrappers::UnboundedReceiverStream;

use crate::ports::{MockAuthorizer, MockEventSource, MockSnapshotProvider};
use crate::*;

/// A failure bound, never a synchronisation: long enough for paused-time
/// tests whose timers (heartbeat, token expiry) fire after 25–60 s.
const WAIT: Duration = Duration::from_secs(90);

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

// ---------------------------------------------------------------- fake log

/// The event log behind the mocked source: commits append here and go to
/// the hub's feed, like the store publishing to the bus after commit.
#[derive(Clone)]
struct Log {
    events: Arc<Mutex<Vec<RecordedEvent>>>,
    feed: mpsc::UnboundedSender<Arc<RecordedEvent>>,
}

impl Log {
    fn new() -> (Self, EventFeed) {
        let (feed, rx) = mpsc::unbounded_channel();
        let log = Self {
            events: Arc::default(),
            feed,
        };
        (log, Box::pin(UnboundedReceiverStream::new(rx)))
    }

    /// Appends an event to the log without publishing it.
    fn append(
        &self,
        tenant: &str,
        store: Option<&str>,
        entity_type: &str,
        id: &str,
    ) -> Arc<RecordedEvent> {
        let mut events = self.events.lock().unwrap();
        let position = events.len() as u64 + 1;
        let event = RecordedEvent {
            position,
            id: uuid::Uuid::new_v4(),
            stream: format!("{entity_type}-{id}"),
            version: 1,
            event_type: "Touched".into(),
            schema_version: 1,
            data: json!({ "n": position }).into(),
            metadata: Metadata {
                tenant: tenant.into(),
                store: store.map(str::to_owned),
                entity_type: entity_type.into(),
                entity_id: id.into(),
                actor: Some("alice".into()),
                session: Some("s-alice".into()),
                ..Metadata::default()
            },
            recorded_at: chrono::Utc::now(),
        };
        events.push(event.clone());
        Arc::new(event)
    }

    /// Appends and publishes.
    fn commit(&self, tenant: &str, store: Option<&str>, entity_type: &str, id: &str) -> u64 {
        let event = self.append(tenant, store, entity_type, id);
        let position = event.position;
        self.feed.send(event).unwrap();
        position
    }

    fn commit_store(&self, store: &str) -> u64 {
        self.commit("acme", Some(store), "item", "i1")
    }

    fn read(&self, after: u64, limit: u32, filter: &EventFilter) -> Page {
        let events = self.events.lock().unwrap();
        let head = events.len() as u64;
        let mut page = Vec::new();
        for event in events.iter().filter(|e| e.position > after) {
            if filter.matches(&event.metadata) {
                page.push(event.clone());
                if page.len() == limit as usize {
                    return Page {
                        scanned_to: event.position,
                        reached_head: event.position == head,
                        events: page,
                    };
                }
            }
        }
        Page {
            events: page,
            scanned_to: head,
            reached_head: true,
        }
    }

    fn mock_source(&self) -> MockEventSource {
        self.slow_source(Duration::ZERO)
    }

    /// A source whose reads take `delay` (blocking the reader's thread, as
    /// a busy one would).
    fn slow_source(&self, delay: Duration) -> MockEventSource {
        let mut source = MockEventSource::new();
        let log = self.clone();
        source
            .expect_read_after()
            .returning(move |after, limit, filter| {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                Ok(log.read(after, limit, filter))
            });
        let log = self.clone();
        source
            .expect_head()
            .returning(move || Ok(log.events.lock().unwrap().len() as u64));
        source
    }
}

// ------------------------------------------------------------ identities

fn identity(user: &str, tenant: &str, stores: Option<&[&str]>, expires_in: u64) -> Identity {
    Identity {
        user: user.into(),
        tenant: tenant.into(),
        stores: stores.map(|s| s.iter().map(|s| (*s).to_owned()).collect::<HashSet<_>>()),
        role: Role::Staff,
        session: Some(format!("s-{user}")),
        expires_at: unix_now() + expires_in,
    }
}

/// Tokens understood by the mocked authorizer.
fn authorizer() -> MockAuthorizer {
    let mut auth = MockAuthorizer::new();
    auth.expect_authenticate().returning(|token| match token {
        "alice" => Ok(identity("alice", "acme", None, 3600)),
        "alice-short" => Ok(identity("alice", "acme", None, 60)),
        "alice-later" => Ok(identity("alice", "acme", None, 7200)),
        "bob" => Ok(identity("bob", "acme", None, 3600)),
        "scoped" => Ok(identity("carol", "acme", Some(&["s1"]), 3600)),
        "globex" => Ok(identity("dave", "globex", None, 3600)),
        "expired" => Err(AuthFailure::Expired),
        _ => Err(AuthFailure::Invalid),
    });
    auth
}

struct Env {
    hub: Hub,
    log: Log,
}

fn env_with(config: RealtimeConfig, source: impl FnOnce(&Log) -> Arc<dyn EventSource>) -> Env {
    let (log, feed) = Log::new();
    let source = source(&log);
    let hub = Hub::start(source, feed, 0, Arc::new(authorizer()), None, config);
    Env { hub, log }
}

fn env(config: RealtimeConfig) -> Env {
    env_with(config, |log| Arc::new(log.mock_source()))
}

async fn routed(hub: &Hub, position: u64) {
    timeout(WAIT, async {
        while hub.position() < position {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("hub routes the event");
}

// ----------------------------------------------------------------- client

type FrameSink = Pin<Box<dyn Sink<Frame, Error = &'static str> + Send>>;

/// A test client: the two ends of a connection's channels.
struct Client {
    input: Option<mpsc::UnboundedSender<Result<Frame, ReadError>>>,
    output: mpsc::Receiver<Frame>,
    task: JoinHandle<CloseReason>,
}

fn sink(capacity: usize) -> (FrameSink, mpsc::Receiver<Frame>) {
    let (tx, rx) = mpsc::channel(capacity);
    let sink = futures_util::sink::unfold(tx, |tx, frame: Frame| async move {
        tx.send(frame).await.map_err(|_| "client gone")?;
        Ok::<_, &'static str>(tx)
    });
    (Box::pin(sink), rx)
}

fn connect_with(hub: &Hub, context: ConnectionContext, capacity: usize) -> Client {
    let (input, rx) = mpsc::unbounded_channel();
    let (out, output) = sink(capacity);
    let task = tokio::spawn(serve_connection(
        hub.clone(),
        UnboundedReceiverStream::new(rx),
        out,
        context,
    ));
    Client {
        input: Some(input),
        output,
        task,
    }
}

fn localhost() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

fn connect(hub: &Hub) -> Client {
    connect_with(hub, ConnectionContext::new(localhost()), 1024)
}

/// A connection signed in with `token`.
async fn signed_in(hub: &Hub, token: &str) -> Client {
    let mut client = connect(hub);
    client.auth(token).await;
    client
}

/// One connection too many for `token`'s user: its `auth` is answered
/// with `too_many_connections`, and it closes 4029.
async fn refused_one_too_many(hub: &Hub, token: &str) {
    let mut client = connect(hub);
    client.send(json!({ "type": "auth", "id": "a", "token": token }));
    let refused = client.message().await;
    assert_eq!(
        (refused["id"].as_str(), refused["code"].as_str()),
        (Some("a"), Some("too_many_connections")),
        "{refused}"
    );
    assert_eq!(client.closed().await, close::TOO_MANY_CONNECTIONS);
}

impl Client {
    fn send_frame(&self, frame: Frame) {
        let _ = self.input.as_ref().expect("input open").send(Ok(frame));
    }

    /// The transport fails to read a frame, as classified by it.
    fn send_error(&self, error: ReadError) {
        let _ = self.input.as_ref().expect("input open").send(Err(error));
    }

    fn send(&self, message: Value) {
        self.send_frame(Frame::Text(message.to_string().into()));
    }

    async fn frame(&mut self) -> Frame {
        timeout(WAIT, self.output.recv())
            .await
            .expect("a frame within the timeout")
            .expect("connection still writing")
    }

    /// The next protocol message, skipping heartbeats and pings.
    async fn message(&mut self) -> Value {
        loop {
            match self.frame().await {
                Frame::Text(text) => {
                    let value: Value = serde_json::from_str(&text).unwrap();
                    if value["type"] != "heartbeat" {
                        return value;
                    }
                }
                Frame::Ping(_) | Frame::Pong(_) | Frame::Binary(_) => {}
                Frame::Close(close) => panic!("unexpected close {close:?}"),
            }
        }
    }

    /// Reads until the close frame and returns its code.
    async fn closed(&mut self) -> u16 {
        loop {
            if let Frame::Close(close) = self.frame().await {
                return close.map_or(0, |(code, _)| code);
            }
        }
    }

    async fn auth(&mut self, token: &str) -> Value {
        self.send(json!({ "type": "auth", "id": "a", "token": token }));
        let welcome = self.message().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        welcome
    }

    async fn subscribe(&mut self, topic: &str, extra: Value) -> Value {
        let mut request = json!({ "type": "subscribe", "id": topic, "topic": topic });
        if let Value::Object(extra) = extra {
            request.as_object_mut().unwrap().extend(extra);
        }
        self.send(request);
        self.message().await
    }

    /// Round-trips a ping: everything queued before it has been received.
    async fn sync(&mut self) -> Vec<Value> {
        self.send(json!({ "type": "ping", "id": "sync", "ts": 1 }));
        let mut before = Vec::new();
        loop {
            let message = self.message().await;
            if message["type"] == "pong" && message["id"] == "sync" {
                return before;
            }
            before.push(message);
        }
    }

    /// Closes the client side and waits for the connection to end.
    async fn hang_up(mut self) -> CloseReason {
        self.input = None;
        timeout(WAIT, self.task).await.unwrap().unwrap()
    }
}

fn positions(messages: &[Value]) -> Vec<u64> {
    messages
        .iter()
        .filter(|m| m["type"] == "event")
        .map(|m| m["position"].as_u64().unwrap())
        .collect()
}

async fn events(client: &mut Client, count: usize) -> Vec<u64> {
    let mut got = Vec::new();
    while got.len() < count {
        let message = client.message().await;
        assert_eq!(message["type"], "event", "{message}");
        got.push(message["position"].as_u64().unwrap());
    }
    got
}

// ------------------------------------------------------------------ tests

#[tokio::test]
async fn auth_is_answered_with_welcome() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    let welcome = client.auth("alice").await;
    assert_eq!(welcome["id"], "a");
    assert_eq!(welcome["protocol"], 1);
    assert_eq!(welcome["user"], "alice");
    assert_eq!(welcome["heartbeat_ms"], 25_000);
    assert!(welcome["connection_id"].is_string());
    assert_eq!(env.hub.connection_count(), 1);
    assert_eq!(client.hang_up().await.code, close::NORMAL);
    assert_eq!(env.hub.connection_count(), 0);
}

#[tokio::test]
async fn a_pre_authenticated_connection_is_welcomed_at_once() {
    let env = env(RealtimeConfig::default());
    let context =
        ConnectionContext::new(localhost()).with_identity(identity("alice", "acme", None, 3600));
    let mut client = connect_with(&env.hub, context, 64);
    let welcome = client.message().await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["id"], Value::Null);
    let reply = client.subscribe("tenant", json!({})).await;
    assert_eq!(reply["type"], "subscribed");
}

#[tokio::test]
async fn requests_before_auth_are_refused_and_bad_tokens_close() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    let reply = client.subscribe("tenant", json!({})).await;
    assert_eq!(reply["code"], "not_authenticated");
    assert_eq!(reply["id"], "tenant");
    client.send(json!({ "type": "auth", "id": "a", "token": "forged" }));
    assert_eq!(client.message().await["code"], "not_authenticated");
    assert_eq!(client.closed().await, close::INVALID_TOKEN);

    let mut expired = connect(&env.hub);
    expired.send(json!({ "type": "auth", "id": "a", "token": "expired" }));
    assert_eq!(expired.closed().await, close::TOKEN_EXPIRED);
}

#[tokio::test]
async fn a_store_subscription_receives_its_live_events_in_order() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    let reply = client.subscribe("store:s1", json!({})).await;
    assert_eq!(reply["type"], "subscribed");
    assert_eq!(reply["resume"], "new");
    assert_eq!(reply["position"], 0);

    env.log.commit_store("s1");
    env.log.commit_store("s2");
    env.log.commit_store("s1");
    env.log.commit("acme", Some("s1"), "order", "o1");

    let first = client.message().await;
    assert_eq!(first["topic"], "store:s1");
    assert_eq!(first["event"]["type"], "Touched");
    assert_eq!(first["event"]["metadata"]["store"], "s1");
    assert_eq!(first["event"]["data"]["n"], 1);
    assert_eq!(events(&mut client, 2).await, vec![3, 4]);
    assert!(positions(&client.sync().await).is_empty());
}

/// Wraps the fake log: the first replay read commits an event and waits
/// until the hub has routed it, so it lands in the subscription's buffer
/// while the replay is still being read.
struct CommitDuringReplay {
    log: Log,
    hub: OnceLock<Hub>,
    fired: Mutex<bool>,
}

#[async_trait]
impl EventSource for CommitDuringReplay {
    async fn read_after(
        &self,
        after: u64,
        limit: u32,
        filter: &EventFilter,
    ) -> Result<Page, StoreError> {
        let fire = !std::mem::replace(&mut *self.fired.lock().unwrap(), true);
        if fire {
            let position = self.log.commit_store("s1");
            routed(self.hub.get().unwrap(), position).await;
        }
        // Small pages, so the replay takes several reads.
        Ok(self.log.read(after, limit.min(2), filter))
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(self.log.events.lock().unwrap().len() as u64)
    }
}

#[tokio::test]
async fn resume_delivers_exactly_the_missed_events_while_others_commit() {
    let (log, feed) = Log::new();
    let source = Arc::new(CommitDuringReplay {
        log: log.clone(),
        hub: OnceLock::new(),
        fired: Mutex::new(false),
    });
    let hub = Hub::start(
        source.clone(),
        feed,
        0,
        Arc::new(authorizer()),
        None,
        RealtimeConfig::default(),
    );
    let _ = source.hub.set(hub.clone());
    for store in ["s1", "s1", "s2", "s1", "s1"] {
        log.commit_store(store);
    }
    routed(&hub, 5).await;

    let mut client = connect(&hub);
    client.auth("alice").await;
    let reply = client.subscribe("store:s1", json!({ "since": 1 })).await;
    assert_eq!(reply["resume"], "recovered", "{reply}");
    assert_eq!(reply["position"], 1);
    // 2, 4, 5 from the replay; 6 committed during it, from the buffer.
    assert_eq!(events(&mut client, 4).await, vec![2, 4, 5, 6]);
    log.commit_store("s1");
    assert_eq!(events(&mut client, 1).await, vec![7]);
    assert!(positions(&client.sync().await).is_empty(), "no duplicates");
}

#[tokio::test]
async fn resume_when_the_feed_is_behind_the_store_neither_loses_nor_duplicates() {
    let env = env(RealtimeConfig::default());
    env.log.commit_store("s1");
    routed(&env.hub, 1).await;
    // Committed to the store but not yet published: the hub is behind.
    let late = [
        env.log.append("acme", Some("s1"), "item", "i1"),
        env.log.append("acme", Some("s1"), "item", "i1"),
    ];
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    let reply = client.subscribe("store:s1", json!({ "since": 0 })).await;
    assert_eq!(reply["resume"], "recovered");
    assert_eq!(events(&mut client, 1).await, vec![1]);
    for event in late {
        env.log.feed.send(event).unwrap();
    }
    assert_eq!(events(&mut client, 2).await, vec![2, 3]);
    assert!(positions(&client.sync().await).is_empty());
}

#[tokio::test]
async fn since_ahead_of_the_head_or_too_far_behind_resets() {
    let config = RealtimeConfig {
        max_replay: 2,
        ..RealtimeConfig::default()
    };
    let env = env(config);
    for _ in 0..5 {
        env.log.commit_store("s1");
    }
    routed(&env.hub, 5).await;
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    let ahead = client.subscribe("store:s1", json!({ "since": 100 })).await;
    assert_eq!(ahead["resume"], "reset");
    assert_eq!(ahead["position"], 5);
    let behind = client.subscribe("tenant", json!({ "since": 0 })).await;
    assert_eq!(behind["resume"], "reset");
    assert!(
        positions(&client.sync().await).is_empty(),
        "a reset replays nothing"
    );
    env.log.commit_store("s1");
    let live = events(&mut client, 2).await;
    assert_eq!(live, vec![6, 6], "one per subscribed topic");
}

#[tokio::test]
async fn a_forbidden_topic_gets_an_error_and_never_its_events() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("scoped").await;
    let reply = client.subscribe("store:s2", json!({})).await;
    assert_eq!(reply["type"], "error");
    assert_eq!(reply["code"], "forbidden");
    assert_eq!(reply["id"], "store:s2");
    let reply = client.subscribe("user:alice", json!({})).await;
    assert_eq!(reply["code"], "forbidden");
    // Tenant-wide and type topics are filtered to the scoped stores.
    assert_eq!(
        client.subscribe("tenant", json!({})).await["type"],
        "subscribed"
    );
    assert_eq!(
        client.subscribe("type:item", json!({})).await["type"],
        "subscribed"
    );
    env.log.commit_store("s2");
    env.log.commit("acme", None, "item", "i9");
    let visible = env.log.commit_store("s1");
    let got = events(&mut client, 2).await;
    assert_eq!(got, vec![visible, visible]);
    assert!(positions(&client.sync().await).is_empty());
    // Replays are filtered the same way.
    let resumed = client.subscribe("store:s1", json!({ "since": 0 })).await;
    assert_eq!(resumed["resume"], "recovered");
    assert_eq!(events(&mut client, 1).await, vec![visible]);
}

#[tokio::test]
async fn tenants_never_see_each_other() {
    let env = env(RealtimeConfig::default());
    let mut acme = connect(&env.hub);
    acme.auth("alice").await;
    let mut globex = connect(&env.hub);
    globex.auth("globex").await;
    acme.subscribe("store:s1", json!({})).await;
    globex.subscribe("tenant", json!({})).await;
    globex.subscribe("store:s1", json!({})).await;
    env.log.commit_store("s1");
    let theirs = env.log.commit("globex", Some("s1"), "item", "g1");
    assert_eq!(events(&mut acme, 1).await, vec![1]);
    assert_eq!(events(&mut globex, 2).await, vec![theirs, theirs]);
    assert!(positions(&acme.sync().await).is_empty());
    assert!(positions(&globex.sync().await).is_empty());
    // Nor in a replay.
    let replay = globex.subscribe("type:item", json!({ "since": 0 })).await;
    assert_eq!(replay["resume"], "recovered");
    assert_eq!(events(&mut globex, 1).await, vec![theirs]);
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_connection_stays_usable() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    client.send_frame(Frame::Text("{not json".into()));
    assert_eq!(client.message().await["code"], "invalid_json");
    client.send(json!({ "type": "dance", "id": "d1" }));
    let reply = client.message().await;
    assert_eq!(reply["code"], "unknown_type");
    assert_eq!(reply["id"], "d1");
    client.send(json!({ "type": "subscribe", "id": "s" }));
    assert_eq!(client.message().await["code"], "invalid_message");
    client.send(json!({ "id": "x" }));
    assert_eq!(client.message().await["code"], "invalid_message");
    assert_eq!(
        client.subscribe("nope:1", json!({})).await["code"],
        "invalid_topic"
    );
    client.send(json!({ "type": "unsubscribe", "id": "u", "topic": "tenant" }));
    assert_eq!(client.message().await["code"], "not_subscribed");
    client.subscribe("tenant", json!({})).await;
    assert_eq!(
        client.subscribe("tenant", json!({})).await["code"],
        "already_subscribed"
    );
    assert_eq!(
        client
            .subscribe("store:s1", json!({ "since": 0, "snapshot": true }))
            .await["code"],
        "invalid_since"
    );
    assert_eq!(
        client
            .subscribe("store:s1", json!({ "snapshot": true }))
            .await["code"],
        "snapshot_unavailable"
    );
    client.send(json!({ "type": "ping", "id": "p", "ts": 42 }));
    let pong = client.message().await;
    assert_eq!(
        (pong["type"].as_str(), pong["ts"].as_u64()),
        (Some("pong"), Some(42))
    );
}

#[tokio::test]
async fn subscriptions_per_connection_are_bounded() {
    let env = env(RealtimeConfig {
        max_subscriptions: 2,
        ..RealtimeConfig::default()
    });
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    client.subscribe("store:a", json!({})).await;
    client.subscribe("store:b", json!({})).await;
    assert_eq!(
        client.subscribe("store:c", json!({})).await["code"],
        "too_many_subscriptions"
    );
    client.send(json!({ "type": "unsubscribe", "id": "u", "topic": "store:a" }));
    assert_eq!(client.message().await["type"], "unsubscribed");
    assert_eq!(
        client.subscribe("store:c", json!({})).await["type"],
        "subscribed"
    );
}

#[tokio::test]
async fn rooms_track_membership_until_disconnect() {
    let env = env(RealtimeConfig::default());
    let topic: Topic = "store:s1".parse().unwrap();
    let mut one = connect(&env.hub);
    one.auth("alice").await;
    let mut two = connect(&env.hub);
    two.auth("bob").await;
    one.subscribe("store:s1", json!({})).await;
    two.subscribe("store:s1", json!({})).await;
    two.subscribe("tenant", json!({})).await;
    assert_eq!(env.hub.room_size("acme", &topic), 2);
    assert_eq!(env.hub.room_size("globex", &topic), 0);
    assert_eq!(env.hub.subscription_count(), 3);
    one.send(json!({ "type": "unsubscribe", "id": "u", "topic": "store:s1" }));
    assert_eq!(one.message().await["type"], "unsubscribed");
    assert_eq!(env.hub.room_size("acme", &topic), 1);
    two.hang_up().await;
    assert_eq!(env.hub.room_size("acme", &topic), 0);
    assert_eq!(env.hub.subscription_count(), 0);
}

#[tokio::test]
async fn an_oversized_frame_closes_with_1009() {
    let env = env(RealtimeConfig {
        max_frame_bytes: 1024,
        ..RealtimeConfig::default()
    });
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    client.send_frame(Frame::Text("x".repeat(1025).into()));
    assert_eq!(client.closed().await, close::MESSAGE_TOO_BIG);
}

#[tokio::test]
async fn flooding_gets_a_warning_then_close_4008() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await; // one token spent
    for n in 0..300 {
        client.send(json!({ "type": "ping", "id": n.to_string() }));
    }
    let mut pongs = 0;
    let mut warned = false;
    loop {
        match client.frame().await {
            Frame::Text(text) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                match message["type"].as_str().unwrap() {
                    "pong" => {
                        assert!(!warned, "no pong after the limit");
                        pongs += 1;
                    }
                    "warning" => {
                        assert_eq!(message["code"], "rate_limited");
                        warned = true;
                    }
                    other => panic!("unexpected {other}"),
                }
            }
            Frame::Close(close) => {
                assert_eq!(close.unwrap().0, close::RATE_LIMITED);
                break;
            }
            _ => {}
        }
    }
    assert!(warned);
    assert_eq!(pongs, 99, "the burst minus the auth message");
}

#[tokio::test]
async fn a_slow_consumer_is_closed_with_4009_while_others_keep_receiving() {
    let env = env(RealtimeConfig {
        outbound_queue: 4,
        ..RealtimeConfig::default()
    });
    let mut slow = connect_with(&env.hub, ConnectionContext::new(localhost()), 1);
    slow.auth("alice").await;
    slow.subscribe("store:s1", json!({})).await;
    let mut fast = connect(&env.hub);
    fast.auth("bob").await;
    fast.subscribe("store:s1", json!({})).await;

    // The fast client reads each event as it comes; the slow one reads nothing.
    for position in 1..=40 {
        env.log.commit_store("s1");
        assert_eq!(events(&mut fast, 1).await, vec![position]);
    }
    // The slow client starts reading only now: some events, then 4009.
    let mut received = Vec::new();
    loop {
        match slow.frame().await {
            Frame::Text(text) => received.push(serde_json::from_str::<Value>(&text).unwrap()),
            Frame::Close(close) => {
                assert_eq!(close.unwrap().0, close::SLOW_CONSUMER);
                break;
            }
            _ => {}
        }
    }
    let got = positions(&received);
    assert!(got.len() < 40, "the slow client was cut off");
    assert_eq!(
        got,
        (1..=got.len() as u64).collect::<Vec<_>>(),
        "what it got is in order"
    );
    assert_eq!(slow.task.await.unwrap().code, close::SLOW_CONSUMER);
    env.log.commit_store("s1");
    assert_eq!(events(&mut fast, 1).await, vec![41]);
    assert_eq!(env.hub.connection_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_silent_peer_is_closed_within_two_heartbeats() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    let quiet_since = tokio::time::Instant::now();
    let mut heartbeats = 0;
    let mut pings = 0;
    let code = loop {
        match timeout(Duration::from_secs(120), client.output.recv())
            .await
            .unwrap()
            .unwrap()
        {
            Frame::Text(text) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(message["type"], "heartbeat");
                assert_eq!(message["head"], 0);
                heartbeats += 1;
            }
            Frame::Ping(_) => pings += 1,
            Frame::Close(close) => break close.unwrap().0,
            Frame::Pong(_) | Frame::Binary(_) => {}
        }
    };
    assert_eq!(code, close::HEARTBEAT_TIMEOUT);
    assert!(quiet_since.elapsed() <= Duration::from_secs(50) + Duration::from_millis(10));
    assert!(heartbeats >= 1 && pings >= 1);
}

#[tokio::test(start_paused = true)]
async fn a_peer_that_answers_heartbeats_stays_connected() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    for _ in 0..5 {
        loop {
            if let Frame::Ping(payload) = client.frame().await {
                client.send_frame(Frame::Pong(payload));
                break;
            }
        }
    }
    assert!(client.sync().await.iter().all(|m| m["type"] != "error"));
}

#[tokio::test(start_paused = true)]
async fn no_auth_within_the_timeout_closes_with_4001() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    let start = tokio::time::Instant::now();
    assert_eq!(client.closed().await, close::AUTH_TIMEOUT);
    assert!(start.elapsed() >= Duration::from_secs(5));
}

#[tokio::test(start_paused = true)]
async fn an_expiring_token_closes_with_4003_unless_refreshed() {
    let config = RealtimeConfig {
        heartbeat_interval: Duration::from_secs(3600),
        ..RealtimeConfig::default()
    };
    let env = env(config);
    let mut expiring = connect(&env.hub);
    expiring.auth("alice-short").await;
    let start = tokio::time::Instant::now();
    assert_eq!(expiring.closed().await, close::TOKEN_EXPIRED);
    assert!(start.elapsed() >= Duration::from_secs(59));

    let mut refreshed = connect(&env.hub);
    refreshed.auth("alice-short").await;
    refreshed.send(json!({ "type": "refresh", "id": "r", "token": "bob" }));
    assert_eq!(
        refreshed.message().await["code"],
        "forbidden",
        "another user's token"
    );
    refreshed.send(json!({ "type": "refresh", "id": "r", "token": "alice-later" }));
    let reply = refreshed.message().await;
    assert_eq!(reply["type"], "refreshed");
    assert!(reply["expires_at"].as_u64().unwrap() > unix_now() + 3600);
    tokio::time::advance(Duration::from_secs(120)).await;
    assert!(
        refreshed.sync().await.is_empty(),
        "still connected after the old expiry"
    );
}

#[tokio::test]
async fn presence_counts_a_user_once_across_tabs() {
    let env = env(RealtimeConfig::default());
    let mut watcher = connect(&env.hub);
    watcher.auth("bob").await;
    watcher.subscribe("store:s1", json!({})).await;
    let mut tab1 = connect(&env.hub);
    tab1.auth("alice").await;
    let mut tab2 = connect(&env.hub);
    tab2.auth("alice").await;

    tab1.send(json!({ "type": "presence", "id": "p1", "store": "s1" }));
    let reply = tab1.message().await;
    assert_eq!(reply["type"], "presence");
    assert_eq!(reply["users"], json!(["alice"]));
    let joined = watcher.message().await;
    assert_eq!(
        joined,
        json!({ "type": "presence_changed", "store": "s1", "user": "alice", "state": "joined" })
    );

    tab2.send(json!({ "type": "presence", "id": "p2", "store": "s1" }));
    assert_eq!(tab2.message().await["users"], json!(["alice"]));
    watcher.send(json!({ "type": "presence", "id": "p3", "store": "s1" }));
    assert_eq!(
        watcher.message().await["type"],
        "presence_changed",
        "bob's own join"
    );
    assert_eq!(watcher.message().await["users"], json!(["alice", "bob"]));
    assert!(
        watcher.sync().await.is_empty(),
        "the second tab is not announced"
    );

    tab1.hang_up().await;
    assert!(
        watcher.sync().await.is_empty(),
        "one tab left, alice is still there"
    );
    assert_eq!(env.hub.present_users("acme", "s1"), vec!["alice", "bob"]);
    tab2.hang_up().await;
    let left = watcher.message().await;
    assert_eq!(left["state"], "left");
    assert_eq!(left["user"], "alice");

    let mut scoped = connect(&env.hub);
    scoped.auth("scoped").await;
    scoped.send(json!({ "type": "presence", "id": "p", "store": "s2" }));
    assert_eq!(scoped.message().await["code"], "forbidden");
}

#[tokio::test]
async fn shutdown_tells_every_connection_to_reconnect_then_closes_1001() {
    let env = env(RealtimeConfig::default());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(&env.hub);
        client.auth("alice").await;
        clients.push(client);
    }
    let hub = env.hub.clone();
    let shutdown = tokio::spawn(async move { hub.shutdown(Duration::from_secs(10)).await });
    let mut delays = HashSet::new();
    for client in &mut clients {
        let notice = client.message().await;
        assert_eq!(notice["type"], "reconnect");
        assert_eq!(notice["reason"], "shutdown");
        let delay = notice["delay_ms"].as_u64().unwrap();
        assert!(delay < 10_000);
        delays.insert(delay);
        assert_eq!(client.closed().await, close::GOING_AWAY);
    }
    assert_eq!(delays.len(), 3, "delays are spread");
    timeout(WAIT, shutdown).await.unwrap().unwrap();
    assert_eq!(env.hub.connection_count(), 0);
    let mut late = connect(&env.hub);
    assert_eq!(late.message().await["type"], "reconnect");
    assert_eq!(late.closed().await, close::GOING_AWAY);
}

#[tokio::test]
async fn connections_per_address_are_capped() {
    let env = env(RealtimeConfig {
        max_connections_per_ip: 1,
        ..RealtimeConfig::default()
    });
    let mut first = connect(&env.hub);
    first.auth("alice").await;
    assert!(env.hub.try_register(localhost()).is_err());
    let mut second = connect(&env.hub);
    assert_eq!(second.closed().await, close::TOO_MANY_CONNECTIONS);
    first.hang_up().await;
    let permit = env
        .hub
        .try_register(localhost())
        .expect("the slot is free again");
    let mut third = connect_with(
        &env.hub,
        ConnectionContext::new(localhost()).with_permit(permit),
        64,
    );
    third.auth("alice").await;
}

#[tokio::test]
async fn connections_per_user_are_capped() {
    let env = env(RealtimeConfig {
        max_connections_per_user: 2,
        ..RealtimeConfig::default()
    });
    let first = signed_in(&env.hub, "alice").await;
    let _second = signed_in(&env.hub, "alice-later").await;

    // A third of alice's connections is refused as it authenticates.
    refused_one_too_many(&env.hub, "alice").await;
    let alice = identity("alice", "acme", None, 3600);
    assert!(env.hub.try_admit_user(&alice).is_err());
    // Another user, and alice of another tenant, are counted apart.
    connect(&env.hub).auth("bob").await;
    assert!(
        env.hub
            .try_admit_user(&identity("alice", "globex", None, 3600))
            .is_ok()
    );

    // A place frees when one of alice's connections closes.
    first.hang_up().await;
    let permit = env.hub.try_admit_user(&alice).expect("a place is free");
    let mut fourth = connect_with(
        &env.hub,
        ConnectionContext::new(localhost())
            .with_identity(alice.clone())
            .with_user_permit(permit),
        64,
    );
    assert_eq!(fourth.message().await["type"], "welcome");
    assert!(env.hub.try_admit_user(&alice).is_err());
}

#[tokio::test]
async fn a_snapshot_comes_with_the_events_after_it() {
    let (log, feed) = Log::new();
    for _ in 0..5 {
        log.commit_store("s1");
    }
    let mut snapshots = MockSnapshotProvider::new();
    snapshots
        .expect_snapshot()
        .withf(|identity, topic| identity.user == "alice" && *topic == Topic::Store("s1".into()))
        .returning(|_, _| Ok(Some((json!({ "items": 3 }), 3))));
    let hub = Hub::start(
        Arc::new(log.mock_source()),
        feed,
        0,
        Arc::new(authorizer()),
        Some(Arc::new(snapshots)),
        RealtimeConfig::default(),
    );
    routed(&hub, 5).await;
    let mut client = connect(&hub);
    client.auth("alice").await;
    let reply = client
        .subscribe("store:s1", json!({ "snapshot": true }))
        .await;
    assert_eq!(reply["resume"], "recovered");
    assert_eq!(
        reply["snapshot"],
        json!({ "position": 3, "data": { "items": 3 } })
    );
    assert_eq!(events(&mut client, 2).await, vec![4, 5]);
}

#[tokio::test]
async fn a_failing_store_gets_unavailable_and_the_connection_goes_on() {
    let env = env_with(RealtimeConfig::default(), |_| {
        let mut source = MockEventSource::new();
        source
            .expect_read_after()
            .returning(|_, _, _| Err(StoreError::Closed));
        source.expect_head().returning(|| Err(StoreError::Closed));
        Arc::new(source)
    });
    env.log.commit_store("s1");
    routed(&env.hub, 1).await;
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    let reply = client.subscribe("store:s1", json!({ "since": 0 })).await;
    assert_eq!(reply["code"], "unavailable");
    assert_eq!(env.hub.subscription_count(), 0, "nothing left registered");
    assert_eq!(
        client.subscribe("store:s1", json!({})).await["type"],
        "subscribed"
    );
}

#[tokio::test]
async fn the_hub_refills_a_gap_in_its_feed_from_the_source() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    client.subscribe("tenant", json!({})).await;
    env.log.append("acme", Some("s1"), "item", "i1"); // never published
    env.log.commit_store("s1");
    assert_eq!(events(&mut client, 2).await, vec![1, 2]);
}

/// A hub lingering up to `linger` whose source takes `refill` to answer, and
/// `subscribers` clients of the tenant that have received events 1 (read
/// from the source: it was never published) and 2, routed in one pass.
async fn after_a_slow_refill(
    linger: Duration,
    refill: Duration,
    subscribers: usize,
) -> (Env, Vec<Client>) {
    let config = RealtimeConfig {
        fanout_linger: linger,
        ..RealtimeConfig::default()
    };
    let env = env_with(config, |log| Arc::new(log.slow_source(refill)));
    let mut clients = Vec::new();
    for _ in 0..subscribers {
        let mut client = connect(&env.hub);
        client.auth("alice").await;
        client.subscribe("tenant", json!({})).await;
        clients.push(client);
    }
    env.log.append("acme", Some("s1"), "item", "i1"); // never published
    env.log.commit_store("s1");
    for client in &mut clients {
        assert_eq!(events(client, 2).await, vec![1, 2]);
    }
    (env, clients)
}

#[tokio::test]
async fn after_a_slow_pass_the_broadcaster_lingers_then_hands_out_what_came_meanwhile() {
    // The pass that refills a gap takes 200 ms (the source is slow) and
    // delivers to enough subscribers to be worth sharing writes; the
    // broadcaster then waits as long before its next pass.
    let (env, mut clients) =
        after_a_slow_refill(Duration::from_secs(1), Duration::from_millis(200), 32).await;
    env.log.commit_store("s1");
    env.log.commit_store("s1");
    // Time for a broadcaster that did not linger to route them.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(env.hub.position(), 2, "the next pass waits for the linger");
    assert_eq!(events(&mut clients[0], 2).await, vec![3, 4]);
}

#[tokio::test]
async fn a_slow_pass_with_few_deliveries_is_not_followed_by_a_linger() {
    // The refill takes a second; with one subscriber, waiting as long again
    // would share nothing, and only delay the next events.
    let (env, mut clients) =
        after_a_slow_refill(Duration::from_secs(10), Duration::from_secs(1), 1).await;
    env.log.commit_store("s1");
    env.log.commit_store("s1");
    let next = timeout(Duration::from_millis(500), events(&mut clients[0], 2)).await;
    assert_eq!(next.ok(), Some(vec![3, 4]), "routed without a linger");
}

#[tokio::test]
async fn an_event_stream_replays_then_goes_live_each_event_once() {
    let env = env(RealtimeConfig::default());
    for store in ["s1", "s2", "s3", "s1"] {
        env.log.commit_store(store);
    }
    routed(&env.hub, 4).await;
    let topics = vec!["store:s1".parse().unwrap(), "type:item".parse().unwrap()];
    let mut stream = env
        .hub
        .open_stream(
            identity("alice", "acme", Some(&["s1", "s2"]), 3600),
            topics,
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!(stream.resume(), Resume::Recovered);
    env.log.commit_store("s1");
    env.log.commit_store("s3");
    env.log.commit_store("s2");
    let mut got = Vec::new();
    while got.len() < 4 {
        let frame = timeout(WAIT, stream.next()).await.unwrap().unwrap();
        let event: Value = serde_json::from_str(&frame.event).unwrap();
        assert_eq!(event["metadata"]["tenant"], "acme");
        got.push(frame.position);
    }
    assert_eq!(got, vec![2, 4, 5, 7]);
    assert_eq!(env.hub.subscription_count(), 1);
    drop(stream);
    assert_eq!(env.hub.subscription_count(), 0);
}

#[tokio::test]
async fn long_poll_returns_stored_events_or_waits_for_the_next() {
    let env = env(RealtimeConfig::default());
    for store in ["s1", "s2", "s1"] {
        env.log.commit_store(store);
    }
    routed(&env.hub, 3).await;
    let alice = || identity("alice", "acme", None, 3600);
    let s1 = || vec![Topic::Store("s1".into())];
    let (events, next) = env
        .hub
        .poll(alice(), s1(), 0, 10, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(
        events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(next, 3);
    let (events, next) = env
        .hub
        .poll(alice(), s1(), 0, 1, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!((events.len(), next), (1, 1));

    let hub = env.hub.clone();
    let waiting =
        tokio::spawn(async move { hub.poll(alice(), s1(), 3, 10, Duration::from_secs(5)).await });
    timeout(WAIT, async {
        while env.hub.subscription_count() == 0 {
            tokio::task::yield_now().await;
        }
    })
    .await
    .unwrap();
    env.log.commit_store("s2");
    let position = env.log.commit_store("s1");
    let (events, next) = timeout(WAIT, waiting).await.unwrap().unwrap().unwrap();
    assert_eq!(
        events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![position]
    );
    assert_eq!(next, position);
    assert!(matches!(
        env.hub.poll(alice(), s1(), 99, 10, Duration::ZERO).await,
        Err(SubscribeError::InvalidSince { .. })
    ));
    assert!(matches!(
        env.hub
            .poll(
                identity("carol", "acme", Some(&["s2"]), 60),
                s1(),
                0,
                10,
                Duration::ZERO
            )
            .await,
        Err(SubscribeError::Forbidden(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn an_empty_long_poll_times_out_with_the_position_it_covered() {
    let env = env(RealtimeConfig::default());
    env.log.commit_store("s2");
    routed(&env.hub, 1).await;
    let (events, next) = env
        .hub
        .poll(
            identity("alice", "acme", None, 3600),
            vec![Topic::Store("s1".into())],
            0,
            10,
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(events.is_empty());
    assert_eq!(next, 1);
    assert_eq!(env.hub.subscription_count(), 0);
}

// ------------------------------------------------------------ hot path

/// The next text frame, skipping heartbeats and pings.
#[tokio::test]
async fn read_errors_close_with_their_codes() {
    let env = env(RealtimeConfig::default());
    for (error, code) in [
        (ReadError::TooBig, close::MESSAGE_TOO_BIG),
        (ReadError::InvalidUtf8, close::INVALID_PAYLOAD),
        (
            ReadError::Protocol("unmasked frame".into()),
            close::PROTOCOL_ERROR,
        ),
        (ReadError::Transport("reset".into()), close::NORMAL),
    ] {
        let mut client = connect(&env.hub);
        client.auth("alice").await;
        client.send_error(error.clone());
        assert_eq!(client.closed().await, code, "{error}");
        assert_eq!(client.task.await.unwrap().code, code);
    }
}

#[tokio::test]
async fn a_binary_frame_closes_with_1003() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    client.send_frame(Frame::Binary(bytes::Bytes::from_static(
        br#"{"type":"ping","id":"1"}"#,
    )));
    assert_eq!(client.closed().await, close::UNSUPPORTED_DATA);
}

#[tokio::test]
async fn pings_count_against_the_rate_limit() {
    let env = env(RealtimeConfig::default());
    let mut client = connect(&env.hub);
    client.auth("alice").await; // one token spent
    for _ in 0..300 {
        client.send_frame(Frame::Ping(Vec::new()));
    }
    let mut warned = false;
    loop {
        match client.frame().await {
            Frame::Text(text) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(message["type"], "warning", "{message}");
                assert_eq!(message["code"], "rate_limited");
                warned = true;
            }
            Frame::Close(close) => {
                assert_eq!(close.unwrap().0, close::RATE_LIMITED);
                break;
            }
            _ => {}
        }
    }
    assert!(warned, "warned before the close");
}

#[tokio::test]
async fn presence_is_bounded_per_connection() {
    let env = env(RealtimeConfig {
        max_presence: 2,
        ..RealtimeConfig::default()
    });
    let mut client = connect(&env.hub);
    client.auth("alice").await;
    for store in ["s1", "s2"] {
        client.send(json!({ "type": "presence", "id": store, "store": store }));
        assert_eq!(client.message().await["users"], json!(["alice"]));
    }
    client.send(json!({ "type": "presence", "id": "s3", "store": "s3" }));
    let refused = client.message().await;
    assert_eq!(
        (refused["id"].as_str(), refused["code"].as_str()),
        (Some("s3"), Some("too_many_presences")),
        "{refused}"
    );
    assert!(env.hub.present_users("acme", "s3").is_empty());
    client.send(json!({ "type": "presence", "id": "again", "store": "s1" }));
    assert_eq!(
        client.message().await["users"],
        json!(["alice"]),
        "a store already announced is not another entry"
    );
    client.hang_up().await;
    for store in ["s1", "s2"] {
        assert!(env.hub.present_users("acme", store).is_empty());
    }
}

/// The reply to request `id`, past the notifications before it.
async fn reply(client: &mut Client, id: &str) -> Value {
    loop {
        let message = client.message().await;
        if message["id"] == id {
            return message;
        }
    }
}

#[tokio::test]
async fn unsubscribing_from_a_store_leaves_its_presence() {
    let env = env(RealtimeConfig {
        max_presence: 1,
        ..RealtimeConfig::default()
    });
    let mut watcher = connect(&env.hub);
    watcher.auth("bob").await;
    watcher.subscribe("store:s1", json!({})).await;
    let mut tab = connect(&env.hub);
    tab.auth("alice").await;
    tab.subscribe("store:s1", json!({})).await;
    tab.send(json!({ "type": "presence", "id": "p1", "store": "s1" }));
    assert_eq!(reply(&mut tab, "p1").await["users"], json!(["alice"]));
    assert_eq!(watcher.message().await["state"], "joined");

    // The tab moves on to another store.
    tab.send(json!({ "type": "unsubscribe", "id": "u", "topic": "store:s1" }));
    assert_eq!(reply(&mut tab, "u").await["type"], "unsubscribed");
    let left = watcher.message().await;
    assert_eq!(
        (left["user"].as_str(), left["state"].as_str()),
        (Some("alice"), Some("left"))
    );
    assert!(env.hub.present_users("acme", "s1").is_empty());
    tab.subscribe("store:s2", json!({})).await;
    tab.send(json!({ "type": "presence", "id": "p2", "store": "s2" }));
    assert_eq!(
        reply(&mut tab, "p2").await["users"],
        json!(["alice"]),
        "the entry of s1 was given back"
    );
}

/// A slow consumer: an outbound queue of 4, a sink that takes one frame and
/// then waits for the test to read; events until the hub gives up on it.
async fn slow_consumer(env: &Env) -> Client {
    let mut slow = connect_with(&env.hub, ConnectionContext::new(localhost()), 1);
    slow.auth("alice").await;
    slow.subscribe("store:s1", json!({})).await;
    // The first event fills the sink; the writer blocks on the second, and
    // the queue fills behind it.
    env.log.commit_store("s1");
    timeout(WAIT, async {
        while slow.output.is_empty() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the first event reaches the sink");
    for _ in 1..40 {
        env.log.commit_store("s1");
    }
    routed(&env.hub, 40).await;
    slow
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_that_reads_again_within_the_grace_gets_4009() {
    let env = env(RealtimeConfig {
        outbound_queue: 4,
        ..RealtimeConfig::default()
    });
    let mut slow = slow_consumer(&env).await;
    // Longer than the ordinary close flush (2 s), within the slow
    // consumer's grace (10 s): the close frame is still waiting behind the
    // backlog, and arrives once the backlog is read.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut events = 0;
    let code = loop {
        match slow.frame().await {
            Frame::Text(_) => events += 1,
            Frame::Close(close) => break close.map(|(code, _)| code),
            _ => {}
        }
    };
    assert_eq!(code, Some(close::SLOW_CONSUMER));
    assert!(events < 40, "its queue was dropped, not delivered");
    assert_eq!(slow.task.await.unwrap().code, close::SLOW_CONSUMER);
}

#[tokio::test(start_paused = true)]
async fn a_slow_consumer_that_never_reads_is_dropped_after_the_grace() {
    let env = env(RealtimeConfig {
        outbound_queue: 4,
        ..RealtimeConfig::default()
    });
    let start = tokio::time::Instant::now();
    let slow = slow_consumer(&env).await;
    let reason = timeout(WAIT, slow.task).await.unwrap().unwrap();
    assert_eq!(reason.code, close::SLOW_CONSUMER);
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_secs(9) && waited <= Duration::from_secs(11),
        "dropped after the 10 s grace, not before: {waited:?}"
    );
    assert_eq!(env.hub.connection_count(), 0);
    assert_eq!(env.hub.room_size("acme", &Topic::Store("s1".into())), 0);
    drop(slow.output);
}

#[tokio::test]
async fn a_snapshot_ahead_of_the_hub_gets_only_the_events_after_it() {
    // The read model is at 3 while the hub has routed nothing yet: the
    // events up to 3, routed later, must not be sent again.
    let (log, feed) = Log::new();
    let early: Vec<_> = (0..5)
        .map(|_| log.append("acme", Some("s1"), "item", "i1"))
        .collect();
    let mut snapshots = MockSnapshotProvider::new();
    snapshots
        .expect_snapshot()
        .returning(|_, _| Ok(Some((json!({ "items": 3 }), 3))));
    let hub = Hub::start(
        Arc::new(log.mock_source()),
        feed,
        0,
        Arc::new(authorizer()),
        Some(Arc::new(snapshots)),
        RealtimeConfig::default(),
    );
    let mut client = connect(&hub);
    client.auth("alice").await;
    let reply = client
        .subscribe("store:s1", json!({ "snapshot": true }))
        .await;
    assert_eq!(reply["position"], 3, "{reply}");
    for event in early {
        log.feed.send(event).unwrap();
    }
    log.commit_store("s1");
    assert_eq!(events(&mut client, 3).await, vec![4, 5, 6]);
    assert!(client.sync().await.is_empty(), "nothing twice");
}

async fn next_text(client: &mut Client) -> SharedText {
    loop {
        if let Frame::Text(text) = client.frame().await {
            if !text.contains(r#""type":"heartbeat""#) {
                return text;
            }
        }
    }
}

#[tokio::test]
async fn every_subscriber_gets_the_same_event_buffer() {
    let env = env(RealtimeConfig::default());
    let mut clients = Vec::new();
    for _ in 0..3 {
        let mut client = connect(&env.hub);
        client.auth("alice").await;
        client.subscribe("store:s1", json!({})).await;
        clients.push(client);
    }
    let position = env.log.commit_store("s1");
    let mut frames = Vec::new();
    for client in &mut clients {
        frames.push(next_text(client).await);
    }
    let value: Value = serde_json::from_str(&frames[0]).unwrap();
    assert_eq!(value["type"], "event");
    assert_eq!(value["position"], position);
    // One buffer for all: the frame is not copied per recipient.
    for frame in &frames[1..] {
        assert_eq!(frame, &frames[0]);
        assert_eq!(frame.as_bytes().as_ptr(), frames[0].as_bytes().as_ptr());
    }
}

/// A sink that records each frame and each flush.
#[derive(Default)]
struct CountingSink {
    frames: Vec<Frame>,
    flushes: Vec<usize>,
}

impl Sink<Frame> for CountingSink {
    type Error = Infallible;

    fn poll_ready(
        self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn start_send(mut self: Pin<&mut Self>, frame: Frame) -> Result<(), Infallible> {
        self.frames.push(frame);
        Ok(())
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        let written = self.frames.len();
        if self.flushes.last() != Some(&written) {
            self.flushes.push(written);
        }
        std::task::Poll::Ready(Ok(()))
    }

    fn poll_close(
        self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.poll_flush(cx)
    }
}

#[tokio::test]
async fn queued_frames_are_written_together_and_flushed_once() {
    use crate::hub::{ConnSignal, Outbound};
    use crate::writer::{CloseTimeouts, WRITE_BATCH, write_loop};

    let (tx, rx) = mpsc::channel(1024);
    let queued = WRITE_BATCH + 10;
    for i in 0..queued {
        tx.try_send(Outbound::Text(format!(r#"{{"n":{i}}}"#)))
            .unwrap();
    }
    let signal = ConnSignal::new();
    let mut sink = CountingSink::default();
    let timeouts = CloseTimeouts {
        flush: Duration::from_secs(1),
        slow_consumer: Duration::from_secs(1),
    };
    let writer = write_loop(&mut sink, rx, signal.clone(), timeouts);
    let closer = async {
        // Once the writer has taken everything, close the connection.
        while tx.capacity() < 1024 {
            tokio::task::yield_now().await;
        }
        signal.close(CloseReason {
            code: close::NORMAL,
            reason: "done",
        });
    };
    tokio::join!(writer, closer);
    let texts: Vec<String> = sink
        .frames
        .iter()
        .filter_map(|f| match f {
            Frame::Text(t) => Some(t.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        texts.len(),
        queued,
        "every queued frame is written in order"
    );
    assert_eq!(texts[0], r#"{"n":0}"#);
    assert_eq!(texts[queued - 1], format!(r#"{{"n":{}}}"#, queued - 1));
    // A first batch of WRITE_BATCH frames with one flush, then the rest with
    // another; the close frame comes last.
    assert_eq!(sink.flushes[0], WRITE_BATCH, "{:?}", sink.flushes);
    assert_eq!(sink.flushes[1], queued, "{:?}", sink.flushes);
    assert_eq!(
        sink.frames.last().and_then(Frame::close_code),
        Some(close::NORMAL)
    );
}

// ------------------------------------------------------ command lifecycle

#[tokio::test]
async fn an_executed_command_frame_waits_until_the_hub_routed_its_events() {
    let env = env(RealtimeConfig::default());
    let mut alice = connect(&env.hub);
    alice.auth("alice").await;
    assert_eq!(
        alice.subscribe("session:s-alice", json!({})).await["type"],
        "subscribed"
    );
    assert_eq!(
        alice.subscribe("store:s1", json!({})).await["type"],
        "subscribed"
    );
    alice.sync().await;

    let tracker = env
        .hub
        .track_command("acme", "s-alice", "c-1")
        .expect("the session listens");
    tracker.accepted();
    // Committed, but the hub has not routed it yet: `executed` must wait.
    let event = env.log.append("acme", Some("s1"), "item", "i1");
    tracker.executed(event.position, false, json!({ "position": event.position }));
    let before = alice.sync().await;
    let statuses: Vec<_> = before.iter().map(|m| m["status"].clone()).collect();
    assert_eq!(statuses, [json!("accepted")], "{before:?}");

    // Routed: the event on both topics, then `executed`.
    env.log.feed.send(event.clone()).unwrap();
    let mut got = Vec::new();
    while got.last().is_none_or(|m: &Value| m["type"] != "command") {
        got.push(alice.message().await);
    }
    let kinds: Vec<_> = got
        .iter()
        .map(|m| m["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["event", "event", "command"], "{got:?}");
    assert_eq!(
        got[2],
        json!({ "type": "command", "command_id": "c-1", "status": "executed",
                "position": event.position, "replayed": false,
                "result": { "position": event.position } })
    );
    // Exactly one final frame: a second answer is ignored.
    tracker.failed("internal", "late", None);
    drop(tracker);
    assert_eq!(alice.sync().await, Vec::<Value>::new());
}

#[tokio::test]
async fn command_frames_go_to_the_session_of_the_tenant_only() {
    let env = env(RealtimeConfig::default());
    let mut alice = connect(&env.hub);
    alice.auth("alice").await;
    alice.subscribe("session:s-alice", json!({})).await;
    let mut bob = connect(&env.hub);
    bob.auth("bob").await;
    bob.subscribe("session:s-bob", json!({})).await;
    let mut dave = connect(&env.hub);
    dave.auth("globex").await;
    dave.subscribe("session:s-dave", json!({})).await;

    // Nobody listens to another tenant's or an unheard session: no tracker.
    assert!(env.hub.track_command("globex", "s-alice", "c-1").is_none());
    assert!(env.hub.track_command("acme", "s-nobody", "c-1").is_none());

    let tracker = env.hub.track_command("acme", "s-alice", "c-2").unwrap();
    tracker.accepted();
    tracker.failed(
        "insufficient_stock",
        "short",
        Some(json!({ "available": 1 })),
    );
    assert_eq!(alice.message().await["status"], "accepted");
    assert_eq!(
        alice.message().await,
        json!({ "type": "command", "command_id": "c-2", "status": "failed",
                "code": "insufficient_stock", "message": "short",
                "details": { "available": 1 } })
    );
    assert_eq!(bob.sync().await, Vec::<Value>::new());
    assert_eq!(dave.sync().await, Vec::<Value>::new());

    // Dropped without an answer (its task died): `failed`, code internal.
    drop(env.hub.track_command("acme", "s-alice", "c-3").unwrap());
    let failed = alice.message().await;
    assert_eq!(
        (failed["command_id"].as_str(), failed["code"].as_str()),
        (Some("c-3"), Some("internal"))
    );
}

#[tokio::test]
async fn waiting_executed_frames_are_bounded() {
    let env = env(RealtimeConfig::default());
    let mut alice = connect(&env.hub);
    alice.auth("alice").await;
    alice.subscribe("session:s-alice", json!({})).await;
    alice.sync().await;
    // The feed has stalled: nothing at position 1 is ever routed.
    for n in 0..MAX_WAITING_COMMAND_FRAMES {
        let tracker = env
            .hub
            .track_command("acme", "s-alice", &format!("c-{n}"))
            .unwrap();
        tracker.executed(1, false, Value::Null);
    }
    assert_eq!(alice.sync().await, Vec::<Value>::new(), "all of them wait");
    // One more does not: it is sent at once rather than held.
    let tracker = env
        .hub
        .track_command("acme", "s-alice", "one-more")
        .unwrap();
    tracker.executed(1, false, Value::Null);
    let sent = alice.sync().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0]["command_id"], "one-more");
}

mod dashboards;
mod presence;
#[cfg(feature = "nats")]
mod presence_nats;
mod stations;
