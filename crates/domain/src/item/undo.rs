//! Undo and redo of item changes, as compensating events: an undo is a new
//! event, the inverse of the change it undoes and naming it in `undoes`;
//! nothing is ever deleted. A redo undoes the undo.
//!
//! The rules (see `docs/events.md`, "Undo and redo"):
//!
//! - Undoable: stock adjustments (not the two sides of a transfer), renames
//!   and threshold changes, compensating ones included. Anything else is
//!   [`DomainError::NotUndoable`]; an id not in the item's stream is
//!   [`DomainError::ChangeNotFound`].
//! - Who: [`UndoScope::AnyChange`] (managers and above) may undo any of
//!   them; [`UndoScope::OwnStockAdjustments`] (staff) only stock adjustments
//!   they made themselves ([`DomainError::UndoNotAllowed`]).
//! - Once: a change that was undone is [`DomainError::AlreadyUndone`]; to
//!   bring it back, redo it (undo its undo).
//! - Nothing later may depend on it ([`DomainError::UndoConflict`]): a name
//!   or threshold must still hold the value the change gave it (else a later
//!   change set it, and undoing would silently overwrite that); a stock
//!   adjustment must not be followed by a stock count (`counted`, not itself
//!   undone), which fixed the quantity from then on; and no change can be
//!   undone once the item was added again after it. Adjustments otherwise
//!   commute: undoing one applies its inverse to today's stock, refused with
//!   [`DomainError::InsufficientStock`] if that would go below zero.
//! - The item must be active and its store open, as for any change.

use crate::error::DomainError;
use crate::event::DomainEvent;
use crate::ids::{EventId, ItemId};
use crate::item::decide::{adjust, alert, require_active_in};
use crate::item::{ItemEvent, ItemState, StockReason, StockStatus, evolve, replay};
use crate::store::StoreState;

/// One event of an item's stream with what the event store recorded about
/// it: its id and who caused it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// The stored event's id.
    pub id: EventId,
    /// The user or service whose command wrote it, if known.
    pub actor: Option<String>,
    /// The fact.
    pub event: ItemEvent,
}

/// An item's state together with its stream, for the undo rules: which
/// changes exist, who made them, and what came after.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ItemHistory {
    state: ItemState,
    events: Vec<Recorded>,
}

impl ItemHistory {
    /// The item's state after every recorded event.
    pub fn state(&self) -> &ItemState {
        &self.state
    }

    /// The recorded events, oldest first.
    pub fn events(&self) -> &[Recorded] {
        &self.events
    }

    /// Applies one recorded event. Never fails: events are facts.
    #[must_use]
    pub fn record(mut self, recorded: Recorded) -> Self {
        self.state = evolve(self.state, &recorded.event);
        self.events.push(recorded);
        self
    }
}

/// Folds an item's recorded stream, oldest first.
pub fn replay_history(events: impl IntoIterator<Item = Recorded>) -> ItemHistory {
    events
        .into_iter()
        .fold(ItemHistory::default(), ItemHistory::record)
}

/// What the caller may undo, from their role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UndoScope {
    /// Only stock adjustments the caller made (staff).
    OwnStockAdjustments,
    /// Any undoable change, whoever made it (managers and above).
    AnyChange,
}

/// Undo or redo one change of an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UndoChange {
    /// Undo this change, or redo it (undo the undo that undid it).
    pub action: UndoAction,
    /// The change: the id of a stored event of the item's stream.
    pub event_id: EventId,
    /// Who asks (compared with the change's author).
    pub actor: String,
    /// What they may undo.
    pub scope: UndoScope,
}

/// Undo or redo.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UndoAction {
    /// Append the inverse of the change.
    Undo,
    /// The change was undone: undo that undo, so the change is in effect
    /// again. [`DomainError::NotUndone`] if nothing (live) undid it.
    Redo,
}

/// Which field an undoable change set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Stock,
    Name,
    Threshold,
}

fn field(event: &ItemEvent) -> Result<Field, DomainError> {
    match event {
        ItemEvent::StockAdjusted {
            reason: StockReason::TransferIn | StockReason::TransferOut,
            ..
        } => Err(DomainError::NotUndoable { what: "a transfer" }),
        ItemEvent::StockAdjusted { .. } => Ok(Field::Stock),
        ItemEvent::ItemRenamed { .. } => Ok(Field::Name),
        ItemEvent::ThresholdChanged { .. } => Ok(Field::Threshold),
        other => Err(DomainError::NotUndoable {
            what: DomainEvent::Item(other.clone()).event_type(),
        }),
    }
}

