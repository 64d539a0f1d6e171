//! Presence across nodes on a real NATS server, one of each test's own
//! (`larder_bus::test_support::NatsServer`): two hubs in this process, each
//! with its own NATS connection, as two nodes.

use std::time::Instant;

use larder_bus::test_support::NatsServer;

use super::*;

/// Short intervals, so that expiry is tested in well under a second.
const HEARTBEAT: Duration = Duration::from_millis(100);
const TTL: Duration = Duration::from_millis(400);
/// A failure bound for anything that crosses NATS.
const ACROSS: Duration = Duration::from_secs(5);

/// A `nats-server` of the test's own, and the presence settings its nodes
/// use on it.
#[derive(Clone)]
struct Setup {
    server: Arc<NatsServer>,
    config: NatsPresenceConfig,
}

fn setup() -> Setup {
    Setup {
        server: Arc::new(NatsServer::start()),
        config: config(),
    }
}

fn config() -> NatsPresenceConfig {
    NatsPresenceConfig {
        subject_prefix: format!("larder.test.presence.{}", uuid::Uuid::new_v4().simple()),
        heartbeat: HEARTBEAT,
        ttl: TTL,
        sync_timeout: Duration::from_millis(500),
    }
}

async fn presence(setup: &Setup, node: &str) -> Arc<NatsPresence> {
    Arc::new(
        NatsPresence::connect_with(&setup.server.url(), node, setup.config.clone())
            .await
            .expect("connects to the test's nats-server"),
    )
}

/// A hub on the shared presence: one node.
async fn node(setup: &Setup, name: &str) -> (Env, Arc<NatsPresence>) {
    let env = env(RealtimeConfig::default());
    let port = presence(setup, name).await;
    env.hub.use_presence(port.clone());
    (env, port)
}

/// A connection subscribed to `store:s1`, not present itself.
async fn watcher(hub: &Hub) -> Client {
    let mut watcher = connect(hub);
    watcher.auth("bob").await;
    watcher.subscribe("store:s1", json!({})).await;
    watcher
}

/// A connection of `token`'s user present in `s1`; returns the users listed.
async fn present(hub: &Hub, token: &str) -> (Client, Value) {
    let mut client = connect(hub);
    client.auth(token).await;
    client.send(json!({ "type": "presence", "id": "p", "store": "s1" }));
    loop {
        let message = client.message().await;
        if message["type"] == "presence" {
            return (client, message["users"].clone());
        }
    }
}

/// The next `presence_changed` of `client`, across NATS: (user, state).
async fn changed(client: &mut Client) -> (String, String) {
    let message = timeout(ACROSS, client.message())
        .await
        .expect("a presence change across nodes");
    assert_eq!(message["type"], "presence_changed", "{message}");
    (
        message["user"].as_str().unwrap().to_owned(),
        message["state"].as_str().unwrap().to_owned(),
    )
}

fn pair(user: &str, state: &str) -> (String, String) {
    (user.to_owned(), state.to_owned())
}

#[tokio::test]
async fn presence_is_cluster_wide_and_announced_once_on_every_node() {
    let config = setup();
    let (a, _port_a) = node(&config, "a").await;
    let (b, _port_b) = node(&config, "b").await;
    let mut watch_a = watcher(&a.hub).await;
    let mut watch_b = watcher(&b.hub).await;

    let (alice_a, users) = present(&a.hub, "alice").await;
    assert_eq!(users, json!(["alice"]));
    assert_eq!(changed(&mut watch_a).await, pair("alice", "joined"));
    assert_eq!(changed(&mut watch_b).await, pair("alice", "joined"));

    // Alice on node b too: nobody is told again. Carol's arrival after it
    // (node b's messages arrive in order) shows nothing came in between.
    let (alice_b, users) = present(&b.hub, "alice").await;
    assert_eq!(users, json!(["alice"]));
    let (carol_b, users) = present(&b.hub, "scoped").await;
    assert_eq!(
        users,
        json!(["alice", "carol"]),
        "node a's alice listed on b"
    );
    assert_eq!(changed(&mut watch_a).await, pair("carol", "joined"));
    assert_eq!(changed(&mut watch_b).await, pair("carol", "joined"));
    assert_eq!(a.hub.present_users("acme", "s1"), vec!["alice", "carol"]);

    // Alice leaves node a, not the cluster: no `left`; carol's is next.
    alice_a.hang_up().await;
    carol_b.hang_up().await;
    assert_eq!(changed(&mut watch_a).await, pair("carol", "left"));
    assert_eq!(changed(&mut watch_b).await, pair("carol", "left"));
    assert_eq!(a.hub.present_users("acme", "s1"), vec!["alice"]);

    alice_b.hang_up().await;
    assert_eq!(changed(&mut watch_a).await, pair("alice", "left"));
    assert_eq!(changed(&mut watch_b).await, pair("alice", "left"));
    assert!(a.hub.present_users("acme", "s1").is_empty());
    assert!(watch_a.sync().await.is_empty());
    assert!(watch_b.sync().await.is_empty());
}

