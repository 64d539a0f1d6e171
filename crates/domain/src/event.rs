//! The stored form of events: a stable type name, a schema version and a JSON
//! payload, and the way back (including upcasting old versions).
//!
//! The type name of an event is its variant name (`"StockAdjusted"`), never
//! the Rust path, so modules can move without breaking stored events. The
//! payload is the variant's fields as a JSON object with snake_case keys; the
//! type travels beside it (in its own column), not inside it.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::DecodeError;
use crate::ids::StoreId;
use crate::item::ItemEvent;
use crate::store::StoreEvent;

/// Any event of the domain, as stored in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DomainEvent {
    /// An event of a store stream (`store-{id}`).
    Store(StoreEvent),
    /// An event of an item stream (`item-{id}`).
    Item(ItemEvent),
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

/// Which aggregate an event type belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Store,
    Item,
}

/// One event type this build can read and write.
#[derive(Debug)]
struct Schema {
    event_type: &'static str,
    family: Family,
    /// The version written today; older stored versions are upcast to it.
    current_version: u32,
}

/// Every event type with its current schema version. Changing an event's
/// payload shape means: bump its version here, and add an [`Upcaster`] from
/// the previous version to [`UPCASTERS`].
const SCHEMAS: &[Schema] = &[
    Schema::new("StoreCreated", Family::Store, 1),
    Schema::new("StoreRenamed", Family::Store, 1),
    Schema::new("StoreClosed", Family::Store, 1),
    Schema::new("ItemAdded", Family::Item, 1),
    Schema::new("StockAdjusted", Family::Item, 1),
    Schema::new("ThresholdChanged", Family::Item, 1),
    Schema::new("ItemRenamed", Family::Item, 1),
    Schema::new("ItemRemoved", Family::Item, 1),
    Schema::new("LowStock", Family::Item, 1),
    Schema::new("OutOfStock", Family::Item, 1),
    Schema::new("Restocked", Family::Item, 1),
    Schema::new("TransferCompleted", Family::Item, 1),
];

impl Schema {
    const fn new(event_type: &'static str, family: Family, current_version: u32) -> Self {
        Self {
            event_type,
            family,
            current_version,
        }
    }

    fn find(event_type: &str) -> Option<&'static Schema> {
        SCHEMAS.iter().find(|s| s.event_type == event_type)
    }
}

/// Turns the payload of `event_type` at `from_version` into the payload of
/// `from_version + 1`. Pure JSON to JSON, so old payloads never need the old
/// Rust types.
#[derive(Debug)]
struct Upcaster {
    event_type: &'static str,
    from_version: u32,
    upcast: fn(Value) -> Value,
}

/// The chain of upcasters; empty while every event is at version 1. Example
/// for a v2 of `StockAdjusted` that adds a `location` field:
///
/// ```text
/// Upcaster { event_type: "StockAdjusted", from_version: 1, upcast: |mut data| {
///     data["location"] = Value::Null;
///     data
/// } },
/// ```
const UPCASTERS: &[Upcaster] = &[];

/// Brings `data` from `version` up to the current version of its type, one
/// step at a time.
fn upcast(schema: &Schema, version: u32, mut data: Value) -> Result<Value, DecodeError> {
    for from_version in version..schema.current_version {
        let step = UPCASTERS
            .iter()
            .find(|u| u.event_type == schema.event_type && u.from_version == from_version)
            .ok_or_else(|| DecodeError::UnsupportedVersion {
                event_type: schema.event_type.to_owned(),
                schema_version: version,
                current: schema.current_version,
            })?;
        data = (step.upcast)(data);
    }
    Ok(data)
}

