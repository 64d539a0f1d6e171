//! Tailing the global log without ever skipping an event.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use larder_bus::{BusItem, BusStream, EventBus};
use tokio_stream::StreamExt;

use crate::{EventFilter, EventStore, RecordedEvent, StoreError};

/// How long a caught-up tail waits on the bus before it looks at the store
/// anyway. Publishing is best effort (another node's bus message may be
/// lost, a publish may fail), so this bounds how late such an event can be.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// How many events one refill read fetches.
const PAGE: u32 = 1_000;

/// How long a tail holds events that arrived ahead of a missing one before
/// it reads the store for it. With several nodes, events of different
/// nodes reach the bus out of position order (a node's own arrive at once,
/// another's a NATS hop later); the missing one is then usually in flight,
/// and waiting for it costs less than a store read per jump.
pub const DEFAULT_REORDER_WINDOW: Duration = Duration::from_millis(20);

/// A consumer's view of the log: every event after a position, exactly once,
/// in position order.
///
/// The bus brings new events fast; the store fills every gap. A tail reads
/// the store until it reaches the head, then takes events from the bus while
/// they continue its position one by one. Events that skip a position are
/// held for at most the reorder window ([`DEFAULT_REORDER_WINDOW`]) while
/// the missing one may still come from the bus. When the bus says it
/// lagged, the window passes without the missing event, or the bus stays
/// silent for the poll interval, the tail reads the store again. Positions
/// are gap-free, so a jump is always detected.
///
/// ```no_run
/// # async fn run(store: std::sync::Arc<dyn larder_store::EventStore>,
/// #              bus: std::sync::Arc<dyn larder_bus::EventBus<larder_store::RecordedEvent>>)
/// #              -> Result<(), larder_store::StoreError> {
/// let mut tail = larder_store::CatchUp::start(store, Some(bus.as_ref()), 0).await?;
/// loop {
///     for event in tail.next_batch().await? {
///         println!("{} {}", event.position, event.event_type);
///     }
/// }
/// # }
/// ```
pub struct CatchUp {
    store: Arc<dyn EventStore>,
    bus: Option<BusStream<RecordedEvent>>,
    position: u64,
    must_read: bool,
    poll_interval: Duration,
    /// Bus events past a missing position, waiting for it.
    ahead: BTreeMap<u64, Arc<RecordedEvent>>,
    /// When the store is read for the missing position if it has not come.
    gap_deadline: Instant,
    reorder_window: Duration,
}

impl std::fmt::Debug for CatchUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchUp")
            .field("position", &self.position)
            .field("must_read", &self.must_read)
            .finish_non_exhaustive()
    }
}

impl CatchUp {
    /// Starts a tail after position `after` (0: from the beginning).
    ///
    /// It subscribes to the bus before its first read, so nothing committed
    /// between the read and the subscription can fall between them.
    pub async fn start(
        store: Arc<dyn EventStore>,
        bus: Option<&dyn EventBus<RecordedEvent>>,
        after: u64,
    ) -> Result<Self, StoreError> {
        let bus = match bus {
            Some(bus) => match bus.subscribe().await {
                Ok(stream) => Some(stream),
                Err(error) => {
                    tracing::warn!(%error, "bus unavailable; tailing the store by polling");
                    None
                }
            },
            None => None,
        };
        Ok(Self {
            store,
            bus,
            position: after,
            must_read: true,
            poll_interval: DEFAULT_POLL_INTERVAL,
            ahead: BTreeMap::new(),
            gap_deadline: Instant::now(),
            reorder_window: DEFAULT_REORDER_WINDOW,
        })
    }

    /// Changes how long a caught-up tail waits on a silent bus.
    pub fn with_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Changes how long events that arrived ahead of a missing one wait for
    /// it on the bus before the store is read (zero: read at once).
    pub fn with_reorder_window(mut self, window: Duration) -> Self {
        self.reorder_window = window;
        self
    }

