//! Reads on PostgreSQL: current and as-of queries, one entity, its versions.
//!
//! As on SQLite, "as of T" is the last transaction at or before T (`tx_max`): an entity's state is
//! its live row when `sk_tx <= tx_max`, otherwise the closed version whose `[tx_from, tx_to)`
//! holds `tx_max`. Both halves narrow by `geom && envelope` on their GiST index. A CQL2 filter is
//! planned by shikong-query's PostgreSQL dialect (`Filter::plan_postgres`) for each half — typed
//! columns for live rows, `(props->>'<field id>')::<type>` for history rows — and what SQL cannot
//! decide (the plan's residual, the exact bbox/geometry test) is checked in Rust on the rows.
//! Every row carries its transaction's time (joined from `sk_transactions`), so rows stream
//! without a second statement per row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use jiff::Timestamp;
use postgres::Row;
use postgres::fallible_iterator::FallibleIterator;
use serde_json::{Map, Value as Json};
use shikong_model::FieldType;
use shikong_model::time::ValidFilter;
use shikong_model::{Bbox, EntityId, Feature, Geometry, Properties, TxId, ValidTime};
use shikong_query::{Attribute, ColumnMap, Filter};

use super::PgConn;
use super::codec::{self, Args};
use super::layers::{self, column, hist, table};
use crate::error::{Result, StoreError};
use crate::logic::{self, Page, intersection};
use crate::types::*;

/// The live version of an entity as read from the live table.
#[derive(Debug, Clone)]
pub(crate) struct CurrentRow {
    pub fid: i64,
    pub feature: Feature,
    pub version: i64,
    pub tx: TxId,
    pub tx_time: Timestamp,
    pub device_time: Option<Timestamp>,
}

impl CurrentRow {
    pub(crate) fn stored(self) -> StoredFeature {
        StoredFeature {
            feature: self.feature,
            version: self.version,
            tx: self.tx,
            tx_time: self.tx_time,
            device_time: self.device_time,
        }
    }
}

/// A row of the history table.
#[derive(Debug, Clone)]
pub(crate) struct HistRow {
    pub feature: Feature,
    pub version: i64,
    pub op: Op,
    pub tx_from: TxId,
    pub tx_time: Timestamp,
    pub device_time: Option<Timestamp>,
}

impl HistRow {
    fn stored(self) -> StoredFeature {
        StoredFeature {
            feature: self.feature,
            version: self.version,
            tx: self.tx_from,
            tx_time: self.tx_time,
            device_time: self.device_time,
        }
    }
}

pub(crate) fn corrupt(layer: &Layer, what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("layer `{}`: {what}", layer.name()))
}

/// `SELECT` of the live table with the columns [`decode_current`] expects; `filter` is appended
/// after `WHERE` when not empty.
pub(crate) fn current_select(layer: &Layer, filter: &str) -> String {
    let mut cols: Vec<String> = vec!["t.fid".into(), "ST_AsBinary(t.geom)".into()];
    cols.extend(layers::SYSTEM_COLUMNS.iter().map(|c| format!("t.{c}")));
    cols.push("x.time_us".into());
    cols.extend(layer.schema().fields.iter().map(|f| format!("t.{}", column(f))));
    let mut sql = format!(
        "SELECT {} FROM {} AS t LEFT JOIN sk_transactions x ON x.tx = t.sk_tx",
        cols.join(", "),
        table(layer.name())
    );
    if !filter.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(filter);
    }
    sql
}

fn time_of(layer: &Layer, us: Option<i64>, at: &dyn Fn() -> String) -> Result<Timestamp> {
    us.map(codec::micros_to_ts).ok_or_else(|| corrupt(layer, format!("{}: its transaction is missing", at())))
}

pub(crate) fn decode_current(layer: &Layer, r: &Row) -> Result<CurrentRow> {
    decode_current_at(layer, r, 0)
}

