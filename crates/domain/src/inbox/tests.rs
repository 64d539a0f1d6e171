//! Given / when / then tests of a user's inbox: preferences, deduplication
//! of alerts, reading.

use uuid::Uuid;

use super::*;
use crate::error::DomainError;
use crate::ids::{InboxId, NotificationId};
use crate::test_support::{Then, item_id_of, store_id, tenant};

fn alice() -> UserId {
    UserId::parse("alice").unwrap()
}

fn bob() -> UserId {
    UserId::parse("bob").unwrap()
}

fn inbox() -> InboxId {
    InboxId::of_user(&tenant(), &alice())
}

fn low_stock_alert() -> AlertKey {
    AlertKey::parse(&format!("low-stock:{}", item_id_of(store_id(), "FLOUR"))).unwrap()
}

/// A low-stock notification about FLOUR, raised for the event `cause`.
fn low_stock(cause: u128) -> Notification {
    let item = item_id_of(store_id(), "FLOUR");
    Notification {
        notification_id: NotificationId::derive(inbox(), &format!("low-stock:{cause}")),
        kind: NotificationKind::LowStock,
        priority: Priority::High,
        title: Title::parse("FLOUR is low").unwrap(),
        body: Body::parse("3 left, threshold 3").unwrap(),
        subject: Some(Subject {
            entity_type: SubjectType::Item,
            id: item.to_string(),
        }),
        store_id: Some(store_id()),
        alert: Some(low_stock_alert()),
    }
}

fn broadcast(id: u128, priority: Priority) -> Notification {
    Notification {
        notification_id: NotificationId::new(Uuid::from_u128(id)),
        kind: NotificationKind::Broadcast,
        priority,
        title: Title::parse("Inventory count tonight").unwrap(),
        body: Body::parse("").unwrap(),
        subject: None,
        store_id: None,
        alert: None,
    }
}

fn raised(notification: Notification) -> InboxEvent {
    InboxEvent::NotificationRaised {
        user: alice(),
        notification,
    }
}

fn notify(notification: Notification) -> InboxCommand {
    InboxCommand::Notify {
        user: alice(),
        notification,
    }
}

fn preference(kind: NotificationKind, enabled: bool, min_priority: Priority) -> InboxEvent {
    InboxEvent::NotificationPreferencesSet {
        user: alice(),
        kind,
        preference: Preference {
            enabled,
            min_priority,
        },
    }
}

struct Given(InboxState);

fn given(events: impl IntoIterator<Item = InboxEvent>) -> Given {
    let events: Vec<_> = events.into_iter().collect();
    Given(replay(&events))
}

impl Given {
    fn when(self, cmd: InboxCommand) -> Then<Vec<InboxEvent>> {
        Then::new(decide(&self.0, cmd))
    }
}

/// One event of every inbox type (for the event codec's tests).
pub(crate) fn inbox_events() -> Vec<InboxEvent> {
    vec![
        raised(low_stock(1)),
        InboxEvent::NotificationRead {
            user: alice(),
            notification_id: low_stock(1).notification_id,
        },
        InboxEvent::AllNotificationsRead {
            user: alice(),
            count: 2,
        },
        InboxEvent::AlertCleared {
            user: alice(),
            alert: low_stock_alert(),
        },
        preference(NotificationKind::LowStock, false, Priority::Low),
    ]
}

#[test]
fn a_notification_is_raised_in_an_empty_inbox() {
    given([])
        .when(notify(low_stock(1)))
        .then(vec![raised(low_stock(1))]);
}

#[test]
fn a_second_low_stock_notification_for_an_item_is_not_raised_until_it_is_restocked() {
    given([raised(low_stock(1))])
        .when(notify(low_stock(2)))
        .then(vec![]);
}

#[test]
fn after_the_alert_is_cleared_the_next_low_stock_notification_is_raised() {
    given([
        raised(low_stock(1)),
        InboxEvent::AlertCleared {
            user: alice(),
            alert: low_stock_alert(),
        },
    ])
    .when(notify(low_stock(2)))
    .then(vec![raised(low_stock(2))]);
}

#[test]
fn reading_an_alert_does_not_let_a_second_one_through() {
    given([
        raised(low_stock(1)),
        InboxEvent::AllNotificationsRead {
            user: alice(),
            count: 1,
        },
    ])
    .when(notify(low_stock(2)))
    .then(vec![]);
}

#[test]
fn the_same_notification_raised_twice_is_raised_once() {
    let once = broadcast(7, Priority::Normal);
    given([raised(once.clone())])
        .when(notify(once))
        .then(vec![]);
}

#[test]
fn a_kind_turned_off_raises_nothing() {
    given([preference(NotificationKind::LowStock, false, Priority::Low)])
        .when(notify(low_stock(1)))
        .then(vec![]);
}

#[test]
fn a_kind_turned_off_leaves_other_kinds_alone() {
    given([preference(NotificationKind::LowStock, false, Priority::Low)])
        .when(notify(broadcast(7, Priority::Low)))
        .then(vec![raised(broadcast(7, Priority::Low))]);
}

