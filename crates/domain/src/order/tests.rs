//! Given / when / then tests of an order's life: from opening at the till,
//! through the kitchen, to served and completed, or cancelled.

use super::*;
use crate::ids::{LineId, OrderId};
use crate::menu::{MenuItemSnapshot, StationKey, StockUse};
use crate::store::{self, StoreEvent, StoreState};
use crate::test_support::{
    Then, burger, fries, gbp, item_id_of, line_id, order_id, pence, q, station, store_created,
    store_id, tenant,
};

pub(super) struct Given {
    pub(super) store: StoreState,
    pub(super) order: OrderState,
    pub(super) order_id: OrderId,
}

/// The order of an open store, after `events`.
pub(super) fn given(events: impl IntoIterator<Item = OrderEvent>) -> Given {
    given_store([store_created(store_id(), tenant())], events)
}

pub(super) fn given_store(
    store_events: impl IntoIterator<Item = StoreEvent>,
    events: impl IntoIterator<Item = OrderEvent>,
) -> Given {
    let store_events: Vec<_> = store_events.into_iter().collect();
    let events: Vec<_> = events.into_iter().collect();
    Given {
        store: store::replay(&store_events),
        order: replay(&events),
        order_id: order_id(),
    }
}

impl Given {
    pub(super) fn when(self, cmd: OrderCommand) -> Then<Vec<OrderEvent>> {
        Then::new(decide(&self.store, &self.order, self.order_id, cmd))
    }
}

pub(super) fn open_cmd() -> OrderCommand {
    OrderCommand::OpenOrder {
        store_id: store_id(),
        service: Service::DineIn {
            table: TableLabel::parse("12").unwrap(),
        },
        covers: Covers::parse(2).unwrap(),
        currency: gbp(),
        rush: false,
    }
}

pub(super) fn opened() -> OrderEvent {
    OrderEvent::OrderOpened {
        order_id: order_id(),
        store_id: store_id(),
        service: Service::DineIn {
            table: TableLabel::parse("12").unwrap(),
        },
        covers: Covers::parse(2).unwrap(),
        currency: gbp(),
        rush: false,
    }
}

pub(super) fn add(n: u128, item: MenuItemSnapshot, quantity: i64) -> OrderCommand {
    OrderCommand::AddLine {
        line_id: line_id(n),
        item,
        quantity: LineQuantity::parse(quantity).unwrap(),
        modifiers: vec![],
        note: None,
        course: Course::FIRST,
    }
}

pub(super) fn added(n: u128, item: MenuItemSnapshot, quantity: i64) -> OrderEvent {
    added_in(n, item, quantity, 1)
}

pub(super) fn added_in(n: u128, item: MenuItemSnapshot, quantity: i64, course: i64) -> OrderEvent {
    OrderEvent::OrderLineAdded {
        order_id: order_id(),
        store_id: store_id(),
        line_id: line_id(n),
        menu_item_id: item.menu_item_id,
        name: item.name,
        unit_price: item.unit_price,
        station: item.station,
        recipe: item.recipe,
        quantity: LineQuantity::parse(quantity).unwrap(),
        modifiers: vec![],
        note: None,
        course: Course::parse(course).unwrap(),
    }
}

/// What `quantity` burgers take from stock.
pub(super) fn burger_stock(quantity: i64) -> Vec<StockUse> {
    vec![
        StockUse {
            item_id: item_id_of(store_id(), "BUN"),
            quantity: q(quantity),
        },
        StockUse {
            item_id: item_id_of(store_id(), "BEEF"),
            quantity: q(180 * quantity),
        },
    ]
}

pub(super) fn fired_line(n: u128, item: MenuItemSnapshot, quantity: i64) -> FiredLine {
    let stock = item.recipe.stock_for(quantity);
    FiredLine {
        line_id: line_id(n),
        menu_item_id: item.menu_item_id,
        name: item.name,
        station: item.station,
        course: Course::FIRST,
        quantity: LineQuantity::parse(quantity).unwrap(),
        modifiers: vec![],
        note: None,
        stock,
    }
}

pub(super) fn fired(lines: Vec<FiredLine>) -> OrderEvent {
    OrderEvent::OrderFired {
        order_id: order_id(),
        store_id: store_id(),
        course: None,
        lines,
    }
}

pub(super) fn started(n: u128, station_key: &str) -> OrderEvent {
    OrderEvent::OrderLineStarted {
        order_id: order_id(),
        store_id: store_id(),
        line_id: line_id(n),
        station: station(station_key),
    }
}

