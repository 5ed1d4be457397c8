//! Change detection between two dates: snapshots and version streams classified by hand, and the
//! per-division summary with a feature that moved.

use serde_json::{Value, json};
use shikong_analysis::AnalysisError;
use shikong_analysis::aggregate::{Division, Unit};
use shikong_analysis::change::{
    ChangeKind, Entry, Properties, Shape, State, changed_fields, diff_snapshots, net_changes, summarise_by_division,
};

fn props(v: Value) -> Properties {
    match v {
        Value::Object(m) => m,
        _ => panic!("not an object"),
    }
}

fn state(v: Value, at: Option<[f64; 2]>) -> State {
    State { properties: props(v), shape: at.map(|at| Shape { at, bbox: None, digest: None }) }
}

fn square(id: &str, x: f64) -> Division {
    Division {
        id: id.to_owned(),
        polygons: vec![vec![vec![[x, 30.0], [x + 0.1, 30.0], [x + 0.1, 30.1], [x, 30.1]]]],
        population: None,
        area_m2: None,
    }
}

const IN_A: [f64; 2] = [114.05, 30.05];
const IN_A2: [f64; 2] = [114.06, 30.05];
const IN_B: [f64; 2] = [114.15, 30.05];
const NOWHERE: [f64; 2] = [120.0, 30.0];

#[test]
fn snapshots_classified_and_fields_listed() {
    let before = vec![
        ("a".to_owned(), state(json!({"名称": "张三", "状态": 1, "备注": null}), Some(IN_A))),
        ("b".to_owned(), state(json!({"名称": "李四"}), Some(IN_B))),
        ("c".to_owned(), state(json!({"名称": "王五", "面积": 12.5}), Some(IN_A))),
        ("d".to_owned(), state(json!({"名称": "赵六", "等级": 1, "备注": null}), Some(IN_B))),
    ];
    let after = vec![
        ("e".to_owned(), state(json!({"名称": "新"}), Some(IN_B))),
        ("d".to_owned(), state(json!({"名称": "赵六", "等级": 1.0}), Some(IN_B))),
        ("c".to_owned(), state(json!({"名称": "王五", "面积": 13.0, "新字段": "x"}), Some(IN_B))),
        ("a".to_owned(), state(json!({"名称": "张三", "状态": 2, "备注": null}), Some(IN_A2))),
    ];
    let set = diff_snapshots(&before, &after).unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<(&str, ChangeKind, Vec<&str>)> =
        set.changes.iter().map(|c| (c.id.as_str(), c.kind, c.fields.iter().map(String::as_str).collect())).collect();
    assert_eq!(
        ids,
        vec![
            ("a", ChangeKind::Changed, vec!["geometry", "状态"]),
            ("b", ChangeKind::Removed, vec![]),
            ("c", ChangeKind::Changed, vec!["geometry", "面积", "新字段"]),
            ("d", ChangeKind::Unchanged, vec![]),
            ("e", ChangeKind::Added, vec![]),
        ]
    );
    assert_eq!((set.count(ChangeKind::Changed), set.transient), (2, 0));

    let divisions = [square("A", 114.0), square("B", 114.1)];
    let rows = summarise_by_division(&set, &divisions, 2).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows.len(), 3);
    let (a, b, out) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!((a.unit, b.unit, out.unit), (Unit::Division(0), Unit::Division(1), Unit::Outside));
    // a changed within A; c moved from A to B and counts as changed in both
    assert_eq!((a.added, a.removed, a.changed, a.unchanged, a.moved_in, a.moved_out), (0, 0, 2, 0, 0, 1));
    assert_eq!((b.added, b.removed, b.changed, b.unchanged, b.moved_in, b.moved_out), (1, 1, 1, 1, 1, 0));
    // 状态, 面积 and 新字段 once each: ties go by name in code point order (新 U+65B0 first)
    assert_eq!(a.top_fields, vec![("geometry".to_owned(), 2), ("新字段".to_owned(), 1)], "top 2");
    assert_eq!(b.top_fields, vec![("geometry".to_owned(), 1), ("新字段".to_owned(), 1)]);
    assert_eq!((out.added, out.removed, out.changed), (0, 0, 0));
}

