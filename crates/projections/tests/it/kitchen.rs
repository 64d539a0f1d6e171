//! The order and kitchen read models: tickets, the board, preparation
//! times and menu availability.

use larder_domain::{
    CancelReason, Course, Covers, Currency, DomainEvent, FiredLine, Ingredient, ItemId, LineId,
    LineQuantity, MenuEvent, MenuItemId, MenuItemName, Modifier, Money, OrderEvent, OrderId,
    PerPortion, RecalledTo, Recipe, Service, StationKey, StoreId, TableLabel,
};
use uuid::Uuid;

use crate::helpers::{Backend, World};

const TENANT: &str = "acme";

fn grill() -> StationKey {
    StationKey::parse("grill").unwrap()
}

fn line(n: u128) -> LineId {
    LineId::new(Uuid::from_u128(n))
}

fn fired_line(n: u128, name: &str, station: StationKey) -> FiredLine {
    FiredLine {
        line_id: line(n),
        menu_item_id: MenuItemId::new(Uuid::from_u128(100 + n)),
        name: MenuItemName::parse(name).unwrap(),
        station,
        course: Course::parse(1).unwrap(),
        quantity: LineQuantity::parse(2).unwrap(),
        modifiers: vec![Modifier::parse("no onions").unwrap()],
        note: Some("well done".to_owned()),
        stock: vec![],
    }
}

struct Orders<'a> {
    world: &'a World,
    store: StoreId,
}

impl Orders<'_> {
    async fn record(&self, order: OrderId, events: Vec<OrderEvent>) {
        self.world
            .record(
                TENANT,
                &format!("order-{}", order.as_uuid()),
                events.into_iter().map(DomainEvent::Order).collect(),
            )
            .await;
    }

    async fn open(&self, table: Option<&str>) -> OrderId {
        let order_id = OrderId::new(Uuid::new_v4());
        let service = match table {
            Some(table) => Service::DineIn {
                table: TableLabel::parse(table).unwrap(),
            },
            None => Service::Takeaway,
        };
        self.record(
            order_id,
            vec![OrderEvent::OrderOpened {
                order_id,
                store_id: self.store,
                service,
                covers: Covers::parse(2).unwrap(),
                currency: Currency::parse("GBP").unwrap(),
                rush: false,
            }],
        )
        .await;
        order_id
    }

    async fn fire(&self, order_id: OrderId, lines: Vec<FiredLine>) {
        self.record(
            order_id,
            vec![OrderEvent::OrderFired {
                order_id,
                store_id: self.store,
                course: None,
                lines,
            }],
        )
        .await;
    }

    async fn line_event(&self, order_id: OrderId, n: u128, ready: bool) {
        let (store_id, line_id, station) = (self.store, line(n), grill());
        let event = if ready {
            OrderEvent::OrderLineReady {
                order_id,
                store_id,
                line_id,
                station,
            }
        } else {
            OrderEvent::OrderLineStarted {
                order_id,
                store_id,
                line_id,
                station,
            }
        };
        self.record(order_id, vec![event]).await;
    }
}

async fn tickets(world: &World, store: StoreId) -> Vec<(String, String, String)> {
    world
        .read()
        .kitchen_tickets(TENANT, &store.to_string(), "grill")
        .await
        .unwrap()
        .value
        .into_iter()
        .map(|t| (t.order_id, t.line_id, t.status))
        .collect()
}