    /// The position of the last event handed out.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Waits for and returns the next events, in position order, each after
    /// the previous call's last. Never empty.
    pub async fn next_batch(&mut self) -> Result<Vec<Arc<RecordedEvent>>, StoreError> {
        loop {
            if self.must_read {
                let page = self
                    .store
                    .read_all(self.position, PAGE, &EventFilter::default())
                    .await?;
                self.must_read = !page.reached_head;
                if let Some(last) = page.events.last() {
                    self.position = last.position;
                    let position = self.position;
                    self.ahead.retain(|&p, _| p > position);
                    self.gap_deadline = Instant::now() + self.reorder_window;
                    return Ok(page.events.into_iter().map(Arc::new).collect());
                }
            }
            if let Some(first) = self.take_ahead() {
                let mut batch = vec![first];
                self.drain_ready(&mut batch);
                return Ok(batch);
            }
            let wait = if self.ahead.is_empty() {
                self.poll_interval
            } else {
                self.gap_deadline.saturating_duration_since(Instant::now())
            };
            let item = match &mut self.bus {
                Some(bus) => match tokio::time::timeout(wait, bus.next()).await {
                    Ok(Some(item)) => item,
                    Ok(None) => {
                        tracing::warn!("bus closed; tailing the store by polling");
                        self.bus = None;
                        continue;
                    }
                    Err(_silent) => {
                        self.must_read = true;
                        continue;
                    }
                },
                None => {
                    tokio::time::sleep(self.poll_interval).await;
                    self.must_read = true;
                    continue;
                }
            };
            match item {
                BusItem::Lagged { missed } => {
                    tracing::debug!(
                        missed,
                        position = self.position,
                        "bus lagged; refilling from the store"
                    );
                    self.must_read = true;
                }
                BusItem::Event(event) if event.position <= self.position => {}
                BusItem::Event(event) if event.position == self.position + 1 => {
                    self.position = event.position;
                    let mut batch = vec![event];
                    self.drain_ready(&mut batch);
                    return Ok(batch);
                }
                BusItem::Event(event) => self.hold(event),
            }
        }
    }

    /// Keeps an event that came ahead of a missing position; the store is
    /// read when the window passes without it, or at once when too many
    /// wait (or with no window).
    fn hold(&mut self, event: Arc<RecordedEvent>) {
        if self.reorder_window.is_zero() || self.ahead.len() >= PAGE as usize {
            self.must_read = true;
            return;
        }
        if self.ahead.is_empty() {
            self.gap_deadline = Instant::now() + self.reorder_window;
        }
        self.ahead.insert(event.position, event);
    }

    /// The held event that continues the position, if any.
    fn take_ahead(&mut self) -> Option<Arc<RecordedEvent>> {
        let first = self.ahead.first_entry()?;
        if *first.key() != self.position + 1 {
            return None;
        }
        let event = first.remove();
        self.position = event.position;
        Some(event)
    }

    /// Adds to `batch` the bus events that are already waiting and continue
    /// it, so a burst is handed out (and committed by a projection) at once.
    fn drain_ready(&mut self, batch: &mut Vec<Arc<RecordedEvent>>) {
        while batch.len() < PAGE as usize {
            if let Some(event) = self.take_ahead() {
                batch.push(event);
                continue;
            }
            let Some(bus) = &mut self.bus else { return };
            let waker = std::task::Waker::noop();
            let mut context = std::task::Context::from_waker(waker);
            match bus.as_mut().poll_next(&mut context) {
                std::task::Poll::Ready(Some(BusItem::Event(event)))
                    if event.position == self.position + 1 =>
                {
                    self.position = event.position;
                    batch.push(event);
                }
                std::task::Poll::Ready(Some(BusItem::Event(event)))
                    if event.position <= self.position => {}
                std::task::Poll::Ready(Some(BusItem::Event(event))) => {
                    // A jump: held until the missing one comes.
                    self.hold(event);
                    if self.must_read {
                        return;
                    }
                }
                std::task::Poll::Ready(Some(BusItem::Lagged { .. })) => {
                    // The next call reads the store.
                    self.must_read = true;
                    return;
                }
                std::task::Poll::Ready(None) | std::task::Poll::Pending => return,
            }
        }
    }
}
