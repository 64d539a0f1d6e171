//! A subscriber and what reaches it: one routed [`Delivery`], the queue it
//! goes to ([`Out`]), and the buffering / live / dead states that drop
//! duplicates and kill a subscriber whose queue is full.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use larder_store::RecordedEvent;
use tokio::sync::{mpsc, watch};

use crate::frame::{CloseReason, SharedText, close};
use crate::metrics as m;
use crate::outlet::{Corked, Queue};
use crate::protocol::event_frame_string;
use crate::{Identity, Topic};

/// One routed event for one subscriber: shared strings, cloned as pointers.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) position: u64,
    pub(crate) recorded_at: DateTime<Utc>,
    pub(crate) topic: Arc<str>,
    pub(crate) event: Arc<str>,
    /// The WebSocket `event` message for `topic`, when already built: one
    /// buffer shared by every subscriber of the topic.
    pub(crate) frame: Option<SharedText>,
}

impl Delivery {
    pub(crate) fn ws_frame(&self) -> SharedText {
        self.frame.clone().unwrap_or_else(|| {
            SharedText::from(event_frame_string(&self.topic, self.position, &self.event))
        })
    }

    pub(crate) fn to_event_frame(&self) -> EventFrame {
        EventFrame {
            position: self.position,
            topic: self.topic.clone(),
            event: self.event.clone(),
            recorded_at: self.recorded_at,
        }
    }
}

/// What a connection's writer sends.
#[derive(Debug)]
pub(crate) enum Outbound {
    /// A shared frame; `recorded_at` is set for events (delivery latency).
    Shared(SharedText, Option<DateTime<Utc>>),
    /// A frame built for this connection only.
    Text(String),
    /// A WebSocket ping.
    Ping,
    /// A WebSocket pong answering the peer's ping (on a raw socket).
    Pong(bytes::Bytes),
}

/// How a connection is told to close, by itself or by the hub. The first
/// reason wins.
#[derive(Debug)]
pub(crate) struct ConnSignal {
    pub(crate) close: watch::Sender<Option<CloseReason>>,
}

impl ConnSignal {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            close: watch::Sender::new(None),
        })
    }

    /// Asks the connection to close with `reason`, unless it already is.
    pub(crate) fn close(&self, reason: CloseReason) -> bool {
        self.close.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason);
                true
            } else {
                false
            }
        })
    }
}

/// Where a subscriber's deliveries go.
#[derive(Debug)]
pub(crate) enum Out {
    /// A WebSocket connection's outbound queue, or its socket.
    Ws { tx: Queue, signal: Arc<ConnSignal> },
    /// An SSE / long-poll stream.
    Stream(mpsc::Sender<EventFrame>),
}

#[derive(Debug)]
pub(super) enum Mode {
    /// Registered, replay in progress: live events wait here.
    Buffering(Vec<Delivery>),
    /// Delivering; anything at or before `last_sent` is a duplicate.
    Live { last_sent: u64 },
    /// Closed, unsubscribed or overflowed: nothing more is delivered.
    Dead { last_sent: u64 },
}

#[derive(Debug)]
pub(super) struct SubState {
    pub(super) identity: Arc<Identity>,
    pub(super) mode: Mode,
    /// Dropped when the subscriber dies, which ends a stream's receiver.
    pub(super) out: Option<Out>,
}

/// One subscription: one topic of a WebSocket connection, or the topic set
/// of an SSE / long-poll stream. It sits in the room of each of its topics.
#[derive(Debug)]
pub(crate) struct Subscriber {
    pub(super) id: u64,
    pub(super) tenant: String,
    pub(super) topics: Vec<(Topic, Arc<str>)>,
    pub(super) state: Mutex<SubState>,
}

