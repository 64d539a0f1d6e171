//! Folded states kept between commands, and per-stream turns.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Aggregate states already folded, by stream, with their version. Streams
/// only grow, so a command reads just the events after the cached version
/// (another node may have appended some): its cost does not grow with the
/// stream's length. Any aggregate's state fits: entries are by stream and
/// state type (an item's stream folds to an `ItemState` for its commands
/// and to an `ItemHistory` for undo), downcast to the type asked for.
#[derive(Default)]
pub(crate) struct StateCache {
    entries: Mutex<HashMap<Key, Entry>>,
}

type Key = (String, TypeId);

type Entry = (Arc<dyn Any + Send + Sync>, u64);

/// Most streams cached; past it the cache starts over.
const CACHE_ENTRIES: usize = 20_000;

impl StateCache {
    pub(crate) fn get<S: Clone + 'static>(&self, stream: &str) -> Option<(S, u64)> {
        let key = (stream.to_owned(), TypeId::of::<S>());
        let (state, version) = self.lock().get(&key).cloned()?;
        state
            .downcast_ref::<S>()
            .map(|state| (state.clone(), version))
    }

    pub(crate) fn put<S: Send + Sync + 'static>(&self, stream: &str, state: S, version: u64) {
        let key = (stream.to_owned(), TypeId::of::<S>());
        let mut entries = self.lock();
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        match entries.get_mut(&key) {
            Some(entry) if entry.1 >= version => {}
            Some(entry) => *entry = (Arc::new(state), version),
            None => {
                entries.insert(key, (Arc::new(state), version));
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Commands on one stream take turns on this node: they would otherwise race
/// for the same version and retry. Streams share a turn by hash, so the
/// table stays small.
pub(crate) struct Turns(Box<[tokio::sync::Mutex<()>]>);

const TURNS: usize = 1024;

impl Default for Turns {
    fn default() -> Self {
        Self((0..TURNS).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl Turns {
    pub(crate) async fn take(&self, stream: &str) -> tokio::sync::MutexGuard<'_, ()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(stream);
        self.0[(hash % TURNS as u64) as usize].lock().await
    }
}
