//! Larder's domain: stores, items, stock transfers, menus and orders as pure
//! functions over events.
//!
//! Larder is an event-sourced inventory backend for restaurant groups and
//! retail chains. This crate holds the rules and nothing else: no IO, no async,
//! no clock, no randomness. Ids are passed in by the caller; the one derived id
//! is [`ItemId::for_sku`], which makes each item's stream keep its SKU unique
//! within its store.
//!
//! Every aggregate is a pair of functions, after cqrs-es:
//!
//! - `decide(state, command) -> Result<Vec<Event>, DomainError>` holds all
//!   business logic and never changes state;
//! - `evolve(state, &event) -> state` applies a fact and never fails.
//!
//! A caller loads a stream, folds it with `replay` (or `evolve`), calls
//! `decide`, and appends the events at the version it read. Stock alerts
//! (`LowStock`, `OutOfStock`, `Restocked`) come out of the same decision as the
//! change that caused them, after it.
//!
//! ```
//! use larder_domain::{
//!     item, store, AdjustReason, Delta, ItemCommand, ItemEvent, ItemId, ItemName,
//!     Quantity, Sku, StoreCommand, StoreId, StoreName, TenantId, Threshold, Unit,
//! };
//! use uuid::Uuid;
//!
//! let store_id = StoreId::new(Uuid::from_u128(1));
//! let created = store::decide(
//!     &store::StoreState::NotCreated,
//!     StoreCommand::CreateStore {
//!         store_id,
//!         tenant: TenantId::parse("acme")?,
//!         name: StoreName::parse("Soho Kitchen")?,
//!     },
//! )?;
//! let store = store::replay(&created);
//!
//! let sku = Sku::parse("flour-00")?;
//! let item_id = ItemId::for_sku(store_id, &sku);
//! let added = item::decide(&store, &item::ItemState::NotAdded, item_id, ItemCommand::AddItem {
//!     store_id,
//!     sku,
//!     name: ItemName::parse("Flour 00")?,
//!     unit: Unit::parse("kg")?,
//!     quantity: Quantity::parse(10)?,
//!     threshold: Threshold::parse(3)?,
//! })?;
//! let flour = item::replay(&added);
//!
//! let sold = item::decide(&store, &flour, item_id, ItemCommand::AdjustStock {
//!     delta: Delta::parse(-8)?,
//!     reason: AdjustReason::Sold,
//!     note: None,
//! })?;
//! assert!(matches!(sold[..], [ItemEvent::StockAdjusted { .. }, ItemEvent::LowStock { .. }]));
//! # Ok::<(), larder_domain::DomainError>(())
//! ```
//!
//! # Layout
//!
//! - `ids`: [`TenantId`], [`StoreId`], [`ItemId`], [`TransferId`],
//!   [`EventId`], [`MenuId`], [`MenuItemId`], [`OrderId`], [`LineId`].
//! - `values`: [`StoreName`], [`ItemName`], [`Sku`], [`Unit`], [`Quantity`],
//!   [`Threshold`], [`Delta`]; each parses once and cannot hold a bad value.
//! - `money`: [`Currency`] and [`Money`] (minor units).
//! - [`store`]: the store aggregate ([`StoreState`], [`StoreCommand`],
//!   [`StoreEvent`], `store::decide` / `store::evolve`).
//! - [`item`]: the item aggregate and its stock alerts ([`ItemState`],
//!   [`StockStatus`], [`ItemCommand`], [`ItemEvent`], `item::decide` /
//!   `item::evolve`), and undo / redo of its changes as compensating events
//!   ([`ItemHistory`], [`UndoChange`], `item::undo::decide`).
//! - [`transfer`]: moving stock between two items ([`TransferStock`],
//!   `transfer::decide`).
//! - [`menu`]: a store's menu: kitchen stations and menu items with price,
//!   station and recipe ([`MenuState`], [`MenuCommand`], [`MenuEvent`],
//!   `menu::decide` / `menu::evolve`).
//! - [`order`]: an order from the till to the pass ([`OrderState`],
//!   [`OrderCommand`], [`OrderEvent`], `order::decide` / `order::evolve`).
//! - [`inbox`]: a user's inbox of notifications, with preferences and
//!   deduplication of alerts ([`InboxState`], [`InboxCommand`],
//!   [`InboxEvent`], `inbox::decide` / `inbox::evolve`).
//! - `event`: [`DomainEvent`], its stable type names, schema versions, JSON
//!   payloads and decoding (with upcasting).
//! - `error`: [`DomainError`] with a stable [`DomainError::code`], and
//!   [`DecodeError`].
//!
//! `store`, `item`, `transfer`, `menu`, `order` and `inbox` are public because their functions are
//! called by path (`item::decide`); every type is also re-exported here.
//! The event catalog for users is `docs/events.md`.

mod error;
mod event;
mod ids;
pub mod inbox;
pub mod item;
pub mod menu;
mod money;
pub mod order;
pub mod store;
pub mod transfer;
mod values;

#[cfg(test)]
mod test_support;

pub use error::{DecodeError, DomainError};
pub use event::DomainEvent;
pub use ids::{
    EventId, InboxId, ItemId, LineId, MenuId, MenuItemId, NotificationId, OrderId, StoreId,
    TenantId, TransferId,
};
pub use inbox::{
    AlertKey, Body, InboxCommand, InboxEvent, InboxState, Notification, NotificationKind,
    Preference, Priority, Subject, SubjectType, Title, UserId,
};
pub use item::{
    AdjustReason, ItemCommand, ItemEvent, ItemHistory, ItemState, Recorded, StockReason,
    StockStatus, UndoAction, UndoChange, UndoScope,
};
pub use menu::{
    Ingredient, MenuCommand, MenuEvent, MenuItem, MenuItemName, MenuItemSnapshot, MenuState,
    PerPortion, Recipe, Station, StationKey, StationName, StationTimers, StockUse,
};
pub use money::{Currency, Money};
pub use order::{
    CancelReason, Course, Covers, FiredLine, LineQuantity, LineStatus, Modifier, Order,
    OrderCommand, OrderEvent, OrderLine, OrderState, OrderStatus, RecalledTo, ReturnedLine,
    Service, TableLabel,
};
pub use store::{StoreCommand, StoreEvent, StoreState};
pub use transfer::TransferStock;
pub use values::{Delta, ItemName, MAX_NOTE_CHARS, Quantity, Sku, StoreName, Threshold, Unit};
