//! Building and running the application: the seam tests use.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::{Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use larder_app::{Notifier, OrderStock};
use larder_bus::{EventBus, InMemoryEventBus, NatsBusOptions, NatsEventBus};
use larder_projections::Projections;
use larder_realtime::{EventSource, Hub, catch_up_feed};
use larder_store::{CatchUp, EventStore, RecordedEvent, SqlEventStore, StoreOptions};
use tokio::net::TcpListener;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Authenticator;
use crate::config::{BusSetting, Settings};
use crate::error::ApiError;
use crate::routes;
use crate::serve::{Limits, serve};
use crate::state::AppState;

/// A built, not yet running, Larder server.
#[derive(Debug)]
pub struct Application {
    listener: TcpListener,
    /// The admin listener (`--admin-bind`): `/metrics`, `/healthz`, `/readyz`.
    admin: Option<TcpListener>,
    router: Router,
    projections: Projections,
    /// The process manager by which stock follows orders.
    order_stock: OrderStock,
    /// The process manager that raises notifications from the log.
    notifier: Notifier,
    /// Cluster presence (`--bus nats://...`): says goodbye at shutdown.
    presence: Option<Arc<larder_realtime::NatsPresence>>,
    state: AppState,
}

impl Application {
    /// Opens the database (running migrations), starts the read models and
    /// binds the listener.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let auth = Authenticator::from_settings(&settings)?;
        if auth.is_demo() {
            tracing::warn!(
                "DEMO MODE: no --jwt-secret or --jwt-public-key configured. Larder made up a secret and anyone can \
                 mint tokens at POST /api/v1/dev/token. Configure a key before exposing this server."
            );
        }
        let (bus, bus_thread) = connect_bus(&settings).await?;
        let poll = settings.catch_up_poll();
        // Appends go to the store's writer thread: committing on the runtime
        // thread that also serves requests measured slower end to end.
        let mut options = StoreOptions::default()
            .bus(bus.clone())
            .inline_appends(false)
            .idempotency_retention(Duration::from_secs(settings.idempotency_retention_secs));
        if let Some(schema) = &settings.pg_schema {
            options = options.pg_schema(schema);
        }
        let store = SqlEventStore::connect(&settings.database_url, options).await?;
        let db = store.database();
        let store: Arc<dyn EventStore> = Arc::new(store);
        let projections =
            Projections::start_polling(db.clone(), store.clone(), Some(bus.clone()), poll).await?;
        let reads = projections.read_models();
        let app = larder_app::App::new(store.clone());
        // Fired orders take their stock, voids and cancels give it back,
        // through the same pipeline (and state cache) as the REST commands.
        // The read-model tables it records in were migrated just above.
        let order_stock = OrderStock::start_polling(
            app.clone(),
            db.clone(),
            store.clone(),
            Some(bus.clone()),
            poll,
        )
        .await?;
        // Notifications follow the log like the order-to-stock manager; the
        // waiting-order check runs on its own timer.
        let check_every = (settings.waiting_check_secs > 0)
            .then(|| Duration::from_secs(settings.waiting_check_secs));
        let log = larder_app::consumer::Log {
            store: store.clone(),
            bus: Some(bus.clone()),
            poll_interval: poll,
        };
        let notifier = Notifier::start(app.clone(), db.clone(), log, check_every).await?;
        let auth = Arc::new(auth);
        let directory = Arc::new(crate::directory::Directory::new(db.clone()));
        // The hub tails the log from its head: clients bring their own
        // position (`since`) for anything older.
        let head = store.head().await?;
        let tail = CatchUp::start(store.clone(), Some(bus.as_ref()), head)
            .await?
            .with_poll_interval(poll);
        let dashboards = Arc::new(crate::dashboard::Dashboards::new(
            reads.clone(),
            settings.dashboard_utc_offset_minutes,
        ));
        let fanout = Arc::new(crate::threads::RuntimeThread::start(
            "larder-fanout",
            settings.ws_fanout_niceness,
        )?);
        let hub = Hub::start_on(
            fanout.handle(),
            Arc::new(store.clone()) as Arc<dyn EventSource>,
            catch_up_feed(tail),
            head,
            Arc::new(crate::realtime::JwtAuthorizer(
                auth.clone(),
                directory.clone(),
            )),
            Some(Arc::new(crate::realtime::Snapshots {
                reads: reads.clone(),
                store: store.clone(),
                wait: settings.min_position_wait(),
                dashboards: dashboards.clone(),
            })),
            crate::realtime::config(&settings),
        );
        // With several nodes, presence is the cluster's: shared over NATS,
        // under a subject derived from the bus's.
        let presence = match &settings.bus {
            BusSetting::Memory => None,
            BusSetting::Nats(url) => {
                let node = uuid::Uuid::new_v4().to_string();
                let config = larder_realtime::NatsPresenceConfig {
                    subject_prefix: format!("{}.presence", settings.bus_subject),
                    ..larder_realtime::NatsPresenceConfig::default()
                };
                let presence = Arc::new(
                    larder_realtime::NatsPresence::connect_with(url, &node, config).await?,
                );
                hub.use_presence(presence.clone());
                tracing::info!(node = %node, "presence: shared over NATS");
                Some(presence)
            }
        };
        // Dashboards are pushed, coalesced, by the hub; the task stops with it.
        drop(hub.start_state_publisher(dashboards.clone(), settings.dashboard_interval()));
        let state = AppState {
            app,
            reads,
            dashboards,
            store,
            db,
            auth,
            directory,
            settings: Arc::new(settings),
            hub,
            fanout,
            bus_thread,
            metrics: crate::telemetry::metrics(),
            in_flight: Arc::default(),
        };
        let router = router(state.clone());
        let listener = TcpListener::bind(state.settings.bind).await?;
        tracing::info!(address = %listener.local_addr()?, "listening");
        let admin = match state.settings.admin_bind {
            Some(address) => {
                let admin = TcpListener::bind(address).await?;
                tracing::info!(address = %admin.local_addr()?, "admin listening (/metrics)");
                Some(admin)
            }
            None => None,
        };
        Ok(Self {
            listener,
            admin,
            router,
            projections,
            order_stock,
            notifier,
            presence,
            state,
        })
    }

    /// The port the server listens on (useful with port 0).
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The admin listener's port, if `--admin-bind` is set.
    pub fn admin_port(&self) -> Option<u16> {
        self.admin
            .as_ref()
            .and_then(|admin| admin.local_addr().ok())
            .map(|a| a.port())
    }

    /// The shared state (for tests that look behind the API).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` completes; then tells every real-time client
    /// when to reconnect (spread over a window) and closes them, lets
    /// in-flight requests finish, and stops the order-stock process manager
    /// and the read models.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let hub = self.state.hub.clone();
        let window = Duration::from_millis(self.state.settings.shutdown_reconnect_window_ms);
        let shutdown = async move {
            shutdown.await;
            hub.shutdown(window).await;
        };
        let limits = Limits {
            header_timeout: self.state.settings.http_header_timeout(),
            max_connections: self.state.settings.max_connections,
        };
        let (stop_admin, admin_stopped) = tokio::sync::oneshot::channel::<()>();
        let admin = self.admin.map(|listener| {
            let router = admin_router(self.state.clone());
            // The admin listener has its own small cap: scrapes and probes.
            let limits = Limits {
                max_connections: ADMIN_CONNECTIONS,
                ..limits
            };
            let stopped = async {
                let _ = admin_stopped.await;
            };
            tokio::spawn(serve(listener, router.clone(), router, limits, stopped))
        });
        let overflow = overflow_router(self.state.clone());
        serve(self.listener, self.router, overflow, limits, shutdown).await;
        let _ = stop_admin.send(());
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        // After the last request: a command in flight may still fire an order.
        self.order_stock.stop().await;
        self.notifier.stop().await;
        if let Some(presence) = &self.presence {
            presence.close().await;
        }
        self.projections.stop().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// A bus and the thread its connection runs on, if it has one.
