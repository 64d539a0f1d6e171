//! larder-client against the real server (larder-tests' `TestApp`: port 0,
//! a fresh SQLite file or PostgreSQL schema), through a proxy that cuts
//! connections or swallows answers on command.

mod commands;
mod proxy;
mod subscribe;

use std::time::Duration;

use larder_client::{Client, Subscription, TopicEvent, Update};
use larder_tests::TestApp;
use serde_json::json;

/// How long a test waits for one update before failing.
pub const WAIT: Duration = Duration::from_secs(15);

/// A client of `base` (the server or a proxy in front of it), minting its
/// demo tokens at `mint` (the server's own address).
pub fn client(base: &str, mint: &str, user: &str) -> Client {
    larder_tests::client::client_via(base, mint, user)
}

/// The next event of a subscription (a reset fails the test).
pub async fn next_event(subscription: &mut Subscription) -> TopicEvent {
    match tokio::time::timeout(WAIT, subscription.recv()).await {
        Ok(Some(Ok(Update::Event(event)))) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

/// Adjusts an item's stock over REST (not through the client under test);
/// returns the event's position.
pub async fn adjust(app: &TestApp, token: &str, item: &str, delta: i64) -> u64 {
    let reason = if delta > 0 { "received" } else { "sold" };
    let (status, body) = app
        .post(
            token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": delta, "reason": reason }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["position"].as_u64().expect("a position")
}

/// The types of an item's events, read from the event store, oldest first.
pub async fn item_events(app: &TestApp, token: &str, item: &str) -> Vec<String> {
    let (status, body) = app
        .get(token, &format!("/api/v1/items/{item}/events"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"]
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().expect("a type").to_owned())
        .collect()
}
