//! The real-time edge: `/ws`, Server-Sent Events and long-poll over the
//! `larder-realtime` hub, plus the ports the hub needs (token checks and
//! read-model snapshots).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use larder_projections::ReadModels;
use larder_realtime::{
    AuthFailure, Authorizer, ConnectionContext, EventFrame, Identity, RealtimeConfig, Resume,
    SnapshotProvider, SubscribeError, TooManyUserConnections, Topic, event_frame,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::{Authenticator, Principal, Role, StreamPrincipal};
use crate::config::Settings;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Query;
use crate::state::AppState;
use crate::websocket::{Buffers, Upgrade};

/// The hub's bounds, from the server's settings.
pub fn config(settings: &Settings) -> RealtimeConfig {
    RealtimeConfig {
        outbound_queue: settings.ws_outbound_queue.max(1),
        max_frame_bytes: settings.ws_max_frame_bytes,
        max_subscriptions: settings.ws_max_subscriptions,
        max_connections_per_ip: settings.ws_max_connections_per_ip,
        max_connections_per_user: settings.ws_max_connections_per_user,
        rate_per_sec: settings.ws_rate_per_sec.max(1),
        rate_burst: settings.ws_rate_burst.max(1),
        heartbeat_interval: Duration::from_millis(settings.ws_heartbeat_ms.max(10)),
        auth_timeout: Duration::from_millis(settings.ws_auth_timeout_ms.max(10)),
        fanout_linger: Duration::from_millis(settings.ws_fanout_linger_ms),
        ..RealtimeConfig::default()
    }
}

/// Tokens are checked exactly as for REST, and the user is recorded in the
/// directory the same way.
pub struct JwtAuthorizer(pub Arc<Authenticator>, pub Arc<crate::directory::Directory>);

#[async_trait]
impl Authorizer for JwtAuthorizer {
    async fn authenticate(&self, token: &str) -> Result<Identity, AuthFailure> {
        let principal = self.0.verify(token).map_err(|error| {
            if error.code() == "token_expired" {
                AuthFailure::Expired
            } else {
                AuthFailure::Invalid
            }
        })?;
        self.1.seen(&principal).await;
        Ok(identity(principal))
    }
}

pub(crate) fn identity(principal: Principal) -> Identity {
    Identity {
        stores: principal.stores().cloned(),
        user: principal.user,
        tenant: principal.tenant.as_str().to_owned(),
        role: match principal.role {
            Role::Viewer => larder_realtime::Role::Viewer,
            Role::Staff => larder_realtime::Role::Staff,
            Role::Manager => larder_realtime::Role::Manager,
            Role::Admin => larder_realtime::Role::Admin,
        },
        session: principal.session,
        expires_at: principal.expires_at,
    }
}

/// Snapshots for `store:{id}` subscriptions: the store and all its items,
/// read in one snapshot-isolated transaction with the read models'
/// checkpoint, so the data reflects exactly the events up to the position
/// it declares (see [`ReadModels::store_snapshot`]). And for `dashboard`
/// and `dashboard:{id}` subscriptions: the dashboard's figures now (an
/// unknown store has none).
pub struct Snapshots {
    /// The read models.
    pub reads: ReadModels,
    /// The log, whose head the read models are waited for before a store
    /// is declared unknown: one created a moment ago may not be read yet.
    pub store: Arc<dyn larder_store::EventStore>,
    /// How long to wait for the read models to reach that head.
    pub wait: Duration,
    /// The dashboards.
    pub dashboards: Arc<crate::dashboard::Dashboards>,
}

impl Snapshots {
    /// Whether the read models know the store, once they have read the log
    /// up to its head if they did not at first.
    async fn knows(&self, tenant: &str, store_id: &str) -> Result<bool, String> {
        if self.found(tenant, store_id).await? {
            return Ok(true);
        }
        let head = self.store.head().await.map_err(|e| e.to_string())?;
        self.reads.wait_for(head, self.wait).await;
        self.found(tenant, store_id).await
    }

    async fn found(&self, tenant: &str, store_id: &str) -> Result<bool, String> {
        let store = self.reads.store(tenant, store_id).await;
        Ok(store.map_err(|e| e.to_string())?.value.is_some())
    }
}

#[async_trait]
impl SnapshotProvider for Snapshots {
    async fn snapshot(
        &self,
        identity: &Identity,
        topic: &Topic,
    ) -> Result<Option<(serde_json::Value, u64)>, String> {
        let store_id = match topic {
            Topic::Store(store_id) => store_id,
            Topic::Dashboard(store_id) => {
                if let Some(store_id) = store_id {
                    if !self.knows(&identity.tenant, store_id).await? {
                        return Err(format!("no store {store_id}"));
                    }
                }
                return self.dashboards.of_topic(&identity.tenant, topic).await;
            }
            _ => return Ok(None),
        };
        let snapshot = self
            .reads
            .store_snapshot(&identity.tenant, store_id)
            .await
            .map_err(|e| e.to_string())?;
        let data = serde_json::to_value(&snapshot.value).map_err(|e| e.to_string())?;
        Ok(Some((data, snapshot.position)))
    }
}

/// `?access_token=` on `/ws`, for clients that authenticate at upgrade.
#[derive(Debug, Deserialize)]
pub struct WsParams {
    access_token: Option<String>,
}

/// The WebSocket endpoint. The first message authenticates, unless the
/// upgrade carried `?access_token=`; see docs/protocol.md.
pub async fn ws(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    upgrade: Upgrade,
) -> Result<Response, ApiError> {
    // Any web page can make the browser open a WebSocket anywhere, and
    // says which page it is in `Origin`: only pages from this host or the
    // allowed origins may connect (programs send no Origin).
    if !crate::edge::origin_allowed(&headers, &state.settings.allowed_origins) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "this page's origin may not open a connection; see --allowed-origins",
        ));
    }
    let hub = state.hub.clone();
    if hub.is_shutting_down() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting_down",
            "the server is restarting",
        ));
    }
    let permit = hub
        .try_register(peer.ip())
        .map_err(|_| too_many_connections())?;
    let pre_auth = match params.access_token {
        Some(token) => Some(identity(state.auth.verify(&token)?)),
        None => None,
    };
    let mut context = ConnectionContext::new(peer.ip()).with_permit(permit);
    if let Some(identity) = pre_auth {
        let user_permit = hub
            .try_admit_user(&identity)
            .map_err(too_many_user_connections)?;
        context = context
            .with_identity(identity)
            .with_user_permit(user_permit);
    }
    let buffers = Buffers {
        read: state.settings.ws_read_buffer_bytes,
        write: state.settings.ws_write_buffer_bytes,
    };
    Ok(upgrade.serve(hub, context, buffers))
}

