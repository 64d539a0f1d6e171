//! The order aggregate: an order taken at a store's till, its lines cooked
//! at the kitchen's stations, bumped at the pass, served and completed (or
//! cancelled).
//!
//! An order is in the stream `order-{order_id}`; the id is chosen by the
//! caller. It lives within a store (every command needs the store open).
//! Each line is a copy of a menu item ([`crate::MenuItemSnapshot`]) with a
//! quantity, modifiers, a note and a course. `OrderFired` lists, per line, the
//! stock it takes; `OrderLineVoided` and `OrderCancelled` list the stock given
//! back by lines fired but not started. `OrderReady` is decided with the line
//! event that made every line ready and appended right after it.
//!
//! # Layout
//!
//! - `values`: [`Service`], [`TableLabel`], [`Covers`], [`LineQuantity`],
//!   [`Modifier`], [`Course`], [`CancelReason`].
//! - `state`: [`OrderState`], [`Order`], [`OrderLine`], [`OrderStatus`],
//!   [`LineStatus`], [`evolve`] and [`replay`].
//! - `command`: [`OrderCommand`].
//! - `event`: [`OrderEvent`], [`FiredLine`], [`ReturnedLine`], [`RecalledTo`].
//! - `decide`: [`decide`].

mod command;
mod decide;
mod event;
mod state;
mod values;

#[cfg(test)]
mod refusals_tests;
#[cfg(test)]
mod tests;

pub use command::OrderCommand;
pub use decide::{MAX_LINES, decide};
pub use event::{FiredLine, OrderEvent, RecalledTo, ReturnedLine};
pub use state::{LineStatus, Order, OrderLine, OrderState, OrderStatus, evolve, replay};
pub use values::{
    CancelReason, Course, Covers, LineQuantity, MAX_LINE_QUANTITY, MAX_MODIFIERS, Modifier,
    Service, TableLabel,
};
