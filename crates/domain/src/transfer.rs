//! Stock transfers: a domain service over two items.
//!
//! A transfer moves stock from one item to another, within a store or between
//! two stores of the same tenant. It touches two streams, so [`decide`] returns
//! the events for each and the caller appends both lists atomically (expecting
//! the versions it read both states at).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::DomainError;
use crate::ids::{ItemId, TenantId, TransferId};
use crate::item::{ItemEvent, ItemState, StockReason, adjust, require_active_in};
use crate::store::StoreState;
use crate::values::{Delta, Quantity, parse_note};

/// Move `quantity` from one item to another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferStock {
    /// The transfer's id, chosen by the caller.
    pub transfer_id: TransferId,
    /// How much to move; must be above zero.
    pub quantity: Quantity,
    /// Free text recorded on both `StockAdjusted` events, at most
    /// [`crate::MAX_NOTE_CHARS`] characters; trimmed, blank means none.
    #[serde(default)]
    pub note: Option<String>,
}

/// Never change it: stored transfers are found by ids derived from it.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x2f4c_9e0b_8a71_4d3e_b6a5_51c2_d7e8_f903);

/// Which event of a transfer an id is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferEvent {
    /// The `index`th event written to the source item's stream, but for
    /// the last one, its `TransferCompleted`, which is [`Self::Completed`].
    Out(usize),
    /// The `index`th event written to the destination item's stream.
    In(usize),
    /// The source's `TransferCompleted`, whatever its index: the marker by
    /// which a replay of the transfer finds the original.
    Completed,
}

/// The id of one event of a transfer: UUIDv5 of tenant, transfer id and
/// which event it is. A transfer's events are therefore known before it is
/// made, so a request replayed with the same `transfer_id` finds the events
/// the first one wrote (and two racing copies of it cannot both write:
/// the event store refuses an id twice). The tenant is part of the name, so
/// two tenants choosing the same transfer id never meet.
pub fn event_id(tenant: &TenantId, transfer_id: TransferId, event: TransferEvent) -> Uuid {
    let part = match event {
        TransferEvent::Out(index) => format!("out/{index}"),
        TransferEvent::In(index) => format!("in/{index}"),
        TransferEvent::Completed => "completed".to_owned(),
    };
    let name = format!("{tenant}/{transfer_id}/{part}");
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
}

