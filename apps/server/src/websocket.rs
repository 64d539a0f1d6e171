//! The WebSocket transport of `/ws`: the upgrade handshake, and the socket
//! handed to the hub.
//!
//! The upgrade is answered here rather than by axum's `WebSocketUpgrade`,
//! to keep the TCP socket: once upgraded, tungstenite reads the client's
//! frames, but the hub writes the server's frames into the socket itself
//! ([`larder_realtime::serve_socket`]), a non-blocking write per delivery
//! instead of a queue, a task wake-up and a library's buffer. Should the
//! upgraded connection not be this server's own TCP socket (another accept
//! loop), tungstenite does both directions ([`larder_realtime::serve_connection`]).

use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use larder_realtime::{
    ConnectionContext, Frame, Hub, RawSocket, ReadError, RealtimeConfig, SharedText,
    serve_connection, serve_socket,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_tungstenite::WebSocketStream;
use tungstenite::Message;
use tungstenite::protocol::frame::CloseFrame;
use tungstenite::protocol::{Role, WebSocketConfig};

use crate::error::ApiError;
use crate::serve::Counted;

/// How long the read half keeps draining after the connection closed, so
/// the peer can answer the close: closing a socket with unread input makes
/// the kernel reset it, and the peer would lose the frames sent before the
/// close (an error frame, a warning, the reason).
const CLOSE_DRAIN: Duration = Duration::from_secs(2);

/// A WebSocket upgrade request (RFC 6455 §4.2.1), checked: `GET`,
/// `Connection: upgrade`, `Upgrade: websocket`, version 13 and a key.
#[derive(Debug)]
pub struct Upgrade {
    key: HeaderValue,
    on_upgrade: OnUpgrade,
}

fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

fn not_an_upgrade(message: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_upgrade", message)
}

impl<S: Send + Sync> FromRequestParts<S> for Upgrade {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        if parts.method != Method::GET {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "a WebSocket upgrade is a GET",
            ));
        }
        if !has_token(&parts.headers, header::CONNECTION, "upgrade")
            || !has_token(&parts.headers, header::UPGRADE, "websocket")
        {
            return Err(not_an_upgrade(
                "expected a WebSocket upgrade (Connection: upgrade, Upgrade: websocket)",
            ));
        }
        if parts.headers.get(header::SEC_WEBSOCKET_VERSION) != Some(&HeaderValue::from_static("13"))
        {
            return Err(not_an_upgrade("Sec-WebSocket-Version must be 13"));
        }
        let key = parts
            .headers
            .get(header::SEC_WEBSOCKET_KEY)
            .cloned()
            .ok_or_else(|| not_an_upgrade("Sec-WebSocket-Key is missing"))?;
        let on_upgrade = parts.extensions.remove::<OnUpgrade>().ok_or_else(|| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "not_upgradable",
                "this connection cannot be upgraded",
            )
        })?;
        Ok(Self { key, on_upgrade })
    }
}

/// The transport's bounds, from the hub's and the server's settings.
#[derive(Debug, Clone, Copy)]
pub struct Buffers {
    pub read: usize,
    pub write: usize,
}

impl Upgrade {
    /// Answers 101 and serves the connection on the upgraded socket.
    /// Extensions (permessage-deflate) and subprotocols are not offered.
    pub fn serve(self, hub: Hub, context: ConnectionContext, buffers: Buffers) -> Response {
        let accept = tungstenite::handshake::derive_accept_key(self.key.as_bytes());
        let on_upgrade = self.on_upgrade;
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => serve(hub, upgraded, context, buffers).await,
                Err(error) => tracing::debug!(%error, "WebSocket upgrade failed"),
            }
        });
        (
            StatusCode::SWITCHING_PROTOCOLS,
            [
                (header::CONNECTION, HeaderValue::from_static("upgrade")),
                (header::UPGRADE, HeaderValue::from_static("websocket")),
                (
                    header::SEC_WEBSOCKET_ACCEPT,
                    HeaderValue::from_str(&accept).unwrap_or(HeaderValue::from_static("")),
                ),
            ],
        )
            .into_response()
    }
}

/// The largest frame and message the transport reads: the hub's limit. A
/// larger one is refused on its header, before its payload is buffered, and
/// [`read_error`] turns that into close 1009.
fn transport_config(config: &RealtimeConfig, buffers: Buffers) -> WebSocketConfig {
    let max = config.max_frame_bytes.max(1);
    // Small buffers keep an idle connection cheap (the transport's defaults
    // are 128 KiB each); larger messages still fit, the read buffer grows.
    WebSocketConfig::default()
        .max_message_size(Some(max))
        .max_frame_size(Some(max))
        .read_buffer_size(buffers.read.max(64))
        .write_buffer_size(buffers.write)
}

