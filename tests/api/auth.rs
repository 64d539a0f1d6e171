//! Authentication and authorisation.

use larder_server::Role;
use larder_tests::ws::FRAME_TIMEOUT;
use larder_tests::{Backend, SECRET, TestApp, claims, sign};
use serde_json::{Value, json};

crate::for_each_backend!(auth:
    missing_expired_forged_and_unsigned_tokens_are_unauthorized,
    a_viewer_cannot_write_and_staff_only_adjusts,
    another_tenants_store_is_not_found,
    a_token_limited_to_some_stores_sees_only_those,
    the_demo_token_endpoint_does_not_exist_with_a_configured_key,
);

pub async fn missing_expired_forged_and_unsigned_tokens_are_unauthorized(backend: Backend) {
    let app = TestApp::spawn_with_secret(backend).await;
    let good = sign(&claims("acme", Role::Admin), SECRET);
    let (status, _) = app.get(&good, "/api/v1/stores").await;
    assert_eq!(status, 200, "a well-signed token works");

    let response = app
        .client
        .get(app.url("/api/v1/stores"))
        .send()
        .await
        .unwrap();
    let (status, body) = larder_tests::read(response).await;
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    let mut expired = claims("acme", Role::Admin);
    expired.exp = (chrono::Utc::now().timestamp() - 600) as u64;
    let (status, body) = app.get(&sign(&expired, SECRET), "/api/v1/stores").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("token_expired"))
    );

    let forged = sign(
        &claims("acme", Role::Admin),
        "some-other-secret-that-is-long-enough-too",
    );
    let (status, body) = app.get(&forged, "/api/v1/stores").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    // `alg: none`: the claims, no signature.
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(
        serde_json::to_string(&claims("acme", Role::Admin))
            .unwrap()
            .as_bytes(),
    );
    let (status, body) = app
        .get(&format!("{header}.{payload}."), "/api/v1/stores")
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("invalid_token"))
    );

    let (status, _) = app.get("garbage", "/api/v1/stores").await;
    assert_eq!(status, 401);
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

pub async fn a_viewer_cannot_write_and_staff_only_adjusts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.token("acme", "boss", "admin").await;
    let viewer = app.token("acme", "vic", "viewer").await;
    let staff = app.token("acme", "sam", "staff").await;
    let store = app.create_store(&admin, "Main").await;
    let item = app.add_item(&admin, &store, "MILK", 5, 1).await;
    let head = app.head_outside_inboxes().await;

    let (status, body) = app
        .post(
            &viewer,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -1, "reason": "sold" }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    let (status, _) = app
        .post(&viewer, "/api/v1/stores", json!({ "name": "Mine" }))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get(
            &viewer,
            &format!("/api/v1/items/{item}?min_position={head}"),
        )
        .await;
    assert_eq!(status, 200, "viewers read");
    assert_eq!(
        larder_store::EventStore::head(app.store.as_ref())
            .await
            .unwrap(),
        head
    );

    let (status, _) = app
        .post(
            &staff,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -1, "reason": "sold" }),
        )
        .await;
    assert_eq!(status, 200, "staff adjust stock");
    let (status, _) = app
        .post(
            &staff,
            &format!("/api/v1/stores/{store}/items"),
            json!({ "sku": "X", "name": "X" }),
        )
        .await;
    assert_eq!(status, 403, "staff do not add items");
}

pub async fn another_tenants_store_is_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = app.token("acme", "alice", "admin").await;
    let globex = app.token("globex", "gus", "admin").await;
    let store = app.create_store(&acme, "Acme Main").await;
    let item = app.add_item(&acme, &store, "SECRET-SAUCE", 5, 1).await;
    let head = app.head_outside_inboxes().await;

    for path in [
        format!("/api/v1/stores/{store}?min_position={head}"),
        format!("/api/v1/stores/{store}/items"),
        format!("/api/v1/stores/{store}/activity"),
        format!("/api/v1/items/{item}"),
        format!("/api/v1/items/{item}/events"),
    ] {
        let (status, body) = app.get(&globex, &path).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (404, Some("not_found")),
            "{path}"
        );
    }
    let (status, _) = app
        .post(
            &globex,
            &format!("/api/v1/items/{item}/adjust"),
            json!({ "delta": -5, "reason": "sold" }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            &globex,
            &format!("/api/v1/stores/{store}/rename"),
            json!({ "name": "Mine" }),
        )
        .await;
    assert_eq!(status, 404);
    let (_, stores) = app.get(&globex, "/api/v1/stores").await;
    assert!(stores["stores"].as_array().unwrap().is_empty());
    assert_eq!(app.head_outside_inboxes().await, head);
}

