use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
    pub data: serde_json::Value,
    /// Routing and tracing metadata.
    pub metadata: Metadata,
}

impl NewEvent {
    /// A new event with a fresh, time-ordered id (UUIDv7: new ids land at
    /// the end of the id index instead of all over it).
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u32,
        data: serde_json::Value,
        metadata: Metadata,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            data,
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
    pub data: serde_json::Value,
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
