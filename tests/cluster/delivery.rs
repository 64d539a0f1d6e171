//! Every client on every node receives every event of its topic exactly
//! once, in one global order, also across a node killed under load.

use std::time::Duration;

use crate::helpers::Cluster;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_on_every_node_receive_every_event_once_in_one_order() {
    let cluster = Cluster::start(3).await;
    let watched = cluster.watched(2).await;
    // Commands through every node at once, for two seconds.
    let load = cluster.start_load(&watched.items);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let tally = load.stop().await;
    watched.check(&cluster, &[&tally]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_loses_nothing_for_its_clients() {
    let mut cluster = Cluster::start(3).await;
    let watched = cluster.watched(2).await;
    let load = cluster.start_load(&watched.items);
    // Under load: kill the last node once events flow.
    load.tally
        .wait_for_more(100, Duration::from_secs(10), "the load did not start")
        .await;
    let killed = cluster.nodes.len() - 1;
    cluster.nodes[killed].kill();
    // The survivors go on taking commands.
    load.tally
        .wait_for_more(100, Duration::from_secs(10), "the survivors")
        .await;
    let tally = load.stop().await;
    watched.check(&cluster, &[&tally]).await;
}
