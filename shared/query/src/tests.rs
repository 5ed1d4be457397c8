//! One-line cases: a filter, a feature, whether it is selected; JSON equivalents; errors.

use shikong_model::{CodeItem, Coord, Feature, FieldDef, FieldType, Geometry, LayerSchema, ValidTime, Value, time};

use crate::{Attribute, Filter, QueryError, quote_identifier};

pub(crate) fn schema() -> LayerSchema {
    let mut depth = FieldDef::new("depth", FieldType::Real);
    depth.title = Some("埋深".into());
    let mut status = FieldDef::new("status", FieldType::Code);
    status.codes =
        vec![CodeItem { code: "1".into(), label: "完好".into() }, CodeItem { code: "2".into(), label: "破损".into() }];
    let mut checked = FieldDef::new("checked", FieldType::DateTime);
    checked.title = Some("巡检时间".into());
    LayerSchema {
        fields: vec![
            FieldDef::new("名称", FieldType::Text),
            depth,
            FieldDef::new("count", FieldType::Integer),
            FieldDef::new("ok", FieldType::Bool),
            FieldDef::new("built", FieldType::Date),
            checked,
            status,
            FieldDef::new("note", FieldType::Text),
            FieldDef::new("照片", FieldType::Attachments),
        ],
    }
}

fn t(s: &str) -> jiff::Timestamp {
    time::parse_instant(s).unwrap()
}

