//! One suite for every bus: a new implementation proves itself by passing it.
//!
//! Each implementation gives a fixture that makes `n` nodes sharing one
//! transport: for the in-memory bus, handles of one bus; for NATS, buses
//! connected to one `nats-server` the fixture starts on a free port.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use larder_bus::{BusItem, BusStream, EventBus};
use serde::{Deserialize, Serialize};
use tokio::time::timeout;
use tokio_stream::StreamExt;

/// A message that says who published it and its rank among theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Msg {
    node: usize,
    seq: u64,
}

type Node = Arc<dyn EventBus<Msg>>;

/// Nodes sharing one transport. What it holds (a broker process) lives as
/// long as the fixture.
trait Fixture {
    fn nodes(&self, n: usize, capacity: usize) -> impl Future<Output = Vec<Node>>;
}

async fn next(stream: &mut BusStream<Msg>) -> BusItem<Msg> {
    timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("bus item within 5 s")
        .expect("stream still open")
}

fn msgs(node: usize, seqs: impl IntoIterator<Item = u64>) -> Vec<Arc<Msg>> {
    seqs.into_iter()
        .map(|seq| Arc::new(Msg { node, seq }))
        .collect()
}

async fn every_subscriber_receives_published_events_in_order(fixture: &impl Fixture) {
    let nodes = fixture.nodes(1, 64).await;
    let mut first = nodes[0].subscribe().await.unwrap();
    let mut second = nodes[0].subscribe().await.unwrap();
    nodes[0].publish(msgs(0, 1..=3)).await.unwrap();
    for stream in [&mut first, &mut second] {
        for seq in 1..=3 {
            assert_eq!(
                next(stream).await,
                BusItem::Event(Arc::new(Msg { node: 0, seq }))
            );
        }
    }
}

/// Every node publishes bursts; every subscriber on every node receives
/// every message exactly once, each publisher's in publish order.
async fn every_node_receives_every_node_s_events_once_in_publish_order(fixture: &impl Fixture) {
    const NODES: usize = 3;
    const EACH: u64 = 600;
    let nodes = fixture.nodes(NODES, 8192).await;
    let mut streams = Vec::new();
    for node in &nodes {
        streams.push(node.subscribe().await.unwrap());
    }
    // Batches of varying size, interleaved between publishers.
    let mut sent = [0u64; NODES];
    let mut size = 1;
    while sent.iter().any(|&s| s < EACH) {
        for (i, node) in nodes.iter().enumerate() {
            let from = sent[i] + 1;
            let to = (sent[i] + size).min(EACH);
            if from <= to {
                node.publish(msgs(i, from..=to)).await.unwrap();
                sent[i] = to;
            }
        }
        size = size % 7 + 1;
    }
    for stream in &mut streams {
        let mut last: HashMap<usize, u64> = HashMap::new();
        for _ in 0..NODES as u64 * EACH {
            match next(stream).await {
                BusItem::Event(msg) => {
                    let previous = last.insert(msg.node, msg.seq).unwrap_or(0);
                    assert_eq!(
                        msg.seq,
                        previous + 1,
                        "node {}'s messages in order, once",
                        msg.node
                    );
                }
                BusItem::Lagged { missed } => panic!("no lag expected below capacity ({missed})"),
            }
        }
        assert!(last.values().all(|&seq| seq == EACH));
    }
    // Nothing more (no echo, no duplicate): the next item is a new message.
    nodes[1].publish(msgs(1, [EACH + 1])).await.unwrap();
    for stream in &mut streams {
        assert_eq!(
            next(stream).await,
            BusItem::Event(Arc::new(Msg {
                node: 1,
                seq: EACH + 1
            }))
        );
    }
}