#[tokio::test]
async fn a_node_that_stops_heartbeating_has_its_users_expire() {
    let config = setup();
    let (a, _port_a) = node(&config, "a").await;
    let mut watch_a = watcher(&a.hub).await;
    let b = presence(&config, "b").await;
    b.join("acme", "s1", "alice");
    b.join("acme", "s1", "bob");
    assert_eq!(changed(&mut watch_a).await, pair("alice", "joined"));
    assert_eq!(changed(&mut watch_a).await, pair("bob", "joined"));

    // Node b dies without a goodbye: no leave, no bye, no heartbeat.
    let died = Instant::now();
    drop(b);
    let mut left = vec![changed(&mut watch_a).await, changed(&mut watch_a).await];
    let after = died.elapsed();
    left.sort();
    assert_eq!(left, vec![pair("alice", "left"), pair("bob", "left")]);
    assert!(
        after <= TTL + HEARTBEAT + Duration::from_millis(250),
        "expired after {after:?}, bound {:?}",
        TTL + HEARTBEAT
    );
    assert!(
        after + HEARTBEAT >= TTL,
        "not before the TTL: expired after {after:?}"
    );
    println!("a dead node's users left after {after:?} (heartbeat {HEARTBEAT:?}, ttl {TTL:?})");
    assert!(a.hub.present_users("acme", "s1").is_empty());
}

#[tokio::test]
async fn a_node_that_closes_says_goodbye_and_its_users_leave_at_once() {
    let config = Setup {
        config: NatsPresenceConfig {
            ttl: Duration::from_secs(60),
            heartbeat: Duration::from_secs(20),
            ..config()
        },
        ..setup()
    };
    let (a, _port_a) = node(&config, "a").await;
    let mut watch_a = watcher(&a.hub).await;
    let b = presence(&config, "b").await;
    b.join("acme", "s1", "alice");
    assert_eq!(changed(&mut watch_a).await, pair("alice", "joined"));
    b.close().await;
    assert_eq!(changed(&mut watch_a).await, pair("alice", "left"));
}

#[tokio::test]
async fn a_node_started_later_learns_who_is_there() {
    let config = setup();
    let (a, _port_a) = node(&config, "a").await;
    let (_alice, _) = present(&a.hub, "alice").await;

    let b = presence(&config, "b").await;
    let mut changes = b.changes();
    let change = timeout(ACROSS, changes.recv())
        .await
        .expect("node b hears of alice")
        .unwrap();
    assert_eq!(change.user, "alice");
    assert_eq!(b.users("acme", "s1"), vec!["alice"]);
}

