//! `GET /collections/{c}/stats`: counts and sums of a layer grouped by class fields, periods and
//! division polygons, checked against counts made independently from the store; as-of; precise
//! problems for bad fields and limits; only layers the caller may read.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_model::Value;
use shikong_store::{FeatureKey, Patch, Query, TxMeta};

use crate::support::*;

/// Every current manhole of the demo as (code, x, y, 状态, 埋深, 安装日期).
type Row = (String, f64, f64, Option<String>, Option<f64>, Option<String>);

fn manholes_now(env: &Env) -> Vec<Row> {
    let mut out = Vec::new();
    env.store()
        .query(&Query::layer("manhole"), &mut |sf| {
            let p = &sf.feature.properties;
            let Some(shikong_model::Geometry::Point(c)) = sf.feature.geometry else { return true };
            let status = match p.get("状态") {
                Some(Value::Text(t)) => Some(t.clone()),
                _ => None,
            };
            let depth = match p.get("埋深") {
                Some(Value::Real(r)) => Some(*r),
                _ => None,
            };
            let date = match p.get("安装日期") {
                Some(Value::Date(d)) => Some(d.year().to_string()),
                _ => None,
            };
            out.push((sf.feature.code.clone(), c.x, c.y, status, depth, date));
            true
        })
        .unwrap();
    out
}

fn stats(env: &Env, token: Option<&str>, query: &str) -> Json {
    let r = env.get(&format!("/collections/manhole/stats?{query}")).maybe_token(token).send();
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
    r.json()
}

/// `(key, count)` of each group of a one-term answer.
fn counts(doc: &Json) -> BTreeMap<Option<String>, u64> {
    doc["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"][0].as_str().map(str::to_owned), g["count"].as_u64().unwrap()))
        .collect()
}

#[test]
fn stats_by_class_field_with_sums_match_the_store() {
    let env = demo().env();
    let rows = manholes_now(&env);
    let doc = stats(&env, Some(&env.token("wang")), "group-by=状态&sum=埋深");
    let mut expected: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for r in &rows {
        *expected.entry(r.3.clone()).or_default() += 1;
    }
    assert_eq!(counts(&doc), expected);
    assert_eq!(doc["count"], rows.len() as u64);
    let depth: f64 = rows.iter().filter_map(|r| r.4).sum();
    assert!((doc["totals"][0].as_f64().unwrap() - depth).abs() < 1e-6, "{}", doc["totals"]);
    let broken = doc["groups"].as_array().unwrap().iter().find(|g| g["key"][0] == "2").expect("破损 group");
    assert_eq!(broken["label"][0], "破损", "the code list's label");
    let broken_depth: f64 = rows.iter().filter(|r| r.3.as_deref() == Some("2")).filter_map(|r| r.4).sum();
    assert!((broken["sums"][0].as_f64().unwrap() - broken_depth).abs() < 1e-6);
    // The fields statistics can use come with every answer.
    let uses =
        |name: &str| doc["fields"].as_array().unwrap().iter().find(|f| f["name"] == name).map(|f| f["uses"].clone());
    assert_eq!(uses("状态"), Some(json!(["class"])));
    assert_eq!(uses("埋深"), Some(json!(["number"])));
    assert_eq!(uses("安装日期"), Some(json!(["period"])));
    assert_eq!(uses("照片"), None);
    let coded: Vec<&str> = doc["fields"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["coded"] == true)
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(coded, ["材质", "状态"], "fields with code lists");

    // A filter narrows the counted features; no group-by gives one group of all.
    let doc = stats(&env, None, "filter=状态%20%3D%20'3'");
    assert_eq!(doc["groups"].as_array().unwrap().len(), 1);
    assert_eq!(doc["count"], expected[&Some("3".to_owned())]);

    // By year of installation: the same per-year counts as the store's values.
    let doc = stats(&env, None, "group-by=安装日期:year");
    let mut years: BTreeMap<Option<String>, u64> = BTreeMap::new();
    for r in &rows {
        *years.entry(r.5.clone()).or_default() += 1;
    }
    assert_eq!(counts(&doc), years);
    let keys: Vec<Option<String>> =
        doc["groups"].as_array().unwrap().iter().map(|g| g["key"][0].as_str().map(str::to_owned)).collect();
    assert_eq!(keys.last(), Some(&None), "features without a date come last: {keys:?}");
    let doc = stats(&env, None, "group-by=安装日期:month,状态");
    assert!(doc["groups"].as_array().unwrap().iter().all(|g| g["key"][0].as_str().is_none_or(|k| k.len() == 7)));
    assert_eq!(doc["count"], rows.len() as u64);
}

