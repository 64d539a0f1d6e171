//! Idempotency keys, on every backend: a key is stored in the same
//! transaction as the events of its append, once per (tenant, key), for the
//! retention time.

use std::collections::HashSet;
use std::time::Duration;

use larder_store::{
    EventStore, ExpectedVersion, Idempotency, IdempotentAppend, StoreError, StoreOptions,
    StreamAppend,
};

use crate::helpers::{Backend, TestStore, events};

fn key(tenant: &str, key: &str, fingerprint: &str) -> Idempotency {
    Idempotency {
        tenant: tenant.into(),
        key: key.into(),
        fingerprint: fingerprint.into(),
        status: 201,
        response: format!(r#"{{"made_by":"{fingerprint}"}}"#),
    }
}

fn one(stream: &str, expected: ExpectedVersion, count: u64) -> Vec<StreamAppend> {
    vec![StreamAppend::new(stream, expected, events(count))]
}

pub async fn the_same_idempotency_key_appends_once(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    let first = store
        .append_idempotent(
            one("s", ExpectedVersion::NoStream, 2),
            key("acme", "k1", "f1"),
        )
        .await
        .unwrap();
    let IdempotentAppend::Appended(result) = first else {
        panic!("a fresh key appends: {first:?}")
    };
    assert_eq!((result.version(), result.last_position), (2, 2));

    // A retry: new event ids, even another stream; nothing is appended and
    // the stored record comes back.
    let retry = store
        .append_idempotent(
            one("other", ExpectedVersion::Any, 3),
            key("acme", "k1", "f1"),
        )
        .await
        .unwrap();
    let IdempotentAppend::Replayed(record) = retry else {
        panic!("a stored key replays: {retry:?}")
    };
    assert_eq!(record.result, result);
    assert!(record.matches("f1"));
    assert_eq!(
        (record.status, record.response.as_str()),
        (201, r#"{"made_by":"f1"}"#)
    );

    // Another request reusing the key: still nothing appended, and the
    // record tells the caller the fingerprints differ.
    let reused = store
        .append_idempotent(one("s", ExpectedVersion::Any, 1), key("acme", "k1", "f2"))
        .await
        .unwrap();
    let IdempotentAppend::Replayed(same) = reused else {
        panic!("a stored key replays whatever the fingerprint: {reused:?}")
    };
    assert!(!same.matches("f2"));
    assert_eq!(same, record);

    assert_eq!(store.head().await.unwrap(), 2);
    assert_eq!(store.stream_version("other").await.unwrap(), 0);
    assert_eq!(
        store.idempotency_record("acme", "k1").await.unwrap(),
        Some(record)
    );
    assert_eq!(store.idempotency_record("acme", "k2").await.unwrap(), None);
}

pub async fn racing_appends_with_one_key_append_once(backend: Backend) {
    let t = TestStore::new(backend).await;
    // Two stores on one database: two writers, as two nodes (or two
    // processes on one SQLite file) would have.
    let other = t.reopen(None).await;
    let mut tasks = Vec::new();
    for i in 0..16 {
        let store = if i % 2 == 0 {
            t.store.clone()
        } else {
            other.clone()
        };
        tasks.push(tokio::spawn(async move {
            store
                .append_idempotent(
                    one("race", ExpectedVersion::Any, 1),
                    key("acme", "same", "f"),
                )
                .await
                .unwrap()
        }));
    }
    let mut appended = Vec::new();
    let mut replayed = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            IdempotentAppend::Appended(result) => appended.push(result),
            IdempotentAppend::Replayed(record) => replayed.push(record.result),
        }
    }
    assert_eq!(appended.len(), 1, "exactly one append wins the key");
    assert!(replayed.iter().all(|r| *r == appended[0]), "{replayed:?}");
    assert_eq!(t.store.read_stream("race", 1, 100).await.unwrap().len(), 1);
    assert_eq!(t.store.head().await.unwrap(), 1);
}

