//! Liveness and readiness.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;

use crate::extract::Json;
use crate::state::AppState;

/// Liveness.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the database answers and the read models keep up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// Whether the database answered.
    pub database: bool,
    /// The log's head position (when the database answered).
    pub head: Option<u64>,
    /// Each read model's position.
    pub projections: BTreeMap<String, u64>,
    /// The largest lag behind the head, in events.
    pub lag: Option<u64>,
}

#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let database = state.db.ping().await.is_ok();
    let head = if database {
        state.store.head().await.ok()
    } else {
        None
    };
    let lag = head.map(|head| head.saturating_sub(state.reads.position()));
    let ready = database && lag.is_some_and(|lag| lag <= state.settings.ready_max_lag);
    let body = Readiness {
        status: if ready { "ready" } else { "not_ready" },
        database,
        head,
        projections: state
            .reads
            .positions()
            .into_iter()
            .map(|(n, p)| (n.to_owned(), p))
            .collect(),
        lag,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics: connections, subscriptions, frames, drops, resume
/// outcomes, delivery latency, append latency.
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
