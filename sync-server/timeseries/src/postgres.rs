//! The PostgreSQL backend, in the feature store's database beside its tables (names `sk_ts_*`;
//! the store reserves `sk_` for itself, so no layer can clash). Readings are one table
//! `PARTITION BY RANGE (phenomenon_time)` with a partition per Beijing month created on demand by
//! the writer; roll-ups, corrections, definitions and per-(datastream, month) counts are plain
//! tables, as are the deletions (removed and moved readings' values, added after the first
//! release without a schema version change: only added, ignored by an older build). Everything
//! is keyed by datastream first: it is the distribution column should the
//! tables ever be sharded (Citus), as the store's layer tables are by entity.
//!
//! A group is one transaction of a fixed number of round trips, whatever its size: the writer
//! lock (`pg_advisory_xact_lock`, so several server processes write one database in turn) with
//! the definitions' and partitions' versions, partitions missing, the stored values of the keys,
//! then `unnest` arrays for the inserts, updates, corrections, roll-up upserts, recomputes and
//! counts. The synchronous `postgres` client runs on the writer thread and on callers' threads:
//! never call it from a tokio runtime thread (`spawn_blocking`).

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, PoisonError};

use jiff::{SignedDuration, Timestamp};
use postgres::{Client, NoTls, Transaction};
use shikong_model::Clock;

use crate::logic::{self, Key, Plan, Resolution, coarser_buckets, ts, us};
use crate::writer::{Sink, Writer, WriterOptions};
use crate::{
    Bucket, Correction, Counts, Datastream, DatastreamId, Deletion, Move, Order, Outcome, Reading, Relocated, Result,
    RetentionReport, Rollup, Stored, TimeSeries, TsError, check_limit,
};

/// The advisory lock key of the time-series writer ("skts"), apart from the feature store's.
const LOCK: i64 = 0x736b_7473;
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sk_ts_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS sk_ts_datastreams (id bigint PRIMARY KEY, unit text NOT NULL, lo float8 NOT NULL,
  hi float8 NOT NULL, retention_us bigint);
CREATE TABLE IF NOT EXISTS sk_ts_readings (datastream bigint NOT NULL, phenomenon_time timestamptz NOT NULL,
  value float8 NOT NULL, PRIMARY KEY (datastream, phenomenon_time)) PARTITION BY RANGE (phenomenon_time);
CREATE TABLE IF NOT EXISTS sk_ts_rollups (datastream bigint NOT NULL, resolution smallint NOT NULL,
  bucket timestamptz NOT NULL, n bigint NOT NULL, sum float8 NOT NULL, lo float8 NOT NULL, hi float8 NOT NULL,
  PRIMARY KEY (datastream, resolution, bucket));
CREATE TABLE IF NOT EXISTS sk_ts_corrections (seq bigint GENERATED ALWAYS AS IDENTITY, datastream bigint NOT NULL,
  phenomenon_time timestamptz NOT NULL, previous float8 NOT NULL, value float8 NOT NULL, corrected_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS sk_ts_corrections_key ON sk_ts_corrections (datastream, phenomenon_time);
CREATE TABLE IF NOT EXISTS sk_ts_deletions (seq bigint GENERATED ALWAYS AS IDENTITY, datastream bigint NOT NULL,
  phenomenon_time timestamptz NOT NULL, value float8 NOT NULL, moved_to timestamptz, deleted_at timestamptz NOT NULL);
CREATE INDEX IF NOT EXISTS sk_ts_deletions_key ON sk_ts_deletions (datastream, phenomenon_time);
CREATE TABLE IF NOT EXISTS sk_ts_months (datastream bigint NOT NULL, month timestamptz NOT NULL,
  readings bigint NOT NULL, PRIMARY KEY (datastream, month));
INSERT INTO sk_ts_meta VALUES ('schema_version', 1), ('defs_version', 0), ('partitions_version', 0)
  ON CONFLICT DO NOTHING;
";

/// The PostgreSQL time-series store.
pub struct PgSeries {
    shown: String,
    reader: Mutex<Client>,
    writer: Writer<PgSink>,
}

impl std::fmt::Debug for PgSeries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgSeries").field("url", &self.shown).field("writer", &self.writer).finish_non_exhaustive()
    }
}

struct PgSink {
    client: Client,
    shown: String,
    clock: std::sync::Arc<dyn Clock>,
    defs: HashMap<DatastreamId, Datastream>,
    defs_version: i64,
    /// Partition name → (start, end) µs.
    partitions: HashMap<String, (i64, i64)>,
    partitions_version: i64,
}

