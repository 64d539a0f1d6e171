use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use larder_bus::{BusItem, EventBus};
use larder_store::{
    CatchUp, Database, EventData, EventFilter, EventStore, ExpectedVersion, FILTER_SCAN_WINDOW,
    MAX_PAGE_SIZE, Metadata, NewEvent, StoreError, StreamAppend,
};
use tokio_stream::StreamExt;

use crate::helpers::{Backend, TestStore, event, events, eventually, metadata};
pub use crate::idempotency::*;

pub async fn appends_and_reads_a_stream(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;

    let first = store
        .append("item-a", ExpectedVersion::NoStream, events(3))
        .await
        .unwrap();
    assert_eq!(first.version(), 3);
    assert_eq!(first.last_position, 3);
    let second = store
        .append("item-a", ExpectedVersion::Exact(3), events(2))
        .await
        .unwrap();
    assert_eq!(second.version(), 5);
    assert_eq!(second.last_position, 5);

    let all = store.read_stream("item-a", 1, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let tail = store.read_stream("item-a", 4, 100).await.unwrap();
    assert_eq!(tail.len(), 2);
    assert_eq!(store.read_stream("item-a", 1, 2).await.unwrap().len(), 2);
    assert!(
        store
            .read_stream("nothing-here", 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.stream_version("item-a").await.unwrap(), 5);
    assert_eq!(store.stream_version("nothing-here").await.unwrap(), 0);

    // What went in comes out, metadata included.
    let sent = event(7);
    store
        .append("item-b", ExpectedVersion::Any, vec![sent.clone()])
        .await
        .unwrap();
    let read = &store.read_stream("item-b", 1, 1).await.unwrap()[0];
    assert_eq!(read.id, sent.id);
    assert_eq!(read.event_type, sent.event_type);
    assert_eq!(read.schema_version, 1);
    assert_eq!(read.data, sent.data);
    assert_eq!(read.metadata, sent.metadata);
    assert_eq!(read.position, 6);
    assert_eq!(read.version, 1);

    // ...and an event is found by its id; an unknown id finds nothing.
    let found = store.read_event(sent.id).await.unwrap().expect("stored");
    assert_eq!((found.stream.as_str(), found.position), ("item-b", 6));
    assert_eq!(found.metadata, sent.metadata);
    assert!(
        store
            .read_event(uuid::Uuid::new_v4())
            .await
            .unwrap()
            .is_none()
    );
}

/// Events of one commit that share some fields and differ in others (set,
/// changed, back to an earlier value, absent) each come back as sent.
pub async fn every_event_of_a_commit_keeps_its_own_fields(backend: Backend) {
    let t = TestStore::new(backend).await;
    let base = metadata("acme", "s1", "e1");
    let variants = [
        base.clone(),
        base.clone(),
        Metadata {
            store: None,
            actor: None,
            session: None,
            correlation_id: None,
            ..base.clone()
        },
        Metadata {
            tenant: "globex".into(),
            entity_type: "store".into(),
            entity_id: "e2".into(),
            causation_id: Some(uuid::Uuid::new_v4()),
            ..base.clone()
        },
        base.clone(),
        Metadata {
            actor: Some("another".into()),
            ..base
        },
    ];
    let sent: Vec<NewEvent> = variants
        .iter()
        .enumerate()
        .map(|(n, metadata)| {
            let event_type = if n % 2 == 0 { "Happened" } else { "Changed" };
            NewEvent::new(
                event_type,
                1,
                serde_json::json!({ "n": n }),
                metadata.clone(),
            )
        })
        .collect();
    let appends = vec![
        StreamAppend::new("first", ExpectedVersion::NoStream, sent[..4].to_vec()),
        StreamAppend::new("second", ExpectedVersion::NoStream, sent[4..].to_vec()),
    ];
    t.store.append_streams(appends).await.unwrap();

    let read = t
        .store
        .read_all(0, 100, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(read.events.len(), sent.len());
    for (read, sent) in read.events.iter().zip(&sent) {
        assert_eq!(read.id, sent.id);
        assert_eq!(read.event_type, sent.event_type);
        assert_eq!(read.data, sent.data);
        assert_eq!(read.metadata, sent.metadata, "event {}", read.position);
    }
    let streams: Vec<_> = read.events.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(
        streams,
        ["first", "first", "first", "first", "second", "second"]
    );
}

pub async fn event_data_reads_back_as_written(backend: Backend) {
    let t = TestStore::new(backend).await;
    let written = r#"{ "z": 1, "a": [true, null],  "note": "caf\u00e9 \"3\"" }"#;
    let data = EventData::from_json(written.to_owned()).unwrap();
    let event = NewEvent::new("Noted", 1, data, metadata("acme", "s", "e"));
    t.store
        .append("s", ExpectedVersion::NoStream, vec![event])
        .await
        .unwrap();

    let by_stream = t.store.read_stream("s", 1, 10).await.unwrap();
    let all = t
        .store
        .read_all(0, 10, &EventFilter::default())
        .await
        .unwrap();
    for read in [&by_stream[0], &all.events[0]] {
        assert_eq!(
            read.data.json(),
            written,
            "key order, spacing and escapes kept"
        );
    }
}

pub async fn a_wrong_expected_version_is_a_conflict_that_appends_nothing(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    store
        .append("s", ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();

    for expected in [
        ExpectedVersion::NoStream,
        ExpectedVersion::Exact(1),
        ExpectedVersion::Exact(3),
    ] {
        match store.append("s", expected, events(1)).await {
            Err(StoreError::WrongExpectedVersion { stream, actual, .. }) => {
                assert_eq!(stream, "s");
                assert_eq!(actual, 2);
            }
            other => panic!("expected a conflict for {expected}, got {other:?}"),
        }
    }
    match store
        .append("new", ExpectedVersion::Exact(1), events(1))
        .await
    {
        Err(StoreError::WrongExpectedVersion { actual: 0, .. }) => {}
        other => panic!("expected a conflict on a missing stream, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), 2);
    assert_eq!(
        store
            .append("s", ExpectedVersion::Any, events(1))
            .await
            .unwrap()
            .version(),
        3
    );
}

pub async fn concurrent_writers_to_one_stream_never_lose_an_update(backend: Backend) {
    let t = TestStore::new(backend).await;
    t.store
        .append("contended", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();

    // Eight writers each read the version and append expecting it, like
    // eight clerks saving the same item: each version is won exactly once.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = t.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut wins = 0;
            let mut conflicts = 0;
            while wins < 10 {
                let version = store.stream_version("contended").await.unwrap();
                match store
                    .append("contended", ExpectedVersion::Exact(version), events(1))
                    .await
                {
                    Ok(result) => {
                        assert_eq!(result.version(), version + 1);
                        wins += 1;
                    }
                    Err(StoreError::WrongExpectedVersion { .. }) => conflicts += 1,
                    Err(other) => panic!("{other:?}"),
                }
            }
            conflicts
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let stream = t.store.read_stream("contended", 1, 1000).await.unwrap();
    assert_eq!(stream.len(), 81);
    assert!(
        stream
            .iter()
            .enumerate()
            .all(|(i, e)| e.version == i as u64 + 1)
    );
}

pub async fn retrying_an_append_with_the_same_ids_stores_nothing_twice(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    store
        .append("other", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    let batch = events(3);

    let original = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    store
        .append("other", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    let retried = store
        .append("s", ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let retried_any = store
        .append("s", ExpectedVersion::Any, batch)
        .await
        .unwrap();

    assert_eq!(retried, original);
    assert_eq!(retried_any, original);
    assert_eq!(original.last_position, 4);
    assert_eq!(store.read_stream("s", 1, 100).await.unwrap().len(), 3);
    assert_eq!(store.head().await.unwrap(), 5);
}

pub async fn reusing_an_event_id_elsewhere_is_refused(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    let stored = event(1);
    store
        .append("s", ExpectedVersion::NoStream, vec![stored.clone()])
        .await
        .unwrap();

    let in_another_stream = store
        .append("t", ExpectedVersion::Any, vec![stored.clone()])
        .await;
    let mixed_with_new = store
        .append("s", ExpectedVersion::Any, vec![stored.clone(), event(2)])
        .await;
    let at_another_version = store
        .append("s", ExpectedVersion::Exact(1), vec![stored.clone()])
        .await;
    // New events ahead of the stored one, in the same stream and in another:
    // whatever was written for them before the stored id was met is undone.
    let after_new = store
        .append("s", ExpectedVersion::Any, vec![event(3), stored.clone()])
        .await;
    let after_new_stream = store
        .append_streams(vec![
            StreamAppend::new("u", ExpectedVersion::NoStream, events(2)),
            StreamAppend::new("s", ExpectedVersion::Any, vec![stored.clone()]),
        ])
        .await;

    for outcome in [
        in_another_stream,
        mixed_with_new,
        at_another_version,
        after_new,
        after_new_stream,
    ] {
        match outcome {
            Err(StoreError::DuplicateEventId { id }) => assert_eq!(id, stored.id),
            other => panic!("expected a duplicate id, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), 1);
}

pub async fn a_multi_stream_append_is_all_or_nothing(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    store
        .append("from", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();
    store
        .append("to", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();

    let conflicting = store
        .append_streams(vec![
            StreamAppend::new("from", ExpectedVersion::Exact(1), events(2)),
            StreamAppend::new("to", ExpectedVersion::Exact(7), events(2)),
        ])
        .await;
    assert!(
        matches!(conflicting, Err(StoreError::WrongExpectedVersion { ref stream, actual: 1, .. }) if stream == "to")
    );
    assert_eq!(store.head().await.unwrap(), 2);
    assert_eq!(store.stream_version("from").await.unwrap(), 1);

    let result = store
        .append_streams(vec![
            StreamAppend::new("from", ExpectedVersion::Exact(1), events(2)),
            StreamAppend::new("to", ExpectedVersion::Exact(1), events(2)),
            StreamAppend::new("guard", ExpectedVersion::NoStream, vec![]),
        ])
        .await
        .unwrap();
    assert_eq!(result.version_of("from"), Some(3));
    assert_eq!(result.version_of("to"), Some(3));
    assert_eq!(result.version_of("guard"), Some(0));
    assert_eq!(result.last_position, 6);
    let page = store
        .read_all(2, 100, &EventFilter::default())
        .await
        .unwrap();
    let streams: Vec<&str> = page.events.iter().map(|e| e.stream.as_str()).collect();
    assert_eq!(streams, vec!["from", "from", "to", "to"]);
}

pub async fn read_all_filters_and_pages(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    let with = |tenant: &str, shop: &str, entity: &str| {
        NewEvent::new(
            "Happened",
            1,
            serde_json::json!({}),
            metadata(tenant, shop, entity),
        )
    };
    for i in 0..10 {
        let tenant = if i % 2 == 0 { "acme" } else { "globex" };
        let shop = if i % 3 == 0 { "s1" } else { "s2" };
        store
            .append(
                &format!("e{i}"),
                ExpectedVersion::Any,
                vec![with(tenant, shop, &format!("e{i}"))],
            )
            .await
            .unwrap();
    }

    let acme = store
        .read_all(0, 100, &EventFilter::tenant("acme"))
        .await
        .unwrap();
    assert_eq!(
        acme.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3, 5, 7, 9]
    );
    assert_eq!(acme.scanned_to, 10);
    assert!(acme.reached_head);

    let acme_s1 = store
        .read_all(0, 100, &EventFilter::tenant("acme").store("s1"))
        .await
        .unwrap();
    assert_eq!(
        acme_s1
            .events
            .iter()
            .map(|e| e.position)
            .collect::<Vec<_>>(),
        vec![1, 7]
    );

    let one = EventFilter::tenant("globex")
        .entity_type("item")
        .entity_id("e3");
    let entity = store.read_all(0, 100, &one).await.unwrap();
    assert_eq!(
        entity.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![4]
    );

    let first = store
        .read_all(0, 2, &EventFilter::tenant("acme"))
        .await
        .unwrap();
    assert_eq!(
        first.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1, 3]
    );
    assert_eq!(first.scanned_to, 3);
    assert!(!first.reached_head);
    let second = store
        .read_all(first.scanned_to, 2, &EventFilter::tenant("acme"))
        .await
        .unwrap();
    assert_eq!(
        second.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![5, 7]
    );

    let nobody = store
        .read_all(0, 100, &EventFilter::tenant("initech"))
        .await
        .unwrap();
    assert!(nobody.events.is_empty());
    assert_eq!(nobody.scanned_to, 10);
    let beyond = store
        .read_all(50, 100, &EventFilter::default())
        .await
        .unwrap();
    assert!(beyond.events.is_empty() && beyond.reached_head);
}

pub async fn concurrent_writers_and_a_tailer_see_every_position_once_in_order(backend: Backend) {
    const WRITERS: u64 = 8;
    const APPENDS: u64 = 500;
    const TOTAL: u64 = WRITERS * APPENDS;
    let t = TestStore::new(backend).await;

    // A raw tailer on the store alone (no bus): the ordering invariant itself.
    let store = t.shared();
    let raw_tailer = tokio::spawn(async move {
        let mut position = 0;
        while position < TOTAL {
            let page = store
                .read_all(position, 1000, &EventFilter::default())
                .await
                .unwrap();
            for event in page.events {
                assert_eq!(
                    event.position,
                    position + 1,
                    "tailer skipped or repeated a position"
                );
                position = event.position;
            }
            tokio::task::yield_now().await;
        }
        position
    });
    // A catch-up tailer on bus and store together, as consumers run.
    let mut tail = CatchUp::start(t.shared(), Some(t.bus.as_ref()), 0)
        .await
        .unwrap();
    let bus_tailer = tokio::spawn(async move {
        let mut seen = 0;
        while seen < TOTAL {
            for event in tail.next_batch().await.unwrap() {
                assert_eq!(event.position, seen + 1);
                seen = event.position;
            }
        }
        seen
    });

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let store = t.store.clone();
        writers.push(tokio::spawn(async move {
            let mut last = 0;
            for i in 0..APPENDS {
                let result = store
                    .append(&format!("writer-{w}"), ExpectedVersion::Exact(i), events(1))
                    .await
                    .unwrap();
                assert!(result.last_position > last);
                last = result.last_position;
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    let within = Duration::from_secs(30);
    assert_eq!(
        tokio::time::timeout(within, raw_tailer)
            .await
            .unwrap()
            .unwrap(),
        TOTAL
    );
    assert_eq!(
        tokio::time::timeout(within, bus_tailer)
            .await
            .unwrap()
            .unwrap(),
        TOTAL
    );
    let all = t
        .store
        .read_all(0, 10_000, &EventFilter::default())
        .await
        .unwrap();
    let ids: HashSet<_> = all.events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len() as u64, TOTAL);
}

pub async fn a_held_open_lower_transaction_is_not_skipped_by_a_tailer(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    store
        .append("s", ExpectedVersion::Any, events(3))
        .await
        .unwrap();

    // A writer (here: a raw transaction doing what an append does) takes the
    // write lock and inserts position 4, then stalls before committing.
    let raw = sqlx_insert_holding_lock(&t, 4).await;

    // Meanwhile another append starts; it must come after position 4.
    let later = {
        let store = t.store.clone();
        tokio::spawn(async move { store.append("s", ExpectedVersion::Any, events(1)).await })
    };
    if backend == Backend::Postgres {
        // Wait until the later append is blocked on the lock.
        let Database::Postgres(pool) = t.database() else {
            unreachable!()
        };
        eventually("the later append waits for the advisory lock", || {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(
                    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                )
                .fetch_one(&pool)
                .await
                .unwrap()
                    > 0
            }
        })
        .await;
    }
    // Nothing after 3 is visible while the lower transaction is open.
    let page = store
        .read_all(3, 100, &EventFilter::default())
        .await
        .unwrap();
    assert!(page.events.is_empty(), "{:?}", page.events);
    assert!(!later.is_finished());

    raw.commit().await;
    let result = tokio::time::timeout(Duration::from_secs(10), later)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(result.last_position, 5);
    let page = store
        .read_all(3, 100, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(
        page.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![4, 5]
    );
}

/// An open transaction holding the store's write lock with one inserted row.
enum RawTx {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl RawTx {
    async fn commit(self) {
        match self {
            RawTx::Sqlite(tx) => tx.commit().await.unwrap(),
            RawTx::Postgres(tx) => tx.commit().await.unwrap(),
        }
    }
}

async fn sqlx_insert_holding_lock(t: &TestStore, position: i64) -> RawTx {
    const INSERT: &str = "INSERT INTO events (position, id, stream, version, event_type, schema_version, data, \
        tenant, entity_type, entity_id, recorded_at) VALUES ($1, $2, 'raw', 1, 'Raw', 1, '{}', 'acme', 'item', 'raw', $3)";
    let id = uuid::Uuid::new_v4();
    let now = chrono::Utc::now();
    match t.database() {
        Database::Sqlite(pool) => {
            let mut tx = pool.begin_with(Database::SQLITE_BEGIN_WRITE).await.unwrap();
            sqlx::query(INSERT)
                .bind(position)
                .bind(id.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await
                .unwrap();
            RawTx::Sqlite(tx)
        }
        Database::Postgres(pool) => {
            let mut tx = pool.begin().await.unwrap();
            sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))")
                .bind(larder_store::APPEND_LOCK_CLASS)
                .execute(&mut *tx)
                .await
                .unwrap();
            sqlx::query(&INSERT.replace("'{}'", "'{}'::json"))
                .bind(position)
                .bind(id)
                .bind(now)
                .execute(&mut *tx)
                .await
                .unwrap();
            RawTx::Postgres(tx)
        }
    }
}

pub async fn bad_input_is_refused_and_appends_nothing(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    let huge = NewEvent::new(
        "Big",
        1,
        serde_json::json!({ "blob": "x".repeat(70 * 1024) }),
        metadata("acme", "s", "e"),
    );
    let not_object = NewEvent::new(
        "Odd",
        1,
        serde_json::json!([1, 2]),
        metadata("acme", "s", "e"),
    );
    let no_tenant = NewEvent::new("Odd", 1, serde_json::json!({}), metadata("", "s", "e"));
    let no_type = NewEvent::new("", 1, serde_json::json!({}), metadata("acme", "s", "e"));
    let twice = event(1);

    let cases: Vec<(&str, Vec<StreamAppend>)> = vec![
        (
            "empty stream name",
            vec![StreamAppend::new("", ExpectedVersion::Any, events(1))],
        ),
        (
            "control characters",
            vec![StreamAppend::new("a\nb", ExpectedVersion::Any, events(1))],
        ),
        (
            "oversized event",
            vec![StreamAppend::new("s", ExpectedVersion::Any, vec![huge])],
        ),
        (
            "array data",
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::Any,
                vec![not_object],
            )],
        ),
        (
            "missing tenant",
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::Any,
                vec![no_tenant],
            )],
        ),
        (
            "missing type",
            vec![StreamAppend::new("s", ExpectedVersion::Any, vec![no_type])],
        ),
        ("no streams", vec![]),
        (
            "same id twice",
            vec![StreamAppend::new(
                "s",
                ExpectedVersion::Any,
                vec![twice.clone(), twice],
            )],
        ),
        (
            "same stream twice",
            vec![
                StreamAppend::new("s", ExpectedVersion::Any, events(1)),
                StreamAppend::new("s", ExpectedVersion::Any, events(1)),
            ],
        ),
        (
            "too many events",
            vec![StreamAppend::new("s", ExpectedVersion::Any, events(10_001))],
        ),
    ];
    for (case, appends) in cases {
        match store.append_streams(appends).await {
            Err(StoreError::Invalid(_) | StoreError::EventTooLarge { .. }) => {}
            other => panic!("{case}: expected a typed refusal, got {other:?}"),
        }
    }
    assert_eq!(store.head().await.unwrap(), 0);
    // The store still works.
    assert_eq!(
        store
            .append("s", ExpectedVersion::NoStream, events(1))
            .await
            .unwrap()
            .last_position,
        1
    );
}

pub async fn positions_continue_after_a_restart(backend: Backend) {
    let t = TestStore::new(backend).await;
    t.store
        .append("s", ExpectedVersion::Any, events(5))
        .await
        .unwrap();

    let reopened = t.reopen(None).await;
    let result = reopened
        .append("s", ExpectedVersion::Exact(5), events(2))
        .await
        .unwrap();
    assert_eq!(result.last_position, 7);
    assert_eq!(result.version(), 7);
    assert_eq!(reopened.head().await.unwrap(), 7);
}

pub async fn committed_events_are_published_in_position_order(backend: Backend) {
    let t = TestStore::new(backend).await;
    let mut bus = t.bus.subscribe().await.unwrap();

    let refused = t
        .store
        .append("s", ExpectedVersion::Exact(3), events(1))
        .await;
    assert!(refused.is_err());
    t.store
        .append("s", ExpectedVersion::NoStream, events(2))
        .await
        .unwrap();
    t.store
        .append("t", ExpectedVersion::NoStream, events(1))
        .await
        .unwrap();

    let mut positions = Vec::new();
    while positions.len() < 3 {
        match tokio::time::timeout(Duration::from_secs(5), bus.next())
            .await
            .unwrap()
        {
            Some(BusItem::Event(event)) => positions.push((event.position, event.stream.clone())),
            other => panic!("unexpected bus item {other:?}"),
        }
    }
    assert_eq!(
        positions,
        vec![(1, "s".into()), (2, "s".into()), (3, "t".into())]
    );
}

pub async fn a_tail_refills_from_the_store_when_the_bus_lags(backend: Backend) {
    let t = TestStore::with_bus_capacity(backend, 4).await;
    let mut tail = CatchUp::start(t.shared(), Some(t.bus.as_ref()), 0)
        .await
        .unwrap();

    // The tail is not reading while 100 appends go by: its bus subscription
    // overflows (capacity 4) and must be refilled from the store.
    for i in 0..100 {
        t.store
            .append("s", ExpectedVersion::Exact(i), events(1))
            .await
            .unwrap();
    }
    let mut seen = 0;
    while seen < 100 {
        let batch = tokio::time::timeout(Duration::from_secs(10), tail.next_batch())
            .await
            .unwrap()
            .unwrap();
        for event in batch {
            assert_eq!(event.position, seen + 1);
            seen = event.position;
        }
    }
    // And it goes on live afterwards.
    t.store
        .append("s", ExpectedVersion::Any, events(1))
        .await
        .unwrap();
    let batch = tokio::time::timeout(Duration::from_secs(10), tail.next_batch())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch[0].position, 101);
    assert_eq!(tail.position(), 101);
}

/// Events of several nodes reach a bus out of position order: the tail
/// holds the early one until the missing one comes, and hands both out in
/// order, without a store read. The store here has neither (they are
/// another store's), so a read could not bring them back: a tail that
/// dropped the early event to read the store would lose it.
pub async fn a_tail_waits_for_a_missing_position_that_comes_on_the_bus(backend: Backend) {
    let t = TestStore::new(backend).await;
    let elsewhere = TestStore::new(backend).await;
    elsewhere
        .store
        .append("s", ExpectedVersion::Any, events(2))
        .await
        .unwrap();
    let page = elsewhere
        .store
        .read_all(0, 10, &EventFilter::default())
        .await
        .unwrap();
    let [first, second] = [&page.events[0], &page.events[1]].map(|e| Arc::new(e.clone()));
    let mut tail = CatchUp::start(t.shared(), Some(t.bus.as_ref()), 0)
        .await
        .unwrap()
        .with_poll_interval(Duration::from_secs(30));
    t.bus.publish(vec![second]).await.unwrap();
    t.bus.publish(vec![first]).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let batch = tokio::time::timeout(Duration::from_secs(5), tail.next_batch())
            .await
            .expect("both events within 5 s")
            .unwrap();
        seen.extend(batch.iter().map(|e| e.position));
    }
    assert_eq!(seen, vec![1, 2]);
}

pub async fn a_tail_without_a_bus_polls_the_store(backend: Backend) {
    let t = TestStore::new(backend).await;
    // A second node's store that publishes nowhere: its events reach this
    // tail only through the store.
    let other_node = t.reopen(None).await;
    let mut tail = CatchUp::start(t.shared(), Some(t.bus.as_ref()), 0)
        .await
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));
    other_node
        .append("s", ExpectedVersion::Any, events(3))
        .await
        .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let batch = tokio::time::timeout(Duration::from_secs(10), tail.next_batch())
            .await
            .unwrap()
            .unwrap();
        seen.extend(batch.iter().map(|e| e.position));
    }
    assert_eq!(seen, vec![1, 2, 3]);

    let lone: Arc<dyn EventStore> = Arc::new(other_node);
    let mut polling = CatchUp::start(lone, None::<&dyn EventBus<_>>, 1)
        .await
        .unwrap()
        .with_poll_interval(Duration::from_millis(50));
    let batch = tokio::time::timeout(Duration::from_secs(10), polling.next_batch())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        batch.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![2, 3]
    );
}

pub async fn a_sparse_filtered_read_pages_through_scan_windows(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    let globex = |n: u64| {
        let mut event = event(n);
        event.metadata = metadata("globex", "g1", "g");
        event
    };
    store
        .append("g", ExpectedVersion::NoStream, vec![globex(0)])
        .await
        .unwrap();
    let filler = FILTER_SCAN_WINDOW + 2_000;
    for chunk in 0..filler / 1_000 {
        store
            .append(
                "acme",
                ExpectedVersion::Exact(chunk * 1_000),
                (0..1_000).map(event).collect(),
            )
            .await
            .unwrap();
    }
    store
        .append("g", ExpectedVersion::Exact(1), vec![globex(1)])
        .await
        .unwrap();
    let head = filler + 2;

    let filter = EventFilter::tenant("globex");
    let first = store.read_all(0, 100, &filter).await.unwrap();
    assert_eq!(
        first.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(first.scanned_to, FILTER_SCAN_WINDOW);
    assert!(!first.reached_head);

    let second = store
        .read_all(first.scanned_to, 100, &filter)
        .await
        .unwrap();
    assert_eq!(
        second.events.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![head]
    );
    assert_eq!(second.scanned_to, head);
    assert!(second.reached_head);

    // Unfiltered reads are bounded by the page size alone.
    let all = store
        .read_all(0, MAX_PAGE_SIZE, &EventFilter::default())
        .await
        .unwrap();
    assert_eq!(all.events.len(), MAX_PAGE_SIZE as usize);
}
