//! Reads: current and as-of queries, one entity, its history, and diffs between instants.
//!
//! "As of T" means: the last transaction recorded at or before T (`tx_max`); an entity's state is
//! the version whose transaction interval `[tx_from, tx_to)` contains `tx_max` — the current row if
//! `sk_tx <= tx_max`, otherwise a closed version from the history table. Both halves use their own
//! R-tree, so an as-of query costs about the same as a current one.

use std::collections::HashMap;

use geo::Intersects;
use jiff::Timestamp;
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::{Map, Value as Json};
use shikong_gpkg::quote_ident;
use shikong_model::feature::{as_changes, diff as feature_diff};
use shikong_model::time::ValidFilter;
use shikong_model::{Bbox, EntityId, Feature, Geometry, Properties, TxId, ValidTime, gpkg_blob};
use shikong_query::{Attribute, ColumnMap, Filter};

use super::codec;
use super::layers::{self, hist_rtree, hist_table, rtree};
use crate::error::{Result, StoreError};
use crate::types::*;

/// The live version of an entity as read from the feature table.
#[derive(Debug, Clone)]
pub(crate) struct CurrentRow {
    pub fid: i64,
    pub feature: Feature,
    pub version: i64,
    pub tx: TxId,
    pub device_time: Option<Timestamp>,
}

/// A row of the history table.
#[derive(Debug, Clone)]
struct HistRow {
    feature: Feature,
    version: i64,
    op: Op,
    tx_from: TxId,
    device_time: Option<Timestamp>,
}

fn corrupt(layer: &Layer, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("layer `{}`: {what}", layer.name()))
}

fn geometry(layer: &Layer, v: ValueRef<'_>, row: &str) -> Result<Option<Geometry>> {
    match v {
        ValueRef::Blob(b) => Ok(gpkg_blob::decode(b).map_err(|e| corrupt(layer, format!("{row}: {e}")))?.1),
        ValueRef::Null => Ok(None),
        _ => Err(corrupt(layer, format!("{row}: geometry is not a blob"))),
    }
}

fn entity_id(layer: &Layer, s: &str) -> Result<EntityId> {
    s.parse().map_err(|e| corrupt(layer, format!("entity id `{s}`: {e}")))
}

/// `SELECT` of the feature table with the columns [`decode_current`] expects; `filter` is
/// appended after `WHERE` when not empty.
pub(crate) fn current_select(layer: &Layer, filter: &str) -> String {
    let mut cols: Vec<String> = vec!["t.fid".into(), "t.geom".into()];
    cols.extend(layers::SYSTEM_COLUMNS.iter().map(|c| format!("t.{c}")));
    cols.extend(layer.schema().fields.iter().map(|f| format!("t.{}", quote_ident(&f.name))));
    let mut sql = format!("SELECT {} FROM {} AS t", cols.join(", "), quote_ident(layer.name()));
    if !filter.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(filter);
    }
    sql
}

pub(crate) fn decode_current(layer: &Layer, r: &Row<'_>) -> Result<CurrentRow> {
    let fid: i64 = r.get(0)?;
    let at = || format!("fid {fid}");
    let geometry = geometry(layer, r.get_ref(1)?, &at())?;
    let id: String = r.get(2)?;
    let mut properties = Properties::new();
    for (i, f) in layer.schema().fields.iter().enumerate() {
        let v = codec::from_sql(r.get_ref(9 + i)?, f.ty)
            .map_err(|e| corrupt(layer, format!("{}, column `{}`: {e}", at(), f.name)))?;
        if !v.is_null() {
            properties.insert(f.name.clone(), v);
        }
    }
    let time = |i: usize| -> Result<Option<Timestamp>> {
        codec::time_from_sql(r.get_ref(i)?).map_err(|e| corrupt(layer, format!("{}: {e}", at())))
    };
    Ok(CurrentRow {
        fid,
        feature: Feature {
            id: entity_id(layer, &id)?,
            code: r.get(3)?,
            geometry,
            valid: ValidTime { from: time(4)?, to: time(5)? },
            properties,
        },
        version: r.get(6)?,
        tx: TxId(r.get(7)?),
        device_time: time(8)?,
    })
}

/// Properties as stored in history rows: JSON keyed by stable field id.
pub(crate) fn props_json(layer: &Layer, props: &Properties) -> String {
    let mut m = Map::new();
    for (name, v) in props {
        if let Some(f) = layer.schema().field(name) {
            m.insert(f.id.clone(), codec::to_json(v));
        }
    }
    Json::Object(m).to_string()
}

