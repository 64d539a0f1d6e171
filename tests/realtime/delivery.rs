//! Delivery, order, resume, snapshot, isolation, auth.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use larder_server::Role;
use larder_store::EventFilter;
use larder_tests::ws::{Ended, WsClient};
use larder_tests::{Backend, SECRET, TestApp, claims, sign};
use serde_json::{Value, json};
use tokio::sync::watch;

crate::for_each_backend!(delivery:
    two_clients_both_receive_a_rest_change,
    a_thousand_rapid_changes_arrive_in_order,
    a_client_resumes_with_exactly_the_missed_events,
    a_stale_or_invalid_since_is_a_reset,
    snapshots_under_concurrent_writes_match_the_read_model,
    tenants_and_store_scopes_are_isolated,
    resume_works_across_a_server_restart,
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

/// What a client knows of one item: applied from the snapshot, then event
/// by event.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ItemState {
    quantity: i64,
    version: u64,
    position: u64,
}

fn item_state(item: &Value) -> ItemState {
    ItemState {
        quantity: item["quantity"].as_i64().expect("quantity"),
        version: item["version"].as_u64().expect("version"),
        position: item["position"].as_u64().expect("position"),
    }
}

pub async fn snapshots_under_concurrent_writes_match_the_read_model(backend: Backend) {
    const CLIENTS: usize = 100;
    let app = TestApp::spawn_with(backend, |s| s.ws_max_connections_per_ip = 2 * CLIENTS).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let mut items = Vec::new();
    for sku in ["OIL", "SALT", "TEA"] {
        items.push(app.add_item(&token, &store, sku, 0, 3).await);
    }
    let topic = format!("store:{store}");

    // Writers keep adjusting (+2, -1, +2, ...; alerts come and go with the
    // threshold) until every client has its snapshot.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for item in &items {
        let client = app.client.clone();
        let url = app.url(&format!("/api/v1/items/{item}/adjust"));
        let token = token.clone();
        let stop = stop.clone();
        writers.push(tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) && n < 5_000 {
                let (delta, reason) = if n % 2 == 0 {
                    (2, "received")
                } else {
                    (-1, "sold")
                };
                let response = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({ "delta": delta, "reason": reason }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                n += 1;
            }
        }));
    }

    // One client after the other subscribes with a snapshot while the
    // writes go on; each then reads its events until told where the log
    // ended.
    let (end_tx, end_rx) = watch::channel(None::<u64>);
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (mut client, _) = WsClient::authenticated(&app, &token).await;
        let reply = client
            .request(json!({ "type": "subscribe", "topic": topic, "snapshot": true }))
            .await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        let mut end = end_rx.clone();
        clients.push(tokio::spawn(async move {
            let at = reply["snapshot"]["position"]
                .as_u64()
                .expect("snapshot position");
            let mut events: Vec<Value> = Vec::new();
            loop {
                let last = events
                    .last()
                    .map_or(at, |e| e["position"].as_u64().unwrap());
                if end.borrow().is_some_and(|end| last >= end) {
                    break;
                }
                tokio::select! {
                    event = client.next_event() => events.push(event),
                    changed = end.changed() => changed.expect("the test holds the sender"),
                }
            }
            (reply, events)
        }));
    }
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }

    // Every event of the store, from the log itself.
    let head = app.store.head().await.unwrap();
    let filter = EventFilter::tenant("acme").store(store.clone());
    let mut logged = Vec::new();
    let mut cursor = 0;
    loop {
        let page = app.store.read_all(cursor, 1000, &filter).await.unwrap();
        logged.extend(
            page.events
                .iter()
                .map(|e| e.position)
                .filter(|p| *p <= head),
        );
        if page.reached_head || page.scanned_to <= cursor || page.scanned_to >= head {
            break;
        }
        cursor = page.scanned_to;
    }
    let last = *logged.last().expect("the store has events");
    end_tx.send_replace(Some(last));

    // The read model once it has caught up with the log (each query waits
    // a while for it; a busy machine may need a few).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let body = loop {
        let (status, body) = app
            .get(
                &token,
                &format!("/api/v1/stores/{store}/items?status=all&min_position={head}"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        if body["position"].as_u64().unwrap() >= head {
            break body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the read model never reached {head}"
        );
    };
    let read_model: HashMap<String, ItemState> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["item_id"].as_str().unwrap().to_owned(), item_state(i)))
        .collect();
    assert_eq!(read_model.len(), items.len());

    let mut snapshot_positions = Vec::new();
    for client in clients {
        let (reply, events) = client.await.unwrap();
        let snapshot = &reply["snapshot"];
        let at = snapshot["position"].as_u64().unwrap();
        snapshot_positions.push(at);
        assert_eq!(reply["position"], at, "{reply}");
        // The snapshot is exactly at its position: nothing in it is newer.
        // A snapshot taken before the read model saw the store's creation
        // has no store yet (`null`): the creation is among the events after it.
        let summary = &snapshot["data"]["store"];
        if !summary.is_null() {
            assert!(summary["position"].as_u64().unwrap() <= at, "{snapshot}");
        }
        let mut state: HashMap<String, ItemState> = HashMap::new();
        for item in snapshot["data"]["items"].as_array().unwrap() {
            let item_state = item_state(item);
            assert!(
                item_state.position <= at,
                "item newer than the snapshot: {snapshot}"
            );
            state.insert(item["item_id"].as_str().unwrap().to_owned(), item_state);
        }
        if summary.is_null() {
            assert!(state.is_empty(), "items without their store: {snapshot}");
        } else {
            assert_eq!(summary["item_count"], state.len(), "{snapshot}");
        }
        // Every event after the snapshot, once, in order; none at or before it.
        let positions: Vec<u64> = events
            .iter()
            .map(|e| e["position"].as_u64().unwrap())
            .collect();
        let expected: Vec<u64> = logged.iter().copied().filter(|p| *p > at).collect();
        assert_eq!(positions, expected, "snapshot at {at}");
        // Applied on the snapshot, each event continues its item's stream.
        for frame in &events {
            let event = &frame["event"];
            if event["metadata"]["entity_type"] != "item" {
                // The store's own events (its creation, when the snapshot
                // came before the read model saw it) carry no item state.
                continue;
            }
            let item = event["metadata"]["entity_id"].as_str().unwrap();
            let position = frame["position"].as_u64().unwrap();
            if event["type"] == "ItemAdded" {
                // The read model may still have been behind the additions
                // when the first snapshots were taken.
                let added = ItemState {
                    quantity: event["data"]["quantity"].as_i64().unwrap(),
                    version: 1,
                    position,
                };
                let before = state.insert(item.to_owned(), added);
                assert!(before.is_none(), "{item} added twice: {snapshot}");
                continue;
            }
            let Some(known) = state.get_mut(item) else {
                panic!("{event} is about an item not in the snapshot {snapshot}");
            };
            let version = event["version"].as_u64().unwrap();
            assert_eq!(
                version,
                known.version + 1,
                "{item} after the snapshot at {at}: {event}"
            );
            known.version = version;
            known.position = position;
            if event["type"] == "StockAdjusted" {
                known.quantity += event["data"]["delta"].as_i64().unwrap();
                assert_eq!(event["data"]["quantity"], known.quantity, "{event}");
            }
        }
        assert_eq!(state, read_model, "snapshot at {at}, then its events");
    }
    snapshot_positions.sort_unstable();
    snapshot_positions.dedup();
    assert!(
        snapshot_positions.len() > 1,
        "the snapshots were taken while the writes went on: {snapshot_positions:?}"
    );
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

