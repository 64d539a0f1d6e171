//! One authenticated WebSocket connection to `/ws`: open it, send messages,
//! read the server's frames. No reconnects here; `subscription.rs` builds
//! them on top.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::Error;
use crate::protocol::{ClientMessage, ServerFrame, Welcome, close_code};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// The server sent a close frame with this code (1005 without one).
    Closed { code: u16, reason: String },
    /// The transport failed or ended without a close frame.
    Dropped(String),
}

impl Ended {
    /// The error a caller sees when this ends a connection for good.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Ended::Closed { code, reason } => match code {
                close_code::INVALID_TOKEN => Error::Unauthorized {
                    code: "invalid_token".into(),
                    message: reason,
                },
                close_code::TOKEN_EXPIRED => Error::Unauthorized {
                    code: "token_expired".into(),
                    message: reason,
                },
                _ => Error::Connection(format!("closed with {code}: {reason}")),
            },
            Ended::Dropped(reason) => Error::Connection(reason),
        }
    }

    /// Whether the server refused the token (get a new one before trying again).
    pub(crate) fn is_auth(&self) -> bool {
        matches!(
            self,
            Ended::Closed {
                code: close_code::INVALID_TOKEN | close_code::TOKEN_EXPIRED,
                ..
            }
        )
    }
}

/// An open, authenticated connection.
pub(crate) struct Connection {
    socket: Socket,
    next_id: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("next_id", &self.next_id)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Opens `ws_url`, authenticates with `token` (the first message, so
    /// the token stays out of URLs and their logs) and waits for `welcome`.
    /// The whole of it is bounded by `timeout`. A refused token ends as
    /// `Ended::Closed` with 4002 or 4003.
    pub(crate) async fn open(
        ws_url: &str,
        token: &str,
        timeout: Duration,
    ) -> Result<(Self, Welcome), Ended> {
        tokio::time::timeout(timeout, Self::open_unbounded(ws_url, token))
            .await
            .unwrap_or_else(|_| Err(Ended::Dropped(format!("no welcome within {timeout:?}"))))
    }

    async fn open_unbounded(ws_url: &str, token: &str) -> Result<(Self, Welcome), Ended> {
        let (socket, _) = tokio_tungstenite::connect_async(ws_url)
            .await
            .map_err(|error| match error {
                tungstenite::Error::Http(response) => Ended::Dropped(format!(
                    "the server answered the upgrade with {}",
                    response.status()
                )),
                other => Ended::Dropped(format!("cannot connect to {ws_url}: {other}")),
            })?;
        let mut connection = Self { socket, next_id: 0 };
        let id = connection.next_id();
        connection
            .send(&ClientMessage::Auth { id: &id, token })
            .await?;
        loop {
            match connection.recv().await? {
                ServerFrame::Welcome(welcome) => return Ok((connection, welcome)),
                // A refused token gets an error frame, then close 4002/4003:
                // read on to learn which.
                ServerFrame::Error { .. } | ServerFrame::Other | ServerFrame::Heartbeat {} => {}
                other => {
                    return Err(Ended::Dropped(format!("expected welcome, got {other:?}")));
                }
            }
        }
    }

    /// A fresh request id.
    pub(crate) fn next_id(&mut self) -> String {
        self.next_id += 1;
        self.next_id.to_string()
    }

    /// Sends one message.
    pub(crate) async fn send(&mut self, message: &ClientMessage<'_>) -> Result<(), Ended> {
        let text = serde_json::to_string(message)
            .map_err(|e| Ended::Dropped(format!("cannot encode a message: {e}")))?;
        self.socket
            .send(Message::text(text))
            .await
            .map_err(|e| Ended::Dropped(format!("cannot send: {e}")))
    }

    /// The next protocol frame. WebSocket Pings are answered by the socket
    /// as it reads; frames that are not JSON of the protocol are skipped
    /// (and logged), so a newer server cannot break the loop.
    pub(crate) async fn recv(&mut self) -> Result<ServerFrame, Ended> {
        loop {
            let message = match self.socket.next().await {
                Some(Ok(message)) => message,
                Some(Err(error)) => return Err(Ended::Dropped(error.to_string())),
                None => return Err(Ended::Dropped("the connection ended".into())),
            };
            match message {
                Message::Text(text) => match serde_json::from_str::<ServerFrame>(&text) {
                    Ok(frame) => return Ok(frame),
                    Err(error) => {
                        tracing::warn!(%error, frame = %text.as_str(), "unreadable frame from the server");
                    }
                },
                Message::Close(frame) => {
                    return Err(match frame {
                        Some(frame) => Ended::Closed {
                            code: frame.code.into(),
                            reason: frame.reason.to_string(),
                        },
                        None => Ended::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    });
                }
                _ => {}
            }
        }
    }

    /// Closes politely (best effort: the peer may be gone already).
    pub(crate) async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close(None)).await;
    }
}
