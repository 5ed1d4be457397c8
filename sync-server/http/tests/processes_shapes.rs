//! OGC API – Processes that make shapes: `trajectory` (an inspector's GPS track split at a gap,
//! its stop found, its grid coverage measured) and `overlay` (buffer, intersection, union,
//! difference, clip, dissolve with ellipsoidal areas).

use std::sync::LazyLock;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_analysis::aggregate::geodesic_area_m2;

use crate::support::*;

const START: &str = "2026-12-01T09:00:00+08:00";

fn square(x0: f64, y0: f64, x1: f64, y1: f64) -> Json {
    json!({"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]})
}

fn template() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(&[("wang", "office")], |store, _| {
            let t0 = shikong_model::parse_instant(START).unwrap();
            let at = |s: i64| shikong_model::time::beijing(t0 + jiff::SignedDuration::from_secs(s));
            let mut fixes = Vec::new();
            let mut push = |n: usize, x: f64, y: f64, s: i64, who: &str| {
                fixes.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                    "properties": {"code": format!("{who}-{n:04}"), "at": at(s), "inspector": who}}));
            };
            // 张三 walks east along 30.500 at about 1 m/s (a fix every 10 s), stops 10 minutes at
            // 114.345 (fixes within a few metres), walks on to 114.350; then, after a 20-minute
            // gap, walks north.
            let mut s = 0;
            let mut n = 0;
            let step = 10.0 / 96_000.0; // 10 m of longitude at 30.5°N, in degrees
            let mut x = 114.340;
            while x < 114.345 {
                push(n, x, 30.500, s, "张三");
                (x, s, n) = (x + step, s + 10, n + 1);
            }
            for k in 0..60 {
                let jitter = ((k * 7919) % 5) as f64 * 0.00001;
                push(n, 114.345 + jitter, 30.500 + jitter, s, "张三");
                (s, n) = (s + 10, n + 1);
            }
            while x < 114.350 {
                push(n, x, 30.500, s, "张三");
                (x, s, n) = (x + step, s + 10, n + 1);
            }
            s += 1200;
            let mut y = 30.500;
            while y < 30.505 {
                push(n, 114.350, y, s, "张三");
                (y, s, n) = (y + 10.0 / 111_000.0, s + 10, n + 1);
            }
            // 李四 stands still for an hour (one stop, no walking).
            for k in 0..360 {
                push(10_000 + k, 114.360, 30.520, k as i64 * 10, "李四");
            }
            import_features(store, "gps", "巡查轨迹点", fixes);
            // Four assigned cells: two on 张三's way, two away from it.
            let cells = vec![
                json!({"type": "Feature", "geometry": square(114.341, 30.499, 114.343, 30.501), "properties": {"code": "C1"}}),
                json!({"type": "Feature", "geometry": square(114.3495, 30.502, 114.3505, 30.503), "properties": {"code": "C2"}}),
                json!({"type": "Feature", "geometry": square(114.380, 30.530, 114.382, 30.532), "properties": {"code": "C3"}}),
                json!({"type": "Feature", "geometry": square(114.300, 30.450, 114.302, 30.452), "properties": {"code": "C4"}}),
            ];
            import_features(store, "cells", "责任网格", cells);
            let parcels = vec![
                json!({"type": "Feature", "geometry": square(114.340, 30.500, 114.350, 30.510), "properties": {"code": "A", "owner": "甲"}}),
                json!({"type": "Feature", "geometry": square(114.345, 30.505, 114.355, 30.515), "properties": {"code": "B", "owner": "甲"}}),
                json!({"type": "Feature", "geometry": square(114.360, 30.500, 114.362, 30.502), "properties": {"code": "C", "owner": "乙"}}),
            ];
            import_features(store, "parcels", "地块", parcels);
            let zone = vec![
                json!({"type": "Feature", "geometry": square(114.345, 30.505, 114.355, 30.515), "properties": {"code": "Z"}}),
            ];
            import_features(store, "zone", "规划区", zone);
        })
    });
    &T
}

#[track_caller]
fn run(env: &Env, process: &str, inputs: Json) -> Json {
    run_process(env, "wang", process, inputs).json()
}

fn of_kind<'a>(fc: &'a Json, kind: &str, track: &str) -> Vec<&'a Json> {
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["properties"]["kind"] == kind && (track.is_empty() || f["properties"]["track"] == track))
        .collect()
}

