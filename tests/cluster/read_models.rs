//! Read models on several nodes: read-your-writes through any node, and a
//! read model that never goes back.

use std::time::Duration;

use serde_json::json;

use crate::helpers::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_through_one_node_is_read_through_every_other_with_min_position() {
    let cluster = Cluster::start(3).await;
    let (store, item) = cluster.store_with_item().await;
    let nodes = cluster.nodes.len();
    let mut quantity = 10;
    let mut seen_position = 0;
    for round in 0..30 {
        let writer = round % nodes;
        let (status, adjusted) = cluster
            .post(
                writer,
                &format!("/api/v1/items/{item}/adjust"),
                json!({ "delta": 1, "reason": "received" }),
            )
            .await;
        assert_eq!(status, 200, "{adjusted}");
        quantity += 1;
        let position = adjusted["position"].as_u64().expect("a position");
        for offset in 1..nodes {
            let reader = (writer + offset) % nodes;
            let response = cluster
                .http
                .get(format!(
                    "{}/api/v1/stores/{store}/items?min_position={position}",
                    cluster.nodes[reader].address
                ))
                .bearer_auth(&cluster.token)
                .timeout(Duration::from_secs(10))
                .send()
                .await
                .expect("the node answers");
            let (status, inventory) = larder_tests::read(response).await;
            assert_eq!(status, 200, "node {reader}: {inventory}");
            let at = inventory["position"].as_u64().expect("a position");
            assert!(
                at >= position,
                "node {reader} answered at {at}, before {position}"
            );
            assert!(
                at >= seen_position,
                "a read model went back from {seen_position} to {at}"
            );
            seen_position = at;
            assert_eq!(
                inventory["items"][0]["quantity"], quantity,
                "node {reader} reads the write made through node {writer}"
            );
        }
    }
}
