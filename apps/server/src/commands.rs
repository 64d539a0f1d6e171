//! Command handling: load the stream, fold it, decide, append with the
//! expected version; on a concurrent change, retry or report a conflict.
//!
//! The rules are the domain's; this module only orchestrates them against
//! the event store, and checks the tenant owns what it touches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use larder_domain::{
    DomainError, DomainEvent, ItemCommand, ItemId, ItemState, StoreCommand, StoreId, StoreState,
    TenantId, item, store,
};
use larder_store::{
    EventData, EventStore, ExpectedVersion, Metadata, NewEvent, RecordedEvent, StoreError,
    StreamAppend,
};
use uuid::Uuid;

mod transfer;

/// Why a command did not take effect. Nothing was appended.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A domain rule refused it.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// The target does not exist or belongs to another tenant.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The client's expected version is stale.
    #[error("{stream} is at version {current_version}")]
    Conflict {
        stream: String,
        current_version: u64,
    },
    /// A transfer id already names a transfer of other items or quantity.
    #[error("transfer {0} was already made with other items or another quantity")]
    TransferIdReused(Uuid),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who issues a command, for event metadata.
#[derive(Debug, Clone)]
pub struct Actor {
    pub tenant: TenantId,
    pub user: String,
    /// The login session (token `sid` claim), shared by all tabs of a sign-in.
    pub session: Option<String>,
    pub correlation_id: Uuid,
}

/// What a successful command did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The aggregate's id.
    pub id: Uuid,
    /// Its stream and version after the command.
    pub stream: String,
    pub version: u64,
    /// Global position of the last event written.
    pub position: u64,
    /// The types of the events written, in order.
    pub events: Vec<&'static str>,
}

/// How often a command without an expected version is tried before it gives
/// up with a conflict; each retry reloads and decides again, so no update is
/// lost. On one server an item's commands take turns and rarely race; several
/// servers on one database do race, and a command may lose a few times in a
/// row while another server's queue of commands goes through.
const RETRIES: usize = 20;

/// After losing a race, wait a random moment (up to a few milliseconds,
/// growing with each loss) before trying again, so two servers' commands
/// stop colliding in lockstep.
async fn pause_after_losing(attempt: usize) {
    let most = 1u128 << attempt.min(4);
    // A v4 UUID is 122 random bits: randomness enough for a jitter.
    let micros = Uuid::new_v4().as_u128() % (most * 1000);
    tokio::time::sleep(std::time::Duration::from_micros(micros as u64)).await;
}

/// The longest stream a command loads (an item's whole history).
const MAX_STREAM: u32 = larder_store::MAX_PAGE_SIZE;

/// Aggregate states already folded, by stream, with their version. Streams
/// only grow, so a command reads just the events after the cached version
/// (another node may have appended some): its cost does not grow with the
/// stream's length.
#[derive(Default)]
struct StateCache {
    entries: Mutex<HashMap<String, (Folded, u64)>>,
}

#[derive(Clone)]
enum Folded {
    Store(StoreState),
    Item(ItemState),
}

/// Most streams cached; past it the cache starts over.
const CACHE_ENTRIES: usize = 20_000;

impl StateCache {
    fn get(&self, stream: &str) -> Option<(Folded, u64)> {
        self.lock().get(stream).cloned()
    }

