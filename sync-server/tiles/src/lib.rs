//! Tile services over the store, for the server's map endpoints and offline packages.
//!
//! - **Vector tiles** of any layer or group of layers, now or as of a past instant, generated from
//!   the store with `shikong-tiles` and kept in a cache file within a disk budget, least
//!   recently used evicted first, attribute subsets and past instants in a small share of it
//!   ([`cache`]). A write invalidates exactly the current tiles it touches: the old and new
//!   envelope of every version it wrote, grown by the tile buffer, at every zoom of both matrix
//!   sets ([`TileService::catch_up`] finds them in the store's history;
//!   [`TileService::invalidate`] takes envelopes directly). Tiles of past instants are keyed by
//!   the transaction in effect and never go stale.
//! - **Raster tile sets** imported from MBTiles and GeoPackage tile pyramids, each a time series
//!   of acquisitions selected by date ([`raster`]).
//! - **Style documents** (MapLibre style JSON) stored and versioned ([`styles`]).
//! - **Offline packages**: the tiles of an area and zoom range written to an MBTiles file, with
//!   a size estimate first and deltas for updates ([`package`]).
//!
//! Files live in `DATA/tiles/`: `cache.sqlite` (disposable), `registry.sqlite` (raster sets,
//! styles) and `raster/<set>/<date>.mbtiles`.

#![forbid(unsafe_code)]

pub mod cache;
mod db;
pub mod error;
mod hot;
pub mod package;
pub mod raster;
pub mod styles;
mod vector;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use shikong_model::{Bbox, TxId};
use shikong_store::{ChangeCursor, FeatureKey, FeatureStore, Layer};
use shikong_tiles::{EncodeOptions, MAX_ZOOM, TileId, TileMatrixSet, TileRange};

pub use cache::{CacheKey, CacheUsage};
pub use error::{Result, TileServerError};
pub use vector::render_layer;

/// Settings of the tile services.
#[derive(Debug, Clone)]
pub struct TileConfig {
    /// Where the cache, registry and raster files live (`DATA/tiles`).
    pub dir: PathBuf,
    /// How often a tile request looks for writes the server was not told about (a CLI import
    /// while serving): at most once per this interval.
    pub freshness: Duration,
    /// Above this many changed entities in one layer, a catch-up drops the layer's current tiles
    /// instead of computing each entity's tiles (a bulk import touches most tiles anyway).
    pub max_exact_entities: usize,
    /// Bytes of recently served tiles kept in memory above the cache file (0: none).
    pub memory_budget: usize,
    /// Bytes the cache file (`cache.sqlite` with its WAL) may take on disk; the least recently
    /// used tiles are evicted beyond it ([`cache`]).
    pub disk_budget: u64,
    /// Of [`TileConfig::disk_budget`], the bytes that tiles of an attribute selection other
    /// than the default or of a past instant may take (least recently used evicted first).
    pub secondary_budget: u64,
}

impl TileConfig {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        TileConfig {
            dir: dir.into(),
            freshness: Duration::from_millis(200),
            max_exact_entities: 5000,
            memory_budget: 256 << 20,
            disk_budget: DEFAULT_DISK_BUDGET,
            secondary_budget: DEFAULT_DISK_BUDGET / SECONDARY_SHARE,
        }
    }

    /// These settings with a disk budget of `bytes`, an eighth of it for the secondary tiles.
    pub fn with_disk_budget(self, bytes: u64) -> Self {
        TileConfig { disk_budget: bytes, secondary_budget: bytes / SECONDARY_SHARE, ..self }
    }
}

/// The default [`TileConfig::disk_budget`]: 1 GiB.
pub const DEFAULT_DISK_BUDGET: u64 = 1 << 30;

/// The part of the disk budget secondary tiles may take: one in this many bytes.
const SECONDARY_SHARE: u64 = 8;

/// Whether a tile came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    Hit,
    Miss,
    /// A layer group where some layers were cached and others generated.
    Partial,
}

impl CacheStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Partial => "partial",
        }
    }
}

/// A vector tile request: one layer or a group, now or as of an instant.
#[derive(Debug, Clone)]
pub struct VectorRequest<'a> {
    pub layers: &'a [Layer],
    pub tms: TileMatrixSet,
    pub tile: TileId,
    pub as_of: Option<Timestamp>,
    /// Attributes to keep (`id` and `code` included only when named); `None`: all.
    pub fields: Option<&'a [String]>,
}