/// Decides a transfer: `(events for item-{from_id}, events for item-{to_id})`.
///
/// Both stores must be open and belong to the same tenant, both items active
/// and distinct, and the source must hold at least `quantity`; the SKUs may
/// differ. Each side gets its `StockAdjusted` (`transfer_out` / `transfer_in`),
/// the alert its status change owes, if any, then the same `TransferCompleted`.
pub fn decide(
    from_store: &StoreState,
    from_item: &ItemState,
    from_id: ItemId,
    to_store: &StoreState,
    to_item: &ItemState,
    to_id: ItemId,
    cmd: TransferStock,
) -> Result<(Vec<ItemEvent>, Vec<ItemEvent>), DomainError> {
    let TransferStock {
        transfer_id,
        quantity,
        note,
    } = cmd;
    if quantity.is_zero() {
        return Err(DomainError::InvalidQuantity {
            field: "quantity",
            reason: "must be greater than zero",
        });
    }
    let note = parse_note(note)?;
    if from_id == to_id {
        return Err(DomainError::TransferToSameItem);
    }
    from_store.require_open()?;
    to_store.require_open()?;
    // Checked before looking at the items, so a request naming another
    // tenant's store learns nothing about its items.
    if from_store.tenant() != to_store.tenant() {
        return Err(DomainError::TransferAcrossTenants);
    }
    let from = require_active_in(from_store, from_item, from_id)?;
    let to = require_active_in(to_store, to_item, to_id)?;

    let completed = ItemEvent::TransferCompleted {
        transfer_id,
        from_store: from.store_id,
        from_item: from_id,
        to_store: to.store_id,
        to_item: to_id,
        sku: from.sku.clone(),
        quantity,
    };
    let mut from_events = adjust(
        &from,
        Delta::outgoing(quantity),
        StockReason::TransferOut,
        note.clone(),
        None,
    )?;
    let mut to_events = adjust(
        &to,
        Delta::incoming(quantity),
        StockReason::TransferIn,
        note,
        None,
    )?;
    from_events.push(completed.clone());
    to_events.push(completed);
    Ok((from_events, to_events))
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ids::StoreId;
    use crate::item;
    use crate::store::{self, StoreEvent};
    use crate::test_support::{
        Then, item_added, item_id_of, other_store_id, other_tenant, q, sku, store_created,
        store_id, t, tenant,
    };

    /// Both sides of a transfer. By default: `FLOUR` of store A to `FLOUR` of
    /// store B, both stores open and of the same tenant.
    struct Given {
        from_store: StoreState,
        from_item: ItemState,
        from_id: ItemId,
        to_store: StoreState,
        to_item: ItemState,
        to_id: ItemId,
    }

    fn open_store(id: StoreId) -> Vec<StoreEvent> {
        vec![store_created(id, tenant())]
    }

    fn given(
        from_events: impl IntoIterator<Item = ItemEvent>,
        to_events: impl IntoIterator<Item = ItemEvent>,
    ) -> Given {
        let from_events: Vec<_> = from_events.into_iter().collect();
        let to_events: Vec<_> = to_events.into_iter().collect();
        Given {
            from_store: store::replay(&open_store(store_id())),
            from_item: item::replay(&from_events),
            from_id: from_id(),
            to_store: store::replay(&open_store(other_store_id())),
            to_item: item::replay(&to_events),
            to_id: to_id(),
        }
    }

    impl Given {
        fn with_from_store(mut self, events: &[StoreEvent]) -> Self {
            self.from_store = store::replay(events);
            self
        }

        fn with_to_store(mut self, events: &[StoreEvent]) -> Self {
            self.to_store = store::replay(events);
            self
        }

        fn when(self, cmd: TransferStock) -> Then<(Vec<ItemEvent>, Vec<ItemEvent>)> {
            Then::new(decide(
                &self.from_store,
                &self.from_item,
                self.from_id,
                &self.to_store,
                &self.to_item,
                self.to_id,
                cmd,
            ))
        }
    }

    fn from_id() -> ItemId {
        item_id_of(store_id(), "FLOUR")
    }

    fn to_id() -> ItemId {
        item_id_of(other_store_id(), "FLOUR")
    }

    fn from_added(quantity: i64, threshold: i64) -> ItemEvent {
        item_added(store_id(), "FLOUR", quantity, threshold)
    }

    fn to_added(quantity: i64, threshold: i64) -> ItemEvent {
        item_added(other_store_id(), "FLOUR", quantity, threshold)
    }

    fn transfer_id() -> TransferId {
        TransferId::new(Uuid::from_u128(0x7f))
    }

    fn transfer(quantity: i64) -> TransferStock {
        TransferStock {
            transfer_id: transfer_id(),
            quantity: q(quantity),
            note: None,
        }
    }

    fn out_of(quantity: i64, left: i64) -> ItemEvent {
        ItemEvent::StockAdjusted {
            item_id: from_id(),
            store_id: store_id(),
            delta: Delta::parse(-quantity).unwrap(),
            quantity: q(left),
            reason: StockReason::TransferOut,
            note: None,
            undoes: None,
        }
    }

    fn into(quantity: i64, now: i64) -> ItemEvent {
        ItemEvent::StockAdjusted {
            item_id: to_id(),
            store_id: other_store_id(),
            delta: Delta::parse(quantity).unwrap(),
            quantity: q(now),
            reason: StockReason::TransferIn,
            note: None,
            undoes: None,
        }
    }

    fn completed(quantity: i64) -> ItemEvent {
        ItemEvent::TransferCompleted {
            transfer_id: transfer_id(),
            from_store: store_id(),
            from_item: from_id(),
            to_store: other_store_id(),
            to_item: to_id(),
            sku: sku("FLOUR"),
            quantity: q(quantity),
        }
    }

    #[test]
    fn event_ids_are_a_function_of_tenant_transfer_and_place() {
        let id =
            |tenant: &str, event| event_id(&TenantId::parse(tenant).unwrap(), transfer_id(), event);
        assert_eq!(
            id("acme", TransferEvent::Completed),
            id("acme", TransferEvent::Completed)
        );
        let all = [
            id("acme", TransferEvent::Completed),
            id("acme", TransferEvent::Out(0)),
            id("acme", TransferEvent::Out(1)),
            id("acme", TransferEvent::In(0)),
            id("other", TransferEvent::Completed),
        ];
        let distinct: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
    }

    #[test]
    fn transferring_stock_moves_it_between_stores_of_a_tenant() {
        given([from_added(10, 2)], [to_added(10, 2)])
            .when(transfer(4))
            .then((
                vec![out_of(4, 6), completed(4)],
                vec![into(4, 14), completed(4)],
            ));
    }

    #[test]
    fn transferring_raises_the_alerts_of_both_sides_before_completing() {
        let from_low = ItemEvent::LowStock {
            item_id: from_id(),
            store_id: store_id(),
            sku: sku("FLOUR"),
            quantity: q(2),
            threshold: t(2),
        };
        let to_restocked = ItemEvent::Restocked {
            item_id: to_id(),
            store_id: other_store_id(),
            sku: sku("FLOUR"),
            quantity: q(9),
            threshold: t(2),
        };
        given([from_added(10, 2)], [to_added(1, 2)])
            .when(transfer(8))
            .then((
                vec![out_of(8, 2), from_low, completed(8)],
                vec![into(8, 9), to_restocked, completed(8)],
            ));
    }

    #[test]
    fn transferring_everything_raises_out_of_stock_at_the_source() {
        let from_out = ItemEvent::OutOfStock {
            item_id: from_id(),
            store_id: store_id(),
            sku: sku("FLOUR"),
        };
        let to_low = ItemEvent::LowStock {
            item_id: to_id(),
            store_id: other_store_id(),
            sku: sku("FLOUR"),
            quantity: q(3),
            threshold: t(5),
        };
        given([from_added(3, 1)], [to_added(0, 5)])
            .when(transfer(3))
            .then((
                vec![out_of(3, 0), from_out, completed(3)],
                vec![into(3, 3), to_low, completed(3)],
            ));
    }

    #[test]
    fn stock_can_move_between_two_skus_of_one_store() {
        let sugar = item_id_of(store_id(), "SUGAR");
        let mut given = given([from_added(10, 0)], [item_added(store_id(), "SUGAR", 0, 0)])
            .with_to_store(&open_store(store_id()));
        given.to_id = sugar;
        let completed = ItemEvent::TransferCompleted {
            transfer_id: transfer_id(),
            from_store: store_id(),
            from_item: from_id(),
            to_store: store_id(),
            to_item: sugar,
            sku: sku("FLOUR"),
            quantity: q(1),
        };
        given.when(transfer(1)).then((
            vec![out_of(1, 9), completed.clone()],
            vec![
                ItemEvent::StockAdjusted {
                    item_id: sugar,
                    store_id: store_id(),
                    delta: Delta::parse(1).unwrap(),
                    quantity: q(1),
                    reason: StockReason::TransferIn,
                    note: None,
                    undoes: None,
                },
                ItemEvent::Restocked {
                    item_id: sugar,
                    store_id: store_id(),
                    sku: sku("SUGAR"),
                    quantity: q(1),
                    threshold: t(0),
                },
                completed,
            ],
        ));
    }

    #[test]
    fn the_note_is_recorded_on_both_sides() {
        let (from, to) = decide(
            &store::replay(&open_store(store_id())),
            &item::replay(&[from_added(10, 2)]),
            from_id(),
            &store::replay(&open_store(other_store_id())),
            &item::replay(&[to_added(10, 2)]),
            to_id(),
            TransferStock {
                note: Some(" for the weekend ".into()),
                ..transfer(1)
            },
        )
        .unwrap();
        for event in [&from[0], &to[0]] {
            assert!(
                matches!(event, ItemEvent::StockAdjusted { note: Some(n), .. } if n == "for the weekend")
            );
        }
    }

    #[test]
    fn transferring_more_than_the_source_holds_is_rejected() {
        given([from_added(3, 1)], [to_added(0, 1)])
            .when(transfer(4))
            .then_err(DomainError::InsufficientStock {
                available: 3,
                requested: 4,
            });
    }

    #[test]
    fn transferring_nothing_is_rejected() {
        given([from_added(3, 1)], [to_added(0, 1)])
            .when(transfer(0))
            .then_err(DomainError::InvalidQuantity {
                field: "quantity",
                reason: "must be greater than zero",
            });
    }

    #[test]
    fn transferring_to_the_same_item_is_rejected() {
        let mut given =
            given([from_added(3, 1)], [from_added(3, 1)]).with_to_store(&open_store(store_id()));
        given.to_id = from_id();
        given
            .when(transfer(1))
            .then_err(DomainError::TransferToSameItem);
    }

    #[test]
    fn transferring_across_tenants_is_rejected() {
        given([from_added(3, 1)], [to_added(0, 1)])
            .with_to_store(&[store_created(other_store_id(), other_tenant())])
            .when(transfer(1))
            .then_err(DomainError::TransferAcrossTenants);
    }

    #[test]
    fn transferring_from_or_to_a_closed_store_is_rejected() {
        let closed = |id| {
            vec![
                store_created(id, tenant()),
                StoreEvent::StoreClosed { store_id: id },
            ]
        };
        given([from_added(3, 1)], [to_added(0, 1)])
            .with_from_store(&closed(store_id()))
            .when(transfer(1))
            .then_err(DomainError::StoreClosed);
        given([from_added(3, 1)], [to_added(0, 1)])
            .with_to_store(&closed(other_store_id()))
            .when(transfer(1))
            .then_err(DomainError::StoreClosed);
    }

    #[test]
    fn transferring_from_or_to_a_store_that_does_not_exist_is_rejected() {
        given([from_added(3, 1)], [to_added(0, 1)])
            .with_from_store(&[])
            .when(transfer(1))
            .then_err(DomainError::StoreNotFound);
        given([from_added(3, 1)], [to_added(0, 1)])
            .with_to_store(&[])
            .when(transfer(1))
            .then_err(DomainError::StoreNotFound);
    }

    #[test]
    fn transferring_from_or_to_an_item_that_was_never_added_is_rejected() {
        given([], [to_added(0, 1)])
            .when(transfer(1))
            .then_err(DomainError::ItemNotFound { item_id: from_id() });
        given([from_added(3, 1)], [])
            .when(transfer(1))
            .then_err(DomainError::ItemNotFound { item_id: to_id() });
    }

    #[test]
    fn transferring_from_or_to_a_removed_item_is_rejected() {
        let from_removed = ItemEvent::ItemRemoved {
            item_id: from_id(),
            store_id: store_id(),
        };
        let to_removed = ItemEvent::ItemRemoved {
            item_id: to_id(),
            store_id: other_store_id(),
        };
        given([from_added(3, 1), from_removed], [to_added(0, 1)])
            .when(transfer(1))
            .then_err(DomainError::ItemRemoved { item_id: from_id() });
        given([from_added(3, 1)], [to_added(0, 1), to_removed])
            .when(transfer(1))
            .then_err(DomainError::ItemRemoved { item_id: to_id() });
    }

    #[test]
    fn transferring_with_the_state_of_the_wrong_store_is_rejected() {
        given([from_added(3, 1)], [to_added(0, 1)])
            .with_to_store(&open_store(store_id()))
            .when(transfer(1))
            .then_err(DomainError::StoreMismatch {
                expected: other_store_id(),
                actual: store_id(),
            });
    }

    #[test]
    fn transferring_past_the_largest_quantity_at_the_destination_is_rejected() {
        given([from_added(3, 1)], [to_added(i64::MAX, 1)])
            .when(transfer(1))
            .then_err(DomainError::QuantityOverflow);
    }

    #[test]
    fn a_transfer_note_longer_than_500_characters_is_rejected() {
        given([from_added(3, 1)], [to_added(0, 1)])
            .when(TransferStock {
                note: Some("x".repeat(501)),
                ..transfer(1)
            })
            .then_err(DomainError::InvalidNote {
                field: "note",
                reason: "must be at most 500 characters",
            });
    }

    #[test]
    fn replaying_both_streams_after_a_transfer_shows_the_moved_stock() {
        let (from, to) = decide(
            &store::replay(&open_store(store_id())),
            &item::replay(&[from_added(10, 2)]),
            from_id(),
            &store::replay(&open_store(other_store_id())),
            &item::replay(&[to_added(1, 2)]),
            to_id(),
            transfer(8),
        )
        .unwrap();
        let from_state = item::replay([from_added(10, 2)].iter().chain(&from));
        let to_state = item::replay([to_added(1, 2)].iter().chain(&to));
        assert_eq!(from_state.quantity(), Some(q(2)));
        assert_eq!(to_state.quantity(), Some(q(9)));
    }
}
