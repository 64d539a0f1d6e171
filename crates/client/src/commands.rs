//! REST commands, sent exactly once.
//!
//! Exactly once rests on the server's `Idempotency-Key` (docs/api.md,
//! "Idempotency keys"): one key per logical command, kept across every
//! retry of it. A retry whose first attempt did reach the server is
//! answered from the key (`Idempotent-Replayed: true`) instead of being
//! applied again. The body is encoded once, so every attempt sends the
//! same bytes (the server compares them).

use std::time::Duration;

use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::client::Client;
use crate::error::{CommandError, Error};

/// A command to send: method, path below `/api/v1`, body, `If-Match`, and
/// optionally your own idempotency key (else a random UUID).
#[derive(Debug, Clone)]
pub struct Command {
    method: Method,
    path: String,
    body: Option<Vec<u8>>,
    if_match: Option<u64>,
    key: Option<String>,
    command_id: Option<String>,
}

impl Command {
    /// `POST {path}` with a JSON body, e.g.
    /// `Command::post("/items/{id}/adjust", &json!({"delta": -1, "reason": "sold"}))`.
    pub fn post(path: impl Into<String>, body: &impl Serialize) -> Result<Self, Error> {
        Self::new(Method::POST, path).json(body)
    }

    /// A command without a body (add one with [`json`](Self::json)).
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            body: None,
            if_match: None,
            key: None,
            command_id: None,
        }
    }

    /// The JSON body, encoded now: every attempt sends these bytes.
    pub fn json(mut self, body: &impl Serialize) -> Result<Self, Error> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::Protocol(format!("cannot encode the command's body: {e}")))?;
        self.body = Some(bytes);
        Ok(self)
    }

    /// `If-Match: "{version}"`: refused with 409 `version_conflict` when the
    /// stream is at another version.
    pub fn if_match(mut self, version: u64) -> Self {
        self.if_match = Some(version);
        self
    }

    /// Your idempotency key (1 to 255 visible ASCII characters), e.g. one
    /// kept with a queued command across restarts of your service.
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// A `Command-Id`, to follow the command on the session's
    /// `session:{sid}` topic (docs/protocol.md, "Command lifecycle").
    pub fn command_id(mut self, id: impl Into<String>) -> Self {
        self.command_id = Some(id.into());
        self
    }
}

/// A command's successful answer.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandResponse {
    /// 200 or 201.
    pub status: u16,
    /// The answer's JSON (`Null` if it had none).
    pub body: Value,
    /// An earlier attempt had been applied: this is its answer, replayed
    /// from the key, and nothing was written now.
    pub replayed: bool,
    /// The key every attempt carried.
    pub key: String,
    /// Attempts made, this one included.
    pub attempts: u32,
}

impl CommandResponse {
    /// The global position of the command's last event (`since` for a
    /// subscription, `min_position` for a read of its effects).
    pub fn position(&self) -> Option<u64> {
        self.body.get("position").and_then(Value::as_u64)
    }

    /// The stream's version after the command (the next `If-Match`).
    pub fn version(&self) -> Option<u64> {
        self.body.get("version").and_then(Value::as_u64)
    }
}

