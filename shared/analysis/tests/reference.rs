//! The statistics against the anchor libraries' own numbers: esda 2.9 (G_Local, Moran_Local, fdr),
//! scikit-learn (DBSCAN), pymannkendall, scipy (BH), and the neighbour lists against a brute-force
//! geodesic search in Python's geographiclib. `tests/fixtures/analysis/make_reference.py` wrote
//! the fixture (300 points in 洪山区, Wuhan); no Python runs here.

use serde_json::Value;
use shikong_analysis::{
    GiOptions, MoranOptions, Transform, Weights, WeightsSpec, bh_adjust, dbscan, fdr_cutoff, getis_ord, hotspot,
    local_moran, mann_kendall,
};

const TOL: f64 = 1e-9;

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/analysis/reference.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn floats(v: &Value) -> Vec<Option<f64>> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(Value::as_f64).collect()
}

fn points(f: &Value) -> Vec<[f64; 2]> {
    floats_2d(&f["points"])
}

fn floats_2d(v: &Value) -> Vec<[f64; 2]> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array"))
        .iter()
        .map(|p| [p[0].as_f64().unwrap_or(f64::NAN), p[1].as_f64().unwrap_or(f64::NAN)])
        .collect()
}

fn values(f: &Value) -> Vec<f64> {
    floats(&f["values"]).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect()
}

fn lists(v: &Value) -> Vec<Vec<usize>> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array"))
        .iter()
        .map(|l| floats(l).into_iter().map(|j| j.unwrap_or(-1.0) as usize).collect())
        .collect()
}

fn rows(w: &Weights) -> Vec<Vec<usize>> {
    (0..w.n()).map(|i| w.neighbours(i).iter().map(|&j| j as usize).collect()).collect()
}

/// Equal within TOL, relative to the larger of 1 and the expected magnitude; `None` (esda's NaN)
/// must match `None`.
fn assert_close(what: &str, got: &[Option<f64>], want: &[Option<f64>]) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    let mut worst = 0.0f64;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (Some(g), Some(w)) => {
                let diff = (g - w).abs() / w.abs().max(1.0);
                worst = worst.max(diff);
                assert!(diff <= TOL, "{what}[{i}]: got {g}, reference {w}, diff {}", g - w)
            }
            (None, None) => {}
            _ => panic!("{what}[{i}]: got {g:?}, reference {w:?}"),
        }
    }
    println!("{what}: largest difference {worst:.1e}");
}

#[test]
fn geodesic_neighbour_search_equals_brute_force_geographiclib() {
    let f = fixture();
    let pts = points(&f);
    let band = Weights::distance_band(&pts, f["band_m"].as_f64().unwrap_or(0.0)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows(&band), lists(&f["band_neighbours"]));
    let knn = Weights::knn(&pts, f["k"].as_u64().unwrap_or(0) as usize).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rows(&knn), lists(&f["knn_neighbours"]));
    assert_eq!(band.islands(), 13, "the fixture has islands, so their handling is compared too");
}

fn check_gi(f: &Value, key: &str, w: &Weights) {
    let y = values(f);
    for case in f[key].as_array().unwrap_or_else(|| panic!("{key}")) {
        let star = case["star"].as_bool().unwrap_or(false);
        let transform = match case["transform"].as_str() {
            Some("R") => Transform::Row,
            _ => Transform::Binary,
        };
        let what = format!("{key} star={star} {transform:?}");
        let got = getis_ord(&y, w, &GiOptions { star, transform, ..GiOptions::default() })
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_close(&format!("{what} G"), &got.iter().map(|r| Some(r.g)).collect::<Vec<_>>(), &floats(&case["g"]));
        assert_close(&format!("{what} z"), &got.iter().map(|r| r.z).collect::<Vec<_>>(), &floats(&case["z"]));
        assert_close(
            &format!("{what} p_norm"),
            &got.iter().map(|r| r.p_norm).collect::<Vec<_>>(),
            &floats(&case["p_norm"]),
        );
        if case.get("eg").is_some() {
            let (eg, vg) = (floats(&case["eg"]), floats(&case["vg"]));
            // esda's moments of islands are 0 (z is NaN); ours are too.
            assert_close(&format!("{what} EG"), &got.iter().map(|r| Some(r.expected)).collect::<Vec<_>>(), &eg);
            assert_close(&format!("{what} VG"), &got.iter().map(|r| Some(r.variance)).collect::<Vec<_>>(), &vg);
            let p2 = floats(&case["p_two_sided"]);
            assert_close(&format!("{what} p two-sided"), &got.iter().map(|r| r.p_two_sided).collect::<Vec<_>>(), &p2);
        }
    }
}

