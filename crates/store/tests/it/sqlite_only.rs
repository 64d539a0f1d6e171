//! What only the SQLite backend does: checkpoints off the append path, and
//! appends committed on the caller's thread beside the writer thread.

use std::time::Duration;

use larder_store::{Database, EventStore, ExpectedVersion};

use crate::helpers::{Backend, TestStore, events, eventually};

/// The checkpoint thread copies commits from the WAL into the database file
/// once about 1,000 pages have gone to the WAL. The writer's own automatic
/// checkpoint waits for 16,000 pages, more than this test writes (~1,500),
/// so without the thread the database file would not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_the_database_file_without_waiting_for_the_writer() {
    let t = TestStore::new(Backend::Sqlite).await;
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    for round in 0..80 {
        t.store
            .append("s", ExpectedVersion::Exact(round * 100), events(100))
            .await
            .unwrap();
    }
    eventually("the database file holds the appended pages", || async {
        size() > before + 1024 * 1024
    })
    .await;
}

/// Takes SQLite's write lock on the store's database, as a read model's
/// transaction does, until the returned transaction ends.
async fn hold_write_lock(t: &TestStore) -> sqlx::Transaction<'static, sqlx::Sqlite> {
    let Database::Sqlite(pool) = t.database() else {
        panic!("a SQLite store has a SQLite database");
    };
    let mut holder = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS lock_holder (n INTEGER)")
        .execute(&mut *holder)
        .await
        .unwrap();
    holder
}

/// Single appends from one task commit on the caller's thread; concurrent
/// ones share the writer thread's commits. Mixed, they keep one gap-free
/// order with every append answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inline_and_queued_appends_interleave_without_gaps() {
    let t = TestStore::new(Backend::Sqlite).await;
    let store = t.store.clone();
    let lone = tokio::spawn(async move {
        for version in 0..300 {
            store
                .append("lone", ExpectedVersion::Exact(version), events(1))
                .await
                .unwrap();
        }
    });
    let crowd: Vec<_> = (0..8)
        .map(|task| {
            let store = t.store.clone();
            tokio::spawn(async move {
                for version in 0..50 {
                    store
                        .append(
                            &format!("crowd-{task}"),
                            ExpectedVersion::Exact(version * 3),
                            events(3),
                        )
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    lone.await.unwrap();
    for task in crowd {
        task.await.unwrap();
    }
    let expected = 300 + 8 * 50 * 3;
    let page = t
        .store
        .read_all(0, 10_000, &larder_store::EventFilter::default())
        .await
        .unwrap();
    let positions: Vec<u64> = page.events.iter().map(|e| e.position).collect();
    assert_eq!(positions, (1..=expected).collect::<Vec<_>>());
    assert_eq!(t.store.stream_version("lone").await.unwrap(), 300);
    assert_eq!(t.store.stream_version("crowd-7").await.unwrap(), 150);
}

/// A read model kept in the same database takes SQLite's write lock in an
/// async transaction. On a runtime with one thread (a server pinned to one
/// CPU), an append must not wait for that lock on the runtime's thread: the
/// transaction holding it needs that thread to commit. The append waits on
/// the writer thread instead, and completes once the lock is released.
#[tokio::test(flavor = "current_thread")]
async fn an_append_does_not_block_the_runtime_while_a_read_model_holds_the_write_lock() {
    let t = TestStore::new(Backend::Sqlite).await;
    let read_model = hold_write_lock(&t).await;

    let store = t.store.clone();
    let mut append = tokio::spawn(async move {
        store
            .append("s", ExpectedVersion::NoStream, events(1))
            .await
    });
    // The runtime keeps running while the append waits for the lock: a
    // 300 ms timer fires long before the 5 s busy timeout would let a
    // blocked runtime thread go.
    let started = std::time::Instant::now();
    let early = tokio::time::timeout(Duration::from_millis(300), &mut append).await;
    assert!(
        early.is_err(),
        "the append finished while the lock was held: {early:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the runtime thread was blocked for {:?}",
        started.elapsed()
    );

    read_model.commit().await.unwrap();
    let appended = tokio::time::timeout(Duration::from_secs(5), append)
        .await
        .expect("the append completes once the lock is free")
        .unwrap()
        .unwrap();
    assert_eq!(appended.version(), 1);
}

/// The writer first decides a batch on stream versions alone and lets the
/// unique index on event ids catch retries. A retry with `Any` that shares a
/// commit with new appends is found on insert and the batch is decided again
/// on its stored ids: the retry gets its original result, the new appends
/// are committed once each, with no gap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_sharing_a_commit_with_new_appends_is_answered_from_its_stored_ids() {
    let t = TestStore::new(Backend::Sqlite).await;
    let batch = events(3);
    let original = t
        .store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();

    // Hold SQLite's write lock so the appends below queue for the writer
    // thread and commit together once it is released.
    let holder = hold_write_lock(&t).await;
    let append = |stream: &'static str, events| {
        let store = t.store.clone();
        tokio::spawn(async move { store.append(stream, ExpectedVersion::Any, events).await })
    };
    let first = append("a", events(2));
    let retry = append("s", batch);
    let after = append("b", events(2));
    let waiting = async {
        for task in [&first, &retry, &after] {
            while !task.is_finished() {
                tokio::task::yield_now().await;
            }
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_millis(300), waiting)
            .await
            .is_err(),
        "an append finished while the write lock was held"
    );
    holder.commit().await.unwrap();

    let first = first.await.unwrap().unwrap();
    let retried = retry.await.unwrap().unwrap();
    let after = after.await.unwrap().unwrap();
    assert_eq!(retried, original);
    let mut positions = vec![first.last_position, after.last_position];
    positions.sort_unstable();
    assert_eq!(positions, vec![5, 7]);
    assert_eq!(t.store.read_stream("s", 1, 100).await.unwrap().len(), 3);
    assert_eq!(t.store.head().await.unwrap(), 7);
    let all = t.store.read_all(0, 100, &Default::default()).await.unwrap();
    let stored: Vec<u64> = all.events.iter().map(|e| e.position).collect();
    assert_eq!(stored, (1..=7).collect::<Vec<_>>());
}
