//! The vector tile cache: one SQLite file (`DATA/tiles/cache.sqlite`), one row per tile of one
//! layer, keyed by layer, matrix set, z/x/y, transaction and attribute selection, within a disk
//! budget.
//!
//! `tx = 0` rows are tiles of the layer as it is now; they are deleted exactly where a write
//! touches them. Rows with `tx > 0` are tiles of the layer as of that transaction: the past never
//! changes, so they are never invalidated (only a whole-layer or whole-cache rebuild drops them).
//! Tiles are stored gzip-compressed, as MBTiles keeps them, and served as stored to clients that
//! accept gzip. An empty tile is an empty blob. The file is disposable: deleting it only costs
//! regeneration.
//!
//! Why a budget: any caller can ask for tiles nobody else will ask for again (far-away empty
//! tiles, every subset of a layer's attributes, every past transaction), and each one was a row
//! kept forever. Now every row carries its byte cost and its last use; a `usage` table kept by
//! triggers holds the totals per class, so no request scans the file. Two classes:
//!
//! - **primary**: the current tiles of the default attribute set (what maps ask for), limited
//!   only by the whole budget;
//! - **secondary**: tiles of another attribute selection or of a past instant, limited to their
//!   own share of the budget ([`Budget::secondary`], an eighth by default), so they can never push
//!   the maps' tiles out.
//!
//! After each batch write, the least recently used tiles (of the secondary class beyond its share,
//! then of both classes merged by last use beyond the file's share) are deleted, measured by the
//! database's pages in use (`page_count − freelist_count`, read from the header), and free pages
//! beyond the target are returned to the file system (`auto_vacuum = INCREMENTAL`). The WAL is
//! kept small by checkpointing at a size derived from the budget. "Use" is a hit from this file
//! (recorded in memory, written with the next batch) or a sampled hit from the memory layer above.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::{Connection, OptionalExtension, params};
use shikong_tiles::TileRange;

use crate::db::Db;
use crate::error::Result;

/// The layout version (`PRAGMA user_version`); a file of another version is emptied at open.
const SCHEMA_VERSION: i64 = 2;

const DDL: &str = "
CREATE TABLE IF NOT EXISTS tiles (
  id INTEGER PRIMARY KEY,
  layer TEXT NOT NULL,
  tms INTEGER NOT NULL,
  z INTEGER NOT NULL,
  x INTEGER NOT NULL,
  y INTEGER NOT NULL,
  tx INTEGER NOT NULL,
  variant TEXT NOT NULL,
  data BLOB NOT NULL,
  class INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  used INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS tiles_key ON tiles (layer, tms, z, x, y, tx, variant);
CREATE INDEX IF NOT EXISTS tiles_lru ON tiles (class, used);
CREATE TABLE IF NOT EXISTS usage (class INTEGER PRIMARY KEY, tiles INTEGER NOT NULL, bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO usage VALUES (0, 0, 0), (1, 0, 0);
CREATE TRIGGER IF NOT EXISTS tiles_added AFTER INSERT ON tiles BEGIN
  UPDATE usage SET tiles = tiles + 1, bytes = bytes + NEW.bytes WHERE class = NEW.class;
END;
CREATE TRIGGER IF NOT EXISTS tiles_removed AFTER DELETE ON tiles BEGIN
  UPDATE usage SET tiles = tiles - 1, bytes = bytes - OLD.bytes WHERE class = OLD.class;
END;
CREATE TRIGGER IF NOT EXISTS tiles_replaced AFTER UPDATE OF bytes, class ON tiles BEGIN
  UPDATE usage SET tiles = tiles - 1, bytes = bytes - OLD.bytes WHERE class = OLD.class;
  UPDATE usage SET tiles = tiles + 1, bytes = bytes + NEW.bytes WHERE class = NEW.class;
END;
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

impl CacheKey<'_> {
    /// 0 (primary) for a current tile of every attribute, else 1 (secondary).
    fn class(&self) -> i64 {
        i64::from(self.tx != 0 || !self.variant.is_empty())
    }
}

/// What the cache file may take on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Budget {
    /// Bytes of the cache's files (database, WAL, shared memory); 0: nothing is cached.
    pub total: u64,
    /// Bytes (row costs) of secondary tiles; 0: they are not cached.
    pub secondary: u64,
}

