//! The trajectory module against MovingPandas 0.23 (gap splitting, speeds, length, stops,
//! MinTimeDeltaGeneralizer) and GEOS (Douglas-Peucker, grid coverage) on a synthetic inspector's track in
//! 洪山区 written by `tests/fixtures/analysis/make_trajectory_reference.py`; then properties and
//! bounds. No Python runs here.

use serde_json::Value;
use shikong_analysis::trajectory::coverage::{Cells, GridSpec, coverage};
use shikong_analysis::trajectory::generalise::{douglas_peucker, min_time_delta};
use shikong_analysis::trajectory::limits::MAX_CELLS;
use shikong_analysis::trajectory::{segment_stats, split, stops};
use shikong_analysis::{AnalysisError, Fix, GapRule, Track};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/analysis/trajectory.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn arr(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}"))
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn fixes(f: &Value) -> Vec<Fix> {
    arr(&f["fixes"]).iter().map(|p| Fix::new(num(&p[0]), num(&p[1]), num(&p[2]))).collect()
}

fn track(f: &Value) -> Track {
    Track::new(fixes(f)).unwrap_or_else(|e| panic!("{e}"))
}

fn ok<T>(r: Result<T, AnalysisError>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

fn assert_rel(what: &str, got: f64, want: f64, tol: f64) {
    let diff = (got - want).abs() / want.abs().max(1e-6);
    assert!(diff <= tol, "{what}: got {got}, MovingPandas {want}, relative difference {diff:e}");
}

#[test]
fn gap_splits_and_segment_lengths_equal_observation_gap_splitter() {
    let f = fixture();
    let t = track(&f);
    let parts = ok(split(&t, &GapRule { max_gap_s: num(&f["gap_s"]), max_jump_m: None }));
    // MovingPandas drops one-fix segments; ours are kept (and counted here)
    let kept: Vec<_> = parts.iter().filter(|r| r.len() > 1).collect();
    let want = arr(&f["segments"]);
    assert_eq!(kept.len(), want.len(), "segments");
    for (r, w) in kept.iter().zip(want) {
        let fx = &t.fixes()[(*r).clone()];
        assert_eq!((fx[0].t, fx[fx.len() - 1].t, fx.len() as f64), (num(&w["start"]), num(&w["end"]), num(&w["n"])));
        let stats = ok(segment_stats(&t, (*r).clone()));
        assert_rel("segment length", stats.length_m, num(&w["length"]), 1e-6);
    }
    assert_eq!(
        parts.iter().cloned().flatten().collect::<Vec<_>>(),
        (0..t.len()).collect::<Vec<_>>(),
        "the segments concatenated are the track"
    );
}

#[test]
fn speeds_and_length_equal_add_speed_and_get_length() {
    let f = fixture();
    let t = track(&f);
    let stats = ok(segment_stats(&t, t.all()));
    let want: Vec<f64> = arr(&f["speeds"]).iter().map(num).collect();
    assert_eq!(stats.speeds.len(), want.len());
    // Karney on CGCS2000 here, on WGS84 in geopy: the worst is ~2e-9 relative, at sub-metre steps
    let mut worst = 0.0f64;
    for (i, (g, w)) in stats.speeds.iter().zip(&want).enumerate() {
        assert_rel(&format!("speed of fix {i}"), *g, *w, 1e-6);
        worst = worst.max((g - w).abs() / w.abs().max(1e-6));
    }
    println!("speeds: largest relative difference {worst:.1e}");
    assert_rel("length", stats.length_m, num(&f["length"]), 1e-6);
    println!("length: {} m, MovingPandas {} m", stats.length_m, num(&f["length"]));
    assert_rel("max speed", stats.max_speed, want.iter().copied().fold(0.0, f64::max), 1e-6);
    assert_rel("mean speed", stats.mean_speed, stats.length_m / stats.duration_s, 1e-15);
}

#[test]
fn stops_equal_trajectory_stop_detector() {
    let f = fixture();
    let t = track(&f);
    let mut total = 0;
    for case in arr(&f["stop_cases"]) {
        let (d, m) = (num(&case["max_diameter"]), num(&case["min_duration"]));
        let got = ok(stops(&t, t.all(), d, m));
        let want = arr(&case["stops"]);
        let times = |s: &shikong_analysis::trajectory::Stop| (s.start_t, s.end_t, (s.last - s.first + 1) as f64);
        let got_times: Vec<_> = got.iter().map(times).collect();
        let want_times: Vec<_> = want.iter().map(|w| (num(&w["start"]), num(&w["end"]), num(&w["n"]))).collect();
        assert_eq!(got_times, want_times, "stops for max_diameter {d} m, min_duration {m} s");
        for (g, w) in got.iter().zip(want) {
            assert_rel("stop median lon", g.lon, num(&w["lon"]), 1e-15);
            assert_rel("stop median lat", g.lat, num(&w["lat"]), 1e-15);
            assert_eq!(g.duration_s, g.end_t - g.start_t);
        }
        total += got.len();
    }
    assert!(total > 40, "the cases find stops ({total})");
}

#[test]
fn generalisers_equal_min_time_delta_and_geos_douglas_peucker() {
    let f = fixture();
    let t = track(&f);
    let kept = ok(min_time_delta(&t, t.all(), num(&f["min_time_delta_s"])));
    let times: Vec<f64> = kept.iter().map(|&i| t.fixes()[i].t).collect();
    let want: Vec<f64> = arr(&f["min_time_delta_times"]).iter().map(num).collect();
    assert_eq!(times, want);
    for case in arr(&f["douglas_peucker"]) {
        let tol = num(&case["tolerance_m"]);
        let want: Vec<usize> = arr(&case["kept"]).iter().map(|v| num(v) as usize).collect();
        let got = ok(douglas_peucker(&t, t.all(), tol));
        assert_eq!(got, want, "Douglas-Peucker kept fixes at {tol} m");
        assert!(got.len() < t.len() / 2, "{tol} m removes most fixes ({} kept)", got.len());
    }
}

#[test]
fn grid_coverage_equals_shapely_distances_in_the_same_plane() {
    let f = fixture();
    let t = track(&f);
    let c = &f["coverage"];
    let g = &c["grid"];
    let grid = GridSpec {
        lon0: num(&g["lon0"]),
        lat0: num(&g["lat0"]),
        dlon: num(&g["dlon"]),
        dlat: num(&g["dlat"]),
        nx: num(&g["nx"]) as usize,
        ny: num(&g["ny"]) as usize,
    };
    let parts = ok(split(&t, &GapRule { max_gap_s: num(&c["gap_s"]), max_jump_m: None }));
    for case in arr(&c["cases"]) {
        let buffer = num(&case["buffer_m"]);
        let got = ok(coverage(&Cells::Grid(grid), &t, &parts, buffer));
        let want: Vec<usize> = arr(&case["covered"]).iter().map(|v| num(v) as usize).collect();
        let covered: Vec<usize> = (0..got.covered.len()).filter(|&i| got.covered[i]).collect();
        assert_eq!(covered, want, "cells covered within {buffer} m");
        assert_eq!(got.uncovered.len() + want.len(), grid.nx * grid.ny);
    }
}

#[test]
fn order_and_duplicate_times_are_normalised() {
    let f = fixture();
    let mut input = fixes(&f);
    let sorted = input.clone();
    // reverse, interleave, and repeat some times with other positions after the originals
    input.reverse();
    let dups: Vec<Fix> = sorted.iter().step_by(97).map(|x| Fix::new(x.lon + 0.001, x.lat, x.t)).collect();
    input.extend(&dups);
    let t = ok(Track::new(input));
    assert_eq!(t.dropped_duplicates(), dups.len());
    // the first in input order is kept: the reversed originals came before the duplicates
    assert_eq!(t.fixes(), &sorted[..]);
}

#[test]
fn a_stationary_track_is_one_stop_and_a_straight_walk_none() {
    let still: Vec<Fix> = (0..600).map(|i| Fix::new(114.37, 30.52, 1.78e9 + i as f64 * 5.0)).collect();
    let t = ok(Track::new(still));
    let s = ok(stops(&t, t.all(), 10.0, 60.0));
    assert_eq!(s.len(), 1);
    assert_eq!((s[0].first, s[0].last), (0, 599));
    assert_eq!((s[0].lon, s[0].lat), (114.37, 30.52));
    // 1.4 m/s due east: never 10 m across for 60 s
    let walk: Vec<Fix> =
        (0..600).map(|i| Fix::new(114.37 + i as f64 * 7.0 / 95_990.0, 30.52, i as f64 * 5.0)).collect();
    let t = ok(Track::new(walk));
    assert!(ok(stops(&t, t.all(), 10.0, 60.0)).is_empty());
    // stops of a sub-range are numbered in the track
    let s = ok(stops(&t, 100..200, 1000.0, 60.0));
    assert_eq!((s[0].first, s[s.len() - 1].last), (100, 199));
}

#[test]
fn a_jump_splits_and_min_time_delta_keeps_the_ends() {
    let mut fx: Vec<Fix> = (0..10).map(|i| Fix::new(114.37 + i as f64 * 1e-5, 30.52, i as f64)).collect();
    fx.push(Fix::new(114.40, 30.52, 10.0)); // 3 km in a second
    let t = ok(Track::new(fx));
    let parts = ok(split(&t, &GapRule { max_gap_s: 60.0, max_jump_m: Some(500.0) }));
    assert_eq!(parts, vec![0..10, 10..11]);
    assert_eq!(ok(segment_stats(&t, 10..11)).speeds, vec![0.0]);
    assert_eq!(ok(min_time_delta(&t, 0..10, 4.0)), vec![0, 4, 8, 9]);
    assert_eq!(ok(min_time_delta(&t, 0..10, 0.0)), (0..10).collect::<Vec<_>>());
}

fn grid() -> GridSpec {
    // 10 x 10 cells of about 96 m x 111 m
    GridSpec { lon0: 114.37, lat0: 30.52, dlon: 0.001, dlat: 0.001, nx: 10, ny: 10 }
}

#[test]
fn coverage_counts_cells_crossed_between_fixes_and_within_the_buffer() {
    // two fixes: west of the grid and east of it, along the middle of row 4
    let y = 30.52 + 0.0045;
    let t = ok(Track::new(vec![Fix::new(114.369, y, 0.0), Fix::new(114.381, y, 600.0)]));
    let c = ok(coverage(&Cells::Grid(grid()), &t, &[t.all()], 0.0));
    let row4: Vec<usize> = (40..50).collect();
    assert_eq!(c.covered_count, 10);
    assert!(row4.iter().all(|&i| c.covered[i]), "every cell of row 4 is crossed with no fix inside");
    assert_eq!(c.uncovered.len(), 90);
    assert!((c.fraction - 0.1).abs() < 1e-15);
    // 60 m reaches rows 3 and 5 (the line is ~55 m from them), not 2 and 6
    let c = ok(coverage(&Cells::Grid(grid()), &t, &[t.all()], 60.0));
    assert_eq!(c.covered_count, 30);
    // polygons: the same cells as rings, the result is the same
    let g = grid();
    let rings: Vec<Vec<[f64; 2]>> = (0..100)
        .map(|i| {
            let (c, r) = ((i % 10) as f64, (i / 10) as f64);
            let (x, y) = (g.lon0 + c * g.dlon, g.lat0 + r * g.dlat);
            vec![[x, y], [x + g.dlon, y], [x + g.dlon, y + g.dlat], [x, y + g.dlat], [x, y]]
        })
        .collect();
    assert_eq!(ok(coverage(&Cells::Polygons(rings), &t, &[t.all()], 60.0)).covered, c.covered);
    // a gap is not a leg: the same two fixes as two segments cover only their (outside) points
    let c = ok(coverage(&Cells::Grid(grid()), &t, &[0..1, 1..2], 0.0));
    assert_eq!(c.covered_count, 0);
}

#[test]
fn bounds_are_refused_with_their_names() {
    let t = ok(Track::new(vec![Fix::new(114.37, 30.52, 0.0), Fix::new(114.371, 30.52, 10.0)]));
    let err = |e: AnalysisError| e.to_string();
    assert!(err(Track::new(vec![]).unwrap_err()).contains("fixes is empty"));
    assert!(err(Track::new(vec![Fix::new(114.0, 30.0, f64::NAN)]).unwrap_err()).contains("time of fix 0"));
    assert!(err(Track::new(vec![Fix::new(114.0, 91.0, 0.0)]).unwrap_err()).contains("latitude 91"));
    let many = vec![Fix::new(114.0, 30.0, 0.0); shikong_analysis::limits::MAX_POINTS + 1];
    assert!(err(Track::new(many).unwrap_err()).contains("MAX_POINTS"));
    assert!(err(stops(&t, t.all(), 0.0, 60.0).unwrap_err()).contains("MIN_DISTANCE_M"));
    assert!(err(stops(&t, t.all(), 20.0, 0.0).unwrap_err()).contains("min_duration_s"));
    assert!(err(stops(&t, 1..5, 20.0, 60.0).unwrap_err()).contains("segment"));
    assert!(err(split(&t, &GapRule { max_gap_s: 2e9, max_jump_m: None }).unwrap_err()).contains("MAX_DURATION_S"));
    assert!(err(douglas_peucker(&t, t.all(), f64::INFINITY).unwrap_err()).contains("tolerance_m"));
    let big = GridSpec { nx: 2000, ny: 1000, ..grid() };
    assert!(err(coverage(&Cells::Grid(big), &t, &[t.all()], 0.0).unwrap_err()).contains("MAX_CELLS"));
    assert_eq!(MAX_CELLS, 1_000_000);
    assert!(err(coverage(&Cells::Grid(grid()), &t, &[t.all()], 1e5).unwrap_err()).contains("MAX_BUFFER_M"));
    let far = GridSpec { lon0: 120.0, ..grid() };
    assert!(err(coverage(&Cells::Grid(far), &t, &[t.all()], 0.0).unwrap_err()).contains("MAX_LOCAL_EXTENT_M"));
    let flat = Cells::Polygons(vec![vec![[114.37, 30.52], [114.38, 30.52], [114.37, 30.52]]]);
    assert!(err(coverage(&flat, &t, &[t.all()], 0.0).unwrap_err()).contains("3 distinct"));
}

/// Stop detection speed on the benchmark track of `make_trajectory_reference.py --bench N`
/// (default N = 1,000,000) and agreement with MovingPandas' stops on it:
/// `TRAJ_BENCH_N=100000 cargo test --release -p shikong-analysis --test trajectory -- --ignored --nocapture`
#[test]
#[ignore = "benchmark: needs /tmp/traj_bench_N.csv from the Python script; run in release"]
fn stop_detection_speed_on_a_bench_track() {
    let n = std::env::var("TRAJ_BENCH_N").unwrap_or_else(|_| "1000000".into());
    let path = format!("/tmp/traj_bench_{n}.csv");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let fx: Vec<Fix> = text
        .lines()
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap_or(f64::NAN)).collect();
            Fix::new(v[0], v[1], v[2])
        })
        .collect();
    let t = ok(Track::new(fx));
    let start = std::time::Instant::now();
    let got = ok(stops(&t, t.all(), 25.0, 120.0));
    let took = start.elapsed();
    println!("shikong stop detection on {} fixes: {:.3} s, {} stops", t.len(), took.as_secs_f64(), got.len());
    if let Ok(text) = std::fs::read_to_string(format!("/tmp/traj_bench_{n}_stops.json")) {
        let mp: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let want: Vec<(f64, f64)> = arr(&mp["stops"]).iter().map(|s| (num(&s[0]), num(&s[1]))).collect();
        let have: Vec<(f64, f64)> = got.iter().map(|s| (s.start_t, s.end_t)).collect();
        assert_eq!(have, want, "stops identical to MovingPandas'");
        let secs = num(&mp["seconds"]);
        println!("MovingPandas: {secs:.1} s, identical stops; {:.0}x", secs / took.as_secs_f64());
    }
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    /// Up to 300 fixes within a kilometre of 洪山区, time steps of 1 to 300 s.
    fn tracks() -> impl Strategy<Value = Vec<Fix>> {
        prop::collection::vec((-5e-4..5e-4f64, -5e-4..5e-4f64, 1u32..300, prop::bool::weighted(0.7)), 2..300).prop_map(
            |steps| {
                let (mut x, mut y, mut t) = (114.37, 30.52, 1.78e9);
                steps
                    .into_iter()
                    .map(|(dx, dy, dt, still)| {
                        if !still {
                            (x, y) = (x + dx, y + dy);
                        }
                        t += dt as f64;
                        Fix::new(x + dx * 0.01, y + dy * 0.01, t)
                    })
                    .collect()
            },
        )
    }

    /// Metres east and north of `o`, for checking (the module's plane is centred elsewhere, so
    /// the check allows 0.1%).
    fn en(o: &Fix, p: &Fix) -> [f64; 2] {
        [(p.lon - o.lon) * 95_990.0 * 1.0, (p.lat - o.lat) * 110_850.0]
    }

    fn seg_dist(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let len2 = dx * dx + dy * dy;
        let r = if len2 == 0.0 { 0.0 } else { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2).clamp(0.0, 1.0) };
        (p[0] - a[0] - r * dx).hypot(p[1] - a[1] - r * dy)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn splits_cover_the_track_and_stops_are_ordered_and_long_enough(
            fx in tracks(), gap in 10.0..400.0f64, d in 5.0..80.0f64, m in 10.0..600.0f64,
        ) {
            let t = ok(Track::new(fx));
            let parts = ok(split(&t, &GapRule { max_gap_s: gap, max_jump_m: Some(60.0) }));
            prop_assert_eq!(parts.iter().cloned().flatten().collect::<Vec<_>>(), (0..t.len()).collect::<Vec<_>>());
            for w in parts.windows(2) {
                let (a, b) = (&t.fixes()[w[0].end - 1], &t.fixes()[w[1].start]);
                let jump = shikong_analysis::geodesic_m(a.lon_lat(), b.lon_lat());
                prop_assert!(b.t - a.t > gap || jump > 60.0);
            }
            let s = ok(stops(&t, t.all(), d, m));
            for (i, st) in s.iter().enumerate() {
                prop_assert!(st.duration_s >= m && st.first < st.last);
                if i > 0 {
                    prop_assert!(s[i - 1].last < st.first);
                }
            }
        }

        #[test]
        fn douglas_peucker_drops_only_fixes_within_the_tolerance(fx in tracks(), tol in 1.0..100.0f64) {
            let t = ok(Track::new(fx));
            let kept = ok(douglas_peucker(&t, t.all(), tol));
            prop_assert_eq!(kept[0], 0);
            prop_assert_eq!(kept[kept.len() - 1], t.len() - 1);
            let f = t.fixes();
            for w in kept.windows(2) {
                let (a, b) = (en(&f[0], &f[w[0]]), en(&f[0], &f[w[1]]));
                for p in &f[w[0] + 1..w[1]] {
                    let d = seg_dist(en(&f[0], p), a, b);
                    prop_assert!(d <= tol * 1.001 + 1e-6, "dropped fix {} m from the line, tolerance {}", d, tol);
                }
            }
        }
    }
}
