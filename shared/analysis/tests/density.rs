//! HDBSCAN and kernel density against the reference numbers of
//! `tests/fixtures/analysis/make_density_reference.py` (2000 points in 洪山区, Wuhan): the
//! `hdbscan` package on a precomputed matrix of geographiclib geodesics, a brute-force quartic
//! kernel sum over geographiclib distances, and ArcGIS's Silverman radius in numpy. No Python
//! runs here.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::Value;
use shikong_analysis::kde::{LonLatGrid, kde_grid, silverman_bandwidth};
use shikong_analysis::{ClusterSelection, HdbscanOptions, NOISE, hdbscan};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/analysis/density.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_f64().unwrap_or(f64::NAN)).collect()
}

fn points(v: &Value) -> Vec<[f64; 2]> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array"))
        .iter()
        .map(|p| [p[0].as_f64().unwrap_or(f64::NAN), p[1].as_f64().unwrap_or(f64::NAN)])
        .collect()
}

fn labels(v: &Value) -> Vec<i32> {
    floats(v).into_iter().map(|x| x as i32).collect()
}

/// The adjusted Rand index (Hubert and Arabie) of two labellings, noise counted as a label of
/// its own, as scikit-learn's `adjusted_rand_score` on raw labels.
fn ari(a: &[i32], b: &[i32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let pairs = |x: u64| (x * x.saturating_sub(1) / 2) as f64;
    let mut table: HashMap<(i32, i32), u64> = HashMap::new();
    let (mut rows, mut cols): (HashMap<i32, u64>, HashMap<i32, u64>) = (HashMap::new(), HashMap::new());
    for (&x, &y) in a.iter().zip(b) {
        *table.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let index: f64 = table.values().map(|&v| pairs(v)).sum();
    let (ra, cb): (f64, f64) = (rows.values().map(|&v| pairs(v)).sum(), cols.values().map(|&v| pairs(v)).sum());
    let expected = ra * cb / pairs(a.len() as u64);
    let max = 0.5 * (ra + cb);
    if max == expected { 1.0 } else { (index - expected) / (max - expected) }
}

fn options(case: &Value) -> HdbscanOptions {
    HdbscanOptions {
        min_cluster_size: case["min_cluster_size"].as_u64().unwrap_or(0) as usize,
        min_samples: case["min_samples"].as_u64().map(|v| v as usize),
        selection: match case["selection"].as_str() {
            Some("leaf") => ClusterSelection::Leaf,
            _ => ClusterSelection::Eom,
        },
        allow_single_cluster: case["allow_single_cluster"].as_bool().unwrap_or(false),
    }
}

#[test]
fn ari_is_one_for_renamed_labels_and_low_for_unrelated_ones() {
    assert_eq!(ari(&[0, 0, 1, 1, -1], &[5, 5, 2, 2, 7]), 1.0);
    assert!(ari(&[0, 0, 0, 1, 1, 1], &[0, 1, 0, 1, 0, 1]) < 0.1);
}

#[test]
fn hdbscan_agrees_with_the_hdbscan_package() {
    let f = fixture();
    let pts = points(&f["points"]);
    for case in f["hdbscan"].as_array().unwrap_or_else(|| panic!("hdbscan cases")) {
        let opts = options(case);
        let got = hdbscan(&pts, &opts).unwrap_or_else(|e| panic!("{opts:?}: {e}"));
        let want = labels(&case["labels"]);
        let score = ari(&got.labels, &want);
        // our cluster -> the package's cluster most of its points are in (numbering may differ)
        let mut votes: HashMap<(i32, i32), usize> = HashMap::new();
        for (&g, &w) in got.labels.iter().zip(&want) {
            *votes.entry((g, w)).or_default() += 1;
        }
        let mut rename: HashMap<i32, (usize, i32)> = HashMap::new();
        for (&(g, w), &v) in &votes {
            let best = rename.entry(g).or_insert((v, w));
            if (v, w) > *best {
                *best = (v, w);
            }
        }
        let mapped: Vec<i32> = got.labels.iter().map(|g| rename[g].1).collect();
        let same = mapped.iter().zip(&want).filter(|(g, w)| g == w).count();
        let want_p = floats(&case["probabilities"]);
        let worst_p = got
            .probabilities
            .iter()
            .zip(&want_p)
            .zip(mapped.iter().zip(&want))
            .filter(|(_, (g, w))| g == w)
            .map(|((g, w), _)| (g - w).abs())
            .fold(0.0, f64::max);
        let clusters = want.iter().copied().max().unwrap_or(-1) + 1;
        println!(
            "{opts:?}: ARI {score:.6}, {same}/{} labels equal after renaming, {clusters} clusters, worst probability diff {worst_p:.1e}",
            want.len()
        );
        assert!(score >= 0.99, "{opts:?}: ARI {score}");
        assert!(clusters >= 2, "the fixture's case should have clusters");
        assert!(worst_p < 1e-9, "{opts:?}: probabilities differ by {worst_p}");
    }
}

#[test]
fn more_than_n_as_min_cluster_size_is_all_noise() {
    let pts = points(&fixture()["points"])[..50].to_vec();
    let r = hdbscan(&pts, &HdbscanOptions { min_cluster_size: 51, min_samples: Some(5), ..HdbscanOptions::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(r.labels.iter().all(|&l| l == NOISE));
    assert!(r.probabilities.iter().all(|&p| p == 0.0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]
    /// The clustering is a property of the point set: permuting the input permutes the labels
    /// (up to their numbering).
    #[test]
    fn labels_do_not_depend_on_the_order_of_the_points(seed in any::<u64>(), mcs in 5usize..30) {
        let pts = points(&fixture()["points"])[..600].to_vec();
        let mut order: Vec<usize> = (0..pts.len()).collect();
        fastrand::Rng::with_seed(seed).shuffle(&mut order);
        let shuffled: Vec<[f64; 2]> = order.iter().map(|&i| pts[i]).collect();
        let opts = HdbscanOptions { min_cluster_size: mcs, ..HdbscanOptions::default() };
        let a = hdbscan(&pts, &opts).unwrap_or_else(|e| panic!("{e}"));
        let b = hdbscan(&shuffled, &opts).unwrap_or_else(|e| panic!("{e}"));
        let a_in_b_order: Vec<i32> = order.iter().map(|&i| a.labels[i]).collect();
        prop_assert_eq!(ari(&a_in_b_order, &b.labels), 1.0);
        let noise_a: Vec<bool> = a_in_b_order.iter().map(|&l| l == NOISE).collect();
        let noise_b: Vec<bool> = b.labels.iter().map(|&l| l == NOISE).collect();
        prop_assert_eq!(noise_a, noise_b);
    }
}

fn assert_density(what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    let top = want.iter().copied().fold(0.0, f64::max);
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        // relative to the cell's own value; a cell whose density is a rounding-level sliver at
        // the kernel's edge is compared to the surface's scale
        let diff = (g - w).abs() / w.abs().max(top * 1e-6);
        worst = worst.max(diff);
        assert!(diff <= 1e-9, "{what} cell {i}: {g} vs {w}");
    }
    println!("{what}: largest relative difference {worst:.1e}, top {top:.3e} per m²");
}

#[test]
fn kernel_density_equals_brute_force_geographiclib() {
    let f = fixture();
    let pts = points(&f["points"]);
    let w = floats(&f["weights"]);
    let g = &f["grid"];
    let grid = LonLatGrid {
        west: g["west"].as_f64().unwrap_or(f64::NAN),
        north: g["north"].as_f64().unwrap_or(f64::NAN),
        dlon: g["dlon"].as_f64().unwrap_or(f64::NAN),
        dlat: g["dlat"].as_f64().unwrap_or(f64::NAN),
        width: g["width"].as_u64().unwrap_or(0) as usize,
        height: g["height"].as_u64().unwrap_or(0) as usize,
    };
    for case in f["kde"].as_array().unwrap_or_else(|| panic!("kde cases")) {
        let h = case["bandwidth_m"].as_f64().unwrap_or(f64::NAN);
        let weighted = case["weighted"].as_bool().unwrap_or(false);
        let got = kde_grid(&pts, weighted.then_some(&w[..]), h, &grid).unwrap_or_else(|e| panic!("{e}"));
        assert_density(&format!("kde h={h} weighted={weighted}"), &got, &floats(&case["density"]));
    }
}

#[test]
fn silverman_radius_equals_arcgis_formula_in_numpy() {
    let f = fixture();
    let pts = points(&f["points"]);
    let w = floats(&f["weights"]);
    for (got, key) in [
        (silverman_bandwidth(&pts, None), "silverman_m"),
        (silverman_bandwidth(&pts, Some(&w)), "silverman_weighted_m"),
    ] {
        let got = got.unwrap_or_else(|e| panic!("{e}"));
        let want = f[key].as_f64().unwrap_or(f64::NAN);
        println!("{key}: {got} vs {want}");
        assert!((got - want).abs() <= 1e-9 * want, "{key}: {got} vs {want}");
    }
}

/// Blobs over a background, as the Python generator makes them, `n` points in 洪山区.
fn synthetic(n: usize, seed: u64) -> Vec<[f64; 2]> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut normal = || {
        let (u, v) = (rng.f64().max(1e-300), rng.f64());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let blobs = [(114.35, 30.49, 0.0015), (114.37, 30.53, 0.0035), (114.40, 30.50, 0.0008), (114.42, 30.545, 0.0025)];
    let mut pts = Vec::with_capacity(n);
    for i in 0..n {
        if i % 5 == 4 {
            let (x, y) = (normal(), normal());
            pts.push([114.33 + 0.12 * x.abs().fract(), 30.47 + 0.09 * y.abs().fract()]);
        } else {
            let (cx, cy, s) = blobs[i % 4];
            pts.push([cx + s * normal(), cy + s * 0.87 * normal()]);
        }
    }
    pts
}

/// Timing on 100k points (prints; no threshold): `cargo test --release -p shikong-analysis
/// --test density -- --ignored --nocapture`. With `SHIKONG_DENSITY_POINTS` naming the file that
/// `make_density_reference.py --timing N FILE` wrote, it runs on those points and prints the
/// ARI against the package's labels there (euclidean on earth-centred coordinates with the exact
/// spanning tree: geodesic clustering to about 1e-9, up to ties).
#[test]
#[ignore]
fn timing_hdbscan_on_100k_points() {
    let (pts, want, mcs) = match std::env::var("SHIKONG_DENSITY_POINTS") {
        Ok(path) => {
            let v: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
                    .unwrap_or_else(|e| panic!("{path}: {e}"));
            println!("python hdbscan: {} s", v["python_seconds"]);
            (points(&v["points"]), Some(labels(&v["labels"])), v["min_cluster_size"].as_u64().unwrap_or(50) as usize)
        }
        Err(_) => (synthetic(100_000, 3), None, 50),
    };
    let opts = HdbscanOptions { min_cluster_size: mcs, ..HdbscanOptions::default() };
    let t = std::time::Instant::now();
    let r = hdbscan(&pts, &opts).unwrap_or_else(|e| panic!("{e}"));
    let took = t.elapsed();
    let clusters = r.labels.iter().copied().max().unwrap_or(-1) + 1;
    let noise = r.labels.iter().filter(|&&l| l == NOISE).count();
    println!("hdbscan n={} mcs={mcs}: {took:?}, {clusters} clusters, {noise} noise", pts.len());
    if let Some(want) = want {
        println!(
            "ARI against the package (euclidean on earth-centred coordinates, exact tree): {:.6}",
            ari(&r.labels, &want)
        );
    }
    if pts.len() > 200_000 {
        return; // the kernel density timing is for 100k points
    }
    let t = std::time::Instant::now();
    let h = silverman_bandwidth(&pts, None).unwrap_or_else(|e| panic!("{e}"));
    let grid =
        LonLatGrid { west: 114.33, north: 30.56, dlon: 0.12 / 512.0, dlat: 0.09 / 512.0, width: 512, height: 512 };
    let d = kde_grid(&pts, None, h, &grid).unwrap_or_else(|e| panic!("{e}"));
    println!("kde 512x512 cells, h = {h:.1} m: {:?}, max {:.3e}", t.elapsed(), d.iter().copied().fold(0.0, f64::max));
}

/// Many incidents at one address: coincident points are clustered (at distance 0) without the
/// searches visiting every twin, which would make this quadratic.
#[test]
fn stacks_of_coincident_points_cluster_quickly() {
    let mut pts = Vec::new();
    for (s, centre) in [[114.35, 30.49], [114.40, 30.50], [114.44, 30.48]].iter().enumerate() {
        pts.extend(std::iter::repeat_n(*centre, 4000 * (s + 1)));
    }
    pts.extend(synthetic(2000, 9));
    let r = hdbscan(&pts, &HdbscanOptions { min_cluster_size: 20, ..HdbscanOptions::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    let mut start = 0;
    for s in 0..3 {
        let stack = &r.labels[start..start + 4000 * (s + 1)];
        assert!(stack[0] != NOISE && stack.iter().all(|&l| l == stack[0]), "stack {s} is one cluster");
        assert!(r.probabilities[start..start + 4000 * (s + 1)].iter().all(|&p| p == 1.0));
        start += 4000 * (s + 1);
    }
}
