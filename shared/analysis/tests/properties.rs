//! Properties that hold for any input: the geodesic neighbour search equals brute force, Gi / Gi*
//! z-scores ignore a constant added to the field, DBSCAN's clustering does not depend on the
//! points' order (beyond which cluster takes a border point), and permutation inference is
//! reproducible from its seed on any number of threads.

use proptest::prelude::*;
use shikong_analysis::{
    GiOptions, MoranOptions, NOISE, Transform, Weights, dbscan, geodesic_m, getis_ord, local_moran,
};

/// Points in 洪山区 (lon 114.33–114.45, lat 30.47–30.56), some of them stacked on others.
fn hongshan(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<[f64; 2]>> {
    prop::collection::vec((114.33..114.45f64, 30.47..30.56f64, 0..10u8), n).prop_map(|v| {
        let mut pts: Vec<[f64; 2]> = Vec::with_capacity(v.len());
        for (lon, lat, dup) in v {
            // one point in ten repeats the previous one: coincident points are common in real data
            match pts.last() {
                Some(&last) if dup == 0 => pts.push(last),
                _ => pts.push([lon, lat]),
            }
        }
        pts
    })
}

fn brute_band(pts: &[[f64; 2]], d: f64) -> Vec<Vec<u32>> {
    (0..pts.len())
        .map(|i| (0..pts.len()).filter(|&j| j != i && geodesic_m(pts[i], pts[j]) <= d).map(|j| j as u32).collect())
        .collect()
}

fn rows(w: &Weights) -> Vec<Vec<u32>> {
    (0..w.n()).map(|i| w.neighbours(i).to_vec()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn band_and_knn_equal_brute_force(pts in hongshan(2..120), d in 50.0..3000.0f64, on_a_pair in any::<bool>(), k in 1usize..8) {
        // Half the cases put the band exactly on a pair's distance: inclusive, like libpysal.
        let d = if on_a_pair { geodesic_m(pts[0], pts[pts.len() - 1]).max(1.0) } else { d };
        let band = Weights::distance_band(&pts, d).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(rows(&band), brute_band(&pts, d));
        if k < pts.len() {
            let knn = Weights::knn(&pts, k).map_err(|e| TestCaseError::fail(e.to_string()))?;
            for i in 0..pts.len() {
                let mut all: Vec<(f64, u32)> =
                    (0..pts.len()).filter(|&j| j != i).map(|j| (geodesic_m(pts[i], pts[j]), j as u32)).collect();
                all.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
                let mut want: Vec<u32> = all[..k].iter().map(|x| x.1).collect();
                want.sort_unstable();
                prop_assert_eq!(knn.neighbours(i), &want[..], "point {}", i);
            }
        }
    }

    #[test]
    fn gi_z_ignores_a_constant_added_to_the_field(
        pts in hongshan(5..80),
        ys in prop::collection::vec(1.0..100.0f64, 80),
        shift in 0.0..1000.0f64,
        star in any::<bool>(),
        row in any::<bool>(),
    ) {
        let y = &ys[..pts.len()];
        prop_assume!(y.iter().any(|v| (v - y[0]).abs() > 1e-3));
        let w = Weights::distance_band(&pts, 1500.0).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let transform = if row { Transform::Row } else { Transform::Binary };
        let opts = GiOptions { star, transform, ..GiOptions::default() };
        let a = getis_ord(y, &w, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let shifted: Vec<f64> = y.iter().map(|v| v + shift).collect();
        let b = getis_ord(&shifted, &w, &opts).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            match (a.z, b.z) {
                (Some(za), Some(zb)) => prop_assert!((za - zb).abs() < 1e-6 * za.abs().max(1.0), "unit {}: {} vs {}", i, za, zb),
                (None, None) => {}
                other => prop_assert!(false, "unit {}: {:?}", i, other),
            }
        }
    }

    #[test]
    fn dbscan_does_not_depend_on_point_order(pts in hongshan(1..150), eps in 100.0..1500.0f64, min_samples in 1usize..6, seed in any::<u64>()) {
        let mut order: Vec<usize> = (0..pts.len()).collect();
        fastrand::Rng::with_seed(seed).shuffle(&mut order);
        let shuffled: Vec<[f64; 2]> = order.iter().map(|&i| pts[i]).collect();
        let a = dbscan(&pts, eps, min_samples).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let b_shuffled = dbscan(&shuffled, eps, min_samples).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut b = vec![0; pts.len()];
        for (pos, &i) in order.iter().enumerate() {
            b[i] = b_shuffled[pos];
        }
        let w = Weights::distance_band(&pts, eps).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let core: Vec<bool> = (0..pts.len()).map(|i| w.cardinality(i) + 1 >= min_samples).collect();
        // Noise is the same set; core points are partitioned the same way (a bijection of labels);
        // a border point is in a cluster that has a core point within eps of it, in both runs.
        let mut map = std::collections::HashMap::new();
        for i in 0..pts.len() {
            prop_assert_eq!(a[i] == NOISE, b[i] == NOISE, "point {}", i);
            if core[i] {
                prop_assert_eq!(*map.entry(a[i]).or_insert(b[i]), b[i], "core point {}", i);
            } else if a[i] != NOISE {
                for labels in [&a, &b] {
                    prop_assert!(w.neighbours(i).iter().any(|&j| core[j as usize] && labels[j as usize] == labels[i]), "border point {}", i);
                }
            }
        }
        let distinct: std::collections::HashSet<_> = map.values().collect();
        prop_assert_eq!(distinct.len(), map.len(), "two clusters merged");
    }
}

/// A field with one strong hot spot and noise, over a grid of points about 110 m apart.
fn hot_field() -> (Vec<[f64; 2]>, Vec<f64>) {
    let mut rng = fastrand::Rng::with_seed(3);
    let mut pts = Vec::new();
    let mut y = Vec::new();
    for i in 0..30 {
        for j in 0..30 {
            let (lon, lat) = (114.33 + i as f64 * 0.00115, 30.47 + j as f64 * 0.001);
            pts.push([lon, lat]);
            let hot = if (10..14).contains(&i) && (10..14).contains(&j) { 30.0 } else { 0.0 };
            y.push(10.0 + hot + rng.f64() * 4.0);
        }
    }
    (pts, y)
}

#[test]
fn permutations_are_reproducible_and_find_the_hot_spot() {
    let (pts, y) = hot_field();
    let w = Weights::distance_band(&pts, 250.0).unwrap_or_else(|e| panic!("{e}"));
    let opts = GiOptions { star: true, transform: Transform::Binary, permutations: 999, seed: 42 };
    let a = getis_ord(&y, &w, &opts).unwrap_or_else(|e| panic!("{e}"));
    let single = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap_or_else(|e| panic!("{e}"));
    let b = single.install(|| getis_ord(&y, &w, &opts)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(a, b, "same seed, one thread or many");
    let c = getis_ord(&y, &w, &GiOptions { seed: 43, ..opts }).unwrap_or_else(|e| panic!("{e}"));
    assert_ne!(a, c, "another seed draws other permutations");
    // the hot spot's centre: the smallest possible pseudo p-value
    let centre = 11 * 30 + 11;
    assert_eq!(a[centre].p_sim, Some(1.0 / 1000.0));
    // far from it, under the null, pseudo p-values below 0.05 are rare
    let far: Vec<f64> = (0..900).filter(|i| i / 30 > 20 && i % 30 > 20).filter_map(|i| a[i].p_sim).collect();
    let small = far.iter().filter(|&&p| p < 0.05).count() as f64 / far.len() as f64;
    assert!(small < 0.2, "{small} of {} null units below 0.05", far.len());
    // the permutation z-score agrees in sign with the analytic one where the latter is large
    for r in &a {
        if let (Some(z), Some(zs)) = (r.z, r.z_sim)
            && z.abs() > 4.0
        {
            assert_eq!(z.signum(), zs.signum());
        }
    }
    let m = local_moran(&y, &w, &MoranOptions { permutations: 199, seed: 1, ..MoranOptions::default() })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(m[centre].p_sim.is_some_and(|p| p <= 0.01), "{:?}", m[centre]);
}
