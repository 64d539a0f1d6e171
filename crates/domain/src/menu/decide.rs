//! Deciding what a command does to a menu.

use crate::error::DomainError;
use crate::ids::{MenuId, StoreId};
use crate::menu::{MenuCommand, MenuEvent, MenuState};
use crate::store::StoreState;

/// The most stations a menu has: every screen of a kitchen, with room.
pub const MAX_STATIONS: usize = 32;
/// The most items a menu holds, active or not.
pub const MAX_MENU_ITEMS: usize = 1_000;

/// Checks that the store is open and is the one the menu belongs to.
fn require_store(store: &StoreState, menu_id: MenuId) -> Result<StoreId, DomainError> {
    let open_store = store.require_open()?;
    if open_store != menu_id.store_id() {
        return Err(DomainError::StoreMismatch {
            expected: menu_id.store_id(),
            actual: open_store,
        });
    }
    Ok(open_store)
}

/// Decides what a command does to a menu: the events to append to
/// `menu-{menu_id}`, or why not.
///
/// `store` is the state of the menu's store ([`MenuId::store_id`]); it must
/// exist and be open. A command that would change nothing (setting a station
/// to what it is, activating an active item) returns `Ok(vec![])`.
pub fn decide(
    store: &StoreState,
    menu: &MenuState,
    menu_id: MenuId,
    cmd: MenuCommand,
) -> Result<Vec<MenuEvent>, DomainError> {
    let store_id = require_store(store, menu_id)?;
    match cmd {
        MenuCommand::SetStation {
            station,
            name,
            timers,
        } => {
            match menu.station(&station) {
                Some(current) if current.name == name && current.timers == timers => {
                    return Ok(vec![]);
                }
                None if menu.station_count() >= MAX_STATIONS => {
                    return Err(DomainError::LimitReached {
                        what: "stations per menu",
                        max: MAX_STATIONS,
                    });
                }
                _ => {}
            }
            Ok(vec![MenuEvent::StationSet {
                store_id,
                station,
                name,
                timers,
            }])
        }
        MenuCommand::AddMenuItem {
            menu_item_id,
            name,
            price,
            station,
            recipe,
        } => {
            if menu.item(menu_item_id).is_some() {
                return Err(DomainError::MenuItemAlreadyExists { menu_item_id });
            }
            menu.require_station(&station)?;
            if menu.item_count() >= MAX_MENU_ITEMS {
                return Err(DomainError::LimitReached {
                    what: "items per menu",
                    max: MAX_MENU_ITEMS,
                });
            }
            Ok(vec![MenuEvent::MenuItemAdded {
                store_id,
                menu_item_id,
                name,
                price,
                station,
                recipe,
            }])
        }
        MenuCommand::ChangeMenuItem {
            menu_item_id,
            name,
            price,
            station,
            recipe,
        } => {
            let item = menu.require_item(menu_item_id)?;
            if let Some(station) = &station {
                menu.require_station(station)?;
            }
            let name = name.unwrap_or_else(|| item.name.clone());
            let price = price.unwrap_or_else(|| item.price.clone());
            let station = station.unwrap_or_else(|| item.station.clone());
            let recipe = recipe.unwrap_or_else(|| item.recipe.clone());
            if name == item.name
                && price == item.price
                && station == item.station
                && recipe == item.recipe
            {
                return Ok(vec![]);
            }
            Ok(vec![MenuEvent::MenuItemChanged {
                store_id,
                menu_item_id,
                name,
                price,
                station,
                recipe,
            }])
        }
        MenuCommand::ActivateMenuItem { menu_item_id } => {
            if menu.require_item(menu_item_id)?.active {
                return Ok(vec![]);
            }
            Ok(vec![MenuEvent::MenuItemActivated {
                store_id,
                menu_item_id,
            }])
        }
        MenuCommand::DeactivateMenuItem { menu_item_id } => {
            if !menu.require_item(menu_item_id)?.active {
                return Ok(vec![]);
            }
            Ok(vec![MenuEvent::MenuItemDeactivated {
                store_id,
                menu_item_id,
            }])
        }
    }
}
