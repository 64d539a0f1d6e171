//! Server-Sent Events and long-poll, with the same resume semantics.

use std::time::Duration;

use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(fallbacks:
    sse_delivers_and_resumes_with_last_event_id,
    sse_says_reset_when_it_cannot_resume,
    long_poll_returns_events_after_since,
);

/// Reads SSE `event` messages (id, data) until `count` arrived.
async fn sse_events(response: reqwest::Response, count: usize) -> Vec<(u64, Value)> {
    sse_events_from(response, String::new(), count).await
}

/// [`sse_events`], starting with what was already read into `buffer`.
async fn sse_events_from(
    mut response: reqwest::Response,
    mut buffer: String,
    count: usize,
) -> Vec<(u64, Value)> {
    let mut events = Vec::new();
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let id = message
                .lines()
                .find_map(|l| l.strip_prefix("id:"))
                .map(|v| v.trim().parse::<u64>().unwrap());
            let data = message
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            if let (Some(id), Some(data)) = (id, data) {
                events.push((id, serde_json::from_str(data).unwrap()));
            }
        }
        if events.len() >= count {
            break;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an SSE chunk in time")
            .unwrap()
            .expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
    events
}

pub async fn sse_delivers_and_resumes_with_last_event_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let url = app.url(&format!("/api/v1/events/stream?topics=store:{store}"));
    // From the head: the store's creation may not have reached the hub yet
    // (the HTTP answer does not wait for it), and is not what this checks.
    let head = app.store.head().await.unwrap();
    let response = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .header("last-event-id", head.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let item = app.add_item(&token, &store, "PEPPER", 3, 1).await;
    let first = sse_events(response, 1).await;
    assert_eq!(first[0].1["event"]["type"], "ItemAdded");
    let seen = first[0].0;

    for _ in 0..3 {
        app.post(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": 1, "reason": "received" }),
        )
        .await;
    }
    let response = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .header("last-event-id", seen.to_string())
        .send()
        .await
        .unwrap();
    let resumed = sse_events(response, 3).await;
    let ids: Vec<u64> = resumed.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![seen + 1, seen + 2, seen + 3]);

    let unauthenticated = app.client.get(&url).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
}

pub async fn long_poll_returns_events_after_since(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let since = app.store.head().await.unwrap();
    let item = app.add_item(&token, &store, "CUMIN", 3, 1).await;

    let (status, body) = app
        .get(
            &token,
            &format!("/api/v1/events?topics=store:{store}&since={since}&wait_ms=2000"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let events = body["events"].as_array().unwrap();
    assert_eq!(events[0]["event"]["type"], "ItemAdded");
    let next = body["next_since"].as_u64().unwrap();

    // Nothing new: the poll waits (bounded), then answers empty.
    let (status, body) = app
        .get(
            &token,
            &format!("/api/v1/events?topics=store:{store}&since={next}&wait_ms=200"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(body["events"].as_array().unwrap().is_empty());

    // A change during the wait answers at once.
    let poll = {
        let client = app.client.clone();
        let url = app.url(&format!(
            "/api/v1/events?topics=store:{store}&since={next}&wait_ms=10000"
        ));
        let token = token.clone();
        tokio::spawn(async move {
            larder_tests::read(client.get(url).bearer_auth(token).send().await.unwrap()).await
        })
    };
    app.post(
        &token,
        &format!("/api/v1/items/{item}/adjust"),
        json!({ "delta": -1, "reason": "sold" }),
    )
    .await;
    let (_, body) = tokio::time::timeout(Duration::from_secs(8), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(body["events"][0]["event"]["type"], "StockAdjusted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_streams_and_websockets_share_the_per_address_limit() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.ws_max_connections_per_ip = 2).await;
    let token = app.token("acme", "alice", "viewer").await;
    let open = || {
        app.client
            .get(app.url("/api/v1/events/stream?topics=tenant"))
            .bearer_auth(&token)
            .send()
    };
    let (_socket, _) = larder_tests::ws::WsClient::authenticated(&app, &token).await;
    let stream = open().await.unwrap();
    assert_eq!(stream.status(), 200);
    // Both places are taken, one by a WebSocket, one by an event stream
    // that holds its place while it is open.
    let refused = open().await.unwrap();
    // Checked before reading the body: a stream let through never ends.
    assert_eq!(refused.status(), 429);
    let (_, body) = larder_tests::read(refused).await;
    assert_eq!(body["code"], "too_many_connections", "{body}");
    drop(stream);
}

/// A `since` the server cannot honour (here: ahead of the head, as after a
/// database was replaced) starts the stream live, like `resume: "reset"` on
/// a WebSocket; the first SSE message says so (`event: reset`, `id:` the
/// position it is live from), so the client refetches instead of silently
/// missing events. Events after that position follow.
pub async fn sse_says_reset_when_it_cannot_resume(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let head = app.store.head().await.unwrap();
    let url = app.url(&format!(
        "/api/v1/events/stream?topics=store:{store}&since={}",
        head + 1_000
    ));
    let mut response = app
        .client
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The first message, before any event: the reset.
    let mut buffer = String::new();
    let first = loop {
        if let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            if message.lines().all(|l| l.starts_with(':') || l.is_empty()) {
                continue; // a keep-alive comment
            }
            break message;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("the reset message in time (none was sent)")
            .unwrap()
            .expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    };
    let field = |name: &str| {
        first
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
    };
    assert_eq!(
        field("event:").as_deref(),
        Some("reset"),
        "first message: {first:?}"
    );
    let live_from: u64 = field("id:").expect("an id").parse().unwrap();
    assert!(live_from <= head, "live from {live_from}, head {head}");
    let data: Value = serde_json::from_str(&field("data:").expect("data")).unwrap();
    assert_eq!(data, json!({"type": "reset", "position": live_from}));

    // Live after the reset: an item added now arrives, after that position.
    let (status, _) = app
        .post(
            &token,
            &format!("/api/v1/stores/{store}/items"),
            json!({"sku": "A-1", "name": "Apples"}),
        )
        .await;
    assert_eq!(status, 201);
    // The store's own events after the reset's position come first: the
    // hub may not have routed the store's creation when the stream opened.
    let filter = larder_store::EventFilter {
        store: Some(store.clone()),
        ..larder_store::EventFilter::default()
    };
    let before = app
        .store
        .read_all(live_from, 100, &filter)
        .await
        .unwrap()
        .events
        .iter()
        .filter(|e| e.position <= head)
        .count();
    let events = sse_events_from(response, buffer, before + 1).await;
    assert!(events.iter().all(|e| e.0 > live_from), "{events:?}");
    assert_eq!(events[before].1["event"]["type"], "ItemAdded");
}
