//! The requests a client sends over a connection: auth, subscribe (with
//! its replay), unsubscribe, ping, refresh and presence.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::{Connection, count_resume, expiry_instant, unix_now};
use crate::frame::{CloseReason, close};
use crate::hub::{Out, Outbound, Start};
use crate::metrics as m;
use crate::protocol::{CLIENT_TYPES, ClientMessage, ErrorCode, PROTOCOL_VERSION, ServerMessage};
use crate::{AuthFailure, Identity, Topic};

/// Parses a text frame, telling bad JSON, unknown types and malformed known
/// messages apart. The error carries the request id when one was readable.
fn parse(text: &str) -> Result<ClientMessage, (Option<String>, ErrorCode, String)> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| (None, ErrorCode::InvalidJson, format!("not JSON: {e}")))?;
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    let Some(kind) = value.get("type").and_then(|v| v.as_str()) else {
        return Err((id, ErrorCode::InvalidMessage, "missing \"type\"".into()));
    };
    if !CLIENT_TYPES.contains(&kind) {
        return Err((id, ErrorCode::UnknownType, format!("unknown type {kind:?}")));
    }
    serde_json::from_value(value).map_err(|e| (id, ErrorCode::InvalidMessage, e.to_string()))
}

impl ClientMessage {
    fn id(&self) -> &str {
        match self {
            Self::Auth { id, .. }
            | Self::Subscribe { id, .. }
            | Self::Unsubscribe { id, .. }
            | Self::Ping { id, .. }
            | Self::Refresh { id, .. }
            | Self::Presence { id, .. } => id,
        }
    }
}

