//! The vector tile cache: one SQLite file (`DATA/tiles/cache.sqlite`), one row per tile of one
//! layer, keyed by layer, matrix set, z/x/y, transaction and attribute selection.
//!
//! `tx = 0` rows are tiles of the layer as it is now; they are deleted exactly where a write
//! touches them. Rows with `tx > 0` are tiles of the layer as of that transaction: the past never
//! changes, so they are never invalidated (only a whole-layer or whole-cache rebuild drops them).
//! Tiles are stored gzip-compressed, as MBTiles keeps them, and served as stored to clients that
//! accept gzip. An empty tile is an empty blob. The file is disposable: deleting it only costs
//! regeneration.

use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{OptionalExtension, params};
use shikong_tiles::TileRange;

use crate::db::Db;
use crate::error::Result;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS tiles (
  layer TEXT NOT NULL,
  tms INTEGER NOT NULL,
  z INTEGER NOT NULL,
  x INTEGER NOT NULL,
  y INTEGER NOT NULL,
  tx INTEGER NOT NULL,
  variant TEXT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (layer, tms, z, x, y, tx, variant)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

/// The address of one cached tile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheKey<'a> {
    pub layer: &'a str,
    pub tms: u8,
    pub z: u8,
    pub x: u32,
    pub y: u32,
    /// 0: current; otherwise the transaction the tile shows the layer as of.
    pub tx: i64,
    /// '' for every attribute, else the selected attribute names, sorted, comma-separated.
    pub variant: &'a str,
}

/// Tiles queued per batch write.
const BATCH: usize = 64;

#[derive(Debug)]
struct Owned {
    layer: String,
    tms: u8,
    z: u8,
    x: u32,
    y: u32,
    tx: i64,
    variant: String,
}

impl Owned {
    fn of(k: &CacheKey<'_>) -> Self {
        Owned { layer: k.layer.to_owned(), tms: k.tms, z: k.z, x: k.x, y: k.y, tx: k.tx, variant: k.variant.to_owned() }
    }

    fn is(&self, k: &CacheKey<'_>) -> bool {
        self.layer == k.layer
            && (self.tms, self.z, self.x, self.y, self.tx) == (k.tms, k.z, k.x, k.y, k.tx)
            && self.variant == k.variant
    }
}

#[derive(Debug, Default)]
struct Pending {
    items: Vec<(Owned, Vec<u8>, u64)>,
    since: Option<Instant>,
}

fn write_batch(
    c: &mut rusqlite::Connection,
    batch: Vec<(Owned, Vec<u8>, u64)>,
    current: &dyn Fn() -> u64,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let now = current();
    let tx = c.transaction()?;
    {
        let mut st = tx.prepare_cached("INSERT OR REPLACE INTO tiles VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")?;
        for (k, data, _) in batch.iter().filter(|b| b.2 == now) {
            st.execute(params![k.layer, k.tms, k.z, k.x, k.y, k.tx, k.variant, data])?;
        }
    }
    tx.commit()?;
    Ok(())
}

#[derive(Debug)]
pub(crate) struct Cache {
    db: Db,
    pending: std::sync::Mutex<Pending>,
}

impl Cache {
    pub fn open(path: &Path) -> Result<Self> {
        Ok(Cache { db: Db::open(path, DDL)?, pending: std::sync::Mutex::new(Pending::default()) })
    }

