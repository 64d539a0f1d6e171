//! Item routes.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use larder_app::{Request, Transferred};
use larder_domain::{
    AdjustReason, Delta, ItemCommand, ItemId, ItemName, ItemState, Quantity, Sku, StoreId,
    Threshold, TransferId, TransferStock, Unit,
};
use larder_projections::InventoryItem;
use larder_store::EventData;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::stores::{RenameRequest, context, visible};
use super::{CommandResponse, consistent, replayed_header, schema};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Consistency, IfMatch, Json, Path, Query, RequestId};
use crate::state::AppState;

/// The store of an item the caller may see, or 404.
pub(crate) async fn item_store(
    state: &AppState,
    principal: &Principal,
    item_id: Uuid,
) -> Result<(StoreId, ItemId), ApiError> {
    let item_id = ItemId::new(item_id);
    let store_id = state.app.item_store(&principal.tenant, item_id).await?;
    let store_id =
        visible(principal, store_id.as_uuid()).map_err(|_| ApiError::not_found("item"))?;
    Ok((store_id, item_id))
}

/// Add an item to a store.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItemRequest {
    /// Stock-keeping unit, unique in the store.
    #[schema(schema_with = schema::sku)]
    pub sku: String,
    /// Display name.
    #[schema(schema_with = schema::name)]
    pub name: String,
    /// Unit of the quantities (default `each`).
    #[schema(schema_with = schema::unit)]
    pub unit: Option<String>,
    /// Opening stock, >= 0 (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9223372036854775807i64, default = 0)]
    pub quantity: i64,
    /// Low-stock threshold, >= 0 (default 0).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9223372036854775807i64, default = 0)]
    pub threshold: i64,
}

#[utoipa::path(post, path = "/api/v1/stores/{store_id}/items", tag = "items", request_body = AddItemRequest,
    params(("store_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 201, body = CommandResponse, description = "Added; `id` is the item id"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "sku_already_exists"),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody, description = "e.g. store_closed"), (status = 415, body = ErrorBody)))]
pub async fn add_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(store_id): Path<Uuid>,
    Json(body): Json<AddItemRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(Role::Manager)?;
    let store_id = visible(&principal, store_id)?;
    let sku = Sku::parse(&body.sku)?;
    let item_id = ItemId::for_sku(store_id, &sku);
    let command = ItemCommand::AddItem {
        store_id,
        sku,
        name: ItemName::parse(&body.name)?,
        unit: Unit::parse(body.unit.as_deref().unwrap_or("each"))?,
        quantity: Quantity::parse(body.quantity)?,
        threshold: Threshold::parse(body.threshold)?,
    };
    let outcome = state
        .app
        .execute(
            &context(&principal, request, StatusCode::CREATED),
            Request::<ItemState> {
                id: item_id,
                within: Some(store_id),
                expected: None,
                command,
            },
        )
        .await?;
    let location = format!("/api/v1/items/{item_id}");
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::LOCATION, location)],
        CommandResponse::from(outcome),
    ))
}

/// One item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemResponse {
    /// The read model's position.
    pub position: u64,
    pub item: InventoryItem,
}

#[utoipa::path(get, path = "/api/v1/items/{item_id}", tag = "items", params(("item_id" = Uuid, Path), Consistency),
    security(("bearer" = [])),
    responses((status = 200, body = ItemResponse, headers(("ETag" = String, description = "The item's version"))),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn get_item(
    State(state): State<AppState>,
    principal: Principal,
    Path(item_id): Path<Uuid>,
    Query(consistency): Query<Consistency>,
) -> Result<impl IntoResponse, ApiError> {
    consistent(&state, consistency.min_position).await;
    let result = state
        .reads
        .item(principal.tenant.as_str(), &item_id.to_string())
        .await?;
    let item = result
        .value
        .filter(|item| principal.can_see(&item.store_id))
        .ok_or_else(|| ApiError::not_found("item"))?;
    let etag = format!("\"{}\"", item.version);
    Ok((
        [(axum::http::header::ETAG, etag)],
        Json(ItemResponse {
            position: result.position,
            item,
        }),
    ))
}

/// Paging of an item's history.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// First version to return (default 1).
    #[param(minimum = 0, maximum = 18446744073709551615u64, default = 1)]
    pub from_version: Option<u64>,
    /// Page size, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500, default = 100)]
    pub limit: Option<u32>,
}