impl Connection {
    pub(super) async fn on_text(&mut self, text: &str) {
        let message = match parse(text) {
            Ok(message) => message,
            Err((id, code, message)) => return self.error(id, code, message),
        };
        let Some(identity) = self.identity.clone() else {
            return match message {
                ClientMessage::Auth { id, token } => self.authenticate(id, &token).await,
                other => self.error(
                    Some(other.id().to_owned()),
                    ErrorCode::NotAuthenticated,
                    "send auth first",
                ),
            };
        };
        match message {
            ClientMessage::Auth { id, .. } => {
                self.error(Some(id), ErrorCode::InvalidMessage, "already authenticated")
            }
            ClientMessage::Subscribe {
                id,
                topic,
                since,
                snapshot,
            } => {
                self.subscribe(identity, id, &topic, since, snapshot.unwrap_or(false))
                    .await
            }
            ClientMessage::Unsubscribe { id, topic } => self.unsubscribe(id, &topic),
            ClientMessage::Ping { id, ts } => self.send(ServerMessage::Pong {
                id,
                ts: ts.unwrap_or_else(|| {
                    SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0, |d| d.as_millis() as u64)
                }),
            }),
            ClientMessage::Refresh { id, token } => self.refresh(identity, id, &token).await,
            ClientMessage::Presence { id, store } => self.presence(identity, id, store),
        }
    }

    async fn authenticate(&mut self, id: String, token: &str) {
        match self.hub.authorizer().authenticate(token).await {
            Ok(identity) if identity.expires_at > unix_now() => self.welcome(Some(id), identity),
            Ok(_) | Err(AuthFailure::Expired) => {
                self.error(Some(id), ErrorCode::NotAuthenticated, "token expired");
                self.close(close::TOKEN_EXPIRED, "token expired");
            }
            Err(AuthFailure::Invalid) => {
                self.error(Some(id), ErrorCode::NotAuthenticated, "invalid token");
                self.close(close::INVALID_TOKEN, "invalid token");
            }
        }
    }

    pub(super) fn welcome(&mut self, id: Option<String>, identity: Identity) {
        if self.user_permit.is_none() {
            match self.hub.try_admit_user(&identity) {
                Ok(permit) => self.user_permit = Some(permit),
                Err(error) => {
                    tracing::info!(%error, "refusing connection");
                    self.error(
                        id,
                        ErrorCode::TooManyConnections,
                        format!(
                            "at most {} connections per user, on every node together",
                            error.limit
                        ),
                    );
                    self.close(
                        close::TOO_MANY_CONNECTIONS,
                        "too many connections for this user",
                    );
                    return;
                }
            }
        }
        self.expiry = expiry_instant(identity.expires_at);
        self.send(ServerMessage::Welcome {
            id,
            protocol: PROTOCOL_VERSION,
            connection_id: self.id.to_string(),
            heartbeat_ms: self.config.heartbeat_interval.as_millis() as u64,
            head: self.hub.position(),
            user: identity.user.clone(),
            expires_at: identity.expires_at,
        });
        self.identity = Some(Arc::new(identity));
    }

    async fn subscribe(
        &mut self,
        identity: Arc<Identity>,
        id: String,
        topic: &str,
        since: Option<u64>,
        snapshot: bool,
    ) {
        let topic: Topic = match topic.parse() {
            Ok(topic) => topic,
            Err(error) => return self.error(Some(id), ErrorCode::InvalidTopic, error.to_string()),
        };
        let key = topic.to_string();
        if !identity.may_subscribe(&topic) {
            return self.error(
                Some(id),
                ErrorCode::Forbidden,
                format!("not allowed to subscribe to {key}"),
            );
        }
        if self.subs.contains_key(&key) {
            return self.error(
                Some(id),
                ErrorCode::AlreadySubscribed,
                format!("already subscribed to {key}"),
            );
        }
        if self.subs.len() >= self.config.max_subscriptions {
            return self.error(
                Some(id),
                ErrorCode::TooManySubscriptions,
                format!(
                    "at most {} subscriptions per connection",
                    self.config.max_subscriptions
                ),
            );
        }
        let start = match (since, snapshot) {
            (Some(_), true) => {
                return self.error(
                    Some(id),
                    ErrorCode::InvalidSince,
                    "since and snapshot are exclusive",
                );
            }
            (Some(since), false) => Start::Since(since),
            (None, true) => Start::Snapshot,
            (None, false) => Start::Live,
        };
        let out = Out::Ws {
            tx: self.tx.clone(),
            signal: self.signal.clone(),
        };
        let tenant = identity.tenant.clone();
        let started = match self
            .hub
            .start_subscription(identity, std::slice::from_ref(&topic), start, out)
            .await
        {
            Ok(started) => started,
            Err(error) => return self.error(Some(id), error.code(), error.to_string()),
        };
        self.subs.insert(key.clone(), started.sub.clone());
        count_resume(started.resume);
        let reply = ServerMessage::Subscribed {
            id,
            topic: key,
            resume: started.resume,
            position: started.position,
            snapshot: started.snapshot,
        };
        if !self.send_waiting(Outbound::Text(reply.to_json())).await {
            return;
        }
        for delivery in &started.replay {
            let item = Outbound::Shared(delivery.ws_frame(), Some(delivery.recorded_at));
            if !self.send_waiting(item).await {
                return;
            }
        }
        let wait = self.config.heartbeat_interval;
        match self
            .hub
            .activate_ws(&started.sub, started.last, &self.tx, wait)
            .await
        {
            Ok(()) => self.hub.derived_subscribed(&tenant, &topic),
            Err(()) => {
                if self
                    .signal
                    .close(CloseReason::new(close::SLOW_CONSUMER, "slow consumer"))
                {
                    metrics::counter!(m::SLOW_CONSUMER_CLOSES).increment(1);
                }
            }
        }
    }

    fn unsubscribe(&mut self, id: String, topic: &str) {
        let key = topic
            .parse::<Topic>()
            .map_or_else(|_| topic.to_owned(), |t| t.to_string());
        match self.subs.remove(&key) {
            Some(sub) => {
                self.hub.unregister(&sub);
                // Leaving a store's topic is leaving the store: a screen
                // that moves on to another store does not stay present here
                // (nor hold one of its `max_presence` entries).
                if let (Ok(Topic::Store(store)), Some(identity)) =
                    (key.parse::<Topic>(), &self.identity)
                {
                    if self.present.remove(&store) {
                        self.hub
                            .presence_leave(&identity.tenant, &store, &identity.user);
                    }
                }
                self.send(ServerMessage::Unsubscribed { id, topic: key });
            }
            None => self.error(
                Some(id),
                ErrorCode::NotSubscribed,
                format!("not subscribed to {key}"),
            ),
        }
    }

    async fn refresh(&mut self, current: Arc<Identity>, id: String, token: &str) {
        match self.hub.authorizer().authenticate(token).await {
            Ok(identity)
                if identity.tenant == current.tenant
                    && identity.user == current.user
                    && identity.expires_at > unix_now() =>
            {
                let identity = Arc::new(identity);
                for sub in self.subs.values() {
                    sub.set_identity(identity.clone());
                }
                self.expiry = expiry_instant(identity.expires_at);
                self.send(ServerMessage::Refreshed {
                    id,
                    expires_at: identity.expires_at,
                });
                self.identity = Some(identity);
            }
            Ok(_) => self.error(
                Some(id),
                ErrorCode::Forbidden,
                "the new token must be valid and for the same tenant and user",
            ),
            Err(failure) => self.error(
                Some(id),
                ErrorCode::Forbidden,
                format!("token refused: {failure}"),
            ),
        }
    }

    fn presence(&mut self, identity: Arc<Identity>, id: String, store: String) {
        let topic = match format!("store:{store}").parse::<Topic>() {
            Ok(topic) => topic,
            Err(error) => return self.error(Some(id), ErrorCode::InvalidTopic, error.to_string()),
        };
        if !identity.may_subscribe(&topic) {
            return self.error(
                Some(id),
                ErrorCode::Forbidden,
                format!("not allowed in store {store}"),
            );
        }
        if !self.present.contains(&store) && self.present.len() >= self.config.max_presence {
            return self.error(
                Some(id),
                ErrorCode::TooManyPresences,
                format!(
                    "present in at most {} stores per connection",
                    self.config.max_presence
                ),
            );
        }
        let users = if self.present.insert(store.clone()) {
            self.hub
                .presence_join(&identity.tenant, &store, &identity.user)
        } else {
            self.hub.present_users(&identity.tenant, &store)
        };
        self.send(ServerMessage::Presence { id, store, users });
    }
}
