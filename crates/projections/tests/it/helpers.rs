//! A store, a bus and running projections on a fresh database, and a tiny
//! command path (load, fold, decide, append) to produce real domain events.

use std::sync::Arc;
use std::time::Duration;

use larder_bus::{EventBus, InMemoryEventBus};
use larder_domain::{
    AdjustReason, Delta, DomainEvent, ItemCommand, ItemId, ItemName, ItemState, Quantity, Sku,
    StoreCommand, StoreId, StoreName, StoreState, TenantId, Threshold, TransferId, TransferStock,
    Unit, item, store, transfer,
};
use larder_projections::{Projections, ReadModels};
use larder_store::{
    Database, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, SqlEventStore,
    StoreOptions, StreamAppend,
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct World {
    pub store: Arc<SqlEventStore>,
    pub bus: Arc<dyn EventBus<RecordedEvent>>,
    pub projections: Option<Projections>,
    pub db: Database,
    file: Option<std::path::PathBuf>,
    /// The PostgreSQL database and schema this world made, dropped with it.
    schema: Option<(String, String)>,
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(file) = &self.file {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", file.display()));
            }
        }
        if let Some((url, schema)) = &self.schema {
            larder_store::test_support::drop_pg_schema(url, schema);
        }
    }
}

impl World {
    pub async fn new(backend: Backend) -> Self {
        let bus: Arc<dyn EventBus<RecordedEvent>> = Arc::new(InMemoryEventBus::new(1024));
        let (url, options, file, schema) = match backend {
            Backend::Sqlite => {
                let file =
                    std::env::temp_dir().join(format!("larder-projections-{}.db", Uuid::new_v4()));
                (
                    format!("sqlite://{}", file.display()),
                    StoreOptions::default(),
                    Some(file),
                    None,
                )
            }
            Backend::Postgres => {
                let url = std::env::var("LARDER_TEST_DATABASE_URL")
                    .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
                let schema = format!("larder_test_{}", Uuid::new_v4().simple());
                let options = StoreOptions::default().pg_schema(schema.clone());
                (url.clone(), options, None, Some((url, schema)))
            }
        };
        let store = SqlEventStore::connect(&url, options.max_connections(4).bus(bus.clone()))
            .await
            .unwrap_or_else(|e| {
                panic!("cannot open {url}: {e:?} (scripts/test.sh starts PostgreSQL)")
            });
        let db = store.database();
        let store = Arc::new(store);
        let mut world = Self {
            store,
            bus,
            projections: None,
            db,
            file,
            schema,
        };
        world.start().await;
        world
    }

    pub async fn start(&mut self) {
        let store: Arc<dyn EventStore> = self.store.clone();
        self.projections = Some(
            Projections::start(self.db.clone(), store, Some(self.bus.clone()))
                .await
                .unwrap(),
        );
    }

    pub async fn stop(&mut self) {
        if let Some(projections) = self.projections.take() {
            projections.stop().await;
        }
    }

    pub fn read(&self) -> ReadModels {
        self.projections
            .as_ref()
            .expect("projections running")
            .read_models()
    }

    /// Waits until every read model has caught up with the log's head.
    pub async fn settle(&self) -> u64 {
        let head = self.store.head().await.unwrap();
        assert!(
            self.read().wait_for(head, Duration::from_secs(10)).await,
            "read models did not reach position {head}"
        );
        head
    }

    async fn load(&self, stream: &str) -> (Vec<DomainEvent>, u64) {
        let recorded = self.store.read_stream(stream, 1, 10_000).await.unwrap();
        let version = recorded.last().map_or(0, |e| e.version);
        let events = recorded
            .iter()
            .map(|e| {
                DomainEvent::decode_json(&e.event_type, e.schema_version, e.data.json()).unwrap()
            })
            .collect();
        (events, version)
    }

    pub async fn store_state(&self, id: StoreId) -> (StoreState, u64) {
        let (events, version) = self.load(&id.stream_name()).await;
        let state = events.iter().fold(StoreState::default(), |s, e| match e {
            DomainEvent::Store(e) => store::evolve(s, e),
            _ => s,
        });
        (state, version)
    }

    pub async fn item_state(&self, id: ItemId) -> (ItemState, u64) {
        let (events, version) = self.load(&id.stream_name()).await;
        let state = events.iter().fold(ItemState::default(), |s, e| match e {
            DomainEvent::Item(e) => item::evolve(s, e),
            _ => s,
        });
        (state, version)
    }

    pub async fn create_store(&self, tenant: &str, name: &str) -> StoreId {
        let id = StoreId::new(Uuid::new_v4());
        let command = StoreCommand::CreateStore {
            store_id: id,
            tenant: TenantId::parse(tenant).unwrap(),
            name: StoreName::parse(name).unwrap(),
        };
        let events = store::decide(&StoreState::default(), command).unwrap();
        self.append(
            tenant,
            &id.stream_name(),
            ExpectedVersion::NoStream,
            events.into_iter().map(Into::into).collect(),
        )
        .await;
        id
    }

