//! Helpers for Larder's end-to-end tests: [`TestApp::spawn`] starts the real
//! server on port 0 with a fresh database (a new SQLite file or a new
//! PostgreSQL schema) and gives a client to talk to it.

pub mod client;
pub mod ws;

use std::time::Duration;

use larder_server::{Application, Claims, Role, Settings, StoreAccess};
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use (scripts/test.sh makes sure it is up).
pub fn postgres_url() -> String {
    std::env::var("LARDER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A secret for servers started with a configured key.
pub const SECRET: &str = "larder-test-secret-that-is-long-enough-for-hs256";

/// A running server.
#[allow(missing_debug_implementations)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub store: std::sync::Arc<dyn larder_store::EventStore>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    pub settings: Settings,
    /// Requests the server is handling right now.
    pub in_flight: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Real-time connections this server is serving right now (its own
    /// count: the `larder_ws_connections` gauge is shared by every server in
    /// the process, so tests running side by side would disturb it).
    pub ws_connections: std::sync::Arc<dyn Fn() -> usize + Send + Sync>,
    file: Option<std::path::PathBuf>,
    /// The PostgreSQL schema this app made, dropped with it.
    schema: Option<String>,
}

impl TestApp {
    /// The position of the last event outside the users' inboxes. The
    /// notifier appends to inboxes on its own time, after the events that
    /// cause notifications: a test that checks a refused command appended
    /// nothing compares this, not the log's head.
    pub async fn head_outside_inboxes(&self) -> u64 {
        let filter = larder_store::EventFilter::default();
        let (mut after, mut last) = (0, 0);
        loop {
            let page = self
                .store
                .read_all(after, 1_000, &filter)
                .await
                .expect("the test store reads");
            for event in &page.events {
                if event.metadata.entity_type != "inbox" {
                    last = event.position;
                }
            }
            match page.events.last() {
                Some(event) if !page.reached_head => after = event.position,
                _ => return last,
            }
        }
    }

    /// A server in demo mode (it mints tokens at /api/v1/dev/token).
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A server with a configured HS256 secret ([`SECRET`]).
    pub async fn spawn_with_secret(backend: Backend) -> Self {
        Self::spawn_with(backend, |s| {
            s.jwt_secret = Some(SECRET.parse().expect("valid secret"))
        })
        .await
    }

    /// A server with settings adjusted by `configure`.
    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Settings)) -> Self {
        let (mut settings, file) = match backend {
            Backend::Sqlite => {
                let file = std::env::temp_dir().join(format!("larder-e2e-{}.db", Uuid::new_v4()));
                (
                    Settings::for_database(format!("sqlite://{}", file.display())),
                    Some(file),
                )
            }
            Backend::Postgres => {
                let mut settings = Settings::for_database(postgres_url());
                settings.pg_schema = Some(format!("larder_test_{}", Uuid::new_v4().simple()));
                (settings, None)
            }
        };
        settings.log = "warn".into();
        configure(&mut settings);
        let schema = settings.pg_schema.clone();
        let mut app = Self::start(settings, file).await;
        app.schema = schema;
        app
    }

    /// Starts a server on `settings` (e.g. the same database again, as after a restart).
    pub async fn start(settings: Settings, file: Option<std::path::PathBuf>) -> Self {
        let app = Application::build(settings.clone())
            .await
            .unwrap_or_else(|e| {
                panic!("server failed to start on {}: {e:?}", settings.database_url)
            });
        let address = format!("http://127.0.0.1:{}", app.port());
        let store = app.state().store.clone();
        let in_flight = app.state().in_flight.clone();
        let hub = app.state().hub.clone();
        let ws_connections = std::sync::Arc::new(move || hub.connection_count());
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = signal.await;
        }));
        Self {
            address,
            client: reqwest::Client::new(),
            store,
            shutdown: Some(shutdown),
            server: Some(server),
            settings,
            in_flight,
            ws_connections,
            file,
            schema: None,
        }
    }

    /// Triggers a graceful shutdown and waits for the server to stop.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        match self.server.take() {
            Some(server) => tokio::time::timeout(Duration::from_secs(30), server).await??,
            None => Ok(()),
        }
    }

    /// Triggers a graceful shutdown without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Waits for a server whose shutdown began to stop.
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        self.stop().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A demo token for `tenant` with `role` on every store.
    pub async fn token(&self, tenant: &str, user: &str, role: &str) -> String {
        self.token_for(json!({ "tenant": tenant, "sub": user, "role": role }))
            .await
    }

    pub async fn token_for(&self, request: Value) -> String {
        let response = self
            .client
            .post(self.url("/api/v1/dev/token"))
            .json(&request)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "minting a demo token");
        response.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn get(&self, token: &str, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    pub async fn post(&self, token: &str, path: &str, body: Value) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    pub async fn post_if_match(
        &self,
        token: &str,
        path: &str,
        version: u64,
        body: Value,
    ) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header("if-match", format!("\"{version}\""))
            .json(&body)
            .send()
            .await
            .unwrap();
        read(response).await
    }

    /// Creates a store; returns its id.
    pub async fn create_store(&self, token: &str, name: &str) -> String {
        let (status, body) = self
            .post(token, "/api/v1/stores", json!({ "name": name }))
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    /// Adds an item; returns its id.
    pub async fn add_item(
        &self,
        token: &str,
        store: &str,
        sku: &str,
        quantity: i64,
        threshold: i64,
    ) -> String {
        let body = json!({ "sku": sku, "name": format!("Item {sku}"), "unit": "each", "quantity": quantity, "threshold": threshold });
        let (status, body) = self
            .post(token, &format!("/api/v1/stores/{store}/items"), body)
            .await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
        if let Some(schema) = &self.schema {
            larder_store::test_support::drop_pg_schema(&self.settings.database_url, schema);
        }
    }
}

/// Status and JSON body (Null when the body is not JSON).
pub async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs claims with `key` (HS256), for tokens the test controls entirely.
pub fn sign(claims: &Claims, secret: &str) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

/// Claims for `tenant`, valid for an hour.
pub fn claims(tenant: &str, role: Role) -> Claims {
    Claims {
        sub: "tester".into(),
        tenant: tenant.into(),
        stores: StoreAccess::ALL,
        roles: vec![role],
        exp: (chrono::Utc::now().timestamp() + 3600) as u64,
        iat: None,
        sid: None,
        iss: None,
        aud: None,
    }
}

pub mod server;
