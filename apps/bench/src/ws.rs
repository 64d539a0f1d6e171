//! WebSocket clients: connect, authenticate, subscribe, then record the
//! position and arrival time of every event frame.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

/// What one client received since the log was last taken.
#[derive(Debug, Default)]
pub struct ClientLog {
    /// Event positions in arrival order, with their arrival time.
    pub events: Vec<(u64, Instant)>,
    /// The close code, if the server closed the connection.
    pub closed: Option<u16>,
    /// Frames the client could not read as an event, welcome, heartbeat...
    pub unexpected: u64,
}

/// One connected, subscribed client.
#[derive(Debug)]
pub struct Client {
    pub log: Arc<Mutex<ClientLog>>,
    task: JoinHandle<()>,
}

/// Counts every event frame any client received.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Connects to `/ws` with the token at upgrade, subscribes to `topic` and
/// returns once the server confirmed the subscription.
pub async fn connect(
    base: &str,
    token: &str,
    topic: &str,
    counter: Arc<Counter>,
    stop: watch::Receiver<bool>,
) -> Result<Client> {
    let url = format!("{}/ws?access_token={token}", base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("WebSocket upgrade")?;
    expect(&mut socket, "welcome").await?;
    let subscribe = format!(r#"{{"type":"subscribe","id":"s","topic":"{topic}"}}"#);
    socket.send(Message::text(subscribe)).await?;
    expect(&mut socket, "subscribed").await?;
    let log = Arc::new(Mutex::new(ClientLog::default()));
    let task = tokio::spawn(read(socket, log.clone(), counter, stop));
    Ok(Client { log, task })
}

/// Connects to a peer's `/ws` (no authentication, no subscribe message:
/// the location is the channel) and starts recording.
pub async fn connect_plain(
    base: &str,
    counter: Arc<Counter>,
    stop: watch::Receiver<bool>,
) -> Result<Client> {
    let url = format!("{}/ws", base.replacen("http", "ws", 1));
    let (socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .context("WebSocket upgrade")?;
    let log = Arc::new(Mutex::new(ClientLog::default()));
    let task = tokio::spawn(read(socket, log.clone(), counter, stop));
    Ok(Client { log, task })
}

async fn expect(socket: &mut Socket, kind: &str) -> Result<()> {
    let wanted = format!(r#""type":"{kind}""#);
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(30), socket.next())
            .await
            .with_context(|| format!("no {kind} within 30 s"))?;
        match frame {
            Some(Ok(Message::Text(text))) if text.contains(&wanted) => return Ok(()),
            Some(Ok(Message::Text(text))) if text.contains(r#""type":"error""#) => {
                bail!("server refused: {}", text.as_str())
            }
            Some(Ok(Message::Close(close))) => bail!("closed before {kind}: {close:?}"),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error.into()),
            None => bail!("connection ended before {kind}"),
        }
    }
}

/// The position of an `event` frame, read without parsing the JSON: the
/// server writes `{"type":"event","topic":...,"position":N,...}`.
pub fn event_position(text: &str) -> Option<u64> {
    if !text.starts_with(r#"{"type":"event","#) {
        return None;
    }
    let at = text.find(r#""position":"#)? + r#""position":"#.len();
    let digits = &text[at..];
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    digits[..end].parse().ok()
}

async fn read(
    mut socket: Socket,
    log: Arc<Mutex<ClientLog>>,
    counter: Arc<Counter>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let frame = tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            frame = socket.next() => frame,
        };
        let now = Instant::now();
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        match frame {
            Some(Ok(Message::Text(text))) => match event_position(&text) {
                Some(position) => {
                    log.events.push((position, now));
                    counter.0.fetch_add(1, Ordering::Relaxed);
                }
                None if text.starts_with(r#"{"type":"heartbeat""#) => {}
                None => log.unexpected += 1,
            },
            Some(Ok(Message::Close(close))) => {
                log.closed = Some(close.map_or(1005, |c| u16::from(c.code)));
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => {
                log.closed.get_or_insert(1006);
                break;
            }
        }
    }
    let _ = socket.close(None).await;
}

impl Client {
    /// Takes what the client received so far.
    pub fn take(&self) -> ClientLog {
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        ClientLog {
            events: std::mem::take(&mut log.events),
            closed: log.closed,
            unexpected: std::mem::take(&mut log.unexpected),
        }
    }

    /// Waits for the reader to finish (after the stop signal).
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// Opens `n` clients, `parallel` handshakes at a time; with a `token` and
/// `topic` on Larder, without on a peer.
pub async fn connect_many(
    n: usize,
    parallel: usize,
    base: &str,
    subscription: Option<(&str, &str)>,
    counter: &Arc<Counter>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    let mut pending = futures_util::stream::iter(0..n)
        .map(|_| async move {
            match subscription {
                Some((token, topic)) => {
                    connect(base, token, topic, counter.clone(), stop.clone()).await
                }
                None => connect_plain(base, counter.clone(), stop.clone()).await,
            }
        })
        .buffer_unordered(parallel.max(1));
    while let Some(client) = pending.next().await {
        clients.push(client.with_context(|| format!("client {} of {n}", clients.len() + 1))?);
    }
    Ok(clients)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_position_of_event_frames_only() {
        let frame = r#"{"type":"event","topic":"store:s","position":1234,"event":{"position":9}}"#;
        assert_eq!(event_position(frame), Some(1234));
        assert_eq!(event_position(r#"{"type":"heartbeat","head":5}"#), None);
        assert_eq!(
            event_position(r#"{"type":"event","topic":"x","position":"#),
            None
        );
    }
}
