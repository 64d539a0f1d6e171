//! Protocol v1: the JSON messages of a connection. `docs/protocol.md` is the
//! reference; this module is its code.

use std::sync::Arc;

use larder_store::{EventData, RecordedEvent};
use serde::{Deserialize, Serialize};

/// The protocol version announced in `welcome`.
pub const PROTOCOL_VERSION: u32 = 1;

/// A message from the client. Every request carries an `id` the reply echoes.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// Authenticates the connection; must be the first message unless the
    /// connection was authenticated at upgrade time.
    Auth {
        /// Request id.
        id: String,
        /// A bearer token.
        token: String,
    },
    /// Subscribes to a topic.
    Subscribe {
        /// Request id.
        id: String,
        /// The topic string.
        topic: String,
        /// Resume after this position: every matching event after it is
        /// delivered (`recovered`), or the client is told to refetch (`reset`).
        #[serde(default)]
        since: Option<u64>,
        /// Ask for a snapshot and the events after it.
        #[serde(default)]
        snapshot: Option<bool>,
    },
    /// Ends a subscription.
    Unsubscribe {
        /// Request id.
        id: String,
        /// The topic string, as subscribed.
        topic: String,
    },
    /// Application-level ping; answered with `pong`.
    Ping {
        /// Request id.
        id: String,
        /// Echoed back in `pong`.
        #[serde(default)]
        ts: Option<u64>,
    },
    /// Replaces the connection's token (same tenant and user).
    Refresh {
        /// Request id.
        id: String,
        /// The new token.
        token: String,
    },
    /// Announces the user in a store and lists who else is there.
    Presence {
        /// Request id.
        id: String,
        /// The store id.
        store: String,
    },
}

/// The `type` names of [`ClientMessage`], to tell an unknown type from a
/// malformed known one.
pub(crate) const CLIENT_TYPES: &[&str] = &[
    "auth",
    "subscribe",
    "unsubscribe",
    "ping",
    "refresh",
    "presence",
];

/// How a subscription started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resume {
    /// No `since`: live from the current position.
    New,
    /// Every matching event after `since` (or the snapshot) was or will be
    /// delivered.
    Recovered,
    /// `since` could not be honoured (ahead of the head, or too far behind):
    /// refetch a snapshot; live from the current position.
    Reset,
}

impl Resume {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Recovered => "recovered",
            Self::Reset => "reset",
        }
    }
}

/// A snapshot carried by `subscribed`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotBody {
    /// The position the data is current at; events after it follow.
    pub position: u64,
    /// The read model's data.
    pub data: serde_json::Value,
}

/// Presence state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PresenceState {
    /// The user's first connection announced itself in the store.
    Joined,
    /// The user's last connection in the store went away.
    Left,
}

/// Machine-readable error codes of `error` messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The frame is not JSON.
    InvalidJson,
    /// The `type` is not a known client message.
    UnknownType,
    /// A known type with missing or wrong fields.
    InvalidMessage,
    /// The request needs an authenticated connection.
    NotAuthenticated,
    /// The claims do not allow it.
    Forbidden,
    /// The topic string does not parse.
    InvalidTopic,
    /// `max_subscriptions` reached.
    TooManySubscriptions,
    /// `max_presence` reached: the connection announced itself in as many
    /// stores as it may.
    TooManyPresences,
    /// `max_connections_per_user` reached: the user has as many connections
    /// as they may, on every node together (the connection then closes
    /// with 4029).
    TooManyConnections,
    /// The topic is already subscribed on this connection.
    AlreadySubscribed,
    /// The topic is not subscribed on this connection.
    NotSubscribed,
    /// `since` is not usable with this request.
    InvalidSince,
    /// No snapshot exists for this topic, or producing it failed.
    SnapshotUnavailable,
    /// The event store could not be read; retry later.
    Unavailable,
}

/// A message from the server (except `event`, which is spliced from a
/// pre-serialised event; see [`event_frame`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The connection is authenticated.
    Welcome {
        /// The `auth` request id (absent when authenticated at upgrade).
        id: Option<String>,
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// This connection's id, for logs and support.
        connection_id: String,
        /// The heartbeat interval; the client should send something at
        /// least this often.
        heartbeat_ms: u64,
        /// The last position routed by the server.
        head: u64,
        /// The authenticated user.
        user: String,
        /// When the token expires (unix seconds).
        expires_at: u64,
    },
    /// A subscription is active.
    Subscribed {
        /// The request id.
        id: String,
        /// The topic string.
        topic: String,
        /// How it started.
        resume: Resume,
        /// Events with a position after this one follow.
        position: u64,
        /// The snapshot, when asked for.
        #[serde(skip_serializing_if = "Option::is_none")]
        snapshot: Option<SnapshotBody>,
    },
    /// A subscription ended.
    Unsubscribed {
        /// The request id.
        id: String,
        /// The topic string.
        topic: String,
    },
    /// Answer to `ping`.
    Pong {
        /// The request id.
        id: String,
        /// The client's `ts`, or the server's unix milliseconds.
        ts: u64,
    },
    /// The token was replaced.
    Refreshed {
        /// The request id.
        id: String,
        /// The new expiry (unix seconds).
        expires_at: u64,
    },
    /// Who is in a store.
    Presence {
        /// The request id.
        id: String,
        /// The store id.
        store: String,
        /// The users present, sorted.
        users: Vec<String>,
    },
    /// Someone joined or left a store (sent to `store:{id}` subscribers).
    PresenceChanged {
        /// The store id.
        store: String,
        /// The user.
        user: String,
        /// Joined or left.
        state: PresenceState,
    },
    /// The state of a derived topic (a dashboard), pushed at most once per
    /// publishing interval however many events changed it.
    State {
        /// The topic string.
        topic: String,
        /// The log position the state reflects.
        position: u64,
        /// The state.
        data: serde_json::Value,
    },
    /// Sent every heartbeat interval.
    Heartbeat {
        /// The last position routed by the server.
        head: u64,
    },
    /// A bound is close; the connection goes on.
    Warning {
        /// e.g. `rate_limited`.
        code: String,
        /// Human-readable.
        message: String,
    },
    /// The server is going away: reconnect after `delay_ms`.
    Reconnect {
        /// How long to wait before reconnecting (spread over connections).
        delay_ms: u64,
        /// Why, e.g. `shutdown`.
        reason: String,
    },
    /// What became of a command the connection's login session sent
    /// (`session:{sid}` subscribers only; see [`crate::CommandTracker`]).
    Command(crate::CommandFrame),
    /// A request failed; the connection goes on.
    Error {
        /// The request id, when the request had one.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The error code.
        code: ErrorCode,
        /// Human-readable.
        message: String,
    },
}

