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
        ("GET", "/api/v1/items/{item_id}"),
        ("GET", "/api/v1/items/{item_id}/events"),
        ("POST", "/api/v1/items/{item_id}/adjust"),
        ("POST", "/api/v1/items/{item_id}/threshold"),
        ("POST", "/api/v1/items/{item_id}/rename"),
        ("POST", "/api/v1/items/{item_id}/remove"),
        ("POST", "/api/v1/transfers"),
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
        let url = app.url(
            &path
                .replace("{store_id}", &id.to_string())
                .replace("{item_id}", &id.to_string()),
        );
        let request = if method == "GET" {
            app.client.get(url)
        } else {
            app.client.post(url).json(&json!({}))
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
