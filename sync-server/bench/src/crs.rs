//! CRS transform throughput: EPSG:4490 → EPSG:4547 (PROJ through `shikong-crs`) and
//! WGS 84 ⇄ GCJ-02 (`shikong-geodesy`), on the same points as pyproj's `Transformer.transform`
//! (arrays, PROJ 9.5 from its wheel) and, when installed, `coord-convert` (pure Python), run in
//! the same invocation so the ratio compares like with like on this machine.
//!
//! The points go to Python through a temporary file of little-endian f64 pairs, and pyproj's
//! results come back the same way, so the run also reports the largest difference between the
//! two implementations.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use shikong_crs::{Crs, Transform};

#[derive(clap::Args)]
pub struct Args {
    /// Number of points.
    #[arg(long, default_value_t = 1_000_000)]
    points: usize,
    /// Python interpreter that has pyproj.
    #[arg(long, default_value = "python3")]
    python: String,
}

const PIP: &str = "pip install pyproj==3.7.2 coord-convert==0.2.1";

/// Deterministic points over zone CM 114°E (lon 112.5–115.5, lat 29–33: Hubei), from a 64-bit LCG
/// so that every run measures the same input.
fn points(n: usize) -> Vec<(f64, f64)> {
    let mut state: u64 = 0x5eed_2024_0501;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..n).map(|_| (112.5 + 3.0 * next(), 29.0 + 4.0 * next())).collect()
}

