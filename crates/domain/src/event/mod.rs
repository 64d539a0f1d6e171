//! The stored form of events: a stable type name, a schema version and a JSON
//! payload, and the way back (including upcasting old versions).
//!
//! The type name of an event is its variant name (`"StockAdjusted"`), never
//! the Rust path, so modules can move without breaking stored events. The
//! payload is the variant's fields as a JSON object with snake_case keys; the
//! type travels beside it (in its own column), not inside it.
//!
//! # Layout
//!
//! - `schema`: every event type with its current schema version, and the
//!   upcasters that bring older payloads up to it.
//! - here: [`DomainEvent`], encoding and decoding.

mod schema;

#[cfg(test)]
mod kitchen_tests;
#[cfg(test)]
mod tests;

use serde_json::Value;
use uuid::Uuid;

use crate::error::DecodeError;
use crate::ids::StoreId;
use crate::inbox::{InboxEvent, UserId};
use crate::item::ItemEvent;
use crate::menu::MenuEvent;
use crate::order::OrderEvent;
use crate::store::StoreEvent;
use schema::{Family, SCHEMAS, Schema, from_data, upcast};

/// Any event of the domain, as stored in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainEvent {
    /// An event of a store stream (`store-{id}`).
    Store(StoreEvent),
    /// An event of an item stream (`item-{id}`).
    Item(ItemEvent),
    /// An event of a menu stream (`menu-{store id}`).
    Menu(MenuEvent),
    /// An event of an order stream (`order-{id}`).
    Order(OrderEvent),
    /// An event of a user's inbox (`inbox-{id}`).
    Inbox(InboxEvent),
}

impl From<InboxEvent> for DomainEvent {
    fn from(event: InboxEvent) -> Self {
        Self::Inbox(event)
    }
}

impl From<StoreEvent> for DomainEvent {
    fn from(event: StoreEvent) -> Self {
        Self::Store(event)
    }
}

impl From<ItemEvent> for DomainEvent {
    fn from(event: ItemEvent) -> Self {
        Self::Item(event)
    }
}

impl From<MenuEvent> for DomainEvent {
    fn from(event: MenuEvent) -> Self {
        Self::Menu(event)
    }
}

impl From<OrderEvent> for DomainEvent {
    fn from(event: OrderEvent) -> Self {
        Self::Order(event)
    }
}

