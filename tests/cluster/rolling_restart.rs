//! A rolling restart under load: each node in turn stopped with SIGTERM
//! and started again on its port. Its real-time clients are closed and
//! resume on another node; commands go on through the others; nothing is
//! lost or repeated.

use std::time::Duration;

use crate::helpers::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_under_load_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let watched = cluster.watched(2).await;
    let load = cluster.start_load(&watched.items);
    let tally = &load.tally;
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
    let tally = load.stop().await;
    let unavailable = tally.unavailable();
    watched.check(&cluster, &[&tally]).await;
    eprintln!(
        "rolling restart: {} acknowledged, 503s {unavailable:?}, {} unanswered",
        tally.acked(),
        tally.unanswered()
    );
}
