//! Stock transfers: two item streams changed in one append, once per
//! transfer id.

use larder_domain::transfer::{self, TransferEvent};
use larder_domain::{DomainEvent, ItemEvent, ItemId, TransferStock};
use larder_store::{ExpectedVersion, RecordedEvent, StoreError, StreamAppend};
use uuid::Uuid;

use super::{
    Actor, CommandError, Commands, Outcome, RETRIES, decode, pause_after_losing, to_new_events,
};

impl Commands {
    /// Moves stock between two items of the tenant, atomically, once per
    /// transfer id: a replay answers what the first request did and moves
    /// nothing (see [`transfer::event_id`]).
    pub async fn transfer(
        &self,
        actor: &Actor,
        from: ItemId,
        to: ItemId,
        command: TransferStock,
    ) -> Result<(Outcome, Outcome), CommandError> {
        let transfer_id = command.transfer_id;
        let id = |event| transfer::event_id(&actor.tenant, transfer_id, event);
        for attempt in 0..RETRIES {
            if let Some(done) = self.transfer_done(actor, from, to, &command).await? {
                return Ok(done);
            }
            let from_store_id = self.item_store(&actor.tenant, from).await?;
            let to_store_id = self.item_store(&actor.tenant, to).await?;
            let (from_store, from_store_version) =
                self.store_state(&actor.tenant, from_store_id).await?;
            let (to_store, to_store_version) = self.store_state(&actor.tenant, to_store_id).await?;
            let (from_state, from_version) = self.item_state(from, true).await?;
            let (to_state, to_version) = self.item_state(to, true).await?;
            let (out, into) = transfer::decide(
                &from_store,
                &from_state,
                from,
                &to_store,
                &to_state,
                to,
                command.clone(),
            )?;
            let mut out = to_new_events(
                actor,
                from_store_id,
                "item",
                from.as_uuid(),
                out.into_iter().map(Into::into),
            );
            let last = out.events.len() - 1;
            for (index, event) in out.events.iter_mut().enumerate() {
                event.id = id(if index == last {
                    TransferEvent::Completed
                } else {
                    TransferEvent::Out(index)
                });
            }
            let mut into = to_new_events(
                actor,
                to_store_id,
                "item",
                to.as_uuid(),
                into.into_iter().map(Into::into),
            );
            for (index, event) in into.events.iter_mut().enumerate() {
                event.id = id(TransferEvent::In(index));
            }
            let mut appends = vec![
                StreamAppend::new(
                    from.stream_name(),
                    ExpectedVersion::Exact(from_version),
                    out.events.clone(),
                ),
                StreamAppend::new(
                    to.stream_name(),
                    ExpectedVersion::Exact(to_version),
                    into.events.clone(),
                ),
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
            match self.store.append_streams(appends).await {
                Ok(result) => {
                    let from_outcome = out.outcome(
                        from.as_uuid(),
                        from.stream_name(),
                        result.version_of(&from.stream_name()).unwrap_or(0),
                        result.last_position,
                    );
                    let to_outcome = into.outcome(
                        to.as_uuid(),
                        to.stream_name(),
                        result.version_of(&to.stream_name()).unwrap_or(0),
                        result.last_position,
                    );
                    return Ok((from_outcome, to_outcome));
                }
                // A racing copy of this transfer (its ids are stored) or any
                // other change: look again, from the replay check on.
                Err(
                    StoreError::WrongExpectedVersion { .. } | StoreError::DuplicateEventId { .. },
                ) => {
                    pause_after_losing(attempt).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(self.lost_race(&from.stream_name()).await)
    }

    /// What the transfer did, if one with this id was already made: both
    /// sides as they were answered then. The same id with other items or
    /// another quantity is refused.
    async fn transfer_done(
        &self,
        actor: &Actor,
        from: ItemId,
        to: ItemId,
        command: &TransferStock,
    ) -> Result<Option<(Outcome, Outcome)>, CommandError> {
        let id = |event| transfer::event_id(&actor.tenant, command.transfer_id, event);
        let Some(marker) = self.store.read_event(id(TransferEvent::Completed)).await? else {
            return Ok(None);
        };
        let reused = || CommandError::TransferIdReused(command.transfer_id.as_uuid());
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
                .map(|e| decode(e).map(|event| event.event_type()))
                .collect::<Result<Vec<_>, _>>()?;
            Ok::<_, CommandError>((last, stream, types))
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
        };
        Ok(Some((
            outcome(from, out_stream, out_last.version, out_types),
            outcome(to, in_stream, in_last.version, in_types),
        )))
    }
}
