//! [`Breakers`]: one breaker per key, with bounded memory.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::Config;
use crate::window::Padded;
use crate::{Breaker, BreakerBuilder, BuildError, State};

/// The most shards a registry splits its keys over.
const MAX_SHARDS: usize = 16;

/// Keys a shard should hold at least before the registry splits further.
const MIN_KEYS_PER_SHARD: usize = 64;

/// One shard of the registry's keys, with its own logical clock for
/// least-recently-used eviction (ticked under the shard's lock).
struct Keys<K> {
    map: HashMap<K, Entry>,
    tick: u64,
}

type Shard<K> = Padded<Mutex<Keys<K>>>;

struct Entry {
    breaker: Arc<Breaker>,
    last_used: u64,
}

/// A registry of breakers by key (one per downstream host, say), each made
/// on first use from one configuration.
///
/// Memory is bounded: at most `max_keys` breakers are kept. Large
/// registries split their keys over up to 16 shards (at least 64 keys
/// each), each holding its share (`max_keys / shards`), so lookups of
/// different keys rarely wait on each other; when a shard is
/// full, a new key evicts the least recently used breaker of that shard,
/// preferring one that is closed and held by no caller, so that tripped
/// breakers are forgotten last. A caller still holding an evicted breaker
/// keeps a working breaker; the next lookup of that key makes a fresh one.
///
/// Listeners set on the builder are given to every breaker the registry
/// makes.
///
/// # Examples
///
/// ```
/// use conc_breaker::{Breaker, Breakers, State};
///
/// # fn main() -> Result<(), conc_breaker::BuildError> {
/// let hosts: Breakers<String> = Breakers::new(Breaker::builder().consecutive_failures(2), 1000)?;
/// for _ in 0..2 {
///     hosts.get("db-1").try_acquire().map_err(|_| ()).unwrap().failure();
/// }
/// assert_eq!(hosts.get("db-1").state(), State::Open);
/// assert_eq!(hosts.get("db-2").state(), State::Closed); // other hosts are not affected
/// # Ok(())
/// # }
/// ```
pub struct Breakers<K> {
    /// One lock per shard, taken on lookups: striped, never global.
    shards: Box<[Shard<K>]>,
    per_shard: usize,
    hasher: RandomState,
    config: Config,
    max_keys: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Shard critical sections run no user code (listeners never run under
    // it), so a poisoned map is still consistent.
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl<K: Hash + Eq> Breakers<K> {
    /// A registry keeping at most `max_keys` breakers, each built from
    /// `builder`'s settings.
    ///
    /// # Errors
    ///
    /// [`BuildError::ZeroMaxKeys`] if `max_keys` is 0, or any error
    /// [`BreakerBuilder::build`] reports for the settings.
    pub fn new(builder: BreakerBuilder, max_keys: usize) -> Result<Breakers<K>, BuildError> {
        if max_keys == 0 {
            return Err(BuildError::ZeroMaxKeys);
        }
        let config = builder.validate()?;
        let wanted = (max_keys / MIN_KEYS_PER_SHARD).clamp(1, MAX_SHARDS);
        let shards = 1 << wanted.ilog2();
        Ok(Breakers {
            shards: (0..shards).map(|_| Padded(Mutex::new(Keys { map: HashMap::new(), tick: 0 }))).collect(),
            per_shard: max_keys / shards,
            hasher: RandomState::new(),
            config,
            max_keys,
        })
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &Mutex<Keys<K>> {
        // The shard count is a power of two; the low bits pick one.
        let hash = self.hasher.hash_one(key) as usize;
        &self.shards[hash & (self.shards.len() - 1)]
    }

    /// The breaker for `key`, made now if there is none.
    pub fn get<Q>(&self, key: &Q) -> Arc<Breaker>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        let shard = self.shard(key);
        if let Some(breaker) = lock(shard).touch(key) {
            return breaker;
        }
        // Built outside the lock: making a breaker allocates its window.
        let fresh = Arc::new(Breaker::from_config(self.config.clone()));
        let mut keys = lock(shard);
        if let Some(breaker) = keys.touch(key) {
            return breaker;
        }
        if keys.map.len() >= self.per_shard {
            evict(&mut keys.map);
        }
        let last_used = keys.tick;
        keys.map.insert(key.to_owned(), Entry { breaker: Arc::clone(&fresh), last_used });
        fresh
    }

    /// The breaker for `key`, if the registry has one.
    pub fn get_if_present<Q>(&self, key: &Q) -> Option<Arc<Breaker>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(self.shard(key)).map.get(key).map(|entry| Arc::clone(&entry.breaker))
    }

    /// Forgets the breaker for `key` and returns it.
    pub fn remove<Q>(&self, key: &Q) -> Option<Arc<Breaker>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        lock(self.shard(key)).map.remove(key).map(|entry| entry.breaker)
    }

    /// How many breakers the registry holds.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|shard| lock(shard).map.len()).sum()
    }

    /// Whether the registry holds no breaker.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most breakers the registry keeps.
    pub fn max_keys(&self) -> usize {
        self.max_keys
    }
}

impl<K: Hash + Eq> Keys<K> {
    /// The breaker for `key`, marked as used now, if there is one.
    fn touch<Q>(&mut self, key: &Q) -> Option<Arc<Breaker>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.tick += 1;
        let tick = self.tick;
        let entry = self.map.get_mut(key)?;
        entry.last_used = tick;
        Some(Arc::clone(&entry.breaker))
    }
}

/// Removes the least recently used entry, preferring closed breakers that
/// no caller holds.
fn evict<K: Hash + Eq>(map: &mut HashMap<K, Entry>) {
    let idle =
        |entry: &Entry| Arc::strong_count(&entry.breaker) == 1 && State::of(entry.breaker.load()) == State::Closed;
    let victim = map
        .iter()
        .filter(|(_, entry)| idle(entry))
        .min_by_key(|(_, entry)| entry.last_used)
        .or_else(|| map.iter().min_by_key(|(_, entry)| entry.last_used))
        .map(|(key, _)| key as *const K);
    if let Some(victim) = victim {
        map.retain(|key, _| !std::ptr::eq(key, victim));
    }
}

// As for `Breaker`: shard maps are consistent at every step, and the
// settings' closures are only called, never left half-run.
impl<K: std::panic::RefUnwindSafe> std::panic::RefUnwindSafe for Breakers<K> {}
impl<K: std::panic::UnwindSafe> std::panic::UnwindSafe for Breakers<K> {}

impl<K> fmt::Debug for Breakers<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breakers")
            .field("max_keys", &self.max_keys)
            .field("shards", &self.shards.len())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}
