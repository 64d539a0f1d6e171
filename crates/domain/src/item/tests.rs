//! Given / when / then tests of the item aggregate.

use super::*;
use crate::error::DomainError;
use crate::ids::{ItemId, TransferId};
use crate::store::StoreState;
use crate::store::{self, StoreEvent};
use crate::test_support::{
    Then, item_added, item_id_of, item_name, other_store_id, q, sku, store_created, store_id, t,
    tenant, unit,
};
use crate::values::Delta;

struct Given {
    store: StoreState,
    item: ItemState,
    item_id: ItemId,
}

/// The item `FLOUR` of an open store, after `events`.
fn given(events: impl IntoIterator<Item = ItemEvent>) -> Given {
    given_store([store_created(store_id(), tenant())]).and(events)
}

/// A store after `events`, then `.and(item events)`.
fn given_store(events: impl IntoIterator<Item = StoreEvent>) -> GivenStore {
    let events: Vec<_> = events.into_iter().collect();
    GivenStore {
        store: store::replay(&events),
    }
}

struct GivenStore {
    store: StoreState,
}

impl GivenStore {
    fn and(self, events: impl IntoIterator<Item = ItemEvent>) -> Given {
        let events: Vec<_> = events.into_iter().collect();
        Given {
            store: self.store,
            item: replay(&events),
            item_id: flour_id(),
        }
    }
}

impl Given {
    /// Addresses the command to another item stream.
    fn at(mut self, item_id: ItemId) -> Self {
        self.item_id = item_id;
        self
    }

    fn when(self, cmd: ItemCommand) -> Then<Vec<ItemEvent>> {
        Then::new(decide(&self.store, &self.item, self.item_id, cmd))
    }
}

fn flour_id() -> ItemId {
    item_id_of(store_id(), "FLOUR")
}

fn added(quantity: i64, threshold: i64) -> ItemEvent {
    item_added(store_id(), "FLOUR", quantity, threshold)
}

fn add(quantity: i64, threshold: i64) -> ItemCommand {
    ItemCommand::AddItem {
        store_id: store_id(),
        sku: sku("flour"),
        name: item_name("Flour"),
        unit: unit(),
        quantity: q(quantity),
        threshold: t(threshold),
    }
}

fn adjust_cmd(delta: i64, reason: AdjustReason) -> ItemCommand {
    ItemCommand::AdjustStock {
        delta: Delta::parse(delta).unwrap(),
        reason,
        note: None,
    }
}

fn adjusted(delta: i64, quantity: i64, reason: StockReason) -> ItemEvent {
    ItemEvent::StockAdjusted {
        item_id: flour_id(),
        store_id: store_id(),
        delta: Delta::parse(delta).unwrap(),
        quantity: q(quantity),
        reason,
        note: None,
        undoes: None,
    }
}

fn low(quantity: i64, threshold: i64) -> ItemEvent {
    ItemEvent::LowStock {
        item_id: flour_id(),
        store_id: store_id(),
        sku: sku("FLOUR"),
        quantity: q(quantity),
        threshold: t(threshold),
    }
}

fn out() -> ItemEvent {
    ItemEvent::OutOfStock {
        item_id: flour_id(),
        store_id: store_id(),
        sku: sku("FLOUR"),
    }
}

fn restocked(quantity: i64, threshold: i64) -> ItemEvent {
    ItemEvent::Restocked {
        item_id: flour_id(),
        store_id: store_id(),
        sku: sku("FLOUR"),
        quantity: q(quantity),
        threshold: t(threshold),
    }
}

fn threshold_changed(threshold: i64) -> ItemEvent {
    ItemEvent::ThresholdChanged {
        item_id: flour_id(),
        store_id: store_id(),
        threshold: t(threshold),
        undoes: None,
    }
}

fn removed() -> ItemEvent {
    ItemEvent::ItemRemoved {
        item_id: flour_id(),
        store_id: store_id(),
    }
}