/// 429 for an address over `--ws-max-connections-per-ip`.
fn too_many_connections() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
        "too many connections from this address",
    )
}

/// 429 for a user over `--ws-max-connections-per-user`.
fn too_many_user_connections(error: TooManyUserConnections) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_connections",
        format!(
            "at most {} connections per user, on every node together",
            error.limit
        ),
    )
}

/// Topics and resume point of an SSE or long-poll request.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Comma-separated topics, e.g. `store:{id},tenant` (see docs/protocol.md).
    pub topics: String,
    /// Resume after this position (SSE: `Last-Event-ID` takes precedence).
    pub since: Option<u64>,
    /// Token, for clients that cannot send `Authorization` (EventSource).
    /// Read by the `StreamPrincipal` extractor; declared for the OpenAPI document.
    #[allow(dead_code)]
    pub access_token: Option<String>,
}

fn topics(list: &str) -> Result<Vec<Topic>, ApiError> {
    let topics: Vec<Topic> = list
        .split(',')
        .filter(|t| !t.trim().is_empty())
        .map(|t| t.trim().parse::<Topic>())
        .collect::<Result<_, _>>()
        .map_err(|e| ApiError::bad_request("invalid_topic", e.to_string()))?;
    if topics.is_empty() || topics.len() > 100 {
        return Err(ApiError::bad_request(
            "invalid_topic",
            "give 1 to 100 topics",
        ));
    }
    Ok(topics)
}

