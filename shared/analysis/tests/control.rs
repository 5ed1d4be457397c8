//! Stopping long computations from outside: a [`Control`] that says stop makes every long
//! function return `Cancelled` (and nothing else), one that never says so changes no number, and
//! one that says so partway through the work stops it there.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use shikong_analysis::emerging::{CubeSpec, EmergingOptions, StPoint, Variable, emerging_hot_spots_with};
use shikong_analysis::getis::getis_ord_with;
use shikong_analysis::hdbscan::hdbscan_with;
use shikong_analysis::kde::{kde_at_with, kde_grid_with};
use shikong_analysis::moran::local_moran_with;
use shikong_analysis::{
    AnalysisError, Control, GiOptions, HdbscanOptions, LonLat, LonLatGrid, MoranOptions, Weights, getis_ord, hdbscan,
    kde_at, local_moran,
};

/// `n` points on a jittered lattice around Wuhan with values that cluster in one corner.
fn field(n: usize) -> (Vec<LonLat>, Vec<f64>) {
    let side = (n as f64).sqrt().ceil() as usize;
    let mut pts = Vec::with_capacity(n);
    let mut vals = Vec::with_capacity(n);
    for k in 0..n {
        let (i, j) = ((k % side) as f64, (k / side) as f64);
        let jitter = ((k * 7919) % 97) as f64 / 97.0 * 0.0002;
        pts.push([114.30 + i * 0.001 + jitter, 30.55 + j * 0.001 - jitter]);
        vals.push(
            1.0 + ((k * 31) % 11) as f64 + if i < side as f64 / 3.0 && j < side as f64 / 3.0 { 20.0 } else { 0.0 },
        );
    }
    (pts, vals)
}

fn st_points() -> (Vec<StPoint>, EmergingOptions) {
    const DAY: i64 = 86_400;
    const ORIGIN: i64 = 1_767_196_800;
    let mut pts = Vec::new();
    for k in 0..3_000i64 {
        let (i, j, d) = (k % 20, (k / 20) % 15, k % 6);
        pts.push(StPoint {
            lon: 114.30 + i as f64 * 0.002,
            lat: 30.55 + j as f64 * 0.002,
            t: ORIGIN + d * DAY + k,
            value: None,
        });
    }
    let opts = EmergingOptions {
        cube: CubeSpec {
            cell_m: 200.0,
            step_s: DAY,
            origin_s: ORIGIN,
            variable: Variable::Count,
            central_meridian: None,
        },
        neighbourhood_m: 400.0,
        neighbourhood_steps: 1,
        alpha: 0.05,
        fdr: false,
    };
    (pts, opts)
}

fn grid() -> LonLatGrid {
    LonLatGrid { west: 114.29, north: 30.62, dlon: 0.0005, dlat: 0.0005, width: 120, height: 120 }
}

#[test]
fn a_stopped_control_makes_every_long_function_return_cancelled() {
    let stopped = AtomicBool::new(true);
    let ctl = Control::flag(&stopped);
    let (pts, vals) = field(3_000);
    let w = Weights::knn(&pts, 8).unwrap();
    let cancelled = Err::<(), _>(AnalysisError::Cancelled);
    for perms in [0, 99] {
        let gi = GiOptions { permutations: perms, ..GiOptions::default() };
        assert_eq!(getis_ord_with(&vals, &w, &gi, &ctl).map(drop), cancelled, "Gi*, {perms} permutations");
        let mo = MoranOptions { permutations: perms, ..MoranOptions::default() };
        assert_eq!(local_moran_with(&vals, &w, &mo, &ctl).map(drop), cancelled, "local Moran, {perms} permutations");
    }
    let hd = HdbscanOptions { min_cluster_size: 10, ..HdbscanOptions::default() };
    assert_eq!(hdbscan_with(&pts, &hd, &ctl).map(drop), cancelled, "HDBSCAN");
    assert_eq!(kde_at_with(&pts, None, 300.0, &pts, &ctl).map(drop), cancelled, "kernel density at points");
    assert_eq!(kde_grid_with(&pts, Some(&vals), 300.0, &grid(), &ctl).map(drop), cancelled, "kernel density grid");
    let (st, opts) = st_points();
    assert_eq!(emerging_hot_spots_with(&st, &opts, &ctl).map(drop), cancelled, "emerging hot spots");
    // The error says what happened, for the job's status.
    assert_eq!(AnalysisError::Cancelled.to_string(), "the analysis was stopped before it finished");
}

#[test]
fn a_control_that_never_stops_changes_nothing() {
    let go = AtomicBool::new(false);
    let ctl = Control::flag(&go);
    let (pts, vals) = field(2_000);
    let w = Weights::knn(&pts, 6).unwrap();
    let gi = GiOptions { permutations: 49, seed: 7, ..GiOptions::default() };
    assert_eq!(getis_ord_with(&vals, &w, &gi, &ctl).unwrap(), getis_ord(&vals, &w, &gi).unwrap());
    let mo = MoranOptions { permutations: 49, seed: 7, ..MoranOptions::default() };
    assert_eq!(local_moran_with(&vals, &w, &mo, &ctl).unwrap(), local_moran(&vals, &w, &mo).unwrap());
    let hd = HdbscanOptions { min_cluster_size: 10, ..HdbscanOptions::default() };
    assert_eq!(hdbscan_with(&pts, &hd, &ctl).unwrap(), hdbscan(&pts, &hd).unwrap());
    assert_eq!(kde_at_with(&pts, None, 300.0, &pts, &ctl).unwrap(), kde_at(&pts, None, 300.0, &pts).unwrap());
    let (st, opts) = st_points();
    let result = emerging_hot_spots_with(&st, &opts, &Control::NONE).unwrap();
    assert_eq!(emerging_hot_spots_with(&st, &opts, &ctl).unwrap(), result);
}

/// A test that turns to "stop" after some checks stops the work partway: the permutations of
/// one unit are checked inside, so even a single unit with many draws stops.
#[test]
fn a_control_that_stops_partway_stops_the_work() {
    let calls = AtomicUsize::new(0);
    let after_three = || calls.fetch_add(1, Ordering::Relaxed) >= 3;
    let ctl = Control::test(&after_three);
    let (pts, vals) = field(1_500);
    let w = Weights::knn(&pts, 8).unwrap();
    let gi = GiOptions { permutations: 20_000, ..GiOptions::default() };
    assert_eq!(getis_ord_with(&vals, &w, &gi, &ctl).map(drop), Err(AnalysisError::Cancelled));
    // 1,500 units × 20,000 draws would ask about 30,000 times; it stopped within a few.
    let asked = calls.load(Ordering::Relaxed);
    assert!(asked < 1_000, "asked {asked} times");
}
