//! A cluster on loopback: a `nats-server` of its own, and `larder` server
//! processes on one fresh PostgreSQL schema, each on a free port; a
//! PostgreSQL instance of its own for tests that stop the database; and the
//! clients and command loads the tests drive the cluster with.

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use larder_bus::test_support::NatsServer;
use larder_store::{EventFilter, EventStore, SqlEventStore, StoreOptions};
use larder_tests::ws::{Next, WsClient};
use larder_tests::{SECRET, claims, postgres_url, sign};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// How long a process may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a node may take to exit after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// A free port for a server that may stop and start again on it: below
/// the kernel's ephemeral range, where no outgoing connection and no
/// `bind(0)` of another test takes it while the server is down.
fn free_port() -> u16 {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    let (first, end) = (10_000u16, low.max(10_100));
    for _ in 0..1_000 {
        // A v4 UUID is random enough to pick a port.
        let port = first + (Uuid::new_v4().as_u128() % u128::from(end - first)) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in {first}..{end}");
}

/// Waits (blocking, bounded) until something listens on `port`.
fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + START_TIMEOUT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
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

/// A `nats-server` of the cluster's own, stopped when dropped; it can be
/// stopped and started again on the same ports.
pub struct Nats {
    pub url: String,
    server: NatsServer,
}

impl Nats {
    pub fn start() -> Self {
        let server = NatsServer::start();
        Self {
            url: server.url(),
            server,
        }
    }

    /// Starts the server again on its ports; returns once it listens.
    pub fn start_again(&mut self) {
        self.server.start_again();
    }

    /// Stops the server (SIGKILL): its clients lose their connections.
    pub fn stop(&mut self) {
        self.server.stop();
    }

    /// How many client connections the server has (its monitoring
    /// endpoint), or `None` when it does not answer.
    pub async fn connections(&self, http: &reqwest::Client) -> Option<u64> {
        let response = http
            .get(format!(
                "http://127.0.0.1:{}/connz",
                self.server.monitor_port()
            ))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .ok()?;
        let body: Value = response.json().await.ok()?;
        body["num_connections"].as_u64()
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether this process runs as root (PostgreSQL refuses to).
fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The folder of PostgreSQL's server programs: `LARDER_PG_BIN`, or the
/// newest under /usr/lib/postgresql, or the `PATH`.
fn postgres_bin() -> PathBuf {
    if let Ok(path) = std::env::var("LARDER_PG_BIN") {
        return PathBuf::from(path);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("pg_ctl").exists())
        .max_by_key(|bin| {
            bin.parent()
                .and_then(|v| v.file_name())
                .and_then(|v| v.to_str())
                .and_then(|v| v.parse::<u32>().ok())
                .unwrap_or(0)
        });
    newest.unwrap_or_default()
}

/// A PostgreSQL instance of the test's own (initdb into a temporary folder,
/// trust authentication, a free port on loopback), so a test can stop and
/// start the database. Stopped and removed when dropped; its folder and log
/// are kept, and named, when the test fails.
pub struct Postgres {
    pub url: String,
    dir: PathBuf,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    pub fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("larder-pg-{}", Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("a folder for PostgreSQL");
        let as_postgres = running_as_root();
        if as_postgres {
            let status = Command::new("chown")
                .args(["postgres:", &dir.display().to_string()])
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of {} to postgres", dir.display());
        }
        let mut postgres = Self {
            url: String::new(),
            dir,
            port: 0,
            as_postgres,
        };
        let data = postgres.dir.join("data").display().to_string();
        postgres.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        // Another process may take the port between the choice and the
        // start: then choose again.
        for attempt in 1.. {
            postgres.port = free_port();
            postgres.url = format!("postgres://postgres@127.0.0.1:{}/postgres", postgres.port);
            match postgres.try_start() {
                Ok(()) => break,
                Err(error)
                    if attempt < 3 && error.contains("could not create any TCP/IP sockets") => {}
                Err(error) => panic!("{error}"),
            }
        }
        postgres
    }

    /// Runs one of PostgreSQL's programs, as the `postgres` user when this
    /// process is root; panics with its output when it fails.
    fn run(&self, program: &str, args: &[&str]) {
        if let Err(error) = self.try_run(program, args) {
            panic!("{error}");
        }
    }

    /// Runs one of PostgreSQL's programs; what went wrong, with its output
    /// and the server's log.
    fn try_run(&self, program: &str, args: &[&str]) -> Result<(), String> {
        let output = self
            .command(program)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("running {program}: {e}"))?;
        if output.status.success() {
            return Ok(());
        }
        Err(format!(
            "{program} {args:?}: {}{}\n{}: {}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
            self.log().display(),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        ))
    }

    /// A command running one of PostgreSQL's programs, as the `postgres`
    /// user when this process is root.
    fn command(&self, program: &str) -> Command {
        let program = postgres_bin().join(program);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let data = self.dir.join("data").display().to_string();
        let mut all = vec!["-D", &data, "-w", "-t", "30"];
        all.extend_from_slice(args);
        self.try_run("pg_ctl", &all)
    }

    /// Starts the server (again) on its port; returns once it accepts
    /// connections.
    pub fn start_again(&self) {
        if let Err(error) = self.try_start() {
            panic!("{error}");
        }
    }

    fn try_start(&self) -> Result<(), String> {
        let log = self.log().display().to_string();
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        self.pg_ctl(&["-l", &log, "-o", &options, "start"])?;
        wait_listening(self.port, "PostgreSQL");
        Ok(())
    }

    /// Stops the server: `fast` ends every session at once (as a restart
    /// does), `immediate` without a clean shutdown (as a crash).
    pub fn stop(&self, mode: &str) {
        if let Err(error) = self.pg_ctl(&["-m", mode, "stop"]) {
            panic!("{error}");
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.join("postgres.log")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        if data.join("postmaster.pid").exists() {
            let data = data.display().to_string();
            // Not `run`: a panic in a drop during a panic aborts.
            let _ = self
                .command("pg_ctl")
                .args(["-D", &data, "-w", "-m", "immediate", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        if std::thread::panicking() {
            eprintln!(
                "PostgreSQL's folder kept: {} (log: {})",
                self.dir.display(),
                self.log().display()
            );
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One `larder` process. It can be stopped (SIGKILL or SIGTERM) and started
/// again on the same port.
pub struct Node {
    pub address: String,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Node {
    /// Starts a node with `args` (after `--bind`) on `port`, its stderr
    /// appended to `log`; returns once `/readyz` answers 200.
    async fn start(args: Vec<String>, port: u16, log: PathBuf, http: &reqwest::Client) -> Self {
        let mut node = Self {
            address: format!("http://127.0.0.1:{port}"),
            args: [vec!["--bind".to_owned(), format!("127.0.0.1:{port}")], args].concat(),
            log,
            child: None,
        };
        node.start_again(http).await;
        node
    }

    /// Starts the process (again) with the same arguments; returns once
    /// `/readyz` answers 200.
    pub async fn start_again(&mut self, http: &reqwest::Client) {
        assert!(self.child.is_none(), "the node is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let child = Command::new(larder_binary())
            .args(&self.args)
            .env("LARDER_JWT_SECRET", SECRET)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the larder binary starts");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if self.ready(http).await {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!(
                    "a node exited at start ({status}); see {}",
                    self.log.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "a node did not get ready; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether `/readyz` answers 200.
    pub async fn ready(&self, http: &reqwest::Client) -> bool {
        self.readiness(http).await.0 == 200
    }

    /// `/readyz`: status (0 when the node does not answer) and body.
    pub async fn readiness(&self, http: &reqwest::Client) -> (u16, Value) {
        match http
            .get(format!("{}/readyz", self.address))
            .timeout(Duration::from_secs(10))
            .send()
            .await
        {
            Ok(response) => larder_tests::read(response).await,
            Err(_) => (0, Value::Null),
        }
    }

    /// The running process's id.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .map(Child::id)
            .expect("the node is running")
    }

    /// Kills the process with SIGKILL (`kill -9`): no graceful shutdown.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the process gracefully (SIGTERM, as an orchestrator does) and
    /// waits for it to exit, bounded; its exit status.
    pub async fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("the node runs");
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -TERM {}", child.id());
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "a node did not exit within {STOP_TIMEOUT:?} of SIGTERM; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How a [`Cluster`] starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// How many nodes.
    pub nodes: usize,
    /// `--catch-up-poll-ms`; the server's default when `None`.
    pub catch_up_poll_ms: Option<u64>,
    /// The database; the shared test PostgreSQL when `None`.
    pub database_url: Option<String>,
    /// More flags for every node.
    pub args: Vec<String>,
}

impl Options {
    pub fn nodes(nodes: usize) -> Self {
        Self {
            nodes,
            catch_up_poll_ms: None,
            database_url: None,
            args: Vec::new(),
        }
    }
}

/// Nodes on one PostgreSQL schema and one NATS server. Dropped, it kills
/// the nodes, drops the schema, and removes the nodes' log files, unless
/// the test failed: then it keeps them and prints where they are.
pub struct Cluster {
    pub nodes: Vec<Node>,
    pub schema: String,
    pub http: reqwest::Client,
    pub token: String,
    pub database_url: String,
    /// Whether the database is the test's own (then it is removed whole).
    own_database: bool,
    // Dropped after the nodes (fields drop in order).
    pub nats: Nats,
}

impl Cluster {
    /// Starts `n` nodes with a configured HS256 secret; the first one
    /// migrates the schema before the others start.
    pub async fn start(n: usize) -> Self {
        Self::start_with(Options::nodes(n)).await
    }

    /// Starts a cluster as `options` say.
    pub async fn start_with(options: Options) -> Self {
        let nats = Nats::start();
        let schema = format!("larder_cluster_{}", Uuid::new_v4().simple());
        let own_database = options.database_url.is_some();
        let database_url = options.database_url.unwrap_or_else(postgres_url);
        let http = reqwest::Client::new();
        let mut args: Vec<String> = [
            "--database-url",
            &database_url,
            "--pg-schema",
            &schema,
            "--bus",
            &nats.url,
            "--log",
            "warn",
        ]
        .map(str::to_owned)
        .into();
        if let Some(poll) = options.catch_up_poll_ms {
            args.extend(["--catch-up-poll-ms".to_owned(), poll.to_string()]);
        }
        args.extend(options.args);
        let start = |_| {
            let port = free_port();
            let log = std::env::temp_dir().join(format!("{schema}-{port}.log"));
            Node::start(args.clone(), port, log, &http)
        };
        let mut nodes = vec![start(0).await];
        nodes.extend(futures_util::future::join_all((1..options.nodes).map(start)).await);
        let token = sign(
            &claims("acme", larder_server::Role::Admin),
            larder_tests::SECRET,
        );
        Self {
            nodes,
            schema,
            http,
            token,
            database_url,
            own_database,
            nats,
        }
    }

    /// The nodes' addresses.
    pub fn addresses(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.address.clone()).collect()
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
        let item = self.item(&store, "flour").await;
        (store, item)
    }

    /// Creates an item `sku` in `store` through node 0; its id.
    pub async fn item(&self, store: &str, sku: &str) -> String {
        let body = json!({ "sku": sku, "name": sku, "unit": "kg", "quantity": 10, "threshold": 0 });
        let (status, item) = self
            .post(0, &format!("/api/v1/stores/{store}/items"), body)
            .await;
        assert_eq!(status, 201, "{item}");
        item["id"].as_str().expect("an item id").to_owned()
    }

    /// The event store of the cluster's schema, read directly: the truth
    /// the clients are compared with.
    pub async fn event_store(&self) -> Arc<dyn EventStore> {
        let options = StoreOptions::default().pg_schema(&self.schema);
        Arc::new(
            SqlEventStore::connect(&self.database_url, options)
                .await
                .expect("the cluster's event store"),
        )
    }

    /// Every event of `store` after `after`: (position, id).
    pub async fn store_events(&self, store: &str, after: u64) -> Received {
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

    /// The position of `store`'s last event (0: none).
    pub async fn store_head(&self, store: &str) -> u64 {
        self.store_events(store, 0).await.last().map_or(0, |e| e.0)
    }

    /// `per_node` clients on every node, subscribed to `store` after `since`
    /// (see [`client`]).
    pub fn clients(
        &self,
        store: &str,
        since: u64,
        per_node: usize,
        until: &watch::Receiver<Option<u64>>,
    ) -> Vec<JoinHandle<Received>> {
        let mut clients = Vec::new();
        for home in 0..self.nodes.len() {
            for _ in 0..per_node {
                clients.push(client(
                    self.addresses(),
                    home,
                    self.token.clone(),
                    store.to_owned(),
                    since,
                    until.clone(),
                ));
            }
        }
        clients
    }

    /// One command loop per node, the loop of node `n` adjusting
    /// `items[n % items.len()]` (see [`load`]). With one item, the nodes
    /// race for its stream; a command that loses every retry is answered
    /// 409, which fails the test.
    pub fn loads(&self, items: &[String], tally: &Arc<Tally>) -> Vec<JoinHandle<()>> {
        (0..self.nodes.len())
            .map(|home| load(self, home, &items[home % items.len()], tally.clone()))
            .collect()
    }

    /// Creates `n` items in `store`; their ids.
    pub async fn items(&self, store: &str, n: usize) -> Vec<String> {
        let mut items = Vec::new();
        for i in 0..n {
            items.push(self.item(store, &format!("sku-{i}")).await);
        }
        items
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if !self.own_database {
            larder_store::test_support::drop_pg_schema(&self.database_url, &self.schema);
        }
        for node in &self.nodes {
            if std::thread::panicking() {
                eprintln!("node log kept: {}", node.log.display());
            } else {
                let _ = std::fs::remove_file(&node.log);
            }
        }
    }
}

/// POSTs `body` with `token`; status and JSON body (0 when the node does
/// not answer: it is down).
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

/// What one client received: (position, event id), in arrival order.
pub type Received = Vec<(u64, String)>;

/// How long a client may stay without any frame before the test fails
/// (until the target is known, the load is continuous or the test is
/// waiting for something bounded; after it, silence means an event is
/// missing).
const SILENCE: Duration = Duration::from_secs(20);

/// How long a client may fail to find a node that takes it.
const RECONNECT: Duration = Duration::from_secs(20);

/// A client subscribed to `store:{store}` after `since` on `addresses[home]`.
/// When its connection ends (its node was killed or stopped) or a node does
/// not take it, it goes to the next node and resumes with `since` = the
/// last position it received. It stops once it has received `until` (once
/// that is known).
pub fn client(
    addresses: Vec<String>,
    home: usize,
    token: String,
    store: String,
    since: u64,
    until: watch::Receiver<Option<u64>>,
) -> JoinHandle<Received> {
    tokio::spawn(async move {
        let topic = format!("store:{store}");
        let mut received: Received = Vec::new();
        let mut node = home;
        let mut last = since;
        let mut silent = Duration::ZERO;
        let mut homeless_since: Option<tokio::time::Instant> = None;
        'connect: loop {
            let subscribed = match WsClient::try_authenticated_at(
                &addresses[node],
                &token,
                Duration::from_secs(5),
            )
            .await
            {
                Some(mut ws) => {
                    let subscribe = json!({ "type": "subscribe", "topic": topic, "since": last });
                    match ws.try_request(subscribe, Duration::from_secs(10)).await {
                        Some((reply, before)) => {
                            assert_eq!(reply["type"], "subscribed", "{reply}");
                            for frame in &before {
                                take(&topic, frame, &mut received, &mut last);
                            }
                            Some(ws)
                        }
                        None => None,
                    }
                }
                None => None,
            };
            let Some(mut ws) = subscribed else {
                // The node is down or stopping: try the next one.
                let since = *homeless_since.get_or_insert_with(tokio::time::Instant::now);
                assert!(
                    since.elapsed() < RECONNECT,
                    "client: no node took it for {RECONNECT:?} (at {last})"
                );
                node = (node + 1) % addresses.len();
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue 'connect;
            };
            homeless_since = None;
            loop {
                if let Some(target) = *until.borrow()
                    && last >= target
                {
                    return received;
                }
                // A short wait, so a target set meanwhile is seen.
                match ws.next_within(Duration::from_millis(200)).await {
                    Next::Frame(frame) => {
                        if take(&topic, &frame, &mut received, &mut last) {
                            silent = Duration::ZERO;
                        }
                    }
                    Next::Silent => {
                        silent += Duration::from_millis(200);
                        assert!(
                            silent < SILENCE,
                            "client on {}: silent at {last}",
                            addresses[node]
                        );
                    }
                    Next::Ended => {
                        // Its node went away: resume on the next one, after
                        // the last position received.
                        node = (node + 1) % addresses.len();
                        continue 'connect;
                    }
                }
            }
        }
    })
}

/// Records `frame` if it is an event of `topic`; whether it was.
fn take(topic: &str, frame: &Value, received: &mut Received, last: &mut u64) -> bool {
    if frame["type"] != "event" || frame["topic"] != topic {
        return false;
    }
    let position = frame["position"].as_u64().expect("a position");
    let id = frame["event"]["id"].as_str().expect("an id").to_owned();
    *last = position;
    received.push((position, id));
    true
}

/// What the loss tests share: a store with one item per node, and clients
/// on every node subscribed to it from its head (see [`Cluster::watched`]).
pub struct Watched {
    pub store: String,
    /// One per node, so the loads do not race for one stream: three nodes
    /// adjusting one item as fast as they can make a command lose all its
    /// retries now and then, and be answered 409.
    pub items: Vec<String>,
    pub since: u64,
    clients: Vec<JoinHandle<Received>>,
    target: watch::Sender<Option<u64>>,
}

impl Cluster {
    /// A new store with one item per node, and `per_node` clients on every
    /// node subscribed to it after its creation.
    pub async fn watched(&self, per_node: usize) -> Watched {
        let (store, _) = self.store_with_item().await;
        let items = self.items(&store, self.nodes.len()).await;
        let since = self.store_head(&store).await;
        let (target, until) = watch::channel(None);
        let clients = self.clients(&store, since, per_node, &until);
        Watched {
            store,
            items,
            since,
            clients,
            target,
        }
    }

    /// Commands through every node until [`Load::stop`] (see
    /// [`Cluster::loads`]).
    pub fn start_load(&self, items: &[String]) -> Load {
        let tally = Tally::new();
        let loads = self.loads(items, &tally);
        Load { tally, loads }
    }
}

impl Watched {
    /// The end of every loss test: each command a load had acknowledged is
    /// an event of the log, once, and every client received the store's
    /// events after `since` exactly once, in order.
    pub async fn check(self, cluster: &Cluster, loads: &[&Tally]) {
        let truth = cluster.store_events(&self.store, self.since).await;
        for tally in loads {
            assert_acked_in_log(&truth, &tally.acked_positions());
        }
        self.target.send_replace(truth.last().map(|e| e.0));
        let received = collect(self.clients).await;
        assert_every_client_got_exactly(&truth, &received);
    }
}

/// Running command loops, one per node, and what they were answered.
pub struct Load {
    pub tally: Arc<Tally>,
    loads: Vec<JoinHandle<()>>,
}

impl Load {
    /// Stops the loops after their requests in flight and waits for them.
    pub async fn stop(self) -> Arc<Tally> {
        self.tally.stop();
        join_loads(self.loads).await;
        self.tally
    }
}

/// Waits for every client, bounded.
pub async fn collect(clients: Vec<JoinHandle<Received>>) -> Vec<Received> {
    let mut all = Vec::new();
    for client in clients {
        let received = tokio::time::timeout(Duration::from_secs(30), client)
            .await
            .expect("the client received everything in time")
            .expect("the client task");
        all.push(received);
    }
    all
}

/// What the command loops of a test were answered, and their stop switch.
#[derive(Debug, Default)]
pub struct Tally {
    stop: AtomicBool,
    /// The positions answered 200: acknowledged.
    acked: Mutex<Vec<u64>>,
    /// 503 answers by error code.
    unavailable: Mutex<BTreeMap<String, u64>>,
    /// Requests without an answer (a node down).
    unanswered: AtomicU64,
}

impl Tally {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Tells the loops to stop after their request in flight.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// How many commands were acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.lock().expect("not poisoned").len()
    }

    /// The acknowledged positions.
    pub fn acked_positions(&self) -> Vec<u64> {
        self.acked.lock().expect("not poisoned").clone()
    }

    /// 503 answers so far, by code.
    pub fn unavailable(&self) -> BTreeMap<String, u64> {
        self.unavailable.lock().expect("not poisoned").clone()
    }

    /// Requests no node answered so far.
    pub fn unanswered(&self) -> u64 {
        self.unanswered.load(Ordering::SeqCst)
    }

    /// Waits until `more` commands more than now are acknowledged, bounded
    /// by `within` (the test fails after it, naming `what`).
    pub async fn wait_for_more(&self, more: usize, within: Duration, what: &str) {
        let target = self.acked() + more;
        let deadline = tokio::time::Instant::now() + within;
        while self.acked() < target {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: {} of {target} commands acknowledged after {within:?} (503s: {:?}, unanswered: {})",
                self.acked(),
                self.unavailable(),
                self.unanswered()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// Sends stock adjustments of +1 through `cluster.nodes[home]` until the
/// tally says stop, bounded in count and time. A node that does not answer
/// (down) or answers 503 (its database is down, it shuts down) is left for
/// the next one, as a client with several addresses does; only 200 answers
/// count as acknowledged, and any other answer fails the test.
pub fn load(cluster: &Cluster, home: usize, item: &str, tally: Arc<Tally>) -> JoinHandle<()> {
    let http = cluster.http.clone();
    let addresses = cluster.addresses();
    let token = cluster.token.clone();
    let path = format!("/api/v1/items/{item}/adjust");
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        let mut node = home;
        for _ in 0..20_000 {
            if tally.stop.load(Ordering::SeqCst) || tokio::time::Instant::now() > deadline {
                return;
            }
            let (status, body) = post(
                &http,
                &addresses[node],
                &token,
                &path,
                json!({ "delta": 1, "reason": "received" }),
            )
            .await;
            match status {
                200 => {
                    let position = body["position"].as_u64().expect("a position");
                    tally.acked.lock().expect("not poisoned").push(position);
                }
                0 | 503 => {
                    if status == 0 {
                        tally.unanswered.fetch_add(1, Ordering::SeqCst);
                    } else {
                        let code = body["code"].as_str().unwrap_or("(none)").to_owned();
                        *tally
                            .unavailable
                            .lock()
                            .expect("not poisoned")
                            .entry(code)
                            .or_default() += 1;
                    }
                    node = (node + 1) % addresses.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                _ => panic!("adjusting through {}: {status} {body}", addresses[node]),
            }
        }
    })
}

/// Waits for the command loops, bounded.
pub async fn join_loads(loads: Vec<JoinHandle<()>>) {
    for load in loads {
        tokio::time::timeout(Duration::from_secs(30), load)
            .await
            .expect("the load stopped in time")
            .expect("the load task");
    }
}

/// Every client received `truth`: each event once, in position order.
pub fn assert_every_client_got_exactly(truth: &Received, clients: &[Received]) {
    assert!(!truth.is_empty());
    for (i, received) in clients.iter().enumerate() {
        assert_eq!(
            received.len(),
            truth.len(),
            "client {i}: every event exactly once ({} received, {} committed)",
            received.len(),
            truth.len()
        );
        assert_eq!(
            received, truth,
            "client {i}: the store's events, in position order"
        );
    }
}

/// Every acknowledged position is an event of `truth`, each once.
pub fn assert_acked_in_log(truth: &Received, acked: &[u64]) {
    assert!(!acked.is_empty(), "no command was acknowledged");
    let committed: HashSet<u64> = truth.iter().map(|e| e.0).collect();
    let mut seen = HashSet::new();
    for position in acked {
        assert!(
            committed.contains(position),
            "acknowledged position {position} is not in the log"
        );
        assert!(
            seen.insert(position),
            "position {position} acknowledged twice"
        );
    }
}