/// [`decode_current`] of the columns from `o` on.
fn decode_current_at(layer: &Layer, r: &Row, o: usize) -> Result<CurrentRow> {
    let fid: i64 = r.try_get(o)?;
    let at = || format!("fid {fid}");
    let geometry = codec::geometry(r, o + 1).map_err(|e| corrupt(layer, format!("{}: {e}", at())))?;
    let mut properties = Properties::new();
    for (i, f) in layer.schema().fields.iter().enumerate() {
        let v = codec::value(r, o + 10 + i, f.ty)?;
        if !v.is_null() {
            properties.insert(f.name.clone(), v);
        }
    }
    Ok(CurrentRow {
        fid,
        feature: Feature {
            id: EntityId(r.try_get(o + 2)?),
            code: r.try_get(o + 3)?,
            geometry,
            valid: ValidTime { from: r.try_get(o + 4)?, to: r.try_get(o + 5)? },
            properties,
        },
        version: r.try_get(o + 6)?,
        tx: TxId(r.try_get(o + 7)?),
        device_time: r.try_get(o + 8)?,
        tx_time: time_of(layer, r.try_get(o + 9)?, &at)?,
    })
}

/// Properties as stored in history rows: JSON keyed by stable field id.
pub(crate) fn props_json(layer: &Layer, props: &Properties) -> Json {
    let mut m = Map::new();
    for (name, v) in props {
        if let Some(f) = layer.schema().field(name) {
            m.insert(f.id.clone(), codec::to_json(v));
        }
    }
    Json::Object(m)
}

/// `SELECT` of the history table as [`decode_hist`] expects (alias `h`).
pub(crate) fn hist_select(layer: &Layer) -> String {
    format!(
        "SELECT h.hid, ST_AsBinary(h.geom), h.entity_id, h.code, h.valid_from, h.valid_to, h.version, h.tx_from, \
         h.props, h.op, h.tx_to, h.device_time, x.time_us FROM {} AS h LEFT JOIN sk_transactions x ON x.tx = h.tx_from",
        hist(layer.name())
    )
}

/// Where [`decode_hist_at`] finds a history row's columns.
struct HistCols {
    hid: usize,
    props: usize,
    op: usize,
    device_time: usize,
    time_us: usize,
}

/// The columns of [`hist_select`].
const HIST_SELECT: HistCols = HistCols { hid: 0, props: 8, op: 9, device_time: 11, time_us: 12 };

pub(crate) fn decode_hist(layer: &Layer, r: &Row) -> Result<HistRow> {
    decode_hist_at(layer, r, &HIST_SELECT)
}

/// A history row whose `hid`, geometry, entity id, code, valid from/to, version and `tx_from`
/// are consecutive from `cols.hid`, the rest where `cols` says.
fn decode_hist_at(layer: &Layer, r: &Row, cols: &HistCols) -> Result<HistRow> {
    let o = cols.hid;
    let hid: i64 = r.try_get(o)?;
    let at = || format!("history row {hid}");
    let geometry = codec::geometry(r, o + 1).map_err(|e| corrupt(layer, format!("{}: {e}", at())))?;
    let props: Json = r.try_get(cols.props)?;
    let mut properties = Properties::new();
    if let Json::Object(json) = &props {
        for (fid, v) in json {
            // Every field id ever used stays in the schema (fields are retired, never removed).
            let f = layer
                .schema()
                .field_by_id(fid)
                .ok_or_else(|| corrupt(layer, format!("{}: unknown field id {fid}", at())))?;
            let v =
                codec::from_json(v, f.ty).map_err(|e| corrupt(layer, format!("{}, field `{}`: {e}", at(), f.name)))?;
            if !v.is_null() {
                properties.insert(f.name.clone(), v);
            }
        }
    }
    let op = logic::op_of(r.try_get::<_, String>(cols.op)?.as_str());
    Ok(HistRow {
        feature: Feature {
            id: EntityId(r.try_get(o + 2)?),
            code: r.try_get::<_, Option<String>>(o + 3)?.unwrap_or_default(),
            geometry,
            valid: ValidTime { from: r.try_get(o + 4)?, to: r.try_get(o + 5)? },
            properties,
        },
        version: r.try_get(o + 6)?,
        op,
        tx_from: TxId(r.try_get(o + 7)?),
        device_time: r.try_get(cols.device_time)?,
        tx_time: time_of(layer, r.try_get(cols.time_us)?, &at)?,
    })
}

/// The newest committed transaction this snapshot sees.
pub(crate) fn latest_tx(c: &mut PgConn) -> Result<TxId> {
    let tx: Option<i64> = c.query_one("SELECT max(tx) FROM sk_transactions", &[])?.get(0);
    Ok(TxId(tx.unwrap_or(0)))
}