fn err(shown: &str) -> impl Fn(postgres::Error) -> TsError + '_ {
    move |e| {
        let message = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        };
        TsError::Postgres { url: shown.to_owned(), message }
    }
}

/// The URL without credentials, for messages.
fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(a)) if a > s => format!("{}://…@{}", &url[..s], &url[a + 1..]),
        _ => url.to_owned(),
    }
}

/// `sk_ts_readings_pYYYYMM` for the Beijing month starting at `start`.
fn partition_name(start: i64) -> String {
    let z = ts(start).to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)));
    format!("sk_ts_readings_p{:04}{:02}", z.year(), z.month())
}

fn load_defs(c: &mut impl postgres::GenericClient, shown: &str) -> Result<HashMap<DatastreamId, Datastream>> {
    let rows = c.query("SELECT id, unit, lo, hi, retention_us FROM sk_ts_datastreams", &[]).map_err(err(shown))?;
    Ok(rows
        .iter()
        .map(|r| {
            let d = Datastream {
                id: r.get(0),
                unit: r.get(1),
                min: r.get(2),
                max: r.get(3),
                retention: r.get::<_, Option<i64>>(4).map(SignedDuration::from_micros),
            };
            (d.id, d)
        })
        .collect())
}

fn load_partitions(c: &mut impl postgres::GenericClient, shown: &str) -> Result<HashMap<String, (i64, i64)>> {
    let rows = c
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = 'sk_ts_readings'::regclass",
            &[],
        )
        .map_err(err(shown))?;
    let mut out = HashMap::new();
    for r in rows {
        let name: String = r.get(0);
        let Some(ym) = name.strip_prefix("sk_ts_readings_p") else { continue };
        let (Ok(y), Ok(m)) = (ym.get(..4).unwrap_or("").parse::<i16>(), ym.get(4..).unwrap_or("").parse::<i8>()) else {
            continue;
        };
        let Ok(date) = jiff::civil::Date::new(y, m, 1) else { continue };
        let Ok(z) = date.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))) else { continue };
        out.insert(name, logic::month_of(us(z.timestamp())));
    }
    Ok(out)
}

impl PgSeries {
    /// Connects to `url` (the feature store's database) and creates the tables if missing.
    pub fn open(url: &str, clock: std::sync::Arc<dyn Clock>, options: WriterOptions) -> Result<Self> {
        let shown = shown(url);
        let e = err(&shown);
        let mut client = Client::connect(url, NoTls).map_err(&e)?;
        {
            let mut tx = client.transaction().map_err(&e)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).map_err(&e)?;
            let exists: bool = tx.query_one("SELECT to_regclass('sk_ts_meta') IS NOT NULL", &[]).map_err(&e)?.get(0);
            if exists {
                let v: i64 =
                    tx.query_one("SELECT value FROM sk_ts_meta WHERE key = 'schema_version'", &[]).map_err(&e)?.get(0);
                if v > SCHEMA_VERSION {
                    return Err(TsError::NewerSchema(shown.clone(), v));
                }
            }
            tx.batch_execute(SCHEMA).map_err(&e)?;
            tx.commit().map_err(&e)?;
        }
        let reader = Client::connect(url, NoTls).map_err(&e)?;
        let sink = PgSink {
            client,
            shown: shown.clone(),
            clock,
            defs: HashMap::new(),
            defs_version: -1,
            partitions: HashMap::new(),
            partitions_version: -1,
        };
        let writer = Writer::start("timeseries-pg", sink, options)?;
        Ok(PgSeries { shown: shown.clone(), reader: Mutex::new(reader), writer })
    }

    fn read<T>(&self, f: impl FnOnce(&mut Client) -> std::result::Result<T, postgres::Error>) -> Result<T> {
        let mut c = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut c).map_err(err(&self.shown))
    }
}

impl PgSink {
    /// Takes the writer lock and brings the cached definitions and partitions up to date.
    fn lock(tx: &mut Transaction<'_>, s: &mut SinkState<'_>) -> Result<()> {
        let e = err(s.shown);
        let row = tx
            .query_one(
                "SELECT pg_advisory_xact_lock($1)::text,
                   (SELECT value FROM sk_ts_meta WHERE key = 'defs_version'),
                   (SELECT value FROM sk_ts_meta WHERE key = 'partitions_version')",
                &[&LOCK],
            )
            .map_err(&e)?;
        let (dv, pv): (i64, i64) = (row.get(1), row.get(2));
        if dv != *s.defs_version {
            *s.defs = load_defs(tx, s.shown)?;
            *s.defs_version = dv;
        }
        if pv != *s.partitions_version {
            *s.partitions = load_partitions(tx, s.shown)?;
            *s.partitions_version = pv;
        }
        Ok(())
    }