#[test]
fn getis_ord_equals_esda_g_local_on_band_and_knn_weights() {
    let f = fixture();
    check_gi(&f, "gi_band", &Weights::from_neighbours(&lists(&f["band_neighbours"])).unwrap_or_else(|e| panic!("{e}")));
    check_gi(&f, "gi_knn", &Weights::from_neighbours(&lists(&f["knn_neighbours"])).unwrap_or_else(|e| panic!("{e}")));
}

#[test]
fn hotspot_is_binary_gi_star_on_geodesic_weights() {
    let f = fixture();
    let (pts, y) = (points(&f), values(&f));
    let got = hotspot(&pts, &y, WeightsSpec::DistanceBand { metres: 800.0 }, true).unwrap_or_else(|e| panic!("{e}"));
    let case = &f["gi_band"][3];
    assert_eq!((case["star"].as_bool(), case["transform"].as_str()), (Some(true), Some("B")));
    assert_close("hotspot z", &got.iter().map(|r| r.z).collect::<Vec<_>>(), &floats(&case["z"]));
    let got = hotspot(&pts, &y, WeightsSpec::Knn { k: 6 }, false).unwrap_or_else(|e| panic!("{e}"));
    let case = &f["gi_knn"][1];
    assert_eq!((case["star"].as_bool(), case["transform"].as_str()), (Some(false), Some("B")));
    assert_close("hotspot knn z", &got.iter().map(|r| r.z).collect::<Vec<_>>(), &floats(&case["z"]));
}

fn check_moran(f: &Value, key: &str, w: &Weights) {
    let case = &f[key];
    let got = local_moran(&values(f), w, &MoranOptions::default()).unwrap_or_else(|e| panic!("{key}: {e}"));
    let col = |g: fn(&shikong_analysis::LocalMoranResult) -> f64| got.iter().map(|r| Some(g(r))).collect::<Vec<_>>();
    assert_close(&format!("{key} I"), &col(|r| r.i), &floats(&case["i"]));
    assert_close(&format!("{key} EI"), &col(|r| r.expected), &floats(&case["ei"]));
    assert_close(&format!("{key} VI"), &col(|r| r.variance), &floats(&case["vi"]));
    assert_close(&format!("{key} EIc"), &col(|r| r.expected_cond), &floats(&case["eic"]));
    assert_close(&format!("{key} VIc"), &col(|r| r.variance_cond), &floats(&case["vic"]));
    let q: Vec<Option<f64>> = got.iter().map(|r| Some(r.quadrant as i32 as f64)).collect();
    assert_eq!(q, floats(&case["q"]), "{key} quadrants");
    // The z-scores from esda's moments, as a user of esda computes them.
    let (i, ei, vi) = (floats(&case["i"]), floats(&case["ei"]), floats(&case["vi"]));
    let want: Vec<Option<f64>> = (0..i.len())
        .map(|u| match (i[u], ei[u], vi[u]) {
            (Some(i), Some(e), Some(v)) => Some((i - e) / v.sqrt()).filter(|z| z.is_finite()),
            _ => None,
        })
        .collect();
    assert_close(&format!("{key} z"), &got.iter().map(|r| r.z).collect::<Vec<_>>(), &want);
}

#[test]
fn local_moran_equals_esda_moran_local() {
    let f = fixture();
    check_moran(
        &f,
        "moran_band",
        &Weights::from_neighbours(&lists(&f["band_neighbours"])).unwrap_or_else(|e| panic!("{e}")),
    );
    check_moran(
        &f,
        "moran_knn",
        &Weights::from_neighbours(&lists(&f["knn_neighbours"])).unwrap_or_else(|e| panic!("{e}")),
    );
}

#[test]
fn dbscan_labels_equal_scikit_learn_numbering_included() {
    let f = fixture();
    let d = &f["dbscan"];
    let got = dbscan(&points(&f), d["eps_m"].as_f64().unwrap_or(0.0), d["min_samples"].as_u64().unwrap_or(0) as usize)
        .unwrap_or_else(|e| panic!("{e}"));
    let want: Vec<i32> = floats(&d["labels"]).into_iter().map(|v| v.unwrap_or(-9.0) as i32).collect();
    assert_eq!(got, want);
    assert!(want.contains(&4) && want.contains(&-1), "the fixture has 5 clusters and noise");
}

