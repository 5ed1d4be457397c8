//! The PostgreSQL + PostGIS backend: the central store of a city, several server processes on
//! one database.
//!
//! Same semantics as the SQLite backend, checked by the same conformance suite (`tests.rs`).
//! How it keeps the store's invariants on a database many connections (and processes) write:
//!
//! - **Writers serialize** on one transaction-scoped advisory lock ([`WRITER_LOCK`]) taken right
//!   after `BEGIN`: the transaction number (`max(tx) + 1`) and its time (strictly after the last
//!   one) are read under the lock, and the lock is released only after the commit is visible. So
//!   transaction numbers — and with them change positions — follow commit order, in one process
//!   or many (the lock lives in the database, not in a process).
//! - **Reads** run in a `REPEATABLE READ READ ONLY` transaction each ([`PgStore::read`]): one
//!   snapshot per call, so a change page, both halves of an as-of query and a diff page never mix
//!   two states. Seeing transaction N implies seeing every one before it (N began after N−1 was
//!   visible), so a page's "after the snapshot's newest transaction" never skips a commit.
//!   A current query (no as-of) of a layer this process has read before is instead ONE
//!   statement outside a transaction (`read::query_single`): in READ COMMITTED a statement is
//!   its own snapshot, and that statement returns the rows, the snapshot's newest transaction
//!   and the layer's `created_tx` + schema transaction, against which the cached definition is
//!   checked before any row is decoded (stale or failing: the transaction path, afresh).
//! - **A failed statement** aborts a PostgreSQL transaction; the store never lets that pass as a
//!   commit (`tx.rs` remembers it and refuses to commit), and savepoints (`StoreTx::savepoint`)
//!   are real ones, so one entity of a sync batch can fail alone.
//!
//! Connections come from a small pool of our own (`pool.rs`): the `postgres` client is
//! synchronous, store calls already run off the async threads, and the pool needs little more
//! than the SQLite backend's reader pool (idle clients, a cap on open ones; `r2d2` would add a
//! dependency and a reaper thread for the same). Write transactions of one process queue on an
//! in-process mutex before they take a connection, so waiting writers hold none. Never call this
//! backend from inside a tokio runtime thread (the sync client runs its own runtime and panics
//! there).

mod bulk;
mod codec;
mod deferred;
mod journal;
mod layers;
mod pool;
mod raw;
mod read;
mod replica;
mod sync;
mod tx;
mod updates;

use std::cell::Cell;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;

use crate::clock::{Clock, SystemClock};
use crate::error::{Result, StoreError};
use crate::types::*;
use crate::{FeatureStore, StoreTx};

pub(crate) use pool::PgConn;
use read::Behind;

/// Store schema version this build writes and understands (its own numbering, apart from the
/// SQLite backend's).
pub const SCHEMA_VERSION: i64 = 1;

/// Migrations, applied in order at open under [`MIGRATION_LOCK`]. A database whose
/// `sk_meta.schema_version` is above the last one here was written by a newer shikong and is
/// refused.
const MIGRATIONS: &[(i64, &str)] = &[(SCHEMA_VERSION, include_str!("../../migrations/postgres/0001_store.sql"))];

/// The advisory lock every write transaction takes (`pg_advisory_xact_lock`): one writer at a
/// time per database, across processes. ("SHIKONGW")
pub(crate) const WRITER_LOCK: i64 = 0x5348_494B_4F4E_4757;

/// Connections a store opens at most (`SHIKONG_PG_CONNECTIONS` overrides): readers, one
/// writer, and the outbox.
const MAX_CONNECTIONS: usize = 32;

/// The advisory lock held while migrating, so two processes starting together do not both
/// migrate. ("SHIKONGM")
const MIGRATION_LOCK: i64 = 0x5348_494B_4F4E_474D;

