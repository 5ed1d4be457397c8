//! Analysis engine (issue 19): `shikong-analysis` beside the Python libraries users run today, on
//! the same data in the same run — Getis-Ord Gi* beside PySAL esda, DBSCAN beside scikit-learn,
//! HDBSCAN beside the `hdbscan` package, stop detection beside MovingPandas — with the ratios and
//! a check that the answers agree (max |Δz|, adjusted Rand index, matching stops).
//!
//! The peers run in one Python process per case (`analysis_peers.py`, embedded); the data goes to
//! it as little-endian arrays in a temporary directory and its answers come back the same way.
//! Each peer time is taken inside Python around the library call only; its imports and the data
//! preparation (DataFrames, projection) are printed beside it but not counted. Our time is one
//! call of the public function after a small warm-up call (thread pool started), the same as a
//! process handler pays. The clustering cases, short enough to vary from run to run, take the
//! best of up to 3 runs on both sides alike (no further run once 20 s are spent), and print how
//! many each side ran.
//!
//! A peer's larger size is skipped, with an estimate labelled as such, when its time at the
//! smaller size extrapolates (n·log n) beyond `--peer-budget-min`; a peer that overruns twice the
//! budget is stopped. Ratios are always between the two sides on the same size.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shikong_analysis::trajectory::{Fix, Track, stops};
use shikong_analysis::{HdbscanOptions, LonLat, Weights, WeightsSpec, dbscan, hdbscan, hotspot};

#[derive(clap::Args)]
pub struct Args {
    /// Python interpreter with esda, libpysal, pyproj, scikit-learn, hdbscan and movingpandas.
    #[arg(long, default_value = "python3")]
    python: String,
    /// Small sizes for a smoke run (overrides the size options).
    #[arg(long)]
    quick: bool,
    /// Cases to run (comma-separated): gi, dbscan, hdbscan, stops.
    #[arg(long, value_delimiter = ',', default_values_t = ["gi".to_string(), "dbscan".into(), "hdbscan".into(), "stops".into()])]
    only: Vec<String>,
    /// Points of the Gi* cases.
    #[arg(long, value_delimiter = ',', default_values_t = [20_000usize, 200_000])]
    gi_sizes: Vec<usize>,
    /// Points of the DBSCAN and HDBSCAN cases.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
    cluster_sizes: Vec<usize>,
    /// Fixes of the stop-detection cases.
    #[arg(long, value_delimiter = ',', default_values_t = [100_000usize, 1_000_000])]
    stop_sizes: Vec<usize>,
    /// Longest a peer may be expected to run at one size, minutes (see the module docs).
    #[arg(long, default_value_t = 10.0)]
    peer_budget_min: f64,
}

const PIP: &str = "pip install esda==2.9.0 libpysal==4.14.1 pyproj==3.7.2 scikit-learn==1.9.1 hdbscan==0.8.44 \
                   movingpandas==0.23.0 geopandas==1.2.0";
const PEERS: &str = include_str!("../analysis_peers.py");

/// 洪山区 (Wuhan), the box of the reference fixtures (about 11.5 km × 10 km).
const BOX: [f64; 4] = [114.33, 30.47, 114.45, 30.56];
/// Metres per degree there, only to synthesise data (all measurements are geodesic).
const M_PER_DEG_LON: f64 = 95_990.0;
const M_PER_DEG_LAT: f64 = 110_850.0;

/// Deterministic uniform and normal draws (64-bit LCG, Box–Muller), so every run measures the
/// same input.
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

    fn in_box(&mut self) -> LonLat {
        [self.range(BOX[0], BOX[2]), self.range(BOX[1], BOX[3])]
    }
}

