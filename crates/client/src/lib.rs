//! Larder's Rust client, for services that reuse Larder: subscribe to
//! topics and receive every event once, in order, across reconnects and
//! server restarts; send REST commands exactly once.
//!
//! docs/client-rust.md is the guide, docs/protocol.md and docs/api.md the
//! reference. It does in async Rust what the JavaScript client
//! (`larder-client.js`) does in browsers.
//!
//! ```no_run
//! use futures_util::StreamExt;
//! use larder_client::{Client, Update};
//!
//! # async fn run(token: String, store: &str) -> Result<(), larder_client::Error> {
//! let client = Client::new("http://127.0.0.1:8080", token)?;
//! // Build the state from a read, then go live from its position.
//! let inventory = client.get(&format!("/stores/{store}/items")).await?;
//! let since = inventory["position"].as_u64();
//! let mut updates = client.subscribe([format!("store:{store}")], since).await?;
//! while let Some(update) = updates.next().await {
//!     match update? {
//!         Update::Event(e) => println!("{} {} at {}", e.topic, e.event.event_type, e.position),
//!         Update::Reset { .. } => { /* events were skipped: read the state again */ }
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `client`: [`Client`] and its [`ClientBuilder`]: the server's address,
//!   the [`TokenProvider`], the reconnect and retry policies.
//! - `subscription`: [`Client::subscribe`] and the [`Subscription`] stream
//!   (one connection per subscription, resumed with `since` after every
//!   drop, duplicates dropped by position).
//! - `commands`: [`Client::command`] with [`Command`]: one
//!   `Idempotency-Key` per logical command, kept across retries.
//! - `connection`: one authenticated WebSocket connection (internal).
//! - `protocol`: the frames, [`Event`], close codes.
//! - `backoff`: [`Backoff`], exponential with full jitter.
//! - `token`: [`TokenProvider`] and [`token_fn`].
//! - `error`: [`Error`] and [`CommandError`].
//!
//! Plain `http://` and `ws://` only: put TLS in front (a proxy), or pass a
//! `reqwest::Client` with TLS for commands; `wss://` needs a
//! tokio-tungstenite TLS feature this crate does not turn on.

#![allow(
    clippy::large_enum_variant,
    reason = "an event is handed to the caller by value, once: boxing it would add an allocation per event"
)]
#![allow(
    clippy::result_large_err,
    reason = "errors carry the server's answer (code, message, details) for the caller; they are rare and not on a hot path"
)]

mod backoff;
mod client;
mod commands;
mod connection;
mod error;
mod protocol;
mod subscription;
mod token;

pub use backoff::Backoff;
pub use client::{Client, ClientBuilder};
pub use commands::{
    Command, CommandResponse, is_transient_status, is_valid_idempotency_key, new_idempotency_key,
};
pub use error::{BoxError, CommandError, Error};
pub use protocol::{Event, Metadata, PROTOCOL_VERSION, Resume, Welcome, close_code};
pub use reqwest::Method;
pub use subscription::{Stats, Status, Subscription, TopicEvent, Update};
pub use token::{FnToken, TokenFuture, TokenProvider, token_fn};