pub async fn one_key_in_two_tenants_is_two_keys(backend: Backend) {
    let t = TestStore::new(backend).await;
    let mut positions = HashSet::new();
    for tenant in ["acme", "globex"] {
        let outcome = t
            .store
            .append_idempotent(one(tenant, ExpectedVersion::Any, 1), key(tenant, "k", "f"))
            .await
            .unwrap();
        let IdempotentAppend::Appended(result) = outcome else {
            panic!("{tenant}'s key is its own: {outcome:?}")
        };
        positions.insert(result.last_position);
    }
    assert_eq!(positions.len(), 2);
    assert_eq!(t.store.head().await.unwrap(), 2);
    for tenant in ["acme", "globex"] {
        let record = t.store.idempotency_record(tenant, "k").await.unwrap();
        assert_eq!(
            record.map(|r| r.result.streams[0].stream.clone()),
            Some(tenant.to_owned())
        );
    }
}

pub async fn an_expired_key_is_fresh_again_and_swept(backend: Backend) {
    let t = TestStore::new(backend).await;
    // Retention zero: every record is expired as soon as it is stored.
    let forgetful = t
        .reopen_with(StoreOptions::default().idempotency_retention(Duration::ZERO))
        .await;
    for _ in 0..2 {
        let outcome = forgetful
            .append_idempotent(one("s", ExpectedVersion::Any, 1), key("acme", "k", "f"))
            .await
            .unwrap();
        assert!(
            matches!(outcome, IdempotentAppend::Appended(_)),
            "{outcome:?}"
        );
    }
    assert_eq!(forgetful.head().await.unwrap(), 2);
    assert_eq!(
        forgetful.idempotency_record("acme", "k").await.unwrap(),
        None
    );

    // With the default retention the (second) record is live; the sweep of
    // the forgetful store deletes it.
    let live = t.store.idempotency_record("acme", "k").await.unwrap();
    assert_eq!(live.map(|r| r.result.last_position), Some(2));
    assert_eq!(forgetful.sweep_expired_idempotency_keys().await.unwrap(), 1);
    assert_eq!(t.store.idempotency_record("acme", "k").await.unwrap(), None);
    assert_eq!(t.store.sweep_expired_idempotency_keys().await.unwrap(), 0);
}

pub async fn a_refused_append_stores_no_key(backend: Backend) {
    let t = TestStore::new(backend).await;
    let store = &t.store;
    let refused = store
        .append_idempotent(
            one("s", ExpectedVersion::Exact(5), 1),
            key("acme", "k", "f"),
        )
        .await;
    assert!(
        matches!(refused, Err(StoreError::WrongExpectedVersion { .. })),
        "{refused:?}"
    );
    assert_eq!(store.idempotency_record("acme", "k").await.unwrap(), None);

    // The key and the events go together: the corrected request appends
    // and stores the key, its retry appends nothing.
    let outcome = store
        .append_idempotent(
            one("s", ExpectedVersion::NoStream, 1),
            key("acme", "k", "f"),
        )
        .await
        .unwrap();
    assert!(
        matches!(outcome, IdempotentAppend::Appended(_)),
        "{outcome:?}"
    );
    let again = store
        .append_idempotent(
            one("s", ExpectedVersion::NoStream, 1),
            key("acme", "k", "f"),
        )
        .await
        .unwrap();
    assert!(matches!(again, IdempotentAppend::Replayed(_)), "{again:?}");
    assert_eq!(store.head().await.unwrap(), 1);
}

pub async fn a_bad_idempotency_key_is_refused(backend: Backend) {
    let t = TestStore::new(backend).await;
    for (tenant, name) in [
        ("acme", String::new()),
        ("acme", "k".repeat(256)),
        ("", "k".into()),
    ] {
        let outcome = t
            .store
            .append_idempotent(one("s", ExpectedVersion::Any, 1), key(tenant, &name, "f"))
            .await;
        assert!(
            matches!(outcome, Err(StoreError::Invalid(_))),
            "{outcome:?}"
        );
    }
    assert_eq!(t.store.head().await.unwrap(), 0);
}
