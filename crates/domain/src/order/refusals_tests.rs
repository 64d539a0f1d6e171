//! Every transition an order or a line cannot make, and the error it gets.

use super::tests::{
    add, added, all_ready, burgers_and_fries_fired, given, given_store, line_ready, open_cmd,
    opened, served, started,
};
use super::*;
use crate::error::DomainError;
use crate::ids::LineId;
use crate::menu::MenuItemSnapshot;
use crate::money::{Currency, Money};
use crate::store::StoreEvent;
use crate::test_support::{
    burger, fries, line_id, order_id, other_store_id, station, store_created, store_id, tenant,
};

fn void(n: u128) -> OrderCommand {
    OrderCommand::VoidLine {
        line_id: line_id(n),
    }
}

fn start(n: u128) -> OrderCommand {
    OrderCommand::StartLine {
        line_id: line_id(n),
    }
}

fn bump(n: u128) -> OrderCommand {
    OrderCommand::MarkLineReady {
        line_id: line_id(n),
    }
}

fn recall(n: u128) -> OrderCommand {
    OrderCommand::RecallLine {
        line_id: line_id(n),
    }
}

fn cancel() -> OrderCommand {
    OrderCommand::Cancel {
        reason: CancelReason::parse("guest left").unwrap(),
    }
}

fn voided(n: u128) -> OrderEvent {
    OrderEvent::OrderLineVoided {
        order_id: order_id(),
        store_id: store_id(),
        line_id: line_id(n),
        station: station("grill"),
        returned: vec![],
    }
}

/// Every command but `OpenOrder`, about line 1.
fn every_command_on_an_order() -> Vec<OrderCommand> {
    vec![
        add(9, fries(), 1),
        void(1),
        OrderCommand::Fire { course: None },
        start(1),
        bump(1),
        recall(1),
        OrderCommand::Serve,
        OrderCommand::Complete,
        cancel(),
        OrderCommand::SetRush { rush: true },
    ]
}

fn line_err(n: u128, error: fn(LineId) -> DomainError) -> DomainError {
    error(line_id(n))
}

#[test]
fn opening_an_order_twice_is_rejected() {
    given([opened()])
        .when(open_cmd())
        .then_err(DomainError::OrderAlreadyExists {
            order_id: order_id(),
        });
}

#[test]
fn opening_an_order_for_another_store_than_the_one_given_is_rejected() {
    let mut cmd = open_cmd();
    if let OrderCommand::OpenOrder { store_id, .. } = &mut cmd {
        *store_id = other_store_id();
    }
    given([]).when(cmd).then_err(DomainError::StoreMismatch {
        expected: other_store_id(),
        actual: store_id(),
    });
}

#[test]
fn an_order_needs_its_store_open() {
    given_store([], [])
        .when(open_cmd())
        .then_err(DomainError::StoreNotFound);
    let closed = [
        store_created(store_id(), tenant()),
        StoreEvent::StoreClosed {
            store_id: store_id(),
        },
    ];
    given_store(closed.clone(), [])
        .when(open_cmd())
        .then_err(DomainError::StoreClosed);
    given_store(closed, burgers_and_fries_fired())
        .when(bump(1))
        .then_err(DomainError::StoreClosed);
}

#[test]
fn an_order_decided_with_another_stores_state_is_rejected() {
    given_store([store_created(other_store_id(), tenant())], [opened()])
        .when(OrderCommand::Serve)
        .then_err(DomainError::StoreMismatch {
            expected: store_id(),
            actual: other_store_id(),
        });
}

#[test]
fn every_command_on_an_order_never_opened_is_rejected() {
    for cmd in every_command_on_an_order() {
        given([]).when(cmd).then_err(DomainError::OrderNotFound {
            order_id: order_id(),
        });
    }
}

#[test]
fn adding_a_line_with_a_taken_id_is_rejected_even_if_it_was_voided() {
    given([opened(), added(1, burger(), 1), voided(1)])
        .when(add(1, fries(), 1))
        .then_err(line_err(1, |line_id| DomainError::LineAlreadyExists {
            line_id,
        }));
}

#[test]
fn adding_a_line_priced_in_another_currency_is_rejected() {
    let euros = Currency::parse("EUR").unwrap();
    let item = MenuItemSnapshot {
        unit_price: Money::parse(1250, euros.clone()).unwrap(),
        ..burger()
    };
    given([opened()])
        .when(add(1, item, 1))
        .then_err(DomainError::CurrencyMismatch {
            expected: Currency::parse("GBP").unwrap(),
            actual: euros,
        });
}

#[test]
fn adding_a_line_with_too_many_modifiers_or_too_long_a_note_is_rejected() {
    let modifier = Modifier::parse("extra").unwrap();
    let with = |modifiers: usize, note: Option<String>| OrderCommand::AddLine {
        line_id: line_id(1),
        item: burger(),
        quantity: LineQuantity::parse(1).unwrap(),
        modifiers: vec![modifier.clone(); modifiers],
        note,
        course: Course::FIRST,
    };
    given([opened()])
        .when(with(MAX_MODIFIERS + 1, None))
        .then_err(DomainError::InvalidModifier {
            field: "modifiers",
            reason: "at most 10 per line",
        });
    let note = Some("x".repeat(crate::MAX_NOTE_CHARS + 1));
    given([opened()])
        .when(with(MAX_MODIFIERS, note))
        .then_err(DomainError::InvalidNote {
            field: "note",
            reason: "must be at most 500 characters",
        });
}

#[test]
fn an_order_holds_at_most_200_lines() {
    let mut events = vec![opened()];
    events.extend((0..MAX_LINES as u128).map(|n| added(100 + n, fries(), 1)));
    given(events)
        .when(add(1, burger(), 1))
        .then_err(DomainError::LimitReached {
            what: "lines per order",
            max: MAX_LINES,
        });
}

