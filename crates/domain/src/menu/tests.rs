//! Given / when / then tests of the menu aggregate.

use super::*;
use crate::error::DomainError;
use crate::ids::{MenuId, StoreId};
use crate::store::{self, StoreEvent, StoreState};
use crate::test_support::{
    Then, dish_name, gbp, menu_item_id, other_store_id, pence, recipe, station, store_created,
    store_id, tenant,
};

struct Given {
    store: StoreState,
    menu: MenuState,
    menu_id: MenuId,
}

/// The menu of an open store, after `events`.
fn given(events: impl IntoIterator<Item = MenuEvent>) -> Given {
    given_store([store_created(store_id(), tenant())], events)
}

fn given_store(
    store_events: impl IntoIterator<Item = StoreEvent>,
    events: impl IntoIterator<Item = MenuEvent>,
) -> Given {
    let store_events: Vec<_> = store_events.into_iter().collect();
    let events: Vec<_> = events.into_iter().collect();
    Given {
        store: store::replay(&store_events),
        menu: replay(&events),
        menu_id: MenuId::of_store(store_id()),
    }
}

impl Given {
    fn when(self, cmd: MenuCommand) -> Then<Vec<MenuEvent>> {
        Then::new(decide(&self.store, &self.menu, self.menu_id, cmd))
    }

    fn at(mut self, menu_id: MenuId) -> Self {
        self.menu_id = menu_id;
        self
    }
}

fn timers(warn: u32, late: u32) -> StationTimers {
    StationTimers::parse(warn, late).unwrap()
}

fn set_station(key: &str, name: &str, warn: u32, late: u32) -> MenuCommand {
    MenuCommand::SetStation {
        station: station(key),
        name: StationName::parse(name).unwrap(),
        timers: timers(warn, late),
    }
}

fn station_set(key: &str, name: &str, warn: u32, late: u32) -> MenuEvent {
    MenuEvent::StationSet {
        store_id: store_id(),
        station: station(key),
        name: StationName::parse(name).unwrap(),
        timers: timers(warn, late),
    }
}

fn grill() -> MenuEvent {
    station_set("grill", "Grill", 300, 600)
}

fn fry() -> MenuEvent {
    station_set("fry", "Fryer", 120, 240)
}

fn add_burger() -> MenuCommand {
    MenuCommand::AddMenuItem {
        menu_item_id: menu_item_id(1),
        name: dish_name("Burger"),
        price: pence(1250),
        station: station("grill"),
        recipe: recipe(&[("BUN", 1), ("BEEF", 180)]),
    }
}

fn burger_added() -> MenuEvent {
    MenuEvent::MenuItemAdded {
        store_id: store_id(),
        menu_item_id: menu_item_id(1),
        name: dish_name("Burger"),
        price: pence(1250),
        station: station("grill"),
        recipe: recipe(&[("BUN", 1), ("BEEF", 180)]),
    }
}

fn change(menu_item: u128) -> MenuCommand {
    MenuCommand::ChangeMenuItem {
        menu_item_id: menu_item_id(menu_item),
        name: None,
        price: None,
        station: None,
        recipe: None,
    }
}

fn deactivated() -> MenuEvent {
    MenuEvent::MenuItemDeactivated {
        store_id: store_id(),
        menu_item_id: menu_item_id(1),
    }
}

#[test]
fn setting_a_new_station_records_it() {
    given([])
        .when(set_station(" Grill ", "Grill", 300, 600))
        .then(vec![grill()]);
}

#[test]
fn changing_a_station_records_its_new_name_and_timers() {
    given([grill()])
        .when(set_station("grill", "Grill & Plancha", 240, 480))
        .then(vec![station_set("grill", "Grill & Plancha", 240, 480)]);
}

#[test]
fn setting_a_station_to_what_it_is_changes_nothing() {
    given([grill()])
        .when(set_station("grill", "Grill", 300, 600))
        .then(vec![]);
}

#[test]
fn a_menu_holds_at_most_32_stations_but_may_still_change_them() {
    let stations: Vec<_> = (0..MAX_STATIONS)
        .map(|i| station_set(&format!("s{i}"), "Station", 60, 120))
        .collect();
    given(stations.clone())
        .when(set_station("one-more", "Station", 60, 120))
        .then_err(DomainError::LimitReached {
            what: "stations per menu",
            max: MAX_STATIONS,
        });
    given(stations)
        .when(set_station("s0", "Renamed", 60, 120))
        .then(vec![station_set("s0", "Renamed", 60, 120)]);
}

#[test]
fn adding_a_menu_item_at_a_known_station_records_it_active() {
    given([grill()])
        .when(add_burger())
        .then(vec![burger_added()]);
    let menu = replay(&[grill(), burger_added()]);
    let item = menu.item(menu_item_id(1)).unwrap();
    assert!(item.active);
    assert_eq!(item.price, pence(1250));
}

#[test]
fn adding_a_menu_item_at_an_unknown_station_is_rejected() {
    given([fry()])
        .when(add_burger())
        .then_err(DomainError::UnknownStation {
            station: station("grill"),
        });
}

#[test]
fn adding_a_menu_item_twice_is_rejected() {
    given([grill(), burger_added(), deactivated()])
        .when(add_burger())
        .then_err(DomainError::MenuItemAlreadyExists {
            menu_item_id: menu_item_id(1),
        });
}

