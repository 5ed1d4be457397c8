//! The store's behaviour, written once against the traits so that every backend runs the same
//! cases: versions, as-of reads, diffs, history, validation, rollback, the change feed, the typed
//! pushing replica and the sync bookkeeping.
//!
//! A backend runs the suite with [`crate::conformance_tests!`], given a function that makes a
//! fresh, empty store whose transaction times come from the clock it is handed (and anything that
//! must outlive the store, such as a temporary directory):
//!
//! ```ignore
//! fn fresh(clock: Arc<dyn Clock>) -> (tempfile::TempDir, Arc<dyn Store>) {
//!     let dir = tempfile::tempdir().unwrap();
//!     let options = OpenOptions { create: true, clock: Some(clock) };
//!     (dir, shikong_store::open_with(&StoreConfig::in_dir(dir.path()), &options).unwrap())
//! }
//! shikong_store::conformance_tests!(fresh);
//! ```
//!
//! Each case is one `#[test]`. Every case gets a store whose transactions happen one day apart
//! from 2025-01-01 (Beijing midnight); the fixtures are public for backend-specific tests. Other
//! crates reach this module through the `conformance` cargo feature.

// A test suite: a failed unwrap is a failed case, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};

use crate::types::*;
use crate::{Clock, FeatureStore, FixedStepClock, Store, StoreError};

mod bookkeeping;
pub use bookkeeping::*;

/// Runs one case on a fresh store made by `fresh`, then drops the store before its guard.
pub fn run<G>(fresh: impl FnOnce(Arc<dyn Clock>) -> (G, Arc<dyn Store>), case: fn(&dyn Store)) {
    let clock = FixedStepClock::new(t("2025-01-01T00:00:00+08:00"), SignedDuration::from_hours(24));
    let (guard, store) = fresh(Arc::new(clock));
    case(store.as_ref());
    drop(store);
    drop(guard);
}

/// One `#[test]` per conformance case, each on a store from `$fresh` (see the module docs).
/// Every `pub fn …(s: &dyn Store)` of [`crate::conformance`] is listed here.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:expr) => {
        $crate::conformance_tests!(@cases $fresh;
            as_of_reads_every_past_state,
            bbox_and_as_of_combine,
            history_lists_versions_with_field_changes,
            diff_between_two_instants,
            diff_pages_cover_the_whole_diff_in_id_order,
            a_bad_write_rolls_back_the_whole_transaction,
            validation_errors_name_the_feature_and_field,
            one_version_per_entity_per_transaction_and_no_empty_versions,
            schema_changes_keep_history_readable,
            generated_codes_and_ids,
            layer_names_are_checked,
            bbox_cql2_and_as_of_combine_in_one_query,
            paging_reports_more,
            restore_brings_a_deleted_entity_back_under_its_id,
            changes_since_pages_through_live_rows_and_tombstones_in_order,
            versions_at_agrees_with_as_of_queries,
            device_time_is_kept_per_version,
            entities_created_by_uses_the_first_version_author,
            transactions_record_the_pushing_replica,
            sync_documents_replicas_and_blobs_round_trip,
            the_conflict_index_lists_filters_pages_and_forgets,
            a_document_written_alone_commits_and_is_a_change,
            bookkeeping_rolls_back_with_its_transaction,
            attachment_references_follow_every_write,
            keyset_pages_follow_entity_ids_as_of_one_transaction,
            outbox_records_commit_and_roll_back_with_their_transaction,
            savepoints_of_a_batch_keep_each_entitys_writes_apart,
        );
    };
    (@cases $fresh:expr; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::conformance::run($fresh, $crate::conformance::$case);
            }
        )*
    };
}

/// An instant from text (without an offset: Beijing time).
pub fn t(s: &str) -> Timestamp {
    shikong_model::parse_instant(s).unwrap()
}

/// The `manhole` layer of the fixture: a required name, a depth ≥ 0, a material.
pub fn manhole_layer() -> LayerDef {
    let mut name = FieldDef::new("名称", FieldType::Text);
    name.required = true;
    let mut depth = FieldDef::new("depth", FieldType::Real);
    depth.min = Some(0.0);
    let mut def = LayerDef::new(
        "manhole",
        GeometryKind::Point,
        LayerSchema { fields: vec![name, depth, FieldDef::new("material", FieldType::Text)] },
    );
    def.title = Some("井盖".into());
    def
}