#[test]
fn tracks_are_split_at_gaps_with_their_stops_and_grid_coverage() {
    let env = template().env();
    let fc = run(
        &env,
        "trajectory",
        json!({"collection": "gps", "time_field": "at", "track_field": "inspector", "max_gap": 300,
               "stop_diameter": 20, "stop_duration": 300, "cells": "cells", "cover_distance": 15}),
    );
    let segments = of_kind(&fc, "segment", "张三");
    assert_eq!(segments.len(), 2, "split at the 20-minute gap");
    let east = segments[0];
    assert_eq!(east["properties"]["start"], START);
    assert_eq!(east["geometry"]["type"], "LineString");
    let length = east["properties"]["length_m"].as_f64().unwrap();
    // About 0.01° of longitude at 30.5°N (960 m), plus the GPS jitter during the stop.
    assert!((960.0..1200.0).contains(&length), "{length}");
    let stops = of_kind(&fc, "stop", "张三");
    assert_eq!(stops.len(), 1, "{stops:?}");
    let stop = stops[0];
    let duration = stop["properties"]["duration_s"].as_f64().unwrap();
    assert!((580.0..=620.0).contains(&duration), "a 10-minute stop: {stop}");
    assert!((stop["geometry"]["coordinates"][0].as_f64().unwrap() - 114.345).abs() < 0.0001, "{stop}");
    // The one standing still for an hour: one segment, one stop of the whole hour.
    let li = of_kind(&fc, "stop", "李四");
    assert_eq!(li.len(), 1);
    assert_eq!(li[0]["properties"]["duration_s"], 3590.0);
    // Coverage: the two cells on the way are covered, the two away are not.
    let cells = of_kind(&fc, "cell", "");
    let covered: Vec<&str> = cells
        .iter()
        .filter(|c| c["properties"]["covered"] == true)
        .map(|c| c["properties"]["cell"].as_str().unwrap())
        .collect();
    assert_eq!(covered, ["C1", "C2"]);
    assert_eq!(fc["summary"]["coverage"], 0.5);
    assert_eq!(fc["summary"]["stops"], 2);

    // Generalised tracks keep far fewer fixes.
    let simple = run(
        &env,
        "trajectory",
        json!({"collection": "gps", "time_field": "at", "track_field": "inspector", "simplify": 5}),
    );
    let line = &of_kind(&simple, "segment", "张三")[0]["geometry"]["coordinates"];
    assert!(line.as_array().unwrap().len() < 10, "{line}");
}

#[test]
fn overlay_areas_are_on_the_ellipsoid() {
    let env = template().env();
    let area = |x0: f64, y0: f64, x1: f64, y1: f64| {
        geodesic_area_m2(&[vec![vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]])
    };
    let overlap = area(114.345, 30.505, 114.350, 30.510);
    // Edges are geodesics between the vertices the result has (an edge split where outlines
    // cross bows less than the whole), so the expected shapes are written out vertex by vertex.
    let ring = |pts: &[(f64, f64)]| {
        let mut r: Vec<[f64; 2]> = pts.iter().map(|&(x, y)| [x, y]).collect();
        r.push(r[0]);
        geodesic_area_m2(&[vec![r]])
    };
    let a_minus_zone = ring(&[
        (114.34, 30.50),
        (114.35, 30.50),
        (114.35, 30.505),
        (114.345, 30.505),
        (114.345, 30.51),
        (114.34, 30.51),
    ]);
    let a_union_b = ring(&[
        (114.34, 30.50),
        (114.35, 30.50),
        (114.35, 30.505),
        (114.355, 30.505),
        (114.355, 30.515),
        (114.345, 30.515),
        (114.345, 30.51),
        (114.34, 30.51),
    ]);
    let close = |got: &Json, want: f64| {
        let got = got.as_f64().unwrap();
        assert!((got - want).abs() / want < 1e-6, "{got} vs {want}");
    };

    let fc = run(&env, "overlay", json!({"operation": "intersection", "collection": "parcels", "overlay": "zone"}));
    let ab = fc["features"].as_array().unwrap();
    let a_zone = ab.iter().find(|f| f["properties"]["source_code"] == "A").unwrap();
    close(&a_zone["properties"]["area_m2"], overlap);
    assert_eq!(a_zone["properties"]["overlay_code"], "Z");

    let fc = run(
        &env,
        "overlay",
        json!({"operation": "difference", "collection": "parcels", "overlay": "zone", "filter": "code = 'A'"}),
    );
    close(&fc["features"][0]["properties"]["area_m2"], a_minus_zone);

    let fc = run(&env, "overlay", json!({"operation": "union", "collection": "parcels", "filter": "owner = '甲'"}));
    close(&fc["summary"]["area_m2"], a_union_b);

    let fc = run(&env, "overlay", json!({"operation": "dissolve", "collection": "parcels", "dissolve_field": "owner"}));
    let keys: Vec<&str> =
        fc["features"].as_array().unwrap().iter().map(|f| f["properties"]["key"].as_str().unwrap()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    let jia = fc["features"].as_array().unwrap().iter().find(|f| f["properties"]["key"] == "甲").unwrap();
    close(&jia["properties"]["area_m2"], a_union_b);

    // A 100 m buffer of a point is the inscribed 32-gon of the geodesic circle.
    let fc = run(
        &env,
        "overlay",
        json!({"operation": "buffer", "collection": "gps", "distance": 100, "filter": "code = '张三-0000'"}),
    );
    let n = 32.0_f64;
    let want = n / 2.0 * 100.0_f64.powi(2) * (2.0 * std::f64::consts::PI / n).sin();
    let got = fc["features"][0]["properties"]["area_m2"].as_f64().unwrap();
    assert!((got - want).abs() / want < 1e-4, "{got} vs {want}");
    assert_eq!(fc["features"][0]["properties"]["source_code"], "张三-0000");

    let r = env
        .post("/processes/overlay/execution")
        .token(&env.token("wang"))
        .json(&json!({"inputs": {"operation": "clip", "collection": "parcels"}}))
        .send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["input"], "overlay");
    let r = env
        .post("/processes/overlay/execution")
        .token(&env.token("wang"))
        .json(&json!({"inputs": {"operation": "xor", "collection": "parcels"}}))
        .send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.json()["input"], "operation");
}
