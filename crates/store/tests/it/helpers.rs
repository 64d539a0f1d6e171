//! Fresh stores for each test: a new SQLite file, or a new PostgreSQL schema.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use larder_bus::{EventBus, InMemoryEventBus};
use larder_store::{
    Database, EventStore, Metadata, NewEvent, RecordedEvent, SqlEventStore, StoreOptions,
};
use uuid::Uuid;

/// The PostgreSQL server the suite runs against. The test script makes sure
/// it is up; if it is not, the PostgreSQL tests fail (they never skip).
pub fn postgres_url() -> String {
    std::env::var("LARDER_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A store under test, with its bus and where it lives (to reopen it).
pub struct TestStore {
    pub store: SqlEventStore,
    pub bus: Arc<InMemoryEventBus<RecordedEvent>>,
    pub url: String,
    pub schema: Option<String>,
    _file: Option<TempFile>,
}

impl TestStore {
    pub async fn new(backend: Backend) -> Self {
        Self::with_bus_capacity(backend, 65_536).await
    }

    pub async fn with_bus_capacity(backend: Backend, capacity: usize) -> Self {
        let bus = Arc::new(InMemoryEventBus::new(capacity));
        let (url, schema, file) = match backend {
            Backend::Sqlite => {
                let file = TempFile::new();
                (format!("sqlite://{}", file.0.display()), None, Some(file))
            }
            Backend::Postgres => {
                let schema = format!("larder_test_{}", Uuid::new_v4().simple());
                (postgres_url(), Some(schema), None)
            }
        };
        Self {
            store: open(&url, schema.as_deref(), Some(bus.clone())).await,
            bus,
            url,
            schema,
            _file: file,
        }
    }

    /// Another store on the same database (as after a restart, or another node).
    pub async fn reopen(&self, bus: Option<Arc<dyn EventBus<RecordedEvent>>>) -> SqlEventStore {
        open(&self.url, self.schema.as_deref(), bus).await
    }

    /// Another store on the same database, opened with `options` (a pool
    /// of 4; the test's schema on PostgreSQL; no bus).
    pub async fn reopen_with(&self, options: StoreOptions) -> SqlEventStore {
        let mut options = options.max_connections(4);
        if let Some(schema) = &self.schema {
            options = options.pg_schema(schema);
        }
        SqlEventStore::connect(&self.url, options)
            .await
            .unwrap_or_else(|e| panic!("cannot reopen the event store at {}: {e:?}", self.url))
    }

    pub fn shared(&self) -> Arc<dyn EventStore> {
        Arc::new(self.store.clone())
    }

    pub fn database(&self) -> Database {
        self.store.database()
    }
}

async fn open(
    url: &str,
    schema: Option<&str>,
    bus: Option<Arc<dyn EventBus<RecordedEvent>>>,
) -> SqlEventStore {
    let mut options = StoreOptions::default().max_connections(4);
    if let Some(schema) = schema {
        options = options.pg_schema(schema);
    }
    if let Some(bus) = bus {
        options = options.bus(bus);
    }
    tokio::time::timeout(Duration::from_secs(30), SqlEventStore::connect(url, options))
        .await
        .unwrap_or_else(|_| panic!("connecting to {url} timed out"))
        .unwrap_or_else(|e| panic!("cannot open the event store at {url}: {e:?} (is PostgreSQL running? scripts/test.sh starts it)"))
}

/// A SQLite file removed (with its WAL) when the test ends.
pub struct TempFile(pub PathBuf);

impl TempFile {
    pub fn new_public() -> Self {
        Self::new()
    }

    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("larder-test-{}.db", Uuid::new_v4())))
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some(schema) = &self.schema {
            larder_store::test_support::drop_pg_schema(&self.url, schema);
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        for suffix in ["", "-wal", "-shm"] {
            let mut path = self.0.clone().into_os_string();
            path.push(suffix);
            let _ = std::fs::remove_file(path);
        }
    }
}

pub fn metadata(tenant: &str, store: &str, entity: &str) -> Metadata {
    Metadata {
        tenant: tenant.into(),
        store: Some(store.into()),
        entity_type: "item".into(),
        entity_id: entity.into(),
        actor: Some("tester".into()),
        correlation_id: Some(Uuid::new_v4()),
        causation_id: None,
        session: Some("tab-session-1".into()),
    }
}

pub fn event(n: u64) -> NewEvent {
    NewEvent::new(
        "Happened",
        1,
        serde_json::json!({ "n": n, "note": "about two hundred bytes of payload, like a real inventory event" }),
        metadata("acme", "s1", "e1"),
    )
}

pub fn events(count: u64) -> Vec<NewEvent> {
    (0..count).map(event).collect()
}

/// Waits for `condition` to hold, checking every few milliseconds, for at most 10 s.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