    fn put(&self, stream: &str, state: Folded, version: u64) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(stream) {
            entries.clear();
        }
        match entries.get_mut(stream) {
            Some(entry) if entry.1 >= version => {}
            Some(entry) => *entry = (state, version),
            None => {
                entries.insert(stream.to_owned(), (state, version));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Folded, u64)>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Item commands on one stream take turns on this server: they would
/// otherwise race for the same version and retry. Streams share a turn by
/// hash, so the table stays small.
struct Turns(Box<[tokio::sync::Mutex<()>]>);

const TURNS: usize = 1024;

impl Default for Turns {
    fn default() -> Self {
        Self((0..TURNS).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl Turns {
    async fn take(&self, stream: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(stream);
        self.0[(hash % TURNS as u64) as usize].lock().await
    }
}

#[derive(Clone)]
pub struct Commands {
    store: Arc<dyn EventStore>,
    cache: Arc<StateCache>,
    turns: Arc<Turns>,
}

impl std::fmt::Debug for Commands {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Commands").finish_non_exhaustive()
    }
}

impl Commands {
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            cache: Arc::default(),
            turns: Arc::default(),
        }
    }

    /// The events of `stream` after version `after`, and its version.
    async fn load(
        &self,
        stream: &str,
        after: u64,
    ) -> Result<(Vec<DomainEvent>, u64), CommandError> {
        let mut events = Vec::new();
        let mut version = after;
        loop {
            let page = self
                .store
                .read_stream(stream, version + 1, MAX_STREAM)
                .await?;
            let Some(last) = page.last() else { break };
            version = last.version;
            let full = page.len() == MAX_STREAM as usize;
            for recorded in &page {
                events.push(decode(recorded)?);
            }
            if !full {
                break;
            }
        }
        Ok((events, version))
    }

    /// Folds `stream` from its cached state on, and caches the result.
    /// Unless `fresh`, a cached state is used as it is, without reading: the
    /// append's expected version catches it if it was stale, and the command
    /// then decides again on a fresh one.
    async fn fold<S: Clone + Default>(
        &self,
        stream: &str,
        fresh: bool,
        cached: fn(Folded) -> Option<S>,
        wrap: fn(S) -> Folded,
        evolve: fn(S, &DomainEvent) -> S,
    ) -> Result<(S, u64), CommandError> {
        let hit = self
            .cache
            .get(stream)
            .and_then(|(folded, version)| cached(folded).map(|state| (state, version)));
        if let (false, Some(hit)) = (fresh, &hit) {
            return Ok(hit.clone());
        }
        let (state, from) = hit.unwrap_or_default();
        let (events, version) = self.load(stream, from).await?;
        let state = events.iter().fold(state, evolve);
        if version > from {
            self.cache.put(stream, wrap(state.clone()), version);
        }
        Ok((state, version))
    }

    /// A store's state and version, if it belongs to `tenant`.
    pub async fn store_state(
        &self,
        tenant: &TenantId,
        id: StoreId,
    ) -> Result<(StoreState, u64), CommandError> {
        self.store_state_from(tenant, id, true).await
    }

    async fn store_state_from(
        &self,
        tenant: &TenantId,
        id: StoreId,
        fresh: bool,
    ) -> Result<(StoreState, u64), CommandError> {
        let (state, version) = self
            .fold(
                &id.stream_name(),
                fresh,
                |folded| match folded {
                    Folded::Store(state) => Some(state),
                    Folded::Item(_) => None,
                },
                Folded::Store,
                |state, event| match event {
                    DomainEvent::Store(event) => store::evolve(state, event),
                    DomainEvent::Item(_) => state,
                },
            )
            .await?;
        match state.tenant() {
            Some(owner) if owner == tenant => Ok((state, version)),
            _ => Err(CommandError::NotFound("store")),
        }
    }

    async fn item_state(&self, id: ItemId, fresh: bool) -> Result<(ItemState, u64), CommandError> {
        self.fold(
            &id.stream_name(),
            fresh,
            |folded| match folded {
                Folded::Item(state) => Some(state),
                Folded::Store(_) => None,
            },
            Folded::Item,
            |state, event| match event {
                DomainEvent::Item(event) => item::evolve(state, event),
                DomainEvent::Store(_) => state,
            },
        )
        .await
    }

    /// Creates a store.
    pub async fn create_store(
        &self,
        actor: &Actor,
        command: StoreCommand,
    ) -> Result<Outcome, CommandError> {
        let StoreCommand::CreateStore { store_id, .. } = &command else {
            return Err(CommandError::NotFound("store"));
        };
        let store_id = *store_id;
        let events = store::decide(&StoreState::default(), command)?;
        let stream = store_id.stream_name();
        let new = to_new_events(
            actor,
            store_id,
            "store",
            store_id.as_uuid(),
            events.into_iter().map(Into::into),
        );
        match self
            .store
            .append(&stream, ExpectedVersion::NoStream, new.events.clone())
            .await
        {
            Ok(result) => Ok(new.outcome(
                store_id.as_uuid(),
                stream,
                result.version(),
                result.last_position,
            )),
            Err(StoreError::WrongExpectedVersion { .. }) => {
                Err(DomainError::StoreAlreadyExists { store_id }.into())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Renames or closes a store.
    pub async fn store_command(
        &self,
        actor: &Actor,
        store_id: StoreId,
        expected: Option<u64>,
        command: StoreCommand,
    ) -> Result<Outcome, CommandError> {
        let stream = store_id.stream_name();
        for attempt in 0..RETRIES {
            let (state, version) = self.store_state(&actor.tenant, store_id).await?;
            check_expected(&stream, expected, version)?;
            let events = store::decide(&state, command.clone())?;
            if events.is_empty() {
                return Ok(Outcome::unchanged(
                    store_id.as_uuid(),
                    stream,
                    version,
                    self.store.head().await?,
                ));
            }
            let new = to_new_events(
                actor,
                store_id,
                "store",
                store_id.as_uuid(),
                events.into_iter().map(Into::into),
            );
            match self
                .store
                .append(&stream, ExpectedVersion::Exact(version), new.events.clone())
                .await
            {
                Ok(result) => {
                    return Ok(new.outcome(
                        store_id.as_uuid(),
                        stream,
                        result.version(),
                        result.last_position,
                    ));
                }
                Err(StoreError::WrongExpectedVersion { .. }) if expected.is_none() => {
                    pause_after_losing(attempt).await;
                }
                Err(StoreError::WrongExpectedVersion { actual, .. }) => {
                    return Err(CommandError::Conflict {
                        stream,
                        current_version: actual,
                    });
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(self.lost_race(&stream).await)
    }

    /// Runs an item command (adding an item included) for an item of a store
    /// of the actor's tenant. The store's version is checked in the same
    /// append, so a store closed meanwhile refuses the command.
    pub async fn item_command(
        &self,
        actor: &Actor,
        store_id: StoreId,
        item_id: ItemId,
        expected: Option<u64>,
        command: ItemCommand,
    ) -> Result<Outcome, CommandError> {
        let stream = item_id.stream_name();
        let _turn = self.turns.take(&stream).await;
        for attempt in 0..RETRIES {
            // The first attempt decides on cached states; anything it would
            // refuse or not change is checked again on fresh ones.
            let fresh = attempt > 0;
            let (store_state, store_version) = self
                .store_state_from(&actor.tenant, store_id, fresh)
                .await?;
            let (state, version) = self.item_state(item_id, fresh).await?;
            if !fresh && expected.is_some_and(|expected| expected != version) {
                continue;
            }
            check_expected(&stream, expected, version)?;
            let events = match item::decide(&store_state, &state, item_id, command.clone()) {
                Ok(events) if !events.is_empty() => events,
                _ if !fresh => continue,
                Ok(_) => {
                    return Ok(Outcome::unchanged(
                        item_id.as_uuid(),
                        stream,
                        version,
                        self.store.head().await?,
                    ));
                }
                Err(error) => return Err(error.into()),
            };
            let next = events.iter().fold(state, item::evolve);
            let new = to_new_events(
                actor,
                store_id,
                "item",
                item_id.as_uuid(),
                events.into_iter().map(Into::into),
            );
            let appends = vec![
                StreamAppend::new(
                    stream.clone(),
                    ExpectedVersion::Exact(version),
                    new.events.clone(),
                ),
                StreamAppend::new(
                    store_id.stream_name(),
                    ExpectedVersion::Exact(store_version),
                    vec![],
                ),
            ];
            match self.store.append_streams(appends).await {
                Ok(result) => {
                    let version = result.version_of(&stream).unwrap_or(version);
                    self.cache.put(&stream, Folded::Item(next), version);
                    return Ok(new.outcome(
                        item_id.as_uuid(),
                        stream,
                        version,
                        result.last_position,
                    ));
                }
                Err(StoreError::WrongExpectedVersion {
                    stream: lost,
                    actual,
                    ..
                }) => {
                    // Only a stale version the client sent is its conflict;
                    // anything else changed under us: decide again.
                    if lost == stream && expected.is_some() {
                        return Err(CommandError::Conflict {
                            stream,
                            current_version: actual,
                        });
                    }
                    pause_after_losing(attempt).await;
                }
                Err(error) => return Err(error.into()),
            }
        }
        Err(self.lost_race(&stream).await)
    }

    /// The store an item belongs to, if it exists and belongs to `tenant`.
    pub async fn item_store(
        &self,
        tenant: &TenantId,
        item_id: ItemId,
    ) -> Result<StoreId, CommandError> {
        // Which store an item belongs to and which tenant a store belongs to
        // never change: cached states answer.
        // Another tenant's item answers exactly like one that does not exist.
        let (state, _) = self.item_state(item_id, false).await?;
        let store_id = state.store_id().ok_or(CommandError::NotFound("item"))?;
        match self.store_state_from(tenant, store_id, false).await {
            Err(CommandError::NotFound(_)) => Err(CommandError::NotFound("item")),
            other => other.map(|_| store_id),
        }
    }

    async fn lost_race(&self, stream: &str) -> CommandError {
        match self.store.stream_version(stream).await {
            Ok(current_version) => CommandError::Conflict {
                stream: stream.to_owned(),
                current_version,
            },
            Err(error) => error.into(),
        }
    }
}

fn decode(recorded: &RecordedEvent) -> Result<DomainEvent, CommandError> {
    DomainEvent::decode_json(
        &recorded.event_type,
        recorded.schema_version,
        recorded.data.json(),
    )
    .map_err(|e| {
        CommandError::Store(StoreError::Corrupt {
            position: recorded.position,
            reason: e.to_string(),
        })
    })
}

fn check_expected(stream: &str, expected: Option<u64>, version: u64) -> Result<(), CommandError> {
    match expected {
        Some(expected) if expected != version => Err(CommandError::Conflict {
            stream: stream.to_owned(),
            current_version: version,
        }),
        _ => Ok(()),
    }
}

struct NewEvents {
    events: Vec<NewEvent>,
    types: Vec<&'static str>,
}

impl NewEvents {
    fn outcome(&self, id: Uuid, stream: String, version: u64, position: u64) -> Outcome {
        Outcome {
            id,
            stream,
            version,
            position,
            events: self.types.clone(),
        }
    }
}

impl Outcome {
    fn unchanged(id: Uuid, stream: String, version: u64, position: u64) -> Self {
        Self {
            id,
            stream,
            version,
            position,
            events: Vec::new(),
        }
    }
}

fn to_new_events(
    actor: &Actor,
    store_id: StoreId,
    entity_type: &str,
    entity_id: Uuid,
    events: impl Iterator<Item = DomainEvent>,
) -> NewEvents {
    let mut types = Vec::new();
    let events = events
        .map(|event| {
            types.push(event.event_type());
            NewEvent::new(
                event.event_type(),
                event.schema_version(),
                EventData::from_json(event.to_data_json())
                    .expect("domain events serialise to JSON (checked by the domain's tests)"),
                Metadata {
                    tenant: actor.tenant.as_str().to_owned(),
                    store: Some(store_id.to_string()),
                    entity_type: entity_type.to_owned(),
                    entity_id: entity_id.to_string(),
                    actor: Some(actor.user.clone()),
                    correlation_id: Some(actor.correlation_id),
                    causation_id: None,
                    session: actor.session.clone(),
                },
            )
        })
        .collect();
    NewEvents { events, types }
}
