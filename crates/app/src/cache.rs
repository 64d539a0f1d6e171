//! Folded states kept between commands, and per-stream turns.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// Aggregate states already folded, by stream, with their version. Streams
/// only grow, so a command reads just the events after the cached version
/// (another node may have appended some): its cost does not grow with the
/// stream's length. Any aggregate's state fits: the entry is downcast to the
/// type asked for.
#[derive(Default)]
pub(crate) struct StateCache {
    entries: Mutex<HashMap<String, Entry>>,
}

type Entry = (Arc<dyn Any + Send + Sync>, u64);

/// Most streams cached; past it the cache starts over.
const CACHE_ENTRIES: usize = 20_000;

impl StateCache {
    pub(crate) fn get<S: Clone + 'static>(&self, stream: &str) -> Option<(S, u64)> {
        let (state, version) = self.lock().get(stream).cloned()?;
        state
            .downcast_ref::<S>()
            .map(|state| (state.clone(), version))
    }

    pub(crate) fn put<S: Send + Sync + 'static>(&self, stream: &str, state: S, version: u64) {
        let mut entries = self.lock();
        if entries.len() >= CACHE_ENTRIES && !entries.contains_key(stream) {
            entries.clear();
        }
        match entries.get_mut(stream) {
            Some(entry) if entry.1 >= version => {}
            Some(entry) => *entry = (Arc::new(state), version),
            None => {
                entries.insert(stream.to_owned(), (Arc::new(state), version));
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
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
