//! The embedded SQLite/GeoPackage backend.
//!
//! One writer connection (SQLite allows one writer at a time; `BEGIN IMMEDIATE` takes the lock up
//! front so a transaction never fails half-way on contention) and a pool of reader connections in
//! WAL mode, so queries run concurrently with a write and see only committed data.
//!
//! This module implements [`FeatureStore`] (with `layers.rs`, `read.rs`, `tx.rs`); `sync.rs`
//! implements the sync bookkeeping on the same connections, so one SQLite transaction covers both.

pub(crate) mod codec;
mod group;
mod journal;
pub(crate) mod layers;
mod outbox;
mod raw;
mod read;
mod rtree_pack;
mod sync;
mod tx;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jiff::Timestamp;
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::clock::{Clock, SystemClock};
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{FeatureStore, StoreTx};

/// Store schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 7;

/// Embedded migrations, applied in order at open. A store whose `schema_version` is above the last
/// one here was written by a newer shikong and is refused.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../../../migrations/sqlite/0001_store.sql")),
    (2, include_str!("../../../../migrations/sqlite/0002_sync.sql")),
    (3, include_str!("../../../../migrations/sqlite/0003_author_index.sql")),
    (4, include_str!("../../../../migrations/sqlite/0004_tx_replica.sql")),
    (5, include_str!("../../../../migrations/sqlite/0005_blob_refs.sql")),
    (6, include_str!("../../../../migrations/sqlite/0006_audit_outbox.sql")),
    (SCHEMA_VERSION, include_str!("../../../../migrations/sqlite/0007_conflicts.sql")),
];

/// The SQLite/GeoPackage store.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Mutex<group::WriterConn>,
    /// The group commit's shared state ([`group`]).
    durability: group::Durability,
    /// Grouped transactions share commits (off with `SHIKONG_GROUP_COMMIT=off`: each commits
    /// on its own, for comparison in benchmarks).
    group_commit: bool,
    readers: Mutex<Vec<Connection>>,
    clock: Arc<dyn Clock>,
}

fn io_path(path: &Path) -> String {
    path.display().to_string()
}

fn connect(path: &Path, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::NotAStore { path: io_path(path), reason: e.to_string() })?;
    shikong_gpkg::register_functions(&conn)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    // A statement of work whose caller has gone stops within a few thousand VM steps.
    conn.progress_handler(crate::cancel::PROGRESS_OPS, Some(crate::cancel::interrupt_requested));
    // FULL: a commit survives power loss, not only a crash of this process (nothing lost, ever).
    conn.execute_batch(
        "PRAGMA foreign_keys = ON; PRAGMA case_sensitive_like = ON; PRAGMA synchronous = FULL; PRAGMA cache_size = -65536;",
    )
    .map_err(|e| StoreError::NotAStore { path: io_path(path), reason: e.to_string() })?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens the store at `path`, creating it when missing.
    pub fn open_or_create(path: impl AsRef<Path>) -> Result<Self> {
        Self::open_inner(path.as_ref(), true)
    }

    /// Opens an existing store.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.exists() {
            return Err(StoreError::NotAStore {
                path: io_path(path),
                reason: "no such file (create it with `shikong init`)".into(),
            });
        }
        Self::open_inner(path, false)
    }

    /// Replaces the clock transaction times come from (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open_inner(path: &Path, create: bool) -> Result<Self> {
        let fresh = !path.exists() || std::fs::metadata(path).map(|m| m.len() == 0).unwrap_or(false);
        let conn = connect(path, create)?;
        let not_store = |reason: String| StoreError::NotAStore { path: io_path(path), reason };
        if fresh {
            conn.execute_batch("PRAGMA journal_mode = WAL;").map_err(|e| not_store(e.to_string()))?;
            conn.execute_batch("BEGIN IMMEDIATE;")?;
            shikong_gpkg::init(&conn)?;
            conn.execute_batch("COMMIT;")?;
        } else {
            // Any read fails here on a file that is not SQLite at all.
            let app: i32 =
                conn.pragma_query_value(None, "application_id", |r| r.get(0)).map_err(|e| not_store(e.to_string()))?;
            if app != shikong_gpkg::APPLICATION_ID {
                return Err(not_store("not a GeoPackage (application_id is not GPKG)".into()));
            }
            let has_meta: Option<String> = conn
                .query_row("SELECT name FROM sqlite_master WHERE type='table' AND name='sk_meta'", [], |r| r.get(0))
                .optional()?;
            if has_meta.is_none() {
                return Err(not_store(
                    "a GeoPackage without shikong tables (import it with `shikong import` instead)".into(),
                ));
            }
            conn.execute_batch("PRAGMA journal_mode = WAL;").map_err(|e| not_store(e.to_string()))?;
        }
        migrate(&conn, path)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(group::WriterConn::new(conn)),
            durability: group::Durability::default(),
            group_commit: std::env::var("SHIKONG_GROUP_COMMIT").map_or(true, |v| v != "off"),
            readers: Mutex::new(Vec::new()),
            clock: Arc::new(SystemClock),
        })
    }

    fn reader(&self) -> Result<Reader<'_>> {
        let pooled = self.readers.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = connect(&self.path, false)?;
                // Map the file: page reads become memory reads instead of pread copies.
                c.execute_batch("PRAGMA query_only = ON; PRAGMA mmap_size = 17179869184;")?;
                c
            }
        };
        Ok(Reader { store: self, conn: Some(conn) })
    }

    /// The writer for a plain (ungrouped) use: any open group is committed first, so what
    /// follows starts from a connection outside any transaction.
    fn writer(&self) -> MutexGuard<'_, group::WriterConn> {
        let mut w = self.durability.waiting_for(|| self.writer.lock().unwrap_or_else(PoisonError::into_inner));
        self.durability.flush(&mut w);
        w
    }

    /// The writer for a member of a group commit (the group may be open).
    fn writer_grouped(&self) -> MutexGuard<'_, group::WriterConn> {
        self.durability.waiting_for(|| self.writer.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Grouped transactions committed so far, and the disk syncs (group commits) they took:
    /// `(groups, members)`.
    pub fn group_commits(&self) -> (u64, u64) {
        self.durability.committed()
    }

    /// Waits for group `generation` to commit (see [`group`]).
    fn wait_durable(&self, generation: u64) -> Result<()> {
        self.durability.wait(generation, |d, g| {
            let mut w = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
            d.flush_if_open(&mut w, g);
        })
    }
}

