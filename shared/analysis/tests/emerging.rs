//! Emerging hot-spot analysis: the space-time Gi\* against the esda-verified `getis_ord` on
//! explicit space-time weights, every category from hand-built step states, and whole cubes whose
//! pattern is known by construction.

use shikong_analysis::emerging::{
    BinState, Category, Cube, CubeSpec, EmergingOptions, EmergingResult, LocationTrend, StPoint, Variable, classify,
    emerging_hot_spots,
};
use shikong_analysis::{AnalysisError, GiOptions, MannKendall, Weights, getis_ord, mann_kendall};

const DAY: i64 = 86_400;
/// 2026-01-01T00:00:00+08:00.
const ORIGIN: i64 = 1_767_196_800;

fn spec(cell_m: f64) -> CubeSpec {
    CubeSpec { cell_m, step_s: DAY, origin_s: ORIGIN, variable: Variable::Count, central_meridian: Some(114.4) }
}

/// Points at the centres of cells `(i, j)` of `grid`-metre cells of the grid of `spec`: `n` of
/// them on day `day`.
fn at_cell(cube_spec: &CubeSpec, cell: [i64; 2], day: i64, n: usize, out: &mut Vec<StPoint>) {
    let g = shikong_analysis::grid::Grid { central_meridian: 114.4, cell_m: cube_spec.cell_m };
    let c = g.cell_centre(cell);
    for k in 0..n {
        out.push(StPoint { lon: c[0], lat: c[1], t: ORIGIN + day * DAY + 60 * k as i64, value: None });
    }
}

fn base_cell() -> [i64; 2] {
    // a cell near 30.5°N on the central meridian: y = M(30.5°) ≈ 3,375 km
    let g = shikong_analysis::grid::Grid { central_meridian: 114.4, cell_m: 200.0 };
    g.cell_of([114.4, 30.5])
}

/// A 6 × 6 field of locations over `days` days with a background count that varies by place
/// and day, plus `extra(i, j, day)` points.
fn field(days: i64, extra: impl Fn(i64, i64, i64) -> usize) -> Vec<StPoint> {
    let s = spec(200.0);
    let b = base_cell();
    let mut pts = Vec::new();
    for i in 0..6 {
        for j in 0..6 {
            for d in 0..days {
                let background = 1 + ((i * 7 + j * 3 + d * 5) % 4) as usize;
                at_cell(&s, [b[0] + i, b[1] + j], d, background + extra(i, j, d), &mut pts);
            }
        }
    }
    pts
}