/// Decides an undo or redo: the compensating event (and the alert it
/// causes, if any) to append to `item-{item_id}`, or why not (see the module
/// docs for the rules, in the order they are checked).
pub fn decide(
    store: &StoreState,
    history: &ItemHistory,
    item_id: ItemId,
    cmd: UndoChange,
) -> Result<Vec<ItemEvent>, DomainError> {
    let events = &history.events;
    let find = |event_id: EventId| {
        events
            .iter()
            .position(|r| r.id == event_id)
            .ok_or(DomainError::ChangeNotFound { event_id })
    };
    let undo_of = |index: usize| {
        let id = events[index].id;
        events[index + 1..]
            .iter()
            .position(|r| r.event.undoes() == Some(id))
            .map(|offset| index + 1 + offset)
    };
    let mut index = find(cmd.event_id)?;
    field(&events[index].event)?;
    if cmd.action == UndoAction::Redo {
        index = undo_of(index).ok_or(DomainError::NotUndone {
            event_id: cmd.event_id,
        })?;
    }
    let target = &events[index];
    let field = field(&target.event)?;
    let own = target.actor.as_deref() == Some(cmd.actor.as_str());
    if cmd.scope == UndoScope::OwnStockAdjustments && !(field == Field::Stock && own) {
        return Err(DomainError::UndoNotAllowed);
    }
    let active = require_active_in(store, &history.state, item_id)?;
    if let Some(undo) = undo_of(index) {
        return Err(DomainError::AlreadyUndone {
            event_id: target.id,
            undone_by: events[undo].id,
        });
    }
    let later = &events[index + 1..];
    let conflict = |later: &Recorded| DomainError::UndoConflict {
        event_id: target.id,
        later: later.id,
    };
    if let Some(added) = later
        .iter()
        .find(|r| matches!(r.event, ItemEvent::ItemAdded { .. }))
    {
        return Err(conflict(added));
    }
    // The last later change that set the same field, if any.
    let last_set = |same: fn(&ItemEvent) -> bool| later.iter().rev().find(|r| same(&r.event));
    let undoes = Some(target.id);
    match &target.event {
        ItemEvent::StockAdjusted {
            delta,
            reason,
            note,
            ..
        } => {
            // A count is in effect unless undone; redone, the redo carries
            // it: follow each count's chain of undos, in effect when odd.
            for (offset, count) in later.iter().enumerate() {
                let ItemEvent::StockAdjusted {
                    reason: StockReason::Counted,
                    undoes: None,
                    ..
                } = count.event
                else {
                    continue;
                };
                let (mut last, mut length) = (index + 1 + offset, 1);
                while let Some(next) = undo_of(last) {
                    (last, length) = (next, length + 1);
                }
                if length % 2 == 1 {
                    return Err(conflict(&events[last]));
                }
            }
            // The same reason and note, so totals per reason net out.
            adjust(&active, delta.inverse()?, *reason, note.clone(), undoes)
        }
        ItemEvent::ItemRenamed { name, .. } => {
            if name != active.name {
                let renamed = last_set(|e| matches!(e, ItemEvent::ItemRenamed { .. }));
                return Err(renamed.map_or(
                    DomainError::NotUndoable {
                        what: "ItemRenamed",
                    },
                    conflict,
                ));
            }
            let ItemState::Active { name: before, .. } = before(events, index) else {
                return Err(DomainError::NotUndoable {
                    what: "ItemRenamed",
                });
            };
            Ok(vec![ItemEvent::ItemRenamed {
                item_id,
                store_id: active.store_id,
                name: before,
                undoes,
            }])
        }
        ItemEvent::ThresholdChanged { threshold, .. } => {
            if *threshold != active.threshold {
                let changed = last_set(|e| matches!(e, ItemEvent::ThresholdChanged { .. }));
                return Err(changed.map_or(
                    DomainError::NotUndoable {
                        what: "ThresholdChanged",
                    },
                    conflict,
                ));
            }
            let ItemState::Active {
                threshold: before, ..
            } = before(events, index)
            else {
                return Err(DomainError::NotUndoable {
                    what: "ThresholdChanged",
                });
            };
            let status = StockStatus::of(active.quantity, active.threshold);
            let mut events = vec![ItemEvent::ThresholdChanged {
                item_id,
                store_id: active.store_id,
                threshold: before,
                undoes,
            }];
            events.extend(alert(&active, status, active.quantity, before));
            Ok(events)
        }
        other => Err(DomainError::NotUndoable {
            what: DomainEvent::Item(other.clone()).event_type(),
        }),
    }
}

/// The item's state just before `events[index]`.
fn before(events: &[Recorded], index: usize) -> ItemState {
    replay(events[..index].iter().map(|r| &r.event))
}
