//! Hot streams: commands on one stream decided together and committed in
//! one append.
//!
//! Commands for a stream queue in its lane. One task at a time, the lane's
//! runner, takes every command waiting, decides them in arrival order on the
//! stream's state in memory (each on the state the ones before it left) and
//! appends all their events in one append, at the version it decided on.
//! While that append commits, new commands queue; the next round takes them
//! all. A stream's rate is then no longer one over a command's latency but
//! a round's size over it, and rounds grow with the load. The runner never
//! waits for delivery: the store answers an append once it is committed and
//! handed to the bus.
//!
//! A round is all or nothing: its events are one append with one expected
//! version, so no command's events can commit on a state that another
//! command of the round, decided before it, did not leave. If another
//! writer (another node) got there first, the whole round is decided again
//! on fresh state, like a single command.
//!
//! Each command's idempotency key, if it has one, is stored in the round's
//! transaction with its own part of the result (its version and position):
//! a retry is answered exactly as if the command had committed alone. A
//! round never holds one key twice; a key some copy of the command stored
//! meanwhile answers that command from its record, and the round is
//! decided again without it. Transfers take the same per-stream turn as a
//! round: the two never interleave on a stream.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use larder_codec::{Entity, encode};
use larder_domain::DomainEvent;
use larder_store::{
    CommandKey, ExpectedVersion, Idempotency, IdempotentAppend, NewEvent, StoreError, StreamAppend,
};
use tokio::sync::oneshot;

use crate::aggregate::{Aggregate, EventMeta};
use crate::idempotency::{Answer, parse, render};
use crate::pipeline::{Outcome, Request, conflict, pause_after_losing};
use crate::{App, AppError, Context};

/// The most commands one round decides: bounds one append's size (and the
/// time one round holds the stream) however long the queue grew.
pub(crate) const MAX_ROUND: usize = 256;

/// How a command is answered.
type Reply = oneshot::Sender<Result<Outcome, AppError>>;

/// A command waiting in a lane.
pub(crate) struct Job<A: Aggregate> {
    pub(crate) ctx: Context,
    pub(crate) request: Request<A>,
    pub(crate) reply: Reply,
}

/// The lanes of the streams with commands waiting or running, by stream
/// and aggregate type (an item's stream has two: its state, and its history
/// for undo; their rounds take the same turn). A lane is dropped when its
/// runner finds it empty.
#[derive(Default)]
pub(crate) struct Lanes {
    lanes: Mutex<HashMap<LaneId, Arc<dyn Any + Send + Sync>>>,
}

type LaneId = (String, TypeId);

fn lane_id<A: Aggregate>(stream: &str) -> LaneId {
    (stream.to_owned(), TypeId::of::<A>())
}

/// One stream's queue.
struct Lane<A: Aggregate> {
    queue: Mutex<Queue<A>>,
}

struct Queue<A: Aggregate> {
    jobs: VecDeque<Job<A>>,
    /// Whether a runner is taking rounds from it.
    running: bool,
}

impl<A: Aggregate> Default for Lane<A> {
    fn default() -> Self {
        Self {
            queue: Mutex::new(Queue {
                jobs: VecDeque::new(),
                running: false,
            }),
        }
    }
}

impl<A: Aggregate> Lane<A> {
    fn lock(&self) -> MutexGuard<'_, Queue<A>> {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Up to [`MAX_ROUND`] waiting commands, in arrival order, stopping
    /// before a key the round already holds (a retry that arrived while its
    /// first try waited: it goes in the next round and is answered from
    /// the first's record). None when the lane is empty, and the runner
    /// stops (under the same lock as the queueing, so a command queued
    /// after this starts a new runner).
    fn round(&self) -> Option<Vec<Job<A>>> {
        let mut queue = self.lock();
        if queue.jobs.is_empty() {
            queue.running = false;
            return None;
        }
        let mut keys = HashSet::new();
        let take = queue
            .jobs
            .iter()
            .take(MAX_ROUND)
            .take_while(|job| match &job.ctx.idempotency {
                Some(key) => keys.insert((job.ctx.tenant.as_str(), key.key.as_str())),
                None => true,
            })
            .count();
        Some(queue.jobs.drain(..take).collect())
    }
}

