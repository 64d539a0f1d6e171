//! NATS stopped under load: the nodes go on taking commands and delivering
//! events, reading the store every `--catch-up-poll-ms`, and use NATS again
//! once it is back (their connections re-establish themselves).

use std::time::{Duration, Instant};

use larder_tests::ws::{Next, WsClient};
use serde_json::json;

use crate::helpers::{Cluster, Options};

/// The nodes' `--catch-up-poll-ms`: while NATS is down, the bound on how
/// late another node's event reaches a client.
const POLL_MS: u64 = 1_000;

/// How long NATS stays down.
const OUTAGE: Duration = Duration::from_secs(10);

/// Adjusts `item` through node 0 and waits for its event on every client
/// of `watchers`; the latency of each (from the request to the frame).
async fn probe(
    cluster: &Cluster,
    item: &str,
    watchers: &mut [WsClient],
    bound: Duration,
) -> Vec<Duration> {
    let sent = Instant::now();
    let (status, body) = cluster
        .post(
            0,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": 1, "reason": "counted" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let position = body["position"].as_u64().expect("a position");
    let mut latencies = Vec::new();
    for (i, watcher) in watchers.iter_mut().enumerate() {
        let deadline = sent + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match watcher.next_within(left).await {
                Next::Frame(frame) if frame["position"].as_u64() == Some(position) => {
                    latencies.push(sent.elapsed());
                    break;
                }
                Next::Frame(_) => {}
                Next::Silent => {
                    panic!("watcher {i}: the event at {position} did not arrive within {bound:?}")
                }
                Next::Ended => panic!("watcher {i}: its connection ended"),
            }
        }
    }
    latencies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_nats_down_delivery_goes_on_by_polling_and_recovers_when_it_is_back() {
    let mut cluster = Cluster::start_with(Options {
        catch_up_poll_ms: Some(POLL_MS),
        ..Options::nodes(3)
    })
    .await;
    let watched = cluster.watched(2).await;
    let probed = cluster.item(&watched.store, "probe").await;
    let since = watched.since;
    let topic = format!("store:{}", watched.store);
    // Watchers on the nodes other than node 0, which the probes go through.
    let mut watchers = Vec::new();
    for node in &cluster.nodes[1..] {
        let (mut ws, _) = WsClient::authenticated_at(&node.address, &cluster.token).await;
        let reply = ws.subscribe(&topic, Some(since)).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        watchers.push(ws);
    }
    // Each node has two NATS connections: the bus and presence.
    let connections = 2 * cluster.nodes.len() as u64;
    assert_eq!(
        cluster.nats.connections(&cluster.http).await,
        Some(connections)
    );

    let load = cluster.start_load(&watched.items);
    load.tally
        .wait_for_more(100, Duration::from_secs(10), "the load did not start")
        .await;
    cluster.nats.stop();
    let stopped = tokio::time::Instant::now();
    // Commands go on through every node.
    load.tally
        .wait_for_more(100, Duration::from_secs(10), "commands with NATS down")
        .await;
    let tally = load.stop().await;
    // A node without NATS stays ready: it delivers by polling.
    for (n, node) in cluster.nodes.iter().enumerate() {
        let (status, readiness) = node.readiness(&cluster.http).await;
        assert_eq!(status, 200, "node {n} with NATS down: {readiness}");
    }
    // Without load, only the poll brings another node's event: within the
    // poll interval, plus the time to read and send it.
    let bound = Duration::from_millis(POLL_MS) + Duration::from_secs(2);
    let mut down = Vec::new();
    for _ in 0..3 {
        down.extend(probe(&cluster, &probed, &mut watchers, bound).await);
    }

    tokio::time::sleep_until(stopped + OUTAGE).await;
    cluster.nats.start_again();
    // The nodes reconnect by themselves (async-nats backs off up to 4 s).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while cluster.nats.connections(&cluster.http).await != Some(connections) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the nodes did not reconnect to NATS: {:?} connections",
            cluster.nats.connections(&cluster.http).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Delivery is fast again: most events arrive well within the poll
    // interval (by polling, half of them would take half of it or more).
    let mut up = Vec::new();
    for _ in 0..10 {
        up.extend(probe(&cluster, &probed, &mut watchers, bound).await);
    }
    up.sort();
    let median = up[up.len() / 2];
    assert!(
        median < Duration::from_millis(POLL_MS / 4),
        "delivery after NATS came back: median {median:?} (with NATS down: {down:?})"
    );

    // And under load again, still every event once, in order.
    let load = cluster.start_load(&watched.items);
    load.tally
        .wait_for_more(100, Duration::from_secs(10), "commands after NATS is back")
        .await;
    let tally_after = load.stop().await;
    watched.check(&cluster, &[&tally, &tally_after]).await;
    eprintln!("cross-node latency with NATS down: {down:?}; back up: median {median:?}");
}
