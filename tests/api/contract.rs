//! What the API promises beyond single commands: transfers happen once per
//! id, another tenant's ids look like ids that do not exist, and every role
//! may do exactly what docs/api.md says.

use larder_tests::ws::WsClient;
use larder_tests::{Backend, TestApp};
use serde_json::{Value, json};
use uuid::Uuid;

crate::for_each_backend!(contract:
    a_transfer_replayed_with_the_same_id_moves_stock_once,
    racing_copies_of_a_transfer_move_stock_once,
    another_tenants_ids_answer_like_ids_that_do_not_exist,
    every_role_may_do_exactly_its_commands,
    if_match_and_expected_version_must_agree,
);

async fn quantity(app: &TestApp, token: &str, item: &str) -> i64 {
    let head = app.head_outside_inboxes().await;
    let (status, body) = app
        .get(token, &format!("/api/v1/items/{item}?min_position={head}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body["item"]["quantity"].as_i64().unwrap()
}

pub async fn a_transfer_replayed_with_the_same_id_moves_stock_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let north = app.create_store(&token, "North").await;
    let south = app.create_store(&token, "South").await;
    let from = app.add_item(&token, &north, "OIL", 10, 5).await;
    let to = app.add_item(&token, &south, "OIL", 0, 0).await;
    let transfer_id = Uuid::new_v4();
    let request =
        json!({ "from_item": from, "to_item": to, "quantity": 6, "transfer_id": transfer_id });

    let (status, first) = app.post(&token, "/api/v1/transfers", request.clone()).await;
    assert_eq!(status, 201, "{first}");
    assert_eq!(
        first["from"]["events"],
        json!(["StockAdjusted", "LowStock", "TransferCompleted"])
    );
    let head = app.head_outside_inboxes().await;

    // The same request again, after the source changed: the original answer,
    // and nothing moves.
    let (status, _) = app
        .post(
            &token,
            &format!("/api/v1/items/{from}/adjust"),
            json!({ "delta": 1, "reason": "counted" }),
        )
        .await;
    assert_eq!(status, 200);
    let head_after_adjust = app.head_outside_inboxes().await;
    let (status, replay) = app.post(&token, "/api/v1/transfers", request.clone()).await;
    assert_eq!((status, &replay), (201, &first), "the original result");
    assert_eq!(app.head_outside_inboxes().await, head_after_adjust);
    assert!(head_after_adjust > head);
    assert_eq!(quantity(&app, &token, &from).await, 5);
    assert_eq!(quantity(&app, &token, &to).await, 6);

    // The same id for another transfer is refused, and moves nothing.
    let other =
        json!({ "from_item": from, "to_item": to, "quantity": 1, "transfer_id": transfer_id });
    let (status, body) = app.post(&token, "/api/v1/transfers", other).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("transfer_id_reused")),
        "{body}"
    );
    let reversed =
        json!({ "from_item": to, "to_item": from, "quantity": 6, "transfer_id": transfer_id });
    let (status, body) = app.post(&token, "/api/v1/transfers", reversed).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("transfer_id_reused"))
    );
    assert_eq!(app.head_outside_inboxes().await, head_after_adjust);

    // Another tenant's transfer with the same id is its own.
    let globex = app.token("globex", "gina", "admin").await;
    let g_store = app.create_store(&globex, "G").await;
    let g_from = app.add_item(&globex, &g_store, "OIL", 3, 0).await;
    let g_to = app.add_item(&globex, &g_store, "OIL-2", 0, 0).await;
    let (status, body) = app
        .post(
            &globex,
            "/api/v1/transfers",
            json!({ "from_item": g_from, "to_item": g_to, "quantity": 2, "transfer_id": transfer_id }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(quantity(&app, &globex, &g_from).await, 1);
}

pub async fn racing_copies_of_a_transfer_move_stock_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let from = app.add_item(&token, &store, "RICE", 10, 0).await;
    let to = app.add_item(&token, &store, "RICE-B", 0, 0).await;
    let request =
        json!({ "from_item": from, "to_item": to, "quantity": 4, "transfer_id": Uuid::new_v4() });

    let copies: Vec<_> = (0..6)
        .map(|_| {
            let send = app
                .client
                .post(app.url("/api/v1/transfers"))
                .bearer_auth(&token)
                .json(&request)
                .send();
            tokio::spawn(async move { larder_tests::read(send.await.unwrap()).await })
        })
        .collect();
    let mut answers = Vec::new();
    for copy in copies {
        answers.push(copy.await.unwrap());
    }
    for answer in &answers {
        assert_eq!(answer, &answers[0], "every copy gets the same answer");
    }
    assert_eq!(answers[0].0, 201, "{:?}", answers[0]);
    assert_eq!(quantity(&app, &token, &from).await, 6);
    assert_eq!(quantity(&app, &token, &to).await, 4);
}