#[test]
fn changing_a_menu_item_records_all_its_values_after_the_change() {
    given([grill(), fry(), burger_added()])
        .when(MenuCommand::ChangeMenuItem {
            menu_item_id: menu_item_id(1),
            name: None,
            price: Some(pence(1350)),
            station: Some(station("fry")),
            recipe: None,
        })
        .then(vec![MenuEvent::MenuItemChanged {
            store_id: store_id(),
            menu_item_id: menu_item_id(1),
            name: dish_name("Burger"),
            price: pence(1350),
            station: station("fry"),
            recipe: recipe(&[("BUN", 1), ("BEEF", 180)]),
        }]);
}

#[test]
fn changing_a_menu_item_to_what_it_is_changes_nothing() {
    given([grill(), burger_added()])
        .when(change(1))
        .then(vec![]);
    given([grill(), burger_added()])
        .when(MenuCommand::ChangeMenuItem {
            menu_item_id: menu_item_id(1),
            name: Some(dish_name(" Burger ")),
            price: Some(pence(1250)),
            station: Some(station("grill")),
            recipe: Some(recipe(&[("BUN", 1), ("BEEF", 180)])),
        })
        .then(vec![]);
}

#[test]
fn changing_a_menu_item_to_an_unknown_station_is_rejected() {
    given([grill(), burger_added()])
        .when(MenuCommand::ChangeMenuItem {
            menu_item_id: menu_item_id(1),
            name: None,
            price: None,
            station: Some(station("bar")),
            recipe: None,
        })
        .then_err(DomainError::UnknownStation {
            station: station("bar"),
        });
}

#[test]
fn commands_about_an_unknown_menu_item_are_rejected() {
    let unknown = DomainError::MenuItemNotFound {
        menu_item_id: menu_item_id(9),
    };
    for cmd in [
        change(9),
        MenuCommand::ActivateMenuItem {
            menu_item_id: menu_item_id(9),
        },
        MenuCommand::DeactivateMenuItem {
            menu_item_id: menu_item_id(9),
        },
    ] {
        given([grill(), burger_added()])
            .when(cmd)
            .then_err(unknown.clone());
    }
}

#[test]
fn deactivating_and_activating_a_menu_item_record_it_once() {
    let deactivate = MenuCommand::DeactivateMenuItem {
        menu_item_id: menu_item_id(1),
    };
    let activate = MenuCommand::ActivateMenuItem {
        menu_item_id: menu_item_id(1),
    };
    given([grill(), burger_added()])
        .when(deactivate.clone())
        .then(vec![deactivated()]);
    given([grill(), burger_added(), deactivated()])
        .when(deactivate)
        .then(vec![]);
    given([grill(), burger_added(), deactivated()])
        .when(activate.clone())
        .then(vec![MenuEvent::MenuItemActivated {
            store_id: store_id(),
            menu_item_id: menu_item_id(1),
        }]);
    given([grill(), burger_added()]).when(activate).then(vec![]);
}

#[test]
fn an_active_menu_item_is_copied_into_an_order_line_and_an_inactive_one_is_not() {
    let menu = replay(&[grill(), burger_added()]);
    let line = menu.line_item(menu_item_id(1)).unwrap();
    assert_eq!(line, crate::test_support::burger());
    let menu = replay(&[grill(), burger_added(), deactivated()]);
    assert_eq!(
        menu.line_item(menu_item_id(1)),
        Err(DomainError::MenuItemInactive {
            menu_item_id: menu_item_id(1)
        })
    );
    assert_eq!(
        menu.line_item(menu_item_id(2)),
        Err(DomainError::MenuItemNotFound {
            menu_item_id: menu_item_id(2)
        })
    );
}

#[test]
fn a_menu_needs_its_store_open() {
    given_store([], [])
        .when(set_station("grill", "Grill", 300, 600))
        .then_err(DomainError::StoreNotFound);
    given_store(
        [
            store_created(store_id(), tenant()),
            StoreEvent::StoreClosed {
                store_id: store_id(),
            },
        ],
        [grill()],
    )
    .when(add_burger())
    .then_err(DomainError::StoreClosed);
}

#[test]
fn a_menu_decided_with_another_stores_state_is_rejected() {
    given([])
        .at(MenuId::of_store(other_store_id()))
        .when(set_station("grill", "Grill", 300, 600))
        .then_err(DomainError::StoreMismatch {
            expected: other_store_id(),
            actual: store_id(),
        });
}

#[test]
fn replaying_a_menu_gives_its_stations_and_items() {
    let changed = MenuEvent::MenuItemChanged {
        store_id: store_id(),
        menu_item_id: menu_item_id(1),
        name: dish_name("Cheeseburger"),
        price: crate::money::Money::parse(1400, gbp()).unwrap(),
        station: station("fry"),
        recipe: recipe(&[("BUN", 1)]),
    };
    let menu = replay(&[grill(), fry(), burger_added(), changed, deactivated()]);
    let keys: Vec<_> = menu.stations().map(|s| s.key.as_str()).collect();
    assert_eq!(keys, ["fry", "grill"]);
    assert_eq!(
        menu.station(&station("grill")).unwrap().timers,
        timers(300, 600)
    );
    let item = menu.item(menu_item_id(1)).unwrap();
    assert_eq!(item.name, dish_name("Cheeseburger"));
    assert_eq!(item.station, station("fry"));
    assert!(!item.active);
    assert_eq!(menu.items().count(), 1);
    assert_eq!(replay(&[]), MenuState::default());
    let _: StoreId = grill().store_id();
    assert_eq!(grill().menu_item_id(), None);
    assert_eq!(deactivated().menu_item_id(), Some(menu_item_id(1)));
}
