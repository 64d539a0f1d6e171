//! Given / when / then tests of undo and redo.

use uuid::Uuid;

use super::undo::{self, replay_history};
use super::*;
use crate::error::DomainError;
use crate::ids::{EventId, ItemId, TransferId};
use crate::store::{self, StoreEvent, StoreState};
use crate::test_support::{
    Then, item_added, item_id_of, item_name, q, sku, store_created, store_id, t, tenant,
};
use crate::values::Delta;

const ALICE: &str = "alice";
const BOB: &str = "bob";

fn ev(n: u128) -> EventId {
    EventId::new(Uuid::from_u128(n))
}

fn flour_id() -> ItemId {
    item_id_of(store_id(), "FLOUR")
}

struct Given {
    store: StoreState,
    history: ItemHistory,
}

/// The item `FLOUR` of an open store after `events`: `(id, actor, event)`.
fn given<const N: usize>(events: [(u128, &str, ItemEvent); N]) -> Given {
    given_in([store_created(store_id(), tenant())], events)
}

fn given_in<const N: usize>(
    store_events: impl IntoIterator<Item = StoreEvent>,
    events: [(u128, &str, ItemEvent); N],
) -> Given {
    let store_events: Vec<_> = store_events.into_iter().collect();
    Given {
        store: store::replay(&store_events),
        history: replay_history(events.map(|(id, actor, event)| Recorded {
            id: ev(id),
            actor: Some(actor.to_owned()),
            event,
        })),
    }
}

impl Given {
    fn when(
        self,
        action: UndoAction,
        id: u128,
        actor: &str,
        scope: UndoScope,
    ) -> Then<Vec<ItemEvent>> {
        Then::new(undo::decide(
            &self.store,
            &self.history,
            flour_id(),
            UndoChange {
                action,
                event_id: ev(id),
                actor: actor.to_owned(),
                scope,
            },
        ))
    }

    /// A manager undoes change `id`.
    fn undo(self, id: u128) -> Then<Vec<ItemEvent>> {
        self.when(UndoAction::Undo, id, ALICE, UndoScope::AnyChange)
    }

    /// A manager redoes change `id`.
    fn redo(self, id: u128) -> Then<Vec<ItemEvent>> {
        self.when(UndoAction::Redo, id, ALICE, UndoScope::AnyChange)
    }
}

fn added(quantity: i64, threshold: i64) -> ItemEvent {
    item_added(store_id(), "FLOUR", quantity, threshold)
}

fn adjusted(delta: i64, quantity: i64, reason: StockReason, undoes: Option<u128>) -> ItemEvent {
    ItemEvent::StockAdjusted {
        item_id: flour_id(),
        store_id: store_id(),
        delta: Delta::parse(delta).unwrap(),
        quantity: q(quantity),
        reason,
        note: None,
        undoes: undoes.map(ev),
    }
}

fn sold(delta: i64, quantity: i64) -> ItemEvent {
    adjusted(-delta, quantity, StockReason::Sold, None)
}

fn renamed(name: &str, undoes: Option<u128>) -> ItemEvent {
    ItemEvent::ItemRenamed {
        item_id: flour_id(),
        store_id: store_id(),
        name: item_name(name),
        undoes: undoes.map(ev),
    }
}

