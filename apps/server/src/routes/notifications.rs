//! A user's notifications: the paged history, the unread count, marking
//! read, preferences, and an administrator's broadcasts. Every route acts on
//! the caller's own inbox (the token's tenant and `sub`); nobody reads or
//! changes another user's.

use axum::extract::State;
use axum::http::StatusCode;
use larder_app::Request;
use larder_app::notify::{Broadcast, BroadcastAudience, broadcast};
use larder_domain::{
    Body, InboxCommand, InboxId, InboxState, NotificationId, NotificationKind, Preference,
    Priority, Title, UserId,
};
use larder_projections::{MAX_PAGE, NotificationEntry};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::stores::{context, visible};
use super::{CommandResponse, consistent, made_up_id};
use crate::auth::{Principal, Role};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{Consistency, Json, Path, Query, RequestId};
use crate::state::AppState;

/// The notification routes, merged into the API by `routes::api`.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(unread_count))
        .routes(routes!(mark_read))
        .routes(routes!(mark_all_read))
        .routes(routes!(get_preferences, set_preference))
        .routes(routes!(send_broadcast))
}

/// The caller as the inbox's user.
fn user_of(principal: &Principal) -> Result<(UserId, InboxId), ApiError> {
    let user = UserId::parse(&principal.user).map_err(|_| {
        ApiError::bad_request(
            "invalid_user",
            "the token's subject cannot have an inbox (whitespace, or over 200 bytes)",
        )
    })?;
    let inbox = InboxId::of_user(&principal.tenant, &user);
    Ok((user, inbox))
}

/// Paging through one's notifications.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only notifications raised before this position (`next_before` of the
    /// previous page).
    #[param(maximum = 18446744073709551615u64)]
    pub before: Option<u64>,
    /// Page size, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<u32>,
    /// Only unread ones.
    pub unread: Option<bool>,
    /// See `min_position` on every query.
    #[param(maximum = 18446744073709551615u64)]
    pub min_position: Option<u64>,
}

/// One's notifications, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct NotificationsResponse {
    /// The read model's position.
    pub position: u64,
    /// How many are unread (all of them, not only this page's).
    pub unread: u64,
    /// This page.
    pub notifications: Vec<NotificationEntry>,
    /// Pass as `before` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<u64>,
}

#[utoipa::path(get, path = "/api/v1/notifications", tag = "notifications",
    params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = NotificationsResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<ListParams>,
) -> Result<Json<NotificationsResponse>, ApiError> {
    let (user, _) = user_of(&principal)?;
    let limit = params.limit.unwrap_or(50);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(
            "invalid_parameter",
            format!("limit must be 1 to {MAX_PAGE}"),
        ));
    }
    consistent(&state, params.min_position).await;
    let tenant = principal.tenant.as_str();
    let page = state
        .reads
        .notifications(
            tenant,
            user.as_str(),
            params.before,
            params.unread.unwrap_or(false),
            limit,
        )
        .await?;
    let unread = state
        .reads
        .unread_notifications(tenant, user.as_str())
        .await?;
    let next_before = (page.value.len() == limit as usize)
        .then(|| page.value.last().map(|n| n.position))
        .flatten();
    Ok(Json(NotificationsResponse {
        position: page.position,
        unread: unread.value,
        notifications: page.value,
        next_before,
    }))
}

/// How many of one's notifications are unread.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnreadResponse {
    /// The read model's position.
    pub position: u64,
    /// Unread notifications.
    pub unread: u64,
}

#[utoipa::path(get, path = "/api/v1/notifications/unread-count", tag = "notifications",
    params(Consistency), security(("bearer" = [])),
    responses((status = 200, body = UnreadResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn unread_count(
    State(state): State<AppState>,
    principal: Principal,
    Query(params): Query<Consistency>,
) -> Result<Json<UnreadResponse>, ApiError> {
    let (user, _) = user_of(&principal)?;
    consistent(&state, params.min_position).await;
    let result = state
        .reads
        .unread_notifications(principal.tenant.as_str(), user.as_str())
        .await?;
    Ok(Json(UnreadResponse {
        position: result.position,
        unread: result.value,
    }))
}

async fn execute(
    state: &AppState,
    principal: &Principal,
    request: RequestId,
    inbox: InboxId,
    command: InboxCommand,
) -> Result<CommandResponse, ApiError> {
    let outcome = state
        .app
        .execute(
            &context(principal, request, StatusCode::OK),
            Request::<InboxState> {
                id: inbox,
                within: None,
                expected: None,
                command,
            },
        )
        .await?;
    Ok(outcome.into())
}

#[utoipa::path(post, path = "/api/v1/notifications/{notification_id}/read", tag = "notifications",
    params(("notification_id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mark_read(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Path(notification_id): Path<Uuid>,
) -> Result<CommandResponse, ApiError> {
    let (user, inbox) = user_of(&principal)?;
    let command = InboxCommand::MarkRead {
        user,
        notification_id: NotificationId::new(notification_id),
    };
    execute(&state, &principal, request, inbox, command).await
}

#[utoipa::path(post, path = "/api/v1/notifications/read-all", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn mark_all_read(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
) -> Result<CommandResponse, ApiError> {
    let (user, inbox) = user_of(&principal)?;
    execute(
        &state,
        &principal,
        request,
        inbox,
        InboxCommand::MarkAllRead { user },
    )
    .await
}

/// A notification's kind, as the API names it (the schema of `kind`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "the OpenAPI document's names; the domain parses them"
)]
enum KindName {
    LowStock,
    OutOfStock,
    OrderReady,
    OrderWaiting,
    TransferCompleted,
    Broadcast,
}

