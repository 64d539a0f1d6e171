//! The one error type of the domain, and the decoding error of stored events.

use crate::ids::{EventId, ItemId, StoreId};
use crate::values::Sku;

/// Why a value could not be parsed or a command was refused.
///
/// Validation variants carry the `field` they are about (the name the HTTP
/// edge uses in request bodies) and a human `reason`; business-rule variants
/// carry the facts needed to explain the refusal. [`DomainError::code`] gives a
/// stable machine-readable code for each variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A tenant id is not 1..=64 characters of `[a-z0-9_-]`.
    #[error("invalid {field}: {reason}")]
    InvalidTenant {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A store, item or transfer id is not a UUID.
    #[error("invalid {field}: {reason}")]
    InvalidId {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A store or item name is empty, too long or contains control characters.
    #[error("invalid {field}: {reason}")]
    InvalidName {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A SKU is not 1..=64 characters of `[A-Z0-9._-]`.
    #[error("invalid {field}: {reason}")]
    InvalidSku {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A unit is not 1..=16 letters, digits, spaces or dots.
    #[error("invalid {field}: {reason}")]
    InvalidUnit {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A quantity is negative, or a transfer quantity is zero.
    #[error("invalid {field}: {reason}")]
    InvalidQuantity {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A low-stock threshold is negative.
    #[error("invalid {field}: {reason}")]
    InvalidThreshold {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A stock adjustment of zero.
    #[error("invalid {field}: {reason}")]
    InvalidDelta {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A note longer than [`crate::MAX_NOTE_CHARS`] characters.
    #[error("invalid {field}: {reason}")]
    InvalidNote {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// The store stream addressed does not exist yet.
    #[error("store not found")]
    StoreNotFound,
    /// `CreateStore` on a stream that already holds a store.
    #[error("store {store_id} already exists")]
    StoreAlreadyExists {
        /// The store that already exists.
        store_id: StoreId,
    },
    /// The store is closed; it accepts no command and none of its items do.
    #[error("store is closed")]
    StoreClosed,
    /// The store state handed to a decision is not the store the item belongs
    /// to. This is a bug in the caller, not a user error.
    #[error("item belongs to store {expected}, not {actual}")]
    StoreMismatch {
        /// The store the item (or command) belongs to.
        expected: StoreId,
        /// The store whose state was passed in.
        actual: StoreId,
    },
    /// `AddItem` addressed to an item id that is not
    /// [`ItemId::for_sku`]`(store_id, sku)`.
    #[error("item id {actual} does not match store and SKU (expected {expected})")]
    ItemIdMismatch {
        /// The id derived from the store and SKU.
        expected: ItemId,
        /// The id the command was addressed to.
        actual: ItemId,
    },
    /// `AddItem` for a SKU that is already active in the store.
    #[error("SKU {sku} already exists in this store")]
    SkuAlreadyExists {
        /// The duplicated SKU.
        sku: Sku,
    },
    /// The item was never added.
    #[error("item {item_id} not found")]
    ItemNotFound {
        /// The missing item.
        item_id: ItemId,
    },
    /// The item was removed; only `AddItem` can bring it back.
    #[error("item {item_id} has been removed")]
    ItemRemoved {
        /// The removed item.
        item_id: ItemId,
    },
    /// Taking more stock than there is.
    #[error("insufficient stock: {available} available, {requested} requested")]
    InsufficientStock {
        /// Stock on hand before the command.
        available: i64,
        /// Stock the command tried to take out.
        requested: i64,
    },
    /// Adding stock would exceed `i64::MAX`.
    #[error("quantity would overflow")]
    QuantityOverflow,
    /// A transfer between stores of different tenants.
    #[error("cannot transfer stock between tenants")]
    TransferAcrossTenants,
    /// A transfer whose source and destination are the same item.
    #[error("cannot transfer stock to the same item")]
    TransferToSameItem,
    /// Undo of an event that is not in the item's stream.
    #[error("change {event_id} not found")]
    ChangeNotFound {
        /// The event asked for.
        event_id: EventId,
    },
    /// Undo of an event that is not a stock adjustment, rename or threshold
    /// change (an alert, an addition, a removal, a transfer's side).
    #[error("{what} cannot be undone")]
    NotUndoable {
        /// What the event is: its type, or "a transfer".
        what: &'static str,
    },
    /// Redo of a change that is not undone (or whose undo was itself undone:
    /// it is in effect already).
    #[error("change {event_id} is not undone")]
    NotUndone {
        /// The change asked for.
        event_id: EventId,
    },
    /// The caller may not undo this change (staff undo only their own stock
    /// adjustments).
    #[error("only its author or a manager may undo this change")]
    UndoNotAllowed,
    /// The change was undone already.
    #[error("change {event_id} was already undone by {undone_by}")]
    AlreadyUndone {
        /// The change asked for.
        event_id: EventId,
        /// The event that undid it.
        undone_by: EventId,
    },
    /// A later change depends on it: it changed the same field since (a
    /// rename after the rename, a threshold after the threshold), counted
    /// the stock after the adjustment, or added the item again.
    #[error("change {event_id} cannot be undone: {later} changed the same thing since")]
    UndoConflict {
        /// The change asked for.
        event_id: EventId,
        /// The later change it would silently overwrite.
        later: EventId,
    },
}

impl DomainError {
    /// A stable snake_case code for machines (returned by the HTTP edge).
    ///
    /// These strings are part of the public API: never change one.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidTenant { .. } => "invalid_tenant",
            Self::InvalidId { .. } => "invalid_id",
            Self::InvalidName { .. } => "invalid_name",
            Self::InvalidSku { .. } => "invalid_sku",
            Self::InvalidUnit { .. } => "invalid_unit",
            Self::InvalidQuantity { .. } => "invalid_quantity",
            Self::InvalidThreshold { .. } => "invalid_threshold",
            Self::InvalidDelta { .. } => "invalid_delta",
            Self::InvalidNote { .. } => "invalid_note",
            Self::StoreNotFound => "store_not_found",
            Self::StoreAlreadyExists { .. } => "store_already_exists",
            Self::StoreClosed => "store_closed",
            Self::StoreMismatch { .. } => "store_mismatch",
            Self::ItemIdMismatch { .. } => "item_id_mismatch",
            Self::SkuAlreadyExists { .. } => "sku_already_exists",
            Self::ItemNotFound { .. } => "item_not_found",
            Self::ItemRemoved { .. } => "item_removed",
            Self::InsufficientStock { .. } => "insufficient_stock",
            Self::QuantityOverflow => "quantity_overflow",
            Self::TransferAcrossTenants => "transfer_across_tenants",
            Self::TransferToSameItem => "transfer_to_same_item",
            Self::ChangeNotFound { .. } => "change_not_found",
            Self::NotUndoable { .. } => "not_undoable",
            Self::UndoNotAllowed => "undo_not_allowed",
            Self::NotUndone { .. } => "not_undone",
            Self::AlreadyUndone { .. } => "already_undone",
            Self::UndoConflict { .. } => "undo_conflict",
        }
    }

    /// The field a validation error is about, `None` for business-rule errors.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            Self::InvalidTenant { field, .. }
            | Self::InvalidId { field, .. }
            | Self::InvalidName { field, .. }
            | Self::InvalidSku { field, .. }
            | Self::InvalidUnit { field, .. }
            | Self::InvalidQuantity { field, .. }
            | Self::InvalidThreshold { field, .. }
            | Self::InvalidDelta { field, .. }
            | Self::InvalidNote { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The same validation error reported against another field name, for
    /// callers whose request field is not the default (e.g. `to_store_id`).
    /// Business-rule errors are returned unchanged.
    pub fn for_field(self, new_field: &'static str) -> Self {
        match self {
            Self::InvalidTenant { reason, .. } => Self::InvalidTenant {
                field: new_field,
                reason,
            },
            Self::InvalidId { reason, .. } => Self::InvalidId {
                field: new_field,
                reason,
            },
            Self::InvalidName { reason, .. } => Self::InvalidName {
                field: new_field,
                reason,
            },
            Self::InvalidSku { reason, .. } => Self::InvalidSku {
                field: new_field,
                reason,
            },
            Self::InvalidUnit { reason, .. } => Self::InvalidUnit {
                field: new_field,
                reason,
            },
            Self::InvalidQuantity { reason, .. } => Self::InvalidQuantity {
                field: new_field,
                reason,
            },
            Self::InvalidThreshold { reason, .. } => Self::InvalidThreshold {
                field: new_field,
                reason,
            },
            Self::InvalidDelta { reason, .. } => Self::InvalidDelta {
                field: new_field,
                reason,
            },
            Self::InvalidNote { reason, .. } => Self::InvalidNote {
                field: new_field,
                reason,
            },
            other => other,
        }
    }
}

/// Why a stored event could not be turned back into a [`crate::DomainEvent`].
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// No event of this type exists (it may come from a newer Larder).
    #[error("unknown event type {event_type:?}")]
    UnknownEventType {
        /// The stored type name.
        event_type: String,
    },
    /// The schema version is newer than this build knows, or zero.
    #[error("unsupported schema version {schema_version} of {event_type} (current is {current})")]
    UnsupportedVersion {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// The newest version this build can read.
        current: u32,
    },
    /// The payload does not match the schema (a field is missing, or a value
    /// would not parse, e.g. a negative quantity).
    #[error("invalid data for {event_type} v{schema_version}")]
    InvalidData {
        /// The stored type name.
        event_type: String,
        /// The stored schema version.
        schema_version: u32,
        /// What serde found wrong.
        #[source]
        source: serde_json::Error,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