/// A pooled read connection, returned to the pool on drop.
struct Reader<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        // Always Some until drop.
        self.conn.as_ref().unwrap_or_else(|| unreachable!("reader used after drop"))
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            let mut pool = self.store.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if pool.len() < 16 {
                pool.push(c);
            }
        }
    }
}

fn migrate(conn: &Connection, path: &Path) -> Result<()> {
    let has_meta = conn
        .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sk_meta'", [], |_| Ok(()))
        .optional()?
        .is_some();
    let current: i64 = if !has_meta {
        0
    } else {
        conn.query_row("SELECT value FROM sk_meta WHERE key = 'schema_version'", [], |r| r.get::<_, String>(0))
            .optional()?
            .map(|v| v.parse().unwrap_or(i64::MAX))
            .unwrap_or(0)
    };
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > supported {
        return Err(StoreError::TooNew { path: io_path(path), found: current, supported });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.execute_batch("BEGIN IMMEDIATE;")?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|()| {
                conn.execute(
                    "INSERT INTO sk_meta (key, value) VALUES ('schema_version', ?1) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    [version.to_string()],
                )
            })
            .and_then(|_| {
                // The attachment references of what the store already holds (schema version 5).
                if *version == 5 { sync::backfill_blob_refs(conn) } else { Ok(()) }
            })
            .and_then(|()| {
                conn.execute(
                    "INSERT OR IGNORE INTO sk_meta (key, value) VALUES ('store_id', ?1), ('created_at', ?2)",
                    [uuid::Uuid::now_v7().to_string(), Timestamp::now().to_string()],
                )
            });
        match applied {
            Ok(_) => conn.execute_batch("COMMIT;")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK;")?;
                return Err(StoreError::Corrupt(format!("migration {version} failed: {e}")));
            }
        }
    }
    Ok(())
}

impl FeatureStore for SqliteStore {
    fn layers(&self) -> Result<Vec<Layer>> {
        layers::load_all(&*self.reader()?)
    }

    fn layer(&self, name: &str) -> Result<Layer> {
        layers::load(&*self.reader()?, name)
    }

