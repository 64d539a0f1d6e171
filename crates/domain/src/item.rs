//! The item aggregate: one SKU of one store, its stock and its low-stock alerts.
//!
//! An item's id is derived from its store and SKU ([`ItemId::for_sku`]), so the
//! item's own stream is what keeps SKUs unique per store. Stock alerts
//! (`LowStock`, `OutOfStock`, `Restocked`) are decided together with the
//! change that caused them and appended right after it, so a consumer sees the
//! cause and the alert at consecutive positions of the same stream.

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{ItemId, StoreId, TransferId};
use crate::store::StoreState;
use crate::values::{Delta, ItemName, Quantity, Sku, Threshold, Unit, parse_note};

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

/// Why stock was adjusted by hand (the reasons a user may give).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdjustReason {
    /// A delivery came in.
    Received,
    /// Sold or used in service.
    Sold,
    /// Spoiled, dropped or thrown away.
    Wasted,
    /// A stock count found a difference.
    Counted,
    /// Fixing an earlier mistake.
    Correction,
}

/// Why stock changed, as recorded in `StockAdjusted`: the [`AdjustReason`]s
/// plus the two sides of a transfer, which only the domain produces.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StockReason {
    /// A delivery came in.
    Received,
    /// Sold or used in service.
    Sold,
    /// Spoiled, dropped or thrown away.
    Wasted,
    /// A stock count found a difference.
    Counted,
    /// Fixing an earlier mistake.
    Correction,
    /// Stock arrived from another item by transfer.
    TransferIn,
    /// Stock left for another item by transfer.
    TransferOut,
}

impl From<AdjustReason> for StockReason {
    fn from(reason: AdjustReason) -> Self {
        match reason {
            AdjustReason::Received => Self::Received,
            AdjustReason::Sold => Self::Sold,
            AdjustReason::Wasted => Self::Wasted,
            AdjustReason::Counted => Self::Counted,
            AdjustReason::Correction => Self::Correction,
        }
    }
}

/// What a user asks of an item.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ItemCommand {
    /// Start stocking a SKU in a store (or again, after it was removed). Must
    /// be addressed to [`ItemId::for_sku`]`(store_id, sku)`.
    AddItem {
        /// The store to stock it in.
        store_id: StoreId,
        /// Its SKU.
        sku: Sku,
        /// Its display name.
        name: ItemName,
        /// What its quantity counts.
        unit: Unit,
        /// Opening stock.
        quantity: Quantity,
        /// Low-stock threshold.
        threshold: Threshold,
    },
    /// Change the stock on hand by `delta`.
    AdjustStock {
        /// How much to add (positive) or take out (negative).
        delta: Delta,
        /// Why.
        reason: AdjustReason,
        /// Free text, at most [`crate::MAX_NOTE_CHARS`] characters; trimmed,
        /// blank means none.
        #[serde(default)]
        note: Option<String>,
    },
    /// Change the low-stock threshold.
    SetThreshold {
        /// The new threshold.
        threshold: Threshold,
    },
    /// Give the item another name.
    RenameItem {
        /// The new name.
        name: ItemName,
    },
    /// Stop stocking the item.
    RemoveItem,
}

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
    },
    /// The low-stock threshold changed.
    ThresholdChanged {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// The new threshold.
        threshold: Threshold,
    },
    /// The item got a new name.
    ItemRenamed {
        /// The item.
        item_id: ItemId,
        /// Its store.
        store_id: StoreId,
        /// The new name.
        name: ItemName,
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

    /// `true` for `LowStock`, `OutOfStock` and `Restocked`.
    pub fn is_alert(&self) -> bool {
        matches!(
            self,
            Self::LowStock { .. } | Self::OutOfStock { .. } | Self::Restocked { .. }
        )
    }
}

/// The alert owed when an item's status goes from `before` to what `quantity`
/// and `threshold` make it now, if it changed.
fn alert(
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
            adjust(&active, delta, reason.into(), parse_note(note)?)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{self, StoreEvent};
    use crate::test_support::{
        Then, item_added, item_id_of, item_name, other_store_id, q, sku, store_created, store_id,
        t, tenant, unit,
    };

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
}