const HIST_COLUMNS: &str = "h.hid, h.geom, h.entity_id, h.code, h.valid_from, h.valid_to, h.version, h.tx_from, h.props, h.op, h.tx_to, h.device_time";

fn decode_hist(layer: &Layer, r: &Row<'_>) -> Result<HistRow> {
    let hid: i64 = r.get(0)?;
    let at = format!("history row {hid}");
    let geometry = geometry(layer, r.get_ref(1)?, &at)?;
    let id: String = r.get(2)?;
    let props: String = r.get(8)?;
    let json: Map<String, Json> = serde_json::from_str(&props).map_err(|e| corrupt(layer, format!("{at}: {e}")))?;
    let mut properties = Properties::new();
    for (fid, v) in &json {
        // Every field id ever used stays in the schema (fields are retired, never removed).
        let f =
            layer.schema().field_by_id(fid).ok_or_else(|| corrupt(layer, format!("{at}: unknown field id {fid}")))?;
        let v = codec::from_json(v, f.ty).map_err(|e| corrupt(layer, format!("{at}, field `{}`: {e}", f.name)))?;
        if !v.is_null() {
            properties.insert(f.name.clone(), v);
        }
    }
    let time = |i: usize| -> Result<Option<Timestamp>> {
        codec::time_from_sql(r.get_ref(i)?).map_err(|e| corrupt(layer, format!("{at}: {e}")))
    };
    let op = match r.get::<_, String>(9)?.as_str() {
        "insert" => Op::Insert,
        "update" => Op::Update,
        _ => Op::Delete,
    };
    Ok(HistRow {
        feature: Feature {
            id: entity_id(layer, &id)?,
            code: r.get::<_, Option<String>>(3)?.unwrap_or_default(),
            geometry,
            valid: ValidTime { from: time(4)?, to: time(5)? },
            properties,
        },
        version: r.get(6)?,
        op,
        tx_from: TxId(r.get(7)?),
        device_time: time(11)?,
    })
}

/// The last transaction recorded at or before `t`.
fn tx_at(conn: &Connection, t: Timestamp) -> Result<Option<TxId>> {
    let tx: Option<i64> =
        conn.query_row("SELECT max(tx) FROM sk_transactions WHERE time_us <= ?1", [t.as_microsecond()], |r| r.get(0))?;
    Ok(tx.map(TxId))
}

/// Transaction instants, cached for one read.
struct TxTimes<'c> {
    conn: &'c Connection,
    cache: HashMap<i64, Timestamp>,
}

impl TxTimes<'_> {
    fn get(&mut self, tx: TxId) -> Result<Timestamp> {
        if let Some(t) = self.cache.get(&tx.0) {
            return Ok(*t);
        }
        let us: i64 = self.conn.query_row("SELECT time_us FROM sk_transactions WHERE tx = ?1", [tx.0], |r| r.get(0))?;
        let t = codec::micros_to_ts(us);
        self.cache.insert(tx.0, t);
        Ok(t)
    }
}

struct CurrentColumns;

impl ColumnMap for CurrentColumns {
    fn column(&self, attr: &Attribute) -> Option<String> {
        Some(match attr {
            Attribute::Field(f) => format!("t.{}", quote_ident(&f.name)),
            Attribute::EntityId => "t.entity_id".into(),
            Attribute::Code => "t.code".into(),
            Attribute::ValidFrom => "t.valid_from".into(),
            Attribute::ValidTo => "t.valid_to".into(),
            Attribute::Version => "t.sk_version".into(),
            _ => return None,
        })
    }
}

struct HistoryColumns;

impl ColumnMap for HistoryColumns {
    fn column(&self, attr: &Attribute) -> Option<String> {
        Some(match attr {
            Attribute::Field(f) => format!("json_extract(h.props, '$.\"{}\"')", f.id),
            Attribute::EntityId => "h.entity_id".into(),
            Attribute::Code => "h.code".into(),
            Attribute::ValidFrom => "h.valid_from".into(),
            Attribute::ValidTo => "h.valid_to".into(),
            Attribute::Version => "h.version".into(),
            _ => return None,
        })
    }
}