/// The last transaction recorded at or before `t`.
pub(crate) fn tx_at(c: &mut PgConn, t: Timestamp) -> Result<Option<TxId>> {
    let tx: Option<i64> =
        c.query_one("SELECT max(tx) FROM sk_transactions WHERE time_us <= $1", &[&t.as_microsecond()])?.get(0);
    Ok(tx.map(TxId))
}

/// Where an attribute is in the live table (alias `t`), with the PostgreSQL type the planner's
/// `ColumnMap` contract asks for.
fn live_column(layer: &Layer, a: &Attribute) -> Option<String> {
    Some(match a {
        Attribute::Field(f) => {
            let def = layer.schema().field_by_id(&f.id)?;
            if def.ty == FieldType::Attachments {
                return None;
            }
            format!("t.{}", column(def))
        }
        Attribute::EntityId => "t.entity_id::text".into(),
        Attribute::Code => "t.code".into(),
        Attribute::ValidFrom => "t.valid_from".into(),
        Attribute::ValidTo => "t.valid_to".into(),
        Attribute::Version => "t.sk_version".into(),
        Attribute::Geometry => "t.geom".into(),
        _ => return None,
    })
}

/// Where an attribute is in a history row (alias `h`): fields from the JSON properties, cast to
/// their type.
fn hist_column(a: &Attribute) -> Option<String> {
    Some(match a {
        Attribute::Field(f) => {
            let key = format!("(h.props->>'{}')", f.id.replace('\'', "''"));
            match f.ty {
                FieldType::Text | FieldType::Code => key,
                FieldType::Integer => format!("{key}::bigint"),
                FieldType::Real => format!("{key}::double precision"),
                FieldType::Bool => format!("{key}::boolean"),
                FieldType::Date => format!("{key}::date"),
                FieldType::DateTime => format!("{key}::timestamptz"),
                FieldType::Attachments => return None,
            }
        }
        Attribute::EntityId => "h.entity_id::text".into(),
        Attribute::Code => "h.code".into(),
        Attribute::ValidFrom => "h.valid_from".into(),
        Attribute::ValidTo => "h.valid_to".into(),
        Attribute::Version => "h.version".into(),
        Attribute::Geometry => "h.geom".into(),
        _ => return None,
    })
}

/// Adds the SQL part of `filter` to `where_` (its parameters to `args`); returns what remains to
/// check in Rust.
fn plan_filter(filter: &Filter, cols: &dyn ColumnMap, where_: &mut Vec<String>, args: &mut Args) -> Option<Filter> {
    let plan = filter.plan_postgres(cols, args.len() + 1);
    if let Some(sql) = plan.sql {
        where_.push(format!("({sql})"));
        for p in plan.params {
            args.add_boxed(codec::plan_param(p));
        }
    }
    plan.residual
}

/// Valid-time conditions on the table aliased `alias`.
fn valid_sql(alias: &str, v: &ValidFilter, where_: &mut Vec<String>, args: &mut Args) {
    let (a, b) = match *v {
        ValidFilter::At(t) => (Some(t), Some(t)),
        ValidFilter::Range(a, b) => (a, b),
    };
    if let Some(b) = b {
        where_.push(format!("({alias}.valid_from IS NULL OR {alias}.valid_from <= {})", args.add(b)));
    }
    if let Some(a) = a {
        // An instant must fall before the end; a range must overlap the half-open [from, to).
        where_.push(format!("({alias}.valid_to IS NULL OR {alias}.valid_to > {})", args.add(a)));
    }
}

/// The checks made in Rust on the candidates SQL returns: geometry against bbox/geometry, and
/// what remains of the filter on live rows (history rows have their own remainder).
struct Exact {
    bbox: Option<Bbox>,
    intersects: Option<geo::Geometry<f64>>,
    filter: Option<Filter>,
}

impl Exact {
    fn keep(&self, f: &Feature, version: i64) -> bool {
        self.keep_geometry(f) && self.filter.as_ref().is_none_or(|r| r.matches(f, Some(version)))
    }

    fn keep_geometry(&self, f: &Feature) -> bool {
        logic::geometry_hit(self.bbox.as_ref(), self.intersects.as_ref(), f)
    }
}

/// Checks the current cancel token every so many rows.
fn tick(scanned: usize) -> Result<()> {
    if scanned.is_multiple_of(1024) { crate::cancel::check() } else { Ok(()) }
}

/// A snapshot older than the read needed (a standby that has not replayed that far yet): the
/// read stopped before delivering anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Behind;