    pub fn get(&self, k: &CacheKey<'_>) -> Result<Option<Vec<u8>>> {
        if let Some(d) = self.queued(k) {
            return Ok(Some(d));
        }
        self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT data FROM tiles WHERE layer = ?1 AND tms = ?2 AND z = ?3 AND x = ?4 AND y = ?5 AND tx = ?6 AND variant = ?7",
            )?;
            Ok(st.query_row(params![k.layer, k.tms, k.z, k.x, k.y, k.tx, k.variant], |r| r.get(0)).optional()?)
        })
    }

    /// Queues a tile rendered at invalidation epoch `epoch`; queued tiles are written in one
    /// transaction per batch (one commit per tile was a tenth of a generated tile's cost), and
    /// only if no invalidation happened since they were rendered (`current()` still equals
    /// `epoch` under the writer lock, which invalidation also takes).
    pub fn put(&self, k: &CacheKey<'_>, data: &[u8], epoch: u64, current: &dyn Fn() -> u64) -> Result<()> {
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            p.items.push((Owned::of(k), data.to_vec(), epoch));
            let since = *p.since.get_or_insert_with(Instant::now);
            if p.items.len() < BATCH && since.elapsed() < Duration::from_secs(1) {
                return Ok(());
            }
            p.since = None;
            std::mem::take(&mut p.items)
        };
        self.db.write(|c| write_batch(c, batch, current))
    }

    /// Writes every queued tile (still valid) now.
    pub fn flush(&self, current: &dyn Fn() -> u64) -> Result<()> {
        self.db.write(|c| self.flush_locked(c, current))
    }

    fn flush_locked(&self, c: &mut rusqlite::Connection, current: &dyn Fn() -> u64) -> Result<()> {
        let batch = {
            let mut p = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            p.since = None;
            std::mem::take(&mut p.items)
        };
        write_batch(c, batch, current)
    }

    /// A queued tile not yet written.
    fn queued(&self, k: &CacheKey<'_>) -> Option<Vec<u8>> {
        let p = self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        p.items.iter().rev().find(|(o, _, _)| o.is(k)).map(|(_, d, _)| d.clone())
    }

    /// Deletes current tiles of `layer` in each range; `before_delete` runs under the writer lock
    /// first (it bumps the invalidation epoch). Returns the number of tiles deleted.
    pub fn delete_ranges(
        &self,
        layer: &str,
        ranges: &[(u8, TileRange)],
        current: &dyn Fn() -> u64,
        before_delete: impl FnOnce(),
    ) -> Result<u64> {
        self.db.write(|c| {
            self.flush_locked(c, current)?;
            before_delete();
            let tx = c.transaction()?;
            let mut n = 0u64;
            {
                let mut st = tx.prepare_cached(
                    "DELETE FROM tiles WHERE layer = ?1 AND tms = ?2 AND z = ?3 AND x BETWEEN ?4 AND ?5 AND y BETWEEN ?6 AND ?7 AND tx = 0",
                )?;
                for (tms, r) in ranges {
                    n += st.execute(params![layer, tms, r.z, r.min_x, r.max_x, r.min_y, r.max_y])? as u64;
                }
            }
            tx.commit()?;
            Ok(n)
        })
    }

    /// Deletes every tile of `layer` (or of every layer), current and past.
    pub fn delete_layer(
        &self,
        layer: Option<&str>,
        current: &dyn Fn() -> u64,
        before_delete: impl FnOnce(),
    ) -> Result<u64> {
        self.db.write(|c| {
            self.flush_locked(c, current)?;
            before_delete();
            Ok(match layer {
                Some(l) => c.execute("DELETE FROM tiles WHERE layer = ?1", [l])?,
                None => c.execute("DELETE FROM tiles", [])?,
            } as u64)
        })
    }

    /// Deletes the current (not the past) tiles of `layer`.
    pub fn delete_current(&self, layer: &str, current: &dyn Fn() -> u64, before_delete: impl FnOnce()) -> Result<u64> {
        self.db.write(|c| {
            self.flush_locked(c, current)?;
            before_delete();
            Ok(c.execute("DELETE FROM tiles WHERE layer = ?1 AND tx = 0", [layer])? as u64)
        })
    }

    /// Number of cached tiles of `layer` (all layers when `None`).
    pub fn count(&self, layer: Option<&str>) -> Result<u64> {
        self.db.read(|c| {
            let n: i64 = match layer {
                Some(l) => c.query_row("SELECT count(*) FROM tiles WHERE layer = ?1", [l], |r| r.get(0))?,
                None => c.query_row("SELECT count(*) FROM tiles", [], |r| r.get(0))?,
            };
            Ok(n as u64)
        })
    }

    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        self.db.read(|c| Ok(c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?))
    }

    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.db.write(|c| {
            c.execute("INSERT OR REPLACE INTO meta VALUES (?1, ?2)", [key, value])?;
            Ok(())
        })
    }
}
