//! Undo and redo over real HTTP: compensating events, their refusals, the
//! roles that may undo, idempotency keys, and live subscribers seeing them.

use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(undo:
    an_adjustment_is_undone_and_redone_and_subscribers_see_both,
    a_rename_is_undone_unless_a_later_rename_depends_on_it,
    refused_undos_answer_a_clear_code_and_change_nothing,
    staff_undo_only_their_own_adjustments,
    an_undo_retried_with_its_key_is_replayed,
);

/// The item's stored events, oldest first.
async fn events(app: &TestApp, token: &str, item: &str) -> Vec<Value> {
    let (status, body) = app
        .get(token, &format!("/api/v1/items/{item}/events"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["events"].as_array().expect("events").clone()
}

/// The id of the item's last event of `event_type`.
async fn last_id(app: &TestApp, token: &str, item: &str, event_type: &str) -> String {
    events(app, token, item)
        .await
        .iter()
        .rev()
        .find(|e| e["type"] == event_type)
        .and_then(|e| e["id"].as_str())
        .unwrap_or_else(|| panic!("a {event_type}"))
        .to_owned()
}

async fn undo(app: &TestApp, token: &str, item: &str, event_id: &str) -> (u16, Value) {
    app.post(
        token,
        &format!("/api/v1/items/{item}/undo"),
        json!({ "event_id": event_id }),
    )
    .await
}

async fn redo(app: &TestApp, token: &str, item: &str, event_id: &str) -> (u16, Value) {
    app.post(
        token,
        &format!("/api/v1/items/{item}/redo"),
        json!({ "event_id": event_id }),
    )
    .await
}

/// The item's quantity in the read model once it reached `position`.
async fn quantity(app: &TestApp, token: &str, item: &str, position: &Value) -> i64 {
    let (status, body) = app
        .get(
            token,
            &format!("/api/v1/items/{item}?min_position={position}"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["item"]["quantity"].as_i64().expect("a quantity")
}

pub async fn an_adjustment_is_undone_and_redone_and_subscribers_see_both(backend: Backend) {
    // Given an item at 10 (threshold 3) from which 8 were sold, and a live
    // subscriber to its store
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "FLOUR", 10, 3).await;
    let (status, body) = app
        .post(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -8, "reason": "sold" }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sale = last_id(&app, &token, &item, "StockAdjusted").await;
    let (mut client, _) = WsClient::authenticated(&app, &token).await;
    client
        .subscribe_from_head(&app, &format!("store:{store}"))
        .await;

    // When the sale is undone
    let (status, undone) = undo(&app, &token, &item, &sale).await;

    // Then the stock is back, by a compensating event caused by the sale,
    // which the subscriber sees live with its alert
    assert_eq!(status, 200, "{undone}");
    assert_eq!(undone["events"], json!(["StockAdjusted", "Restocked"]));
    assert_eq!(quantity(&app, &token, &item, &undone["position"]).await, 10);
    let live = client.next_event().await;
    assert_eq!(live["event"]["type"], "StockAdjusted", "{live}");
    assert_eq!(live["event"]["data"]["delta"], 8);
    assert_eq!(live["event"]["data"]["reason"], "sold");
    assert_eq!(live["event"]["data"]["undoes"], sale.as_str());
    assert_eq!(live["event"]["metadata"]["causation_id"], sale.as_str());
    assert_eq!(client.next_event().await["event"]["type"], "Restocked");
    let undo_id = live["event"]["id"].as_str().expect("an id").to_owned();
    let stored = events(&app, &token, &item).await;
    let stored_undo = stored
        .iter()
        .find(|e| e["id"] == undo_id.as_str())
        .expect("stored");
    assert_eq!(stored_undo["causation_id"], sale.as_str());
    assert_eq!(stored_undo["schema_version"], 2);

    // And undoing it again is refused, naming the undo
    let (status, body) = undo(&app, &token, &item, &sale).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "already_undone");
    assert_eq!(body["details"]["undone_by"], undo_id.as_str());

    // When it is redone
    let (status, redone) = redo(&app, &token, &item, &sale).await;

    // Then the sale is in effect again, caused by the undo, seen live
    assert_eq!(status, 200, "{redone}");
    assert_eq!(redone["events"], json!(["StockAdjusted", "LowStock"]));
    assert_eq!(quantity(&app, &token, &item, &redone["position"]).await, 2);
    let live = client.next_event().await;
    assert_eq!(live["event"]["data"]["delta"], -8, "{live}");
    assert_eq!(live["event"]["metadata"]["causation_id"], undo_id.as_str());
    assert_eq!(client.next_event().await["event"]["type"], "LowStock");
    let (status, body) = redo(&app, &token, &item, &sale).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "already_undone");
}

pub async fn a_rename_is_undone_unless_a_later_rename_depends_on_it(backend: Backend) {
    // Given an item renamed twice
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "manager").await;
    let admin = app.token("acme", "root", "admin").await;
    let store = app.create_store(&admin, "Main").await;
    let item = app.add_item(&token, &store, "FLOUR", 10, 3).await;
    let rename = |name: &'static str| {
        let (app, token, item) = (&app, &token, &item);
        async move {
            let path = format!("/api/v1/items/{item}/rename");
            let (status, body) = app.post(token, &path, json!({ "name": name })).await;
            assert_eq!(status, 200, "{body}");
            last_id(app, token, item, "ItemRenamed").await
        }
    };
    let first = rename("Flour 00").await;
    let second = rename("Flour T55").await;

    // When the first rename is undone
    let (status, body) = undo(&app, &token, &item, &first).await;

    // Then it is refused: the second rename set the name since
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["code"], "undo_conflict");
    assert_eq!(body["details"]["later"], second.as_str());

    // When the second is undone, then the first
    let (status, body) = undo(&app, &token, &item, &second).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = undo(&app, &token, &item, &first).await;

    // Then the item has its original name back
    assert_eq!(status, 200, "{body}");
    let (_, read) = app
        .get(
            &token,
            &format!("/api/v1/items/{item}?min_position={}", body["position"]),
        )
        .await;
    assert_eq!(read["item"]["name"], "Item FLOUR");
}

