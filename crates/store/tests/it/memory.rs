//! An in-memory SQLite store (`sqlite::memory:`): the writer's own
//! connection opens the same shared in-memory database as the read pool.

use larder_store::{EventStore, ExpectedVersion, SqlEventStore, StoreOptions};

use crate::helpers::events;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_memory_store_appends_and_reads() {
    let store = SqlEventStore::connect("sqlite::memory:", StoreOptions::default())
        .await
        .unwrap();

    store
        .append("s", ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    let result = store
        .append("s", ExpectedVersion::Exact(3), events(1))
        .await
        .unwrap();

    assert_eq!(result.last_position, 4);
    assert_eq!(store.read_stream("s", 1, 10).await.unwrap().len(), 4);
    assert_eq!(store.head().await.unwrap(), 4);
}