    fn state(&mut self) -> (&mut Client, SinkState<'_>) {
        (
            &mut self.client,
            SinkState {
                shown: &self.shown,
                defs: &mut self.defs,
                defs_version: &mut self.defs_version,
                partitions: &mut self.partitions,
                partitions_version: &mut self.partitions_version,
            },
        )
    }
}

struct SinkState<'a> {
    shown: &'a str,
    defs: &'a mut HashMap<DatastreamId, Datastream>,
    defs_version: &'a mut i64,
    partitions: &'a mut HashMap<String, (i64, i64)>,
    partitions_version: &'a mut i64,
}

fn columns<T: Copy, const N: usize>(rows: impl Iterator<Item = [T; N]>) -> [Vec<T>; N] {
    let mut out: [Vec<T>; N] = std::array::from_fn(|_| Vec::new());
    for r in rows {
        for (c, v) in out.iter_mut().zip(r) {
            c.push(v);
        }
    }
    out
}

impl Sink for PgSink {
    fn commit(&mut self, readings: &[Reading]) -> Result<Vec<Outcome>> {
        let result = self.commit_group(readings);
        if result.is_err() {
            // partitions created in the rolled-back transaction are gone: reload at the next lock
            self.partitions_version = -1;
            self.defs_version = -1;
        }
        result
    }
}

impl PgSink {
    fn commit_group(&mut self, readings: &[Reading]) -> Result<Vec<Outcome>> {
        let now_ts = self.clock.now();
        let (client, mut s) = self.state();
        let shown = s.shown.to_owned();
        let e = err(&shown);
        let mut tx = client.transaction().map_err(&e)?;
        PgSink::lock(&mut tx, &mut s)?;
        let outcomes = apply(&mut tx, &mut s, readings, now_ts)?;
        tx.commit().map_err(&e)?;
        Ok(outcomes)
    }
}

