//! The notification rules: which events owe which notifications, to whom.
//! Pure functions of one event; who "the store's managers" are is looked up
//! later, in the user directory.

use larder_domain::{
    AlertKey, Body, DomainEvent, ItemEvent, ItemId, NotificationKind, OrderEvent, OrderId,
    Priority, StoreId, Subject, SubjectType, Title,
};

/// Who a rule addresses; resolved to users by the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Every user of the tenant with the `manager` role or above who may see
    /// the store. The kitchen lead of a store is its manager: orders
    /// waiting too long go to them too.
    StoreManagers(StoreId),
    /// The user who opened the order (the actor of its `OrderOpened`).
    OrderTaker(OrderId),
}

/// What a rule asks of the inboxes of its audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Raise a notification.
    Notify(Template),
    /// Clear an open alert.
    Clear(AlertKey),
}

/// A notification before it has a recipient (and so an id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// What it derives its id from in each inbox: the same for every run
    /// of the rule over the same cause.
    pub key: String,
    /// Its kind.
    pub kind: NotificationKind,
    /// Its priority.
    pub priority: Priority,
    /// Its title.
    pub title: Title,
    /// Its body.
    pub body: Body,
    /// What it links to.
    pub subject: Option<Subject>,
    /// The store it is about.
    pub store_id: Option<StoreId>,
    /// Its deduplication key.
    pub alert: Option<AlertKey>,
}

/// One rule's outcome for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// The rule's name, part of each delivery's idempotency key.
    pub rule: &'static str,
    /// Who it is for (the union of these).
    pub audience: Vec<Audience>,
    /// What to do.
    pub action: Action,
}

/// The alert key of an item's low-stock notifications.
pub fn low_stock_alert(item: ItemId) -> AlertKey {
    alert(format!("low-stock:{item}"))
}

/// The alert key of an item's out-of-stock notifications.
pub fn out_of_stock_alert(item: ItemId) -> AlertKey {
    alert(format!("out-of-stock:{item}"))
}

fn alert(key: String) -> AlertKey {
    // A fixed prefix and a UUID: always a valid key.
    AlertKey::parse(&key).expect("a prefix and a UUID make a valid alert key")
}

fn title(text: String) -> Title {
    // Rules write their own titles; cut one that a long SKU or name would
    // make too long rather than lose the notification.
    let cut: String = text
        .chars()
        .take(larder_domain::inbox::MAX_TITLE_CHARS)
        .collect();
    Title::parse(&cut).unwrap_or_else(|_| Title::parse("Notification").expect("a valid title"))
}

fn body(text: String) -> Body {
    let cut: String = text
        .chars()
        .take(larder_domain::inbox::MAX_BODY_CHARS)
        .collect();
    Body::parse(&cut).unwrap_or_else(|_| Body::parse("").expect("an empty body is valid"))
}

fn item_subject(item: ItemId) -> Option<Subject> {
    Some(Subject {
        entity_type: SubjectType::Item,
        id: item.to_string(),
    })
}

fn order_subject(order: OrderId) -> Option<Subject> {
    Some(Subject {
        entity_type: SubjectType::Order,
        id: order.to_string(),
    })
}

