//! The broadcaster: consumes the ordered feed and routes each event into
//! its rooms (refilling a gap from the event source).

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_core::Stream;
use futures_util::{FutureExt, StreamExt};
use larder_store::{CatchUp, EventFilter, RecordedEvent};

use super::{Delivery, Hub, Inner, lock};
use crate::Topic;
use crate::frame::SharedText;
use crate::outlet::Corked;
use crate::protocol::{event_frame_string, event_json};
use crate::topic::stations_of;

/// The ordered, gap-free feed of committed events the hub routes: each item's
/// position is the previous one's plus one. Build it with [`catch_up_feed`]
/// from a [`CatchUp`], or from any stream (a channel in tests). Should the
/// feed skip a position anyway, the hub refills the gap from the
/// [`EventSource`] before routing on.
pub type EventFeed = Pin<Box<dyn Stream<Item = Arc<RecordedEvent>> + Send>>;

/// Turns a [`CatchUp`] tail into an [`EventFeed`]. A failed store read is
/// logged and retried after a second: the tail does not advance on failure,
/// so nothing is skipped.
pub fn catch_up_feed(tail: CatchUp) -> EventFeed {
    let batches = futures_util::stream::unfold(tail, |mut tail| async move {
        loop {
            match tail.next_batch().await {
                Ok(batch) => return Some((futures_util::stream::iter(batch), tail)),
                Err(error) => {
                    tracing::warn!(%error, position = tail.position(), "realtime feed read failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
    Box::pin(batches.flatten())
}

impl Hub {
    /// Routes one event to every room it belongs to and writes it out;
    /// returns how many deliveries it made.
    pub(crate) fn route(&self, event: &RecordedEvent) -> usize {
        let mut corked = Corked::default();
        self.route_corked(event, &mut corked);
        corked.deliveries()
    }

    /// Routes one event to every room it belongs to. The event JSON is built
    /// once, the `event` message once per room, then shared by pointer. Raw
    /// sockets are written when `corked` is dropped (the batch's end).
    fn route_corked(&self, event: &RecordedEvent, corked: &mut Corked) {
        let json = event_json(event);
        let mut keys = Topic::candidates(&event.metadata);
        let max_buffered = self.inner.config.max_buffered;
        let routing = lock(&self.inner.routing);
        if let (Some(store), false) = (&event.metadata.store, routing.stations.is_empty()) {
            let named = stations_of(event);
            if !named.is_empty() {
                keys.extend(named.iter().map(|s| Topic::station_key(store, s)));
            } else if event.metadata.entity_type == "order" {
                let index_key = (event.metadata.tenant.clone(), store.clone());
                keys.extend(
                    routing
                        .stations
                        .get(&index_key)
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
        }
        for key in keys {
            let room_key = (event.metadata.tenant.clone(), key);
            let Some(room) = routing.rooms.get(&room_key) else {
                continue;
            };
            let topic: Arc<str> = room_key.1.as_str().into();
            let delivery = Delivery {
                position: event.position,
                recorded_at: event.recorded_at,
                frame: Some(SharedText::from(event_frame_string(
                    &topic,
                    event.position,
                    &json,
                ))),
                topic,
                event: json.clone(),
            };
            for sub in room {
                sub.offer(event, &delivery, max_buffered, corked);
            }
        }
        if routing.derived_rooms > 0 {
            for key in Topic::derived_candidates(&event.metadata)
                .into_iter()
                .flatten()
            {
                let room_key = (event.metadata.tenant.clone(), key);
                if routing.rooms.contains_key(&room_key) {
                    self.mark_stale(room_key, event.position, false);
                }
            }
        }
        self.inner.position.store(event.position, Ordering::Release);
    }

    /// Reads and routes the events after the hub's position up to `upto`,
    /// when the feed skipped some. Retries a few times, then gives up (and
    /// logs) rather than stalling every client. Returns how many deliveries
    /// it made.
    async fn refill(&self, upto: u64) -> usize {
        let (mut failures, mut deliveries) = (0, 0);
        while self.position() < upto {
            match self
                .inner
                .source
                .read_after(self.position(), 1_000, &EventFilter::default())
                .await
            {
                Ok(page) => {
                    let before = self.position();
                    for event in page.events.iter().filter(|e| e.position <= upto) {
                        if event.position > self.position() {
                            deliveries += self.route(event);
                        }
                    }
                    if self.position() == before {
                        break;
                    }
                }
                Err(error) => {
                    failures += 1;
                    tracing::warn!(%error, failures, "realtime gap refill failed");
                    if failures >= 5 {
                        tracing::error!(
                            position = self.position(),
                            upto,
                            "giving up on a feed gap"
                        );
                        return deliveries;
                    }
                    tokio::time::sleep(Duration::from_millis(100 * failures)).await;
                }
            }
        }
        deliveries
    }
}

/// Most events the broadcaster routes as one batch (one write per socket).
const BATCH: usize = 32;

/// Passes quicker than this are never followed by a linger: a room this
/// cheap to write gains nothing from sharing writes.
const LINGER_AFTER: Duration = Duration::from_millis(1);

/// Passes that made fewer deliveries than this are never followed by a
/// linger either: they cost well under [`LINGER_AFTER`] (about 10 µs each),
/// so if such a pass took longer, its thread was kept off the core
/// meanwhile (by another process, on a busy machine), or it waited for the
/// store to refill a gap, and a linger would only add that delay again.
const LINGER_DELIVERIES: usize = 64;

/// How long the broadcaster waits before its next pass, so that the events
/// arriving meanwhile go out together, one write per socket: as long as the
/// last pass `took`, at most `max`. Only after a pass that took
/// [`LINGER_AFTER`] or more making [`LINGER_DELIVERIES`] or more, and
/// never after a full batch (events are waiting already, and the next batch
/// shares its writes anyway).
fn linger(took: Duration, pass: Pass, max: Duration) -> Option<Duration> {
    (pass.events < BATCH
        && pass.deliveries >= LINGER_DELIVERIES
        && took >= LINGER_AFTER
        && !max.is_zero())
    .then(|| took.min(max))
}

/// What one broadcaster pass did.
#[derive(Debug, Clone, Copy)]
struct Pass {
    /// Events taken from the feed.
    events: usize,
    /// Deliveries made (events to subscribers).
    deliveries: usize,
}

/// The broadcaster: routes the feed in order until it ends or the hub is
/// shut down or dropped. The events already waiting in the feed (up to
/// [`BATCH`]) are routed as one batch and each socket is written once for
/// them: the further the broadcaster falls behind, the less a delivery
/// costs. After an expensive pass it lingers (see [`linger`]) so that a
/// steady stream of events to a big room shares writes too.
pub(crate) async fn broadcast(hub: Weak<Inner>, mut feed: EventFeed) {
    let mut shutdown = match hub.upgrade() {
        Some(inner) => inner.shutdown.subscribe(),
        None => return,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut ended = false;
    while !ended {
        tokio::select! {
            biased;
            _ = shutdown.wait_for(Option::is_some) => break,
            event = feed.next() => match event {
                Some(event) => batch.push(event),
                None => ended = true,
            },
        };
        while !ended && batch.len() < BATCH {
            match feed.next().now_or_never() {
                Some(Some(event)) => batch.push(event),
                Some(None) => ended = true,
                None => break,
            }
        }
        let Some(inner) = hub.upgrade() else { break };
        let hub = Hub { inner };
        // Tokio's clock: real time in production; under a paused test
        // clock a pass takes no time, so such tests never linger.
        let (events, started) = (batch.len(), tokio::time::Instant::now());
        let deliveries = hub.route_batch(&mut batch).await;
        hub.commands_routed();
        let pass = Pass { events, deliveries };
        let wait = linger(started.elapsed(), pass, hub.inner.config.fanout_linger);
        drop(hub);
        if let Some(wait) = wait {
            tokio::select! {
                biased;
                _ = shutdown.wait_for(Option::is_some) => break,
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
    if ended {
        tracing::info!("realtime feed ended");
    }
}

impl Hub {
    /// Routes a batch of the feed in order, refilling a gap first, and
    /// writes each socket it reached once at the end; returns how many
    /// deliveries it made.
    async fn route_batch(&self, batch: &mut Vec<Arc<RecordedEvent>>) -> usize {
        let mut corked = Corked::default();
        let mut deliveries = 0;
        for event in batch.drain(..) {
            let position = self.position();
            if event.position <= position {
                continue;
            }
            if event.position > position + 1 {
                tracing::debug!(position, next = event.position, "feed skipped; refilling");
                // What is routed so far goes out before the refill's events.
                deliveries += corked.deliveries();
                drop(std::mem::take(&mut corked));
                deliveries += self.refill(event.position - 1).await;
            }
            self.route_corked(&event, &mut corked);
        }
        deliveries + corked.deliveries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn only_an_expensive_pass_that_was_not_full_lingers_and_no_longer_than_it_took() {
        let max = 10 * MS;
        let big = |events| Pass {
            events,
            deliveries: 1_000,
        };
        assert_eq!(linger(MS / 2, big(1), max), None, "a cheap pass");
        assert_eq!(
            linger(3 * MS, big(1), max),
            Some(3 * MS),
            "as long as the pass"
        );
        assert_eq!(
            linger(40 * MS, big(5), max),
            Some(max),
            "at most the maximum"
        );
        assert_eq!(linger(40 * MS, big(BATCH), max), None, "a full batch");
        assert_eq!(linger(40 * MS, big(1), Duration::ZERO), None, "turned off");
    }

    #[test]
    fn a_pass_with_few_deliveries_never_lingers_however_long_it_took() {
        let few = Pass {
            events: 1,
            deliveries: LINGER_DELIVERIES - 1,
        };
        // It was kept from its core: a linger would add the delay again.
        assert_eq!(linger(8 * MS, few, 10 * MS), None);
        let enough = Pass {
            deliveries: LINGER_DELIVERIES,
            ..few
        };
        assert_eq!(linger(8 * MS, enough, 10 * MS), Some(8 * MS));
    }
}
