//! PostgreSQL restarted under load: while it is down, commands are answered
//! 503 `unavailable` and the nodes report not ready; nothing answered 200 is
//! lost; once it is back the nodes serve again without a restart of their
//! own. The database is an instance of the test's own: the shared one is
//! never stopped.

use std::time::Duration;

use crate::helpers::{Cluster, Options, Postgres};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_answers_503_meanwhile_and_loses_nothing_acknowledged() {
    let postgres = Postgres::start();
    let cluster = Cluster::start_with(Options {
        database_url: Some(postgres.url.clone()),
        ..Options::nodes(2)
    })
    .await;
    let watched = cluster.watched(1).await;
    let items = &watched.items;
    let load = cluster.start_load(items);
    let tally = &load.tally;
    tally
        .wait_for_more(100, Duration::from_secs(10), "the load did not start")
        .await;

    postgres.stop("fast");
    // Every node answers commands 503 `unavailable`, and is not ready.
    for (n, node) in cluster.nodes.iter().enumerate() {
        let (status, body) = cluster
            .post(
                n,
                &format!("/api/v1/items/{}/adjust", items[0]),
                serde_json::json!({ "delta": 1, "reason": "received" }),
            )
            .await;
        assert_eq!(
            (status, body["code"].as_str()),
            (503, Some("unavailable")),
            "node {n} with the database down: {body}"
        );
        let (status, readiness) = node.readiness(&cluster.http).await;
        assert_eq!(status, 503, "node {n}'s /readyz: {readiness}");
        assert_eq!(readiness["database"], false, "node {n}: {readiness}");
    }
    let acked_while_down = tally.acked();

    postgres.start_again();
    // Every node is ready again by itself, and takes commands.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    for (n, node) in cluster.nodes.iter().enumerate() {
        while !node.ready(&cluster.http).await {
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {n} is not ready again: {}",
                node.readiness(&cluster.http).await.1
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    tally
        .wait_for_more(100, Duration::from_secs(20), "commands after the restart")
        .await;
    let tally = load.stop().await;

    let unavailable = tally.unavailable();
    assert!(
        unavailable.keys().all(|code| code == "unavailable"),
        "503 answers other than `unavailable`: {unavailable:?}"
    );
    watched.check(&cluster, &[&tally]).await;
    eprintln!(
        "database restart: {} acknowledged ({acked_while_down} before it was back), 503s {unavailable:?}, {} unanswered",
        tally.acked(),
        tally.unanswered()
    );
}
