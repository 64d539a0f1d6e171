//! Menu and order events: one of each type, and how they are encoded.

use serde_json::json;

use super::*;
use crate::menu::{MenuItemName, StationKey, StationName, StationTimers, StockUse};
use crate::order::{
    CancelReason, Course, Covers, FiredLine, LineQuantity, Modifier, RecalledTo, ReturnedLine,
    Service, TableLabel,
};
use crate::test_support::{
    dish_name, gbp, item_id_of, line_id, menu_item_id, order_id, pence, q, recipe, station,
    store_id,
};

fn burger_stock(portions: i64) -> Vec<StockUse> {
    vec![
        StockUse {
            item_id: item_id_of(store_id(), "BUN"),
            quantity: q(portions),
        },
        StockUse {
            item_id: item_id_of(store_id(), "BEEF"),
            quantity: q(180 * portions),
        },
    ]
}

/// One menu event and one order event of every type, in catalog order.
pub(super) fn kitchen_events() -> Vec<DomainEvent> {
    let store_id = store_id();
    let order_id = order_id();
    let menu_item_id = menu_item_id(1);
    let name: MenuItemName = dish_name("Burger");
    let grill: StationKey = station("grill");
    let menu = [
        MenuEvent::StationSet {
            store_id,
            station: grill.clone(),
            name: StationName::parse("Grill").unwrap(),
            timers: StationTimers::parse(300, 600).unwrap(),
        },
        MenuEvent::MenuItemAdded {
            store_id,
            menu_item_id,
            name: name.clone(),
            price: pence(1250),
            station: grill.clone(),
            recipe: recipe(&[("BUN", 1), ("BEEF", 180)]),
        },
        MenuEvent::MenuItemChanged {
            store_id,
            menu_item_id,
            name: name.clone(),
            price: pence(1350),
            station: grill.clone(),
            recipe: recipe(&[("BUN", 1), ("BEEF", 200)]),
        },
        MenuEvent::MenuItemActivated {
            store_id,
            menu_item_id,
        },
        MenuEvent::MenuItemDeactivated {
            store_id,
            menu_item_id,
        },
    ];
    let line_id = line_id(1);
    let order = [
        OrderEvent::OrderOpened {
            order_id,
            store_id,
            service: Service::DineIn {
                table: TableLabel::parse("12").unwrap(),
            },
            covers: Covers::parse(2).unwrap(),
            currency: gbp(),
            rush: false,
        },
        OrderEvent::OrderLineAdded {
            order_id,
            store_id,
            line_id,
            menu_item_id,
            name: name.clone(),
            unit_price: pence(1250),
            station: grill.clone(),
            recipe: recipe(&[("BUN", 1), ("BEEF", 180)]),
            quantity: LineQuantity::parse(2).unwrap(),
            modifiers: vec![Modifier::parse("no onions").unwrap()],
            note: Some("allergy: sesame".into()),
            course: Course::FIRST,
        },
        OrderEvent::OrderLineVoided {
            order_id,
            store_id,
            line_id,
            station: grill.clone(),
            returned: burger_stock(2),
        },
        OrderEvent::OrderFired {
            order_id,
            store_id,
            course: None,
            lines: vec![FiredLine {
                line_id,
                menu_item_id,
                name,
                station: grill.clone(),
                course: Course::FIRST,
                quantity: LineQuantity::parse(2).unwrap(),
                modifiers: vec![],
                note: None,
                stock: burger_stock(2),
            }],
        },
        OrderEvent::OrderLineStarted {
            order_id,
            store_id,
            line_id,
            station: grill.clone(),
        },
        OrderEvent::OrderLineReady {
            order_id,
            store_id,
            line_id,
            station: grill.clone(),
        },
        OrderEvent::OrderLineRecalled {
            order_id,
            store_id,
            line_id,
            station: grill.clone(),
            back_to: RecalledTo::Started,
        },
        OrderEvent::OrderReady { order_id, store_id },
        OrderEvent::OrderServed { order_id, store_id },
        OrderEvent::OrderCompleted {
            order_id,
            store_id,
            total: pence(2500),
        },
        OrderEvent::OrderCancelled {
            order_id,
            store_id,
            reason: CancelReason::parse("guest left").unwrap(),
            returned: vec![ReturnedLine {
                line_id,
                station: grill,
                stock: burger_stock(1),
            }],
        },
        OrderEvent::OrderRushed { order_id, store_id },
        OrderEvent::OrderRushCleared { order_id, store_id },
    ];
    menu.into_iter()
        .map(DomainEvent::from)
        .chain(order.into_iter().map(DomainEvent::from))
        .collect()
}

#[test]
fn menu_events_are_scoped_to_their_store_and_menu() {
    for event in kitchen_events().iter().take(5) {
        assert!(
            matches!(event, DomainEvent::Menu(_)),
            "{}",
            event.event_type()
        );
        assert_eq!(event.store_id(), Some(store_id()));
        assert_eq!(event.entity(), ("menu", store_id().to_string()));
        assert_eq!(event.causation_id(), None);
    }
}

#[test]
fn order_events_are_scoped_to_their_store_and_order() {
    for event in kitchen_events().iter().skip(5) {
        assert!(
            matches!(event, DomainEvent::Order(_)),
            "{}",
            event.event_type()
        );
        assert_eq!(event.store_id(), Some(store_id()));
        assert_eq!(event.entity(), ("order", order_id().to_string()));
        assert_eq!(event.causation_id(), None);
    }
}

#[test]
fn order_fired_is_encoded_with_plain_values() {
    let fired = kitchen_events()
        .into_iter()
        .find(|e| e.event_type() == "OrderFired")
        .unwrap();
    let bun = item_id_of(store_id(), "BUN").to_string();
    let beef = item_id_of(store_id(), "BEEF").to_string();
    assert_eq!(
        fired.to_data(),
        json!({
            "order_id": order_id().to_string(),
            "store_id": store_id().to_string(),
            "course": null,
            "lines": [{
                "line_id": line_id(1).to_string(),
                "menu_item_id": menu_item_id(1).to_string(),
                "name": "Burger",
                "station": "grill",
                "course": 1,
                "quantity": 2,
                "modifiers": [],
                "note": null,
                "stock": [
                    { "item_id": bun, "quantity": 2 },
                    { "item_id": beef, "quantity": 360 },
                ],
            }],
        })
    );
}

#[test]
fn decoding_an_order_payload_that_breaks_a_rule_fails() {
    let opened = &kitchen_events()[5];
    let mut data = opened.to_data();
    data["currency"] = json!("POUNDS");
    let err = DomainEvent::decode("OrderOpened", 1, &data).unwrap_err();
    assert!(matches!(err, DecodeError::InvalidData { .. }), "{err:?}");

    let added = &kitchen_events()[6];
    let mut data = added.to_data();
    data["recipe"] = json!([]);
    assert!(DomainEvent::decode("OrderLineAdded", 1, &data).is_err());
    let mut data = added.to_data();
    data["quantity"] = json!(0);
    assert!(DomainEvent::decode("OrderLineAdded", 1, &data).is_err());
}
