//! Reads: current and as-of queries, one entity, its history, and diffs between instants.
//!
//! "As of T" means: the last transaction recorded at or before T (`tx_max`); an entity's state is
//! the version whose transaction interval `[tx_from, tx_to)` contains `tx_max` — the current row if
//! `sk_tx <= tx_max`, otherwise a closed version from the history table. Both halves use their own
//! R-tree, so an as-of query costs about the same as a current one.

use std::collections::HashMap;

use jiff::Timestamp;
use rusqlite::types::{Value as Sql, ValueRef};
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use serde_json::{Map, Value as Json};
use shikong_gpkg::quote_ident;
use shikong_model::time::ValidFilter;
use shikong_model::{Bbox, EntityId, Feature, Geometry, Properties, TxId, ValidTime, gpkg_blob};
use shikong_query::{Attribute, ColumnMap, Filter};

use super::codec;
use super::layers::{self, hist_rtree, hist_table, rtree};
use crate::error::{Result, StoreError};
use crate::logic::{self, Page, intersection};
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
pub(super) struct HistRow {
    feature: Feature,
    version: i64,
    op: Op,
    tx_from: TxId,
    device_time: Option<Timestamp>,
}

pub(super) fn corrupt(layer: &Layer, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("layer `{}`: {what}", layer.name()))
}

pub(super) fn geometry(layer: &Layer, v: ValueRef<'_>, row: &str) -> Result<Option<Geometry>> {
    match v {
        ValueRef::Blob(b) => Ok(gpkg_blob::decode(b).map_err(|e| corrupt(layer, format!("{row}: {e}")))?.1),
        ValueRef::Null => Ok(None),
        _ => Err(corrupt(layer, format!("{row}: geometry is not a blob"))),
    }
}

pub(super) fn entity_id(layer: &Layer, s: &str) -> Result<EntityId> {
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

pub(super) fn decode_hist(layer: &Layer, r: &Row<'_>) -> Result<HistRow> {
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
    let op = logic::op_of(r.get::<_, String>(9)?.as_str());
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
pub(super) fn tx_at(conn: &Connection, t: Timestamp) -> Result<Option<TxId>> {
    let tx: Option<i64> =
        conn.query_row("SELECT max(tx) FROM sk_transactions WHERE time_us <= ?1", [t.as_microsecond()], |r| r.get(0))?;
    Ok(tx.map(TxId))
}

/// Transaction instants, cached for one read.
pub(super) struct TxTimes<'c> {
    pub(super) conn: &'c Connection,
    pub(super) cache: HashMap<i64, Timestamp>,
}

impl TxTimes<'_> {
    pub(super) fn get(&mut self, tx: TxId) -> Result<Timestamp> {
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

pub(super) fn rtree_sql(
    alias: &str,
    key: &str,
    rtree: &str,
    b: &Bbox,
    where_: &mut Vec<String>,
    params: &mut Vec<Sql>,
) {
    where_.push(format!(
        "{alias}.{key} IN (SELECT id FROM {} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)",
        quote_ident(rtree)
    ));
    params.extend([b.max_x, b.min_x, b.max_y, b.min_y].map(Sql::Real));
}

/// The exact checks SQL cannot make: geometry against bbox/geometry, and the filter's residual.
#[derive(Clone)]
struct Exact<'q> {
    bbox: Option<Bbox>,
    intersects: Option<geo::Geometry<f64>>,
    residual: Option<Filter>,
    _q: std::marker::PhantomData<&'q ()>,
}

impl Exact<'_> {
    fn keep(&self, f: &Feature, version: i64) -> bool {
        if !logic::geometry_hit(self.bbox.as_ref(), self.intersects.as_ref(), f) {
            return false;
        }
        self.residual.as_ref().is_none_or(|r| r.matches(f, Some(version)))
    }
}

