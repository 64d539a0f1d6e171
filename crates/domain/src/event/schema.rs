//! Event types, their schema versions and the upcasters between versions.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::DecodeError;

/// Which aggregate an event type belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Family {
    Store,
    Item,
    Menu,
    Order,
    Inbox,
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
    Schema::new("StockAdjusted", Family::Item, 2),
    Schema::new("ThresholdChanged", Family::Item, 2),
    Schema::new("ItemRenamed", Family::Item, 2),
    Schema::new("ItemRemoved", Family::Item, 1),
    Schema::new("LowStock", Family::Item, 1),
    Schema::new("OutOfStock", Family::Item, 1),
    Schema::new("Restocked", Family::Item, 1),
    Schema::new("TransferCompleted", Family::Item, 1),
    Schema::new("StationSet", Family::Menu, 1),
    Schema::new("MenuItemAdded", Family::Menu, 1),
    Schema::new("MenuItemChanged", Family::Menu, 1),
    Schema::new("MenuItemActivated", Family::Menu, 1),
    Schema::new("MenuItemDeactivated", Family::Menu, 1),
    Schema::new("OrderOpened", Family::Order, 1),
    Schema::new("OrderLineAdded", Family::Order, 1),
    Schema::new("OrderLineVoided", Family::Order, 1),
    Schema::new("OrderFired", Family::Order, 1),
    Schema::new("OrderLineStarted", Family::Order, 1),
    Schema::new("OrderLineReady", Family::Order, 1),
    Schema::new("OrderLineRecalled", Family::Order, 1),
    Schema::new("OrderReady", Family::Order, 1),
    Schema::new("OrderServed", Family::Order, 1),
    Schema::new("OrderCompleted", Family::Order, 1),
    Schema::new("OrderCancelled", Family::Order, 1),
    Schema::new("OrderRushed", Family::Order, 1),
    Schema::new("OrderRushCleared", Family::Order, 1),
    Schema::new("NotificationRaised", Family::Inbox, 1),
    Schema::new("NotificationRead", Family::Inbox, 1),
    Schema::new("AllNotificationsRead", Family::Inbox, 1),
    Schema::new("AlertCleared", Family::Inbox, 1),
    Schema::new("NotificationPreferencesSet", Family::Inbox, 1),
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

/// The chain of upcasters. Version 2 of the three undoable changes added
/// `undoes` (the change a compensating event undoes); a version 1 payload
/// undid nothing.
pub(super) const UPCASTERS: &[Upcaster] = &[
    Upcaster::new("StockAdjusted", 1, undoes_nothing),
    Upcaster::new("ThresholdChanged", 1, undoes_nothing),
    Upcaster::new("ItemRenamed", 1, undoes_nothing),
];

impl Upcaster {
    const fn new(event_type: &'static str, from_version: u32, upcast: fn(Value) -> Value) -> Self {
        Self {
            event_type,
            from_version,
            upcast,
        }
    }
}

/// v1 -> v2 of an undoable change: `"undoes": null`. A payload that is not
/// an object is left for decoding to refuse.
fn undoes_nothing(mut data: Value) -> Value {
    if let Value::Object(fields) = &mut data {
        fields.entry("undoes").or_insert(Value::Null);
    }
    data
}

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
