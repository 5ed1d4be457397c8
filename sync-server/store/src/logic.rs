//! Backend-neutral pure logic, used by both the SQLite and the PostgreSQL store.
//!
//! The backends differ in how they talk to their database, not in what a store means: how a page
//! of a query is counted, which candidate rows pass the exact geometry test, how a patch changes a
//! feature, which layer redefinitions are refused, how a history is assembled from versions. That
//! meaning lives here once, without I/O, so the two backends cannot drift apart.

use geo::Intersects;
use jiff::Timestamp;
use shikong_model::{Bbox, Feature, FieldDef, Geometry, LayerSchema};

use crate::error::{Result, StoreError};
use crate::types::*;

/// Offset/limit bookkeeping shared by both halves (live rows, history rows) of an as-of scan.
pub(crate) struct Page<'s> {
    pub skip: usize,
    pub limit: Option<usize>,
    pub stats: QueryStats,
    pub done: bool,
    sink: &'s mut dyn FnMut(StoredFeature) -> bool,
}

impl<'s> Page<'s> {
    /// A page for `q` answered at transaction `tx`, handing features to `sink`.
    pub fn new(q: &Query<'_>, tx: Option<TxId>, sink: &'s mut dyn FnMut(StoredFeature) -> bool) -> Self {
        Page { skip: q.offset, limit: q.limit, stats: QueryStats { tx, ..QueryStats::default() }, done: false, sink }
    }

    /// Offers one matching feature: skipped, passed to the sink, or the page is full.
    pub fn offer(&mut self, f: StoredFeature) {
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

/// The last transaction a query may see: `at` is what `as_of` resolved to (`Some(None)` when
/// `as_of` lies before the store's first transaction), capped by `at_tx`. `None` when the query
/// can match nothing (before the store existed); `Some(None)` for "now".
pub(crate) fn tx_bound(q: &Query<'_>, at: Option<Option<TxId>>) -> Option<Option<TxId>> {
    let mut tx_max = match at {
        None => None,
        Some(Some(tx)) => Some(tx),
        Some(None) => return None,
    };
    if let Some(at) = q.at_tx {
        tx_max = Some(tx_max.map_or(at, |t| t.min(at)));
    }
    Some(tx_max)
}

/// The intersection of two optional boxes (`None` = unbounded); `None` when they are disjoint.
pub(crate) fn intersection(a: Option<Bbox>, b: Option<Bbox>) -> Option<Option<Bbox>> {
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

/// The exact geometry test SQL's envelope test only approximates: does `f` meet `bbox` and
/// `intersects` (each when given)? A feature without geometry meets neither.
pub(crate) fn geometry_hit(bbox: Option<&Bbox>, intersects: Option<&geo::Geometry<f64>>, f: &Feature) -> bool {
    if bbox.is_none() && intersects.is_none() {
        return true;
    }
    let Some(g) = &f.geometry else { return false };
    if let Some(b) = bbox {
        let hit = match g {
            Geometry::Point(c) => b.contains_point(c.x, c.y),
            other => {
                let rect =
                    geo::Rect::new(geo::coord! { x: b.min_x, y: b.min_y }, geo::coord! { x: b.max_x, y: b.max_y });
                rect.intersects(&other.to_geo())
            }
        };
        if !hit {
            return false;
        }
    }
    intersects.is_none_or(|q| q.intersects(&g.to_geo()))
}

/// The operation a history row's `op` column names.
pub(crate) fn op_of(s: &str) -> Op {
    match s {
        "insert" => Op::Insert,
        "update" => Op::Update,
        _ => Op::Delete,
    }
}

/// Checks a complete feature against its layer; returns it with the geometry conformed (single
/// parts promoted into multi-part layers).
pub(crate) fn check(layer: &Layer, f: Feature, previous: Option<&Feature>) -> Result<Feature> {
    let code = f.code.clone();
    let def = &layer.def;
    shikong_model::feature::conform(def.geometry_kind, def.has_z, &def.schema, f, previous).map_err(|e| match e {
        shikong_model::ModelError::Geometry(g) => {
            StoreError::Geometry { layer: layer.name().to_owned(), code, source: g }
        }
        other => StoreError::Invalid { layer: layer.name().to_owned(), code, source: other },
    })
}

impl NewFeature {
    /// The feature this makes under `id` and `code` (decided by the store), with its device time.
    pub(crate) fn into_feature(self, id: EntityId, code: String) -> (Feature, Option<Timestamp>) {
        let feature = Feature { id, code, geometry: self.geometry, valid: self.valid, properties: self.properties };
        (feature, self.device_time)
    }
}

impl Patch {
    /// `cur` with this patch applied (not yet checked against the layer); a `Null` in `set`
    /// clears the property.
    pub(crate) fn apply_to(self, cur: &Feature) -> Feature {
        let mut next = cur.clone();
        if let Some(g) = self.geometry {
            next.geometry = g;
        }
        if let Some(c) = self.code {
            next.code = c;
        }
        if let Some(v) = self.valid {
            next.valid = v;
        }
        for (k, v) in self.set {
            if v.is_null() {
                next.properties.remove(&k);
            } else {
                next.properties.insert(k, v);
            }
        }
        next
    }
}

/// Grows a layer's recorded extent by `f`'s geometry.
pub(crate) fn grow_extent(extent: &mut Option<Bbox>, f: &Feature) {
    if let Some(b) = f.geometry.as_ref().and_then(Geometry::bbox) {
        *extent = Some(extent.map_or(b, |e| e.union(&b)));
    }
}

/// The error for a live feature that a redefined schema no longer admits.
pub(crate) fn unfit_for_schema(layer: &Layer, f: &Feature, e: impl std::fmt::Display) -> StoreError {
    StoreError::SchemaChange {
        layer: layer.name().to_owned(),
        message: format!("feature `{}` does not satisfy the new schema: {e}", f.code),
    }
}

/// The field `field` of `l` that an index is asked for.
pub(crate) fn index_field<'l>(l: &'l Layer, field: &str) -> Result<&'l FieldDef> {
    l.schema().field(field).ok_or_else(|| StoreError::SchemaChange {
        layer: l.name().to_owned(),
        message: format!("cannot index `{field}`: not a field of this layer"),
    })
}

/// The field `field` of `l` named as an upsert key: it must exist and not hold attachments.
pub(crate) fn upsert_key_field<'l>(l: &'l Layer, field: &str) -> Result<&'l FieldDef> {
    let f = l.schema().field(field).ok_or_else(|| StoreError::Invalid {
        layer: l.name().to_owned(),
        code: String::new(),
        source: shikong_model::ValidationError::new(field, "is not a field of this layer (upsert key)").into(),
    })?;
    if f.ty == shikong_model::FieldType::Attachments {
        return Err(StoreError::SchemaChange {
            layer: l.name().to_owned(),
            message: format!("field `{field}` holds attachments and cannot be an upsert key"),
        });
    }
    Ok(f)
}