/// The PostgreSQL/PostGIS store.
pub struct PgStore {
    /// The URL with its password hidden (for messages).
    shown: String,
    pool: pool::Pool,
    /// The connection settings, for the commit watcher's own connection (`crate::watch`).
    config: postgres::Config,
    /// Write transactions of this process wait here, without holding a connection, before they
    /// wait for the database's writer lock.
    writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    store_id: String,
    /// A streaming standby serving the reads marked for it (`replica.rs`).
    replica: Option<replica::Replica>,
    /// The newest transaction this process knows the primary holds (standby reads wait for it).
    known: replica::Known,
    /// Layer definitions for single-statement reads (`read::query_single`).
    layer_cache: read::LayerCache,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.shown)
            .field("read_replica", &self.replica.as_ref().map(|r| &r.shown))
            .field("store_id", &self.store_id)
            .finish()
    }
}

impl PgStore {
    /// Opens the store in the database at `url` (`postgres://…`); with `create`, makes its tables
    /// when the database has none yet (PostGIS must be installable there).
    pub fn open(url: &str, create: bool) -> Result<Self> {
        Self::open_with_replica(url, None, create)
    }

    /// [`PgStore::open`] with a read replica: a streaming standby of that database at
    /// `replica` serving the reads marked by [`crate::read_route::replica_allowed`], when it is
    /// up and caught up (see `replica.rs`). The standby is not contacted until the first such
    /// read: it may be down when the store opens. Its URL gets `connect_timeout=2` unless it
    /// names one (a vanished standby must not hold reads up).
    pub fn open_with_replica(url: &str, replica: Option<&str>, create: bool) -> Result<Self> {
        let replica = replica.map(replica_pool).transpose()?;
        let shown = crate::open::redact(url);
        let config = postgres::Config::from_str(url)
            .map_err(|e| StoreError::InvalidConfig { config: shown.clone(), reason: e.to_string() })?;
        let mut conn = PgConn::connect(&config, &shown)?;
        migrate(&mut conn, &shown, create)?;
        let store_id = conn
            .query_opt("SELECT value FROM sk_meta WHERE key = 'store_id'", &[])?
            .map(|r| r.get::<_, String>(0))
            .unwrap_or_default();
        let max = std::env::var("SHIKONG_PG_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(MAX_CONNECTIONS);
        let pool = pool::Pool::new(config.clone(), shown.clone(), conn, max);
        Ok(PgStore {
            shown,
            pool,
            config,
            writer: Mutex::new(()),
            clock: Arc::new(SystemClock),
            store_id,
            replica,
            known: replica::Known::new(),
            layer_cache: read::LayerCache::default(),
        })
    }

    /// Replaces the clock transaction times come from (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The store's id (`sk_meta.store_id`), the same in every process opening this database.
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Runs `f` in one `REPEATABLE READ READ ONLY` transaction: everything it reads comes from one
    /// snapshot. The current cancel token's deadline becomes the statements' `statement_timeout`.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&mut PgConn) -> Result<R>) -> Result<R> {
        read_on(&self.pool, f)
    }

    /// [`PgStore::read_routed`] for a read whose `f` makes its own snapshot: one statement
    /// (READ COMMITTED, outside a transaction), or [`in_snapshot`] when it needs more.
    fn read_routed_single<R>(
        &self,
        at_least: TxId,
        delivered: &dyn Fn() -> bool,
        f: impl FnMut(&mut PgConn, TxId) -> Result<std::result::Result<R, Behind>>,
    ) -> Result<R> {
        self.route(at_least, delivered, false, f)
    }

    /// Whether this store reads from a replica (a standby URL was given).
    pub fn has_read_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// A read the standby may serve (`replica.rs`): `f(conn, need)` reads in one snapshot and
    /// answers [`Behind`] — before handing anything out — when that snapshot's newest
    /// transaction is older than `need`. `at_least` is the read's own minimum (a cursor's pinned
    /// transaction); `delivered` says whether `f` already handed rows to its caller (a failure
    /// then cannot be retried elsewhere). Without the mark, a replica, or when the standby
    /// cannot serve, the primary reads (retried once on a fresh connection when the first one
    /// had broken: after a failover the pool's idle connections are dead).
    fn read_routed<R>(
        &self,
        at_least: TxId,
        delivered: &dyn Fn() -> bool,
        f: impl FnMut(&mut PgConn, TxId) -> Result<std::result::Result<R, Behind>>,
    ) -> Result<R> {
        self.route(at_least, delivered, true, f)
    }

