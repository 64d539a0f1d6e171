//! What happened to a store's menu.

use serde::{Deserialize, Serialize};

use crate::ids::{MenuItemId, StoreId};
use crate::menu::{MenuItemName, Recipe, StationKey, StationName, StationTimers};
use crate::money::Money;

/// What happened to a store's menu. Stored in the stream `menu-{store_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MenuEvent {
    /// A station was added, or its name or timers changed.
    StationSet {
        /// The store.
        store_id: StoreId,
        /// The station's key.
        station: StationKey,
        /// Its display name.
        name: StationName,
        /// When its tickets turn amber and red.
        timers: StationTimers,
    },
    /// A dish or drink was put on the menu, active.
    MenuItemAdded {
        /// The store.
        store_id: StoreId,
        /// The menu item.
        menu_item_id: MenuItemId,
        /// Its name.
        name: MenuItemName,
        /// Its price per portion.
        price: Money,
        /// The station preparing it.
        station: StationKey,
        /// What one portion takes from stock.
        recipe: Recipe,
    },
    /// A menu item changed; carries all its values after the change.
    MenuItemChanged {
        /// The store.
        store_id: StoreId,
        /// The menu item.
        menu_item_id: MenuItemId,
        /// Its name.
        name: MenuItemName,
        /// Its price per portion.
        price: Money,
        /// The station preparing it.
        station: StationKey,
        /// What one portion takes from stock.
        recipe: Recipe,
    },
    /// A menu item can be ordered again.
    MenuItemActivated {
        /// The store.
        store_id: StoreId,
        /// The menu item.
        menu_item_id: MenuItemId,
    },
    /// A menu item was taken off sale.
    MenuItemDeactivated {
        /// The store.
        store_id: StoreId,
        /// The menu item.
        menu_item_id: MenuItemId,
    },
}

impl MenuEvent {
    /// The store whose menu the event is about (the menu's id is the same
    /// UUID).
    pub fn store_id(&self) -> StoreId {
        match self {
            Self::StationSet { store_id, .. }
            | Self::MenuItemAdded { store_id, .. }
            | Self::MenuItemChanged { store_id, .. }
            | Self::MenuItemActivated { store_id, .. }
            | Self::MenuItemDeactivated { store_id, .. } => *store_id,
        }
    }

    /// The menu item the event is about; `None` for `StationSet`.
    pub fn menu_item_id(&self) -> Option<MenuItemId> {
        match self {
            Self::StationSet { .. } => None,
            Self::MenuItemAdded { menu_item_id, .. }
            | Self::MenuItemChanged { menu_item_id, .. }
            | Self::MenuItemActivated { menu_item_id, .. }
            | Self::MenuItemDeactivated { menu_item_id, .. } => Some(*menu_item_id),
        }
    }
}
