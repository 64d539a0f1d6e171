//! A bus shared by several nodes through a NATS server.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_stream::StreamExt;

use crate::{BusError, BusStream, EventBus, InMemoryEventBus};

/// The subject Larder publishes committed events on, by default.
pub const DEFAULT_SUBJECT: &str = "larder.events";

/// How many publish calls may wait for the NATS connection, by default.
///
/// Publishing never waits on the network: the store publishes right after a
/// commit, and a command must not stall behind a slow or lost broker. Past
/// this bound a publish is dropped for the other nodes (it still reaches
/// this node's subscribers); theirs see the position jump at the next event,
/// or poll the store, and read the dropped events from there.
pub const DEFAULT_OUTBOX: usize = 4096;

/// The largest NATS message the bus sends; a larger batch is split. The
/// server's default `max_payload` is 1 MiB.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

/// How long connecting at start may take before it fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a [`NatsEventBus`] connects and what it holds.
#[derive(Debug, Clone)]
pub struct NatsBusOptions {
    /// The subject every node of one deployment publishes on and listens to.
    /// Deployments sharing a NATS server use different subjects.
    pub subject: String,
    /// How many messages a subscriber of this node may fall behind before it
    /// lags (see [`InMemoryEventBus::new`]).
    pub capacity: usize,
    /// How many publish calls may wait for the connection ([`DEFAULT_OUTBOX`]).
    pub outbox: usize,
}

impl Default for NatsBusOptions {
    fn default() -> Self {
        Self {
            subject: DEFAULT_SUBJECT.to_owned(),
            capacity: crate::memory::DEFAULT_CAPACITY,
            outbox: DEFAULT_OUTBOX,
        }
    }
}

/// A bus for several nodes: each node publishes to its own subscribers in
/// process and to the other nodes through NATS.
///
/// Local delivery never goes through the network: a publish reaches this
/// node's subscribers at once, like [`InMemoryEventBus`], and is sent to
/// NATS on a connection opened with `no_echo`, so the server sends it to
/// every other node and not back to this one. Each subscriber therefore
/// receives every message once: its own node's from memory, the others'
/// from NATS, each publisher's in publish order.
///
/// NATS delivers at most once: a message may be lost (a reconnect, a slow
/// consumer). Larder's consumers detect that by the position jump of the
/// next event, or by polling the store when the bus stays silent, and read
/// what they missed from the store. Messages are JSON arrays of `E`.
///
/// Dropping the bus closes the connection and ends its subscriptions.
pub struct NatsEventBus<E> {
    local: InMemoryEventBus<E>,
    outbox: mpsc::Sender<Vec<Arc<E>>>,
    subject: String,
    tasks: Vec<AbortHandle>,
}

impl<E> std::fmt::Debug for NatsEventBus<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsEventBus")
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

impl<E> Drop for NatsEventBus<E> {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl<E> NatsEventBus<E>
where
    E: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    /// Connects to the NATS server at `url` (`nats://host:port`, several
    /// comma-separated) with the default options.
    pub async fn connect(url: &str) -> Result<Self, BusError> {
        Self::connect_with(url, NatsBusOptions::default()).await
    }

    /// Connects to the NATS server at `url` and subscribes to
    /// `options.subject`. After the first connection, a lost one is
    /// re-established in the background (messages meanwhile are lost, and
    /// refilled from the store by the consumers).
    pub async fn connect_with(url: &str, options: NatsBusOptions) -> Result<Self, BusError> {
        let client = async_nats::ConnectOptions::new()
            .no_echo()
            .name("larder")
            .connection_timeout(CONNECT_TIMEOUT)
            .connect(url)
            .await
            .map_err(|error| BusError::Unavailable(format!("connecting to {url}: {error}")))?;
        let subscriber = client
            .subscribe(options.subject.clone())
            .await
            .map_err(|error| BusError::Unavailable(format!("subscribing: {error}")))?;
        // The subscription is registered on the server before this returns,
        // so two buses made one after the other hear each other from the
        // start: a flush only writes it to the socket, a round trip proves
        // the server read it (it reads a connection in order). The round
        // trip is a request nobody answers: the server itself replies "no
        // responders" at once.
        let probe = client.new_inbox();
        match tokio::time::timeout(CONNECT_TIMEOUT, client.request(probe, Default::default())).await
        {
            Ok(Ok(_)) => {}
            Ok(Err(error)) if error.kind() == async_nats::RequestErrorKind::NoResponders => {}
            Ok(Err(error)) => {
                return Err(BusError::Unavailable(format!(
                    "reaching the server: {error}"
                )));
            }
            Err(_) => {
                return Err(BusError::Unavailable(
                    "the server did not answer in time".into(),
                ));
            }
        }
        let local = InMemoryEventBus::new(options.capacity);
        let receive = tokio::spawn(receive(subscriber, local.clone()));
        let (outbox, pending) = mpsc::channel(options.outbox.max(1));
        let send = tokio::spawn(send(client, options.subject.clone(), pending));
        Ok(Self {
            local,
            outbox,
            subject: options.subject,
            tasks: vec![receive.abort_handle(), send.abort_handle()],
        })
    }
}