fn threshold_changed(threshold: i64, undoes: Option<u128>) -> ItemEvent {
    ItemEvent::ThresholdChanged {
        item_id: flour_id(),
        store_id: store_id(),
        threshold: t(threshold),
        undoes: undoes.map(ev),
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

fn low(quantity: i64, threshold: i64) -> ItemEvent {
    ItemEvent::LowStock {
        item_id: flour_id(),
        store_id: store_id(),
        sku: sku("FLOUR"),
        quantity: q(quantity),
        threshold: t(threshold),
    }
}

// --- Undo --------------------------------------------------------------------

#[test]
fn undoing_a_sale_puts_the_stock_back_with_the_same_reason_and_note() {
    let sale = ItemEvent::StockAdjusted {
        item_id: flour_id(),
        store_id: store_id(),
        delta: Delta::parse(-4).unwrap(),
        quantity: q(6),
        reason: StockReason::Sold,
        note: Some("lunch".into()),
        undoes: None,
    };
    given([(1, ALICE, added(10, 3)), (2, ALICE, sale)])
        .undo(2)
        .then(vec![ItemEvent::StockAdjusted {
            item_id: flour_id(),
            store_id: store_id(),
            delta: Delta::parse(4).unwrap(),
            quantity: q(10),
            reason: StockReason::Sold,
            note: Some("lunch".into()),
            undoes: Some(ev(2)),
        }]);
}

#[test]
fn undoing_the_sale_that_made_an_item_low_raises_restocked() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(8, 2)),
        (3, ALICE, low(2, 3)),
    ])
    .undo(2)
    .then(vec![
        adjusted(8, 10, StockReason::Sold, Some(2)),
        restocked(10, 3),
    ]);
}

#[test]
fn later_adjustments_do_not_block_undoing_an_earlier_one() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, adjusted(5, 15, StockReason::Received, None)),
        (3, BOB, sold(2, 13)),
    ])
    .undo(2)
    .then(vec![adjusted(-5, 8, StockReason::Received, Some(2))]);
}

#[test]
fn undoing_a_rename_restores_the_previous_name() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, renamed("Flour 00", None)),
    ])
    .undo(2)
    .then(vec![renamed("Flour", Some(2))]);
}

#[test]
fn undoing_a_threshold_change_restores_the_previous_threshold_and_its_alert() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, threshold_changed(12, None)),
        (3, ALICE, low(10, 12)),
    ])
    .undo(2)
    .then(vec![threshold_changed(3, Some(2)), restocked(10, 3)]);
}

// --- Redo ----------------------------------------------------------------------

#[test]
fn redoing_an_undone_rename_undoes_its_undo() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, renamed("Flour 00", None)),
        (3, ALICE, renamed("Flour", Some(2))),
    ])
    .redo(2)
    .then(vec![renamed("Flour 00", Some(3))]);
}

#[test]
fn undoing_an_undo_is_the_same_redo() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, ALICE, adjusted(4, 10, StockReason::Sold, Some(2))),
    ])
    .undo(3)
    .then(vec![adjusted(-4, 6, StockReason::Sold, Some(3))]);
}

#[test]
fn redoing_a_change_that_is_not_undone_is_rejected() {
    given([(1, ALICE, added(10, 3)), (2, ALICE, sold(4, 6))])
        .redo(2)
        .then_err(DomainError::NotUndone { event_id: ev(2) });
}

#[test]
fn redoing_twice_is_rejected_as_already_done() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, renamed("Flour 00", None)),
        (3, ALICE, renamed("Flour", Some(2))),
        (4, ALICE, renamed("Flour 00", Some(3))),
    ])
    .redo(2)
    .then_err(DomainError::AlreadyUndone {
        event_id: ev(3),
        undone_by: ev(4),
    });
}

#[test]
fn after_a_redo_the_redo_itself_can_be_undone() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, renamed("Flour 00", None)),
        (3, ALICE, renamed("Flour", Some(2))),
        (4, ALICE, renamed("Flour 00", Some(3))),
    ])
    .undo(4)
    .then(vec![renamed("Flour", Some(4))]);
}

// --- Refusals ------------------------------------------------------------------

#[test]
fn undoing_an_event_not_in_the_stream_is_rejected() {
    given([(1, ALICE, added(10, 3))])
        .undo(99)
        .then_err(DomainError::ChangeNotFound { event_id: ev(99) });
}

