//! The state publisher: derived topics (dashboards) carry no events; their
//! subscribers get the state the server computes, pushed at most once per
//! interval however many events changed it.
//!
//! Routing an event marks the derived topics it concerns stale (its store's
//! dashboard, its tenant's) with the event's position; a subscription going
//! live marks its topic stale too, so a newcomer whose snapshot raced a
//! push is brought up to date. Each round, the publisher takes the stale
//! set, asks the [`StateProvider`] for each topic's state, and pushes it to
//! the topic's live subscribers when it changed. A state computed at a
//! position below the one that made it stale (the read model lags the
//! hub) leaves the topic stale for the next round: the last state pushed
//! always catches up with the log.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

use super::{Hub, Inner, RoomKey, lock};
use crate::frame::SharedText;
use crate::protocol::ServerMessage;
use crate::{StateProvider, Topic};

/// Why a derived topic must be recomputed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Stale {
    /// The highest position of an event that changed it.
    position: u64,
    /// Push even if the state did not change (a subscriber is new).
    force: bool,
}

impl Hub {
    /// Marks a derived topic's room stale up to `position`.
    pub(crate) fn mark_stale(&self, room: RoomKey, position: u64, force: bool) {
        let mut stale = lock(&self.inner.stale);
        let entry = stale.entry(room).or_default();
        entry.position = entry.position.max(position);
        entry.force |= force;
    }

    /// A WebSocket subscription to a derived topic went live: its next
    /// state is pushed at the next round, changed or not.
    pub(crate) fn derived_subscribed(&self, tenant: &str, topic: &Topic) {
        if topic.is_derived() {
            self.mark_stale((tenant.to_owned(), topic.to_string()), 0, true);
        }
    }

    /// Starts the state publisher of derived topics: every `interval` (at
    /// least; a round's work comes on top, so two pushes of one topic are
    /// always `interval` apart or more), it recomputes each stale topic
    /// that has subscribers with `provider` and sends a `state` frame to its
    /// live WebSocket subscribers when the state changed. It stops when the
    /// hub shuts down or is dropped.
    pub fn start_state_publisher(
        &self,
        provider: Arc<dyn StateProvider>,
        interval: Duration,
    ) -> JoinHandle<()> {
        tokio::spawn(publish(Arc::downgrade(&self.inner), provider, interval))
    }

    /// One round: recompute and push every stale topic. `last` holds the
    /// state last pushed per room.
    async fn publish_round(
        &self,
        provider: &dyn StateProvider,
        last: &mut HashMap<RoomKey, serde_json::Value>,
    ) {
        let stale = std::mem::take(&mut *lock(&self.inner.stale));
        last.retain(|room, _| {
            lock(&self.inner.routing).rooms.contains_key(room) || stale.contains_key(room)
        });
        for (room, why) in stale {
            let has_room = lock(&self.inner.routing).rooms.contains_key(&room);
            if !has_room {
                last.remove(&room);
                continue;
            }
            let Ok(topic) = room.1.parse::<Topic>() else {
                continue;
            };
            match provider.state(&room.0, &topic).await {
                Ok(Some((data, position))) => {
                    if position < why.position {
                        // The read model has not caught up with the event
                        // yet: push what it has, and look again next round.
                        self.mark_stale(room.clone(), why.position, false);
                    }
                    if why.force || last.get(&room) != Some(&data) {
                        self.push_state(&room, &topic, position, &data);
                        last.insert(room, data);
                    }
                }
                Ok(None) => {}
                Err(reason) => {
                    tracing::warn!(topic = %room.1, %reason, "derived state unavailable; retrying next round");
                    self.mark_stale(room, why.position, why.force);
                }
            }
        }
    }

    /// Sends a `state` frame to the live subscribers of `room` still
    /// allowed to subscribe to `topic`.
    fn push_state(&self, room: &RoomKey, topic: &Topic, position: u64, data: &serde_json::Value) {
        let frame = SharedText::from(
            ServerMessage::State {
                topic: room.1.clone(),
                position,
                data: data.clone(),
            }
            .to_json(),
        );
        let routing = lock(&self.inner.routing);
        if let Some(subscribers) = routing.rooms.get(room) {
            for sub in subscribers {
                sub.notify_live(|identity| identity.may_subscribe(topic), &frame);
            }
        }
    }
}

async fn publish(hub: Weak<Inner>, provider: Arc<dyn StateProvider>, interval: Duration) {
    let mut shutdown = match hub.upgrade() {
        Some(inner) => inner.shutdown.subscribe(),
        None => return,
    };
    let mut last = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.wait_for(Option::is_some) => return,
            () = tokio::time::sleep(interval) => {}
        }
        let Some(inner) = hub.upgrade() else { return };
        Hub { inner }
            .publish_round(provider.as_ref(), &mut last)
            .await;
    }
}
