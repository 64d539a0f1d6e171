//! The [`Client`]: where the server is, how to get a token, and the
//! policies (reconnect backoff, command retries, timeouts) its
//! subscriptions and commands share.

use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::error::Error;
use crate::token::TokenProvider;

/// A handle on one Larder server. Cheap to clone (an `Arc` inside); share
/// one per server and token source. Every [`subscribe`](Client::subscribe)
/// opens its own connection; commands share one HTTP connection pool.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) ws_url: String,
    pub(crate) api_url: String,
    pub(crate) http: reqwest::Client,
    pub(crate) token: Box<dyn TokenProvider>,
    pub(crate) reconnect: Backoff,
    pub(crate) max_reconnect_attempts: Option<u32>,
    pub(crate) connect_timeout: Duration,
    pub(crate) command_backoff: Backoff,
    pub(crate) command_attempts: u32,
    pub(crate) max_retry_after: Duration,
    pub(crate) buffer: usize,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("ws_url", &self.inner.ws_url)
            .field("api_url", &self.inner.api_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url` (`http://host:port`, as the
    /// server's `--bind`; `/ws` and `/api/v1` are derived from it) with the
    /// default policies.
    pub fn new(base_url: &str, token: impl TokenProvider) -> Result<Self, Error> {
        Self::builder(base_url, token).build()
    }

    /// A builder, to change the policies.
    pub fn builder(base_url: &str, token: impl TokenProvider) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_owned(),
            token: Box::new(token),
            reconnect: Backoff::RECONNECT,
            max_reconnect_attempts: None,
            connect_timeout: Duration::from_secs(10),
            command_backoff: Backoff::COMMAND,
            command_attempts: 5,
            request_timeout: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(30),
            buffer: 1024,
            http: None,
        }
    }

    /// The WebSocket endpoint, e.g. `ws://127.0.0.1:8080/ws`.
    pub fn ws_url(&self) -> &str {
        &self.inner.ws_url
    }

    /// The REST base, e.g. `http://127.0.0.1:8080/api/v1`.
    pub fn api_url(&self) -> &str {
        &self.inner.api_url
    }

    /// A token from the provider.
    pub(crate) async fn token(&self, refresh: bool) -> Result<String, Error> {
        self.inner.token.token(refresh).await.map_err(Error::Token)
    }
}

/// Builds a [`Client`]; see [`Client::builder`].
pub struct ClientBuilder {
    base_url: String,
    token: Box<dyn TokenProvider>,
    reconnect: Backoff,
    max_reconnect_attempts: Option<u32>,
    connect_timeout: Duration,
    command_backoff: Backoff,
    command_attempts: u32,
    request_timeout: Duration,
    max_retry_after: Duration,
    buffer: usize,
    http: Option<reqwest::Client>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl ClientBuilder {
    /// Reconnect waits (default: full jitter below 1, 2, 4, ... 30 s).
    pub fn reconnect_backoff(mut self, backoff: Backoff) -> Self {
        self.reconnect = backoff;
        self
    }

    /// Failed reconnect attempts in a row after which a subscription ends
    /// with [`Error::GaveUp`] (default: none, it keeps trying).
    pub fn max_reconnect_attempts(mut self, attempts: Option<u32>) -> Self {
        self.max_reconnect_attempts = attempts;
        self
    }

    /// How long one connection attempt may take, up to `welcome` (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Waits between attempts of one command (default: below 0.5, 1, 2, 4,
    /// then 8 s), unless the server sent `Retry-After`.
    pub fn command_backoff(mut self, backoff: Backoff) -> Self {
        self.command_backoff = backoff;
        self
    }

    /// Attempts of one command, the first included (default 5, at least 1).
    pub fn command_attempts(mut self, attempts: u32) -> Self {
        self.command_attempts = attempts.max(1);
        self
    }

    /// The longest `Retry-After` obeyed (default 30 s): a far date must not
    /// park a command for hours.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// One HTTP request's time limit (default 30 s); ignored with [`http_client`](Self::http_client).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Updates a subscription holds for its reader before it stops reading
    /// the socket (default 1024). A reader that falls further behind makes
    /// the server close the connection as a slow consumer; the subscription
    /// then resumes from its last position, so nothing is lost.
    pub fn buffer(mut self, updates: usize) -> Self {
        self.buffer = updates.max(1);
        self
    }

    /// Use this HTTP client for commands (its pool, timeouts, TLS).
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let base = self.base_url.trim_end_matches('/');
        let invalid = |reason| Error::InvalidUrl {
            url: self.base_url.clone(),
            reason,
        };
        let rest = if let Some(rest) = base.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = base.strip_prefix("https://") {
            format!("wss://{rest}")
        } else {
            return Err(invalid("it must start with http:// or https://"));
        };
        if rest.len() <= "wss://".len() || base.contains(['?', '#', ' ']) {
            return Err(invalid(
                "it must be a server address without query or fragment",
            ));
        }
        let http = match self.http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .timeout(self.request_timeout)
                .build()
                .map_err(|e| Error::Connection(format!("cannot build the HTTP client: {e}")))?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                ws_url: format!("{rest}/ws"),
                api_url: format!("{base}/api/v1"),
                http,
                token: self.token,
                reconnect: self.reconnect,
                max_reconnect_attempts: self.max_reconnect_attempts,
                connect_timeout: self.connect_timeout,
                command_backoff: self.command_backoff,
                command_attempts: self.command_attempts,
                max_retry_after: self.max_retry_after,
                buffer: self.buffer,
            }),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_the_endpoints_from_the_base_url() {
        let client = Client::new("http://127.0.0.1:8080/", "t").unwrap();
        assert_eq!(client.ws_url(), "ws://127.0.0.1:8080/ws");
        assert_eq!(client.api_url(), "http://127.0.0.1:8080/api/v1");
        let tls = Client::new("https://larder.example/base", "t").unwrap();
        assert_eq!(tls.ws_url(), "wss://larder.example/base/ws");
    }

    #[test]
    fn refuses_what_is_not_a_server_address() {
        for bad in ["127.0.0.1:8080", "ws://x", "http://", "http://x/?a=1"] {
            assert!(
                matches!(Client::new(bad, "t"), Err(Error::InvalidUrl { .. })),
                "{bad}"
            );
        }
    }
}
