//! Settings: command-line flags with `LARDER_*` environment fallbacks.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};

/// Larder: real-time, event-sourced inventory.
///
/// Every flag can also be set with the environment variable shown. With no
/// flags, Larder serves on 127.0.0.1:8080 from `larder.db` (SQLite, created
/// if missing) in demo mode.
#[derive(Clone, Parser)]
#[command(name = "larder", version, about, long_about = None)]
pub struct Settings {
    /// Address and port to listen on.
    #[arg(long, env = "LARDER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,

    /// Database: `sqlite://path` (created if missing) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "LARDER_DATABASE_URL",
        default_value = "sqlite://larder.db"
    )]
    pub database_url: String,

    /// Event bus: `memory` (one node, in process) or `nats://host:port`
    /// (several nodes on one PostgreSQL database share committed events
    /// through NATS; comma-separate several servers of one NATS cluster).
    #[arg(long, env = "LARDER_BUS", default_value = "memory")]
    pub bus: BusSetting,

    /// NATS subject the nodes of one deployment publish committed events on.
    /// Deployments sharing a NATS server need different subjects.
    #[arg(long, env = "LARDER_BUS_SUBJECT", default_value = "larder.events")]
    pub bus_subject: String,

    /// Longest a caught-up consumer (read models, real-time hub, order
    /// stock) waits on a silent bus before it reads the event store anyway,
    /// in milliseconds: the bound on how late an event whose bus message
    /// was lost arrives.
    #[arg(long, env = "LARDER_CATCH_UP_POLL_MS", default_value_t = 1000)]
    pub catch_up_poll_ms: u64,

    /// PostgreSQL schema for Larder's tables (created if missing); default: the
    /// connection's search path.
    #[arg(long, env = "LARDER_PG_SCHEMA")]
    pub pg_schema: Option<String>,

    /// HS256 shared secret that signs API tokens. Without it (and without
    /// --jwt-public-key) Larder runs in demo mode: it makes up a secret and
    /// lets anyone mint tokens at POST /api/v1/dev/token.
    #[arg(long, env = "LARDER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<Secret>,

    /// PEM file with the public key that verifies API tokens (RS256 or EdDSA,
    /// see --jwt-algorithm). Tokens are minted by your identity provider.
    #[arg(long, env = "LARDER_JWT_PUBLIC_KEY", conflicts_with = "jwt_secret")]
    pub jwt_public_key: Option<PathBuf>,

    /// Algorithm of --jwt-public-key.
    #[arg(long, env = "LARDER_JWT_ALGORITHM", value_enum, default_value_t = KeyAlgorithm::Rs256)]
    pub jwt_algorithm: KeyAlgorithm,

    /// Required `iss` claim, if set.
    #[arg(long, env = "LARDER_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,

    /// Required `aud` claim, if set.
    #[arg(long, env = "LARDER_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,

    /// Log filter, e.g. `info`, `larder=debug,tower_http=debug`.
    #[arg(long, env = "LARDER_LOG", default_value = "info")]
    pub log: String,

    /// Log format: `human` for a terminal, `json` for log collectors.
    #[arg(long, env = "LARDER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,

    /// Largest accepted request body, in bytes (413 above it).
    #[arg(long, env = "LARDER_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,

    /// Longest a request may take before it is answered 503, in seconds.
    #[arg(long, env = "LARDER_REQUEST_TIMEOUT_SECS", default_value_t = 30)]
    pub request_timeout_secs: u64,

    /// Longest a query with `?min_position=` waits for the read models, in milliseconds.
    #[arg(long, env = "LARDER_MIN_POSITION_WAIT_MS", default_value_t = 2000)]
    pub min_position_wait_ms: u64,

    /// /readyz fails when a read model is more than this many events behind.
    #[arg(long, env = "LARDER_READY_MAX_LAG", default_value_t = 10_000)]
    pub ready_max_lag: u64,

    /// Real-time: server heartbeat interval in milliseconds; a peer silent for
    /// two intervals is disconnected.
    #[arg(long, env = "LARDER_WS_HEARTBEAT_MS", default_value_t = 25_000)]
    pub ws_heartbeat_ms: u64,

    /// Real-time: a connection must authenticate within this many milliseconds.
    #[arg(long, env = "LARDER_WS_AUTH_TIMEOUT_MS", default_value_t = 5_000)]
    pub ws_auth_timeout_ms: u64,

    /// Real-time: largest accepted client frame in bytes (close 1009 above it).
    #[arg(long, env = "LARDER_WS_MAX_FRAME_BYTES", default_value_t = 64 * 1024)]
    pub ws_max_frame_bytes: usize,

    /// Real-time: sustained client messages per second per connection.
    #[arg(long, env = "LARDER_WS_RATE_PER_SEC", default_value_t = 50)]
    pub ws_rate_per_sec: u32,

    /// Real-time: burst of client messages allowed above the rate.
    #[arg(long, env = "LARDER_WS_RATE_BURST", default_value_t = 100)]
    pub ws_rate_burst: u32,

    /// Real-time: frames queued for one connection before it is closed as a
    /// slow consumer (it resumes from its last position).
    #[arg(long, env = "LARDER_WS_OUTBOUND_QUEUE", default_value_t = 1024)]
    pub ws_outbound_queue: usize,

    /// Real-time: WebSocket read buffer per connection, in bytes. Client
    /// messages are small; a larger one grows the buffer as needed.
    #[arg(long, env = "LARDER_WS_READ_BUFFER_BYTES", default_value_t = 2 * 1024)]
    pub ws_read_buffer_bytes: usize,

    /// Real-time: WebSocket write buffering per connection, in bytes: frames
    /// queued together are written to the socket once this much is buffered,
    /// or when the batch ends. Memory is only taken while writing.
    #[arg(long, env = "LARDER_WS_WRITE_BUFFER_BYTES", default_value_t = 8 * 1024)]
    pub ws_write_buffer_bytes: usize,

    /// Real-time: longest wait, in milliseconds, between two fan-out passes
    /// so that events arriving meanwhile share each socket's write. Only
    /// after a pass that took 1 ms or more, and no longer than that pass
    /// took; 0 turns it off.
    #[arg(long, env = "LARDER_WS_FANOUT_LINGER_MS", default_value_t = 10)]
    pub ws_fanout_linger_ms: u64,

    /// Real-time: the niceness of the fan-out thread (0 to 19), which routes
    /// committed events and writes them into the sockets. Above 0, commands
    /// and queries go first on a busy core; 0 runs it at the process's own
    /// priority, for a node that shares its cores with other busy processes
    /// (another node, the database) and should not let them delay delivery.
    #[arg(
        long,
        env = "LARDER_WS_FANOUT_NICENESS",
        default_value_t = crate::threads::FANOUT_NICENESS,
        value_parser = clap::value_parser!(u8).range(0..=19)
    )]
    pub ws_fanout_niceness: u8,

    /// Real-time: subscriptions per connection.
    #[arg(long, env = "LARDER_WS_MAX_SUBSCRIPTIONS", default_value_t = 100)]
    pub ws_max_subscriptions: usize,

    /// Real-time: concurrent connections (WebSocket and SSE) per client address.
    #[arg(
        long,
        env = "LARDER_WS_MAX_CONNECTIONS_PER_IP",
        default_value_t = 1_000
    )]
    pub ws_max_connections_per_ip: usize,

    /// Real-time: concurrent connections (WebSocket and SSE) per user,
    /// counted on every node that shares the bus (`--bus nats://...`); 0:
    /// no limit.
    #[arg(long, env = "LARDER_WS_MAX_CONNECTIONS_PER_USER", default_value_t = 0)]
    pub ws_max_connections_per_user: usize,

    /// Real-time: on shutdown, clients are told to reconnect after a delay
    /// spread over this many milliseconds, so a restart is no thundering herd.
    #[arg(
        long,
        env = "LARDER_SHUTDOWN_RECONNECT_WINDOW_MS",
        default_value_t = 5_000
    )]
    pub shutdown_reconnect_window_ms: u64,

    /// How often, in seconds, orders waiting in the kitchen past their
    /// station's `late_after_secs` are looked for, to notify the kitchen
    /// lead; 0 turns the check off.
    #[arg(long, env = "LARDER_WAITING_CHECK_SECS", default_value_t = 30)]
    pub waiting_check_secs: u64,

    /// Web origins (`https://app.example.com`, comma-separated) whose pages
    /// may call the API from the browser (CORS) and open `/ws`. Pages served
    /// by Larder itself always may; with none listed, no other site may.
    #[arg(long, env = "LARDER_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<Origin>,

    /// Address and port of the admin listener, which serves `/metrics` (and
    /// `/healthz`, `/readyz`). Without it `/metrics` is not served at all:
    /// it is never served on `--bind`.
    #[arg(long, env = "LARDER_ADMIN_BIND")]
    pub admin_bind: Option<SocketAddr>,

    /// Longest a client may take to send a request's line and headers, in
    /// milliseconds, counted from the moment the server waits for them: a
    /// new connection, or a kept-alive one after its last response. So it is
    /// also the idle keep-alive timeout. The connection is closed after it.
    #[arg(long, env = "LARDER_HTTP_HEADER_TIMEOUT_MS", default_value_t = 20_000)]
    pub http_header_timeout_ms: u64,

    /// Open HTTP connections (WebSocket and SSE included) the server keeps at
    /// most. Above it, new connections are answered 503
    /// `too_many_connections` (except `/healthz` and `/readyz`) and closed.
    /// The `larder` binary lowers it at start to fit the open-file limit.
    #[arg(long, env = "LARDER_MAX_CONNECTIONS", default_value_t = 100_000)]
    pub max_connections: usize,

    /// How long an `Idempotency-Key` answers retries of its command, in
    /// seconds. After it the key is forgotten (and may be used again).
    #[arg(
        long,
        env = "LARDER_IDEMPOTENCY_RETENTION_SECS",
        default_value_t = 86_400
    )]
    pub idempotency_retention_secs: u64,

    /// Dashboards: the least time between two updates of one dashboard, in
    /// milliseconds. However many events arrive, a dashboard's subscribers
    /// get at most one update per interval (the figures as they stand).
    #[arg(long, env = "LARDER_DASHBOARD_INTERVAL_MS", default_value_t = 1_000)]
    pub dashboard_interval_ms: u64,

    /// Dashboards: where "today" starts, as minutes east of UTC (e.g. `60`
    /// for UTC+01:00, `-300` for UTC-05:00; at most 840 either way). A fixed
    /// offset: a day is always 24 hours.
    #[arg(
        long,
        env = "LARDER_DASHBOARD_UTC_OFFSET_MINUTES",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(-840..=840)
    )]
    pub dashboard_utc_offset_minutes: i32,
}