    /// [`PgStore::read_routed`], `f` in a transaction of its own when `tx`.
    fn route<R>(
        &self,
        at_least: TxId,
        delivered: &dyn Fn() -> bool,
        tx: bool,
        mut f: impl FnMut(&mut PgConn, TxId) -> Result<std::result::Result<R, Behind>>,
    ) -> Result<R> {
        if let Some(rep) = &self.replica
            && crate::read_route::is_replica_allowed()
            && let Some(r) = self.standby_read(rep, at_least, delivered, tx, &mut f)?
        {
            return Ok(r);
        }
        let mut r = read_with(&self.pool, tx, |c| f(c, TxId(0)));
        if matches!(&r, Err(e) if e.is_unavailable() && !matches!(e, StoreError::Connect { .. })) && !delivered() {
            r = read_with(&self.pool, tx, |c| f(c, TxId(0)));
        }
        r?.map_err(|Behind| StoreError::Corrupt("a primary snapshot older than transaction 0".into()))
    }

    /// The standby's answer, or `None` to read the primary instead.
    fn standby_read<R>(
        &self,
        rep: &replica::Replica,
        at_least: TxId,
        delivered: &dyn Fn() -> bool,
        tx: bool,
        f: &mut impl FnMut(&mut PgConn, TxId) -> Result<std::result::Result<R, Behind>>,
    ) -> Result<Option<R>> {
        let now = Instant::now();
        if !rep.health().usable(now) {
            return Ok(None);
        }
        if self.known.refresh_due(now) {
            // The primary being down is no reason to fail a read the standby can serve.
            if let Ok(tx) = self.read(read::latest_tx) {
                self.known.note(tx);
            }
        }
        let need = at_least.max(self.known.get());
        let started = Instant::now();
        loop {
            crate::cancel::check()?;
            match read_with(&rep.pool, tx, |c| f(c, need)) {
                Ok(Ok(r)) => {
                    rep.health().served();
                    return Ok(Some(r));
                }
                Ok(Err(Behind)) => match replica::retry_after(started.elapsed()) {
                    Some(pause) => std::thread::sleep(pause),
                    None => {
                        rep.health().behind(Instant::now());
                        return Ok(None);
                    }
                },
                Err(e @ StoreError::Cancelled(_)) => return Err(e),
                Err(e) if delivered() => return Err(e),
                // Created on the primary, not replayed yet (or a mistake the primary repeats).
                Err(StoreError::NoSuchLayer(_)) => return Ok(None),
                Err(e) => {
                    if replica::is_down(&e) {
                        rep.health().down(Instant::now());
                    }
                    return Ok(None);
                }
            }
        }
    }

    /// A pooled connection (returned to the pool when dropped).
    pub(crate) fn conn(&self) -> Result<pool::Pooled<'_>> {
        self.pool.get()
    }

    /// This process's turn to write (held by a write transaction for its life).
    pub(crate) fn writer_turn(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// [`read_on`] when `tx`, else `f` on a connection outside any transaction, its statements
/// bounded by the cancel token's deadline.
fn read_with<R>(pool: &pool::Pool, tx: bool, f: impl FnOnce(&mut PgConn) -> Result<R>) -> Result<R> {
    if tx {
        return read_on(pool, f);
    }
    crate::cancel::check()?;
    let mut conn = pool.get()?;
    conn.session_timeout(crate::cancel::current_deadline())?;
    f(&mut conn)
}

/// [`PgStore::read`] on a connection of `pool` (the primary's or the standby's).
fn read_on<R>(pool: &pool::Pool, f: impl FnOnce(&mut PgConn) -> Result<R>) -> Result<R> {
    crate::cancel::check()?;
    let mut conn = pool.get()?;
    in_snapshot(&mut conn, f)
}

/// `f` in one `REPEATABLE READ READ ONLY` transaction on `conn`.
fn in_snapshot<R>(conn: &mut PgConn, f: impl FnOnce(&mut PgConn) -> Result<R>) -> Result<R> {
    let mut begin = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;");
    if let Some(deadline) = crate::cancel::current_deadline() {
        let ms = deadline.saturating_duration_since(std::time::Instant::now()).as_millis().max(1);
        begin.push_str(&format!(" SET LOCAL statement_timeout = {ms};"));
    }
    conn.begin(&begin)?;
    let r = f(conn);
    match r {
        Ok(v) => {
            conn.finish("COMMIT")?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.finish("ROLLBACK");
            Err(e)
        }
    }
}

/// The standby's pool: empty until its first read, with a connect timeout.
fn replica_pool(url: &str) -> Result<replica::Replica> {
    let shown = crate::open::redact(url);
    let mut config = postgres::Config::from_str(url)
        .map_err(|e| StoreError::InvalidConfig { config: shown.clone(), reason: e.to_string() })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(2));
    }
    let max = std::env::var("SHIKONG_PG_CONNECTIONS").ok().and_then(|v| v.parse().ok()).unwrap_or(MAX_CONNECTIONS);
    Ok(replica::Replica::new(pool::Pool::empty(config, shown.clone(), max), shown))
}