/// Validates, plans and writes a batch of readings in `tx` (an append, or the moved readings of a
/// relocation), the writer lock held: partitions missing, inserts, updates, corrections, roll-up
/// adds and recomputes, monthly counts.
fn apply(
    tx: &mut Transaction<'_>,
    s: &mut SinkState<'_>,
    readings: &[Reading],
    now_ts: Timestamp,
) -> Result<Vec<Outcome>> {
    let now = us(now_ts);
    let shown = s.shown.to_owned();
    let e = err(&shown);
    let keys = Plan::keys(readings, s.defs, now);
    let valid: Vec<Key> = keys.iter().flatten().copied().collect();
    // partitions for the months of the valid keys
    let months: BTreeSet<(i64, i64)> = valid.iter().map(|k| logic::month_of(k.1)).collect();
    for (start, end) in months {
        let name = partition_name(start);
        if let std::collections::hash_map::Entry::Vacant(v) = s.partitions.entry(name) {
            tx.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {} PARTITION OF sk_ts_readings FOR VALUES FROM ('{}') TO ('{}')",
                v.key(),
                ts(start),
                ts(end)
            ))
            .map_err(&e)?;
            v.insert((start, end));
        }
    }
    let mut existing: HashMap<Key, f64> = HashMap::new();
    if let (Some(lo), Some(hi)) = (valid.iter().map(|k| k.1).min(), valid.iter().map(|k| k.1).max()) {
        let ds: Vec<i64> = valid.iter().map(|k| k.0).collect();
        let t: Vec<Timestamp> = valid.iter().map(|k| ts(k.1)).collect();
        let rows = tx
            .query(
                "SELECT r.datastream, r.phenomenon_time, r.value
                     FROM unnest($1::int8[], $2::timestamptz[]) AS k(ds, t)
                     JOIN sk_ts_readings r ON r.datastream = k.ds AND r.phenomenon_time = k.t
                     WHERE r.phenomenon_time >= $3 AND r.phenomenon_time <= $4",
                &[&ds, &t, &ts(lo), &ts(hi)],
            )
            .map_err(&e)?;
        for r in rows {
            existing.insert((r.get(0), us(r.get(1))), r.get(2));
        }
    }
    let p = logic::plan(readings, keys, &existing);
    if !p.inserts.is_empty() {
        let ds: Vec<i64> = p.inserts.iter().map(|(k, _)| k.0).collect();
        let t: Vec<Timestamp> = p.inserts.iter().map(|(k, _)| ts(k.1)).collect();
        let v: Vec<f64> = p.inserts.iter().map(|(_, v)| *v).collect();
        tx.execute(
            "INSERT INTO sk_ts_readings (datastream, phenomenon_time, value)
                 SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::float8[])",
            &[&ds, &t, &v],
        )
        .map_err(&e)?;
        let mut per: HashMap<(i64, i64), i64> = HashMap::new();
        for ((d, t), _) in &p.inserts {
            *per.entry((*d, logic::month_of(*t).0)).or_default() += 1;
        }
        let [ds, m, n] = columns(per.into_iter().map(|((d, m), n)| [d, m, n]));
        let m: Vec<Timestamp> = m.into_iter().map(ts).collect();
        tx.execute(
            "INSERT INTO sk_ts_months (datastream, month, readings)
                 SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::int8[])
                 ON CONFLICT (datastream, month) DO UPDATE SET readings = sk_ts_months.readings + excluded.readings",
            &[&ds, &m, &n],
        )
        .map_err(&e)?;
    }
    if !p.updates.is_empty() {
        let ds: Vec<i64> = p.updates.iter().map(|(k, _)| k.0).collect();
        let t: Vec<Timestamp> = p.updates.iter().map(|(k, _)| ts(k.1)).collect();
        let v: Vec<f64> = p.updates.iter().map(|(_, v)| *v).collect();
        tx.execute(
                "UPDATE sk_ts_readings r SET value = u.v FROM unnest($1::int8[], $2::timestamptz[], $3::float8[]) AS u(ds, t, v)
                 WHERE r.datastream = u.ds AND r.phenomenon_time = u.t",
                &[&ds, &t, &v],
            )
            .map_err(&e)?;
    }
    if !p.corrections.is_empty() {
        let ds: Vec<i64> = p.corrections.iter().map(|(k, _, _)| k.0).collect();
        let t: Vec<Timestamp> = p.corrections.iter().map(|(k, _, _)| ts(k.1)).collect();
        let old: Vec<f64> = p.corrections.iter().map(|c| c.1).collect();
        let new: Vec<f64> = p.corrections.iter().map(|c| c.2).collect();
        tx.execute(
                "INSERT INTO sk_ts_corrections (datastream, phenomenon_time, previous, value, corrected_at)
                 SELECT d, t, o, n, $5 FROM unnest($1::int8[], $2::timestamptz[], $3::float8[], $4::float8[]) AS u(d, t, o, n)",
                &[&ds, &t, &old, &new, &now_ts],
            )
            .map_err(&e)?;
    }
    if !p.adds.is_empty() {
        let ds: Vec<i64> = p.adds.keys().map(|k| k.0).collect();
        let res: Vec<i16> = p.adds.keys().map(|k| k.1.code()).collect();
        let b: Vec<Timestamp> = p.adds.keys().map(|k| ts(k.2)).collect();
        let n: Vec<i64> = p.adds.values().map(|a| a.count as i64).collect();
        let sum: Vec<f64> = p.adds.values().map(|a| a.sum).collect();
        let lo: Vec<f64> = p.adds.values().map(|a| a.min).collect();
        let hi: Vec<f64> = p.adds.values().map(|a| a.max).collect();
        tx.execute(
                "INSERT INTO sk_ts_rollups (datastream, resolution, bucket, n, sum, lo, hi)
                 SELECT * FROM unnest($1::int8[], $2::int2[], $3::timestamptz[], $4::int8[], $5::float8[], $6::float8[], $7::float8[])
                 ON CONFLICT (datastream, resolution, bucket) DO UPDATE SET n = sk_ts_rollups.n + excluded.n,
                   sum = sk_ts_rollups.sum + excluded.sum, lo = least(sk_ts_rollups.lo, excluded.lo),
                   hi = greatest(sk_ts_rollups.hi, excluded.hi)",
                &[&ds, &res, &b, &n, &sum, &lo, &hi],
            )
            .map_err(&e)?;
    }
    recompute(tx, &p.recompute).map_err(&e)?;
    Ok(p.outcomes)
}

