//! [`Keyed`]: one limiter per key, in sharded maps with bounded memory.
//!
//! **Invariant:** the hit path (a key already present) takes one shard's
//! read lock and then the key's own limiter check (an atomic word for a
//! [`Gcra`](crate::Gcra)); write locks, one shard at a time, are taken only
//! to insert or evict keys. No lock is global: callers on keys in different
//! shards never touch the same lock word.
//!
//! **Invariant:** `len` counts the keys stored; it only changes under the
//! write lock of the shard that gains or loses the key, and never exceeds
//! `max_keys`.

mod lookup;
mod wait;

#[cfg(all(test, not(conc_loom)))]
mod tests;

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasher, Hash, RandomState};
use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Instant;

use self::lookup::{BuildPassThrough, Lookup, Slot};
pub use self::wait::KeyedWaitError;
use crate::{ConfigError, Denied, Limiter};

/// At most this many shards: the shard index is taken from 16 bits of the
/// hash that the shard maps do not use for their buckets.
const MAX_SHARDS: usize = 1 << 16;

/// A shard is swept of idle keys when it grows to this many, at least.
const MIN_SWEEP_LEN: usize = 64;

/// After a sweep of every shard that freed nothing, sweeping waits this many
/// nanoseconds per key stored, so that a flood of new keys against a full,
/// busy limiter costs a bounded share of the time (a sweep visits a key in a
/// few nanoseconds).
const SWEEP_PAUSE_NANOS_PER_KEY: u64 = 100;

/// Why a keyed check did not admit the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyedError {
    /// The key's limiter denied them (see [`Denied`]).
    #[error(transparent)]
    Denied(#[from] Denied),
    /// The key is new, `max_keys` keys are stored and none of them is idle,
    /// so the new key is rejected rather than let memory grow or forget a
    /// key's state (fail closed).
    #[error("too many keys (at most {max}) and none idle to evict")]
    TooManyKeys {
        /// The configured `max_keys`.
        max: usize,
    },
}

impl KeyedError {
    /// The limiter's [`Denied`], if that is why.
    pub fn denied(&self) -> Option<Denied> {
        match self {
            KeyedError::Denied(denied) => Some(*denied),
            KeyedError::TooManyKeys { .. } => None,
        }
    }

    /// Whether the key was rejected because `max_keys` keys, none idle,
    /// are stored.
    pub fn is_too_many_keys(&self) -> bool {
        matches!(self, KeyedError::TooManyKeys { .. })
    }

    /// When to retry, if the key's limiter said so; `None` if retrying at a
    /// known instant cannot help.
    pub fn retry_at(&self) -> Option<Instant> {
        self.denied().and_then(|denied| denied.retry_at())
    }
}