fn migrate(conn: &mut PgConn, shown: &str, create: bool) -> Result<()> {
    conn.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])?;
    let r = migrate_locked(conn, shown, create);
    let unlocked = conn.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    r?;
    unlocked?;
    Ok(())
}

fn migrate_locked(conn: &mut PgConn, shown: &str, create: bool) -> Result<()> {
    let has_meta: bool = conn.query_one("SELECT to_regclass('sk_meta') IS NOT NULL", &[])?.get(0);
    let current: i64 = if has_meta {
        conn.query_opt("SELECT value FROM sk_meta WHERE key = 'schema_version'", &[])?
            .map(|r| r.get::<_, String>(0).parse().unwrap_or(i64::MAX))
            .unwrap_or(0)
    } else if create {
        0
    } else {
        return Err(StoreError::NotAStore {
            path: shown.to_owned(),
            reason: "this database holds no shikong store (create it with `shikong init --store …`)".into(),
        });
    };
    let supported = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > supported {
        return Err(StoreError::TooNew { path: shown.to_owned(), found: current, supported });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.begin("BEGIN")?;
        let applied = (|| -> Result<()> {
            conn.batch(sql)?;
            conn.execute(
                "INSERT INTO sk_meta (key, value) VALUES ('schema_version', $1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                &[&version.to_string()],
            )?;
            conn.execute(
                "INSERT INTO sk_meta (key, value) VALUES ('store_id', $1), ('created_at', $2) ON CONFLICT DO NOTHING",
                &[&uuid::Uuid::now_v7().to_string(), &Timestamp::now().to_string()],
            )?;
            Ok(())
        })();
        match applied {
            Ok(()) => conn.finish("COMMIT")?,
            Err(e) => {
                let _ = conn.finish("ROLLBACK");
                return Err(StoreError::Corrupt(format!("{shown}: migration {version} failed: {e}")));
            }
        }
    }
    Ok(())
}

impl FeatureStore for PgStore {
    fn layers(&self) -> Result<Vec<Layer>> {
        self.read_routed(TxId(0), &|| false, |c, need| {
            let (all, latest) = layers::load_all_with_latest(c)?;
            Ok(if latest < need { Err(Behind) } else { Ok(all) })
        })
    }

    fn layer(&self, name: &str) -> Result<Layer> {
        self.read_routed(TxId(0), &|| false, |c, need| {
            let (layer, latest, _) = layers::load_for_read(c, name, None)?;
            Ok(if latest < need { Err(Behind) } else { Ok(layer) })
        })
    }

