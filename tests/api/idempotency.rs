//! `Idempotency-Key` on commands: a retry answers the original status and
//! body and appends nothing; the same key for another request is 422.

use larder_tests::{Backend, TestApp};
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

crate::for_each_backend!(idempotency:
    a_retry_with_the_same_key_answers_the_same_and_appends_nothing,
    the_same_key_with_another_body_is_refused_and_appends_nothing,
    a_malformed_key_is_a_bad_request,
    a_failed_request_stores_no_key,
    concurrent_requests_with_one_key_append_once,
    keys_of_different_tenants_never_meet,
    a_store_creation_replays_its_201,
    a_transfer_without_transfer_id_replays_with_its_key,
);

/// POSTs `body` to `path` with `key` (and `If-Match` when given).
async fn keyed(
    app: &TestApp,
    token: &str,
    path: &str,
    key: &str,
    if_match: Option<u64>,
    body: &Value,
) -> (u16, HeaderMap, Value) {
    let mut request = app
        .client
        .post(app.url(path))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(body);
    if let Some(version) = if_match {
        request = request.header("if-match", format!("\"{version}\""));
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.json().await.expect("a JSON body");
    (status, headers, body)
}

fn replayed(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("idempotent-replayed")
        .map(|v| v.to_str().expect("ASCII"))
}

/// The types of an item's stored events, oldest first.
async fn history(app: &TestApp, token: &str, item: &str) -> Vec<String> {
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

pub async fn a_retry_with_the_same_key_answers_the_same_and_appends_nothing(backend: Backend) {
    // Given an item at version 1
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main Street").await;
    let item = app.add_item(&token, &store, "flour", 10, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let body = json!({ "delta": -3, "reason": "sold" });
    // When the same adjustment is sent twice with one key and If-Match
    let (status, headers, first) = keyed(&app, &token, &path, "retry-1", Some(1), &body).await;
    assert_eq!(status, 200, "{first}");
    assert_eq!(replayed(&headers), None);
    let head = app.store.head().await.expect("head");
    let (again, headers, second) = keyed(&app, &token, &path, "retry-1", Some(1), &body).await;
    // Then the retry (its If-Match now stale) answers the same status and
    // body, says it is a replay, and nothing more is stored
    assert_eq!(again, 200, "{second}");
    assert_eq!(second, first);
    assert_eq!(replayed(&headers), Some("true"));
    assert_eq!(headers["etag"], "\"2\"");
    assert_eq!(app.store.head().await.expect("head"), head);
    assert_eq!(
        history(&app, &token, &item).await,
        ["ItemAdded", "StockAdjusted"]
    );
}

pub async fn the_same_key_with_another_body_is_refused_and_appends_nothing(backend: Backend) {
    // Given an adjustment stored with key k
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main Street").await;
    let item = app.add_item(&token, &store, "flour", 10, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let (status, _, body) = keyed(
        &app,
        &token,
        &path,
        "k",
        None,
        &json!({ "delta": -3, "reason": "sold" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let head = app.store.head().await.expect("head");
    // When k comes again with another body, and on another route
    let other = json!({ "delta": -4, "reason": "sold" });
    let (status, _, body) = keyed(&app, &token, &path, "k", None, &other).await;
    // Then both are 422 idempotency_key_reused and nothing is stored
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    let rename = format!("/api/v1/items/{item}/rename");
    let (status, _, body) =
        keyed(&app, &token, &rename, "k", None, &json!({ "name": "Oats" })).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "idempotency_key_reused");
    assert_eq!(app.store.head().await.expect("head"), head);
    assert_eq!(
        history(&app, &token, &item).await,
        ["ItemAdded", "StockAdjusted"]
    );
}

pub async fn a_malformed_key_is_a_bad_request(backend: Backend) {
    // Given an item
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main Street").await;
    let item = app.add_item(&token, &store, "flour", 10, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let body = json!({ "delta": -3, "reason": "sold" });
    let head = app.store.head().await.expect("head");
    // When a key is empty, too long or not visible ASCII
    for key in [
        String::new(),
        "k".repeat(256),
        "a key".to_owned(),
        "tab\tkey".to_owned(),
    ] {
        let (status, _, answer) = keyed(&app, &token, &path, &key, None, &body).await;
        // Then it is 400 invalid_idempotency_key and nothing is stored
        assert_eq!(status, 400, "{key:?}: {answer}");
        assert_eq!(answer["code"], "invalid_idempotency_key");
    }
    assert_eq!(app.store.head().await.expect("head"), head);
    // And the longest key is taken
    let (status, _, answer) = keyed(&app, &token, &path, &"k".repeat(255), None, &body).await;
    assert_eq!(status, 200, "{answer}");
}

pub async fn a_failed_request_stores_no_key(backend: Backend) {
    // Given an item at 10
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main Street").await;
    let item = app.add_item(&token, &store, "flour", 10, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    // When taking out 20 fails with key k
    let (status, _, body) = keyed(
        &app,
        &token,
        &path,
        "k",
        None,
        &json!({ "delta": -20, "reason": "sold" }),
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["code"], "insufficient_stock");
    // Then k is still free for another request
    let (status, headers, body) = keyed(
        &app,
        &token,
        &path,
        "k",
        None,
        &json!({ "delta": -2, "reason": "sold" }),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(replayed(&headers), None);
}

pub async fn concurrent_requests_with_one_key_append_once(backend: Backend) {
    // Given an item at 10
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main Street").await;
    let item = app.add_item(&token, &store, "flour", 10, 0).await;
    let path = format!("/api/v1/items/{item}/adjust");
    let body = json!({ "delta": -1, "reason": "sold" });
    // When 8 copies of one request race with one key
    let answers = futures_util::future::join_all(
        (0..8).map(|_| keyed(&app, &token, &path, "race", None, &body)),
    )
    .await;
    // Then all answer 200 with one body, exactly one is not a replay, and
    // one adjustment is stored
    let first = &answers[0].2;
    for (status, _, answer) in &answers {
        assert_eq!(*status, 200, "{answer}");
        assert_eq!(answer, first);
    }
    let originals = answers
        .iter()
        .filter(|(_, h, _)| replayed(h).is_none())
        .count();
    assert_eq!(originals, 1);
    assert_eq!(
        history(&app, &token, &item).await,
        ["ItemAdded", "StockAdjusted"]
    );
}

pub async fn keys_of_different_tenants_never_meet(backend: Backend) {
    // Given two tenants
    let app = TestApp::spawn(backend).await;
    let acme = app.token("acme", "alice", "admin").await;
    let globex = app.token("globex", "bob", "admin").await;
    let body = json!({ "name": "Main Street" });
    // When both create a store with the same key and body
    let (a, a_headers, a_body) = keyed(&app, &acme, "/api/v1/stores", "shared", None, &body).await;
    let (b, b_headers, b_body) =
        keyed(&app, &globex, "/api/v1/stores", "shared", None, &body).await;
    // Then each made its own store; neither is a replay
    assert_eq!((a, b), (201, 201), "{a_body} {b_body}");
    assert_eq!((replayed(&a_headers), replayed(&b_headers)), (None, None));
    assert_ne!(a_body["id"], b_body["id"]);
    let store = b_body["id"].as_str().expect("id");
    let position = &b_body["position"];
    let (status, _) = app
        .get(
            &globex,
            &format!("/api/v1/stores/{store}?min_position={position}"),
        )
        .await;
    assert_eq!(status, 200);
}

pub async fn a_store_creation_replays_its_201(backend: Backend) {
    // Given a store created with a key
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let body = json!({ "name": "Main Street" });
    let (status, _, first) = keyed(&app, &token, "/api/v1/stores", "create-1", None, &body).await;
    assert_eq!(status, 201, "{first}");
    let head = app.store.head().await.expect("head");
    // When the creation is retried
    let (status, headers, again) =
        keyed(&app, &token, "/api/v1/stores", "create-1", None, &body).await;
    // Then it answers 201 with the same store, and nothing is stored
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    assert_eq!(replayed(&headers), Some("true"));
    assert_eq!(app.store.head().await.expect("head"), head);
    let (_, stores) = app
        .get(&token, &format!("/api/v1/stores?min_position={head}"))
        .await;
    assert_eq!(stores["stores"].as_array().expect("stores").len(), 1);
}

pub async fn a_transfer_without_transfer_id_replays_with_its_key(backend: Backend) {
    // Given two items, and a transfer between them sent with a key and no
    // transfer_id
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main Street").await;
    let from = app.add_item(&token, &store, "flour", 10, 0).await;
    let to = app.add_item(&token, &store, "oats", 0, 0).await;
    let body = json!({ "from_item": from, "to_item": to, "quantity": 4 });
    let (status, _, first) = keyed(&app, &token, "/api/v1/transfers", "move-1", None, &body).await;
    assert_eq!(status, 201, "{first}");
    let head = app.store.head().await.expect("head");
    // When it is retried
    let (status, headers, again) =
        keyed(&app, &token, "/api/v1/transfers", "move-1", None, &body).await;
    // Then it answers 201 with the same transfer, and moves nothing more
    // (the managers' notifications of the first one may still be appended
    // meanwhile: they are not the transfer's)
    assert_eq!(status, 201, "{again}");
    assert_eq!(again, first);
    assert_eq!(replayed(&headers), Some("true"));
    let filter = larder_store::EventFilter::tenant("acme").entity_type("item");
    let later = app
        .store
        .read_all(head, 100, &filter)
        .await
        .expect("read the log");
    assert!(later.reached_head);
    assert_eq!(later.events.len(), 0, "{:?}", later.events);
    assert_eq!(
        history(&app, &token, &from).await,
        ["ItemAdded", "StockAdjusted", "TransferCompleted"]
    );
}
