//! Commands and queries.

use larder_server::Role;
use larder_tests::{Backend, SECRET, TestApp, claims, sign};
use serde_json::json;

crate::for_each_backend!(api:
    create_store_add_item_adjust_and_read_inventory_and_activity,
    min_position_gives_read_your_writes,
    a_stale_if_match_is_a_conflict_with_the_current_version,
    stock_below_zero_is_refused_and_appends_nothing,
    malformed_json_and_wrong_types_are_bad_requests,
    an_oversized_body_is_refused,
    a_transfer_moves_stock_atomically,
    concurrent_adjustments_with_the_same_if_match_let_exactly_one_win,
    concurrent_adjustments_without_if_match_lose_no_update,
    item_history_comes_from_the_event_store,
    paging_is_bounded,
    two_servers_on_one_database_never_decide_on_stale_state,
);

pub async fn create_store_add_item_adjust_and_read_inventory_and_activity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;

    let store = app.create_store(&token, "Main Street").await;
    let item = app.add_item(&token, &store, "flour-25", 10, 3).await;
    let (status, adjusted) = app
        .post_if_match(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            1,
            json!({ "delta": -8, "reason": "sold" }),
        )
        .await;
    assert_eq!(status, 200, "{adjusted}");
    assert_eq!(adjusted["version"], 3, "StockAdjusted and LowStock");
    assert_eq!(adjusted["events"], json!(["StockAdjusted", "LowStock"]));
    let position = adjusted["position"].as_u64().unwrap();

    let (status, inventory) = app
        .get(
            &token,
            &format!("/api/v1/stores/{store}/items?min_position={position}"),
        )
        .await;
    assert_eq!(status, 200);
    assert!(inventory["position"].as_u64().unwrap() >= position);
    let row = &inventory["items"][0];
    assert_eq!(row["sku"], "FLOUR-25");
    assert_eq!(row["quantity"], 2);
    assert_eq!(row["status"], "low");
    assert_eq!(row["version"], 3);

    let (_, stores) = app
        .get(&token, &format!("/api/v1/stores?min_position={position}"))
        .await;
    assert_eq!(stores["stores"][0]["item_count"], 1);
    assert_eq!(stores["stores"][0]["low_stock_count"], 1);

    let (_, activity) = app
        .get(
            &token,
            &format!("/api/v1/stores/{store}/activity?min_position={position}"),
        )
        .await;
    let types: Vec<&str> = activity["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["LowStock", "StockAdjusted", "ItemAdded", "StoreCreated"]
    );
    assert_eq!(activity["activity"][0]["actor"], "alice");

    let response = app
        .client
        .get(app.url(&format!("/api/v1/items/{item}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["etag"], "\"3\"");
}

pub async fn min_position_gives_read_your_writes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    // Each write is read back at once: without min_position the read model
    // could still be behind.
    for i in 0..20 {
        let (_, added) = app
            .post(
                &token,
                &format!("/api/v1/stores/{store}/items"),
                json!({ "sku": format!("SKU-{i}"), "name": "x" }),
            )
            .await;
        let position = added["position"].as_u64().unwrap();
        let item = added["id"].as_str().unwrap();
        let (status, read) = app
            .get(
                &token,
                &format!("/api/v1/items/{item}?min_position={position}"),
            )
            .await;
        assert_eq!(status, 200, "item {i} visible at once: {read}");
        assert!(read["position"].as_u64().unwrap() >= position);
    }
}

pub async fn a_stale_if_match_is_a_conflict_with_the_current_version(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "TEA", 10, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let (status, _) = app
        .post_if_match(
            &token,
            &path,
            1,
            json!({ "delta": 1, "reason": "received" }),
        )
        .await;
    assert_eq!(status, 200);

    let (status, body) = app
        .post_if_match(
            &token,
            &path,
            1,
            json!({ "delta": 1, "reason": "received" }),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "version_conflict");
    assert_eq!(body["details"]["current_version"], 2);
    let (status, body) = app
        .post(
            &token,
            &path,
            json!({ "delta": 1, "reason": "received", "expected_version": 1 }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("version_conflict"))
    );
    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/stores/{store}/rename"),
            json!({ "name": "New", "expected_version": 7 }),
        )
        .await;
    assert_eq!(
        (status, &body["details"]["current_version"]),
        (409, &json!(1))
    );
}

pub async fn stock_below_zero_is_refused_and_appends_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "EGGS", 3, 0).await;
    let head = app.head_outside_inboxes().await;

    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -4, "reason": "sold" }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "insufficient_stock");
    assert_eq!(body["details"], json!({ "available": 3, "requested": 4 }));
    assert_eq!(app.head_outside_inboxes().await, head, "nothing appended");

    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/stores/{store}/items"),
            json!({ "sku": "EGGS", "name": "again" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("sku_already_exists"))
    );
    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/stores/{store}/items"),
            json!({ "sku": "BAD SKU!", "name": "x" }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_sku")));
    assert_eq!(app.head_outside_inboxes().await, head, "nothing appended");
}