pub(crate) fn query(
    conn: &Connection,
    q: &Query<'_>,
    sink: &mut dyn FnMut(StoredFeature) -> bool,
) -> Result<QueryStats> {
    let layer = layers::load(conn, q.layer)?;
    let at = q.as_of.map(|t| tx_at(conn, t)).transpose()?;
    let Some(tx_max) = logic::tx_bound(q, at) else {
        return Ok(QueryStats::default()); // before the store existed
    };
    let answered_at = match tx_max {
        Some(tx) => Some(tx),
        None => conn.query_row("SELECT max(tx) FROM sk_transactions", [], |r| r.get::<_, Option<i64>>(0))?.map(TxId),
    };
    let by_id = q.by_id || q.after.is_some();
    let mut page = Page::new(q, answered_at, sink);
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
        // In id order the unary `+` keeps SQLite on the id index (a pin matches nearly every row).
        where_.push(if by_id { "+t.sk_tx <= ?" } else { "t.sk_tx <= ?" }.into());
        params.push(Sql::Integer(tx.0));
    }
    if let Some(after) = q.after {
        where_.push("t.entity_id > ?".into());
        params.push(Sql::Text(after.to_string()));
    }
    if let Some(p) = &plan
        && let Some(sql) = &p.sql
    {
        where_.push(format!("({sql})"));
        params.extend(p.params.iter().map(codec::to_sql));
    }
    let order = if by_id { "t.entity_id" } else { "t.fid" };
    let sql = format!("{} ORDER BY {order}", current_select(&layer, &where_.join(" AND ")));
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut next_current = |scanned: &mut usize, times: &mut TxTimes<'_>| -> Result<Option<StoredFeature>> {
        while let Some(r) = rows.next()? {
            *scanned += 1;
            let cur = decode_current(&layer, r)?;
            if exact.keep(&cur.feature, cur.version) {
                let tx_time = times.get(cur.tx)?;
                return Ok(Some(StoredFeature {
                    feature: cur.feature,
                    version: cur.version,
                    tx: cur.tx,
                    tx_time,
                    device_time: cur.device_time,
                }));
            }
        }
        Ok(None)
    };

    // Closed versions that were current at tx_max (an as-of query only), ordered like the
    // current rows, after `after` and up to `upto`.
    let hplan = q.filter.map(|f| f.plan(&HistoryColumns));
    let hexact = Exact { residual: hplan.as_ref().and_then(|p| p.residual.clone()), ..exact.clone() };
    let hist_sql = |tx: TxId, upto: Option<EntityId>| {
        // In id order: only tombstones have no end (`tx_to`), so `+tx_to > ?` says the same as
        // the general condition, and the unary `+`s keep SQLite on the id index for the range.
        let mut where_: Vec<String> = if by_id {
            vec!["+h.tx_from <= ?".into(), "+h.tx_to > ?".into(), "h.op <> 'delete'".into()]
        } else {
            vec!["h.tx_from <= ?".into(), "(h.tx_to IS NULL OR h.tx_to > ?)".into(), "h.op <> 'delete'".into()]
        };
        let mut params = vec![Sql::Integer(tx.0), Sql::Integer(tx.0)];
        if let Some(b) = &env {
            rtree_sql("h", "hid", &hist_rtree(layer.name()), b, &mut where_, &mut params);
        }
        if let Some(v) = &q.valid {
            valid_sql("h", v, &mut where_, &mut params);
        }
        if let Some(after) = q.after {
            where_.push("h.entity_id > ?".into());
            params.push(Sql::Text(after.to_string()));
        }
        if let Some(upto) = upto {
            where_.push("h.entity_id <= ?".into());
            params.push(Sql::Text(upto.to_string()));
        }
        if let Some(p) = &hplan
            && let Some(sql) = &p.sql
        {
            where_.push(format!("({sql})"));
            params.extend(p.params.iter().map(codec::to_sql));
        }
        let order = if by_id { "h.entity_id" } else { "h.hid" };
        let sql = format!(
            "SELECT {HIST_COLUMNS} FROM {} AS h WHERE {} ORDER BY {order}",
            quote_ident(&hist_table(layer.name())),
            where_.join(" AND ")
        );
        (sql, params)
    };
    let closed_version = |r: &Row<'_>, times: &mut TxTimes<'_>| -> Result<Option<StoredFeature>> {
        let h = decode_hist(&layer, r)?;
        if !hexact.keep(&h.feature, h.version) {
            return Ok(None);
        }
        let tx_time = times.get(h.tx_from)?;
        Ok(Some(StoredFeature {
            feature: h.feature,
            version: h.version,
            tx: h.tx_from,
            tx_time,
            device_time: h.device_time,
        }))
    };

    if !by_id {
        // Storage order: the current rows, then the closed versions.
        while let Some(f) = next_current(&mut page.stats.scanned, &mut times)? {
            page.offer(f);
            if page.done {
                return Ok(page.stats);
            }
        }
        let Some(tx) = tx_max else { return Ok(page.stats) };
        let (sql, params) = hist_sql(tx, None);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        while let Some(r) = rows.next()? {
            page.stats.scanned += 1;
            if let Some(f) = closed_version(r, &mut times)? {
                page.offer(f);
                if page.done {
                    break;
                }
            }
        }
        return Ok(page.stats);
    }

    // Entity id order. An entity is in one half only (its current row holds at tx_max, or one
    // closed version does), so the two halves merge without duplicates.
    let Some(tx) = tx_max else {
        merge(&mut page, &mut |p| next_current(&mut p.stats.scanned, &mut times), &mut |_| Ok(None))?;
        return Ok(page.stats);
    };
    if q.offset > 0 || q.limit.is_none() {
        // Skipping (`offset`, capped by the server) streams both halves, the closed versions
        // from `after` on, so that nothing skipped is held in memory.
        let (sql, params) = hist_sql(tx, None);
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params_from_iter(params))?;
        let times = std::cell::RefCell::new(times);
        merge(&mut page, &mut |p| next_current(&mut p.stats.scanned, &mut times.borrow_mut()), &mut |p| {
            while let Some(r) = rows.next()? {
                p.stats.scanned += 1;
                if let Some(f) = closed_version(r, &mut times.borrow_mut())? {
                    return Ok(Some(f));
                }
            }
            Ok(None)
        })?;
        return Ok(page.stats);
    }
    // A keyset page: the current rows it can use come first (at most limit + 1); the closed
    // versions are then read only up to the last of them, so a page costs what its id range
    // holds, not every closed version after it.
    let want = q.limit.unwrap_or(usize::MAX).saturating_add(1);
    let mut current = std::collections::VecDeque::new();
    while current.len() < want {
        match next_current(&mut page.stats.scanned, &mut times)? {
            Some(f) => current.push_back(f),
            None => break,
        }
    }
    let upto = (current.len() >= want).then(|| current.back().map(|f| f.feature.id)).flatten();
    let mut closed = std::collections::VecDeque::new();
    let (sql, params) = hist_sql(tx, upto);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    while closed.len() < want
        && let Some(r) = rows.next()?
    {
        page.stats.scanned += 1;
        if let Some(f) = closed_version(r, &mut times)? {
            closed.push_back(f);
        }
    }
    merge(&mut page, &mut |_| Ok(current.pop_front()), &mut |_| Ok(closed.pop_front()))?;
    Ok(page.stats)
}