pub async fn refused_undos_answer_a_clear_code_and_change_nothing(backend: Backend) {
    // Given an item with an adjustment, and tokens of several kinds
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "FLOUR", 10, 3).await;
    let (status, _) = app
        .post(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": 1, "reason": "received" }),
        )
        .await;
    assert_eq!(status, 200);
    let added = last_id(&app, &token, &item, "ItemAdded").await;
    let adjusted = last_id(&app, &token, &item, "StockAdjusted").await;
    let viewer = app.token("acme", "vera", "viewer").await;
    let other_tenant = app.token("globex", "gus", "admin").await;
    let head = app.store.head().await.expect("head");
    let path = format!("/api/v1/items/{item}/undo");

    // When undos that must be refused are sent, then each has its code
    let cases = [
        (&token, json!({ "event_id": added }), 422, "not_undoable"),
        (
            &token,
            json!({ "event_id": uuid::Uuid::new_v4() }),
            404,
            "change_not_found",
        ),
        (
            &other_tenant,
            json!({ "event_id": adjusted }),
            404,
            "not_found",
        ),
        (&viewer, json!({ "event_id": adjusted }), 403, "forbidden"),
        (
            &token,
            json!({ "event_id": "not-a-uuid" }),
            400,
            "invalid_body",
        ),
        (
            &token,
            json!({ "event_id": adjusted, "extra": 1 }),
            400,
            "invalid_body",
        ),
        (&token, json!({}), 400, "invalid_body"),
    ];
    for (who, body, status, code) in cases {
        let (answered, reply) = app.post(who, &path, body.clone()).await;
        assert_eq!(
            (answered, reply["code"].as_str()),
            (status, Some(code)),
            "{body}: {reply}"
        );
    }
    let (status, reply) = app
        .post_if_match(&token, &path, 1, json!({ "event_id": adjusted }))
        .await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (409, Some("version_conflict")),
        "{reply}"
    );
    let (status, reply) = redo(&app, &token, &item, &adjusted).await;
    assert_eq!(
        (status, reply["code"].as_str()),
        (409, Some("not_undone")),
        "{reply}"
    );

    // And nothing was appended, and the server still answers
    assert_eq!(app.store.head().await.expect("head"), head);
    let (status, body) = undo(&app, &token, &item, &adjusted).await;
    assert_eq!(status, 200, "{body}");
}

pub async fn staff_undo_only_their_own_adjustments(backend: Backend) {
    // Given an adjustment by bob (staff) and a rename by a manager
    let app = TestApp::spawn(backend).await;
    let admin = app.token("acme", "root", "admin").await;
    let bob = app.token("acme", "bob", "staff").await;
    let carol = app.token("acme", "carol", "staff").await;
    let store = app.create_store(&admin, "Main").await;
    let item = app.add_item(&admin, &store, "FLOUR", 10, 3).await;
    let (status, _) = app
        .post(
            &bob,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -2, "reason": "wasted" }),
        )
        .await;
    assert_eq!(status, 200);
    let wasted = last_id(&app, &admin, &item, "StockAdjusted").await;
    let (status, _) = app
        .post(
            &admin,
            &format!("/api/v1/items/{item}/rename"),
            json!({ "name": "Flour 00" }),
        )
        .await;
    assert_eq!(status, 200);
    let renamed = last_id(&app, &admin, &item, "ItemRenamed").await;

    // When carol (staff) undoes bob's adjustment or the rename: refused
    for event_id in [&wasted, &renamed] {
        let (status, body) = undo(&app, &carol, &item, event_id).await;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["code"], "undo_not_allowed");
    }
    let (status, body) = undo(&app, &bob, &item, &renamed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("undo_not_allowed"))
    );

    // When bob undoes his own adjustment: done
    let (status, body) = undo(&app, &bob, &item, &wasted).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(quantity(&app, &admin, &item, &body["position"]).await, 10);
}

pub async fn an_undo_retried_with_its_key_is_replayed(backend: Backend) {
    // Given an adjustment
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "FLOUR", 10, 3).await;
    let (status, _) = app
        .post(
            &token,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -4, "reason": "sold" }),
        )
        .await;
    assert_eq!(status, 200);
    let sale = last_id(&app, &token, &item, "StockAdjusted").await;
    let send = || {
        app.client
            .post(app.url(&format!("/api/v1/items/{item}/undo")))
            .bearer_auth(&token)
            .header("idempotency-key", "undo-1")
            .json(&json!({ "event_id": sale }))
            .send()
    };

    // When the undo is sent twice with one key
    let first = send().await.expect("answered");
    assert_eq!(first.status(), 200);
    let first: Value = first.json().await.expect("JSON");
    let head = app.store.head().await.expect("head");
    let second = send().await.expect("answered");

    // Then the retry answers the same (not already_undone), says it is a
    // replay, and appends nothing
    assert_eq!(second.status(), 200);
    assert_eq!(
        second
            .headers()
            .get("idempotent-replayed")
            .and_then(|v| v.to_str().ok()),
        Some("true")
    );
    let second: Value = second.json().await.expect("JSON");
    assert_eq!(second, first);
    assert_eq!(app.store.head().await.expect("head"), head);
    assert_eq!(quantity(&app, &token, &item, &first["position"]).await, 10);
}
