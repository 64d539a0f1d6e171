//! The dashboard read model: today's figures of a store and of its tenant.

use chrono::Utc;
use larder_domain::{
    CancelReason, Course, Covers, Currency, DomainEvent, FiredLine, LineId, LineQuantity,
    MenuItemId, MenuItemName, Money, OrderEvent, OrderId, Service, StationKey, StoreId,
};
use larder_projections::{BusinessDay, Revenue};
use uuid::Uuid;

use crate::helpers::{Backend, World};

const TENANT: &str = "acme";

fn fired(n: u128, item: u128, name: &str, station: &str, quantity: i64) -> FiredLine {
    FiredLine {
        line_id: LineId::new(Uuid::from_u128(n)),
        menu_item_id: MenuItemId::new(Uuid::from_u128(item)),
        name: MenuItemName::parse(name).unwrap(),
        station: StationKey::parse(station).unwrap(),
        course: Course::parse(1).unwrap(),
        quantity: LineQuantity::parse(quantity).unwrap(),
        modifiers: vec![],
        note: None,
        stock: vec![],
    }
}

async fn record(world: &World, order: OrderId, events: Vec<OrderEvent>) {
    record_in(world, TENANT, order, events).await;
}

async fn record_in(world: &World, tenant: &str, order: OrderId, events: Vec<OrderEvent>) {
    world
        .record(
            tenant,
            &format!("order-{}", order.as_uuid()),
            events.into_iter().map(DomainEvent::Order).collect(),
        )
        .await;
}

async fn open(world: &World, store: StoreId) -> OrderId {
    open_in(world, TENANT, store).await
}

async fn open_in(world: &World, tenant: &str, store: StoreId) -> OrderId {
    let order_id = OrderId::new(Uuid::new_v4());
    record_in(
        world,
        tenant,
        order_id,
        vec![OrderEvent::OrderOpened {
            order_id,
            store_id: store,
            service: Service::Takeaway,
            covers: Covers::parse(1).unwrap(),
            currency: Currency::parse("GBP").unwrap(),
            rush: false,
        }],
    )
    .await;
    order_id
}

fn gbp(minor: i64) -> Money {
    Money::parse(minor, Currency::parse("GBP").unwrap()).unwrap()
}

