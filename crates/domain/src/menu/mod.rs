//! The menu aggregate: a store's kitchen stations and the dishes and drinks
//! it sells, each with a price, the station that prepares it and a recipe.
//!
//! A store has one menu, in the stream `menu-{store_id}` ([`MenuId`] is the
//! store's UUID). It needs no creation: the first station set on it starts
//! the stream. Orders do not read the menu: the till copies a menu item into
//! an order line ([`MenuState::line_item`]), so an order keeps the price and
//! recipe it was taken with.
//!
//! # Layout
//!
//! - `values`: [`StationKey`], [`StationName`], [`StationTimers`],
//!   [`MenuItemName`], [`PerPortion`], [`Ingredient`], [`Recipe`],
//!   [`StockUse`].
//! - `state`: [`MenuState`], [`Station`], [`MenuItem`], [`MenuItemSnapshot`],
//!   [`evolve`] and [`replay`].
//! - `command`: [`MenuCommand`].
//! - `event`: [`MenuEvent`].
//! - `decide`: [`decide`].
//!
//! [`MenuId`]: crate::MenuId

mod command;
mod decide;
mod event;
mod state;
mod values;

#[cfg(test)]
mod tests;

pub use command::MenuCommand;
pub use decide::{MAX_MENU_ITEMS, MAX_STATIONS, decide};
pub use event::MenuEvent;
pub use state::{MenuItem, MenuItemSnapshot, MenuState, Station, evolve, replay};
pub use values::{
    Ingredient, MAX_PER_PORTION, MAX_RECIPE_INGREDIENTS, MenuItemName, PerPortion, Recipe,
    StationKey, StationName, StationTimers, StockUse,
};
