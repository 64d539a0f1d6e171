//! The web app and the JavaScript client, embedded in the binary so the one
//! run command serves them (no build step, no files to deploy).

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

use crate::state::AppState;

/// (path, content type, body) of every asset.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/index.html",
        "text/html; charset=utf-8",
        include_str!("../web/index.html"),
    ),
    (
        "/app.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app.js"),
    ),
    (
        "/app-dom.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-dom.js"),
    ),
    (
        "/app-state.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-state.js"),
    ),
    (
        "/app-connection.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-connection.js"),
    ),
    (
        "/app-stores.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-stores.js"),
    ),
    (
        "/app-store.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-store.js"),
    ),
    (
        "/app-activity.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-activity.js"),
    ),
    (
        "/app-queue.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-queue.js"),
    ),
    (
        "/app-bell.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-bell.js"),
    ),
    (
        "/app-detail.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-detail.js"),
    ),
    (
        "/app-orders-api.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-orders-api.js"),
    ),
    (
        "/app-orders-model.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-orders-model.js"),
    ),
    (
        "/app-till.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-till.js"),
    ),
    (
        "/app-kitchen.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-kitchen.js"),
    ),
    (
        "/app-board.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-board.js"),
    ),
    (
        "/app-dashboard.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-dashboard.js"),
    ),
    (
        "/app-dashboard-model.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/app-dashboard-model.js"),
    ),
    (
        "/larder-client.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/larder-client.js"),
    ),
    (
        "/larder-commands.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/larder-commands.js"),
    ),
    (
        "/larder-protocol.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/larder-protocol.js"),
    ),
    (
        "/larder-websocket.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/larder-websocket.js"),
    ),
    (
        "/larder-sse.js",
        "text/javascript; charset=utf-8",
        include_str!("../web/larder-sse.js"),
    ),
    (
        "/larder-client.d.ts",
        "application/typescript; charset=utf-8",
        include_str!("../web/larder-client.d.ts"),
    ),
    (
        "/styles.css",
        "text/css; charset=utf-8",
        include_str!("../web/styles.css"),
    ),
];

/// Routes serving the embedded assets.
pub fn routes() -> Router<AppState> {
    ASSETS
        .iter()
        .fold(Router::new(), |router, (path, content_type, body)| {
            router.route(
                path,
                get(move || async move {
                    (
                        [
                            (header::CONTENT_TYPE, *content_type),
                            (header::CACHE_CONTROL, "no-cache"),
                        ],
                        *body,
                    )
                        .into_response()
                }),
            )
        })
}