impl Settings {
    /// Settings for tests and embedding: every default, this database.
    pub fn for_database(database_url: impl Into<String>) -> Self {
        let mut settings = Self::parse_from(["larder"]);
        settings.database_url = database_url.into();
        settings.bind = SocketAddr::from(([127, 0, 0, 1], 0));
        settings
    }

    pub(crate) fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs.max(1))
    }

    pub(crate) fn http_header_timeout(&self) -> Duration {
        Duration::from_millis(self.http_header_timeout_ms.max(1))
    }

    pub(crate) fn dashboard_interval(&self) -> Duration {
        Duration::from_millis(self.dashboard_interval_ms.max(10))
    }

    pub(crate) fn catch_up_poll(&self) -> Duration {
        Duration::from_millis(self.catch_up_poll_ms.max(1))
    }

    pub(crate) fn min_position_wait(&self) -> Duration {
        Duration::from_millis(self.min_position_wait_ms)
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secrets or database passwords.
        let database = match self.database_url.split_once('@') {
            Some((_, host)) => format!(
                "{}://***@{host}",
                self.database_url.split(':').next().unwrap_or("")
            ),
            None => self.database_url.clone(),
        };
        f.debug_struct("Settings")
            .field("bind", &self.bind)
            .field("database_url", &database)
            .field("bus", &self.bus)
            .field("bus_subject", &self.bus_subject)
            .field("catch_up_poll_ms", &self.catch_up_poll_ms)
            .field("pg_schema", &self.pg_schema)
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .field("jwt_public_key", &self.jwt_public_key)
            .field("jwt_algorithm", &self.jwt_algorithm)
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("log", &self.log)
            .field("log_format", &self.log_format)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("request_timeout_secs", &self.request_timeout_secs)
            .field("allowed_origins", &self.allowed_origins)
            .field("admin_bind", &self.admin_bind)
            .field("http_header_timeout_ms", &self.http_header_timeout_ms)
            .field("max_connections", &self.max_connections)
            .field(
                "idempotency_retention_secs",
                &self.idempotency_retention_secs,
            )
            .field("dashboard_interval_ms", &self.dashboard_interval_ms)
            .field(
                "dashboard_utc_offset_minutes",
                &self.dashboard_utc_offset_minutes,
            )
            .finish_non_exhaustive()
    }
}