/// The replay after a restart comes from the event log itself.
pub async fn resume_works_across_a_server_restart(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_authenticates_is_closed_with_4001() {
    // Only a silent client here, so the short timeout races nothing.
    let app = TestApp::spawn_with(Backend::Sqlite, |s| s.ws_auth_timeout_ms = 300).await;
    let mut silent = WsClient::connect(&app, "").await;
    let (ended, _) = silent.until_closed(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(4001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_expired_tokens_close_and_a_refresh_in_band_goes_on() {
    // No deadline is near here: the auth timeout is a minute away and the
    // tokens are valid for an hour or expired an hour ago. Closing at the
    // moment of expiry is tested with a paused clock in larder-realtime.
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jwt_secret = Some(SECRET.parse().unwrap());
        s.ws_auth_timeout_ms = 60_000;
    })
    .await;

    // A bad token: 4002.
    let mut bad = WsClient::connect(&app, "").await;
    bad.send(json!({ "type": "auth", "token": "nope" })).await;
    assert_eq!(
        bad.until_closed(Duration::from_secs(10)).await.0,
        Ended::Closed(4002)
    );

    // An expired token: refused, 4003.
    let mut old = claims("acme", Role::Viewer);
    old.exp = (chrono::Utc::now().timestamp() - 3600) as u64;
    let mut expired = WsClient::connect(&app, "").await;
    expired
        .send(json!({ "type": "auth", "token": sign(&old, SECRET) }))
        .await;
    let (ended, frames) = expired.until_closed(Duration::from_secs(10)).await;
    assert_eq!(ended, Ended::Closed(4003));
    assert!(
        frames.iter().any(|f| f["code"] == "not_authenticated"),
        "{frames:?}"
    );

    // Refreshed in band: another user's token is refused, the same user's
    // later token replaces the first, and the connection goes on.
    let first = claims("acme", Role::Viewer);
    let (mut client, welcome) = WsClient::authenticated(&app, &sign(&first, SECRET)).await;
    assert_eq!(welcome["expires_at"], first.exp);
    let mut someone_else = claims("acme", Role::Viewer);
    someone_else.sub = "mallory".into();
    let refused = client
        .request(json!({ "type": "refresh", "token": sign(&someone_else, SECRET) }))
        .await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    let mut later = claims("acme", Role::Viewer);
    later.exp += 3600;
    let refreshed = client
        .request(json!({ "type": "refresh", "token": sign(&later, SECRET) }))
        .await;
    assert_eq!(refreshed["type"], "refreshed", "{refreshed}");
    assert_eq!(refreshed["expires_at"], later.exp);
    assert_eq!(
        client.request(json!({ "type": "ping" })).await["type"],
        "pong"
    );
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
