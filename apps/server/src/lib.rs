//! Larder's server: the thin wiring layer over the event store, the bus and
//! the read models. No business rules live here: commands run through
//! `larder-app`'s pipeline (decided by `larder-domain`, stored by
//! `larder-store`), reads come from `larder-projections`.
//!
//! # Layout
//! - `config`: [`Settings`], clap flags with `LARDER_*` environment fallbacks.
//! - `startup`: [`Application`] (`build`, `port`, `run_until_stopped`) and [`router`].
//! - `serve`: the accept loop: header-read timeout, connection cap, graceful shutdown.
//! - `edge`: security headers, CORS, the `/ws` origin check, loopback-only demo tokens.
//! - `routes`: REST handlers and the OpenAPI document generated from them.
//! - `auth`: bearer JWT verification, roles, store visibility, demo tokens.
//! - `error`: [`ApiError`], the one mapping of errors to HTTP responses.
//! - `extract`: extractors that answer bad input with JSON errors.
//! - `idempotency`: `Idempotency-Key` on commands.
//! - `lifecycle`: `Command-Id` on commands, and the `command` frames it brings.
//! - `realtime`: `/ws`, SSE and long-poll over the `larder-realtime` hub.
//! - `dashboard`: today's figures per store and per tenant, for REST, the
//!   dashboard topics' snapshots and their coalesced `state` frames.
//! - `websocket`: the `/ws` upgrade, and the socket the hub writes into.
//! - `web`: the embedded web app and JavaScript client.
//! - `telemetry`: tracing subscriber and Prometheus recorder set-up.

mod auth;
pub mod config;
mod dashboard;
pub mod directory;
mod edge;
mod error;
mod extract;
mod idempotency;
mod lifecycle;
mod realtime;
mod routes;
mod serve;
mod startup;
mod state;
pub mod telemetry;
mod threads;
mod web;
mod websocket;

pub use auth::{Audience, Claims, Role, StoreAccess};
pub use config::Settings;
pub use dashboard::Dashboards;
pub use error::ApiError;
pub use routes::api;
pub use serve::{OVERFLOW_CONNECTIONS, raise_open_file_limit};
pub use startup::{Application, DRAIN_TIMEOUT, router, shutdown_signal};
pub use state::AppState;