pub(super) fn line_ready(n: u128, station_key: &str) -> OrderEvent {
    OrderEvent::OrderLineReady {
        order_id: order_id(),
        store_id: store_id(),
        line_id: line_id(n),
        station: station(station_key),
    }
}

pub(super) fn order_ready() -> OrderEvent {
    OrderEvent::OrderReady {
        order_id: order_id(),
        store_id: store_id(),
    }
}

pub(super) fn served() -> OrderEvent {
    OrderEvent::OrderServed {
        order_id: order_id(),
        store_id: store_id(),
    }
}

/// Two burgers and one fries, fired.
pub(super) fn burgers_and_fries_fired() -> Vec<OrderEvent> {
    vec![
        opened(),
        added(1, burger(), 2),
        added(2, fries(), 1),
        fired(vec![fired_line(1, burger(), 2), fired_line(2, fries(), 1)]),
    ]
}

/// The same order with both lines ready, and so the order.
pub(super) fn all_ready() -> Vec<OrderEvent> {
    let mut events = burgers_and_fries_fired();
    events.extend([line_ready(1, "grill"), line_ready(2, "fry"), order_ready()]);
    events
}

fn line(id: LineId) -> OrderCommand {
    OrderCommand::MarkLineReady { line_id: id }
}

#[test]
fn opening_an_order_records_it() {
    given([]).when(open_cmd()).then(vec![opened()]);
    let order = replay(&[opened()]);
    assert_eq!(order.status(), Some(OrderStatus::Open));
    assert_eq!(order.store_id(), Some(store_id()));
}

#[test]
fn adding_a_line_copies_the_menu_item_with_its_modifiers_note_and_course() {
    given([opened()])
        .when(OrderCommand::AddLine {
            line_id: line_id(1),
            item: burger(),
            quantity: LineQuantity::parse(2).unwrap(),
            modifiers: vec![Modifier::parse("no onions").unwrap()],
            note: Some("  table by the window ".into()),
            course: Course::parse(2).unwrap(),
        })
        .then(vec![OrderEvent::OrderLineAdded {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(1),
            menu_item_id: burger().menu_item_id,
            name: burger().name,
            unit_price: pence(1250),
            station: station("grill"),
            recipe: burger().recipe,
            quantity: LineQuantity::parse(2).unwrap(),
            modifiers: vec![Modifier::parse("no onions").unwrap()],
            note: Some("table by the window".into()),
            course: Course::parse(2).unwrap(),
        }]);
}

#[test]
fn firing_sends_every_pending_line_with_the_stock_it_takes() {
    given([opened(), added(1, burger(), 2), added(2, fries(), 1)])
        .when(OrderCommand::Fire { course: None })
        .then(vec![fired(vec![
            fired_line(1, burger(), 2),
            fired_line(2, fries(), 1),
        ])]);
    assert_eq!(fired_line(1, burger(), 2).stock, burger_stock(2));
}

#[test]
fn firing_a_course_sends_only_its_lines_and_leaves_the_rest_pending() {
    let events = [
        opened(),
        added_in(1, fries(), 1, 1),
        added_in(2, burger(), 1, 2),
    ];
    let mut second = fired_line(2, burger(), 1);
    second.course = Course::parse(2).unwrap();
    given(events.clone())
        .when(OrderCommand::Fire {
            course: Some(Course::parse(2).unwrap()),
        })
        .then(vec![OrderEvent::OrderFired {
            order_id: order_id(),
            store_id: store_id(),
            course: Some(Course::parse(2).unwrap()),
            lines: vec![second.clone()],
        }]);
    let mut after = events.to_vec();
    after.push(OrderEvent::OrderFired {
        order_id: order_id(),
        store_id: store_id(),
        course: Some(Course::parse(2).unwrap()),
        lines: vec![second],
    });
    // Firing everything now sends only the first course's line.
    given(after)
        .when(OrderCommand::Fire { course: None })
        .then(vec![fired(vec![fired_line(1, fries(), 1)])]);
}

#[test]
fn lines_added_after_a_fire_are_fired_by_the_next_one() {
    let mut events = burgers_and_fries_fired();
    events.push(added(3, fries(), 2));
    given(events)
        .when(OrderCommand::Fire { course: None })
        .then(vec![fired(vec![fired_line(3, fries(), 2)])]);
}

#[test]
fn starting_a_fired_line_records_it_for_its_station() {
    given(burgers_and_fries_fired())
        .when(OrderCommand::StartLine {
            line_id: line_id(1),
        })
        .then(vec![started(1, "grill")]);
}