#[test]
fn alerts_additions_and_removals_are_not_undoable() {
    let removed = ItemEvent::ItemRemoved {
        item_id: flour_id(),
        store_id: store_id(),
    };
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, low(10, 3)),
        (3, ALICE, removed),
    ])
    .undo(1)
    .then_err(DomainError::NotUndoable { what: "ItemAdded" });
    given([(1, ALICE, added(10, 3)), (2, ALICE, low(10, 3))])
        .undo(2)
        .then_err(DomainError::NotUndoable { what: "LowStock" });
}

#[test]
fn a_side_of_a_transfer_is_not_undoable() {
    let completed = ItemEvent::TransferCompleted {
        transfer_id: TransferId::new(Uuid::from_u128(7)),
        from_store: store_id(),
        from_item: flour_id(),
        to_store: store_id(),
        to_item: item_id_of(store_id(), "SUGAR"),
        sku: sku("FLOUR"),
        quantity: q(2),
    };
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, adjusted(-2, 8, StockReason::TransferOut, None)),
        (3, ALICE, completed),
    ])
    .undo(2)
    .then_err(DomainError::NotUndoable { what: "a transfer" });
}

#[test]
fn undoing_twice_is_rejected() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, ALICE, adjusted(4, 10, StockReason::Sold, Some(2))),
    ])
    .undo(2)
    .then_err(DomainError::AlreadyUndone {
        event_id: ev(2),
        undone_by: ev(3),
    });
}

#[test]
fn undoing_a_rename_after_a_later_rename_is_rejected() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, renamed("Flour 00", None)),
        (3, BOB, renamed("Flour T55", None)),
    ])
    .undo(2)
    .then_err(DomainError::UndoConflict {
        event_id: ev(2),
        later: ev(3),
    });
}

#[test]
fn undoing_a_rename_whose_later_rename_was_undone_is_accepted() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, renamed("Flour 00", None)),
        (3, BOB, renamed("Flour T55", None)),
        (4, BOB, renamed("Flour 00", Some(3))),
    ])
    .undo(2)
    .then(vec![renamed("Flour", Some(2))]);
}

#[test]
fn undoing_a_threshold_change_after_a_later_one_is_rejected() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, threshold_changed(5, None)),
        (3, BOB, threshold_changed(4, None)),
    ])
    .undo(2)
    .then_err(DomainError::UndoConflict {
        event_id: ev(2),
        later: ev(3),
    });
}

#[test]
fn undoing_an_adjustment_that_would_take_stock_below_zero_is_rejected() {
    given([
        (1, ALICE, added(0, 3)),
        (2, ALICE, adjusted(10, 10, StockReason::Received, None)),
        (3, BOB, sold(8, 2)),
    ])
    .undo(2)
    .then_err(DomainError::InsufficientStock {
        available: 2,
        requested: 10,
    });
}

#[test]
fn undoing_an_adjustment_before_a_stock_count_is_rejected() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, BOB, adjusted(-1, 5, StockReason::Counted, None)),
    ])
    .undo(2)
    .then_err(DomainError::UndoConflict {
        event_id: ev(2),
        later: ev(3),
    });
}

#[test]
fn a_stock_count_that_was_undone_no_longer_blocks() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, BOB, adjusted(-1, 5, StockReason::Counted, None)),
        (4, BOB, adjusted(1, 6, StockReason::Counted, Some(3))),
    ])
    .undo(2)
    .then(vec![adjusted(4, 10, StockReason::Sold, Some(2))]);
}

#[test]
fn no_change_can_be_undone_once_the_item_was_added_again() {
    let removed = ItemEvent::ItemRemoved {
        item_id: flour_id(),
        store_id: store_id(),
    };
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, ALICE, removed),
        (4, ALICE, added(6, 3)),
    ])
    .undo(2)
    .then_err(DomainError::UndoConflict {
        event_id: ev(2),
        later: ev(4),
    });
}

