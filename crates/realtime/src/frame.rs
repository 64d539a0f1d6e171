//! The transport-neutral frame a connection reads and writes, and the close
//! codes it ends with.

/// One WebSocket frame, independent of the WebSocket library.
///
/// The connection loop ([`serve_connection`](crate::serve_connection)) reads a
/// `Stream` of these and writes a `Sink` of these, so the server adapts its
/// socket type in a few lines and tests drive a connection with channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UTF-8 text message: every protocol message is one JSON object.
    Text(String),
    /// A WebSocket ping. The server sends one with every heartbeat.
    Ping(Vec<u8>),
    /// A WebSocket pong.
    Pong(Vec<u8>),
    /// A close frame with an optional code and reason.
    Close(Option<(u16, String)>),
}

impl Frame {
    /// A close frame with `code` and `reason`.
    pub fn close(code: u16, reason: impl Into<String>) -> Self {
        Self::Close(Some((code, reason.into())))
    }

    /// The close code, if this is a close frame that carries one.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            Self::Close(Some((code, _))) => Some(*code),
            _ => None,
        }
    }
}

/// Close codes the server ends a connection with. `docs/protocol.md` says
/// what a client should do for each.
pub mod close {
    /// Normal closure: the peer closed, or the server had nothing more to say.
    pub const NORMAL: u16 = 1000;
    /// Going away: the server is shutting down, after a `reconnect` notice.
    pub const GOING_AWAY: u16 = 1001;
    /// A received frame was larger than `max_frame_bytes`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// Nothing was received from the peer within two heartbeat intervals.
    pub const HEARTBEAT_TIMEOUT: u16 = 4000;
    /// No `auth` message arrived within `auth_timeout`.
    pub const AUTH_TIMEOUT: u16 = 4001;
    /// The token was not valid (bad signature, malformed, wrong issuer...).
    pub const INVALID_TOKEN: u16 = 4002;
    /// The token expired and was not refreshed in band: refresh and reconnect.
    pub const TOKEN_EXPIRED: u16 = 4003;
    /// The peer kept sending faster than the rate limit after a warning.
    pub const RATE_LIMITED: u16 = 4008;
    /// The peer did not read fast enough and its outbound queue filled up:
    /// reconnect and resume with `since` = the last position received.
    pub const SLOW_CONSUMER: u16 = 4009;
    /// Too many connections from this client address.
    pub const TOO_MANY_CONNECTIONS: u16 = 4029;
}

/// Why the server closed a connection: a close code and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseReason {
    /// One of the [`close`] codes.
    pub code: u16,
    /// A short, human-readable reason sent in the close frame.
    pub reason: &'static str,
}

impl CloseReason {
    pub(crate) const fn new(code: u16, reason: &'static str) -> Self {
        Self { code, reason }
    }

    /// Whether frames already queued should be flushed before the close frame
    /// (every close but a slow consumer's, whose socket does not drain).
    pub(crate) fn drains(&self) -> bool {
        self.code != close::SLOW_CONSUMER
    }
}
