//! The one error type of the domain, and the decoding error of stored events.

use crate::ids::{EventId, ItemId, LineId, MenuItemId, NotificationId, OrderId, StoreId};
use crate::menu::StationKey;
use crate::money::Currency;
use crate::values::Sku;

mod codes;
mod decode;
pub use decode::DecodeError;

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

    /// A station key is not 1..=32 characters of `[a-z0-9_-]`.
    #[error("invalid {field}: {reason}")]
    InvalidStation {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A station's timer thresholds are out of range or out of order.
    #[error("invalid {field}: {reason}")]
    InvalidTimers {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A currency code is not three letters.
    #[error("invalid {field}: {reason}")]
    InvalidCurrency {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A price is negative.
    #[error("invalid {field}: {reason}")]
    InvalidPrice {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A recipe is empty, too long, names an item twice or has a quantity
    /// per portion out of range.
    #[error("invalid {field}: {reason}")]
    InvalidRecipe {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A table label is empty, too long or contains control characters.
    #[error("invalid {field}: {reason}")]
    InvalidTable {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A number of covers is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidCovers {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A line modifier is empty or too long, or a line has too many.
    #[error("invalid {field}: {reason}")]
    InvalidModifier {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A course number is out of range.
    #[error("invalid {field}: {reason}")]
    InvalidCourse {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A cancellation reason is empty or too long.
    #[error("invalid {field}: {reason}")]
    InvalidReason {
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

    /// A menu or order holds as many of something as it may.
    #[error("at most {max} {what}")]
    LimitReached {
        /// What is full, e.g. "stations per menu".
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// A menu item names a station the menu does not have.
    #[error("station {station} not found")]
    UnknownStation {
        /// The missing station.
        station: StationKey,
    },
    /// `AddMenuItem` with an id the menu already holds.
    #[error("menu item {menu_item_id} already exists")]
    MenuItemAlreadyExists {
        /// The taken id.
        menu_item_id: MenuItemId,
    },
    /// The menu has no item with this id.
    #[error("menu item {menu_item_id} not found")]
    MenuItemNotFound {
        /// The missing menu item.
        menu_item_id: MenuItemId,
    },
    /// The menu item is deactivated and cannot be ordered.
    #[error("menu item {menu_item_id} is not active")]
    MenuItemInactive {
        /// The inactive menu item.
        menu_item_id: MenuItemId,
    },
    /// The order was never opened.
    #[error("order {order_id} not found")]
    OrderNotFound {
        /// The missing order.
        order_id: OrderId,
    },
    /// `OpenOrder` on a stream that already holds an order.
    #[error("order {order_id} already exists")]
    OrderAlreadyExists {
        /// The existing order.
        order_id: OrderId,
    },
    /// Serving an order whose lines are not all ready.
    #[error("order {order_id} is not ready")]
    OrderNotReady {
        /// The order.
        order_id: OrderId,
    },
    /// Completing an order that was not served.
    #[error("order {order_id} has not been served")]
    OrderNotServed {
        /// The order.
        order_id: OrderId,
    },
    /// The order was served: it takes no more lines nor kitchen actions.
    #[error("order {order_id} has already been served")]
    OrderAlreadyServed {
        /// The order.
        order_id: OrderId,
    },
    /// The order was completed: it accepts no command any more.
    #[error("order {order_id} has already been completed")]
    OrderAlreadyCompleted {
        /// The order.
        order_id: OrderId,
    },
    /// The order was cancelled: it accepts no command any more.
    #[error("order {order_id} has been cancelled")]
    OrderAlreadyCancelled {
        /// The order.
        order_id: OrderId,
    },
    /// A line priced in another currency than the order.
    #[error("the order is in {expected}, the line in {actual}")]
    CurrencyMismatch {
        /// The order's currency.
        expected: Currency,
        /// The line's currency.
        actual: Currency,
    },
    /// An order total does not fit in an `i64` of minor units.
    #[error("amount would overflow")]
    AmountOverflow,
    /// `AddLine` with a line id the order already holds.
    #[error("line {line_id} already exists")]
    LineAlreadyExists {
        /// The taken id.
        line_id: LineId,
    },
    /// The order has no line with this id.
    #[error("line {line_id} not found")]
    LineNotFound {
        /// The missing line.
        line_id: LineId,
    },
    /// The line was voided: nothing more happens to it.
    #[error("line {line_id} has been voided")]
    LineVoided {
        /// The line.
        line_id: LineId,
    },
    /// Starting or bumping a line that was not fired to the kitchen.
    #[error("line {line_id} has not been fired")]
    LineNotFired {
        /// The line.
        line_id: LineId,
    },
    /// Starting or voiding a line the kitchen has started.
    #[error("line {line_id} has already been started")]
    LineAlreadyStarted {
        /// The line.
        line_id: LineId,
    },
    /// Starting, bumping or voiding a line that is ready.
    #[error("line {line_id} is already ready")]
    LineAlreadyReady {
        /// The line.
        line_id: LineId,
    },
    /// Recalling a line that is not ready.
    #[error("line {line_id} is not ready")]
    LineNotReady {
        /// The line.
        line_id: LineId,
    },
    /// Firing when no line (of the course asked for) waits to be fired.
    #[error("no line to fire")]
    NothingToFire,
    /// A notification's title, body, kind, user or alert key breaks its rule.
    #[error("invalid {field}: {reason}")]
    InvalidNotification {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Marking read a notification the inbox does not hold.
    #[error("notification {notification_id} not found")]
    NotificationNotFound {
        /// The notification.
        notification_id: NotificationId,
    },
    /// A command addressed to an inbox names another user than its owner.
    #[error("the inbox belongs to another user")]
    InboxMismatch,
}

#[cfg(test)]
mod tests;