/// Deserialises a payload as variant `event_type` of the externally tagged `E`.
fn from_data<E: DeserializeOwned>(
    event_type: &str,
    schema_version: u32,
    data: Value,
) -> Result<E, DecodeError> {
    let tagged = Value::Object(Map::from_iter([(event_type.to_owned(), data)]));
    serde_json::from_value(tagged).map_err(|source| DecodeError::InvalidData {
        event_type: event_type.to_owned(),
        schema_version,
        source,
    })
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
        })
    }

    /// The store the event belongs to (for `TransferCompleted`, `from_store`).
    pub fn store_id(&self) -> StoreId {
        match self {
            Self::Store(event) => event.store_id(),
            Self::Item(event) => event.store_id(),
        }
    }

    /// The entity type (`"store"` or `"item"`) and id of the stream the event
    /// belongs to, for event metadata.
    ///
    /// `TransferCompleted` is appended to two item streams; this answers with
    /// the source item (`from_item`). A caller appending it to the destination
    /// uses the destination's id, which it has at hand.
    pub fn entity(&self) -> (&'static str, Uuid) {
        match self {
            Self::Store(event) => ("store", event.store_id().as_uuid()),
            Self::Item(event) => ("item", event.item_id().as_uuid()),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ids::TransferId;
    use crate::item::StockReason;
    use crate::test_support::{
        item_added, item_id_of, item_name, other_store_id, q, sku, store_created, store_id,
        store_name, t, tenant,
    };
    use crate::values::Delta;

    /// One event of every type.
    fn every_event() -> Vec<DomainEvent> {
        let item_id = item_id_of(store_id(), "FLOUR");
        let store_events = [
            store_created(store_id(), tenant()),
            StoreEvent::StoreRenamed {
                store_id: store_id(),
                name: store_name("Soho"),
            },
            StoreEvent::StoreClosed {
                store_id: store_id(),
            },
        ];
        let item_events = [
            item_added(store_id(), "FLOUR", 10, 3),
            ItemEvent::StockAdjusted {
                item_id,
                store_id: store_id(),
                delta: Delta::parse(-7).unwrap(),
                quantity: q(3),
                reason: StockReason::Sold,
                note: Some("lunch".into()),
            },
            ItemEvent::StockAdjusted {
                item_id,
                store_id: store_id(),
                delta: Delta::parse(2).unwrap(),
                quantity: q(5),
                reason: StockReason::TransferIn,
                note: None,
            },
            ItemEvent::ThresholdChanged {
                item_id,
                store_id: store_id(),
                threshold: t(4),
            },
            ItemEvent::ItemRenamed {
                item_id,
                store_id: store_id(),
                name: item_name("Flour 00"),
            },
            ItemEvent::ItemRemoved {
                item_id,
                store_id: store_id(),
            },
            ItemEvent::LowStock {
                item_id,
                store_id: store_id(),
                sku: sku("FLOUR"),
                quantity: q(3),
                threshold: t(3),
            },
            ItemEvent::OutOfStock {
                item_id,
                store_id: store_id(),
                sku: sku("FLOUR"),
            },
            ItemEvent::Restocked {
                item_id,
                store_id: store_id(),
                sku: sku("FLOUR"),
                quantity: q(20),
                threshold: t(3),
            },
            ItemEvent::TransferCompleted {
                transfer_id: TransferId::new(Uuid::from_u128(9)),
                from_store: store_id(),
                from_item: item_id,
                to_store: other_store_id(),
                to_item: item_id_of(other_store_id(), "FLOUR"),
                sku: sku("FLOUR"),
                quantity: q(2),
            },
        ];
        store_events
            .into_iter()
            .map(DomainEvent::from)
            .chain(item_events.into_iter().map(DomainEvent::from))
            .collect()
    }

    #[test]
    fn every_event_encodes_and_decodes_to_itself() {
        for event in every_event() {
            let data = event.to_data();
            let decoded = DomainEvent::decode(event.event_type(), event.schema_version(), &data)
                .unwrap_or_else(|e| panic!("{}: {e:?}", event.event_type()));
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn every_event_encodes_to_json_text_as_to_data_and_decodes_from_it() {
        for event in every_event() {
            let json = event.to_data_json();
            let parsed: Value = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{}: {json}: {e}", event.event_type()));
            assert_eq!(parsed, event.to_data(), "{}", event.event_type());
            let decoded = DomainEvent::decode_json(event.event_type(), 1, &json)
                .unwrap_or_else(|e| panic!("{}: {e:?}", event.event_type()));
            assert_eq!(decoded, event);
        }
    }

    #[test]
    fn text_that_is_not_json_does_not_decode() {
        let error = DomainEvent::decode_json("StoreClosed", 1, "{ store_id").unwrap_err();
        assert!(
            matches!(error, DecodeError::InvalidData { ref event_type, .. } if event_type == "StoreClosed"),
            "{error:?}"
        );
    }

    #[test]
    fn every_event_type_is_listed_once_and_written_at_version_one() {
        let events = every_event();
        let mut written: Vec<_> = events.iter().map(DomainEvent::event_type).collect();
        written.dedup();
        let known: Vec<_> = DomainEvent::event_types().collect();
        assert_eq!(written, known);
        for event in &events {
            assert_eq!(event.schema_version(), 1, "{}", event.event_type());
        }
    }

    #[test]
    fn every_schema_above_version_one_has_an_upcaster_per_step() {
        for schema in SCHEMAS {
            for from_version in 1..schema.current_version {
                assert!(
                    UPCASTERS.iter().any(
                        |u| u.event_type == schema.event_type && u.from_version == from_version
                    ),
                    "{} has no upcaster from v{from_version}",
                    schema.event_type
                );
            }
        }
    }

    #[test]
    fn the_payload_is_a_snake_case_object_without_the_type() {
        for event in every_event() {
            let Value::Object(fields) = event.to_data() else {
                panic!("{} is not an object", event.event_type());
            };
            assert!(!fields.contains_key("type"));
            assert!(!fields.contains_key(event.event_type()));
            for key in fields.keys() {
                assert!(
                    key.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                    "{key} in {}",
                    event.event_type()
                );
            }
        }
    }

    #[test]
    fn stock_adjusted_is_encoded_with_plain_values() {
        let event = DomainEvent::from(ItemEvent::StockAdjusted {
            item_id: item_id_of(store_id(), "FLOUR"),
            store_id: store_id(),
            delta: Delta::parse(-7).unwrap(),
            quantity: q(3),
            reason: StockReason::TransferOut,
            note: None,
        });
        assert_eq!(
            event.to_data(),
            json!({
                "item_id": item_id_of(store_id(), "FLOUR").to_string(),
                "store_id": store_id().to_string(),
                "delta": -7,
                "quantity": 3,
                "reason": "transfer_out",
                "note": null,
            })
        );
    }

    #[test]
    fn a_missing_note_decodes_as_none() {
        let data = json!({
            "item_id": item_id_of(store_id(), "FLOUR").to_string(),
            "store_id": store_id().to_string(),
            "delta": 1,
            "quantity": 1,
            "reason": "received",
        });
        let event = DomainEvent::decode("StockAdjusted", 1, &data).unwrap();
        assert!(matches!(
            event,
            DomainEvent::Item(ItemEvent::StockAdjusted { note: None, .. })
        ));
    }

    #[test]
    fn decoding_an_unknown_type_fails() {
        let err = DomainEvent::decode("StockTeleported", 1, &json!({})).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnknownEventType { event_type } if event_type == "StockTeleported")
        );
        // Type names are exact: not the Rust path, not another casing.
        assert!(DomainEvent::decode("stock_adjusted", 1, &json!({})).is_err());
    }

    #[test]
    fn decoding_a_version_this_build_does_not_know_fails() {
        let data = every_event()[2].to_data();
        for version in [0, 2] {
            let err = DomainEvent::decode("StoreClosed", version, &data).unwrap_err();
            assert!(
                matches!(
                    err,
                    DecodeError::UnsupportedVersion { schema_version, current: 1, .. }
                        if schema_version == version
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn decoding_a_payload_that_breaks_a_rule_fails() {
        let mut data = every_event()[3].to_data();
        data["quantity"] = json!(-1);
        let err = DomainEvent::decode("ItemAdded", 1, &data).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidData { .. }), "{err:?}");

        let err = DomainEvent::decode("StoreClosed", 1, &json!({})).unwrap_err();
        assert!(matches!(err, DecodeError::InvalidData { .. }), "{err:?}");
        assert!(DomainEvent::decode("StoreClosed", 1, &json!("x")).is_err());
    }

    #[test]
    fn events_name_their_store_and_entity() {
        let events = every_event();
        let item_id = item_id_of(store_id(), "FLOUR").as_uuid();
        for event in &events {
            assert_eq!(event.store_id(), store_id());
            let expected = match event {
                DomainEvent::Store(_) => ("store", store_id().as_uuid()),
                DomainEvent::Item(_) => ("item", item_id),
            };
            assert_eq!(event.entity(), expected, "{}", event.event_type());
        }
    }

    /// The `data` examples of `docs/events.md`, by the `### Type` heading above
    /// each.
    fn documented_examples() -> Vec<(String, Value)> {
        let doc = include_str!("../../../docs/events.md");
        let mut examples = Vec::new();
        let mut heading = None;
        let mut block: Option<String> = None;
        for line in doc.lines() {
            if let Some(title) = line.strip_prefix("### ") {
                heading = Some(title.trim().trim_matches('`').to_owned());
            } else if line.starts_with("## ") || line.starts_with("#### ") {
                heading = None;
            } else if line.trim() == "```json" {
                block = Some(String::new());
            } else if line.trim() == "```" {
                if let (Some(json), Some(event_type)) = (block.take(), heading.take()) {
                    let data =
                        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{event_type}: {e}"));
                    examples.push((event_type, data));
                }
            } else if let Some(json) = &mut block {
                json.push_str(line);
                json.push('\n');
            }
        }
        examples
    }

    #[test]
    fn the_event_catalog_shows_a_valid_example_of_every_event() {
        let examples = documented_examples();
        let documented: Vec<_> = examples.iter().map(|(t, _)| t.as_str()).collect();
        let known: Vec<_> = DomainEvent::event_types().collect();
        assert_eq!(documented, known);
        for (event_type, data) in &examples {
            let event = DomainEvent::decode(event_type, 1, data)
                .unwrap_or_else(|e| panic!("{event_type}: {e:?}"));
            assert_eq!(&event.to_data(), data, "{event_type}");
        }
    }
}