/// Locks a mutex, recovering from poisoning: every critical section leaves
/// the data consistent, so a panic elsewhere must not take the hub down.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Subscriber {
    pub(super) fn state(&self) -> MutexGuard<'_, SubState> {
        lock(&self.state)
    }

    /// Replaces the identity deliveries are filtered with (token refresh).
    pub(crate) fn set_identity(&self, identity: Arc<Identity>) {
        self.state().identity = identity;
    }

    /// Offers a routed event. Called by the broadcaster with the routing
    /// lock held, so it never waits: a full queue kills the subscriber. A
    /// raw socket is written when the broadcaster's batch ends (`corked`).
    pub(super) fn offer(
        &self,
        event: &RecordedEvent,
        delivery: &Delivery,
        max_buffered: usize,
        corked: &mut Corked,
    ) {
        let mut state = self.state();
        if !state.identity.can_see(&event.metadata) {
            return;
        }
        match &mut state.mode {
            Mode::Dead { .. } => {}
            Mode::Buffering(buffer) => {
                if buffer.len() >= max_buffered {
                    kill(&mut state);
                } else {
                    buffer.push(delivery.clone());
                }
            }
            Mode::Live { last_sent } => {
                if delivery.position <= *last_sent {
                    return;
                }
                *last_sent = delivery.position;
                if !try_deliver(state.out.as_ref(), delivery, corked) {
                    kill(&mut state);
                }
            }
        }
    }

    /// Sends a non-event frame (a command's lifecycle) to a WebSocket
    /// subscriber, live or still replaying, whose identity `admit`s it.
    pub(super) fn notify_admitted(&self, admit: impl Fn(&Identity) -> bool, frame: &SharedText) {
        let mut state = self.state();
        if matches!(state.mode, Mode::Dead { .. }) || !admit(&state.identity) {
            return;
        }
        if let Some(Out::Ws { tx, .. }) = &state.out {
            if !tx.try_send(Outbound::Shared(frame.clone(), None)) {
                kill(&mut state);
            }
        }
    }

    /// Sends a non-event frame (presence) to a live WebSocket subscriber.
    pub(super) fn notify(&self, frame: &SharedText) {
        self.notify_live(|_| true, frame);
    }

    /// Sends a non-event frame (presence, a derived state) to a live
    /// WebSocket subscriber whose identity `admit`s it: after its
    /// `subscribed` reply, never before.
    pub(super) fn notify_live(&self, admit: impl Fn(&Identity) -> bool, frame: &SharedText) {
        let mut state = self.state();
        if !matches!(state.mode, Mode::Live { .. }) || !admit(&state.identity) {
            return;
        }
        if let Some(Out::Ws { tx, .. }) = &state.out {
            if !tx.try_send(Outbound::Shared(frame.clone(), None)) {
                kill(&mut state);
            }
        }
    }
}

/// Hands a delivery to its queue without waiting; false if it is full.
fn try_deliver(out: Option<&Out>, delivery: &Delivery, corked: &mut Corked) -> bool {
    let Some(out) = out else { return false };
    corked.delivered();
    match out {
        Out::Ws { tx, .. } => match &delivery.frame {
            Some(frame) => tx.try_send_corked(frame, delivery.recorded_at, corked),
            None => tx.try_send_corked(&delivery.ws_frame(), delivery.recorded_at, corked),
        },
        Out::Stream(tx) => tx.try_send(delivery.to_event_frame()).is_ok(),
    }
}

/// Marks a subscriber dead after an overflow: its connection closes as a
/// slow consumer (it resumes with `since`), its stream ends.
fn kill(state: &mut SubState) {
    let last_sent = match state.mode {
        Mode::Live { last_sent } | Mode::Dead { last_sent } => last_sent,
        Mode::Buffering(_) => 0,
    };
    state.mode = Mode::Dead { last_sent };
    metrics::counter!(m::DROPPED).increment(1);
    if let Some(Out::Ws { signal, .. }) = state.out.take() {
        if signal.close(CloseReason::new(close::SLOW_CONSUMER, "slow consumer")) {
            metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
        }
    }
}

/// An event delivered to an SSE or long-poll client.
#[derive(Debug, Clone, PartialEq)]
pub struct EventFrame {
    /// The event's global position: the SSE `id:` and the next `since`.
    pub position: u64,
    /// The (first) subscribed topic it matched.
    pub topic: Arc<str>,
    /// The event as JSON (the same text the WebSocket `event` carries).
    pub event: Arc<str>,
    /// When the event was committed.
    pub recorded_at: DateTime<Utc>,
}

/// Collects a stream subscriber's buffered events after its replay and
/// switches it to live in one step (a stream's consumer cannot read yet).
pub(crate) fn activate_collect(sub: &Subscriber, last: u64, into: &mut Vec<Delivery>) -> bool {
    let mut state = sub.state();
    match std::mem::replace(&mut state.mode, Mode::Live { last_sent: last }) {
        Mode::Buffering(buffer) => {
            let mut last_sent = last;
            for delivery in buffer {
                if delivery.position > last_sent {
                    last_sent = delivery.position;
                    into.push(delivery);
                }
            }
            state.mode = Mode::Live { last_sent };
            true
        }
        other => {
            state.mode = other;
            false
        }
    }
}
