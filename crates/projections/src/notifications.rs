//! Notifications: each user's inbox as a read model (the paged history and
//! the unread count), and the user directory the notification rules address.
//!
//! The inbox itself is an aggregate (`larder_domain::inbox`); this is its
//! query side, fed by its events like every read model. The directory is
//! not fed by the log: users exist only as the claims of their tokens, so
//! the server records each user it authenticates ([`record_user`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use larder_domain::{DomainEvent, InboxEvent, SubjectType};
use larder_store::{Database, RecordedEvent};
use serde::{Deserialize, Serialize};

use crate::ProjectionError;
use crate::checkpoints::checkpoint;
use crate::db::{Tx, args, fetch_all};
use crate::larder::decode;
use crate::queries::{AtPosition, MAX_PAGE, ReadModels};
use crate::runner::Projection;

/// Every user's notifications: one row per notification, with its read and
/// cleared flags.
#[derive(Debug, Default, Clone, Copy)]
pub struct NotificationsProjection;

impl NotificationsProjection {
    /// The checkpoint name.
    pub const NAME: &'static str = "notifications";
}

fn subject_type(subject: SubjectType) -> &'static str {
    match subject {
        SubjectType::Store => "store",
        SubjectType::Item => "item",
        SubjectType::Order => "order",
    }
}

#[async_trait]
impl Projection for NotificationsProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    async fn apply(&self, tx: &mut Tx, event: &RecordedEvent) -> Result<(), ProjectionError> {
        let Some(DomainEvent::Inbox(inbox)) = decode(event)? else {
            return Ok(());
        };
        let tenant = event.metadata.tenant.as_str();
        let user = inbox.user().as_str().to_owned();
        match inbox {
            InboxEvent::NotificationRaised { notification, .. } => {
                let (subject_type, subject_id) = match notification.subject {
                    Some(subject) => (
                        Some(subject_type(subject.entity_type).to_owned()),
                        Some(subject.id),
                    ),
                    None => (None, None),
                };
                tx.execute(
                    "INSERT INTO rm_notifications (notification_id, tenant, user_id, kind, priority, \
                     title, body, subject_type, subject_id, store_id, alert, is_read, cleared, \
                     raised_at, position) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, 0, $12, $13) \
                     ON CONFLICT (notification_id) DO NOTHING",
                    args![
                        notification.notification_id.to_string(),
                        tenant,
                        user,
                        notification.kind.as_str(),
                        notification.priority.as_str(),
                        notification.title.as_str(),
                        notification.body.as_str(),
                        subject_type,
                        subject_id,
                        notification.store_id.map(|s| s.to_string()),
                        notification.alert.map(String::from),
                        event.recorded_at,
                        event.position
                    ],
                )
                .await?;
            }
            InboxEvent::NotificationRead {
                notification_id, ..
            } => {
                tx.execute(
                    "UPDATE rm_notifications SET is_read = 1 \
                     WHERE notification_id = $1 AND tenant = $2 AND user_id = $3",
                    args![notification_id.to_string(), tenant, user],
                )
                .await?;
            }
            InboxEvent::AllNotificationsRead { .. } => {
                tx.execute(
                    "UPDATE rm_notifications SET is_read = 1 \
                     WHERE tenant = $1 AND user_id = $2 AND is_read = 0 AND position < $3",
                    args![tenant, user, event.position],
                )
                .await?;
            }
            InboxEvent::AlertCleared { alert, .. } => {
                tx.execute(
                    "UPDATE rm_notifications SET is_read = 1, cleared = 1 \
                     WHERE tenant = $1 AND user_id = $2 AND alert = $3 AND cleared = 0",
                    args![tenant, user, alert.as_str()],
                )
                .await?;
            }
            InboxEvent::NotificationPreferencesSet { .. } => {}
        }
        Ok(())
    }

    async fn reset(&self, tx: &mut Tx) -> Result<(), ProjectionError> {
        tx.execute("DELETE FROM rm_notifications", vec![]).await?;
        Ok(())
    }
}

/// One notification as a user's history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NotificationEntry {
    /// Its id.
    pub notification_id: String,
    /// `low_stock`, `out_of_stock`, `order_ready`, `order_waiting`,
    /// `transfer_completed` or `broadcast`.
    pub kind: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    /// One line.
    pub title: String,
    /// More, possibly empty.
    pub body: String,
    /// What it links to: `store`, `item` or `order`.
    pub subject_type: Option<String>,
    /// The linked entity's id.
    pub subject_id: Option<String>,
    /// The store it is about.
    pub store_id: Option<String>,
    /// Read by the user (or resolved).
    pub read: bool,
    /// Its cause is gone (an item low on stock was restocked).
    pub cleared: bool,
    /// When it was raised.
    pub raised_at: DateTime<Utc>,
    /// The global position of its `NotificationRaised`: the page cursor.
    pub position: u64,
}

