//! Resume across a restart on PostgreSQL (the SQLite file's case is in
//! `delivery`): the replay after a restart comes from the event log itself.

use std::time::Duration;

use larder_tests::ws::{Ended, WsClient};
use larder_tests::{Backend, TestApp};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_works_across_a_server_restart_on_postgresql() {
    let mut app = TestApp::spawn(Backend::Postgres).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SOAP", 10, 0).await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    client
        .subscribe_from_head(&app, &format!("store:{store}"))
        .await;
    adjust(&app, &token, &item, -1).await;
    let seen = client.next_event().await["position"].as_u64().unwrap();
    let settings = app.settings.clone();
    app.stop().await.unwrap();
    let (ended, _) = client.until_closed(Duration::from_secs(10)).await;
    assert!(
        matches!(
            ended,
            Ended::Closed(1001) | Ended::Closed(1012) | Ended::Dropped
        ),
        "{ended:?}"
    );

    let restarted = TestApp::start(settings, None).await;
    let token = restarted.token("acme", "alice", "admin").await;
    // Changes made after the restart, before the client is back.
    let first = adjust(&restarted, &token, &item, -1).await;
    let second = adjust(&restarted, &token, &item, -2).await;
    let (mut client, _) = WsClient::authenticated(&restarted, &token).await;
    let reply = client
        .subscribe(&format!("store:{store}"), Some(seen))
        .await;
    assert_eq!(reply["resume"], "recovered", "{reply}");
    let events = [client.next_event().await, client.next_event().await];
    let positions = events.clone().map(|e| e["position"].as_u64().unwrap());
    assert_eq!(positions, [first, second], "exactly the missed events");
    assert_eq!(positions, [seen + 1, seen + 2], "no gap, nothing twice");
    assert_eq!(events[1]["event"]["data"]["quantity"], 6);
    // A later change arrives live after the replay.
    let third = adjust(&restarted, &token, &item, 1).await;
    assert_eq!(client.next_event().await["position"], third);
    drop(app);
}

async fn adjust(app: &TestApp, token: &str, item: &str, delta: i64) -> u64 {
    let reason = if delta > 0 { "received" } else { "sold" };
    let (status, body) = app
        .post(
            token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": delta, "reason": reason }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["position"].as_u64().unwrap()
}