/// Layers as last read by this process, for single-statement reads ([`query_single`]): each use
/// is checked against the layer's `created_tx` and schema transaction in the same statement as
/// the rows, so a stale definition is never used to decode them.
#[derive(Default)]
pub(crate) struct LayerCache(Mutex<HashMap<String, Arc<Layer>>>);

impl LayerCache {
    fn get(&self, name: &str) -> Option<Arc<Layer>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).get(name).cloned()
    }

    fn put(&self, layer: &Layer) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if m.len() >= 4096 {
            m.clear();
        }
        m.insert(layer.name().to_owned(), Arc::new(layer.clone()));
    }

    fn forget(&self, name: &str) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(name);
    }
}

/// The features matching `q`, in a snapshot holding transaction `need`, else [`Behind`] before
/// any row reaches `sink` (the snapshot's newest transaction comes with the layer, in the same
/// statement). Runs in the caller's transaction; the layer read is remembered in `cache`.
pub(crate) fn query_fresh(
    c: &mut PgConn,
    q: &Query<'_>,
    need: TxId,
    cache: &LayerCache,
    sink: &mut dyn FnMut(StoredFeature) -> bool,
) -> Result<std::result::Result<QueryStats, Behind>> {
    let (layer, latest, at) = layers::load_for_read(c, q.layer, q.as_of)?;
    cache.put(&layer);
    if latest < need {
        return Ok(Err(Behind));
    }
    query_loaded(c, q, &layer, latest, at, sink).map(Ok)
}

/// A query as ONE statement outside any transaction — in READ COMMITTED a statement is its own
/// snapshot, so the rows and the snapshot's newest transaction still come from one state — with
/// the layer from `cache`, revalidated by the same statement. A current query reads the live
/// table; an as-of query in storage order (no `at_tx`, not by id) reads both halves in one
/// `UNION ALL` (live rows by `fid`, then closed versions by `hid`, as the transaction path
/// delivers them), its transaction (`m.at`) computed by the statement too. `None` (nothing
/// delivered) when the query does not qualify or the cached layer is missing or stale: the
/// caller reads in a transaction.
pub(crate) fn query_single(
    c: &mut PgConn,
    q: &Query<'_>,
    need: TxId,
    cache: &LayerCache,
    sink: &mut dyn FnMut(StoredFeature) -> bool,
) -> Result<Option<std::result::Result<QueryStats, Behind>>> {
    if q.at_tx.is_some() || (q.as_of.is_some() && (q.by_id || q.after.is_some())) {
        return Ok(None);
    }
    let Some(layer) = cache.get(q.layer) else { return Ok(None) };
    let mut args = Args::default();
    let as_of = q.as_of.map(|t| args.add(t.as_microsecond()));
    let Some(live) = live_plan(q, &layer, as_of.as_ref().map(|_| TxRef::Sql("m.at")), args) else {
        return Ok(None);
    };
    let LivePlan { sql, where_, mut args, exact, env } = live;
    let (sql, at_col, hist_residual) = match &as_of {
        None => (sql, String::new(), None),
        Some(t) => {
            let (h_where, residual) = hist_where(q, env.as_ref(), &TxRef::Sql("m.at"), None, &mut args);
            let union = as_of_union(&layer, &where_, &h_where);
            (union, format!(", (SELECT max(tx) FROM sk_transactions WHERE time_us <= {t}) AS at"), residual)
        }
    };
    let name = args.add(q.layer.to_owned());
    // One row of `m` (none when the layer is gone), joined to the rows in their order: a join
    // `ON true` can only be a nested loop, which keeps the inner side's order.
    let sql = format!(
        "WITH m AS (SELECT l.created_tx, (SELECT max(h.tx) FROM sk_schema_history h WHERE h.layer = l.name) AS st, \
         (SELECT max(tx) FROM sk_transactions) AS latest{at_col} FROM sk_layers l WHERE l.name = {name}) \
         SELECT m.*, r.* FROM m LEFT JOIN LATERAL ({sql}) r ON true"
    );
    // Without a CQL2 filter the plan does not depend on the values (a GiST scan of the box):
    // a generic plan saves planning each execution (~0.15 ms, as much as the scan itself).
    c.session_generic_plans(q.filter.is_none())?;
    let params = args.refs();
    // A column renamed by another process since the layer was cached: the statement fails
    // before any row, and the transaction path reads the layer afresh.
    let stale = |e: &StoreError| !e.is_unavailable() && !matches!(e, StoreError::Cancelled(_));
    let mut rows = match c.stream(&sql, &params) {
        Err(e) if stale(&e) => {
            cache.forget(q.layer);
            return Ok(None);
        }
        r => r?,
    };
    let Some(first) = rows.next()? else {
        cache.forget(q.layer);
        return Ok(None);
    };
    let created: i64 = first.try_get(0)?;
    let schema_tx: Option<i64> = first.try_get(1)?;
    if created != layer.created_tx.0 || schema_tx.unwrap_or(created) != layer.schema_tx.0 {
        cache.forget(q.layer);
        return Ok(None);
    }
    let latest = TxId(first.try_get::<_, Option<i64>>(2)?.unwrap_or(0));
    if latest < need {
        return Ok(Some(Err(Behind)));
    }
    let answered = match as_of {
        None => Some(latest).filter(|t| t.0 > 0),
        // No transaction at or before the instant: before the store existed, no answer.
        Some(_) => match first.try_get::<_, Option<i64>>(3)? {
            Some(at) => Some(TxId(at)),
            None => return Ok(Some(Ok(QueryStats::default()))),
        },
    };
    let mut page = Page::new(q, answered, sink);
    let n = layer.schema().fields.len();
    // The rows' first column: `fid` (current), or the union's part (0 live, 1 closed).
    let o = if as_of.is_some() { 4 } else { 3 };
    let closed = HistCols { hid: o + 1, device_time: o + 9, time_us: o + 10, props: o + 11 + n, op: o + 12 + n };
    let mut next = Some(first);
    while let Some(r) = next {
        if as_of.is_some() && r.try_get::<_, Option<i32>>(o)? == Some(1) {
            page.stats.scanned += 1;
            tick(page.stats.scanned)?;
            let h = decode_hist_at(&layer, &r, &closed)?;
            if exact.keep_geometry(&h.feature)
                && hist_residual.as_ref().is_none_or(|f| f.matches(&h.feature, Some(h.version)))
            {
                page.offer(h.stored());
            }
        } else if r.try_get::<_, Option<i64>>(if as_of.is_some() { o + 1 } else { o })?.is_some() {
            page.stats.scanned += 1;
            tick(page.stats.scanned)?;
            let cur = decode_current_at(&layer, &r, if as_of.is_some() { o + 1 } else { o })?;
            if exact.keep(&cur.feature, cur.version) {
                page.offer(cur.stored());
            }
        }
        if page.done {
            break;
        }
        next = rows.next()?;
    }
    Ok(Some(Ok(page.stats)))
}

