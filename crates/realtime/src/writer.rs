//! The writer half of a connection: drains the bounded outbound queue into
//! the sink, several frames per flush, and ends every connection with a
//! close frame within a bounded time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::{Sink, SinkExt};
use tokio::sync::{mpsc, watch};

use crate::Frame;
use crate::frame::{CloseReason, SharedText, close};
use crate::hub::{ConnSignal, Outbound};
use crate::metrics as m;
use crate::outlet::Outlet;

/// How long the writer may take to end a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CloseTimeouts {
    /// To flush what is queued and the close frame (every close but a slow
    /// consumer's).
    pub(crate) flush: Duration,
    /// For a slow consumer's close frame (4009) to get through the backlog
    /// already in the socket, which the peer has not read yet.
    pub(crate) slow_consumer: Duration,
}

/// Resolves once a close reason is set (without holding the watch lock).
pub(crate) async fn closed(closing: &mut watch::Receiver<Option<CloseReason>>) {
    let _ = closing.wait_for(Option::is_some).await.map(|_| ());
}

async fn closed_without_drain(closing: &mut watch::Receiver<Option<CloseReason>>) {
    let _ = closing
        .wait_for(|reason| reason.as_ref().is_some_and(|r| !r.drains()))
        .await
        .map(|_| ());
}

/// Most frames the writer hands the socket before flushing it: several
/// frames per write system call when the queue holds several, while a batch
/// stays small enough not to delay the first frame of the next one.
pub(crate) const WRITE_BATCH: usize = 64;

/// The writer's metric handles, looked up once per connection rather than
/// once per frame.
#[derive(Debug)]
pub(crate) struct WriterMetrics {
    pub(crate) frames: metrics::Counter,
    pub(crate) bytes: metrics::Counter,
    pub(crate) latency: metrics::Histogram,
}

impl WriterMetrics {
    pub(crate) fn new() -> Self {
        Self {
            frames: metrics::counter!(m::FRAMES_OUT),
            bytes: metrics::counter!(m::BYTES_OUT),
            latency: metrics::histogram!(m::DELIVERY_LATENCY),
        }
    }
}

/// Tallies a batch's frames and bytes, recorded once per batch.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    frames: u64,
    bytes: u64,
}

impl Tally {
    pub(crate) fn record(&mut self, metrics: &WriterMetrics) {
        if self.frames > 0 {
            metrics.frames.increment(self.frames);
            metrics.bytes.increment(self.bytes);
        }
        *self = Self::default();
    }
}

/// Turns a dequeued item into the frame for the socket. Shared text stays
/// shared: no per-recipient copy. `now` (taken once per batch) times the
/// delivery latency of events.
pub(crate) fn into_frame(
    item: Outbound,
    now: DateTime<Utc>,
    metrics: &WriterMetrics,
    tally: &mut Tally,
) -> Frame {
    tally.frames += 1;
    match item {
        Outbound::Shared(text, recorded_at) => {
            if let Some(recorded_at) = recorded_at {
                let latency = (now - recorded_at).as_seconds_f64().max(0.0);
                metrics.latency.record(latency);
            }
            tally.bytes += text.len() as u64;
            Frame::Text(text)
        }
        Outbound::Text(text) => {
            tally.bytes += text.len() as u64;
            Frame::Text(SharedText::from(text))
        }
        Outbound::Ping => Frame::Ping(Vec::new()),
        Outbound::Pong(payload) => Frame::Pong(payload.to_vec()),
    }
}

/// Writes `first` and whatever else is already queued (up to
/// [`WRITE_BATCH`] frames) into the sink, then flushes once.
async fn write_batch<O>(
    out: &mut O,
    first: Outbound,
    rx: &mut mpsc::Receiver<Outbound>,
    metrics: &WriterMetrics,
) -> Result<(), O::Error>
where
    O: Sink<Frame> + Unpin,
{
    let now = Utc::now();
    let mut tally = Tally::default();
    let mut next = Some(first);
    let mut fed = Ok(());
    while let Some(item) = next.take() {
        fed = out.feed(into_frame(item, now, metrics, &mut tally)).await;
        if fed.is_err() {
            break;
        }
        if (tally.frames as usize) < WRITE_BATCH {
            next = rx.try_recv().ok();
        }
    }
    tally.record(metrics);
    fed?;
    out.flush().await
}

