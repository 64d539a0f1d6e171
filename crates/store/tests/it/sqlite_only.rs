//! What only the SQLite backend does: checkpoints off the append path, and
//! appends committed on the caller's thread beside the writer thread.

use larder_store::{EventStore, ExpectedVersion};

use crate::helpers::{Backend, TestStore, events, eventually};

/// The checkpoint thread copies commits from the WAL into the database file
/// soon after they are made. The writer's own automatic checkpoint waits for
/// thousands of WAL pages, far more than this test writes, so without the
/// thread the database file would not grow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_reach_the_database_file_without_waiting_for_the_writer() {
    let t = TestStore::new(Backend::Sqlite).await;
    let path = t.url.trim_start_matches("sqlite://").to_owned();
    let size = || std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    let before = size();
    for round in 0..5 {
        t.store
            .append("s", ExpectedVersion::Exact(round * 100), events(100))
            .await
            .unwrap();
    }
    eventually("the database file holds the appended pages", || async {
        size() > before + 100 * 1024
    })
    .await;
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
