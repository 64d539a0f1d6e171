//! `Command-Id` on commands: the session that sent a command hears what
//! became of it on its `session:{sid}` topic (`command` frames: `accepted`,
//! then `executed` or `failed`; docs/protocol.md).
//!
//! One middleware serves every command route: it checks the id, finds the
//! caller's tenant and login session in the token, and when a connection of
//! that session listens, it runs the command in a task of its own (so the
//! command is answered over the socket even if the HTTP client goes away
//! or the request times out), hands the pipeline a follower through which
//! it says `accepted`, and reads the answer for the final frame: `executed`
//! with the answer's body and `position`, or `failed` with its error code.

use std::sync::Arc;

use axum::body::{Body, to_bytes};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use larder_realtime::CommandTracker;
use serde_json::Value;
use tracing::Instrument;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::idempotency::{IDEMPOTENT_REPLAYED, is_command};
use crate::state::AppState;

/// The request header that carries the command id.
pub const COMMAND_ID: HeaderName = HeaderName::from_static("command-id");

/// The longest command id, in bytes.
pub const MAX_COMMAND_ID_BYTES: usize = 64;

/// The largest answer read for an `executed` frame: command answers are a
/// few hundred bytes; anything larger is not one.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Whether `id` is a valid command id: 1 to [`MAX_COMMAND_ID_BYTES`] ASCII
/// letters, digits, `-`, `_`, `.` or `:` (a UUID, a ULID, `tab-3:17`).
/// Such ids need no escaping in JSON, logs or URLs.
pub fn valid_command_id(id: &[u8]) -> bool {
    (1..=MAX_COMMAND_ID_BYTES).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The command's follower, for the pipeline (through
/// [`crate::extract::RequestId`] and the command's context).
#[derive(Debug)]
pub struct Followed(CommandTracker);

impl larder_app::Lifecycle for Followed {
    fn accepted(&self) {
        self.0.accepted();
    }
}

/// Middleware: on a command with a `Command-Id`, checks it (else 400
/// `invalid_command_id`, and nothing runs), and follows the command when the
/// caller's session has a connection subscribed to `session:{sid}`.
pub async fn followed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if !is_command(&request) {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(COMMAND_ID) else {
        return next.run(request).await;
    };
    if !valid_command_id(value.as_bytes()) {
        return ApiError::bad_request(
            "invalid_command_id",
            format!(
                "Command-Id must be 1 to {MAX_COMMAND_ID_BYTES} ASCII letters, digits, '-', '_', '.' or ':'"
            ),
        )
        .into_response();
    }
    let command_id = String::from_utf8_lossy(value.as_bytes()).into_owned();
    let (mut parts, body) = request.into_parts();
    // The handler checks the token again and answers a bad one; here it only
    // says whom to tell, and a token without a session has no one.
    let tracker = Principal::from_request_parts(&mut parts, &state)
        .await
        .ok()
        .and_then(|principal| {
            let session = principal.session.as_deref()?;
            state
                .hub
                .track_command(principal.tenant.as_str(), session, &command_id)
        });
    let mut request = Request::from_parts(parts, body);
    let Some(tracker) = tracker else {
        return next.run(request).await;
    };
    let followed = Arc::new(Followed(tracker));
    request
        .extensions_mut()
        .insert::<Arc<dyn larder_app::Lifecycle>>(followed.clone());
    let command = async move {
        let response = next.run(request).await;
        answer(&followed.0, response).await
    };
    match tokio::spawn(command.in_current_span()).await {
        Ok(response) => response,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the server is shutting down",
        )
        .into_response(),
    }
}

/// Sends the final frame for `response`, and gives the response back.
async fn answer(tracker: &CommandTracker, response: Response) -> Response {
    let (parts, body) = response.into_parts();
    let bytes = match to_bytes(body, MAX_ANSWER_BYTES).await {
        Ok(bytes) => bytes,
        Err(error) => {
            let error = ApiError::internal(&*error.into_inner());
            tracker.failed(error.code(), "internal error", None);
            return error.into_response();
        }
    };
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if parts.status.is_success() {
        let position = body.get("position").and_then(Value::as_u64);
        if position.is_none() {
            tracing::warn!(
                command_id = tracker.command_id(),
                "a command answered without a position"
            );
        }
        let replayed = parts.headers.contains_key(IDEMPOTENT_REPLAYED);
        tracker.executed(position.unwrap_or(0), replayed, body);
    } else {
        let text = |field: &str| body.get(field).and_then(Value::as_str).map(str::to_owned);
        // Every error of the API is an `ApiError` with a code; an answer
        // without one (a 405 of the router) is named after its status.
        let code = text("code").unwrap_or_else(|| match parts.status.canonical_reason() {
            Some(reason) if parts.status.is_client_error() => {
                reason.to_ascii_lowercase().replace(' ', "_")
            }
            _ => "internal".to_owned(),
        });
        let message = text("message").unwrap_or_else(|| parts.status.to_string());
        tracker.failed(code, message, body.get("details").cloned());
    }
    Response::from_parts(parts, Body::from(bytes))
}

/// OpenAPI: the optional `Command-Id` header on every command.
pub struct FollowedCommands;

impl utoipa::Modify for FollowedCommands {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let parameter = ParameterBuilder::new()
            .name("Command-Id")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "An id of the client's choosing for this command: the connections of the token's \
                 login session subscribed to `session:{sid}` get `command` frames about it \
                 (`accepted`, then `executed` or `failed`; see docs/protocol.md). An invalid id \
                 is 400 `invalid_command_id` and nothing runs.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some(format!(
                        "^[A-Za-z0-9._:-]{{1,{MAX_COMMAND_ID_BYTES}}}$"
                    ))),
            ))
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !crate::idempotency::COMMAND_PREFIXES
                .iter()
                .any(|prefix| path.starts_with(prefix))
            {
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
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_ids_are_short_and_plain() {
        for id in [
            "c",
            "67e55044-10b1-426f-9247-bb680e5fe0c8",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "tab-3:17",
            "a.b_c",
        ] {
            assert!(valid_command_id(id.as_bytes()), "{id}");
        }
        let long = "x".repeat(MAX_COMMAND_ID_BYTES + 1);
        for id in ["", "a b", "a\"b", "a/b", "é", long.as_str()] {
            assert!(!valid_command_id(id.as_bytes()), "{id:?}");
        }
        assert!(valid_command_id(
            "x".repeat(MAX_COMMAND_ID_BYTES).as_bytes()
        ));
    }
}
