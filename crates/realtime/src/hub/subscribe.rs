//! Starting a subscription: registration, the replay of what it missed
//! (`since`, snapshot), and the switch from buffering to live.

use std::sync::Arc;
use std::time::Duration;

use larder_store::{EventFilter, StoreError};

use super::{Delivery, Hub, Mode, Out, Outbound, Subscriber};
use crate::outlet::Queue;
use crate::protocol::{ErrorCode, Resume, SnapshotBody, event_json};
use crate::{Identity, Topic};

/// Why a subscription could not start.
#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    /// A topic string does not parse.
    #[error(transparent)]
    InvalidTopic(#[from] crate::TopicError),
    /// The identity may not subscribe to this topic.
    #[error("not allowed to subscribe to {0}")]
    Forbidden(String),
    /// `since` is ahead of the log's head (long-poll), or otherwise unusable.
    #[error("since {since} is ahead of the head {head}")]
    InvalidSince {
        /// The requested position.
        since: u64,
        /// The head of the log.
        head: u64,
    },
    /// No topic was given.
    #[error("no topic given")]
    NoTopics,
    /// No snapshot exists for the topic, or producing it failed.
    #[error("snapshot unavailable: {0}")]
    SnapshotUnavailable(String),
    /// The event source could not be read.
    #[error("event source unavailable")]
    Unavailable(#[from] StoreError),
    /// The hub is shutting down, or the subscriber was closed meanwhile.
    #[error("the realtime hub is closed")]
    Closed,
}

impl SubscribeError {
    /// The protocol error code for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidTopic(_) | Self::NoTopics => ErrorCode::InvalidTopic,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::InvalidSince { .. } => ErrorCode::InvalidSince,
            Self::SnapshotUnavailable(_) => ErrorCode::SnapshotUnavailable,
            Self::Unavailable(_) | Self::Closed => ErrorCode::Unavailable,
        }
    }
}

/// Where a subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    Live,
    Since(u64),
    Snapshot,
}

/// A registered subscription whose replay has been read but not yet sent.
#[derive(Debug)]
pub(crate) struct Started {
    pub(crate) sub: Arc<Subscriber>,
    pub(crate) resume: Resume,
    pub(crate) position: u64,
    pub(crate) snapshot: Option<SnapshotBody>,
    pub(crate) replay: Vec<Delivery>,
    /// Deliveries at or before it are duplicates of the replay or `since`.
    pub(crate) last: u64,
}

impl Hub {
    /// Registers a subscription and reads what it must replay. The caller
    /// sends the reply, then the replay, then activates it.
    pub(crate) async fn start_subscription(
        &self,
        identity: Arc<Identity>,
        topics: &[Topic],
        start: Start,
        out: Out,
    ) -> Result<Started, SubscribeError> {
        if topics.is_empty() {
            return Err(SubscribeError::NoTopics);
        }
        if self.is_shutting_down() {
            return Err(SubscribeError::Closed);
        }
        if let Some(topic) = topics.iter().find(|t| !identity.may_subscribe(t)) {
            return Err(SubscribeError::Forbidden(topic.to_string()));
        }
        let snapshot = match start {
            Start::Snapshot => {
                let provider = self.inner.snapshots.as_ref().ok_or_else(|| {
                    SubscribeError::SnapshotUnavailable("no snapshot provider".into())
                })?;
                match provider.snapshot(&identity, &topics[0]).await {
                    Ok(Some((data, position))) => Some(SnapshotBody { position, data }),
                    Ok(None) => {
                        return Err(SubscribeError::SnapshotUnavailable(format!(
                            "no snapshot for {}",
                            topics[0]
                        )));
                    }
                    Err(reason) => return Err(SubscribeError::SnapshotUnavailable(reason)),
                }
            }
            _ => None,
        };
        let (sub, registered_at) = self.register(identity.clone(), topics, out);
        let since = match (start, &snapshot) {
            (Start::Live, _) => None,
            (Start::Since(since), _) => Some(since),
            (Start::Snapshot, Some(body)) => Some(body.position),
            (Start::Snapshot, None) => None,
        };
        let Some(since) = since else {
            return Ok(Started {
                sub,
                resume: Resume::New,
                position: registered_at,
                snapshot: None,
                replay: Vec::new(),
                last: registered_at,
            });
        };
        let outcome = self
            .replay(&identity, &sub.topics, since, registered_at)
            .await;
        let head = match outcome {
            Ok(_) => self.inner.source.head().await,
            Err(ref error) => Err(error.clone()),
        };
        let (replay, head) = match (outcome, head) {
            (Ok(replay), Ok(head)) => (replay, head),
            (Err(error), _) | (_, Err(error)) => {
                self.unregister(&sub);
                return Err(SubscribeError::Unavailable(error));
            }
        };
        let ahead = since > head.max(registered_at);
        match replay {
            Some(replay) if !ahead => {
                let last = replay.last().map_or(since, |d| d.position.max(since));
                Ok(Started {
                    sub,
                    resume: Resume::Recovered,
                    position: since,
                    snapshot,
                    replay,
                    last,
                })
            }
            _ if snapshot.is_some() => {
                self.unregister(&sub);
                Err(SubscribeError::SnapshotUnavailable(
                    "the snapshot is too far behind the log".into(),
                ))
            }
            _ => Ok(Started {
                sub,
                resume: Resume::Reset,
                position: registered_at,
                snapshot: None,
                replay: Vec::new(),
                last: registered_at,
            }),
        }
    }