pub async fn the_dashboard_counts_today_per_store_and_per_tenant(backend: Backend) {
    let world = World::new(backend).await;
    // Given two stores: orders completed, cancelled and open, lines made
    // ready at two stations, an item low and one out.
    let diner = world.create_store(TENANT, "Diner").await;
    let cafe = world.create_store(TENANT, "Cafe").await;
    let other = world.create_store("globex", "Elsewhere").await;
    let paid = open(&world, diner).await;
    let paid_too = open(&world, diner).await;
    let cancelled = open(&world, diner).await;
    let _waiting = open(&world, diner).await;
    let cafe_order = open(&world, cafe).await;
    record(
        &world,
        paid,
        vec![OrderEvent::OrderFired {
            order_id: paid,
            store_id: diner,
            course: None,
            lines: vec![
                fired(1, 101, "Burger", "grill", 2),
                fired(2, 102, "Beer", "bar", 1),
            ],
        }],
    )
    .await;
    for (line, station) in [(1, "grill"), (2, "bar")] {
        record(
            &world,
            paid,
            vec![OrderEvent::OrderLineReady {
                order_id: paid,
                store_id: diner,
                line_id: LineId::new(Uuid::from_u128(line)),
                station: StationKey::parse(station).unwrap(),
            }],
        )
        .await;
    }
    record(
        &world,
        paid,
        vec![OrderEvent::OrderCompleted {
            order_id: paid,
            store_id: diner,
            total: gbp(1000),
        }],
    )
    .await;
    record(
        &world,
        paid_too,
        vec![
            OrderEvent::OrderFired {
                order_id: paid_too,
                store_id: diner,
                course: None,
                lines: vec![fired(3, 101, "Burger", "grill", 1)],
            },
            OrderEvent::OrderCompleted {
                order_id: paid_too,
                store_id: diner,
                total: gbp(501),
            },
        ],
    )
    .await;
    record(
        &world,
        cancelled,
        vec![
            OrderEvent::OrderFired {
                order_id: cancelled,
                store_id: diner,
                course: None,
                lines: vec![fired(4, 103, "Salad", "cold", 5)],
            },
            OrderEvent::OrderCancelled {
                order_id: cancelled,
                store_id: diner,
                reason: CancelReason::parse("guest left").unwrap(),
                returned: vec![],
            },
        ],
    )
    .await;
    record(
        &world,
        cafe_order,
        vec![OrderEvent::OrderCompleted {
            order_id: cafe_order,
            store_id: cafe,
            total: gbp(300),
        }],
    )
    .await;
    let flour = world.add_item(TENANT, diner, "FLOUR", 10, 5).await;
    world.adjust(TENANT, diner, flour, -7).await; // low
    let milk = world.add_item(TENANT, cafe, "MILK", 2, 1).await;
    world.adjust(TENANT, cafe, milk, -2).await; // out
    let _ = open_in(&world, "globex", other).await;
    world.settle().await;

    // When the dashboards are read for today.
    let day = BusinessDay::containing(Utc::now(), 0);
    let read = world.read();
    let store = read
        .dashboard(TENANT, Some(&diner.to_string()), day)
        .await
        .unwrap();

    // Then the store's figures count its own events of today.
    assert_eq!(store.orders_opened, 4);
    assert_eq!(store.orders_completed, 2);
    assert_eq!(store.orders_cancelled, 1);
    assert_eq!(
        store.revenue,
        vec![Revenue {
            currency: "GBP".into(),
            orders: 2,
            total_minor: 1501,
            average_ticket_minor: 751,
        }]
    );
    // The waiting order is open; completed and cancelled ones are not.
    assert_eq!(store.open_orders, 1);
    let stations: Vec<_> = store
        .stations
        .iter()
        .map(|s| (s.station.as_str(), s.lines))
        .collect();
    assert_eq!(stations, vec![("bar", 1), ("grill", 1)]);
    assert!(store.stations.iter().all(|s| s.average_secs >= 0.0));
    // Burger 2 + 1; the cancelled salad (not ready) does not count.
    let top: Vec<_> = store
        .top_items
        .iter()
        .map(|t| (t.name.as_str(), t.quantity))
        .collect();
    assert_eq!(top, vec![("Burger", 3), ("Beer", 1)]);
    assert_eq!((store.low_stock, store.out_of_stock), (1, 0));
    assert_eq!(
        store
            .orders_per_5_minutes
            .iter()
            .map(|b| b.orders)
            .sum::<i64>(),
        4
    );
    assert!(
        store
            .orders_per_5_minutes
            .iter()
            .all(|b| b.start >= day.start && b.start < day.end)
    );
    let alerts = store.stock_alerts.iter().map(|b| b.low).sum::<i64>();
    assert_eq!(alerts, 1, "one LowStock alert");

    // And the tenant's adds up its stores, never another tenant's.
    let tenant = read.dashboard(TENANT, None, day).await.unwrap();
    assert_eq!(tenant.orders_opened, 5);
    assert_eq!(tenant.orders_completed, 3);
    assert_eq!(tenant.revenue[0].total_minor, 1801);
    assert_eq!(tenant.revenue[0].average_ticket_minor, 600);
    assert_eq!((tenant.low_stock, tenant.out_of_stock), (1, 1));
    assert_eq!(
        tenant.stock_alerts.iter().map(|b| b.out).sum::<i64>(),
        1,
        "one OutOfStock alert"
    );
    assert!(tenant.position > 0);

    // Yesterday has nothing.
    let yesterday = BusinessDay::containing(day.start - chrono::Duration::hours(1), 0);
    let before = read
        .dashboard(TENANT, Some(&diner.to_string()), yesterday)
        .await
        .unwrap();
    assert_eq!(
        (
            before.orders_opened,
            before.revenue.len(),
            before.top_items.len()
        ),
        (0, 0, 0)
    );
    assert_eq!(before.open_orders, 1, "open orders are current, not daily");
}
