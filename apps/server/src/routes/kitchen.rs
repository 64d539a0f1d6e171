//! Kitchen and order-board queries: a station's tickets, preparation times,
//! menu availability (86'd items), the order board. Read models only; the
//! commands on menus and orders have their own routes.

use axum::extract::State;
use larder_domain::StationKey;
use larder_projections::{BoardOrder, KitchenTicket, KitchenTimes, MenuAvailability};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::consistent;
use super::stores::visible;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Json, Path, Query};
use crate::state::AppState;

/// The kitchen routes, merged into the API by `routes::api`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tickets))
        .routes(routes!(times))
        .routes(routes!(availability))
        .routes(routes!(board))
}

/// Read-your-writes on a kitchen query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KitchenParams {
    /// See `min_position` on every query.
    #[param(maximum = 18446744073709551615u64)]
    pub min_position: Option<u64>,
}

/// A station's tickets.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketsResponse {
    /// The read model's position.
    pub position: u64,
    /// The station.
    pub station: String,
    /// Its lines fired and not ready: rush orders first, then in fire order.
    pub tickets: Vec<KitchenTicket>,
}

/// A store's preparation times.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimesResponse {
    /// The read model's position.
    pub position: u64,
    /// Per station and per recent line.
    #[serde(flatten)]
    pub times: KitchenTimes,
}

/// A store's menu with what can be made now.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilityResponse {
    /// The lower of the menu's and the inventory's read-model positions.
    pub position: u64,
    /// Every menu item, by name.
    pub items: Vec<MenuAvailability>,
}

/// A store's open orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct BoardResponse {
    /// The read model's position.
    pub position: u64,
    /// Orders not completed or cancelled: rush first, then oldest first.
    pub orders: Vec<BoardOrder>,
}

/// The store, if the caller may see it and it exists.
async fn store_of(
    state: &AppState,
    principal: &Principal,
    store_id: Uuid,
    min_position: Option<u64>,
) -> Result<String, ApiError> {
    let store_id = visible(principal, store_id)?.to_string();
    consistent(state, min_position).await;
    if state
        .reads
        .store(principal.tenant.as_str(), &store_id)
        .await?
        .value
        .is_none()
    {
        return Err(ApiError::not_found("store"));
    }
    Ok(store_id)
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/kitchen/{station}/tickets", tag = "kitchen",
    params(("store_id" = Uuid, Path), ("station" = String, Path, pattern = r"^[A-Za-z0-9_-]{1,32}$", description = "A station key, e.g. `grill`"),
        KitchenParams),
    security(("bearer" = [])),
    responses((status = 200, body = TicketsResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn tickets(
    State(state): State<AppState>,
    principal: Principal,
    Path((store_id, station)): Path<(Uuid, String)>,
    Query(params): Query<KitchenParams>,
) -> Result<Json<TicketsResponse>, ApiError> {
    let station = StationKey::parse(&station)
        .map_err(|error| ApiError::bad_request("invalid_station", error.to_string()))?;
    let store_id = store_of(&state, &principal, store_id, params.min_position).await?;
    let result = state
        .reads
        .kitchen_tickets(principal.tenant.as_str(), &store_id, station.as_str())
        .await?;
    Ok(Json(TicketsResponse {
        position: result.position,
        station: station.as_str().to_owned(),
        tickets: result.value,
    }))
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/kitchen/times", tag = "kitchen",
    params(("store_id" = Uuid, Path), KitchenParams), security(("bearer" = [])),
    responses((status = 200, body = TimesResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn times(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(params): Query<KitchenParams>,
) -> Result<Json<TimesResponse>, ApiError> {
    let store_id = store_of(&state, &principal, store_id, params.min_position).await?;
    let result = state
        .reads
        .kitchen_times(principal.tenant.as_str(), &store_id)
        .await?;
    Ok(Json(TimesResponse {
        position: result.position,
        times: result.value,
    }))
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/menu/availability", tag = "kitchen",
    params(("store_id" = Uuid, Path), KitchenParams), security(("bearer" = [])),
    responses((status = 200, body = AvailabilityResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn availability(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(params): Query<KitchenParams>,
) -> Result<Json<AvailabilityResponse>, ApiError> {
    let store_id = store_of(&state, &principal, store_id, params.min_position).await?;
    let result = state
        .reads
        .menu_availability(principal.tenant.as_str(), &store_id)
        .await?;
    Ok(Json(AvailabilityResponse {
        position: result.position,
        items: result.value,
    }))
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/orders/board", tag = "kitchen",
    params(("store_id" = Uuid, Path), KitchenParams), security(("bearer" = [])),
    responses((status = 200, body = BoardResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn board(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(params): Query<KitchenParams>,
) -> Result<Json<BoardResponse>, ApiError> {
    let store_id = store_of(&state, &principal, store_id, params.min_position).await?;
    let result = state
        .reads
        .order_board(principal.tenant.as_str(), &store_id)
        .await?;
    Ok(Json(BoardResponse {
        position: result.position,
        orders: result.value,
    }))
}