async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed(fixture: &impl Fixture) {
    let nodes = fixture.nodes(1, 4).await;
    let mut slow = nodes[0].subscribe().await.unwrap();
    nodes[0].publish(msgs(0, 1..=10)).await.unwrap();
    assert_eq!(next(&mut slow).await, BusItem::Lagged { missed: 6 });
    for seq in 7..=10 {
        assert_eq!(
            next(&mut slow).await,
            BusItem::Event(Arc::new(Msg { node: 0, seq }))
        );
    }
}

async fn publishing_without_subscribers_is_not_an_error(fixture: &impl Fixture) {
    let nodes = fixture.nodes(2, 8).await;
    assert!(nodes[0].publish(msgs(0, [1])).await.is_ok());
    assert!(nodes[1].publish(Vec::new()).await.is_ok());
}

async fn a_subscriber_only_sees_events_published_after_it_subscribed(fixture: &impl Fixture) {
    let nodes = fixture.nodes(1, 8).await;
    nodes[0].publish(msgs(0, [1])).await.unwrap();
    let mut late = nodes[0].subscribe().await.unwrap();
    nodes[0].publish(msgs(0, [2])).await.unwrap();
    assert_eq!(
        next(&mut late).await,
        BusItem::Event(Arc::new(Msg { node: 0, seq: 2 }))
    );
}

async fn the_stream_ends_when_the_bus_is_dropped(fixture: &impl Fixture) {
    let nodes = fixture.nodes(1, 8).await;
    let mut stream = nodes[0].subscribe().await.unwrap();
    drop(nodes);
    let end = timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(end.is_none());
}

/// Runs every case of the suite against one fixture, each as its own test.
macro_rules! conformance {
    ($module:ident, $fixture:expr) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn every_subscriber_receives_published_events_in_order() {
                super::every_subscriber_receives_published_events_in_order(&$fixture).await;
            }

            #[tokio::test]
            async fn every_node_receives_every_node_s_events_once_in_publish_order() {
                super::every_node_receives_every_node_s_events_once_in_publish_order(&$fixture)
                    .await;
            }

            #[tokio::test]
            async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
                super::a_subscriber_that_falls_behind_is_told_how_many_it_missed(&$fixture).await;
            }

            #[tokio::test]
            async fn publishing_without_subscribers_is_not_an_error() {
                super::publishing_without_subscribers_is_not_an_error(&$fixture).await;
            }

            #[tokio::test]
            async fn a_subscriber_only_sees_events_published_after_it_subscribed() {
                super::a_subscriber_only_sees_events_published_after_it_subscribed(&$fixture).await;
            }

            #[tokio::test]
            async fn the_stream_ends_when_the_bus_is_dropped() {
                super::the_stream_ends_when_the_bus_is_dropped(&$fixture).await;
            }
        }
    };
}

/// In memory: the nodes are handles of one bus.
struct Memory;

impl Fixture for Memory {
    async fn nodes(&self, n: usize, capacity: usize) -> Vec<Node> {
        let bus = larder_bus::InMemoryEventBus::<Msg>::new(capacity);
        (0..n).map(|_| Arc::new(bus.clone()) as Node).collect()
    }
}

conformance!(in_memory, Memory);

#[cfg(feature = "nats")]
mod nats_fixture {
    use super::*;
    pub use larder_bus::test_support::NatsServer;
    use larder_bus::{NatsBusOptions, NatsEventBus};

    /// A `nats-server` of its own, stopped when dropped.
    impl Fixture for NatsServer {
        async fn nodes(&self, n: usize, capacity: usize) -> Vec<Node> {
            let options = NatsBusOptions {
                capacity,
                ..NatsBusOptions::default()
            };
            let mut nodes = Vec::new();
            for _ in 0..n {
                let bus = NatsEventBus::<Msg>::connect_with(&self.url(), options.clone())
                    .await
                    .expect("connects to nats-server");
                nodes.push(Arc::new(bus) as Node);
            }
            nodes
        }
    }
}

#[cfg(feature = "nats")]
conformance!(nats, nats_fixture::NatsServer::start());
