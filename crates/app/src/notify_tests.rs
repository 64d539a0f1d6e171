//! Notifications from the log, on a real SQLite event store: the rules reach
//! exactly the store's managers, once, however often the log is read again;
//! a restock lets the next low-stock notification through; the waiting-order
//! check finds nothing in an empty kitchen.

use larder_domain::{
    AdjustReason, Delta, InboxId, InboxState, ItemCommand, ItemId, ItemName, ItemState, Quantity,
    Sku, StoreCommand, StoreId, StoreName, StoreState, Threshold, Unit, UserId,
};
use larder_projections::{DirectoryEntry, record_user};
use larder_store::{Database, EventFilter, EventStore, SqlEventStore, StoreOptions};
use std::sync::Arc;
use uuid::Uuid;

use crate::notify::notify_event;
use crate::tests::ctx;
use crate::{App, Request};

struct Shop {
    app: App,
    store: Arc<dyn EventStore>,
    db: Database,
    store_id: StoreId,
    item: ItemId,
    file: std::path::PathBuf,
}

impl Drop for Shop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Shop {
    /// A store with FLOUR (10, threshold 3), and a directory of `maria`
    /// (manager, every store), `mo` (manager of another store), `sam`
    /// (staff) and `root` (admin).
    async fn new() -> anyhow::Result<Self> {
        let file = std::env::temp_dir().join(format!("larder-notify-{}.db", Uuid::new_v4()));
        let sql = SqlEventStore::connect(
            &format!("sqlite://{}", file.display()),
            StoreOptions::default(),
        )
        .await?;
        let db = sql.database();
        larder_projections::migrate(&db).await?;
        let store: Arc<dyn EventStore> = Arc::new(sql);
        let app = App::new(store.clone());
        let store_id = StoreId::new(Uuid::new_v4());
        app.execute(
            &ctx(),
            Request::<StoreState> {
                id: store_id,
                within: None,
                expected: None,
                command: StoreCommand::CreateStore {
                    store_id,
                    tenant: ctx().tenant,
                    name: StoreName::parse("Soho")?,
                },
            },
        )
        .await?;
        let sku = Sku::parse("FLOUR")?;
        let item = ItemId::for_sku(store_id, &sku);
        app.execute(
            &ctx(),
            Request::<ItemState> {
                id: item,
                within: Some(store_id),
                expected: None,
                command: ItemCommand::AddItem {
                    store_id,
                    sku,
                    name: ItemName::parse("Flour")?,
                    unit: Unit::parse("kg")?,
                    quantity: Quantity::parse(10)?,
                    threshold: Threshold::parse(3)?,
                },
            },
        )
        .await?;
        let other = Uuid::new_v4().to_string();
        for (user, role, rank, stores) in [
            ("maria", "manager", 2, None),
            ("mo", "manager", 2, Some(vec![other])),
            ("sam", "staff", 1, None),
            ("root", "admin", 3, None),
        ] {
            let entry = DirectoryEntry {
                tenant: "acme".to_owned(),
                user: user.to_owned(),
                role: role.to_owned(),
                role_rank: rank,
                stores,
            };
            record_user(&db, &entry, chrono::Utc::now()).await?;
        }
        Ok(Self {
            app,
            store,
            db,
            store_id,
            item,
            file,
        })
    }

    async fn adjust(&self, delta: i64) -> anyhow::Result<()> {
        let reason = if delta < 0 {
            AdjustReason::Sold
        } else {
            AdjustReason::Received
        };
        self.app
            .execute(
                &ctx(),
                Request::<ItemState> {
                    id: self.item,
                    within: Some(self.store_id),
                    expected: None,
                    command: ItemCommand::AdjustStock {
                        delta: Delta::parse(delta)?,
                        reason,
                        note: None,
                    },
                },
            )
            .await?;
        Ok(())
    }

    /// Runs the rules over the log from `after` (as the notifier does, in
    /// order); answers the head it reached.
    async fn notify_from(&self, after: u64) -> anyhow::Result<u64> {
        let page = self
            .store
            .read_all(after, 1000, &EventFilter::default())
            .await?;
        let mut head = after;
        for event in &page.events {
            notify_event(&self.app, &self.db, event).await?;
            head = event.position;
        }
        Ok(head)
    }

    async fn inbox(&self, user: &str) -> anyhow::Result<InboxState> {
        let user = UserId::parse(user)?;
        Ok(self.app.inbox(&ctx().tenant, &user).await?.value)
    }

    async fn raised(&self, user: &str) -> anyhow::Result<usize> {
        let user = UserId::parse(user)?;
        let stream = InboxId::of_user(&ctx().tenant, &user).stream_name();
        let events = self.store.read_stream(&stream, 1, 1000).await?;
        Ok(events
            .iter()
            .filter(|e| e.event_type == "NotificationRaised")
            .count())
    }
}

#[tokio::test]
async fn low_stock_notifies_exactly_the_stores_managers_once_however_often_the_log_is_read()
-> anyhow::Result<()> {
    let shop = Shop::new().await?;
    shop.adjust(-8).await?; // low
    shop.notify_from(0).await?;
    assert_eq!(shop.raised("maria").await?, 1);
    assert_eq!(shop.raised("root").await?, 1);
    assert_eq!(shop.raised("mo").await?, 0, "manager of another store");
    assert_eq!(shop.raised("sam").await?, 0, "staff");
    // The whole log again, twice (a replay from an older checkpoint).
    shop.notify_from(0).await?;
    shop.notify_from(0).await?;
    assert_eq!(shop.raised("maria").await?, 1);
    assert_eq!(shop.inbox("maria").await?.unread(), 1);
    Ok(())
}

#[tokio::test]
async fn no_second_low_stock_notification_until_the_item_is_restocked() -> anyhow::Result<()> {
    let shop = Shop::new().await?;
    shop.adjust(-8).await?; // 2: low
    shop.adjust(-2).await?; // 0: out
    shop.adjust(1).await?; // 1: low again
    let head = shop.notify_from(0).await?;
    assert_eq!(
        shop.raised("maria").await?,
        2,
        "low, then out; not low again"
    );
    shop.adjust(20).await?; // 21: restocked
    shop.adjust(-18).await?; // 3: low
    shop.notify_from(head).await?;
    assert_eq!(
        shop.raised("maria").await?,
        3,
        "low again after the restock"
    );
    Ok(())
}

#[tokio::test]
async fn the_waiting_check_finds_nothing_without_kitchen_lines() -> anyhow::Result<()> {
    // Orders left past their threshold are tested end to end, over a real
    // server's clock: tests/realtime/notifications.rs.
    let shop = Shop::new().await?;
    let done = crate::notify::check_waiting(&shop.app, &shop.db, chrono::Utc::now()).await?;
    assert_eq!(done.recipients, 0);
    Ok(())
}
