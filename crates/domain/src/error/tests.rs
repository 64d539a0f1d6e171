//! Codes and fields of [`DomainError`].

use super::*;

fn nil() -> uuid::Uuid {
    uuid::Uuid::nil()
}

#[test]
fn codes_are_snake_case_and_unique() {
    let errors = [
        DomainError::InvalidTenant {
            field: "tenant",
            reason: "x",
        },
        DomainError::InvalidId {
            field: "store_id",
            reason: "x",
        },
        DomainError::InvalidName {
            field: "name",
            reason: "x",
        },
        DomainError::InvalidSku {
            field: "sku",
            reason: "x",
        },
        DomainError::InvalidUnit {
            field: "unit",
            reason: "x",
        },
        DomainError::InvalidQuantity {
            field: "quantity",
            reason: "x",
        },
        DomainError::InvalidThreshold {
            field: "threshold",
            reason: "x",
        },
        DomainError::InvalidDelta {
            field: "delta",
            reason: "x",
        },
        DomainError::InvalidNote {
            field: "note",
            reason: "x",
        },
        DomainError::StoreNotFound,
        DomainError::StoreAlreadyExists {
            store_id: StoreId::new(uuid::Uuid::nil()),
        },
        DomainError::StoreClosed,
        DomainError::StoreMismatch {
            expected: StoreId::new(uuid::Uuid::nil()),
            actual: StoreId::new(uuid::Uuid::nil()),
        },
        DomainError::ItemIdMismatch {
            expected: ItemId::new(uuid::Uuid::nil()),
            actual: ItemId::new(uuid::Uuid::nil()),
        },
        DomainError::SkuAlreadyExists {
            sku: Sku::parse("A").unwrap(),
        },
        DomainError::ItemNotFound {
            item_id: ItemId::new(uuid::Uuid::nil()),
        },
        DomainError::ItemRemoved {
            item_id: ItemId::new(uuid::Uuid::nil()),
        },
        DomainError::InsufficientStock {
            available: 1,
            requested: 2,
        },
        DomainError::QuantityOverflow,
        DomainError::TransferAcrossTenants,
        DomainError::TransferToSameItem,
        DomainError::ChangeNotFound {
            event_id: EventId::new(uuid::Uuid::nil()),
        },
        DomainError::NotUndoable { what: "LowStock" },
        DomainError::UndoNotAllowed,
        DomainError::NotUndone {
            event_id: EventId::new(uuid::Uuid::nil()),
        },
        DomainError::AlreadyUndone {
            event_id: EventId::new(uuid::Uuid::nil()),
            undone_by: EventId::new(uuid::Uuid::nil()),
        },
        DomainError::UndoConflict {
            event_id: EventId::new(uuid::Uuid::nil()),
            later: EventId::new(uuid::Uuid::nil()),
        },
        DomainError::InvalidStation {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidTimers {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidCurrency {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidPrice {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidRecipe {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidTable {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidCovers {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidModifier {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidCourse {
            field: "x",
            reason: "x",
        },
        DomainError::InvalidReason {
            field: "x",
            reason: "x",
        },
        DomainError::LimitReached {
            what: "lines per order",
            max: 1,
        },
        DomainError::UnknownStation {
            station: StationKey::parse("grill").unwrap(),
        },
        DomainError::MenuItemAlreadyExists {
            menu_item_id: MenuItemId::new(nil()),
        },
        DomainError::MenuItemNotFound {
            menu_item_id: MenuItemId::new(nil()),
        },
        DomainError::MenuItemInactive {
            menu_item_id: MenuItemId::new(nil()),
        },
        DomainError::OrderNotFound {
            order_id: OrderId::new(nil()),
        },
        DomainError::OrderAlreadyExists {
            order_id: OrderId::new(nil()),
        },
        DomainError::OrderNotReady {
            order_id: OrderId::new(nil()),
        },
        DomainError::OrderNotServed {
            order_id: OrderId::new(nil()),
        },
        DomainError::OrderAlreadyServed {
            order_id: OrderId::new(nil()),
        },
        DomainError::OrderAlreadyCompleted {
            order_id: OrderId::new(nil()),
        },
        DomainError::OrderAlreadyCancelled {
            order_id: OrderId::new(nil()),
        },
        DomainError::CurrencyMismatch {
            expected: Currency::parse("GBP").unwrap(),
            actual: Currency::parse("EUR").unwrap(),
        },
        DomainError::AmountOverflow,
        DomainError::LineAlreadyExists {
            line_id: LineId::new(nil()),
        },
        DomainError::LineNotFound {
            line_id: LineId::new(nil()),
        },
        DomainError::LineVoided {
            line_id: LineId::new(nil()),
        },
        DomainError::LineNotFired {
            line_id: LineId::new(nil()),
        },
        DomainError::LineAlreadyStarted {
            line_id: LineId::new(nil()),
        },
        DomainError::LineAlreadyReady {
            line_id: LineId::new(nil()),
        },
        DomainError::LineNotReady {
            line_id: LineId::new(nil()),
        },
        DomainError::NothingToFire,
        DomainError::InvalidNotification {
            field: "title",
            reason: "x",
        },
        DomainError::NotificationNotFound {
            notification_id: crate::NotificationId::new(nil()),
        },
        DomainError::InboxMismatch,
    ];
    let mut codes: Vec<_> = errors.iter().map(DomainError::code).collect();
    for code in &codes {
        assert!(
            code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
            "{code} is not snake_case"
        );
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), errors.len());
}

#[test]
fn validation_errors_name_their_field_and_rule_errors_do_not() {
    let invalid = DomainError::InvalidSku {
        field: "sku",
        reason: "must not be empty",
    };
    assert_eq!(invalid.field(), Some("sku"));
    assert_eq!(invalid.to_string(), "invalid sku: must not be empty");
    assert_eq!(DomainError::StoreClosed.field(), None);
}

#[test]
fn a_validation_error_can_be_reported_against_another_field() {
    let err = DomainError::InvalidId {
        field: "store_id",
        reason: "must be a UUID",
    }
    .for_field("to_store_id");
    assert_eq!(err.field(), Some("to_store_id"));
    assert_eq!(
        DomainError::StoreClosed.for_field("x"),
        DomainError::StoreClosed
    );
}

#[test]
fn every_validation_error_names_its_field_and_can_be_renamed() {
    let err = DomainError::InvalidRecipe {
        field: "recipe",
        reason: "must list at least one ingredient",
    };
    assert_eq!(err.field(), Some("recipe"));
    assert_eq!(err.clone().for_field("items").field(), Some("items"));
    assert_eq!(err.for_field("items").code(), "invalid_recipe");
    assert_eq!(DomainError::NothingToFire.field(), None);
    assert_eq!(
        DomainError::NothingToFire.for_field("x"),
        DomainError::NothingToFire
    );
}
