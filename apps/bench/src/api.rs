//! The REST side: tokens, setup (a store and its items) and the stock
//! adjustments that drive the load.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The tenant every benchmark run works in.
pub const TENANT: &str = "bench";

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    tenant: &'a str,
    stores: &'a str,
    roles: [&'a str; 1],
    exp: u64,
    iat: u64,
}

/// An HS256 token for `user` with `role` on every store of the tenant.
pub fn token(secret: &str, user: &str, role: &str) -> Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = Claims {
        sub: user,
        tenant: TENANT,
        stores: "*",
        roles: [role],
        exp: now + 3600,
        iat: now,
    };
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

/// A command's answer: the last position it wrote and how many events.
#[derive(Debug, Clone, Copy)]
pub struct Committed {
    pub position: u64,
    pub events: u64,
}

#[derive(Deserialize)]
struct CommandAnswer {
    id: String,
    position: u64,
    events: Vec<String>,
}

/// An authenticated REST client, or a peer's publisher.
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
    base: String,
    bearer: String,
    /// For a peer: the last position published. Held across a publish, so
    /// positions go out in order, one at a time.
    peer: Option<Arc<tokio::sync::Mutex<u64>>>,
}

impl Api {
    pub fn new(base: &str, token: &str) -> Result<Self> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Self {
            http,
            base: format!("{base}/api/v1"),
            bearer: format!("Bearer {token}"),
            peer: None,
        })
    }

    /// A publisher for a peer at `base`: every "adjustment" is the next
    /// position's event frame, posted to `/items`.
    pub fn peer(base: &str) -> Result<Self> {
        let mut api = Self::new(base, "")?;
        api.base = base.to_owned();
        api.peer = Some(Arc::default());
        Ok(api)
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> Result<CommandAnswer> {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// Sends a command to `path` (under `/api/v1`); its answer's position.
    pub async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Result<u64> {
        Ok(self.send(method, path, body).await?.position)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> Result<CommandAnswer> {
        let response = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("authorization", &self.bearer)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("{method} {path}: {status} {text}");
        }
        response
            .json()
            .await
            .with_context(|| format!("{method} {path}: unexpected answer"))
    }

    /// Creates a store; returns its id.
    pub async fn create_store(&self, name: &str) -> Result<String> {
        Ok(self.post("/stores", json!({ "name": name })).await?.id)
    }

    /// Adds an item that no +1 adjustment (nor a bounded run of sales)
    /// will ever raise an alert for.
    pub async fn add_item(&self, store: &str, sku: &str) -> Result<String> {
        let body = json!({
            "sku": sku, "name": format!("Bench item {sku}"), "unit": "each",
            "quantity": 1_000_000, "threshold": 0,
        });
        Ok(self.post(&format!("/stores/{store}/items"), body).await?.id)
    }

    /// Adjusts an item's stock by +1 (for a peer: publishes the next event).
    pub async fn adjust(&self, item: &str) -> Result<Committed> {
        if let Some(last) = &self.peer {
            let mut last = last.lock().await;
            let position = *last + 1;
            let response = self
                .http
                .post(format!("{}/items", self.base))
                .header("content-type", "application/json")
                .body(crate::peer::event_frame(position))
                .send()
                .await?;
            let status = response.status();
            if !status.is_success() {
                bail!("POST /items: {status}");
            }
            *last = position;
            return Ok(Committed {
                position,
                events: 1,
            });
        }
        let body = json!({ "delta": 1, "reason": "received", "note": "larder-bench" });
        let answer = self.post(&format!("/items/{item}/adjust"), body).await?;
        Ok(Committed {
            position: answer.position,
            events: answer.events.len() as u64,
        })
    }
}
