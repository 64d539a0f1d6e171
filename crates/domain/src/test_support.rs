//! Given / when / then for decision tests (after cqrs-es's `TestFramework`),
//! and the fixtures the tests of every module share.

use std::fmt::Debug;

use uuid::Uuid;

use crate::{
    Currency, DomainError, Ingredient, ItemEvent, ItemId, ItemName, LineId, MenuItemId,
    MenuItemName, MenuItemSnapshot, Money, OrderId, PerPortion, Quantity, Recipe, Sku, StationKey,
    StoreEvent, StoreId, StoreName, TenantId, Threshold, Unit,
};

/// The outcome of `when`, checked by `then` or `then_err`.
#[derive(Debug)]
pub(crate) struct Then<T> {
    result: Result<T, DomainError>,
}

impl<T: Debug + PartialEq> Then<T> {
    pub(crate) fn new(result: Result<T, DomainError>) -> Self {
        Self { result }
    }

    /// The decision succeeded with exactly these events, in this order.
    #[track_caller]
    pub(crate) fn then(self, expected: T) {
        assert_eq!(self.result, Ok(expected));
    }

    /// The decision was refused with this error.
    #[track_caller]
    pub(crate) fn then_err(self, expected: DomainError) {
        assert_eq!(self.result, Err(expected));
    }
}

pub(crate) fn tenant() -> TenantId {
    TenantId::parse("acme").unwrap()
}

pub(crate) fn other_tenant() -> TenantId {
    TenantId::parse("globex").unwrap()
}

pub(crate) fn store_id() -> StoreId {
    StoreId::new(Uuid::from_u128(0x5701))
}

pub(crate) fn other_store_id() -> StoreId {
    StoreId::new(Uuid::from_u128(0x5702))
}

pub(crate) fn store_name(name: &str) -> StoreName {
    StoreName::parse(name).unwrap()
}

pub(crate) fn store_created(store_id: StoreId, tenant: TenantId) -> StoreEvent {
    StoreEvent::StoreCreated {
        store_id,
        tenant,
        name: store_name("Soho Kitchen"),
    }
}

pub(crate) fn sku(value: &str) -> Sku {
    Sku::parse(value).unwrap()
}

pub(crate) fn q(value: i64) -> Quantity {
    Quantity::parse(value).unwrap()
}

pub(crate) fn t(value: i64) -> Threshold {
    Threshold::parse(value).unwrap()
}

pub(crate) fn item_name(name: &str) -> ItemName {
    ItemName::parse(name).unwrap()
}

pub(crate) fn unit() -> Unit {
    Unit::parse("kg").unwrap()
}

/// The id of `sku` in `store_id`.
pub(crate) fn item_id_of(store_id: StoreId, sku_value: &str) -> ItemId {
    ItemId::for_sku(store_id, &sku(sku_value))
}

/// `ItemAdded` for `sku_value` in `store_id`, named "Flour", counted in kg.
pub(crate) fn item_added(
    store_id: StoreId,
    sku_value: &str,
    quantity: i64,
    threshold: i64,
) -> ItemEvent {
    ItemEvent::ItemAdded {
        item_id: item_id_of(store_id, sku_value),
        store_id,
        sku: sku(sku_value),
        name: item_name("Flour"),
        unit: unit(),
        quantity: q(quantity),
        threshold: t(threshold),
    }
}

pub(crate) fn gbp() -> Currency {
    Currency::parse("GBP").unwrap()
}

pub(crate) fn pence(amount: i64) -> Money {
    Money::parse(amount, gbp()).unwrap()
}

pub(crate) fn station(key: &str) -> StationKey {
    StationKey::parse(key).unwrap()
}

pub(crate) fn dish_name(name: &str) -> MenuItemName {
    MenuItemName::parse(name).unwrap()
}

pub(crate) fn menu_item_id(n: u128) -> MenuItemId {
    MenuItemId::new(Uuid::from_u128(0x3e40_0000 + n))
}

pub(crate) fn order_id() -> OrderId {
    OrderId::new(Uuid::from_u128(0x0de4))
}

pub(crate) fn line_id(n: u128) -> LineId {
    LineId::new(Uuid::from_u128(0x1140_0000 + n))
}

/// A recipe of `(sku in the test store, quantity per portion)`.
pub(crate) fn recipe(ingredients: &[(&str, i64)]) -> Recipe {
    Recipe::parse(
        ingredients
            .iter()
            .map(|&(sku_value, quantity)| Ingredient {
                item_id: item_id_of(store_id(), sku_value),
                quantity: PerPortion::parse(quantity).unwrap(),
            })
            .collect(),
    )
    .unwrap()
}

/// A burger from the grill at 1250 GBP: a bun and 180 of beef a portion.
pub(crate) fn burger() -> MenuItemSnapshot {
    MenuItemSnapshot {
        menu_item_id: menu_item_id(1),
        name: dish_name("Burger"),
        unit_price: pence(1250),
        station: station("grill"),
        recipe: recipe(&[("BUN", 1), ("BEEF", 180)]),
    }
}

/// Fries from the fry station at 400 GBP: 150 of potatoes a portion.
pub(crate) fn fries() -> MenuItemSnapshot {
    MenuItemSnapshot {
        menu_item_id: menu_item_id(2),
        name: dish_name("Fries"),
        unit_price: pence(400),
        station: station("fry"),
        recipe: recipe(&[("POTATO", 150)]),
    }
}