    fn begin(&self, meta: TxMeta) -> Result<Box<dyn StoreTx + '_>> {
        let tx = Box::new(tx::PgTx::begin(self, meta)?);
        Ok(match self.replica {
            // Its commit is noted before it returns: this process's next standby read waits for it.
            Some(_) => Box::new(replica::Noted { inner: tx, known: &self.known }),
            None => tx,
        })
    }

    fn query(&self, q: &Query<'_>, sink: &mut dyn FnMut(StoredFeature) -> bool) -> Result<QueryStats> {
        let delivered = Cell::new(false);
        let cache = &self.layer_cache;
        self.read_routed_single(q.at_tx.unwrap_or(TxId(0)), &|| delivered.get(), |c, need| {
            let mut deliver = |f| {
                delivered.set(true);
                sink(f)
            };
            // One statement when the layer is known and the query current, else a snapshot.
            if let Some(r) = read::query_single(c, q, need, cache, &mut deliver)? {
                return Ok(r);
            }
            in_snapshot(c, |c| read::query_fresh(c, q, need, cache, &mut deliver))
        })
    }

    fn get(&self, layer: &str, key: &FeatureKey, as_of: Option<Timestamp>) -> Result<Option<StoredFeature>> {
        self.read_routed(TxId(0), &|| false, |c, need| read::get_fresh(c, layer, key, as_of, need))
    }

    fn get_many(&self, layer: &str, ids: &[EntityId]) -> Result<std::collections::HashMap<EntityId, StoredFeature>> {
        let l = self.layer(layer)?;
        let uuids: Vec<uuid::Uuid> = ids.iter().map(|id| id.0).collect();
        self.read(|c| {
            c.query(&read::current_select(&l, "t.entity_id = ANY ($1)"), &[&uuids])?
                .iter()
                .map(|r| read::decode_current(&l, r).map(|cur| (cur.feature.id, cur.stored())))
                .collect()
        })
    }

    fn history(&self, layer: &str, key: &FeatureKey) -> Result<Vec<VersionRecord>> {
        self.read(|c| journal::history(c, layer, key))
    }

    fn diff(&self, layer: &str, from: Timestamp, to: Timestamp) -> Result<Diff> {
        Ok(self.read(|c| journal::diff(c, layer, from, to, None, usize::MAX))?.diff)
    }

    fn diff_page(
        &self,
        layer: &str,
        from: Timestamp,
        to: Timestamp,
        after: Option<EntityId>,
        limit: usize,
    ) -> Result<DiffPage> {
        self.read(|c| journal::diff(c, layer, from, to, after, limit))
    }

    fn count(&self, layer: &str) -> Result<u64> {
        self.read(|c| {
            let l = layers::load(c, layer)?;
            let n: i64 = c.query_one(&format!("SELECT count(*) FROM {}", layers::table(l.name())), &[])?.get(0);
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    fn transactions(&self, after: Option<TxId>, limit: usize) -> Result<Vec<TxRecord>> {
        self.read(|c| journal::transactions(c, after, limit))
    }

    fn latest_tx(&self) -> Result<TxId> {
        self.read(read::latest_tx)
    }

    fn layer_last_tx(&self, layer: &str) -> Result<Option<TxId>> {
        self.read(|c| {
            let l = layers::load(c, layer)?;
            let (t, h) = (layers::table(l.name()), layers::hist(l.name()));
            let tx: Option<i64> = c
                .query_one(
                    &format!(
                        "SELECT greatest((SELECT max(sk_tx) FROM {t}), (SELECT max(tx_from) FROM {h}), \
                         (SELECT max(tx_to) FROM {h}))"
                    ),
                    &[],
                )?
                .get(0);
            Ok(tx.map(TxId))
        })
    }

    fn versions_at(
        &self,
        layer: &str,
        tx: TxId,
        area: Option<&shikong_model::Geometry>,
        sink: &mut dyn FnMut(EntityId, i64),
    ) -> Result<()> {
        self.read(|c| journal::versions_at(c, layer, tx, area, sink))
    }

    fn tx_time(&self, tx: TxId) -> Result<Option<Timestamp>> {
        self.read(|c| {
            let us: Option<i64> = c
                .query_opt("SELECT time_us FROM sk_transactions WHERE tx <= $1 ORDER BY tx DESC LIMIT 1", &[&tx.0])?
                .map(|r| r.get(0));
            Ok(us.map(codec::micros_to_ts))
        })
    }

    fn changes_since(&self, layer: &str, cursor: ChangeCursor, limit: usize) -> Result<ChangePage> {
        self.read(|c| journal::changes_since(c, layer, cursor, limit))
    }

    fn entities_created_by(&self, layer: &str, author: &str) -> Result<Vec<EntityId>> {
        self.read(|c| journal::entities_created_by(c, layer, author))
    }

    fn commit_signal(&self) -> crate::watch::CommitSignal {
        crate::watch::CommitSignal::Listen(Box::new(self.config.clone()), self.shown.clone())
    }
}

#[cfg(test)]
mod replica_tests;
#[cfg(test)]
mod tests;
