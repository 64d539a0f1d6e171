//! The event bus: the doorbell that tells consumers new events were committed.
//!
//! Larder's event store is the mailbox: it holds every event at a gap-free
//! global position. The bus only brings committed events to consumers fast.
//! A consumer remembers the last position it handled, and when the bus tells
//! it that it fell behind ([`BusItem::Lagged`]) or it sees a position jump, it
//! refills the gap from the store. So a bus may drop messages under load
//! without losing anything, as long as it says so.
//!
//! The crate knows nothing of Larder's domain: the bus is generic over the
//! message type `E`, so other services can reuse it for their own events.
//!
//! # Layout
//! - [`EventBus`]: the trait, usable as `Arc<dyn EventBus<E>>`.
//! - [`InMemoryEventBus`]: one process, a bounded tokio broadcast channel.
//! - `NatsEventBus` (cargo feature `nats`): several nodes through a NATS
//!   server; each node delivers its own events in process and the others'
//!   from NATS.
//! - [`BusItem`], [`BusStream`]: what a subscriber receives.
//! - [`BusError`]: what publishing or subscribing can fail with.
//! - `test_support` (cargo feature `test-support`): `NatsServer`, a
//!   `nats-server` of its own for a test suite.

mod error;
mod memory;
#[cfg(feature = "nats")]
mod nats;
#[cfg(feature = "test-support")]
pub mod test_support;

use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use futures_core::Stream;

pub use error::BusError;
pub use memory::InMemoryEventBus;
#[cfg(feature = "nats")]
pub use nats::{DEFAULT_OUTBOX, DEFAULT_SUBJECT, NatsBusOptions, NatsEventBus};

/// One item of a bus subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusItem<E> {
    /// A published message. Shared: the bus clones the `Arc`, never the event.
    Event(Arc<E>),
    /// The subscriber fell behind and `missed` messages were dropped for it.
    /// The subscription goes on with newer messages; the subscriber must
    /// refill what it missed from the source of truth (the event store).
    Lagged {
        /// How many messages this subscriber did not receive.
        missed: u64,
    },
}

/// The stream of a subscription. It ends when the bus is closed.
pub type BusStream<E> = Pin<Box<dyn Stream<Item = BusItem<E>> + Send>>;

/// Publishes committed events to every subscriber.
///
/// Implementations keep publish order per publisher: a subscriber receives a
/// publisher's messages in the order they were published, possibly with
/// [`BusItem::Lagged`] gaps, never reordered.
#[async_trait]
pub trait EventBus<E>: Send + Sync
where
    E: Send + Sync + 'static,
{
    /// Publishes `events`, in order, to every current subscriber.
    ///
    /// Having no subscriber is not an error: the events are in the store.
    async fn publish(&self, events: Vec<Arc<E>>) -> Result<(), BusError>;

    /// Subscribes to every message published from now on.
    async fn subscribe(&self) -> Result<BusStream<E>, BusError>;
}