fn valid_sql(alias: &str, v: &ValidFilter, where_: &mut Vec<String>, params: &mut Vec<Sql>) {
    let (a, b) = match *v {
        ValidFilter::At(t) => (Some(t), Some(t)),
        ValidFilter::Range(a, b) => (a, b),
    };
    if let Some(b) = b {
        where_.push(format!("({alias}.valid_from IS NULL OR {alias}.valid_from <= ?)"));
        params.push(codec::time_to_sql(Some(b)));
    }
    if let Some(a) = a {
        // An instant must fall before the end; a range must overlap the half-open [from, to).
        where_.push(format!("({alias}.valid_to IS NULL OR {alias}.valid_to > ?)"));
        params.push(codec::time_to_sql(Some(a)));
    }
}

fn rtree_sql(alias: &str, key: &str, rtree: &str, b: &Bbox, where_: &mut Vec<String>, params: &mut Vec<Sql>) {
    where_.push(format!(
        "{alias}.{key} IN (SELECT id FROM {} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)",
        quote_ident(rtree)
    ));
    params.extend([b.max_x, b.min_x, b.max_y, b.min_y].map(Sql::Real));
}

fn intersection(a: Option<Bbox>, b: Option<Bbox>) -> Option<Option<Bbox>> {
    match (a, b) {
        (None, x) | (x, None) => Some(x),
        (Some(a), Some(b)) => {
            let i = Bbox {
                min_x: a.min_x.max(b.min_x),
                min_y: a.min_y.max(b.min_y),
                max_x: a.max_x.min(b.max_x),
                max_y: a.max_y.min(b.max_y),
            };
            (i.min_x <= i.max_x && i.min_y <= i.max_y).then_some(Some(i))
        }
    }
}

/// The exact checks SQL cannot make: geometry against bbox/geometry, and the filter's residual.
struct Exact<'q> {
    bbox: Option<Bbox>,
    intersects: Option<geo::Geometry<f64>>,
    residual: Option<Filter>,
    _q: std::marker::PhantomData<&'q ()>,
}

impl Exact<'_> {
    fn keep(&self, f: &Feature, version: i64) -> bool {
        if self.bbox.is_some() || self.intersects.is_some() {
            let Some(g) = &f.geometry else { return false };
            if let Some(b) = &self.bbox {
                let hit = match g {
                    Geometry::Point(c) => b.contains_point(c.x, c.y),
                    other => {
                        let rect = geo::Rect::new(
                            geo::coord! { x: b.min_x, y: b.min_y },
                            geo::coord! { x: b.max_x, y: b.max_y },
                        );
                        rect.intersects(&other.to_geo())
                    }
                };
                if !hit {
                    return false;
                }
            }
            if let Some(q) = &self.intersects
                && !q.intersects(&g.to_geo())
            {
                return false;
            }
        }
        self.residual.as_ref().is_none_or(|r| r.matches(f, Some(version)))
    }
}

/// Offset/limit bookkeeping shared by both halves of an as-of scan.
struct Page<'s> {
    skip: usize,
    limit: Option<usize>,
    stats: QueryStats,
    done: bool,
    sink: &'s mut dyn FnMut(StoredFeature) -> bool,
}

impl Page<'_> {
    fn offer(&mut self, f: StoredFeature) {
        if self.skip > 0 {
            self.skip -= 1;
            return;
        }
        if self.limit.is_some_and(|l| self.stats.returned >= l) {
            self.stats.more = true;
            self.done = true;
            return;
        }
        self.stats.returned += 1;
        if !(self.sink)(f) {
            self.done = true;
        }
    }
}

