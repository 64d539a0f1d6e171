//! What docs/protocol.md and docs/events.md say about the fallbacks and the
//! event envelope, checked against the server.

use std::time::Duration;

use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(documented:
    sse_resumes_after_since_and_data_is_the_whole_frame,
    recorded_at_reads_the_same_over_rest_and_in_frames,
);

/// Reads SSE messages (id, event name, data) until `count` arrived.
async fn sse_messages(mut response: reqwest::Response, count: usize) -> Vec<(u64, String, Value)> {
    let mut buffer = String::new();
    let mut messages = Vec::new();
    while messages.len() < count {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("an SSE chunk in time")
            .unwrap()
            .expect("stream open");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buffer.find("\n\n") {
            let message: String = buffer.drain(..end + 2).collect();
            let field = |name: &str| {
                message
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .map(|v| v.trim().to_owned())
            };
            if let (Some(id), Some(event), Some(data)) =
                (field("id:"), field("event:"), field("data:"))
            {
                messages.push((
                    id.parse().unwrap(),
                    event,
                    serde_json::from_str(&data).unwrap(),
                ));
            }
        }
    }
    messages
}

async fn adjust(app: &TestApp, token: &str, item: &str, delta: i64) -> u64 {
    let (status, body) = app
        .post(
            token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": delta, "reason": "received" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["position"].as_u64().unwrap()
}

pub async fn sse_resumes_after_since_and_data_is_the_whole_frame(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SALT", 1, 0).await;
    let since = adjust(&app, &token, &item, 1).await;
    let missed = [
        adjust(&app, &token, &item, 2).await,
        adjust(&app, &token, &item, 3).await,
    ];

    let topic = format!("store:{store}");
    let response = app
        .client
        .get(app.url(&format!(
            "/api/v1/events/stream?topics={topic}&since={since}"
        )))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let messages = sse_messages(response, 2).await;
    for ((id, name, data), position) in messages.iter().zip(missed) {
        assert_eq!((*id, name.as_str()), (position, "event"));
        // The whole `event` frame, as the WebSocket sends it.
        assert_eq!(data["type"], "event", "{data}");
        assert_eq!(data["topic"], topic.as_str());
        assert_eq!(data["position"], position);
        assert_eq!(data["event"]["type"], "StockAdjusted", "{data}");
    }
}

pub async fn recorded_at_reads_the_same_over_rest_and_in_frames(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SUGAR", 5, 0).await;
    let position = adjust(&app, &token, &item, 1).await;

    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    client.subscribe(&format!("item:{item}"), Some(0)).await;
    let mut frames = Vec::new();
    while frames.len() < 2 {
        frames.push(client.next_event().await);
    }
    let (_, history) = app
        .get(&token, &format!("/api/v1/items/{item}/events"))
        .await;
    let (_, polled) = app
        .get(
            &token,
            &format!("/api/v1/events?topics=item:{item}&since=0&wait_ms=0"),
        )
        .await;
    let (_, read) = app
        .get(
            &token,
            &format!("/api/v1/items/{item}?min_position={position}"),
        )
        .await;
    for version in 0..2 {
        let rest = history["events"][version]["recorded_at"].as_str().unwrap();
        let frame = frames[version]["event"]["recorded_at"].as_str().unwrap();
        let poll = polled["events"][version]["event"]["recorded_at"]
            .as_str()
            .unwrap();
        assert_eq!((rest, rest), (frame, poll), "one time, one spelling");
        // RFC 3339, UTC, exactly six fractional digits.
        let fraction = rest.split('.').nth(1).unwrap();
        assert_eq!(fraction.len(), "123456Z".len(), "{rest}");
        assert!(rest.ends_with('Z'));
    }
    let updated_at = read["item"]["updated_at"].as_str().unwrap();
    assert_eq!(
        updated_at,
        history["events"][1]["recorded_at"].as_str().unwrap()
    );
}

/// Demo tokens may name their login session, so `session:` topics can be
/// tried in demo mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_token_may_name_its_session_for_session_topics() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app
        .token_for(json!({ "tenant": "acme", "sub": "alice", "role": "admin", "sid": "till-3" }))
        .await;
    let store = app.create_store(&token, "Main").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    let reply = client.subscribe_from_head(&app, "session:till-3").await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let item = app.add_item(&token, &store, "TEA", 1, 0).await;
    let event = client.next_event().await;
    assert_eq!(event["topic"], "session:till-3");
    assert_eq!(
        event["event"]["metadata"]["entity_id"],
        item.as_str(),
        "{event}"
    );

    // Another session's topic stays closed to this token.
    let other = client.subscribe("session:till-4", None).await;
    assert_eq!(other["type"], "error", "{other}");
}

/// docs/protocol.md#compression: a client that asks for permessage-deflate
/// gets a handshake without the extension and talks uncompressed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permessage_deflate_is_declined_as_documented() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let app = TestApp::spawn(Backend::Sqlite).await;
    let url = format!("{}/ws", app.address.replacen("http://", "ws://", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-extensions",
        "permessage-deflate; client_max_window_bits"
            .parse()
            .unwrap(),
    );
    let (_socket, response) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(request),
    )
    .await
    .expect("an upgrade in time")
    .expect("an upgrade");
    assert_eq!(response.status(), 101);
    assert!(
        response.headers().get("sec-websocket-extensions").is_none(),
        "docs/protocol.md says the extension is not offered: {:?}",
        response.headers()
    );
}

/// The demo token's `expires_at` is the token's own `exp`, in the whole
/// seconds the token carries (and `welcome` repeats).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_tokens_expiry_reads_as_its_exp_claim() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, body) = larder_tests::read(
        app.client
            .post(app.url("/api/v1/dev/token"))
            .json(&json!({ "tenant": "acme", "sub": "alice", "role": "viewer" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap();
    let (_, welcome) = WsClient::authenticated(&app, token).await;
    let exp = welcome["expires_at"].as_i64().unwrap();
    let expected = chrono::DateTime::from_timestamp(exp, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true);
    assert_eq!(body["expires_at"], expected, "{body}");
}
