//! What a user asks of an item, and why stock changes.

use serde::{Deserialize, Serialize};

use crate::ids::StoreId;
use crate::values::{Delta, ItemName, Quantity, Sku, Threshold, Unit};

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
/// plus the two sides of a transfer, which only the domain produces, and
/// stock an order gave back, which only the order-to-stock process manager
/// produces ([`ItemCommand::ReturnStock`]).
///
/// New reasons are only ever added: an event recorded before one existed
/// decodes unchanged.
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
    /// An order line that had taken the stock when it was fired was voided
    /// or cancelled before the kitchen started it: the stock went back.
    Returned,
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
    /// Put back stock an order line took when it was fired, because the
    /// line was voided or its order cancelled before the kitchen started it.
    /// Recorded with [`StockReason::Returned`]; not one of the reasons a
    /// user may give by hand (only the order-to-stock process manager
    /// issues it).
    ReturnStock {
        /// How much goes back: above zero.
        delta: Delta,
        /// Free text, as for [`ItemCommand::AdjustStock`].
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