pub(crate) fn query(
    conn: &Connection,
    q: &Query<'_>,
    sink: &mut dyn FnMut(StoredFeature) -> bool,
) -> Result<QueryStats> {
    let layer = layers::load(conn, q.layer)?;
    let tx_max = match q.as_of {
        None => None,
        Some(t) => match tx_at(conn, t)? {
            Some(tx) => Some(tx),
            None => return Ok(QueryStats::default()), // before the store existed
        },
    };
    let mut page = Page { skip: q.offset, limit: q.limit, stats: QueryStats::default(), done: false, sink };
    let mut times = TxTimes { conn, cache: HashMap::new() };
    let intersects = q.intersects.map(Geometry::to_geo);
    let geom_env = q.intersects.and_then(Geometry::bbox);

    // Current table.
    let plan = q.filter.map(|f| f.plan(&CurrentColumns));
    let Some(env) = intersection(q.bbox, geom_env).and_then(|e| intersection(e, plan.as_ref().and_then(|p| p.bbox)))
    else {
        return Ok(page.stats);
    };
    let exact = Exact {
        bbox: q.bbox,
        intersects: intersects.clone(),
        residual: plan.as_ref().and_then(|p| p.residual.clone()),
        _q: std::marker::PhantomData,
    };
    let mut where_ = Vec::new();
    let mut params = Vec::new();
    if let Some(b) = &env {
        rtree_sql("t", "fid", &rtree(layer.name()), b, &mut where_, &mut params);
    }
    if let Some(v) = &q.valid {
        valid_sql("t", v, &mut where_, &mut params);
    }
    if let Some(tx) = tx_max {
        where_.push("t.sk_tx <= ?".into());
        params.push(Sql::Integer(tx.0));
    }
    if let Some(p) = &plan
        && let Some(sql) = &p.sql
    {
        where_.push(format!("({sql})"));
        params.extend(p.params.iter().map(codec::to_sql));
    }
    let sql = format!("{} ORDER BY t.fid", current_select(&layer, &where_.join(" AND ")));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        page.stats.scanned += 1;
        let cur = decode_current(&layer, r)?;
        if !exact.keep(&cur.feature, cur.version) {
            continue;
        }
        let tx_time = times.get(cur.tx)?;
        page.offer(StoredFeature {
            feature: cur.feature,
            version: cur.version,
            tx: cur.tx,
            tx_time,
            device_time: cur.device_time,
        });
        if page.done {
            return Ok(page.stats);
        }
    }
    drop(rows);

    // Closed versions that were current at tx_max.
    let Some(tx) = tx_max else { return Ok(page.stats) };
    let hplan = q.filter.map(|f| f.plan(&HistoryColumns));
    let exact = Exact { residual: hplan.as_ref().and_then(|p| p.residual.clone()), ..exact };
    let mut where_ =
        vec!["h.tx_from <= ?".to_owned(), "(h.tx_to IS NULL OR h.tx_to > ?)".into(), "h.op <> 'delete'".into()];
    let mut params = vec![Sql::Integer(tx.0), Sql::Integer(tx.0)];
    if let Some(b) = &env {
        rtree_sql("h", "hid", &hist_rtree(layer.name()), b, &mut where_, &mut params);
    }
    if let Some(v) = &q.valid {
        valid_sql("h", v, &mut where_, &mut params);
    }
    if let Some(p) = &hplan
        && let Some(sql) = &p.sql
    {
        where_.push(format!("({sql})"));
        params.extend(p.params.iter().map(codec::to_sql));
    }
    let sql = format!(
        "SELECT {HIST_COLUMNS} FROM {} AS h WHERE {} ORDER BY h.hid",
        quote_ident(&hist_table(layer.name())),
        where_.join(" AND ")
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    while let Some(r) = rows.next()? {
        page.stats.scanned += 1;
        let h = decode_hist(&layer, r)?;
        if !exact.keep(&h.feature, h.version) {
            continue;
        }
        let tx_time = times.get(h.tx_from)?;
        page.offer(StoredFeature {
            feature: h.feature,
            version: h.version,
            tx: h.tx_from,
            tx_time,
            device_time: h.device_time,
        });
        if page.done {
            break;
        }
    }
    Ok(page.stats)
}

/// The live row for `key`.
pub(crate) fn current_row(conn: &Connection, layer: &Layer, key: &FeatureKey) -> Result<Option<CurrentRow>> {
    let (cond, arg) = match key {
        FeatureKey::Id(id) => ("t.entity_id = ?1", id.to_string()),
        FeatureKey::Code(c) => ("t.code = ?1", c.clone()),
    };
    let mut stmt = conn.prepare_cached(&current_select(layer, cond))?;
    let mut rows = stmt.query([arg])?;
    match rows.next()? {
        Some(r) => Ok(Some(decode_current(layer, r)?)),
        None => Ok(None),
    }
}

