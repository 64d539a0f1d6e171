//! The one command pipeline: load (cached state, else read and fold the
//! stream), decide, append with the expected version, retry a bounded number
//! of times when another writer got there first, answer with version and
//! position.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use larder_codec::decode;
use larder_domain::TenantId;
use larder_store::EventStore;
use uuid::Uuid;

use crate::aggregate::{Aggregate, EventMeta};
use crate::cache::{StateCache, Turns};
use crate::idempotency::{Answer, parse};
use crate::lane::Lanes;
use crate::{AppError, Context};

/// How often a command without an expected version is tried, at least,
/// before it gives up with a conflict; each retry reloads and decides again,
/// so no update is lost. On one node a stream's commands take turns and
/// rarely race; several nodes on one database do race, and a command may
/// lose a few times in a row while another node's queue of commands goes
/// through.
pub const RETRIES: usize = 20;

/// How long, at least, a command goes on trying after losing races, past
/// [`RETRIES`]: with several nodes writing one hot stream on a loaded
/// database, an append can wait in line long enough for the other nodes to
/// get in first every time, twenty times running. Losing is not an error
/// the caller can fix, so the command keeps its turn a while longer instead
/// of answering 409.
pub const PATIENCE: Duration = Duration::from_secs(5);

/// The longest stream a command loads per read (an item's whole history
/// usually fits in one).
const PAGE: u32 = larder_store::MAX_PAGE_SIZE;

/// A command for one aggregate, with what the pipeline needs around it.
#[derive(Debug, Clone)]
pub struct Request<A: Aggregate> {
    /// The aggregate it is for.
    pub id: A::Id,
    /// The aggregate it lives in ([`Aggregate::Within`]), if it has one.
    pub within: Option<<A::Within as Aggregate>::Id>,
    /// The version the client last saw (`If-Match`): if the stream is
    /// elsewhere the command is refused with a conflict, never retried.
    pub expected: Option<u64>,
    /// What to do.
    pub command: A::Command,
}

/// What a successful command did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The aggregate's id.
    pub id: Uuid,
    /// Its stream.
    pub stream: String,
    /// The stream's version after the command.
    pub version: u64,
    /// Global position of the last event written (the head when nothing was).
    pub position: u64,
    /// The types of the events written, in order (empty: nothing changed).
    pub events: Vec<String>,
    /// Whether this answers again an earlier command with the same
    /// idempotency key (nothing was appended now).
    pub replayed: bool,
}

/// How one attempt ended.
pub(crate) enum Step<T> {
    /// With an answer (or a final error, returned as `Err`).
    Done(T),
    /// Another writer changed a stream it read: wait a moment, try again.
    Lost,
}

/// Runs commands against an event store. Cheap to clone: clones share the
/// state cache and the turns.
#[derive(Clone)]
pub struct App {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) cache: Arc<StateCache>,
    pub(crate) turns: Arc<Turns>,
    pub(crate) lanes: Arc<Lanes>,
    pub(crate) retries: usize,
    pub(crate) patience: Duration,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("retries", &self.retries)
            .field("patience", &self.patience)
            .finish_non_exhaustive()
    }
}

