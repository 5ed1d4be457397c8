//! OGC API – Processes over space and time: `emerging-hotspot` (a growing cluster of incidents
//! becomes a hot spot of the right kind), `statistics` (by district, class and month, and by grid
//! cell, with rates on the ellipsoidal area) and `change` (what changed between two dates, per
//! district, with the changed fields).

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

/// Ten weeks from Monday 2026-09-07 (Beijing time).
const WEEKS: i64 = 10;
const WEEK0: &str = "2026-09-07T00:00:00+08:00";
const BACKGROUND_PER_WEEK: usize = 15;
/// The growing cluster: 3 × week incidents near 珞喻路.
const HOT: (f64, f64) = (114.35, 30.49);

fn total() -> usize {
    (0..WEEKS as usize).map(|w| BACKGROUND_PER_WEEK + 3 * w).sum()
}

fn template() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(&[("wang", "office"), ("li", "inspector")], |store, _| {
            let mut next = xorshift(7);
            let week0 = shikong_model::parse_instant(WEEK0).unwrap();
            let at = |w: i64, frac: f64| {
                let t = week0 + jiff::SignedDuration::from_secs(w * 7 * 86400 + (frac * 6.0 * 86400.0) as i64);
                shikong_model::time::beijing(t)
            };
            let mut feats = Vec::new();
            for w in 0..WEEKS {
                for n in 0..BACKGROUND_PER_WEEK {
                    let (x, y) = (114.33 + 0.12 * next(), 30.47 + 0.09 * next());
                    feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                        "properties": {"code": format!("BG-{w}-{n}"), "reported": at(w, next()), "type": "其他", "cost": 100.0}}));
                }
                for n in 0..(3 * w) {
                    let (x, y) = (HOT.0 + 0.002 * (next() - 0.5), HOT.1 + 0.002 * (next() - 0.5));
                    feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                        "properties": {"code": format!("HOT-{w}-{n}"), "reported": at(w, next()), "type": "井盖破损", "cost": 50.0}}));
                }
            }
            import_features(store, "incidents", "事件", feats);
            let rect = |x0: f64, x1: f64| json!({"type": "Polygon", "coordinates": [[[x0, 30.47], [x1, 30.47], [x1, 30.56], [x0, 30.56], [x0, 30.47]]]});
            let districts = vec![
                json!({"type": "Feature", "geometry": rect(114.33, 114.39), "properties": {"code": "W", "名称": "西片区", "population": 200000}}),
                json!({"type": "Feature", "geometry": rect(114.39, 114.45), "properties": {"code": "E", "名称": "东片区", "population": 100000}}),
            ];
            import_features(store, "districts", "片区", districts);
        })
    });
    &T
}

#[track_caller]
fn run(env: &Env, process: &str, inputs: Json) -> Json {
    let r = run_process(env, "wang", process, inputs);
    assert_eq!(r.header("content-type"), "application/geo+json");
    r.json()
}

