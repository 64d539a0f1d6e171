//! A subscription that survives reconnects.
//!
//! One task owns the connection. It remembers, per topic, the position of
//! the last event it handed to the reader, and after any drop (network,
//! server restart, slow-consumer close, token refresh) it connects again
//! after a jittered backoff and subscribes with `since` = that position.
//! The server replays exactly the events after it from the event log;
//! anything at or below it that arrives anyway is dropped here. So the
//! reader sees each event of each topic once, in position order.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use crate::client::Client;
use crate::connection::{Connection, Ended};
use crate::error::Error;
use crate::protocol::{ClientMessage, Event, Resume, ServerFrame, Welcome};

/// What a subscription delivers.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Update {
    /// An event of one of the topics, after every earlier one of that topic.
    Event(TopicEvent),
    /// The server could not resume a topic from its position (it was more
    /// than the server's replay bound behind, or from another deployment):
    /// events were skipped. Read the state again (REST), then go on; events
    /// after `position` follow.
    Reset { topic: String, position: u64 },
}

/// An event as delivered on one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicEvent {
    /// The subscription's topic it came on. An event that matches two of
    /// the topics comes once on each (dedupe by `position` if they overlap).
    pub topic: String,
    /// Its global position: gap-free, increasing in commit order.
    pub position: u64,
    pub event: Event,
}

/// Where the subscription's connection stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Status {
    /// Connected and subscribed to every topic (resumed after a reconnect).
    Connected { connection_id: String },
    /// Waiting `delay` before attempt `attempt` (1 for the first retry).
    Reconnecting { attempt: u32, delay: Duration },
    /// Ended: closed by the reader, or a permanent error.
    Closed,
}

/// Counters of one subscription.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Events handed to the reader.
    pub delivered: u64,
    /// Events dropped because their position was not after the last one
    /// delivered on their topic (0 against a correct server).
    pub duplicates: u64,
    /// Connections that were up and dropped.
    pub reconnects: u64,
}

#[derive(Debug, Default)]
struct Counters {
    delivered: AtomicU64,
    duplicates: AtomicU64,
    reconnects: AtomicU64,
}

/// A live subscription to some topics: a [`Stream`](futures_core::Stream) of
/// [`Update`]s that goes on across reconnects. It ends with an `Err` item
/// when it cannot go on (the token or a topic was refused, or reconnecting
/// gave up), and when dropped or [closed](Subscription::close).
pub struct Subscription {
    updates: mpsc::Receiver<Result<Update, Error>>,
    positions: Arc<Mutex<HashMap<String, Option<u64>>>>,
    counters: Arc<Counters>,
    status: watch::Receiver<Status>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("positions", &self.positions())
            .field("status", &*self.status.borrow())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Subscribes to `topics` (docs/protocol.md, "Topics"), resuming after
    /// `since` (typically the `position` of the REST read the caller built
    /// its state from; `None`: live from now).
    ///
    /// Returns once the first connection is up and every topic is
    /// subscribed, or the first connection's error (an unreachable server,
    /// a refused token or topic): a misconfiguration fails at once. Later
    /// drops are handled inside: the subscription reconnects with a
    /// jittered exponential backoff (or after the delay a shutting-down
    /// server asked for) and resumes each topic from its last position.
    pub async fn subscribe<I, T>(
        &self,
        topics: I,
        since: Option<u64>,
    ) -> Result<Subscription, Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        topics.dedup();
        if topics.is_empty() {
            return Err(Error::Refused {
                code: "invalid_topic".into(),
                message: "subscribe to at least one topic".into(),
            });
        }
        let positions = Arc::new(Mutex::new(
            topics
                .iter()
                .map(|t| (t.clone(), since))
                .collect::<HashMap<_, _>>(),
        ));
        let counters = Arc::new(Counters::default());
        let (status_tx, status) = watch::channel(Status::Reconnecting {
            attempt: 0,
            delay: Duration::ZERO,
        });
        let (updates_tx, updates) = mpsc::channel(self.inner.buffer);
        let (stop_tx, stop) = oneshot::channel();
        let (ready_tx, ready) = oneshot::channel();
        let worker = Worker {
            client: self.clone(),
            topics,
            positions: positions.clone(),
            counters: counters.clone(),
            status: status_tx,
            updates: updates_tx,
            ready: Some(ready_tx),
        };
        let task = tokio::spawn(worker.run(stop));
        match ready.await {
            Ok(Ok(())) => Ok(Subscription {
                updates,
                positions,
                counters,
                status,
                stop: Some(stop_tx),
                task: Some(task),
            }),
            Ok(Err(error)) => Err(error),
            Err(_) => Err(Error::Connection("the subscription task ended".into())),
        }
    }
}