/// The entity a key names, live or not: a code names the live entity holding it, otherwise the
/// entity that held it most recently.
fn resolve(conn: &Connection, layer: &Layer, key: &FeatureKey) -> Result<Option<EntityId>> {
    if let Some(cur) = current_row(conn, layer, key)? {
        return Ok(Some(cur.feature.id));
    }
    let h = quote_ident(&hist_table(layer.name()));
    let found: Option<String> = match key {
        FeatureKey::Id(id) => conn
            .query_row(&format!("SELECT entity_id FROM {h} WHERE entity_id = ?1 LIMIT 1"), [id.to_string()], |r| {
                r.get(0)
            })
            .optional()?,
        FeatureKey::Code(c) => conn
            .query_row(
                &format!("SELECT entity_id FROM {h} WHERE code = ?1 ORDER BY tx_from DESC, version DESC LIMIT 1"),
                [c],
                |r| r.get(0),
            )
            .optional()?,
    };
    found.map(|s| entity_id(layer, &s)).transpose()
}

/// One version of an entity: the state it recorded (`None` for a tombstone) from `tx` on.
struct Version {
    version: i64,
    op: Op,
    tx: TxId,
    state: Option<Feature>,
    device_time: Option<Timestamp>,
}

/// Every version of an entity, oldest first.
fn versions(conn: &Connection, layer: &Layer, id: EntityId) -> Result<Vec<Version>> {
    let mut out = Vec::new();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {HIST_COLUMNS} FROM {} AS h WHERE h.entity_id = ?1 ORDER BY h.version",
        quote_ident(&hist_table(layer.name()))
    ))?;
    let mut rows = stmt.query([id.to_string()])?;
    while let Some(r) = rows.next()? {
        let h = decode_hist(layer, r)?;
        let state = (h.op != Op::Delete).then_some(h.feature);
        out.push(Version { version: h.version, op: h.op, tx: h.tx_from, state, device_time: h.device_time });
    }
    if let Some(cur) = current_row(conn, layer, &FeatureKey::Id(id))? {
        let op = if cur.version == 1 { Op::Insert } else { Op::Update };
        out.push(Version {
            version: cur.version,
            op,
            tx: cur.tx,
            state: Some(cur.feature),
            device_time: cur.device_time,
        });
    }
    Ok(out)
}

/// The version current at `tx` among `versions` (sorted by version), if the entity was live.
fn state_at(versions: &[Version], tx: TxId) -> Option<(i64, TxId, &Feature, Option<Timestamp>)> {
    let v = versions.iter().rev().find(|v| v.tx <= tx)?;
    v.state.as_ref().map(|s| (v.version, v.tx, s, v.device_time))
}

pub(crate) fn get(
    conn: &Connection,
    layer: &str,
    key: &FeatureKey,
    as_of: Option<Timestamp>,
) -> Result<Option<StoredFeature>> {
    let layer = layers::load(conn, layer)?;
    let mut times = TxTimes { conn, cache: HashMap::new() };
    let Some(t) = as_of else {
        return current_row(conn, &layer, key)?
            .map(|c| {
                Ok(StoredFeature {
                    tx_time: times.get(c.tx)?,
                    feature: c.feature,
                    version: c.version,
                    tx: c.tx,
                    device_time: c.device_time,
                })
            })
            .transpose();
    };
    let Some(tx) = tx_at(conn, t)? else { return Ok(None) };
    let Some(id) = resolve(conn, &layer, key)? else { return Ok(None) };
    let vs = versions(conn, &layer, id)?;
    match state_at(&vs, tx) {
        // A code names whichever entity held it at that instant; check it still matches.
        Some((_, _, f, _)) if matches!(key, FeatureKey::Code(c) if *c != f.code) => Ok(None),
        Some((version, from, f, device_time)) => {
            Ok(Some(StoredFeature { feature: f.clone(), version, tx: from, tx_time: times.get(from)?, device_time }))
        }
        None => Ok(None),
    }
}

const TX_COLUMNS: &str = "tx, time_us, author, device, device_time, source, replica";

/// A row of `sk_transactions` selected as [`TX_COLUMNS`].
fn decode_tx(r: &Row<'_>) -> Result<TxRecord> {
    let tx = TxId(r.get(0)?);
    let replica = r
        .get::<_, Option<String>>(6)?
        .map(|s| {
            s.parse::<ReplicaId>().map_err(|e| StoreError::Corrupt(format!("transaction {}: replica `{s}`: {e}", tx.0)))
        })
        .transpose()?;
    Ok(TxRecord {
        tx,
        time: codec::micros_to_ts(r.get(1)?),
        author: r.get(2)?,
        device: r.get(3)?,
        device_time: r.get(4)?,
        source: r.get(5)?,
        replica,
    })
}

