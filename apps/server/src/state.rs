use std::sync::Arc;

use larder_projections::ReadModels;
use larder_store::{Database, EventStore};

use crate::auth::Authenticator;
use crate::config::Settings;

/// What every handler can reach. Cheap to clone: handles and `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// The command pipeline.
    pub app: larder_app::App,
    pub reads: ReadModels,
    /// Today's figures per store and per tenant.
    pub dashboards: Arc<crate::dashboard::Dashboards>,
    pub store: Arc<dyn EventStore>,
    pub db: Database,
    pub auth: Arc<Authenticator>,
    /// Users as their tokens describe them, for the notification rules.
    pub directory: Arc<crate::directory::Directory>,
    pub settings: Arc<Settings>,
    pub hub: larder_realtime::Hub,
    /// The thread the hub's fan-out runs on (ends with the last clone).
    pub fanout: Arc<crate::threads::RuntimeThread>,
    /// The thread the NATS bus's connection runs on, with `--bus nats://`
    /// (ends with the last clone).
    pub bus_thread: Option<Arc<crate::threads::RuntimeThread>>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Requests being handled right now (for shutdown draining and metrics).
    pub in_flight: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}
