//! Hooks for the `hot_paths` micro-benchmarks (`benches/hot_paths.rs`).
//! Not part of the public API: they reach into the hub's routing so the
//! benchmarks measure the code the broadcaster and the writers run.

use std::convert::Infallible;
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use larder_store::{EventFilter, Metadata, Page, RecordedEvent, StoreError};
use tokio::sync::mpsc;

use chrono::{DateTime, Utc};

use crate::hub::{ConnSignal, Delivery, Out, Outbound, Subscriber, activate_collect};
use crate::protocol::{event_frame_string, event_json};
use crate::writer::{Tally, WriterMetrics, into_frame};
use crate::{
    AuthFailure, Authorizer, ConnectionContext, EventSource, Frame, Hub, Identity, RealtimeConfig,
    SharedText, Topic, serve_connection,
};

/// The routing keys (rooms) the broadcaster looks up for an event.
pub fn topic_candidates(metadata: &Metadata) -> Vec<String> {
    Topic::candidates(metadata)
}

/// What the broadcaster builds for one event and one room: the event JSON
/// (once per event) and the WebSocket `event` frame (once per room).
pub fn envelope(event: &RecordedEvent, topic: &str) -> (Arc<str>, SharedText) {
    let json = event_json(event);
    let frame = SharedText::from(event_frame_string(topic, event.position, &json));
    (json, frame)
}

/// A writer's per-connection state: what turns dequeued items into frames.
#[derive(Debug)]
pub struct Writer {
    metrics: WriterMetrics,
}

impl Default for Writer {
    fn default() -> Self {
        Self {
            metrics: WriterMetrics::new(),
        }
    }
}

impl Writer {
    /// Turns one dequeued shared frame into the frame handed to the
    /// socket, as the writer does for each item of a batch (without the
    /// latency measurement, which needs the clock).
    pub fn frame(&self, delivery_frame: &SharedText, now: DateTime<Utc>) -> Frame {
        let mut tally = Tally::default();
        let frame = into_frame(
            Outbound::Shared(delivery_frame.clone(), None),
            now,
            &self.metrics,
            &mut tally,
        );
        tally.record(&self.metrics);
        frame
    }
}

struct NoSource;

#[async_trait]
impl EventSource for NoSource {
    async fn read_after(&self, _: u64, _: u32, _: &EventFilter) -> Result<Page, StoreError> {
        Ok(Page {
            events: Vec::new(),
            scanned_to: 0,
            reached_head: true,
        })
    }

    async fn head(&self) -> Result<u64, StoreError> {
        Ok(0)
    }
}

struct NoAuth;

#[async_trait]
impl Authorizer for NoAuth {
    async fn authenticate(&self, _: &str) -> Result<Identity, AuthFailure> {
        Err(AuthFailure::Invalid)
    }
}

/// A hub with `n` live WebSocket subscribers in one room, each with its own
/// outbound queue, as connections have them.
pub struct FanOut {
    hub: Hub,
    subs: Vec<Arc<Subscriber>>,
    queues: Vec<mpsc::Receiver<Outbound>>,
    _signals: Vec<Arc<ConnSignal>>,
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut")
            .field("subscribers", &self.subs.len())
            .finish_non_exhaustive()
    }
}

impl FanOut {
    /// Registers `n` subscribers of `topic` as `identity`, live from the
    /// hub's position 0. Call inside a tokio runtime context (the hub spawns
    /// its broadcaster, which idles on an empty feed).
    pub fn new(identity: Identity, topic: Topic, n: usize) -> Self {
        let feed = Box::pin(futures_util::stream::pending());
        let hub = Hub::start(
            Arc::new(NoSource),
            feed,
            0,
            Arc::new(NoAuth),
            None,
            RealtimeConfig::default(),
        );
        let identity = Arc::new(identity);
        let mut subs = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        let mut signals = Vec::with_capacity(n);
        for _ in 0..n {
            let (tx, rx) = mpsc::channel(16);
            let signal = ConnSignal::new();
            let out = Out::Ws {
                tx: crate::outlet::Queue::Channel(tx),
                signal: signal.clone(),
            };
            let (sub, at) = hub.register(identity.clone(), std::slice::from_ref(&topic), out);
            let mut none: Vec<Delivery> = Vec::new();
            activate_collect(&sub, at, &mut none);
            subs.push(sub);
            queues.push(rx);
            signals.push(signal);
        }
        Self {
            hub,
            subs,
            queues,
            _signals: signals,
        }
    }

    /// Bytes of the future that serves one connection (held by its task for
    /// as long as it is open, next to its heap data), here over a channel-like
    /// stream and sink of frames.
    pub fn connection_future_size(&self) -> usize {
        let frames_in = futures_util::stream::pending::<Result<Frame, Infallible>>();
        let frames_out = futures_util::sink::drain::<Frame>();
        let context = ConnectionContext::new(IpAddr::from([127, 0, 0, 1]));
        let connection = serve_connection(self.hub.clone(), frames_in, frames_out, context);
        std::mem::size_of_val(&connection)
    }

    /// Routes `event` (its position must be past the last routed one) into
    /// every subscriber's queue.
    pub fn route(&self, event: &RecordedEvent) {
        self.hub.route(event);
    }

    /// Empties every queue the way writers do, turning each item into the
    /// frame handed to the socket; returns the bytes of text dequeued.
    pub fn drain(&mut self) -> usize {
        let metrics = WriterMetrics::new();
        let mut bytes = 0;
        for rx in &mut self.queues {
            let now = Utc::now();
            let mut tally = Tally::default();
            while let Ok(item) = rx.try_recv() {
                if let Frame::Text(text) = into_frame(item, now, &metrics, &mut tally) {
                    bytes += text.len();
                }
            }
            tally.record(&metrics);
        }
        bytes
    }
}