/// 雨水井盖 at (114.3, 30.5), valid 2020-01-01 to 2025-01-01 (Beijing), no note.
pub(crate) fn feature() -> Feature {
    Feature {
        id: "0192f3c4-0000-7000-8000-000000000001".parse().unwrap(),
        code: "420111-JG-0001".into(),
        geometry: Some(Geometry::Point(Coord::xy(114.3, 30.5))),
        valid: ValidTime::new(Some(t("2020-01-01T00:00:00+08:00")), Some(t("2025-01-01T00:00:00+08:00"))).unwrap(),
        properties: [
            ("名称", Value::from("雨水井盖")),
            ("depth", Value::Real(1.5)),
            ("count", Value::Integer(3)),
            ("ok", Value::Bool(true)),
            ("built", Value::Date(time::parse_date("2019-05-20").unwrap())),
            ("checked", Value::DateTime(t("2025-06-01T08:30:00+08:00"))),
            ("status", Value::from("2")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect(),
    }
}

#[track_caller]
fn check_feature(filter: &str, f: &Feature, expected: bool) {
    let parsed = Filter::parse_text(filter, &schema()).unwrap_or_else(|e| panic!("{filter}: {e}"));
    assert_eq!(parsed.matches(f, Some(7)), expected, "{filter}\nresolved: {parsed}");
    // The Display form reads back to the same filter.
    let again = Filter::parse_text(&parsed.to_string(), &schema()).unwrap_or_else(|e| panic!("{parsed}: {e}"));
    assert_eq!(again, parsed, "{filter} → {parsed}");
}

#[track_caller]
fn check(filter: &str, expected: bool) {
    check_feature(filter, &feature(), expected);
}

#[track_caller]
fn check_with(filter: &str, change: impl FnOnce(&mut Feature), expected: bool) {
    let mut f = feature();
    change(&mut f);
    check_feature(filter, &f, expected);
}

fn without(name: &'static str) -> impl FnOnce(&mut Feature) {
    move |f| {
        f.properties.remove(name);
    }
}

#[test]
fn comparisons() {
    check("depth > 1", true);
    check("depth > 1.5", false);
    check("depth >= 1.5", true);
    check("depth = 1.5", true);
    check("depth <> 1.5", false);
    check("depth < 2 AND count = 3", true);
    check("count = 3.0", true);
    check("count < 3.5", true);
    check("count > 2.9999", true);
    check("depth > count", false);
    check("depth * 2 = count", true);
    check("depth + 1.5 = count", true);
    check("count / 2 = 1.5", true);
    check("count / 0 = 1", false);
    check("NOT (count / 0 = 1)", false);
    check("-depth < 0", true);
    check("1 = 1", true);
    check("ok = true", true);
    check("ok", true);
    check("NOT ok", false);
    check("ok <> false", true);
    check("status = '2'", true);
    check("code = '420111-JG-0001'", true);
    check("code > '420111'", true);
    check("entity_id = '0192F3C4-0000-7000-8000-000000000001'", true);
    check("version = 7", true);
    check("version > 7", false);
    check("true", true);
    check("false", false);
}

#[test]
fn chinese_names_and_values() {
    check("名称 = '雨水井盖'", true);
    check("\"名称\" = '雨水井盖'", true);
    check("名称='雨水井盖' and depth>1", true);
    check("名称 = '井盖'", false);
    check("埋深 > 1", true);
    check("巡检时间 > TIMESTAMP('2025-06-01T00:00:00Z')", true);
    check("名称 > '雨'", true);
    check("名称 < '雨'", false);
}

#[test]
fn like_in_between() {
    check("名称 LIKE '雨水%'", true);
    check("名称 LIKE '%井盖'", true);
    check("名称 LIKE '%井%'", true);
    check("名称 LIKE '井%'", false);
    check("名称 LIKE '__井盖'", true);
    check("名称 LIKE '_井盖'", false);
    check("名称 NOT LIKE '井%'", true);
    check_with("名称 LIKE '100\\%'", |f| drop(f.properties.insert("名称".into(), "100%".into())), true);
    check_with("名称 LIKE '100\\%'", |f| drop(f.properties.insert("名称".into(), "1000".into())), false);
    check_with("名称 LIKE 'a*b?[c]'", |f| drop(f.properties.insert("名称".into(), "a*b?[c]".into())), true);
    check_with("名称 LIKE 'a*b?[c]'", |f| drop(f.properties.insert("名称".into(), "axbyc".into())), false);
    check_with("名称 LIKE 'Abc%'", |f| drop(f.properties.insert("名称".into(), "abcd".into())), false);
    check_with("casei(名称) LIKE casei('Abc%')", |f| drop(f.properties.insert("名称".into(), "aBcd".into())), true);
    check_with("casei(名称) = casei('ÀBC')", |f| drop(f.properties.insert("名称".into(), "Àbc".into())), true);
    check_with("casei(名称) = casei('àbc')", |f| drop(f.properties.insert("名称".into(), "Àbc".into())), false);
    check("code LIKE '420111-%'", true);
    check("status IN ('1', '2')", true);
    check("status NOT IN ('1', '3')", true);
    check("count IN (1, 2)", false);
    check("count IN (3)", true);
    check("名称 IN ('雨水井盖', '阀门')", true);
    check("depth BETWEEN 1 AND 2", true);
    check("depth BETWEEN 1.5 AND 1.5", true);
    check("depth NOT BETWEEN 1 AND 2", false);
    check("count BETWEEN 4 AND 10", false);
    check("built BETWEEN DATE('2019-01-01') AND DATE('2019-12-31')", true);
    check("entity_id IN ('0192f3c4-0000-7000-8000-000000000001')", true);
}

#[test]
fn nulls_are_unknown_even_under_not() {
    check("note IS NULL", true);
    check("note IS NOT NULL", false);
    check("note = 'x'", false);
    check("NOT (note = 'x')", false);
    check("note <> 'x'", false);
    check("note IS NULL OR NOT (note = 'x')", true);
    check("NOT (note LIKE 'x%')", false);
    check("NOT (note IN ('x'))", false);
    check("note = 'x' OR depth > 1", true);
    check("NOT (note = 'x' AND depth > 100)", true);
    check("NOT (note = 'x' AND depth > 1)", false);
    check_with("depth IS NULL", without("depth"), true);
    check_with("NOT (depth > 1)", without("depth"), false);
    check_with("NOT (depth BETWEEN 1 AND 2)", without("depth"), false);
    check_with("depth + 1 > 0", without("depth"), false);
    check_with("NOT (depth + 1 > 0)", without("depth"), false);
    check_with("depth IS NULL", |f| drop(f.properties.insert("depth".into(), Value::Null)), true);
    check("geometry IS NULL", false);
    check_with("geometry IS NULL", |f| f.geometry = None, true);
    check_with("NOT s_intersects(geometry, BBOX(0, 0, 1, 1))", |f| f.geometry = None, false);
    check("valid_to IS NULL", false);
    check_with("valid_to IS NULL", |f| f.valid.to = None, true);
    check_feature("version IS NULL", &feature(), false);
}

#[test]
fn dates_and_timestamps() {
    check("built = DATE('2019-05-20')", true);
    check("built = '2019-05-20'", true);
    check("built > DATE('2019-05-19')", true);
    check("built < '2019-05-20'", false);
    check("checked = TIMESTAMP('2025-06-01T00:30:00Z')", true);
    check("checked = TIMESTAMP('2025-06-01T08:30:00+08:00')", true);
    check("checked = '2025-06-01T08:30:00+08:00'", true);
    check("checked > DATE('2025-06-01')", true);
    check("checked < DATE('2025-06-02')", true);
    check("checked >= '2025-06-01T08:30:00.001+08:00'", false);
    check("t_intersects(checked, DATE('2025-06-01'))", true);
    check("t_during(checked, INTERVAL('2025-06-01', '2025-06-01'))", true);
    check("t_intersects(checked, DATE('2025-05-31'))", false);
    check("t_before(checked, TIMESTAMP('2025-06-01T00:30:00.001Z'))", true);
    check("t_before(checked, TIMESTAMP('2025-06-01T00:30:00Z'))", false);
    check("t_after(checked, INTERVAL('..', '2025-05-31'))", true);
    check("t_equals(checked, TIMESTAMP('2025-06-01T00:30:00Z'))", true);
    check("t_intersects(built, DATE('2019-05-20'))", true);
    check("t_during(built, INTERVAL('2019-01-01', '2019-12-31'))", true);
    check("t_before(built, DATE('2019-05-21'))", true);
    check("t_meets(built, DATE('2019-05-20'))", true);
    check("t_before(DATE('2019-05-19'), built)", true);
    check("t_after(DATE('2019-05-19'), built)", false);
    check("t_before(DATE('2001-01-01'), DATE('2002-01-01'))", true);
}

#[test]
fn valid_time() {
    let vt = "INTERVAL(valid_from, valid_to)";
    check(&format!("t_intersects({vt}, TIMESTAMP('2020-01-01T00:00:00+08:00'))"), true);
    check(&format!("t_intersects({vt}, TIMESTAMP('2019-12-31T23:59:59.999+08:00'))"), false);
    check(&format!("t_intersects({vt}, TIMESTAMP('2024-12-31T23:59:59.999+08:00'))"), true);
    // valid_to is exclusive: the state no longer holds at that instant.
    check(&format!("t_intersects({vt}, TIMESTAMP('2025-01-01T00:00:00+08:00'))"), false);
    check(&format!("t_intersects({vt}, INTERVAL('2024-06-01', '..'))"), true);
    check(&format!("t_intersects({vt}, INTERVAL('2025-01-01', '..'))"), false);
    check(&format!("t_intersects({vt}, DATE('2024-12-31'))"), true);
    check(&format!("t_disjoint({vt}, DATE('2025-01-01'))"), true);
    check(&format!("t_during({vt}, INTERVAL('2019-01-01', '2025-01-01'))"), true);
    check(&format!("t_during({vt}, INTERVAL('2020-01-01', '2025-01-01'))"), false);
    check(&format!("t_starts({vt}, INTERVAL('2020-01-01', '2030-01-01'))"), true);
    // The last millisecond of valid time is 2024-12-31T23:59:59.999 Beijing, the end of that day.
    check(&format!("t_finishes({vt}, INTERVAL('2019-01-01', '2024-12-31'))"), true);
    check(&format!("t_finishes({vt}, INTERVAL('2019-01-01', '2025-01-01'))"), false);
    check(&format!("t_meets({vt}, INTERVAL('2024-12-31T15:59:59.999Z', '..'))"), true);
    check(&format!("t_before({vt}, TIMESTAMP('2025-01-01T00:00:00+08:00'))"), true);
    check(&format!("t_contains({vt}, DATE('2022-02-02'))"), true);
    check_with(&format!("t_intersects({vt}, DATE('1900-01-01'))"), |f| f.valid.from = None, true);
    check_with(&format!("t_after({vt}, DATE('1900-01-01'))"), |f| f.valid.from = None, false);
    check_with(&format!("t_intersects({vt}, DATE('2999-01-01'))"), |f| f.valid.to = None, true);
    check_with(&format!("t_equals({vt}, INTERVAL('..', '..'))"), |f| f.valid = ValidTime::ALWAYS, true);
    check_with(&format!("t_overlaps({vt}, INTERVAL('2024-01-01', '..'))"), |f| f.valid.to = None, false);
    check("valid_to > TIMESTAMP('2024-01-01T00:00:00Z')", true);
    check_with("valid_to > TIMESTAMP('2030-01-01T00:00:00Z')", |f| f.valid.to = None, true);
    check_with("NOT (valid_from > TIMESTAMP('1900-01-01T00:00:00Z'))", |f| f.valid.from = None, true);
    check("t_before(valid_from, valid_to)", true);
    check("t_after(checked, INTERVAL(valid_from, valid_to))", true);
}

#[test]
fn ogc_parameters_as_filters() {
    let at = |s: &str| crate::Filter::valid(&time::ValidFilter::parse(s).unwrap());
    assert!(at("2020-01-01T00:00:00+08:00").matches(&feature(), None));
    assert!(!at("2025-01-01T00:00:00+08:00").matches(&feature(), None));
    assert!(at("2024-06-01/..").matches(&feature(), None));
    assert!(!at("../2019-12-31T23:59:59+08:00").matches(&feature(), None));
    let b = crate::Filter::bbox(&"114,30,115,31".parse().unwrap()).unwrap();
    assert!(b.matches(&feature(), None));
    let both = b.and(at("2030-01-01/.."));
    assert!(!both.matches(&feature(), None));
    assert_eq!(
        both.to_string(),
        "(s_intersects(geometry, POLYGON ((114 30,115 30,115 31,114 31,114 30))) AND \
         t_intersects(INTERVAL(valid_from, valid_to), INTERVAL(TIMESTAMP('2029-12-31T16:00:00Z'), '..')))"
    );
}

#[test]
fn spatial() {
    check("s_intersects(geometry, BBOX(114, 30, 115, 31))", true);
    check("s_intersects(geom, BBOX(114.3, 30.5, 115, 31))", true);
    check("s_intersects(geometry, BBOX(115, 30, 116, 31))", false);
    check("s_disjoint(geometry, BBOX(115, 30, 116, 31))", true);
    check("s_intersects(geometry, POLYGON((114 30, 115 30, 115 31, 114 31, 114 30)))", true);
    check("s_within(geometry, POLYGON((114 30, 115 30, 115 31, 114 31, 114 30)))", true);
    check("s_contains(POLYGON((114 30, 115 30, 115 31, 114 31, 114 30)), geometry)", true);
    check("s_within(geometry, POLYGON((114.3 30, 115 30, 115 31, 114.3 31, 114.3 30)))", false);
    check("s_touches(geometry, POLYGON((114.3 30, 115 30, 115 31, 114.3 31, 114.3 30)))", true);
    check("s_equals(geometry, POINT(114.3 30.5))", true);
    check("s_intersects(geometry, LINESTRING(114 30, 115 31))", false);
    check("s_crosses(LINESTRING(114 30, 115 31), POLYGON((114 30, 115 30, 115 31, 114 31, 114 30)))", false);
    check(
        "s_intersects(geometry, BBOX(114, 30, 115, 31)) AND 名称 LIKE '雨水%' AND t_intersects(INTERVAL(valid_from, valid_to), DATE('2022-01-01'))",
        true,
    );
    let line = Geometry::LineString(vec![Coord::xy(114.0, 30.0), Coord::xy(115.0, 31.0)]);
    check_with(
        "s_crosses(geometry, POLYGON((114.2 30, 115 30, 115 31, 114.2 31, 114.2 30)))",
        |f| f.geometry = Some(line),
        true,
    );
}

#[track_caller]
fn same_json(text: &str, json: &str) {
    let s = schema();
    let a = Filter::parse_text(text, &s).unwrap_or_else(|e| panic!("{text}: {e}"));
    let b = Filter::parse_json(json, &s).unwrap_or_else(|e| panic!("{json}: {e}"));
    assert_eq!(a, b, "{text} vs {json}");
}

#[test]
fn json_encoding_equals_text_encoding() {
    same_json("名称 = '雨水井盖'", r#"{"op": "=", "args": [{"property": "名称"}, "雨水井盖"]}"#);
    same_json(
        "depth > 1 AND status IN ('1', '2')",
        r#"{"op": "and", "args": [{"op": ">", "args": [{"property": "depth"}, 1]},
            {"op": "in", "args": [{"property": "status"}, ["1", "2"]]}]}"#,
    );
    same_json(
        "s_intersects(geometry, POLYGON((114 30, 115 30, 115 31, 114 30)))",
        r#"{"op": "s_intersects", "args": [{"property": "geometry"},
            {"type": "Polygon", "coordinates": [[[114, 30], [115, 30], [115, 31], [114, 30]]]}]}"#,
    );
    same_json(
        "s_intersects(geometry, BBOX(114, 30, 115, 31))",
        r#"{"op": "s_intersects", "args": [{"property": "geometry"}, {"bbox": [114, 30, 115, 31]}]}"#,
    );
    same_json(
        "t_intersects(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '..'))",
        r#"{"op": "t_intersects", "args": [{"interval": [{"property": "valid_from"}, {"property": "valid_to"}]},
            {"interval": ["2024-01-01", ".."]}]}"#,
    );
    same_json(
        "checked > TIMESTAMP('2025-06-01T00:00:00Z')",
        r#"{"op": ">", "args": [{"property": "checked"}, {"timestamp": "2025-06-01T00:00:00Z"}]}"#,
    );
    same_json("note IS NULL", r#"{"op": "isNull", "args": [{"property": "note"}]}"#);
    same_json(
        "casei(名称) LIKE casei('ABC%')",
        r#"{"op": "like", "args": [{"op": "casei", "args": [{"property": "名称"}]}, {"op": "casei", "args": ["ABC%"]}]}"#,
    );
}

