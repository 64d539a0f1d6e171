//! Writing straight into a connection's socket. The broadcaster hands an
//! event frame to the socket itself with a non-blocking write: no queue, no
//! task wake-up, no copy (the frame's shared buffer goes to the kernel
//! behind a header of 2 to 10 bytes). Only what the socket does not take at
//! once is queued, in order, and the connection's writer finishes it when
//! the socket is writable again; while anything is queued, later frames
//! queue behind it, so the order on the wire is the order of the calls. A
//! queue that reaches its bound means the peer is not reading: the caller
//! closes it as a slow consumer, as with the channel path (`writer`).
//!
//! The broadcaster routes the events it finds waiting as one batch: it
//! *corks* each socket it reaches ([`Outlet::push_corked`]), queueing the
//! batch's frames, and writes each socket once at the end of the batch
//! ([`Corked`]), so a socket gets one `writev` per batch, not per event.
//! An idle broadcaster routes one event at a time; one that falls behind
//! takes bigger batches and spends less per delivery, so it catches up.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::sync::{Notify, mpsc};

use crate::frame::{CloseReason, SharedText};
use crate::hub::Outbound;
use crate::writer::WriterMetrics;

/// A socket written without waiting: what a server hands
/// [`serve_socket`](crate::serve_socket) for the write half of a WebSocket
/// connection (a `tokio::net::tcp::OwnedWriteHalf`, typically).
pub trait RawSocket: Send + Sync + 'static {
    /// Writes what the socket takes now, like `writev(2)` on a
    /// non-blocking socket: the bytes written, or `WouldBlock` when none.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// Ready once the socket may take more after a `WouldBlock`.
    fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;
}

/// WebSocket opcodes the server sends.
const TEXT: u8 = 0x1;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Most frames handed to one `writev` when the writer catches up.
const WRITE_BATCH: usize = 64;

/// A server frame's header (RFC 6455 §5.2: FIN, opcode, unmasked length).
#[derive(Debug, Clone, Copy)]
struct Head {
    bytes: [u8; 10],
    len: u8,
}

impl Head {
    fn new(opcode: u8, payload: usize) -> Self {
        let mut bytes = [0u8; 10];
        bytes[0] = 0x80 | opcode;
        let len = if payload < 126 {
            bytes[1] = payload as u8;
            2
        } else if let Ok(short) = u16::try_from(payload) {
            bytes[1] = 126;
            bytes[2..4].copy_from_slice(&short.to_be_bytes());
            4
        } else {
            bytes[1] = 127;
            bytes[2..10].copy_from_slice(&(payload as u64).to_be_bytes());
            10
        };
        Self { bytes, len }
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

/// A frame not yet (wholly) in the socket.
#[derive(Debug)]
struct Wire {
    head: Head,
    payload: Bytes,
}

impl Wire {
    fn len(&self) -> usize {
        usize::from(self.head.len) + self.payload.len()
    }
}

/// The part of a frame from byte `from` on, as at most two slices.
fn slices<'a>(head: &'a Head, payload: &'a [u8], from: usize) -> [&'a [u8]; 2] {
    let head = head.as_slice();
    if from < head.len() {
        [&head[from..], payload]
    } else {
        [&[], &payload[from - head.len()..]]
    }
}

/// A frame's payload: borrowed when it is likely written at once (an
/// event's shared buffer), owned otherwise.
enum Payload<'a> {
    Shared(&'a Bytes),
    Owned(Bytes),
}

impl Payload<'_> {
    fn bytes(&self) -> &Bytes {
        match self {
            Self::Shared(bytes) => bytes,
            Self::Owned(bytes) => bytes,
        }
    }

    fn into_owned(self) -> Bytes {
        match self {
            Self::Shared(bytes) => bytes.clone(),
            Self::Owned(bytes) => bytes,
        }
    }
}