impl App {
    /// Commands over `store`, retried at least [`RETRIES`] times and for at
    /// least [`PATIENCE`].
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self::with_retries(store, RETRIES).patient_for(PATIENCE)
    }

    /// Commands over `store`, tried at most `retries` times each (at least
    /// once), however long that takes.
    pub fn with_retries(store: Arc<dyn EventStore>, retries: usize) -> Self {
        Self {
            store,
            cache: Arc::default(),
            turns: Arc::default(),
            lanes: Arc::default(),
            retries: retries.max(1),
            patience: Duration::ZERO,
        }
    }

    /// Goes on trying a command that loses races, past its retries, until
    /// `patience` has passed since its first try.
    pub fn patient_for(self, patience: Duration) -> Self {
        Self { patience, ..self }
    }

    /// Executes a command on any aggregate: decide on its state (and its
    /// parent's), append with the versions it decided on, retry when another
    /// writer got there first. A refused command appends nothing.
    ///
    /// Commands waiting for the same stream are decided in order and
    /// appended together (see `lane.rs`); each is answered with its own
    /// version and position.
    pub async fn execute<A: Aggregate>(
        &self,
        ctx: &Context,
        request: Request<A>,
    ) -> Result<Outcome, AppError> {
        ctx.accepted();
        // A retry is answered from its key's record before it queues (and
        // even where deciding again would be refused).
        if let Some(record) = self.recorded(ctx).await? {
            return parse::<Answer>(&record).map(|answer| answer.outcome(&record.result));
        }
        self.queue(A::stream_name(request.id), ctx, request).await
    }

    /// A refused command with a key is answered from the key's record if a
    /// copy of it (on another node) stored one meanwhile.
    pub(crate) async fn or_replayed<T>(
        &self,
        ctx: &Context,
        result: Result<T, AppError>,
        replay: impl FnOnce(&larder_store::IdempotencyRecord) -> Result<T, AppError>,
    ) -> Result<T, AppError> {
        match result {
            Err(
                error @ (AppError::Rejected(_)
                | AppError::NotFound(_)
                | AppError::Conflict { .. }
                | AppError::TransferIdReused(_)
                | AppError::IngredientNotInStore(_)
                | AppError::IngredientRemoved(_)),
            ) if ctx.idempotency.is_some() => match self.recorded(ctx).await? {
                Some(record) => replay(&record),
                None => Err(error),
            },
            other => other,
        }
    }

    /// Runs `attempt` until it is done, pausing after each lost race, while
    /// [`App::still_trying`]. Multi-stream commands retry here; a stream's
    /// lane retries its rounds the same way. Out of attempts, the answer is
    /// a conflict on `stream`.
    pub(crate) async fn attempts<'a, T, F, Fut>(
        &self,
        stream: &str,
        attempt: F,
    ) -> Result<T, AppError>
    where
        F: Fn(usize) -> Fut + 'a,
        Fut: Future<Output = Result<Step<T>, AppError>> + 'a,
    {
        let started = tokio::time::Instant::now();
        let mut number = 0;
        while self.still_trying(number, started) {
            match attempt(number).await? {
                Step::Done(answer) => return Ok(answer),
                Step::Lost => pause_after_losing(number).await,
            }
            number += 1;
        }
        tracing::debug!(stream, attempts = number, "command lost every race");
        Err(match self.store.stream_version(stream).await {
            Ok(current_version) => conflict(stream, current_version),
            Err(error) => error.into(),
        })
    }

    /// Whether a command that has lost `attempts` races since `started`
    /// tries again: until it has lost `self.retries` times and
    /// `self.patience` has passed.
    pub(crate) fn still_trying(&self, attempts: usize, started: tokio::time::Instant) -> bool {
        attempts < self.retries || started.elapsed() < self.patience
    }

    /// An aggregate's state and version, if `tenant` owns it.
    pub async fn load<A: Aggregate>(
        &self,
        tenant: &TenantId,
        id: A::Id,
    ) -> Result<(A, u64), AppError> {
        self.owned::<A>(tenant, id, true).await
    }

    pub(crate) async fn owned<A: Aggregate>(
        &self,
        tenant: &TenantId,
        id: A::Id,
        fresh: bool,
    ) -> Result<(A, u64), AppError> {
        let (state, version) = self.state::<A>(&A::stream_name(id), fresh).await?;
        match state.owner() {
            Some(owner) if owner == tenant => Ok((state, version)),
            _ => Err(AppError::NotFound(A::KIND)),
        }
    }

    /// Folds `stream` from its cached state on, and caches the result.
    /// Unless `fresh`, a cached state is used as it is, without reading: the
    /// append's expected version catches it if it was stale, and the command
    /// then decides again on a fresh one.
    pub(crate) async fn state<A: Aggregate>(
        &self,
        stream: &str,
        fresh: bool,
    ) -> Result<(A, u64), AppError> {
        let hit = self.cache.get::<A>(stream);
        if let (false, Some(hit)) = (fresh, &hit) {
            return Ok(hit.clone());
        }
        let (mut state, from) = hit.unwrap_or_default();
        let mut version = from;
        loop {
            let page = self.store.read_stream(stream, version + 1, PAGE).await?;
            let Some(last) = page.last() else { break };
            version = last.version;
            for recorded in &page {
                let meta = EventMeta {
                    id: recorded.id,
                    actor: recorded.metadata.actor.as_deref(),
                };
                state = state.evolve(&decode(recorded)?, meta);
            }
            if page.len() < PAGE as usize {
                break;
            }
        }
        if version > from {
            self.cache.put(stream, state.clone(), version);
        }
        Ok((state, version))
    }
}

pub(crate) fn conflict(stream: &str, current_version: u64) -> AppError {
    AppError::Conflict {
        stream: stream.to_owned(),
        current_version,
    }
}

/// After losing a race, wait a random moment (up to a few milliseconds,
/// growing with each loss) before trying again, so two nodes' commands stop
/// colliding in lockstep.
pub(crate) async fn pause_after_losing(attempt: usize) {
    let most = 1u128 << attempt.min(4);
    // A v4 UUID is 122 random bits: randomness enough for a jitter.
    let micros = Uuid::new_v4().as_u128() % (most * 1000);
    tokio::time::sleep(Duration::from_micros(micros as u64)).await;
}