/// One of every command but `AddItem`.
fn commands_on_existing_items() -> Vec<ItemCommand> {
    vec![
        adjust_cmd(1, AdjustReason::Received),
        ItemCommand::ReturnStock {
            delta: Delta::parse(1).unwrap(),
            note: None,
        },
        ItemCommand::SetThreshold { threshold: t(2) },
        ItemCommand::RenameItem {
            name: item_name("Flour 00"),
        },
        ItemCommand::RemoveItem,
    ]
}

// --- AddItem -------------------------------------------------------------

#[test]
fn adding_an_item_records_it_under_the_id_of_its_sku() {
    given([]).when(add(10, 3)).then(vec![added(10, 3)]);
}

#[test]
fn adding_an_item_that_starts_low_or_out_raises_no_alert() {
    given([]).when(add(2, 3)).then(vec![added(2, 3)]);
    given([]).when(add(0, 3)).then(vec![added(0, 3)]);
}

#[test]
fn adding_an_item_to_a_store_that_does_not_exist_is_rejected() {
    given_store([])
        .and([])
        .when(add(1, 0))
        .then_err(DomainError::StoreNotFound);
}

#[test]
fn adding_an_item_to_a_closed_store_is_rejected() {
    given_store([
        store_created(store_id(), tenant()),
        StoreEvent::StoreClosed {
            store_id: store_id(),
        },
    ])
    .and([])
    .when(add(1, 0))
    .then_err(DomainError::StoreClosed);
}

#[test]
fn adding_an_item_under_an_id_its_store_and_sku_do_not_derive_is_rejected() {
    let wrong = item_id_of(store_id(), "SUGAR");
    given([])
        .at(wrong)
        .when(add(1, 0))
        .then_err(DomainError::ItemIdMismatch {
            expected: flour_id(),
            actual: wrong,
        });
}

#[test]
fn adding_an_item_with_the_state_of_another_store_is_rejected() {
    given_store([store_created(other_store_id(), tenant())])
        .and([])
        .when(add(1, 0))
        .then_err(DomainError::StoreMismatch {
            expected: store_id(),
            actual: other_store_id(),
        });
}

#[test]
fn adding_a_sku_the_store_already_stocks_is_rejected() {
    given([added(10, 3)])
        .when(add(5, 1))
        .then_err(DomainError::SkuAlreadyExists { sku: sku("FLOUR") });
}

#[test]
fn a_removed_sku_can_be_added_again_on_the_same_stream() {
    given([added(10, 3), removed()])
        .when(add(4, 1))
        .then(vec![added(4, 1)]);

    let state = replay(&[added(10, 3), removed(), added(4, 1)]);
    assert_eq!(state.quantity(), Some(q(4)));
    assert_eq!(state.status(), Some(StockStatus::InStock));
}

// --- Rules shared by every other command ---------------------------------

#[test]
fn commands_on_an_item_that_was_never_added_are_rejected() {
    for cmd in commands_on_existing_items() {
        given([]).when(cmd).then_err(DomainError::ItemNotFound {
            item_id: flour_id(),
        });
    }
}

#[test]
fn commands_on_a_removed_item_are_rejected() {
    for cmd in commands_on_existing_items() {
        given([added(10, 3), removed()])
            .when(cmd)
            .then_err(DomainError::ItemRemoved {
                item_id: flour_id(),
            });
    }
}

#[test]
fn item_commands_in_a_closed_store_are_rejected() {
    let mut commands = commands_on_existing_items();
    commands.push(add(1, 0));
    for cmd in commands {
        given_store([
            store_created(store_id(), tenant()),
            StoreEvent::StoreClosed {
                store_id: store_id(),
            },
        ])
        .and([added(10, 3)])
        .when(cmd)
        .then_err(DomainError::StoreClosed);
    }
}

#[test]
fn item_commands_without_their_store_are_rejected() {
    for cmd in commands_on_existing_items() {
        given_store([])
            .and([added(10, 3)])
            .when(cmd)
            .then_err(DomainError::StoreNotFound);
    }
}