/// A notification's priority, as the API names it (the schema of
/// `priority` and `min_priority`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[expect(
    dead_code,
    reason = "the OpenAPI document's names; the domain's Priority is read"
)]
enum PriorityName {
    Low,
    Normal,
    High,
    Urgent,
}

/// One kind's preference.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PreferenceBody {
    /// `low_stock`, `out_of_stock`, `order_ready`, `order_waiting`,
    /// `transfer_completed` or `broadcast`.
    #[schema(value_type = KindName, example = "low_stock")]
    pub kind: String,
    /// Off: nothing of this kind is raised (nor stored).
    pub enabled: bool,
    /// Notifications below this priority are not raised: `low`, `normal`,
    /// `high` or `urgent`.
    #[schema(value_type = PriorityName, example = "low")]
    pub min_priority: Priority,
}

/// One's preferences, one per kind (the default: on, from `low`).
#[derive(Debug, Serialize, ToSchema)]
pub struct PreferencesResponse {
    /// The inbox stream's version.
    pub version: u64,
    /// Global position of the inbox's last event.
    pub position: u64,
    /// Every kind, in a fixed order.
    pub preferences: Vec<PreferenceBody>,
}

#[utoipa::path(get, path = "/api/v1/notifications/preferences", tag = "notifications",
    security(("bearer" = [])),
    responses((status = 200, body = PreferencesResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody)))]
pub async fn get_preferences(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<PreferencesResponse>, ApiError> {
    let (user, _) = user_of(&principal)?;
    let inbox = state.app.inbox(&principal.tenant, &user).await?;
    let preferences = NotificationKind::ALL
        .into_iter()
        .map(|kind| {
            let preference = inbox.value.preference(kind);
            PreferenceBody {
                kind: kind.as_str().to_owned(),
                enabled: preference.enabled,
                min_priority: preference.min_priority,
            }
        })
        .collect();
    Ok(Json(PreferencesResponse {
        version: inbox.version,
        position: inbox.position,
        preferences,
    }))
}

#[utoipa::path(put, path = "/api/v1/notifications/preferences", tag = "notifications",
    request_body = PreferenceBody, security(("bearer" = [])),
    responses((status = 200, body = CommandResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_preference(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Json(body): Json<PreferenceBody>,
) -> Result<CommandResponse, ApiError> {
    let (user, inbox) = user_of(&principal)?;
    let command = InboxCommand::SetPreference {
        user,
        kind: NotificationKind::parse(&body.kind)?,
        preference: Preference {
            enabled: body.enabled,
            min_priority: body.min_priority,
        },
    };
    execute(&state, &principal, request, inbox, command).await
}

/// Who a broadcast is for: exactly one of `tenant: true`, `store` or `role`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "manager"}))]
pub struct BroadcastAudienceBody {
    /// Every user of the tenant.
    pub tenant: Option<bool>,
    /// Every user who may see this store.
    pub store: Option<Uuid>,
    /// Every user whose highest role is this one.
    pub role: Option<Role>,
}

/// An administrator's message.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BroadcastRequest {
    /// Who it is for.
    pub audience: BroadcastAudienceBody,
    /// `low`, `normal` (default), `high` or `urgent`.
    #[schema(value_type = Option<PriorityName>, example = "normal")]
    pub priority: Option<Priority>,
    /// 1 to 120 characters.
    #[schema(schema_with = super::schema::notification_title)]
    pub title: String,
    /// At most 1,000 characters.
    #[schema(schema_with = super::schema::notification_body)]
    pub body: Option<String>,
}

/// What a broadcast did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BroadcastResponse {
    /// The broadcast's id (derived from the `Idempotency-Key` when one is
    /// sent, so a retry raises nothing twice).
    pub broadcast_id: Uuid,
    /// Users of the directory it addressed.
    pub recipients: usize,
    /// Notifications raised (a user's preferences may turn it away).
    pub raised: usize,
}

#[utoipa::path(post, path = "/api/v1/notifications/broadcast", tag = "notifications",
    request_body = BroadcastRequest, security(("bearer" = [])),
    responses((status = 200, body = BroadcastResponse), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send_broadcast(
    State(state): State<AppState>,
    principal: Principal,
    request: RequestId,
    Json(body): Json<BroadcastRequest>,
) -> Result<Json<BroadcastResponse>, ApiError> {
    principal.require(Role::Admin)?;
    let audience = match (
        body.audience.tenant.unwrap_or(false),
        body.audience.store,
        body.audience.role,
    ) {
        (true, None, None) => BroadcastAudience::Tenant,
        (false, Some(store), None) => {
            let store = visible(&principal, store)?;
            let known = state
                .reads
                .store(principal.tenant.as_str(), &store.to_string())
                .await?;
            if known.value.is_none() {
                return Err(ApiError::not_found("store"));
            }
            BroadcastAudience::Store(store)
        }
        (false, None, Some(role)) => BroadcastAudience::Role(role as i64),
        _ => {
            return Err(ApiError::bad_request(
                "invalid_audience",
                "name exactly one audience: tenant: true, store or role",
            ));
        }
    };
    let message = Broadcast {
        id: made_up_id(&request),
        audience,
        priority: body.priority.unwrap_or(Priority::Normal),
        title: Title::parse(&body.title)?,
        body: Body::parse(body.body.as_deref().unwrap_or(""))?,
    };
    let done = broadcast(
        &state.app,
        &state.db,
        &principal.tenant,
        request.0,
        &message,
    )
    .await?;
    Ok(Json(BroadcastResponse {
        broadcast_id: message.id,
        recipients: done.recipients,
        raised: done.written,
    }))
}