#[async_trait]
impl<E> EventBus<E> for NatsEventBus<E>
where
    E: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    async fn publish(&self, events: Vec<Arc<E>>) -> Result<(), BusError> {
        if events.is_empty() {
            return Ok(());
        }
        self.local.publish(events.clone()).await?;
        match self.outbox.try_send(events) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!("NATS outbox full: other nodes refill these events from the store");
                Ok(())
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(BusError::Closed),
        }
    }

    async fn subscribe(&self) -> Result<BusStream<E>, BusError> {
        self.local.subscribe().await
    }
}

/// Hands what other nodes publish to this node's subscribers.
async fn receive<E>(mut subscriber: async_nats::Subscriber, local: InMemoryEventBus<E>)
where
    E: DeserializeOwned + Send + Sync + 'static,
{
    while let Some(message) = subscriber.next().await {
        match serde_json::from_slice::<Vec<E>>(&message.payload) {
            Ok(events) => {
                for event in events {
                    local.send(Arc::new(event));
                }
            }
            // Not fatal: the consumer sees a position jump and reads the
            // store.
            Err(error) => tracing::warn!(%error, "undecodable bus message skipped"),
        }
    }
}

/// Sends this node's publishes to NATS, in order.
async fn send<E>(
    client: async_nats::Client,
    subject: String,
    mut pending: mpsc::Receiver<Vec<Arc<E>>>,
) where
    E: Serialize + Send + Sync + 'static,
{
    while let Some(events) = pending.recv().await {
        for payload in encode(&events) {
            if let Err(error) = client.publish(subject.clone(), payload.into()).await {
                tracing::warn!(%error, "publishing to NATS failed: other nodes refill from the store");
            }
        }
    }
}

/// JSON arrays of at most [`MAX_MESSAGE_BYTES`] (an event larger than that
/// alone goes in its own message, or is skipped if it cannot be encoded).
fn encode<E: Serialize>(events: &[Arc<E>]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    let mut current = vec![b'['];
    for event in events {
        let encoded = match serde_json::to_vec(event.as_ref()) {
            Ok(encoded) => encoded,
            Err(error) => {
                tracing::warn!(%error, "unencodable event not sent to other nodes");
                continue;
            }
        };
        if current.len() > 1 && current.len() + encoded.len() + 1 > MAX_MESSAGE_BYTES {
            current.push(b']');
            messages.push(std::mem::replace(&mut current, vec![b'[']));
        }
        if current.len() > 1 {
            current.push(b',');
        }
        current.extend_from_slice(&encoded);
    }
    if current.len() > 1 {
        current.push(b']');
        messages.push(current);
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_split_into_messages_below_the_bound() {
        let big = "x".repeat(100 * 1024);
        let events: Vec<Arc<String>> = (0..5).map(|_| Arc::new(big.clone())).collect();
        let messages = encode(&events);
        assert_eq!(messages.len(), 3);
        let mut decoded = Vec::new();
        for message in &messages {
            assert!(message.len() <= MAX_MESSAGE_BYTES);
            decoded.extend(serde_json::from_slice::<Vec<String>>(message).unwrap());
        }
        assert_eq!(decoded.len(), 5);
    }

    #[test]
    fn an_empty_batch_sends_nothing() {
        assert!(encode::<u64>(&[]).is_empty());
    }
}