/// Minutes whose readings changed (a correction, a removal) from their readings, then their
/// hours from minutes, days from hours; a bucket left empty is removed (each resolution: one
/// delete of its buckets, one insert of those that still hold readings).
fn recompute(
    tx: &mut Transaction<'_>,
    minutes: &BTreeSet<(DatastreamId, i64)>,
) -> std::result::Result<(), postgres::Error> {
    if minutes.is_empty() {
        return Ok(());
    }
    let split = |set: &BTreeSet<(i64, i64)>| -> (Vec<i64>, Vec<Timestamp>) {
        (set.iter().map(|k| k.0).collect(), set.iter().map(|k| ts(k.1)).collect())
    };
    const CLEAR: &str = "DELETE FROM sk_ts_rollups r USING unnest($1::int8[], $2::timestamptz[]) AS k(ds, b)
         WHERE r.datastream = k.ds AND r.resolution = $3::int2 AND r.bucket = k.b";
    let (ds, b) = split(minutes);
    tx.execute(CLEAR, &[&ds, &b, &Resolution::Minute.code()])?;
    tx.execute(
        "INSERT INTO sk_ts_rollups (datastream, resolution, bucket, n, sum, lo, hi)
         SELECT k.ds, 0, k.b, count(*), sum(r.value ORDER BY r.phenomenon_time), min(r.value), max(r.value)
         FROM unnest($1::int8[], $2::timestamptz[]) AS k(ds, b)
         JOIN sk_ts_readings r ON r.datastream = k.ds AND r.phenomenon_time >= k.b
           AND r.phenomenon_time < k.b + interval '1 minute'
         GROUP BY k.ds, k.b",
        &[&ds, &b],
    )?;
    for res in [Resolution::Hour, Resolution::Day] {
        let (ds, b) = split(&coarser_buckets(minutes, res));
        let finer = res.finer().map_or(0, Resolution::code);
        tx.execute(CLEAR, &[&ds, &b, &res.code()])?;
        tx.execute(
            "INSERT INTO sk_ts_rollups (datastream, resolution, bucket, n, sum, lo, hi)
             SELECT k.ds, $3::int2, k.b, sum(r.n)::int8, sum(r.sum ORDER BY r.bucket), min(r.lo), max(r.hi)
             FROM unnest($1::int8[], $2::timestamptz[]) AS k(ds, b)
             JOIN sk_ts_rollups r ON r.datastream = k.ds AND r.resolution = $4::int2 AND r.bucket >= k.b
               AND r.bucket < k.b + $5::int8 * interval '1 microsecond'
             GROUP BY k.ds, k.b",
            &[&ds, &b, &res.code(), &finer, &res.len_us()],
        )?;
    }
    Ok(())
}

/// Removes the readings at `keys` (each named once) in `tx`, the writer lock held: recording each
/// removed value (with the time it moved to), recomputing the roll-ups they counted in and the
/// monthly counts. The values removed, by key. A fixed number of round trips.
fn remove(
    tx: &mut Transaction<'_>,
    keys: &[(Key, Option<i64>)],
    now: Timestamp,
) -> std::result::Result<HashMap<Key, f64>, postgres::Error> {
    let mut removed = HashMap::new();
    let (Some(lo), Some(hi)) = (keys.iter().map(|k| k.0.1).min(), keys.iter().map(|k| k.0.1).max()) else {
        return Ok(removed);
    };
    let ds: Vec<i64> = keys.iter().map(|k| k.0.0).collect();
    let t: Vec<Timestamp> = keys.iter().map(|k| ts(k.0.1)).collect();
    let moved: Vec<Option<Timestamp>> = keys.iter().map(|k| k.1.map(ts)).collect();
    let rows = tx.query(
        "WITH k AS (SELECT * FROM unnest($1::int8[], $2::timestamptz[], $3::timestamptz[]) AS k(ds, t, moved)),
         d AS (DELETE FROM sk_ts_readings r USING k WHERE r.datastream = k.ds AND r.phenomenon_time = k.t
           AND r.phenomenon_time >= $4 AND r.phenomenon_time <= $5
           RETURNING r.datastream, r.phenomenon_time, r.value),
         kept AS (INSERT INTO sk_ts_deletions (datastream, phenomenon_time, value, moved_to, deleted_at)
           SELECT d.datastream, d.phenomenon_time, d.value, k.moved, $6 FROM d
           JOIN k ON k.ds = d.datastream AND k.t = d.phenomenon_time)
         SELECT datastream, phenomenon_time, value FROM d",
        &[&ds, &t, &moved, &ts(lo), &ts(hi), &now],
    )?;
    let mut per: HashMap<(i64, i64), i64> = HashMap::new();
    for r in rows {
        let key: Key = (r.get(0), us(r.get(1)));
        removed.insert(key, r.get(2));
        *per.entry((key.0, logic::month_of(key.1).0)).or_default() += 1;
    }
    if !per.is_empty() {
        let [ds, m, n] = columns(per.into_iter().map(|((d, m), n)| [d, m, n]));
        let m: Vec<Timestamp> = m.into_iter().map(ts).collect();
        tx.execute(
            "UPDATE sk_ts_months s SET readings = s.readings - u.n
             FROM unnest($1::int8[], $2::timestamptz[], $3::int8[]) AS u(ds, m, n)
             WHERE s.datastream = u.ds AND s.month = u.m",
            &[&ds, &m, &n],
        )?;
    }
    recompute(tx, &crate::edit::minutes_of(removed.keys()))?;
    Ok(removed)
}

