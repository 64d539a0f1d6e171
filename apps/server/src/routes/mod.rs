//! The HTTP API: routes, request and response bodies, OpenAPI.

pub mod dashboard;
pub mod dev;
pub mod items;
pub mod kitchen;
pub mod menu;
pub mod notifications;
pub mod ops;
pub mod orders;
mod schema;
pub mod stores;
pub mod undo;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderName, StatusCode};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;
use larder_app::Outcome;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Larder",
        description = "Real-time, event-sourced inventory. Every change is an event; \
                       commands answer with the stream version and global position they wrote."
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody, schema::StatusFilterSchema)),
    tags(
        (name = "stores", description = "Stores: create, rename, close, list"),
        (name = "items", description = "Inventory items: add, adjust, threshold, rename, remove, transfer, undo, redo"),
        (name = "menu", description = "A store's menu: stations, dishes and drinks with their prices and recipes"),
        (name = "orders", description = "Orders: open, add and void lines, fire, the kitchen's start, ready and recall, serve, complete, cancel, rush"),
        (name = "kitchen", description = "Read models of the kitchen: a station's tickets, preparation times, the order board, what the menu can serve"),
        (name = "dashboard", description = "Dashboards: today's orders, revenue, preparation times, open orders, stock alerts and top items, per store and per tenant"),
        (name = "notifications", description = "One's notifications: history, unread count, mark read, preferences; an administrator's broadcasts"),
        (name = "operations", description = "Health, readiness, demo tokens"),
        (name = "realtime", description = "Server-Sent Events and long-poll; the WebSocket protocol at /ws is in docs/protocol.md")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// Every route, with the OpenAPI document generated from the same handlers.
pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(stores::list_stores, stores::create_store))
        .routes(routes!(stores::get_store))
        .routes(routes!(stores::rename_store))
        .routes(routes!(stores::close_store))
        .routes(routes!(stores::list_items, items::add_item))
        .routes(routes!(stores::activity))
        .routes(routes!(items::get_item))
        .routes(routes!(items::item_events))
        .routes(routes!(items::adjust_stock))
        .routes(routes!(items::set_threshold))
        .routes(routes!(items::rename_item))
        .routes(routes!(items::remove_item))
        .routes(routes!(items::transfer))
        .routes(routes!(menu::get_menu))
        .routes(routes!(menu::set_station))
        .routes(routes!(menu::add_menu_item))
        .routes(routes!(menu::change_menu_item))
        .routes(routes!(menu::activate_menu_item))
        .routes(routes!(menu::deactivate_menu_item))
        .routes(routes!(orders::open_order))
        .routes(routes!(orders::get_order))
        .routes(routes!(orders::add_line))
        .routes(routes!(orders::void_line))
        .routes(routes!(orders::start_line))
        .routes(routes!(orders::ready_line))
        .routes(routes!(orders::recall_line))
        .routes(routes!(orders::fire))
        .routes(routes!(orders::serve))
        .routes(routes!(orders::complete))
        .routes(routes!(orders::cancel))
        .routes(routes!(orders::rush))
        .routes(routes!(undo::undo_change))
        .routes(routes!(undo::redo_change))
        .routes(routes!(dev::mint_token))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(crate::realtime::sse))
        .routes(routes!(crate::realtime::poll))
        .merge(kitchen::routes())
        .merge(dashboard::routes())
        .merge(notifications::routes())
        .with_state(state.clone())
        .layer(axum::middleware::from_fn(crate::idempotency::keyed))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::lifecycle::followed,
        ))
        .split_for_parts();
    let mut openapi = openapi;
    schema::UuidPatterns.modify(&mut openapi);
    schema::StatusValues.modify(&mut openapi);
    crate::idempotency::KeyedCommands.modify(&mut openapi);
    crate::lifecycle::FollowedCommands.modify(&mut openapi);
    let document = Arc::new(openapi.clone());
    let router = router
        .merge(crate::web::routes().with_state(state.clone()))
        .route(
            "/ws",
            axum::routing::get(crate::realtime::ws).with_state(state),
        )
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let document = document.clone();
                async move { axum::Json(document.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") });
    (router, openapi)
}

/// The answer to a successful command.
#[derive(Debug, Serialize, ToSchema)]
pub struct CommandResponse {
    /// The store's or item's id.
    pub id: Uuid,
    /// Its event stream.
    #[schema(example = "item-67e55044-10b1-426f-9247-bb680e5fe0c8")]
    pub stream: String,
    /// The stream's version after the command: send it as `If-Match` next time.
    pub version: u64,
    /// Global position of the last event written: pass it as `min_position`
    /// to read your own write, or compare it with live events.
    pub position: u64,
    /// Types of the events written (empty when nothing changed).
    pub events: Vec<String>,
    /// Answered again for a retry with the same `Idempotency-Key` (sent
    /// as the `Idempotent-Replayed: true` header, not in the body).
    #[serde(skip)]
    pub replayed: bool,
}

impl From<Outcome> for CommandResponse {
    fn from(outcome: Outcome) -> Self {
        Self {
            id: outcome.id,
            stream: outcome.stream,
            version: outcome.version,
            position: outcome.position,
            events: outcome.events,
            replayed: outcome.replayed,
        }
    }
}

impl IntoResponse for CommandResponse {
    fn into_response(self) -> axum::response::Response {
        let etag = format!("\"{}\"", self.version);
        let replayed = replayed_header(self.replayed);
        (
            [(axum::http::header::ETAG, etag)],
            replayed,
            axum::Json(self),
        )
            .into_response()
    }
}

/// `Idempotent-Replayed: true` on an answer replayed from an idempotency key.
pub(crate) fn replayed_header(
    replayed: bool,
) -> axum::response::AppendHeaders<Option<(HeaderName, &'static str)>> {
    axum::response::AppendHeaders(
        replayed.then_some((crate::idempotency::IDEMPOTENT_REPLAYED, "true")),
    )
}

/// An id for a resource the client did not name: derived from the
/// `Idempotency-Key`'s fingerprint when there is one, so a retry names the
/// same resource (and is answered as the first request was); random
/// otherwise.
pub(crate) fn made_up_id(request: &crate::extract::RequestId) -> Uuid {
    match &request.1 {
        Some(keyed) => Uuid::new_v5(&Uuid::NAMESPACE_OID, keyed.fingerprint.as_bytes()),
        None => Uuid::new_v4(),
    }
}

/// Waits for the read models when the client asked for `min_position`.
pub(crate) async fn consistent(state: &AppState, min_position: Option<u64>) {
    if let Some(position) = min_position {
        state
            .reads
            .wait_for(position, state.settings.min_position_wait())
            .await;
    }
}