/// A new idempotency key: a random UUID.
pub fn new_idempotency_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// What the server accepts as a key: 1 to 255 visible ASCII characters.
pub fn is_valid_idempotency_key(key: &str) -> bool {
    (1..=255).contains(&key.len()) && key.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// Whether an answer leaves the command undecided, so sending it again with
/// the same key is right: 408, 429 and every 5xx (and no answer at all).
/// Any other 4xx is the server's decision and is final.
pub fn is_transient_status(status: u16) -> bool {
    status == 408 || status == 429 || status >= 500
}

/// One attempt's undecided outcome.
struct Undecided {
    status: u16,
    code: String,
    message: String,
    details: Value,
    retry_after: Option<Duration>,
}

impl Client {
    /// Sends a command, exactly once: one `Idempotency-Key` for all its
    /// attempts. Retries what leaves it undecided (no answer, 408, 429,
    /// 5xx) after the server's `Retry-After` (capped) or a jittered
    /// backoff, up to the configured attempts; a 401 `token_expired` or
    /// `invalid_token` asks the token provider for a new token once and
    /// sends again with the same key. Any other 4xx is returned at once.
    pub async fn command(&self, command: Command) -> Result<CommandResponse, Error> {
        let inner = &self.inner;
        let key = command.key.clone().unwrap_or_else(new_idempotency_key);
        let fail = |status, code: &str, message: String, details, attempts, transient| {
            Error::Command(CommandError {
                method: command.method.to_string(),
                path: command.path.clone(),
                status,
                code: code.to_owned(),
                message,
                details,
                key: key.clone(),
                attempts,
                transient,
            })
        };
        if !is_valid_idempotency_key(&key) {
            let message = "an idempotency key is 1 to 255 visible ASCII characters".to_owned();
            return Err(fail(
                400,
                "invalid_idempotency_key",
                message,
                Value::Null,
                0,
                false,
            ));
        }
        let url = format!("{}{}", inner.api_url, command.path);
        let mut refreshed = false;
        let mut refresh_now = false;
        let mut attempt = 0;
        let mut last: Option<Undecided> = None;
        while attempt < inner.command_attempts {
            attempt += 1;
            let token = self.token(std::mem::take(&mut refresh_now)).await?;
            let mut request = inner
                .http
                .request(command.method.clone(), &url)
                .bearer_auth(token)
                .header("idempotency-key", &key);
            if let Some(version) = command.if_match {
                request = request.header("if-match", format!("\"{version}\""));
            }
            if let Some(id) = &command.command_id {
                request = request.header("command-id", id);
            }
            if let Some(body) = &command.body {
                request = request
                    .header("content-type", "application/json")
                    .body(body.clone());
            }
            let undecided = match read(request.send().await).await {
                Ok(Answer {
                    status,
                    replayed,
                    body,
                    ..
                }) if (200..300).contains(&status) => {
                    return Ok(CommandResponse {
                        status,
                        body,
                        replayed,
                        key: key.clone(),
                        attempts: attempt,
                    });
                }
                Ok(Answer {
                    status,
                    body,
                    retry_after,
                    ..
                }) => {
                    let code = body["code"]
                        .as_str()
                        .map_or_else(|| format!("http_{status}"), str::to_owned);
                    let message = body["message"]
                        .as_str()
                        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
                    let details = body.get("details").cloned().unwrap_or(Value::Null);
                    // An expired or no longer valid token stores no key on
                    // the server: a new token, the same key, not counted.
                    if status == 401
                        && matches!(code.as_str(), "token_expired" | "invalid_token")
                        && !refreshed
                    {
                        refreshed = true;
                        refresh_now = true;
                        attempt -= 1;
                        continue;
                    }
                    if !is_transient_status(status) {
                        return Err(fail(status, &code, message, details, attempt, false));
                    }
                    Undecided {
                        status,
                        code,
                        message,
                        details,
                        retry_after,
                    }
                }
                Err(message) => Undecided {
                    status: 0,
                    code: "network_error".into(),
                    message,
                    details: Value::Null,
                    retry_after: None,
                },
            };
            if attempt < inner.command_attempts {
                let wait = match undecided.retry_after {
                    Some(after) => after.min(inner.max_retry_after),
                    None => inner.command_backoff.delay(attempt - 1),
                };
                tracing::debug!(path = %command.path, %key, attempt, status = undecided.status, ?wait, "command undecided, retrying");
                tokio::time::sleep(wait).await;
            }
            last = Some(undecided);
        }
        let last = last.unwrap_or(Undecided {
            status: 0,
            code: "network_error".into(),
            message: "not sent".into(),
            details: Value::Null,
            retry_after: None,
        });
        Err(fail(
            last.status,
            &last.code,
            last.message,
            last.details,
            attempt,
            true,
        ))
    }

    /// `POST {path}` with a JSON body, as [`command`](Self::command) sends it.
    pub async fn post(&self, path: &str, body: &impl Serialize) -> Result<CommandResponse, Error> {
        self.command(Command::post(path, body)?).await
    }

    /// `GET {path}` (below `/api/v1`): the answer's JSON. One attempt (a
    /// read is safe to repeat: retry it as you see fit), with a token
    /// refresh on a 401 `token_expired` or `invalid_token`.
    pub async fn get(&self, path: &str) -> Result<Value, Error> {
        let url = format!("{}{path}", self.inner.api_url);
        let mut refresh = false;
        loop {
            let token = self.token(refresh).await?;
            let request = self.inner.http.get(&url).bearer_auth(token);
            let Answer { status, body, .. } = read(request.send().await)
                .await
                .map_err(Error::Connection)?;
            if (200..300).contains(&status) {
                return Ok(body);
            }
            let code = body["code"].as_str().unwrap_or_default().to_owned();
            if status == 401
                && !refresh
                && matches!(code.as_str(), "token_expired" | "invalid_token")
            {
                refresh = true;
                continue;
            }
            return Err(Error::Command(CommandError {
                method: "GET".into(),
                path: path.to_owned(),
                status,
                code: if code.is_empty() {
                    format!("http_{status}")
                } else {
                    code
                },
                message: body["message"].as_str().unwrap_or("").to_owned(),
                details: body.get("details").cloned().unwrap_or(Value::Null),
                key: String::new(),
                attempts: 1,
                transient: is_transient_status(status),
            }));
        }
    }
}

/// An HTTP answer, read whole.
struct Answer {
    status: u16,
    /// `Idempotent-Replayed: true`.
    replayed: bool,
    /// `Retry-After` in seconds (an HTTP date is not read: the backoff applies).
    retry_after: Option<Duration>,
    /// The JSON body, `Null` when not JSON.
    body: Value,
}

/// Reads an answer; `Err` when there was no whole answer.
async fn read(sent: Result<reqwest::Response, reqwest::Error>) -> Result<Answer, String> {
    let response = sent.map_err(|e| format!("no answer from the server: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers();
    let replayed = headers
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true");
    let retry_after = headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let bytes = response
        .bytes()
        .await
        .map_err(|e| format!("the answer was cut: {e}"))?;
    Ok(Answer {
        status,
        replayed,
        retry_after,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_valid_uuids_and_validated_as_the_server_does() {
        let key = new_idempotency_key();
        assert!(is_valid_idempotency_key(&key));
        assert_ne!(key, new_idempotency_key());
        assert!(!is_valid_idempotency_key(""));
        assert!(!is_valid_idempotency_key("has space"));
        assert!(!is_valid_idempotency_key(&"k".repeat(256)));
        assert!(is_valid_idempotency_key(&"k".repeat(255)));
    }

    #[test]
    fn only_undecided_answers_are_transient() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [400, 401, 403, 404, 409, 422] {
            assert!(!is_transient_status(status), "{status}");
        }
    }
}
