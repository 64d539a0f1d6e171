//! Delivery, order, resume, snapshot, isolation, auth.

use std::time::Duration;

use larder_server::Role;
use larder_tests::ws::{Ended, WsClient};
use larder_tests::{Backend, SECRET, TestApp, claims, sign};
use serde_json::json;

crate::for_each_backend!(delivery:
    two_clients_both_receive_a_rest_change,
    a_thousand_rapid_changes_arrive_in_order,
    a_client_resumes_with_exactly_the_missed_events,
    a_stale_or_invalid_since_is_a_reset,
    snapshot_then_events_has_no_gap_under_concurrent_writes,
    tenants_and_store_scopes_are_isolated,
);

pub async fn two_clients_both_receive_a_rest_change(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let (mut a, welcome) = WsClient::authenticated(&app, &token).await;
    assert_eq!(welcome["protocol"], 1);
    assert!(welcome["heartbeat_ms"].as_u64().unwrap() > 0);
    let (mut b, _) = WsClient::authenticated(&app, &token).await;
    for client in [&mut a, &mut b] {
        let reply = client
            .subscribe_from_head(&app, &format!("store:{store}"))
            .await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
    }

    let item = app.add_item(&token, &store, "FLOUR", 5, 1).await;
    for client in [&mut a, &mut b] {
        let event = client.next_event().await;
        assert_eq!(event["topic"], format!("store:{store}"));
        assert_eq!(event["event"]["type"], "ItemAdded");
        assert_eq!(event["event"]["metadata"]["entity_id"], item);
        assert_eq!(event["event"]["data"]["sku"], "FLOUR");
        assert!(event["position"].as_u64().unwrap() > 0);
    }
}

pub async fn a_thousand_rapid_changes_arrive_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "RICE", 10, 0).await;
    let mut clients = Vec::new();
    for _ in 0..3 {
        let (mut client, _) = WsClient::authenticated(&app, &token).await;
        client
            .subscribe_from_head(&app, &format!("store:{store}"))
            .await;
        clients.push(client);
    }
    // 1000 changes from 4 concurrent writers (each on its own item, so none
    // has to retry), as fast as the API takes them.
    let mut items = vec![item.clone()];
    for sku in ["RICE-2", "RICE-3", "RICE-4"] {
        items.push(app.add_item(&token, &store, sku, 10, 0).await);
    }
    for client in &mut clients {
        for _ in 0..3 {
            assert_eq!(client.next_event().await["event"]["type"], "ItemAdded");
        }
    }
    let mut writers = Vec::new();
    for item in items {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/items/{item}/adjust"));
        let token = token.clone();
        writers.push(tokio::spawn(async move {
            for _ in 0..250 {
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "delta": 1, "reason": "received" }))
                    .send()
                    .await;
                assert_eq!(response.unwrap().status(), 200);
            }
        }));
    }
    for writer in writers {
        writer.await.unwrap();
    }
    for client in &mut clients {
        let mut last = 0;
        for n in 1..=1000 {
            let event = client.next_event().await;
            let position = event["position"].as_u64().unwrap();
            assert!(
                position > last,
                "event {n} out of order: {position} after {last}"
            );
            last = position;
            assert_eq!(event["event"]["type"], "StockAdjusted");
        }
        assert_eq!(last, app.store.head().await.unwrap());
    }
}

pub async fn a_client_resumes_with_exactly_the_missed_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "TEA", 100, 0).await;
    let topic = format!("store:{store}");
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    client.subscribe_from_head(&app, &topic).await;
    adjust(&app, &token, &item, -1).await;
    let seen = client.next_event().await["position"].as_u64().unwrap();
    client.close().await;

    // While disconnected: five more changes.
    for _ in 0..5 {
        adjust(&app, &token, &item, -1).await;
    }
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    let reply = client.subscribe(&topic, Some(seen)).await;
    assert_eq!(reply["resume"], "recovered", "{reply}");
    // A change after resubscribing arrives after the replayed ones.
    adjust(&app, &token, &item, -1).await;
    let mut positions = Vec::new();
    for _ in 0..6 {
        positions.push(client.next_event().await["position"].as_u64().unwrap());
    }
    let expected: Vec<u64> = (seen + 1..=seen + 6).collect();
    assert_eq!(
        positions, expected,
        "exactly the missed events, then live, none twice"
    );
}

pub async fn a_stale_or_invalid_since_is_a_reset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    let reply = client
        .subscribe(&format!("store:{store}"), Some(1_000_000))
        .await;
    assert_eq!(reply["type"], "subscribed");
    assert_eq!(
        reply["resume"], "reset",
        "since beyond the head: refetch the snapshot"
    );
    // Still live afterwards: events after the reply's position follow. The
    // store's creation is among them when the hub had not dispatched it yet
    // when the subscription was registered (the HTTP answer does not wait
    // for the hub).
    let live_after = reply["position"].as_u64().unwrap();
    app.add_item(&token, &store, "X", 1, 0).await;
    let mut event = client.next_event().await;
    if event["event"]["type"] == "StoreCreated" {
        assert!(event["position"].as_u64().unwrap() > live_after, "{event}");
        event = client.next_event().await;
    }
    assert_eq!(event["event"]["type"], "ItemAdded", "{event}");
    assert!(event["position"].as_u64().unwrap() > live_after, "{event}");
}

