//! Publishing happens after commit, never before, never for a failed append
//! (the bus is a mockall mock here, to observe exactly when it is called).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use larder_bus::{BusError, BusStream, EventBus};
use larder_store::{EventStore, ExpectedVersion, RecordedEvent, SqlEventStore, StoreOptions};
use mockall::mock;

use crate::helpers::{TempFile, events};

mock! {
    Bus {}
    #[async_trait]
    impl EventBus<RecordedEvent> for Bus {
        async fn publish(&self, events: Vec<Arc<RecordedEvent>>) -> Result<(), BusError>;
        async fn subscribe(&self) -> Result<BusStream<RecordedEvent>, BusError>;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_published_once_committed_and_failed_appends_publish_nothing() {
    let file = TempFile::new_public();
    let url = format!("sqlite://{}", file.0.display());
    // Another connection to the same file: what it sees is committed.
    let observer = SqlEventStore::connect(&url, StoreOptions::default())
        .await
        .unwrap();
    let calls = Arc::new(AtomicUsize::new(0));

    let mut bus = MockBus::new();
    let seen = calls.clone();
    bus.expect_publish().times(1).returning(move |published| {
        seen.fetch_add(1, Ordering::SeqCst);
        assert_eq!(
            published.iter().map(|e| e.position).collect::<Vec<_>>(),
            vec![1, 2]
        );
        let handle = tokio::runtime::Handle::current();
        let head = tokio::task::block_in_place(|| handle.block_on(observer.head())).unwrap();
        assert_eq!(head, 2, "published before the events were committed");
        Ok(())
    });
    let store = SqlEventStore::connect(&url, StoreOptions::default().bus(Arc::new(bus)))
        .await
        .unwrap();

    assert!(
        store
            .append("s", ExpectedVersion::Exact(9), events(1))
            .await
            .is_err()
    );
    store
        .append("s", ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    assert!(
        store
            .append("s", ExpectedVersion::NoStream, events(1))
            .await
            .is_err()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_bus_does_not_fail_the_append() {
    let file = TempFile::new_public();
    let mut bus = MockBus::new();
    bus.expect_publish()
        .returning(|_| Err(BusError::Unavailable("broker down".into())));
    let url = format!("sqlite://{}", file.0.display());
    let store = SqlEventStore::connect(&url, StoreOptions::default().bus(Arc::new(bus)))
        .await
        .unwrap();

    let result = store
        .append("s", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    assert_eq!(result.last_position, 1);
    assert_eq!(store.read_stream("s", 1, 10).await.unwrap().len(), 1);
}
