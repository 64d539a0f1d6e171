//! What a manager asks of a store's menu.

use serde::{Deserialize, Serialize};

use crate::ids::MenuItemId;
use crate::menu::{MenuItemName, Recipe, StationKey, StationName, StationTimers};
use crate::money::Money;

/// What a manager asks of a store's menu.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MenuCommand {
    /// Add a kitchen station, or change an existing one's name and timers.
    SetStation {
        /// Its key (`grill`); a new key adds a station.
        station: StationKey,
        /// Its display name.
        name: StationName,
        /// When its tickets turn amber and red.
        timers: StationTimers,
    },
    /// Put a new dish or drink on the menu. It is active (orderable) at once.
    AddMenuItem {
        /// Its id, chosen by the caller.
        menu_item_id: MenuItemId,
        /// Its name.
        name: MenuItemName,
        /// Its price per portion.
        price: Money,
        /// The station that prepares it; must exist.
        station: StationKey,
        /// What one portion takes from stock.
        recipe: Recipe,
    },
    /// Change a menu item; a field left out (`None`) keeps its value.
    /// Orders already taken keep the values they were taken with.
    ChangeMenuItem {
        /// The menu item.
        menu_item_id: MenuItemId,
        /// A new name.
        #[serde(default)]
        name: Option<MenuItemName>,
        /// A new price.
        #[serde(default)]
        price: Option<Money>,
        /// Another station; must exist.
        #[serde(default)]
        station: Option<StationKey>,
        /// A new recipe.
        #[serde(default)]
        recipe: Option<Recipe>,
    },
    /// Make a menu item orderable again.
    ActivateMenuItem {
        /// The menu item.
        menu_item_id: MenuItemId,
    },
    /// Take a menu item off sale (it stays on the menu, inactive).
    DeactivateMenuItem {
        /// The menu item.
        menu_item_id: MenuItemId,
    },
}
