//! Server-Sent Events and long-poll, with the same resume semantics.

use std::time::Duration;

use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(fallbacks:
    sse_delivers_and_resumes_with_last_event_id,
    long_poll_returns_events_after_since,
);

/// Reads SSE `event` messages (id, data) until `count` arrived.
async fn sse_events(mut response: reqwest::Response, count: usize) -> Vec<(u64, Value)> {
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an SSE chunk in time")
            .unwrap()
            .expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
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
