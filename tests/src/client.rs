//! `larder-client` for tests that consume events and send commands as a
//! service would (the protocol itself is probed with [`crate::ws`]).

use std::time::Duration;

use larder_client::{Backoff, Client, token_fn};
use serde_json::json;

use crate::TestApp;

/// Quick retries, so a test does not wait out the production backoff.
pub const FAST: Backoff = Backoff {
    base: Duration::from_millis(50),
    max: Duration::from_millis(300),
};

impl TestApp {
    /// A client of this server as `user` (admin of tenant `acme`), with
    /// demo tokens minted here; see [`client_via`].
    pub fn larder_client(&self, user: &str) -> Client {
        client_via(&self.address, &self.address, user)
    }
}

/// A client of `base` (a demo server, or a proxy in front of it) as `user`,
/// admin of tenant `acme`, minting its tokens at `mint` (the server's own
/// address) each time it needs one: a restarted demo server signs with a
/// new key, and the client asks again when a token is refused. Retries
/// are quick ([`FAST`]).
pub fn client_via(base: &str, mint: &str, user: &str) -> Client {
    let mint = format!("{mint}/api/v1/dev/token");
    let user = user.to_owned();
    let tokens = token_fn(move |_refresh| {
        let (mint, user) = (mint.clone(), user.clone());
        async move {
            let body = json!({ "tenant": "acme", "sub": user, "role": "admin" });
            let answer: serde_json::Value = reqwest::Client::new()
                .post(&mint)
                .json(&body)
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            Ok::<_, reqwest::Error>(answer["token"].as_str().unwrap_or_default().to_owned())
        }
    });
    Client::builder(base, tokens)
        .reconnect_backoff(FAST)
        .command_backoff(FAST)
        .build()
        .expect("a client of the test server")
}