/// The rows of an as-of read in one statement: `part` (0 live, 1 closed), the key (`fid` or
/// `hid`), the columns [`decode_current`] reads from `fid` on — typed field columns NULL for
/// closed versions — then the closed version's `props` and `op` (NULL for live rows).
fn as_of_union(layer: &Layer, live_where: &str, hist_where: &str) -> String {
    let fields = &layer.schema().fields;
    let live_fields: String = fields.iter().map(|f| format!(", t.{}", column(f))).collect();
    let null_fields: String = fields.iter().map(|f| format!(", NULL::{}", codec::column_type(f.ty))).collect();
    let live_where = if live_where.is_empty() { String::new() } else { format!(" WHERE {live_where}") };
    format!(
        "SELECT 0 AS part, t.fid AS k, ST_AsBinary(t.geom), t.entity_id, t.code, t.valid_from, t.valid_to, \
         t.sk_version, t.sk_tx, t.sk_device_time, x.time_us{live_fields}, NULL::jsonb, NULL::text \
         FROM {} AS t LEFT JOIN sk_transactions x ON x.tx = t.sk_tx{live_where} \
         UNION ALL \
         SELECT 1, h.hid, ST_AsBinary(h.geom), h.entity_id, h.code, h.valid_from, h.valid_to, h.version, h.tx_from, \
         h.device_time, x.time_us{null_fields}, h.props, h.op \
         FROM {} AS h LEFT JOIN sk_transactions x ON x.tx = h.tx_from WHERE {hist_where} \
         ORDER BY part, k",
        table(layer.name()),
        hist(layer.name())
    )
}