/// The figures quoted in docs/operations.md: from a `presence` request on
/// node a to the `presence_changed` frame on node b, and from a hang-up on
/// node a to `left` on node b. Run with `--nocapture` to see them.
#[tokio::test]
async fn join_to_announcement_latency_across_nodes() {
    const ROUNDS: usize = 100;
    let config = Setup {
        config: NatsPresenceConfig {
            // Heartbeats are not what is measured.
            heartbeat: Duration::from_secs(5),
            ttl: Duration::from_secs(15),
            ..config()
        },
        ..setup()
    };
    let mut auth = MockAuthorizer::new();
    auth.expect_authenticate()
        .returning(|token| Ok(identity(token, "acme", None, 3600)));
    let auth: Arc<dyn Authorizer> = Arc::new(auth);
    let start = |name: &'static str| {
        let auth = auth.clone();
        let config = config.clone();
        async move {
            let (log, feed) = Log::new();
            let hub = Hub::start(
                Arc::new(log.mock_source()),
                feed,
                0,
                auth,
                None,
                RealtimeConfig::default(),
            );
            let port = presence(&config, name).await;
            hub.use_presence(port.clone());
            (hub, port, log)
        }
    };
    let (a, _port_a, _log_a) = start("a").await;
    let (b, _port_b, _log_b) = start("b").await;
    let mut watch_b = watcher(&b).await;

    let mut joins = Vec::with_capacity(ROUNDS);
    let mut leaves = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let user = format!("user-{round}");
        let mut client = connect(&a);
        client.auth(&user).await;
        let sent = Instant::now();
        client.send(json!({ "type": "presence", "id": "p", "store": "s1" }));
        assert_eq!(changed(&mut watch_b).await, pair(&user, "joined"));
        joins.push(sent.elapsed());
        let sent = Instant::now();
        client.hang_up().await;
        assert_eq!(changed(&mut watch_b).await, pair(&user, "left"));
        leaves.push(sent.elapsed());
    }
    for (what, mut figures) in [("join", joins), ("leave", leaves)] {
        figures.sort();
        let at = |q: f64| figures[((figures.len() as f64 * q) as usize).min(figures.len() - 1)];
        println!(
            "{what} -> announcement on the other node, {ROUNDS} rounds: p50 {:?}, p90 {:?}, p99 {:?}, max {:?}",
            at(0.5),
            at(0.9),
            at(0.99),
            figures[figures.len() - 1]
        );
    }
}

/// A hub on the shared presence allowing alice two connections.
async fn limited_node(setup: &Setup, name: &str) -> (Env, Arc<NatsPresence>) {
    let env = env(RealtimeConfig {
        max_connections_per_user: 2,
        ..RealtimeConfig::default()
    });
    let port = presence(setup, name).await;
    env.hub.use_presence(port.clone());
    (env, port)
}

/// Waits until `port` counts `expected` of alice's connections on the
/// other nodes (the count has no announcement to wait on).
async fn hears(port: &NatsPresence, expected: u32) {
    timeout(ACROSS, async {
        while port.connections_elsewhere("acme", "alice") != expected {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} counts {} of alice's connections elsewhere, not {expected}",
            port.node(),
            port.connections_elsewhere("acme", "alice")
        )
    });
}

/// Alice's connection to `hub` is refused as it authenticates.
async fn refused(hub: &Hub) {
    let mut client = connect(hub);
    client.send(json!({ "type": "auth", "id": "a", "token": "alice" }));
    assert_eq!(client.message().await["code"], "too_many_connections");
    assert_eq!(client.closed().await, close::TOO_MANY_CONNECTIONS);
}

#[tokio::test]
async fn a_users_connections_count_against_the_limit_on_every_node() {
    let setup = setup();
    let (a, port_a) = limited_node(&setup, "a").await;
    let (b, port_b) = limited_node(&setup, "b").await;
    let mut alice_a = connect(&a.hub);
    alice_a.auth("alice").await;
    hears(&port_b, 1).await;
    let mut alice_b = connect(&b.hub);
    alice_b.auth("alice").await;
    hears(&port_a, 1).await;
    // One connection on each node: a third is refused on either.
    refused(&a.hub).await;
    refused(&b.hub).await;
    // Bob is counted apart.
    connect(&b.hub).auth("bob").await;

    // A node started later learns the counts from its peers' snapshots.
    let (c, port_c) = limited_node(&setup, "c").await;
    hears(&port_c, 2).await;
    refused(&c.hub).await;

    // A closed connection frees its place on every node.
    alice_b.hang_up().await;
    hears(&port_a, 0).await;
    hears(&port_c, 1).await;
    let mut alice_c = connect(&c.hub);
    alice_c.auth("alice").await;
    hears(&port_a, 1).await;
    refused(&a.hub).await;
}

#[tokio::test]
async fn a_dead_nodes_connections_stop_counting_after_the_ttl() {
    let setup = setup();
    let (a, port_a) = limited_node(&setup, "a").await;
    let b = presence(&setup, "b").await;
    b.connections_here("acme", "alice", 2);
    hears(&port_a, 2).await;
    refused(&a.hub).await;

    // Node b dies without a goodbye: its connections are gone with it.
    drop(b);
    hears(&port_a, 0).await;
    connect(&a.hub).auth("alice").await;
}
