//! Cross-node delivery latency and fan-out cost at a fixed rate: a
//! measurement, not a check of the build (ignored by default;
//! docs/benchmarks.md gives the commands).
//!
//! `LARDER_CLUSTER_NODES` nodes (default 3); stock adjustments at
//! `LARDER_CLUSTER_RATE` per second (default 1,000) for
//! `LARDER_CLUSTER_SECS` seconds (default 5), spread over the nodes and over
//! `LARDER_CLUSTER_ITEMS` items (default 50: every node adjusts every item;
//! a multiple of the node count gives each item one node);
//! `LARDER_CLUSTER_CLIENTS` clients per node (default 1)
//! subscribed to the store. For each event, the latency is from the moment
//! its request was sent to one node to the moment its event frame reached a
//! client of another node (cross-node), or of the same node (the floor: the
//! command and one node's delivery, in the same run); the difference for
//! the same event (its arrival on another node minus its arrival on the
//! node the command went through) is the cross-node hop alone. The nodes' CPU time
//! (user + system, from `/proc`) over the run, divided by the deliveries
//! made, is the server CPU per delivery.
//!
//! `LARDER_CLUSTER_DUMP=path` also writes one line per event: its position,
//! the node its command went through, when it was sent and when it reached
//! each client (`node:ms`), in milliseconds from the first send; where a
//! tail comes from (one node stalling, one sender's batch arriving late)
//! shows in it.

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
    let nodes = env_or("LARDER_CLUSTER_NODES", 3).clamp(1, 5) as usize;
    let per_node = env_or("LARDER_CLUSTER_CLIENTS", 1).clamp(1, 2_000) as usize;
    let item_count = env_or("LARDER_CLUSTER_ITEMS", 50).clamp(1, 1_000) as usize;
    let cluster = Cluster::start(nodes).await;
    let (store, first) = cluster.store_with_item().await;
    let mut items = vec![first];
    for n in 1..item_count {
        let body = json!({ "sku": format!("sku-{n}"), "name": "Item", "unit": "kg", "quantity": 10, "threshold": 0 });
        let (status, item) = cluster
            .post(n % nodes, &format!("/api/v1/stores/{store}/items"), body)
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

    // `per_node` clients per node: (node, position -> when it arrived).
    let mut clients = Vec::new();
    for (home, node) in cluster
        .nodes
        .iter()
        .enumerate()
        .flat_map(|n| std::iter::repeat_n(n, per_node))
    {
        let (mut ws, _) = WsClient::authenticated_at(&node.address, &cluster.token).await;
        let reply = ws.subscribe(&topic, Some(since)).await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        let topic = topic.clone();
        let expected = rate * secs;
        clients.push((
            home,
            tokio::spawn(async move {
                let mut arrived: HashMap<u64, Instant> = HashMap::new();
                while (arrived.len() as u64) < expected {
                    match ws.next_within(Duration::from_secs(10)).await {
                        Next::Frame(frame)
                            if frame["type"] == "event" && frame["topic"] == topic =>
                        {
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
            }),
        ));
    }
    let cpu_before: Vec<Duration> = cluster.nodes.iter().map(|n| cpu_time(n.pid())).collect();

    // position -> (node the command went through, when it was sent).
    let sent: Arc<Mutex<HashMap<u64, (usize, Instant)>>> = Arc::default();
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate as u32);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    for n in 0..rate * secs {
        ticker.tick().await;
        let permit = permits.clone().acquire_owned().await.expect("open");
        let node = n as usize % nodes;
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
    for (home, client) in clients {
        arrivals.push((home, client.await.expect("the client task")));
    }
    let cpu: Duration = cluster
        .nodes
        .iter()
        .zip(cpu_before)
        .map(|(n, before)| cpu_time(n.pid()).saturating_sub(before))
        .sum();
    let sent = sent.lock().expect("not poisoned").clone();

    let (mut cross, mut same) = (Vec::new(), Vec::new());
    for (client, (receiver, arrived)) in arrivals.iter().enumerate() {
        assert_eq!(arrived.len(), sent.len(), "client {client} got every event");
        for (position, (sender, at)) in &sent {
            let latency = arrived[position].saturating_duration_since(*at);
            if sender == receiver {
                same.push(latency);
            } else {
                cross.push(latency);
            }
        }
    }
    // Cross-node delivery alone: the same event's arrival on another node
    // minus its arrival on the node the command went through.
    let mut hop = Vec::new();
    for (position, (sender, _)) in &sent {
        let home = arrivals
            .iter()
            .filter(|(node, _)| node == sender)
            .map(|(_, arrived)| arrived[position])
            .min();
        if let Some(home) = home {
            for (_, arrived) in arrivals.iter().filter(|(node, _)| node != sender) {
                hop.push(arrived[position].saturating_duration_since(home));
            }
        }
    }
    if let Ok(path) = std::env::var("LARDER_CLUSTER_DUMP") {
        let start = sent.values().map(|(_, at)| *at).min().expect("some");
        let mut out = String::new();
        let mut positions: Vec<_> = sent.keys().copied().collect();
        positions.sort();
        for position in positions {
            let (sender, at) = sent[&position];
            out.push_str(&format!(
                "{position} {sender} {:.3}",
                at.duration_since(start).as_secs_f64() * 1000.0
            ));
            for (node, arrived) in &arrivals {
                out.push_str(&format!(
                    " {node}:{:.3}",
                    arrived[&position].duration_since(start).as_secs_f64() * 1000.0
                ));
            }
            out.push('\n');
        }
        std::fs::write(path, out).expect("dump");
    }
    let deliveries = cross.len() + same.len();
    println!(
        "{}",
        json!({
            "scenario": "cluster",
            "nodes": nodes,
            "clients": nodes * per_node,
            "rate": rate,
            "secs": secs,
            "events": sent.len(),
            "deliveries": deliveries,
            "cross_node": quantiles(&mut cross),
            "same_node": quantiles(&mut same),
            "cross_minus_same_node": quantiles(&mut hop),
            "server_cpu_secs": cpu.as_secs_f64(),
            "server_cpu_us_per_delivery": cpu.as_secs_f64() * 1e6 / deliveries.max(1) as f64,
        })
    );
}

/// p50, p99 and max of `latencies`, in milliseconds (null when empty).
fn quantiles(latencies: &mut [Duration]) -> serde_json::Value {
    if latencies.is_empty() {
        return serde_json::Value::Null;
    }
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[index].as_secs_f64() * 1000.0
    };
    json!({ "n": latencies.len(), "p50_ms": at(0.50), "p99_ms": at(0.99), "max_ms": at(1.0) })
}

/// A process's CPU time so far (user + system), from `/proc/{pid}/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("the node's /proc stat");
    // Fields after the command name (which may hold spaces) end with ')'.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // The kernel counts in USER_HZ, 100 per second on Linux.
    Duration::from_millis(ticks * 10)
}
