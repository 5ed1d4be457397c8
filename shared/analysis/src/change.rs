//! Change detection between two dates of a layer, the pure part: which features were added,
//! removed or changed (and in which fields), and where — per division, for a 变化图斑 report.
//!
//! The caller reads the layer at both dates (two snapshots), or the versions written between
//! them (a stream of [`Entry`]s, each a feature's state before and after one version, oldest
//! first), and passes each feature as its properties and a [`Shape`]: a representative point
//! (which places it in a division), and optionally its bounding box and a digest of its full
//! geometry, so a vertex moved inside an unchanged box is still seen.
//!
//! Rules:
//! - a null property and an absent one are the same (as `shikong_model::diff`); numbers compare
//!   by value (`1` equals `1.0`), other values exactly;
//! - the geometry changed when either side has none and the other has one, or the points, boxes
//!   or (when both sides have one) digests differ; it is listed as the field `geometry`, first;
//! - changed fields are listed in the order the fields appear (before's order, then new ones);
//! - a feature added and removed between the two dates is in neither snapshot: it is counted as
//!   `transient`, not listed;
//! - per division, an added feature counts where it is after, a removed one where it was before,
//!   a changed one in both places: **a feature that moved between divisions counts as changed in
//!   both** (and as `moved_out` of the one and `moved_in` to the other), so the divisions' changed
//!   counts may sum to more than the features changed. A feature with no shape, or in no
//!   division, counts in the `Outside` row.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use crate::aggregate::{Division, DivisionIndex, MAX_KEY_CHARS, Unit};
use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, check_points};
use crate::limits::MAX_POINTS;

/// Properties of one feature, by field name in the layer's order.
pub type Properties = Map<String, Value>;

/// Fields of one feature.
pub const MAX_FIELDS: usize = 1_000;
/// Entries of a stream of versions.
pub const MAX_ENTRIES: usize = 5_000_000;
/// Changed fields listed per division.
pub const MAX_TOP_FIELDS: usize = 100;

/// Where a feature is, for change detection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Representative point (lon, lat); places the feature in a division.
    pub at: LonLat,
    /// `[min lon, min lat, max lon, max lat]`.
    pub bbox: Option<[f64; 4]>,
    /// A digest of the whole geometry (e.g. a hash of its WKB).
    pub digest: Option<u64>,
}

/// A feature at one date.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub properties: Properties,
    pub shape: Option<Shape>,
}

/// One version in a stream: the feature's state before it and after it (`None`: not existing).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub id: String,
    pub before: Option<State>,
    pub after: Option<State>,
}

/// What happened to a feature between the two dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    Added,
    Removed,
    Changed,
    Unchanged,
}

impl ChangeKind {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Changed => "changed",
            ChangeKind::Unchanged => "unchanged",
        }
    }

    /// Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            ChangeKind::Added => "新增",
            ChangeKind::Removed => "删除",
            ChangeKind::Changed => "变更",
            ChangeKind::Unchanged => "未变",
        }
    }
}

/// One feature's change.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureChange {
    pub id: String,
    pub kind: ChangeKind,
    /// Changed fields (`geometry` first when it changed); empty unless `Changed`.
    pub fields: Vec<String>,
    /// Representative point before and after.
    pub before_at: Option<LonLat>,
    pub after_at: Option<LonLat>,
}

/// Every feature's change, ordered by id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChangeSet {
    pub changes: Vec<FeatureChange>,
    /// Features added and removed between the dates (in neither snapshot).
    pub transient: u64,
}

impl ChangeSet {
    /// Number of features of a kind.
    pub fn count(&self, kind: ChangeKind) -> usize {
        self.changes.iter().filter(|c| c.kind == kind).count()
    }
}

fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                x == y
            } else if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                x == y
            } else {
                x.as_f64() == y.as_f64()
            }
        }
        _ => a == b,
    }
}

fn present<'a>(p: &'a Properties, name: &str) -> Option<&'a Value> {
    p.get(name).filter(|v| !v.is_null())
}

fn shape_changed(a: &Option<Shape>, b: &Option<Shape>) -> bool {
    match (a, b) {
        (None, None) => false,
        (Some(a), Some(b)) => {
            a.at != b.at || a.bbox != b.bbox || matches!((a.digest, b.digest), (Some(x), Some(y)) if x != y)
        }
        _ => true,
    }
}