/// Status, code and message: everything a caller can tell answers apart by.
fn seen((status, body): (u16, Value)) -> (u16, Value, Value) {
    (status, body["code"].clone(), body["message"].clone())
}

pub async fn another_tenants_ids_answer_like_ids_that_do_not_exist(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let acme = app.token("acme", "alice", "admin").await;
    let globex = app.token("globex", "gina", "admin").await;
    let key = Uuid::new_v4();
    let (status, created) = app
        .post(
            &acme,
            "/api/v1/stores",
            json!({ "name": "Acme Main", "store_id": key }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let acme_store = created["id"].as_str().unwrap().to_owned();
    let acme_item = app.add_item(&acme, &acme_store, "FLOUR", 10, 0).await;
    let globex_store = app.create_store(&globex, "Globex").await;
    let globex_item = app.add_item(&globex, &globex_store, "FLOUR", 10, 0).await;

    // Creating with the key (or the id) acme used answers like a fresh key.
    for taken in [key.to_string(), acme_store.clone()] {
        let (status, body) = app
            .post(
                &globex,
                "/api/v1/stores",
                json!({ "name": "Mine", "store_id": taken }),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        assert_ne!(body["id"].as_str(), Some(acme_store.as_str()));
    }
    // The same key again within a tenant is a recognisable retry.
    let (status, body) = app
        .post(
            &acme,
            "/api/v1/stores",
            json!({ "name": "Acme Main", "store_id": key }),
        )
        .await;
    assert_eq!(
        (
            status,
            body["code"].as_str(),
            body["details"]["store_id"].as_str()
        ),
        (409, Some("store_already_exists"), Some(acme_store.as_str()))
    );

    let head = app.head_outside_inboxes().await;
    let probes = |store: String, item: String| {
        vec![
            ("GET", format!("/api/v1/stores/{store}"), Value::Null),
            ("GET", format!("/api/v1/stores/{store}/items"), Value::Null),
            (
                "GET",
                format!("/api/v1/stores/{store}/activity"),
                Value::Null,
            ),
            (
                "POST",
                format!("/api/v1/stores/{store}/rename"),
                json!({ "name": "X" }),
            ),
            (
                "POST",
                format!("/api/v1/stores/{store}/items"),
                json!({ "sku": "NEW", "name": "New" }),
            ),
            ("GET", format!("/api/v1/items/{item}"), Value::Null),
            ("GET", format!("/api/v1/items/{item}/events"), Value::Null),
            (
                "POST",
                format!("/api/v1/items/{item}/adjust"),
                json!({ "delta": -1, "reason": "sold" }),
            ),
            (
                "POST",
                format!("/api/v1/items/{item}/threshold"),
                json!({ "threshold": 1 }),
            ),
            (
                "POST",
                format!("/api/v1/items/{item}/rename"),
                json!({ "name": "X" }),
            ),
            (
                "POST",
                "/api/v1/transfers".to_owned(),
                json!({ "from_item": item, "to_item": globex_item, "quantity": 1 }),
            ),
            (
                "POST",
                "/api/v1/transfers".to_owned(),
                json!({ "from_item": globex_item, "to_item": item, "quantity": 1 }),
            ),
            ("POST", format!("/api/v1/items/{item}/remove"), json!({})),
            ("POST", format!("/api/v1/stores/{store}/close"), json!({})),
        ]
    };
    let theirs = probes(acme_store.clone(), acme_item.clone());
    let missing = probes(Uuid::new_v4().to_string(), Uuid::new_v4().to_string());
    for ((method, path, body), (_, missing_path, _)) in theirs.into_iter().zip(missing) {
        let ask = |path: String| {
            let body = body.clone();
            let globex = globex.clone();
            let app = &app;
            async move {
                match method {
                    "GET" => app.get(&globex, &path).await,
                    _ => app.post(&globex, &path, body).await,
                }
            }
        };
        let answer = seen(ask(path.clone()).await);
        assert_eq!(answer.0, 404, "{method} {path}: {answer:?}");
        assert_eq!(
            answer,
            seen(ask(missing_path).await),
            "{method} {path} tells acme's id from a missing one"
        );
    }
    assert_eq!(app.head_outside_inboxes().await, head, "nothing appended");
    assert_eq!(quantity(&app, &acme, &acme_item).await, 10);

    // Real-time topics naming acme's ids answer like topics naming no one's.
    let missing_store = Uuid::new_v4();
    let (mut client, _) = WsClient::authenticated(&app, &globex).await;
    let theirs = client
        .subscribe(&format!("store:{acme_store}"), Some(0))
        .await;
    let nobodys = client
        .subscribe(&format!("store:{missing_store}"), Some(0))
        .await;
    for field in ["type", "resume", "position"] {
        assert_eq!(theirs[field], nobodys[field], "{theirs} vs {nobodys}");
    }
    for topic in [format!("store:{acme_store}"), format!("item:{acme_item}")] {
        let (status, body) = app
            .get(
                &globex,
                &format!("/api/v1/events?topics={topic}&since=0&wait_ms=0"),
            )
            .await;
        assert_eq!(
            (status, &body["events"]),
            (200, &json!([])),
            "{topic}: {body}"
        );
    }
}

/// The lowest role each command needs (the role table of docs/api.md).
const COMMANDS: [(&str, &str); 9] = [
    ("adjust", "staff"),
    ("threshold", "manager"),
    ("rename item", "manager"),
    ("transfer", "manager"),
    ("add item", "manager"),
    ("rename store", "manager"),
    ("remove item", "manager"),
    ("create store", "admin"),
    ("close store", "admin"),
];
const ROLES: [&str; 4] = ["viewer", "staff", "manager", "admin"];

pub async fn every_role_may_do_exactly_its_commands(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.token("acme", "root", "admin").await;
    for role in ROLES {
        let token = app.token("acme", role, role).await;
        let store = app.create_store(&admin, "Main").await;
        let item = app.add_item(&admin, &store, "A", 10, 0).await;
        let other = app.add_item(&admin, &store, "B", 10, 0).await;
        let rank = |r: &str| ROLES.iter().position(|x| *x == r).unwrap();
        for (command, needs) in COMMANDS {
            let (path, body) = match command {
                "adjust" => (
                    format!("/api/v1/items/{item}/adjust"),
                    json!({ "delta": -1, "reason": "sold" }),
                ),
                "threshold" => (
                    format!("/api/v1/items/{item}/threshold"),
                    json!({ "threshold": 2 }),
                ),
                "rename item" => (
                    format!("/api/v1/items/{item}/rename"),
                    json!({ "name": "Renamed" }),
                ),
                "transfer" => (
                    "/api/v1/transfers".to_owned(),
                    json!({ "from_item": item, "to_item": other, "quantity": 1 }),
                ),
                "add item" => (
                    format!("/api/v1/stores/{store}/items"),
                    json!({ "sku": "C", "name": "C" }),
                ),
                "rename store" => (
                    format!("/api/v1/stores/{store}/rename"),
                    json!({ "name": "Renamed" }),
                ),
                "remove item" => (format!("/api/v1/items/{other}/remove"), json!({})),
                "create store" => ("/api/v1/stores".to_owned(), json!({ "name": "New" })),
                "close store" => (format!("/api/v1/stores/{store}/close"), json!({})),
                _ => unreachable!(),
            };
            let head = app.head_outside_inboxes().await;
            let (status, answer) = app.post(&token, &path, body).await;
            if rank(role) >= rank(needs) {
                assert!(
                    status == 200 || status == 201,
                    "{role} may {command}: {status} {answer}"
                );
                assert!(app.head_outside_inboxes().await > head, "{role}: {command}");
            } else {
                assert_eq!(
                    (status, answer["code"].as_str()),
                    (403, Some("forbidden")),
                    "{role} may not {command}: {answer}"
                );
                assert_eq!(app.head_outside_inboxes().await, head, "{role}: {command}");
            }
        }
        // Every role reads.
        let head = app.head_outside_inboxes().await;
        for path in [
            "/api/v1/stores?".to_owned(),
            format!("/api/v1/stores/{store}?"),
            format!("/api/v1/stores/{store}/items?"),
            format!("/api/v1/stores/{store}/activity?"),
            format!("/api/v1/items/{item}?"),
        ] {
            let path = format!("{path}min_position={head}");
            let (status, body) = app.get(&token, &path).await;
            assert_eq!(status, 200, "{role} reads {path}: {body}");
        }
        // The history reads the event store itself: no waiting needed.
        let (status, body) = app
            .get(&token, &format!("/api/v1/items/{item}/events"))
            .await;
        assert_eq!(status, 200, "{role} reads the history: {body}");
    }
}

/// The one rule of a request the OpenAPI document cannot state (it relates a
/// header to a body field), so Schemathesis leaves it to this test.
pub async fn if_match_and_expected_version_must_agree(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let token = app.token("acme", "alice", "admin").await;
    let store = app.create_store(&token, "Main").await;
    let item = app.add_item(&token, &store, "SALT", 5, 0).await;
    let head = app.head_outside_inboxes().await;
    let path = format!("/api/v1/items/{item}/adjust");
    let (status, body) = app
        .post_if_match(
            &token,
            &path,
            1,
            json!({ "delta": 1, "reason": "received", "expected_version": 2 }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_parameter")),
        "{body}"
    );
    assert_eq!(app.head_outside_inboxes().await, head, "nothing appended");
    let (status, body) = app
        .post_if_match(
            &token,
            &path,
            1,
            json!({ "delta": 1, "reason": "received", "expected_version": 1 }),
        )
        .await;
    assert_eq!((status, body["version"].as_u64()), (200, Some(2)), "{body}");
}

/// Each test drops the PostgreSQL schema it made, so two runs of the suite
/// on one database never touch each other's schemas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_test_server_drops_its_postgres_schema_when_it_ends() {
    use sqlx::Connection;
    let app = TestApp::spawn(Backend::Postgres).await;
    let token = app.token("acme", "alice", "admin").await;
    app.create_store(&token, "Main").await;
    let schema = app.settings.pg_schema.clone().expect("a schema of its own");
    let mut connection = sqlx::PgConnection::connect(&larder_tests::postgres_url())
        .await
        .unwrap();
    let exists = "SELECT count(*) FROM pg_namespace WHERE nspname = $1";
    let query = || sqlx::query_scalar::<_, i64>(exists).bind(schema.clone());
    assert_eq!(query().fetch_one(&mut connection).await.unwrap(), 1);
    drop(app);
    assert_eq!(
        query().fetch_one(&mut connection).await.unwrap(),
        0,
        "{schema} dropped"
    );
}