/// The live half of a query: its statement, parameters, what Rust checks on its rows, and the
/// envelope narrowing both halves. `None` when the query's boxes are disjoint (no answer).
struct LivePlan {
    sql: String,
    /// The conditions of `sql` (after `WHERE`, may be empty).
    where_: String,
    args: Args,
    exact: Exact,
    env: Option<Bbox>,
}

/// The transaction a query is answered as of: a parameter, or an SQL expression of the
/// statement (the single-statement as-of read's `m.at`).
#[derive(Clone)]
enum TxRef {
    Id(TxId),
    Sql(&'static str),
}

impl TxRef {
    fn sql(&self, args: &mut Args) -> String {
        match self {
            TxRef::Id(tx) => args.add(tx.0),
            TxRef::Sql(s) => (*s).to_owned(),
        }
    }
}

/// The live half of `q`, its parameters numbered after those already in `args`.
fn live_plan(q: &Query<'_>, layer: &Layer, tx_max: Option<TxRef>, mut args: Args) -> Option<LivePlan> {
    let by_id = q.by_id || q.after.is_some();
    // The envelope a top-level spatial conjunct implies narrows both halves on their GiST index.
    let plan = q.filter.map(|f| f.plan(&|_: &Attribute| None));
    let geom_env = q.intersects.and_then(Geometry::bbox);
    let env = intersection(q.bbox, geom_env).and_then(|e| intersection(e, plan.as_ref().and_then(|p| p.bbox)))?;
    let mut exact = Exact { bbox: q.bbox, intersects: q.intersects.map(Geometry::to_geo), filter: None };
    let mut where_ = Vec::new();
    if let Some(b) = &env {
        where_.push(format!("t.geom && {}", codec::envelope(&mut args, b)));
    }
    if let Some(v) = &q.valid {
        valid_sql("t", v, &mut where_, &mut args);
    }
    if let Some(tx) = tx_max {
        where_.push(format!("t.sk_tx <= {}", tx.sql(&mut args)));
    }
    if let Some(after) = q.after {
        where_.push(format!("t.entity_id > {}", args.add(after.0)));
    }
    if let Some(f) = q.filter {
        exact.filter = plan_filter(f, &|a: &Attribute| live_column(layer, a), &mut where_, &mut args);
    }
    let order = if by_id { "t.entity_id" } else { "t.fid" };
    let where_ = where_.join(" AND ");
    let sql = format!("{} ORDER BY {order}", current_select(layer, &where_));
    Some(LivePlan { sql, where_, args, exact, env })
}

/// The conditions on the history table (alias `h`) for the versions current at `tx` (closed
/// after it), inside `env`, after `q.after`, up to `upto`; their parameters go to `args`.
/// Returns them with what remains of the filter to check in Rust.
fn hist_where(
    q: &Query<'_>,
    env: Option<&Bbox>,
    tx: &TxRef,
    upto: Option<EntityId>,
    args: &mut Args,
) -> (String, Option<Filter>) {
    let tx = tx.sql(args);
    let mut where_ = vec![
        format!("h.tx_from <= {tx}"),
        format!("(h.tx_to IS NULL OR h.tx_to > {tx})"),
        "h.op <> 'delete'".to_owned(),
    ];
    if let Some(b) = env {
        where_.push(format!("h.geom && {}", codec::envelope(args, b)));
    }
    if let Some(v) = &q.valid {
        valid_sql("h", v, &mut where_, args);
    }
    if let Some(after) = q.after {
        where_.push(format!("h.entity_id > {}", args.add(after.0)));
    }
    if let Some(upto) = upto {
        where_.push(format!("h.entity_id <= {}", args.add(upto.0)));
    }
    let residual = q.filter.and_then(|f| plan_filter(f, &hist_column, &mut where_, args));
    (where_.join(" AND "), residual)
}

fn query_loaded(
    c: &mut PgConn,
    q: &Query<'_>,
    layer: &Layer,
    latest: TxId,
    at: Option<TxId>,
    sink: &mut dyn FnMut(StoredFeature) -> bool,
) -> Result<QueryStats> {
    let Some(tx_max) = logic::tx_bound(q, q.as_of.map(|_| at)) else {
        return Ok(QueryStats::default()); // before the store existed
    };
    let answered_at = match tx_max {
        Some(tx) => Some(tx),
        None => Some(latest).filter(|t| t.0 > 0),
    };
    let by_id = q.by_id || q.after.is_some();
    let mut page = Page::new(q, answered_at, sink);
    let Some(LivePlan { sql: current_sql, args: current_args, exact, env, .. }) =
        live_plan(q, layer, tx_max.map(TxRef::Id), Args::default())
    else {
        return Ok(page.stats);
    };

    // The closed half: versions current at tx_max (as-of queries only), after `after`, up to `upto`.
    let hist_sql = |tx: TxId, upto: Option<EntityId>| {
        let mut args = Args::default();
        let (where_, residual) = hist_where(q, env.as_ref(), &TxRef::Id(tx), upto, &mut args);
        let order = if by_id { "h.entity_id" } else { "h.hid" };
        (format!("{} WHERE {where_} ORDER BY {order}", hist_select(layer)), args, residual)
    };
    let keep_closed = |r: &Row, scanned: &mut usize, residual: &Option<Filter>| -> Result<Option<StoredFeature>> {
        *scanned += 1;
        tick(*scanned)?;
        let h = decode_hist(layer, r)?;
        let keep =
            exact.keep_geometry(&h.feature) && residual.as_ref().is_none_or(|f| f.matches(&h.feature, Some(h.version)));
        Ok(keep.then(|| h.stored()))
    };

    if !by_id || tx_max.is_none() {
        // Storage order (the live rows, then the closed versions), or id order without closed
        // versions to merge.
        {
            let params = current_args.refs();
            let mut rows = c.stream(&current_sql, &params)?;
            while let Some(r) = rows.next()? {
                page.stats.scanned += 1;
                tick(page.stats.scanned)?;
                let cur = decode_current(layer, &r)?;
                if exact.keep(&cur.feature, cur.version) {
                    page.offer(cur.stored());
                    if page.done {
                        return Ok(page.stats);
                    }
                }
            }
        }
        let Some(tx) = tx_max else { return Ok(page.stats) };
        let (sql, args, residual) = hist_sql(tx, None);
        let params = args.refs();
        let mut rows = c.stream(&sql, &params)?;
        while let Some(r) = rows.next()? {
            if let Some(f) = keep_closed(&r, &mut page.stats.scanned, &residual)? {
                page.offer(f);
                if page.done {
                    break;
                }
            }
        }
        return Ok(page.stats);
    }
    let Some(tx) = tx_max else { return Ok(page.stats) };

    // Entity id order, as of a transaction: an entity is in one half only, so the halves merge
    // without duplicates. A keyset page (a limit, no offset) reads the live rows it can use
    // first (limit + 1), then closed versions only up to the last of them.
    let want = if q.offset == 0 { q.limit.map(|l| l.saturating_add(1)) } else { None };
    let mut current = std::collections::VecDeque::new();
    {
        let params = current_args.refs();
        let mut rows = c.stream(&current_sql, &params)?;
        while want.is_none_or(|w| current.len() < w)
            && let Some(r) = rows.next()?
        {
            page.stats.scanned += 1;
            tick(page.stats.scanned)?;
            let cur = decode_current(layer, &r)?;
            if exact.keep(&cur.feature, cur.version) {
                current.push_back(cur.stored());
            }
        }
    }
    let upto = want.filter(|w| current.len() >= *w).and_then(|_| current.back().map(|f| f.feature.id));
    let mut closed = std::collections::VecDeque::new();
    {
        let (sql, args, residual) = hist_sql(tx, upto);
        let params = args.refs();
        let mut rows = c.stream(&sql, &params)?;
        while want.is_none_or(|w| closed.len() < w)
            && let Some(r) = rows.next()?
        {
            if let Some(f) = keep_closed(&r, &mut page.stats.scanned, &residual)? {
                closed.push_back(f);
            }
        }
    }
    while !page.done {
        let take_current = match (current.front(), closed.front()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(x), Some(y)) => x.feature.id <= y.feature.id,
        };
        let f = if take_current { current.pop_front() } else { closed.pop_front() };
        if let Some(f) = f {
            page.offer(f);
        }
    }
    Ok(page.stats)
}