/// A point geometry.
pub fn pt(x: f64, y: f64) -> Option<Geometry> {
    Some(Geometry::Point(Coord::xy(x, y)))
}

/// Properties from name/value pairs.
pub fn props(kv: &[(&str, Value)]) -> Properties {
    kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// A manhole to insert.
pub fn new(code: &str, x: f64, y: f64, name: &str, depth: f64) -> NewFeature {
    NewFeature {
        code: Some(code.into()),
        geometry: pt(x, y),
        properties: props(&[("名称", name.into()), ("depth", depth.into())]),
        ..NewFeature::default()
    }
}

/// Day 1 (tx 1): layer; day 2 (tx 2): A, B, C; day 3: A depth 2; day 4: A moved + B deleted;
/// day 5: A depth 3 + D created.
pub fn history_fixture(s: &dyn FeatureStore) {
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("alice")).unwrap();
    tx.insert("manhole", new("A", 114.30, 30.50, "井盖A", 1.0)).unwrap();
    tx.insert("manhole", new("B", 114.31, 30.51, "井盖B", 1.5)).unwrap();
    tx.insert("manhole", new("C", 114.60, 30.80, "井盖C", 2.5)).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    let a = FeatureKey::Code("A".into());
    tx.update("manhole", &a, Patch { set: props(&[("depth", 2.0.into())]), ..Patch::default() }).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("carol")).unwrap();
    tx.update("manhole", &a, Patch { geometry: Some(pt(114.32, 30.52)), ..Patch::default() }).unwrap();
    tx.delete("manhole", &FeatureKey::Code("B".into())).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("dave")).unwrap();
    tx.update("manhole", &a, Patch { set: props(&[("depth", 3.0.into())]), ..Patch::default() }).unwrap();
    tx.insert("manhole", new("D", 114.305, 30.505, "井盖D", 0.5)).unwrap();
    tx.commit().unwrap();
}

/// The codes `q` returns, sorted.
pub fn codes(s: &dyn FeatureStore, q: &Query<'_>) -> Vec<String> {
    let mut out = Vec::new();
    s.query(q, &mut |f| {
        out.push(f.feature.code);
        true
    })
    .unwrap();
    out.sort();
    out
}

/// A manhole's depth now or as of an instant (`None`: not live then).
pub fn depth_of(s: &dyn FeatureStore, code: &str, as_of: Option<&str>) -> Option<Value> {
    s.get("manhole", &FeatureKey::Code(code.into()), as_of.map(t))
        .unwrap()
        .map(|f| f.feature.properties.get("depth").cloned().unwrap_or(Value::Null))
}

pub fn as_of_reads_every_past_state(s: &dyn Store) {
    history_fixture(s);
    // Transactions at midnight Beijing on Jan 1..5: read at noon of each day.
    assert_eq!(depth_of(s, "A", Some("2025-01-01T12:00:00")), None);
    assert_eq!(depth_of(s, "A", Some("2025-01-02T12:00:00")), Some(Value::Real(1.0)));
    assert_eq!(depth_of(s, "A", Some("2025-01-03T12:00:00")), Some(Value::Real(2.0)));
    assert_eq!(depth_of(s, "A", Some("2025-01-04T12:00:00")), Some(Value::Real(2.0)));
    assert_eq!(depth_of(s, "A", Some("2025-01-05T12:00:00")), Some(Value::Real(3.0)));
    assert_eq!(depth_of(s, "A", None), Some(Value::Real(3.0)));
    assert_eq!(depth_of(s, "B", Some("2025-01-03T12:00:00")), Some(Value::Real(1.5)));
    assert_eq!(depth_of(s, "B", Some("2025-01-04T12:00:00")), None);
    assert_eq!(depth_of(s, "B", None), None);
    // Exactly at a transaction instant the transaction is included.
    assert_eq!(depth_of(s, "A", Some("2025-01-03T00:00:00+08:00")), Some(Value::Real(2.0)));

    let all = |as_of: Option<&str>| codes(s, &Query { as_of: as_of.map(t), ..Query::layer("manhole") });
    assert_eq!(all(Some("2024-12-01")), Vec::<String>::new());
    assert_eq!(all(Some("2025-01-02T12:00:00")), ["A", "B", "C"]);
    assert_eq!(all(Some("2025-01-04T12:00:00")), ["A", "C"]);
    assert_eq!(all(None), ["A", "C", "D"]);
}