#[test]
fn item_commands_with_the_state_of_another_store_are_rejected() {
    for cmd in commands_on_existing_items() {
        given_store([store_created(other_store_id(), tenant())])
            .and([added(10, 3)])
            .when(cmd)
            .then_err(DomainError::StoreMismatch {
                expected: store_id(),
                actual: other_store_id(),
            });
    }
}

// --- AdjustStock ---------------------------------------------------------

#[test]
fn receiving_stock_adds_to_the_quantity() {
    given([added(10, 3)])
        .when(adjust_cmd(5, AdjustReason::Received))
        .then(vec![adjusted(5, 15, StockReason::Received)]);
}

#[test]
fn selling_stock_takes_from_the_quantity_and_keeps_the_note() {
    given([added(10, 3)])
        .when(ItemCommand::AdjustStock {
            delta: Delta::parse(-4).unwrap(),
            reason: AdjustReason::Sold,
            note: Some("  lunch service ".into()),
        })
        .then(vec![ItemEvent::StockAdjusted {
            item_id: flour_id(),
            store_id: store_id(),
            delta: Delta::parse(-4).unwrap(),
            quantity: q(6),
            reason: StockReason::Sold,
            note: Some("lunch service".into()),
            undoes: None,
        }]);
}

#[test]
fn a_blank_note_is_recorded_as_none() {
    given([added(10, 3)])
        .when(ItemCommand::AdjustStock {
            delta: Delta::parse(1).unwrap(),
            reason: AdjustReason::Counted,
            note: Some("   ".into()),
        })
        .then(vec![adjusted(1, 11, StockReason::Counted)]);
}

#[test]
fn every_adjust_reason_is_recorded_as_its_stock_reason() {
    let reasons = [
        (AdjustReason::Received, StockReason::Received),
        (AdjustReason::Sold, StockReason::Sold),
        (AdjustReason::Wasted, StockReason::Wasted),
        (AdjustReason::Counted, StockReason::Counted),
        (AdjustReason::Correction, StockReason::Correction),
    ];
    for (adjust_reason, stock_reason) in reasons {
        assert_eq!(StockReason::from(adjust_reason), stock_reason);
        given([added(10, 3)])
            .when(adjust_cmd(-1, adjust_reason))
            .then(vec![adjusted(-1, 9, stock_reason)]);
    }
}

#[test]
fn adjusting_below_zero_is_rejected() {
    given([added(10, 3)])
        .when(adjust_cmd(-11, AdjustReason::Wasted))
        .then_err(DomainError::InsufficientStock {
            available: 10,
            requested: 11,
        });
}

#[test]
fn adjusting_past_the_largest_quantity_is_rejected() {
    given([added(10, 3)])
        .when(adjust_cmd(i64::MAX, AdjustReason::Received))
        .then_err(DomainError::QuantityOverflow);
}

#[test]
fn a_note_longer_than_500_characters_is_rejected() {
    given([added(10, 3)])
        .when(ItemCommand::AdjustStock {
            delta: Delta::parse(1).unwrap(),
            reason: AdjustReason::Received,
            note: Some("x".repeat(501)),
        })
        .then_err(DomainError::InvalidNote {
            field: "note",
            reason: "must be at most 500 characters",
        });
}

// --- Alerts on adjustments -----------------------------------------------

#[test]
fn going_from_in_stock_to_low_raises_low_stock() {
    given([added(10, 3)])
        .when(adjust_cmd(-7, AdjustReason::Sold))
        .then(vec![adjusted(-7, 3, StockReason::Sold), low(3, 3)]);
}

#[test]
fn going_from_in_stock_to_out_raises_out_of_stock() {
    given([added(10, 3)])
        .when(adjust_cmd(-10, AdjustReason::Sold))
        .then(vec![adjusted(-10, 0, StockReason::Sold), out()]);
}