#[test]
fn a_notification_below_the_minimum_priority_raises_nothing() {
    given([preference(
        NotificationKind::Broadcast,
        true,
        Priority::High,
    )])
    .when(notify(broadcast(7, Priority::Normal)))
    .then(vec![]);
    given([preference(
        NotificationKind::Broadcast,
        true,
        Priority::High,
    )])
    .when(notify(broadcast(8, Priority::Urgent)))
    .then(vec![raised(broadcast(8, Priority::Urgent))]);
}

#[test]
fn a_low_stock_notification_turned_away_by_preferences_opens_no_alert() {
    let state = replay(&[preference(NotificationKind::LowStock, false, Priority::Low)]);
    assert!(decide(&state, notify(low_stock(1))).unwrap().is_empty());
    assert!(!state.is_open(&low_stock_alert()));
}

#[test]
fn clearing_an_open_alert_closes_it_and_clearing_a_closed_one_does_nothing() {
    let clear = || InboxCommand::ClearAlert {
        user: alice(),
        alert: low_stock_alert(),
    };
    given([raised(low_stock(1))])
        .when(clear())
        .then(vec![InboxEvent::AlertCleared {
            user: alice(),
            alert: low_stock_alert(),
        }]);
    given([]).when(clear()).then(vec![]);
}

#[test]
fn marking_a_notification_read_once() {
    let id = low_stock(1).notification_id;
    let read = InboxEvent::NotificationRead {
        user: alice(),
        notification_id: id,
    };
    let mark = || InboxCommand::MarkRead {
        user: alice(),
        notification_id: id,
    };
    given([raised(low_stock(1))])
        .when(mark())
        .then(vec![read.clone()]);
    given([raised(low_stock(1)), read])
        .when(mark())
        .then(vec![]);
}

#[test]
fn marking_an_unknown_notification_read_is_refused() {
    let id = NotificationId::new(Uuid::from_u128(99));
    given([])
        .when(InboxCommand::MarkRead {
            user: alice(),
            notification_id: id,
        })
        .then_err(DomainError::NotificationNotFound {
            notification_id: id,
        });
}

#[test]
fn marking_all_read_counts_the_unread_and_does_nothing_when_none_are() {
    let state = replay(&[
        raised(low_stock(1)),
        raised(broadcast(7, Priority::Low)),
        InboxEvent::NotificationRead {
            user: alice(),
            notification_id: low_stock(1).notification_id,
        },
    ]);
    assert_eq!(state.unread(), 1);
    let all = InboxCommand::MarkAllRead { user: alice() };
    assert_eq!(
        decide(&state, all.clone()),
        Ok(vec![InboxEvent::AllNotificationsRead {
            user: alice(),
            count: 1
        }])
    );
    given([]).when(all).then(vec![]);
}

#[test]
fn a_cleared_alert_resolves_its_unread_notifications_as_read() {
    let cleared = InboxEvent::AlertCleared {
        user: alice(),
        alert: low_stock_alert(),
    };
    let state = replay(&[
        raised(low_stock(1)),
        raised(broadcast(7, Priority::Low)),
        cleared.clone(),
    ]);
    assert_eq!(state.unread(), 1, "only the broadcast is left unread");
    assert_eq!(state.read(low_stock(1).notification_id), Some(true));
    // Read before the alert cleared: counted once.
    let state = replay(&[
        raised(low_stock(1)),
        InboxEvent::NotificationRead {
            user: alice(),
            notification_id: low_stock(1).notification_id,
        },
        cleared.clone(),
    ]);
    assert_eq!(state.unread(), 0);
    given([raised(low_stock(1)), cleared])
        .when(InboxCommand::MarkAllRead { user: alice() })
        .then(vec![]);
}

#[test]
fn setting_a_preference_to_what_it_is_changes_nothing() {
    let set = |enabled| InboxCommand::SetPreference {
        user: alice(),
        kind: NotificationKind::LowStock,
        preference: Preference {
            enabled,
            min_priority: Priority::Low,
        },
    };
    given([]).when(set(true)).then(vec![]);
    given([]).when(set(false)).then(vec![preference(
        NotificationKind::LowStock,
        false,
        Priority::Low,
    )]);
}

#[test]
fn a_command_for_another_user_is_refused() {
    given([raised(low_stock(1))])
        .when(InboxCommand::MarkAllRead { user: bob() })
        .then_err(DomainError::InboxMismatch);
}

#[test]
fn bad_titles_users_and_kinds_do_not_parse() {
    assert!(Title::parse("  ").is_err());
    assert!(Title::parse(&"x".repeat(MAX_TITLE_CHARS + 1)).is_err());
    assert!(Body::parse(&"x".repeat(MAX_BODY_CHARS + 1)).is_err());
    assert!(Body::parse("two\nlines").is_ok());
    assert!(UserId::parse("al ice").is_err());
    assert!(UserId::parse("").is_err());
    assert!(NotificationKind::parse("spam").is_err());
    assert_eq!(
        NotificationKind::parse("low_stock"),
        Ok(NotificationKind::LowStock)
    );
    assert!(Priority::Urgent > Priority::High && Priority::Normal > Priority::Low);
}