fn tx_record(conn: &Connection, tx: TxId) -> Result<TxRecord> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {TX_COLUMNS} FROM sk_transactions WHERE tx = ?1"))?;
    let mut rows = stmt.query([tx.0])?;
    match rows.next()? {
        Some(r) => decode_tx(r),
        None => Err(StoreError::Corrupt(format!("transaction {} is missing from the journal", tx.0))),
    }
}

pub(crate) fn history(conn: &Connection, layer: &str, key: &FeatureKey) -> Result<Vec<VersionRecord>> {
    let layer = layers::load(conn, layer)?;
    let Some(id) = resolve(conn, &layer, key)? else {
        return Err(StoreError::NotFound { layer: layer.name().to_owned(), key: key.to_string() });
    };
    let mut out: Vec<VersionRecord> = Vec::new();
    let mut previous: Option<Feature> = None;
    for Version { version, op, tx, state, device_time } in versions(conn, &layer, id)? {
        let changes = match (&previous, &state) {
            (None, Some(s)) => as_changes(s, true),
            (Some(p), Some(s)) => feature_diff(p, s),
            (Some(p), None) => as_changes(p, false),
            (None, None) => Vec::new(),
        };
        out.push(VersionRecord { version, op, tx: tx_record(conn, tx)?, device_time, state: state.clone(), changes });
        previous = state;
    }
    Ok(out)
}

/// The diff between two instants over the entities changed in between with ids after `after`
/// (in id order), at most `limit` of them.
pub(crate) fn diff(
    conn: &Connection,
    layer: &str,
    from: Timestamp,
    to: Timestamp,
    after: Option<EntityId>,
    limit: usize,
) -> Result<DiffPage> {
    let layer = layers::load(conn, layer)?;
    if to < from {
        return Err(StoreError::InvalidArgument(format!("diff: `to` ({to}) is before `from` ({from})")));
    }
    let tx1 = tx_at(conn, from)?.unwrap_or(TxId(0));
    let tx2 = tx_at(conn, to)?.unwrap_or(TxId(0));
    let mut ids: Vec<String> = Vec::new();
    {
        // Entity ids are lowercase hyphenated UUIDs: text order is id order.
        let mut stmt = conn.prepare(&format!(
            "SELECT entity_id FROM {} WHERE entity_id > ?3 AND sk_tx > ?1 AND sk_tx <= ?2 \
             UNION SELECT entity_id FROM {} WHERE entity_id > ?3 AND tx_from > ?1 AND tx_from <= ?2 \
             ORDER BY 1 LIMIT ?4",
            quote_ident(layer.name()),
            quote_ident(&hist_table(layer.name()))
        ))?;
        let after = after.map(|a| a.to_string()).unwrap_or_default();
        // One more than asked: whether another page follows.
        let take = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![tx1.0, tx2.0, after, take], |r| r.get::<_, String>(0))?;
        for r in rows {
            ids.push(r?);
        }
    }
    let more = ids.len() > limit;
    ids.truncate(limit);
    let mut times = TxTimes { conn, cache: HashMap::new() };
    let mut out = Diff::default();
    let mut last = None;
    for id in ids {
        crate::cancel::check()?;
        let id = entity_id(&layer, &id)?;
        last = Some(id);
        let vs = versions(conn, &layer, id)?;
        let stored = |times: &mut TxTimes<'_>,
                      (v, tx, f, dt): (i64, TxId, &Feature, Option<Timestamp>)|
         -> Result<StoredFeature> {
            Ok(StoredFeature { feature: f.clone(), version: v, tx, tx_time: times.get(tx)?, device_time: dt })
        };
        match (state_at(&vs, tx1), state_at(&vs, tx2)) {
            (None, Some(b)) => out.created.push(stored(&mut times, b)?),
            (Some(a), None) => out.deleted.push(stored(&mut times, a)?),
            (Some(a), Some(b)) => {
                let changes = feature_diff(a.2, b.2);
                if !changes.is_empty() {
                    out.modified.push(Modified {
                        id,
                        code: b.2.code.clone(),
                        from_version: a.0,
                        to_version: b.0,
                        changes,
                    });
                }
            }
            (None, None) => {}
        }
    }
    Ok(DiffPage { diff: out, next: if more { last } else { None } })
}