type Next<'a> = dyn FnMut(&mut Page<'_>) -> Result<Option<StoredFeature>> + 'a;

/// Offers the features of two streams in entity id order until the page is done.
fn merge(page: &mut Page<'_>, current: &mut Next<'_>, closed: &mut Next<'_>) -> Result<()> {
    let (mut a, mut b) = (current(page)?, closed(page)?);
    while !page.done {
        let take_current = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => x.feature.id <= y.feature.id,
        };
        let f = if take_current {
            std::mem::replace(&mut a, current(page)?)
        } else {
            std::mem::replace(&mut b, closed(page)?)
        };
        if let Some(f) = f {
            page.offer(f);
        }
    }
    Ok(())
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
pub(super) fn resolve(conn: &Connection, layer: &Layer, key: &FeatureKey) -> Result<Option<EntityId>> {
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

pub(super) use crate::logic::Version;

/// Every version of an entity, oldest first.
pub(super) fn versions(conn: &Connection, layer: &Layer, id: EntityId) -> Result<Vec<Version>> {
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
pub(super) fn state_at(versions: &[Version], tx: TxId) -> Option<(i64, TxId, &Feature, Option<Timestamp>)> {
    let v = versions.iter().rev().find(|v| v.tx <= tx)?;
    v.state.as_ref().map(|s| (v.version, v.tx, s, v.device_time))
}

/// The live versions of `ids` (absent ones left out): a sync push's batch, read with the layer
/// loaded once, one prepared statement and one cache of transaction times, instead of one
/// [`get`] (layer definition parsed again each time) per entity.
pub(crate) fn get_many(conn: &Connection, layer: &str, ids: &[EntityId]) -> Result<HashMap<EntityId, StoredFeature>> {
    let layer = layers::load(conn, layer)?;
    let mut times = TxTimes { conn, cache: HashMap::new() };
    let mut stmt = conn.prepare_cached(&current_select(&layer, "t.entity_id = ?1"))?;
    let mut out = HashMap::with_capacity(ids.len());
    for id in ids {
        let mut rows = stmt.query([id.to_string()])?;
        let Some(r) = rows.next()? else { continue };
        let c = decode_current(&layer, r)?;
        let f = StoredFeature {
            tx_time: times.get(c.tx)?,
            feature: c.feature,
            version: c.version,
            tx: c.tx,
            device_time: c.device_time,
        };
        out.insert(*id, f);
    }
    Ok(out)
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

pub(super) const TX_COLUMNS: &str = "tx, time_us, author, device, device_time, source, replica";
