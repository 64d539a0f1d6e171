//! Given / when / then tests of stock an order gives back
//! ([`ItemCommand::ReturnStock`]).

use super::*;
use crate::error::DomainError;
use crate::store;
use crate::test_support::{Then, item_added, item_id_of, q, store_created, store_id, tenant};
use crate::values::Delta;

fn when(quantity: i64, threshold: i64, delta: i64) -> Then<Vec<ItemEvent>> {
    let store = store::replay(&[store_created(store_id(), tenant())]);
    let item = replay(&[item_added(store_id(), "BEEF", quantity, threshold)]);
    let command = ItemCommand::ReturnStock {
        delta: Delta::parse(delta).unwrap(),
        note: None,
    };
    Then::new(decide(
        &store,
        &item,
        item_id_of(store_id(), "BEEF"),
        command,
    ))
}

fn returned(delta: i64, quantity: i64) -> ItemEvent {
    ItemEvent::StockAdjusted {
        item_id: item_id_of(store_id(), "BEEF"),
        store_id: store_id(),
        delta: Delta::parse(delta).unwrap(),
        quantity: q(quantity),
        reason: StockReason::Returned,
        note: None,
        undoes: None,
    }
}

#[test]
fn returning_stock_adds_it_with_the_returned_reason() {
    when(10, 2, 3).then(vec![returned(3, 13)]);
}

#[test]
fn returning_stock_to_an_item_that_was_out_raises_the_alert_it_owes() {
    when(0, 2, 5).then(vec![
        returned(5, 5),
        ItemEvent::Restocked {
            item_id: item_id_of(store_id(), "BEEF"),
            store_id: store_id(),
            sku: crate::test_support::sku("BEEF"),
            quantity: q(5),
            threshold: crate::test_support::t(2),
        },
    ]);
}

#[test]
fn returning_a_negative_quantity_is_rejected() {
    when(10, 2, -3).then_err(DomainError::InvalidDelta {
        field: "delta",
        reason: "returned stock must be above zero",
    });
}

#[test]
fn the_returned_reason_is_stored_as_returned_and_read_back() {
    let json = serde_json::to_string(&StockReason::Returned).unwrap();
    assert_eq!(json, "\"returned\"");
    let old: StockReason = serde_json::from_str("\"transfer_out\"").unwrap();
    assert_eq!(old, StockReason::TransferOut);
}
