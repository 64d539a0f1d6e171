use std::time::Duration;

use larder_domain::{ItemCommand, ItemName, StoreCommand, StoreName};
use larder_projections::{InventoryQuery, Projections, StatusFilter};
use larder_store::{Database, EventFilter, EventStore};

use crate::helpers::{Backend, World};

pub async fn stores_inventory_and_activity_follow_the_log(backend: Backend) {
    let world = World::new(backend).await;
    let shop = world.create_store("acme", "Main Street").await;
    let flour = world.add_item("acme", shop, "FLOUR-1", 20, 5).await;
    let eggs = world.add_item("acme", shop, "EGGS-12", 3, 5).await;
    let salt = world.add_item("acme", shop, "SALT", 10, 2).await;
    world.adjust("acme", shop, flour, -16).await; // 4 <= 5: low stock alert
    world.adjust("acme", shop, eggs, -3).await; // 0: out of stock alert
    world
        .item_command("acme", shop, salt, ItemCommand::RemoveItem)
        .await;
    world
        .store_command(
            "acme",
            shop,
            StoreCommand::RenameStore {
                name: StoreName::parse("High Street").unwrap(),
            },
        )
        .await;
    let head = world.settle().await;

    let stores = world.read().stores("acme").await.unwrap();
    assert_eq!(stores.position, head);
    let summary = &stores.value[0];
    assert_eq!(summary.name, "High Street");
    assert_eq!(summary.status, "open");
    assert_eq!(summary.version, 2);
    assert_eq!(
        (
            summary.item_count,
            summary.low_stock_count,
            summary.out_of_stock_count
        ),
        (2, 1, 1)
    );

    let flour_row = world
        .read()
        .item("acme", &flour.to_string())
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(flour_row.quantity, 4);
    assert_eq!(flour_row.status, "low");
    let (_, flour_version) = world.item_state(flour).await;
    assert_eq!(
        flour_row.version, flour_version,
        "read model version follows the stream, alerts included"
    );
    assert_eq!(flour_version, 3);
    let eggs_row = world
        .read()
        .item("acme", &eggs.to_string())
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!((eggs_row.quantity, eggs_row.status.as_str()), (0, "out"));
    let salt_row = world
        .read()
        .item("acme", &salt.to_string())
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(salt_row.status, "removed");

    let activity = world
        .read()
        .activity("acme", &shop.to_string(), None, 100)
        .await
        .unwrap();
    let all_store_events = world
        .store
        .read_all(
            0,
            1000,
            &EventFilter::tenant("acme").store(shop.to_string()),
        )
        .await
        .unwrap();
    assert_eq!(activity.value.len(), all_store_events.events.len());
    assert_eq!(activity.value[0].event_type, "StoreRenamed", "newest first");
    assert!(activity.value.iter().any(|a| a.event_type == "LowStock"));
    assert!(activity.value.iter().any(|a| a.event_type == "OutOfStock"));
    let older = world
        .read()
        .activity(
            "acme",
            &shop.to_string(),
            Some(activity.value[1].position),
            2,
        )
        .await
        .unwrap();
    assert_eq!(older.value.len(), 2);
    assert!(older.value[0].position < activity.value[1].position);
}