#[test]
fn mann_kendall_equals_pymannkendall() {
    let f = fixture();
    for case in f["mann_kendall"].as_array().unwrap_or_else(|| panic!("mann_kendall")) {
        let x: Vec<f64> = floats(&case["x"]).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
        let r = mann_kendall(&x).unwrap_or_else(|e| panic!("{e}"));
        let got = [r.s, r.var_s, r.z, r.p, r.tau, r.slope, r.intercept].map(Some);
        let want = ["s", "var_s", "z", "p", "tau", "slope", "intercept"].map(|k| case[k].as_f64());
        assert_close(&format!("mann-kendall {x:?}"), &got, &want);
    }
}

#[test]
fn fdr_equals_esda_and_scipy() {
    let f = fixture();
    let p: Vec<f64> = floats(&f["fdr"]["p"]).into_iter().map(|v| v.unwrap_or(f64::NAN)).collect();
    let cutoff = fdr_cutoff(&p, 0.05).unwrap_or_else(|e| panic!("{e}"));
    assert_close("esda fdr", &[Some(cutoff)], &[f["fdr"]["esda_cutoff"].as_f64()]);
    let adjusted: Vec<Option<f64>> = bh_adjust(&p).unwrap_or_else(|e| panic!("{e}")).into_iter().map(Some).collect();
    assert_close("bh", &adjusted, &floats(&f["fdr"]["bh_adjusted"]));
}

/// esda's pseudo p-values come from other random draws, so they are compared within Monte Carlo
/// error: each estimate has a standard error of at most √(0.25/999) ≈ 0.016, so two independent
/// ones differ by more than 0.12 (over 5 standard errors) essentially never, while a wrong null
/// (the focal value not held out, an unfolded count, the wrong scaling) shifts many units further.
fn check_p_sim(what: &str, got: &[Option<f64>], want: &[Option<f64>], islands: &[bool]) {
    let mut total = 0.0;
    let mut compared = 0usize;
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        match (g, w) {
            (Some(g), Some(w)) => {
                assert!((g - w).abs() <= 0.12, "{what}[{i}]: p_sim {g}, esda {w}");
                total += (g - w).abs();
                compared += 1;
            }
            // esda gives an island's constant lag a p_sim of 1/(permutations+1); we give none
            (None, Some(_)) if islands[i] => {}
            _ => panic!("{what}[{i}]: {g:?} vs esda {w:?}"),
        }
    }
    let mean = total / compared as f64;
    println!("{what}: mean |p_sim - esda p_sim| = {mean:.4} over {compared} units");
    assert!(mean < 0.03, "{what}: mean difference {mean}");
}

#[test]
fn permutation_p_values_agree_with_esda_within_monte_carlo_error() {
    let f = fixture();
    let y = values(&f);
    let perms = f["p_sim"]["permutations"].as_u64().unwrap_or(0) as usize;
    let band = Weights::from_neighbours(&lists(&f["band_neighbours"])).unwrap_or_else(|e| panic!("{e}"));
    let knn = Weights::from_neighbours(&lists(&f["knn_neighbours"])).unwrap_or_else(|e| panic!("{e}"));
    let islands: Vec<bool> = (0..band.n()).map(|i| band.cardinality(i) == 0).collect();
    let opts = GiOptions { star: true, transform: Transform::Binary, permutations: perms, seed: 5 };
    let got = getis_ord(&y, &band, &opts).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<Option<f64>> = got.iter().map(|r| r.p_sim).collect();
    check_p_sim("Gi* band binary", &got, &floats(&f["p_sim"]["gi_star_band_B"]), &islands);
    let opts = GiOptions { star: false, transform: Transform::Row, permutations: perms, seed: 6 };
    let got = getis_ord(&y, &knn, &opts).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<Option<f64>> = got.iter().map(|r| r.p_sim).collect();
    check_p_sim("Gi knn row", &got, &floats(&f["p_sim"]["gi_knn_R"]), &[]);
    let opts = MoranOptions { permutations: perms, seed: 7, ..MoranOptions::default() };
    let got = local_moran(&y, &band, &opts).unwrap_or_else(|e| panic!("{e}"));
    let got: Vec<Option<f64>> = got.iter().map(|r| r.p_sim).collect();
    check_p_sim("local Moran band row", &got, &floats(&f["p_sim"]["moran_band_R"]), &islands);
}