pub fn bbox_and_as_of_combine(s: &dyn Store) {
    history_fixture(s);
    let near = "114.29,30.49,114.315,30.515".parse().unwrap();
    let q = |as_of: Option<&str>| codes(s, &Query { bbox: Some(near), as_of: as_of.map(t), ..Query::layer("manhole") });
    // Day 2: A and B are inside; day 4: A moved out, B deleted; now: D inside.
    assert_eq!(q(Some("2025-01-02T12:00:00")), ["A", "B"]);
    assert_eq!(q(Some("2025-01-04T12:00:00")), Vec::<String>::new());
    assert_eq!(q(None), ["D"]);
}

pub fn history_lists_versions_with_field_changes(s: &dyn Store) {
    history_fixture(s);
    let h = s.history("manhole", &FeatureKey::Code("A".into())).unwrap();
    let summary: Vec<_> = h
        .iter()
        .map(|v| {
            (v.version, v.op, v.tx.author.as_str(), v.changes.iter().map(|c| c.attribute.as_str()).collect::<Vec<_>>())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, Op::Insert, "alice", vec!["geometry", "code", "depth", "名称"]),
            (2, Op::Update, "bob", vec!["depth"]),
            (3, Op::Update, "carol", vec!["geometry"]),
            (4, Op::Update, "dave", vec!["depth"]),
        ]
    );
    let b = s.history("manhole", &FeatureKey::Code("B".into())).unwrap();
    assert_eq!(b.last().map(|v| (v.version, v.op, v.state.is_none())), Some((2, Op::Delete, true)));
    assert!(matches!(s.history("manhole", &FeatureKey::Code("Z".into())), Err(StoreError::NotFound { .. })));
}

pub fn diff_between_two_instants(s: &dyn Store) {
    history_fixture(s);
    let d = s.diff("manhole", t("2025-01-02T12:00:00"), t("2025-01-05T12:00:00")).unwrap();
    let created: Vec<_> = d.created.iter().map(|f| f.feature.code.as_str()).collect();
    let deleted: Vec<_> = d.deleted.iter().map(|f| f.feature.code.as_str()).collect();
    assert_eq!((created, deleted), (vec!["D"], vec!["B"]));
    assert_eq!(d.modified.len(), 1);
    let m = &d.modified[0];
    assert_eq!((m.code.as_str(), m.from_version, m.to_version), ("A", 1, 4));
    let attrs: Vec<_> = m.changes.iter().map(|c| c.attribute.as_str()).collect();
    assert_eq!(attrs, ["geometry", "depth"]);
    assert_eq!(m.changes[1].old, shikong_model::ChangedValue::Value(Value::Real(1.0)));
    assert_eq!(m.changes[1].new, shikong_model::ChangedValue::Value(Value::Real(3.0)));
    // No changes in an interval without transactions.
    let none = s.diff("manhole", t("2025-01-05T12:00:00"), t("2025-02-01")).unwrap();
    assert_eq!(none, Diff::default());
    assert!(s.diff("manhole", t("2025-02-01"), t("2025-01-01")).is_err());
}

pub fn diff_pages_cover_the_whole_diff_in_id_order(s: &dyn Store) {
    history_fixture(s);
    let (from, to) = (t("2025-01-02T12:00:00"), t("2025-01-05T12:00:00"));
    let whole = s.diff("manhole", from, to).unwrap();
    let (mut after, mut pages, mut seen) = (None, 0, Diff::default());
    loop {
        let page = s.diff_page("manhole", from, to, after, 1).unwrap();
        pages += 1;
        let d = page.diff;
        assert!(d.created.len() + d.modified.len() + d.deleted.len() <= 1);
        seen.created.extend(d.created);
        seen.modified.extend(d.modified);
        seen.deleted.extend(d.deleted);
        match page.next {
            Some(n) => {
                assert!(after.is_none_or(|a| a < n), "pages advance in id order");
                after = Some(n);
            }
            None => break,
        }
    }
    assert_eq!(pages, 3, "three changed entities, one per page");
    assert_eq!(seen, whole);
    let all = s.diff_page("manhole", from, to, None, 100).unwrap();
    assert_eq!((all.diff, all.next), (whole, None));
}