/// What became of a frame handed to the outlet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Push {
    /// In the socket.
    Sent,
    /// Queued behind others, or the socket took part of it.
    Queued,
    /// The queue is at its bound: the peer is not reading.
    Full,
    /// The socket failed, or the connection's close frame is queued.
    Closed,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Wire>,
    /// Bytes of the first queued frame already in the socket.
    written: usize,
    /// A write failed: the peer is gone.
    failed: bool,
    /// The close frame is queued: nothing follows it.
    sealed: bool,
    /// A batch holds the socket: queued frames wait for its end.
    corked: bool,
}

/// A connection's socket and the frames it has not taken yet.
pub(crate) struct Outlet {
    socket: Arc<dyn RawSocket>,
    state: Mutex<State>,
    /// Wakes the writer: something is queued, or the socket failed.
    queued: Notify,
    /// Wakes senders waiting for room in the queue.
    room: Notify,
    limit: usize,
    metrics: WriterMetrics,
}

impl fmt::Debug for Outlet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outlet")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One non-blocking `writev`, retried if interrupted.
fn write(socket: &dyn RawSocket, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match socket.try_write_vectored(bufs) {
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Ok(0) if bufs.iter().any(|b| !b.is_empty()) => {
                return Err(io::ErrorKind::WriteZero.into());
            }
            other => return other,
        }
    }
}