/// The notifications (and alert clearings) `event` owes. `event_id` is the
/// stored event's id, `entity_id` the stream's entity id in its metadata
/// (a transfer's `TransferCompleted` is stored twice, once per item: only
/// the source side's notifies).
pub fn rules(event: &DomainEvent, event_id: uuid::Uuid, entity_id: &str) -> Vec<Intent> {
    match event {
        DomainEvent::Item(ItemEvent::LowStock {
            item_id,
            store_id,
            sku,
            quantity,
            threshold,
        }) => vec![Intent {
            rule: "low-stock",
            audience: vec![Audience::StoreManagers(*store_id)],
            action: Action::Notify(Template {
                key: format!("low-stock:{event_id}"),
                kind: NotificationKind::LowStock,
                priority: Priority::High,
                title: title(format!("{sku} is low")),
                body: body(format!(
                    "{} left, at or below the threshold of {}.",
                    quantity.get(),
                    threshold.get()
                )),
                subject: item_subject(*item_id),
                store_id: Some(*store_id),
                alert: Some(low_stock_alert(*item_id)),
            }),
        }],
        DomainEvent::Item(ItemEvent::OutOfStock {
            item_id,
            store_id,
            sku,
        }) => vec![Intent {
            rule: "out-of-stock",
            audience: vec![Audience::StoreManagers(*store_id)],
            action: Action::Notify(Template {
                key: format!("out-of-stock:{event_id}"),
                kind: NotificationKind::OutOfStock,
                priority: Priority::Urgent,
                title: title(format!("{sku} is out of stock")),
                body: body("Nothing left on hand.".to_owned()),
                subject: item_subject(*item_id),
                store_id: Some(*store_id),
                alert: Some(out_of_stock_alert(*item_id)),
            }),
        }],
        DomainEvent::Item(ItemEvent::Restocked {
            item_id, store_id, ..
        }) => [
            ("restocked-low", low_stock_alert(*item_id)),
            ("restocked-out", out_of_stock_alert(*item_id)),
        ]
        .into_iter()
        .map(|(rule, key)| Intent {
            rule,
            audience: vec![Audience::StoreManagers(*store_id)],
            action: Action::Clear(key),
        })
        .collect(),
        DomainEvent::Item(ItemEvent::TransferCompleted {
            transfer_id,
            from_store,
            from_item,
            to_store,
            sku,
            quantity,
            ..
        }) if from_item.to_string() == entity_id => {
            let mut audience = vec![Audience::StoreManagers(*from_store)];
            if to_store != from_store {
                audience.push(Audience::StoreManagers(*to_store));
            }
            vec![Intent {
                rule: "transfer",
                audience,
                action: Action::Notify(Template {
                    key: format!("transfer:{transfer_id}"),
                    kind: NotificationKind::TransferCompleted,
                    priority: Priority::Normal,
                    title: title(format!("Transfer of {} {sku} completed", quantity.get())),
                    body: body(format!("From store {from_store} to store {to_store}.")),
                    subject: item_subject(*from_item),
                    store_id: Some(*from_store),
                    alert: None,
                }),
            }]
        }
        DomainEvent::Order(OrderEvent::OrderReady {
            order_id, store_id, ..
        }) => vec![Intent {
            rule: "order-ready",
            audience: vec![Audience::OrderTaker(*order_id)],
            action: Action::Notify(Template {
                key: format!("order-ready:{event_id}"),
                kind: NotificationKind::OrderReady,
                priority: Priority::High,
                title: title("An order you took is ready".to_owned()),
                body: body(format!("Order {order_id} is ready at the pass.")),
                subject: order_subject(*order_id),
                store_id: Some(*store_id),
                alert: None,
            }),
        }],
        _ => Vec::new(),
    }
}

