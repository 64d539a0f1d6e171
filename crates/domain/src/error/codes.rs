//! The stable codes and fields of [`DomainError`]s.

use super::DomainError;

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
            Self::InvalidStation { .. } => "invalid_station",
            Self::InvalidTimers { .. } => "invalid_timers",
            Self::InvalidCurrency { .. } => "invalid_currency",
            Self::InvalidPrice { .. } => "invalid_price",
            Self::InvalidRecipe { .. } => "invalid_recipe",
            Self::InvalidTable { .. } => "invalid_table",
            Self::InvalidCovers { .. } => "invalid_covers",
            Self::InvalidModifier { .. } => "invalid_modifier",
            Self::InvalidCourse { .. } => "invalid_course",
            Self::InvalidReason { .. } => "invalid_reason",
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
            Self::LimitReached { .. } => "limit_reached",
            Self::UnknownStation { .. } => "unknown_station",
            Self::MenuItemAlreadyExists { .. } => "menu_item_already_exists",
            Self::MenuItemNotFound { .. } => "menu_item_not_found",
            Self::MenuItemInactive { .. } => "menu_item_inactive",
            Self::OrderNotFound { .. } => "order_not_found",
            Self::OrderAlreadyExists { .. } => "order_already_exists",
            Self::OrderNotReady { .. } => "order_not_ready",
            Self::OrderNotServed { .. } => "order_not_served",
            Self::OrderAlreadyServed { .. } => "order_already_served",
            Self::OrderAlreadyCompleted { .. } => "order_already_completed",
            Self::OrderAlreadyCancelled { .. } => "order_already_cancelled",
            Self::CurrencyMismatch { .. } => "currency_mismatch",
            Self::AmountOverflow => "amount_overflow",
            Self::LineAlreadyExists { .. } => "line_already_exists",
            Self::LineNotFound { .. } => "line_not_found",
            Self::LineVoided { .. } => "line_voided",
            Self::LineNotFired { .. } => "line_not_fired",
            Self::LineAlreadyStarted { .. } => "line_already_started",
            Self::LineAlreadyReady { .. } => "line_already_ready",
            Self::LineNotReady { .. } => "line_not_ready",
            Self::NothingToFire => "nothing_to_fire",
            Self::InvalidNotification { .. } => "invalid_notification",
            Self::NotificationNotFound { .. } => "notification_not_found",
            Self::InboxMismatch => "inbox_mismatch",
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
            | Self::InvalidNote { field, .. }
            | Self::InvalidStation { field, .. }
            | Self::InvalidTimers { field, .. }
            | Self::InvalidCurrency { field, .. }
            | Self::InvalidPrice { field, .. }
            | Self::InvalidRecipe { field, .. }
            | Self::InvalidTable { field, .. }
            | Self::InvalidCovers { field, .. }
            | Self::InvalidModifier { field, .. }
            | Self::InvalidCourse { field, .. }
            | Self::InvalidReason { field, .. }
            | Self::InvalidNotification { field, .. } => Some(field),
            _ => None,
        }
    }

    /// The same validation error reported against another field name, for
    /// callers whose request field is not the default (e.g. `to_store_id`).
    /// Business-rule errors are returned unchanged.
    pub fn for_field(self, new_field: &'static str) -> Self {
        /// Rebuilds whichever validation variant `$error` is with `new_field`.
        macro_rules! refield {
            ($error:expr, $($variant:ident),+) => {
                match $error {
                    $(Self::$variant { reason, .. } => Self::$variant {
                        field: new_field,
                        reason,
                    },)+
                    other => other,
                }
            };
        }
        refield!(
            self,
            InvalidTenant,
            InvalidId,
            InvalidName,
            InvalidSku,
            InvalidUnit,
            InvalidQuantity,
            InvalidThreshold,
            InvalidDelta,
            InvalidNote,
            InvalidStation,
            InvalidTimers,
            InvalidCurrency,
            InvalidPrice,
            InvalidRecipe,
            InvalidTable,
            InvalidCovers,
            InvalidModifier,
            InvalidCourse,
            InvalidReason,
            InvalidNotification
        )
    }
}
