//! Health, readiness, OpenAPI, shutdown, restart, the README quick start.

use std::collections::BTreeSet;

use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};

crate::for_each_backend!(operations:
    health_and_readiness_answer,
    graceful_shutdown_finishes_an_in_flight_request,
    data_survives_a_restart,
);

pub async fn health_and_readiness_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) =
        larder_tests::read(app.client.get(app.url("/healthz")).send().await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ok")));
    let (status, body) =
        larder_tests::read(app.client.get(app.url("/readyz")).send().await.unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("ready")),
        "{body}"
    );
    assert_eq!(body["database"], true);
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
}

pub async fn graceful_shutdown_finishes_an_in_flight_request(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    // A query waiting for a position that will not come is in flight for
    // the whole min_position wait (2 s).
    let request = app
        .client
        .get(app.url("/api/v1/stores?min_position=1000000"))
        .bearer_auth(&token)
        .send();
    let in_flight = tokio::spawn(request);
    // Wait (bounded) until the server is handling it, then ask it to stop.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while app.in_flight.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the request never reached the server"
        );
        tokio::task::yield_now().await;
    }
    app.begin_shutdown();
    let response = in_flight
        .await
        .unwrap()
        .expect("the in-flight request was answered");
    assert_eq!(response.status(), 200);
    app.stopped().await.expect("the server stopped cleanly");
    assert!(
        app.client.get(app.url("/healthz")).send().await.is_err(),
        "no longer accepting"
    );
}