/// One rate limiter per key (client id, IP address, tenant), all with the
/// settings of a template limiter, in sharded maps with bounded memory.
///
/// Any [`Limiter`] works as the template: [`Gcra`](crate::Gcra) (the
/// fastest, one atomic word of state per key), [`TokenBucket`](crate::TokenBucket)
/// or [`SlidingWindow`](crate::SlidingWindow). A key seen for the first time
/// gets a fresh limiter ([`Limiter::fresh_at`]).
///
/// # Memory
///
/// A key whose limiter is idle (its state carries no information: a fresh
/// limiter would decide exactly the same) can be dropped without changing
/// any decision. Idle keys are evicted:
///
/// - when a new key finds its shard at the larger of its share of
///   `max_keys` (at least 64 keys) and twice its size after its previous
///   sweep, that shard is swept: it drops the keys that were idle at that
///   previous sweep and still are (a second chance, so keys that come back
///   often are not dropped and stored again over and over). The cost is
///   amortized over the inserts, and memory follows the number of *active*
///   keys, also without `max_keys`;
/// - when `max_keys` keys are stored and a new key arrives: every shard is
///   swept; if none of the stored keys is idle, the new key is **rejected**
///   with [`KeyedError::TooManyKeys`] (fail closed: forgetting an active
///   key would let it start over with a full burst). After such a fruitless
///   sweep, new keys are rejected without sweeping again for a pause that
///   grows with the number of keys (100 ns a key), so a flood of new keys
///   cannot make every check pay a full sweep;
/// - on demand, with [`evict_idle`](Keyed::evict_idle).
///
/// A key that carries state is never evicted. A new key whose first check
/// is denied, or leaves its limiter idle, is not stored at all.
///
/// # Concurrency
///
/// Keys are spread over shards (a power of two, by default four per CPU)
/// by a `RandomState` hash, computed once per check. Each shard is a map
/// behind its own `RwLock`: a check on a known key takes the read lock and
/// then the key's limiter, so checks on different keys run in parallel and
/// checks on one key race only on that limiter. Inserting and evicting take
/// one shard's write lock at a time.
///
/// With a [`Gcra`](crate::Gcra) template, a caller can also wait for its
/// key ([`until_ready`](Keyed::until_ready) and its forms); with other
/// templates, check and sleep until [`KeyedError::retry_at`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use conc_core::{Clock, ManualClock};
/// use conc_limit::{Gcra, Keyed, Rate};
///
/// let clock = ManualClock::new();
/// let per_client = Gcra::with_clock(Rate::per_second(1.0)?, 2, clock.clone())?;
/// let limits = Keyed::builder(per_client).max_keys(10_000).build()?;
///
/// assert!(limits.check(&"alice").is_ok());
/// assert!(limits.check(&"alice").is_ok());
/// let denied = limits.check(&"alice").unwrap_err(); // alice spent her burst...
/// assert_eq!(denied.retry_at(), Some(clock.now() + Duration::from_secs(1)));
/// assert!(limits.check(&"bob").is_ok()); // ...bob has his own
/// assert_eq!(limits.len(), 2);
///
/// clock.advance(Duration::from_secs(2)); // both are full again: idle
/// assert_eq!(limits.evict_idle(), 2);
/// assert!(limits.is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Keyed<K, L> {
    /// What every new key's limiter is made from; reconfigured along with
    /// every stored key.
    template: L,
    shards: Box<[Shard<K, L>]>,
    /// `shards.len() - 1`.
    shard_mask: usize,
    hasher: RandomState,
    /// `usize::MAX`: no bound.
    max_keys: usize,
    /// The least length at which a shard is swept before an insert.
    min_sweep_len: usize,
    /// Keys stored, in all shards.
    len: AtomicUsize,
    /// The instant `sweep_pause_until` counts from.
    origin: Instant,
    /// Nanoseconds after `origin` before which a full limiter does not sweep
    /// again, after a sweep that freed nothing.
    sweep_pause_until: AtomicU64,
    /// Serializes [`reconfigure`](Keyed::reconfigure) calls (cold path).
    reconfiguring: Mutex<()>,
}

/// One shard: its own lock, on its own cache lines, so that the lock words
/// of two shards never share a line.
#[repr(align(128))]
struct Shard<K, L> {
    /// Per-shard lock (not global): guards this shard's keys only.
    map: RwLock<ShardMap<K, L>>,
}

struct ShardMap<K, L> {
    entries: HashMap<Slot<K>, Entry<L>, BuildPassThrough>,
    /// Sweep before an insert once `entries` is this long.
    sweep_at_len: usize,
}

/// A stored key's limiter.
struct Entry<L> {
    limiter: L,
    /// Whether the limiter was idle at the shard's previous sweep.
    idle_at_last_sweep: bool,
}

/// Which idle keys a sweep drops.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sweep {
    /// Those also idle at the previous sweep: a shard that grows drops the
    /// keys that stayed quiet, not those that come back often and happened
    /// to be idle at that moment, which would be stored again and again.
    SecondChance,
    /// Every idle key: to make room, or on demand.
    AllIdle,
}

/// Builds a [`Keyed`] with a `max_keys` bound or a shard count; made by
/// [`Keyed::builder`].
pub struct KeyedBuilder<K, L> {
    template: L,
    max_keys: Option<usize>,
    shards: Option<usize>,
    _keys: PhantomData<fn(K)>,
}

