//! Dashboards: today's figures of one store, or of the whole tenant. The
//! same figures reach `dashboard` WebSocket subscribers as a snapshot and
//! then as coalesced `state` frames (docs/protocol.md).

use axum::extract::State;
use larder_projections::Dashboard;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::consistent;
use super::stores::visible;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Consistency, Json, Path, Query};
use crate::state::AppState;

/// The dashboard routes, merged into the API by `routes::api`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tenant_dashboard))
        .routes(routes!(store_dashboard))
}

/// The tenant's dashboard: every store's figures added up. Only for a
/// token that sees every store of the tenant (403 `forbidden` for a
/// store-scoped one: the sum would include stores it may not see).
#[utoipa::path(get, path = "/api/v1/dashboard", tag = "dashboard", params(Consistency),
    security(("bearer" = [])),
    responses((status = 200, body = Dashboard), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn tenant_dashboard(
    State(state): State<AppState>,
    principal: Principal,
    Query(consistency): Query<Consistency>,
) -> Result<Json<Dashboard>, ApiError> {
    if !principal.sees_all_stores() {
        return Err(ApiError::forbidden(
            "the tenant's dashboard needs a token that sees every store; ask for a store's",
        ));
    }
    consistent(&state, consistency.min_position).await;
    let figures = state
        .dashboards
        .figures(principal.tenant.as_str(), None)
        .await?;
    Ok(Json(figures))
}

/// One store's dashboard.
#[utoipa::path(get, path = "/api/v1/stores/{store_id}/dashboard", tag = "dashboard",
    params(("store_id" = Uuid, Path), Consistency),
    security(("bearer" = [])),
    responses((status = 200, body = Dashboard), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn store_dashboard(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(consistency): Query<Consistency>,
) -> Result<Json<Dashboard>, ApiError> {
    let store_id = visible(&principal, store_id)?.to_string();
    consistent(&state, consistency.min_position).await;
    let tenant = principal.tenant.as_str();
    if state.reads.store(tenant, &store_id).await?.value.is_none() {
        return Err(ApiError::not_found("store"));
    }
    let figures = state.dashboards.figures(tenant, Some(&store_id)).await?;
    Ok(Json(figures))
}