#[test]
fn bumping_a_line_that_is_not_the_last_makes_only_the_line_ready() {
    given(burgers_and_fries_fired())
        .when(line(line_id(2)))
        .then(vec![line_ready(2, "fry")]);
}

#[test]
fn bumping_the_last_line_makes_the_order_ready_right_after_it() {
    let mut events = burgers_and_fries_fired();
    events.extend([started(1, "grill"), line_ready(2, "fry")]);
    given(events)
        .when(line(line_id(1)))
        .then(vec![line_ready(1, "grill"), order_ready()]);
    assert_eq!(replay(&all_ready()).status(), Some(OrderStatus::Ready));
}

#[test]
fn a_line_may_be_bumped_without_being_started() {
    let mut events = burgers_and_fries_fired();
    events.push(line_ready(2, "fry"));
    given(events)
        .when(line(line_id(1)))
        .then(vec![line_ready(1, "grill"), order_ready()]);
}

#[test]
fn an_order_with_a_pending_line_is_not_ready_when_the_fired_ones_are() {
    let events = [
        opened(),
        added_in(1, fries(), 1, 1),
        added_in(2, burger(), 1, 2),
        fired(vec![fired_line(1, fries(), 1)]),
    ];
    given(events)
        .when(line(line_id(1)))
        .then(vec![line_ready(1, "fry")]);
}

#[test]
fn recalling_a_started_line_puts_it_back_to_started_and_reopens_the_order() {
    let mut events = burgers_and_fries_fired();
    events.extend([
        started(1, "grill"),
        line_ready(1, "grill"),
        line_ready(2, "fry"),
        order_ready(),
    ]);
    let recalled = OrderEvent::OrderLineRecalled {
        order_id: order_id(),
        store_id: store_id(),
        line_id: line_id(1),
        station: station("grill"),
        back_to: RecalledTo::Started,
    };
    given(events.clone())
        .when(OrderCommand::RecallLine {
            line_id: line_id(1),
        })
        .then(vec![recalled.clone()]);
    events.push(recalled);
    let state = replay(&events);
    assert_eq!(state.status(), Some(OrderStatus::Open));
    let order = state.order().unwrap();
    assert_eq!(order.line(line_id(1)).unwrap().status, LineStatus::Started);
    // Bumped again, the order is ready again.
    given(events)
        .when(line(line_id(1)))
        .then(vec![line_ready(1, "grill"), order_ready()]);
}

#[test]
fn recalling_a_line_bumped_without_starting_puts_it_back_to_fired() {
    let mut events = burgers_and_fries_fired();
    events.push(line_ready(2, "fry"));
    given(events)
        .when(OrderCommand::RecallLine {
            line_id: line_id(2),
        })
        .then(vec![OrderEvent::OrderLineRecalled {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(2),
            station: station("fry"),
            back_to: RecalledTo::Fired,
        }]);
}

#[test]
fn voiding_a_pending_line_returns_no_stock() {
    given([opened(), added(1, burger(), 2)])
        .when(OrderCommand::VoidLine {
            line_id: line_id(1),
        })
        .then(vec![OrderEvent::OrderLineVoided {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(1),
            station: station("grill"),
            returned: vec![],
        }]);
}

#[test]
fn voiding_a_fired_line_not_yet_started_returns_its_stock() {
    given(burgers_and_fries_fired())
        .when(OrderCommand::VoidLine {
            line_id: line_id(1),
        })
        .then(vec![OrderEvent::OrderLineVoided {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(1),
            station: station("grill"),
            returned: burger_stock(2),
        }]);
}

#[test]
fn voiding_the_last_line_not_ready_makes_the_order_ready() {
    let mut events = burgers_and_fries_fired();
    events.push(line_ready(2, "fry"));
    given(events)
        .when(OrderCommand::VoidLine {
            line_id: line_id(1),
        })
        .then(vec![
            OrderEvent::OrderLineVoided {
                order_id: order_id(),
                store_id: store_id(),
                line_id: line_id(1),
                station: station("grill"),
                returned: burger_stock(2),
            },
            order_ready(),
        ]);
}

#[test]
fn voiding_every_line_does_not_make_the_order_ready() {
    given([opened(), added(1, burger(), 1)])
        .when(OrderCommand::VoidLine {
            line_id: line_id(1),
        })
        .then(vec![OrderEvent::OrderLineVoided {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(1),
            station: station("grill"),
            returned: vec![],
        }]);
}