pub(crate) fn entities_created_by(conn: &Connection, layer: &str, author: &str) -> Result<Vec<EntityId>> {
    let layer = layers::load(conn, layer)?;
    // Version 1 is the live row until superseded, then a history row; both halves are looked up
    // by transaction through their `sk_tx` / `tx_from` indexes, the transactions through
    // `sk_idx_transactions_author`.
    let sql = format!(
        "WITH mine(tx) AS (SELECT tx FROM sk_transactions WHERE author = ?1) \
         SELECT entity_id, tx FROM ( \
           SELECT t.entity_id AS entity_id, t.sk_tx AS tx FROM {} AS t WHERE t.sk_tx IN mine AND t.sk_version = 1 \
           UNION ALL \
           SELECT h.entity_id, h.tx_from FROM {} AS h WHERE h.tx_from IN mine AND h.version = 1 \
         ) ORDER BY tx, entity_id",
        quote_ident(layer.name()),
        quote_ident(&hist_table(layer.name()))
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([author], |r| r.get::<_, String>(0))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for r in rows {
        let id = entity_id(&layer, &r?)?;
        if seen.insert(id) {
            out.push(id);
        }
    }
    Ok(out)
}

pub(crate) fn transactions(conn: &Connection, after: Option<TxId>, limit: usize) -> Result<Vec<TxRecord>> {
    let mut stmt =
        conn.prepare_cached(&format!("SELECT {TX_COLUMNS} FROM sk_transactions WHERE tx > ?1 ORDER BY tx LIMIT ?2"))?;
    let mut rows = stmt.query(params![after.map_or(0, |t| t.0), i64::try_from(limit).unwrap_or(i64::MAX)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(decode_tx(r)?);
    }
    Ok(out)
}

pub(crate) fn changes_since(conn: &Connection, layer: &str, cursor: ChangeCursor, limit: usize) -> Result<ChangePage> {
    let layer = layers::load(conn, layer)?;
    let wanted = limit.max(1);
    // One row more than asked tells whether another page follows.
    let limit = i64::try_from(wanted).unwrap_or(i64::MAX - 1) + 1;
    let mut out = Vec::new();
    let mut times = TxTimes { conn, cache: HashMap::new() };
    // Live rows (kind 0) and tombstones (kind 1) whose version came after the cursor, merged in
    // (tx, kind, key) order. A restored entity's old tombstone is closed (tx_to set), so it is not
    // listed again.
    let live_sql = format!(
        "{} AND (t.sk_tx, 0, t.fid) > (?1, ?2, ?3) ORDER BY t.sk_tx, t.fid LIMIT ?4",
        current_select(&layer, "1 = 1")
    );
    let mut stmt = conn.prepare_cached(&live_sql)?;
    let mut rows = stmt.query(params![cursor.tx, cursor.kind, cursor.key, limit])?;
    while let Some(r) = rows.next()? {
        let c = decode_current(&layer, r)?;
        let position = ChangeCursor { tx: c.tx.0, kind: 0, key: c.fid };
        let tx_time = times.get(c.tx)?;
        out.push(ChangedEntity {
            id: c.feature.id,
            version: c.version,
            tx: c.tx,
            state: Some(StoredFeature {
                feature: c.feature,
                version: c.version,
                tx: c.tx,
                tx_time,
                device_time: c.device_time,
            }),
            position,
        });
    }
    drop(rows);
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT hid, entity_id, version, tx_from FROM {} WHERE op = 'delete' AND tx_to IS NULL AND (tx_from, 1, hid) > (?1, ?2, ?3) \
         ORDER BY tx_from, hid LIMIT ?4",
        quote_ident(&hist_table(layer.name()))
    ))?;
    let mut rows = stmt.query(params![cursor.tx, cursor.kind, cursor.key, limit])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(1)?;
        let tx = TxId(r.get(3)?);
        out.push(ChangedEntity {
            id: entity_id(&layer, &id)?,
            version: r.get(2)?,
            tx,
            state: None,
            position: ChangeCursor { tx: tx.0, kind: 1, key: r.get(0)? },
        });
    }
    drop(rows);
    // Documents rewritten without a new version of their own (kind 2): a resolution that kept the
    // visible value, an edit that lost to a deletion. Entities whose version moved in the same
    // transaction are already listed.
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.rowid, d.entity_id, d.tx FROM sk_sync_docs d WHERE d.layer = ?5 AND (d.tx, 2, d.rowid) > (?1, ?2, ?3) \
           AND NOT EXISTS (SELECT 1 FROM {t} t WHERE t.entity_id = d.entity_id AND t.sk_tx = d.tx) \
           AND NOT EXISTS (SELECT 1 FROM {h} h WHERE h.entity_id = d.entity_id AND h.tx_from = d.tx) \
         ORDER BY d.tx, d.rowid LIMIT ?4",
        t = quote_ident(layer.name()),
        h = quote_ident(&hist_table(layer.name()))
    ))?;
    let docs: Vec<(i64, String, i64)> = stmt
        .query_map(params![cursor.tx, cursor.kind, cursor.key, limit, layer.name()], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (rowid, id, tx) in docs {
        let id = entity_id(&layer, &id)?;
        let position = ChangeCursor { tx, kind: 2, key: rowid };
        let live = current_row(conn, &layer, &FeatureKey::Id(id))?;
        let (version, state) = match live {
            Some(c) => {
                let tx_time = times.get(c.tx)?;
                (
                    c.version,
                    Some(StoredFeature {
                        feature: c.feature,
                        version: c.version,
                        tx: c.tx,
                        tx_time,
                        device_time: c.device_time,
                    }),
                )
            }
            None => {
                let v: Option<i64> = conn
                    .query_row(
                        &format!(
                            "SELECT max(version) FROM {} WHERE entity_id = ?1",
                            quote_ident(&hist_table(layer.name()))
                        ),
                        [id.to_string()],
                        |r| r.get(0),
                    )
                    .optional()?
                    .flatten();
                (v.unwrap_or(0), None)
            }
        };
        out.push(ChangedEntity { id, version, tx: TxId(tx), state, position });
    }
    out.sort_by_key(|c| c.position);
    let more = out.len() > wanted;
    out.truncate(wanted);
    let next = match out.last() {
        Some(last) if more => last.position,
        _ => {
            let newest: Option<i64> = conn.query_row("SELECT max(tx) FROM sk_transactions", [], |r| r.get(0))?;
            cursor.max(ChangeCursor::after_tx(TxId(newest.unwrap_or(0))))
        }
    };
    Ok(ChangePage { changes: out, next, more })
}

