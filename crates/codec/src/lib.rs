//! Larder's domain events as the event store records them.
//!
//! The domain is pure and knows nothing of the event store; the event store
//! is domain-agnostic and knows nothing of Larder's events. This crate is the
//! one place the two meet: a [`DomainEvent`] becomes a [`NewEvent`] with its
//! metadata ([`encode`]), and a [`RecordedEvent`] becomes a [`DomainEvent`]
//! again ([`decode`]). The command pipeline (`larder-app`) writes with it and
//! the read models (`larder-projections`) read with it, so neither has its
//! own copy, and both sit above it.
//!
//! # Layout
//!
//! - [`Origin`]: who and what caused an event (tenant, actor, session,
//!   correlation id), copied into every event's metadata.
//! - [`Entity`]: the stream an event is written to (entity type and id) and
//!   the store (shop) it is about.
//! - [`encode`] / [`decode`], and [`Undecodable`] for a record that is not a
//!   Larder event this build can read.

use larder_domain::{DecodeError, DomainEvent, StoreId, TenantId};
use larder_store::{EventData, Metadata, NewEvent, RecordedEvent};
use uuid::Uuid;

/// Who and what caused an event: copied into its metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The tenant the event belongs to.
    pub tenant: TenantId,
    /// The user or service that issued the command.
    pub actor: String,
    /// The login session (shared by all tabs of a sign-in), if any.
    pub session: Option<String>,
    /// Shared by every event one request caused.
    pub correlation_id: Uuid,
    /// The event that caused these, when a process manager reacts to one
    /// (an order's `OrderFired` causing its `sold` adjustments); `None`
    /// for a user's command.
    pub causation_id: Option<Uuid>,
}

/// The stream an event is written to, and the store (shop) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entity {
    /// `"store"`, `"item"`, `"menu"`, `"order"` or `"inbox"`.
    pub kind: &'static str,
    /// The aggregate's id (for an inbox, its user).
    pub id: String,
    /// The store the event is about; `None` for a user's inbox, which
    /// belongs to no store.
    pub store: Option<StoreId>,
}

impl Entity {
    /// The entity an event names itself (see [`DomainEvent::entity`]). An
    /// event written to another stream (a transfer's destination side) is
    /// given its entity explicitly instead.
    pub fn of(event: &DomainEvent) -> Self {
        let (kind, id) = event.entity();
        Self {
            kind,
            id,
            store: event.store_id(),
        }
    }
}

/// The event as the event store stores it, with a fresh id. Its
/// `causation_id` is the event it undoes, for a compensating event
/// ([`DomainEvent::causation_id`]), else the origin's (the event a process
/// manager reacted to).
pub fn encode(event: &DomainEvent, origin: &Origin, entity: Entity) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.schema_version(),
        EventData::from_json(event.to_data_json())
            .expect("domain events serialise to JSON (checked by the domain's tests)"),
        Metadata {
            tenant: origin.tenant.as_str().to_owned(),
            store: entity.store.map(|store| store.to_string()),
            entity_type: entity.kind.to_owned(),
            entity_id: entity.id,
            actor: Some(origin.actor.clone()),
            correlation_id: Some(origin.correlation_id),
            causation_id: event.causation_id().or(origin.causation_id),
            session: origin.session.clone(),
        },
    )
}

/// A stored event this build cannot read as a Larder event.
#[derive(Debug, thiserror::Error)]
#[error("event at position {position} does not decode: {source}")]
pub struct Undecodable {
    /// Where it is stored.
    pub position: u64,
    /// Why it does not decode.
    #[source]
    pub source: DecodeError,
}

impl Undecodable {
    /// Whether the event's type is not a Larder event type at all (another
    /// service's event in a shared log), rather than a Larder event that is
    /// broken or newer than this build.
    pub fn is_unknown_type(&self) -> bool {
        matches!(self.source, DecodeError::UnknownEventType { .. })
    }
}

/// The domain event a stored event holds, upcast to the current schema.
pub fn decode(recorded: &RecordedEvent) -> Result<DomainEvent, Undecodable> {
    DomainEvent::decode_json(
        &recorded.event_type,
        recorded.schema_version,
        recorded.data.json(),
    )
    .map_err(|source| Undecodable {
        position: recorded.position,
        source,
    })
}