#[test]
fn going_from_low_to_out_raises_out_of_stock() {
    given([added(2, 3)])
        .when(adjust_cmd(-2, AdjustReason::Wasted))
        .then(vec![adjusted(-2, 0, StockReason::Wasted), out()]);
}

#[test]
fn going_from_out_to_low_raises_low_stock() {
    given([added(0, 3)])
        .when(adjust_cmd(1, AdjustReason::Received))
        .then(vec![adjusted(1, 1, StockReason::Received), low(1, 3)]);
}

#[test]
fn going_from_low_to_in_stock_raises_restocked() {
    given([added(3, 3)])
        .when(adjust_cmd(1, AdjustReason::Received))
        .then(vec![adjusted(1, 4, StockReason::Received), restocked(4, 3)]);
}

#[test]
fn going_from_out_to_in_stock_raises_restocked() {
    given([added(0, 3)])
        .when(adjust_cmd(20, AdjustReason::Received))
        .then(vec![
            adjusted(20, 20, StockReason::Received),
            restocked(20, 3),
        ]);
}

#[test]
fn staying_in_stock_raises_no_alert() {
    given([added(10, 3)])
        .when(adjust_cmd(-6, AdjustReason::Sold))
        .then(vec![adjusted(-6, 4, StockReason::Sold)]);
}

#[test]
fn staying_low_raises_no_alert() {
    given([added(3, 3)])
        .when(adjust_cmd(-2, AdjustReason::Sold))
        .then(vec![adjusted(-2, 1, StockReason::Sold)]);
}

#[test]
fn with_a_threshold_of_zero_an_item_goes_straight_from_in_stock_to_out() {
    given([added(1, 0)])
        .when(adjust_cmd(-1, AdjustReason::Sold))
        .then(vec![adjusted(-1, 0, StockReason::Sold), out()]);
}

// --- SetThreshold --------------------------------------------------------

#[test]
fn setting_a_threshold_records_it() {
    given([added(10, 3)])
        .when(ItemCommand::SetThreshold { threshold: t(5) })
        .then(vec![threshold_changed(5)]);
}

#[test]
fn setting_the_current_threshold_changes_nothing() {
    given([added(10, 3)])
        .when(ItemCommand::SetThreshold { threshold: t(3) })
        .then(vec![]);
}

#[test]
fn raising_the_threshold_to_the_quantity_raises_low_stock() {
    given([added(10, 3)])
        .when(ItemCommand::SetThreshold { threshold: t(10) })
        .then(vec![threshold_changed(10), low(10, 10)]);
}

#[test]
fn lowering_the_threshold_below_the_quantity_raises_restocked() {
    given([added(3, 5)])
        .when(ItemCommand::SetThreshold { threshold: t(2) })
        .then(vec![threshold_changed(2), restocked(3, 2)]);
}

#[test]
fn changing_the_threshold_of_an_item_out_of_stock_raises_no_alert() {
    given([added(0, 5)])
        .when(ItemCommand::SetThreshold { threshold: t(0) })
        .then(vec![threshold_changed(0)]);
}

// --- RenameItem and RemoveItem -------------------------------------------

#[test]
fn renaming_an_item_records_the_new_name() {
    given([added(10, 3)])
        .when(ItemCommand::RenameItem {
            name: item_name("Flour 00"),
        })
        .then(vec![ItemEvent::ItemRenamed {
            item_id: flour_id(),
            store_id: store_id(),
            name: item_name("Flour 00"),
            undoes: None,
        }]);
}

#[test]
fn renaming_an_item_to_its_current_name_changes_nothing() {
    given([added(10, 3)])
        .when(ItemCommand::RenameItem {
            name: item_name(" Flour "),
        })
        .then(vec![]);
}

#[test]
fn removing_an_item_records_it_even_with_stock_left() {
    given([added(10, 3)])
        .when(ItemCommand::RemoveItem)
        .then(vec![removed()]);
}

// --- State ---------------------------------------------------------------

