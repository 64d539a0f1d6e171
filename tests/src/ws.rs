//! A WebSocket test client speaking Larder's protocol (tokio-tungstenite).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

use crate::TestApp;

/// How long a test waits for one frame before failing.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection to `/ws`.
#[allow(missing_debug_implementations)]
pub struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>,
    next_id: u64,
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// A close frame with this code.
    Closed(u16),
    /// The stream ended without a close frame.
    Dropped,
}

impl WsClient {
    /// Opens `/ws` (optionally with a query string).
    pub async fn connect(app: &TestApp, query: &str) -> Self {
        let url = format!("{}/ws{query}", app.address.replacen("http", "ws", 1));
        let (socket, _) = connect_async(url).await.expect("websocket upgrade");
        Self { socket, next_id: 0 }
    }

    /// Connects and authenticates; returns the client and the welcome.
    pub async fn authenticated(app: &TestApp, token: &str) -> (Self, Value) {
        let mut client = Self::connect(app, "").await;
        let welcome = client
            .request(json!({ "type": "auth", "token": token }))
            .await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (client, welcome)
    }

    /// Connects with a tiny TCP receive buffer and authenticates: once the
    /// test stops reading, the server's writes back up almost at once (a
    /// slow consumer).
    pub async fn connect_with_small_buffer(app: &TestApp, token: &str) -> (Self, Value) {
        let address: std::net::SocketAddr =
            app.address.trim_start_matches("http://").parse().unwrap();
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let stream = socket.connect(address).await.unwrap();
        let url = format!("ws://{address}/ws");
        let (socket, _) = tokio_tungstenite::client_async(url, MaybeTlsStream::Plain(stream))
            .await
            .unwrap();
        let mut client = Self { socket, next_id: 0 };
        let welcome = client
            .request(json!({ "type": "auth", "token": token }))
            .await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (client, welcome)
    }

    /// Sends a raw text frame.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.socket
            .send(Message::text(text.into()))
            .await
            .expect("send");
    }

    /// Sends a message with a fresh `id`; returns the id.
    pub async fn send(&mut self, mut message: Value) -> String {
        self.next_id += 1;
        let id = self.next_id.to_string();
        message["id"] = json!(id);
        self.send_text(message.to_string()).await;
        id
    }

    /// Sends a message and waits for the reply with the same id (events and
    /// notifications that arrive meanwhile are kept out of the way).
    pub async fn request(&mut self, message: Value) -> Value {
        let id = self.send(message).await;
        loop {
            let frame = self.next().await;
            if frame["id"] == json!(id) {
                return frame;
            }
        }
    }

    /// Subscribes; returns the `subscribed` (or `error`) reply.
    pub async fn subscribe(&mut self, topic: &str, since: Option<u64>) -> Value {
        let mut message = json!({ "type": "subscribe", "topic": topic });
        if let Some(since) = since {
            message["since"] = json!(since);
        }
        self.request(message).await
    }

    /// Subscribes from the store's head, asserting the subscription
    /// resumed there: the events so far stay behind it even when the hub
    /// has not dispatched them yet (an HTTP answer does not wait for the
    /// hub, so a subscription without `since` may still see them live).
    pub async fn subscribe_from_head(&mut self, app: &crate::TestApp, topic: &str) -> Value {
        let head = app.store.head().await.expect("the store's head");
        let reply = self.subscribe(topic, Some(head)).await;
        assert_eq!(reply["resume"], "recovered", "{reply}");
        reply
    }

    /// The next protocol message, skipping heartbeats and WS control frames.
    pub async fn next(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(FRAME_TIMEOUT, self.socket.next())
                .await
                .expect("a frame within the timeout")
                .expect("the connection is open")
                .expect("a valid frame");
            match message {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    if value["type"] != "heartbeat" {
                        return value;
                    }
                }
                Message::Close(frame) => panic!("closed unexpectedly: {frame:?}"),
                _ => {}
            }
        }
    }

    /// The next `event` frame.
    pub async fn next_event(&mut self) -> Value {
        loop {
            let frame = self.next().await;
            if frame["type"] == "event" {
                return frame;
            }
        }
    }

    /// Reads until the connection ends; returns the close code. Text frames
    /// on the way are returned too.
    pub async fn until_closed(&mut self, within: Duration) -> (Ended, Vec<Value>) {
        let mut seen = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .expect("the server closed in time");
            match next {
                Some(Ok(Message::Close(Some(CloseFrame { code, .. })))) => {
                    return (Ended::Closed(code.into()), seen);
                }
                Some(Ok(Message::Close(None))) | None | Some(Err(_)) => {
                    return (Ended::Dropped, seen);
                }
                Some(Ok(Message::Text(text))) => {
                    seen.push(serde_json::from_str(&text).unwrap_or(Value::Null))
                }
                Some(Ok(_)) => {}
            }
        }
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}
