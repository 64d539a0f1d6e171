//! Bad input, bounds, liveness, presence, shutdown.

use std::time::Duration;

use larder_tests::ws::{Ended, RawWs, WsClient, opcode};
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
async fn a_frame_over_the_limit_is_refused_on_its_header_with_1009() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "viewer").await;
    let query = format!("?access_token={token}");
    // A header declaring 2 MiB: refused at once, with the documented code.
    let mut huge = RawWs::connect(&app, &query).await;
    huge.send_frame(opcode::TEXT, b"{}", 2 << 20).await;
    assert_eq!(
        huge.until_closed(Duration::from_secs(10)).await.0,
        Some(1009)
    );
    // A header declaring 100 KiB (over the 64 KiB limit, under what the
    // transport used to buffer) with only 1 KiB behind it: the server does
    // not wait for the rest.
    let mut big = RawWs::connect(&app, &query).await;
    big.send_frame(opcode::TEXT, &[b' '; 1024], 100 * 1024)
        .await;
    assert_eq!(
        big.until_closed(Duration::from_secs(10)).await.0,
        Some(1009)
    );
    // At the limit exactly, a frame is read (and answered: it is no JSON).
    let mut at_limit = RawWs::connect(&app, &query).await;
    at_limit.send(opcode::TEXT, &[b'x'; 64 * 1024]).await;
    loop {
        let (kind, payload) = at_limit.next_frame().await.expect("a reply");
        assert_ne!(kind, opcode::CLOSE, "{payload:?}");
        let text: serde_json::Value = serde_json::from_slice(&payload).unwrap_or_default();
        if text["type"] == "error" {
            assert_eq!(text["code"], "invalid_json");
            break;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_closes_with_1007_and_binary_frames_with_1003() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "viewer").await;
    let mut raw = RawWs::connect(&app, &format!("?access_token={token}")).await;
    raw.send(opcode::TEXT, b"{\"type\":\"ping\",\"id\":\"\xff\xfe\"}")
        .await;
    assert_eq!(
        raw.until_closed(Duration::from_secs(10)).await.0,
        Some(1007)
    );

    // Binary frames are refused even when they carry valid JSON: every
    // protocol message is a text frame.
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    client.send_binary(br#"{"type":"ping","id":"1"}"#).await;
    let (ended, frames) = client.until_closed(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(1003), "{frames:?}");
    assert!(frames.iter().all(|f| f["type"] != "pong"), "{frames:?}");
    // The server keeps serving.
    let (mut other, _) = WsClient::authenticated(&app, &token).await;
    assert_eq!(
        other.request(json!({ "type": "ping" })).await["type"],
        "pong"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unmasked_client_frame_closes_with_1002() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "viewer").await;
    let mut raw = RawWs::connect(&app, &format!("?access_token={token}")).await;
    // Clients must mask every frame (RFC 6455, 5.1).
    raw.send_raw(&[0x80 | opcode::TEXT, 2, b'{', b'}']).await;
    assert_eq!(
        raw.until_closed(Duration::from_secs(10)).await.0,
        Some(1002)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_count_against_the_rate_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.ws_rate_per_sec = 5;
        s.ws_rate_burst = 5;
    })
    .await;
    let token = app.token("acme", "alice", "viewer").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    for _ in 0..40 {
        client.send_ping().await;
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
async fn a_slow_consumer_gets_4009_once_it_reads_while_fast_ones_keep_receiving() {
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

    // The slow client stops reading; changes with long notes go by until
    // the server gives up on it.
    let note = "n".repeat(480);
    let mut writes = 0;
    loop {
        let (status, _) = app
            .post(
                &token,
                &format!("/api/v1/items/{item}/adjust"),
                json!({ "delta": 1, "reason": "received", "note": note }),
            )
            .await;
        assert_eq!(status, 200);
        fast.next_event().await;
        writes += 1;
        if writes % 10 == 0
            && metric(&app, "larder_ws_slow_consumer_closes_total")
                .await
                .is_some_and(|closes| closes >= 1.0)
        {
            break;
        }
        assert!(writes < 5000, "the slow client was never closed");
    }
    // It reads again, within the grace the server gives a slow consumer's
    // close frame (10 s): the backlog, then the 4009 with its reason.
    let (ended, _) = slow.until_closed(Duration::from_secs(30)).await;
    assert_eq!(ended, Ended::Closed(4009));
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
async fn a_silent_peer_is_closed_with_4000_by_the_heartbeat() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.ws_heartbeat_ms = 200).await;
    let token = app.token("acme", "alice", "viewer").await;
    // A peer that reads but never writes a byte (a WebSocket library would
    // answer the server's Pings and count as alive).
    let mut silent = RawWs::connect(&app, &format!("?access_token={token}")).await;
    let (code, texts) = silent.until_closed(Duration::from_secs(10)).await;
    assert_eq!(code, Some(4000), "{texts:?}");
    assert_eq!(texts[0]["type"], "welcome");
    assert!(
        texts.iter().any(|t| t["type"] == "heartbeat"),
        "heartbeats came first: {texts:?}"
    );
    wait_for_connections(&app, 0).await;
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
    let (who, before) = watcher
        .request_collect(json!({ "type": "presence", "store": store }))
        .await;
    assert_eq!(
        who["users"],
        json!(["alice", "bob"]),
        "two tabs of alice count once"
    );
    assert!(
        before
            .iter()
            .all(|m| m["type"] != "presence_changed" || m["user"] == "bob"),
        "the second tab is not announced: {before:?}"
    );

    // The first tab closes. Once the server has let it go (watcher, tab2
    // and nothing else connected), alice is still present, and nothing
    // said she left.
    tab1.close().await;
    wait_for_connections(&app, 2).await;
    let (who, before) = watcher
        .request_collect(json!({ "type": "presence", "store": store }))
        .await;
    assert_eq!(who["users"], json!(["alice", "bob"]), "one tab left");
    assert!(
        before.iter().all(|m| m["type"] != "presence_changed"),
        "one tab closing does not make alice leave: {before:?}"
    );
    // The last tab closes: she leaves.
    tab2.close().await;
    let left = watcher.next().await;
    assert_eq!(
        (
            left["type"].as_str(),
            left["user"].as_str(),
            left["state"].as_str()
        ),
        (Some("presence_changed"), Some("alice"), Some("left"))
    );
    let who = watcher
        .request(json!({ "type": "presence", "store": store }))
        .await;
    assert_eq!(who["users"], json!(["bob"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_is_bounded_per_connection_and_ends_with_it() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "vera", "viewer").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    // Stores that do not exist cost an entry each, but only up to the
    // bound (10 per connection) and only while the connection lasts.
    let stores: Vec<String> = (0..10).map(|n| format!("nowhere-{n}")).collect();
    for store in &stores {
        let reply = client
            .request(json!({ "type": "presence", "store": store }))
            .await;
        assert_eq!(reply["type"], "presence", "{reply}");
    }
    let refused = client
        .request(json!({ "type": "presence", "store": "one-too-many" }))
        .await;
    assert_eq!(
        (refused["type"].as_str(), refused["code"].as_str()),
        (Some("error"), Some("too_many_presences")),
        "{refused}"
    );
    let again = client
        .request(json!({ "type": "presence", "store": stores[0] }))
        .await;
    assert_eq!(again["users"], json!(["vera"]), "announcing again is fine");

    client.close().await;
    wait_for_connections(&app, 0).await;
    let (mut other, _) =
        WsClient::authenticated(&app, &app.token("acme", "olga", "viewer").await).await;
    let who = other
        .request(json!({ "type": "presence", "store": stores[9] }))
        .await;
    assert_eq!(
        who["users"],
        json!(["olga"]),
        "vera's entries went with her connection"
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
/// the API port); `None` when the server does not report it (a test must
/// not read that as zero).
pub async fn metric(_app: &TestApp, name: &str) -> Option<f64> {
    let text = larder_server::telemetry::metrics().render();
    text.lines()
        .find(|line| line.starts_with(name) && line[name.len()..].starts_with([' ', '{']))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Waits (at most 10 s) until this server serves exactly `count` real-time
/// connections.
pub async fn wait_for_connections(app: &TestApp, count: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = (app.ws_connections)();
        if now == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server still serves {now} connections, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `--ws-max-connections-per-user`: WebSockets and event streams of one
/// user count together; past the limit an upgrade carrying the token and an
/// event stream get 429, an `auth` gets `too_many_connections` and close
/// 4029; other users are not affected, and a closed connection frees its
/// place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_websockets_and_event_streams_share_the_per_user_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.ws_max_connections_per_user = 2).await;
    let alice = app.token("acme", "alice", "viewer").await;
    let bob = app.token("acme", "bob", "viewer").await;
    let stream = |token: &str| {
        app.client
            .get(app.url("/api/v1/events/stream?topics=tenant"))
            .bearer_auth(token)
            .send()
    };
    let (_socket, _) = WsClient::authenticated(&app, &alice).await;
    let open = stream(&alice).await.unwrap();
    assert_eq!(open.status(), 200);

    // Checked before reading the body: a stream let through never ends.
    let refused = stream(&alice).await.unwrap();
    assert_eq!(refused.status(), 429);
    let (_, body) = larder_tests::read(refused).await;
    assert_eq!(body["code"], "too_many_connections", "{body}");

    let url = format!(
        "{}/ws?access_token={alice}",
        app.address.replacen("http", "ws", 1)
    );
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: serde_json::Value =
                serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}"))
                    .unwrap_or_default();
            assert_eq!(body["code"], "too_many_connections", "{body}");
        }
        other => panic!("alice's third connection, token in the upgrade: {other:?}"),
    }

    let mut third = WsClient::connect(&app, "").await;
    let reply = third
        .request(json!({ "type": "auth", "token": alice }))
        .await;
    assert_eq!(
        (reply["type"].as_str(), reply["code"].as_str()),
        (Some("error"), Some("too_many_connections")),
        "{reply}"
    );
    let (ended, _) = third.until_closed(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(4029));

    WsClient::authenticated(&app, &bob).await;
    assert_eq!(stream(&bob).await.unwrap().status(), 200);

    // The event stream's place frees when it ends.
    drop(open);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut client = WsClient::connect(&app, "").await;
        let reply = client
            .request(json!({ "type": "auth", "token": alice }))
            .await;
        if reply["type"] == "welcome" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no place freed: {reply}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
