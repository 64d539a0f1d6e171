//! Every client on every node receives every event of its topic exactly
//! once, in one global order, also across a node killed under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use larder_tests::ws::{Next, WsClient};
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::helpers::{Cluster, post};

/// How long a client may stay without any frame before the test fails
/// (until the target is known, the load is continuous; after it, silence
/// means an event is missing).
const SILENCE: Duration = Duration::from_secs(10);

/// What one client received: (position, event id), in arrival order.
type Received = Vec<(u64, String)>;

/// A client subscribed to `store:{store}` after `since` on `nodes[home]`.
/// When its connection ends (its node was killed) it reconnects to the
/// next node in `fallbacks` and resumes with `since` = the last position it
/// received. It stops once it has received `until` (once that is known).
fn client(
    addresses: Vec<String>,
    home: usize,
    token: String,
    store: String,
    since: u64,
    until: watch::Receiver<Option<u64>>,
) -> JoinHandle<Received> {
    tokio::spawn(async move {
        let topic = format!("store:{store}");
        let mut received: Received = Vec::new();
        let mut node = home;
        let mut last = since;
        let mut silent = Duration::ZERO;
        'connect: loop {
            let (mut ws, _) = WsClient::authenticated_at(&addresses[node], &token).await;
            let reply = ws.subscribe(&topic, Some(last)).await;
            assert_eq!(reply["type"], "subscribed", "{reply}");
            loop {
                if let Some(target) = *until.borrow()
                    && last >= target
                {
                    return received;
                }
                // A short wait, so a target set meanwhile is seen.
                match ws.next_within(Duration::from_millis(200)).await {
                    Next::Frame(frame) if frame["type"] == "event" && frame["topic"] == topic => {
                        let position = frame["position"].as_u64().expect("a position");
                        let id = frame["event"]["id"].as_str().expect("an id").to_owned();
                        last = position;
                        received.push((position, id));
                        silent = Duration::ZERO;
                    }
                    Next::Frame(_) => {}
                    Next::Silent => {
                        silent += Duration::from_millis(200);
                        assert!(
                            silent < SILENCE,
                            "client on {}: silent at {last}",
                            addresses[node]
                        );
                    }
                    Next::Ended => {
                        // Its node was killed: resume on the next one, after
                        // the last position received.
                        node = (node + 1) % addresses.len();
                        continue 'connect;
                    }
                }
            }
        }
    })
}

/// Waits for every client, bounded.
async fn collect(clients: Vec<JoinHandle<Received>>) -> Vec<Received> {
    let mut all = Vec::new();
    for client in clients {
        let received = tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("the client received everything in time")
            .expect("the client task");
        all.push(received);
    }
    all
}

/// Sends stock adjustments of +1 through `node` until `stop`; counts
/// answers 200. A node that does not answer (killed) ends the loop.
fn load(
    cluster: &Cluster,
    node: usize,
    item: &str,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> JoinHandle<()> {
    let http = cluster.http.clone();
    let address = cluster.nodes[node].address.clone();
    let token = cluster.token.clone();
    let path = format!("/api/v1/items/{item}/adjust");
    tokio::spawn(async move {
        // Bounded in count as well as in time.
        for _ in 0..2_000 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let (status, body) = post(
                &http,
                &address,
                &token,
                &path,
                json!({ "delta": 1, "reason": "received" }),
            )
            .await;
            match status {
                200 => {
                    sent.fetch_add(1, Ordering::SeqCst);
                }
                0 => return,
                _ => panic!("adjusting through {address}: {status} {body}"),
            }
        }
    })
}

fn assert_every_client_got_exactly(truth: &Received, clients: &[Received]) {
    assert!(!truth.is_empty());
    for (i, received) in clients.iter().enumerate() {
        assert_eq!(
            received.len(),
            truth.len(),
            "client {i}: every event exactly once ({} received, {} committed)",
            received.len(),
            truth.len()
        );
        assert_eq!(
            received, truth,
            "client {i}: the store's events, in position order"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_on_every_node_receive_every_event_once_in_one_order() {
    let cluster = Cluster::start(3).await;
    let (store, item) = cluster.store_with_item().await;
    let since = cluster
        .store_events(&store, 0)
        .await
        .last()
        .map_or(0, |e| e.0);
    let addresses: Vec<String> = cluster.nodes.iter().map(|n| n.address.clone()).collect();
    let (target, until) = watch::channel(None);
    let mut clients = Vec::new();
    for home in 0..addresses.len() {
        for _ in 0..2 {
            clients.push(client(
                addresses.clone(),
                home,
                cluster.token.clone(),
                store.clone(),
                since,
                until.clone(),
            ));
        }
    }
    // Commands through every node at once, bounded in count.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let loads: Vec<_> = (0..addresses.len())
        .map(|node| load(&cluster, node, &item, stop.clone(), sent.clone()))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for load in loads {
        load.await.expect("the load task");
    }
    let truth = cluster.store_events(&store, since).await;
    assert!(sent.load(Ordering::SeqCst) > 0);
    target.send_replace(truth.last().map(|e| e.0));
    let received = collect(clients).await;
    assert_every_client_got_exactly(&truth, &received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_loses_nothing_for_its_clients() {
    let cluster = Cluster::start(3).await;
    let (store, item) = cluster.store_with_item().await;
    let since = cluster
        .store_events(&store, 0)
        .await
        .last()
        .map_or(0, |e| e.0);
    let addresses: Vec<String> = cluster.nodes.iter().map(|n| n.address.clone()).collect();
    let (target, until) = watch::channel(None);
    let mut clients = Vec::new();
    for home in 0..addresses.len() {
        for _ in 0..2 {
            clients.push(client(
                addresses.clone(),
                home,
                cluster.token.clone(),
                store.clone(),
                since,
                until.clone(),
            ));
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let loads: Vec<_> = (0..addresses.len())
        .map(|node| load(&cluster, node, &item, stop.clone(), sent.clone()))
        .collect();
    // Under load: kill the last node once events flow.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sent.load(Ordering::SeqCst) < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the load did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut cluster = cluster;
    let killed = cluster.nodes.len() - 1;
    cluster.nodes[killed].kill();
    let at_kill = sent.load(Ordering::SeqCst);
    // The survivors go on taking commands.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sent.load(Ordering::SeqCst) < at_kill + 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the survivors stopped taking commands"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for load in loads {
        load.await.expect("the load task");
    }
    let truth = cluster.store_events(&store, since).await;
    target.send_replace(truth.last().map(|e| e.0));
    let received = collect(clients).await;
    assert_every_client_got_exactly(&truth, &received);
}
