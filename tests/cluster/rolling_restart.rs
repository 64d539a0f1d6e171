//! A rolling restart under load: each node in turn stopped with SIGTERM
//! and started again on its port. Its real-time clients are closed and
//! resume on another node; commands go on through the others; nothing is
//! lost or repeated.

use std::time::Duration;

use tokio::sync::watch;

use crate::helpers::{
    Cluster, Tally, assert_acked_in_log, assert_every_client_got_exactly, collect, join_loads,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let (store, _) = cluster.store_with_item().await;
    let items = cluster.items(&store, 3).await;
    let since = cluster.store_head(&store).await;
    let (target, until) = watch::channel(None);
    let clients = cluster.clients(&store, since, 2, &until);
    let tally = Tally::new();
    let loads = cluster.loads(&items, &tally);
    tally
        .wait_for_more(50, Duration::from_secs(10), "the load did not start")
        .await;
    for n in 0..cluster.nodes.len() {
        let status = cluster.nodes[n].stop().await;
        assert!(status.success(), "node {n} exited with {status} on SIGTERM");
        // The others take the commands meanwhile.
        tally
            .wait_for_more(50, Duration::from_secs(10), "commands with a node stopped")
            .await;
        let http = cluster.http.clone();
        cluster.nodes[n].start_again(&http).await;
        tally
            .wait_for_more(50, Duration::from_secs(10), "commands after a restart")
            .await;
    }
    tally.stop();
    join_loads(loads).await;
    let unavailable = tally.unavailable();
    let truth = cluster.store_events(&store, since).await;
    assert_acked_in_log(&truth, &tally.acked_positions());
    target.send_replace(truth.last().map(|e| e.0));
    let received = collect(clients).await;
    assert_every_client_got_exactly(&truth, &received);
    eprintln!(
        "rolling restart: {} acknowledged, 503s {unavailable:?}, {} unanswered",
        tally.acked(),
        tally.unanswered()
    );
}
