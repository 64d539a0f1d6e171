//! Stock transfers: a command on two items (and the stores they live in),
//! appended at once through the same pipeline, once per transfer id.

use larder_codec::{Entity, decode, encode};
use larder_domain::transfer::{self, TransferEvent};
use larder_domain::{
    DomainEvent, ItemEvent, ItemId, ItemState, StoreId, StoreState, TenantId, TransferStock,
};
use larder_store::{ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamAppend};
use uuid::Uuid;

use serde::{Deserialize, Serialize};

use crate::idempotency::{Answer, Written, parse, render};
use crate::pipeline::{Outcome, Step};
use crate::{AppError, Context};

/// Both sides of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transferred {
    /// The source item's stream after the transfer.
    pub from: Outcome,
    /// The destination item's stream after the transfer.
    pub to: Outcome,
}

/// What a transfer stores with its idempotency key: both sides.
#[derive(Debug, Serialize, Deserialize)]
struct Sides {
    from: Answer,
    to: Answer,
}

/// A transfer answered again from its key's record.
fn replayed(record: &larder_store::IdempotencyRecord) -> Result<Transferred, AppError> {
    let sides: Sides = parse(record)?;
    Ok(Transferred {
        from: sides.from.outcome(&record.result),
        to: sides.to.outcome(&record.result),
    })
}

impl crate::App {
    /// The store an item belongs to, if it exists and `tenant` owns it. Another tenant's item answers exactly like one that does not
    /// exist.
    pub async fn item_store(
        &self,
        tenant: &TenantId,
        item_id: ItemId,
    ) -> Result<StoreId, AppError> {
        // Which store an item belongs to and which tenant a store belongs to
        // never change: cached states answer.
        let (state, _) = self
            .state::<ItemState>(&item_id.stream_name(), false)
            .await?;
        let store_id = state.store_id().ok_or(AppError::NotFound("item"))?;
        match self.owned::<StoreState>(tenant, store_id, false).await {
            Err(AppError::NotFound(_)) => Err(AppError::NotFound("item")),
            other => other.map(|_| store_id),
        }
    }

    /// Moves stock between two items of the tenant, atomically, once per
    /// transfer id: a replay answers what the first request did and moves
    /// nothing (see [`transfer::event_id`]).
    pub async fn transfer(
        &self,
        ctx: &Context,
        from: ItemId,
        to: ItemId,
        command: TransferStock,
    ) -> Result<Transferred, AppError> {
        ctx.accepted();
        let command = &command;
        if let Some(record) = self.recorded(ctx).await? {
            return replayed(&record);
        }
        let result = self
            .attempts(&from.stream_name(), |_| async move {
                self.transfer_once(ctx, from, to, command).await
            })
            .await;
        self.or_replayed(ctx, result, replayed).await
    }