pub async fn inventory_pages_filters_and_hides_other_tenants(backend: Backend) {
    let world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    for (i, sku) in ["A1", "B2", "C3", "D4", "E5"].iter().enumerate() {
        world.add_item("acme", shop, sku, i as i64, 1).await;
    }
    let other = world.create_store("globex", "Theirs").await;
    world.add_item("globex", other, "Z9", 1, 1).await;
    world.settle().await;
    let read = world.read();

    let page = |status, after: Option<&str>, limit| InventoryQuery {
        status,
        after_sku: after.map(str::to_owned),
        limit,
    };
    let first = read
        .inventory(
            "acme",
            &shop.to_string(),
            &page(StatusFilter::Active, None, 2),
        )
        .await
        .unwrap();
    assert_eq!(
        first
            .value
            .iter()
            .map(|i| i.sku.as_str())
            .collect::<Vec<_>>(),
        vec!["A1", "B2"]
    );
    let next = read
        .inventory(
            "acme",
            &shop.to_string(),
            &page(StatusFilter::Active, Some("B2"), 10),
        )
        .await
        .unwrap();
    assert_eq!(
        next.value
            .iter()
            .map(|i| i.sku.as_str())
            .collect::<Vec<_>>(),
        vec!["C3", "D4", "E5"]
    );
    let out = read
        .inventory(
            "acme",
            &shop.to_string(),
            &page(StatusFilter::Out, None, 10),
        )
        .await
        .unwrap();
    assert_eq!(
        out.value.iter().map(|i| i.sku.as_str()).collect::<Vec<_>>(),
        vec!["A1"]
    );
    let low = read
        .inventory(
            "acme",
            &shop.to_string(),
            &page(StatusFilter::Low, None, 10),
        )
        .await
        .unwrap();
    assert_eq!(
        low.value.iter().map(|i| i.sku.as_str()).collect::<Vec<_>>(),
        vec!["B2"]
    );
    let huge = read
        .inventory(
            "acme",
            &shop.to_string(),
            &page(StatusFilter::All, None, 1_000_000),
        )
        .await
        .unwrap();
    assert_eq!(huge.value.len(), 5);

    // Another tenant's store and items are invisible, even by id.
    assert!(
        read.inventory(
            "acme",
            &other.to_string(),
            &page(StatusFilter::All, None, 10)
        )
        .await
        .unwrap()
        .value
        .is_empty()
    );
    assert!(
        read.store("acme", &other.to_string())
            .await
            .unwrap()
            .value
            .is_none()
    );
    assert_eq!(read.stores("acme").await.unwrap().value.len(), 1);
    assert_eq!(read.stores("globex").await.unwrap().value.len(), 1);
}

pub async fn a_transfer_updates_both_items(backend: Backend) {
    let world = World::new(backend).await;
    let north = world.create_store("acme", "North").await;
    let south = world.create_store("acme", "South").await;
    let from = world.add_item("acme", north, "OIL", 10, 2).await;
    let to = world.add_item("acme", south, "OIL", 0, 2).await;
    world.transfer("acme", (north, from), (south, to), 9).await;
    world.settle().await;

    let read = world.read();
    let from_row = read
        .item("acme", &from.to_string())
        .await
        .unwrap()
        .value
        .unwrap();
    let to_row = read
        .item("acme", &to.to_string())
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!((from_row.quantity, from_row.status.as_str()), (1, "low"));
    assert_eq!((to_row.quantity, to_row.status.as_str()), (9, "in_stock"));
    assert_eq!(from_row.version, world.item_state(from).await.1);
    assert_eq!(to_row.version, world.item_state(to).await.1);
    for shop in [north, south] {
        let feed = read
            .activity("acme", &shop.to_string(), None, 50)
            .await
            .unwrap();
        assert_eq!(
            feed.value[0].event_type, "TransferCompleted",
            "both stores see the transfer"
        );
    }
    let south_summary = read
        .store("acme", &south.to_string())
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(south_summary.out_of_stock_count, 0);
}

pub async fn a_restarted_projection_resumes_from_its_checkpoint(backend: Backend) {
    let mut world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    let item = world.add_item("acme", shop, "TEA", 100, 1).await;
    world.settle().await;

    world.stop().await;
    for _ in 0..5 {
        world.adjust("acme", shop, item, -1).await;
    }
    world.start().await;
    let head = world.settle().await;

    let row = world.read().item("acme", &item.to_string()).await.unwrap();
    assert_eq!(row.value.unwrap().quantity, 95);
    assert_eq!(row.position, head);
    let feed = world
        .read()
        .activity("acme", &shop.to_string(), None, 100)
        .await
        .unwrap();
    assert_eq!(
        feed.value.len() as u64,
        head,
        "every event applied exactly once"
    );
}

