//! A server started from settings given as they are, for tests of the HTTP
//! edge (listeners, connection bounds, the admin port) that need more than
//! [`crate::TestApp`] exposes.

use std::time::Duration;

use larder_server::{AppState, Application, Settings};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// A running server on a fresh SQLite file.
#[allow(missing_debug_implementations)]
pub struct Server {
    /// `http://127.0.0.1:PORT` of the API listener.
    pub address: String,
    /// `http://127.0.0.1:PORT` of the admin listener, when configured.
    pub admin: Option<String>,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    file: std::path::PathBuf,
}

impl Server {
    /// Starts a server on a new SQLite file, with `configure` applied to the
    /// test defaults (port 0, log level warn).
    pub async fn start(configure: impl FnOnce(&mut Settings)) -> Self {
        let file = std::env::temp_dir().join(format!("larder-edge-{}.db", Uuid::new_v4()));
        let mut settings = Settings::for_database(format!("sqlite://{}", file.display()));
        settings.log = "warn".into();
        configure(&mut settings);
        let app = Application::build(settings)
            .await
            .expect("the server starts");
        let address = format!("http://127.0.0.1:{}", app.port());
        let admin = app
            .admin_port()
            .map(|port| format!("http://127.0.0.1:{port}"));
        let state = app.state().clone();
        let (shutdown, signal) = oneshot::channel::<()>();
        let server = tokio::spawn(app.run_until_stopped(async {
            let _ = signal.await;
        }));
        Self {
            address,
            admin,
            state,
            shutdown: Some(shutdown),
            server: Some(server),
            file,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The API listener's socket address.
    pub fn socket_address(&self) -> std::net::SocketAddr {
        self.address
            .trim_start_matches("http://")
            .parse()
            .expect("an address")
    }

    /// Begins a graceful shutdown without waiting for it.
    pub fn begin_shutdown(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }

    /// Shuts down gracefully and waits (bounded) until the server stopped.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        self.begin_shutdown();
        match self.server.take() {
            Some(server) => tokio::time::timeout(Duration::from_secs(30), server).await??,
            None => Ok(()),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.begin_shutdown();
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.file.display()));
        }
    }
}