type Bus = (
    Arc<dyn EventBus<RecordedEvent>>,
    Option<Arc<crate::threads::RuntimeThread>>,
);

/// The bus `--bus` names: in process for one node, NATS for several. A NATS
/// connection runs on a thread of its own (`larder-bus`), at the process's
/// priority, so that events cross between nodes without queueing behind
/// this node's requests.
async fn connect_bus(settings: &Settings) -> anyhow::Result<Bus> {
    Ok(match &settings.bus {
        BusSetting::Memory => (Arc::new(InMemoryEventBus::default()), None),
        BusSetting::Nats(url) => {
            let options = NatsBusOptions {
                subject: settings.bus_subject.clone(),
                ..NatsBusOptions::default()
            };
            let thread = crate::threads::RuntimeThread::start("larder-bus", 0)?;
            let url = url.clone();
            let bus = thread
                .handle()
                .spawn(
                    async move { NatsEventBus::<RecordedEvent>::connect_with(&url, options).await },
                )
                .await??;
            tracing::info!(bus = ?settings.bus, subject = %settings.bus_subject, "event bus: NATS");
            (Arc::new(bus), Some(Arc::new(thread)))
        }
    })
}

/// Connections the admin listener keeps at most.
const ADMIN_CONNECTIONS: usize = 64;

/// What the admin listener serves: metrics, and health for probes that
/// should not compete with clients.
fn admin_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(routes::ops::metrics))
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .with_state(state)
        .layer(crate::edge::security_headers())
}

/// What connections above the cap get: health answers, anything else a 503.
fn overflow_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::ops::healthz))
        .route("/readyz", get(routes::ops::readyz))
        .fallback(|| async {
            (
                [(header::RETRY_AFTER, "1")],
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_connections",
                    "the server is at its connection limit; try again shortly",
                ),
            )
                .into_response()
        })
        .with_state(state)
        .layer(crate::edge::security_headers())
}

/// The whole HTTP surface with its middleware.
pub fn router(state: AppState) -> Router {
    let timeout = state.settings.request_timeout();
    let max_body = state.settings.max_body_bytes;
    let in_flight = state.in_flight.clone();
    let cors = crate::edge::cors(&state.settings.allowed_origins);
    let (api, _) = routes::api(state);
    api.layer(DefaultBodyLimit::max(max_body))
        .layer(axum::middleware::from_fn(move |request, next: axum::middleware::Next| {
            let guard = InFlight::enter(in_flight.clone());
            async move {
                let response = next.run(request).await;
                drop(guard);
                response
            }
        }))
        .layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
                let request_id = request
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
            }))
            .layer(PropagateRequestIdLayer::x_request_id())
            .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "timeout", "the request took too long").into_response()
            }))
            .timeout(timeout),
    )
    // Outermost: preflights are answered before anything else runs, and
    // every response (timeouts and 404s too) gets the headers.
    .layer(cors)
    .layer(crate::edge::security_headers())
}

/// Counts a request as in flight until dropped (also when its future is
/// cancelled by a timeout).
struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn enter(counter: Arc<std::sync::atomic::AtomicUsize>) -> Self {
        counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}

/// How long to wait for in-flight requests after a shutdown signal.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