/// Which event bus a node uses.
#[derive(Clone, PartialEq, Eq)]
pub enum BusSetting {
    /// In process: one node.
    Memory,
    /// NATS at these server URLs (comma-separated): several nodes.
    Nats(String),
}

impl fmt::Debug for BusSetting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            // A NATS URL may carry a user and password: show the host only.
            Self::Nats(url) => match url.rsplit_once('@') {
                Some((_, host)) => write!(f, "nats://***@{host}"),
                None => f.write_str(url),
            },
        }
    }
}

impl std::str::FromStr for BusSetting {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("memory") {
            return Ok(Self::Memory);
        }
        let servers: Vec<&str> = value.split(',').map(str::trim).collect();
        let valid = servers.iter().all(|server| {
            ["nats://", "tls://"]
                .iter()
                .any(|scheme| server.len() > scheme.len() && server.starts_with(scheme))
        });
        if !valid {
            return Err(format!(
                "bus {value:?} must be `memory` or `nats://host:port` (comma-separated for several servers)"
            ));
        }
        Ok(Self::Nats(value.to_owned()))
    }
}

/// A secret that never shows in logs or `Debug` output.
#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.len() < 32 {
            return Err("the JWT secret must be at least 32 bytes".into());
        }
        Ok(Self(value.to_owned()))
    }
}

