//! Subscriptions: live events, and every event once, in order, across a
//! cut connection and a server restart.

use larder_client::{Error, Status};
use larder_tests::{Backend, TestApp};

use crate::proxy::Proxy;
use crate::{adjust, client, next_event};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_live_events_in_order() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 10, 0).await;
    let head = app.store.head().await.expect("the head");
    let larder = client(&app.address, &app.address, "alice");
    let mut updates = larder
        .subscribe([format!("store:{store}")], Some(head))
        .await
        .expect("subscribed");

    let mut written = Vec::new();
    for delta in [-1, -2, 3] {
        written.push(adjust(&app, &token, &item, delta).await);
    }
    for position in written {
        let event = next_event(&mut updates).await;
        assert_eq!(event.position, position);
        assert_eq!(event.topic, format!("store:{store}"));
        assert_eq!(event.event.event_type, "StockAdjusted");
        assert_eq!(event.event.metadata.store.as_deref(), Some(store.as_str()));
    }
    assert_eq!(updates.stats().delivered, 3);
    assert_eq!(updates.stats().duplicates, 0);
    updates.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_topic_fails_the_subscribe_call() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let larder = client(&app.address, &app.address, "alice");
    let refused = larder.subscribe(["user:bob"], None).await;
    assert!(
        matches!(&refused, Err(Error::Refused { code, .. }) if code == "forbidden"),
        "{refused:?}"
    );
}

/// The connection is cut while events commit; the subscription comes back
/// by itself and resumes: each event once, in order, none missing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_connection_resumes_without_loss_or_duplicate() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 100, 0).await;
    let head = app.store.head().await.expect("the head");
    let proxy = Proxy::start(&app.address).await;
    let larder = client(&proxy.address, &app.address, "alice");
    let mut updates = larder
        .subscribe([format!("store:{store}"), "tenant".to_owned()], Some(head))
        .await
        .expect("subscribed");
    let mut status = updates.status();

    let mut written = vec![adjust(&app, &token, &item, -1).await];
    written.push(adjust(&app, &token, &item, -1).await);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(next_event(&mut updates).await);
    }

    // The network goes away; changes go on meanwhile.
    proxy.cut();
    tokio::time::timeout(
        crate::WAIT,
        status.wait_for(|s| matches!(s, Status::Reconnecting { .. })),
    )
    .await
    .expect("the subscription notices the cut")
    .expect("status");
    for delta in [-1, -2, -3] {
        written.push(adjust(&app, &token, &item, delta).await);
    }
    proxy.restore();
    // Once back, it resumes from its positions, then goes on live.
    for _ in 0..6 {
        seen.push(next_event(&mut updates).await);
    }
    written.push(adjust(&app, &token, &item, 5).await);
    for _ in 0..2 {
        seen.push(next_event(&mut updates).await);
    }

    for topic in [format!("store:{store}"), "tenant".to_owned()] {
        let positions: Vec<u64> = seen
            .iter()
            .filter(|e| e.topic == topic)
            .map(|e| e.position)
            .collect();
        assert_eq!(positions, written, "{topic}: every event once, in order");
    }
    assert!(updates.stats().reconnects >= 1, "{:?}", updates.stats());
    let positions = updates.positions();
    assert_eq!(positions["tenant"], written.last().copied());
    // Nothing else is pending: the next event is the next change.
    let last = adjust(&app, &token, &item, 1).await;
    assert_eq!(next_event(&mut updates).await.position, last);
}

/// The server stops and starts again on the same address (a demo server:
/// it signs with a new key, so the client also gets a new token). Events
/// committed before the client is back come from the event log, once.
pub async fn a_server_restart_resumes_from_the_event_log(backend: Backend) {
    let mut app = TestApp::spawn_with(backend, |s| s.shutdown_reconnect_window_ms = 100).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 10, 0).await;
    let head = app.store.head().await.expect("the head");
    let larder = client(&app.address, &app.address, "alice");
    let mut updates = larder
        .subscribe([format!("store:{store}")], Some(head))
        .await
        .expect("subscribed");
    let before = adjust(&app, &token, &item, -1).await;
    assert_eq!(next_event(&mut updates).await.position, before);

    let mut settings = app.settings.clone();
    settings.bind = app
        .address
        .trim_start_matches("http://")
        .parse()
        .expect("an address");
    app.stop().await.expect("stopped");
    let restarted = TestApp::start(settings, None).await;
    let token = restarted.token("acme", "alice", "admin").await;
    let first = adjust(&restarted, &token, &item, -1).await;
    let second = adjust(&restarted, &token, &item, -2).await;
    let event = next_event(&mut updates).await;
    assert_eq!(event.position, first);
    assert_eq!(next_event(&mut updates).await.position, second);
    let third = adjust(&restarted, &token, &item, 1).await;
    let event3 = next_event(&mut updates).await;
    assert_eq!(
        event3.position, third,
        "live after the replay, nothing twice"
    );
    assert_eq!(event3.event.data["quantity"], 7);
    assert_eq!(updates.stats().duplicates, 0);
    assert!(updates.stats().reconnects >= 1);
    drop(restarted);
    drop(app);
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_restart_resumes_from_the_event_log() {
        super::a_server_restart_resumes_from_the_event_log(larder_tests::Backend::Sqlite).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_server_restart_resumes_from_the_event_log() {
        super::a_server_restart_resumes_from_the_event_log(larder_tests::Backend::Postgres).await;
    }
}