impl<K, L> KeyedBuilder<K, L>
where
    K: Hash + Eq,
    L: Limiter,
{
    /// At most `max_keys` keys are stored at once; see [`Keyed`] for what
    /// happens when a new key arrives while that many are stored. No bound
    /// by default (idle keys are still evicted as shards grow).
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = Some(max_keys);
        self
    }

    /// Spreads the keys over `shards` maps, each behind its own lock: a
    /// power of two, at most 65,536. By default four per CPU, rounded up
    /// to a power of two.
    pub fn shards(mut self, shards: usize) -> Self {
        self.shards = Some(shards);
        self
    }

    /// The keyed limiter.
    ///
    /// # Errors
    ///
    /// [`ConfigError::ZeroMaxKeys`] for `max_keys(0)`;
    /// [`ConfigError::BadShards`] for a shard count that is zero, not a
    /// power of two, or above 65,536.
    pub fn build(self) -> Result<Keyed<K, L>, ConfigError> {
        let max_keys = match self.max_keys {
            Some(0) => return Err(ConfigError::ZeroMaxKeys),
            Some(max) => max,
            None => usize::MAX,
        };
        let shards = match self.shards {
            Some(n) if n == 0 || !n.is_power_of_two() || n > MAX_SHARDS => return Err(ConfigError::BadShards(n)),
            Some(n) => n,
            None => default_shards(),
        };
        Ok(Keyed::assemble(self.template, max_keys, shards))
    }
}

/// Four shards per CPU, rounded up to a power of two.
fn default_shards() -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    cpus.saturating_mul(4).next_power_of_two().min(MAX_SHARDS)
}

