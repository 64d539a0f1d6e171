//! What a menu's stream says about it: its stations and items.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::MenuItemId;
use crate::menu::{MenuEvent, MenuItemName, Recipe, StationKey, StationName, StationTimers};
use crate::money::Money;

/// A kitchen station of a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Station {
    /// Its key.
    pub key: StationKey,
    /// Its display name.
    pub name: StationName,
    /// When its tickets turn amber and red.
    pub timers: StationTimers,
}

/// A dish or drink on a menu.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MenuItem {
    /// Its id.
    pub menu_item_id: MenuItemId,
    /// Its name.
    pub name: MenuItemName,
    /// Its price per portion.
    pub price: Money,
    /// The station preparing it.
    pub station: StationKey,
    /// What one portion takes from stock.
    pub recipe: Recipe,
    /// Whether it can be ordered.
    pub active: bool,
}

/// A menu item as an order line copies it: what the kitchen, the bill and
/// the stock need, fixed when the line is added. Built by
/// [`MenuState::line_item`], or given by a caller that read the menu.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MenuItemSnapshot {
    /// The menu item.
    pub menu_item_id: MenuItemId,
    /// Its name.
    pub name: MenuItemName,
    /// Its price per portion.
    pub unit_price: Money,
    /// The station preparing it.
    pub station: StationKey,
    /// What one portion takes from stock.
    pub recipe: Recipe,
}

/// What a menu's event stream says about it so far. The empty menu (no
/// station, no item) is the state of an empty stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MenuState {
    stations: BTreeMap<StationKey, Station>,
    items: BTreeMap<MenuItemId, MenuItem>,
}

impl MenuState {
    /// The stations, by key.
    pub fn stations(&self) -> impl Iterator<Item = &Station> {
        self.stations.values()
    }

    /// The station with this key.
    pub fn station(&self, key: &StationKey) -> Option<&Station> {
        self.stations.get(key)
    }

    /// The menu items, active or not, by id.
    pub fn items(&self) -> impl Iterator<Item = &MenuItem> {
        self.items.values()
    }

    /// The menu item with this id, active or not.
    pub fn item(&self, menu_item_id: MenuItemId) -> Option<&MenuItem> {
        self.items.get(&menu_item_id)
    }

    /// The order line copy of an orderable menu item:
    /// [`DomainError::MenuItemNotFound`] or [`DomainError::MenuItemInactive`]
    /// otherwise.
    pub fn line_item(&self, menu_item_id: MenuItemId) -> Result<MenuItemSnapshot, DomainError> {
        let item = self.require_item(menu_item_id)?;
        if !item.active {
            return Err(DomainError::MenuItemInactive { menu_item_id });
        }
        Ok(MenuItemSnapshot {
            menu_item_id,
            name: item.name.clone(),
            unit_price: item.price.clone(),
            station: item.station.clone(),
            recipe: item.recipe.clone(),
        })
    }

    pub(crate) fn station_count(&self) -> usize {
        self.stations.len()
    }

    pub(crate) fn item_count(&self) -> usize {
        self.items.len()
    }

    /// The station, or [`DomainError::UnknownStation`].
    pub(crate) fn require_station(&self, key: &StationKey) -> Result<&Station, DomainError> {
        self.stations
            .get(key)
            .ok_or_else(|| DomainError::UnknownStation {
                station: key.clone(),
            })
    }

    /// The menu item, or [`DomainError::MenuItemNotFound`].
    pub(crate) fn require_item(&self, menu_item_id: MenuItemId) -> Result<&MenuItem, DomainError> {
        self.items
            .get(&menu_item_id)
            .ok_or(DomainError::MenuItemNotFound { menu_item_id })
    }
}

/// Applies one event to a menu's state. Never fails: events are facts. An
/// event about an unknown menu item (which `decide` never produces) changes
/// nothing.
pub fn evolve(mut state: MenuState, event: &MenuEvent) -> MenuState {
    match event {
        MenuEvent::StationSet {
            station,
            name,
            timers,
            ..
        } => {
            state.stations.insert(
                station.clone(),
                Station {
                    key: station.clone(),
                    name: name.clone(),
                    timers: *timers,
                },
            );
        }
        MenuEvent::MenuItemAdded {
            menu_item_id,
            name,
            price,
            station,
            recipe,
            ..
        } => {
            state.items.insert(
                *menu_item_id,
                MenuItem {
                    menu_item_id: *menu_item_id,
                    name: name.clone(),
                    price: price.clone(),
                    station: station.clone(),
                    recipe: recipe.clone(),
                    active: true,
                },
            );
        }
        MenuEvent::MenuItemChanged {
            menu_item_id,
            name,
            price,
            station,
            recipe,
            ..
        } => {
            if let Some(item) = state.items.get_mut(menu_item_id) {
                item.name = name.clone();
                item.price = price.clone();
                item.station = station.clone();
                item.recipe = recipe.clone();
            }
        }
        MenuEvent::MenuItemActivated { menu_item_id, .. } => {
            if let Some(item) = state.items.get_mut(menu_item_id) {
                item.active = true;
            }
        }
        MenuEvent::MenuItemDeactivated { menu_item_id, .. } => {
            if let Some(item) = state.items.get_mut(menu_item_id) {
                item.active = false;
            }
        }
    }
    state
}

/// Folds a menu's stream, oldest first, into its current state.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a MenuEvent>) -> MenuState {
    events.into_iter().fold(MenuState::default(), evolve)
}
