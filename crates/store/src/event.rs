use std::fmt;

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use uuid::Uuid;

/// An event's data: one JSON value (an object, for an append to accept it),
/// kept as its JSON text.
///
/// Data is serialised once, where the event is made, then stored, published
/// and sent to clients as that text; nothing re-encodes it on the way. Build
/// it from a [`serde_json::Value`] (`From`, so `json!({...})` works where
/// `NewEvent::new` takes data), from any `Serialize` value
/// ([`EventData::from_serialize`]), or from JSON text
/// ([`EventData::from_json`], which checks it).
///
/// Both backends store the text as written (PostgreSQL as `json`) and read
/// it back unchanged. Two `EventData` are equal when they hold the same JSON
/// value, whatever their key order and spacing.
///
/// ```
/// use larder_store::EventData;
/// use serde_json::json;
///
/// let data = EventData::from_json(r#"{ "delta": -2 }"#.to_owned()).unwrap();
/// assert_eq!(data, EventData::from(json!({ "delta": -2 })));
/// assert_eq!(data.to_value(), json!({ "delta": -2 }));
/// assert!(EventData::from_json("{ nope".to_owned()).is_err());
/// ```
#[derive(Clone)]
pub struct EventData(Box<RawValue>);

impl EventData {
    /// Checks that `json` is one JSON value and keeps it as it is.
    pub fn from_json(json: String) -> Result<Self, serde_json::Error> {
        RawValue::from_string(json).map(Self)
    }

    /// Serialises `value` (no second pass to check the text).
    pub fn from_serialize<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::value::to_raw_value(value).map(Self)
    }

    /// The JSON text.
    pub fn json(&self) -> &str {
        self.0.get()
    }

    /// Whether the data is a JSON object.
    pub fn is_object(&self) -> bool {
        self.json().trim_start().starts_with('{')
    }

    /// Parses the data into a [`serde_json::Value`].
    pub fn to_value(&self) -> serde_json::Value {
        // The text was checked (or written by serde_json) when this was made.
        serde_json::from_str(self.json()).unwrap_or(serde_json::Value::Null)
    }

    /// Deserialises the data into `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(self.json())
    }
}

impl From<serde_json::Value> for EventData {
    fn from(value: serde_json::Value) -> Self {
        Self::from(&value)
    }
}

impl From<&serde_json::Value> for EventData {
    fn from(value: &serde_json::Value) -> Self {
        // A `Value` always serialises: its map keys are strings.
        Self::from_serialize(value).unwrap_or_else(|_| Self(RawValue::NULL.to_owned()))
    }
}

impl PartialEq for EventData {
    fn eq(&self, other: &Self) -> bool {
        self.json() == other.json() || self.to_value() == other.to_value()
    }
}

impl fmt::Debug for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl fmt::Display for EventData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.json())
    }
}

impl Serialize for EventData {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for EventData {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(deserializer).map(Self)
    }
}

/// Who and what an event is about. Consumers route and filter by it (the
/// realtime hub computes topics and permissions from it) without decoding
/// the event data.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The tenant the event belongs to. Required: every read filters by it.
    pub tenant: String,
    /// The store (shop, kitchen, warehouse) the event is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    /// The kind of entity, e.g. `store` or `item`.
    pub entity_type: String,
    /// The entity's id.
    pub entity_id: String,
    /// The user or service that caused the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The login session (shared by all tabs of one sign-in) that caused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Shared by every event caused by one request, across services.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The message (command or event) that directly caused this event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
}

/// An event to append. The store assigns its stream version, global
/// position and recorded time.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Unique id. Appending an id that is already stored at the same place
    /// is an idempotent no-op, so a client may retry with the same ids.
    pub id: Uuid,
    /// Stable type name, e.g. `StockAdjusted`.
    pub event_type: String,
    /// Version of the data's schema, for upcasting old events.
    pub schema_version: u32,
    /// The event's data, a JSON object.
    pub data: EventData,
    /// Routing and tracing metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// A new event with a fresh, time-ordered id (UUIDv7: new ids land at
    /// the end of the id index instead of all over it).
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u32,
        data: impl Into<EventData>,
        metadata: Metadata,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            data: data.into(),
            metadata,
        }
    }
}

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedEvent {
    /// Global position: gap-free, strictly increasing in commit order.
    pub position: u64,
    /// The event's unique id.
    pub id: Uuid,
    /// The stream (aggregate) it belongs to, e.g. `item-{uuid}`.
    pub stream: String,
    /// Its version in the stream: 1 for the first event.
    pub version: u64,
    /// Stable type name.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Version of the data's schema.
    pub schema_version: u32,
    /// The event's data.
    pub data: EventData,
    /// Routing and tracing metadata.
    pub metadata: Metadata,
    /// When the store committed it.
    pub recorded_at: DateTime<Utc>,
}

/// What the writer expects a stream's version to be before appending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "version")]
pub enum ExpectedVersion {
    /// No check: append whatever the stream holds.
    Any,
    /// The stream must not exist yet (version 0).
    NoStream,
    /// The stream must be exactly at this version (0 = no stream).
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::Exact(expected) => actual == expected,
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::Exact(version) => write!(f, "{version}"),
        }
    }
}

