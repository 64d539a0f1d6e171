//! A user's inbox of notifications: raised by rules from the log's events
//! (low stock, an order ready, ...) or by an administrator, read one by one
//! or all at once, filtered by the user's preferences.
//!
//! The inbox is an aggregate like any other: its stream is
//! `inbox-{InboxId::of_user(tenant, user)}`, its events reach the user live
//! and on resume like every event of the log. Two rules live here because
//! they are decisions on the inbox's own state:
//!
//! - **preferences** are honoured before anything is stored: a kind turned
//!   off, or a priority below the user's minimum for the kind, raises no
//!   event at all;
//! - **deduplication**: a notification with an alert key (`low-stock:{item}`)
//!   is not raised while an alert with that key is open; `ClearAlert` (when
//!   the item is restocked) closes it.
//!
//! Who is notified of what is decided above, by the notification rules
//! (`larder-app`), which know who manages a store.
//!
//! # Layout
//!
//! - `values`: [`UserId`], [`NotificationKind`], [`Priority`], [`Title`],
//!   [`Body`], [`Subject`], [`AlertKey`], [`Preference`].
//! - `event`: [`Notification`], [`InboxCommand`], [`InboxEvent`].
//! - `state`: [`InboxState`], [`evolve`], [`replay`] and [`decide`].

mod event;
mod state;
mod values;

#[cfg(test)]
pub(crate) mod tests;

pub use event::{InboxCommand, InboxEvent, Notification};
pub use state::{InboxState, decide, evolve, replay};
pub use values::{
    AlertKey, Body, MAX_BODY_CHARS, MAX_TITLE_CHARS, NotificationKind, Preference, Priority,
    Subject, SubjectType, Title, UserId,
};