    async fn transfer_once(
        &self,
        ctx: &Context,
        from: ItemId,
        to: ItemId,
        command: &TransferStock,
    ) -> Result<Step<Transferred>, AppError> {
        if let Some(done) = self.transfer_done(ctx, from, to, command).await? {
            return Ok(Step::Done(done));
        }
        let id = |event| transfer::event_id(&ctx.tenant, command.transfer_id, event);
        let from_store_id = self.item_store(&ctx.tenant, from).await?;
        let to_store_id = self.item_store(&ctx.tenant, to).await?;
        let (from_store, from_store_version) = self
            .owned::<StoreState>(&ctx.tenant, from_store_id, true)
            .await?;
        let (to_store, to_store_version) = self
            .owned::<StoreState>(&ctx.tenant, to_store_id, true)
            .await?;
        let (from_state, from_version) = self.state::<ItemState>(&from.stream_name(), true).await?;
        let (to_state, to_version) = self.state::<ItemState>(&to.stream_name(), true).await?;
        let (out, into) = transfer::decide(
            &from_store,
            &from_state,
            from,
            &to_store,
            &to_state,
            to,
            command.clone(),
        )?;
        let origin = ctx.origin();
        let side = |events: Vec<ItemEvent>, item: ItemId, store: StoreId| {
            let events: Vec<DomainEvent> = events.into_iter().map(Into::into).collect();
            let entity = Entity {
                kind: "item",
                id: item.to_string(),
                store: Some(store),
            };
            let new: Vec<NewEvent> = events
                .iter()
                .map(|e| encode(e, &origin, entity.clone()))
                .collect();
            let types: Vec<String> = events.iter().map(|e| e.event_type().to_owned()).collect();
            (new, types)
        };
        let (mut out, out_types) = side(out, from, from_store_id);
        let last = out.len() - 1;
        for (index, event) in out.iter_mut().enumerate() {
            event.id = id(if index == last {
                TransferEvent::Completed
            } else {
                TransferEvent::Out(index)
            });
        }
        let (mut into, into_types) = side(into, to, to_store_id);
        for (index, event) in into.iter_mut().enumerate() {
            event.id = id(TransferEvent::In(index));
        }
        let mut appends = vec![
            StreamAppend::new(
                from.stream_name(),
                ExpectedVersion::Exact(from_version),
                out,
            ),
            StreamAppend::new(to.stream_name(), ExpectedVersion::Exact(to_version), into),
            StreamAppend::new(
                from_store_id.stream_name(),
                ExpectedVersion::Exact(from_store_version),
                vec![],
            ),
        ];
        if to_store_id != from_store_id {
            appends.push(StreamAppend::new(
                to_store_id.stream_name(),
                ExpectedVersion::Exact(to_store_version),
                vec![],
            ));
        }
        let sides = Sides {
            from: Answer {
                id: from.as_uuid(),
                stream: from.stream_name(),
                events: out_types,
            },
            to: Answer {
                id: to.as_uuid(),
                stream: to.stream_name(),
                events: into_types,
            },
        };
        match self.write(ctx, appends, || render(&sides)).await? {
            Ok(Written::Appended(result)) => Ok(Step::Done(Transferred {
                from: Outcome {
                    replayed: false,
                    ..sides.from.outcome(&result)
                },
                to: Outcome {
                    replayed: false,
                    ..sides.to.outcome(&result)
                },
            })),
            Ok(Written::Replayed(record)) => replayed(&record).map(Step::Done),
            // A racing copy of this transfer (its ids are stored) or any
            // other change: look again, from the replay check on.
            Err(StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEventId { .. }) => {
                Ok(Step::Lost)
            }
            Err(error) => Err(error.into()),
        }
    }

    /// What the transfer did, if one with this id was already made: both
    /// sides as they were answered then. The same id with other items or
    /// another quantity is refused.
    async fn transfer_done(
        &self,
        ctx: &Context,
        from: ItemId,
        to: ItemId,
        command: &TransferStock,
    ) -> Result<Option<Transferred>, AppError> {
        let id = |event| transfer::event_id(&ctx.tenant, command.transfer_id, event);
        let Some(marker) = self.store.read_event(id(TransferEvent::Completed)).await? else {
            return Ok(None);
        };
        let reused = || AppError::TransferIdReused(command.transfer_id.as_uuid());
        match decode(&marker)? {
            DomainEvent::Item(ItemEvent::TransferCompleted {
                from_item,
                to_item,
                quantity,
                ..
            }) if from_item == from && to_item == to && quantity == command.quantity => {}
            _ => return Err(reused()),
        }
        let side = |stream: String, first: Uuid, last: Option<RecordedEvent>| async move {
            let last = last.ok_or_else(reused)?;
            let events = self
                .store
                .read_stream(&stream, 1.max(last.version.saturating_sub(8)), 9)
                .await?;
            let start = events
                .iter()
                .position(|e| e.id == first)
                .ok_or_else(reused)?;
            let types = events[start..]
                .iter()
                .take_while(|e| e.version <= last.version)
                .map(|e| decode(e).map(|event| event.event_type().to_owned()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, AppError>((last, stream, types))
        };
        let out_first = id(TransferEvent::Out(0));
        let (out_last, out_stream, out_types) =
            side(from.stream_name(), out_first, Some(marker.clone())).await?;
        // The destination's events: the first is `In(0)`, the last the
        // highest index stored (a transfer writes at most a few per side).
        let mut in_last = None;
        for index in 0..4 {
            match self.store.read_event(id(TransferEvent::In(index))).await? {
                Some(event) => in_last = Some(event),
                None => break,
            }
        }
        let (in_last, in_stream, in_types) =
            side(to.stream_name(), id(TransferEvent::In(0)), in_last).await?;
        let position = out_last.position.max(in_last.position);
        let outcome = |id: ItemId, stream, version, events| Outcome {
            id: id.as_uuid(),
            stream,
            version,
            position,
            events,
            replayed: false,
        };
        Ok(Some(Transferred {
            from: outcome(from, out_stream, out_last.version, out_types),
            to: outcome(to, in_stream, in_last.version, in_types),
        }))
    }
}