pub fn a_bad_write_rolls_back_the_whole_transaction(s: &dyn Store) {
    history_fixture(s);
    let before = s.count("manhole").unwrap();
    {
        let mut tx = s.begin(TxMeta::by("eve")).unwrap();
        tx.insert("manhole", new("E", 114.3, 30.5, "井盖E", 1.0)).unwrap();
        let err = tx.insert("manhole", new("F", 114.3, 30.5, "井盖F", -1.0)).unwrap_err();
        assert!(err.to_string().contains("feature `F`: field `depth`: -1 is below the minimum 0"), "{err}");
        // dropped without commit
    }
    assert_eq!(s.count("manhole").unwrap(), before);
    assert!(s.get("manhole", &FeatureKey::Code("E".into()), None).unwrap().is_none());
    assert_eq!(s.transactions(None, 100).unwrap().len(), 5);
}

pub fn validation_errors_name_the_feature_and_field(s: &dyn Store) {
    history_fixture(s);
    let mut tx = s.begin(TxMeta::by("eve")).unwrap();
    let dup = tx.insert("manhole", new("A", 114.3, 30.5, "x", 1.0)).unwrap_err();
    assert!(dup.to_string().contains("entity code `A` is already used"), "{dup}");
    let missing = NewFeature { code: Some("G".into()), geometry: pt(114.3, 30.5), ..NewFeature::default() };
    assert!(tx.insert("manhole", missing).unwrap_err().to_string().contains("field `名称`: is required"));
    let line = NewFeature {
        geometry: Some(Geometry::LineString(vec![Coord::xy(114.0, 30.0), Coord::xy(114.1, 30.1)])),
        ..new("H", 0.0, 0.0, "x", 1.0)
    };
    assert!(tx.insert("manhole", line).unwrap_err().to_string().contains("a POINT layer cannot hold a LINESTRING"));
    let far = new("I", 114.0, 95.0, "x", 1.0);
    assert!(tx.insert("manhole", far).unwrap_err().to_string().contains("beyond ±90"));
    let unknown = tx.update("manhole", &FeatureKey::Code("nope".into()), Patch::default()).unwrap_err();
    assert!(unknown.to_string().contains("no live feature with code `nope`"), "{unknown}");
}

pub fn one_version_per_entity_per_transaction_and_no_empty_versions(s: &dyn Store) {
    history_fixture(s);
    let a = FeatureKey::Code("A".into());
    let mut tx = s.begin(TxMeta::by("eve")).unwrap();
    assert_eq!(
        tx.update("manhole", &a, Patch { set: props(&[("depth", 7.0.into())]), ..Patch::default() }).unwrap(),
        Some(5)
    );
    assert_eq!(
        tx.update("manhole", &a, Patch { set: props(&[("depth", 8.0.into())]), ..Patch::default() }).unwrap(),
        Some(5)
    );
    tx.commit().unwrap();
    assert_eq!(s.history("manhole", &a).unwrap().len(), 5);
    // Setting the same value again writes nothing, and an empty transaction leaves no trace.
    let n = s.transactions(None, 100).unwrap().len();
    let mut tx = s.begin(TxMeta::by("eve")).unwrap();
    assert_eq!(
        tx.update("manhole", &a, Patch { set: props(&[("depth", 8.0.into())]), ..Patch::default() }).unwrap(),
        None
    );
    let info = tx.commit().unwrap();
    assert_eq!((info.tx, info.unchanged), (None, 1));
    assert_eq!(s.transactions(None, 100).unwrap().len(), n);
}

