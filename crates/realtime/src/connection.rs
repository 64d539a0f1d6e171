//! One WebSocket connection: the receive loop, the send loop, and cleanup in
//! one place.
//!
//! The loop is written over a `Stream` of [`Frame`]s and a `Sink` of them,
//! so the server adapts its socket in a few lines and tests drive it with
//! channels. Two halves run together (`tokio::join!`): the reader handles
//! requests and timers and queues replies; the writer drains the bounded
//! outbound queue into the sink. Either half ending stops the other through
//! the connection's close signal, and the writer always finishes with a
//! close frame (see the `writer` module). Subscriptions and presence are
//! released as soon as the reader ends, even while the writer still tries
//! to get a slow consumer's close frame through. The requests the reader
//! answers (auth, subscribe, refresh, presence...) are in `requests`.

mod requests;

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_core::Stream;
use futures_util::{Sink, SinkExt, StreamExt};
use tokio::sync::mpsc;
use tokio::time::{Instant, MissedTickBehavior, sleep_until};
use tracing::Instrument;

use crate::frame::{CloseReason, ReadError, close};
use crate::hub::{ConnSignal, Outbound, Subscriber, reconnect_delay};
use crate::metrics as m;
use crate::outlet::{Outlet, Queue, RawSocket};
use crate::protocol::{ErrorCode, Resume, ServerMessage};
use crate::rate::{RateLimiter, Verdict};
use crate::writer::{CloseTimeouts, closed, outlet_loop, write_loop};
use crate::{ConnectionPermit, Frame, Hub, Identity, RealtimeConfig, UserPermit};

/// Who is on the other end of a connection.
#[derive(Debug)]
pub struct ConnectionContext {
    /// The client address, for the per-address connection limit and logs.
    pub peer_ip: IpAddr,
    /// Set when the server authenticated the upgrade request (e.g. from
    /// `?access_token=`): the connection starts with `welcome`, no `auth`.
    pub pre_auth: Option<Identity>,
    /// The slot taken with [`Hub::try_register`] before the upgrade; when
    /// `None`, [`serve_connection`] takes one and closes with 4029 if the
    /// address has too many connections.
    pub permit: Option<ConnectionPermit>,
    /// The user's place taken with [`Hub::try_admit_user`] before the
    /// upgrade (with `pre_auth`); when `None`, the connection takes one as
    /// it authenticates and closes with 4029 if the user has too many.
    pub user_permit: Option<UserPermit>,
}

impl ConnectionContext {
    /// A connection from `peer_ip`, not yet authenticated, without a permit.
    pub fn new(peer_ip: IpAddr) -> Self {
        Self {
            peer_ip,
            pre_auth: None,
            permit: None,
            user_permit: None,
        }
    }

    /// Starts the connection authenticated as `identity`.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.pre_auth = Some(identity);
        self
    }

    /// Uses a permit taken before the upgrade.
    pub fn with_permit(mut self, permit: ConnectionPermit) -> Self {
        self.permit = Some(permit);
        self
    }

    /// Uses the user's place taken before the upgrade.
    pub fn with_user_permit(mut self, permit: UserPermit) -> Self {
        self.user_permit = Some(permit);
        self
    }
}

/// Serves one WebSocket connection until it closes, and returns why it
/// closed. `frames_in` ends when the peer goes away, or yields an error the
/// transport classified as a [`ReadError`] (too big: 1009, invalid UTF-8:
/// 1007, protocol violation: 1002); `frames_out` receives every frame the
/// server sends, ending with a close frame.
///
/// Every bound of [`RealtimeConfig`] is enforced here: frame size (1009),
/// rate (warning, then 4008; every inbound frame counts, pings included),
/// subscriptions, presence, outbound queue (4009), heartbeat (4000), auth
/// timeout (4001), token expiry (4003), shutdown (1001). A binary frame
/// closes with 1003.
pub async fn serve_connection<I, O, E>(
    hub: Hub,
    frames_in: I,
    mut frames_out: O,
    context: ConnectionContext,
) -> CloseReason
where
    I: Stream<Item = Result<Frame, E>> + Unpin + Send,
    E: Into<ReadError>,
    O: Sink<Frame> + Unpin + Send,
    O::Error: fmt::Display,
{
    let ConnectionContext {
        peer_ip,
        pre_auth,
        permit,
        user_permit,
    } = context;
    let permit = match take_permit(&hub, permit, peer_ip) {
        Ok(permit) => permit,
        Err(reason) => {
            let frame = Frame::close(reason.code, reason.reason);
            let within = hub.config().close_timeout;
            let _ = tokio::time::timeout(within, frames_out.send(frame)).await;
            return reason;
        }
    };
    let (tx, rx) = mpsc::channel(hub.config().outbound_queue.max(1));
    serve(
        hub,
        frames_in,
        (peer_ip, pre_auth, permit, user_permit),
        Queue::Channel(tx),
        |signal, timeouts| write_loop(frames_out, rx, signal, timeouts),
    )
    .await
}