fn subscribe_error(error: SubscribeError) -> ApiError {
    let code = match serde_json::to_value(error.code()) {
        Ok(serde_json::Value::String(code)) => code,
        _ => "invalid_request".to_owned(),
    };
    let status = match &error {
        SubscribeError::Forbidden(_) => StatusCode::FORBIDDEN,
        SubscribeError::Unavailable(_) | SubscribeError::Closed => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let code: &'static str = match code.as_str() {
        "forbidden" => "forbidden",
        "invalid_topic" => "invalid_topic",
        "invalid_since" => "invalid_since",
        "unavailable" => "unavailable",
        _ => "invalid_request",
    };
    ApiError::new(status, code, error.to_string())
}

/// Server-Sent Events: the same events as the WebSocket, `id:` = position.
#[utoipa::path(get, path = "/api/v1/events/stream", tag = "realtime", params(StreamParams,
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after this position")),
    security(("bearer" = [])),
    responses((status = 200, description = "text/event-stream of event frames; first an `event: reset` message when `since` cannot be resumed"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 429, description = "too many connections from this address, or for this user", body = ErrorBody)))]
pub async fn sse(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    StreamPrincipal(principal): StreamPrincipal,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let topics = topics(&params.topics)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let since = last_event_id.or(params.since);
    // An event stream is a long-lived connection like a WebSocket: it takes
    // a place under the same per-address bound, held until the stream ends.
    let permit = state
        .hub
        .try_register(peer.ip())
        .map_err(|_| too_many_connections())?;
    let identity = identity(principal);
    let user_permit = state
        .hub
        .try_admit_user(&identity)
        .map_err(too_many_user_connections)?;
    let stream = state
        .hub
        .open_stream(identity, topics, since)
        .await
        .map_err(subscribe_error)?;
    // A `since` that cannot be honoured (ahead of the head, or more than
    // `max_replay` events behind) starts the stream live: say so first, as
    // `resume: "reset"` does on a WebSocket, so the client refetches its
    // state. Its `id:` moves `Last-Event-ID` to the position it is live from.
    let reset = (stream.resume() == Resume::Reset).then(|| {
        let position = stream.position();
        Ok(Event::default()
            .id(position.to_string())
            .event("reset")
            .data(format!("{{\"type\":\"reset\",\"position\":{position}}}")))
    });
    let events = stream.map(move |frame: EventFrame| {
        let _places = (&permit, &user_permit);
        let data = event_frame(&frame.topic, frame.position, &frame.event);
        Ok(Event::default()
            .id(frame.position.to_string())
            .event("event")
            .data(data.as_ref()))
    });
    let events = futures_util::stream::iter(reset).chain(events);
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Long-poll parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PollParams {
    /// Comma-separated topics.
    pub topics: String,
    /// Return events after this position (the previous `next_since`).
    pub since: u64,
    /// Longest wait for a first event, in milliseconds (at most 30000, default 25000).
    pub wait_ms: Option<u64>,
    /// Most events returned (at most 1000, default 500).
    pub limit: Option<usize>,
    /// Token, for clients that cannot send `Authorization`.
    /// Read by the `StreamPrincipal` extractor; declared for the OpenAPI document.
    #[allow(dead_code)]
    pub access_token: Option<String>,
}

/// Long-poll: waits (bounded) for events after `since`, answers a page.
#[utoipa::path(get, path = "/api/v1/events", tag = "realtime", params(PollParams), security(("bearer" = [])),
    responses((status = 200, description = "`{events: [event frames], next_since}`"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn poll(
    State(state): State<AppState>,
    StreamPrincipal(principal): StreamPrincipal,
    Query(params): Query<PollParams>,
) -> Result<Response, ApiError> {
    let topics = topics(&params.topics)?;
    let wait = Duration::from_millis(params.wait_ms.unwrap_or(25_000).min(30_000));
    let limit = params.limit.unwrap_or(500).clamp(1, 1000);
    let (frames, next) = state
        .hub
        .poll(identity(principal), topics, params.since, limit, wait)
        .await
        .map_err(subscribe_error)?;
    // The frames are already JSON: splice them instead of re-encoding.
    let mut body = String::from("{\"events\":[");
    for (i, frame) in frames.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&event_frame(&frame.topic, frame.position, &frame.event));
    }
    body.push_str(&format!("],\"next_since\":{next}}}"));
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}
