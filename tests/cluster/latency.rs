//! Cross-node delivery latency at a fixed rate: a measurement, not a check
//! of the build (ignored by default; docs/benchmarks.md gives the command).
//!
//! Three nodes; stock adjustments at `LARDER_CLUSTER_RATE` per second (default
//! 1,000) for `LARDER_CLUSTER_SECS` seconds (default 5), spread over the
//! nodes and over 50 items; one client per node subscribed to the store.
//! For each event, the latency is from the moment its request was sent to
//! one node to the moment its event frame reached a client of another node.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use larder_tests::ws::{Next, WsClient};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::helpers::{Cluster, post};

/// Requests in flight at most, so a slow moment cannot pile up unbounded.
const IN_FLIGHT: usize = 256;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a measurement: run it on a release build (docs/benchmarks.md)"]
async fn cross_node_delivery_latency_at_a_fixed_rate() {
    let rate = env_or("LARDER_CLUSTER_RATE", 1_000).clamp(1, 5_000);
    let secs = env_or("LARDER_CLUSTER_SECS", 5).clamp(1, 30);
    let cluster = Cluster::start(3).await;
    let (store, first) = cluster.store_with_item().await;
    let mut items = vec![first];
    for n in 1..50 {
        let body = json!({ "sku": format!("sku-{n}"), "name": "Item", "unit": "kg", "quantity": 10, "threshold": 0 });
        let (status, item) = cluster
            .post(n % 3, &format!("/api/v1/stores/{store}/items"), body)
            .await;
        assert_eq!(status, 201, "{item}");
        items.push(item["id"].as_str().expect("an id").to_owned());
    }
    let since = cluster
        .store_events(&store, 0)
        .await
        .last()
        .map_or(0, |e| e.0);
    let topic = format!("store:{store}");

    // One client per node: position -> when it arrived.
    let mut clients = Vec::new();
    for node in &cluster.nodes {
        let (mut ws, _) = WsClient::authenticated_at(&node.address, &cluster.token).await;
        let reply = ws.subscribe(&topic, Some(since)).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        let topic = topic.clone();
        let expected = rate * secs;
        clients.push(tokio::spawn(async move {
            let mut arrived: HashMap<u64, Instant> = HashMap::new();
            while (arrived.len() as u64) < expected {
                match ws.next_within(Duration::from_secs(10)).await {
                    Next::Frame(frame) if frame["type"] == "event" && frame["topic"] == topic => {
                        let position = frame["position"].as_u64().expect("a position");
                        assert!(
                            arrived.insert(position, Instant::now()).is_none(),
                            "a duplicate"
                        );
                    }
                    Next::Frame(_) => {}
                    Next::Silent | Next::Ended => break,
                }
            }
            arrived
        }));
    }

    // position -> (node the command went through, when it was sent).
    let sent: Arc<Mutex<HashMap<u64, (usize, Instant)>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    for n in 0..rate * secs {
        ticker.tick().await;
        let permit = permits.clone().acquire_owned().await.expect("open");
        let node = (n % 3) as usize;
        let address = cluster.nodes[node].address.clone();
        let http = cluster.http.clone();
        let token = cluster.token.clone();
        let path = format!("/api/v1/items/{}/adjust", items[n as usize % items.len()]);
        let sent = sent.clone();
        requests.push(tokio::spawn(async move {
            let at = Instant::now();
            let (status, body) = post(
                &http,
                &address,
                &token,
                &path,
                json!({ "delta": 1, "reason": "received" }),
            )
            .await;
            drop(permit);
            assert_eq!(status, 200, "{body}");
            let position = body["position"].as_u64().expect("a position");
            sent.lock()
                .expect("not poisoned")
                .insert(position, (node, at));
        }));
    }
    for request in requests {
        request.await.expect("the request task");
    }
    let mut arrivals = Vec::new();
    for client in clients {
        arrivals.push(client.await.expect("the client task"));
    }
    let sent = sent.lock().expect("not poisoned").clone();

    let mut cross = Vec::new();
    for (receiver, arrived) in arrivals.iter().enumerate() {
        assert_eq!(
            arrived.len(),
            sent.len(),
            "client {receiver} got every event"
        );
        for (position, (sender, at)) in &sent {
            if *sender != receiver {
                let arrival = arrived[position];
                cross.push(arrival.saturating_duration_since(*at));
            }
        }
    }
    cross.sort();
    let quantile = |q: f64| {
        let index = ((cross.len() as f64 * q).ceil() as usize).clamp(1, cross.len()) - 1;
        cross[index].as_secs_f64() * 1000.0
    };
    println!(
        "{}",
        json!({
            "scenario": "cluster",
            "nodes": 3,
            "rate": rate,
            "secs": secs,
            "events": sent.len(),
            "cross_node_deliveries": cross.len(),
            "p50_ms": quantile(0.50),
            "p99_ms": quantile(0.99),
            "max_ms": quantile(1.0),
        })
    );
}