impl Outlet {
    /// An outlet for `socket` queueing at most `limit` frames.
    pub(crate) fn new(socket: Arc<dyn RawSocket>, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            socket,
            state: Mutex::new(State::default()),
            queued: Notify::new(),
            room: Notify::new(),
            limit: limit.max(1),
            metrics: WriterMetrics::new(),
        })
    }

    /// Hands an outbound item to the socket, or queues it.
    pub(crate) fn push(&self, item: Outbound) -> Push {
        match item {
            Outbound::Shared(text, recorded_at) => {
                let pushed = self.write_or_queue(TEXT, Payload::Shared(text.as_bytes_shared()));
                self.record_latency(recorded_at, pushed);
                pushed
            }
            Outbound::Text(text) => self.write_or_queue(TEXT, Payload::Owned(Bytes::from(text))),
            Outbound::Ping => self.write_or_queue(PING, Payload::Owned(Bytes::new())),
            Outbound::Pong(payload) => self.write_or_queue(PONG, Payload::Owned(payload)),
        }
    }

    /// Queues an event frame for the end of the broadcaster's batch: the
    /// first frame of the batch corks the socket and adds the outlet to
    /// `corked`, which writes it when the batch ends.
    pub(crate) fn push_corked(
        self: &Arc<Self>,
        frame: &SharedText,
        recorded_at: Option<DateTime<Utc>>,
        corked: &mut Corked,
    ) -> Push {
        let pushed = {
            let mut state = lock(&self.state);
            if state.failed || state.sealed {
                return Push::Closed;
            }
            if state.queue.len() >= self.limit {
                return Push::Full;
            }
            let payload = frame.as_bytes_shared();
            self.metrics.frames.increment(1);
            self.metrics.bytes.increment(payload.len() as u64);
            let idle = state.queue.is_empty() && !state.corked;
            state.queue.push_back(Wire {
                head: Head::new(TEXT, payload.len()),
                payload: payload.clone(),
            });
            if idle {
                // Nobody writes this socket now: the batch will.
                state.corked = true;
                corked.outlets.push(self.clone());
            }
            Push::Queued
        };
        self.record_latency(recorded_at, pushed);
        pushed
    }

    /// Ends a batch's hold on the socket: writes what is queued, and leaves
    /// what the socket does not take to the connection's writer.
    fn uncork(&self) {
        lock(&self.state).corked = false;
        if !matches!(self.write_queued(), Ok(true)) {
            self.queued.notify_one();
        }
    }

    fn record_latency(&self, recorded_at: Option<DateTime<Utc>>, pushed: Push) {
        if let (Some(recorded_at), Push::Sent | Push::Queued) = (recorded_at, pushed) {
            let latency = (Utc::now() - recorded_at).as_seconds_f64().max(0.0);
            self.metrics.latency.record(latency);
        }
    }

    fn write_or_queue(&self, opcode: u8, payload: Payload<'_>) -> Push {
        let bytes = payload.bytes();
        let head = Head::new(opcode, bytes.len());
        let mut state = lock(&self.state);
        if state.failed || state.sealed {
            return Push::Closed;
        }
        self.metrics.frames.increment(1);
        self.metrics.bytes.increment(bytes.len() as u64);
        if !state.queue.is_empty() || state.corked {
            // Behind what is queued, or held by a batch that writes it.
            if state.queue.len() >= self.limit {
                return Push::Full;
            }
            state.queue.push_back(Wire {
                head,
                payload: payload.into_owned(),
            });
            return Push::Queued;
        }
        let [a, b] = slices(&head, bytes, 0);
        let written = match write(&*self.socket, &[IoSlice::new(a), IoSlice::new(b)]) {
            Ok(n) if n == usize::from(head.len) + bytes.len() => return Push::Sent,
            Ok(n) => n,
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => 0,
            Err(error) => {
                tracing::debug!(%error, "write failed; peer gone");
                state.failed = true;
                drop(state);
                self.queued.notify_one();
                return Push::Closed;
            }
        };
        state.written = written;
        state.queue.push_back(Wire {
            head,
            payload: payload.into_owned(),
        });
        drop(state);
        self.queued.notify_one();
        Push::Queued
    }

    /// Queues `item`, waiting for room (up to `wait`) while the queue is
    /// full. Err if it stayed full or the connection closed.
    pub(crate) async fn push_waiting(&self, item: Outbound, wait: Duration) -> Result<(), ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            if !self.is_full() {
                return match self.push(item) {
                    Push::Sent | Push::Queued => Ok(()),
                    Push::Full | Push::Closed => Err(()),
                };
            }
            if tokio::time::timeout_at(deadline, room).await.is_err() {
                return Err(());
            }
        }
    }

    fn is_full(&self) -> bool {
        lock(&self.state).queue.len() >= self.limit
    }

    /// Waits until something is queued or the socket failed.
    pub(crate) async fn wait_queued(&self) {
        loop {
            let queued = self.queued.notified();
            tokio::pin!(queued);
            queued.as_mut().enable();
            {
                let state = lock(&self.state);
                if !state.queue.is_empty() || state.failed {
                    return;
                }
            }
            queued.await;
        }
    }

    /// Writes what is queued, waiting for the socket as needed. Err once the
    /// socket failed.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        loop {
            match self.write_queued()? {
                true => return Ok(()),
                false => std::future::poll_fn(|cx| self.socket.poll_write_ready(cx)).await?,
            }
        }
    }

    /// Writes queued frames until none is left (true) or the socket would
    /// block (false).
    fn write_queued(&self) -> io::Result<bool> {
        let mut state = lock(&self.state);
        loop {
            if state.failed {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if state.queue.is_empty() {
                return Ok(true);
            }
            let mut bufs = [IoSlice::new(&[]); 2 * WRITE_BATCH];
            let mut from = state.written;
            for (i, wire) in state.queue.iter().take(WRITE_BATCH).enumerate() {
                let [a, b] = slices(&wire.head, &wire.payload, from);
                bufs[2 * i] = IoSlice::new(a);
                bufs[2 * i + 1] = IoSlice::new(b);
                from = 0;
            }
            let count = 2 * state.queue.len().min(WRITE_BATCH);
            let written = match write(&*self.socket, &bufs[..count]) {
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) => {
                    state.failed = true;
                    return Err(error);
                }
            };
            let mut done = state.written + written;
            while let Some(wire) = state.queue.front() {
                if done < wire.len() {
                    break;
                }
                done -= wire.len();
                state.queue.pop_front();
            }
            state.written = done;
            if state.queue.len() < self.limit {
                self.room.notify_waiters();
            }
        }
    }

    /// Queues the close frame last: drops what is queued first unless
    /// `reason` drains (a slow consumer's backlog is skipped, but a frame
    /// the socket took part of is finished, or the stream would be
    /// corrupt). Nothing is queued after it.
    pub(crate) fn seal(&self, reason: &CloseReason) {
        let mut state = lock(&self.state);
        if state.sealed || state.failed {
            return;
        }
        if !reason.drains() {
            let keep = usize::from(state.written > 0);
            state.queue.truncate(keep);
        }
        let mut payload = Vec::with_capacity(2 + reason.reason.len());
        payload.extend_from_slice(&reason.code.to_be_bytes());
        payload.extend_from_slice(reason.reason.as_bytes());
        state.queue.push_back(Wire {
            head: Head::new(CLOSE, payload.len()),
            payload: Bytes::from(payload),
        });
        state.sealed = true;
        drop(state);
        self.room.notify_waiters();
        self.queued.notify_one();
    }
}