/// Serves one WebSocket connection whose frames the server reads
/// (`frames_in`, as for [`serve_connection`]) but whose socket the hub
/// writes itself: event frames go from the broadcaster into `socket` with a
/// non-blocking write, without a queue or a wake-up per delivery, and only
/// what the socket does not take at once waits for the connection's writer.
/// The connection answers pings itself, so the transport reading
/// `frames_in` must not write to the socket (its pongs and close replies
/// are dropped). Guarantees and bounds are those of [`serve_connection`].
pub async fn serve_socket<I, E>(
    hub: Hub,
    frames_in: I,
    socket: Arc<dyn RawSocket>,
    context: ConnectionContext,
) -> CloseReason
where
    I: Stream<Item = Result<Frame, E>> + Unpin + Send,
    E: Into<ReadError>,
{
    let outlet = Outlet::new(socket, hub.config().outbound_queue);
    let ConnectionContext {
        peer_ip,
        pre_auth,
        permit,
        user_permit,
    } = context;
    let permit = match take_permit(&hub, permit, peer_ip) {
        Ok(permit) => permit,
        Err(reason) => {
            outlet.seal(&reason);
            let _ = tokio::time::timeout(hub.config().close_timeout, outlet.flush()).await;
            return reason;
        }
    };
    serve(
        hub,
        frames_in,
        (peer_ip, pre_auth, permit, user_permit),
        Queue::Direct(outlet.clone()),
        |signal, timeouts| outlet_loop(outlet, signal, timeouts),
    )
    .await
}

/// The context's permit, or one taken now; the close reason when the
/// address has too many connections.
fn take_permit(
    hub: &Hub,
    permit: Option<ConnectionPermit>,
    peer_ip: IpAddr,
) -> Result<ConnectionPermit, CloseReason> {
    if let Some(permit) = permit {
        return Ok(permit);
    }
    hub.try_register(peer_ip).map_err(|error| {
        tracing::info!(%error, "refusing connection");
        CloseReason::new(close::TOO_MANY_CONNECTIONS, "too many connections")
    })
}

/// The connection proper, once it holds its permit: the reader half
/// (`Connection`) and the writer half `writer` makes, joined in one task.
async fn serve<I, E, W, F>(
    hub: Hub,
    frames_in: I,
    (peer_ip, pre_auth, permit, user_permit): (
        IpAddr,
        Option<Identity>,
        ConnectionPermit,
        Option<UserPermit>,
    ),
    tx: Queue,
    writer: W,
) -> CloseReason
where
    I: Stream<Item = Result<Frame, E>> + Unpin + Send,
    E: Into<ReadError>,
    W: FnOnce(Arc<ConnSignal>, CloseTimeouts) -> F,
    F: Future<Output = ()>,
{
    let config = hub.config().clone();
    let id = hub.next_id();
    let signal = ConnSignal::new();
    hub.connection_opened();
    let span = tracing::debug_span!("ws", connection = id, peer = %peer_ip);

    let timeouts = CloseTimeouts {
        flush: config.close_timeout,
        slow_consumer: config.slow_consumer_close_timeout,
    };
    let mut connection = Connection {
        hub: hub.clone(),
        id,
        limiter: RateLimiter::new(config.rate_per_sec, config.rate_burst, Instant::now()),
        config,
        identity: None,
        user_permit,
        expiry: Instant::now(),
        subs: HashMap::new(),
        present: BTreeSet::new(),
        tx,
        signal: signal.clone(),
    };
    let writer = writer(signal.clone(), timeouts);
    // Both halves are built inside the joined future, so an idle
    // connection's task holds each of them once.
    async {
        tracing::debug!("connection opened");
        tokio::join!(
            async {
                connection.run(frames_in, pre_auth).await;
                connection.release();
            },
            writer,
        );
    }
    .instrument(span.clone())
    .await;
    hub.connection_closed();
    drop(permit);
    let reason = signal
        .close
        .borrow()
        .clone()
        .unwrap_or(CloseReason::new(close::NORMAL, "closed"));
    span.in_scope(|| {
        tracing::debug!(
            code = reason.code,
            reason = reason.reason,
            "connection closed"
        )
    });
    reason
}