#[test]
fn a_growing_cluster_is_an_emerging_hot_spot() {
    let env = template().env();
    let fc = run(
        &env,
        "emerging-hotspot",
        json!({"collection": "incidents", "time_field": "reported", "cell_size": 500, "interval": "P7D",
               "neighbourhood": 800, "origin": WEEK0}),
    );
    assert_eq!(fc["summary"]["steps"].as_array().unwrap().len(), WEEKS as usize, "{}", fc["summary"]);
    assert_eq!(fc["summary"]["steps"][0], WEEK0);
    // The bin holding the cluster's centre.
    let cells = fc["features"].as_array().unwrap();
    let inside = |f: &Json| {
        let ring = f["geometry"]["coordinates"][0].as_array().unwrap();
        let xs: Vec<f64> = ring.iter().map(|p| p[0].as_f64().unwrap()).collect();
        let ys: Vec<f64> = ring.iter().map(|p| p[1].as_f64().unwrap()).collect();
        let (x0, x1) = (xs.iter().cloned().fold(f64::MAX, f64::min), xs.iter().cloned().fold(f64::MIN, f64::max));
        let (y0, y1) = (ys.iter().cloned().fold(f64::MAX, f64::min), ys.iter().cloned().fold(f64::MIN, f64::max));
        (x0..x1).contains(&HOT.0) && (y0..y1).contains(&HOT.1)
    };
    let hot = cells.iter().find(|f| inside(f)).expect("a bin at the cluster");
    let category = hot["properties"]["category"].as_str().unwrap();
    assert!(
        ["new_hot_spot", "consecutive_hot_spot", "intensifying_hot_spot", "persistent_hot_spot"].contains(&category),
        "{hot}"
    );
    assert!(hot["properties"]["trend_z"].as_f64().unwrap() > 0.0, "{hot}");
    assert!(hot["properties"]["category_zh"].as_str().unwrap().contains("热点"), "{hot}");
    let values = hot["properties"]["values"].as_array().unwrap();
    assert_eq!(values.len(), WEEKS as usize);
    // Nothing in the background becomes a hot spot of that strength.
    let strong = cells
        .iter()
        .filter(|f| f["properties"]["category"] == "intensifying_hot_spot" && !inside(f))
        .filter(|f| {
            let c = &f["geometry"]["coordinates"][0][0];
            (c[0].as_f64().unwrap() - HOT.0).abs() > 0.02 || (c[1].as_f64().unwrap() - HOT.1).abs() > 0.02
        })
        .count();
    assert_eq!(strong, 0);

    // A month is not a fixed-length step.
    let r = env
        .post("/processes/emerging-hotspot/execution")
        .token(&env.token("wang"))
        .json(&json!({"inputs": {"collection": "incidents", "time_field": "reported", "cell_size": 500, "interval": "P1M", "neighbourhood": 800}}))
        .send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["input"], "interval");
}