#[test]
fn stock_status_follows_quantity_and_threshold() {
    let cases = [
        (0, 0, StockStatus::Out),
        (0, 5, StockStatus::Out),
        (1, 5, StockStatus::Low),
        (5, 5, StockStatus::Low),
        (6, 5, StockStatus::InStock),
        (1, 0, StockStatus::InStock),
    ];
    for (quantity, threshold, status) in cases {
        assert_eq!(
            StockStatus::of(q(quantity), t(threshold)),
            status,
            "{quantity}/{threshold}"
        );
    }
}

#[test]
fn replaying_a_stream_applies_every_change_and_ignores_alerts() {
    let events = [
        added(10, 3),
        adjusted(-8, 2, StockReason::Sold),
        low(2, 3),
        threshold_changed(1),
        restocked(2, 1),
        ItemEvent::ItemRenamed {
            item_id: flour_id(),
            store_id: store_id(),
            name: item_name("Flour 00"),
            undoes: None,
        },
    ];
    let state = replay(&events);
    assert_eq!(
        state,
        ItemState::Active {
            store_id: store_id(),
            sku: sku("FLOUR"),
            name: item_name("Flour 00"),
            unit: unit(),
            quantity: q(2),
            threshold: t(1),
        }
    );
    assert_eq!(state.status(), Some(StockStatus::InStock));
    assert_eq!(state.store_id(), Some(store_id()));
    assert_eq!(state.sku(), Some(&sku("FLOUR")));
    assert!(state.is_active());
}

#[test]
fn a_removed_item_keeps_its_last_fields_but_has_no_status() {
    let state = replay(&[added(10, 3), removed()]);
    assert!(matches!(state, ItemState::Removed { quantity, .. } if quantity == q(10)));
    assert_eq!(state.status(), None);
    assert_eq!(state.quantity(), None);
    assert_eq!(state.sku(), Some(&sku("FLOUR")));
    assert!(!state.is_active());
}

#[test]
fn events_that_do_not_fit_the_state_are_ignored() {
    assert_eq!(
        evolve(ItemState::NotAdded, &adjusted(1, 1, StockReason::Received)),
        ItemState::NotAdded
    );
    let active = replay(&[added(10, 3)]);
    assert_eq!(evolve(active.clone(), &added(1, 1)), active);
}

#[test]
fn every_event_names_its_item_and_store() {
    let transfer = ItemEvent::TransferCompleted {
        transfer_id: TransferId::new(uuid::Uuid::from_u128(1)),
        from_store: store_id(),
        from_item: flour_id(),
        to_store: other_store_id(),
        to_item: item_id_of(other_store_id(), "FLOUR"),
        sku: sku("FLOUR"),
        quantity: q(1),
    };
    let events = [
        added(1, 1),
        adjusted(1, 2, StockReason::Received),
        threshold_changed(1),
        ItemEvent::ItemRenamed {
            item_id: flour_id(),
            store_id: store_id(),
            name: item_name("x"),
            undoes: None,
        },
        removed(),
        low(1, 1),
        out(),
        restocked(2, 1),
        transfer,
    ];
    for event in &events {
        assert_eq!(event.item_id(), flour_id(), "{event:?}");
        assert_eq!(event.store_id(), store_id(), "{event:?}");
    }
    let alerts: Vec<_> = events.iter().filter(|e| e.is_alert()).collect();
    assert_eq!(alerts, [&low(1, 1), &out(), &restocked(2, 1)]);
}

#[test]
fn reasons_and_statuses_serialise_as_snake_case() {
    let json = |v: serde_json::Result<String>| v.unwrap();
    assert_eq!(
        json(serde_json::to_string(&AdjustReason::Received)),
        r#""received""#
    );
    assert_eq!(
        json(serde_json::to_string(&StockReason::TransferIn)),
        r#""transfer_in""#
    );
    assert_eq!(
        json(serde_json::to_string(&StockReason::TransferOut)),
        r#""transfer_out""#
    );
    assert_eq!(
        json(serde_json::to_string(&StockStatus::InStock)),
        r#""in_stock""#
    );
}
