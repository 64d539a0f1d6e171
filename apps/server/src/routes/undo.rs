//! Undo and redo of an item's changes: compensating events, decided and
//! appended by the command pipeline like any other command.

use axum::extract::State;
use axum::http::StatusCode;
use larder_app::Request;
use larder_domain::{EventId, ItemHistory, UndoAction, UndoChange, UndoScope};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::CommandResponse;
use super::items::item_store;
use super::stores::context;
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IfMatch, Json, Path, RequestId};
use crate::state::AppState;

/// Undo or redo one change of the item.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UndoRequest {
    /// The change: the `id` of an event of the item's stream (see
    /// `GET /api/v1/items/{item_id}/events` and live frames). For a redo,
    /// the change that was undone.
    pub event_id: Uuid,
    /// The version the client last saw (or send `If-Match`).
    #[schema(maximum = 18446744073709551615u64)]
    pub expected_version: Option<u64>,
}

#[utoipa::path(post, path = "/api/v1/items/{item_id}/undo", tag = "items", request_body = UndoRequest,
    params(("item_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected item version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse, description = "Undone: the compensating event (and any alert it owes) was appended"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (viewers), undo_not_allowed (staff: only their own stock adjustments)"),
        (status = 404, body = ErrorBody, description = "not_found (item), change_not_found (no such event in the item's stream)"),
        (status = 409, body = ErrorBody, description = "already_undone (details.undone_by), undo_conflict (details.later), version_conflict"),
        (status = 422, body = ErrorBody, description = "not_undoable, insufficient_stock, item_removed, store_closed"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn undo_change(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(item_id): Path<Uuid>,
    Json(body): Json<UndoRequest>,
) -> Result<CommandResponse, ApiError> {
    undo_command(
        &state,
        &principal,
        request,
        if_match,
        item_id,
        body,
        UndoAction::Undo,
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/items/{item_id}/redo", tag = "items", request_body = UndoRequest,
    params(("item_id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, pattern = r#"^[ \t]*(W/)?"*\+?[0-9]{1,19}"*[ \t]*$"#,
        description = "Expected item version, e.g. `\"3\"`")),
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse, description = "Redone: the undo of `event_id` was itself undone"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody, description = "forbidden (viewers), undo_not_allowed (staff: only undos they made)"),
        (status = 404, body = ErrorBody, description = "not_found (item), change_not_found"),
        (status = 409, body = ErrorBody, description = "not_undone, already_undone (already redone), undo_conflict, version_conflict"),
        (status = 422, body = ErrorBody, description = "not_undoable, insufficient_stock, item_removed, store_closed"),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn redo_change(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    if_match: IfMatch,
    Path(item_id): Path<Uuid>,
    Json(body): Json<UndoRequest>,
) -> Result<CommandResponse, ApiError> {
    undo_command(
        &state,
        &principal,
        request,
        if_match,
        item_id,
        body,
        UndoAction::Redo,
    )
    .await
}

/// Whoever may make a change may undo it: staff adjust stock, so they undo
/// their own adjustments; managers and admins make every item change, so
/// they undo anyone's.
fn scope(principal: &Principal) -> Result<UndoScope, ApiError> {
    principal.require(Role::Staff)?;
    Ok(if principal.role >= Role::Manager {
        UndoScope::AnyChange
    } else {
        UndoScope::OwnStockAdjustments
    })
}

async fn undo_command(
    state: &AppState,
    principal: &Principal,
    request: RequestId,
    if_match: IfMatch,
    item_id: Uuid,
    body: UndoRequest,
    action: UndoAction,
) -> Result<CommandResponse, ApiError> {
    let scope = scope(principal)?;
    let expected = if_match.or_body(body.expected_version)?;
    let (store_id, item_id) = item_store(state, principal, item_id).await?;
    let outcome = state
        .app
        .execute(
            &context(principal, request, StatusCode::OK),
            Request::<ItemHistory> {
                id: item_id,
                within: Some(store_id),
                expected,
                command: UndoChange {
                    action,
                    event_id: EventId::new(body.event_id),
                    actor: principal.user.clone(),
                    scope,
                },
            },
        )
        .await?;
    Ok(outcome.into())
}