/// A served vector tile.
#[derive(Debug, Clone)]
pub struct VectorTile {
    /// The gzip-compressed tile; empty when the tile has no feature.
    /// A shared buffer: the memory layer's copy itself, so serving a hit copies nothing.
    pub gzip: bytes::Bytes,
    pub cache: CacheStatus,
    /// The transaction the tile shows the layers as of (`None`: now).
    pub tx: Option<TxId>,
}

/// What a catch-up invalidated in one layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInvalidation {
    pub layer: String,
    /// Entities changed since the cache's last known transaction.
    pub entities: usize,
    /// Whether the layer's tiles were dropped wholesale (schema change or bulk write).
    pub whole_layer: bool,
    /// Cached tiles deleted.
    pub tiles: u64,
}

/// The outcome of [`TileService::catch_up`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatchUp {
    pub from: TxId,
    pub to: TxId,
    pub layers: Vec<LayerInvalidation>,
}

/// The tile services of one data directory. Files are opened on first use, so a server that
/// never serves a tile never creates them.
#[derive(Debug)]
pub struct TileService {
    config: TileConfig,
    cache: OnceLock<cache::Cache>,
    registry: OnceLock<db::Db>,
    slices: raster::SliceFiles,
    hot: hot::Hot,
    /// Layer definitions by name, dropped whenever a transaction commits (definitions change
    /// only in transactions): a tile request does not reload its layer from the store.
    layers: RwLock<std::collections::HashMap<String, Layer>>,
    /// Bumped by every invalidation; a tile rendered across a bump is not cached.
    epoch: AtomicU64,
    /// (transaction, instant) of every commit seen, ascending: as-of instants → transactions.
    txs: RwLock<Vec<(i64, Timestamp)>>,
    /// Serialises catch-ups; holds when the last freshness check ran.
    catching_up: Mutex<Option<Instant>>,
    /// When the last catch-up started, in nanoseconds after `born` plus one (0: never): the
    /// copy of `catching_up`'s instant that [`TileService::refresh_due`] reads on every memory
    /// hit without taking the lock, which every serving thread would otherwise contend for.
    checked_at: AtomicU64,
    born: Instant,
    /// Hits of the memory layer (sampled as uses of the cache file's rows).
    memory_hits: AtomicU64,
}

/// One memory-layer hit in this many refreshes the tile's last use in the cache file.
const MEMORY_HIT_SAMPLE: u64 = 16;

const META_KNOWN_TX: &str = "known_tx";
const META_STORE: &str = "store_fingerprint";

