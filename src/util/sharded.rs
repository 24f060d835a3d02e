//! A bounded map in read-write-locked shards, so lookups of different keys do not contend:
//! the signed-token cache and the remembered sessions. Each shard holds at most its share of
//! the size; a new key in a full shard first drops what the caller no longer wants, then, if
//! the shard is still full, everything in it.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};

use parking_lot::RwLock;

/// How many shards a map has.
pub const SHARDS: usize = 16;

pub struct ShardedMap<K, V> {
    shards: Vec<RwLock<HashMap<K, V>>>,
    hasher: RandomState,
    per_shard: usize,
}

impl<K: Hash + Eq, V> ShardedMap<K, V> {
    /// A map of about `size` entries (at least one per shard).
    pub fn new(size: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: RandomState::new(),
            per_shard: size.div_ceil(SHARDS).max(1),
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> &RwLock<HashMap<K, V>> {
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// What `read` makes of the entry for `key`, under the shard's read lock.
    pub fn get<Q, R>(&self, key: &Q, read: impl FnOnce(&V) -> Option<R>) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard(key).read().get(key).and_then(read)
    }

    /// Puts `value` under `key`. A new key in a full shard first keeps only the entries `keep`
    /// accepts, then empties the shard if that freed nothing.
    pub fn insert(&self, key: K, value: V, mut keep: impl FnMut(&V) -> bool) {
        let mut shard = self.shard(&key).write();
        if shard.len() >= self.per_shard && !shard.contains_key(&key) {
            shard.retain(|_, v| keep(v));
            if shard.len() >= self.per_shard {
                shard.clear();
            }
        }
        shard.insert(key, value);
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.read().len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