/// The fields that differ from `before` to `after` (`geometry` first).
pub fn changed_fields(before: &State, after: &State) -> Vec<String> {
    let mut out = Vec::new();
    if shape_changed(&before.shape, &after.shape) {
        out.push("geometry".to_owned());
    }
    let names = before.properties.keys().chain(after.properties.keys().filter(|k| !before.properties.contains_key(*k)));
    for name in names {
        let same = match (present(&before.properties, name), present(&after.properties, name)) {
            (None, None) => true,
            (Some(a), Some(b)) => same_value(a, b),
            _ => false,
        };
        if !same {
            out.push(name.clone());
        }
    }
    out
}

fn check_state(what: &'static str, index: usize, s: &State) -> Result<()> {
    if s.properties.len() > MAX_FIELDS {
        return Err(AnalysisError::TooMany {
            what: "fields of a feature",
            got: s.properties.len(),
            limit: "MAX_FIELDS",
            max: MAX_FIELDS,
        });
    }
    if let Some(shape) = &s.shape {
        check_points(&[shape.at]).map_err(|_| AnalysisError::Invalid {
            what,
            index,
            problem: "has a representative point that is not a longitude/latitude",
        })?;
        if let Some(b) = shape.bbox
            && !b.iter().all(|v| v.is_finite())
        {
            return Err(AnalysisError::Invalid { what, index, problem: "has a bounding box that is not finite" });
        }
    }
    Ok(())
}

fn check_id(what: &'static str, index: usize, id: &str) -> Result<()> {
    if id.chars().count() > MAX_KEY_CHARS {
        return Err(AnalysisError::Invalid { what, index, problem: "has an id longer than MAX_KEY_CHARS = 200" });
    }
    Ok(())
}

fn classify(id: &str, before: Option<&State>, after: Option<&State>) -> Option<FeatureChange> {
    let (kind, fields) = match (before, after) {
        (None, None) => return None,
        (None, Some(_)) => (ChangeKind::Added, Vec::new()),
        (Some(_), None) => (ChangeKind::Removed, Vec::new()),
        (Some(b), Some(a)) => {
            let fields = changed_fields(b, a);
            (if fields.is_empty() { ChangeKind::Unchanged } else { ChangeKind::Changed }, fields)
        }
    };
    let at = |s: Option<&State>| s.and_then(|s| s.shape.map(|sh| sh.at));
    Some(FeatureChange { id: id.to_owned(), kind, fields, before_at: at(before), after_at: at(after) })
}

fn index_snapshot<'a>(what: &'static str, snapshot: &'a [(String, State)]) -> Result<HashMap<&'a str, &'a State>> {
    if snapshot.len() > MAX_POINTS {
        return Err(AnalysisError::TooMany { what, got: snapshot.len(), limit: "MAX_POINTS", max: MAX_POINTS });
    }
    let mut map = HashMap::with_capacity(snapshot.len());
    for (index, (id, state)) in snapshot.iter().enumerate() {
        check_id(what, index, id)?;
        check_state(what, index, state)?;
        if map.insert(id.as_str(), state).is_some() {
            return Err(AnalysisError::Duplicate { what: "feature id", id: id.clone() });
        }
    }
    Ok(map)
}

/// The changes from the `before` snapshot to the `after` one (features as `(id, state)`).
pub fn diff_snapshots(before: &[(String, State)], after: &[(String, State)]) -> Result<ChangeSet> {
    let b = index_snapshot("feature of the earlier snapshot", before)?;
    let a = index_snapshot("feature of the later snapshot", after)?;
    let mut ids: Vec<&str> = b.keys().chain(a.keys().filter(|k| !b.contains_key(*k))).copied().collect();
    ids.sort_unstable();
    let changes = ids.into_iter().filter_map(|id| classify(id, b.get(id).copied(), a.get(id).copied())).collect();
    Ok(ChangeSet { changes, transient: 0 })
}

