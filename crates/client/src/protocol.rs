//! The realtime protocol's messages as the client reads and writes them
//! (docs/protocol.md is the reference). Lenient on purpose: fields the
//! client does not need are ignored, and frame types it does not know are
//! [`ServerFrame::Other`], so a newer server does not break an older client.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Protocol version this client speaks.
pub const PROTOCOL_VERSION: u32 = 1;

/// Close codes the server uses (docs/protocol.md, "Close codes").
pub mod close_code {
    /// Server shutdown, after a `reconnect` frame.
    pub const GOING_AWAY: u16 = 1001;
    /// Nothing received for two heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// No `auth` in time.
    pub const AUTH_TIMEOUT: u16 = 4001;
    /// The token was refused: get a new one.
    pub const INVALID_TOKEN: u16 = 4002;
    /// The token expired: refresh it and reconnect.
    pub const TOKEN_EXPIRED: u16 = 4003;
    /// Sustained excess of the inbound rate.
    pub const RATE_LIMITED: u16 = 4008;
    /// The outbound queue filled: reconnect and resume.
    pub const SLOW_CONSUMER: u16 = 4009;
    /// Too many connections from this address.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
}

/// A message to the server.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ClientMessage<'a> {
    Auth {
        id: &'a str,
        token: &'a str,
    },
    Subscribe {
        id: &'a str,
        topic: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        since: Option<u64>,
    },
    Ping {
        id: &'a str,
    },
}

/// A message from the server (the kinds the client acts on).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum ServerFrame {
    Welcome(Welcome),
    Subscribed {
        id: Option<String>,
        topic: String,
        resume: Resume,
        position: u64,
    },
    Event {
        topic: String,
        position: u64,
        event: Event,
    },
    Heartbeat {},
    Reconnect {
        #[serde(default)]
        delay_ms: u64,
    },
    Error {
        id: Option<String>,
        code: String,
        #[serde(default)]
        message: String,
    },
    /// `pong`, `presence`, `warning`, `command`, ...: read, not acted on.
    #[serde(other)]
    Other,
}

/// The server's `welcome`: the connection is authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Welcome {
    /// The server's id for this connection (in its logs and metrics).
    pub connection_id: String,
    /// How often the server sends a heartbeat.
    pub heartbeat_ms: u64,
    /// The last position the server routed.
    pub head: u64,
    /// The token's user.
    #[serde(default)]
    pub user: Option<String>,
    /// The token's expiry, unix seconds.
    #[serde(default)]
    pub expires_at: Option<u64>,
}

/// How a subscription started (the `resume` of `subscribed`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// No `since`: live from the current position.
    New,
    /// Every event after `since` follows.
    Recovered,
    /// The server could not replay from `since`: events were skipped.
    Reset,
}

/// A committed event, as the server sends it (docs/events.md lists the
/// types and their data).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Event {
    /// The event's id (a UUID).
    pub id: String,
    /// Its type, e.g. `StockAdjusted`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The stream it was appended to, e.g. `item-{id}`.
    pub stream: String,
    /// Its version within the stream (1 for the first).
    pub version: u64,
    /// When it was committed.
    pub recorded_at: DateTime<Utc>,
    /// The event's data; its shape depends on `event_type`.
    pub data: Value,
    /// Who and what the event is about.
    pub metadata: Metadata,
}

/// An event's metadata: what topics and permissions are computed from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Metadata {
    pub tenant: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<String>,
    /// Fields this client does not name.
    #[serde(flatten)]
    pub other: serde_json::Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_frames() {
        let event: ServerFrame = serde_json::from_str(
            r#"{"type":"event","topic":"store:s1","position":1235,
                "event":{"id":"0190f1c2","type":"StockAdjusted","stream":"item-42","version":7,
                "recorded_at":"2024-06-10T08:00:00.123456Z","data":{"delta":-2},
                "metadata":{"tenant":"acme","store":"s1","entity_type":"item","entity_id":"42",
                "actor":"alice","correlation_id":"0190f1c2","session":"x"}}}"#,
        )
        .unwrap();
        let ServerFrame::Event {
            topic,
            position,
            event,
        } = event
        else {
            panic!("an event")
        };
        assert_eq!((topic.as_str(), position), ("store:s1", 1235));
        assert_eq!(event.event_type, "StockAdjusted");
        assert_eq!(event.metadata.store.as_deref(), Some("s1"));
        assert_eq!(event.metadata.other["session"], "x");

        let subscribed: ServerFrame = serde_json::from_str(
            r#"{"type":"subscribed","id":"3","topic":"item:42","resume":"reset","position":1200}"#,
        )
        .unwrap();
        assert!(matches!(
            subscribed,
            ServerFrame::Subscribed {
                resume: Resume::Reset,
                position: 1200,
                ..
            }
        ));
        let other: ServerFrame =
            serde_json::from_str(r#"{"type":"presence_changed","store":"s1"}"#).unwrap();
        assert!(matches!(other, ServerFrame::Other));
    }

    #[test]
    fn writes_subscribe_with_since_only_when_given() {
        let with = ClientMessage::Subscribe {
            id: "2",
            topic: "tenant",
            since: Some(4),
        };
        assert_eq!(
            serde_json::to_string(&with).unwrap(),
            r#"{"type":"subscribe","id":"2","topic":"tenant","since":4}"#
        );
        let without = ClientMessage::Subscribe {
            id: "2",
            topic: "tenant",
            since: None,
        };
        assert!(!serde_json::to_string(&without).unwrap().contains("since"));
    }
}