/// Gi* input: uniform points with a field (a hot area north-west, a cold one south-east, noise),
/// as in `tests/fixtures/analysis/make_reference.py`.
fn gi_data(n: usize) -> (Vec<LonLat>, Vec<f64>) {
    let mut rng = Rng(0x6901_2026_1207 ^ n as u64);
    let pts: Vec<LonLat> = (0..n).map(|_| rng.in_box()).collect();
    let bump = |p: &LonLat, x0: f64, y0: f64| (-(((p[0] - x0) / 0.02).powi(2) + ((p[1] - y0) / 0.02).powi(2))).exp();
    let values = pts
        .iter()
        .map(|p| 20.0 + 15.0 * bump(p, 114.36, 30.53) - 12.0 * bump(p, 114.43, 30.49) + 2.0 * rng.normal())
        .collect();
    (pts, values)
}

/// The band giving about 49 neighbours per point at any size (300 m at 20k points).
fn gi_band(n: usize) -> f64 {
    300.0 * (20_000.0 / n as f64).sqrt()
}

/// Cluster input: 30% uniform background, 70% in Gaussian blobs of ~1,400 points; blob widths
/// shrink with √n so that the picture (and `cluster_eps`) is the same at any size.
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
                return rng.in_box();
            }
            let (c, s) = centres[(rng.uniform() * blobs as f64) as usize % blobs];
            [c[0] + s * rng.normal() / M_PER_DEG_LON, c[1] + s * rng.normal() / M_PER_DEG_LAT]
        })
        .collect()
}

/// DBSCAN eps, metres: 30 m at 100k points, scaled with the blobs.
fn cluster_eps(n: usize) -> f64 {
    30.0 * (100_000.0 / n as f64).sqrt()
}
const DBSCAN_MIN_SAMPLES: usize = 10;
const HDBSCAN_MIN_CLUSTER_SIZE: usize = 50;
const HDBSCAN_MIN_SAMPLES: usize = 10;

/// One patrol at one fix a second: walks of 5–25 min at 1.1–1.6 m/s, then stops of 1–30 min, with
/// 3 m GPS noise and rare 20 m outliers (`make_trajectory_reference.py`'s walker).
fn track_data(n: usize) -> Vec<Fix> {
    let mut rng = Rng(0x5709_2026_1207 ^ n as u64);
    let stop_s = [60.0, 300.0, 900.0, 120.0, 1800.0, 480.0, 200.0, 1200.0];
    let (mut x, mut y, mut heading, mut t) =
        (0.0_f64, 0.0_f64, rng.range(0.0, std::f64::consts::TAU), 1_780_272_000.0_f64);
    let mut out = Vec::with_capacity(n);
    let push = |rng: &mut Rng, out: &mut Vec<Fix>, x: f64, y: f64, t: f64| {
        let sd = if rng.uniform() < 0.004 { 20.0 } else { 3.0 };
        let (nx, ny) = (sd * rng.normal(), sd * rng.normal());
        out.push(Fix::new(114.37 + (x + nx) / M_PER_DEG_LON, 30.52 + (y + ny) / M_PER_DEG_LAT, t));
    };
    let mut leg = 0;
    while out.len() < n {
        let (end, speed) = (t + rng.range(300.0, 1500.0), rng.range(1.1, 1.6));
        while t < end && out.len() < n {
            t += 1.0;
            heading += 0.25 * rng.normal();
            x += speed * heading.cos();
            y += speed * heading.sin();
            push(&mut rng, &mut out, x, y, t);
        }
        let end = t + stop_s[leg % stop_s.len()];
        leg += 1;
        while t < end && out.len() < n {
            t += 1.0;
            push(&mut rng, &mut out, x, y, t);
        }
    }
    out
}
const STOP_DIAMETER_M: f64 = 25.0;
const STOP_MIN_S: f64 = 120.0;

fn write(path: &Path, values: impl IntoIterator<Item = [u8; 8]>) -> anyhow::Result<()> {
    let bytes: Vec<u8> = values.into_iter().flatten().collect();
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn write_points(dir: &Path, pts: &[LonLat]) -> anyhow::Result<()> {
    write(&dir.join("points.f64"), pts.iter().flatten().map(|v| v.to_le_bytes()))
}

fn read_f64(path: &Path) -> anyhow::Result<Vec<f64>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.chunks_exact(8).map(|c| f64::from_le_bytes(std::array::from_fn(|i| c[i]))).collect())
}