pub async fn malformed_json_and_wrong_types_are_bad_requests(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SALT", 3, 0).await;
    let head = app.head_outside_inboxes().await;
    let raw = |body: &'static str| {
        app.client
            .post(app.url(&format!("/api/v1/items/{item}/adjust")))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (status, body) = larder_tests::read(raw("{\"delta\": -1,").await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_json")));
    let (status, body) = larder_tests::read(
        raw("{\"delta\": \"ten\", \"reason\": \"sold\"}")
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, body) =
        larder_tests::read(raw("{\"delta\": 1, \"reason\": \"stolen\"}").await.unwrap()).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_body")));
    let (status, body) =
        larder_tests::read(raw("{\"delta\": 0, \"reason\": \"sold\"}").await.unwrap()).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_delta"))
    );
    let (status, body) = app.get(&token, "/api/v1/items/not-a-uuid").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (status, body) = app
        .get(&token, &format!("/api/v1/stores/{store}/items?limit=lots"))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    assert_eq!(app.head_outside_inboxes().await, head, "nothing appended");
}

pub async fn an_oversized_body_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let name = "x".repeat(128 * 1024);
    let (status, body) = app
        .post(&token, "/api/v1/stores", json!({ "name": name }))
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    assert_eq!(app.head_outside_inboxes().await, 0);
}