impl Lanes {
    fn lock(&self) -> MutexGuard<'_, HashMap<LaneId, Arc<dyn Any + Send + Sync>>> {
        self.lanes
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues `job` in `stream`'s lane. Returns the lane when no runner is
    /// taking its rounds: the caller must start one.
    fn enqueue<A: Aggregate>(&self, stream: &str, job: Job<A>) -> Option<Arc<Lane<A>>> {
        let lane = {
            let mut lanes = self.lock();
            let entry = lanes
                .entry(lane_id::<A>(stream))
                .or_insert_with(|| Arc::new(Lane::<A>::default()));
            match Arc::clone(entry).downcast::<Lane<A>>() {
                Ok(lane) => lane,
                // Keyed by type: cannot happen; a fresh lane is as good.
                Err(_) => {
                    let lane = Arc::new(Lane::<A>::default());
                    *entry = lane.clone();
                    lane
                }
            }
        };
        let mut queue = lane.lock();
        queue.jobs.push_back(job);
        if queue.running {
            return None;
        }
        queue.running = true;
        drop(queue);
        Some(lane)
    }

    /// How many commands wait in `stream`'s lane.
    #[cfg(test)]
    pub(crate) fn queued<A: Aggregate>(&self, stream: &str) -> usize {
        let lane = self.lock().get(&lane_id::<A>(stream)).cloned();
        lane.and_then(|lane| lane.downcast::<Lane<A>>().ok())
            .map_or(0, |lane| lane.lock().jobs.len())
    }

    /// Drops `stream`'s lane if it is still `lane` and nothing is queued.
    fn forget<A: Aggregate>(&self, stream: &str, lane: &Arc<Lane<A>>) {
        let mut lanes = self.lock();
        let id = lane_id::<A>(stream);
        let idle = lanes.get(&id).is_some_and(|entry| {
            Arc::ptr_eq(
                &(Arc::clone(entry) as Arc<dyn Any + Send + Sync>),
                &(Arc::clone(lane) as Arc<dyn Any + Send + Sync>),
            ) && {
                let queue = lane.lock();
                queue.jobs.is_empty() && !queue.running
            }
        });
        if idle {
            lanes.remove(&id);
        }
    }
}

/// What one command of a round came to.
enum Decided {
    Refused(AppError),
    /// It changes nothing: answered at the state it was decided on.
    Unchanged {
        version: u64,
        /// Events of the round before it.
        before: usize,
    },
    /// Its events are the round's events up to `end` (after the ones
    /// before it).
    Wrote {
        types: Vec<String>,
        end: usize,
    },
}

/// A round decided: each command's decision, the events to append, the
/// state after them.
struct Round<A> {
    version: u64,
    decided: Vec<Decided>,
    /// The stream's events first, then each parent's version check.
    appends: Vec<StreamAppend>,
    /// The keys of the commands that have one, with their part.
    keys: Vec<CommandKey>,
    next: A,
}

impl<A> Round<A> {
    fn events(&self) -> u64 {
        self.appends[0].events.len() as u64
    }
}