pub fn schema_changes_keep_history_readable(s: &dyn Store) {
    history_fixture(s);
    let mut def = s.layer("manhole").unwrap().def;
    def.schema.fields[2].name = "材质".into(); // rename "material"
    def.schema.fields.push(FieldDef::new("inspected", FieldType::Date));
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.update_layer("manhole", def.clone()).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    let f = tx.update(
        "manhole",
        &FeatureKey::Code("C".into()),
        Patch { set: props(&[("材质", "铸铁".into())]), ..Patch::default() },
    );
    assert_eq!(f.unwrap(), Some(2));
    tx.commit().unwrap();
    // Old versions still read; the renamed field appears under its new name.
    assert_eq!(depth_of(s, "C", Some("2025-01-02T12:00:00")), Some(Value::Real(2.5)));
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap();
    assert_eq!(c.feature.properties.get("材质"), Some(&Value::Text("铸铁".into())));

    // Refused changes: removal, type change, tightening that live features violate.
    let mut removed = def.clone();
    removed.schema.fields.pop();
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    assert!(tx.update_layer("manhole", removed).unwrap_err().to_string().contains("cannot be removed"));
    drop(tx);
    let mut retyped = s.layer("manhole").unwrap().def;
    retyped.schema.fields[1].ty = FieldType::Text;
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    assert!(tx.update_layer("manhole", retyped).unwrap_err().to_string().contains("cannot change type"));
    drop(tx);
    let mut tight = s.layer("manhole").unwrap().def;
    tight.schema.fields[1].max = Some(2.0);
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    let e = tx.update_layer("manhole", tight).unwrap_err().to_string();
    assert!(e.contains("does not satisfy the new schema") && e.contains("depth"), "{e}");
}

pub fn generated_codes_and_ids(s: &dyn Store) {
    history_fixture(s);
    let mut tx = s.begin(TxMeta::by("eve")).unwrap();
    let f = NewFeature {
        geometry: pt(114.3, 30.5),
        properties: props(&[("名称", "新井".into())]),
        ..NewFeature::default()
    };
    let id = tx.insert("manhole", f.clone()).unwrap();
    let id2 = tx.insert("manhole", f).unwrap();
    tx.commit().unwrap();
    assert_ne!(id, id2);
    let got = s.get("manhole", &FeatureKey::Id(id), None).unwrap().unwrap();
    assert_eq!(got.feature.code, "manhole-000001");
    assert_eq!(s.get("manhole", &FeatureKey::Id(id2), None).unwrap().unwrap().feature.code, "manhole-000002");
}

pub fn layer_names_are_checked(s: &dyn Store) {
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    for bad in ["井盖", "Manhole", "sk_x", "1abc", "a-b"] {
        let def = LayerDef::new(bad, GeometryKind::Point, LayerSchema::default());
        assert!(matches!(tx.create_layer(def), Err(StoreError::InvalidLayerName { .. })), "{bad}");
    }
}

pub fn bbox_cql2_and_as_of_combine_in_one_query(s: &dyn Store) {
    history_fixture(s);
    let layer = s.layer("manhole").unwrap();
    let near = "114.29,30.49,114.315,30.515".parse().unwrap();
    let run = |filter: &str, as_of: Option<&str>| {
        let f = shikong_query::Filter::parse_text(filter, layer.schema()).unwrap();
        codes(s, &Query { bbox: Some(near), filter: Some(&f), as_of: as_of.map(t), ..Query::layer("manhole") })
    };
    // On day 2, A (depth 1.0) and B (1.5) are in the box: the filter keeps B. History rows are
    // filtered by SQL on their JSON properties, current rows on columns.
    assert_eq!(run("depth > 1.2", Some("2025-01-02T12:00:00")), ["B"]);
    assert_eq!(run("\"名称\" LIKE '井盖%' AND depth < 2", Some("2025-01-02T12:00:00")), ["A", "B"]);
    assert_eq!(run("depth >= 2", Some("2025-01-03T12:00:00")), ["A"]);
    assert_eq!(run("depth >= 2", None), Vec::<String>::new());
    assert_eq!(run("code IN ('D', 'A')", None), ["D"]);
    // A spatial filter in CQL2 intersected with the bbox parameter.
    assert_eq!(run("S_INTERSECTS(geometry, BBOX(114.309, 30.509, 114.32, 30.52))", Some("2025-01-02T12:00:00")), ["B"]);
    // Valid time combines too.
    let f = shikong_query::Filter::parse_text("depth < 10", layer.schema()).unwrap();
    let q = Query {
        filter: Some(&f),
        valid: Some(ValidFilter::At(t("2030-01-01"))),
        as_of: Some(t("2025-01-02T12:00:00")),
        ..Query::layer("manhole")
    };
    assert_eq!(codes(s, &q), ["A", "B", "C"]);
}