    pub async fn store_command(&self, tenant: &str, id: StoreId, command: StoreCommand) {
        let (state, version) = self.store_state(id).await;
        let events = store::decide(&state, command).unwrap();
        self.append(
            tenant,
            &id.stream_name(),
            ExpectedVersion::Exact(version),
            events.into_iter().map(Into::into).collect(),
        )
        .await;
    }

    pub async fn add_item(
        &self,
        tenant: &str,
        store: StoreId,
        sku: &str,
        quantity: i64,
        threshold: i64,
    ) -> ItemId {
        let sku = Sku::parse(sku).unwrap();
        let id = ItemId::for_sku(store, &sku);
        let command = ItemCommand::AddItem {
            store_id: store,
            name: ItemName::parse(&format!("Item {sku}")).unwrap(),
            sku,
            unit: Unit::parse("each").unwrap(),
            quantity: Quantity::parse(quantity).unwrap(),
            threshold: Threshold::parse(threshold).unwrap(),
        };
        self.item_command(tenant, store, id, command).await;
        id
    }

    pub async fn adjust(&self, tenant: &str, store: StoreId, id: ItemId, delta: i64) {
        let command = ItemCommand::AdjustStock {
            delta: Delta::parse(delta).unwrap(),
            reason: if delta > 0 {
                AdjustReason::Received
            } else {
                AdjustReason::Sold
            },
            note: None,
        };
        self.item_command(tenant, store, id, command).await;
    }

    pub async fn item_command(
        &self,
        tenant: &str,
        store: StoreId,
        id: ItemId,
        command: ItemCommand,
    ) {
        let (store_state, _) = self.store_state(store).await;
        let (state, version) = self.item_state(id).await;
        let events = item::decide(&store_state, &state, id, command).unwrap();
        self.append(
            tenant,
            &id.stream_name(),
            ExpectedVersion::Exact(version),
            events.into_iter().map(Into::into).collect(),
        )
        .await;
    }

    pub async fn transfer(
        &self,
        tenant: &str,
        from: (StoreId, ItemId),
        to: (StoreId, ItemId),
        quantity: i64,
    ) {
        let (from_store, _) = self.store_state(from.0).await;
        let (to_store, _) = self.store_state(to.0).await;
        let (from_item, from_version) = self.item_state(from.1).await;
        let (to_item, to_version) = self.item_state(to.1).await;
        let command = TransferStock {
            transfer_id: TransferId::new(Uuid::new_v4()),
            quantity: Quantity::parse(quantity).unwrap(),
            note: None,
        };
        let (out, into) = transfer::decide(
            &from_store,
            &from_item,
            from.1,
            &to_store,
            &to_item,
            to.1,
            command,
        )
        .unwrap();
        let to_new = |events: Vec<larder_domain::ItemEvent>, store: StoreId, item: ItemId| {
            events
                .into_iter()
                .map(|e| new_event(tenant, Some(store), "item", item.to_string(), &e.into()))
                .collect()
        };
        self.store
            .append_streams(vec![
                StreamAppend::new(
                    from.1.stream_name(),
                    ExpectedVersion::Exact(from_version),
                    to_new(out, from.0, from.1),
                ),
                StreamAppend::new(
                    to.1.stream_name(),
                    ExpectedVersion::Exact(to_version),
                    to_new(into, to.0, to.1),
                ),
            ])
            .await
            .unwrap();
    }

    /// Appends menu or order events to `stream` as their pipeline would;
    /// returns nothing, [`World::settle`] waits for them.
    pub async fn record(&self, tenant: &str, stream: &str, events: Vec<DomainEvent>) {
        self.append(tenant, stream, ExpectedVersion::Any, events)
            .await;
    }

    async fn append(
        &self,
        tenant: &str,
        stream: &str,
        expected: ExpectedVersion,
        events: Vec<DomainEvent>,
    ) {
        let new = events
            .iter()
            .map(|e| {
                let (entity_type, entity_id) = e.entity();
                new_event(tenant, e.store_id(), entity_type, entity_id, e)
            })
            .collect();
        self.store.append(stream, expected, new).await.unwrap();
    }
}

fn new_event(
    tenant: &str,
    store: Option<StoreId>,
    entity_type: &str,
    entity_id: String,
    event: &DomainEvent,
) -> NewEvent {
    NewEvent::new(
        event.event_type(),
        event.schema_version(),
        event.to_data(),
        Metadata {
            tenant: tenant.into(),
            store: store.map(|store| store.to_string()),
            entity_type: entity_type.into(),
            entity_id,
            actor: Some("tester".into()),
            ..Metadata::default()
        },
    )
}