impl Subscription {
    /// The next update; `None` once the subscription ended.
    pub async fn recv(&mut self) -> Option<Result<Update, Error>> {
        self.updates.recv().await
    }

    /// The position of the last event delivered (or reset to) per topic;
    /// `None` for a topic that has had nothing yet and started without `since`.
    pub fn positions(&self) -> HashMap<String, Option<u64>> {
        self.positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Counters: delivered, duplicates dropped, reconnects.
    pub fn stats(&self) -> Stats {
        Stats {
            delivered: self.counters.delivered.load(Ordering::Relaxed),
            duplicates: self.counters.duplicates.load(Ordering::Relaxed),
            reconnects: self.counters.reconnects.load(Ordering::Relaxed),
        }
    }

    /// Where the connection stands; `changed()` on it waits for the next change.
    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Closes the connection politely and waits for the task to end.
    pub async fn close(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl futures_core::Stream for Subscription {
    type Item = Result<Update, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.updates.poll_recv(cx)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        // Dropping `stop` ends the task, which closes the socket.
        self.stop.take();
    }
}

/// Why one connection's loop ended.
enum Outcome {
    /// The reader is gone or closed the subscription.
    Stop,
    /// A permanent error: report it and end.
    Fail(Error),
    /// The connection dropped; `delay` is the server's reconnect delay, if
    /// it asked for one. `was_up` says whether it had been subscribed.
    Drop {
        ended: Ended,
        delay: Option<Duration>,
        was_up: bool,
    },
}

struct Worker {
    client: Client,
    topics: Vec<String>,
    positions: Arc<Mutex<HashMap<String, Option<u64>>>>,
    counters: Arc<Counters>,
    status: watch::Sender<Status>,
    updates: mpsc::Sender<Result<Update, Error>>,
    /// Answers `subscribe()` once the first connection is subscribed (or failed).
    ready: Option<oneshot::Sender<Result<(), Error>>>,
}

impl Worker {
    async fn run(mut self, mut stop: oneshot::Receiver<()>) {
        // Failed attempts in a row, for the backoff; reset once subscribed.
        let mut attempt: u32 = 0;
        // The token was refused once in a row: the next one is a refresh.
        let mut refresh = false;
        loop {
            let error = match self.connect_once(refresh, &mut stop).await {
                Outcome::Stop => break,
                Outcome::Fail(error) => error,
                Outcome::Drop {
                    ended,
                    delay,
                    was_up,
                } => {
                    if was_up {
                        self.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                        attempt = 0;
                        refresh = false;
                    }
                    if ended.is_auth() {
                        // "Get a new token; do not retry with the same one":
                        // once, at once; refused again is for the reader.
                        if refresh {
                            self.finish(Err(ended.into_error())).await;
                            break;
                        }
                        refresh = true;
                        continue;
                    }
                    refresh = false;
                    if self.ready.is_some() {
                        // The first connection fails fast, to the caller.
                        self.finish(Err(ended.into_error())).await;
                        break;
                    }
                    attempt += 1;
                    let max = self.client.inner.max_reconnect_attempts;
                    if let Some(max) = max.filter(|max| attempt > *max) {
                        let last = ended.into_error().to_string();
                        self.finish(Err(Error::GaveUp {
                            attempts: max,
                            last,
                        }))
                        .await;
                        break;
                    }
                    let delay =
                        delay.unwrap_or_else(|| self.client.inner.reconnect.delay(attempt - 1));
                    tracing::debug!(?ended, attempt, ?delay, "reconnecting");
                    self.status
                        .send_replace(Status::Reconnecting { attempt, delay });
                    tokio::select! {
                        _ = &mut stop => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    continue;
                }
            };
            self.finish(Err(error)).await;
            break;
        }
        self.status.send_replace(Status::Closed);
    }

    /// Reports the end: to `subscribe()` if it still waits, else in the stream.
    async fn finish(&mut self, result: Result<(), Error>) {
        match self.ready.take() {
            Some(ready) => {
                let _ = ready.send(result);
            }
            None => {
                if let Err(error) = result {
                    let _ = self.updates.send(Err(error)).await;
                }
            }
        }
    }

    /// One connection: open, subscribe every topic from its position, then
    /// deliver until it ends.
    async fn connect_once(&mut self, refresh: bool, stop: &mut oneshot::Receiver<()>) -> Outcome {
        let token = match self.client.token(refresh).await {
            Ok(token) => token,
            // The first time, a provider that cannot give a token is a
            // setup problem for the caller; later, it may be down for a
            // moment (an identity service restarting too): try again.
            Err(error) if self.ready.is_some() => return Outcome::Fail(error),
            Err(error) => {
                return Outcome::Drop {
                    ended: Ended::Dropped(error.to_string()),
                    delay: None,
                    was_up: false,
                };
            }
        };
        let inner = &self.client.inner;
        let opened = tokio::select! {
            _ = &mut *stop => return Outcome::Stop,
            opened = Connection::open(&inner.ws_url, &token, inner.connect_timeout) => opened,
        };
        let (mut connection, welcome) = match opened {
            Ok(opened) => opened,
            Err(ended) => {
                return Outcome::Drop {
                    ended,
                    delay: None,
                    was_up: false,
                };
            }
        };
        let outcome = self.pump(&mut connection, &welcome, stop).await;
        if matches!(outcome, Outcome::Stop) {
            connection.close().await;
        }
        outcome
    }

    /// Subscribes every topic, then reads frames until the connection ends.
    async fn pump(
        &mut self,
        connection: &mut Connection,
        welcome: &Welcome,
        stop: &mut oneshot::Receiver<()>,
    ) -> Outcome {
        let dropped = |ended, was_up| Outcome::Drop {
            ended,
            delay: None,
            was_up,
        };
        // Request id -> topic, until each `subscribed` arrives.
        let mut pending = HashMap::new();
        for topic in &self.topics {
            let since = self.position(topic);
            let id = connection.next_id();
            let message = ClientMessage::Subscribe {
                id: &id,
                topic,
                since,
            };
            if let Err(ended) = connection.send(&message).await {
                return dropped(ended, false);
            }
            pending.insert(id, topic.clone());
        }
        // Application pings keep the connection alive (the server closes
        // after two silent heartbeat intervals); a server silent for two
        // heartbeats and a bit is gone even if the socket looks open.
        let heartbeat = Duration::from_millis(welcome.heartbeat_ms.max(1000));
        let mut ping =
            tokio::time::interval_at(tokio::time::Instant::now() + heartbeat / 2, heartbeat / 2);
        let silence = heartbeat * 2 + Duration::from_secs(5);
        loop {
            let was_up = pending.is_empty() && self.ready.is_none();
            let frame = tokio::select! {
                _ = &mut *stop => return Outcome::Stop,
                _ = ping.tick() => {
                    let id = connection.next_id();
                    if let Err(ended) = connection.send(&ClientMessage::Ping { id: &id }).await {
                        return dropped(ended, was_up);
                    }
                    continue;
                }
                frame = tokio::time::timeout(silence, connection.recv()) => match frame {
                    Ok(Ok(frame)) => frame,
                    Ok(Err(ended)) => return dropped(ended, was_up),
                    Err(_) => {
                        let ended = Ended::Dropped(format!("nothing from the server for {silence:?}"));
                        return dropped(ended, was_up);
                    }
                },
            };
            match frame {
                ServerFrame::Event {
                    topic,
                    position,
                    event,
                } => {
                    if !self.deliver(topic, position, event).await {
                        return Outcome::Stop;
                    }
                }
                ServerFrame::Subscribed {
                    id,
                    topic,
                    resume,
                    position,
                } => {
                    let Some(topic_of) = id.and_then(|id| pending.remove(&id)) else {
                        continue;
                    };
                    debug_assert_eq!(topic_of, topic);
                    if !self.subscribed(topic, resume, position).await {
                        return Outcome::Stop;
                    }
                    if pending.is_empty() {
                        self.status.send_replace(Status::Connected {
                            connection_id: welcome.connection_id.clone(),
                        });
                        if let Some(ready) = self.ready.take() {
                            let _ = ready.send(Ok(()));
                        }
                    }
                }
                ServerFrame::Error { id, code, message } => {
                    if id.is_some_and(|id| pending.contains_key(&id)) {
                        // A topic refused (forbidden, invalid_topic, too
                        // many subscriptions): it will be refused again.
                        return Outcome::Fail(Error::Refused { code, message });
                    }
                    tracing::warn!(%code, %message, "error frame from the server");
                }
                ServerFrame::Reconnect { delay_ms } => {
                    return Outcome::Drop {
                        ended: Ended::Closed {
                            code: crate::protocol::close_code::GOING_AWAY,
                            reason: "the server asked to reconnect".into(),
                        },
                        delay: Some(Duration::from_millis(delay_ms)),
                        was_up,
                    };
                }
                ServerFrame::Welcome(_) | ServerFrame::Heartbeat {} | ServerFrame::Other => {}
            }
        }
    }

    fn position(&self, topic: &str) -> Option<u64> {
        self.positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .copied()
            .flatten()
    }

    fn set_position(&self, topic: &str, position: u64) {
        if let Some(slot) = self
            .positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(topic)
        {
            *slot = Some(position);
        }
    }

    /// A topic's `subscribed`: where it starts. False when the reader is gone.
    async fn subscribed(&mut self, topic: String, resume: Resume, position: u64) -> bool {
        match resume {
            Resume::Reset => {
                self.set_position(&topic, position);
                self.updates
                    .send(Ok(Update::Reset { topic, position }))
                    .await
                    .is_ok()
            }
            Resume::New if self.position(&topic).is_none() => {
                self.set_position(&topic, position);
                true
            }
            Resume::New | Resume::Recovered => true,
        }
    }

    /// Hands an event to the reader unless its topic already had it. The
    /// send waits while the reader's buffer is full: the socket is not read
    /// meanwhile, which is the backpressure, and nothing else (no resume)
    /// happens in this task until the event is in the buffer, so the
    /// position may move first. False when the reader is gone.
    async fn deliver(&mut self, topic: String, position: u64, event: Event) -> bool {
        let last = match self
            .positions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&topic)
        {
            Some(last) => *last,
            // Not one of ours (cannot happen on a connection of this task).
            None => return true,
        };
        if last.is_some_and(|last| position <= last) {
            self.counters.duplicates.fetch_add(1, Ordering::Relaxed);
            return true;
        }
        // Positions and counters first: whoever holds the event sees them
        // include it.
        self.set_position(&topic, position);
        self.counters.delivered.fetch_add(1, Ordering::Relaxed);
        let update = Update::Event(TopicEvent {
            topic,
            position,
            event,
        });
        self.updates.send(Ok(update)).await.is_ok()
    }
}