/// Counts how a subscription started.
pub(crate) fn count_resume(resume: Resume) {
    metrics::counter!(m::RESUME, "outcome" => resume.as_str()).increment(1);
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The instant a token expiring at `expires_at` (unix seconds) runs out.
fn expiry_instant(expires_at: u64) -> Instant {
    let left = expires_at.saturating_sub(unix_now());
    // Far-future expiries (tests, service tokens) are capped at ten years.
    Instant::now() + Duration::from_secs(left.min(10 * 365 * 24 * 3600))
}

/// The reader half's state.
struct Connection {
    hub: Hub,
    id: u64,
    config: RealtimeConfig,
    limiter: RateLimiter,
    identity: Option<Arc<Identity>>,
    /// The user's place under the per-user connection limit, taken as the
    /// connection authenticates (or before the upgrade).
    user_permit: Option<UserPermit>,
    /// When the current token expires (valid once `identity` is set).
    expiry: Instant,
    /// Canonical topic string → subscription.
    subs: HashMap<String, Arc<Subscriber>>,
    /// Stores this connection announced presence in.
    present: BTreeSet<String>,
    tx: Queue,
    signal: Arc<ConnSignal>,
}

impl Connection {
    async fn run<I, E>(&mut self, mut frames_in: I, pre_auth: Option<Identity>)
    where
        I: Stream<Item = Result<Frame, E>> + Unpin + Send,
        E: Into<ReadError>,
    {
        let mut closing = self.signal.close.subscribe();
        let mut shutdown = self.hub.shutdown_signal();
        let interval = self.config.heartbeat_interval;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let auth_deadline = Instant::now() + self.config.auth_timeout;
        let mut last_seen = Instant::now();
        if let Some(identity) = pre_auth {
            self.welcome(None, identity);
        }
        loop {
            let authenticated = self.identity.is_some();
            tokio::select! {
                biased;
                _ = closed(&mut closing) => break,
                window = async { shutdown.wait_for(Option::is_some).await.ok().and_then(|w| *w) } => {
                    let window = window.unwrap_or_default();
                    self.send(ServerMessage::Reconnect {
                        delay_ms: reconnect_delay(self.id, window),
                        reason: "shutdown".into(),
                    });
                    self.close(close::GOING_AWAY, "server shutting down");
                }
                _ = sleep_until(auth_deadline), if !authenticated => {
                    self.close(close::AUTH_TIMEOUT, "authentication timeout");
                }
                _ = sleep_until(self.expiry), if authenticated => {
                    self.close(close::TOKEN_EXPIRED, "token expired");
                }
                _ = sleep_until(last_seen + interval * 2) => {
                    self.close(close::HEARTBEAT_TIMEOUT, "heartbeat timeout");
                }
                _ = heartbeat.tick() => {
                    self.send(ServerMessage::Heartbeat { head: self.hub.position() });
                    self.enqueue(Outbound::Ping);
                }
                frame = frames_in.next() => match frame {
                    None => self.close(close::NORMAL, "peer went away"),
                    Some(Err(error)) => {
                        // The transport read no further (it refused the
                        // frame on its header, or failed), but it can still
                        // send the close frame saying why.
                        let error: ReadError = error.into();
                        tracing::debug!(%error, "inbound frame refused");
                        let reason = error.close_reason();
                        self.close(reason.code, reason.reason);
                    }
                    Some(Ok(frame)) => {
                        last_seen = Instant::now();
                        self.on_frame(frame).await;
                    }
                },
            }
        }
    }

    /// Asks both halves to close with `code`.
    fn close(&self, code: u16, reason: &'static str) {
        self.signal.close(CloseReason::new(code, reason));
    }

    /// Queues a frame without waiting; a full queue means the peer is not
    /// reading: close it as a slow consumer rather than buffer without bound.
    fn enqueue(&self, item: Outbound) {
        if !self.tx.try_send(item) {
            metrics::counter!(m::DROPPED).increment(1);
            if self
                .signal
                .close(CloseReason::new(close::SLOW_CONSUMER, "slow consumer"))
            {
                metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
            }
        }
    }

    fn send(&self, message: ServerMessage) {
        self.enqueue(Outbound::Text(message.to_json()));
    }

    /// Queues a frame, waiting for space (a replay may fill the queue) up to
    /// one heartbeat interval; false (and a slow-consumer close) otherwise.
    async fn send_waiting(&self, item: Outbound) -> bool {
        let wait = self.config.heartbeat_interval;
        if self.tx.send_timeout(item, wait).await.is_ok() {
            return true;
        }
        metrics::counter!(m::DROPPED).increment(1);
        if self
            .signal
            .close(CloseReason::new(close::SLOW_CONSUMER, "slow consumer"))
        {
            metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
        }
        false
    }

    fn error(&self, id: Option<String>, code: ErrorCode, message: impl Into<String>) {
        self.send(ServerMessage::error(id, code, message));
    }

    async fn on_frame(&mut self, frame: Frame) {
        let size = match &frame {
            Frame::Text(text) => text.len(),
            Frame::Binary(bytes) => bytes.len(),
            Frame::Ping(payload) | Frame::Pong(payload) => payload.len(),
            Frame::Close(_) => {
                self.close(close::NORMAL, "closed by peer");
                return;
            }
        };
        if size > self.config.max_frame_bytes {
            self.close(close::MESSAGE_TOO_BIG, "frame too big");
            return;
        }
        if let Frame::Binary(_) = frame {
            self.close(close::UNSUPPORTED_DATA, "binary frames are not supported");
            return;
        }
        // On a raw socket the connection is the WebSocket layer: it answers
        // every ping (under the frame size limit, 125 bytes for a valid one).
        if let Frame::Ping(payload) = &frame {
            if self.tx.answers_pings() {
                self.enqueue(Outbound::Pong(bytes::Bytes::copy_from_slice(payload)));
            }
        }
        // Every frame counts against the rate, pings and pongs too: the
        // WebSocket layer answers each ping, so a ping flood costs as much
        // as a message flood.
        match self.limiter.check(Instant::now()) {
            // Requests are rare next to deliveries: their (large) futures
            // live on the heap while they run, not in every idle connection.
            // Pongs prove liveness (already noted); pings are answered by the
            // WebSocket layer.
            Verdict::Allow => {
                if let Frame::Text(text) = frame {
                    Box::pin(self.on_text(text.as_str())).await;
                }
            }
            Verdict::Warn => self.send(ServerMessage::Warning {
                code: "rate_limited".into(),
                message: format!(
                    "more than {} frames per second: frames are being dropped; keep it up and the connection closes (4008)",
                    self.config.rate_per_sec
                ),
            }),
            Verdict::Drop => {}
            Verdict::Close => self.close(close::RATE_LIMITED, "rate limited"),
        }
    }

    /// Everything a connection holds in the hub is released here, whatever
    /// ended it.
    fn release(&mut self) {
        self.user_permit = None;
        for (_, sub) in self.subs.drain() {
            self.hub.unregister(&sub);
        }
        if let Some(identity) = &self.identity {
            for store in std::mem::take(&mut self.present) {
                self.hub
                    .presence_leave(&identity.tenant, &store, &identity.user);
            }
        }
    }
}
