//! Request extractors whose failures are answered as [`ApiError`]s.

use std::sync::Arc;

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use serde::Deserialize;
use utoipa::IntoParams;
use uuid::Uuid;

use crate::error::ApiError;
use crate::idempotency::Keyed;

/// `axum::Json`, with JSON error bodies for malformed or oversized input.
#[derive(Debug, Clone, Copy, Default, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with JSON errors.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with JSON errors.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

/// The request id (set by the request-id layer, or sent by the client as
/// `x-request-id`), used as the correlation id of the events a request
/// causes; and on a command, its `Idempotency-Key` with the request's
/// fingerprint (see [`crate::idempotency`]) and its follower, when its
/// session listens for `command` frames (see [`crate::lifecycle`]).
#[derive(Debug, Clone)]
pub struct RequestId(
    pub Uuid,
    pub Option<Keyed>,
    pub Option<Arc<dyn larder_app::Lifecycle>>,
);

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let id = parts
            .headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| Uuid::parse_str(v).ok())
            .unwrap_or_else(Uuid::new_v4);
        Ok(Self(
            id,
            parts.extensions.get::<Keyed>().cloned(),
            parts
                .extensions
                .get::<Arc<dyn larder_app::Lifecycle>>()
                .cloned(),
        ))
    }
}

/// The `If-Match` header as a stream version: `"3"`, `3` or `W/"3"`.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<u64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(Self(None));
        };
        let text = value.to_str().unwrap_or_default().trim();
        let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
        // At most 19 digits (a version fits an i64, as the store keeps it):
        // a rule the OpenAPI pattern can state exactly.
        let digits = text.strip_prefix('+').unwrap_or(text);
        let valid = (1..=19).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        valid
            .then(|| digits.parse().ok())
            .flatten()
            .map(|v| Self(Some(v)))
            .ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_parameter",
                    "If-Match must be a stream version, e.g. \"3\"",
                )
            })
    }
}

impl IfMatch {
    /// The expected version from the header or the body; both must agree.
    pub fn or_body(self, body: Option<u64>) -> Result<Option<u64>, ApiError> {
        match (self.0, body) {
            (Some(header), Some(body)) if header != body => Err(ApiError::bad_request(
                "invalid_parameter",
                "If-Match and expected_version disagree",
            )),
            (header, body) => Ok(header.or(body)),
        }
    }
}

/// `?min_position=N`: answer only once the read models reflect position N
/// (waiting a bounded time), so a client reads its own writes.
#[derive(Debug, Clone, Copy, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct Consistency {
    /// Wait (at most 2 s by default) until the read models have reached this
    /// global position; the response's `position` tells whether they did.
    #[param(maximum = 18446744073709551615u64)]
    pub min_position: Option<u64>,
}
