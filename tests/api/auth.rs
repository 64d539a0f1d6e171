//! Authentication and authorisation.

use larder_server::Role;
use larder_tests::{Backend, SECRET, TestApp, claims, sign};
use serde_json::json;

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
    let head = app.store.head().await.unwrap();

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
    let head = app.store.head().await.unwrap();

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
    assert_eq!(app.store.head().await.unwrap(), head);
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
    let head = app.store.head().await.unwrap();

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