#[test]
fn statistics_by_district_class_and_month_and_by_grid() {
    let env = template().env();
    let fc = run(
        &env,
        "statistics",
        json!({"collection": "incidents", "divisions": "districts", "division_name_field": "名称", "population_field": "population",
               "class_field": "type", "value_field": "cost", "time_field": "reported", "period": "month"}),
    );
    let rows = fc["features"].as_array().unwrap();
    let count: u64 = rows.iter().map(|r| r["properties"]["count"].as_u64().unwrap()).sum();
    assert_eq!(count as usize, total(), "every incident is counted once");
    assert_eq!(fc["summary"]["outside"], 0);
    // Every hot incident is in the west district; the months are September to November.
    let hot_west: u64 = rows
        .iter()
        .filter(|r| r["properties"]["name"] == "西片区" && r["properties"]["class"] == "井盖破损")
        .map(|r| r["properties"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(hot_west as usize, (0..WEEKS as usize).map(|w| 3 * w).sum::<usize>());
    let periods: std::collections::BTreeSet<&str> =
        rows.iter().map(|r| r["properties"]["period"].as_str().unwrap()).collect();
    assert_eq!(periods.into_iter().collect::<Vec<_>>(), ["2026-09", "2026-10", "2026-11"]);
    for r in rows {
        let p = &r["properties"];
        let area_km2 = p["area_m2"].as_f64().unwrap() / 1e6;
        let count = p["count"].as_f64().unwrap();
        assert!((p["count_per_km2"].as_f64().unwrap() - count / area_km2).abs() < 1e-9, "{r}");
        let people = p["population"].as_f64().unwrap();
        assert!((p["count_per_10k_people"].as_f64().unwrap() - count / people * 1e4).abs() < 1e-9, "{r}");
        assert!((p["mean"].as_f64().unwrap() - p["sum"].as_f64().unwrap() / count).abs() < 1e-9, "{r}");
        assert_eq!(r["geometry"]["type"], "Polygon", "the district's shape, for a choropleth");
    }
    // The west district's area is the ellipsoid's (about 5.77 km × 9.98 km at 30.5°N).
    let west = rows.iter().find(|r| r["properties"]["name"] == "西片区").unwrap();
    let area = west["properties"]["area_m2"].as_f64().unwrap();
    assert!((area / 1e6 - 57.6).abs() < 0.5, "{area}");

    // By 1 km grid cells: the same total.
    let grid = run(&env, "statistics", json!({"collection": "incidents", "cell_size": 1000}));
    let count: u64 =
        grid["features"].as_array().unwrap().iter().map(|r| r["properties"]["count"].as_u64().unwrap()).sum();
    assert_eq!(count as usize, total());
    let cell = &grid["features"][0];
    assert!((cell["properties"]["area_m2"].as_f64().unwrap() - 1e6).abs() < 1e-3, "equal-area cells: {cell}");

    // Divisions and a grid at once is a precise 400.
    let r = env
        .post("/processes/statistics/execution")
        .token(&env.token("wang"))
        .json(&json!({"inputs": {"collection": "incidents", "divisions": "districts", "cell_size": 1000}}))
        .send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["input"], "divisions");
}

#[test]
fn change_between_two_dates_per_district_with_the_changed_fields() {
    let env = template().env();
    let token = env.token("wang");
    let items = ok_as_wang(&env, "/collections/incidents/items?limit=1000");
    let id_of = |code: &str| {
        items["features"].as_array().unwrap().iter().find(|f| f["properties"]["code"] == code).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (edited, removed) = (id_of("HOT-9-0"), id_of("BG-0-0"));
    let t0 = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(20));
    let r = env
        .patch(&format!("/collections/incidents/items/{edited}"))
        .token(&token)
        .json(&json!({"properties": {"type": "已修复", "cost": 80.0}}))
        .send();
    assert!(r.status.is_success(), "{}", r.text());
    assert!(env.delete(&format!("/collections/incidents/items/{removed}")).token(&token).send().status.is_success());
    let r = env
        .post("/collections/incidents/items")
        .token(&token)
        .json(&json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.42, 30.50]},
            "properties": {"code": "NEW-1", "reported": "2026-11-20T09:00:00+08:00", "type": "其他", "cost": 10.0}}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let added = r.json()["id"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(20));
    let t1 = jiff::Timestamp::now();

    let fc = run(
        &env,
        "change",
        json!({"collection": "incidents", "from": t0.to_string(), "to": t1.to_string(), "divisions": "districts", "division_name_field": "名称"}),
    );
    let s = &fc["summary"];
    assert_eq!((s["added"].as_u64(), s["removed"].as_u64(), s["changed"].as_u64()), (Some(1), Some(1), Some(1)), "{s}");
    let by_id = |id: &str| fc["features"].as_array().unwrap().iter().find(|f| f["id"] == id).cloned().unwrap();
    let e = by_id(&edited);
    assert_eq!(e["properties"]["change"], "changed");
    assert_eq!(e["properties"]["fields"], json!(["type", "cost"]));
    assert_eq!(e["properties"]["division"], "西片区");
    assert_eq!(by_id(&added)["properties"]["change"], "added");
    assert_eq!(by_id(&added)["properties"]["division"], "东片区");
    assert_eq!(by_id(&removed)["properties"]["change"], "removed");
    assert_eq!(by_id(&removed)["geometry"]["type"], "Point", "a removed feature is shown where it was");
    let rows = s["by_division"].as_array().unwrap();
    let west = rows.iter().find(|r| r["division"] == "西片区").unwrap();
    assert_eq!(west["changed"], 1);
    assert!(west["top_fields"].as_array().unwrap().iter().any(|f| f["field"] == "type"), "{west}");
    let east = rows.iter().find(|r| r["division"] == "东片区").unwrap();
    assert_eq!(east["added"], 1);
}
