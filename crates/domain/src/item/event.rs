//! What happened to an item.

use serde::{Deserialize, Serialize};

use crate::ids::{EventId, ItemId, StoreId, TransferId};
use crate::item::StockReason;
#[cfg(doc)]
use crate::item::evolve;
use crate::values::{Delta, ItemName, Quantity, Sku, Threshold, Unit};

/// What happened to an item. Stored in the stream `item-{item_id}`.
///
/// `LowStock`, `OutOfStock` and `Restocked` are alerts: facts for consumers,
/// ignored by [`evolve`]. `TransferCompleted` is appended to both items of a
/// transfer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemEvent {
    /// An item was added to a store (or added again after removal).
    ItemAdded {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// Its SKU.
        sku: Sku,
        /// Its name.
        name: ItemName,
        /// Its unit.
        unit: Unit,
        /// Opening stock.
        quantity: Quantity,
        /// Low-stock threshold.
        threshold: Threshold,
    },
    /// Stock on hand changed.
    StockAdjusted {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// The change.
        delta: Delta,
        /// Stock on hand after the change.
        quantity: Quantity,
        /// Why.
        reason: StockReason,
        /// The user's note, if any.
        #[serde(default)]
        note: Option<String>,
        /// The change this one undoes (it is then its inverse), if any.
        #[serde(default)]
        undoes: Option<EventId>,
    },
    /// The low-stock threshold changed.
    ThresholdChanged {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// The new threshold.
        threshold: Threshold,
        /// The change this one undoes, if any.
        #[serde(default)]
        undoes: Option<EventId>,
    },
    /// The item got a new name.
    ItemRenamed {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// The new name.
        name: ItemName,
        /// The change this one undoes, if any.
        #[serde(default)]
        undoes: Option<EventId>,
    },
    /// The item is no longer stocked.
    ItemRemoved {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
    },
    /// Alert: the item became low (above zero, at or below its threshold).
    LowStock {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// Its SKU.
        sku: Sku,
        /// Stock on hand.
        quantity: Quantity,
        /// Its threshold.
        threshold: Threshold,
    },
    /// Alert: the item ran out.
    OutOfStock {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// Its SKU.
        sku: Sku,
    },
    /// Alert: the item was low or out and is in stock again.
    Restocked {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// Its SKU.
        sku: Sku,
        /// Stock on hand.
        quantity: Quantity,
        /// Its threshold.
        threshold: Threshold,
    },
    /// Stock moved from one item to another; appended, identical, to both.
    TransferCompleted {
        /// The transfer.
        transfer_id: TransferId,
        /// The source item's store.
        from_store: StoreId,
        /// The source item.
        from_item: ItemId,
        /// The destination item's store.
        to_store: StoreId,
        /// The destination item.
        to_item: ItemId,
        /// The source item's SKU (the destination's may differ).
        sku: Sku,
        /// How much moved.
        quantity: Quantity,
    },
}

impl ItemEvent {
    /// The item the event is about. For `TransferCompleted`, which is stored
    /// on both items, this is the source item (`from_item`); a caller storing
    /// it on the destination uses its own stream's id.
    pub fn item_id(&self) -> ItemId {
        match self {
            Self::ItemAdded { item_id, .. }
            | Self::StockAdjusted { item_id, .. }
            | Self::ThresholdChanged { item_id, .. }
            | Self::ItemRenamed { item_id, .. }
            | Self::ItemRemoved { item_id, .. }
            | Self::LowStock { item_id, .. }
            | Self::OutOfStock { item_id, .. }
            | Self::Restocked { item_id, .. } => *item_id,
            Self::TransferCompleted { from_item, .. } => *from_item,
        }
    }

    /// The store of the item the event is about; `from_store` for
    /// `TransferCompleted` (see [`ItemEvent::item_id`]).
    pub fn store_id(&self) -> StoreId {
        match self {
            Self::ItemAdded { store_id, .. }
            | Self::StockAdjusted { store_id, .. }
            | Self::ThresholdChanged { store_id, .. }
            | Self::ItemRenamed { store_id, .. }
            | Self::ItemRemoved { store_id, .. }
            | Self::LowStock { store_id, .. }
            | Self::OutOfStock { store_id, .. }
            | Self::Restocked { store_id, .. } => *store_id,
            Self::TransferCompleted { from_store, .. } => *from_store,
        }
    }

    /// The change this event undoes, for a compensating `StockAdjusted`,
    /// `ThresholdChanged` or `ItemRenamed`.
    pub fn undoes(&self) -> Option<EventId> {
        match self {
            Self::StockAdjusted { undoes, .. }
            | Self::ThresholdChanged { undoes, .. }
            | Self::ItemRenamed { undoes, .. } => *undoes,
            _ => None,
        }
    }

    /// `true` for `LowStock`, `OutOfStock` and `Restocked`.
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            Self::LowStock { .. } | Self::OutOfStock { .. } | Self::Restocked { .. }
        )
    }
}
