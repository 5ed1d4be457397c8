//! Times DBSCAN or HDBSCAN on the benchmark's cluster data (`shikong-bench analysis`: 30%
//! uniform background in 洪山区, 70% in Gaussian blobs; DBSCAN eps 30 m at 100k scaled with √n and
//! min_samples 10; HDBSCAN min_cluster_size 50, min_samples 10), each run printed, under the same
//! allocator as the benchmark. Prints figures; asserts nothing. Run:
//! `cargo run --release -p shikong-analysis --example cluster_timing -- [dbscan|hdbscan] [points] [runs] [min_samples]`.

use std::time::Instant;

use shikong_analysis::{HdbscanOptions, LonLat, NOISE, dbscan, hdbscan};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BOX: [f64; 4] = [114.33, 30.47, 114.45, 30.56];
const M_PER_DEG_LON: f64 = 95_990.0;
const M_PER_DEG_LAT: f64 = 110_850.0;

/// The benchmark's generator (sync-server/bench/src/analysis.rs), step for step.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}

fn cluster_data(n: usize) -> Vec<LonLat> {
    let mut rng = Rng(0xdb5c_2026_1207 ^ n as u64);
    let scale = (100_000.0 / n as f64).sqrt();
    let blobs = (n / 2_000).max(1);
    let centres: Vec<(LonLat, f64)> = (0..blobs)
        .map(|_| {
            let c = [rng.range(BOX[0] + 0.005, BOX[2] - 0.005), rng.range(BOX[1] + 0.005, BOX[3] - 0.005)];
            (c, rng.range(40.0, 160.0) * scale)
        })
        .collect();
    (0..n)
        .map(|i| {
            if i % 10 < 3 {
                return [rng.range(BOX[0], BOX[2]), rng.range(BOX[1], BOX[3])];
            }
            let (c, s) = centres[(rng.uniform() * blobs as f64) as usize % blobs];
            [c[0] + s * rng.normal() / M_PER_DEG_LON, c[1] + s * rng.normal() / M_PER_DEG_LAT]
        })
        .collect()
}

fn main() -> Result<(), shikong_analysis::AnalysisError> {
    let mut args = std::env::args().skip(1);
    let hdb = args.next().is_some_and(|a| a == "hdbscan");
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    // HDBSCAN's min_samples (10 as in the benchmark), to check other settings give the same result
    let min_samples: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let points = cluster_data(n);
    let eps = 30.0 * (100_000.0 / n as f64).sqrt();
    let opts = HdbscanOptions { min_cluster_size: 50, min_samples: Some(min_samples), ..HdbscanOptions::default() };
    // HDBSCAN's probabilities join the digest (their bits), so a faster tree shows it changes nothing
    let mut probabilities = Vec::new();
    let mut run = |pts: &[LonLat]| {
        if hdb {
            hdbscan(pts, &opts).map(|h| {
                probabilities = h.probabilities;
                h.labels
            })
        } else {
            dbscan(pts, eps, 10)
        }
    };
    println!(
        "{} on {n} points ({}), {} threads",
        if hdb { "HDBSCAN" } else { "DBSCAN" },
        if hdb {
            format!("min_cluster_size 50, min_samples {min_samples}")
        } else {
            format!("eps {eps:.2} m, min_samples 10")
        },
        rayon::current_num_threads()
    );
    // As the benchmark does: a small run first starts the thread pool.
    run(&points[..1_000.min(n)])?;
    let mut best = f64::INFINITY;
    let mut labels = Vec::new();
    for i in 0..runs {
        let t = Instant::now();
        labels = run(&points)?;
        let s = t.elapsed().as_secs_f64();
        println!("run {i}: {:.1} ms", s * 1e3);
        best = best.min(s);
    }
    let clusters = labels.iter().max().map_or(0, |&m| m + 1);
    let noise = labels.iter().filter(|&&l| l == NOISE).count();
    let digest = labels.iter().fold(0u64, |h, &l| h.wrapping_mul(1_099_511_628_211).wrapping_add(l as u64));
    let pdigest = probabilities.iter().fold(0u64, |h, p| h.wrapping_mul(1_099_511_628_211).wrapping_add(p.to_bits()));
    println!(
        "best of {runs}: {:.1} ms; {clusters} clusters, {noise} noise, digest {digest:016x}, probabilities {pdigest:016x}",
        best * 1e3
    );
    Ok(())
}