/// Serves one upgraded connection; once it is over, the read half is
/// drained until the peer closes too, for at most [`CLOSE_DRAIN`]. After a
/// read error the stream has already ended (tokio-tungstenite fuses it), so
/// nothing more of a refused frame is read: a peer that sent more than the
/// limit may see the connection reset after the close frame.
async fn serve(
    hub: Hub,
    upgraded: hyper::upgrade::Upgraded,
    context: ConnectionContext,
    buffers: Buffers,
) {
    let config = transport_config(hub.config(), buffers);
    match upgraded.downcast::<TokioIo<Counted>>() {
        Ok(parts) => {
            let (stream, place) = parts.io.into_inner().into_parts();
            // Frames go out one by one as they happen: waiting for an
            // acknowledgement before sending the next small one (Nagle)
            // would hold a delivery up to the peer's delayed-ACK timer.
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "TCP_NODELAY not set");
            }
            let (read, write) = stream.into_split();
            let mut socket = WebSocketStream::from_partially_read(
                ReadOnly(read),
                parts.read_buf.to_vec(),
                Role::Server,
                Some(config),
            )
            .await;
            let frames_in = (&mut socket).map(|m| m.map(from_message).map_err(read_error));
            let reason =
                serve_socket(hub, frames_in, std::sync::Arc::new(Socket(write)), context).await;
            tracing::debug!(?reason, "websocket closed");
            drain(&mut socket).await;
            drop(place);
        }
        Err(upgraded) => {
            let socket = WebSocketStream::from_raw_socket(
                TokioIo::new(upgraded),
                Role::Server,
                Some(config),
            )
            .await;
            let (sink, mut stream) = socket.split();
            let frames_in = (&mut stream).map(|m| m.map(from_message).map_err(read_error));
            let frames_out = sink.with(|frame: Frame| {
                std::future::ready(Ok::<_, tungstenite::Error>(to_message(frame)))
            });
            let reason = serve_connection(hub, frames_in, frames_out, context).await;
            tracing::debug!(?reason, "websocket closed");
            drain(&mut stream).await;
        }
    }
}

async fn drain<S>(stream: &mut S)
where
    S: futures_util::Stream + Unpin,
{
    let drain = async { while stream.next().await.is_some() {} };
    let _ = tokio::time::timeout(CLOSE_DRAIN, drain).await;
}

/// The write half of a WebSocket's TCP socket, written by the hub.
struct Socket(OwnedWriteHalf);

impl RawSocket for Socket {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.as_ref().poll_write_ready(cx)
    }
}

/// The read half, for tungstenite to read frames from. What it writes (the
/// pongs and close replies it answers on its own) is dropped: the hub
/// writes every server frame, pongs and close frames included, in order
/// with the rest.
struct ReadOnly(OwnedReadHalf);

impl AsyncRead for ReadOnly {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for ReadOnly {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Classifies a tungstenite read error for the close code: too big 1009,
/// invalid UTF-8 1007, other protocol violations 1002. After such an error
/// the socket is still open for writing, so the close frame saying why
/// still goes out.
fn read_error(error: tungstenite::Error) -> ReadError {
    match error {
        tungstenite::Error::Capacity(_) => ReadError::TooBig,
        tungstenite::Error::Utf8(_) => ReadError::InvalidUtf8,
        // A peer that just went away is not a protocol violation.
        tungstenite::Error::Protocol(
            violation @ tungstenite::error::ProtocolError::ResetWithoutClosingHandshake,
        ) => ReadError::Transport(violation.to_string()),
        tungstenite::Error::Protocol(violation) => ReadError::Protocol(violation.to_string()),
        other => ReadError::Transport(other.to_string()),
    }
}

fn from_message(message: Message) -> Frame {
    match message {
        // tungstenite's text is checked UTF-8 already; the check here is cheap.
        Message::Text(text) => Frame::Text(
            SharedText::try_from(Bytes::from(text)).unwrap_or_else(|_| SharedText::default()),
        ),
        // The connection closes these with 1003: the protocol is text.
        Message::Binary(bytes) => Frame::Binary(bytes),
        Message::Ping(bytes) => Frame::Ping(bytes.to_vec()),
        Message::Pong(bytes) => Frame::Pong(bytes.to_vec()),
        Message::Close(frame) => {
            Frame::Close(frame.map(|f| (u16::from(f.code), f.reason.as_str().to_owned())))
        }
        // Never produced by a read.
        Message::Frame(_) => Frame::Pong(Vec::new()),
    }
}

/// Hands a frame to tungstenite. Text is shared, not copied.
fn to_message(frame: Frame) -> Message {
    match frame {
        Frame::Text(text) => {
            Message::Text(tungstenite::Utf8Bytes::try_from(text.into_bytes()).unwrap_or_default())
        }
        Frame::Binary(bytes) => Message::Binary(bytes),
        Frame::Ping(bytes) => Message::Ping(bytes.into()),
        Frame::Pong(bytes) => Message::Pong(bytes.into()),
        Frame::Close(frame) => Message::Close(frame.map(|(code, reason)| CloseFrame {
            code: code.into(),
            reason: reason.into(),
        })),
    }
}