/// The outlets a broadcaster batch corked: each is written once when the
/// batch ends (dropped), in the order the batch first reached them. It also
/// counts the batch's deliveries, to whatever queue.
#[derive(Debug, Default)]
pub(crate) struct Corked {
    outlets: Vec<Arc<Outlet>>,
    deliveries: usize,
}

impl Corked {
    /// Counts one delivery of the batch.
    pub(crate) fn delivered(&mut self) {
        self.deliveries += 1;
    }

    /// How many deliveries the batch made so far.
    pub(crate) fn deliveries(&self) -> usize {
        self.deliveries
    }
}

impl Drop for Corked {
    fn drop(&mut self) {
        for outlet in self.outlets.drain(..) {
            outlet.uncork();
        }
    }
}

/// Where a WebSocket connection's frames go: its writer's channel, or
/// straight into its socket.
#[derive(Debug, Clone)]
pub(crate) enum Queue {
    Channel(mpsc::Sender<Outbound>),
    Direct(Arc<Outlet>),
}

impl Queue {
    /// Hands `item` over without waiting; false if the queue is full or
    /// the connection is gone.
    pub(crate) fn try_send(&self, item: Outbound) -> bool {
        match self {
            Self::Channel(tx) => tx.try_send(item).is_ok(),
            Self::Direct(outlet) => matches!(outlet.push(item), Push::Sent | Push::Queued),
        }
    }

    /// Hands an event frame over without waiting, corking a raw socket
    /// until the broadcaster's batch ends; false if the queue is full or
    /// the connection is gone.
    pub(crate) fn try_send_corked(
        &self,
        frame: &SharedText,
        recorded_at: DateTime<Utc>,
        corked: &mut Corked,
    ) -> bool {
        match self {
            Self::Channel(tx) => tx
                .try_send(Outbound::Shared(frame.clone(), Some(recorded_at)))
                .is_ok(),
            Self::Direct(outlet) => matches!(
                outlet.push_corked(frame, Some(recorded_at), corked),
                Push::Sent | Push::Queued
            ),
        }
    }

    /// Hands `item` over, waiting up to `wait` for room.
    pub(crate) async fn send_timeout(&self, item: Outbound, wait: Duration) -> Result<(), ()> {
        match self {
            Self::Channel(tx) => tx.send_timeout(item, wait).await.map_err(|_| ()),
            Self::Direct(outlet) => outlet.push_waiting(item, wait).await,
        }
    }

    /// Whether the connection answers pings itself (on a raw socket; a
    /// WebSocket library behind a channel answers them on its own).
    pub(crate) fn answers_pings(&self) -> bool {
        matches!(self, Self::Direct(_))
    }
}

#[cfg(test)]
mod tests;