impl<K, L> Keyed<K, L>
where
    K: Hash + Eq,
    L: Limiter,
{
    /// A keyed limiter giving every key a limiter like `template`, with the
    /// default shard count and no `max_keys` bound (idle keys are still
    /// evicted as shards grow).
    pub fn new(template: L) -> Keyed<K, L> {
        Keyed::assemble(template, usize::MAX, default_shards())
    }

    /// `shards` is a power of two, `max_keys` at least 1.
    fn assemble(template: L, max_keys: usize, shards: usize) -> Keyed<K, L> {
        let share = if max_keys == usize::MAX { 0 } else { max_keys / shards };
        let min_sweep_len = share.max(MIN_SWEEP_LEN);
        let origin = template.now();
        Keyed {
            template,
            shards: (0..shards)
                .map(|_| Shard {
                    map: RwLock::new(ShardMap {
                        entries: HashMap::with_hasher(BuildPassThrough::default()),
                        sweep_at_len: min_sweep_len,
                    }),
                })
                .collect(),
            shard_mask: shards - 1,
            hasher: RandomState::new(),
            max_keys,
            min_sweep_len,
            len: AtomicUsize::new(0),
            origin,
            sweep_pause_until: AtomicU64::new(0),
            reconfiguring: Mutex::new(()),
        }
    }

    /// A builder, to set `max_keys` or the shard count.
    pub fn builder(template: L) -> KeyedBuilder<K, L> {
        KeyedBuilder { template, max_keys: None, shards: None, _keys: PhantomData }
    }

    /// Admits one event for `key` now, by the template's clock.
    ///
    /// # Errors
    ///
    /// [`KeyedError::Denied`] if the key's limiter denies it;
    /// [`KeyedError::TooManyKeys`] if the key is new and no room can be
    /// made for it.
    #[inline]
    pub fn check<Q>(&self, key: &Q) -> Result<(), KeyedError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.check_n(key, 1)
    }

    /// Admits `n` events for `key` now, all or none.
    ///
    /// # Errors
    ///
    /// As [`check`](Keyed::check); [`Denied::ExceedsBurst`] (inside
    /// [`KeyedError::Denied`]) if `n` is more than the burst.
    #[inline]
    pub fn check_n<Q>(&self, key: &Q, n: u32) -> Result<(), KeyedError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        // A stored key's limiter reads the clock itself, the fast way
        // (`Limiter::check_n`); only a new key needs the instant.
        if let Some(checked) = check_stored(shard, hash, key, |limiter| limiter.check_n(n)) {
            return checked;
        }
        self.check_new_key(shard, hash, key, n, self.template.now())
    }

    /// [`check`](Keyed::check) at an explicit instant `now`.
    ///
    /// # Errors
    ///
    /// As [`check`](Keyed::check).
    #[inline]
    pub fn check_at<Q>(&self, key: &Q, now: Instant) -> Result<(), KeyedError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.check_n_at(key, now, 1)
    }

    /// [`check_n`](Keyed::check_n) at an explicit instant `now`.
    ///
    /// `now` also decides which keys are idle when room is made for a new
    /// key: an instant ahead of the clock could evict keys that still carry
    /// state.
    ///
    /// # Errors
    ///
    /// As [`check_n`](Keyed::check_n).
    #[inline]
    pub fn check_n_at<Q>(&self, key: &Q, now: Instant, n: u32) -> Result<(), KeyedError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        let hash = self.hasher.hash_one(key);
        let shard = self.shard(hash);
        if let Some(checked) = check_stored(shard, hash, key, |limiter| limiter.check_n_at(now, n)) {
            return checked;
        }
        self.check_new_key(shard, hash, key, n, now)
    }

    /// The miss path: the key was not stored when looked at.
    #[cold]
    fn check_new_key<Q>(&self, shard: &Shard<K, L>, hash: u64, key: &Q, n: u32, now: Instant) -> Result<(), KeyedError>
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        let mut swept_all = false;
        loop {
            let mut map = write(&shard.map);
            if let Some(entry) = map.entries.get(&(hash, key) as &dyn Lookup<Q>) {
                return entry.limiter.check_n_at(now, n).map_err(KeyedError::Denied);
            }
            // Made under the shard's write lock, so `reconfigure` (which
            // changes the template first, then visits each shard) either
            // sees this key or this key sees the new template.
            let fresh = self.template.fresh_at(now);
            fresh.check_n_at(now, n)?;
            if fresh.is_idle_at(now) {
                return Ok(()); // nothing to remember
            }
            if map.entries.len() >= map.sweep_at_len {
                self.sweep(&mut map, now, Sweep::SecondChance);
            }
            if self.reserve_slot() {
                map.entries
                    .insert(Slot { hash, key: key.to_owned() }, Entry { limiter: fresh, idle_at_last_sweep: false });
                return Ok(());
            }
            // Full: the fresh limiter is dropped, so nothing was admitted.
            drop(map);
            if swept_all || !self.may_sweep_all(now) {
                return Err(KeyedError::TooManyKeys { max: self.max_keys });
            }
            swept_all = true;
            if self.evict_idle_at(now) == 0 {
                self.pause_sweeping(now);
                return Err(KeyedError::TooManyKeys { max: self.max_keys });
            }
        }
    }

    /// Counts one more key if there is room for it.
    fn reserve_slot(&self) -> bool {
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| (len < self.max_keys).then_some(len + 1))
            .is_ok()
    }

    fn may_sweep_all(&self, now: Instant) -> bool {
        self.nanos_since_origin(now) >= self.sweep_pause_until.load(Ordering::Acquire)
    }

    fn pause_sweeping(&self, now: Instant) {
        let len = u64::try_from(self.len()).unwrap_or(u64::MAX);
        let until = self.nanos_since_origin(now).saturating_add(len.saturating_mul(SWEEP_PAUSE_NANOS_PER_KEY));
        self.sweep_pause_until.fetch_max(until, Ordering::AcqRel);
    }

    fn nanos_since_origin(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    /// Drops idle keys from one locked shard (with a second chance, only
    /// those already idle at the shard's previous sweep); returns how many.
    fn sweep(&self, map: &mut ShardMap<K, L>, now: Instant, sweep: Sweep) -> usize {
        let before = map.entries.len();
        map.entries.retain(|_, entry| {
            let idle = entry.limiter.is_idle_at(now);
            let keep = !idle || (sweep == Sweep::SecondChance && !entry.idle_at_last_sweep);
            entry.idle_at_last_sweep = idle;
            keep
        });
        let freed = before - map.entries.len();
        if freed > 0 {
            self.len.fetch_sub(freed, Ordering::AcqRel);
        }
        // Amortized: the next sweep of this shard comes after it doubles.
        map.sweep_at_len = self.min_sweep_len.max(map.entries.len().saturating_mul(2));
        freed
    }

    /// Drops every key that is idle now (whose limiter would decide exactly
    /// as a fresh one); returns how many were dropped.
    ///
    /// Takes each shard's write lock in turn, one at a time.
    pub fn evict_idle(&self) -> usize {
        self.evict_idle_at(self.template.now())
    }

    /// [`evict_idle`](Keyed::evict_idle) at an explicit instant `now`.
    pub fn evict_idle_at(&self, now: Instant) -> usize {
        self.shards.iter().map(|shard| self.sweep(&mut write(&shard.map), now, Sweep::AllIdle)).sum()
    }

    /// Applies `change` to the template and to every stored key's limiter:
    /// for changing limits at run time, as in
    /// `keyed.reconfigure(|gcra| gcra.set_rate(rate))`. If `change` can
    /// fail (`set_burst` returns a `Result`), it decides what to do; the
    /// template is changed first, so validate before.
    ///
    /// Keys inserted while it runs get the new settings. Checks go on
    /// meanwhile (each shard is visited under its read lock, which only
    /// holds back inserts and evictions in that shard); two `reconfigure`
    /// calls run one after the other. `change` must not call into this
    /// keyed limiter.
    pub fn reconfigure<F>(&self, mut change: F)
    where
        F: FnMut(&L),
    {
        // Cold path: only reconfigurations take this lock.
        let _reconfiguring = self.reconfiguring.lock().unwrap_or_else(PoisonError::into_inner);
        change(&self.template);
        for shard in &self.shards {
            read(&shard.map).entries.values().for_each(|entry| change(&entry.limiter));
        }
    }

    /// The template every new key's limiter is made from.
    pub fn template(&self) -> &L {
        &self.template
    }

    /// Whether `key` is stored (it may be idle and not yet evicted).
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq,
    {
        let hash = self.hasher.hash_one(key);
        read(&self.shard(hash).map).entries.contains_key(&(hash, key) as &dyn Lookup<Q>)
    }

    /// How many keys are stored (idle ones not yet evicted included).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Whether no key is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `max_keys` bound, if any.
    pub fn max_keys(&self) -> Option<usize> {
        (self.max_keys != usize::MAX).then_some(self.max_keys)
    }

    /// How many shards the keys are spread over.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    #[inline]
    fn shard(&self, hash: u64) -> &Shard<K, L> {
        // Bits 32.. of the hash: the shard maps index their buckets with the
        // low bits and tag entries with the top 7, so within a shard these
        // stay spread.
        let index = usize::try_from(hash >> 32).unwrap_or(0) & self.shard_mask;
        &self.shards[index]
    }
}