#[test]
fn undoing_a_change_of_a_removed_item_or_in_a_closed_store_is_rejected() {
    let removed = ItemEvent::ItemRemoved {
        item_id: flour_id(),
        store_id: store_id(),
    };
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, ALICE, removed),
    ])
    .undo(2)
    .then_err(DomainError::ItemRemoved {
        item_id: flour_id(),
    });
    given_in(
        [
            store_created(store_id(), tenant()),
            StoreEvent::StoreClosed {
                store_id: store_id(),
            },
        ],
        [(1, ALICE, added(10, 3)), (2, ALICE, sold(4, 6))],
    )
    .undo(2)
    .then_err(DomainError::StoreClosed);
}

// --- Permissions ---------------------------------------------------------------

#[test]
fn staff_may_undo_their_own_stock_adjustments() {
    given([(1, ALICE, added(10, 3)), (2, BOB, sold(4, 6))])
        .when(UndoAction::Undo, 2, BOB, UndoScope::OwnStockAdjustments)
        .then(vec![adjusted(4, 10, StockReason::Sold, Some(2))]);
}

#[test]
fn staff_may_not_undo_someone_elses_adjustment_or_any_edit() {
    given([(1, ALICE, added(10, 3)), (2, ALICE, sold(4, 6))])
        .when(UndoAction::Undo, 2, BOB, UndoScope::OwnStockAdjustments)
        .then_err(DomainError::UndoNotAllowed);
    given([
        (1, ALICE, added(10, 3)),
        (2, BOB, renamed("Flour 00", None)),
    ])
    .when(UndoAction::Undo, 2, BOB, UndoScope::OwnStockAdjustments)
    .then_err(DomainError::UndoNotAllowed);
}

#[test]
fn a_manager_may_undo_anyones_change() {
    given([
        (1, ALICE, added(10, 3)),
        (2, BOB, renamed("Flour 00", None)),
    ])
    .when(UndoAction::Undo, 2, ALICE, UndoScope::AnyChange)
    .then(vec![renamed("Flour", Some(2))]);
}

#[test]
fn staff_may_redo_only_what_they_undid_themselves() {
    let events = || {
        [
            (1, ALICE, added(10, 3)),
            (2, BOB, sold(4, 6)),
            (3, ALICE, adjusted(4, 10, StockReason::Sold, Some(2))),
        ]
    };
    given(events())
        .when(UndoAction::Redo, 2, BOB, UndoScope::OwnStockAdjustments)
        .then_err(DomainError::UndoNotAllowed);
    given(events())
        .when(UndoAction::Redo, 2, ALICE, UndoScope::OwnStockAdjustments)
        .then(vec![adjusted(-4, 6, StockReason::Sold, Some(3))]);
}

// --- History -------------------------------------------------------------------

#[test]
fn the_history_folds_to_the_same_state_as_the_events() {
    let events = [
        added(10, 3),
        sold(8, 2),
        low(2, 3),
        renamed("Flour 00", None),
        renamed("Flour", Some(4)),
    ];
    let history = replay_history(events.iter().enumerate().map(|(i, event)| Recorded {
        id: ev(i as u128 + 1),
        actor: None,
        event: event.clone(),
    }));
    assert_eq!(history.state(), &replay(&events));
    assert_eq!(history.events().len(), events.len());
    assert_eq!(history.events()[4].event.undoes(), Some(ev(4)));
}

#[test]
fn a_redone_stock_count_blocks_again() {
    given([
        (1, ALICE, added(10, 3)),
        (2, ALICE, sold(4, 6)),
        (3, BOB, adjusted(-1, 5, StockReason::Counted, None)),
        (4, BOB, adjusted(1, 6, StockReason::Counted, Some(3))),
        (5, BOB, adjusted(-1, 5, StockReason::Counted, Some(4))),
    ])
    .undo(2)
    .then_err(DomainError::UndoConflict {
        event_id: ev(2),
        later: ev(5),
    });
}
