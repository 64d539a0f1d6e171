//! Store routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use larder_app::{Context, Request};
use larder_domain::{StoreCommand, StoreId, StoreName, StoreState};
use larder_projections::{
    ActivityEntry, InventoryItem, InventoryQuery, MAX_PAGE, StatusFilter, StoreSummary,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::{CommandResponse, consistent};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Consistency, IfMatch, Json, Path, Query, RequestId};
use crate::state::AppState;

/// Who issues a command, for the pipeline; `status` is what a success
/// answers (stored with an idempotency key).
pub(crate) fn context(principal: &Principal, request: RequestId, status: StatusCode) -> Context {
    Context {
        tenant: principal.tenant.clone(),
        actor: principal.user.clone(),
        session: principal.session.clone(),
        correlation_id: request.0,
        idempotency: request.1.map(|keyed| keyed.with_status(status)),
        lifecycle: request.2,
        causation_id: None,
    }
}

/// A store the caller may see, or 404.
pub(crate) fn visible(principal: &Principal, store_id: Uuid) -> Result<StoreId, ApiError> {
    if principal.can_see(&store_id.to_string()) {
        Ok(StoreId::new(store_id))
    } else {
        Err(ApiError::not_found("store"))
    }
}

/// Stores visible to the caller.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoresResponse {
    /// The read model's position.
    pub position: u64,
    pub stores: Vec<StoreSummary>,
}

#[utoipa::path(get, path = "/api/v1/stores", tag = "stores", params(Consistency),
    security(("bearer" = [])),
    responses(
        (status = 200, body = StoresResponse),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
    ))]
pub async fn list_stores(
    State(state): State<AppState>,
    principal: Principal,
    Query(consistency): Query<Consistency>,
) -> Result<Json<StoresResponse>, ApiError> {
    consistent(&state, consistency.min_position).await;
    let result = state.reads.stores(principal.tenant.as_str()).await?;
    let stores = result
        .value
        .into_iter()
        .filter(|s| principal.can_see(&s.store_id))
        .collect();
    Ok(Json(StoresResponse {
        position: result.position,
        stores,
    }))
}

/// Create a store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStoreRequest {
    /// Its name.
    #[schema(schema_with = super::schema::name)]
    pub name: String,
    /// A key of the client's choosing that makes a retry recognisable: the
    /// store's id is derived from the tenant and this key (UUIDv5), so a
    /// second create with the same key answers 409 `store_already_exists`
    /// (with the store's id in `details.store_id`). Without it, the store
    /// gets a random id. The id is not the key: keys of different tenants
    /// never meet.
    pub store_id: Option<Uuid>,
}

#[utoipa::path(post, path = "/api/v1/stores", tag = "stores", request_body = CreateStoreRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, body = CommandResponse, description = "Created"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "store_already_exists, with details.store_id"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
    ))]
pub async fn create_store(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Json(body): Json<CreateStoreRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(Role::Admin)?;
    if !principal.sees_all_stores() {
        return Err(ApiError::forbidden(
            "creating a store needs a token for all stores (\"*\")",
        ));
    }
    let store_id = match body.store_id {
        Some(key) => StoreId::for_key(&principal.tenant, key),
        None => StoreId::new(Uuid::new_v4()),
    };
    let command = StoreCommand::CreateStore {
        store_id,
        tenant: principal.tenant.clone(),
        name: StoreName::parse(&body.name)?,
    };
    let outcome = state
        .app
        .execute(
            &context(&principal, request, StatusCode::CREATED),
            Request::<StoreState> {
                id: store_id,
                within: None,
                expected: None,
                command,
            },
        )
        .await?;
    let location = format!("/api/v1/stores/{store_id}");
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        CommandResponse::from(outcome),
    ))
}