pub async fn kitchen_tickets_follow_fire_start_bump_and_recall(backend: Backend) {
    let world = World::new(backend).await;
    let store = world.create_store(TENANT, "Diner").await;
    let orders = Orders {
        world: &world,
        store,
    };
    let first = orders.open(Some("12")).await;
    let second = orders.open(None).await;
    orders
        .fire(
            first,
            vec![
                fired_line(1, "Burger", grill()),
                fired_line(2, "Salad", StationKey::parse("salad").unwrap()),
                fired_line(3, "Steak", grill()),
            ],
        )
        .await;
    orders
        .fire(second, vec![fired_line(1, "Burger", grill())])
        .await;
    world.settle().await;

    let (a, b) = (first.as_uuid().to_string(), second.as_uuid().to_string());
    let l = |n: u128| line(n).as_uuid().to_string();
    let fired = |o: &str, n| (o.to_owned(), l(n), "fired".to_owned());
    assert_eq!(
        tickets(&world, store).await,
        vec![fired(&a, 1), fired(&a, 3), fired(&b, 1)],
        "fire order, only the grill's lines"
    );
    let ticket = &world
        .read()
        .kitchen_tickets(TENANT, &store.to_string(), "grill")
        .await
        .unwrap()
        .value[0];
    assert_eq!(ticket.table.as_deref(), Some("12"));
    assert_eq!(ticket.service, "dine_in");
    assert_eq!(ticket.modifiers, vec!["no onions".to_owned()]);
    assert_eq!(ticket.note.as_deref(), Some("well done"));
    assert_eq!((ticket.quantity, ticket.course, ticket.rush), (2, 1, false));
    assert_eq!(ticket.started_at, None);

    // A rush order goes first; a started line says so; a bumped one leaves.
    orders
        .record(
            second,
            vec![OrderEvent::OrderRushed {
                order_id: second,
                store_id: store,
            }],
        )
        .await;
    orders.line_event(first, 1, false).await;
    orders.line_event(first, 3, true).await;
    world.settle().await;
    assert_eq!(
        tickets(&world, store).await,
        vec![fired(&b, 1), (a.clone(), l(1), "started".to_owned())]
    );

    // A recalled line comes back.
    orders
        .record(
            first,
            vec![OrderEvent::OrderLineRecalled {
                order_id: first,
                store_id: store,
                line_id: line(3),
                station: grill(),
                back_to: RecalledTo::Fired,
            }],
        )
        .await;
    world.settle().await;
    assert_eq!(
        tickets(&world, store).await,
        vec![
            fired(&b, 1),
            (a.clone(), l(1), "started".to_owned()),
            fired(&a, 3)
        ]
    );
    // Another tenant sees nothing.
    let other = world
        .read()
        .kitchen_tickets("other", &store.to_string(), "grill")
        .await
        .unwrap();
    assert!(other.value.is_empty());
}

pub async fn the_order_board_and_preparation_times_follow_the_kitchen(backend: Backend) {
    let world = World::new(backend).await;
    let store = world.create_store(TENANT, "Diner").await;
    let orders = Orders {
        world: &world,
        store,
    };
    let served = orders.open(Some("4")).await;
    let cancelled = orders.open(None).await;
    let open = orders.open(Some("5")).await;
    orders
        .fire(served, vec![fired_line(1, "Burger", grill())])
        .await;
    orders
        .fire(cancelled, vec![fired_line(1, "Burger", grill())])
        .await;
    orders.line_event(served, 1, true).await;
    orders
        .record(
            served,
            vec![OrderEvent::OrderReady {
                order_id: served,
                store_id: store,
            }],
        )
        .await;
    world.settle().await;
    let board = |world: &World| {
        let store = store.to_string();
        let read = world.read();
        async move {
            read.order_board(TENANT, &store)
                .await
                .unwrap()
                .value
                .into_iter()
                .map(|o| (o.order_id, o.status, o.lines_fired, o.lines_ready))
                .collect::<Vec<_>>()
        }
    };
    let id = |o: OrderId| o.as_uuid().to_string();
    assert_eq!(
        board(&world).await,
        vec![
            (id(served), "ready".to_owned(), 1, 1),
            (id(cancelled), "fired".to_owned(), 1, 0),
            (id(open), "open".to_owned(), 0, 0),
        ]
    );
    orders
        .record(
            served,
            vec![OrderEvent::OrderServed {
                order_id: served,
                store_id: store,
            }],
        )
        .await;
    orders
        .record(
            cancelled,
            vec![OrderEvent::OrderCancelled {
                order_id: cancelled,
                store_id: store,
                reason: CancelReason::parse("guest left").unwrap(),
                returned: vec![],
            }],
        )
        .await;
    world.settle().await;
    assert_eq!(
        board(&world).await,
        vec![
            (id(served), "served".to_owned(), 1, 1),
            (id(open), "open".to_owned(), 0, 0),
        ]
    );
    assert!(
        tickets(&world, store).await.is_empty(),
        "cancelled lines leave"
    );

    let times = world
        .read()
        .kitchen_times(TENANT, &store.to_string())
        .await
        .unwrap()
        .value;
    assert_eq!(times.stations.len(), 1);
    assert_eq!(times.stations[0].station, "grill");
    assert_eq!(times.stations[0].lines, 1);
    assert!(times.stations[0].average_secs >= 0.0);
    assert_eq!(times.recent.len(), 1);
    assert_eq!(times.recent[0].order_id, id(served));
    assert!(times.recent[0].ready_at >= times.recent[0].fired_at);
}