#[test]
fn space_time_gi_star_equals_getis_ord_on_explicit_weights() {
    let pts = field(5, |i, j, d| if (2..4).contains(&i) && (2..4).contains(&j) && d >= 3 { 6 } else { 0 });
    let cube = Cube::build(&pts, &spec(200.0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((cube.cells().len(), cube.steps()), (36, 5));
    for (metres, k) in [(200.0, 1usize), (300.0, 2), (450.0, 0), (200.0, 9)] {
        // Brute force from the definition: cells within `metres` on the grid, same step and the
        // k before, the focal bin excluded (Gi* adds it itself).
        let cells = cube.cells();
        let steps = cube.steps();
        let mut lists = vec![Vec::new(); cells.len() * steps];
        for (a, ca) in cells.iter().enumerate() {
            for (b, cb) in cells.iter().enumerate() {
                let d = 200.0 * (((ca[0] - cb[0]).pow(2) + (ca[1] - cb[1]).pow(2)) as f64).sqrt();
                if d > metres + 1e-6 {
                    continue;
                }
                for t in 0..steps {
                    for s in t.saturating_sub(k)..=t {
                        if (a, t) != (b, s) {
                            lists[cube.bin(a, t)].push(cube.bin(b, s));
                        }
                    }
                }
            }
        }
        let w = Weights::from_neighbours(&lists).unwrap_or_else(|e| panic!("{e}"));
        let want = getis_ord(cube.values(), &w, &GiOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        let got = cube.gi_star(metres, k).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), want.len());
        for (b, (g, w)) in got.iter().zip(&want).enumerate() {
            let (gz, wz) = (g.z.unwrap_or(f64::NAN), w.z.unwrap_or(f64::NAN));
            assert!((gz - wz).abs() <= 1e-9 * wz.abs().max(1.0), "{metres} m, k {k}, bin {b}: {gz} vs {wz}");
            assert!((g.g - w.g).abs() <= 1e-12, "G of bin {b}");
        }
    }
}

fn trend(z: f64, p: f64) -> MannKendall {
    MannKendall { s: 0.0, var_s: 1.0, z, p, tau: 0.0, slope: 0.0, intercept: 0.0 }
}

fn states(code: &str) -> Vec<BinState> {
    code.chars()
        .map(|c| match c {
            'H' => BinState::Hot,
            'C' => BinState::Cold,
            _ => BinState::NotSignificant,
        })
        .collect()
}

#[test]
fn every_category_from_hand_built_states() {
    let flat = trend(0.3, 0.7);
    let up = trend(3.0, 0.002);
    let down = trend(-3.0, 0.002);
    let cases = [
        ("..........", flat, Category::NoPattern),
        (".........H", flat, Category::NewHotSpot),
        ("......HHHH", flat, Category::ConsecutiveHotSpot),
        ("HHHHHHHHHH", up, Category::IntensifyingHotSpot),
        ("H.HHHHHHHH", flat, Category::PersistentHotSpot),
        ("HHHHHHHHHH", down, Category::DiminishingHotSpot),
        ("..H..H...H", flat, Category::SporadicHotSpot),
        ("...H....HH", flat, Category::SporadicHotSpot),
        ("CC......HH", flat, Category::OscillatingHotSpot),
        ("C........H", flat, Category::OscillatingHotSpot),
        ("HHHHHHHHH.", down, Category::HistoricalHotSpot),
        (".........C", flat, Category::NewColdSpot),
        ("........CC", flat, Category::ConsecutiveColdSpot),
        ("CCCCCCCCCC", down, Category::IntensifyingColdSpot),
        ("CCCCCCCCC.", flat, Category::HistoricalColdSpot),
        ("CCCCCCCCCC", flat, Category::PersistentColdSpot),
        ("CCCCCCCCCC", up, Category::DiminishingColdSpot),
        ("C.C.C....C", flat, Category::SporadicColdSpot),
        ("HHH.....CC", flat, Category::OscillatingColdSpot),
        // 8 of 10 hot is not 90 %, and a trend does not make a location intensifying without it
        ("..HHHHHHHH", up, Category::ConsecutiveHotSpot),
        // hot 90 % but the final step cold: oscillating cold (ArcGIS: hot history, cold now)
        ("HHHHHHHHHC", flat, Category::OscillatingColdSpot),
        // a trend with p above alpha is no trend
        ("HHHHHHHHHH", trend(1.5, 0.13), Category::PersistentHotSpot),
        ("", flat, Category::NoPattern),
    ];
    let mut seen = std::collections::BTreeSet::new();
    for (code, t, want) in cases {
        assert_eq!(classify(&states(code), &t, 0.05), want, "{code}");
        seen.insert(want);
    }
    assert_eq!(seen.len(), Category::ALL.len(), "every category is hit");
    for c in Category::ALL {
        assert_eq!(Category::parse(c.as_str()), Some(c));
        assert!(!c.label_zh().is_empty());
    }
    assert_eq!(Category::NewHotSpot.label_zh(), "新热点");
    assert_eq!(Category::IntensifyingColdSpot.as_str(), "intensifying_cold_spot");
}

fn opts(fdr: bool) -> EmergingOptions {
    EmergingOptions { cube: spec(200.0), neighbourhood_m: 300.0, neighbourhood_steps: 1, alpha: 0.05, fdr }
}

fn location(r: &EmergingResult, i: i64, j: i64) -> &LocationTrend {
    let b = base_cell();
    r.locations.iter().find(|l| l.cell == [b[0] + i, b[1] + j]).unwrap_or_else(|| panic!("no location {i},{j}"))
}

#[test]
fn a_cluster_appearing_on_the_last_day_is_a_new_hot_spot() {
    let days = 10;
    let pts = field(days, |i, j, d| if (2..4).contains(&i) && (2..4).contains(&j) && d == days - 1 { 12 } else { 0 });
    let r = emerging_hot_spots(&pts, &opts(false)).unwrap_or_else(|e| panic!("{e}"));
    let l = location(&r, 2, 2);
    assert_eq!(l.category, Category::NewHotSpot, "{:?}", l.states);
    assert_eq!(l.values.len(), 10);
    assert_eq!(l.states[9], BinState::Hot);
    // far corner: not part of it
    assert_ne!(location(&r, 0, 5).category, Category::NewHotSpot);
    assert_eq!(r.cube.step_start(0), ORIGIN);
    assert_eq!(r.cube.step_start(9), ORIGIN + 9 * DAY);
}

#[test]
fn a_cluster_growing_every_day_is_an_intensifying_hot_spot_and_its_counts_rise() {
    let days = 20;
    let pts = field(days, |i, j, d| if (2..4).contains(&i) && (2..4).contains(&j) { 60 + d as usize } else { 0 });
    let r = emerging_hot_spots(&pts, &opts(true)).unwrap_or_else(|e| panic!("{e}"));
    let l = location(&r, 2, 3);
    // the first step has no earlier step in its neighbourhood, so a weaker z; 90 % is 18 of 20
    let hot = l.states.iter().filter(|&&s| s == BinState::Hot).count();
    assert!(hot >= 18 && l.states[19] == BinState::Hot, "{:?}", l.states);
    assert!(l.value_trend.z > 0.0 && l.value_trend.p < 0.05);
    assert_eq!(l.category, Category::IntensifyingHotSpot, "z trend {:?}", l.z_trend);
    let want =
        mann_kendall(&l.z.iter().map(|z| z.unwrap_or(0.0)).collect::<Vec<_>>()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(l.z_trend, want);
    let tally: usize = r.tally().iter().map(|(_, n)| n).sum();
    assert_eq!(tally, 36);
}

#[test]
fn a_cluster_that_ended_is_historical_and_a_steady_one_persistent() {
    let days = 20;
    let pts = field(days, |i, j, d| {
        let old = (0..2).contains(&i) && (0..2).contains(&j) && d < days - 1;
        let steady = (4..6).contains(&i) && (4..6).contains(&j);
        if old || steady { 10 } else { 0 }
    });
    let r = emerging_hot_spots(&pts, &opts(false)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(location(&r, 0, 0).category, Category::HistoricalHotSpot, "{:?}", location(&r, 0, 0).states);
    let steady = location(&r, 5, 5);
    assert_eq!(steady.category, Category::PersistentHotSpot, "{:?} {:?}", steady.states, steady.z_trend);
}

#[test]
fn bounds_and_bad_input_are_named() {
    let pts = field(3, |_, _, _| 0);
    let mut o = opts(false);
    o.cube.step_s = 0;
    assert!(matches!(emerging_hot_spots(&pts, &o), Err(AnalysisError::OutOfRange { .. })));
    let mut o = opts(false);
    o.cube.step_s = 1;
    assert!(matches!(emerging_hot_spots(&pts, &o), Err(AnalysisError::TooMany { limit: "MAX_STEPS", .. })));
    let mut o = opts(false);
    o.cube.variable = Variable::Sum;
    assert!(matches!(emerging_hot_spots(&pts, &o), Err(AnalysisError::Invalid { index: 0, .. })));
    let one_day: Vec<StPoint> = pts.iter().filter(|p| p.t < ORIGIN + DAY).copied().collect();
    assert!(matches!(emerging_hot_spots(&one_day, &opts(false)), Err(AnalysisError::Degenerate { .. })));
    let mut o = opts(false);
    o.neighbourhood_m = f64::NAN;
    assert!(matches!(emerging_hot_spots(&pts, &o), Err(AnalysisError::OutOfRange { .. })));
    let mut o = opts(false);
    o.cube.cell_m = 1.0;
    o.neighbourhood_m = 400_000.0;
    // 36 locations but a stencil of 800,001² cells: compared pairwise instead, which is small
    assert!(emerging_hot_spots(&pts, &o).is_ok());
}

#[test]
fn a_shrinking_cluster_diminishes_and_an_empty_corner_is_a_persistent_cold_spot() {
    let days = 20;
    let pts = field(days, |i, j, d| {
        if (2..4).contains(&i) && (2..4).contains(&j) {
            80 - d as usize
        } else if i < 2 && j < 2 {
            0
        } else {
            20
        }
    });
    let r = emerging_hot_spots(&pts, &opts(false)).unwrap_or_else(|e| panic!("{e}"));
    let hot = location(&r, 3, 2);
    assert!(hot.value_trend.z < 0.0 && hot.value_trend.p < 0.05);
    assert_eq!(hot.category, Category::DiminishingHotSpot, "{:?} {:?}", hot.states, hot.z_trend);
    let cold = location(&r, 0, 0);
    assert_eq!(cold.category, Category::PersistentColdSpot, "{:?} {:?}", cold.states, cold.z_trend);
    assert!(cold.z.iter().all(|z| z.is_some_and(|z| z < 0.0)));
}