/// The notification for an order that has waited at `station` past its
/// threshold (`late_after_secs`), to the kitchen lead (the store's
/// managers). Raised once per order and station: its key names both.
pub fn order_waiting(
    order_id: OrderId,
    store_id: StoreId,
    station: &str,
    waited_secs: u64,
    late_after_secs: u64,
) -> Intent {
    Intent {
        rule: "order-waiting",
        audience: vec![Audience::StoreManagers(store_id)],
        action: Action::Notify(Template {
            key: format!("order-waiting:{order_id}:{station}"),
            kind: NotificationKind::OrderWaiting,
            priority: Priority::Urgent,
            title: title(format!("An order is waiting at {station}")),
            body: body(format!(
                "Order {order_id} has waited {} min at {station}, past its threshold of {} min.",
                waited_secs / 60,
                late_after_secs / 60
            )),
            subject: order_subject(order_id),
            store_id: Some(store_id),
            alert: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use larder_domain::{Quantity, Sku, Threshold, TransferId};
    use uuid::Uuid;

    use super::*;

    fn store() -> StoreId {
        StoreId::new(Uuid::from_u128(1))
    }

    fn item() -> ItemId {
        ItemId::new(Uuid::from_u128(2))
    }

    fn low() -> DomainEvent {
        DomainEvent::Item(ItemEvent::LowStock {
            item_id: item(),
            store_id: store(),
            sku: Sku::parse("FLOUR").unwrap(),
            quantity: Quantity::parse(2).unwrap(),
            threshold: Threshold::parse(3).unwrap(),
        })
    }

    #[test]
    fn low_stock_notifies_the_stores_managers_with_the_items_alert_key() {
        let intents = rules(&low(), Uuid::from_u128(9), &item().to_string());
        assert_eq!(intents.len(), 1);
        let intent = &intents[0];
        assert_eq!(intent.audience, vec![Audience::StoreManagers(store())]);
        let Action::Notify(template) = &intent.action else {
            panic!("expected a notification")
        };
        assert_eq!(template.kind, NotificationKind::LowStock);
        assert_eq!(template.priority, Priority::High);
        assert_eq!(template.alert, Some(low_stock_alert(item())));
        assert_eq!(template.title.as_str(), "FLOUR is low");
        assert_eq!(
            template.subject,
            Some(Subject {
                entity_type: SubjectType::Item,
                id: item().to_string()
            })
        );
    }

    #[test]
    fn the_same_event_always_makes_the_same_template() {
        let id = Uuid::from_u128(9);
        assert_eq!(
            rules(&low(), id, &item().to_string()),
            rules(&low(), id, &item().to_string())
        );
    }

    #[test]
    fn restocked_clears_both_alerts_of_the_item() {
        let restocked = DomainEvent::Item(ItemEvent::Restocked {
            item_id: item(),
            store_id: store(),
            sku: Sku::parse("FLOUR").unwrap(),
            quantity: Quantity::parse(20).unwrap(),
            threshold: Threshold::parse(3).unwrap(),
        });
        let actions: Vec<_> = rules(&restocked, Uuid::nil(), "")
            .into_iter()
            .map(|intent| intent.action)
            .collect();
        assert_eq!(
            actions,
            vec![
                Action::Clear(low_stock_alert(item())),
                Action::Clear(out_of_stock_alert(item()))
            ]
        );
    }

    #[test]
    fn a_transfer_notifies_both_stores_once_from_its_source_side() {
        let to_store = StoreId::new(Uuid::from_u128(3));
        let to_item = ItemId::new(Uuid::from_u128(4));
        let done = DomainEvent::Item(ItemEvent::TransferCompleted {
            transfer_id: TransferId::new(Uuid::from_u128(5)),
            from_store: store(),
            from_item: item(),
            to_store,
            to_item,
            sku: Sku::parse("FLOUR").unwrap(),
            quantity: Quantity::parse(2).unwrap(),
        });
        let source = rules(&done, Uuid::from_u128(6), &item().to_string());
        assert_eq!(source.len(), 1);
        assert_eq!(
            source[0].audience,
            vec![
                Audience::StoreManagers(store()),
                Audience::StoreManagers(to_store)
            ]
        );
        assert!(rules(&done, Uuid::from_u128(7), &to_item.to_string()).is_empty());
    }

    #[test]
    fn an_order_ready_goes_to_whoever_took_it() {
        let order = OrderId::new(Uuid::from_u128(8));
        let ready = DomainEvent::Order(OrderEvent::OrderReady {
            order_id: order,
            store_id: store(),
        });
        let intents = rules(&ready, Uuid::nil(), &order.to_string());
        assert_eq!(intents[0].audience, vec![Audience::OrderTaker(order)]);
    }

    #[test]
    fn an_order_waiting_is_keyed_by_order_and_station() {
        let order = OrderId::new(Uuid::from_u128(8));
        let Action::Notify(template) = order_waiting(order, store(), "grill", 700, 600).action
        else {
            panic!("expected a notification")
        };
        assert_eq!(template.key, format!("order-waiting:{order}:grill"));
        assert_eq!(template.kind, NotificationKind::OrderWaiting);
    }

    #[test]
    fn other_events_owe_nothing() {
        let closed =
            DomainEvent::Store(larder_domain::StoreEvent::StoreClosed { store_id: store() });
        assert!(rules(&closed, Uuid::nil(), "").is_empty());
    }
}