#[test]
fn commands_about_an_unknown_line_are_rejected() {
    for cmd in [void(7), start(7), bump(7), recall(7)] {
        given(burgers_and_fries_fired())
            .when(cmd)
            .then_err(line_err(7, |line_id| DomainError::LineNotFound { line_id }));
    }
}

#[test]
fn firing_with_nothing_pending_is_rejected() {
    given([opened()])
        .when(OrderCommand::Fire { course: None })
        .then_err(DomainError::NothingToFire);
    given(burgers_and_fries_fired())
        .when(OrderCommand::Fire { course: None })
        .then_err(DomainError::NothingToFire);
    given([opened(), added(1, burger(), 1)])
        .when(OrderCommand::Fire {
            course: Some(Course::parse(2).unwrap()),
        })
        .then_err(DomainError::NothingToFire);
    given([opened(), added(1, burger(), 1), voided(1)])
        .when(OrderCommand::Fire { course: None })
        .then_err(DomainError::NothingToFire);
}

#[test]
fn a_line_not_fired_cannot_be_started_bumped_or_recalled() {
    let events = [opened(), added(1, burger(), 1)];
    let not_fired = line_err(1, |line_id| DomainError::LineNotFired { line_id });
    given(events.clone())
        .when(start(1))
        .then_err(not_fired.clone());
    given(events.clone()).when(bump(1)).then_err(not_fired);
    given(events)
        .when(recall(1))
        .then_err(line_err(1, |line_id| DomainError::LineNotReady { line_id }));
}

#[test]
fn a_started_line_cannot_be_started_again_voided_or_recalled() {
    let mut events = burgers_and_fries_fired();
    events.push(started(1, "grill"));
    let already = line_err(1, |line_id| DomainError::LineAlreadyStarted { line_id });
    given(events.clone())
        .when(start(1))
        .then_err(already.clone());
    given(events.clone()).when(void(1)).then_err(already);
    given(events)
        .when(recall(1))
        .then_err(line_err(1, |line_id| DomainError::LineNotReady { line_id }));
}

#[test]
fn a_ready_line_cannot_be_started_bumped_or_voided() {
    let mut events = burgers_and_fries_fired();
    events.push(line_ready(1, "grill"));
    let already = line_err(1, |line_id| DomainError::LineAlreadyReady { line_id });
    for cmd in [start(1), bump(1), void(1)] {
        given(events.clone()).when(cmd).then_err(already.clone());
    }
}

#[test]
fn a_fired_line_cannot_be_recalled() {
    given(burgers_and_fries_fired())
        .when(recall(2))
        .then_err(line_err(2, |line_id| DomainError::LineNotReady { line_id }));
}

#[test]
fn a_voided_line_accepts_nothing_more() {
    let events = [
        opened(),
        added(1, burger(), 1),
        added(2, fries(), 1),
        voided(1),
    ];
    let gone = line_err(1, |line_id| DomainError::LineVoided { line_id });
    for cmd in [void(1), start(1), bump(1), recall(1)] {
        given(events.clone()).when(cmd).then_err(gone.clone());
    }
}

#[test]
fn an_order_not_ready_cannot_be_served_nor_one_not_served_completed() {
    given(burgers_and_fries_fired())
        .when(OrderCommand::Serve)
        .then_err(DomainError::OrderNotReady {
            order_id: order_id(),
        });
    for events in [burgers_and_fries_fired(), all_ready()] {
        given(events)
            .when(OrderCommand::Complete)
            .then_err(DomainError::OrderNotServed {
                order_id: order_id(),
            });
    }
}

#[test]
fn a_served_order_takes_no_line_nor_kitchen_action_and_is_not_served_twice() {
    let mut events = all_ready();
    events.push(served());
    let refused = [
        add(9, fries(), 1),
        void(1),
        OrderCommand::Fire { course: None },
        start(1),
        bump(1),
        recall(1),
        OrderCommand::Serve,
        OrderCommand::SetRush { rush: true },
    ];
    for cmd in refused {
        given(events.clone())
            .when(cmd)
            .then_err(DomainError::OrderAlreadyServed {
                order_id: order_id(),
            });
    }
}

#[test]
fn a_completed_order_accepts_no_command() {
    let mut events = all_ready();
    events.extend([
        served(),
        OrderEvent::OrderCompleted {
            order_id: order_id(),
            store_id: store_id(),
            total: crate::test_support::pence(2900),
        },
    ]);
    for cmd in every_command_on_an_order() {
        given(events.clone())
            .when(cmd)
            .then_err(DomainError::OrderAlreadyCompleted {
                order_id: order_id(),
            });
    }
    given(events)
        .when(open_cmd())
        .then_err(DomainError::OrderAlreadyExists {
            order_id: order_id(),
        });
}

#[test]
fn a_cancelled_order_accepts_no_command() {
    let mut events = burgers_and_fries_fired();
    events.push(OrderEvent::OrderCancelled {
        order_id: order_id(),
        store_id: store_id(),
        reason: CancelReason::parse("guest left").unwrap(),
        returned: vec![],
    });
    for cmd in every_command_on_an_order() {
        given(events.clone())
            .when(cmd)
            .then_err(DomainError::OrderAlreadyCancelled {
                order_id: order_id(),
            });
    }
}

#[test]
fn a_refused_command_leaves_a_replayed_order_unchanged() {
    // Decisions never change state: the same stream replays to the same
    // order whatever was refused in between.
    let events = burgers_and_fries_fired();
    let before = replay(&events);
    let _ = decide(
        &crate::store::replay(&[store_created(store_id(), tenant())]),
        &before,
        order_id(),
        start(7),
    );
    assert_eq!(replay(&events), before);
}