    fn begin(&self, meta: TxMeta) -> Result<Box<dyn StoreTx + '_>> {
        Ok(Box::new(tx::SqliteTx::begin(self, self.writer(), None, meta)?))
    }

    fn begin_grouped(&self, meta: TxMeta) -> Result<Box<dyn StoreTx + '_>> {
        if !self.group_commit {
            return self.begin(meta);
        }
        let shield = crate::cancel::Shield::new();
        let mut w = self.writer_grouped();
        self.durability.join(&mut w)?;
        let mut tx = tx::SqliteTx::begin(self, w, Some(&self.durability), meta)?;
        tx.shield(shield);
        Ok(Box::new(tx))
    }

    fn query(&self, q: &Query<'_>, sink: &mut dyn FnMut(StoredFeature) -> bool) -> Result<QueryStats> {
        let reader = self.reader()?;
        // One snapshot for both halves of an as-of query (current rows, then closed versions): a
        // commit between them would otherwise show a superseded version twice or not at all.
        let snapshot = reader.unchecked_transaction()?;
        let stats = read::query(&snapshot, q, sink)?;
        snapshot.commit()?;
        Ok(stats)
    }

    fn versions_at(
        &self,
        layer: &str,
        tx: TxId,
        area: Option<&shikong_model::Geometry>,
        sink: &mut dyn FnMut(EntityId, i64),
    ) -> Result<()> {
        let reader = self.reader()?;
        let snapshot = reader.unchecked_transaction()?;
        journal::versions_at(&snapshot, layer, tx, area, sink)?;
        snapshot.commit()?;
        Ok(())
    }

    fn get(&self, layer: &str, key: &FeatureKey, as_of: Option<Timestamp>) -> Result<Option<StoredFeature>> {
        read::get(&*self.reader()?, layer, key, as_of)
    }

    fn history(&self, layer: &str, key: &FeatureKey) -> Result<Vec<VersionRecord>> {
        journal::history(&*self.reader()?, layer, key)
    }

    fn diff(&self, layer: &str, from: Timestamp, to: Timestamp) -> Result<Diff> {
        Ok(journal::diff(&*self.reader()?, layer, from, to, None, usize::MAX)?.diff)
    }

    fn diff_page(
        &self,
        layer: &str,
        from: Timestamp,
        to: Timestamp,
        after: Option<EntityId>,
        limit: usize,
    ) -> Result<DiffPage> {
        let reader = self.reader()?;
        let snapshot = reader.unchecked_transaction()?;
        let page = journal::diff(&snapshot, layer, from, to, after, limit)?;
        snapshot.commit()?;
        Ok(page)
    }

    fn count(&self, layer: &str) -> Result<u64> {
        let conn = self.reader()?;
        let l = layers::load(&conn, layer)?;
        let n: i64 =
            conn.query_row(&format!("SELECT count(*) FROM {}", shikong_gpkg::quote_ident(l.name())), [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    fn transactions(&self, after: Option<TxId>, limit: usize) -> Result<Vec<TxRecord>> {
        journal::transactions(&*self.reader()?, after, limit)
    }

    fn latest_tx(&self) -> Result<TxId> {
        let tx: Option<i64> = self.reader()?.query_row("SELECT max(tx) FROM sk_transactions", [], |r| r.get(0))?;
        Ok(TxId(tx.unwrap_or(0)))
    }

    fn layer_last_tx(&self, layer: &str) -> Result<Option<TxId>> {
        let conn = self.reader()?;
        let l = layers::load(&conn, layer)?;
        // Current rows carry their version's transaction; history rows were closed (tx_to) by the
        // update or delete that followed them, and a delete leaves a tombstone (tx_from). Each
        // maximum is one step down its index.
        let (t, h) = (shikong_gpkg::quote_ident(l.name()), shikong_gpkg::quote_ident(&layers::hist_table(l.name())));
        let tx: Option<i64> = conn.query_row(
            &format!(
                "SELECT max(x) FROM (SELECT max(sk_tx) AS x FROM {t} UNION ALL SELECT max(tx_from) FROM {h} \
                 UNION ALL SELECT max(tx_to) FROM {h})"
            ),
            [],
            |r| r.get(0),
        )?;
        Ok(tx.map(TxId))
    }

    fn tx_time(&self, tx: TxId) -> Result<Option<Timestamp>> {
        let us: Option<i64> = self
            .reader()?
            .query_row(
                "SELECT time_us FROM sk_transactions WHERE tx = (SELECT max(tx) FROM sk_transactions WHERE tx <= ?1)",
                [tx.0],
                |r| r.get(0),
            )
            .optional()?;
        Ok(us.map(codec::micros_to_ts))
    }

    fn changes_since(&self, layer: &str, cursor: ChangeCursor, limit: usize) -> Result<ChangePage> {
        let reader = self.reader()?;
        // One read transaction, so the live rows, tombstones, documents and the high-water mark all
        // come from one WAL snapshot. (Separate autocommit statements each take their own snapshot:
        // a push committing between them made a later statement's position pass rows an earlier
        // statement could not see — the cause of devices silently missing changes under load.)
        let snapshot = reader.unchecked_transaction()?;
        let page = journal::changes_since(&snapshot, layer, cursor, limit)?;
        snapshot.commit()?;
        Ok(page)
    }

    fn entities_created_by(&self, layer: &str, author: &str) -> Result<Vec<EntityId>> {
        journal::entities_created_by(&*self.reader()?, layer, author)
    }
}

#[cfg(test)]
mod group_tests;
#[cfg(test)]
mod tests;