/// One store.
#[derive(Debug, Serialize, ToSchema)]
pub struct StoreResponse {
    /// The read model's position.
    pub position: u64,
    pub store: StoreSummary,
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}", tag = "stores", params(("store_id" = Uuid, Path), Consistency),
    security(("bearer" = [])),
    responses((status = 200, body = StoreResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_store(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(consistency): Query<Consistency>,
) -> Result<Json<StoreResponse>, ApiError> {
    let store_id = visible(&principal, store_id)?;
    consistent(&state, consistency.min_position).await;
    let result = state
        .reads
        .store(principal.tenant.as_str(), &store_id.to_string())
        .await?;
    let store = result.value.ok_or_else(|| ApiError::not_found("store"))?;
    Ok(Json(StoreResponse {
        position: result.position,
        store,
    }))
}

/// Rename something.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RenameRequest {
    /// The new name.
    #[schema(schema_with = super::schema::name)]
    pub name: String,
    /// The version the client last saw (or send `If-Match`).
    #[schema(maximum = 18446744073709551615u64)]
    pub expected_version: Option<u64>,
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/rename", tag = "stores", request_body = RenameRequest,
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected store version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn rename_store(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(store_id): Path<Uuid>,
    Json(body): Json<RenameRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    let store_id = visible(&principal, store_id)?;
    let expected = if_match.or_body(body.expected_version)?;
    let command = StoreCommand::RenameStore {
        name: StoreName::parse(&body.name)?,
    };
    let outcome = state
        .app
        .execute(
            &context(&principal, request, StatusCode::OK),
            Request::<StoreState> {
                id: store_id,
                within: None,
                expected,
                command,
            },
        )
        .await?;
    Ok(outcome.into())
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/close", tag = "stores",
    params(("store_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected store version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn close_store(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(store_id): Path<Uuid>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Admin)?;
    let store_id = visible(&principal, store_id)?;
    let outcome = state
        .app
        .execute(
            &context(&principal, request, StatusCode::OK),
            Request::<StoreState> {
                id: store_id,
                within: None,
                expected: if_match.0,
                command: StoreCommand::CloseStore,
            },
        )
        .await?;
    Ok(outcome.into())
}

/// Paging and filtering of a store's inventory.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InventoryParams {
    /// `active` (default: all but removed), `in_stock`, `low`, `out`, `removed`, `all`.
    #[param(value_type = Option<super::schema::StatusFilterSchema>)]
    pub status: Option<StatusFilter>,
    /// Continue after this SKU (`next_after` of the previous page).
    #[param(min_length = 1)]
    pub after: Option<String>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500, default = 100)]
    pub limit: Option<u32>,
    /// See `min_position` on every query.
    #[param(maximum = 18446744073709551615u64)]
    pub min_position: Option<u64>,
}

/// A page of a store's inventory, by SKU.
#[derive(Debug, Serialize, ToSchema)]
pub struct InventoryResponse {
    /// The read model's position.
    pub position: u64,
    pub items: Vec<InventoryItem>,
    /// Pass as `after` for the next page; absent on the last page.
    pub next_after: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/items", tag = "items",
    params(("store_id" = Uuid, Path), InventoryParams), security(("bearer" = [])),
    responses((status = 200, body = InventoryResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_items(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(params): Query<InventoryParams>,
) -> Result<Json<InventoryResponse>, ApiError> {
    let store_id = visible(&principal, store_id)?.to_string();
    if params.after.as_deref() == Some("") {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "after must be a SKU (next_after of the previous page)",
        ));
    }
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    consistent(&state, params.min_position).await;
    let tenant = principal.tenant.as_str();
    let store = state.reads.store(tenant, &store_id).await?;
    if store.value.is_none() {
        return Err(ApiError::not_found("store"));
    }
    let query = InventoryQuery {
        status: params.status.unwrap_or_default(),
        after_sku: params.after,
        limit,
    };
    let result = state.reads.inventory(tenant, &store_id, &query).await?;
    let next_after = (result.value.len() == limit as usize)
        .then(|| result.value.last().map(|i| i.sku.clone()))
        .flatten();
    Ok(Json(InventoryResponse {
        position: result.position,
        items: result.value,
        next_after,
    }))
}

/// Paging of a store's activity feed.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ActivityParams {
    /// Only entries before this position (`next_before` of the previous page).
    #[param(maximum = 18446744073709551615u64)]
    pub before: Option<u64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<u32>,
    /// See `min_position` on every query.
    #[param(maximum = 18446744073709551615u64)]
    pub min_position: Option<u64>,
}

/// A store's recent activity, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActivityResponse {
    /// The read model's position.
    pub position: u64,
    pub activity: Vec<ActivityEntry>,
    /// Pass as `before` for older entries; absent on the last page.
    pub next_before: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/stores/{store_id}/activity", tag = "stores",
    params(("store_id" = Uuid, Path), ActivityParams), security(("bearer" = [])),
    responses((status = 200, body = ActivityResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn activity(
    State(state): State<AppState>,
    principal: Principal,
    Path(store_id): Path<Uuid>,
    Query(params): Query<ActivityParams>,
) -> Result<Json<ActivityResponse>, ApiError> {
    let store_id = visible(&principal, store_id)?.to_string();
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    consistent(&state, params.min_position).await;
    let tenant = principal.tenant.as_str();
    if state.reads.store(tenant, &store_id).await?.value.is_none() {
        return Err(ApiError::not_found("store"));
    }
    let result = state
        .reads
        .activity(tenant, &store_id, params.before, limit)
        .await?;
    let next_before = (result.value.len() == limit as usize)
        .then(|| result.value.last().map(|a| a.position))
        .flatten();
    Ok(Json(ActivityResponse {
        position: result.position,
        activity: result.value,
        next_before,
    }))
}
