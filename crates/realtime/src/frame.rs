//! The transport-neutral frame a connection reads and writes, and the close
//! codes it ends with.

use std::convert::Infallible;
use std::fmt;
use std::ops::Deref;
use std::str::Utf8Error;

use bytes::Bytes;

/// The UTF-8 text of a frame, in a shared buffer: cloning it is a
/// reference-count increment, never a copy.
///
/// An event's `event` message is built once per topic and the same buffer
/// goes to every subscriber's queue and on to the socket:
/// [`into_bytes`](Self::into_bytes) hands it to a WebSocket library that
/// takes [`Bytes`] (axum's `Utf8Bytes::try_from(Bytes)`, tungstenite's)
/// without copying it per client.
///
/// ```
/// use larder_realtime::SharedText;
/// let text = SharedText::from(r#"{"type":"heartbeat","head":3}"#);
/// let copy = text.clone(); // same buffer
/// assert_eq!(copy.as_str(), text.as_str());
/// assert!(SharedText::try_from(bytes::Bytes::from_static(b"\xff")).is_err());
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SharedText(
    /// Always valid UTF-8: every constructor checks or starts from a `str`.
    Bytes,
);

impl SharedText {
    /// Text that lives for the whole program, without allocating.
    pub const fn from_static(text: &'static str) -> Self {
        Self(Bytes::from_static(text.as_bytes()))
    }

    /// The text. Checks the (always valid) UTF-8 again, since this crate
    /// forbids `unsafe`: linear, but with a fast path for ASCII; the delivery
    /// path never calls it.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("SharedText always holds UTF-8")
    }

    /// The UTF-8 bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The shared buffer, borrowed.
    pub(crate) fn as_bytes_shared(&self) -> &Bytes {
        &self.0
    }

    /// The shared buffer (valid UTF-8), for the WebSocket library.
    pub fn into_bytes(self) -> Bytes {
        self.0
    }
}

impl Deref for SharedText {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for SharedText {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<String> for SharedText {
    /// Takes the string's buffer over, without copying.
    fn from(text: String) -> Self {
        Self(Bytes::from(text))
    }
}

impl From<&str> for SharedText {
    fn from(text: &str) -> Self {
        Self(Bytes::copy_from_slice(text.as_bytes()))
    }
}

impl TryFrom<Bytes> for SharedText {
    type Error = Utf8Error;

    /// Checks that `bytes` are UTF-8; shares them without copying.
    fn try_from(bytes: Bytes) -> Result<Self, Self::Error> {
        std::str::from_utf8(&bytes)?;
        Ok(Self(bytes))
    }
}

impl PartialEq<str> for SharedText {
    fn eq(&self, other: &str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl PartialEq<&str> for SharedText {
    fn eq(&self, other: &&str) -> bool {
        self.0 == other.as_bytes()
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One WebSocket frame, independent of the WebSocket library.
///
/// The connection loop ([`serve_connection`](crate::serve_connection)) reads a
/// `Stream` of these and writes a `Sink` of these, so the server adapts its
/// socket type in a few lines and tests drive a connection with channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A UTF-8 text message: every protocol message is one JSON object.
    /// Event messages share one buffer among all their recipients.
    Text(SharedText),
    /// A binary message. The protocol has none: a connection that receives
    /// one closes with 1003 ([`close::UNSUPPORTED_DATA`]).
    Binary(Bytes),
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
    /// The peer broke the WebSocket protocol (e.g. an unmasked frame, a
    /// control frame over 125 bytes).
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The peer sent a binary message: every protocol message is text.
    pub const UNSUPPORTED_DATA: u16 = 1003;
    /// A text message was not valid UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A received frame or message was larger than `max_frame_bytes`.
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

/// Why the transport could not hand over the next inbound frame. The
/// connection closes with the code that fits (see
/// [`close_reason`](Self::close_reason)); a transport classifies its own
/// errors into these (the server maps tungstenite's).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// A frame or message larger than the limit: close 1009. A transport
    /// should refuse it on its header, before buffering the payload.
    #[error("message too big")]
    TooBig,
    /// A text message that is not valid UTF-8: close 1007.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// Another violation of the WebSocket protocol: close 1002.
    #[error("WebSocket protocol violation: {0}")]
    Protocol(String),
    /// The transport failed (reset, I/O error): the peer is gone, and the
    /// close (1000) is only recorded.
    #[error("transport failed: {0}")]
    Transport(String),
}

impl ReadError {
    /// The close code and reason for this error.
    pub fn close_reason(&self) -> CloseReason {
        match self {
            Self::TooBig => CloseReason::new(close::MESSAGE_TOO_BIG, "frame too big"),
            Self::InvalidUtf8 => CloseReason::new(close::INVALID_PAYLOAD, "invalid UTF-8"),
            Self::Protocol(_) => CloseReason::new(close::PROTOCOL_ERROR, "protocol error"),
            Self::Transport(_) => CloseReason::new(close::NORMAL, "transport error"),
        }
    }
}

/// A transport that cannot fail (channels in tests).
impl From<Infallible> for ReadError {
    fn from(never: Infallible) -> Self {
        match never {}
    }
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