pub async fn a_transfer_moves_stock_atomically(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let north = app.create_store(&token, "North").await;
    let south = app.create_store(&token, "South").await;
    let from = app.add_item(&token, &north, "OIL", 10, 2).await;
    let to = app.add_item(&token, &south, "OIL", 1, 2).await;

    let (status, body) = app
        .post(
            &token,
            "/api/v1/transfers",
            json!({ "from_item": from, "to_item": to, "quantity": 7 }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let position = body["position"].as_u64().unwrap();
    let (_, a) = app
        .get(
            &token,
            &format!("/api/v1/items/{from}?min_position={position}"),
        )
        .await;
    let (_, b) = app
        .get(
            &token,
            &format!("/api/v1/items/{to}?min_position={position}"),
        )
        .await;
    assert_eq!(a["item"]["quantity"], 3);
    assert_eq!(b["item"]["quantity"], 8);

    // Too much: nothing moves on either side.
    let head = app.head_outside_inboxes().await;
    let (status, body) = app
        .post(
            &token,
            "/api/v1/transfers",
            json!({ "from_item": from, "to_item": to, "quantity": 4 }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("insufficient_stock"))
    );
    assert_eq!(app.head_outside_inboxes().await, head);
    let (_, a) = app.get(&token, &format!("/api/v1/items/{from}")).await;
    assert_eq!(a["item"]["quantity"], 3);
}

pub async fn concurrent_adjustments_with_the_same_if_match_let_exactly_one_win(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "RICE", 100, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");

    let results = concurrently(
        &app,
        &token,
        &path,
        Some(1),
        json!({ "delta": -1, "reason": "sold" }),
        8,
    )
    .await;
    let wins = results.iter().filter(|(s, _)| *s == 200).count();
    let conflicts = results.iter().filter(|(s, _)| *s == 409).count();
    assert_eq!((wins, conflicts), (1, 7), "{results:?}");
    let (_, read) = app
        .get(&token, &format!("/api/v1/items/{item}/events"))
        .await;
    assert_eq!(read["events"].as_array().unwrap().len(), 2);
}

/// Commands without `If-Match` are retried when they lose a race, so every
/// one succeeds and counts once. One server decides an item's commands in
/// turn; two servers on one database race for real, and the first command on
/// `a` is sure to lose (its cached state is stale) and take the retry path.
pub async fn concurrent_adjustments_without_if_match_lose_no_update(backend: Backend) {
    let a = TestApp::spawn_with_secret(backend).await;
    let b = TestApp::start(a.settings.clone(), None).await;
    let token = sign(&claims("acme", Role::Admin), SECRET);
    let store = a.create_store(&token, "Main").await;
    let item = a.add_item(&token, &store, "BEANS", 100, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let sell = json!({ "delta": -1, "reason": "sold" });
    // `a` caches the item at version 2, then `b` moves it to 3.
    assert_eq!(a.post(&token, &path, sell.clone()).await.0, 200);
    assert_eq!(b.post(&token, &path, sell.clone()).await.0, 200);

    const EACH: usize = 8;
    let (on_a, on_b) = tokio::join!(
        concurrently(&a, &token, &path, None, sell.clone(), EACH),
        concurrently(&b, &token, &path, None, sell.clone(), EACH),
    );
    let results: Vec<_> = on_a.into_iter().chain(on_b).collect();
    assert!(
        results.iter().all(|(status, _)| *status == 200),
        "every adjustment succeeds: {results:?}"
    );
    let mut versions: Vec<u64> = results
        .iter()
        .map(|(_, body)| body["version"].as_u64().unwrap())
        .collect();
    versions.sort_unstable();
    let expected: Vec<u64> = (4..4 + 2 * EACH as u64).collect();
    assert_eq!(versions, expected, "each one appended once, in turn");
    let position = a.store.head().await.unwrap();
    for app in [&a, &b] {
        let (_, read) = app
            .get(
                &token,
                &format!("/api/v1/items/{item}?min_position={position}"),
            )
            .await;
        assert_eq!(
            read["item"]["quantity"],
            100 - 2 - 2 * EACH as i64,
            "every adjustment counted once"
        );
    }
}

/// Sends the same command `count` times at once.
async fn concurrently(
    app: &TestApp,
    token: &str,
    path: &str,
    if_match: Option<u64>,
    body: serde_json::Value,
    count: usize,
) -> Vec<(u16, serde_json::Value)> {
    let handles: Vec<_> = (0..count)
        .map(|_| {
            let mut request = app
                .client
                .post(app.url(path))
                .bearer_auth(token)
                .json(&body);
            if let Some(version) = if_match {
                request = request.header("if-match", format!("\"{version}\""));
            }
            tokio::spawn(async move { larder_tests::read(request.send().await.unwrap()).await })
        })
        .collect();
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.unwrap());
    }
    results
}

pub async fn item_history_comes_from_the_event_store(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "JAM", 1, 0).await;
    app.post(
        &token,
        &format!("/api/v1/items/{item}/rename"),
        json!({ "name": "Strawberry jam" }),
    )
    .await;
    app.post(&token, &format!("/api/v1/items/{item}/remove"), json!({}))
        .await;

    let (status, history) = app
        .get(&token, &format!("/api/v1/items/{item}/events"))
        .await;
    assert_eq!(status, 200);
    let types: Vec<&str> = history["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, vec!["ItemAdded", "ItemRenamed", "ItemRemoved"]);
    assert_eq!(history["events"][1]["data"]["name"], "Strawberry jam");
    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": 1, "reason": "received" }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (422, Some("item_removed")));
}

pub async fn paging_is_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    for sku in ["A", "B", "C"] {
        app.add_item(&token, &store, sku, 1, 0).await;
    }
    let head = app.head_outside_inboxes().await;
    let (_, page) = app
        .get(
            &token,
            &format!("/api/v1/stores/{store}/items?limit=2&min_position={head}"),
        )
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert_eq!(page["next_after"], "B");
    let (_, rest) = app
        .get(
            &token,
            &format!("/api/v1/stores/{store}/items?limit=2&after=B"),
        )
        .await;
    assert_eq!(rest["items"][0]["sku"], "C");
    assert!(rest["next_after"].is_null());
    let (status, body) = app
        .get(
            &token,
            &format!("/api/v1/stores/{store}/items?limit=100000"),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
}

/// Commands decide on cached aggregate states first; a state another server
/// changed since must never make a command wrongly succeed or fail.
pub async fn two_servers_on_one_database_never_decide_on_stale_state(backend: Backend) {
    let a = TestApp::spawn_with_secret(backend).await;
    let b = TestApp::start(a.settings.clone(), None).await;
    let token = sign(&claims("acme", Role::Admin), SECRET);
    let store = a.create_store(&token, "Main").await;
    let item = a.add_item(&token, &store, "FLOUR", 10, 2).await;
    let adjust = |delta: i64| json!({ "delta": delta, "reason": "received" });
    let path = format!("/api/v1/items/{item}/adjust");

    // A caches the item at 15; B moves it to 16 behind A's back.
    assert_eq!(a.post(&token, &path, adjust(5)).await.0, 200);
    let (status, body) = b.post(&token, &path, adjust(1)).await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(3)), "{body}");

    // Selling 16 on A is fine (its cache alone would refuse it)...
    let (status, body) = a.post(&token, &path, adjust(-16)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"], json!(["StockAdjusted", "OutOfStock"]));
    // ...an If-Match with the version B knows is no conflict on A...
    let (status, body) = b.post(&token, &path, adjust(4)).await;
    assert_eq!(body["events"], json!(["StockAdjusted", "Restocked"]));
    assert_eq!((status, body["version"].as_u64()), (200, Some(7)), "{body}");
    let (status, body) = a.post_if_match(&token, &path, 7, adjust(1)).await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(8)), "{body}");

    // ...and a store B closed refuses A's next command, appending nothing.
    let (status, body) = b
        .post(&token, &format!("/api/v1/stores/{store}/close"), json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    let head = a.store.head().await.unwrap();
    let (status, body) = a.post(&token, &path, adjust(1)).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("store_closed")),
        "{body}"
    );
    // Nothing appended to the item (the users' inboxes may get their
    // out-of-stock notifications meanwhile: those are other streams).
    let after = a
        .store
        .read_all(
            head,
            100,
            &larder_store::EventFilter::tenant("acme").entity_type("item"),
        )
        .await
        .unwrap();
    assert_eq!(after.events.len(), 0, "nothing appended");
    let (status, body) = a
        .get(&token, &format!("/api/v1/items/{item}?min_position={head}"))
        .await;
    assert_eq!(
        (status, body["item"]["quantity"].as_i64()),
        (200, Some(5)),
        "{body}"
    );
}
