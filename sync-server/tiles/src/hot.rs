//! The in-memory layer above the tile cache file: recently served tiles, bounded in bytes.
//!
//! Why: a cached tile from SQLite costs a pooled connection, a B-tree lookup and a copy; from
//! memory it is a hash lookup and a reference count, cheap enough to answer on the async thread
//! without a blocking-pool hop. Entries obey the same rules as the file: invalidation removes
//! exactly the same keys (under the same epoch), so the two layers never disagree. Eviction is
//! random (whatever the hash map yields first), which for tile workloads is within a few percent
//! of LRU and needs no bookkeeping per hit.

use std::collections::HashMap;
use std::sync::RwLock;

use bytes::Bytes;

use shikong_tiles::TileRange;

use crate::cache::CacheKey;

/// The numeric part of a key.
type Pos = (u8, u8, u32, u32, i64);

fn pos(k: &CacheKey<'_>) -> Pos {
    (k.tms, k.z, k.x, k.y, k.tx)
}

/// The tiles of one layer and attribute selection.
type Tiles = HashMap<Pos, Bytes>;

/// layer → attribute selection → position: three levels so that a lookup borrows the key's
/// strings instead of allocating.
#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, HashMap<String, Tiles>>,
    bytes: usize,
}

impl Inner {
    fn evict_to(&mut self, target: usize) {
        for by_variant in self.map.values_mut() {
            for tiles in by_variant.values_mut() {
                let mut freed = 0;
                let mut n = 0;
                for v in tiles.values() {
                    if self.bytes - freed <= target {
                        break;
                    }
                    freed += v.len() + ENTRY_OVERHEAD;
                    n += 1;
                }
                let doomed: Vec<Pos> = tiles.keys().take(n).copied().collect();
                for p in doomed {
                    tiles.remove(&p);
                }
                self.bytes -= freed;
                if self.bytes <= target {
                    return;
                }
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct Hot {
    /// A read lock per hit (shared, so serving threads do not queue behind each other), the
    /// write lock to insert and invalidate.
    inner: RwLock<Inner>,
    budget: usize,
}

const ENTRY_OVERHEAD: usize = 64;

impl Hot {
    pub fn new(budget: usize) -> Self {
        Hot { inner: RwLock::new(Inner::default()), budget }
    }

    fn lock(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn get(&self, k: &CacheKey<'_>) -> Option<Bytes> {
        if self.budget == 0 {
            return None;
        }
        let g = self.inner.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.map.get(k.layer)?.get(k.variant)?.get(&pos(k)).cloned()
    }

    /// Inserts when `still_valid()` holds (checked under the lock invalidation takes).
    pub fn put(&self, k: &CacheKey<'_>, data: Bytes, still_valid: impl FnOnce() -> bool) {
        let size = data.len() + ENTRY_OVERHEAD;
        if self.budget == 0 || size > self.budget / 8 {
            return;
        }
        let mut g = self.lock();
        if !still_valid() {
            return;
        }
        if g.bytes + size > self.budget {
            g.evict_to(self.budget * 9 / 10 - size.min(self.budget * 9 / 10));
        }
        let tiles = g.map.entry(k.layer.to_owned()).or_default().entry(k.variant.to_owned()).or_default();
        let old = tiles.insert(pos(k), data);
        g.bytes += size;
        if let Some(old) = old {
            g.bytes -= old.len() + ENTRY_OVERHEAD;
        }
    }

    /// Removes matching entries; `before` runs first under the lock (the epoch bump).
    fn remove_where(&self, before: impl FnOnce(), layer: Option<&str>, doomed: impl Fn(&Pos) -> bool) {
        let mut g = self.lock();
        before();
        let mut freed = 0;
        for (name, by_variant) in g.map.iter_mut() {
            if layer.is_some_and(|l| l != name) {
                continue;
            }
            for tiles in by_variant.values_mut() {
                tiles.retain(|p, v| {
                    let go = doomed(p);
                    if go {
                        freed += v.len() + ENTRY_OVERHEAD;
                    }
                    !go
                });
            }
        }
        g.bytes -= freed;
    }

    /// Current tiles of `layer` in the ranges ((matrix set code, range)).
    pub fn remove_ranges(&self, layer: &str, ranges: &[(u8, TileRange)], before: impl FnOnce()) {
        self.remove_where(before, Some(layer), |p| {
            p.4 == 0
                && ranges
                    .iter()
                    .any(|(tms, r)| *tms == p.0 && r.contains(shikong_tiles::TileId { z: p.1, x: p.2, y: p.3 }))
        });
    }

    /// Tiles of `layer` (all layers: `None`); only current ones when `current_only`.
    pub fn remove_layer(&self, layer: Option<&str>, current_only: bool, before: impl FnOnce()) {
        self.remove_where(before, layer, |p| !current_only || p.4 == 0);
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
            hot.put(&key(x), Bytes::from(vec![0u8; 10]), || true);
        }
        let kept = (0..500).filter(|x| hot.get(&key(*x)).is_some()).count();
        assert!((40..=100).contains(&kept), "{kept}");
        assert!(hot.lock().bytes <= 100 * (10 + ENTRY_OVERHEAD));
        let hot = Hot::new(1 << 20);
        for x in 0..10 {
            hot.put(&key(x), Bytes::from(vec![1u8; 10]), || true);
        }
        hot.remove_ranges("manhole", &[(0, TileRange { z: 10, min_x: 2, max_x: 3, min_y: 0, max_y: 9 })], || ());
        let left: Vec<u32> = (0..10).filter(|x| hot.get(&key(*x)).is_some()).collect();
        assert_eq!(left, [0, 1, 4, 5, 6, 7, 8, 9]);
        hot.put(&key(2), Bytes::from(vec![1u8; 10]), || false);
        assert!(hot.get(&key(2)).is_none());
        hot.remove_layer(Some("manhole"), true, || ());
        assert_eq!(hot.lock().bytes, 0);
    }
}
