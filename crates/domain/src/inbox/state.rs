//! A user's inbox as its stream says it is, and how commands are decided
//! on it.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::DomainError;
use crate::ids::NotificationId;
use crate::inbox::{AlertKey, InboxCommand, InboxEvent, NotificationKind, Preference, UserId};

/// What a user's inbox holds: which notifications were raised and which of
/// them are read, the open alerts, and the preferences.
///
/// It keeps one entry per notification ever raised (an id and a flag), so a
/// rule that runs again names a notification it finds here and raises
/// nothing, whatever the age of the first run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InboxState {
    user: Option<UserId>,
    /// Every notification raised: `true` once read.
    notifications: BTreeMap<NotificationId, bool>,
    unread: u64,
    open_alerts: BTreeSet<AlertKey>,
    /// The unread notifications raised with each alert's key: clearing the
    /// alert resolves them, and they count as read.
    unread_by_alert: BTreeMap<AlertKey, BTreeSet<NotificationId>>,
    preferences: BTreeMap<NotificationKind, Preference>,
}

impl InboxState {
    /// The user, once anything happened in the inbox.
    pub fn user(&self) -> Option<&UserId> {
        self.user.as_ref()
    }

    /// How many notifications are unread.
    pub fn unread(&self) -> u64 {
        self.unread
    }

    /// Whether an alert with `key` is open.
    pub fn is_open(&self, key: &AlertKey) -> bool {
        self.open_alerts.contains(key)
    }

    /// The preference for `kind` (the default when never set).
    pub fn preference(&self, kind: NotificationKind) -> Preference {
        self.preferences.get(&kind).copied().unwrap_or_default()
    }

    /// Whether the notification `id` is in the inbox, and read.
    pub fn read(&self, id: NotificationId) -> Option<bool> {
        self.notifications.get(&id).copied()
    }
}

/// Applies one event.
pub fn evolve(mut state: InboxState, event: &InboxEvent) -> InboxState {
    state.user = Some(event.user().clone());
    match event {
        InboxEvent::NotificationRaised { notification, .. } => {
            if state
                .notifications
                .insert(notification.notification_id, false)
                .is_none()
            {
                state.unread += 1;
            }
            if let Some(alert) = &notification.alert {
                state.open_alerts.insert(alert.clone());
                if state.notifications.get(&notification.notification_id) == Some(&false) {
                    state
                        .unread_by_alert
                        .entry(alert.clone())
                        .or_default()
                        .insert(notification.notification_id);
                }
            }
        }
        InboxEvent::NotificationRead {
            notification_id, ..
        } => {
            if let Some(read) = state.notifications.get_mut(notification_id)
                && !*read
            {
                *read = true;
                state.unread -= 1;
                for ids in state.unread_by_alert.values_mut() {
                    ids.remove(notification_id);
                }
            }
        }
        InboxEvent::AllNotificationsRead { .. } => {
            state
                .notifications
                .values_mut()
                .for_each(|read| *read = true);
            state.unread = 0;
            state.unread_by_alert.clear();
        }
        InboxEvent::AlertCleared { alert, .. } => {
            state.open_alerts.remove(alert);
            for id in state.unread_by_alert.remove(alert).unwrap_or_default() {
                if let Some(read) = state.notifications.get_mut(&id)
                    && !*read
                {
                    *read = true;
                    state.unread -= 1;
                }
            }
        }
        InboxEvent::NotificationPreferencesSet {
            kind, preference, ..
        } => {
            state.preferences.insert(*kind, *preference);
        }
    }
    state
}

/// Folds a stream's events from the empty inbox.
pub fn replay<'a>(events: impl IntoIterator<Item = &'a InboxEvent>) -> InboxState {
    events.into_iter().fold(InboxState::default(), evolve)
}

/// Decides what a command does to a user's inbox.
///
/// - `Notify` raises nothing when the user's preference for its kind is off
///   or above its priority (preferences are honoured before anything is
///   stored), when an alert with its key is open (deduplication: no second
///   low-stock notification for an item until it is restocked), or when a
///   notification with its id was raised already (a rule run twice).
/// - `ClearAlert` of an alert that is not open, `MarkRead` of a read
///   notification, `MarkAllRead` with nothing unread and a preference set to
///   what it is change nothing.
/// - `MarkRead` of a notification the inbox does not hold is refused.
/// - A command naming another user than the inbox's is refused.
pub fn decide(state: &InboxState, cmd: InboxCommand) -> Result<Vec<InboxEvent>, DomainError> {
    if let Some(owner) = &state.user
        && owner != cmd.user()
    {
        return Err(DomainError::InboxMismatch);
    }
    Ok(match cmd {
        InboxCommand::Notify { user, notification } => {
            let wanted = state
                .preference(notification.kind)
                .admits(notification.priority);
            let duplicate = state
                .notifications
                .contains_key(&notification.notification_id)
                || notification
                    .alert
                    .as_ref()
                    .is_some_and(|alert| state.is_open(alert));
            if !wanted || duplicate {
                vec![]
            } else {
                vec![InboxEvent::NotificationRaised { user, notification }]
            }
        }
        InboxCommand::ClearAlert { user, alert } => {
            if state.is_open(&alert) {
                vec![InboxEvent::AlertCleared { user, alert }]
            } else {
                vec![]
            }
        }
        InboxCommand::MarkRead {
            user,
            notification_id,
        } => match state.read(notification_id) {
            None => return Err(DomainError::NotificationNotFound { notification_id }),
            Some(true) => vec![],
            Some(false) => vec![InboxEvent::NotificationRead {
                user,
                notification_id,
            }],
        },
        InboxCommand::MarkAllRead { user } => {
            if state.unread == 0 {
                vec![]
            } else {
                vec![InboxEvent::AllNotificationsRead {
                    user,
                    count: state.unread,
                }]
            }
        }
        InboxCommand::SetPreference {
            user,
            kind,
            preference,
        } => {
            if state.preference(kind) == preference {
                vec![]
            } else {
                vec![InboxEvent::NotificationPreferencesSet {
                    user,
                    kind,
                    preference,
                }]
            }
        }
    })
}