fn write_f64s(path: &Path, pts: &[(f64, f64)]) -> anyhow::Result<()> {
    let mut bytes = Vec::with_capacity(pts.len() * 16);
    for (x, y) in pts {
        bytes.extend_from_slice(&x.to_le_bytes());
        bytes.extend_from_slice(&y.to_le_bytes());
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

fn read_f64s(path: &Path) -> anyhow::Result<Vec<(f64, f64)>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let f = |b: &[u8]| -> anyhow::Result<f64> { Ok(f64::from_le_bytes(b.try_into()?)) };
    bytes.chunks_exact(16).map(|c| Ok((f(&c[..8])?, f(&c[8..])?))).collect()
}

/// Times `convert_xy` over all points; returns points per second and the results.
fn ours(from: Crs, to: Crs, input: &[(f64, f64)]) -> anyhow::Result<(f64, Vec<(f64, f64)>)> {
    let t = Transform::new(from, to)?;
    let mut pts = input.to_vec();
    let start = Instant::now();
    t.convert_xy(&mut pts)?;
    let secs = start.elapsed().as_secs_f64();
    Ok((input.len() as f64 / secs, pts))
}

const PYTHON: &str = r#"
import array, sys, time
src, out = sys.argv[1], sys.argv[2]
a = array.array('d'); 
with open(src, 'rb') as f: a.frombytes(f.read())
if sys.byteorder != 'little': a.byteswap()
xs, ys = a[0::2], a[1::2]
import pyproj
from pyproj import Transformer
t = Transformer.from_crs(4490, 4547, always_xy=True)
t.transform(xs[:10], ys[:10])  # warm-up: the first call opens proj.db
start = time.perf_counter()
ex, ny = t.transform(xs, ys)
pyproj_s = time.perf_counter() - start
res = array.array('d', [0.0]) * (2 * len(ex)); res[0::2] = array.array('d', ex); res[1::2] = array.array('d', ny)
with open(out, 'wb') as f: f.write(res.tobytes())
print(f"pyproj {pyproj.__version__} {pyproj.proj_version_str} {pyproj_s}")
try:
    from coord_convert.transform import wgs2gcj
except ImportError:
    print("coord-convert missing")
else:
    start = time.perf_counter()
    for x, y in zip(xs, ys): wgs2gcj(x, y)
    print(f"coord-convert {time.perf_counter() - start}")
"#;

struct Peers {
    pyproj_version: String,
    pyproj_secs: f64,
    pyproj_result: Vec<(f64, f64)>,
    coord_convert_secs: Option<f64>,
}

fn peers(python: &str, input: &[(f64, f64)]) -> anyhow::Result<Peers> {
    let probe = Command::new(python).args(["-c", "import pyproj"]).output();
    match probe {
        Ok(o) if o.status.success() => {}
        Ok(_) => bail!("pyproj is not installed for `{python}`; install it with: {PIP}"),
        Err(e) => bail!("cannot run `{python}` ({e}); install Python 3 and then: {PIP}"),
    }
    let dir = std::env::temp_dir().join(format!("shikong-bench-crs-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (src, out) = (dir.join("points.f64"), dir.join("pyproj.f64"));
    write_f64s(&src, input)?;
    let run = Command::new(python).arg("-c").arg(PYTHON).arg(&src).arg(&out).output();
    let result = run.context("running the pyproj script").and_then(|o| {
        if !o.status.success() {
            bail!("the pyproj script failed:\n{}", String::from_utf8_lossy(&o.stderr));
        }
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        let mut peers = Peers {
            pyproj_version: String::new(),
            pyproj_secs: 0.0,
            pyproj_result: read_f64s(&out)?,
            coord_convert_secs: None,
        };
        for line in stdout.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["pyproj", version, proj, secs] => {
                    peers.pyproj_version = format!("pyproj {version}, PROJ {proj}");
                    peers.pyproj_secs = secs.parse()?;
                }
                ["coord-convert", secs] => peers.coord_convert_secs = Some(secs.parse()?),
                _ => {}
            }
        }
        if peers.pyproj_secs <= 0.0 {
            bail!("the pyproj script printed no timing:\n{stdout}");
        }
        Ok(peers)
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn rate(points_per_sec: f64) -> String {
    format!("{:>12.0} points/s", points_per_sec)
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let n = args.points;
    if n == 0 {
        bail!("--points must be at least 1");
    }
    let input = points(n);
    println!("crs bench: {n} points, lon 112.5–115.5°E, lat 29–33°N (one convert_xy call per run)");

    let setup = Instant::now();
    let warm = Transform::new(Crs::CGCS2000, Crs::Epsg(4547))?;
    warm.convert_xy(&mut [(114.0, 30.0)])?;
    println!("  Transform::new(4490 → 4547) + first point: {:.1} ms", setup.elapsed().as_secs_f64() * 1e3);

    let (proj_rate, proj_out) = ours(Crs::CGCS2000, Crs::Epsg(4547), &input)?;
    let (gcj_rate, gcj_out) = ours(Crs::WGS84, Crs::Gcj02, &input)?;
    let (inv_rate, _) = ours(Crs::Gcj02, Crs::WGS84, &gcj_out)?;
    let peers = peers(&args.python, &input)?;
    let py_rate = n as f64 / peers.pyproj_secs;
    let max_diff = proj_out
        .iter()
        .zip(&peers.pyproj_result)
        .map(|(a, b)| (a.0 - b.0).abs().max((a.1 - b.1).abs()))
        .fold(0.0_f64, f64::max);

    let mut report = String::new();
    let _ = writeln!(report, "EPSG:4490 → EPSG:4547");
    let _ = writeln!(report, "  shikong-crs (PROJ 9.6.2, bundled)  {}", rate(proj_rate));
    let _ = writeln!(report, "  {:<34} {}", peers.pyproj_version, rate(py_rate));
    let _ = writeln!(report, "  ratio shikong/pyproj: {:.2}×; largest difference: {max_diff:e} m", proj_rate / py_rate);
    let _ = writeln!(report, "WGS 84 → GCJ-02");
    let _ = writeln!(report, "  shikong-geodesy                    {}", rate(gcj_rate));
    match peers.coord_convert_secs {
        Some(s) => {
            let cc_rate = n as f64 / s;
            let _ = writeln!(report, "  coord-convert 0.2.1 (pure Python)  {}", rate(cc_rate));
            let _ = writeln!(report, "  ratio shikong/coord-convert: {:.1}×", gcj_rate / cc_rate);
        }
        None => {
            let _ = writeln!(report, "  coord-convert: not installed, no peer figure ({PIP})");
        }
    }
    let _ = writeln!(report, "  ratio shikong GCJ-02 / pyproj 4490→4547: {:.2}×", gcj_rate / py_rate);
    let _ = writeln!(report, "GCJ-02 → WGS 84 (iterative inverse)");
    let _ = writeln!(report, "  shikong-geodesy                    {}", rate(inv_rate));
    print!("{report}");
    Ok(())
}