fn read_i32(path: &Path) -> anyhow::Result<Vec<i32>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(bytes.chunks_exact(4).map(|c| i32::from_le_bytes(std::array::from_fn(|i| c[i]))).collect())
}

/// What one peer run printed ("key value" lines), or `None` when it overran and was stopped.
struct Peer {
    lines: HashMap<String, String>,
}

impl Peer {
    fn secs(&self, key: &str) -> anyhow::Result<f64> {
        let v = self.lines.get(key).with_context(|| format!("the peer printed no `{key}`"))?;
        v.parse().with_context(|| format!("the peer's `{key}` is not a number: {v}"))
    }

    fn version(&self) -> &str {
        self.lines.get("version").map_or("?", String::as_str)
    }

    /// The untimed part, for the record.
    fn not_counted(&self) -> String {
        let get = |k: &str| self.secs(k).map_or("?".to_string(), |s| format!("{s:.1} s"));
        format!("not counted: import {}, setup {}", get("import"), get("setup"))
    }
}

/// Runs the peer script for `kind` on the files in `dir`; stops it after `limit`.
fn run_peer(python: &str, kind: &str, dir: &Path, args: &[String], limit: Duration) -> anyhow::Result<Option<Peer>> {
    let mut child = Command::new(python)
        .arg("-c")
        .arg(PEERS)
        .arg(kind)
        .arg(dir)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{python}`"))?;
    // Drain the pipes on threads so a chatty peer cannot block on a full pipe.
    let mut stdout = child.stdout.take().context("peer stdout")?;
    let mut stderr = child.stderr.take().context("peer stderr")?;
    let out = std::thread::spawn(move || std::io::read_to_string(&mut stdout).unwrap_or_default());
    let err = std::thread::spawn(move || std::io::read_to_string(&mut stderr).unwrap_or_default());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if start.elapsed() > limit {
            child.kill()?;
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let (out, err) = (out.join().unwrap_or_default(), err.join().unwrap_or_default());
    let Some(status) = status else { return Ok(None) };
    if !status.success() {
        bail!("the {kind} peer failed ({status}):\n{err}");
    }
    let lines =
        out.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.to_string(), v.trim().to_string())).collect();
    Ok(Some(Peer { lines }))
}

/// A fresh temporary directory for one case's files, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(case: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("shikong-bench-analysis-{}-{case}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Adjusted Rand index of two labelings (noise counted as one more label on each side), as
/// scikit-learn's `adjusted_rand_score`.
pub fn adjusted_rand(a: &[i32], b: &[i32]) -> f64 {
    assert_eq!(a.len(), b.len());
    let c2 = |x: u64| (x as f64) * (x as f64 - 1.0) / 2.0;
    let (mut pairs, mut rows, mut cols) = (HashMap::new(), HashMap::new(), HashMap::new());
    for (&x, &y) in a.iter().zip(b) {
        *pairs.entry((x, y)).or_insert(0u64) += 1;
        *rows.entry(x).or_insert(0u64) += 1;
        *cols.entry(y).or_insert(0u64) += 1;
    }
    let index: f64 = pairs.values().map(|&v| c2(v)).sum();
    let (sa, sb): (f64, f64) = (rows.values().map(|&v| c2(v)).sum(), cols.values().map(|&v| c2(v)).sum());
    let expected = sa * sb / c2(a.len() as u64);
    let max = (sa + sb) / 2.0;
    if max == expected {
        return 1.0; // both labelings trivial (one cluster each, or all singletons)
    }
    (index - expected) / (max - expected)
}

fn clusters(labels: &[i32]) -> (usize, usize) {
    let k = labels.iter().copied().max().map_or(0, |m| (m + 1).max(0) as usize);
    (k, labels.iter().filter(|&&l| l < 0).count())
}

/// Runs `f` once and returns its value and seconds.
fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let v = f();
    (v, start.elapsed().as_secs_f64())
}

/// The clustering cases' rule, the same as `best_of` in analysis_peers.py for the peers: the
/// best of up to 3 runs, no further run once 20 s have been spent.
fn best_of<T>(mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(T, f64, usize)> {
    let (mut best, mut spent, mut runs) = (f64::INFINITY, 0.0, 0);
    let mut out = None;
    while runs < 3 && (runs == 0 || spent < 20.0) {
        let (v, s) = time(&mut f);
        out = Some(v?);
        (best, spent, runs) = (best.min(s), spent + s, runs + 1);
    }
    Ok((out.context("no run")?, best, runs))
}

fn secs(s: f64) -> String {
    if s < 1.0 { format!("{:>9.1} ms", s * 1e3) } else { format!("{s:>10.2} s") }
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Whether the peer may run at `n` given its time `prev` at a smaller size: the estimate
/// (n·log n from that size) or `None` to go ahead.
struct Budget {
    limit_s: f64,
    prev: Option<(usize, f64)>,
}

impl Budget {
    fn estimate(&self, n: usize) -> Option<f64> {
        let (m, s) = self.prev?;
        let est = s * (n as f64 / m as f64) * (n as f64).ln() / (m as f64).ln();
        (est > self.limit_s).then_some(est)
    }

    fn skipped(&self, est: f64) -> String {
        let (m, _) = self.prev.unwrap_or((0, 0.0));
        format!(
            "skipped: ESTIMATE {:.0} min (its time at {} × n·log n), over the {:.0} min budget",
            est / 60.0,
            thousands(m),
            self.limit_s / 60.0
        )
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs_f64(2.0 * self.limit_s + 120.0)
    }
}

fn gi(args: &Args, sizes: &[usize], report: &mut String) -> anyhow::Result<()> {
    println!(
        "Getis-Ord Gi* (binary distance band, star, analytic z only, no permutations); random points in 洪山区 with a field"
    );
    for &n in sizes {
        let (pts, values) = gi_data(n);
        let band = gi_band(n);
        let _ = hotspot(&pts[..100.min(n)], &values[..100.min(n)], WeightsSpec::DistanceBand { metres: band }, true)?;
        let (ours, ours_s) = time(|| hotspot(&pts, &values, WeightsSpec::DistanceBand { metres: band }, true));
        let ours = ours?;
        let w = Weights::distance_band(&pts, band)?;
        let scratch = Scratch::new("gi")?;
        let dir = &scratch.0;
        write_points(dir, &pts)?;
        write(&dir.join("values.f64"), values.iter().map(|v| v.to_le_bytes()))?;
        let mut offsets = vec![0u64];
        let mut neighbours = Vec::with_capacity(w.entries());
        for i in 0..w.n() {
            neighbours.extend_from_slice(w.neighbours(i));
            offsets.push(neighbours.len() as u64);
        }
        write(&dir.join("offsets.u64"), offsets.iter().map(|v| v.to_le_bytes()))?;
        let bytes: Vec<u8> = neighbours.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dir.join("neighbours.u32"), bytes)?;
        println!("  {} points: shikong {}; running esda…", thousands(n), secs(ours_s));
        let _ = writeln!(
            report,
            "Gi* {} points, band {band:.1} m, mean {:.1} neighbours",
            thousands(n),
            w.entries() as f64 / n as f64
        );
        let _ = writeln!(report, "  shikong hotspot (geodesic band search + Gi*)              {}", secs(ours_s));
        let limit = Duration::from_secs_f64(2.0 * 60.0 * args.peer_budget_min + 120.0);
        let Some(peer) = run_peer(&args.python, "gi", dir, &[band.to_string()], limit)? else {
            let _ = writeln!(report, "  esda: stopped after {:.0} s (over twice the budget)", limit.as_secs_f64());
            continue;
        };
        let (g_lists, db, g_band) =
            (peer.secs("g_local_lists")?, peer.secs("distance_band")?, peer.secs("g_local_band")?);
        let v = peer.version();
        let _ = writeln!(
            report,
            "  {v} G_Local only, W from our lists           {}   ours ×{:.1}",
            secs(g_lists),
            g_lists / ours_s
        );
        let _ = writeln!(
            report,
            "  {v} DistanceBand(EPSG:4547) + G_Local    {}   ours ×{:.1}   (band {}, G_Local {})",
            secs(db + g_band),
            (db + g_band) / ours_s,
            secs(db).trim(),
            secs(g_band).trim()
        );
        let _ = writeln!(
            report,
            "  ({}; building W from our lists: {}, not counted)",
            peer.not_counted(),
            secs(peer.secs("w_from_lists")?).trim()
        );
        let card = read_f64(&dir.join("card_band.f64"))?;
        let differ = card.iter().enumerate().filter(|&(i, &c)| c != w.cardinality(i) as f64).count();
        let _ = writeln!(
            report,
            "  units whose DistanceBand neighbour count differs from ours: {differ} (grid vs geodesic distance, ~1e-5 apart)"
        );
        for (file, what) in [("z_lists.f64", "same lists"), ("z_band.f64", "DistanceBand on EPSG:4547 metres")] {
            let z = read_f64(&dir.join(file))?;
            let (mut max, mut undefined_mismatch) = (0.0_f64, 0usize);
            for (r, &zp) in ours.iter().zip(&z) {
                match (r.z, zp.is_finite()) {
                    (Some(a), true) => max = max.max((a - zp).abs()),
                    (None, false) => {}
                    _ => undefined_mismatch += 1,
                }
            }
            let _ = writeln!(
                report,
                "  max |Δz| vs esda ({what}): {max:.3e}; units defined on one side only: {undefined_mismatch}"
            );
        }
    }
    Ok(())
}

/// DBSCAN or HDBSCAN beside its peer at each size.
fn cluster(args: &Args, sizes: &[usize], hdb: bool, report: &mut String) -> anyhow::Result<()> {
    let name = if hdb { "HDBSCAN" } else { "DBSCAN" };
    println!("{name}: points in 洪山区, 30% background, 70% in blobs");
    let mut budget = Budget { limit_s: 60.0 * args.peer_budget_min, prev: None };
    for &n in sizes {
        let pts = cluster_data(n);
        let eps = cluster_eps(n);
        let opts = HdbscanOptions {
            min_cluster_size: HDBSCAN_MIN_CLUSTER_SIZE,
            min_samples: Some(HDBSCAN_MIN_SAMPLES),
            ..HdbscanOptions::default()
        };
        let warm = &pts[..1_000.min(n)];
        let (ours, ours_s, ours_runs) = if hdb {
            let _ = hdbscan(warm, &opts)?;
            let (r, s, runs) = best_of(|| Ok(hdbscan(&pts, &opts)?))?;
            (r.labels, s, runs)
        } else {
            let _ = dbscan(warm, eps, DBSCAN_MIN_SAMPLES)?;
            best_of(|| Ok(dbscan(&pts, eps, DBSCAN_MIN_SAMPLES)?))?
        };
        let (k, noise) = clusters(&ours);
        let params = if hdb {
            format!("min_cluster_size {HDBSCAN_MIN_CLUSTER_SIZE}, min_samples {HDBSCAN_MIN_SAMPLES}")
        } else {
            format!("eps {eps:.1} m, min_samples {DBSCAN_MIN_SAMPLES}")
        };
        let _ = writeln!(report, "{name} {} points, {params}", thousands(n));
        let _ = writeln!(
            report,
            "  shikong {:<8} (geodesic)                                {}   {k} clusters, {noise} noise, best of {ours_runs}",
            name.to_lowercase(),
            secs(ours_s)
        );
        println!("  {} points: shikong {}; running the peer…", thousands(n), secs(ours_s));
        if let Some(est) = budget.estimate(n) {
            let _ = writeln!(report, "  peer {}", budget.skipped(est));
            continue;
        }
        let scratch = Scratch::new(if hdb { "hdbscan" } else { "dbscan" })?;
        write_points(&scratch.0, &pts)?;
        let (kind, peer_args) = if hdb {
            ("hdbscan", vec![HDBSCAN_MIN_CLUSTER_SIZE.to_string(), HDBSCAN_MIN_SAMPLES.to_string()])
        } else {
            ("dbscan", vec![eps.to_string(), DBSCAN_MIN_SAMPLES.to_string()])
        };
        let Some(peer) = run_peer(&args.python, kind, &scratch.0, &peer_args, budget.timeout())? else {
            let _ = writeln!(
                report,
                "  peer stopped after {:.0} s (over twice the budget)",
                budget.timeout().as_secs_f64()
            );
            continue;
        };
        let fit = peer.secs("fit")?;
        budget.prev = Some((n, fit));
        let theirs = read_i32(&scratch.0.join("labels.i32"))?;
        let (tk, tnoise) = clusters(&theirs);
        let how = if hdb {
            "fit, EPSG:4547 m, boruvka_kdtree, exact MST"
        } else {
            "fit, EPSG:4547 metres, kd_tree, n_jobs=-1"
        };
        let _ = writeln!(
            report,
            "  {:<24} ({how}) {}   ours ×{:.1}   {tk} clusters, {tnoise} noise, best of {}",
            peer.version(),
            secs(fit),
            fit / ours_s,
            peer.secs("runs")?
        );
        let _ = writeln!(
            report,
            "  adjusted Rand index ours vs peer: {:.6}  ({})",
            adjusted_rand(&ours, &theirs),
            peer.not_counted()
        );
    }
    Ok(())
}

fn stop_detection(args: &Args, sizes: &[usize], report: &mut String) -> anyhow::Result<()> {
    println!(
        "Stop detection: one patrol, a fix a second, max_diameter {STOP_DIAMETER_M} m, min_duration {STOP_MIN_S} s"
    );
    let mut budget = Budget { limit_s: 60.0 * args.peer_budget_min, prev: None };
    for &n in sizes {
        let fixes = track_data(n);
        let warm = Track::new(fixes[..1_000.min(n)].to_vec())?;
        let _ = stops(&warm, warm.all(), STOP_DIAMETER_M, STOP_MIN_S)?;
        let input = fixes.clone();
        let (ours, ours_s) = time(|| {
            let track = Track::new(input)?;
            stops(&track, track.all(), STOP_DIAMETER_M, STOP_MIN_S)
        });
        let ours = ours?;
        let _ = writeln!(report, "Stops {} fixes", thousands(n));
        let _ = writeln!(
            report,
            "  shikong Track::new + stops                                {}   {} stops",
            secs(ours_s),
            ours.len()
        );
        println!("  {} fixes: shikong {}; running MovingPandas…", thousands(n), secs(ours_s));
        if let Some(est) = budget.estimate(n) {
            let _ = writeln!(report, "  MovingPandas {}", budget.skipped(est));
            continue;
        }
        let scratch = Scratch::new("stops")?;
        write(&scratch.0.join("fixes.f64"), fixes.iter().flat_map(|f| [f.lon, f.lat, f.t]).map(f64::to_le_bytes))?;
        let peer_args = [STOP_DIAMETER_M.to_string(), STOP_MIN_S.to_string()];
        let Some(peer) = run_peer(&args.python, "stops", &scratch.0, &peer_args, budget.timeout())? else {
            let _ = writeln!(
                report,
                "  MovingPandas stopped after {:.0} s (over twice the budget)",
                budget.timeout().as_secs_f64()
            );
            continue;
        };
        let detect = peer.secs("detect")?;
        budget.prev = Some((n, detect));
        let theirs = read_f64(&scratch.0.join("stops.f64"))?;
        let theirs: Vec<(f64, f64)> = theirs.chunks_exact(2).map(|c| (c[0], c[1])).collect();
        let same = ours.iter().filter(|s| theirs.contains(&(s.start_t, s.end_t))).count();
        let _ = writeln!(
            report,
            "  {:<24} get_stop_time_ranges         {}   ours ×{:.1}   {} stops",
            peer.version(),
            secs(detect),
            detect / ours_s,
            theirs.len()
        );
        let _ = writeln!(
            report,
            "  stops with the same start and end on both sides: {same} of {}  ({})",
            ours.len(),
            peer.not_counted()
        );
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let probe = Command::new(&args.python)
        .args([
            "-c",
            "import esda, libpysal, pyproj, sklearn, hdbscan, movingpandas, sys; print(sys.version.split()[0])",
        ])
        .output();
    let python_version = match probe {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
        Ok(o) => bail!(
            "a peer is missing for `{}`: {}\ninstall them with: {PIP}",
            args.python,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        Err(e) => bail!("cannot run `{}` ({e}); install Python 3 and then: {PIP}", args.python),
    };
    let (gi_sizes, cluster_sizes, stop_sizes) = if args.quick {
        (vec![2_000, 20_000], vec![10_000, 30_000], vec![10_000, 30_000])
    } else {
        (args.gi_sizes.clone(), args.cluster_sizes.clone(), args.stop_sizes.clone())
    };
    for n in gi_sizes.iter().chain(&cluster_sizes).chain(&stop_sizes) {
        if !(1_000..=1_000_000).contains(n) {
            bail!("sizes must be within 1,000..=1,000,000 (got {n})");
        }
    }
    for case in &args.only {
        if !["gi", "dbscan", "hdbscan", "stops"].contains(&case.as_str()) {
            bail!("unknown case `{case}` in --only (gi, dbscan, hdbscan, stops)");
        }
    }
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut report = String::new();
    let _ = writeln!(
        report,
        "analysis bench: same data both sides, one timed call each (clustering: best of up to 3 each); shikong on {threads} threads (rayon), \
         Python {python_version}; peer times are the library call only"
    );
    let want = |c: &str| args.only.iter().any(|o| o == c);
    if want("gi") {
        gi(&args, &gi_sizes, &mut report)?;
    }
    if want("dbscan") {
        cluster(&args, &cluster_sizes, false, &mut report)?;
    }
    if want("hdbscan") {
        cluster(&args, &cluster_sizes, true, &mut report)?;
    }
    if want("stops") {
        stop_detection(&args, &stop_sizes, &mut report)?;
    }
    print!("{report}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_rand_ignores_renaming_and_sees_disagreement() {
        let a = [0, 0, 1, 1, -1, 2, 2];
        let renamed = [5, 5, 0, 0, -1, 1, 1];
        assert_eq!(adjusted_rand(&a, &renamed), 1.0);
        // sklearn: adjusted_rand_score([0,0,0,1,1,1], [0,0,1,1,2,2]) = 0.24242424…
        let ari = adjusted_rand(&[0, 0, 0, 1, 1, 1], &[0, 0, 1, 1, 2, 2]);
        assert!((ari - 0.242_424_242_424_242_4).abs() < 1e-12, "{ari}");
    }

    #[test]
    fn budget_skips_only_beyond_the_limit() {
        let b = Budget { limit_s: 600.0, prev: Some((100_000, 27.0)) };
        // 27 s × 10 × ln(1e6)/ln(1e5) = 324 s: runs
        assert_eq!(b.estimate(1_000_000), None);
        let b = Budget { limit_s: 600.0, prev: Some((100_000, 60.0)) };
        let est = b.estimate(1_000_000).expect("over budget");
        assert!((est - 720.0).abs() < 1e-6, "{est}");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