/// The shared-memory file (32 KiB) and room for the pages one batch adds before eviction.
const FILE_SLACK: u64 = 64 << 10;

impl Budget {
    /// Room kept for the write-ahead log: an eighth of the budget, within 256 KiB and 32 MiB.
    fn wal_reserve(self) -> u64 {
        (self.total / 8).clamp(256 << 10, 32 << 20)
    }

    /// Bytes the database's pages in use may take.
    fn file_target(self) -> u64 {
        self.total.saturating_sub(self.wal_reserve() + FILE_SLACK)
    }

    /// WAL bytes beyond which a checkpoint runs and the log is truncated (a transaction's pages
    /// come on top, so this is a quarter of the reserve).
    fn wal_limit(self) -> u64 {
        self.wal_reserve() / 4
    }

    /// Queued tile bytes that trigger a batch write (a batch lands in the WAL whole).
    fn batch_bytes(self) -> usize {
        usize::try_from(self.wal_reserve() / 8).unwrap_or(usize::MAX)
    }

    /// Bytes one eviction round deletes beyond what is over (few rounds, each a small transaction).
    fn evict_margin(self, room: u64) -> u64 {
        (room / 16).min(self.wal_reserve() / 4)
    }

    /// Whether a tile of `class` costing `bytes` is cached at all: never above an eighth of its
    /// class's room (one tile must not flush the rest).
    fn admits(self, class: i64, bytes: u64) -> bool {
        let room = if class == 0 { self.file_target() } else { self.secondary.min(self.file_target()) };
        bytes <= room / 8
    }
}

/// The bytes a row counts for: its tile, its key twice (table and index) and a fixed overhead
/// for the row headers and the last-use index entry.
fn row_bytes(k: &CacheKey<'_>, data: usize) -> u64 {
    (data + 2 * (k.layer.len() + k.variant.len()) + 96) as u64
}

/// How much of its budget the cache takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CacheUsage {
    /// Cached tiles, both classes.
    pub tiles: u64,
    /// Their row costs, bytes.
    pub bytes: u64,
    /// Tiles of another attribute selection or of a past instant.
    pub secondary_tiles: u64,
    pub secondary_bytes: u64,
    /// The cache's files on disk (database, WAL, shared memory), bytes.
    pub file_bytes: u64,
}

/// Tiles queued per batch write.
const BATCH: usize = 64;

/// Uses recorded before they are written by themselves (when no batch comes first).
const TOUCH_BATCH: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

    fn key(&self) -> CacheKey<'_> {
        CacheKey {
            layer: &self.layer,
            tms: self.tms,
            z: self.z,
            x: self.x,
            y: self.y,
            tx: self.tx,
            variant: &self.variant,
        }
    }
}

/// A tile waiting for the next batch write.
#[derive(Debug)]
struct Queued {
    key: Owned,
    data: Vec<u8>,
    /// The invalidation epoch it was rendered at.
    epoch: u64,
    /// When it was asked for (its last use).
    used: i64,
}

#[derive(Debug, Default)]
struct Pending {
    items: Vec<Queued>,
    bytes: usize,
    since: Option<Instant>,
    /// Last uses of cached tiles not yet written.
    touched: HashMap<Owned, i64>,
}

impl Pending {
    fn take(&mut self) -> (Vec<Queued>, HashMap<Owned, i64>) {
        self.since = None;
        self.bytes = 0;
        (std::mem::take(&mut self.items), std::mem::take(&mut self.touched))
    }
}

/// Records last uses.
fn write_touches(c: &Connection, touched: &HashMap<Owned, i64>) -> Result<()> {
    let mut st = c.prepare_cached(
        "UPDATE tiles SET used = max(used, ?8) WHERE layer = ?1 AND tms = ?2 AND z = ?3 AND x = ?4 AND y = ?5 AND tx = ?6 AND variant = ?7",
    )?;
    for (k, used) in touched {
        st.execute(params![k.layer, k.tms, k.z, k.x, k.y, k.tx, k.variant, used])?;
    }
    Ok(())
}

