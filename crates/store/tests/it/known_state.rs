//! PostgreSQL's writer plans against what it already knows of the log (the
//! head after its last commit, the versions of streams it has seen or that
//! an append expects) and appends in one statement that checks the streams'
//! versions under the lock and places the batch after the head there. These
//! tests make that knowledge stale or insufficient on purpose: another store
//! on the same schema, idempotent retries, wrong expected versions.

use std::collections::HashMap;

use larder_store::{EventFilter, EventStore, ExpectedVersion, StoreError, StreamAppend};

use crate::helpers::{Backend, TestStore, events};

/// Every position from 1 to the head exactly once, and every stream's
/// versions 1.. in position order.
async fn assert_log_is_gap_free(store: &impl EventStore, expected_events: u64) {
    let head = store.head().await.unwrap();
    assert_eq!(head, expected_events);
    let mut after = 0;
    let mut versions: HashMap<String, u64> = HashMap::new();
    loop {
        let page = store
            .read_all(after, 1000, &EventFilter::default())
            .await
            .unwrap();
        for event in &page.events {
            assert_eq!(
                event.position,
                after + 1,
                "a position is missing or repeated"
            );
            after = event.position;
            let version = versions.entry(event.stream.clone()).or_default();
            *version += 1;
            assert_eq!(
                event.version, *version,
                "stream {} skips a version",
                event.stream
            );
        }
        if page.reached_head {
            break;
        }
    }
    assert_eq!(after, head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_appending_alternately_to_one_stream_stay_consistent() {
    let t = TestStore::new(Backend::Postgres).await;
    let a = t.store.clone();
    let b = t.reopen(None).await;

    a.append("s", ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    let mut version = 2;
    let mut head = 2;
    for round in 0..10 {
        // Each store's knowledge of "s" and of the head is stale every time:
        // the other one appended last.
        let (writer, other) = if round % 2 == 0 { (&b, &a) } else { (&a, &b) };
        let result = writer
            .append("s", ExpectedVersion::Exact(version), events(3))
            .await
            .unwrap();
        version += 3;
        head += 3;
        assert_eq!(result.version(), version);
        assert_eq!(result.last_position, head);

        // The other store still plans with the version it last saw.
        match other
            .append("s", ExpectedVersion::Exact(version - 3), events(1))
            .await
        {
            Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                assert_eq!(stream, "s");
                assert_eq!(actual, version);
            }
            outcome => panic!("expected a conflict, got {outcome:?}"),
        }
        // Moving the head elsewhere leaves "s" as it was.
        other
            .append(
                &format!("other-{round}"),
                ExpectedVersion::NoStream,
                events(1),
            )
            .await
            .unwrap();
        head += 1;
    }
    assert_log_is_gap_free(&a, head).await;
    assert_eq!(b.stream_version("s").await.unwrap(), version);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stale_version_is_caught_even_when_the_head_was_seen_since() {
    let t = TestStore::new(Backend::Postgres).await;
    let a = t.store.clone();
    let b = t.reopen(None).await;

    // A knows "s" at version 1.
    a.append("s", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    // B moves "s" on.
    b.append("s", ExpectedVersion::Exact(1), events(1))
        .await
        .unwrap();
    // A appends elsewhere: it learns the new head, not the new version of "s".
    a.append("t", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    match a.append("s", ExpectedVersion::Exact(1), events(1)).await {
        Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, 2),
        outcome => panic!("expected a conflict, got {outcome:?}"),
    }
    // Any is decided on the real version, not the one A remembered.
    let result = a
        .append("s", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    assert_eq!(result.version(), 3);
    assert_eq!(result.last_position, 4);
    assert_log_is_gap_free(&a, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_stores_writing_at_once_never_lose_or_repeat_a_position() {
    let t = TestStore::new(Backend::Postgres).await;
    let stores = [t.store.clone(), t.reopen(None).await];
    let mut tasks = Vec::new();
    for (n, store) in stores.iter().enumerate() {
        for task in 0..4 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..50 {
                    // Shared streams (Any) and streams of this task (Exact).
                    let shared = format!("shared-{}", i % 3);
                    store
                        .append(&shared, ExpectedVersion::Any, events(2))
                        .await
                        .unwrap();
                    let own = format!("own-{n}-{task}");
                    let expected = if i == 0 {
                        ExpectedVersion::NoStream
                    } else {
                        ExpectedVersion::Exact(i)
                    };
                    store.append(&own, expected, events(1)).await.unwrap();
                }
            }));
        }
    }
    for task in tasks {
        task.await.unwrap();
    }
    assert_log_is_gap_free(&stores[0], 2 * 4 * 50 * 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_the_writer_knows_the_stream_returns_the_original_result() {
    let t = TestStore::new(Backend::Postgres).await;
    let store = &t.store;
    let batch = events(3);
    let original = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    // Known and moved on: the retries below are planned against version 5.
    let later = events(2);
    let second = store
        .append("s", ExpectedVersion::Exact(3), later.clone())
        .await
        .unwrap();
    assert_eq!(second.version(), 5);

    // Refused on known state (expected 0, known 5): decided again on the
    // stored ids, it is a retry.
    let retried = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(retried, original);
    // Accepted on known state (Any): the insert finds the stored ids, and
    // deciding again makes it a retry.
    let retried_any = store
        .append("s", ExpectedVersion::Any, batch.clone())
        .await
        .unwrap();
    assert_eq!(retried_any, original);
    let retried_second = store
        .append("s", ExpectedVersion::Exact(3), later)
        .await
        .unwrap();
    assert_eq!(retried_second, second);
    // A multi-stream retry, known streams, accepted as planned.
    let multi = vec![
        StreamAppend::new("m1", ExpectedVersion::Any, events(1)),
        StreamAppend::new("m2", ExpectedVersion::Any, events(2)),
    ];
    let first_multi = store.append_streams(multi.clone()).await.unwrap();
    assert_eq!(store.append_streams(multi).await.unwrap(), first_multi);
    // A stored id reused for a new event is still refused.
    let mut reused = events(2);
    reused[1].id = batch[0].id;
    match store.append("s", ExpectedVersion::Any, reused).await {
        Err(StoreError::DuplicateEventId { id }) => assert_eq!(id, batch[0].id),
        outcome => panic!("expected a duplicate id, got {outcome:?}"),
    }

    // Nothing was stored twice, and the writer goes on from the right head.
    assert_eq!(store.head().await.unwrap(), 8);
    let next = store
        .append("s", ExpectedVersion::Exact(5), events(1))
        .await
        .unwrap();
    assert_eq!(next.version(), 6);
    assert_eq!(next.last_position, 9);
    assert_log_is_gap_free(store, 9).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_expected_version_on_a_known_stream_is_a_typed_conflict() {
    let t = TestStore::new(Backend::Postgres).await;
    let store = &t.store;
    store
        .append("s", ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    store
        .append("s", ExpectedVersion::Exact(2), events(2))
        .await
        .unwrap();

    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(2),
        ExpectedVersion::Exact(5),
    ] {
        match store.append("s", expected, events(1)).await {
            Err(StoreError::WrongExpectedVersion {
                stream,
                expected: reported,
                actual,
            }) => {
                assert_eq!(stream, "s");
                assert_eq!(reported, expected);
                assert_eq!(actual, 4);
            }
            outcome => panic!("expected a conflict for {expected}, got {outcome:?}"),
        }
    }
    // A multi-stream append with one wrong stream appends nothing.
    let outcome = store
        .append_streams(vec![
            StreamAppend::new("s", ExpectedVersion::Exact(4), events(1)),
            StreamAppend::new("new", ExpectedVersion::Exact(1), events(1)),
        ])
        .await;
    assert!(
        matches!(outcome, Err(StoreError::WrongExpectedVersion { ref stream, actual: 0, .. }) if stream == "new"),
        "{outcome:?}"
    );
    assert_eq!(store.head().await.unwrap(), 4);
    let result = store
        .append("s", ExpectedVersion::Exact(4), events(1))
        .await
        .unwrap();
    assert_eq!(result.version(), 5);
    assert_eq!(result.last_position, 5);
}
