//! Delivering a rule's intent: its audience resolved to users through the
//! directory, then one inbox command per user through the pipeline, each
//! with an idempotency key naming the rule, the cause and the inbox.

use larder_domain::{
    InboxCommand, InboxId, InboxState, Notification, NotificationId, TenantId, UserId,
};
use larder_projections::{AudienceFilter, audience};
use larder_store::Database;
use uuid::Uuid;

use super::rules::{Action, Audience, Intent};
use crate::{App, AppError, Context, IdempotencyKey, Request};

/// The actor recorded on the notifications the rules raise.
pub const ACTOR: &str = "larder:notifications";

/// The rank of the `manager` role in the directory (viewer 0, staff 1,
/// manager 2, admin 3).
pub const MANAGER_RANK: i64 = 2;

/// What caused a delivery: the event (or broadcast) and its correlation.
#[derive(Debug, Clone)]
pub struct Cause {
    /// The event's id (or the broadcast's, or the order's for a waiting
    /// order): the `causation_id` of the inbox events.
    pub id: Uuid,
    /// The correlation id the inbox events carry.
    pub correlation_id: Uuid,
    /// What the idempotency keys name as the cause: the event's id, or
    /// `{order}:{station}` for a waiting order.
    pub key: String,
}

/// How many inbox commands a delivery made, and how many of them wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivered {
    /// Users addressed.
    pub recipients: usize,
    /// Inbox events written now (a notification turned away by
    /// preferences or deduplication, or replayed, writes none).
    pub written: usize,
}

/// The users `audience` names in `tenant`, sorted and each once.
pub(crate) async fn resolve(
    app: &App,
    db: &Database,
    tenant: &TenantId,
    audiences: &[Audience],
) -> Result<Vec<UserId>, AppError> {
    let mut users = Vec::new();
    for audience_ in audiences {
        match audience_ {
            Audience::StoreManagers(store) => {
                let filter = AudienceFilter {
                    store: Some(store.to_string()),
                    min_rank: MANAGER_RANK,
                    rank: None,
                };
                let found = audience(db, tenant.as_str(), &filter)
                    .await
                    .map_err(super::storage)?;
                users.extend(found.iter().filter_map(|user| UserId::parse(user).ok()));
            }
            Audience::OrderTaker(order) => {
                let first = app.store.read_stream(&order.stream_name(), 1, 1).await?;
                let taker = first
                    .first()
                    .and_then(|event| event.metadata.actor.as_deref())
                    .and_then(|actor| UserId::parse(actor).ok());
                users.extend(taker);
            }
        }
    }
    users.sort();
    users.dedup();
    Ok(users)
}

/// Sends `intent` to each of `users`: one command per inbox, keyed
/// `notify:{rule}:{cause}:{inbox}` so running it again writes nothing.
pub(crate) async fn deliver(
    app: &App,
    tenant: &TenantId,
    users: &[UserId],
    intent: &Intent,
    cause: &Cause,
) -> Result<Delivered, AppError> {
    let mut delivered = Delivered {
        recipients: users.len(),
        written: 0,
    };
    for user in users {
        let inbox = InboxId::of_user(tenant, user);
        let (command, fingerprint) = match &intent.action {
            Action::Notify(template) => {
                let notification_id = NotificationId::derive(inbox, &template.key);
                (
                    InboxCommand::Notify {
                        user: user.clone(),
                        notification: Notification {
                            notification_id,
                            kind: template.kind,
                            priority: template.priority,
                            title: template.title.clone(),
                            body: template.body.clone(),
                            subject: template.subject.clone(),
                            store_id: template.store_id,
                            alert: template.alert.clone(),
                        },
                    },
                    notification_id.to_string(),
                )
            }
            Action::Clear(alert) => (
                InboxCommand::ClearAlert {
                    user: user.clone(),
                    alert: alert.clone(),
                },
                alert.as_str().to_owned(),
            ),
        };
        let ctx = Context {
            tenant: tenant.clone(),
            actor: ACTOR.to_owned(),
            session: None,
            correlation_id: cause.correlation_id,
            idempotency: Some(IdempotencyKey {
                key: format!("notify:{}:{}:{inbox}", intent.rule, cause.key),
                fingerprint,
                status: 200,
            }),
            causation_id: Some(cause.id),
            lifecycle: None,
        };
        let request = Request::<InboxState> {
            id: inbox,
            within: None,
            expected: None,
            command,
        };
        match app.execute(&ctx, request).await {
            Ok(outcome) if !outcome.replayed && !outcome.events.is_empty() => {
                delivered.written += 1;
            }
            Ok(_) => {}
            Err(AppError::Rejected(error)) => {
                // Only a broken inbox stream could refuse a notification;
                // holding every later notification back would not mend it.
                tracing::warn!(%error, user = %user, rule = intent.rule, "a notification was refused; skipped");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(delivered)
}
