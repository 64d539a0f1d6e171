//! What an item's stream says about it: its state, folded from its events.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{ItemId, StoreId};
use crate::item::ItemEvent;
use crate::values::{ItemName, Quantity, Sku, Threshold, Unit};

/// How an item's stock compares with its threshold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockStatus {
    /// More than the threshold on hand.
    InStock,
    /// Above zero, at or below the threshold.
    Low,
    /// Nothing on hand.
    Out,
}

impl StockStatus {
    /// `Out` if `quantity == 0`, `Low` if `0 < quantity <= threshold`,
    /// `InStock` otherwise.
    ///
    /// ```
    /// use larder_domain::{Quantity, StockStatus, Threshold};
    ///
    /// let status = |q, t| StockStatus::of(Quantity::parse(q).unwrap(), Threshold::parse(t).unwrap());
    /// assert_eq!(status(0, 5), StockStatus::Out);
    /// assert_eq!(status(5, 5), StockStatus::Low);
    /// assert_eq!(status(6, 5), StockStatus::InStock);
    /// ```
    pub fn of(quantity: Quantity, threshold: Threshold) -> StockStatus {
        if quantity.is_zero() {
            StockStatus::Out
        } else if quantity.get() <= threshold.get() {
            StockStatus::Low
        } else {
            StockStatus::InStock
        }
    }
}

/// What an item's event stream says about it so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ItemState {
    /// The stream is empty.
    #[default]
    NotAdded,
    /// Stocked by its store.
    Active {
        /// The store the item belongs to.
        store_id: StoreId,
        /// Its SKU, unique within the store.
        sku: Sku,
        /// Its display name.
        name: ItemName,
        /// What its quantity counts.
        unit: Unit,
        /// Stock on hand.
        quantity: Quantity,
        /// At or below this (and above zero) the item is low.
        threshold: Threshold,
    },
    /// Removed from the store; `AddItem` brings it back on the same stream.
    Removed {
        /// The store the item belonged to.
        store_id: StoreId,
        /// Its SKU.
        sku: Sku,
        /// Its name when removed.
        name: ItemName,
        /// Its unit when removed.
        unit: Unit,
        /// Stock on hand when removed.
        quantity: Quantity,
        /// Its threshold when removed.
        threshold: Threshold,
    },
}

/// The fields of an active item that decisions read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ActiveItem<'a> {
    pub(crate) item_id: ItemId,
    pub(crate) store_id: StoreId,
    pub(crate) sku: &'a Sku,
    pub(crate) name: &'a ItemName,
    pub(crate) quantity: Quantity,
    pub(crate) threshold: Threshold,
}

impl ItemState {
    /// The item's stock status while it is active, `None` otherwise.
    pub fn status(&self) -> Option<StockStatus> {
        match self {
            Self::Active {
                quantity,
                threshold,
                ..
            } => Some(StockStatus::of(*quantity, *threshold)),
            Self::NotAdded | Self::Removed { .. } => None,
        }
    }

    /// `true` when the item has been added and not removed.
    pub fn is_active(&self) -> bool {
        matches!(self, Self::Active { .. })
    }

    /// The store the item belongs (or belonged) to.
    pub fn store_id(&self) -> Option<StoreId> {
        match self {
            Self::NotAdded => None,
            Self::Active { store_id, .. } | Self::Removed { store_id, .. } => Some(*store_id),
        }
    }

    /// The item's SKU, once added.
    pub fn sku(&self) -> Option<&Sku> {
        match self {
            Self::NotAdded => None,
            Self::Active { sku, .. } | Self::Removed { sku, .. } => Some(sku),
        }
    }

    /// Stock on hand while the item is active.
    pub fn quantity(&self) -> Option<Quantity> {
        match self {
            Self::Active { quantity, .. } => Some(*quantity),
            Self::NotAdded | Self::Removed { .. } => None,
        }
    }

    /// The active item, [`DomainError::ItemNotFound`] if it was never added or
    /// [`DomainError::ItemRemoved`] if it was removed.
    pub(crate) fn require_active(&self, item_id: ItemId) -> Result<ActiveItem<'_>, DomainError> {
        match self {
            Self::NotAdded => Err(DomainError::ItemNotFound { item_id }),
            Self::Removed { .. } => Err(DomainError::ItemRemoved { item_id }),
            Self::Active {
                store_id,
                sku,
                name,
                quantity,
                threshold,
                ..
            } => Ok(ActiveItem {
                item_id,
                store_id: *store_id,
                sku,
                name,
                quantity: *quantity,
                threshold: *threshold,
            }),
        }
    }
}

/// Applies one event to an item's state. Never fails: events are facts.
///
/// Alerts and `TransferCompleted` change nothing (the quantities moved by a
/// transfer are in its `StockAdjusted` events). An event that does not fit the
/// state (which `decide` never produces) leaves the state unchanged.
pub fn evolve(state: ItemState, event: &ItemEvent) -> ItemState {
    match (state, event) {
        (
            ItemState::NotAdded | ItemState::Removed { .. },
            ItemEvent::ItemAdded {
                store_id,
                sku,
                name,
                unit,
                quantity,
                threshold,
                ..
            },
        ) => ItemState::Active {
            store_id: *store_id,
            sku: sku.clone(),
            name: name.clone(),
            unit: unit.clone(),
            quantity: *quantity,
            threshold: *threshold,
        },
        (
            mut state @ ItemState::Active { .. },
            ItemEvent::StockAdjusted {
                quantity: new_quantity,
                ..
            },
        ) => {
            if let ItemState::Active { quantity, .. } = &mut state {
                *quantity = *new_quantity;
            }
            state
        }
        (
            mut state @ ItemState::Active { .. },
            ItemEvent::ThresholdChanged {
                threshold: new_threshold,
                ..
            },
        ) => {
            if let ItemState::Active { threshold, .. } = &mut state {
                *threshold = *new_threshold;
            }
            state
        }
        (mut state @ ItemState::Active { .. }, ItemEvent::ItemRenamed { name: new_name, .. }) => {
            if let ItemState::Active { name, .. } = &mut state {
                *name = new_name.clone();
            }
            state
        }
        (
            ItemState::Active {
                store_id,
                sku,
                name,
                unit,
                quantity,
                threshold,
            },
            ItemEvent::ItemRemoved { .. },
        ) => ItemState::Removed {
            store_id,
            sku,
            name,
            unit,
            quantity,
            threshold,
        },
        (state, _) => state,
    }
}

/// Folds an item's stream, oldest first, into its current state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a ItemEvent>) -> ItemState {
    events.into_iter().fold(ItemState::NotAdded, evolve)
}