pub async fn a_rebuild_from_position_zero_gives_the_same_read_models(backend: Backend) {
    let mut world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    let a = world.add_item("acme", shop, "A", 10, 3).await;
    let b = world.add_item("acme", shop, "B", 1, 3).await;
    world.adjust("acme", shop, a, -8).await;
    world.adjust("acme", shop, b, 5).await;
    world
        .item_command(
            "acme",
            shop,
            a,
            ItemCommand::RenameItem {
                name: ItemName::parse("Apples").unwrap(),
            },
        )
        .await;
    world.settle().await;
    let snapshot = |world: &World| {
        let read = world.read();
        let shop = shop.to_string();
        async move {
            (
                read.stores("acme").await.unwrap().value,
                read.inventory(
                    "acme",
                    &shop,
                    &InventoryQuery {
                        status: StatusFilter::All,
                        after_sku: None,
                        limit: 100,
                    },
                )
                .await
                .unwrap()
                .value,
                read.activity("acme", &shop, None, 100).await.unwrap().value,
            )
        }
    };
    let before = snapshot(&world).await;

    world.stop().await;
    Projections::reset_all(&world.db).await.unwrap();
    assert!(world.read_is_empty().await);
    world.start().await;
    world.settle().await;

    assert_eq!(snapshot(&world).await, before);
}

pub async fn a_hot_item_applied_in_one_batch_ends_as_applied_event_by_event(backend: Backend) {
    // Given read models that apply each command's events as they come
    let mut world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    let hot = world.add_item("acme", shop, "HOT", 10, 3).await;
    let cold = world.add_item("acme", shop, "COLD", 5, 2).await;
    // When a hot item changes many times in a row, crossing its threshold
    // both ways (alerts in the same stream), with a threshold change, a
    // rename and another item's changes in between
    let deltas = [-1, -1, -1, -1, -4, 1, -3, 10, -2, -2, -2, -2, -2, 7, -1];
    for (n, delta) in deltas.into_iter().enumerate() {
        world.adjust("acme", shop, hot, delta).await;
        match n {
            5 => {
                world
                    .item_command(
                        "acme",
                        shop,
                        hot,
                        ItemCommand::SetThreshold {
                            threshold: larder_domain::Threshold::parse(4).unwrap(),
                        },
                    )
                    .await;
            }
            9 => world.adjust("acme", shop, cold, -5).await,
            11 => {
                world
                    .item_command(
                        "acme",
                        shop,
                        hot,
                        ItemCommand::RenameItem {
                            name: ItemName::parse("Hot sauce").unwrap(),
                        },
                    )
                    .await;
            }
            _ => {}
        }
        world.settle().await;
    }
    let read = |world: &World| {
        let read = world.read();
        let shop = shop.to_string();
        async move {
            (
                read.stores("acme").await.unwrap().value,
                read.inventory(
                    "acme",
                    &shop,
                    &InventoryQuery {
                        status: StatusFilter::All,
                        after_sku: None,
                        limit: 100,
                    },
                )
                .await
                .unwrap()
                .value,
                read.activity("acme", &shop, None, 1000)
                    .await
                    .unwrap()
                    .value,
            )
        }
    };
    let event_by_event = read(&world).await;
    // Then the hot row is the stream's last state
    let (state, version) = world.item_state(hot).await;
    let row = event_by_event
        .1
        .iter()
        .find(|item| item.item_id == hot.to_string())
        .expect("the hot item's row");
    assert_eq!(row.version, version);
    assert!(matches!(
        state,
        larder_domain::ItemState::Active { quantity, .. } if quantity.get() == row.quantity
    ));
    // And rebuilt from the log in one batch, every read model ends the same
    world.stop().await;
    Projections::reset_all(&world.db).await.unwrap();
    world.start().await;
    world.settle().await;
    assert_eq!(read(&world).await, event_by_event);
}

