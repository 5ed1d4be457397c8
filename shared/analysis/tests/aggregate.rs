//! Aggregation by division and by grid: areas against GeographicLib's PolygonArea (Python),
//! point-in-polygon against shapely, ISO weeks against Python's datetime — all in
//! `tests/fixtures/analysis/aggregate.json`, written by `make_aggregate_reference.py` — and
//! small cases computed by hand.

use serde_json::Value;
use shikong_analysis::AnalysisError;
use shikong_analysis::aggregate::{
    AggFeature, Division, PeriodSpec, Unit, When, aggregate_by_division, aggregate_by_grid, geodesic_area_m2,
    period_key,
};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/analysis/aggregate.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn point(v: &Value) -> [f64; 2] {
    [v[0].as_f64().unwrap_or(f64::NAN), v[1].as_f64().unwrap_or(f64::NAN)]
}

fn divisions(f: &Value) -> Vec<Division> {
    arr(&f["divisions"])
        .iter()
        .map(|d| Division {
            id: d["id"].as_str().unwrap_or_default().to_owned(),
            polygons: arr(&d["polygons"])
                .iter()
                .map(|rings| arr(rings).iter().map(|ring| arr(ring).iter().map(point).collect()).collect())
                .collect(),
            population: d["population"].as_f64(),
            area_m2: None,
        })
        .collect()
}

fn close(what: &str, got: f64, want: f64, tol: f64) {
    assert!((got - want).abs() <= tol * want.abs().max(1.0), "{what}: got {got}, reference {want}");
}

#[test]
fn areas_equal_geographiclib_polygon_area() {
    let f = fixture();
    let divs = divisions(&f);
    for (d, want) in divs.iter().zip(arr(&f["areas_m2"])) {
        let want = want.as_f64().unwrap_or(f64::NAN);
        close(&format!("area of {}", d.id), geodesic_area_m2(&d.polygons), want, 1e-12);
    }
    // the hole is subtracted: without it the area is larger by the hole's own area
    let mut no_hole = divs[0].polygons.clone();
    no_hole[0].truncate(1);
    let hole = vec![vec![divs[0].polygons[0][1].clone()]];
    close(
        "exterior = area + hole",
        geodesic_area_m2(&no_hole),
        geodesic_area_m2(&divs[0].polygons) + geodesic_area_m2(&hole),
        1e-12,
    );
}

#[test]
fn groups_equal_shapely_and_python_datetime() {
    let f = fixture();
    let divs = divisions(&f);
    let features: Vec<AggFeature> = arr(&f["features"])
        .iter()
        .map(|x| AggFeature {
            point: point(&x["point"]),
            class: x["class"].as_str().map(str::to_owned),
            when: When::Time(x["t"].as_i64().unwrap_or(0)),
            value: x["value"].as_f64(),
        })
        .collect();
    let got = aggregate_by_division(&features, &divs, Some(PeriodSpec::Week)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got.outside, f["outside"].as_u64().unwrap_or(0));
    assert_eq!(got.in_several, 0);
    let want = arr(&f["groups"]);
    assert_eq!(got.groups.len(), want.len(), "number of groups");
    for w in want {
        let unit = match w["division"].as_u64() {
            Some(d) => Unit::Division(d as usize),
            None => Unit::Outside,
        };
        let (class, period) = (w["class"].as_str(), w["period"].as_str());
        let g = got
            .groups
            .iter()
            .find(|g| g.unit == unit && g.class.as_deref() == class && g.period.as_deref() == period)
            .unwrap_or_else(|| panic!("no group {unit:?} {class:?} {period:?}"));
        let what = format!("{unit:?} {class:?} {period:?}");
        assert_eq!((g.count, g.nulls), (w["count"].as_u64().unwrap_or(0), w["nulls"].as_u64().unwrap_or(0)), "{what}");
        close(&format!("{what} sum"), g.sum, w["sum"].as_f64().unwrap_or(f64::NAN), 1e-12);
        assert_eq!(g.mean.is_some(), w["mean"].as_f64().is_some(), "{what} mean");
        if let (Some(a), Some(b)) = (g.mean, w["mean"].as_f64()) {
            close(&format!("{what} mean"), a, b, 1e-12);
        }
        for (name, got, want) in [
            ("per km²", g.count_per_km2, w["count_per_km2"].as_f64()),
            ("per 10k", g.count_per_10k_people, w["count_per_10k_people"].as_f64()),
        ] {
            match (got, want) {
                (Some(a), Some(b)) => close(&format!("{what} {name}"), a, b, 1e-12),
                (None, None) => {}
                _ => panic!("{what} {name}: {got:?} vs {want:?}"),
            }
        }
    }
    // the zero population gives no rate; the division without one neither
    assert_eq!(divs[3].population, Some(0.0));
    assert!(got.groups.iter().filter(|g| g.unit == Unit::Division(2)).all(|g| g.count_per_10k_people.is_none()));
    assert!(got.groups.iter().any(|g| g.unit == Unit::Division(2)), "the fixture puts points in division 2");
}