/// The live row for `key`.
pub(crate) fn current_row(c: &mut PgConn, layer: &Layer, key: &FeatureKey) -> Result<Option<CurrentRow>> {
    let row = match key {
        FeatureKey::Id(id) => c.query_opt(&current_select(layer, "t.entity_id = $1"), &[&id.0])?,
        FeatureKey::Code(code) => c.query_opt(&current_select(layer, "t.code = $1"), &[code])?,
    };
    row.map(|r| decode_current(layer, &r)).transpose()
}

/// The entity a key names, live or not: a code names the live entity holding it, otherwise the
/// entity that held it most recently.
pub(crate) fn resolve(c: &mut PgConn, layer: &Layer, key: &FeatureKey) -> Result<Option<EntityId>> {
    if let Some(cur) = current_row(c, layer, key)? {
        return Ok(Some(cur.feature.id));
    }
    let h = hist(layer.name());
    let found = match key {
        FeatureKey::Id(id) => {
            c.query_opt(&format!("SELECT entity_id FROM {h} WHERE entity_id = $1 LIMIT 1"), &[&id.0])?
        }
        FeatureKey::Code(code) => c.query_opt(
            &format!("SELECT entity_id FROM {h} WHERE code = $1 ORDER BY tx_from DESC, version DESC LIMIT 1"),
            &[code],
        )?,
    };
    Ok(found.map(|r| EntityId(r.get(0))))
}

