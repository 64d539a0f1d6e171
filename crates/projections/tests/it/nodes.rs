//! Several nodes running the same projections on one database: each event
//! takes effect once, and a node that lags never moves a read model back.

use std::sync::Arc;
use std::time::Duration;

use larder_domain::StoreId;
use larder_projections::{LEASE_INTERVAL, Projections, checkpoint, session_name};
use larder_store::{Database, EventStore};

use crate::helpers::{Backend, World};

pub async fn a_lagging_second_node_neither_repeats_nor_undoes_what_the_first_applied(
    backend: Backend,
) {
    let world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    let item = world.add_item("acme", shop, "TEA", 100, 1).await;
    let start = world.settle().await;

    // A second node that hears no bus: it started before the events below
    // and reads them from the store only when its poll fires, long after
    // the first node applied them.
    let store: Arc<dyn EventStore> = world.store.clone();
    let lagging =
        Projections::start_polling(world.db.clone(), store, None, Duration::from_millis(500))
            .await
            .unwrap();
    for _ in 0..20 {
        world.adjust("acme", shop, item, -1).await;
    }
    let head = world.settle().await;
    assert!(head > start);
    let before = world.read().item("acme", &item.to_string()).await.unwrap();
    assert_eq!(before.value.as_ref().unwrap().quantity, 80);

    // The lagging node catches up over events already applied.
    assert!(
        lagging
            .read_models()
            .wait_for(head, Duration::from_secs(10))
            .await,
        "the lagging node reached the head"
    );
    let after = world.read().item("acme", &item.to_string()).await.unwrap();
    assert_eq!(after.value, before.value, "the read model did not go back");
    applied_once_up_to(&world, &lagging, shop, head).await;
    lagging.stop().await;
}

pub async fn two_nodes_following_one_log_apply_every_event_once(backend: Backend) {
    let world = World::new(backend).await;
    let second = second_node(&world).await;
    let shop = world.create_store("acme", "Main").await;
    let item = world.add_item("acme", shop, "TEA", 1000, 1).await;
    for _ in 0..50 {
        world.adjust("acme", shop, item, -1).await;
    }
    let head = world.settle().await;
    assert!(
        second
            .read_models()
            .wait_for(head, Duration::from_secs(10))
            .await
    );
    let row = world.read().item("acme", &item.to_string()).await.unwrap();
    assert_eq!(row.value.unwrap().quantity, 950);
    applied_once_up_to(&world, &second, shop, head).await;
    second.stop().await;
}

pub async fn when_the_node_that_applies_stops_another_takes_over(backend: Backend) {
    let mut world = World::new(backend).await;
    let second = second_node(&world).await;
    let shop = world.create_store("acme", "Main").await;
    let item = world.add_item("acme", shop, "TEA", 100, 1).await;
    let head = world.settle().await;
    assert!(
        second
            .read_models()
            .wait_for(head, Duration::from_secs(10))
            .await,
        "the second node reports what the first applied"
    );
    leases_held_once(&world.db).await;

    // The first node goes: its leases go with it (on SQLite each node
    // applies anyway), and the second node applies what comes next.
    world.stop().await;
    for _ in 0..5 {
        world.adjust("acme", shop, item, -1).await;
    }
    let head = world.store.head().await.unwrap();
    let read = second.read_models();
    assert!(
        read.wait_for(head, Duration::from_secs(10)).await,
        "the second node took over and reached {head}"
    );
    let row = read.item("acme", &item.to_string()).await.unwrap();
    assert_eq!(row.value.unwrap().quantity, 95);
    applied_once_up_to(&world, &second, shop, head).await;
    leases_held_once(&world.db).await;
    second.stop().await;
}

/// A node that does not apply reads how far the leader has committed as
/// soon as a reader waits for a position (`?min_position`), not at its
/// next try for the lease, one [`LEASE_INTERVAL`] apart.
pub async fn a_reader_on_another_node_hears_of_each_commit_at_once(backend: Backend) {
    let world = World::new(backend).await;
    let second = second_node(&world).await;
    let shop = world.create_store("acme", "Main").await;
    let item = world.add_item("acme", shop, "TEA", 100, 1).await;
    world.settle().await;
    // Whichever node leads a group, the other hears of its commits.
    let nodes = [("first", world.read()), ("second", second.read_models())];
    for round in 1..=8 {
        world.adjust("acme", shop, item, -1).await;
        let head = world.store.head().await.unwrap();
        for (node, read) in &nodes {
            assert!(
                read.wait_for(head, LEASE_INTERVAL / 2).await,
                "round {round}: the {node} node reached position {head} within half a lease interval"
            );
        }
    }
    let read = second.read_models();
    let row = read.item("acme", &item.to_string()).await.unwrap();
    assert_eq!(row.value.unwrap().quantity, 92);
    second.stop().await;
}

/// A second node on the world's database and bus, started after the first.
async fn second_node(world: &World) -> Projections {
    let store: Arc<dyn EventStore> = world.store.clone();
    Projections::start(world.db.clone(), store, Some(world.bus.clone()))
        .await
        .unwrap()
}

/// Every event up to `head` took effect once (the store's activity feed has
/// one entry per event), and every checkpoint `node` runs is at `head`.
async fn applied_once_up_to(world: &World, node: &Projections, shop: StoreId, head: u64) {
    let feed = node
        .read_models()
        .activity("acme", &shop.to_string(), None, 1000)
        .await
        .unwrap();
    assert_eq!(
        feed.value.len() as u64,
        head,
        "every event applied exactly once"
    );
    for (name, _) in node.positions() {
        assert_eq!(checkpoint(&world.db, name).await.unwrap(), head, "{name}");
    }
}

/// On PostgreSQL, each projection group's lease is held by exactly one
/// session, named as docs/operations.md tells operators to look for it
/// (a session given up may linger a moment: waited for, bounded).
async fn leases_held_once(db: &Database) {
    let Database::Postgres(pool) = db else {
        return;
    };
    let prefix = session_name("projections:");
    let groups = Projections::groups().len() as i64;
    let mut held = Vec::new();
    for _ in 0..100 {
        held = sqlx::query_scalar::<_, String>(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) \
             WHERE l.locktype = 'advisory' AND l.granted AND a.application_name LIKE $1 || '%' \
             ORDER BY 1",
        )
        .bind(&prefix)
        .fetch_all(pool)
        .await
        .unwrap();
        if held.len() as i64 == groups {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut distinct = held.clone();
    distinct.dedup();
    assert_eq!(held.len() as i64, groups, "one lease per group: {held:?}");
    assert_eq!(distinct, held, "no group leased twice: {held:?}");
}