pub fn paging_reports_more(s: &dyn Store) {
    history_fixture(s);
    let mut seen = vec![];
    let stats = s
        .query(&Query { limit: Some(2), ..Query::layer("manhole") }, &mut |f| {
            seen.push(f.feature.code);
            true
        })
        .unwrap();
    assert_eq!((seen.len(), stats.more), (2, true));
    let stats = s.query(&Query { offset: 2, limit: Some(2), ..Query::layer("manhole") }, &mut |_| true).unwrap();
    assert_eq!((stats.returned, stats.more), (1, false));
}

pub fn restore_brings_a_deleted_entity_back_under_its_id(s: &dyn Store) {
    history_fixture(s);
    let b = s.history("manhole", &FeatureKey::Code("B".into())).unwrap();
    let id = b[0].state.as_ref().unwrap().id;
    let mut tx = s.begin(TxMeta::by("office")).unwrap();
    let v = tx
        .restore(
            "manhole",
            id,
            NewFeature {
                code: Some("B".into()),
                geometry: pt(114.31, 30.51),
                properties: props(&[("名称", "井盖B".into())]),
                ..NewFeature::default()
            },
        )
        .unwrap();
    assert_eq!(v, 3);
    assert!(tx.restore("manhole", id, NewFeature::default()).is_err(), "a live entity cannot be restored");
    tx.commit().unwrap();
    let h = s.history("manhole", &FeatureKey::Id(id)).unwrap();
    assert_eq!(h.iter().map(|v| v.op).collect::<Vec<_>>(), [Op::Insert, Op::Delete, Op::Update]);
    // Still deleted as of the day of the deletion, live now.
    assert_eq!(depth_of(s, "B", Some("2025-01-04T12:00:00")), None);
    assert!(s.get("manhole", &FeatureKey::Id(id), None).unwrap().is_some());
}

pub fn changes_since_pages_through_live_rows_and_tombstones_in_order(s: &dyn Store) {
    history_fixture(s);
    let page = s.changes_since("manhole", ChangeCursor::default(), 100).unwrap();
    // The whole layer fitted: the next page starts after the snapshot's newest transaction.
    assert!(!page.more);
    assert_eq!(page.next, ChangeCursor::after_tx(s.latest_tx().unwrap()));
    let all = page.changes;
    let seen: Vec<(String, bool)> = all
        .iter()
        .map(|c| (c.state.as_ref().map_or_else(|| "deleted".to_owned(), |f| f.feature.code.clone()), c.state.is_some()))
        .collect();
    // C (tx 2), B deleted (tx 4), A and D (tx 5).
    assert_eq!(seen, [("C".into(), true), ("deleted".into(), false), ("A".into(), true), ("D".into(), true)]);
    // Pages of one resume exactly where the last one stopped, even inside one transaction.
    let mut cursor = ChangeCursor::default();
    let mut paged = Vec::new();
    loop {
        let page = s.changes_since("manhole", cursor, 1).unwrap();
        if let Some(last) = page.changes.last() {
            assert_eq!(page.next, if page.more { last.position } else { ChangeCursor::after_tx(TxId(5)) });
        }
        cursor = page.next;
        assert_eq!(cursor.to_string().parse::<ChangeCursor>().unwrap(), cursor);
        paged.extend(page.changes.into_iter().map(|c| c.id));
        if !page.more {
            break;
        }
    }
    assert_eq!(paged, all.iter().map(|c| c.id).collect::<Vec<_>>());
    let after_tx4 = s.changes_since("manhole", ChangeCursor::after_tx(TxId(4)), 100).unwrap();
    assert_eq!(after_tx4.changes.len(), 2);
    // Nothing new: the cursor stays where it was, never moving backwards.
    let beyond = ChangeCursor::after_tx(TxId(9));
    let none = s.changes_since("manhole", beyond, 100).unwrap();
    assert!(none.changes.is_empty() && !none.more);
    assert_eq!(none.next, beyond);
}