impl TileService {
    pub fn new(config: TileConfig) -> Self {
        let hot = hot::Hot::new(config.memory_budget);
        TileService {
            config,
            cache: OnceLock::new(),
            registry: OnceLock::new(),
            slices: raster::SliceFiles::default(),
            hot,
            layers: RwLock::new(std::collections::HashMap::new()),
            epoch: AtomicU64::new(0),
            txs: RwLock::new(Vec::new()),
            catching_up: Mutex::new(None),
            checked_at: AtomicU64::new(0),
            born: Instant::now(),
            memory_hits: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &TileConfig {
        &self.config
    }

    pub(crate) fn cache(&self) -> Result<&cache::Cache> {
        if let Some(c) = self.cache.get() {
            return Ok(c);
        }
        let budget = cache::Budget { total: self.config.disk_budget, secondary: self.config.secondary_budget };
        let c = cache::Cache::open(&self.config.dir.join("cache.sqlite"), budget)?;
        Ok(self.cache.get_or_init(|| c))
    }

    pub(crate) fn registry(&self) -> Result<&db::Db> {
        if let Some(c) = self.registry.get() {
            return Ok(c);
        }
        let c = db::Db::open(&self.config.dir.join("registry.sqlite"), REGISTRY_DDL)?;
        c.write(|c| raster::migrate_registry(c))?;
        Ok(self.registry.get_or_init(|| c))
    }

    /// The transaction in effect at `t` (the last one at or before it) and its instant; `None`
    /// before the store's first transaction.
    pub fn tx_at(&self, store: &dyn FeatureStore, t: Timestamp) -> Result<Option<(TxId, Timestamp)>> {
        let known_until = self.txs.read().unwrap_or_else(std::sync::PoisonError::into_inner).last().map(|l| l.1);
        if known_until.is_none_or(|k| k < t) {
            self.load_txs(store)?;
        }
        let txs = self.txs.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        let i = txs.partition_point(|(_, time)| *time <= t);
        Ok((i > 0).then(|| (TxId(txs[i - 1].0), txs[i - 1].1)))
    }

    fn load_txs(&self, store: &dyn FeatureStore) -> Result<()> {
        let mut txs = self.txs.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        loop {
            let after = txs.last().map(|l| TxId(l.0));
            let more = store.transactions(after, 10_000)?;
            let done = more.len() < 10_000;
            txs.extend(more.into_iter().map(|r| (r.tx.0, r.time)));
            if done {
                return Ok(());
            }
        }
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    fn forget_layers(&self) {
        self.layers.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }

    /// A layer's definition, from memory when no transaction committed since it was loaded.
    pub fn layer(&self, store: &dyn FeatureStore, name: &str) -> Result<Layer> {
        if let Some(l) = self.layer_in_memory(name) {
            return Ok(l);
        }
        let l = store.layer(name)?;
        self.layers.write().unwrap_or_else(std::sync::PoisonError::into_inner).insert(name.to_owned(), l.clone());
        Ok(l)
    }

    /// A layer's definition if it is in memory (no I/O).
    pub fn layer_in_memory(&self, name: &str) -> Option<Layer> {
        self.layers.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(name).cloned()
    }

    /// Whether the next tile request must look for new writes first.
    pub fn refresh_due(&self) -> bool {
        let at = self.checked_at.load(Ordering::Acquire);
        at == 0 || self.born.elapsed().as_nanos().saturating_sub(u128::from(at - 1)) >= self.config.freshness.as_nanos()
    }

    /// Records that a catch-up starts now (the caller holds `catching_up`).
    fn mark_checked(&self, last: &mut Option<Instant>) {
        let now = Instant::now();
        *last = Some(now);
        let nanos = u64::try_from(now.duration_since(self.born).as_nanos()).unwrap_or(u64::MAX - 1);
        self.checked_at.store(nanos + 1, Ordering::Release);
    }

    /// The current tile of one layer if it and the layer's definition are in memory and
    /// `may_read` allows the layer: no I/O and no copy, so servers answer it without leaving the
    /// async thread. `None` means: take the full path ([`TileService::vector_tile`]).
    pub fn memory_tile(
        &self,
        layer: &str,
        tms: TileMatrixSet,
        tile: TileId,
        fields: Option<&[String]>,
        may_read: impl FnOnce(&Layer) -> bool,
    ) -> Option<VectorTile> {
        if self.refresh_due() {
            return None;
        }
        let variant = {
            let layers = self.layers.read().unwrap_or_else(std::sync::PoisonError::into_inner);
            let l = layers.get(layer)?;
            if !may_read(l) {
                return None;
            }
            match fields {
                None => String::new(),
                Some(f) => vector::variant(std::slice::from_ref(l), Some(f)).ok()?,
            }
        };
        let key = CacheKey { layer, tms: tms.code(), z: tile.z, x: tile.x, y: tile.y, tx: 0, variant: &variant };
        let data = self.hot.get(&key)?;
        self.memory_hit(&key);
        Some(VectorTile { gzip: data, cache: CacheStatus::Hit, tx: None })
    }

    /// Counts a hit of the memory layer; one in [`MEMORY_HIT_SAMPLE`] is recorded as a use of
    /// the cache file's row (no I/O), so tiles kept hot in memory are not the first evicted from
    /// the file.
    pub(crate) fn memory_hit(&self, key: &CacheKey<'_>) {
        if self.memory_hits.fetch_add(1, Ordering::Relaxed).is_multiple_of(MEMORY_HIT_SAMPLE)
            && let Some(c) = self.cache.get()
        {
            c.touch(key);
        }
    }

    /// The current tiles of `layer` that a feature with any of these envelopes (CGCS2000 lon/lat)
    /// appears in, at every zoom of both matrix sets, buffer included.
    pub fn touched_tiles(envelopes: &[Bbox]) -> Vec<(u8, TileRange)> {
        let mut out = Vec::new();
        for env in envelopes {
            for tms in TileMatrixSet::ALL {
                for z in 0..=MAX_ZOOM {
                    let buffer = EncodeOptions::for_zoom(z).buffer_fraction();
                    if let Some(r) = tms.tiles_for(env, z, buffer) {
                        out.push((tms.code(), r));
                    }
                }
            }
        }
        out
    }

    /// Drops the current tiles of `layer` touched by features with these envelopes (the old and
    /// the new envelope of each changed feature). Returns the number of cached tiles deleted.
    pub fn invalidate(&self, layer: &str, envelopes: &[Bbox]) -> Result<u64> {
        let ranges = Self::touched_tiles(envelopes);
        self.cache()?
            .delete_ranges(layer, &ranges, &|| self.epoch(), || self.hot.remove_ranges(layer, &ranges, || self.bump()))
    }

    /// Drops every cached tile of `layer`, current and past (a rebuild of the layer).
    pub fn invalidate_layer(&self, layer: &str) -> Result<u64> {
        self.cache()?
            .delete_layer(Some(layer), &|| self.epoch(), || self.hot.remove_layer(Some(layer), false, || self.bump()))
    }

    /// Drops every cached tile.
    pub fn invalidate_all(&self) -> Result<u64> {
        self.cache()?.delete_layer(None, &|| self.epoch(), || self.hot.remove_layer(None, false, || self.bump()))
    }

    /// Number of cached tiles (of one layer, or all).
    pub fn cached_tiles(&self, layer: Option<&str>) -> Result<u64> {
        self.flush()?;
        self.cache()?.count(layer)
    }

    /// How much of its disk budget the tile cache takes (queued tiles written first).
    pub fn cache_usage(&self) -> Result<cache::CacheUsage> {
        self.flush()?;
        self.cache()?.usage()
    }

    /// Writes the tiles queued for the cache file now (they are written in batches).
    pub fn flush(&self) -> Result<()> {
        match self.cache.get() {
            Some(c) => c.flush(&|| self.epoch()),
            None => Ok(()),
        }
    }

    /// Invalidates the tiles touched by every write committed since the cache last caught up
    /// (the old and new state of each changed entity, read from the store's history), then
    /// records the store's newest transaction as known. Call it after each commit; tile
    /// requests also call it at most every [`TileConfig::freshness`] to notice writes made by
    /// other processes.
    pub fn catch_up(&self, store: &dyn FeatureStore) -> Result<CatchUp> {
        let mut last = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.mark_checked(&mut last);
        self.catch_up_locked(store)
    }

    /// [`TileService::catch_up`] unless one ran within the freshness interval.
    pub fn refresh(&self, store: &dyn FeatureStore) -> Result<()> {
        let mut last = self.catching_up.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < self.config.freshness) {
            return Ok(());
        }
        self.mark_checked(&mut last);
        self.catch_up_locked(store)?;
        Ok(())
    }

    /// The envelopes of every state of `layer` that tiles cached at transaction `since` may show
    /// or that was written after it: for each entity changed since, its last version at or before
    /// `since` and every later version (deleted ones included).
    pub(crate) fn changed_envelopes(&self, store: &dyn FeatureStore, layer: &Layer, since: TxId) -> Result<Changed> {
        let name = layer.name();
        let max = self.config.max_exact_entities;
        let page = store.changes_since(name, ChangeCursor::after_tx(since), max)?;
        let changed = page.changes;
        if changed.is_empty() {
            return Ok(Changed::None);
        }
        if page.more {
            return Ok(Changed::Too(changed.len() + 1));
        }
        let mut envelopes = Vec::new();
        for c in &changed {
            let versions = store.history(name, &FeatureKey::Id(c.id))?;
            let from = versions.iter().rposition(|v| v.tx.tx <= since).unwrap_or(0);
            for v in &versions[from..] {
                if let Some(b) = v.state.as_ref().and_then(|f| f.geometry.as_ref()).and_then(|g| g.bbox()) {
                    envelopes.push(b);
                }
            }
        }
        Ok(Changed::Envelopes(changed.len(), envelopes))
    }

    fn catch_up_locked(&self, store: &dyn FeatureStore) -> Result<CatchUp> {
        let cache = self.cache()?;
        let latest = store.latest_tx()?;
        let fingerprint = store.transactions(None, 1)?.first().map_or(String::new(), |t| t.time.to_string());
        let known = cache.meta(META_KNOWN_TX)?.and_then(|v| v.parse::<i64>().ok()).map(TxId);
        let same_store = cache.meta(META_STORE)?.is_none_or(|f| f == fingerprint || f.is_empty());
        let known = match known {
            Some(k) if same_store && k <= latest => k,
            _ => {
                // A new cache, or a cache of another (or restored) store: nothing in it is trusted.
                cache.delete_layer(None, &|| self.epoch(), || self.hot.remove_layer(None, false, || self.bump()))?;
                self.forget_layers();
                cache.set_meta(META_STORE, &fingerprint)?;
                cache.set_meta(META_KNOWN_TX, &latest.0.to_string())?;
                self.txs.write().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
                return Ok(CatchUp { from: latest, to: latest, layers: Vec::new() });
            }
        };
        if known == latest {
            return Ok(CatchUp { from: known, to: latest, layers: Vec::new() });
        }
        self.forget_layers();
        let mut out = CatchUp { from: known, to: latest, layers: Vec::new() };
        for layer in store.layers()? {
            let name = layer.name().to_owned();
            if layer.schema_tx > known {
                // Attribute names or types changed: every tile of the layer may differ.
                let tiles = self.invalidate_layer(&name)?;
                out.layers.push(LayerInvalidation { layer: name, entities: 0, whole_layer: true, tiles });
                continue;
            }
            if !cache.has_any(&name)? {
                // No tile of this layer on disk: there is nothing to find by envelope, so the
                // history of every changed feature is not read (it was most of the cost of a
                // commit on a layer nobody maps, the cases). Dropping the layer's current tiles
                // still fences off a tile being rendered from before the change (epochs).
                let page = store.changes_since(&name, ChangeCursor::after_tx(known), 1)?;
                if !page.changes.is_empty() {
                    let tiles = cache.delete_current(&name, &|| self.epoch(), || {
                        self.hot.remove_layer(Some(&name), true, || self.bump())
                    })?;
                    out.layers.push(LayerInvalidation { layer: name, entities: 0, whole_layer: true, tiles });
                }
                continue;
            }
            match self.changed_envelopes(store, &layer, known)? {
                Changed::None => {}
                Changed::Too(entities) => {
                    let tiles = cache.delete_current(&name, &|| self.epoch(), || {
                        self.hot.remove_layer(Some(&name), true, || self.bump())
                    })?;
                    out.layers.push(LayerInvalidation { layer: name, entities, whole_layer: true, tiles });
                }
                Changed::Envelopes(entities, envelopes) => {
                    let tiles = self.invalidate(&name, &envelopes)?;
                    out.layers.push(LayerInvalidation { layer: name, entities, whole_layer: false, tiles });
                }
            }
        }
        cache.set_meta(META_KNOWN_TX, &latest.0.to_string())?;
        Ok(out)
    }
}

impl Drop for TileService {
    fn drop(&mut self) {
        if let Err(e) = self.flush() {
            // Only cache entries are lost; they are regenerated on demand.
            let _ = e;
        }
    }
}

/// What changed in a layer since a transaction.
#[derive(Debug)]
pub(crate) enum Changed {
    None,
    /// More entities than worth tracking one by one (how many).
    Too(usize),
    /// (entities, envelopes of their states).
    Envelopes(usize, Vec<Bbox>),
}

const REGISTRY_DDL: &str = "
CREATE TABLE IF NOT EXISTS raster_slices (
  set_name TEXT NOT NULL,
  date TEXT NOT NULL,
  time_us INTEGER NOT NULL,
  title TEXT,
  kind TEXT NOT NULL,
  tms INTEGER NOT NULL,
  format TEXT NOT NULL,
  minzoom INTEGER NOT NULL,
  maxzoom INTEGER NOT NULL,
  min_x REAL NOT NULL, min_y REAL NOT NULL, max_x REAL NOT NULL, max_y REAL NOT NULL,
  file TEXT NOT NULL,
  source TEXT NOT NULL,
  tiles INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  crs TEXT NOT NULL DEFAULT 'CGCS2000',
  PRIMARY KEY (set_name, time_us)
);
CREATE TABLE IF NOT EXISTS styles (
  id TEXT PRIMARY KEY,
  title TEXT,
  doc TEXT NOT NULL,
  version INTEGER NOT NULL,
  updated_by TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
";

/// gzip at level 6. Level 1 was chosen once for generation latency on the belief that protobuf
/// compresses nearly as well at level 1; measured on the benchmark's z12 point tiles (2.1 MB of
/// MVT) it was 1,095 KB against 784 KB at level 6, and a tile is compressed once, then served
/// from the cache many times over links that charge by the byte.
pub fn gzip(raw: &[u8]) -> Result<Vec<u8>> {
    if raw.is_empty() {
        return Ok(Vec::new());
    }
    let mut e = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 2 + 64), flate2::Compression::new(6));
    e.write_all(raw).map_err(|e| TileServerError::Invalid(format!("gzip: {e}")))?;
    e.finish().map_err(|e| TileServerError::Invalid(format!("gzip: {e}")))
}

/// The inverse of [`gzip`] (bytes without the gzip magic are returned as they are).
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>> {
    if !data.starts_with(&[0x1f, 0x8b]) {
        return Ok(data.to_vec());
    }
    let mut out = Vec::with_capacity(data.len() * 3);
    flate2::read::MultiGzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| TileServerError::Invalid(format!("gunzip: {e}")))?;
    Ok(out)
}

pub(crate) fn path_text(p: &Path) -> String {
    p.display().to_string()
}

#[cfg(test)]
mod cache_tests;
#[cfg(test)]
mod tests;
