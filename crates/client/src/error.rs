//! What can go wrong, in the client's own terms.

use std::time::Duration;

/// A boxed error from a [`TokenProvider`](crate::TokenProvider).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the client can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The base URL is not an `http://` or `https://` URL.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidUrl { url: String, reason: &'static str },

    /// The token provider could not give a token.
    #[error("no token: {0}")]
    Token(#[source] BoxError),

    /// The server refused the token (close 4002/4003, HTTP 401), also after
    /// asking the token provider for a new one. Retrying will not help
    /// until the provider has a valid token.
    #[error("unauthorized ({code}): {message}")]
    Unauthorized { code: String, message: String },

    /// The server refused a request of the protocol (a subscription to a
    /// topic outside the token's claims, an invalid topic, too many
    /// subscriptions, ...). `code` is one of docs/protocol.md's error codes.
    #[error("refused ({code}): {message}")]
    Refused { code: String, message: String },

    /// The connection could not be made or ended (network, close frame,
    /// no answer in time). Transient: the subscription stream retries these
    /// by itself; only its first connection reports them.
    #[error("connection failed: {0}")]
    Connection(String),

    /// No answer within the configured time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),

    /// A frame that is not valid JSON of the protocol.
    #[error("unexpected frame from the server: {0}")]
    Protocol(String),

    /// Reconnecting gave up after the configured number of attempts.
    #[error("gave up reconnecting after {attempts} attempts: {last}")]
    GaveUp { attempts: u32, last: String },

    /// A REST command failed. See [`CommandError`].
    #[error(transparent)]
    Command(#[from] CommandError),
}

/// A REST command that did not succeed.
///
/// `transient` tells the two cases apart: `false`, the server decided and
/// refused it (a 4xx: nothing was written, retrying the same request gets
/// the same answer); `true`, it is still undecided after every attempt (no
/// answer, 408, 429 or 5xx): the server may or may not have applied it, and
/// sending it again with the same [`key`](CommandError::key) is safe.
#[derive(Debug, Clone, thiserror::Error)]
#[error("command {method} {path} failed after {attempts} attempt(s): {status} {code}: {message}")]
pub struct CommandError {
    pub method: String,
    pub path: String,
    /// The HTTP status of the last answer, 0 when there was none.
    pub status: u16,
    /// The answer's `code` (docs/api.md), `network_error` without an answer,
    /// or `http_<status>` when the body had none.
    pub code: String,
    pub message: String,
    /// The answer's `details`, `null` when it had none.
    pub details: serde_json::Value,
    /// The `Idempotency-Key` every attempt carried.
    pub key: String,
    pub attempts: u32,
    /// Undecided (may have been applied): retry with the same key.
    pub transient: bool,
}

impl Error {
    /// Whether trying again later may succeed (a connection problem or a
    /// timeout), as opposed to a decision of the server or a bad setting.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connection(_) | Error::Timeout(_) | Error::GaveUp { .. } => true,
            Error::Command(command) => command.transient,
            _ => false,
        }
    }
}