impl App {
    /// Queues a command in its stream's lane and waits for its answer.
    pub(crate) async fn queue<A: Aggregate>(
        &self,
        stream: String,
        ctx: &Context,
        request: Request<A>,
    ) -> Result<Outcome, AppError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            ctx: ctx.clone(),
            request,
            reply,
        };
        if let Some(lane) = self.lanes.enqueue(&stream, job) {
            // The runner is a task of its own: a caller that goes away (its
            // client hung up) must not take the lane's other commands with
            // it.
            let app = self.clone();
            tokio::spawn(async move { app.run_lane(stream, lane).await });
        }
        answer
            .await
            .map_err(|_| AppError::from(StoreError::Closed))?
    }

    async fn run_lane<A: Aggregate>(self, stream: String, lane: Arc<Lane<A>>) {
        loop {
            // The round is taken once the stream's turn is ours: whatever
            // queued while a transfer held it goes in one round.
            let turn = self.turns.take(&stream).await;
            let Some(jobs) = lane.round() else { break };
            self.round(&stream, jobs).await;
            drop(turn);
        }
        self.lanes.forget(&stream, &lane);
    }

    /// Decides and appends one round (the stream's turn held), retrying on
    /// fresh state when another writer got there first; answers every
    /// command of it.
    async fn round<A: Aggregate>(&self, stream: &str, mut jobs: Vec<Job<A>>) {
        let started = tokio::time::Instant::now();
        let mut attempt = 0;
        while self.still_trying(attempt, started) {
            let fresh = attempt > 0;
            let mut round = match self.decide_round(stream, &jobs, fresh).await {
                Ok(Some(round)) => round,
                // Something was refused or unchanged on cached state: decide
                // again on fresh state.
                Ok(None) => {
                    attempt += 1;
                    continue;
                }
                Err(error) => return answer_all(jobs, &error),
            };
            let total = round.events();
            if total == 0 && round.keys.is_empty() {
                let head = match self.store.head().await {
                    Ok(head) => head,
                    Err(error) => return answer_all(jobs, &error.into()),
                };
                return self.answer(stream, jobs, round, head).await;
            }
            // A lost race decides the round again: its appends are not kept.
            let appends = std::mem::take(&mut round.appends);
            let written = if round.keys.is_empty() {
                self.store
                    .append_streams(appends)
                    .await
                    .map(IdempotentAppend::Appended)
            } else {
                let keys = std::mem::take(&mut round.keys);
                self.store.append_keyed(appends, keys).await
            };
            match written {
                Ok(IdempotentAppend::Appended(result)) => {
                    let version = result.version_of(stream).unwrap_or(round.version + total);
                    self.cache.put(stream, round.next.clone(), version);
                    // The round's events hold consecutive positions, the
                    // last at `last_position`.
                    let base = result.last_position - total;
                    return self.answer(stream, jobs, round, base).await;
                }
                // A copy of one command stored its key meanwhile: that
                // command is answered from the record, the others decided
                // again (nothing was appended).
                Ok(IdempotentAppend::Replayed(record)) => {
                    let copy = jobs.iter().position(|job| {
                        job.ctx.tenant.as_str() == record.tenant
                            && job.ctx.idempotency.as_ref().map(|k| k.key.as_str())
                                == Some(record.key.as_str())
                    });
                    let Some(copy) = copy else {
                        let error = StoreError::Invalid(format!(
                            "a round was answered by key {:?}, which none of its commands has",
                            record.key
                        ));
                        return answer_all(jobs, &error.into());
                    };
                    let job = jobs.remove(copy);
                    let _ = job.reply.send(self.replay(&job.ctx, &record));
                    if jobs.is_empty() {
                        return;
                    }
                }
                Err(StoreError::WrongExpectedVersion { .. }) => {
                    pause_after_losing(attempt).await;
                    attempt += 1;
                }
                Err(error) => return answer_all(jobs, &error.into()),
            }
        }
        tracing::debug!(stream, attempts = attempt, "a round lost every race");
        let error = match self.store.stream_version(stream).await {
            Ok(version) => conflict(stream, version),
            Err(error) => error.into(),
        };
        answer_all(jobs, &error);
    }

    /// The answer a command's key stored, if the command is a retry of the
    /// one that stored it.
    fn replay(
        &self,
        ctx: &Context,
        record: &larder_store::IdempotencyRecord,
    ) -> Result<Outcome, AppError> {
        match &ctx.idempotency {
            Some(key) if record.matches(&key.fingerprint) => {
                parse::<Answer>(record).map(|answer| answer.outcome(&record.result))
            }
            _ => Err(AppError::IdempotencyKeyReused(record.key.clone())),
        }
    }

    /// Answers each command of a round; `base` is the position before its
    /// first event. A refused command with a key is answered from its
    /// record if a copy of it (on another node) stored one meanwhile.
    async fn answer<A: Aggregate>(
        &self,
        stream: &str,
        jobs: Vec<Job<A>>,
        round: Round<A>,
        base: u64,
    ) {
        for (job, decided) in jobs.into_iter().zip(round.decided) {
            let outcome = |version: u64, end: usize, events: Vec<String>| Outcome {
                id: A::uuid(job.request.id),
                stream: stream.to_owned(),
                version,
                position: base + end as u64,
                events,
                replayed: false,
            };
            let result = match decided {
                Decided::Refused(error) => {
                    let replay = |record: &larder_store::IdempotencyRecord| {
                        parse::<Answer>(record).map(|answer| answer.outcome(&record.result))
                    };
                    self.or_replayed(&job.ctx, Err(error), replay).await
                }
                Decided::Unchanged { version, before } => Ok(outcome(version, before, Vec::new())),
                Decided::Wrote { types, end } => {
                    Ok(outcome(round.version + end as u64, end, types))
                }
            };
            // The caller may have gone away; its command stands.
            let _ = job.reply.send(result);
        }
    }

    /// Decides every command of a round in order, each on the state the
    /// ones before it left. `None`: on cached state, something was refused
    /// or changed nothing, which fresh state may decide otherwise.
    async fn decide_round<A: Aggregate>(
        &self,
        stream: &str,
        jobs: &[Job<A>],
        fresh: bool,
    ) -> Result<Option<Round<A>>, AppError> {
        let (mut state, version) = self.state::<A>(stream, fresh).await?;
        let mut parents: Vec<Parent<A::Within>> = Vec::new();
        let mut decided = Vec::with_capacity(jobs.len());
        let mut events: Vec<NewEvent> = Vec::with_capacity(jobs.len());
        let mut keys = Vec::new();
        for job in jobs {
            let (ctx, request) = (&job.ctx, &job.request);
            let at = version + events.len() as u64;
            let parent = match request.within {
                Some(id) => Some(self.parent(&mut parents, id, fresh).await?),
                None => None,
            };
            let outcome = match parent.map(|index| &parents[index]) {
                Some(parent) if parent.state.owner() != Some(&ctx.tenant) => {
                    Err(AppError::NotFound(<A::Within as Aggregate>::KIND))
                }
                _ if parent.is_none()
                    && !A::creates(&request.command)
                    && state.owner() != Some(&ctx.tenant) =>
                {
                    Err(AppError::NotFound(A::KIND))
                }
                _ if request.expected.is_some_and(|expected| expected != at) => {
                    Err(conflict(stream, at))
                }
                parent => {
                    let within = parent.as_ref().map(|parent| &parent.state);
                    A::decide(within, &state, request.id, request.command.clone())
                        .map_err(Into::into)
                }
            };
            let before = events.len();
            match outcome {
                Ok(new) if !new.is_empty() => {
                    let new: Vec<DomainEvent> = new.into_iter().map(Into::into).collect();
                    let origin = ctx.origin();
                    let types: Vec<String> =
                        new.iter().map(|e| e.event_type().to_owned()).collect();
                    let through = before + new.len();
                    keys.extend(key_of::<A>(ctx, stream, request.id, &types, through)?);
                    for event in &new {
                        let encoded = encode(event, &origin, Entity::of(event));
                        let meta = EventMeta {
                            id: encoded.id,
                            actor: Some(&ctx.actor),
                        };
                        state = state.evolve(event, meta);
                        events.push(encoded);
                    }
                    if let Some(index) = parent {
                        parents[index].used = true;
                    }
                    decided.push(Decided::Wrote {
                        types,
                        end: events.len(),
                    });
                }
                _ if !fresh => return Ok(None),
                Ok(_) => {
                    // Its key is stored all the same, answering with the
                    // state it was decided on.
                    keys.extend(key_of::<A>(ctx, stream, request.id, &[], before)?);
                    decided.push(Decided::Unchanged {
                        version: at,
                        before,
                    });
                }
                Err(error) => decided.push(Decided::Refused(error)),
            }
        }
        let mut appends = vec![StreamAppend::new(
            stream,
            ExpectedVersion::Exact(version),
            events,
        )];
        // A parent a command decided on must not change before the round
        // commits (a store closed meanwhile refuses its items' commands).
        for parent in parents.into_iter().filter(|parent| parent.used) {
            appends.push(StreamAppend::new(
                parent.stream,
                ExpectedVersion::Exact(parent.version),
                vec![],
            ));
        }
        Ok(Some(Round {
            version,
            decided,
            appends,
            keys,
            next: state,
        }))
    }

    /// The index in `parents` of the parent `id`, loaded on first use.
    async fn parent<P: Aggregate>(
        &self,
        parents: &mut Vec<Parent<P>>,
        id: P::Id,
        fresh: bool,
    ) -> Result<usize, AppError> {
        let stream = P::stream_name(id);
        if let Some(index) = parents.iter().position(|parent| parent.stream == stream) {
            return Ok(index);
        }
        let (state, version) = self.state::<P>(&stream, fresh).await?;
        parents.push(Parent {
            stream,
            state,
            version,
            used: false,
        });
        Ok(parents.len() - 1)
    }
}

/// A parent aggregate some command of a round lives in.
struct Parent<P> {
    stream: String,
    state: P,
    version: u64,
    /// Whether a command that wrote decided on it.
    used: bool,
}

/// The key to store for a command of a round, if it has one: what to
/// answer a retry with, and which of the round's events are its.
fn key_of<A: Aggregate>(
    ctx: &Context,
    stream: &str,
    id: A::Id,
    types: &[String],
    through: usize,
) -> Result<Option<CommandKey>, AppError> {
    let Some(key) = &ctx.idempotency else {
        return Ok(None);
    };
    let answer = Answer {
        id: A::uuid(id),
        stream: stream.to_owned(),
        events: types.to_vec(),
    };
    Ok(Some(CommandKey {
        idempotency: Idempotency {
            tenant: ctx.tenant.as_str().to_owned(),
            key: key.key.clone(),
            fingerprint: key.fingerprint.clone(),
            status: key.status,
            response: render(&answer)?,
        },
        through: Some(through),
    }))
}

fn answer_all<A: Aggregate>(jobs: Vec<Job<A>>, error: &AppError) {
    for job in jobs {
        let _ = job.reply.send(Err(error.clone()));
    }
}
