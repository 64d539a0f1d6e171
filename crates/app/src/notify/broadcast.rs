//! An administrator's message to many inboxes at once.

use larder_domain::{Body, NotificationKind, Priority, StoreId, TenantId, Title};
use larder_projections::{AudienceFilter, audience};
use larder_store::Database;
use uuid::Uuid;

use super::deliver::{self, Cause, Delivered};
use super::rules::{Action, Intent, Template};
use crate::{App, AppError};

/// Who a broadcast is for, among the users of the directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BroadcastAudience {
    /// Every user of the tenant.
    Tenant,
    /// Every user who may see this store.
    Store(StoreId),
    /// Every user whose highest role has this rank (viewer 0, staff 1,
    /// manager 2, admin 3).
    Role(i64),
}

/// An administrator's message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broadcast {
    /// Chosen by the caller: sending the same broadcast again (a retried
    /// request) raises nothing twice.
    pub id: Uuid,
    /// Who it is for.
    pub audience: BroadcastAudience,
    /// Its priority.
    pub priority: Priority,
    /// Its title.
    pub title: Title,
    /// Its body.
    pub body: Body,
}

/// Raises `message` in the inbox of every user of `tenant` its audience
/// names (each user's preferences for `broadcast` apply). Answers how many
/// users were addressed and how many notifications were written.
pub async fn broadcast(
    app: &App,
    db: &Database,
    tenant: &TenantId,
    correlation_id: Uuid,
    message: &Broadcast,
) -> Result<Delivered, AppError> {
    let filter = match message.audience {
        BroadcastAudience::Tenant => AudienceFilter {
            store: None,
            min_rank: 0,
            rank: None,
        },
        BroadcastAudience::Store(store) => AudienceFilter {
            store: Some(store.to_string()),
            min_rank: 0,
            rank: None,
        },
        BroadcastAudience::Role(rank) => AudienceFilter {
            store: None,
            min_rank: rank,
            rank: Some(rank),
        },
    };
    let users: Vec<_> = audience(db, tenant.as_str(), &filter)
        .await
        .map_err(super::storage)?
        .iter()
        .filter_map(|user| larder_domain::UserId::parse(user).ok())
        .collect();
    let store_id = match message.audience {
        BroadcastAudience::Store(store) => Some(store),
        _ => None,
    };
    let intent = Intent {
        rule: "broadcast",
        audience: Vec::new(),
        action: Action::Notify(Template {
            key: format!("broadcast:{}", message.id),
            kind: NotificationKind::Broadcast,
            priority: message.priority,
            title: message.title.clone(),
            body: message.body.clone(),
            subject: store_id.map(|store| larder_domain::Subject {
                entity_type: larder_domain::SubjectType::Store,
                id: store.to_string(),
            }),
            store_id,
            alert: None,
        }),
    };
    let cause = Cause {
        id: message.id,
        correlation_id,
        key: message.id.to_string(),
    };
    deliver::deliver(app, tenant, &users, &intent, &cause).await
}