pub async fn snapshot_then_events_has_no_gap_under_concurrent_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "OIL", 0, 0).await;
    // A writer keeps adjusting while the client subscribes with a snapshot.
    let writer = {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/items/{item}/adjust"));
        let token = token.clone();
        tokio::spawn(async move {
            for _ in 0..100 {
                client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "delta": 1, "reason": "received" }))
                    .send()
                    .await
                    .unwrap();
            }
        })
    };
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    let reply = client
        .request(
            json!({ "type": "subscribe", "topic": format!("store:{store}"), "snapshot": true }),
        )
        .await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    let snapshot = &reply["snapshot"];
    let at = snapshot["position"].as_u64().expect("snapshot position");
    let items = snapshot["data"]["items"]
        .as_array()
        .expect("snapshot items");
    let mut quantity = items
        .iter()
        .find(|i| i["item_id"] == item)
        .map_or(0, |i| i["quantity"].as_i64().unwrap());
    writer.await.unwrap();
    // Applying the events after the snapshot gives exactly the final stock.
    let mut last = at;
    while quantity < 100 {
        let event = client.next_event().await;
        let position = event["position"].as_u64().unwrap();
        assert!(
            position > last,
            "no event at or before the snapshot, no duplicate"
        );
        last = position;
        if event["event"]["type"] == "StockAdjusted" {
            quantity = event["event"]["data"]["quantity"].as_i64().unwrap();
        }
    }
    assert_eq!(quantity, 100);
}

pub async fn tenants_and_store_scopes_are_isolated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = app.token("acme", "alice", "admin").await;
    let globex = app.token("globex", "gus", "admin").await;
    let mine = app.create_store(&acme, "Mine").await;
    let other = app.create_store(&acme, "Other").await;
    let theirs = app.create_store(&globex, "Theirs").await;
    let clerk = app
        .token_for(json!({ "tenant": "acme", "sub": "clerk", "role": "staff", "stores": [mine] }))
        .await;

    let (mut clerk_ws, _) = WsClient::authenticated(&app, &clerk).await;
    assert_eq!(
        clerk_ws.subscribe_from_head(&app, "tenant").await["type"],
        "subscribed"
    );
    let forbidden = clerk_ws.subscribe(&format!("store:{other}"), None).await;
    assert_eq!(
        (forbidden["type"].as_str(), forbidden["code"].as_str()),
        (Some("error"), Some("forbidden"))
    );
    let (mut globex_ws, _) = WsClient::authenticated(&app, &globex).await;
    assert_eq!(
        globex_ws.subscribe_from_head(&app, "tenant").await["type"],
        "subscribed"
    );
    // Naming another tenant's store subscribes to nothing: every event is
    // filtered by the token's tenant first.
    globex_ws.subscribe(&format!("store:{mine}"), None).await;

    app.add_item(&acme, &other, "HIDDEN", 1, 0).await;
    app.add_item(&globex, &theirs, "THEIRS", 1, 0).await;
    app.add_item(&acme, &mine, "VISIBLE", 1, 0).await;
    // The clerk sees only its store's event; globex only its own.
    let event = clerk_ws.next_event().await;
    assert_eq!(event["event"]["data"]["sku"], "VISIBLE");
    let event = globex_ws.next_event().await;
    assert_eq!(event["event"]["data"]["sku"], "THEIRS");
    // Nothing else is queued for either: a ping answers next.
    for client in [&mut clerk_ws, &mut globex_ws] {
        let id = client.send(json!({ "type": "ping" })).await;
        let next = client.next().await;
        assert_eq!(
            (next["type"].as_str(), next["id"].as_str()),
            (Some("pong"), Some(id.as_str())),
            "{next}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_works_across_a_server_restart_on_the_sqlite_file() {
    let mut app = TestApp::spawn(Backend::Sqlite).await;
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
    adjust(&restarted, &token, &item, -1).await;
    adjust(&restarted, &token, &item, -1).await;
    let (mut client, _) = WsClient::authenticated(&restarted, &token).await;
    let reply = client
        .subscribe(&format!("store:{store}"), Some(seen))
        .await;
    assert_eq!(reply["resume"], "recovered");
    let positions = [client.next_event().await, client.next_event().await]
        .map(|e| e["position"].as_u64().unwrap());
    assert_eq!(positions, [seen + 1, seen + 2]);
    drop(app);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_connections_expired_tokens_and_in_band_refresh() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jwt_secret = Some(SECRET.parse().unwrap());
        s.ws_auth_timeout_ms = 300;
    })
    .await;

    // No auth message: closed with 4001.
    let mut silent = WsClient::connect(&app, "").await;
    let (ended, _) = silent.until_closed(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(4001));

    // A bad token: 4002.
    let mut bad = WsClient::connect(&app, "").await;
    bad.send(json!({ "type": "auth", "token": "nope" })).await;
    assert_eq!(
        bad.until_closed(Duration::from_secs(10)).await.0,
        Ended::Closed(4002)
    );

    // A token that expires in 2 s: refreshed in band once, then left to expire: 4003.
    let mut short = claims("acme", Role::Viewer);
    short.exp = (chrono::Utc::now().timestamp() + 2) as u64;
    let (mut client, welcome) = WsClient::authenticated(&app, &sign(&short, SECRET)).await;
    assert_eq!(welcome["expires_at"], short.exp);
    let mut longer = claims("acme", Role::Viewer);
    longer.exp = (chrono::Utc::now().timestamp() + 3) as u64;
    let refreshed = client
        .request(json!({ "type": "refresh", "token": sign(&longer, SECRET) }))
        .await;
    assert_eq!(refreshed["type"], "refreshed", "{refreshed}");
    assert_eq!(refreshed["expires_at"], longer.exp);
    let (ended, _) = client.until_closed(Duration::from_secs(15)).await;
    assert_eq!(ended, Ended::Closed(4003));
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