/// The writer half: drains the outbound queue into the sink until the
/// connection closes, then flushes (unless the peer is too slow to) and
/// sends the close frame, within `timeouts.flush` (a slow consumer's close
/// frame within `timeouts.slow_consumer`). Frames queued together are
/// written together and flushed once.
pub(crate) async fn write_loop<O>(
    mut out: O,
    mut rx: mpsc::Receiver<Outbound>,
    signal: Arc<ConnSignal>,
    timeouts: CloseTimeouts,
) where
    O: Sink<Frame> + Unpin,
    O::Error: fmt::Display,
{
    let metrics = WriterMetrics::new();
    let mut closing = signal.close.subscribe();
    loop {
        let item = tokio::select! {
            biased;
            _ = closed(&mut closing) => break,
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
        };
        // A batch being written is finished unless the peer is too slow to
        // take it (then the close must not wait behind it): a warning or a
        // reply queued just before a close still reaches the client.
        let sent = tokio::select! {
            biased;
            _ = closed_without_drain(&mut closing) => break,
            sent = write_batch(&mut out, item, &mut rx, &metrics) => sent,
        };
        if let Err(error) = sent {
            tracing::debug!(%error, "send failed; peer gone");
            signal.close(CloseReason::new(close::NORMAL, "peer went away"));
            return;
        }
    }
    let reason = signal
        .close
        .borrow()
        .clone()
        .unwrap_or(CloseReason::new(close::NORMAL, "closed"));
    let finish = async {
        if reason.drains() {
            let now = Utc::now();
            let mut tally = Tally::default();
            while let Ok(item) = rx.try_recv() {
                if out
                    .feed(into_frame(item, now, &metrics, &mut tally))
                    .await
                    .is_err()
                {
                    tally.record(&metrics);
                    return;
                }
            }
            tally.record(&metrics);
        }
        // A slow consumer's queue is skipped, but what the socket already
        // holds is not: its close frame goes out behind that backlog, once
        // the peer reads it (within `slow_consumer`).
        let _ = out.send(Frame::close(reason.code, reason.reason)).await;
        let _ = out.close().await;
    };
    let within = if reason.drains() {
        timeouts.flush
    } else {
        timeouts.slow_consumer
    };
    // Boxed: only a closing connection holds it.
    if Box::pin(tokio::time::timeout(within, finish))
        .await
        .is_err()
    {
        tracing::debug!(
            code = reason.code,
            "the close frame was not flushed in time; dropping the socket"
        );
    }
}

/// The writer half on a raw socket: the broadcaster and the reader write
/// into the socket themselves ([`Outlet`]); this finishes what the socket
/// did not take at once, whenever it is writable again, and ends the
/// connection with a close frame within the same bounds as [`write_loop`].
pub(crate) async fn outlet_loop(
    outlet: Arc<Outlet>,
    signal: Arc<ConnSignal>,
    timeouts: CloseTimeouts,
) {
    let mut closing = signal.close.subscribe();
    loop {
        tokio::select! {
            biased;
            _ = closed(&mut closing) => break,
            () = outlet.wait_queued() => {}
        }
        let flushed = tokio::select! {
            biased;
            _ = closed_without_drain(&mut closing) => break,
            flushed = outlet.flush() => flushed,
        };
        if let Err(error) = flushed {
            tracing::debug!(%error, "send failed; peer gone");
            signal.close(CloseReason::new(close::NORMAL, "peer went away"));
            return;
        }
    }
    let reason = signal
        .close
        .borrow()
        .clone()
        .unwrap_or(CloseReason::new(close::NORMAL, "closed"));
    outlet.seal(&reason);
    let within = if reason.drains() {
        timeouts.flush
    } else {
        timeouts.slow_consumer
    };
    if tokio::time::timeout(within, outlet.flush()).await.is_err() {
        tracing::debug!(
            code = reason.code,
            "the close frame was not flushed in time; dropping the socket"
        );
    }
}
