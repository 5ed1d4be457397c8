//! The in-memory layer above the tile cache file: recently served tiles, bounded in bytes.
//!
//! Why: a cached tile from SQLite costs a pooled connection, a B-tree lookup and a copy; from
//! memory it is a hash lookup and a reference count, cheap enough to answer on the async thread
//! without a blocking-pool hop. Entries obey the same rules as the file: invalidation removes
//! exactly the same keys (under the same epoch), so the two layers never disagree. Eviction is
//! random (whatever the hash map yields first), which for tile workloads is within a few percent
//! of LRU and needs no bookkeeping per hit.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use shikong_tiles::TileRange;

use crate::cache::CacheKey;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    layer: String,
    tms: u8,
    z: u8,
    x: u32,
    y: u32,
    tx: i64,
    variant: String,
}

impl Key {
    fn of(k: &CacheKey<'_>) -> Self {
        Key { layer: k.layer.to_owned(), tms: k.tms, z: k.z, x: k.x, y: k.y, tx: k.tx, variant: k.variant.to_owned() }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<Key, Arc<[u8]>>,
    bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Hot {
    inner: Mutex<Inner>,
    budget: usize,
}

const ENTRY_OVERHEAD: usize = 96;

impl Hot {
    pub fn new(budget: usize) -> Self {
        Hot { inner: Mutex::new(Inner::default()), budget }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, k: &CacheKey<'_>) -> Option<Arc<[u8]>> {
        if self.budget == 0 {
            return None;
        }
        self.lock().map.get(&Key::of(k)).cloned()
    }

    /// Inserts when `still_valid()` holds (checked under the lock invalidation takes).
    pub fn put(&self, k: &CacheKey<'_>, data: Arc<[u8]>, still_valid: impl FnOnce() -> bool) {
        let size = data.len() + ENTRY_OVERHEAD;
        if self.budget == 0 || size > self.budget / 8 {
            return;
        }
        let mut g = self.lock();
        if !still_valid() {
            return;
        }
        if g.bytes + size > self.budget {
            let target = self.budget * 9 / 10;
            let mut freed = 0;
            let doomed: Vec<Key> = g
                .map
                .iter()
                .take_while(|(_, v)| {
                    let go = g.bytes - freed + size > target;
                    freed += v.len() + ENTRY_OVERHEAD;
                    go
                })
                .map(|(k, _)| k.clone())
                .collect();
            for k in doomed {
                if let Some(v) = g.map.remove(&k) {
                    g.bytes -= v.len() + ENTRY_OVERHEAD;
                }
            }
        }
        if let Some(old) = g.map.insert(Key::of(k), data) {
            g.bytes -= old.len() + ENTRY_OVERHEAD;
        }
        g.bytes += size;
    }

    /// Removes entries matching `doomed`; `before` runs first under the lock (the epoch bump).
    fn remove_where(&self, before: impl FnOnce(), doomed: impl Fn(&Key) -> bool) {
        let mut g = self.lock();
        before();
        let mut freed = 0;
        g.map.retain(|k, v| {
            let go = doomed(k);
            if go {
                freed += v.len() + ENTRY_OVERHEAD;
            }
            !go
        });
        g.bytes -= freed;
    }

    /// Current tiles of `layer` in the ranges ((matrix set code, range)).
    pub fn remove_ranges(&self, layer: &str, ranges: &[(u8, TileRange)], before: impl FnOnce()) {
        self.remove_where(before, |k| {
            k.tx == 0
                && k.layer == layer
                && ranges
                    .iter()
                    .any(|(tms, r)| *tms == k.tms && r.contains(shikong_tiles::TileId { z: k.z, x: k.x, y: k.y }))
        });
    }

    /// Tiles of `layer` (all layers: `None`); only current ones when `current_only`.
    pub fn remove_layer(&self, layer: Option<&str>, current_only: bool, before: impl FnOnce()) {
        self.remove_where(before, |k| layer.is_none_or(|l| k.layer == l) && (!current_only || k.tx == 0));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(x: u32) -> CacheKey<'static> {
        CacheKey { layer: "manhole", tms: 0, z: 10, x, y: 5, tx: 0, variant: "" }
    }

    #[test]
    fn bounded_and_invalidated() {
        let hot = Hot::new(100 * (10 + ENTRY_OVERHEAD));
        for x in 0..500 {
            hot.put(&key(x), Arc::from(vec![0u8; 10]), || true);
        }
        let kept = (0..500).filter(|x| hot.get(&key(*x)).is_some()).count();
        assert!((50..=100).contains(&kept), "{kept}");
        assert!(hot.lock().bytes <= 100 * (10 + ENTRY_OVERHEAD));
        let hot = Hot::new(1 << 20);
        for x in 0..10 {
            hot.put(&key(x), Arc::from(vec![1u8; 10]), || true);
        }
        hot.remove_ranges("manhole", &[(0, TileRange { z: 10, min_x: 2, max_x: 3, min_y: 0, max_y: 9 })], || ());
        let left: Vec<u32> = (0..10).filter(|x| hot.get(&key(*x)).is_some()).collect();
        assert_eq!(left, [0, 1, 4, 5, 6, 7, 8, 9]);
        hot.put(&key(2), Arc::from(vec![1u8; 10]), || false);
        assert!(hot.get(&key(2)).is_none());
        hot.remove_layer(Some("manhole"), true, || ());
        assert_eq!(hot.lock().bytes, 0);
    }
}