pub async fn data_survives_a_restart(backend: Backend) {
    let mut app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    app.add_item(&token, &store, "KEEP", 4, 1).await;
    let settings = app.settings.clone();
    app.stop().await.unwrap();

    let restarted = TestApp::start(settings, None).await;
    let token = restarted.token("acme", "alice", "admin").await;
    let head = restarted.store.head().await.unwrap();
    assert_eq!(head, 2);
    let (status, inventory) = restarted
        .get(
            &token,
            &format!("/api/v1/stores/{store}/items?min_position={head}"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(inventory["items"][0]["sku"], "KEEP");
    drop(app);
}

#[tokio::test]
async fn the_openapi_document_lists_every_route() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let (status, doc) = larder_tests::read(
        app.client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let routes = [
        ("GET", "/api/v1/stores"),
        ("POST", "/api/v1/stores"),
        ("GET", "/api/v1/stores/{store_id}"),
        ("POST", "/api/v1/stores/{store_id}/rename"),
        ("POST", "/api/v1/stores/{store_id}/close"),
        ("GET", "/api/v1/stores/{store_id}/items"),
        ("POST", "/api/v1/stores/{store_id}/items"),
        ("GET", "/api/v1/stores/{store_id}/activity"),
        ("GET", "/api/v1/stores/{store_id}/kitchen/{station}/tickets"),
        ("GET", "/api/v1/stores/{store_id}/kitchen/times"),
        ("GET", "/api/v1/stores/{store_id}/menu/availability"),
        ("GET", "/api/v1/stores/{store_id}/orders/board"),
        ("GET", "/api/v1/stores/{store_id}/dashboard"),
        ("GET", "/api/v1/dashboard"),
        ("GET", "/api/v1/notifications"),
        ("GET", "/api/v1/notifications/unread-count"),
        ("POST", "/api/v1/notifications/{notification_id}/read"),
        ("POST", "/api/v1/notifications/read-all"),
        ("GET", "/api/v1/notifications/preferences"),
        ("PUT", "/api/v1/notifications/preferences"),
        ("POST", "/api/v1/notifications/broadcast"),
        ("GET", "/api/v1/items/{item_id}"),
        ("GET", "/api/v1/items/{item_id}/events"),
        ("POST", "/api/v1/items/{item_id}/adjust"),
        ("POST", "/api/v1/items/{item_id}/threshold"),
        ("POST", "/api/v1/items/{item_id}/rename"),
        ("POST", "/api/v1/items/{item_id}/remove"),
        ("POST", "/api/v1/items/{item_id}/undo"),
        ("POST", "/api/v1/items/{item_id}/redo"),
        ("POST", "/api/v1/transfers"),
        ("GET", "/api/v1/stores/{store_id}/menu"),
        ("PUT", "/api/v1/stores/{store_id}/menu/stations/{station}"),
        ("POST", "/api/v1/stores/{store_id}/menu/items"),
        (
            "PATCH",
            "/api/v1/stores/{store_id}/menu/items/{menu_item_id}",
        ),
        (
            "POST",
            "/api/v1/stores/{store_id}/menu/items/{menu_item_id}/activate",
        ),
        (
            "POST",
            "/api/v1/stores/{store_id}/menu/items/{menu_item_id}/deactivate",
        ),
        ("POST", "/api/v1/stores/{store_id}/orders"),
        ("GET", "/api/v1/orders/{order_id}"),
        ("POST", "/api/v1/orders/{order_id}/lines"),
        ("POST", "/api/v1/orders/{order_id}/lines/{line_id}/void"),
        ("POST", "/api/v1/orders/{order_id}/lines/{line_id}/start"),
        ("POST", "/api/v1/orders/{order_id}/lines/{line_id}/ready"),
        ("POST", "/api/v1/orders/{order_id}/lines/{line_id}/recall"),
        ("POST", "/api/v1/orders/{order_id}/fire"),
        ("POST", "/api/v1/orders/{order_id}/serve"),
        ("POST", "/api/v1/orders/{order_id}/complete"),
        ("POST", "/api/v1/orders/{order_id}/cancel"),
        ("POST", "/api/v1/orders/{order_id}/rush"),
        ("POST", "/api/v1/dev/token"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("GET", "/api/v1/events/stream"),
        ("GET", "/api/v1/events"),
    ];
    let expected: BTreeSet<(String, String)> = routes
        .iter()
        .map(|(m, p)| ((*m).into(), (*p).into()))
        .collect();
    assert_eq!(
        documented, expected,
        "the OpenAPI document and the routes differ"
    );
    // And every documented route exists: none answers the router's 404.
    let id = uuid::Uuid::new_v4();
    for (method, path) in &expected {
        let mut path = path.replace("{station}", "grill");
        for name in ["store_id", "item_id", "menu_item_id", "order_id", "line_id"] {
            path = path.replace(&format!("{{{name}}}"), &id.to_string());
        }
        let url = app.url(&path);
        let request = match method.as_str() {
            "GET" => app.client.get(url),
            "PUT" => app.client.put(url).json(&json!({})),
            "PATCH" => app.client.patch(url).json(&json!({})),
            _ => app.client.post(url).json(&json!({})),
        };
        let (status, body) = larder_tests::read(request.send().await.unwrap()).await;
        assert!(
            !(status == 404 && body["message"] == "no such route") && status != 405,
            "{method} {path} is documented but not routed: {status} {body}"
        );
    }
    // Error responses are documented with the error schema.
    let adjust = &doc["paths"]["/api/v1/items/{item_id}/adjust"]["post"]["responses"];
    for code in ["400", "401", "403", "404", "409", "422"] {
        assert!(adjust.get(code).is_some(), "adjust documents {code}");
    }
    assert!(doc["components"]["schemas"].get("ErrorBody").is_some());
    let _: &Value = &doc;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_with_503_when_the_database_is_gone() {
    let app = larder_tests::server::Server::start(|_| {}).await;
    let (status, body) = larder_tests::read(reqwest::get(app.url("/readyz")).await.unwrap()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("ready")));
    // The database goes away under the running server.
    match &app.state.db {
        larder_store::Database::Sqlite(pool) => pool.close().await,
        larder_store::Database::Postgres(pool) => pool.close().await,
    }
    let (status, body) = larder_tests::read(reqwest::get(app.url("/readyz")).await.unwrap()).await;
    assert_eq!(
        (status, body["status"].as_str(), body["database"].as_bool()),
        (503, Some("not_ready"), Some(false)),
        "{body}"
    );
    let status = reqwest::get(app.url("/healthz")).await.unwrap().status();
    assert_eq!(status, 200, "liveness does not depend on the database");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_and_commands_answer_503_when_the_database_is_gone() {
    let app = larder_tests::server::Server::start(|_| {}).await;
    let client = reqwest::Client::new();
    let (status, body) = larder_tests::read(
        client
            .post(app.url("/api/v1/dev/token"))
            .json(&json!({ "tenant": "acme" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let token = body["token"].as_str().unwrap().to_owned();
    let (status, body) = larder_tests::read(
        client
            .post(app.url("/api/v1/stores"))
            .bearer_auth(&token)
            .json(&json!({ "name": "Downtown" }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let store = body["id"].as_str().unwrap().to_owned();

    // The database goes away under the running server.
    match &app.state.db {
        larder_store::Database::Sqlite(pool) => pool.close().await,
        larder_store::Database::Postgres(pool) => pool.close().await,
    }
    // A query (read models) and a command (it reads its stream first) both
    // answer 503: a database that is gone is not an internal error.
    let (status, body) = larder_tests::read(
        client
            .get(app.url("/api/v1/stores"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("unavailable")),
        "query: {body}"
    );
    let (status, body) = larder_tests::read(
        client
            .post(app.url(&format!("/api/v1/stores/{store}/items")))
            .bearer_auth(&token)
            .json(&json!({ "sku": "A-1", "name": "Apples", "unit": "each", "quantity": 1, "threshold": 0 }))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("unavailable")),
        "command: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_realtime_connections_get_503_while_the_server_shuts_down() {
    let app = larder_tests::server::Server::start(|_| {}).await;
    let token = {
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/dev/token"))
            .json(&json!({ "tenant": "acme" }))
            .send()
            .await
            .unwrap();
        response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    // The first step of a graceful shutdown: the hub tells clients to
    // reconnect elsewhere while the listener still accepts (the window in
    // which a new connection must not be taken on).
    let hub = app.state.hub.clone();
    tokio::spawn(async move { hub.shutdown(std::time::Duration::from_secs(1)).await });
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !app.state.hub.is_shutting_down() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hub never began shutting down"
        );
        tokio::task::yield_now().await;
    }

    let url = format!(
        "{}/ws?access_token={token}",
        app.address.replacen("http", "ws", 1)
    );
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 503);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}"))
                .unwrap_or(Value::Null);
            assert_eq!(body["code"], "shutting_down", "{body}");
        }
        other => panic!("a WebSocket upgrade during shutdown: {other:?}"),
    }
    let (status, body) = larder_tests::read(
        reqwest::Client::new()
            .get(app.url("/api/v1/events/stream?topics=tenant"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (503, Some("unavailable")),
        "SSE: {body}"
    );
    // A long-poll is one request, not a connection: it is answered as usual.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_websockets_from_one_address_get_429() {
    let app = larder_tests::server::Server::start(|s| s.ws_max_connections_per_ip = 2).await;
    let url = format!("{}/ws", app.address.replacen("http", "ws", 1));
    let first = tokio_tungstenite::connect_async(&url).await.unwrap();
    let second = tokio_tungstenite::connect_async(&url).await.unwrap();
    match tokio_tungstenite::connect_async(&url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            let body: Value = serde_json::from_slice(response.body().as_deref().unwrap_or(b"{}"))
                .unwrap_or(Value::Null);
            assert_eq!(body["code"], "too_many_connections", "{body}");
        }
        other => panic!("a third connection from one address: {other:?}"),
    }
    // A place frees up when a connection closes.
    drop(first);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match tokio_tungstenite::connect_async(&url).await {
            Ok(_) => break,
            Err(_) => {
                assert!(tokio::time::Instant::now() < deadline, "no place freed");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
    drop(second);
}
