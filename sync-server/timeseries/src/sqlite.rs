//! The embedded backend: a SQLite file of its own (`DATA/timeseries.sqlite`, beside the feature
//! store, so readings never lengthen the store's transactions or its backups' journal), WAL with
//! `synchronous = FULL`, one writer thread committing groups (`crate::writer`), one reader
//! connection. Tables: `sk_ts_readings` (`WITHOUT ROWID`, primary key `(datastream, t)`: the
//! clustered order is the query order), `sk_ts_rollups` (`(datastream, resolution, bucket)`),
//! `sk_ts_corrections`, `sk_ts_deletions` (removed and moved readings' values),
//! `sk_ts_datastreams` (definitions and each one's reading count). The deletions table came
//! after the first release without a schema version change: it is only added (`IF NOT
//! EXISTS`), and an older build opening the file ignores it.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use jiff::{SignedDuration, Timestamp};
use rusqlite::{Connection, OptionalExtension, params};
use shikong_model::Clock;

use crate::logic::{self, Key, Plan, Resolution, coarser_buckets, ts, us};
use crate::writer::{Sink, Writer, WriterOptions};
use crate::{
    Bucket, Correction, Counts, Datastream, DatastreamId, Deletion, Move, Order, Outcome, Reading, Relocated, Result,
    RetentionReport, Rollup, Stored, TimeSeries, TsError, check_limit,
};

