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

/// What [`WsClient::next_within`] saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// A protocol message.
    Frame(Value),
    /// Nothing within the time given.
    Silent,
    /// The connection ended.
    Ended,
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

    /// Opens `/ws` on the server at `address` (`http://host:port`).
    pub async fn connect_at(address: &str) -> Self {
        let url = format!("{}/ws", address.replacen("http", "ws", 1));
        let (socket, _) = connect_async(url).await.expect("websocket upgrade");
        Self { socket, next_id: 0 }
    }

    /// Opens `/ws` on the server at `address` (`http://host:port`) and
    /// authenticates; returns the client and the welcome.
    pub async fn authenticated_at(address: &str, token: &str) -> (Self, Value) {
        let url = format!("{}/ws", address.replacen("http", "ws", 1));
        let (socket, _) = connect_async(url).await.expect("websocket upgrade");
        let mut client = Self { socket, next_id: 0 };
        let welcome = client
            .request(json!({ "type": "auth", "token": token }))
            .await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        (client, welcome)
    }

    /// Like [`Self::authenticated_at`], for a server that may be down or
    /// shutting down: `None` when the upgrade or the authentication does not
    /// succeed within `within`.
    pub async fn try_authenticated_at(
        address: &str,
        token: &str,
        within: Duration,
    ) -> Option<Self> {
        let url = format!("{}/ws", address.replacen("http", "ws", 1));
        let (socket, _) = tokio::time::timeout(within, connect_async(url))
            .await
            .ok()?
            .ok()?;
        let mut client = Self { socket, next_id: 0 };
        let (welcome, _) = client
            .try_request(json!({ "type": "auth", "token": token }), within)
            .await?;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        Some(client)
    }

    /// Sends a message and waits up to `within` for the reply with the same
    /// id; returns it and the frames that arrived before it, or `None` when
    /// the connection ended or stayed silent.
    pub async fn try_request(
        &mut self,
        message: Value,
        within: Duration,
    ) -> Option<(Value, Vec<Value>)> {
        self.next_id += 1;
        let id = self.next_id.to_string();
        let mut message = message;
        message["id"] = json!(id);
        self.socket
            .send(Message::text(message.to_string()))
            .await
            .ok()?;
        let deadline = tokio::time::Instant::now() + within;
        let mut before = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.next_within(left).await {
                Next::Frame(frame) if frame["id"] == json!(id) => return Some((frame, before)),
                Next::Frame(frame) => before.push(frame),
                Next::Silent | Next::Ended => return None,
            }
        }
    }

    /// The next protocol message within `within`; or that the connection
    /// ended (closed, reset, its server killed), or stayed silent.
    pub async fn next_within(&mut self, within: Duration) -> Next {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await {
                Err(_) => return Next::Silent,
                Ok(Some(Ok(Message::Text(text)))) => {
                    let value: Value = serde_json::from_str(&text).expect("server frames are JSON");
                    if value["type"] != "heartbeat" {
                        return Next::Frame(value);
                    }
                }
                Ok(Some(Ok(Message::Close(_)))) | Ok(Some(Err(_))) | Ok(None) => {
                    return Next::Ended;
                }
                Ok(Some(Ok(_))) => {}
            }
        }
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

    /// Sends a message and waits for its reply; returns the reply and the
    /// other messages that arrived before it (heartbeats left out).
    pub async fn request_collect(&mut self, message: Value) -> (Value, Vec<Value>) {
        let id = self.send(message).await;
        let mut before = Vec::new();
        loop {
            let frame = self.next().await;
            if frame["id"] == json!(id) {
                return (frame, before);
            }
            before.push(frame);
        }
    }

    /// Sends a WebSocket Ping frame.
    pub async fn send_ping(&mut self) {
        self.socket
            .send(Message::Ping(Vec::new().into()))
            .await
            .expect("send ping");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.socket
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("send binary");
    }

    /// Closes politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

/// WebSocket opcodes, for [`RawWs`].
pub mod opcode {
    pub const TEXT: u8 = 0x1;
    pub const BINARY: u8 = 0x2;
    pub const CLOSE: u8 = 0x8;
    pub const PING: u8 = 0x9;
}

/// A WebSocket client written by hand over TCP, for what a WebSocket
/// library will not do: send a frame header that declares more than it
/// sends, invalid UTF-8 in a text frame, or never answer a Ping (the server
/// must see silence). It reads exactly the bytes it needs, so nothing is
/// buffered out of its sight.
#[allow(missing_debug_implementations)]
pub struct RawWs {
    stream: tokio::net::TcpStream,
}

impl RawWs {
    /// Opens `/ws{query}` with a hand-written upgrade request.
    pub async fn connect(app: &TestApp, query: &str) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let host = app.address.trim_start_matches("http://").to_owned();
        let mut stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("tcp connect");
        let request = format!(
            "GET /ws{query} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .expect("send upgrade");
        // Byte by byte up to the blank line: not one byte of the first
        // frames is read along with the response.
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = tokio::time::timeout(FRAME_TIMEOUT, stream.read_u8())
                .await
                .expect("an upgrade response in time")
                .expect("an upgrade response");
            head.push(byte);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        Self { stream }
    }

    /// Writes a masked client frame: `opcode`, and `payload`, under a header
    /// that declares `declared` bytes (normally `payload.len()`).
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8], declared: u64) {
        use tokio::io::AsyncWriteExt;
        let mut frame = vec![0x80 | opcode];
        match declared {
            0..=125 => frame.push(0x80 | declared as u8),
            126..=0xFFFF => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(declared as u16).to_be_bytes());
            }
            _ => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&declared.to_be_bytes());
            }
        }
        let mask = [0x12, 0x34, 0x56, 0x78];
        frame.extend_from_slice(&mask);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).await.expect("send frame");
    }

    /// Writes bytes as they are (e.g. a frame that breaks the protocol).
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt;
        self.stream.write_all(bytes).await.expect("send bytes");
    }

    /// Sends a whole frame.
    pub async fn send(&mut self, opcode: u8, payload: &[u8]) {
        self.send_frame(opcode, payload, payload.len() as u64).await;
    }

    /// The next frame from the server (opcode, payload); `None` at the end
    /// of the stream.
    pub async fn next_frame(&mut self) -> Option<(u8, Vec<u8>)> {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 2];
        if self.stream.read_exact(&mut head).await.is_err() {
            return None;
        }
        let len = match head[1] & 0x7F {
            126 => u64::from(self.stream.read_u16().await.ok()?),
            127 => self.stream.read_u64().await.ok()?,
            n => u64::from(n),
        };
        let mut payload = vec![0; usize::try_from(len).ok()?];
        self.stream.read_exact(&mut payload).await.ok()?;
        Some((head[0] & 0x0F, payload))
    }

    /// Reads until the server closes: the close code (`None` if the stream
    /// ended without a close frame) and the text frames on the way.
    pub async fn until_closed(&mut self, within: Duration) -> (Option<u16>, Vec<Value>) {
        let deadline = tokio::time::Instant::now() + within;
        let mut texts = Vec::new();
        loop {
            let frame = tokio::time::timeout_at(deadline, self.next_frame())
                .await
                .expect("the server closed in time");
            match frame {
                None => return (None, texts),
                Some((opcode::CLOSE, payload)) => {
                    let code =
                        (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return (code, texts);
                }
                Some((opcode::TEXT, payload)) => {
                    texts.push(serde_json::from_slice(&payload).unwrap_or(Value::Null));
                }
                Some(_) => {}
            }
        }
    }
}
