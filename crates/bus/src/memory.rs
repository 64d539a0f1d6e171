use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use crate::{BusError, BusItem, BusStream, EventBus};

/// How many messages a subscriber may fall behind before it lags, by default.
///
/// A slow subscriber costs nothing until then: the channel keeps one copy of
/// each message (an `Arc`), not one per subscriber. Past it, the subscriber
/// is told how many it missed and refills from the store, so the bound trades
/// memory for refill reads, never for lost events.
pub const DEFAULT_CAPACITY: usize = 4096;

/// An in-process bus on a bounded tokio broadcast channel.
///
/// Cloning gives another handle to the same bus.
#[derive(Debug)]
pub struct InMemoryEventBus<E> {
    sender: broadcast::Sender<Arc<E>>,
}

impl<E> Clone for InMemoryEventBus<E> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
        }
    }
}

impl<E: Send + Sync + 'static> Default for InMemoryEventBus<E> {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl<E: Send + Sync + 'static> InMemoryEventBus<E> {
    /// A bus whose subscribers lag after falling `capacity` messages behind.
    ///
    /// # Panics
    /// If `capacity` is zero.
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity);
        Self { sender }
    }

    /// The number of live subscriptions.
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Hands one message to every current subscriber, without waiting.
    pub(crate) fn send(&self, event: Arc<E>) {
        // An error only means nobody is subscribed right now: the events
        // are in the store, and a later subscriber reads them from there.
        let _ = self.sender.send(event);
    }
}

#[async_trait]
impl<E: Send + Sync + 'static> EventBus<E> for InMemoryEventBus<E> {
    async fn publish(&self, events: Vec<Arc<E>>) -> Result<(), BusError> {
        for event in events {
            self.send(event);
        }
        Ok(())
    }

    async fn subscribe(&self) -> Result<BusStream<E>, BusError> {
        let stream = BroadcastStream::new(self.sender.subscribe()).map(|item| match item {
            Ok(event) => BusItem::Event(event),
            Err(BroadcastStreamRecvError::Lagged(missed)) => BusItem::Lagged { missed },
        });
        Ok(Box::pin(stream))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::time::timeout;

    async fn next<E>(stream: &mut BusStream<E>) -> BusItem<E> {
        timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("bus item within 5 s")
            .expect("stream still open")
    }

    #[tokio::test]
    async fn every_subscriber_receives_published_events_in_order() {
        let bus = InMemoryEventBus::<u64>::new(16);
        let mut first = bus.subscribe().await.unwrap();
        let mut second = bus.subscribe().await.unwrap();

        bus.publish(vec![Arc::new(1), Arc::new(2), Arc::new(3)])
            .await
            .unwrap();

        for stream in [&mut first, &mut second] {
            for expected in 1..=3 {
                assert_eq!(next(stream).await, BusItem::Event(Arc::new(expected)));
            }
        }
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_how_many_it_missed() {
        let bus = InMemoryEventBus::<u64>::new(4);
        let mut slow = bus.subscribe().await.unwrap();

        bus.publish((1..=10).map(Arc::new).collect()).await.unwrap();

        assert_eq!(next(&mut slow).await, BusItem::Lagged { missed: 6 });
        for expected in 7..=10 {
            assert_eq!(next(&mut slow).await, BusItem::Event(Arc::new(expected)));
        }
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_not_an_error() {
        let bus = InMemoryEventBus::<u64>::default();
        assert!(bus.publish(vec![Arc::new(1)]).await.is_ok());
        assert_eq!(bus.subscriber_count(), 0);
    }

    #[tokio::test]
    async fn a_subscriber_only_sees_events_published_after_it_subscribed() {
        let bus = InMemoryEventBus::<u64>::new(8);
        bus.publish(vec![Arc::new(1)]).await.unwrap();
        let mut late = bus.subscribe().await.unwrap();
        bus.publish(vec![Arc::new(2)]).await.unwrap();
        assert_eq!(next(&mut late).await, BusItem::Event(Arc::new(2)));
    }

    #[tokio::test]
    async fn the_stream_ends_when_every_handle_is_dropped() {
        let bus = InMemoryEventBus::<u64>::new(8);
        let mut stream = bus.subscribe().await.unwrap();
        drop(bus);
        let end = timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap();
        assert!(end.is_none());
    }

    #[tokio::test]
    async fn works_behind_a_trait_object() {
        let bus: Arc<dyn EventBus<String>> = Arc::new(InMemoryEventBus::new(8));
        let mut stream = bus.subscribe().await.unwrap();
        bus.publish(vec![Arc::new("hello".to_owned())])
            .await
            .unwrap();
        assert_eq!(
            next(&mut stream).await,
            BusItem::Event(Arc::new("hello".to_owned()))
        );
    }
}