impl ServerMessage {
    /// The JSON text of this message.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server messages always serialise")
    }

    pub(crate) fn error(id: Option<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Error {
            id,
            code,
            message: message.into(),
        }
    }
}

#[derive(Serialize)]
struct WireMetadata<'a> {
    tenant: &'a str,
    store: Option<&'a str>,
    entity_type: &'a str,
    entity_id: &'a str,
    actor: Option<&'a str>,
    correlation_id: Option<String>,
    /// Only on events caused by another event (an undo names the undone
    /// event), so other frames stay as they were.
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<String>,
}

#[derive(Serialize)]
struct WireEvent<'a> {
    id: String,
    #[serde(rename = "type")]
    event_type: &'a str,
    stream: &'a str,
    version: u64,
    recorded_at: String,
    data: &'a EventData,
    metadata: WireMetadata<'a>,
}

/// The event as clients see it (the `event` field of an `event` message and
/// the `data:` of an SSE event). Built once per event and shared.
pub fn event_json(event: &RecordedEvent) -> Arc<str> {
    let m = &event.metadata;
    let wire = WireEvent {
        id: event.id.to_string(),
        event_type: &event.event_type,
        stream: &event.stream,
        version: event.version,
        recorded_at: event
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        data: &event.data,
        metadata: WireMetadata {
            tenant: &m.tenant,
            store: m.store.as_deref(),
            entity_type: &m.entity_type,
            entity_id: &m.entity_id,
            actor: m.actor.as_deref(),
            correlation_id: m.correlation_id.map(|c| c.to_string()),
            causation_id: m.causation_id.map(|c| c.to_string()),
        },
    };
    serde_json::to_string(&wire)
        .expect("recorded events always serialise")
        .into()
}

/// An `event` message for `topic`, splicing the pre-serialised event JSON:
/// one string per topic per event, shared by every subscriber.
pub fn event_frame(topic: &str, position: u64, event: &str) -> Arc<str> {
    event_frame_string(topic, position, event).into()
}

/// [`event_frame`] into one exactly sized `String` (a single allocation),
/// which the hub turns into a shared buffer without copying.
pub(crate) fn event_frame_string(topic: &str, position: u64, event: &str) -> String {
    use std::fmt::Write as _;
    const HEAD: &str = r#"{"type":"event","topic":"#;
    const MID: &str = r#","position":"#;
    const TAIL: &str = r#","event":"#;
    // Topics are short and rarely need escaping; 20 digits fit any u64.
    let mut frame = String::with_capacity(
        HEAD.len() + topic.len() + 2 + MID.len() + 20 + TAIL.len() + event.len() + 1,
    );
    frame.push_str(HEAD);
    if topic.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        frame.push('"');
        frame.push_str(topic);
        frame.push('"');
    } else {
        frame.push_str(&serde_json::to_string(topic).expect("strings serialise"));
    }
    frame.push_str(MID);
    let _ = write!(frame, "{position}");
    frame.push_str(TAIL);
    frame.push_str(event);
    frame.push('}');
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_tagged_snake_case() {
        let m: ClientMessage =
            serde_json::from_str(r#"{"type":"subscribe","id":"1","topic":"tenant","since":5}"#)
                .unwrap();
        assert_eq!(
            m,
            ClientMessage::Subscribe {
                id: "1".into(),
                topic: "tenant".into(),
                since: Some(5),
                snapshot: None
            }
        );
        assert!(serde_json::from_str::<ClientMessage>(r#"{"type":"subscribe","id":"1"}"#).is_err());
    }

    #[test]
    fn event_frames_splice_valid_json() {
        let frame = event_frame("store:\"x\"", 7, r#"{"id":"e"}"#);
        let value: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(value["type"], "event");
        assert_eq!(value["topic"], "store:\"x\"");
        assert_eq!(value["position"], 7);
        assert_eq!(value["event"]["id"], "e");
    }

    #[test]
    fn server_messages_serialise_with_their_type() {
        let json = ServerMessage::error(None, ErrorCode::InvalidJson, "bad").to_json();
        assert_eq!(
            json,
            r#"{"type":"error","code":"invalid_json","message":"bad"}"#
        );
        let json = ServerMessage::Heartbeat { head: 3 }.to_json();
        assert_eq!(json, r#"{"type":"heartbeat","head":3}"#);
    }
}