    /// Reads the events matching `topics` after `after` up to `upto` (the
    /// registration position; later ones arrive through the buffer).
    /// `None` when more than `max_replay` would be replayed.
    async fn replay(
        &self,
        identity: &Identity,
        topics: &[(Topic, Arc<str>)],
        after: u64,
        upto: u64,
    ) -> Result<Option<Vec<Delivery>>, StoreError> {
        let config = &self.inner.config;
        let filter = match topics {
            [(topic, _)] => topic.filter(&identity.tenant),
            _ => EventFilter::tenant(&identity.tenant),
        };
        let mut replay = Vec::new();
        let mut cursor = after;
        while cursor < upto {
            let page = self
                .inner
                .source
                .read_after(cursor, config.replay_page, &filter)
                .await?;
            for event in &page.events {
                if event.position > upto {
                    return Ok(Some(replay));
                }
                if !identity.can_see(&event.metadata) {
                    continue;
                }
                let Some((_, topic)) = topics.iter().find(|(t, _)| t.matches_event(event)) else {
                    continue;
                };
                if replay.len() >= config.max_replay {
                    return Ok(None);
                }
                replay.push(Delivery {
                    position: event.position,
                    recorded_at: event.recorded_at,
                    topic: topic.clone(),
                    event: event_json(event),
                    frame: None,
                });
            }
            if page.reached_head || page.scanned_to <= cursor {
                break;
            }
            cursor = page.scanned_to;
        }
        Ok(Some(replay))
    }

    /// Sends the buffered live events of a WebSocket subscription after its
    /// replay, then switches it to live. Waits for queue space (bounded by
    /// `wait`) since the replay may just have filled the queue.
    pub(crate) async fn activate_ws(
        &self,
        sub: &Subscriber,
        mut last: u64,
        tx: &Queue,
        wait: Duration,
    ) -> Result<(), ()> {
        loop {
            let batch = {
                let mut state = sub.state();
                match &mut state.mode {
                    Mode::Buffering(buffer) if buffer.is_empty() => {
                        state.mode = Mode::Live { last_sent: last };
                        return Ok(());
                    }
                    Mode::Buffering(buffer) => std::mem::take(buffer),
                    Mode::Live { .. } => return Ok(()),
                    Mode::Dead { .. } => return Err(()),
                }
            };
            for delivery in batch {
                if delivery.position <= last {
                    continue;
                }
                last = delivery.position;
                let item = Outbound::Shared(delivery.ws_frame(), Some(delivery.recorded_at));
                tx.send_timeout(item, wait).await?;
            }
        }
    }
}