#[test]
fn adding_a_line_to_a_ready_order_reopens_it() {
    let mut events = all_ready();
    events.push(added(3, fries(), 1));
    assert_eq!(replay(&events).status(), Some(OrderStatus::Open));
}

#[test]
fn serving_a_ready_order_then_completing_it_records_the_total_of_its_lines() {
    given(all_ready())
        .when(OrderCommand::Serve)
        .then(vec![served()]);
    let mut events = all_ready();
    events.push(served());
    // 2 × 1250 + 1 × 400.
    given(events)
        .when(OrderCommand::Complete)
        .then(vec![OrderEvent::OrderCompleted {
            order_id: order_id(),
            store_id: store_id(),
            total: pence(2900),
        }]);
}

#[test]
fn voided_lines_are_not_in_the_total() {
    let events = [
        opened(),
        added(1, burger(), 2),
        added(2, fries(), 3),
        OrderEvent::OrderLineVoided {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(2),
            station: station("fry"),
            returned: vec![],
        },
        fired(vec![fired_line(1, burger(), 2)]),
        line_ready(1, "grill"),
        order_ready(),
        served(),
    ];
    given(events)
        .when(OrderCommand::Complete)
        .then(vec![OrderEvent::OrderCompleted {
            order_id: order_id(),
            store_id: store_id(),
            total: pence(2500),
        }]);
}

#[test]
fn cancelling_returns_the_stock_of_fired_lines_not_started_only() {
    let mut events = burgers_and_fries_fired();
    events.extend([added(3, burger(), 1), started(2, "fry")]);
    let reason = CancelReason::parse("guest left").unwrap();
    given(events)
        .when(OrderCommand::Cancel {
            reason: reason.clone(),
        })
        .then(vec![OrderEvent::OrderCancelled {
            order_id: order_id(),
            store_id: store_id(),
            reason,
            returned: vec![ReturnedLine {
                line_id: line_id(1),
                station: station("grill"),
                stock: burger_stock(2),
            }],
        }]);
}

#[test]
fn a_served_order_may_still_be_cancelled_and_returns_nothing() {
    let mut events = all_ready();
    events.push(served());
    let reason = CancelReason::parse("walked out").unwrap();
    given(events)
        .when(OrderCommand::Cancel {
            reason: reason.clone(),
        })
        .then(vec![OrderEvent::OrderCancelled {
            order_id: order_id(),
            store_id: store_id(),
            reason,
            returned: vec![],
        }]);
}

#[test]
fn rushing_and_clearing_the_rush_record_it_once() {
    given([opened()])
        .when(OrderCommand::SetRush { rush: true })
        .then(vec![OrderEvent::OrderRushed {
            order_id: order_id(),
            store_id: store_id(),
        }]);
    let rushed = OrderEvent::OrderRushed {
        order_id: order_id(),
        store_id: store_id(),
    };
    given([opened(), rushed.clone()])
        .when(OrderCommand::SetRush { rush: true })
        .then(vec![]);
    given([opened(), rushed.clone()])
        .when(OrderCommand::SetRush { rush: false })
        .then(vec![OrderEvent::OrderRushCleared {
            order_id: order_id(),
            store_id: store_id(),
        }]);
    given([opened()])
        .when(OrderCommand::SetRush { rush: false })
        .then(vec![]);
    assert!(replay(&[opened(), rushed]).order().unwrap().rush);
}

#[test]
fn replaying_the_whole_life_of_an_order_gives_each_line_its_status() {
    let mut events = burgers_and_fries_fired();
    events.extend([
        added(3, fries(), 1),
        OrderEvent::OrderLineVoided {
            order_id: order_id(),
            store_id: store_id(),
            line_id: line_id(3),
            station: station("fry"),
            returned: vec![],
        },
        started(1, "grill"),
    ]);
    let state = replay(&events);
    let order = state.order().unwrap();
    let statuses: Vec<_> = order.lines.iter().map(|l| l.status).collect();
    assert_eq!(
        statuses,
        [LineStatus::Started, LineStatus::Fired, LineStatus::Voided]
    );
    assert!(!order.all_lines_ready());
    let station_of_first: &StationKey = &order.lines[0].station;
    assert_eq!(station_of_first, &station("grill"));

    let mut done = all_ready();
    done.extend([
        served(),
        OrderEvent::OrderCompleted {
            order_id: order_id(),
            store_id: store_id(),
            total: pence(2900),
        },
    ]);
    assert_eq!(replay(&done).status(), Some(OrderStatus::Completed));
    assert_eq!(replay(&[]), OrderState::NotOpened);
    assert_eq!(replay(&[]).status(), None);
}