impl ReadModels {
    /// A user's notifications, newest first: up to `limit` (at most
    /// [`MAX_PAGE`]) raised before position `before` (all when `None`),
    /// unread ones only when `unread_only`.
    pub async fn notifications(
        &self,
        tenant: &str,
        user: &str,
        before: Option<u64>,
        unread_only: bool,
        limit: u32,
    ) -> Result<AtPosition<Vec<NotificationEntry>>, ProjectionError> {
        let position = checkpoint(self.db(), NotificationsProjection::NAME).await?;
        let before = before.unwrap_or(i64::MAX as u64);
        let limit = i64::from(limit.clamp(1, MAX_PAGE));
        let read_filter = if unread_only { "AND is_read = 0 " } else { "" };
        let sql = format!(
            "SELECT notification_id, kind, priority, title, body, subject_type, subject_id, store_id, \
             is_read, cleared, raised_at, position FROM rm_notifications \
             WHERE tenant = $1 AND user_id = $2 AND position < $3 {read_filter}\
             ORDER BY position DESC LIMIT $4"
        );
        let rows = fetch_all(self.db(), &sql, args![tenant, user, before, limit]).await?;
        let value = rows
            .iter()
            .map(|row| {
                Ok(NotificationEntry {
                    notification_id: row.text(0)?,
                    kind: row.text(1)?,
                    priority: row.text(2)?,
                    title: row.text(3)?,
                    body: row.text(4)?,
                    subject_type: row.opt_text(5)?,
                    subject_id: row.opt_text(6)?,
                    store_id: row.opt_text(7)?,
                    read: row.int(8)? != 0,
                    cleared: row.int(9)? != 0,
                    raised_at: row.time(10)?,
                    position: row.uint(11)?,
                })
            })
            .collect::<Result<_, ProjectionError>>()?;
        Ok(AtPosition { position, value })
    }

    /// How many of a user's notifications are unread.
    pub async fn unread_notifications(
        &self,
        tenant: &str,
        user: &str,
    ) -> Result<AtPosition<u64>, ProjectionError> {
        let position = checkpoint(self.db(), NotificationsProjection::NAME).await?;
        let rows = fetch_all(
            self.db(),
            "SELECT COUNT(*) FROM rm_notifications WHERE tenant = $1 AND user_id = $2 AND is_read = 0",
            args![tenant, user],
        )
        .await?;
        let value = rows.first().map_or(Ok(0), |row| row.uint(0))?;
        Ok(AtPosition { position, value })
    }
}

/// A user as their last token described them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// The tenant.
    pub tenant: String,
    /// The user (the token's `sub`).
    pub user: String,
    /// Their highest role, by name (`viewer`, `staff`, `manager`, `admin`).
    pub role: String,
    /// Its rank: 0 viewer, 1 staff, 2 manager, 3 admin.
    pub role_rank: i64,
    /// The stores they may see; `None` for every store of the tenant.
    pub stores: Option<Vec<String>>,
}

/// Who a notification is for, among the users of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceFilter {
    /// Only users who may see this store (`None`: any).
    pub store: Option<String>,
    /// Only users whose role ranks at least this.
    pub min_rank: i64,
    /// Only users whose role ranks exactly this, if set.
    pub rank: Option<i64>,
}

/// Records a user seen with a valid token: inserted, or updated when their
/// role or stores changed (and their last-seen time with it).
pub async fn record_user(
    db: &Database,
    entry: &DirectoryEntry,
    now: DateTime<Utc>,
) -> Result<(), ProjectionError> {
    let stores = entry
        .stores
        .as_ref()
        .map(|stores| serde_json::to_string(stores).unwrap_or_else(|_| "[]".to_owned()));
    let mut tx = Tx::begin(db).await?;
    tx.execute(
        "INSERT INTO user_directory (tenant, user_id, role, role_rank, stores, last_seen) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant, user_id) DO UPDATE SET role = excluded.role, \
         role_rank = excluded.role_rank, stores = excluded.stores, last_seen = excluded.last_seen",
        args![
            entry.tenant.as_str(),
            entry.user.as_str(),
            entry.role.as_str(),
            entry.role_rank,
            stores,
            now
        ],
    )
    .await?;
    tx.commit().await
}

/// The users of `tenant` in the directory that `filter` selects, sorted by
/// id.
pub async fn audience(
    db: &Database,
    tenant: &str,
    filter: &AudienceFilter,
) -> Result<Vec<String>, ProjectionError> {
    let rows = fetch_all(
        db,
        "SELECT user_id, role_rank, stores FROM user_directory \
         WHERE tenant = $1 AND role_rank >= $2 ORDER BY user_id",
        args![tenant, filter.min_rank],
    )
    .await?;
    let mut users = Vec::new();
    for row in &rows {
        let rank = row.int(1)?;
        if filter.rank.is_some_and(|wanted| wanted != rank) {
            continue;
        }
        let sees = match (&filter.store, row.opt_text(2)?) {
            (None, _) | (Some(_), None) => true,
            (Some(store), Some(stores)) => serde_json::from_str::<Vec<String>>(&stores)
                .is_ok_and(|stores| stores.iter().any(|s| s == store)),
        };
        if sees {
            users.push(row.text(0)?);
        }
    }
    Ok(users)
}

/// The oldest unfinished line of one order at one station, for the
/// waiting-order check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WaitingLine {
    /// The tenant.
    pub tenant: String,
    /// The store.
    pub store_id: String,
    /// The order.
    pub order_id: String,
    /// The station.
    pub station: String,
    /// When its oldest unfinished line was fired.
    pub fired_at: DateTime<Utc>,
}

/// At most this many orders and stations are checked per run, oldest first.
pub const MAX_WAITING_LINES: i64 = 1000;

/// Every order and station with a line fired or started but not ready,
/// with the oldest such line's fire time, oldest first.
pub async fn waiting_lines(db: &Database) -> Result<Vec<WaitingLine>, ProjectionError> {
    let rows = fetch_all(
        db,
        "SELECT tenant, store_id, order_id, station, MIN(fired_at) AS oldest FROM rm_kitchen_lines \
         WHERE status IN ('fired', 'started') GROUP BY tenant, store_id, order_id, station \
         ORDER BY oldest LIMIT $1",
        args![MAX_WAITING_LINES],
    )
    .await?;
    rows.iter()
        .map(|row| {
            Ok(WaitingLine {
                tenant: row.text(0)?,
                store_id: row.text(1)?,
                order_id: row.text(2)?,
                station: row.text(3)?,
                fired_at: row.time(4)?,
            })
        })
        .collect()
}