/// `(entity, version)` of every entity live in `layer` as of transaction `tx` whose geometry meets
/// `area` (every entity when there is none): what a replica of that area holds after a pull
/// complete through `tx`. Decodes no properties, and geometry only when there is an area.
pub(crate) fn versions_at(
    conn: &Connection,
    layer: &str,
    tx: TxId,
    area: Option<&Geometry>,
    sink: &mut dyn FnMut(EntityId, i64),
) -> Result<()> {
    let layer = layers::load(conn, layer)?;
    let shape = area.map(Geometry::to_geo);
    let env = area.and_then(Geometry::bbox);
    // (alias, key, R-tree, table, version column, conditions, how many bind `tx`)
    let halves = [
        ("t", "fid", rtree(layer.name()), layer.name().to_owned(), "t.sk_version", vec!["t.sk_tx <= ?".to_owned()], 1),
        (
            "h",
            "hid",
            hist_rtree(layer.name()),
            hist_table(layer.name()),
            "h.version",
            vec!["h.tx_from <= ?".to_owned(), "(h.tx_to IS NULL OR h.tx_to > ?)".into(), "h.op <> 'delete'".into()],
            2,
        ),
    ];
    for (alias, key, rtree_table, table, version, mut where_, binds) in halves {
        let mut params = vec![Sql::Integer(tx.0); binds];
        if let Some(b) = &env {
            rtree_sql(alias, key, &rtree_table, b, &mut where_, &mut params);
        }
        let geom = if shape.is_some() { format!(", {alias}.geom") } else { String::new() };
        let sql = format!(
            "SELECT {alias}.entity_id, {version}{geom} FROM {} AS {alias} WHERE {}",
            quote_ident(&table),
            where_.join(" AND ")
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            let id: String = r.get(0)?;
            if let Some(a) = &shape {
                let g = geometry(&layer, r.get_ref(2)?, &format!("entity {id}"))?;
                if !g.is_some_and(|g| a.intersects(&g.to_geo())) {
                    continue;
                }
            }
            sink(entity_id(&layer, &id)?, r.get(1)?);
        }
    }
    Ok(())
}
