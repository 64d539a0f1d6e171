//! The per-user connection limit (`--ws-max-connections-per-user`),
//! counted on every node: a user's connections on one node count on the
//! others, a closed connection frees its place everywhere, and a node
//! killed with SIGKILL stops counting once its presence expires.

use std::time::Duration;

use larder_tests::ws::{Ended, WsClient};
use serde_json::json;
use tokio::time::Instant;

use crate::helpers::{Cluster, Options};

/// A bound for what crosses NATS.
const ACROSS: Duration = Duration::from_secs(5);
/// A killed node's connections stop counting after the presence TTL (6 s)
/// plus up to a heartbeat (2 s).
const EXPIRY: Duration = Duration::from_secs(15);

/// Connects to `address` and authenticates: the client when welcomed,
/// `None` when refused (`too_many_connections`, then close 4029).
async fn admitted(address: &str, token: &str) -> Option<WsClient> {
    let mut client = WsClient::connect_at(address).await;
    let reply = client
        .request(json!({ "type": "auth", "token": token }))
        .await;
    if reply["type"] == "welcome" {
        return Some(client);
    }
    assert_eq!(reply["code"], "too_many_connections", "{reply}");
    let (ended, _) = client.until_closed(ACROSS).await;
    assert_eq!(ended, Ended::Closed(4029));
    None
}

/// Tries until `address` admits (`admit`) or refuses the user's next
/// connection, within `within`: what another node heard is one message
/// behind. An admitted connection that was to be refused is closed again.
async fn until(address: &str, token: &str, admit: bool, within: Duration) -> Option<WsClient> {
    let deadline = Instant::now() + within;
    loop {
        let client = admitted(address, token).await;
        if client.is_some() == admit {
            return client;
        }
        drop(client);
        assert!(
            Instant::now() < deadline,
            "{address} did not {} within {within:?}",
            if admit { "admit" } else { "refuse" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_connections_count_against_the_limit_on_every_node() {
    let mut cluster = Cluster::start_with(Options {
        args: vec!["--ws-max-connections-per-user".into(), "2".into()],
        ..Options::nodes(2)
    })
    .await;
    let [a, b] = [0, 1].map(|n| cluster.nodes[n].address.clone());
    let token = cluster.token.clone();
    let _first = admitted(&a, &token).await.expect("first connection");
    let second = admitted(&a, &token).await.expect("second connection");
    assert!(
        admitted(&a, &token).await.is_none(),
        "third on the same node"
    );

    // Node b counts node a's two, as soon as it heard of them.
    until(&b, &token, false, ACROSS).await;
    let url = format!("{}/ws?access_token={token}", b.replacen("http", "ws", 1));
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429)
        }
        other => panic!("a third connection, token in the upgrade: {other:?}"),
    }

    // Closing one on node a frees a place on node b.
    drop(second);
    let _on_b = until(&b, &token, true, ACROSS).await;
    assert!(
        admitted(&b, &token).await.is_none(),
        "two again: one on each node"
    );

    // Node a dies: its connection stops counting when its presence expires.
    let killed = Instant::now();
    cluster.nodes[0].kill();
    until(&b, &token, true, EXPIRY).await;
    println!(
        "a killed node's connection stopped counting after {:?}",
        killed.elapsed()
    );
}