#[test]
fn period_keys_equal_python_datetime_in_beijing_time() {
    let f = fixture();
    for p in arr(&f["periods"]) {
        let t = p["t"].as_i64().unwrap_or(0);
        for (spec, name) in [
            (PeriodSpec::Day, "day"),
            (PeriodSpec::Week, "week"),
            (PeriodSpec::Month, "month"),
            (PeriodSpec::Year, "year"),
        ] {
            let got = period_key(t, spec).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(Some(got.as_str()), p[name].as_str(), "{name} of {t}");
        }
    }
    assert!(matches!(period_key(i64::MAX, PeriodSpec::Day), Err(AnalysisError::OutOfRange { .. })));
}

fn square(id: &str, x: f64, y: f64, side: f64) -> Division {
    Division {
        id: id.to_owned(),
        polygons: vec![vec![vec![[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]]],
        population: Some(20_000.0),
        area_m2: Some(4_000_000.0),
    }
}

fn feature(lon: f64, lat: f64, class: Option<&str>, value: Option<f64>) -> AggFeature {
    AggFeature { point: [lon, lat], class: class.map(str::to_owned), when: When::None, value }
}

#[test]
fn hand_computed_divisions_overlaps_and_outside() {
    // A and B overlap on [114.05, 114.1] × [30.0, 30.1]; C is apart.
    let divs = [square("A", 114.0, 30.0, 0.1), square("B", 114.05, 30.0, 0.1), square("C", 115.0, 30.0, 0.1)];
    let features = [
        feature(114.01, 30.05, Some("井盖"), Some(2.0)),
        feature(114.02, 30.05, Some("井盖"), None),
        feature(114.07, 30.05, Some("井盖"), Some(4.0)), // in A and B
        feature(114.12, 30.05, None, Some(1.5)),         // in B only
        feature(114.5, 30.5, Some("井盖"), Some(9.0)),   // outside
    ];
    let got = aggregate_by_division(&features, &divs, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((got.outside, got.in_several), (1, 1));
    assert_eq!(got.division_areas_m2, vec![4_000_000.0; 3]);
    let find = |unit: Unit, class: Option<&str>| {
        got.groups.iter().find(|g| g.unit == unit && g.class.as_deref() == class).unwrap_or_else(|| panic!("{unit:?}"))
    };
    let a = find(Unit::Division(0), Some("井盖"));
    assert_eq!((a.count, a.nulls, a.sum, a.mean), (3, 1, 6.0, Some(3.0)));
    assert_eq!(a.count_per_km2, Some(0.75));
    assert_eq!(a.count_per_10k_people, Some(1.5));
    assert_eq!(a.sum_per_km2, Some(1.5));
    let b = find(Unit::Division(1), Some("井盖"));
    assert_eq!((b.count, b.sum), (1, 4.0));
    let b_none = find(Unit::Division(1), None);
    assert_eq!((b_none.count, b_none.mean), (1, Some(1.5)));
    let out = find(Unit::Outside, Some("井盖"));
    assert_eq!((out.count, out.count_per_km2, out.area_m2), (1, None, None));
    assert_eq!(got.groups.len(), 4, "C has no group: {:?}", got.groups);
    // all nulls: no mean
    let only_null = [feature(114.01, 30.05, None, None)];
    let got = aggregate_by_division(&only_null, &divs, None).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((got.groups[0].count, got.groups[0].mean), (1, None));
}

#[test]
fn hand_computed_grid() {
    let features = [
        feature(114.4, 30.5, Some("a"), Some(1.0)),
        feature(114.4001, 30.5001, Some("a"), Some(3.0)),
        feature(114.4001, 30.5001, Some("b"), None),
        feature(114.42, 30.5, Some("a"), Some(5.0)),
    ];
    let got = aggregate_by_grid(&features, 1000.0, Some(114.4), None).unwrap_or_else(|e| panic!("{e}"));
    let grid = got.grid.unwrap_or_else(|| panic!("a grid"));
    let c0 = grid.cell_of([114.4, 30.5]);
    assert_eq!(grid.cell_of([114.4001, 30.5001]), c0, "11 m apart, in one 1 km cell");
    let c1 = grid.cell_of([114.42, 30.5]);
    assert_eq!(c1[0] - c0[0], 1, "1.9 km east of x = 0 (the central meridian): cell 1");
    let g = got.groups.iter().find(|g| g.unit == Unit::Cell(c0) && g.class.as_deref() == Some("a"));
    let g = g.unwrap_or_else(|| panic!("{:?}", got.groups));
    assert_eq!((g.count, g.sum, g.mean, g.area_m2, g.count_per_km2), (2, 4.0, Some(2.0), Some(1e6), Some(2.0)));
    assert_eq!(got.groups.len(), 3);
    assert!(got.groups.iter().all(|g| g.count_per_10k_people.is_none()));
}

#[test]
fn bad_input_is_named() {
    let d = [square("A", 114.0, 30.0, 0.1)];
    let timed = [AggFeature { point: [114.01, 30.01], when: When::Time(0), ..AggFeature::default() }];
    assert!(matches!(aggregate_by_division(&timed, &d, None), Err(AnalysisError::Invalid { index: 0, .. })));
    let long = [AggFeature { point: [114.01, 30.01], class: Some("类".repeat(201)), ..AggFeature::default() }];
    assert!(matches!(aggregate_by_division(&long, &d, None), Err(AnalysisError::Invalid { .. })));
    let fine = [AggFeature { point: [114.01, 30.01], class: Some("类".repeat(200)), ..AggFeature::default() }];
    assert!(aggregate_by_division(&fine, &d, None).is_ok(), "200 Chinese characters are 200, not 600 bytes");
    let twice = [square("A", 114.0, 30.0, 0.1), square("A", 115.0, 30.0, 0.1)];
    assert!(matches!(aggregate_by_division(&fine, &twice, None), Err(AnalysisError::Duplicate { .. })));
    let mut thin = square("T", 114.0, 30.0, 0.1);
    thin.polygons[0][0] = vec![[114.0, 30.0], [114.1, 30.0], [114.0, 30.0]];
    assert!(matches!(aggregate_by_division(&fine, &[thin], None), Err(AnalysisError::BadGeometry { index: 0, .. })));
    let nan = [feature(114.0, 30.0, None, Some(f64::INFINITY))];
    assert!(matches!(aggregate_by_division(&nan, &d, None), Err(AnalysisError::NotFinite { .. })));
    assert!(matches!(aggregate_by_grid(&fine, 0.1, None, None), Err(AnalysisError::OutOfRange { .. })));
}
