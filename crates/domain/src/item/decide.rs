//! Deciding what a command does to an item, and the alerts a change owes.

use crate::error::DomainError;
use crate::ids::{EventId, ItemId};
use crate::item::{ActiveItem, ItemCommand, ItemEvent, ItemState, StockReason, StockStatus};
use crate::store::StoreState;
use crate::values::{Delta, Quantity, Threshold, parse_note};

/// The alert owed when an item's status goes from `before` to what `quantity`
/// and `threshold` make it now, if it changed.
pub(crate) fn alert(
    item: &ActiveItem<'_>,
    before: StockStatus,
    quantity: Quantity,
    threshold: Threshold,
) -> Option<ItemEvent> {
    let after = StockStatus::of(quantity, threshold);
    if after == before {
        return None;
    }
    let (item_id, store_id, sku) = (item.item_id, item.store_id, item.sku.clone());
    Some(match after {
        StockStatus::Low => ItemEvent::LowStock {
            item_id,
            store_id,
            sku,
            quantity,
            threshold,
        },
        StockStatus::Out => ItemEvent::OutOfStock {
            item_id,
            store_id,
            sku,
        },
        StockStatus::InStock => ItemEvent::Restocked {
            item_id,
            store_id,
            sku,
            quantity,
            threshold,
        },
    })
}

/// `StockAdjusted` and the alert it causes, if any. Shared with transfers.
pub(crate) fn adjust(
    item: &ActiveItem<'_>,
    delta: Delta,
    reason: StockReason,
    note: Option<String>,
    undoes: Option<EventId>,
) -> Result<Vec<ItemEvent>, DomainError> {
    let quantity = item.quantity.apply(delta)?;
    let before = StockStatus::of(item.quantity, item.threshold);
    let mut events = vec![ItemEvent::StockAdjusted {
        item_id: item.item_id,
        store_id: item.store_id,
        delta,
        quantity,
        reason,
        note,
        undoes,
    }];
    events.extend(alert(item, before, quantity, item.threshold));
    Ok(events)
}

/// Checks that the store is open and that the item is active and belongs to it.
pub(crate) fn require_active_in<'a>(
    store: &StoreState,
    item: &'a ItemState,
    item_id: ItemId,
) -> Result<ActiveItem<'a>, DomainError> {
    let open_store = store.require_open()?;
    let active = item.require_active(item_id)?;
    if active.store_id != open_store {
        return Err(DomainError::StoreMismatch {
            expected: active.store_id,
            actual: open_store,
        });
    }
    Ok(active)
}

/// Decides what a command does to an item: the events to append to
/// `item-{item_id}`, or why not.
///
/// `store` is the state of the item's store (for `AddItem`, of the store the
/// command names), `item` the state of the stream `item-{item_id}`. The store
/// must exist and be open for every command. Changes of stock status append
/// the matching alert after the change (see the crate docs).
pub fn decide(
    store: &StoreState,
    item: &ItemState,
    item_id: ItemId,
    cmd: ItemCommand,
) -> Result<Vec<ItemEvent>, DomainError> {
    match cmd {
        ItemCommand::AddItem {
            store_id,
            sku,
            name,
            unit,
            quantity,
            threshold,
        } => {
            let open_store = store.require_open()?;
            if store_id != open_store {
                return Err(DomainError::StoreMismatch {
                    expected: store_id,
                    actual: open_store,
                });
            }
            let expected = ItemId::for_sku(store_id, &sku);
            if item_id != expected {
                return Err(DomainError::ItemIdMismatch {
                    expected,
                    actual: item_id,
                });
            }
            if item.is_active() {
                return Err(DomainError::SkuAlreadyExists { sku });
            }
            // No alert: the opening status is implicit in quantity and
            // threshold, and there was no previous status to change from.
            Ok(vec![ItemEvent::ItemAdded {
                item_id,
                store_id,
                sku,
                name,
                unit,
                quantity,
                threshold,
            }])
        }
        ItemCommand::AdjustStock {
            delta,
            reason,
            note,
        } => {
            let active = require_active_in(store, item, item_id)?;
            adjust(&active, delta, reason.into(), parse_note(note)?, None)
        }
        ItemCommand::ReturnStock { delta, note } => {
            if delta.get() < 0 {
                return Err(DomainError::InvalidDelta {
                    field: "delta",
                    reason: "returned stock must be above zero",
                });
            }
            let active = require_active_in(store, item, item_id)?;
            adjust(
                &active,
                delta,
                StockReason::Returned,
                parse_note(note)?,
                None,
            )
        }
        ItemCommand::SetThreshold { threshold } => {
            let active = require_active_in(store, item, item_id)?;
            if threshold == active.threshold {
                return Ok(vec![]);
            }
            let before = StockStatus::of(active.quantity, active.threshold);
            let mut events = vec![ItemEvent::ThresholdChanged {
                item_id,
                store_id: active.store_id,
                threshold,
                undoes: None,
            }];
            events.extend(alert(&active, before, active.quantity, threshold));
            Ok(events)
        }
        ItemCommand::RenameItem { name } => {
            let active = require_active_in(store, item, item_id)?;
            if &name == active.name {
                return Ok(vec![]);
            }
            Ok(vec![ItemEvent::ItemRenamed {
                item_id,
                store_id: active.store_id,
                name,
                undoes: None,
            }])
        }
        ItemCommand::RemoveItem => {
            let active = require_active_in(store, item, item_id)?;
            Ok(vec![ItemEvent::ItemRemoved {
                item_id,
                store_id: active.store_id,
            }])
        }
    }
}