#[track_caller]
fn error(filter: &str, expected: &str) {
    match Filter::parse_text(filter, &schema()) {
        Ok(f) => panic!("{filter} parsed as {f}"),
        Err(e) => assert!(e.to_string().contains(expected), "{filter}:\n{e}\nlacks: {expected}"),
    }
}

#[track_caller]
fn json_error(json: &str, expected: &str) {
    match Filter::parse_json(json, &schema()) {
        Ok(f) => panic!("{json} parsed as {f}"),
        Err(e) => assert!(e.to_string().contains(expected), "{json}:\n{e}\nlacks: {expected}"),
    }
}

#[test]
fn error_messages_name_what_is_wrong() {
    error("名称 = '井盖' and", "CQL2 syntax error at line 1, column 14");
    error("名称 = '井盖' and", "名称 = '井盖' and\n  |              ^");
    error("颜色 = '红'", "unknown property `颜色`; queryable properties: entity_id, code, geometry");
    error("名称 = 井盖", "unknown property `井盖` (text values take single quotes: '井盖'); queryable");
    error("照片 IS NULL", "property `照片` cannot be filtered");
    error("depth > '3'", "`depth`: expected a number, got the text '3' (numbers are written without quotes)");
    error("code = 420111", "`code`: expected text, got the number 420111 (quote text: '420111')");
    error("ok = 1", "`ok`: expected a boolean (true/false), got the number 1");
    error("depth = 名称", "`depth`: expected a number, got `名称` (text)");
    error("built = TIMESTAMP('2025-06-01T00:00:00Z')", "`built`: expected a date");
    error("built > '2025-13-01'", "invalid date `2025-13-01`: expected YYYY-MM-DD");
    error(
        "checked > TIMESTAMP('2025-06-01T08:00:00')",
        "invalid timestamp `2025-06-01T08:00:00`: it has no UTC offset",
    );
    error("checked > '2025-06-01 08:00'", "write 2025-06-01 08:00+08:00 for Beijing time");
    error("t_intersects(checked, INTERVAL('2025-06-01T08:00:00', '..'))", "no UTC offset");
    error("t_intersects(built, TIMESTAMP('2025-06-01T00:00:00Z'))", "use DATE('YYYY-MM-DD')");
    error("t_intersects(depth, DATE('2025-06-01'))", "`depth`: expected a date or timestamp for t_intersects");
    error("t_intersects(built, checked)", "expected the same kind of time as `built`");
    error("t_during(checked, INTERVAL('2025-06-02', '2025-06-01'))", "its start is after its end");
    error("t_meets(INTERVAL(valid_from, valid_to), checked)", "unsupported CQL2 function/operator `t_meets`");
    error("depth = NULL", "NULL (use IS NULL or IS NOT NULL)");
    error("accenti(名称) = 'a'", "unsupported CQL2 function/operator `accenti`");
    error("foo(depth) = 1", "unsupported CQL2 function/operator `foo`");
    error("depth % 2 = 1", "unsupported CQL2 function/operator `%`");
    error("a_contains(名称, ('a'))", "unsupported CQL2 function/operator `a_contains`");
    error("depth LIKE '1%'", "`depth`: expected text (LIKE applies to text), got a number");
    error("名称 LIKE 'ab\\'", "ends with the escape character");
    error(
        "s_intersects(geometry, POLYGON((0 0, 1 0, 1 1, 0 1)))",
        "invalid geometry literal: polygon ring 0 is not closed",
    );
    error("s_intersects(geometry, BBOX(3, 0, 1, 1))", "invalid geometry literal: invalid bbox");
    error("s_intersects(depth, BBOX(0, 0, 1, 1))", "`depth`: expected a geometry");
    error("s_intersects(geometry, geometry)", "a layer has one geometry");
    error("geometry = POINT(1 2)", "use s_equals, s_intersects");
    error("entity_id = 'abc'", "invalid entity id `abc`");
    error("depth", "`depth`: expected a condition");
    error("depth + 1", "expected a condition, got the value +(…)");
    error("s_intersects(geometry, GEOMETRYCOLLECTION(POINT(1 2)))", "invalid geometry literal");
    json_error(r#"{"op": "=", "args": [{"property": "名称"}]}"#, "`=` takes 2 argument(s), got 1");
    json_error(
        r#"{"op": "and", "args": [{"op": "=", "args": [{"propertyx": "a"}, 1]}, true]}"#,
        "at /args/0/args/0: not a CQL2 expression: {\"propertyx\":\"a\"}",
    );
    json_error(r#"{"op": "=", "args": [1 2]}"#, "invalid CQL2 JSON: expected `,` or `]` at line 1 column 24");
    json_error(
        r#"{"op": ">", "args": [{"property": "checked"}, {"timestamp": "2025-06-01T08:00:00"}]}"#,
        "no UTC offset",
    );
}

#[test]
fn syntax_error_carries_position() {
    match Filter::parse_text("depth > 1 and\n名称 = = '井'", &schema()) {
        Err(QueryError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 6)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn plan_splits_sql_and_residual() {
    let s = schema();
    let cols = |a: &Attribute| match a {
        Attribute::Version => None,
        a => Some(quote_identifier(a.name())),
    };
    let plan = |text: &str| Filter::parse_text(text, &s).unwrap().plan(&cols);

    let p = plan("名称 LIKE '井%' AND depth > 1.5");
    assert_eq!(p.sql.as_deref(), Some(r#"("名称" GLOB ?) AND ("depth" > ?)"#));
    assert_eq!(p.params, [Value::from("井*"), Value::Real(1.5)]);
    assert_eq!((p.residual, p.bbox), (None, None));

    let p = plan("s_intersects(geometry, BBOX(114, 30, 115, 31)) AND depth > 1");
    assert_eq!(p.sql.as_deref(), Some(r#"("depth" > ?)"#));
    assert_eq!(p.bbox, Some(shikong_model::Bbox { min_x: 114.0, min_y: 30.0, max_x: 115.0, max_y: 31.0 }));
    assert_eq!(
        p.residual.map(|r| r.to_string()),
        Some("s_intersects(geometry, POLYGON ((114 30,115 30,115 31,114 31,114 30)))".into())
    );

    // An OR mixing spatial and SQL-able pieces stays whole in the residual; nothing narrows it.
    let p = plan("s_intersects(geometry, BBOX(114, 30, 115, 31)) OR depth > 1");
    assert_eq!((p.sql, p.bbox), (None, None));
    assert!(p.residual.is_some());

    // A relaxed copy narrows in SQL: the spatial piece becomes "true".
    let p = plan("(s_intersects(geometry, BBOX(114, 30, 115, 31)) AND count = 1) OR depth > 1");
    assert_eq!(p.sql.as_deref(), Some(r#"(("count" = ?) OR ("depth" > ?))"#));
    assert!(p.residual.is_some());

    let p = plan("version = 3 AND NOT (note = 'x')");
    assert_eq!(p.sql.as_deref(), Some(r#"NOT ("note" = ?)"#));
    assert_eq!(p.residual.map(|r| r.to_string()), Some("version = 3".into()));

    let p = plan("t_intersects(INTERVAL(valid_from, valid_to), INTERVAL('2024-01-01', '..'))");
    assert_eq!(p.sql.as_deref(), Some(r#"((coalesce("valid_from", '') <= '~') AND (coalesce("valid_to", '~') > ?))"#));
    assert_eq!(p.params, [Value::DateTime(t("2023-12-31T16:00:00Z"))]);
    assert_eq!(crate::sql_param(&p.params[0]), crate::SqlParam::Text("2023-12-31T16:00:00.000Z".into()));

    let p = plan("count / 2 > 1 AND casei(名称) = casei('AB')");
    assert_eq!(p.sql.as_deref(), Some(r#"((CAST("count" AS REAL) / ?) > ?) AND (lower("名称") = ?)"#));
    assert_eq!(p.params, [Value::Real(2.0), Value::Integer(1), Value::from("ab")]);
}

#[test]
fn attributes_and_queryables() {
    let f = Filter::parse_text("depth > 1 AND s_intersects(geom, BBOX(0,0,1,1)) AND depth < 3", &schema()).unwrap();
    let names: Vec<_> = f.attributes().iter().map(|a| a.name().to_owned()).collect();
    assert_eq!(names, ["depth", "geometry"]);
    assert!(Filter::all().is_all());
    let q = crate::queryables(&schema());
    assert!(q.iter().all(|q| q.name != "照片"));
    assert_eq!(q.iter().find(|q| q.name == "status").map(|q| q.codes.len()), Some(2));
}
