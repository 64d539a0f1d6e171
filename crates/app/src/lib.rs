//! Larder's application layer: the one command pipeline between the domain
//! and the server.
//!
//! Every command, whatever its aggregate, goes through [`App::execute`]:
//! load the aggregate's state (cached, else read and fold its stream),
//! decide with the domain's rules, append with the version it decided on,
//! retry a bounded number of times when another writer got there first, and
//! answer with the stream's version and the global position written. An
//! aggregate implements [`Aggregate`] once and adds nothing to the pipeline,
//! the way cqrs-es's `CqrsFramework::execute` serves any aggregate. A
//! command on several aggregates (a stock transfer) decides on all their
//! states, appends to all their streams at once and retries in the same
//! loop.
//!
//! The translation between domain events and stored events is
//! `larder-codec`'s, shared with the read models.
//!
//! # Layout
//!
//! - `aggregate`: the [`Aggregate`] trait, implemented for stores
//!   (`StoreState`), items (`ItemState`) and an item's recorded history
//!   (`ItemHistory`: undo and redo, decided on which events exist and who
//!   wrote them, see [`EventMeta`]), menus (`MenuState`) and orders
//!   (`OrderState`).
//! - `pipeline`: [`App`], [`App::execute`] and the bounded retry loop every
//!   command runs in; [`Request`] and [`Outcome`].
//! - `order_stock`: the process manager by which stock follows orders
//!   ([`OrderStock`]): fired lines become `sold` adjustments, lines voided
//!   or cancelled before they were started `returned` ones, exactly once.
//! - [`consumer`]: the checkpointed consumer of the log that both process
//!   managers run on ([`consumer::Consumer`], [`consumer::Handler`]).
//! - [`notify`]: notifications from the log ([`notify::Notifier`]): the
//!   rules (low stock, restocked, order ready, order waiting, transfers),
//!   delivery to the users of the directory, and broadcasts.
//! - `menu`: a store's menu ([`App::menu`]) and menu commands whose
//!   recipes must list active items of the store ([`App::menu_command`]).
//! - `orders`: opening orders, adding lines copied from the menu
//!   ([`App::add_line`]), the other order commands, reading an order
//!   ([`App::order`]) and its total ([`order_total`]).
//! - `transfer`: stock transfers between two items, once per transfer id.
//! - `cache`: folded states kept between commands, per-stream turns.
//! - `context`: [`Context`], who issues a command, passed through as one value.
//! - `idempotency`: [`IdempotencyKey`]s, stored with a command's events;
//!   a retry answers what the first request did.
//! - `lifecycle`: [`Lifecycle`], told when a command enters the pipeline.
//! - `error`: [`AppError`], why a command did not take effect.

mod aggregate;
mod cache;
pub mod consumer;
mod context;
mod error;
mod idempotency;
mod lane;
mod lifecycle;
mod menu;
pub mod notify;
mod order_stock;
mod orders;
mod pipeline;
mod transfer;

#[cfg(test)]
mod notify_tests;
#[cfg(test)]
mod order_stock_tests;
#[cfg(test)]
mod order_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod undo_tests;

pub use aggregate::{Aggregate, EventMeta};
pub use context::Context;
pub use error::AppError;
pub use idempotency::IdempotencyKey;
pub use lifecycle::Lifecycle;
pub use menu::Versioned;
pub use notify::Notifier;
pub use order_stock::{
    ACTOR as ORDER_STOCK_ACTOR, Followed, OrderStock, StockMove, StockMoveKind, follow, stock_moves,
};
pub use orders::{NewLine, order_total};
pub use pipeline::{App, Outcome, PATIENCE, RETRIES, Request};
pub use transfer::Transferred;