pub async fn a_token_limited_to_some_stores_sees_only_those(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.token("acme", "boss", "admin").await;
    let mine = app.create_store(&admin, "Mine").await;
    let other = app.create_store(&admin, "Other").await;
    let item = app.add_item(&admin, &other, "X", 1, 0).await;
    let clerk = app
        .token_for(json!({ "tenant": "acme", "sub": "clerk", "role": "manager", "stores": [mine] }))
        .await;
    let head = app.head_outside_inboxes().await;

    let (_, stores) = app
        .get(&clerk, &format!("/api/v1/stores?min_position={head}"))
        .await;
    let ids: Vec<&str> = stores["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["store_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![mine.as_str()]);
    assert_eq!(
        app.get(&clerk, &format!("/api/v1/stores/{other}")).await.0,
        404
    );
    assert_eq!(
        app.get(&clerk, &format!("/api/v1/items/{item}")).await.0,
        404
    );
    let (status, _) = app
        .post(
            &clerk,
            &format!("/api/v1/stores/{other}/items"),
            json!({ "sku": "Y", "name": "Y" }),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .post(
            &clerk,
            &format!("/api/v1/stores/{mine}/items"),
            json!({ "sku": "Y", "name": "Y" }),
        )
        .await;
    assert_eq!(status, 201);
}

pub async fn the_demo_token_endpoint_does_not_exist_with_a_configured_key(backend: Backend) {
    let app = TestApp::spawn_with_secret(backend).await;
    let response = app
        .client
        .post(app.url("/api/v1/dev/token"))
        .json(&json!({ "tenant": "acme" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

// ---- claim checks on every transport ------------------------------------------

const ISSUER: &str = "https://idp.example";
const AUDIENCE: &str = "larder";

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Valid claims for a server that requires [`ISSUER`] and [`AUDIENCE`].
fn full_claims() -> Value {
    json!({
        "sub": "tester", "tenant": "acme", "stores": "*", "roles": ["admin"],
        "exp": now() + 3600, "iss": ISSUER, "aud": AUDIENCE,
    })
}

/// `full_claims` with `edit` applied: `null` removes a claim.
fn claims_with(edit: Value) -> Value {
    let mut claims = full_claims();
    for (key, value) in edit.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(key);
        } else {
            claims[key] = value.clone();
        }
    }
    claims
}

/// Whether each transport accepts `token`, as (REST, WS auth message, WS
/// `?access_token=`, SSE `?access_token=`, long-poll `?access_token=`).
/// Anything but a clear accept or a clear refusal fails the test.
async fn accepted_everywhere(app: &TestApp, token: &str) -> [bool; 5] {
    [
        rest_accepts(app, token).await,
        ws_message_accepts(app, token).await,
        ws_query_accepts(app, token).await,
        query_accepts(app, "/api/v1/events/stream?topics=tenant", token).await,
        query_accepts(app, "/api/v1/events?topics=tenant&since=0&wait_ms=0", token).await,
    ]
}

async fn rest_accepts(app: &TestApp, token: &str) -> bool {
    let (status, body) = app.get(token, "/api/v1/stores").await;
    refused_clearly(status, &body, "REST")
}

/// 200: accepted; 401 with a token error code: refused.
fn refused_clearly(status: u16, body: &Value, transport: &str) -> bool {
    match status {
        200 => true,
        401 => {
            assert!(
                matches!(
                    body["code"].as_str(),
                    Some("invalid_token" | "token_expired")
                ),
                "{transport}: {body}"
            );
            false
        }
        other => panic!("{transport}: unexpected {other} {body}"),
    }
}

async fn query_accepts(app: &TestApp, path: &str, token: &str) -> bool {
    let response = app
        .client
        .get(app.url(path))
        .query(&[("access_token", token)])
        .send()
        .await
        .unwrap();
    if response.status() == 200 {
        // An SSE stream stays open: the status is the answer.
        return true;
    }
    let (status, body) = larder_tests::read(response).await;
    refused_clearly(status, &body, path)
}

async fn ws_message_accepts(app: &TestApp, token: &str) -> bool {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/ws", app.address.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let auth = json!({ "type": "auth", "id": "1", "token": token });
    socket.send(Message::text(auth.to_string())).await.unwrap();
    let mut frames = Vec::new();
    loop {
        let message = tokio::time::timeout(FRAME_TIMEOUT, socket.next())
            .await
            .expect("an answer to auth in time");
        match message {
            Some(Ok(Message::Text(text))) => {
                let frame: Value = serde_json::from_str(&text).unwrap();
                if frame["type"] == "welcome" {
                    return true;
                }
                frames.push(frame);
            }
            Some(Ok(Message::Close(Some(close)))) => {
                assert_eq!(u16::from(close.code), 4002, "WS auth message: {frames:?}");
                return false;
            }
            Some(Ok(_)) => {}
            other => panic!("WS auth message: ended without a close code: {other:?} {frames:?}"),
        }
    }
}

async fn ws_query_accepts(app: &TestApp, token: &str) -> bool {
    let url = format!(
        "{}/ws?access_token={token}",
        app.address.replacen("http", "ws", 1)
    );
    match tokio_tungstenite::connect_async(url).await {
        Ok(_) => true,
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 401, "WS ?access_token=");
            false
        }
        Err(error) => panic!("WS ?access_token=: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_are_checked_strictly_on_every_transport() {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jwt_secret = Some(SECRET.parse().unwrap());
        s.jwt_issuer = Some(ISSUER.into());
        s.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    let cases = [
        ("all claims right", json!({}), true),
        (
            "aud as an array holding ours",
            json!({ "aud": ["other", AUDIENCE] }),
            true,
        ),
        ("nbf in the past", json!({ "nbf": now() - 60 }), true),
        ("no iss", json!({ "iss": null }), false),
        ("no aud", json!({ "aud": null }), false),
        (
            "another iss",
            json!({ "iss": "https://other.example" }),
            false,
        ),
        ("another aud", json!({ "aud": "other" }), false),
        (
            "aud array without ours",
            json!({ "aud": ["other", "more"] }),
            false,
        ),
        ("nbf an hour ahead", json!({ "nbf": now() + 3600 }), false),
        ("no sub", json!({ "sub": null }), false),
        ("empty sub", json!({ "sub": "" }), false),
        ("blank sub", json!({ "sub": "   " }), false),
        ("tenant in capitals", json!({ "tenant": "ACME" }), false),
        ("tenant with spaces", json!({ "tenant": " acme " }), false),
        ("no roles", json!({ "roles": [] }), false),
    ];
    // Every case is tried; the failure lists all that went wrong.
    let mut wrong = Vec::new();
    for (name, edit, expected) in cases {
        let token = hs256(&claims_with(edit));
        let accepted = accepted_everywhere(&app, &token).await;
        if accepted != [expected; 5] {
            wrong.push(format!(
                "{name}: expected {expected} on all, got (REST, WS message, WS query, SSE, long-poll) = {accepted:?}"
            ));
        }
    }
    assert!(wrong.is_empty(), "\n{}", wrong.join("\n"));
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_token_is_taken_by_the_realtime_transports_only() {
    let app = TestApp::spawn_with_secret(Backend::Sqlite).await;
    let token = sign(&claims("acme", Role::Admin), SECRET);
    let response = app
        .client
        .get(app.url("/api/v1/stores"))
        .query(&[("access_token", token.as_str())])
        .send()
        .await
        .unwrap();
    let (status, body) = larder_tests::read(response).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (401, Some("unauthorized")),
        "REST wants the Authorization header"
    );
    let [_, _, ws, sse, poll] = accepted_everywhere(&app, &token).await;
    assert!(
        ws && sse && poll,
        "WS, SSE and long-poll take ?access_token="
    );
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// A server that verifies tokens with a public key and requires issuer and
/// audience; tokens signed with the matching private key work on every
/// transport, others are refused.
async fn public_key_tokens_work_end_to_end(
    algorithm: jsonwebtoken::Algorithm,
    setting: larder_server::config::KeyAlgorithm,
    public: &str,
    private: &str,
) {
    let app = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.jwt_public_key = Some(fixture(public));
        s.jwt_algorithm = setting;
        s.jwt_issuer = Some(ISSUER.into());
        s.jwt_audience = Some(AUDIENCE.into());
    })
    .await;
    let pem = std::fs::read(fixture(private)).unwrap();
    let key = match algorithm {
        jsonwebtoken::Algorithm::RS256 => jsonwebtoken::EncodingKey::from_rsa_pem(&pem),
        _ => jsonwebtoken::EncodingKey::from_ed_pem(&pem),
    }
    .unwrap();
    let signed = |claims: &Value| {
        jsonwebtoken::encode(&jsonwebtoken::Header::new(algorithm), claims, &key).unwrap()
    };
    let good = signed(&full_claims());
    assert_eq!(
        accepted_everywhere(&app, &good).await,
        [true; 5],
        "{algorithm:?}"
    );
    let array = signed(&claims_with(json!({ "aud": [AUDIENCE, "other"] })));
    assert_eq!(accepted_everywhere(&app, &array).await, [true; 5]);
    for edit in [
        json!({ "iss": null }),
        json!({ "aud": null }),
        json!({ "aud": "other" }),
        json!({ "nbf": now() + 3600 }),
    ] {
        let token = signed(&claims_with(edit.clone()));
        assert_eq!(
            accepted_everywhere(&app, &token).await,
            [false; 5],
            "{algorithm:?} {edit}"
        );
    }
    // The public key used as an HS256 secret (algorithm confusion).
    let public_pem = std::fs::read(fixture(public)).unwrap();
    let confused = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &full_claims(),
        &jsonwebtoken::EncodingKey::from_secret(&public_pem),
    )
    .unwrap();
    assert_eq!(accepted_everywhere(&app, &confused).await, [false; 5]);
    // Data flows: an admin with an RS256/EdDSA token creates a store.
    app.create_store(&good, "Main").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_tokens_with_issuer_and_audience_work_end_to_end() {
    public_key_tokens_work_end_to_end(
        jsonwebtoken::Algorithm::RS256,
        larder_server::config::KeyAlgorithm::Rs256,
        "rs256-public.pem",
        "rs256-private.pem",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eddsa_tokens_with_issuer_and_audience_work_end_to_end() {
    public_key_tokens_work_end_to_end(
        jsonwebtoken::Algorithm::EdDSA,
        larder_server::config::KeyAlgorithm::Eddsa,
        "ed25519-public.pem",
        "ed25519-private.pem",
    )
    .await;
}