impl PgSink {
    /// Runs `f` in one transaction with the writer lock; commits when it answers `Ok((v, true))`,
    /// rolls back otherwise. Caches are reloaded at the next lock after a rollback (partitions
    /// it created are gone).
    fn edit<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>, &mut SinkState<'_>, Timestamp) -> Result<(T, bool)>,
    ) -> Result<T> {
        let result = self.edit_tx(f);
        if !matches!(result, Ok((_, true))) {
            self.partitions_version = -1;
            self.defs_version = -1;
        }
        result.map(|(v, _)| v)
    }

    fn edit_tx<T>(
        &mut self,
        f: impl FnOnce(&mut Transaction<'_>, &mut SinkState<'_>, Timestamp) -> Result<(T, bool)>,
    ) -> Result<(T, bool)> {
        let now = self.clock.now();
        let (client, mut s) = self.state();
        let shown = s.shown.to_owned();
        let e = err(&shown);
        let mut tx = client.transaction().map_err(&e)?;
        PgSink::lock(&mut tx, &mut s)?;
        let (v, keep) = f(&mut tx, &mut s, now)?;
        if keep {
            tx.commit().map_err(&e)?;
        }
        Ok((v, keep))
    }
}

impl TimeSeries for PgSeries {
    fn define(&self, d: &Datastream) -> Result<()> {
        logic::check_datastream(d)?;
        let d = d.clone();
        self.writer.run(move |s| {
            let e = err(&s.shown);
            let mut tx = s.client.transaction().map_err(&e)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&LOCK]).map_err(&e)?;
            tx.execute(
                "INSERT INTO sk_ts_datastreams (id, unit, lo, hi, retention_us) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (id) DO UPDATE SET unit = excluded.unit, lo = excluded.lo, hi = excluded.hi,
                   retention_us = excluded.retention_us",
                &[&d.id, &d.unit, &d.min, &d.max, &d.retention.map(|r| r.as_micros() as i64)],
            )
            .map_err(&e)?;
            tx.execute("UPDATE sk_ts_meta SET value = value + 1 WHERE key = 'defs_version'", &[]).map_err(&e)?;
            tx.commit().map_err(&e)
        })
    }

    fn datastream(&self, id: DatastreamId) -> Result<Option<Datastream>> {
        let row = self
            .read(|c| c.query_opt("SELECT unit, lo, hi, retention_us FROM sk_ts_datastreams WHERE id = $1", &[&id]))?;
        Ok(row.map(|r| Datastream {
            id,
            unit: r.get(0),
            min: r.get(1),
            max: r.get(2),
            retention: r.get::<_, Option<i64>>(3).map(SignedDuration::from_micros),
        }))
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
        let dir = if order == Order::Asc { "" } else { " DESC" };
        let sql = format!(
            "SELECT phenomenon_time, value FROM sk_ts_readings WHERE datastream = $1 AND phenomenon_time >= $2
             AND phenomenon_time < $3 ORDER BY phenomenon_time{dir} LIMIT $4"
        );
        let rows = self.read(|c| c.query(&sql, &[&id, &from, &to, &(limit as i64)]))?;
        Ok(rows.iter().map(|r| Stored { datastream: id, time: r.get(0), value: r.get(1) }).collect())
    }

    fn rollup(
        &self,
        id: DatastreamId,
        resolution: Option<Resolution>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Rollup> {
        let res = logic::choose_resolution(resolution, from, to)?;
        let rows = self.read(|c| {
            c.query(
                "SELECT bucket, n, sum, lo, hi FROM sk_ts_rollups WHERE datastream = $1 AND resolution = $2
                 AND bucket >= $3 AND bucket < $4 ORDER BY bucket",
                &[&id, &res.code(), &ts(res.bucket(us(from))), &to],
            )
        })?;
        let buckets = rows
            .iter()
            .map(|r| Bucket {
                start: r.get(0),
                count: r.get::<_, i64>(1) as u64,
                sum: r.get(2),
                min: r.get(3),
                max: r.get(4),
            })
            .collect();
        Ok(Rollup { resolution: res, buckets })
    }

    fn latest(&self, ids: &[DatastreamId]) -> Result<Vec<Stored>> {
        check_limit("datastreams", ids.len(), crate::MAX_LATEST)?;
        let ids = ids.to_vec();
        let rows = self.read(|c| {
            c.query(
                "SELECT k.ds, l.phenomenon_time, l.value FROM unnest($1::int8[]) WITH ORDINALITY AS k(ds, i)
                 CROSS JOIN LATERAL (SELECT phenomenon_time, value FROM sk_ts_readings r WHERE r.datastream = k.ds
                   ORDER BY phenomenon_time DESC LIMIT 1) l ORDER BY k.i",
                &[&ids],
            )
        })?;
        Ok(rows.iter().map(|r| Stored { datastream: r.get(0), time: r.get(1), value: r.get(2) }).collect())
    }

    fn corrections(&self, id: DatastreamId, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Correction>> {
        check_limit("corrections", limit, crate::MAX_RANGE_LIMIT)?;
        let rows = self.read(|c| {
            c.query(
                "SELECT phenomenon_time, previous, value, corrected_at FROM sk_ts_corrections WHERE datastream = $1
                 AND phenomenon_time >= $2 AND phenomenon_time < $3 ORDER BY phenomenon_time, seq LIMIT $4",
                &[&id, &from, &to, &(limit as i64)],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| Correction { datastream: id, time: r.get(0), previous: r.get(1), value: r.get(2), at: r.get(3) })
            .collect())
    }

    fn delete(&self, keys: &[(DatastreamId, Timestamp)]) -> Result<Vec<Option<f64>>> {
        crate::edit::check_len(keys.len())?;
        let keys: Vec<Key> = keys.iter().map(|(d, t)| (*d, us(*t))).collect();
        self.writer.run(move |sink| {
            let shown = sink.shown.clone();
            sink.edit(|tx, _, now| {
                let named: Vec<(Key, Option<i64>)> =
                    crate::edit::unique_keys(&keys).into_iter().map(|k| (k, None)).collect();
                let removed = remove(tx, &named, now).map_err(err(&shown))?;
                Ok((crate::edit::answers(&keys, &removed), true))
            })
        })
    }

    fn relocate(&self, moves: &[Move]) -> Result<Relocated> {
        crate::edit::check_len(moves.len())?;
        if let Some(index) = crate::edit::repeated_from(moves) {
            return Ok(Relocated::Missing { index });
        }
        let moves = moves.to_vec();
        self.writer.run(move |sink| {
            let shown = sink.shown.clone();
            sink.edit(|tx, s, now| {
                let named: Vec<(Key, Option<i64>)> =
                    moves.iter().map(|m| ((m.datastream, us(m.from)), Some(us(m.to)))).collect();
                let removed = remove(tx, &named, now).map_err(err(&shown))?;
                let mut readings = Vec::with_capacity(moves.len());
                for (index, (m, (key, _))) in moves.iter().zip(&named).enumerate() {
                    let Some(old) = removed.get(key) else { return Ok((Relocated::Missing { index }, false)) };
                    readings.push(Reading::new(m.datastream, m.to, m.value.unwrap_or(*old)));
                }
                let outcomes = apply(tx, s, &readings, now)?;
                let result = crate::edit::relocation_result(&outcomes);
                let keep = result == Relocated::Moved;
                Ok((result, keep))
            })
        })
    }

    fn deletions(&self, id: DatastreamId, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Deletion>> {
        check_limit("deletions", limit, crate::MAX_RANGE_LIMIT)?;
        let rows = self.read(|c| {
            c.query(
                "SELECT phenomenon_time, value, moved_to, deleted_at FROM sk_ts_deletions WHERE datastream = $1
                 AND phenomenon_time >= $2 AND phenomenon_time < $3 ORDER BY phenomenon_time, seq LIMIT $4",
                &[&id, &from, &to, &(limit as i64)],
            )
        })?;
        Ok(rows
            .iter()
            .map(|r| Deletion { datastream: id, time: r.get(0), value: r.get(1), moved_to: r.get(2), at: r.get(3) })
            .collect())
    }

    fn drop_series(&self, ids: std::ops::RangeInclusive<DatastreamId>) -> Result<u64> {
        let (lo, hi) = (*ids.start(), *ids.end());
        self.writer.run(move |sink| {
            let shown = sink.shown.clone();
            let e = err(&shown);
            sink.edit(|tx, _, _| {
                let n = tx
                    .execute("DELETE FROM sk_ts_readings WHERE datastream BETWEEN $1 AND $2", &[&lo, &hi])
                    .map_err(&e)?;
                for table in ["sk_ts_rollups", "sk_ts_corrections", "sk_ts_deletions", "sk_ts_months"] {
                    tx.execute(&format!("DELETE FROM {table} WHERE datastream BETWEEN $1 AND $2"), &[&lo, &hi])
                        .map_err(&e)?;
                }
                tx.execute("DELETE FROM sk_ts_datastreams WHERE id BETWEEN $1 AND $2", &[&lo, &hi]).map_err(&e)?;
                tx.execute("UPDATE sk_ts_meta SET value = value + 1 WHERE key = 'defs_version'", &[]).map_err(&e)?;
                Ok((n, true))
            })
        })
    }

    fn set_retention(&self, id: DatastreamId, keep: Option<SignedDuration>) -> Result<()> {
        let mut d = self.datastream(id)?.ok_or(TsError::UnknownDatastream(id))?;
        d.retention = keep;
        self.define(&d)
    }

    fn enforce_retention(&self, now: Timestamp) -> Result<RetentionReport> {
        let now = us(now);
        self.writer.run(move |sink| {
            let (client, mut s) = sink.state();
            let shown = s.shown.to_owned();
            let e = err(&shown);
            let mut tx = client.transaction().map_err(&e)?;
            PgSink::lock(&mut tx, &mut s)?;
            *s.partitions = load_partitions(&mut tx, &shown)?;
            let cutoffs: HashMap<DatastreamId, i64> =
                s.defs.values().filter_map(|d| d.retention.map(|k| (d.id, logic::retention_cutoff(now, k)))).collect();
            let mut report = RetentionReport::default();
            // whole partitions whose every datastream's retention has passed their end
            let mut parts: Vec<(String, (i64, i64))> = s.partitions.iter().map(|(n, b)| (n.clone(), *b)).collect();
            parts.sort_by_key(|p| p.1);
            for (name, (start, end)) in parts {
                let streams = tx
                    .query("SELECT datastream, readings FROM sk_ts_months WHERE month = $1", &[&ts(start)])
                    .map_err(&e)?;
                let droppable = !streams.is_empty()
                    && streams.iter().all(|r| cutoffs.get(&r.get::<_, i64>(0)).is_some_and(|c| *c >= end));
                if droppable {
                    tx.batch_execute(&format!("DROP TABLE {name}")).map_err(&e)?;
                    tx.execute("DELETE FROM sk_ts_months WHERE month = $1", &[&ts(start)]).map_err(&e)?;
                    report.readings_dropped += streams.iter().map(|r| r.get::<_, i64>(1) as u64).sum::<u64>();
                    report.partitions_dropped += 1;
                    s.partitions.remove(&name);
                }
            }
            if report.partitions_dropped > 0 {
                tx.execute("UPDATE sk_ts_meta SET value = value + 1 WHERE key = 'partitions_version'", &[])
                    .map_err(&e)?;
                *s.partitions_version += 1;
            }
            for (id, cutoff) in cutoffs {
                let c = ts(cutoff);
                let n = tx
                    .execute("DELETE FROM sk_ts_readings WHERE datastream = $1 AND phenomenon_time < $2", &[&id, &c])
                    .map_err(&e)?;
                report.readings_deleted += n;
                for table in ["sk_ts_corrections", "sk_ts_deletions"] {
                    tx.execute(
                        &format!("DELETE FROM {table} WHERE datastream = $1 AND phenomenon_time < $2"),
                        &[&id, &c],
                    )
                    .map_err(&e)?;
                }
                tx.execute(
                    "DELETE FROM sk_ts_rollups WHERE datastream = $1 AND resolution = 0 AND bucket < $2",
                    &[&id, &c],
                )
                .map_err(&e)?;
                if n > 0 {
                    let (month, _) = logic::month_of(cutoff);
                    tx.execute("DELETE FROM sk_ts_months WHERE datastream = $1 AND month < $2", &[&id, &ts(month)])
                        .map_err(&e)?;
                    tx.execute(
                        "UPDATE sk_ts_months SET readings = (SELECT count(*) FROM sk_ts_readings
                           WHERE datastream = $1 AND phenomenon_time >= $2 AND phenomenon_time < $3)
                         WHERE datastream = $1 AND month = $2",
                        &[&id, &ts(month), &ts(logic::month_of(cutoff).1)],
                    )
                    .map_err(&e)?;
                }
            }
            tx.commit().map_err(&e)?;
            // the partition's version moved by our own hand: keep the cache as it is
            Ok(report)
        })
    }

    fn counts(&self) -> Result<Counts> {
        let row = self.read(|c| {
            c.query_one(
                "SELECT (SELECT count(*) FROM sk_ts_datastreams), (SELECT coalesce(sum(readings), 0)::int8 FROM sk_ts_months),
                   (SELECT count(*) FROM sk_ts_corrections),
                   (SELECT count(*) FROM pg_inherits WHERE inhparent = 'sk_ts_readings'::regclass)",
                &[],
            )
        })?;
        let get = |i: usize| row.get::<_, i64>(i) as u64;
        Ok(crate::writer::counts(&self.writer.stats, get(0), get(1), get(2), get(3)))
    }
}
