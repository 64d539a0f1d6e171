//! Publishing the SQLite writer's committed batches to the bus, in commit
//! order, each before its callers are answered.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

use larder_bus::{BusError, EventBus};
use tokio::sync::mpsc;

use crate::RecordedEvent;
use crate::batch::{Answers, answer};

/// Publishes committed batches in commit order, each before its callers are
/// answered. A publish that completes at once (an in-process bus) runs on
/// the writer thread; one that has to wait finishes on a tokio task, and the
/// batches after it queue behind it there, so the order holds.
pub(super) struct Publisher {
    bus: Arc<dyn EventBus<RecordedEvent>>,
    runtime: tokio::runtime::Handle,
    /// Unbounded: it holds at most one entry per append in flight, and an
    /// inline commit runs on a runtime thread, which must not block.
    waiting: mpsc::UnboundedSender<Waiting>,
    /// Batches handed to the task and not yet answered.
    behind: Arc<AtomicUsize>,
}

type Publish = Pin<Box<dyn Future<Output = Result<(), BusError>> + Send>>;

struct Waiting {
    publish: Publish,
    answers: Answers,
}

impl Publisher {
    /// Must be called inside the runtime (it spawns the waiting task).
    pub(super) fn start(bus: Arc<dyn EventBus<RecordedEvent>>) -> Self {
        let (waiting, mut queue) = mpsc::unbounded_channel::<Waiting>();
        let behind = Arc::new(AtomicUsize::new(0));
        let done = behind.clone();
        tokio::spawn(async move {
            while let Some(Waiting { publish, answers }) = queue.recv().await {
                report(publish.await);
                answer(answers);
                done.fetch_sub(1, Ordering::Release);
            }
        });
        Self {
            bus,
            runtime: tokio::runtime::Handle::current(),
            waiting,
            behind,
        }
    }

    pub(super) fn deliver(&self, events: Vec<Arc<RecordedEvent>>, answers: Answers) {
        if events.is_empty() && self.behind.load(Ordering::Acquire) == 0 {
            return answer(answers);
        }
        let bus = self.bus.clone();
        let mut publish: Publish = Box::pin(async move {
            if events.is_empty() {
                return Ok(());
            }
            bus.publish(events).await
        });
        if self.behind.load(Ordering::Acquire) == 0 {
            // Nothing is waiting before this batch: try to publish here.
            let _runtime = self.runtime.enter();
            let mut context = Context::from_waker(Waker::noop());
            if let Poll::Ready(result) = publish.as_mut().poll(&mut context) {
                report(result);
                return answer(answers);
            }
        }
        self.behind.fetch_add(1, Ordering::AcqRel);
        if let Err(error) = self.waiting.send(Waiting { publish, answers }) {
            // The runtime is gone: nobody can publish or be answered.
            self.behind.fetch_sub(1, Ordering::Release);
            drop(error);
        }
    }
}

fn report(result: Result<(), BusError>) {
    // A failed publish loses nothing; consumers refill from the store.
    if let Err(error) = result {
        tracing::warn!(%error, "publishing committed events failed; consumers will refill from the store");
    }
}