fn write_batch(
    c: &mut Connection,
    (batch, touched): (Vec<Queued>, HashMap<Owned, i64>),
    current: &dyn Fn() -> u64,
    budget: Budget,
) -> Result<()> {
    if batch.is_empty() && touched.is_empty() {
        return Ok(());
    }
    let now = current();
    let tx = c.transaction()?;
    write_touches(&tx, &touched)?;
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO tiles (layer, tms, z, x, y, tx, variant, data, class, bytes, used)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
             ON CONFLICT (layer, tms, z, x, y, tx, variant)
             DO UPDATE SET data = excluded.data, bytes = excluded.bytes, used = max(used, excluded.used)",
        )?;
        for q in batch.iter().filter(|q| q.epoch == now) {
            let k = q.key.key();
            let bytes = row_bytes(&k, q.data.len());
            st.execute(params![k.layer, k.tms, k.z, k.x, k.y, k.tx, k.variant, q.data, k.class(), bytes, q.used])?;
        }
    }
    if !batch.is_empty() {
        enforce(&tx, budget)?;
    }
    tx.commit()?;
    Ok(())
}

/// Bytes of the database's pages: (in the file, in use).
fn pages(c: &Connection) -> Result<(u64, u64)> {
    let get = |p: &str| -> Result<u64> { Ok(c.pragma_query_value(None, p, |r| r.get::<_, i64>(0))?.max(0) as u64) };
    let size = get("page_size")?;
    let count = get("page_count")?;
    let free = get("freelist_count")?;
    Ok((count * size, count.saturating_sub(free) * size))
}

/// Brings the cache within its budget (inside the batch's transaction): secondary tiles beyond
/// their share, then tiles of both classes beyond the file's share, least recently used first;
/// then returns free pages beyond the target to the file system.
fn enforce(c: &Connection, budget: Budget) -> Result<()> {
    let secondary: i64 = c.query_row("SELECT bytes FROM usage WHERE class = 1", [], |r| r.get(0))?;
    let secondary = secondary.max(0) as u64;
    if secondary > budget.secondary {
        evict(c, Some(1), secondary - budget.secondary + budget.evict_margin(budget.secondary))?;
    }
    let target = budget.file_target();
    // Deleting rows frees fewer pages than their bytes when pages stay partly used: measure again.
    for _ in 0..16 {
        let (_, used) = pages(c)?;
        if used <= target || evict(c, None, used - target + budget.evict_margin(target))? == 0 {
            break;
        }
    }
    // Free pages beyond the target go back to the file system (others are reused).
    let (file, used) = pages(c)?;
    if file > target && file > used {
        let page: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
        let excess = (file - target.max(used)).div_ceil(page.max(1) as u64);
        // One result row per page released: step through them all.
        let mut st = c.prepare(&format!("PRAGMA incremental_vacuum({excess})"))?;
        let mut rows = st.query([])?;
        while rows.next()?.is_some() {}
    }
    Ok(())
}

/// Deletes the least recently used tiles (of one class, or of both by last use) until `want`
/// bytes (row costs) are gone or nothing is left. Returns the bytes deleted.
fn evict(c: &Connection, class: Option<i64>, want: u64) -> Result<u64> {
    let mut oldest = c.prepare_cached("SELECT id, used, bytes FROM tiles WHERE class = ?1 ORDER BY used LIMIT 256")?;
    let mut delete = c.prepare_cached("DELETE FROM tiles WHERE id = ?1")?;
    let mut freed = 0u64;
    while freed < want {
        let mut rows: Vec<(i64, i64, i64)> = Vec::new();
        for k in class.map_or(vec![0, 1], |k| vec![k]) {
            let found = oldest.query_map([k], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            for row in found {
                rows.push(row?);
            }
        }
        if rows.is_empty() {
            break;
        }
        // Merged by last use; no more than one query's worth, so no older row was left unread.
        rows.sort_by_key(|r| r.1);
        rows.truncate(256);
        for (id, _, bytes) in rows {
            if freed >= want {
                break;
            }
            delete.execute([id])?;
            freed += bytes.max(0) as u64;
        }
    }
    Ok(freed)
}

/// Prepares the file for this layout: a file of another layout (or a new one) is emptied and
/// set to return free pages on request (`auto_vacuum` changes only with a `VACUUM`).
fn prepare_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| crate::TileServerError::io(dir, e))?;
    }
    let c = Connection::open(path)?;
    c.busy_timeout(Duration::from_secs(10))?;
    let version: i64 = c.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    c.execute_batch("DROP TABLE IF EXISTS tiles")?;
    c.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    // Fails only while another process holds the file; the layout is right either way, the file
    // then just keeps its free pages.
    let _ = c.execute_batch("VACUUM");
    c.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(())
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[derive(Debug)]
pub(crate) struct Cache {
    path: PathBuf,
    db: Db,
    budget: Budget,
    pending: std::sync::Mutex<Pending>,
    /// The last use stamp given: microseconds since 1970, strictly increasing in this process.
    clock: AtomicI64,
}

