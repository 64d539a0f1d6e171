//! Larder's realtime layer: delivers committed events to browsers and
//! services over WebSocket (with SSE and long-poll fallbacks), in order,
//! without loss across reconnects, filtered by what each token may see.
//!
//! The crate is domain-agnostic: it routes by event [`Metadata`](larder_store::Metadata)
//! (tenant, store, entity type and id, actor, session) and knows nothing of
//! inventory. It depends on ports the server plugs in: an
//! [`EventSource`] (the event store), an [`Authorizer`] (token → [`Identity`]),
//! an optional [`SnapshotProvider`] (read models) and, for several nodes, a
//! shared [`Presence`] (see [`Hub::use_presence`]).
//!
//! One [`Hub`] per process runs one broadcaster task that consumes the
//! gap-free, ordered [`EventFeed`] (a [`larder_store::CatchUp`] tail), builds
//! each event's JSON once, and offers it to the rooms (topics) it belongs to.
//! Each connection has a bounded outbound queue; a subscriber that cannot
//! keep up is closed (4009) and resumes with `since`, so memory stays bounded
//! and nothing is lost. A subscription with `since` registers live first (in
//! a buffering state), replays the store up to the position it registered
//! at, then flushes the buffer and goes live: no gap, no duplicate.
//!
//! The wire protocol is documented in `docs/protocol.md`.
//!
//! Wiring it in a server (the axum adapter maps `Message` ⇄ [`Frame`]):
//!
//! ```no_run
//! use std::sync::Arc;
//! use larder_realtime::{catch_up_feed, EventSource, Hub, RealtimeConfig};
//! use larder_store::{CatchUp, EventStore, RecordedEvent};
//!
//! # async fn run(store: Arc<dyn EventStore>,
//! #              bus: Arc<dyn larder_bus::EventBus<RecordedEvent>>,
//! #              authorizer: Arc<dyn larder_realtime::Authorizer>) -> Result<(), larder_store::StoreError> {
//! let head = store.head().await?;
//! let tail = CatchUp::start(store.clone(), Some(bus.as_ref()), head).await?;
//! let source: Arc<dyn EventSource> = Arc::new(store);
//! let hub = Hub::start(source, catch_up_feed(tail), head, authorizer, None, RealtimeConfig::default());
//! // per upgraded socket:
//! // tokio::spawn(larder_realtime::serve_connection(hub.clone(), stream, sink, context));
//! # let _ = hub; Ok(()) }
//! ```
//!
//! # Layout
//! - `frame`: [`Frame`], the transport-neutral WebSocket frame, its
//!   [`SharedText`], the [`close`] codes, and [`ReadError`].
//! - `ports`: [`EventSource`], [`Authorizer`], [`SnapshotProvider`],
//!   [`StateProvider`],
//!   [`Identity`], [`Role`], [`AuthFailure`].
//! - `presence`: the [`Presence`] port, who is present in which store
//!   across nodes: [`LocalPresence`] (one node, the default) and, with the
//!   `nats` feature, `NatsPresence` (heartbeats over NATS).
//! - `topic`: [`Topic`], parsing and matching against metadata.
//! - `protocol`: [`ClientMessage`], [`ServerMessage`], [`ErrorCode`],
//!   [`Resume`], the pre-serialised event JSON.
//! - `config`: [`RealtimeConfig`], every bound with its default and reason.
//! - `hub`: [`Hub`] (broadcaster, rooms, subscriptions, resume, presence,
//!   connection permits, shutdown, the state publisher of derived topics:
//!   [`Hub::start_state_publisher`]), [`EventFeed`], [`catch_up_feed`].
//! - `lifecycle`: [`Hub::track_command`], the transient `command` frames
//!   ([`CommandFrame`]) a login session gets about its commands, `executed`
//!   held back until the hub has routed the command's events.
//! - `connection`: [`serve_connection`], the per-connection loop (its
//!   reader half).
//! - `writer`: the writer half: the outbound queue into the socket, and
//!   the close frame within a bound.
//! - `outlet`: [`RawSocket`] and the direct path: a connection's frames
//!   written straight into its socket by the broadcaster, queued only when
//!   the socket does not take them at once ([`serve_socket`]).
//! - `rate`: the inbound rate limit (a token bucket).
//! - `stream`: [`Hub::open_stream`] and [`Hub::poll`] for SSE and long-poll.
//! - `metrics`: the metric names.

#[doc(hidden)]
pub mod bench;
mod config;
mod connection;
mod frame;
mod hub;
mod lifecycle;
pub mod metrics;
mod outlet;
mod ports;
mod presence;
mod protocol;
mod rate;
mod stream;
mod topic;
mod writer;

#[cfg(test)]
mod tests;

pub use config::RealtimeConfig;
pub use connection::{ConnectionContext, serve_connection, serve_socket};
pub use frame::{CloseReason, Frame, ReadError, SharedText, close};
pub use hub::{
    ConnectionPermit, EventFeed, EventFrame, Hub, SubscribeError, TooManyConnections,
    TooManyUserConnections, UserPermit, catch_up_feed,
};
pub use lifecycle::{CommandFrame, CommandStatus, CommandTracker, MAX_WAITING_COMMAND_FRAMES};
pub use outlet::RawSocket;
pub use ports::{
    AuthFailure, Authorizer, EventSource, Identity, Role, SnapshotProvider, StateProvider,
};
pub use presence::{LocalPresence, Presence, PresenceChange};
#[cfg(feature = "nats")]
pub use presence::{NatsPresence, NatsPresenceConfig, PresenceError};
pub use protocol::{
    ClientMessage, ErrorCode, PROTOCOL_VERSION, PresenceState, Resume, ServerMessage, SnapshotBody,
    event_frame, event_json,
};
pub use stream::{EventStream, MAX_POLL_LIMIT, MAX_POLL_WAIT};
pub use topic::{PERSONAL, Topic, TopicError, recipient};
