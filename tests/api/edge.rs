//! Browser-facing protections: security headers, CORS, the `/ws` origin
//! check, loopback-only demo tokens, `/metrics` on the admin listener only.

use std::collections::BTreeSet;

use futures_util::{SinkExt, StreamExt};
use larder_tests::server::Server;
use larder_tests::{Backend, TestApp};
use serde_json::json;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_and_the_api_carry_security_headers() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let token = app.token("acme", "alice", "viewer").await;
    let pages = [
        app.client.get(app.url("/")),
        app.client.get(app.url("/app.js")),
        app.client
            .get(app.url("/api/v1/stores"))
            .bearer_auth(&token),
        app.client.get(app.url("/api/v1/stores")),
        app.client.get(app.url("/no/such/route")),
        app.client.get(app.url("/healthz")),
    ];
    for request in pages {
        let response = request.send().await.unwrap();
        let url = response.url().to_string();
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'self'"), "{url}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{url}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{url}: {csp}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(headers["x-frame-options"], "DENY", "{url}");
        assert_eq!(headers["referrer-policy"], "no-referrer", "{url}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_app_and_its_modules_are_served() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    // A module missing here is a blank page in the browser: follow every
    // relative import from app.js and check that each module is served.
    let mut to_fetch = vec!["/app.js".to_owned()];
    let mut served = BTreeSet::new();
    while let Some(path) = to_fetch.pop() {
        if !served.insert(path.clone()) {
            continue;
        }
        let response = app.client.get(app.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(
            response.headers()["content-type"],
            "text/javascript; charset=utf-8",
            "{path}"
        );
        let body = response.text().await.unwrap();
        assert!(body.contains("export") || body.contains("import"), "{path}");
        to_fetch.extend(relative_imports(&body));
    }
    // Every module of the web app and the client, so that an import the scan
    // misses cannot go unnoticed.
    let expected: BTreeSet<String> = [
        "/app.js",
        "/app-activity.js",
        "/app-bell.js",
        "/app-board.js",
        "/app-connection.js",
        "/app-dashboard.js",
        "/app-dashboard-model.js",
        "/app-detail.js",
        "/app-dom.js",
        "/app-kitchen.js",
        "/app-orders-api.js",
        "/app-orders-model.js",
        "/app-queue.js",
        "/app-state.js",
        "/app-store.js",
        "/app-stores.js",
        "/app-till.js",
        "/larder-client.js",
        "/larder-commands.js",
        "/larder-protocol.js",
        "/larder-sse.js",
        "/larder-websocket.js",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    assert_eq!(served, expected);
}

/// The served paths of the modules a module imports (`from './name.js'`).
fn relative_imports(source: &str) -> Vec<String> {
    source
        .split("from './")
        .skip(1)
        .filter_map(|rest| rest.split_once('\''))
        .map(|(name, _)| format!("/{name}"))
        .collect()
}

/// A CORS preflight as a browser sends it.
async fn preflight(app: &Server, origin: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, app.url("/api/v1/stores"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,if-match",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_allows_only_the_configured_origins() {
    // Default: no other origin is allowed, and preflights are answered (no 405).
    let closed = Server::start(|_| {}).await;
    let response = preflight(&closed, "https://app.example").await;
    assert!(response.status().is_success(), "{}", response.status());
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin")
    );

    let open = Server::start(|s| {
        s.allowed_origins = vec!["https://app.example".parse().unwrap()];
    })
    .await;
    let response = preflight(&open, "https://app.example").await;
    assert!(response.status().is_success(), "{}", response.status());
    let headers = response.headers();
    assert_eq!(
        headers["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    for header in ["authorization", "content-type", "if-match"] {
        assert!(allowed.contains(header), "{allowed}");
    }

    let response = preflight(&open, "https://evil.example").await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "an origin not listed is not allowed"
    );

    // The actual request: the allowed origin sees the answer and its ETag.
    let response = reqwest::Client::new()
        .get(open.url("/healthz"))
        .header("origin", "https://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "https://app.example"
    );
    let exposed = response.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(exposed.contains("etag"), "{exposed}");
}

/// Opens `/ws` with `origin` (none: as a program does); returns the HTTP
/// status of the upgrade's answer (101 when it succeeded).
async fn ws_status(app: &Server, origin: Option<&str>) -> u16 {
    let url = format!("{}/ws", app.address.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("origin", HeaderValue::from_str(origin).unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok((_, response)) => response.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(error) => panic!("upgrade failed without an HTTP answer: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_upgrades_from_other_origins_are_refused() {
    let app = Server::start(|s| {
        s.allowed_origins = vec!["https://app.example".parse().unwrap()];
    })
    .await;
    let own = app.address.clone();
    assert_eq!(ws_status(&app, None).await, 101, "programs send no Origin");
    assert_eq!(
        ws_status(&app, Some(&own)).await,
        101,
        "the page Larder serves"
    );
    assert_eq!(ws_status(&app, Some("https://app.example")).await, 101);
    assert_eq!(ws_status(&app, Some("https://evil.example")).await, 403);
    assert_eq!(ws_status(&app, Some("http://127.0.0.1:1")).await, 403);
    assert_eq!(ws_status(&app, Some("null")).await, 403);

    // The refusal is a JSON error, as everywhere else.
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let (status, body) = larder_tests::read(
        reqwest::Client::new()
            .get(app.url("/ws"))
            .header("origin", "https://evil.example")
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("origin_not_allowed"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tokens_are_minted_for_loopback_hosts_only() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let mint = |host: Option<&'static str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/dev/token"))
            .json(&json!({ "tenant": "acme", "role": "admin" }));
        if let Some(host) = host {
            request = request.header("host", host);
        }
        async move { larder_tests::read(request.send().await.unwrap()).await }
    };
    assert_eq!(mint(None).await.0, 201, "127.0.0.1:PORT");
    assert_eq!(mint(Some("localhost:8080")).await.0, 201);
    assert_eq!(mint(Some("[::1]:8080")).await.0, 201);
    for host in [
        "evil.example",
        "evil.example:8080",
        "localhost.evil.example",
        "192.168.1.20:8080",
    ] {
        let (status, body) = mint(Some(host)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (403, Some("demo_loopback_only")),
            "{host}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_admin_listener_only() {
    let without = Server::start(|_| {}).await;
    assert!(without.admin.is_none());
    let status = reqwest::get(without.url("/metrics"))
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404, "never on the API port");

    let app = Server::start(|s| {
        s.admin_bind = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let admin = app.admin.clone().expect("an admin listener");
    // Something to count: one WebSocket connection.
    let token = {
        let response = reqwest::Client::new()
            .post(app.url("/api/v1/dev/token"))
            .json(&json!({ "tenant": "acme" }))
            .send()
            .await
            .unwrap();
        response.json::<serde_json::Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let url = format!("{}/ws", app.address.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            json!({ "type": "auth", "id": "1", "token": token }).to_string(),
        ))
        .await
        .unwrap();
    let _welcome = socket.next().await;

    let status = reqwest::get(app.url("/metrics")).await.unwrap().status();
    assert_eq!(status, 404, "not on the API port");
    let response = reqwest::get(format!("{admin}/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("larder_ws_connections"), "{text}");
    for path in ["/healthz", "/readyz"] {
        let status = reqwest::get(format!("{admin}{path}"))
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path} on the admin port");
    }
}