/// A stored event, as the history shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    /// Global position.
    pub position: u64,
    /// Event id.
    pub id: Uuid,
    /// Version in the stream.
    pub version: u64,
    /// Event type, e.g. `StockAdjusted`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema version of `data`.
    pub schema_version: u32,
    /// The event's data (see docs/events.md), as stored.
    #[schema(value_type = Object)]
    pub data: EventData,
    /// Who caused it.
    pub actor: Option<String>,
    /// The request that caused it.
    pub correlation_id: Option<Uuid>,
    /// The event that caused it: for an undo or redo, the event it undoes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
    /// When it was recorded: RFC 3339, UTC, microseconds (as in frames).
    #[serde(serialize_with = "larder_projections::micros")]
    pub recorded_at: DateTime<Utc>,
}

/// An item's events, oldest first, from the event store itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    pub stream: String,
    pub events: Vec<EventView>,
    /// Pass as `from_version` for the next page; absent on the last page.
    pub next_from_version: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/items/{item_id}/events", tag = "items",
    params(("item_id" = Uuid, Path), HistoryParams), security(("bearer" = [])),
    responses((status = 200, body = HistoryResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn item_events(
    State(state): State<AppState>,
    principal: Principal,
    Path(item_id): Path<Uuid>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<HistoryResponse>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > 500 {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            "limit must be 1 to 500",
        ));
    }
    let (_, item_id) = item_store(&state, &principal, item_id).await?;
    let stream = item_id.stream_name();
    let events = state
        .store
        .read_stream(&stream, params.from_version.unwrap_or(1).max(1), limit)
        .await?;
    let next_from_version = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.version + 1))
        .flatten();
    let events = events
        .into_iter()
        .map(|e| EventView {
            position: e.position,
            id: e.id,
            version: e.version,
            event_type: e.event_type,
            schema_version: e.schema_version,
            data: e.data,
            actor: e.metadata.actor,
            correlation_id: e.metadata.correlation_id,
            causation_id: e.metadata.causation_id,
            recorded_at: e.recorded_at,
        })
        .collect();
    Ok(Json(HistoryResponse {
        stream,
        events,
        next_from_version,
    }))
}

/// Adjust stock on hand.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustRequest {
    /// The change, non-zero: negative takes stock out.
    #[schema(schema_with = schema::delta)]
    pub delta: i64,
    /// Why.
    #[schema(value_type = schema::AdjustReasonSchema)]
    pub reason: AdjustReason,
    /// A note, at most 500 characters.
    #[schema(schema_with = schema::note)]
    pub note: Option<String>,
    /// The version the client last saw (or send `If-Match`).
    #[schema(maximum = 18446744073709551615u64)]
    pub expected_version: Option<u64>,
}

#[utoipa::path(post, path = "/api/v1/items/{item_id}/adjust", tag = "items", request_body = AdjustRequest,
    params(("item_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected item version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "version_conflict, with details.current_version"),
        (status = 422, body = ErrorBody, description = "insufficient_stock, item_removed, store_closed"), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn adjust_stock(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(item_id): Path<Uuid>,
    Json(body): Json<AdjustRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Staff)?;
    let expected = if_match.or_body(body.expected_version)?;
    let command = ItemCommand::AdjustStock {
        delta: Delta::parse(body.delta)?,
        reason: body.reason,
        note: body.note,
    };
    item_command(&state, &principal, request, item_id, expected, command).await
}

/// Set the low-stock threshold.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRequest {
    /// At or below it (and above zero), the item is low on stock; >= 0.
    #[schema(minimum = 0, maximum = 9223372036854775807i64)]
    pub threshold: i64,
    /// The version the client last saw (or send `If-Match`).
    #[schema(maximum = 18446744073709551615u64)]
    pub expected_version: Option<u64>,
}