impl Cache {
    pub fn open(path: &Path, budget: Budget) -> Result<Self> {
        prepare_file(path)?;
        let db = Db::open(path, DDL)?;
        let wal = budget.wal_limit();
        let latest = db.write(|c| {
            let page: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
            c.pragma_update(None, "journal_size_limit", i64::try_from(wal).unwrap_or(i64::MAX))?;
            c.pragma_update(None, "wal_autocheckpoint", (i64::try_from(wal).unwrap_or(i64::MAX) / page.max(1)).max(1))?;
            let latest: Option<i64> = c.query_row(
                "SELECT max(m) FROM (SELECT max(used) AS m FROM tiles WHERE class = 0 UNION ALL SELECT max(used) FROM tiles WHERE class = 1)",
                [],
                |r| r.get(0),
            )?;
            Ok(latest.unwrap_or(0))
        })?;
        Ok(Cache {
            path: path.to_owned(),
            db,
            budget,
            pending: std::sync::Mutex::new(Pending::default()),
            clock: AtomicI64::new(latest),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A new last-use stamp.
    fn stamp(&self) -> i64 {
        let now = now_micros();
        let mut cur = self.clock.load(Ordering::SeqCst);
        loop {
            let next = (cur + 1).max(now);
            match self.clock.compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst) {
                Ok(_) => return next,
                Err(c) => cur = c,
            }
        }
    }

    pub fn get(&self, k: &CacheKey<'_>) -> Result<Option<Vec<u8>>> {
        if let Some(d) = self.queued(k) {
            return Ok(Some(d));
        }
        let found: Option<Vec<u8>> = self.db.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT data FROM tiles WHERE layer = ?1 AND tms = ?2 AND z = ?3 AND x = ?4 AND y = ?5 AND tx = ?6 AND variant = ?7",
            )?;
            Ok(st.query_row(params![k.layer, k.tms, k.z, k.x, k.y, k.tx, k.variant], |r| r.get(0)).optional()?)
        })?;
        if found.is_some() && self.touch(k) {
            let touched = std::mem::take(&mut self.lock().touched);
            self.db.write(|c| {
                let tx = c.transaction()?;
                write_touches(&tx, &touched)?;
                tx.commit()?;
                Ok(())
            })?;
        }
        Ok(found)
    }

    /// Records a use of a cached tile (written with the next batch). No I/O: callers on the async
    /// threads use it. Returns whether enough uses are waiting to be worth a write of their own.
    pub fn touch(&self, k: &CacheKey<'_>) -> bool {
        let used = self.stamp();
        let mut p = self.lock();
        if p.touched.len() >= 4 * TOUCH_BATCH {
            // Nobody wrote them yet (only memory hits lately): older uses are as good.
            return true;
        }
        p.touched.insert(Owned::of(k), used);
        p.touched.len() >= TOUCH_BATCH
    }

    /// Queues a tile rendered at invalidation epoch `epoch`; queued tiles are written in one
    /// transaction per batch (one commit per tile was a tenth of a generated tile's cost), and
    /// only if no invalidation happened since they were rendered (`current()` still equals
    /// `epoch` under the writer lock, which invalidation also takes). Tiles the budget does not
    /// admit (its class has no room, or the tile alone would take an eighth of it) are not kept.
    pub fn put(&self, k: &CacheKey<'_>, data: &[u8], epoch: u64, current: &dyn Fn() -> u64) -> Result<()> {
        if !self.budget.admits(k.class(), row_bytes(k, data.len())) {
            return Ok(());
        }
        let used = self.stamp();
        let batch = {
            let mut p = self.lock();
            p.items.push(Queued { key: Owned::of(k), data: data.to_vec(), epoch, used });
            p.bytes += data.len();
            let since = *p.since.get_or_insert_with(Instant::now);
            if p.items.len() < BATCH && p.bytes < self.budget.batch_bytes() && since.elapsed() < Duration::from_secs(1)
            {
                return Ok(());
            }
            p.take()
        };
        self.db.write(|c| {
            write_batch(c, batch, current, self.budget)?;
            self.trim_wal(c)
        })
    }

    /// Checkpoints and truncates the WAL when it outgrew its limit (SQLite's own checkpoints
    /// keep the file at its largest size). Readers in the middle of a lookup make it wait for
    /// the next batch instead of waiting for them.
    fn trim_wal(&self, c: &Connection) -> Result<()> {
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        if std::fs::metadata(&wal).map_or(0, |m| m.len()) <= self.budget.wal_limit() {
            return Ok(());
        }
        c.busy_timeout(Duration::ZERO)?;
        let done = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        c.busy_timeout(Duration::from_secs(10))?;
        match done {
            Ok(())
            | Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error { code: rusqlite::ErrorCode::DatabaseBusy, .. },
                _,
            )) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Writes every queued tile (still valid) and use now.
    pub fn flush(&self, current: &dyn Fn() -> u64) -> Result<()> {
        self.db.write(|c| self.flush_locked(c, current))
    }

    fn flush_locked(&self, c: &mut Connection, current: &dyn Fn() -> u64) -> Result<()> {
        let batch = self.lock().take();
        write_batch(c, batch, current, self.budget)?;
        self.trim_wal(c)
    }

    /// A queued tile not yet written.
    fn queued(&self, k: &CacheKey<'_>) -> Option<Vec<u8>> {
        let p = self.lock();
        p.items.iter().rev().find(|q| q.key.is(k)).map(|q| q.data.clone())
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

    /// Whether any tile of `layer` is on disk (an index probe, not a count).
    pub fn has_any(&self, layer: &str) -> Result<bool> {
        self.db.read(|c| {
            Ok(c.prepare_cached("SELECT EXISTS (SELECT 1 FROM tiles WHERE layer = ?1)")?
                .query_row([layer], |r| r.get(0))?)
        })
    }

    /// Number of cached tiles of `layer` (all layers when `None`).
    pub fn count(&self, layer: Option<&str>) -> Result<u64> {
        self.db.read(|c| {
            let n: i64 = match layer {
                Some(l) => c.query_row("SELECT count(*) FROM tiles WHERE layer = ?1", [l], |r| r.get(0))?,
                None => c.query_row("SELECT sum(tiles) FROM usage", [], |r| r.get(0))?,
            };
            Ok(n.max(0) as u64)
        })
    }

    /// The totals kept by the triggers and the files' sizes.
    pub fn usage(&self) -> Result<CacheUsage> {
        let mut u = self.db.read(|c| {
            let mut u = CacheUsage::default();
            let mut st = c.prepare_cached("SELECT class, tiles, bytes FROM usage")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))?;
            for row in rows {
                let (class, tiles, bytes) = row?;
                let (tiles, bytes) = (tiles.max(0) as u64, bytes.max(0) as u64);
                u.tiles += tiles;
                u.bytes += bytes;
                if class == 1 {
                    (u.secondary_tiles, u.secondary_bytes) = (tiles, bytes);
                }
            }
            Ok(u)
        })?;
        for suffix in ["", "-wal", "-shm"] {
            let mut name = self.path.clone().into_os_string();
            name.push(suffix);
            u.file_bytes += std::fs::metadata(&name).map_or(0, |m| m.len());
        }
        Ok(u)
    }

    /// Whether a tile is in the file (no use recorded).
    #[cfg(test)]
    pub fn contains(&self, k: &CacheKey<'_>) -> Result<bool> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT 1 FROM tiles WHERE layer = ?1 AND tms = ?2 AND z = ?3 AND x = ?4 AND y = ?5 AND tx = ?6 AND variant = ?7",
                params![k.layer, k.tms, k.z, k.x, k.y, k.tx, k.variant],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
    }

    /// (tiles, bytes, secondary tiles, secondary bytes) counted from the rows themselves.
    #[cfg(test)]
    pub fn recount(&self) -> Result<(u64, u64, u64, u64)> {
        self.db.read(|c| {
            Ok(c.query_row(
                "SELECT count(*), coalesce(sum(bytes), 0), count(*) FILTER (WHERE class = 1),
                        coalesce(sum(bytes) FILTER (WHERE class = 1), 0) FROM tiles",
                [],
                |r| {
                    let n = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
                    Ok((n(0)?, n(1)?, n(2)?, n(3)?))
                },
            )?)
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
