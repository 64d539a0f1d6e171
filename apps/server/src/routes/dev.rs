//! Demo mode: mint tokens without an identity provider.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use larder_domain::TenantId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::{Audience, Claims, Role, StoreAccess, require_demo};
use crate::error::{ApiError, ErrorBody};
use crate::extract::Json;
use crate::state::AppState;

/// The longest a demo token lives.
const MAX_TTL_SECONDS: u64 = 24 * 3600;

/// Ask for a demo token.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// The tenant, e.g. `acme`.
    #[schema(example = "acme")]
    pub tenant: String,
    /// The user id (default `demo`).
    #[schema(example = "alice")]
    pub sub: Option<String>,
    /// The role (default `admin`).
    pub role: Option<Role>,
    /// Visible stores: `"*"` (default) or a list of store ids.
    pub stores: Option<StoreAccess>,
    /// Lifetime in seconds (default 3600, at most 86400).
    pub ttl_seconds: Option<u64>,
    /// The login session (`sid` claim, for `session:` topics); default: a new one.
    pub sid: Option<String>,
}

/// A bearer token.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/api/v1/dev/token", tag = "operations", request_body = TokenRequest,
    description = "Demo mode only (no signing key configured): mints a token, for requests addressed to a \
                   loopback host (`localhost`, `127.0.0.1`, `[::1]`) only (403 `demo_loopback_only` otherwise). \
                   Absent (404) when a key is configured.",
    responses((status = 201, body = TokenResponse), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn mint_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<TokenRequest>,
) -> Result<impl IntoResponse, ApiError> {
    require_demo(&state)?;
    // A demo server trusts whoever can reach it, which is meant to be this
    // machine only. A page on another site that points its own name at
    // 127.0.0.1 (DNS rebinding) reaches it too, but sends its own name as
    // Host: no admin tokens for it.
    if !crate::edge::is_loopback_host(&headers) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "demo_loopback_only",
            "demo tokens are minted only for requests to localhost, 127.0.0.1 or [::1]; \
             configure --jwt-secret or --jwt-public-key to serve other hosts",
        ));
    }
    let tenant = TenantId::parse(&body.tenant)?;
    let ttl = body.ttl_seconds.unwrap_or(3600).clamp(1, MAX_TTL_SECONDS);
    let now = Utc::now();
    // Whole seconds, as the token's `exp` says: the answer and the token agree.
    let expires_at = DateTime::<Utc>::from_timestamp(now.timestamp() + ttl as i64, 0)
        .unwrap_or(now + chrono::Duration::seconds(ttl as i64));
    let claims = Claims {
        sub: body
            .sub
            .filter(|s| !s.trim().is_empty())
            .unwrap_or_else(|| "demo".into()),
        tenant: tenant.as_str().to_owned(),
        stores: body.stores.unwrap_or(StoreAccess::ALL),
        roles: vec![body.role.unwrap_or(Role::Admin)],
        exp: expires_at.timestamp() as u64,
        iat: Some(now.timestamp() as u64),
        sid: Some(
            body.sid
                .filter(|s| !s.trim().is_empty())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        ),
        iss: state.settings.jwt_issuer.clone(),
        aud: state.settings.jwt_audience.clone().map(Audience::One),
    };
    let token = state
        .auth
        .mint(&claims)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route"))?;
    Ok((
        StatusCode::CREATED,
        Json(TokenResponse {
            token,
            token_type: "Bearer",
            expires_at,
        }),
    ))
}
