//! `Idempotency-Key` on commands: the key is checked and the request
//! fingerprinted (method, path, `If-Match`, body bytes) before the handler
//! runs; the pipeline stores both with the command's events.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderName, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use larder_app::IdempotencyKey;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The request header that carries the key.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// The response header on an answer replayed from a key.
pub const IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The longest key, in bytes (all visible ASCII).
pub const MAX_KEY_BYTES: usize = larder_store::MAX_IDEMPOTENCY_KEY_BYTES;

/// A command request's key and fingerprint, for the handler
/// ([`crate::extract::RequestId`] carries it to the pipeline).
#[derive(Debug, Clone)]
pub struct Keyed {
    /// The key as sent.
    pub key: String,
    /// Hex SHA-256 of the method, path, `If-Match` and body.
    pub fingerprint: String,
}

impl Keyed {
    /// The key for the pipeline, answered with `status` when it succeeds.
    pub fn with_status(self, status: StatusCode) -> IdempotencyKey {
        IdempotencyKey {
            key: self.key,
            fingerprint: self.fingerprint,
            status: status.as_u16(),
        }
    }
}

/// Where the command routes are.
pub(crate) const COMMAND_PREFIXES: [&str; 5] = [
    "/api/v1/stores",
    "/api/v1/items/",
    "/api/v1/transfers",
    "/api/v1/orders/",
    "/api/v1/notifications",
];

/// Whether a request is a command: a POST, PUT, PATCH or DELETE to a store
/// (and its menu and orders), item, transfer, order or notification route.
pub(crate) fn is_command(request: &Request) -> bool {
    let path = request.uri().path();
    matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    ) && COMMAND_PREFIXES
        .iter()
        .any(|prefix| path.starts_with(prefix))
}

/// Middleware: on a command with an `Idempotency-Key`, checks the key (1 to
/// 255 visible ASCII characters, else 400 `invalid_idempotency_key`), reads
/// the body (within the body limit) and records [`Keyed`] for the handler.
pub async fn keyed(request: Request, next: Next) -> Response {
    if !is_command(&request) {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_KEY_BYTES
        || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return ApiError::bad_request(
            "invalid_idempotency_key",
            format!("Idempotency-Key must be 1 to {MAX_KEY_BYTES} visible ASCII characters"),
        )
        .into_response();
    }
    let key = String::from_utf8_lossy(bytes).into_owned();
    let mut hash = Sha256::new();
    hash.update(request.method().as_str());
    hash.update(b"\n");
    hash.update(request.uri().path());
    hash.update(b"\n");
    if let Some(if_match) = request.headers().get(header::IF_MATCH) {
        hash.update(if_match.as_bytes());
    }
    hash.update(b"\n");
    let (parts, body) = request.into_parts();
    let body = match Bytes::from_request(Request::from_parts(parts.clone(), body), &()).await {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "the request body is larger than the server accepts",
            )
            .into_response();
        }
        Err(rejection) => {
            return ApiError::bad_request("invalid_body", rejection.body_text()).into_response();
        }
    };
    hash.update(&body);
    let fingerprint = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let mut request = Request::from_parts(parts, Body::from(body));
    request.extensions_mut().insert(Keyed { key, fingerprint });
    next.run(request).await
}

/// OpenAPI: the optional `Idempotency-Key` header on every command, and its
/// 422 `idempotency_key_reused` (and 400 `invalid_idempotency_key`).
pub struct KeyedCommands;

impl utoipa::Modify for KeyedCommands {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{RefOr, Required};
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "A key of the client's choosing: a retry with the same key and request answers \
                 the original status and body (with `Idempotent-Replayed: true`) and changes \
                 nothing; the same key with another request is 422 `idempotency_key_reused`.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!("^[!-~]{{1,{MAX_KEY_BYTES}}}$"))),
            ))
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            let command = COMMAND_PREFIXES
                .iter()
                .any(|prefix| path.starts_with(prefix));
            if !command {
                continue;
            }
            let operations = [
                item.post.as_mut(),
                item.put.as_mut(),
                item.patch.as_mut(),
                item.delete.as_mut(),
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .parameters
                    .get_or_insert_with(Vec::new)
                    .push(parameter.clone());
                let responses = &mut operation.responses.responses;
                let Some(RefOr::T(bad_request)) = responses.get("400").cloned() else {
                    continue;
                };
                let reused =
                    "idempotency_key_reused: the Idempotency-Key was used for another request";
                match responses.get_mut("422") {
                    Some(RefOr::T(unprocessable)) => {
                        unprocessable.description = if unprocessable.description.is_empty() {
                            reused.to_owned()
                        } else {
                            format!("{}; {reused}", unprocessable.description)
                        };
                    }
                    Some(RefOr::Ref(_)) => {}
                    None => {
                        let mut unprocessable = bad_request;
                        unprocessable.description = reused.to_owned();
                        responses.insert("422".to_owned(), RefOr::T(unprocessable));
                    }
                }
            }
        }
    }
}