#[test]
fn a_stream_of_versions_nets_out() {
    let s = |v: Value, at| Some(state(v, Some(at)));
    let entries = vec![
        Entry { id: "x".into(), before: None, after: s(json!({"k": 1}), IN_A) },
        Entry { id: "y".into(), before: s(json!({"k": 1}), IN_A), after: s(json!({"k": 2}), IN_A) },
        Entry { id: "x".into(), before: s(json!({"k": 1}), IN_A), after: s(json!({"k": 5}), IN_A) },
        Entry { id: "z".into(), before: None, after: s(json!({"k": 1}), IN_B) },
        Entry { id: "w".into(), before: s(json!({"k": 1}), IN_B), after: s(json!({"k": 2}), IN_B) },
        Entry { id: "y".into(), before: s(json!({"k": 2}), IN_A), after: None },
        Entry { id: "z".into(), before: s(json!({"k": 1}), IN_B), after: None },
        Entry { id: "w".into(), before: s(json!({"k": 2}), IN_B), after: s(json!({"k": 1}), IN_B) },
        Entry { id: "v".into(), before: s(json!({"k": 1}), IN_B), after: s(json!({"k": 1}), NOWHERE) },
    ];
    let set = net_changes(&entries).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<(&str, ChangeKind)> = set.changes.iter().map(|c| (c.id.as_str(), c.kind)).collect();
    assert_eq!(
        got,
        vec![
            ("v", ChangeKind::Changed),
            ("w", ChangeKind::Unchanged),
            ("x", ChangeKind::Added),
            ("y", ChangeKind::Removed),
        ]
    );
    assert_eq!(set.transient, 1, "z was created and deleted between the dates");
    let rows =
        summarise_by_division(&set, &[square("A", 114.0), square("B", 114.1)], 5).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((rows[0].added, rows[0].removed), (1, 1));
    assert_eq!((rows[1].changed, rows[1].moved_out, rows[1].unchanged), (1, 1, 1));
    assert_eq!((rows[2].changed, rows[2].moved_in), (1, 1), "v moved out of every division");
}

#[test]
fn geometry_digests_and_boxes_count() {
    let shape = |digest, bbox| Some(Shape { at: IN_A, bbox, digest });
    let st = |sh| State { properties: Properties::new(), shape: sh };
    assert!(changed_fields(&st(shape(Some(1), None)), &st(shape(Some(1), None))).is_empty());
    assert_eq!(changed_fields(&st(shape(Some(1), None)), &st(shape(Some(2), None))), vec!["geometry"]);
    // a digest on one side only cannot tell; the point and box can
    assert!(changed_fields(&st(shape(Some(1), None)), &st(shape(None, None))).is_empty());
    let b = Some([114.0, 30.0, 114.1, 30.1]);
    assert_eq!(changed_fields(&st(shape(None, b)), &st(shape(None, None))), vec!["geometry"]);
    assert_eq!(changed_fields(&st(None), &st(shape(None, None))), vec!["geometry"]);
    // nested values compare exactly; top-level numbers by value
    let p = |v: Value| State { properties: props(v), shape: None };
    assert!(changed_fields(&p(json!({"n": 3})), &p(json!({"n": 3.0}))).is_empty());
    assert_eq!(changed_fields(&p(json!({"o": [1, 2]})), &p(json!({"o": [2, 1]}))), vec!["o"]);
    assert_eq!(changed_fields(&p(json!({"s": "甲"})), &p(json!({"s": null}))), vec!["s"]);
}

#[test]
fn bad_input_is_named() {
    let one = vec![("a".to_owned(), State::default()), ("a".to_owned(), State::default())];
    assert!(matches!(diff_snapshots(&one, &[]), Err(AnalysisError::Duplicate { .. })));
    let bad = vec![("a".to_owned(), state(json!({}), Some([200.0, 0.0])))];
    assert!(matches!(diff_snapshots(&bad, &[]), Err(AnalysisError::Invalid { index: 0, .. })));
    let set = diff_snapshots(&[], &[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        summarise_by_division(&set, &[], 101),
        Err(AnalysisError::TooMany { limit: "MAX_TOP_FIELDS", .. })
    ));
    let long = vec![("号".repeat(201), State::default())];
    assert!(matches!(diff_snapshots(&long, &[]), Err(AnalysisError::Invalid { .. })));
}
