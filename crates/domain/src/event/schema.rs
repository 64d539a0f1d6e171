//! Event types, their schema versions and the upcasters between versions.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::DecodeError;

/// Which aggregate an event type belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Store,
    Item,
}

/// One event type this build can read and write.
#[derive(Debug)]
pub(super) struct Schema {
    pub(super) event_type: &'static str,
    pub(super) family: Family,
    /// The version written today; older stored versions are upcast to it.
    pub(super) current_version: u32,
}

/// Every event type with its current schema version. Changing an event's
/// payload shape means: bump its version here, and add an [`Upcaster`] from
/// the previous version to [`UPCASTERS`].
pub(super) const SCHEMAS: &[Schema] = &[
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

    pub(super) fn find(event_type: &str) -> Option<&'static Schema> {
        SCHEMAS.iter().find(|s| s.event_type == event_type)
    }
}

/// Turns the payload of `event_type` at `from_version` into the payload of
/// `from_version + 1`. Pure JSON to JSON, so old payloads never need the old
/// Rust types.
#[derive(Debug)]
pub(super) struct Upcaster {
    pub(super) event_type: &'static str,
    pub(super) from_version: u32,
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
pub(super) const UPCASTERS: &[Upcaster] = &[];

/// Brings `data` from `version` up to the current version of its type, one
/// step at a time.
pub(super) fn upcast(schema: &Schema, version: u32, mut data: Value) -> Result<Value, DecodeError> {
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
pub(super) fn from_data<E: DeserializeOwned>(
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