/// A web origin: `scheme://host[:port]`, lower case, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(String);

impl Origin {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Origin {
    type Err = String;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let origin = value.trim().trim_end_matches('/').to_ascii_lowercase();
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| format!("origin {value:?} must start with http:// or https://"))?;
        let valid = !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c));
        if !valid {
            return Err(format!(
                "origin {value:?} must be scheme://host[:port], without a path"
            ));
        }
        Ok(Self(origin))
    }
}

/// Public-key token algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum KeyAlgorithm {
    /// RSA PKCS#1 v1.5 with SHA-256.
    Rs256,
    /// Ed25519.
    Eddsa,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines for a terminal.
    Human,
    /// One JSON object per line.
    Json,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Settings;

    #[test]
    fn the_fanout_niceness_is_10_by_default_and_0_to_19_when_set() {
        assert_eq!(Settings::parse_from(["larder"]).ws_fanout_niceness, 10);
        for niceness in ["0", "19"] {
            let settings = Settings::try_parse_from(["larder", "--ws-fanout-niceness", niceness])
                .expect("accepted");
            assert_eq!(settings.ws_fanout_niceness.to_string(), niceness);
        }
        for wrong in ["20", "-1", "ten"] {
            assert!(
                Settings::try_parse_from(["larder", "--ws-fanout-niceness", wrong]).is_err(),
                "{wrong}"
            );
        }
    }
}