/// Events to append to one stream, with the version the writer expects.
///
/// An empty `events` list only checks the version: a multi-stream append can
/// use it to make its decision depend on a stream it does not change.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream's name.
    pub stream: String,
    /// The version the stream must be at.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
}

impl StreamAppend {
    /// Events for `stream`, expecting `expected`.
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        Self {
            stream: stream.into(),
            expected,
            events,
        }
    }
}

/// A stream's version after an append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamVersion {
    /// The stream's name.
    pub stream: String,
    /// Its version after the append (the version of its last event).
    pub version: u64,
}

/// The outcome of a successful append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResult {
    /// Each stream's version after the append, in request order.
    pub streams: Vec<StreamVersion>,
    /// The global position of the last event written; when nothing was
    /// written, the head position the version checks were made at.
    pub last_position: u64,
}

impl AppendResult {
    /// The version of `stream` after the append.
    pub fn version_of(&self, stream: &str) -> Option<u64> {
        self.streams
            .iter()
            .find(|s| s.stream == stream)
            .map(|s| s.version)
    }

    /// The version of the first stream: the stream of a single-stream append.
    pub fn version(&self) -> u64 {
        self.streams.first().map_or(0, |s| s.version)
    }
}

/// Which events a read of the global log returns. Empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventFilter {
    /// Only this tenant's events.
    pub tenant: Option<String>,
    /// Only this store's events.
    pub store: Option<String>,
    /// Only this entity type's events.
    pub entity_type: Option<String>,
    /// Only this entity's events (usually with `entity_type`).
    pub entity_id: Option<String>,
}

impl EventFilter {
    /// Every event of one tenant.
    pub fn tenant(tenant: impl Into<String>) -> Self {
        Self {
            tenant: Some(tenant.into()),
            ..Self::default()
        }
    }

    /// Restricts to one store.
    pub fn store(mut self, store: impl Into<String>) -> Self {
        self.store = Some(store.into());
        self
    }

    /// Restricts to one entity type.
    pub fn entity_type(mut self, entity_type: impl Into<String>) -> Self {
        self.entity_type = Some(entity_type.into());
        self
    }

    /// Restricts to one entity.
    pub fn entity_id(mut self, entity_id: impl Into<String>) -> Self {
        self.entity_id = Some(entity_id.into());
        self
    }

    /// Whether `event` passes the filter.
    pub fn matches(&self, metadata: &Metadata) -> bool {
        fn ok(want: &Option<String>, have: Option<&str>) -> bool {
            want.as_deref().is_none_or(|w| have == Some(w))
        }
        ok(&self.tenant, Some(&metadata.tenant))
            && ok(&self.store, metadata.store.as_deref())
            && ok(&self.entity_type, Some(&metadata.entity_type))
            && ok(&self.entity_id, Some(&metadata.entity_id))
    }
}

/// One page of the global log.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Matching events in position order.
    pub events: Vec<RecordedEvent>,
    /// The position the read got through: every event up to it that matches
    /// the filter is in `events` (or an earlier page). Continue after it.
    pub scanned_to: u64,
    /// Whether the read reached the head of the log as it was when read.
    pub reached_head: bool,
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn data_keeps_its_text_and_compares_by_value() {
        let spaced = EventData::from_json(r#"{ "b": 1, "a": [true, null] }"#.to_owned()).unwrap();
        assert_eq!(spaced.json(), r#"{ "b": 1, "a": [true, null] }"#);
        // Another key order and spacing: still equal.
        let normalised = EventData::from_json(r#"{"a":[true,null],"b":1}"#.to_owned()).unwrap();
        assert_eq!(spaced, normalised);
        assert_ne!(
            spaced,
            EventData::from(json!({ "a": [true, null], "b": 2 }))
        );
    }

    #[test]
    fn data_says_whether_it_is_an_object() {
        assert!(EventData::from(json!({})).is_object());
        assert!(!EventData::from(json!([1, 2])).is_object());
        assert!(!EventData::from(json!("{ not an object")).is_object());
        assert!(!EventData::from(json!(null)).is_object());
    }

    #[test]
    fn text_that_is_not_one_json_value_is_refused() {
        for bad in ["", "{", "{} {}", "{'a': 1}", "nope"] {
            assert!(EventData::from_json(bad.to_owned()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_recorded_event_serialises_its_data_verbatim_and_reads_back() {
        let event = RecordedEvent {
            position: 7,
            id: Uuid::nil(),
            stream: "item-1".into(),
            version: 1,
            event_type: "Happened".into(),
            schema_version: 1,
            data: EventData::from_json(r#"{"n":1,"note":"é"}"#.to_owned()).unwrap(),
            metadata: Metadata::default(),
            recorded_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.contains(r#""data":{"n":1,"note":"é"}"#), "{json}");
        let back: RecordedEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(back, event);
        assert_eq!(back.data.json(), event.data.json());
    }
}
