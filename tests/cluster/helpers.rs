//! A cluster on loopback: a `nats-server` of its own, and `larder` server
//! processes on one fresh PostgreSQL schema, each on a free port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use larder_store::{EventFilter, EventStore, SqlEventStore, StoreOptions};
use larder_tests::{SECRET, claims, postgres_url, sign};
use serde_json::{Value, json};
use uuid::Uuid;

/// How long a process may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// The `larder` binary: `LARDER_BIN`, or beside this test binary's folder
/// (cargo puts `target/<profile>/larder` one level above `deps/`).
fn larder_binary() -> PathBuf {
    if let Ok(path) = std::env::var("LARDER_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let binary = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("larder"))
        .expect("a target folder");
    assert!(
        binary.exists(),
        "{} is missing: build it first (cargo build -p larder-server), or set LARDER_BIN",
        binary.display()
    );
    binary
}

/// A `nats-server` on a free port, stopped when dropped.
pub struct Nats {
    pub url: String,
    child: Child,
}

impl Nats {
    pub fn start() -> Self {
        let port = free_port();
        let binary = std::env::var("LARDER_NATS_SERVER").unwrap_or_else(|_| {
            if std::path::Path::new("/usr/sbin/nats-server").exists() {
                "/usr/sbin/nats-server".into()
            } else {
                "nats-server".into()
            }
        });
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary} (install nats-server): {e}"));
        let deadline = Instant::now() + START_TIMEOUT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(10));
        }
        Self {
            url: format!("nats://127.0.0.1:{port}"),
            child,
        }
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `larder` process.
pub struct Node {
    pub address: String,
    child: Child,
}

impl Node {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (`kill -9`): no graceful shutdown.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Nodes on one PostgreSQL schema and one NATS server.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub schema: String,
    pub http: reqwest::Client,
    pub token: String,
    // Dropped after the nodes (fields drop in order).
    _nats: Nats,
}

impl Cluster {
    /// Starts `n` nodes with a configured HS256 secret; the first one
    /// migrates the schema before the others start.
    pub async fn start(n: usize) -> Self {
        let nats = Nats::start();
        let schema = format!("larder_cluster_{}", Uuid::new_v4().simple());
        let http = reqwest::Client::new();
        let mut nodes = vec![spawn_node(&nats.url, &schema, &http).await];
        let rest =
            futures_util::future::join_all((1..n).map(|_| spawn_node(&nats.url, &schema, &http)))
                .await;
        nodes.extend(rest);
        let token = sign(
            &claims("acme", larder_server::Role::Admin),
            larder_tests::SECRET,
        );
        Self {
            nodes,
            schema,
            http,
            token,
            _nats: nats,
        }
    }

    /// POSTs `body` to node `node`'s `path`; status and JSON body.
    pub async fn post(&self, node: usize, path: &str, body: Value) -> (u16, Value) {
        post(
            &self.http,
            &self.nodes[node].address,
            &self.token,
            path,
            body,
        )
        .await
    }

    /// Creates a store and an item in it through node 0; their ids.
    pub async fn store_with_item(&self) -> (String, String) {
        let (status, store) = self
            .post(0, "/api/v1/stores", json!({ "name": "Main Street" }))
            .await;
        assert_eq!(status, 201, "{store}");
        let store = store["id"].as_str().expect("a store id").to_owned();
        let body = json!({ "sku": "flour", "name": "Flour", "unit": "kg", "quantity": 10, "threshold": 0 });
        let (status, item) = self
            .post(0, &format!("/api/v1/stores/{store}/items"), body)
            .await;
        assert_eq!(status, 201, "{item}");
        (store, item["id"].as_str().expect("an item id").to_owned())
    }

    /// The event store of the cluster's schema, read directly: the truth
    /// the clients are compared with.
    pub async fn event_store(&self) -> Arc<dyn EventStore> {
        let options = StoreOptions::default().pg_schema(&self.schema);
        Arc::new(
            SqlEventStore::connect(&postgres_url(), options)
                .await
                .expect("the cluster's event store"),
        )
    }

    /// Every event of `store` after `after`: (position, id).
    pub async fn store_events(&self, store: &str, after: u64) -> Vec<(u64, String)> {
        let events = self.event_store().await;
        let filter = EventFilter {
            store: Some(store.to_owned()),
            ..EventFilter::default()
        };
        let mut all = Vec::new();
        let mut from = after;
        loop {
            let page = events.read_all(from, 1000, &filter).await.expect("a read");
            all.extend(page.events.iter().map(|e| (e.position, e.id.to_string())));
            from = page.scanned_to;
            if page.reached_head {
                return all;
            }
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        larder_store::test_support::drop_pg_schema(&postgres_url(), &self.schema);
    }
}

/// POSTs `body` with `token`; status and JSON body (0 when the node does
/// not answer: it was killed).
pub async fn post(
    http: &reqwest::Client,
    address: &str,
    token: &str,
    path: &str,
    body: Value,
) -> (u16, Value) {
    match http
        .post(format!("{address}{path}"))
        .bearer_auth(token)
        .json(&body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
    {
        Ok(response) => larder_tests::read(response).await,
        Err(_) => (0, Value::Null),
    }
}

async fn spawn_node(nats: &str, schema: &str, http: &reqwest::Client) -> Node {
    let port = free_port();
    let address = format!("http://127.0.0.1:{port}");
    let log = std::env::temp_dir().join(format!("{schema}-{port}.log"));
    let child = Command::new(larder_binary())
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database-url",
            &postgres_url(),
            "--pg-schema",
            schema,
            "--bus",
            nats,
            "--log",
            "warn",
        ])
        .env("LARDER_JWT_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(
            std::fs::File::create(&log)
                .map(Stdio::from)
                .unwrap_or_else(|_| Stdio::null()),
        )
        .spawn()
        .expect("the larder binary starts");
    let mut node = Node { address, child };
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let ready = http
            .get(format!("{}/readyz", node.address))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false);
        if ready {
            return node;
        }
        if let Ok(Some(status)) = node.child.try_wait() {
            panic!("a node exited at start ({status}); see {}", log.display());
        }
        assert!(
            Instant::now() < deadline,
            "a node did not get ready; see {}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