#[test]
fn stats_by_division_join_points_to_polygons() {
    let env = demo().env();
    let rows = manholes_now(&env);
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for r in &rows {
        (x0, y0, x1, y1) = (x0.min(r.1), y0.min(r.2), x1.max(r.1), y1.max(r.2));
    }
    let mid = (x0 + x1) / 2.0;
    let rect = |code: &str, name: &str, a: f64, b: f64, c: f64, d: f64| {
        json!({"type": "Feature", "properties": {"code": code, "名称": name},
            "geometry": {"type": "Polygon", "coordinates": [[[a, b], [c, b], [c, d], [a, d], [a, b]]]}})
    };
    // West and east halves (the west one leaves out a strip, so some manholes fall outside), and
    // a division far away that holds nothing.
    let strip = (x1 - x0) * 0.05;
    let fc = json!({"type": "FeatureCollection", "features": [
        rect("S-01", "西街道", x0 + strip, y0 - 0.01, mid, y1 + 0.01),
        rect("S-02", "东街道", mid, y0 - 0.01, x1 + 0.01, y1 + 0.01),
        rect("S-03", "远处街道", 100.0, 20.0, 100.1, 20.1),
    ]});
    let file = env.dir.path().join("streets.geojson");
    std::fs::write(&file, fc.to_string()).unwrap();
    import(env.store(), &file, "street_area", Some("街道"));

    let doc = stats(&env, Some(&env.token("wang")), "group-by=division&divisions=street_area&geometry=true&sum=埋深");
    let west = rows.iter().filter(|r| r.1 >= x0 + strip && r.1 <= mid).count() as u64;
    let east = rows.iter().filter(|r| r.1 >= mid).count() as u64 - rows.iter().filter(|r| r.1 == mid).count() as u64;
    let outside = rows.len() as u64 - west - east;
    assert!(west > 0 && east > 0 && outside > 0, "{west} {east} {outside}");
    let mut expected = BTreeMap::new();
    expected.insert(Some("S-01".to_owned()), west);
    expected.insert(Some("S-02".to_owned()), east);
    expected.insert(None, outside);
    assert_eq!(counts(&doc), expected);
    let g = &doc["groups"][0];
    assert_eq!((g["key"][0].as_str(), g["label"][0].as_str()), (Some("S-01"), Some("西街道")));
    assert_eq!(g["geometry"]["type"], "Polygon", "the division's shape for the choropleth");
    assert!(doc["groups"][2]["geometry"].is_null(), "no shape for features outside every division");
    assert_eq!(doc["divisions"], "street_area");

    // Division and class together.
    let doc = stats(&env, Some(&env.token("wang")), "group-by=division,状态&divisions=street_area");
    let total: u64 = doc["groups"].as_array().unwrap().iter().map(|g| g["count"].as_u64().unwrap()).sum();
    assert_eq!(total, rows.len() as u64);

    // The division layer must be readable too: anonymous callers may read the public manholes, but
    // not the (non-public) street layer.
    let r = env.get("/collections/manhole/stats?group-by=division&divisions=street_area").send();
    problem(&r, StatusCode::UNAUTHORIZED);
    let r = env.get("/collections/manhole/stats?group-by=division&divisions=road").token(&env.token("wang")).send();
    let p = problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "divisions", "{p}");
    let r = env.get("/collections/manhole/stats?group-by=division&divisions=nowhere").token(&env.token("wang")).send();
    assert_eq!(problem(&r, StatusCode::BAD_REQUEST)["parameter"], "divisions");
    let r = env.get("/collections/manhole/stats?group-by=division").token(&env.token("wang")).send();
    assert_eq!(problem(&r, StatusCode::BAD_REQUEST)["parameter"], "divisions");
}