/// The file name inside a data folder.
pub const FILE: &str = "timeseries.sqlite";
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sk_ts_datastreams (id INTEGER PRIMARY KEY, unit TEXT NOT NULL, lo REAL NOT NULL,
  hi REAL NOT NULL, retention_us INTEGER, readings INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS sk_ts_readings (datastream INTEGER NOT NULL, t INTEGER NOT NULL, value REAL NOT NULL,
  PRIMARY KEY (datastream, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sk_ts_rollups (datastream INTEGER NOT NULL, resolution INTEGER NOT NULL,
  bucket INTEGER NOT NULL, n INTEGER NOT NULL, sum REAL NOT NULL, lo REAL NOT NULL, hi REAL NOT NULL,
  PRIMARY KEY (datastream, resolution, bucket)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sk_ts_corrections (datastream INTEGER NOT NULL, t INTEGER NOT NULL,
  previous REAL NOT NULL, value REAL NOT NULL, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sk_ts_corrections_key ON sk_ts_corrections (datastream, t);
CREATE TABLE IF NOT EXISTS sk_ts_deletions (datastream INTEGER NOT NULL, t INTEGER NOT NULL, value REAL NOT NULL,
  moved_to INTEGER, at INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sk_ts_deletions_key ON sk_ts_deletions (datastream, t);
";

type Defs = Arc<RwLock<HashMap<DatastreamId, Datastream>>>;

/// The SQLite time-series store.
#[derive(Debug)]
pub struct SqliteSeries {
    path: PathBuf,
    defs: Defs,
    reader: Mutex<Connection>,
    writer: Writer<SqliteSink>,
}

struct SqliteSink {
    conn: Connection,
    path: String,
    defs: Defs,
    clock: Arc<dyn Clock>,
}

fn err(path: &str) -> impl Fn(rusqlite::Error) -> TsError + '_ {
    move |e| TsError::Sqlite { path: path.to_owned(), message: e.to_string() }
}

fn connect(path: &Path) -> Result<Connection> {
    let shown = path.display().to_string();
    let conn = Connection::open(path).map_err(err(&shown))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -65536;",
    )
    .map_err(err(&shown))?;
    Ok(conn)
}

fn load_defs(conn: &Connection, path: &str) -> Result<HashMap<DatastreamId, Datastream>> {
    let mut st = conn.prepare("SELECT id, unit, lo, hi, retention_us FROM sk_ts_datastreams").map_err(err(path))?;
    let rows = st
        .query_map([], |r| {
            Ok(Datastream {
                id: r.get(0)?,
                unit: r.get(1)?,
                min: r.get(2)?,
                max: r.get(3)?,
                retention: r.get::<_, Option<i64>>(4)?.map(SignedDuration::from_micros),
            })
        })
        .map_err(err(path))?;
    let mut out = HashMap::new();
    for d in rows {
        let d = d.map_err(err(path))?;
        out.insert(d.id, d);
    }
    Ok(out)
}

impl SqliteSeries {
    /// Opens (creating) `DATA/timeseries.sqlite` in a data folder.
    pub fn open_in(data_dir: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::open(&data_dir.join(FILE), clock, WriterOptions::default())
    }

    pub fn open(path: &Path, clock: Arc<dyn Clock>, options: WriterOptions) -> Result<Self> {
        let shown = path.display().to_string();
        let conn = connect(path)?;
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(err(&shown))?;
        if version > SCHEMA_VERSION {
            return Err(TsError::NewerSchema(shown, version));
        }
        conn.execute_batch(SCHEMA).map_err(err(&shown))?;
        conn.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION}")).map_err(err(&shown))?;
        let defs: Defs = Arc::new(RwLock::new(load_defs(&conn, &shown)?));
        let reader = connect(path)?;
        let sink = SqliteSink { conn, path: shown, defs: defs.clone(), clock };
        let writer = Writer::start("timeseries-sqlite", sink, options)?;
        Ok(SqliteSeries { path: path.to_owned(), defs, reader: Mutex::new(reader), writer })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn shown(&self) -> String {
        self.path.display().to_string()
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T> {
        let conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn).map_err(|e| TsError::Sqlite { path: self.shown(), message: e.to_string() })
    }
}

impl Sink for SqliteSink {
    fn commit(&mut self, readings: &[Reading]) -> Result<Vec<Outcome>> {
        let now = us(self.clock.now());
        let e = err(&self.path);
        let tx = self.conn.transaction().map_err(&e)?;
        let outcomes = apply(&tx, &self.defs, readings, now).map_err(&e)?;
        tx.commit().map_err(&e)?;
        Ok(outcomes)
    }
}

/// Validates, plans and writes a batch of readings in `tx` (an append, or the moved readings of
/// a relocation): inserts, updates, corrections, roll-up adds and recomputes, counts.
fn apply(
    tx: &rusqlite::Transaction<'_>,
    defs: &Defs,
    readings: &[Reading],
    now: i64,
) -> rusqlite::Result<Vec<Outcome>> {
    let keys = {
        let defs = defs.read().unwrap_or_else(PoisonError::into_inner);
        Plan::keys(readings, &defs, now)
    };
    let mut existing: HashMap<Key, f64> = HashMap::new();
    {
        let mut get = tx.prepare_cached("SELECT value FROM sk_ts_readings WHERE datastream = ?1 AND t = ?2")?;
        for k in keys.iter().flatten() {
            if let Some(v) = get.query_row(params![k.0, k.1], |r| r.get::<_, f64>(0)).optional()? {
                existing.insert(*k, v);
            }
        }
    }
    let p = logic::plan(readings, keys, &existing);
    let mut ins = tx.prepare_cached("INSERT INTO sk_ts_readings (datastream, t, value) VALUES (?1, ?2, ?3)")?;
    let mut per: HashMap<DatastreamId, i64> = HashMap::new();
    for ((d, t), v) in &p.inserts {
        ins.execute(params![d, t, v])?;
        *per.entry(*d).or_default() += 1;
    }
    let mut upd = tx.prepare_cached("UPDATE sk_ts_readings SET value = ?3 WHERE datastream = ?1 AND t = ?2")?;
    for ((d, t), v) in &p.updates {
        upd.execute(params![d, t, v])?;
    }
    let mut cor = tx.prepare_cached(
        "INSERT INTO sk_ts_corrections (datastream, t, previous, value, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for ((d, t), old, new) in &p.corrections {
        cor.execute(params![d, t, old, new, now])?;
    }
    let mut add = tx.prepare_cached(
        "INSERT INTO sk_ts_rollups (datastream, resolution, bucket, n, sum, lo, hi) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT DO UPDATE SET n = n + excluded.n, sum = sum + excluded.sum,
           lo = min(lo, excluded.lo), hi = max(hi, excluded.hi)",
    )?;
    for ((d, r, b), a) in &p.adds {
        add.execute(params![d, r.code(), b, a.count as i64, a.sum, a.min, a.max])?;
    }
    recompute(tx, &p.recompute)?;
    let mut count = tx.prepare_cached("UPDATE sk_ts_datastreams SET readings = readings + ?2 WHERE id = ?1")?;
    for (d, n) in per {
        count.execute(params![d, n])?;
    }
    Ok(p.outcomes)
}

/// Removes the readings at `keys` (each named once) in `tx`, recording each removed value (with
/// the time it moved to), recomputing the roll-ups they counted in and the counts. The values
/// removed, by key.
fn remove(
    tx: &rusqlite::Transaction<'_>,
    keys: &[(Key, Option<i64>)],
    now: i64,
) -> rusqlite::Result<HashMap<Key, f64>> {
    let mut get = tx.prepare_cached("SELECT value FROM sk_ts_readings WHERE datastream = ?1 AND t = ?2")?;
    let mut del = tx.prepare_cached("DELETE FROM sk_ts_readings WHERE datastream = ?1 AND t = ?2")?;
    let mut rec = tx.prepare_cached(
        "INSERT INTO sk_ts_deletions (datastream, t, value, moved_to, at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut removed = HashMap::new();
    let mut per: HashMap<DatastreamId, i64> = HashMap::new();
    for ((d, t), moved_to) in keys {
        let Some(v) = get.query_row(params![d, t], |r| r.get::<_, f64>(0)).optional()? else { continue };
        del.execute(params![d, t])?;
        rec.execute(params![d, t, v, moved_to, now])?;
        removed.insert((*d, *t), v);
        *per.entry(*d).or_default() += 1;
    }
    recompute(tx, &crate::edit::minutes_of(removed.keys()))?;
    let mut count = tx.prepare_cached("UPDATE sk_ts_datastreams SET readings = readings - ?2 WHERE id = ?1")?;
    for (d, n) in per {
        count.execute(params![d, n])?;
    }
    Ok(removed)
}

/// Minutes whose readings changed (a correction, a removal) from their readings, then their
/// hours from minutes, days from hours; a bucket left empty is removed.
fn recompute(tx: &rusqlite::Transaction<'_>, minutes: &BTreeSet<(DatastreamId, i64)>) -> rusqlite::Result<()> {
    if minutes.is_empty() {
        return Ok(());
    }
    let mut clear =
        tx.prepare_cached("DELETE FROM sk_ts_rollups WHERE datastream = ?1 AND resolution = ?2 AND bucket = ?3")?;
    let mut raw = tx.prepare_cached(
        "INSERT INTO sk_ts_rollups (datastream, resolution, bucket, n, sum, lo, hi)
         SELECT ?1, 0, ?2, n, s, lo, hi FROM (SELECT count(*) AS n, sum(value) AS s, min(value) AS lo,
           max(value) AS hi FROM (SELECT value FROM sk_ts_readings WHERE datastream = ?1 AND t >= ?2 AND t < ?3
           ORDER BY t)) WHERE n > 0",
    )?;
    for (d, m) in minutes {
        clear.execute(params![d, Resolution::Minute.code(), m])?;
        raw.execute(params![d, m, m + Resolution::Minute.len_us()])?;
    }
    let mut up = tx.prepare_cached(
        "INSERT INTO sk_ts_rollups (datastream, resolution, bucket, n, sum, lo, hi)
         SELECT ?1, ?2, ?3, n, s, lo, hi FROM (SELECT count(*) AS c, sum(n) AS n, sum(sum) AS s, min(lo) AS lo,
           max(hi) AS hi FROM sk_ts_rollups WHERE datastream = ?1 AND resolution = ?4 AND bucket >= ?3 AND bucket < ?5)
         WHERE c > 0",
    )?;
    for res in [Resolution::Hour, Resolution::Day] {
        let finer = res.finer().map_or(0, Resolution::code);
        for (d, b) in coarser_buckets(minutes, res) {
            clear.execute(params![d, res.code(), b])?;
            up.execute(params![d, res.code(), b, finer, b + res.len_us()])?;
        }
    }
    Ok(())
}

fn stored(d: DatastreamId) -> impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<Stored> {
    move |r| Ok(Stored { datastream: d, time: ts(r.get(0)?), value: r.get(1)? })
}

impl TimeSeries for SqliteSeries {
    fn define(&self, d: &Datastream) -> Result<()> {
        logic::check_datastream(d)?;
        let d = d.clone();
        self.writer.run(move |s| {
            s.conn
                .execute(
                    "INSERT INTO sk_ts_datastreams (id, unit, lo, hi, retention_us) VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (id) DO UPDATE SET unit = excluded.unit, lo = excluded.lo, hi = excluded.hi,
                       retention_us = excluded.retention_us",
                    params![d.id, d.unit, d.min, d.max, d.retention.map(|r| r.as_micros() as i64)],
                )
                .map_err(err(&s.path))?;
            s.defs.write().unwrap_or_else(PoisonError::into_inner).insert(d.id, d);
            Ok(())
        })
    }

    fn datastream(&self, id: DatastreamId) -> Result<Option<Datastream>> {
        Ok(self.defs.read().unwrap_or_else(PoisonError::into_inner).get(&id).cloned())
    }

    fn append(&self, batch: &[Reading]) -> Result<Vec<Outcome>> {
        self.writer.append_checked(batch)
    }

    fn range(
        &self,
        id: DatastreamId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
        order: Order,
    ) -> Result<Vec<Stored>> {
        check_limit("readings", limit, crate::MAX_RANGE_LIMIT)?;
        let sql = match order {
            Order::Asc => {
                "SELECT t, value FROM sk_ts_readings WHERE datastream = ?1 AND t >= ?2 AND t < ?3 ORDER BY t LIMIT ?4"
            }
            Order::Desc => {
                "SELECT t, value FROM sk_ts_readings WHERE datastream = ?1 AND t >= ?2 AND t < ?3 ORDER BY t DESC LIMIT ?4"
            }
        };
        self.read(|c| {
            c.prepare_cached(sql)?.query_map(params![id, us(from), us(to), limit as i64], stored(id))?.collect()
        })
    }

    fn rollup(
        &self,
        id: DatastreamId,
        resolution: Option<Resolution>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Rollup> {
        let res = logic::choose_resolution(resolution, from, to)?;
        let buckets = self.read(|c| {
            c.prepare_cached(
                "SELECT bucket, n, sum, lo, hi FROM sk_ts_rollups
                 WHERE datastream = ?1 AND resolution = ?2 AND bucket >= ?3 AND bucket < ?4 ORDER BY bucket",
            )?
            .query_map(params![id, res.code(), res.bucket(us(from)), us(to)], |r| {
                Ok(Bucket {
                    start: ts(r.get(0)?),
                    count: r.get::<_, i64>(1)? as u64,
                    sum: r.get(2)?,
                    min: r.get(3)?,
                    max: r.get(4)?,
                })
            })?
            .collect()
        })?;
        Ok(Rollup { resolution: res, buckets })
    }

    fn latest(&self, ids: &[DatastreamId]) -> Result<Vec<Stored>> {
        check_limit("datastreams", ids.len(), crate::MAX_LATEST)?;
        self.read(|c| {
            let mut st =
                c.prepare_cached("SELECT t, value FROM sk_ts_readings WHERE datastream = ?1 ORDER BY t DESC LIMIT 1")?;
            let mut out = Vec::new();
            for id in ids {
                if let Some(s) = st.query_row([id], stored(*id)).optional()? {
                    out.push(s);
                }
            }
            Ok(out)
        })
    }

    fn corrections(&self, id: DatastreamId, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Correction>> {
        check_limit("corrections", limit, crate::MAX_RANGE_LIMIT)?;
        self.read(|c| {
            c.prepare_cached(
                "SELECT t, previous, value, at FROM sk_ts_corrections WHERE datastream = ?1 AND t >= ?2 AND t < ?3
                 ORDER BY t, rowid LIMIT ?4",
            )?
            .query_map(params![id, us(from), us(to), limit as i64], |r| {
                Ok(Correction {
                    datastream: id,
                    time: ts(r.get(0)?),
                    previous: r.get(1)?,
                    value: r.get(2)?,
                    at: ts(r.get(3)?),
                })
            })?
            .collect()
        })
    }

    fn delete(&self, keys: &[(DatastreamId, Timestamp)]) -> Result<Vec<Option<f64>>> {
        crate::edit::check_len(keys.len())?;
        let keys: Vec<Key> = keys.iter().map(|(d, t)| (*d, us(*t))).collect();
        self.writer.run(move |s| {
            let e = err(&s.path);
            let now = us(s.clock.now());
            let tx = s.conn.transaction().map_err(&e)?;
            let named: Vec<(Key, Option<i64>)> =
                crate::edit::unique_keys(&keys).into_iter().map(|k| (k, None)).collect();
            let removed = remove(&tx, &named, now).map_err(&e)?;
            tx.commit().map_err(&e)?;
            Ok(crate::edit::answers(&keys, &removed))
        })
    }

    fn relocate(&self, moves: &[Move]) -> Result<Relocated> {
        crate::edit::check_len(moves.len())?;
        if let Some(index) = crate::edit::repeated_from(moves) {
            return Ok(Relocated::Missing { index });
        }
        let moves = moves.to_vec();
        self.writer.run(move |s| {
            let e = err(&s.path);
            let now = us(s.clock.now());
            let tx = s.conn.transaction().map_err(&e)?;
            let named: Vec<(Key, Option<i64>)> =
                moves.iter().map(|m| ((m.datastream, us(m.from)), Some(us(m.to)))).collect();
            let removed = remove(&tx, &named, now).map_err(&e)?;
            let mut readings = Vec::with_capacity(moves.len());
            for (index, (m, (key, _))) in moves.iter().zip(&named).enumerate() {
                let Some(old) = removed.get(key) else { return Ok(Relocated::Missing { index }) };
                readings.push(Reading::new(m.datastream, m.to, m.value.unwrap_or(*old)));
            }
            let outcomes = apply(&tx, &s.defs, &readings, now).map_err(&e)?;
            let result = crate::edit::relocation_result(&outcomes);
            if result == Relocated::Moved {
                tx.commit().map_err(&e)?;
            }
            // otherwise `tx` is dropped: rolled back, nothing moved
            Ok(result)
        })
    }

    fn deletions(&self, id: DatastreamId, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Deletion>> {
        check_limit("deletions", limit, crate::MAX_RANGE_LIMIT)?;
        self.read(|c| {
            c.prepare_cached(
                "SELECT t, value, moved_to, at FROM sk_ts_deletions WHERE datastream = ?1 AND t >= ?2 AND t < ?3
                 ORDER BY t, rowid LIMIT ?4",
            )?
            .query_map(params![id, us(from), us(to), limit as i64], |r| {
                Ok(Deletion {
                    datastream: id,
                    time: ts(r.get(0)?),
                    value: r.get(1)?,
                    moved_to: r.get::<_, Option<i64>>(2)?.map(ts),
                    at: ts(r.get(3)?),
                })
            })?
            .collect()
        })
    }

    fn drop_series(&self, ids: std::ops::RangeInclusive<DatastreamId>) -> Result<u64> {
        let (lo, hi) = (*ids.start(), *ids.end());
        self.writer.run(move |s| {
            let e = err(&s.path);
            let tx = s.conn.transaction().map_err(&e)?;
            let n = tx
                .execute("DELETE FROM sk_ts_readings WHERE datastream BETWEEN ?1 AND ?2", params![lo, hi])
                .map_err(&e)?;
            for table in ["sk_ts_rollups", "sk_ts_corrections", "sk_ts_deletions"] {
                tx.execute(&format!("DELETE FROM {table} WHERE datastream BETWEEN ?1 AND ?2"), params![lo, hi])
                    .map_err(&e)?;
            }
            tx.execute("DELETE FROM sk_ts_datastreams WHERE id BETWEEN ?1 AND ?2", params![lo, hi]).map_err(&e)?;
            tx.commit().map_err(&e)?;
            s.defs.write().unwrap_or_else(PoisonError::into_inner).retain(|id, _| !(lo..=hi).contains(id));
            Ok(n as u64)
        })
    }

    fn set_retention(&self, id: DatastreamId, keep: Option<SignedDuration>) -> Result<()> {
        let mut d = self.datastream(id)?.ok_or(TsError::UnknownDatastream(id))?;
        d.retention = keep;
        self.define(&d)
    }

    fn enforce_retention(&self, now: Timestamp) -> Result<RetentionReport> {
        let now = us(now);
        self.writer.run(move |s| {
            let e = err(&s.path);
            let defs: Vec<Datastream> =
                s.defs.read().unwrap_or_else(PoisonError::into_inner).values().cloned().collect();
            let tx = s.conn.transaction().map_err(&e)?;
            let mut report = RetentionReport::default();
            for d in defs {
                let Some(keep) = d.retention else { continue };
                let cutoff = logic::retention_cutoff(now, keep);
                let n = tx
                    .execute("DELETE FROM sk_ts_readings WHERE datastream = ?1 AND t < ?2", params![d.id, cutoff])
                    .map_err(&e)?;
                for table in ["sk_ts_corrections", "sk_ts_deletions"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE datastream = ?1 AND t < ?2"), params![d.id, cutoff])
                        .map_err(&e)?;
                }
                tx.execute(
                    "DELETE FROM sk_ts_rollups WHERE datastream = ?1 AND resolution = 0 AND bucket < ?2",
                    params![d.id, cutoff],
                )
                .map_err(&e)?;
                tx.execute(
                    "UPDATE sk_ts_datastreams SET readings = readings - ?2 WHERE id = ?1",
                    params![d.id, n as i64],
                )
                .map_err(&e)?;
                report.readings_deleted += n as u64;
            }
            tx.commit().map_err(&e)?;
            Ok(report)
        })
    }

    fn counts(&self) -> Result<Counts> {
        let (datastreams, readings, corrections) = self.read(|c| {
            c.query_row(
                "SELECT count(*), coalesce(sum(readings), 0), (SELECT count(*) FROM sk_ts_corrections) FROM sk_ts_datastreams",
                [],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)),
            )
        })?;
        Ok(crate::writer::counts(&self.writer.stats, datastreams as u64, readings as u64, corrections as u64, 0))
    }
}