#[cfg(test)]
mod tests {
    use larder_domain::{StoreEvent, StoreName};

    use super::*;

    fn origin() -> Origin {
        Origin {
            tenant: TenantId::parse("acme").expect("valid tenant"),
            actor: "alice".to_owned(),
            session: Some("s1".to_owned()),
            correlation_id: Uuid::nil(),
            causation_id: None,
        }
    }

    #[test]
    fn an_event_carries_its_entity_store_and_origin_in_its_metadata() {
        let store_id = StoreId::from(Uuid::from_u128(7));
        let event = DomainEvent::from(StoreEvent::StoreRenamed {
            store_id,
            name: StoreName::parse("Deli").expect("valid name"),
        });
        let new = encode(&event, &origin(), Entity::of(&event));
        assert_eq!(new.event_type, "StoreRenamed");
        assert_eq!(new.metadata.entity_type, "store");
        assert_eq!(new.metadata.entity_id, store_id.to_string());
        assert_eq!(new.metadata.store, Some(store_id.to_string()));
    }

    #[test]
    fn an_inbox_event_is_addressed_to_its_user_and_belongs_to_no_store() {
        let user = larder_domain::UserId::parse("alice").expect("valid user");
        let event =
            DomainEvent::from(larder_domain::InboxEvent::AllNotificationsRead { user, count: 1 });
        let new = encode(&event, &origin(), Entity::of(&event));
        assert_eq!(new.metadata.entity_type, "inbox");
        assert_eq!(new.metadata.entity_id, "alice");
        assert_eq!(new.metadata.store, None);
        assert_eq!(new.metadata.tenant, "acme");
        assert_eq!(new.metadata.actor.as_deref(), Some("alice"));
        assert_eq!(new.metadata.session.as_deref(), Some("s1"));
    }

    #[test]
    fn a_compensating_event_is_caused_by_the_event_it_undoes() {
        let store_id = StoreId::from(Uuid::from_u128(7));
        let item_id = larder_domain::ItemId::new(Uuid::from_u128(8));
        let undone = larder_domain::EventId::new(Uuid::from_u128(9));
        let rename = |undoes| {
            DomainEvent::from(larder_domain::ItemEvent::ItemRenamed {
                item_id,
                store_id,
                name: larder_domain::ItemName::parse("Rye").expect("valid name"),
                undoes,
            })
        };
        let undo = rename(Some(undone));
        let new = encode(&undo, &origin(), Entity::of(&undo));
        assert_eq!(new.metadata.causation_id, Some(undone.as_uuid()));
        let plain = rename(None);
        let new = encode(&plain, &origin(), Entity::of(&plain));
        assert_eq!(new.metadata.causation_id, None);
    }

    fn recorded(event_type: &str, data: &str) -> RecordedEvent {
        let new = NewEvent::new(
            event_type,
            1,
            EventData::from_json(data.to_owned()).expect("JSON text"),
            Metadata {
                tenant: "acme".to_owned(),
                store: None,
                entity_type: "store".to_owned(),
                entity_id: Uuid::nil().to_string(),
                actor: None,
                session: None,
                correlation_id: None,
                causation_id: None,
            },
        );
        RecordedEvent {
            position: 42,
            id: new.id,
            stream: "store-x".to_owned(),
            version: 1,
            event_type: new.event_type,
            schema_version: new.schema_version,
            data: new.data,
            metadata: new.metadata,
            recorded_at: chrono::DateTime::UNIX_EPOCH,
        }
    }

    #[test]
    fn an_encoded_event_decodes_to_itself() {
        let event = DomainEvent::from(StoreEvent::StoreClosed {
            store_id: StoreId::from(Uuid::from_u128(7)),
        });
        let new = encode(&event, &origin(), Entity::of(&event));
        let stored = recorded(&new.event_type, new.data.json());
        assert_eq!(decode(&stored).expect("decodes"), event);
    }

    #[test]
    fn another_services_event_is_unknown_and_a_broken_larder_event_is_not() {
        let foreign = decode(&recorded("InvoicePaid", "{}")).expect_err("not Larder's");
        assert!(foreign.is_unknown_type());
        let broken = decode(&recorded("StoreClosed", "{}")).expect_err("no store_id");
        assert!(!broken.is_unknown_type());
        assert_eq!(broken.position, 42);
    }
}