#[utoipa::path(post, path = "/api/v1/items/{item_id}/threshold", tag = "items", request_body = ThresholdRequest,
    params(("item_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected item version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn set_threshold(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(item_id): Path<Uuid>,
    Json(body): Json<ThresholdRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    let expected = if_match.or_body(body.expected_version)?;
    let command = ItemCommand::SetThreshold {
        threshold: Threshold::parse(body.threshold)?,
    };
    item_command(&state, &principal, request, item_id, expected, command).await
}

#[utoipa::path(post, path = "/api/v1/items/{item_id}/rename", tag = "items", request_body = RenameRequest,
    params(("item_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected item version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn rename_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(item_id): Path<Uuid>,
    Json(body): Json<RenameRequest>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    let expected = if_match.or_body(body.expected_version)?;
    let command = ItemCommand::RenameItem {
        name: ItemName::parse(&body.name)?,
    };
    item_command(&state, &principal, request, item_id, expected, command).await
}

#[utoipa::path(post, path = "/api/v1/items/{item_id}/remove", tag = "items",
    params(("item_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected item version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody), (status = 400, body = ErrorBody)))]
pub async fn remove_item(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(item_id): Path<Uuid>,
) -> Result<CommandResponse, ApiError> {
    principal.require(Role::Manager)?;
    item_command(
        &state,
        &principal,
        request,
        item_id,
        if_match.0,
        ItemCommand::RemoveItem,
    )
    .await
}

async fn item_command(
    state: &AppState,
    principal: &Principal,
    request: RequestId,
    item_id: Uuid,
    expected: Option<u64>,
    command: ItemCommand,
) -> Result<CommandResponse, ApiError> {
    let (store_id, item_id) = item_store(state, principal, item_id).await?;
    let outcome = state
        .app
        .execute(
            &context(principal, request, StatusCode::OK),
            Request::<ItemState> {
                id: item_id,
                within: Some(store_id),
                expected,
                command,
            },
        )
        .await?;
    Ok(outcome.into())
}

/// Move stock from one item to another (same tenant, any stores).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferRequest {
    /// The item stock leaves.
    pub from_item: Uuid,
    /// The item stock arrives at.
    pub to_item: Uuid,
    /// How much, > 0.
    #[schema(minimum = 1, maximum = 9223372036854775807i64)]
    pub quantity: i64,
    /// A note, at most 500 characters.
    #[schema(schema_with = schema::note)]
    pub note: Option<String>,
    /// The transfer's id. A transfer happens once per id: the same request
    /// again answers the original result and moves nothing; the same id with
    /// other items or another quantity is 409 `transfer_id_reused`. Without
    /// it, the server makes one up (and a retry is a new transfer).
    pub transfer_id: Option<Uuid>,
}

/// Both sides of a transfer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransferResponse {
    pub transfer_id: Uuid,
    pub from: CommandResponse,
    pub to: CommandResponse,
    /// Global position of the last event written.
    pub position: u64,
}

#[utoipa::path(post, path = "/api/v1/transfers", tag = "items", request_body = TransferRequest,
    security(("bearer" = [])),
    responses((status = 201, body = TransferResponse), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "insufficient_stock, transfer_to_same_item, ..."), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn transfer(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Json(body): Json<TransferRequest>,
) -> Result<impl IntoResponse, ApiError> {
    principal.require(Role::Manager)?;
    let (_, from) = item_store(&state, &principal, body.from_item).await?;
    let (_, to) = item_store(&state, &principal, body.to_item).await?;
    // Without a transfer id, a retry with the same idempotency key (and
    // request) gets the same one, so it answers the same transfer.
    let transfer_id = TransferId::new(body.transfer_id.unwrap_or_else(|| match &request.1 {
        Some(keyed) => Uuid::new_v5(&Uuid::NAMESPACE_OID, keyed.fingerprint.as_bytes()),
        None => Uuid::new_v4(),
    }));
    let command = TransferStock {
        transfer_id,
        quantity: Quantity::parse(body.quantity)?,
        note: body.note,
    };
    let Transferred {
        from: out,
        to: into,
    } = state
        .app
        .transfer(
            &context(&principal, request, StatusCode::CREATED),
            from,
            to,
            command,
        )
        .await?;
    let position = out.position.max(into.position);
    let replayed = out.replayed;
    Ok((
        StatusCode::CREATED,
        replayed_header(replayed),
        Json(TransferResponse {
            transfer_id: transfer_id.as_uuid(),
            from: out.into(),
            to: into.into(),
            position,
        }),
    ))
}