/// `versions_at` (what end-of-sync verification reads) lists exactly what an as-of query returns,
/// at every transaction, with and without an area.
pub fn versions_at_agrees_with_as_of_queries(s: &dyn Store) {
    history_fixture(s);
    let area =
        shikong_model::wkt::parse("POLYGON((114.29 30.49,114.315 30.49,114.315 30.515,114.29 30.515,114.29 30.49))")
            .unwrap();
    for tx in 1..=s.latest_tx().unwrap().0 {
        let at = s.tx_time(TxId(tx)).unwrap().unwrap();
        for area in [None, Some(&area)] {
            let mut expected = Vec::new();
            let q = Query {
                bbox: area.and_then(Geometry::bbox),
                intersects: area,
                as_of: Some(at),
                ..Query::layer("manhole")
            };
            s.query(&q, &mut |f| {
                expected.push((f.feature.id, f.version));
                true
            })
            .unwrap();
            let mut got = Vec::new();
            s.versions_at("manhole", TxId(tx), area, &mut |id, v| got.push((id, v))).unwrap();
            expected.sort();
            got.sort();
            assert_eq!(got, expected, "tx {tx}, area {}", area.is_some());
        }
    }
    // After the last transaction only D is inside: A moved out (114.32, 30.52), C is far, B deleted.
    let mut inside = Vec::new();
    s.versions_at("manhole", s.latest_tx().unwrap(), Some(&area), &mut |id, v| inside.push((id, v))).unwrap();
    assert_eq!(inside.len(), 1, "{inside:?}");
    assert!(s.tx_time(TxId(0)).unwrap().is_none());
}

pub fn device_time_is_kept_per_version(s: &dyn Store) {
    history_fixture(s);
    let edited = t("2025-01-04T09:30:00");
    let mut tx = s.begin(TxMeta { author: "li".into(), device: Some("pad-7".into()), ..TxMeta::default() }).unwrap();
    tx.update(
        "manhole",
        &FeatureKey::Code("C".into()),
        Patch { set: props(&[("depth", 3.3.into())]), device_time: Some(edited), ..Patch::default() },
    )
    .unwrap();
    tx.commit().unwrap();
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap();
    assert_eq!(c.device_time, Some(edited));
    let h = s.history("manhole", &FeatureKey::Code("C".into())).unwrap();
    assert_eq!((h[0].device_time, h[1].device_time, h[1].tx.device.as_deref()), (None, Some(edited), Some("pad-7")));
}

pub fn entities_created_by_uses_the_first_version_author(s: &dyn Store) {
    history_fixture(s);
    let code = |id: &EntityId| s.history("manhole", &FeatureKey::Id(*id)).unwrap()[0].state.clone().unwrap().code;
    // alice created A (later edited by bob, carol and dave), B (deleted by carol) and C.
    let alice: Vec<String> = s.entities_created_by("manhole", "alice").unwrap().iter().map(code).collect();
    assert_eq!(alice, ["A", "B", "C"]);
    // dave edited A and created D: only D is his.
    let dave: Vec<String> = s.entities_created_by("manhole", "dave").unwrap().iter().map(code).collect();
    assert_eq!(dave, ["D"]);
    assert!(s.entities_created_by("manhole", "bob").unwrap().is_empty());
    assert!(s.entities_created_by("manhole", "nobody").unwrap().is_empty());
    assert!(matches!(s.entities_created_by("nope", "alice"), Err(StoreError::NoSuchLayer(_))));
}

pub fn transactions_record_the_pushing_replica(s: &dyn Store) {
    history_fixture(s);
    let replica: ReplicaId = "0191d2c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6".parse().unwrap();
    let label = format!("sync push {replica} 7");
    let mut tx = s.begin(TxMeta::by("li").source(label.clone()).replica(replica)).unwrap();
    tx.update(
        "manhole",
        &FeatureKey::Code("C".into()),
        Patch { set: props(&[("depth", 4.0.into())]), ..Patch::default() },
    )
    .unwrap();
    let pushed = tx.commit().unwrap().tx.unwrap();
    let journal = s.transactions(None, 100).unwrap();
    // The fixture's transactions name no replica; the push names its own, and keeps its label.
    assert!(journal.iter().filter(|r| r.tx != pushed).all(|r| r.replica.is_none()), "{journal:?}");
    let last = s.transactions(Some(TxId(pushed.0 - 1)), 1).unwrap();
    assert_eq!(
        last.iter().map(|r| (r.tx, r.replica, r.source.as_deref(), r.author.as_str())).collect::<Vec<_>>(),
        [(pushed, Some(replica), Some(label.as_str()), "li")]
    );
    let h = s.history("manhole", &FeatureKey::Code("C".into())).unwrap();
    assert_eq!(h.iter().map(|v| v.tx.replica).collect::<Vec<_>>(), [None, Some(replica)]);
}