/// Locks for reading, ignoring poisoning: a shard's map is changed only by
/// `insert` and `retain`, and a limiter check that panics leaves its atomic
/// state as it was.
/// `check` on `key`'s limiter if `shard` stores one (the hit path: the
/// shard's read lock, then the limiter), `None` if it does not.
#[inline]
fn check_stored<K, L, Q>(
    shard: &Shard<K, L>,
    hash: u64,
    key: &Q,
    check: impl FnOnce(&L) -> Result<(), Denied>,
) -> Option<Result<(), KeyedError>>
where
    K: Hash + Eq + Borrow<Q>,
    Q: ?Sized + Hash + Eq,
{
    let map = read(&shard.map);
    let entry = map.entries.get(&(hash, key) as &dyn Lookup<Q>)?;
    Some(check(&entry.limiter).map_err(KeyedError::Denied))
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}

/// Locks for writing, ignoring poisoning (see [`read`]).
fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(PoisonError::into_inner)
}

impl<K, L: fmt::Debug> fmt::Debug for Keyed<K, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyed")
            .field("len", &self.len.load(Ordering::Relaxed))
            .field("max_keys", &(self.max_keys != usize::MAX).then_some(self.max_keys))
            .field("shards", &self.shards.len())
            .field("template", &self.template)
            .finish_non_exhaustive()
    }
}

impl<K, L: fmt::Debug> fmt::Debug for KeyedBuilder<K, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedBuilder")
            .field("template", &self.template)
            .field("max_keys", &self.max_keys)
            .field("shards", &self.shards)
            .finish()
    }
}
