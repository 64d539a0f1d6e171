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
                corked.0.push(self.clone());
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
/// batch ends (dropped), in the order the batch first reached them.
#[derive(Debug, Default)]
pub(crate) struct Corked(Vec<Arc<Outlet>>);

impl Drop for Corked {
    fn drop(&mut self) {
        for outlet in self.0.drain(..) {
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
mod tests {
    use super::*;

    #[test]
    fn headers_follow_rfc_6455_lengths() {
        assert_eq!(Head::new(TEXT, 5).as_slice(), &[0x81, 5]);
        assert_eq!(Head::new(TEXT, 125).as_slice(), &[0x81, 125]);
        assert_eq!(Head::new(TEXT, 126).as_slice(), &[0x81, 126, 0, 126]);
        assert_eq!(Head::new(PING, 65_535).as_slice(), &[0x89, 126, 0xff, 0xff]);
        assert_eq!(
            Head::new(TEXT, 65_536).as_slice(),
            &[0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn a_partly_written_frame_resumes_where_it_stopped() {
        let head = Head::new(TEXT, 3);
        assert_eq!(slices(&head, b"abc", 0), [&[0x81, 3][..], b"abc"]);
        assert_eq!(slices(&head, b"abc", 1), [&[3][..], b"abc"]);
        assert_eq!(slices(&head, b"abc", 3), [&[][..], b"bc"]);
    }

    /// A socket that takes `room` more bytes, then would block until
    /// granted more.
    #[derive(Default)]
    struct Fake {
        state: Mutex<(Vec<u8>, usize, Option<std::task::Waker>)>,
        writes: std::sync::atomic::AtomicUsize,
    }

    impl Fake {
        fn grant(&self, bytes: usize) {
            let mut state = self.state.lock().unwrap();
            state.1 += bytes;
            if let Some(waker) = state.2.take() {
                waker.wake();
            }
        }

        fn taken(&self) -> Vec<u8> {
            self.state.lock().unwrap().0.clone()
        }
    }

    impl RawSocket for Arc<Fake> {
        fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            self.writes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut state = self.state.lock().unwrap();
            if state.1 == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let mut written = 0;
            for buf in bufs {
                let n = buf.len().min(state.1);
                state.0.extend_from_slice(&buf[..n]);
                state.1 -= n;
                written += n;
            }
            Ok(written)
        }

        fn poll_write_ready(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let mut state = self.state.lock().unwrap();
            if state.1 > 0 {
                Poll::Ready(Ok(()))
            } else {
                state.2 = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Reads unmasked server frames back: (opcode, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let opcode = bytes[0] & 0x0f;
            assert_eq!(bytes[0] & 0x80, 0x80, "FIN set");
            let (len, at) = match bytes[1] {
                126 => (usize::from(u16::from_be_bytes([bytes[2], bytes[3]])), 4),
                127 => (
                    u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize,
                    10,
                ),
                n => (usize::from(n), 2),
            };
            out.push((opcode, bytes[at..at + len].to_vec()));
            bytes = &bytes[at + len..];
        }
        out
    }

    fn text(s: &str) -> Outbound {
        Outbound::Text(s.to_owned())
    }

    #[tokio::test]
    async fn frames_keep_their_order_through_partial_writes() {
        let fake = Arc::new(Fake::default());
        fake.grant(5);
        let outlet = Outlet::new(Arc::new(fake.clone()), 16);
        let long = "x".repeat(300);
        assert_eq!(
            outlet.push(text("first frame")),
            Push::Queued,
            "5 bytes taken"
        );
        assert_eq!(outlet.push(text(&long)), Push::Queued);
        assert_eq!(outlet.push(Outbound::Ping), Push::Queued);
        let flushing = tokio::spawn({
            let outlet = outlet.clone();
            async move { outlet.flush().await }
        });
        for _ in 0..40 {
            fake.grant(9);
            tokio::task::yield_now().await;
        }
        fake.grant(1_000);
        flushing.await.unwrap().unwrap();
        assert_eq!(
            outlet.push(text("after")),
            Push::Sent,
            "an idle socket takes it at once"
        );
        let got = frames(&fake.taken());
        let want = vec![
            (TEXT, b"first frame".to_vec()),
            (TEXT, long.into_bytes()),
            (PING, Vec::new()),
            (TEXT, b"after".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_slow_consumer_gets_its_close_after_the_partial_frame() {
        let fake = Arc::new(Fake::default());
        fake.grant(4);
        let outlet = Outlet::new(Arc::new(fake.clone()), 2);
        assert_eq!(outlet.push(text("partly written")), Push::Queued);
        assert_eq!(outlet.push(text("queued")), Push::Queued);
        assert_eq!(outlet.push(text("one too many")), Push::Full);
        outlet.seal(&CloseReason::new(
            crate::close::SLOW_CONSUMER,
            "slow consumer",
        ));
        assert_eq!(outlet.push(text("after the close")), Push::Closed);
        fake.grant(1_000);
        outlet.flush().await.unwrap();
        let mut close = 4009u16.to_be_bytes().to_vec();
        close.extend_from_slice(b"slow consumer");
        assert_eq!(
            frames(&fake.taken()),
            vec![(TEXT, b"partly written".to_vec()), (CLOSE, close)],
            "the backlog is skipped, the frame on the wire is finished"
        );
    }

    #[tokio::test]
    async fn a_draining_close_follows_everything_queued() {
        let fake = Arc::new(Fake::default());
        let outlet = Outlet::new(Arc::new(fake.clone()), 8);
        assert_eq!(outlet.push(text("a")), Push::Queued);
        assert_eq!(outlet.push(text("b")), Push::Queued);
        outlet.seal(&CloseReason::new(crate::close::GOING_AWAY, "bye"));
        fake.grant(1_000);
        outlet.flush().await.unwrap();
        let got: Vec<u8> = frames(&fake.taken())
            .into_iter()
            .map(|(op, _)| op)
            .collect();
        assert_eq!(got, [TEXT, TEXT, CLOSE]);
    }

    #[test]
    fn a_batch_writes_each_socket_once_in_order() {
        let fake = Arc::new(Fake::default());
        fake.grant(10_000);
        let outlet = Outlet::new(Arc::new(fake.clone()), 16);
        let mut corked = Corked::default();
        let first = SharedText::from("first".to_owned());
        let second = SharedText::from("second".to_owned());
        assert_eq!(outlet.push_corked(&first, None, &mut corked), Push::Queued);
        assert_eq!(
            outlet.push(text("presence")),
            Push::Queued,
            "a frame from elsewhere waits behind the batch"
        );
        assert_eq!(outlet.push_corked(&second, None, &mut corked), Push::Queued);
        assert_eq!(corked.0.len(), 1, "the outlet is corked once");
        assert!(fake.taken().is_empty(), "nothing written before the end");
        drop(corked);
        assert_eq!(fake.writes.load(std::sync::atomic::Ordering::Relaxed), 1);
        let got: Vec<Vec<u8>> = frames(&fake.taken()).into_iter().map(|f| f.1).collect();
        assert_eq!(got, [&b"first"[..], b"presence", b"second"]);
        assert_eq!(outlet.push(text("after")), Push::Sent, "uncorked again");
    }

    #[test]
    fn a_corked_queue_keeps_its_bound() {
        let fake = Arc::new(Fake::default());
        let outlet = Outlet::new(Arc::new(fake.clone()), 2);
        let mut corked = Corked::default();
        let frame = SharedText::from("x".to_owned());
        assert_eq!(outlet.push_corked(&frame, None, &mut corked), Push::Queued);
        assert_eq!(outlet.push_corked(&frame, None, &mut corked), Push::Queued);
        assert_eq!(outlet.push_corked(&frame, None, &mut corked), Push::Full);
    }
}
