//! Fallbacks for clients without WebSocket: a server-sent-events stream and
//! long-polling, with the same replay-then-live semantics.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::mpsc;

use crate::hub::{Out, Start, Subscriber, activate_collect};
use crate::protocol::Resume;
use crate::{EventFrame, Hub, Identity, SubscribeError, Topic};

/// The most events one [`Hub::poll`] returns.
pub const MAX_POLL_LIMIT: usize = 1_000;

/// The longest a [`Hub::poll`] waits for a live event.
pub const MAX_POLL_WAIT: Duration = Duration::from_secs(60);

/// A subscription to several topics as one stream of [`EventFrame`]s in
/// position order, each event once. Ends when the hub shuts down or the
/// consumer falls `outbound_queue` events behind (resume with the last
/// position). Dropping it unsubscribes.
#[derive(Debug)]
pub struct EventStream {
    hub: Hub,
    sub: Arc<Subscriber>,
    prefix: VecDeque<EventFrame>,
    rx: mpsc::Receiver<EventFrame>,
    resume: Resume,
    position: u64,
    finished: bool,
}

impl EventStream {
    /// How the stream started: `new`, `recovered` or `reset`.
    pub fn resume(&self) -> Resume {
        self.resume
    }

    /// Events with a position after this one follow.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Unsubscribes and returns what is still queued, and the position up
    /// to which every matching event has been handed out or is in that list.
    fn finish(mut self) -> (Vec<EventFrame>, u64) {
        self.finished = true;
        let covered = self.hub.unregister(&self.sub);
        let mut rest: Vec<EventFrame> = self.prefix.drain(..).collect();
        while let Ok(frame) = self.rx.try_recv() {
            rest.push(frame);
        }
        (rest, covered)
    }
}

impl Stream for EventStream {
    type Item = EventFrame;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<EventFrame>> {
        if let Some(frame) = self.prefix.pop_front() {
            return Poll::Ready(Some(frame));
        }
        self.rx.poll_recv(cx)
    }
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if !self.finished {
            self.hub.unregister(&self.sub);
        }
    }
}

impl Hub {
    /// Opens a stream of the events of `topics` that `identity` may see.
    /// With `since`, every matching event after it comes first (`recovered`),
    /// unless `since` is ahead of the head or more than `max_replay` events
    /// behind (`reset`: the stream starts live). The SSE route uses the
    /// position as the event `id:` and `Last-Event-ID` as `since`.
    pub async fn open_stream(
        &self,
        identity: Identity,
        topics: Vec<Topic>,
        since: Option<u64>,
    ) -> Result<EventStream, SubscribeError> {
        websocket_only(&topics)?;
        let (tx, rx) = mpsc::channel(self.config().outbound_queue.max(1));
        let start = since.map_or(Start::Live, Start::Since);
        let started = self
            .start_subscription(Arc::new(identity), &topics, start, Out::Stream(tx))
            .await?;
        let mut deliveries = started.replay;
        if !activate_collect(&started.sub, started.last, &mut deliveries) {
            self.unregister(&started.sub);
            return Err(SubscribeError::Closed);
        }
        crate::connection::count_resume(started.resume);
        Ok(EventStream {
            hub: self.clone(),
            sub: started.sub,
            prefix: deliveries.iter().map(|d| d.to_event_frame()).collect(),
            rx,
            resume: started.resume,
            position: started.position,
            finished: false,
        })
    }

    /// Long-poll: the events of `topics` after `since`, at most `limit`
    /// (capped at [`MAX_POLL_LIMIT`]), waiting up to `wait` (capped at
    /// [`MAX_POLL_WAIT`]) for one if there are none yet. Returns the events
    /// and the `since` of the next poll. `since` ahead of the head is
    /// [`SubscribeError::InvalidSince`].
    pub async fn poll(
        &self,
        identity: Identity,
        topics: Vec<Topic>,
        since: u64,
        limit: usize,
        wait: Duration,
    ) -> Result<(Vec<EventFrame>, u64), SubscribeError> {
        let limit = limit.clamp(1, MAX_POLL_LIMIT);
        let wait = wait.min(MAX_POLL_WAIT);
        if topics.is_empty() {
            return Err(SubscribeError::NoTopics);
        }
        websocket_only(&topics)?;
        if let Some(topic) = topics.iter().find(|t| !identity.may_subscribe(t)) {
            return Err(SubscribeError::Forbidden(topic.to_string()));
        }
        let head = self.source().head().await?.max(self.position());
        if since > head {
            return Err(SubscribeError::InvalidSince { since, head });
        }
        // What is already stored: read pages until `limit` matches or the head.
        let filter = match topics.as_slice() {
            [topic] => topic.filter(&identity.tenant),
            _ => larder_store::EventFilter::tenant(&identity.tenant),
        };
        let mut events = Vec::new();
        let mut cursor = since;
        loop {
            let page = self
                .source()
                .read_after(cursor, self.config().replay_page, &filter)
                .await?;
            for event in &page.events {
                if !identity.can_see(&event.metadata) {
                    continue;
                }
                if let Some(topic) = topics.iter().find(|t| t.matches_event(event)) {
                    events.push(EventFrame {
                        position: event.position,
                        topic: topic.to_string().into(),
                        event: crate::protocol::event_json(event),
                        recorded_at: event.recorded_at,
                    });
                    if events.len() == limit {
                        return Ok((events, event.position));
                    }
                }
            }
            if page.reached_head || page.scanned_to <= cursor {
                cursor = cursor.max(page.scanned_to);
                break;
            }
            cursor = page.scanned_to;
        }
        if !events.is_empty() || wait.is_zero() {
            return Ok((events, cursor));
        }
        // Nothing yet: wait live from where the read got to.
        let mut stream = self.open_stream(identity, topics, Some(cursor)).await?;
        let first = tokio::time::timeout(wait, stream.next()).await;
        if let Ok(Some(frame)) = first {
            events.push(frame);
            while events.len() < limit {
                match stream.next().now_or_never() {
                    Some(Some(frame)) => events.push(frame),
                    _ => break,
                }
            }
        }
        let start = stream.position().max(cursor);
        let (rest, covered) = stream.finish();
        events.extend(rest);
        if events.len() > limit {
            events.truncate(limit);
        }
        let next = match events.last() {
            Some(last) if events.len() == limit => last.position,
            Some(_) => covered.max(events.last().map_or(0, |e| e.position)),
            None => covered.max(start),
        };
        Ok((events, next))
    }
}

/// Derived topics (dashboards) carry pushed `state` frames, which only a
/// WebSocket connection receives: a stream or a poll of one is refused
/// rather than left silent.
fn websocket_only(topics: &[Topic]) -> Result<(), SubscribeError> {
    match topics.iter().find(|t| t.is_derived()) {
        Some(topic) => Err(SubscribeError::InvalidTopic(crate::TopicError {
            topic: topic.to_string(),
            reason: "dashboard topics are WebSocket only",
        })),
        None => Ok(()),
    }
}