#[test]
fn stats_follow_as_of() {
    let env = demo().env();
    let before = stats(&env, None, "group-by=状态");
    let at = jiff::Timestamp::now();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let mut tx = env.store().begin(TxMeta::by("wang").source("test edit")).unwrap();
    for code in ["420111-JG-00001", "420111-JG-00002", "420111-JG-00003"] {
        let set = [("状态".to_owned(), Value::Text("4".into()))].into_iter().collect();
        tx.update("manhole", &FeatureKey::Code(code.into()), Patch { set, ..Patch::default() }).unwrap();
    }
    tx.delete("manhole", &FeatureKey::Code("420111-JG-00004".into())).unwrap();
    tx.commit().unwrap();

    let now = counts(&stats(&env, None, "group-by=状态"));
    let b = counts(&before);
    assert_eq!(
        now.get(&Some("4".to_owned())).copied().unwrap_or(0),
        b.get(&Some("4".to_owned())).copied().unwrap_or(0) + 3
    );
    assert_eq!(now.values().sum::<u64>() + 1, b.values().sum::<u64>());
    let asof = format!("as-of={}", enc(&at.to_string()));
    let then = stats(&env, None, &format!("group-by=状态&{asof}"));
    assert_eq!(counts(&then), b, "as of before the edit: the counts from before");
    assert!(then["as_of"].as_str().unwrap().ends_with("+08:00"), "{}", then["as_of"]);
}

#[test]
fn stats_refuse_bad_fields_and_limits_precisely() {
    let env = demo().env();
    let bad = |q: &str| {
        let r = env.get(&format!("/collections/manhole/stats?{q}")).send();
        problem(&r, StatusCode::BAD_REQUEST)
    };
    let p = bad("group-by=不存在");
    assert_eq!((p["parameter"].as_str(), p["field"].as_str()), (Some("group-by"), Some("不存在")), "{p}");
    assert!(p["detail"].as_str().unwrap().contains("状态"), "names the fields there are: {p}");
    let p = bad("sum=名称");
    assert_eq!((p["parameter"].as_str(), p["field"].as_str()), (Some("sum"), Some("名称")), "{p}");
    let p = bad("sum=没有");
    assert_eq!(p["parameter"], "sum");
    let p = bad("group-by=状态:month");
    assert_eq!((p["parameter"].as_str(), p["field"].as_str()), (Some("group-by"), Some("状态")), "{p}");
    let p = bad("group-by=安装日期:decade");
    assert!(p["detail"].as_str().unwrap().contains("decade"), "{p}");
    let p = bad("group-by=安装日期");
    assert_eq!(p["field"], "安装日期", "a date is grouped by periods: {p}");
    let p = bad("group-by=a,b,c");
    assert_eq!((p["limit"].as_str(), p["max"].as_u64()), (Some("terms"), Some(2)));
    let p = bad("filter=没有%20%3D%201");
    assert_eq!(p["parameter"], "filter");
    let p = bad("geometry=true");
    assert_eq!(p["parameter"], "geometry");
    let p = bad("colour=red");
    assert_eq!(p["parameter"], "colour");
    // Names are nearly unique: more groups than one answer may hold.
    let p = bad("group-by=名称");
    assert_eq!((p["limit"].as_str(), p["max"].as_u64()), (Some("groups"), Some(1000)), "{p}");
    // Only layers the caller may read: citizens' reports are for staff.
    let r = env.get("/collections/citizen_report/stats").token(&env.token("zhang")).send();
    problem(&r, StatusCode::FORBIDDEN);
    let r = env.get("/collections/citizen_report/stats").send();
    problem(&r, StatusCode::UNAUTHORIZED);
    let r = env.get("/collections/citizen_report/stats").token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = env.get("/collections/nowhere/stats").token(&env.token("wang")).send();
    problem(&r, StatusCode::NOT_FOUND);
}
