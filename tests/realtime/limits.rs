//! Bad input, bounds, liveness, presence, shutdown.

use std::time::Duration;

use larder_tests::ws::{Ended, WsClient};
use larder_tests::{Backend, TestApp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_unknown_and_oversized_frames() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "viewer").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;

    client.send_text("this is not json").await;
    let error = client.next().await;
    assert_eq!(
        (error["type"].as_str(), error["code"].as_str()),
        (Some("error"), Some("invalid_json"))
    );
    let reply = client.request(json!({ "type": "dance" })).await;
    assert_eq!(reply["code"], "unknown_type");
    let reply = client
        .request(json!({ "type": "subscribe", "topic": "nonsense:::" }))
        .await;
    assert_eq!(reply["code"], "invalid_topic");
    // Still usable.
    assert_eq!(
        client.request(json!({ "type": "ping" })).await["type"],
        "pong"
    );

    client.send_text("x".repeat(200 * 1024)).await;
    let (ended, _) = client.until_closed(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(1009));
    // The server keeps serving.
    let (mut other, _) = WsClient::authenticated(&app, &token).await;
    assert_eq!(
        other.request(json!({ "type": "ping" })).await["type"],
        "pong"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flooding_gets_a_warning_then_a_close() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.ws_rate_per_sec = 5;
        s.ws_rate_burst = 5;
    })
    .await;
    let token = app.token("acme", "alice", "viewer").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    for _ in 0..40 {
        client.send(json!({ "type": "ping" })).await;
    }
    let (ended, frames) = client.until_closed(Duration::from_secs(10)).await;
    assert!(
        frames
            .iter()
            .any(|f| f["type"] == "warning" && f["code"] == "rate_limited"),
        "{ended:?} {frames:?}"
    );
    assert_eq!(ended, Ended::Closed(4008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_closed_while_fast_ones_keep_receiving() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.ws_outbound_queue = 16).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SUGAR", 0, 0).await;
    let (mut fast, _) = WsClient::authenticated(&app, &token).await;
    fast.subscribe_from_head(&app, &format!("store:{store}"))
        .await;
    let (mut slow, _) = WsClient::connect_with_small_buffer(&app, &token).await;
    // Several topics that all match: each event is sent once per topic, so
    // the slow client's backlog outgrows the kernel's socket buffers (a
    // loopback connection starts with megabytes of them).
    for topic in [
        format!("store:{store}"),
        "tenant".into(),
        "type:item".into(),
        format!("item:{item}"),
        "user:alice".into(),
    ] {
        assert_eq!(slow.subscribe(&topic, None).await["type"], "subscribed");
    }

    // The slow client stops reading; 1500 changes with long notes go by.
    let note = "n".repeat(480);
    for _ in 0..1500 {
        let (status, _) = app
            .post(
                &token,
                &format!("/api/v1/items/{item}/adjust"),
                json!({ "delta": 1, "reason": "received", "note": note }),
            )
            .await;
        assert_eq!(status, 200);
        fast.next_event().await;
    }
    // The server closes it as a slow consumer; the 4009 close frame sits
    // behind the backlog the client never read, so the client may only see
    // the connection drop. The metric tells the reason.
    let (ended, _) = slow.until_closed(Duration::from_secs(30)).await;
    assert!(
        matches!(ended, Ended::Closed(4009) | Ended::Dropped),
        "{ended:?}"
    );
    assert!(metric(&app, "larder_ws_slow_consumer_closes_total").await >= 1.0);
    // The fast client goes on.
    app.post(
        &token,
        &format!("/api/v1/items/{item}/adjust"),
        json!({ "delta": 1, "reason": "received" }),
    )
    .await;
    assert_eq!(fast.next_event().await["event"]["type"], "StockAdjusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_peer_is_detected_by_the_heartbeat() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.ws_heartbeat_ms = 200).await;
    let token = app.token("acme", "alice", "viewer").await;
    let (client, welcome) = WsClient::authenticated(&app, &token).await;
    assert_eq!(welcome["heartbeat_ms"], 200);
    // The client stops reading (so it never answers pings): the server
    // drops it within two intervals.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while metric(&app, "larder_ws_connections").await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent peer was not dropped"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(client);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_counts_users_once_across_tabs() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let alice = app.token("acme", "alice", "admin").await;
    let bob = app.token("acme", "bob", "staff").await;
    let store = app.create_store(&alice, "Main").await;
    let topic = format!("store:{store}");
    let (mut watcher, _) = WsClient::authenticated(&app, &bob).await;
    watcher.subscribe_from_head(&app, &topic).await;

    // A tab announces itself with a presence request for the store.
    let (mut tab1, _) = WsClient::authenticated(&app, &alice).await;
    tab1.subscribe_from_head(&app, &topic).await;
    tab1.request(json!({ "type": "presence", "store": store }))
        .await;
    let joined = watcher.next().await;
    assert_eq!(
        (
            joined["type"].as_str(),
            joined["user"].as_str(),
            joined["state"].as_str()
        ),
        (Some("presence_changed"), Some("alice"), Some("joined"))
    );
    let (mut tab2, _) = WsClient::authenticated(&app, &alice).await;
    tab2.subscribe_from_head(&app, &topic).await;
    tab2.request(json!({ "type": "presence", "store": store }))
        .await;
    let who = watcher
        .request(json!({ "type": "presence", "store": store }))
        .await;
    let mut users: Vec<&str> = who["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u.as_str().unwrap())
        .collect();
    users.sort_unstable();
    assert_eq!(users, vec!["alice", "bob"], "two tabs of alice count once");

    tab1.close().await;
    // Still there with one tab: the next presence change is her leaving for good.
    tab2.close().await;
    let left = watcher.next().await;
    assert_eq!(
        (left["user"].as_str(), left["state"].as_str()),
        (Some("alice"), Some("left"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_tells_clients_when_to_reconnect() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "viewer").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    app.begin_shutdown();
    let (ended, frames) = client.until_closed(Duration::from_secs(20)).await;
    let notice = frames
        .iter()
        .find(|f| f["type"] == "reconnect")
        .expect("a reconnect notice");
    assert!(notice["delay_ms"].as_u64().is_some());
    assert_eq!(ended, Ended::Closed(1001));
    app.stopped().await.unwrap();
}

/// A gauge or counter from the server's metrics (the process-wide recorder
/// that the admin listener's `/metrics` renders; `/metrics` is not served on
/// the API port).
pub async fn metric(_app: &TestApp, name: &str) -> f64 {
    let text = larder_server::telemetry::metrics().render();
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with([' ', '{']))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}