/// Gives every field without an id a fresh one (`c1`, `c2`, …); returns the next free number.
pub(crate) fn assign_ids(schema: &mut LayerSchema, mut next: i64) -> i64 {
    for f in &mut schema.fields {
        if f.id.is_empty() {
            f.id = format!("c{next}");
            next += 1;
        }
    }
    next
}

pub(crate) fn invalid_schema(layer: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::SchemaChange { layer: layer.to_owned(), message: e.to_string() }
}

/// Refuses a redefinition of `old` as `def` that would lose data or history: a rename, another
/// geometry type, dropping heights, an invalid schema, unknown field ids, removed or retyped
/// fields. (See [`crate::StoreTx::update_layer`].)
pub(crate) fn check_redefinition(old: &Layer, def: &LayerDef) -> Result<()> {
    let name = old.name();
    let refuse = |m: String| StoreError::SchemaChange { layer: name.to_owned(), message: m };
    if def.name != name {
        return Err(refuse(format!("renaming a layer is not supported (to `{}`)", def.name)));
    }
    if def.geometry_kind != old.def.geometry_kind {
        return Err(refuse(format!(
            "the geometry type cannot change ({} → {}); create a new layer and import into it",
            old.def.geometry_kind, def.geometry_kind
        )));
    }
    if old.def.has_z && !def.has_z {
        return Err(refuse("a 3-D layer cannot become 2-D (heights would be lost)".into()));
    }
    def.schema.check().map_err(|e| invalid_schema(name, e))?;
    for f in &def.schema.fields {
        if !f.id.is_empty() && old.schema().field_by_id(&f.id).is_none() {
            return Err(refuse(format!(
                "field `{}` has unknown id `{}` (leave the id empty for a new field)",
                f.name, f.id
            )));
        }
    }
    for of in &old.schema().fields {
        match def.schema.field_by_id(&of.id) {
            None => {
                return Err(refuse(format!(
                    "field `{}` (id {}) cannot be removed: its history must stay readable; set \"retired\": true instead",
                    of.name, of.id
                )));
            }
            Some(nf) if nf.ty != of.ty => {
                return Err(refuse(format!(
                    "field `{}` cannot change type ({} → {}); add a new field instead",
                    of.name,
                    of.ty.name(),
                    nf.ty.name()
                )));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// One version of an entity as a backend reads it: the state it recorded (`None` for a tombstone)
/// from `tx` on, before its transaction's record is looked up.
pub(crate) struct Version {
    pub version: i64,
    pub op: Op,
    pub tx: TxId,
    pub state: Option<Feature>,
    pub device_time: Option<Timestamp>,
}

/// An entity's history from its versions (oldest first): each with its transaction record and
/// what it changed against the one before.
pub(crate) fn version_records(
    versions: impl IntoIterator<Item = Version>,
    mut tx_record: impl FnMut(TxId) -> Result<TxRecord>,
) -> Result<Vec<VersionRecord>> {
    use shikong_model::feature::{as_changes, diff as feature_diff};
    let mut out: Vec<VersionRecord> = Vec::new();
    let mut previous: Option<Feature> = None;
    for Version { version, op, tx, state, device_time } in versions {
        let changes = match (&previous, &state) {
            (None, Some(s)) => as_changes(s, true),
            (Some(p), Some(s)) => feature_diff(p, s),
            (Some(p), None) => as_changes(p, false),
            (None, None) => Vec::new(),
        };
        out.push(VersionRecord { version, op, tx: tx_record(tx)?, device_time, state: state.clone(), changes });
        previous = state;
    }
    Ok(out)
}

/// A page of the change feed from the changes found after `cursor` (in any order, one more than
/// `wanted` when another page follows); `newest` is the newest transaction, where a caller
/// resumes once it has seen every change.
pub(crate) fn change_page(
    mut changes: Vec<ChangedEntity>,
    wanted: usize,
    cursor: ChangeCursor,
    newest: impl FnOnce() -> Result<TxId>,
) -> Result<ChangePage> {
    changes.sort_by_key(|c| c.position);
    let more = changes.len() > wanted;
    changes.truncate(wanted);
    let next = match changes.last() {
        Some(last) if more => last.position,
        _ => cursor.max(ChangeCursor::after_tx(newest()?)),
    };
    Ok(ChangePage { changes, next, more })
}