/// The net changes of a stream of versions (oldest first): for each id, its state before its
/// first entry against its state after its last one.
pub fn net_changes(entries: &[Entry]) -> Result<ChangeSet> {
    if entries.len() > MAX_ENTRIES {
        return Err(AnalysisError::TooMany {
            what: "version entries",
            got: entries.len(),
            limit: "MAX_ENTRIES",
            max: MAX_ENTRIES,
        });
    }
    let mut net: BTreeMap<&str, (Option<&State>, Option<&State>)> = BTreeMap::new();
    for (index, e) in entries.iter().enumerate() {
        check_id("version entry", index, &e.id)?;
        for s in [&e.before, &e.after].into_iter().flatten() {
            check_state("version entry", index, s)?;
        }
        if net.len() >= MAX_POINTS && !net.contains_key(e.id.as_str()) {
            return Err(AnalysisError::TooMany {
                what: "features in the version entries",
                got: net.len() + 1,
                limit: "MAX_POINTS",
                max: MAX_POINTS,
            });
        }
        net.entry(&e.id)
            .and_modify(|(_, after)| *after = e.after.as_ref())
            .or_insert((e.before.as_ref(), e.after.as_ref()));
    }
    let mut set = ChangeSet::default();
    for (id, (before, after)) in net {
        match classify(id, before, after) {
            Some(c) => set.changes.push(c),
            None => set.transient += 1,
        }
    }
    Ok(set)
}

/// The changes in one division (or outside all).
#[derive(Debug, Clone, PartialEq)]
pub struct DivisionChanges {
    /// [`Unit::Division`] or [`Unit::Outside`].
    pub unit: Unit,
    pub added: u64,
    pub removed: u64,
    pub changed: u64,
    pub unchanged: u64,
    /// Changed features that were elsewhere before and are here after, and the reverse.
    pub moved_in: u64,
    pub moved_out: u64,
    /// The most often changed fields of the changed features here, most first (ties by name).
    pub top_fields: Vec<(String, u64)>,
}

/// Counts of `changes` per division (every division, in input order, then the `Outside` row),
/// with the `top` most changed fields of each.
pub fn summarise_by_division(changes: &ChangeSet, divisions: &[Division], top: usize) -> Result<Vec<DivisionChanges>> {
    if top > MAX_TOP_FIELDS {
        return Err(AnalysisError::TooMany {
            what: "top changed fields",
            got: top,
            limit: "MAX_TOP_FIELDS",
            max: MAX_TOP_FIELDS,
        });
    }
    let index = DivisionIndex::new(divisions)?;
    let outside = divisions.len();
    let place = |p: Option<LonLat>| -> Vec<usize> {
        match p.map(|p| index.locate(p)) {
            Some(found) if !found.is_empty() => found,
            _ => vec![outside],
        }
    };
    let mut rows: Vec<DivisionChanges> = (0..=outside)
        .map(|d| DivisionChanges {
            unit: if d == outside { Unit::Outside } else { Unit::Division(d) },
            added: 0,
            removed: 0,
            changed: 0,
            unchanged: 0,
            moved_in: 0,
            moved_out: 0,
            top_fields: Vec::new(),
        })
        .collect();
    let mut fields: Vec<HashMap<&str, u64>> = vec![HashMap::new(); outside + 1];
    for c in &changes.changes {
        match c.kind {
            ChangeKind::Added => place(c.after_at).into_iter().for_each(|d| rows[d].added += 1),
            ChangeKind::Removed => place(c.before_at).into_iter().for_each(|d| rows[d].removed += 1),
            ChangeKind::Unchanged => place(c.after_at).into_iter().for_each(|d| rows[d].unchanged += 1),
            ChangeKind::Changed => {
                let (was, is) = (place(c.before_at), place(c.after_at));
                let mut all: Vec<usize> = was.iter().chain(&is).copied().collect();
                all.sort_unstable();
                all.dedup();
                for &d in &all {
                    rows[d].changed += 1;
                    rows[d].moved_in += u64::from(!was.contains(&d));
                    rows[d].moved_out += u64::from(!is.contains(&d));
                    for f in &c.fields {
                        *fields[d].entry(f.as_str()).or_default() += 1;
                    }
                }
            }
        }
    }
    for (row, counts) in rows.iter_mut().zip(fields) {
        let mut list: Vec<(String, u64)> = counts.into_iter().map(|(f, n)| (f.to_owned(), n)).collect();
        list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        list.truncate(top);
        row.top_fields = list;
    }
    Ok(rows)
}