pub async fn a_failing_projection_lags_and_recovers_without_failing_commands(backend: Backend) {
    let world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    world.settle().await;

    // Break the activity read model: its projection fails from now on.
    exec(
        &world.db,
        "ALTER TABLE rm_activity RENAME TO rm_activity_away",
    )
    .await;
    let item = world.add_item("acme", shop, "JAM", 5, 1).await; // the command still succeeds
    let head = world.store.head().await.unwrap();
    let read = world.read();
    assert!(
        !read.wait_for(head, Duration::from_millis(300)).await,
        "activity cannot have caught up"
    );
    assert!(
        read.item("acme", &item.to_string())
            .await
            .unwrap()
            .value
            .is_some(),
        "other read models go on"
    );

    // Repair it: the projection retries and catches up by itself.
    exec(
        &world.db,
        "ALTER TABLE rm_activity_away RENAME TO rm_activity",
    )
    .await;
    assert!(
        read.wait_for(head, Duration::from_secs(15)).await,
        "activity caught up after repair"
    );
    let feed = read
        .activity("acme", &shop.to_string(), None, 10)
        .await
        .unwrap();
    assert_eq!(feed.value[0].event_type, "ItemAdded");
}

async fn exec(db: &Database, sql: &str) {
    match db {
        Database::Sqlite(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
        Database::Postgres(pool) => {
            sqlx::query(sql).execute(pool).await.unwrap();
        }
    }
}

impl World {
    async fn read_is_empty(&self) -> bool {
        let count = |table: &'static str| {
            let db = self.db.clone();
            async move {
                let sql = format!("SELECT COUNT(*) FROM {table}");
                match &db {
                    Database::Sqlite(pool) => sqlx::query_scalar::<_, i64>(&sql)
                        .fetch_one(pool)
                        .await
                        .unwrap(),
                    Database::Postgres(pool) => sqlx::query_scalar::<_, i64>(&sql)
                        .fetch_one(pool)
                        .await
                        .unwrap(),
                }
            }
        };
        count("rm_stores").await + count("rm_inventory").await + count("rm_activity").await == 0
    }
}

pub async fn a_store_snapshot_is_exactly_the_state_at_its_position(backend: Backend) {
    let world = World::new(backend).await;
    let shop = world.create_store("acme", "Main").await;
    let items = [
        world.add_item("acme", shop, "A", 0, 2).await,
        world.add_item("acme", shop, "B", 0, 2).await,
    ];
    let read = world.read();
    let shop_id = shop.to_string();
    // Snapshots are read while the projections apply the writes, until one
    // shows the last write: the first comes before most writes committed,
    // the last after all of them, whatever the machine's speed.
    let last = std::cell::Cell::new(u64::MAX);
    let writes = async {
        for n in 0..120 {
            world.adjust("acme", shop, items[n % 2], 1).await;
        }
        last.set(world.store.head().await.unwrap());
    };
    let snapshots = async {
        let mut taken = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let snapshot = read.store_snapshot("acme", &shop_id).await.unwrap();
            let at = snapshot.position;
            taken.push(snapshot);
            if at >= last.get() {
                break taken;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the read models never reached the last write"
            );
            tokio::task::yield_now().await;
        }
    };
    let ((), taken) = tokio::join!(writes, snapshots);
    world.settle().await;

    let log = world
        .store
        .read_all(0, 1000, &EventFilter::tenant("acme"))
        .await
        .unwrap()
        .events;
    let mut positions = Vec::new();
    for snapshot in &taken {
        let at = snapshot.position;
        positions.push(at);
        let upto: Vec<_> = log.iter().filter(|e| e.position <= at).collect();
        for item in &snapshot.value.items {
            let stream: Vec<_> = upto
                .iter()
                .filter(|e| e.metadata.entity_id == item.item_id)
                .collect();
            let adjusted = stream
                .iter()
                .filter(|e| e.event_type == "StockAdjusted")
                .count() as i64;
            assert_eq!(
                (item.quantity, item.version),
                (adjusted, stream.len() as u64),
                "{} in the snapshot at {at}",
                item.sku
            );
            assert!(item.position <= at, "{item:?} is newer than {at}");
        }
        let added = upto.iter().filter(|e| e.event_type == "ItemAdded").count();
        assert_eq!(snapshot.value.items.len(), added, "at {at}");
        if let Some(store) = &snapshot.value.store {
            assert!(store.position <= at, "{store:?} is newer than {at}");
            assert_eq!(store.item_count, added as i64, "at {at}");
        }
    }
    positions.dedup();
    assert!(
        positions.len() > 1,
        "snapshots were read while the writes went on: {positions:?}"
    );
}
