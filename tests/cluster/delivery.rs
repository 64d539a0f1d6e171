//! Every client on every node receives every event of its topic exactly
//! once, in one global order, also across a node killed under load.

use std::time::Duration;

use tokio::sync::watch;

use crate::helpers::{
    Cluster, Tally, assert_acked_in_log, assert_every_client_got_exactly, collect, join_loads,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clients_on_every_node_receive_every_event_once_in_one_order() {
    let cluster = Cluster::start(3).await;
    let (store, _) = cluster.store_with_item().await;
    // One item per node: the loads do not race for one stream (three nodes
    // adjusting one item as fast as they can make a command lose all its
    // retries now and then, and be answered 409).
    let items = cluster.items(&store, cluster.nodes.len()).await;
    let since = cluster.store_head(&store).await;
    let (target, until) = watch::channel(None);
    let clients = cluster.clients(&store, since, 2, &until);
    // Commands through every node at once, bounded in count.
    let tally = Tally::new();
    let loads = cluster.loads(&items, &tally);
    tokio::time::sleep(Duration::from_secs(2)).await;
    tally.stop();
    join_loads(loads).await;
    let truth = cluster.store_events(&store, since).await;
    assert_acked_in_log(&truth, &tally.acked_positions());
    target.send_replace(truth.last().map(|e| e.0));
    let received = collect(clients).await;
    assert_every_client_got_exactly(&truth, &received);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_killed_under_load_loses_nothing_for_its_clients() {
    let mut cluster = Cluster::start(3).await;
    let (store, _) = cluster.store_with_item().await;
    let items = cluster.items(&store, cluster.nodes.len()).await;
    let since = cluster.store_head(&store).await;
    let (target, until) = watch::channel(None);
    let clients = cluster.clients(&store, since, 2, &until);
    let tally = Tally::new();
    let loads = cluster.loads(&items, &tally);
    // Under load: kill the last node once events flow.
    tally
        .wait_for_more(100, Duration::from_secs(10), "the load did not start")
        .await;
    let killed = cluster.nodes.len() - 1;
    cluster.nodes[killed].kill();
    // The survivors go on taking commands.
    tally
        .wait_for_more(100, Duration::from_secs(10), "the survivors")
        .await;
    tally.stop();
    join_loads(loads).await;
    let truth = cluster.store_events(&store, since).await;
    assert_acked_in_log(&truth, &tally.acked_positions());
    target.send_replace(truth.last().map(|e| e.0));
    let received = collect(clients).await;
    assert_every_client_got_exactly(&truth, &received);
}