fn recipe(ingredients: &[(ItemId, i64)]) -> Recipe {
    Recipe::parse(
        ingredients
            .iter()
            .map(|(item_id, quantity)| Ingredient {
                item_id: *item_id,
                quantity: PerPortion::parse(*quantity).unwrap(),
            })
            .collect(),
    )
    .unwrap()
}

pub async fn menu_availability_follows_stock_and_the_menu(backend: Backend) {
    let world = World::new(backend).await;
    let store = world.create_store(TENANT, "Diner").await;
    let beef = world.add_item(TENANT, store, "BEEF", 3, 0).await;
    let bun = world.add_item(TENANT, store, "BUN", 10, 0).await;
    let burger = MenuItemId::new(Uuid::from_u128(1));
    let menu_stream = format!("menu-{}", store.as_uuid());
    let added = |recipe: Recipe| MenuEvent::MenuItemAdded {
        store_id: store,
        menu_item_id: burger,
        name: MenuItemName::parse("Burger").unwrap(),
        price: Money::parse(950, Currency::parse("GBP").unwrap()).unwrap(),
        station: grill(),
        recipe,
    };
    world
        .record(
            TENANT,
            &menu_stream,
            vec![DomainEvent::Menu(added(recipe(&[(beef, 2), (bun, 1)])))],
        )
        .await;
    world.settle().await;
    let availability = |world: &World| {
        let read = world.read();
        let store = store.to_string();
        async move { read.menu_availability(TENANT, &store).await.unwrap().value }
    };
    let menu = availability(&world).await;
    assert_eq!(menu.len(), 1);
    assert_eq!(menu[0].name, "Burger");
    assert_eq!(
        (menu[0].price_minor, menu[0].currency.as_str()),
        (950, "GBP")
    );
    assert!(menu[0].available && menu[0].active);

    // Stock below one portion: 86'd, with the missing ingredient.
    world.adjust(TENANT, store, beef, -2).await;
    world.settle().await;
    let menu = availability(&world).await;
    assert!(!menu[0].available);
    assert_eq!(menu[0].missing.len(), 1);
    assert_eq!(menu[0].missing[0].item_id, beef.to_string());
    assert_eq!(
        (menu[0].missing[0].per_portion, menu[0].missing[0].on_hand),
        (2, 1)
    );

    // Restocked: back.
    world.adjust(TENANT, store, beef, 5).await;
    world.settle().await;
    assert!(availability(&world).await[0].available);

    // The menu changes: a recipe needing more than there is, then off sale.
    world
        .record(
            TENANT,
            &menu_stream,
            vec![
                DomainEvent::Menu(MenuEvent::MenuItemChanged {
                    store_id: store,
                    menu_item_id: burger,
                    name: MenuItemName::parse("Double burger").unwrap(),
                    price: Money::parse(1250, Currency::parse("GBP").unwrap()).unwrap(),
                    station: grill(),
                    recipe: recipe(&[(beef, 8), (bun, 1)]),
                }),
                DomainEvent::Menu(MenuEvent::MenuItemDeactivated {
                    store_id: store,
                    menu_item_id: burger,
                }),
            ],
        )
        .await;
    world.settle().await;
    let menu = availability(&world).await;
    assert_eq!(menu[0].name, "Double burger");
    assert!(!menu[0].available && !menu[0].active);
    assert_eq!(menu[0].missing[0].on_hand, 6);
}