pub fn keyset_pages_follow_entity_ids_as_of_one_transaction(s: &dyn Store) {
    history_fixture(s);
    let page = |at_tx: Option<TxId>, after: Option<EntityId>| {
        let mut out = Vec::new();
        let q = Query { at_tx, by_id: true, after, limit: Some(1), ..Query::layer("manhole") };
        let stats = s.query(&q, &mut |f| {
            out.push((f.feature.id, f.feature.code, f.version));
            true
        });
        (out, stats.unwrap())
    };
    let (first, stats) = page(None, None);
    let pinned = stats.tx.expect("the snapshot's transaction");
    assert_eq!(pinned, s.latest_tx().unwrap());
    assert!(stats.more);
    // Others write while the client pages: every entity of the pinned state, once, as it was.
    let mut tx = s.begin(TxMeta::by("erin")).unwrap();
    tx.insert("manhole", new("E", 114.301, 30.501, "井盖E", 0.7)).unwrap();
    tx.delete("manhole", &FeatureKey::Code("D".into())).unwrap();
    tx.update(
        "manhole",
        &FeatureKey::Code("C".into()),
        Patch { set: props(&[("depth", 9.0.into())]), ..Patch::default() },
    )
    .unwrap();
    tx.commit().unwrap();
    let mut all = first.clone();
    let mut after = first.last().map(|f| f.0);
    loop {
        let (more, stats) = page(Some(pinned), after);
        assert_eq!(stats.tx, Some(pinned));
        all.extend(more.iter().cloned());
        after = more.last().map(|f| f.0);
        if !stats.more {
            break;
        }
    }
    let ids: Vec<EntityId> = all.iter().map(|f| f.0).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(ids, sorted, "entity id order, each once");
    let mut codes: Vec<(String, i64)> = all.iter().map(|f| (f.1.clone(), f.2)).collect();
    codes.sort();
    assert_eq!(codes, [("A".to_owned(), 4), ("C".into(), 1), ("D".into(), 1)]);
    // An offset skips in that order, as of the pin too (with or without a limit).
    for limit in [Some(10), None] {
        let mut skipped = Vec::new();
        let q = Query { at_tx: Some(pinned), by_id: true, offset: 1, limit, ..Query::layer("manhole") };
        s.query(&q, &mut |f| {
            skipped.push(f.feature.id);
            true
        })
        .unwrap();
        assert_eq!(skipped, ids[1..], "{limit:?}");
    }
    // Without a pin the same order shows the new state; an offset skips in that order too.
    let now = |offset| {
        let mut out = Vec::new();
        s.query(&Query { by_id: true, offset, ..Query::layer("manhole") }, &mut |f| {
            out.push(f.feature.code);
            true
        })
        .unwrap();
        out
    };
    let mut live = now(0);
    assert_eq!(now(1), live[1..]);
    live.sort();
    assert_eq!(live, ["A", "C", "E"]);
}

#[cfg(test)]
mod tests {
    /// The macro runs every case: the `pub fn NAME(s: &dyn Store)` here are exactly those it lists.
    #[test]
    fn every_case_is_listed_in_the_macro() {
        let src = [include_str!("conformance.rs"), include_str!("conformance/bookkeeping.rs")].concat();
        let ident = |name: &&str| name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        let macro_body = &src[src.find("macro_rules!").unwrap()..src.find("(@cases $fresh:expr;").unwrap()];
        let mut listed: Vec<&str> = macro_body
            .lines()
            .filter_map(|l| l.trim().strip_suffix(','))
            .filter(|n| !n.is_empty())
            .filter(ident)
            .collect();
        let mut cases: Vec<&str> = src
            .split("pub fn ")
            .skip(1)
            .filter_map(|rest| rest.split_once("(s: &dyn Store)").map(|(name, _)| name))
            .filter(ident)
            .collect();
        assert!(cases.len() > 20, "the case names were not found: {cases:?}");
        listed.sort_unstable();
        cases.sort_unstable();
        assert_eq!(listed, cases, "conformance_tests! must list every conformance case");
    }
}
