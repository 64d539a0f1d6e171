//! What a user's inbox is asked to do, and what happened to it.

use serde::{Deserialize, Serialize};

use crate::ids::{NotificationId, StoreId};
use crate::inbox::{
    AlertKey, Body, NotificationKind, Preference, Priority, Subject, Title, UserId,
};

/// One notification, as raised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Its id ([`NotificationId::derive`] for a rule's).
    pub notification_id: NotificationId,
    /// What it is about.
    pub kind: NotificationKind,
    /// How urgent it is.
    pub priority: Priority,
    /// One line.
    pub title: Title,
    /// More, possibly empty.
    pub body: Body,
    /// What it links to, if anything.
    pub subject: Option<Subject>,
    /// The store it is about, if any.
    pub store_id: Option<StoreId>,
    /// Its deduplication key, for an alert that must not be raised twice
    /// until it is cleared.
    pub alert: Option<AlertKey>,
}

/// What a user's inbox is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxCommand {
    /// Raise a notification, unless the user's preferences turn it away, an
    /// alert with its key is open, or it was raised already.
    Notify {
        /// The user the inbox belongs to.
        user: UserId,
        /// The notification.
        notification: Notification,
    },
    /// Close an open alert, so the next one with its key is raised.
    ClearAlert {
        /// The user the inbox belongs to.
        user: UserId,
        /// The alert's key.
        alert: AlertKey,
    },
    /// Mark one notification read.
    MarkRead {
        /// The user the inbox belongs to.
        user: UserId,
        /// The notification.
        notification_id: NotificationId,
    },
    /// Mark every notification read.
    MarkAllRead {
        /// The user the inbox belongs to.
        user: UserId,
    },
    /// Set the preference for one kind of notification.
    SetPreference {
        /// The user the inbox belongs to.
        user: UserId,
        /// The kind.
        kind: NotificationKind,
        /// The preference.
        preference: Preference,
    },
}

/// What happened to a user's inbox. Stored in the stream `inbox-{inbox id}`
/// ([`crate::InboxId::of_user`]); every event names its user, who is the
/// only one who may see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum InboxEvent {
    /// A notification arrived.
    NotificationRaised {
        /// Whose.
        user: UserId,
        /// The notification.
        notification: Notification,
    },
    /// A notification was read.
    NotificationRead {
        /// Whose.
        user: UserId,
        /// Which.
        notification_id: NotificationId,
    },
    /// Every notification raised before was read.
    AllNotificationsRead {
        /// Whose.
        user: UserId,
        /// How many were unread.
        count: u64,
    },
    /// An alert was cleared (its cause is gone: the item was restocked): the
    /// notifications raised with its key are resolved and read, and the
    /// next alert with the key will be raised.
    AlertCleared {
        /// Whose.
        user: UserId,
        /// The alert's key.
        alert: AlertKey,
    },
    /// The preference for one kind of notification changed.
    NotificationPreferencesSet {
        /// Whose.
        user: UserId,
        /// The kind.
        kind: NotificationKind,
        /// The preference from now on.
        preference: Preference,
    },
}

impl InboxEvent {
    /// The user whose inbox it is.
    pub fn user(&self) -> &UserId {
        match self {
            Self::NotificationRaised { user, .. }
            | Self::NotificationRead { user, .. }
            | Self::AllNotificationsRead { user, .. }
            | Self::AlertCleared { user, .. }
            | Self::NotificationPreferencesSet { user, .. } => user,
        }
    }
}

impl InboxCommand {
    /// The user whose inbox it is addressed to.
    pub fn user(&self) -> &UserId {
        match self {
            Self::Notify { user, .. }
            | Self::ClearAlert { user, .. }
            | Self::MarkRead { user, .. }
            | Self::MarkAllRead { user }
            | Self::SetPreference { user, .. } => user,
        }
    }
}
