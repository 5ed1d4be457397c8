//! Times Gi* on points with a distance band in 洪山区 (uniform, seeded; default 100k points and
//! 500 m), then k-nearest weights and DBSCAN on the same points. Prints figures; asserts nothing.
//! Run: `cargo run -p shikong-analysis --example hotspot_timing -- [points] [band_m]`.

use std::time::Instant;

use shikong_analysis::{GiOptions, Weights, WeightsSpec, dbscan, getis_ord, hotspot};

fn main() -> Result<(), shikong_analysis::AnalysisError> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let band: f64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(500.0);
    let mut rng = fastrand::Rng::with_seed(19);
    let points: Vec<[f64; 2]> = (0..n).map(|_| [114.33 + rng.f64() * 0.12, 30.47 + rng.f64() * 0.09]).collect();
    let values: Vec<f64> = points.iter().map(|p| 10.0 + 50.0 * (p[0] - 114.33) + rng.f64() * 3.0).collect();
    println!("{n} points, {band} m band, {} threads", rayon::current_num_threads());

    let t = Instant::now();
    let fused = hotspot(&points, &values, WeightsSpec::DistanceBand { metres: band }, true)?;
    let hot = fused.iter().filter(|r| r.z.is_some_and(|z| z > 1.96)).count();
    println!(
        "hotspot() Gi*: {:.3} s (counts and sums taken during the search); {hot} with z > 1.96",
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    match Weights::distance_band(&points, band) {
        Ok(w) => {
            let t_weights = t.elapsed();
            let t = Instant::now();
            let gi = getis_ord(&values, &w, &GiOptions::default())?;
            let t_gi = t.elapsed();
            let same = fused.iter().zip(&gi).all(|(a, b)| match (a.z, b.z) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * y.abs().max(1.0),
                (x, y) => x == y,
            });
            println!(
                "stored weights {:.3} s ({} entries, {:.1} per point) + getis_ord {:.3} s; z equal to hotspot(): {same}",
                t_weights.as_secs_f64(),
                w.entries(),
                w.entries() as f64 / n as f64,
                t_gi.as_secs_f64(),
            );
        }
        Err(e) => println!("stored weights refused: {e}"),
    }

    let t = Instant::now();
    let knn = Weights::knn(&points, 8)?;
    println!("k-nearest (k = 8) weights: {:.3} s ({} entries)", t.elapsed().as_secs_f64(), knn.entries());

    let t = Instant::now();
    let labels = dbscan(&points, 50.0, 5)?;
    let clusters = labels.iter().copied().max().unwrap_or(-1) + 1;
    println!("DBSCAN eps 50 m, min_samples 5: {:.3} s, {clusters} clusters", t.elapsed().as_secs_f64());
    Ok(())
}
