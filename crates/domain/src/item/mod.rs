//! The item aggregate: one SKU of one store, its stock and its low-stock alerts.
//!
//! An item's id is derived from its store and SKU ([`ItemId::for_sku`]), so the
//! item's own stream is what keeps SKUs unique per store. Stock alerts
//! (`LowStock`, `OutOfStock`, `Restocked`) are decided together with the
//! change that caused them and appended right after it, so a consumer sees the
//! cause and the alert at consecutive positions of the same stream.

//!
//! # Layout
//!
//! - `state`: [`ItemState`], [`StockStatus`], [`evolve`] and [`replay`].
//! - `command`: [`ItemCommand`] and the reasons for a stock change.
//! - `event`: [`ItemEvent`].
//! - `decide`: [`decide`], the alerts a change owes, and the stock
//!   adjustment shared with transfers.
//! - [`undo`]: undo and redo of a change as a compensating event, decided
//!   on the item's recorded stream ([`ItemHistory`]).

mod command;
mod decide;
mod event;
mod state;
pub mod undo;

#[cfg(test)]
mod returned_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod undo_tests;

pub use command::{AdjustReason, ItemCommand, StockReason};
pub use decide::decide;
pub(crate) use decide::{adjust, require_active_in};
pub use event::ItemEvent;
pub(crate) use state::ActiveItem;
pub use state::{ItemState, StockStatus, evolve, replay};
pub use undo::{ItemHistory, Recorded, UndoAction, UndoChange, UndoScope};