impl DomainEvent {
    /// The stable type name: the variant name, e.g. `"StockAdjusted"`.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Store(event) => match event {
                StoreEvent::StoreCreated { .. } => "StoreCreated",
                StoreEvent::StoreRenamed { .. } => "StoreRenamed",
                StoreEvent::StoreClosed { .. } => "StoreClosed",
            },
            Self::Item(event) => match event {
                ItemEvent::ItemAdded { .. } => "ItemAdded",
                ItemEvent::StockAdjusted { .. } => "StockAdjusted",
                ItemEvent::ThresholdChanged { .. } => "ThresholdChanged",
                ItemEvent::ItemRenamed { .. } => "ItemRenamed",
                ItemEvent::ItemRemoved { .. } => "ItemRemoved",
                ItemEvent::LowStock { .. } => "LowStock",
                ItemEvent::OutOfStock { .. } => "OutOfStock",
                ItemEvent::Restocked { .. } => "Restocked",
                ItemEvent::TransferCompleted { .. } => "TransferCompleted",
            },
            Self::Menu(event) => match event {
                MenuEvent::StationSet { .. } => "StationSet",
                MenuEvent::MenuItemAdded { .. } => "MenuItemAdded",
                MenuEvent::MenuItemChanged { .. } => "MenuItemChanged",
                MenuEvent::MenuItemActivated { .. } => "MenuItemActivated",
                MenuEvent::MenuItemDeactivated { .. } => "MenuItemDeactivated",
            },
            Self::Order(event) => match event {
                OrderEvent::OrderOpened { .. } => "OrderOpened",
                OrderEvent::OrderLineAdded { .. } => "OrderLineAdded",
                OrderEvent::OrderLineVoided { .. } => "OrderLineVoided",
                OrderEvent::OrderFired { .. } => "OrderFired",
                OrderEvent::OrderLineStarted { .. } => "OrderLineStarted",
                OrderEvent::OrderLineReady { .. } => "OrderLineReady",
                OrderEvent::OrderLineRecalled { .. } => "OrderLineRecalled",
                OrderEvent::OrderReady { .. } => "OrderReady",
                OrderEvent::OrderServed { .. } => "OrderServed",
                OrderEvent::OrderCompleted { .. } => "OrderCompleted",
                OrderEvent::OrderCancelled { .. } => "OrderCancelled",
                OrderEvent::OrderRushed { .. } => "OrderRushed",
                OrderEvent::OrderRushCleared { .. } => "OrderRushCleared",
            },
            Self::Inbox(event) => match event {
                InboxEvent::NotificationRaised { .. } => "NotificationRaised",
                InboxEvent::NotificationRead { .. } => "NotificationRead",
                InboxEvent::AllNotificationsRead { .. } => "AllNotificationsRead",
                InboxEvent::AlertCleared { .. } => "AlertCleared",
                InboxEvent::NotificationPreferencesSet { .. } => "NotificationPreferencesSet",
            },
        }
    }

    /// The schema version [`DomainEvent::to_data`] writes for this event.
    pub fn schema_version(&self) -> u32 {
        Schema::find(self.event_type())
            .expect("every event type is listed in SCHEMAS (checked by a test)")
            .current_version
    }

    /// Every event type name this build can decode.
    pub fn event_types() -> impl Iterator<Item = &'static str> {
        SCHEMAS.iter().map(|s| s.event_type)
    }

    /// The payload: the event's fields as a JSON object with snake_case keys,
    /// without the type name.
    pub fn to_data(&self) -> Value {
        let tagged = match self {
            Self::Store(event) => serde_json::to_value(event),
            Self::Item(event) => serde_json::to_value(event),
            Self::Menu(event) => serde_json::to_value(event),
            Self::Order(event) => serde_json::to_value(event),
            Self::Inbox(event) => serde_json::to_value(event),
        }
        // Cannot fail: every field serialises to a string, number or null.
        .expect("domain events always serialise to JSON");
        // Externally tagged: `{ "StockAdjusted": { ...fields } }`.
        match tagged {
            Value::Object(map) => map
                .into_iter()
                .next()
                .map(|(_, data)| data)
                .expect("an externally tagged enum has one key"),
            other => other,
        }
    }

    /// The payload as JSON text, the same object as [`DomainEvent::to_data`]
    /// gives, serialised straight from the event (no [`Value`] in between).
    ///
    /// ```
    /// use larder_domain::DomainEvent;
    ///
    /// let data = r#"{"store_id":"67e55044-10b1-426f-9247-bb680e5fe0c8"}"#;
    /// let event = DomainEvent::decode_json("StoreClosed", 1, data).unwrap();
    /// assert_eq!(event.to_data_json(), data);
    /// ```
    pub fn to_data_json(&self) -> String {
        let mut tagged = match self {
            Self::Store(event) => serde_json::to_string(event),
            Self::Item(event) => serde_json::to_string(event),
            Self::Menu(event) => serde_json::to_string(event),
            Self::Order(event) => serde_json::to_string(event),
            Self::Inbox(event) => serde_json::to_string(event),
        }
        // Cannot fail: every field serialises to a string, number or null.
        .expect("domain events always serialise to JSON");
        // Externally tagged: `{"StockAdjusted":{...fields}}`. A variant name
        // is an identifier, so the first `:` ends the tag.
        if tagged.starts_with('{')
            && tagged.ends_with('}')
            && let Some(colon) = tagged.find(':')
        {
            tagged.pop();
            tagged.drain(..=colon);
        }
        tagged
    }

    /// Reads a stored event back, upcasting an older schema version first.
    ///
    /// Fails with [`DecodeError::UnknownEventType`] for a type this build does
    /// not know, [`DecodeError::UnsupportedVersion`] for a version newer than
    /// it writes (or 0), and [`DecodeError::InvalidData`] when the payload
    /// does not parse (the value types check every field).
    ///
    /// ```
    /// use larder_domain::DomainEvent;
    /// use serde_json::json;
    ///
    /// let data = json!({ "store_id": "67e55044-10b1-426f-9247-bb680e5fe0c8" });
    /// let event = DomainEvent::decode("StoreClosed", 1, &data).unwrap();
    /// assert_eq!(event.event_type(), "StoreClosed");
    /// assert_eq!(event.to_data(), data);
    /// ```
    pub fn decode(
        event_type: &str,
        schema_version: u32,
        data: &Value,
    ) -> Result<DomainEvent, DecodeError> {
        Self::decode_value(event_type, schema_version, data.clone())
    }

    /// [`DomainEvent::decode`] for a payload given as JSON text (as the event
    /// store keeps it).
    pub fn decode_json(
        event_type: &str,
        schema_version: u32,
        data: &str,
    ) -> Result<DomainEvent, DecodeError> {
        let data = serde_json::from_str(data).map_err(|source| DecodeError::InvalidData {
            event_type: event_type.to_owned(),
            schema_version,
            source,
        })?;
        Self::decode_value(event_type, schema_version, data)
    }

    fn decode_value(
        event_type: &str,
        schema_version: u32,
        data: Value,
    ) -> Result<DomainEvent, DecodeError> {
        let schema = Schema::find(event_type).ok_or_else(|| DecodeError::UnknownEventType {
            event_type: event_type.to_owned(),
        })?;
        if schema_version == 0 || schema_version > schema.current_version {
            return Err(DecodeError::UnsupportedVersion {
                event_type: event_type.to_owned(),
                schema_version,
                current: schema.current_version,
            });
        }
        let data = upcast(schema, schema_version, data)?;
        Ok(match schema.family {
            Family::Store => Self::Store(from_data(event_type, schema_version, data)?),
            Family::Item => Self::Item(from_data(event_type, schema_version, data)?),
            Family::Menu => Self::Menu(from_data(event_type, schema_version, data)?),
            Family::Order => Self::Order(from_data(event_type, schema_version, data)?),
            Family::Inbox => Self::Inbox(from_data(event_type, schema_version, data)?),
        })
    }

    /// The id of the stored event that caused this one, for its metadata's
    /// `causation_id`: the undone change, for a compensating event.
    pub fn causation_id(&self) -> Option<Uuid> {
        match self {
            Self::Store(_) | Self::Menu(_) | Self::Order(_) | Self::Inbox(_) => None,
            Self::Item(event) => event.undoes().map(|id| id.as_uuid()),
        }
    }

    /// The store the event belongs to (for `TransferCompleted`, `from_store`).
    /// Menu and order events name their store, so permissions and store
    /// topics cover them like items. An inbox event belongs to its user,
    /// not to a store: `None`.
    pub fn store_id(&self) -> Option<StoreId> {
        match self {
            Self::Store(event) => Some(event.store_id()),
            Self::Item(event) => Some(event.store_id()),
            Self::Menu(event) => Some(event.store_id()),
            Self::Order(event) => Some(event.store_id()),
            Self::Inbox(_) => None,
        }
    }

    /// The user an inbox event is addressed to: the only one who may see it.
    pub fn recipient(&self) -> Option<&UserId> {
        match self {
            Self::Inbox(event) => Some(event.user()),
            _ => None,
        }
    }

    /// The entity type (`"store"`, `"item"`, `"menu"`, `"order"` or
    /// `"inbox"`) and id of the stream the event belongs to, for event
    /// metadata. A menu's id is its store's UUID ([`crate::MenuId::of_store`]);
    /// an inbox's is its user (the stream is named after
    /// [`crate::InboxId::of_user`], which needs the tenant too).
    ///
    /// `TransferCompleted` is appended to two item streams; this answers with
    /// the source item (`from_item`). A caller appending it to the destination
    /// uses the destination's id, which it has at hand.
    pub fn entity(&self) -> (&'static str, String) {
        match self {
            Self::Store(event) => ("store", event.store_id().to_string()),
            Self::Item(event) => ("item", event.item_id().to_string()),
            Self::Menu(event) => ("menu", event.store_id().to_string()),
            Self::Order(event) => ("order", event.order_id().to_string()),
            Self::Inbox(event) => ("inbox", event.user().to_string()),
        }
    }
}