/// One version of an entity: the state it recorded (`None` for a tombstone) from `tx` on.
pub(crate) struct Version {
    pub version: i64,
    pub op: Op,
    pub tx: TxId,
    pub tx_time: Timestamp,
    pub state: Option<Feature>,
    pub device_time: Option<Timestamp>,
}

/// Every version of an entity, oldest first.
pub(crate) fn versions(c: &mut PgConn, layer: &Layer, id: EntityId) -> Result<Vec<Version>> {
    let mut out = Vec::new();
    for r in c.query(&format!("{} WHERE h.entity_id = $1 ORDER BY h.version", hist_select(layer)), &[&id.0])? {
        let h = decode_hist(layer, &r)?;
        let state = (h.op != Op::Delete).then_some(h.feature);
        out.push(Version {
            version: h.version,
            op: h.op,
            tx: h.tx_from,
            tx_time: h.tx_time,
            state,
            device_time: h.device_time,
        });
    }
    if let Some(cur) = current_row(c, layer, &FeatureKey::Id(id))? {
        let op = if cur.version == 1 { Op::Insert } else { Op::Update };
        out.push(Version {
            version: cur.version,
            op,
            tx: cur.tx,
            tx_time: cur.tx_time,
            state: Some(cur.feature),
            device_time: cur.device_time,
        });
    }
    Ok(out)
}

/// The version current at `tx` among `versions` (sorted by version), if the entity was live.
pub(crate) fn state_at(versions: &[Version], tx: TxId) -> Option<StoredFeature> {
    let v = versions.iter().rev().find(|v| v.tx <= tx)?;
    v.state.as_ref().map(|s| StoredFeature {
        feature: s.clone(),
        version: v.version,
        tx: v.tx,
        tx_time: v.tx_time,
        device_time: v.device_time,
    })
}

pub(crate) fn get(
    c: &mut PgConn,
    layer: &str,
    key: &FeatureKey,
    as_of: Option<Timestamp>,
) -> Result<Option<StoredFeature>> {
    Ok(get_fresh(c, layer, key, as_of, TxId(0))?.unwrap_or(None))
}

/// [`get`] in a snapshot holding transaction `need`, else [`Behind`].
pub(crate) fn get_fresh(
    c: &mut PgConn,
    layer: &str,
    key: &FeatureKey,
    as_of: Option<Timestamp>,
    need: TxId,
) -> Result<std::result::Result<Option<StoredFeature>, Behind>> {
    let (layer, latest, at) = layers::load_for_read(c, layer, as_of)?;
    if latest < need {
        return Ok(Err(Behind));
    }
    get_loaded(c, &layer, key, as_of, at).map(Ok)
}

fn get_loaded(
    c: &mut PgConn,
    layer: &Layer,
    key: &FeatureKey,
    as_of: Option<Timestamp>,
    at: Option<TxId>,
) -> Result<Option<StoredFeature>> {
    if as_of.is_none() {
        return Ok(current_row(c, layer, key)?.map(CurrentRow::stored));
    }
    let Some(tx) = at else { return Ok(None) };
    let Some(id) = resolve(c, layer, key)? else { return Ok(None) };
    let vs = versions(c, layer, id)?;
    Ok(state_at(&vs, tx).filter(|f| match key {
        // A code names whichever entity held it at that instant; check it still matches.
        FeatureKey::Code(code) => f.feature.code == *code,
        FeatureKey::Id(_) => true,
    }))
}
