//! Map tile benchmark (issue 6): tiles/s and p99 for (a) vector tiles generated from a 1M-point
//! layer at z12–z16 with an empty cache, and (b) cached vector tiles, beside Martin serving the
//! same features in the same run — from PostGIS for generation (its `ST_AsMVT` path) and from an
//! MBTiles file (gzip tiles, made by `martin-cp` from the same PostGIS table) for cached tiles.
//! Also: the time to produce an offline package of a 10 km² district at z12–z18.
//!
//! Generation is measured with an in-process load generator that requests every tile of a zoom
//! exactly once (so neither server can answer from a cache), 16 clients at a time; cached tiles
//! with `wrk` cycling over the same tiles. Both servers see `Accept-Encoding: gzip`. Martin runs
//! with its defaults (including its in-memory tile cache). Nothing here is a threshold.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_model::Bbox;
use shikong_store::{StoreConfig, TxMeta};

use crate::data::{AREA, write_geojson};
use crate::serve::{Killed, free_port, start_shikong, wait_ready};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    features: u64,
    /// Seconds of wrk load per server for cached tiles.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Concurrent clients of the generation run.
    #[arg(long, default_value_t = 16)]
    clients: usize,
    /// Working directory (reused: data, store and PostGIS cluster are kept between runs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The martin binary (default: ~/.cache/shikong-bench/martin/bin/martin, installed when missing).
    #[arg(long)]
    martin: Option<PathBuf>,
}

fn exec(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The bench area: the 3×3 z12 tiles at the centre of the data (z16: 48×48 tiles).
fn bench_area() -> Bbox {
    let tms = shikong_tiles::TileMatrixSet::WebMercatorQuad;
    let (cx, cy) = ((AREA.min_x + AREA.max_x) / 2.0, (AREA.min_y + AREA.max_y) / 2.0);
    let c = tms
        .tiles_for(&Bbox { min_x: cx, min_y: cy, max_x: cx, max_y: cy }, 12, 0.0)
        .map_or((0, 0), |r| (r.min_x, r.min_y));
    let nw = tms.tile_bbox(shikong_tiles::TileId { z: 12, x: c.0 - 1, y: c.1 - 1 }, 0.0);
    let se = tms.tile_bbox(shikong_tiles::TileId { z: 12, x: c.0 + 1, y: c.1 + 1 }, 0.0);
    nw.union(&se)
}

fn tiles_at(area: &Bbox, z: u8) -> Vec<(u8, u32, u32)> {
    let tms = shikong_tiles::TileMatrixSet::WebMercatorQuad;
    // Shrink by a hair so the edge tiles of the next zoom are not included.
    let inner =
        Bbox { min_x: area.min_x + 1e-9, min_y: area.min_y + 1e-9, max_x: area.max_x - 1e-9, max_y: area.max_y - 1e-9 };
    tms.tiles_for(&inner, z, 0.0).map(|r| r.iter().map(|t| (t.z, t.x, t.y)).collect()).unwrap_or_default()
}

/// One pass over a list of tiles.
struct Pass {
    rate: f64,
    p99: f64,
    /// Bytes on the wire (gzip as sent).
    wire: u64,
    /// Bytes of the decoded MVT.
    raw: u64,
    errors: usize,
}

/// The decoded length of a body (gzip or not).
fn raw_len(body: &[u8]) -> usize {
    use std::io::Read;
    if !body.starts_with(&[0x1f, 0x8b]) {
        return body.len();
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(body).read_to_end(&mut out).unwrap_or(0)
}

/// Requests every URL once with `clients` concurrent keep-alive clients, asking for gzip and
/// counting the bytes as sent and as decoded.
fn each_once(urls: &[String], clients: usize) -> anyhow::Result<Pass> {
    let next = AtomicUsize::new(0);
    let lat = Mutex::new(Vec::with_capacity(urls.len()));
    let (wire, raw) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let errors = AtomicUsize::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..clients {
            s.spawn(|| {
                // No transparent decompression: the wire bytes are what a tablet pays for.
                let http = reqwest::blocking::Client::builder().no_gzip().timeout(Duration::from_secs(120)).build();
                let Ok(http) = http else { return };
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(u) = urls.get(i) else { break };
                    let t = Instant::now();
                    match http.get(u).header("accept-encoding", "gzip").send().and_then(|r| {
                        let ok = r.status().is_success();
                        r.bytes().map(|b| (ok, b))
                    }) {
                        Ok((ok, b)) => {
                            wire.fetch_add(b.len(), Ordering::Relaxed);
                            raw.fetch_add(raw_len(&b), Ordering::Relaxed);
                            if !ok {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    mine.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(mine);
            });
        }
    });
    let secs = t0.elapsed().as_secs_f64();
    let mut lat = lat.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| {
        lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(f64::NAN)
    };
    Ok(Pass {
        rate: urls.len() as f64 / secs,
        p99: pct(0.99),
        wire: wire.load(Ordering::Relaxed) as u64,
        raw: raw.load(Ordering::Relaxed) as u64,
        errors: errors.load(Ordering::Relaxed),
    })
}

/// The 1, 5 and 15 minute load averages (other work on the machine skews every figure).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map_or_else(|_| "?".into(), |s| s.split(' ').take(3).collect::<Vec<_>>().join(" "))
}

/// KB per tile.
fn kb(bytes: u64, tiles: usize) -> f64 {
    bytes as f64 / tiles.max(1) as f64 / 1024.0
}

/// wrk cycling over `paths`: (req/s, p50 ms, p99 ms, error summary).
fn wrk(base: &str, paths: &[String], a: &Args, dir: &Path, name: &str) -> anyhow::Result<(f64, f64, f64, String)> {
    let script = dir.join(format!("{name}.lua"));
    crate::wrk::paths_script(&script, paths, true)?;
    let l = crate::wrk::run(crate::wrk::command(base, &script, 2, a.connections, a.duration))?;
    Ok((l.rps, l.p50, l.p99, l.errors))
}

/// A throwaway PostgreSQL cluster with PostGIS (as the `postgres` user when run as root).
struct Postgres {
    dir: PathBuf,
    port: u16,
    as_root: bool,
}

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl Postgres {
    fn cmd(&self, prog: &str) -> Command {
        if self.as_root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(format!("{PG_BIN}/{prog}"));
            c
        } else {
            Command::new(format!("{PG_BIN}/{prog}"))
        }
    }

    fn start(dir: &Path) -> anyhow::Result<Self> {
        if !Path::new(PG_BIN).join("postgres").exists() {
            bail!("PostgreSQL 15 is not installed: apt-get install postgresql-15-postgis-3");
        }
        let as_root = exec(Command::new("id").arg("-u"))?.trim() == "0";
        let pg = Postgres { dir: dir.join("pg"), port: free_port()?, as_root };
        if !pg.dir.join("PG_VERSION").exists() {
            std::fs::create_dir_all(&pg.dir)?;
            if as_root {
                // The postgres user must reach the cluster directory.
                exec(Command::new("chmod").args(["o+x"]).arg(dir))?;
                exec(Command::new("chown").args(["-R", "postgres:postgres"]).arg(&pg.dir))?;
            }
            exec(pg.cmd("initdb").args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "-D"]).arg(&pg.dir))?;
        }
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c shared_buffers=1GB -c fsync=off",
            pg.port,
            pg.dir.display()
        );
        exec(
            pg.cmd("pg_ctl")
                .args(["-D"])
                .arg(&pg.dir)
                .args(["-o", &opts, "-w", "-l"])
                .arg(pg.dir.join("log.txt"))
                .arg("start"),
        )?;
        Ok(pg)
    }

    fn url(&self, db: &str) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/{db}", self.port)
    }

    fn psql(&self, db: &str, sql: &str) -> anyhow::Result<String> {
        exec(Command::new("psql").args(["-X", "-q", "-t", "-A", &self.url(db), "-c", sql]))
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.cmd("pg_ctl").args(["-D"]).arg(&self.dir).args(["-m", "fast", "stop"]).output();
    }
}

fn martin_binary(a: &Args) -> anyhow::Result<PathBuf> {
    if let Some(m) = &a.martin {
        return Ok(m.clone());
    }
    let root =
        PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into())).join(".cache/shikong-bench/martin");
    let bin = root.join("bin/martin");
    if !bin.exists() {
        let cmd = format!(
            "cargo install martin --version 1.14.0 --locked --no-default-features --features postgres,mbtiles,pmtiles --root {}",
            root.display()
        );
        println!("# installing Martin (once; takes several minutes): {cmd}");
        let st = Command::new("sh").arg("-c").arg(&cmd).status()?;
        if !st.success() {
            bail!("installing martin failed: {cmd}");
        }
    }
    Ok(bin)
}

fn start_martin(bin: &Path, source: &str) -> anyhow::Result<(Killed, String)> {
    let port = free_port()?;
    let child = Command::new(bin)
        .args(["--listen-addresses", &format!("127.0.0.1:{port}")])
        .arg(source)
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
    let base = format!("http://127.0.0.1:{port}");
    let k = Killed(child);
    wait_ready(&format!("{base}/catalog"))?;
    Ok((k, base))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let martin = martin_binary(&a)?;
    println!("# shikong tile benchmark: {} point features over Wuhan; Martin {}", a.features, martin.display());
    println!("# load average at start: {}", loadavg());

    // The same features in a shikong store (public layer) and in PostGIS.
    let src = dir.join("points.geojson");
    if !src.exists() {
        write_geojson(&src, a.features)?;
    }
    let data = dir.join("data");
    let store_path = data.join("store.gpkg");
    if !store_path.exists() {
        std::fs::create_dir_all(&data)?;
        let store = shikong_store::init(&StoreConfig::sqlite_file(&store_path))?;
        let opts = ImportOptions { layer: "manhole".into(), author: "bench".into(), ..ImportOptions::default() };
        let t = Instant::now();
        import::import(&*store, &src, &opts, &ToStoreFrame, &mut |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut def = store.layer("manhole")?.def;
        def.public = true;
        let mut tx = store.begin(TxMeta::by("bench"))?;
        tx.update_layer("manhole", def)?;
        tx.commit()?;
        println!("# shikong import: {:.1} s", t.elapsed().as_secs_f64());
    }
    let _ = std::fs::remove_dir_all(data.join("tiles")); // start with an empty tile cache
    let pg = Postgres::start(&dir)?;
    let loaded = pg.psql("bench", "SELECT count(*) FROM manhole").ok().and_then(|s| s.trim().parse::<u64>().ok());
    if loaded != Some(a.features) {
        let _ = pg.psql("postgres", "DROP DATABASE IF EXISTS bench");
        pg.psql("postgres", "CREATE DATABASE bench")?;
        pg.psql("bench", "CREATE EXTENSION postgis")?;
        let t = Instant::now();
        exec(
            Command::new("ogr2ogr")
                .args(["-f", "PostgreSQL", &format!("PG:host=127.0.0.1 port={} user=postgres dbname=bench", pg.port)])
                .arg(&src)
                .args([
                    "-nln",
                    "manhole",
                    "-lco",
                    "GEOMETRY_NAME=geom",
                    "-lco",
                    "SPATIAL_INDEX=GIST",
                    "-a_srs",
                    "EPSG:4326",
                    "--config",
                    "PG_USE_COPY",
                    "YES",
                ]),
        )?;
        pg.psql("bench", "ANALYZE manhole")?;
        println!("# PostGIS load (ogr2ogr): {:.1} s", t.elapsed().as_secs_f64());
    }

    let area = bench_area();
    let zooms: Vec<u8> = (12..=16).collect();
    let per_zoom: Vec<Vec<(u8, u32, u32)>> = zooms.iter().map(|z| tiles_at(&area, *z)).collect();
    let total: usize = per_zoom.iter().map(Vec::len).sum();
    println!(
        "# area {:.4},{:.4},{:.4},{:.4}: {total} tiles at z12–16 ({}); {} generation clients; wrk -c{} {} s",
        area.min_x,
        area.min_y,
        area.max_x,
        area.max_y,
        per_zoom.iter().map(|v| v.len().to_string()).collect::<Vec<_>>().join("/"),
        a.clients,
        a.connections,
        a.duration
    );

    // (a) generation: every tile once, zoom by zoom.
    let (sk_proc, sk) = start_shikong(&data)?;
    let (mg_proc, mg) = start_martin(&martin, &pg.url("bench"))?;
    // Warm both (connections, page cache) on tiles outside the measured set.
    let warm: Vec<(u8, u32, u32)> = tiles_at(&AREA, 11);
    each_once(
        &warm.iter().map(|t| format!("{sk}/tiles/manhole/{}/{}/{}.mvt", t.0, t.1, t.2)).collect::<Vec<_>>(),
        a.clients,
    )?;
    each_once(&warm.iter().map(|t| format!("{mg}/manhole/{}/{}/{}", t.0, t.1, t.2)).collect::<Vec<_>>(), a.clients)?;
    println!("\n(a) uncached tiles generated from the 1M layer (each tile requested once)");
    println!(
        "zoom  tiles | shikong tiles/s   p99 ms  KB/tile gzip (MVT) | Martin+PostGIS tiles/s   p99 ms  KB/tile gzip (MVT) | ratio"
    );
    let (mut sk_all, mut mg_all) = (0.0, 0.0);
    for (z, tiles) in zooms.iter().zip(&per_zoom) {
        let sk_urls: Vec<String> =
            tiles.iter().map(|t| format!("{sk}/tiles/manhole/{}/{}/{}.mvt", t.0, t.1, t.2)).collect();
        let mg_urls: Vec<String> = tiles.iter().map(|t| format!("{mg}/manhole/{}/{}/{}", t.0, t.1, t.2)).collect();
        let s = each_once(&sk_urls, a.clients)?;
        let m = each_once(&mg_urls, a.clients)?;
        sk_all += tiles.len() as f64 / s.rate;
        mg_all += tiles.len() as f64 / m.rate;
        let n = tiles.len();
        println!(
            "z{z:<3} {n:>6} | {:>15.1} {:>8.1} {:>12.1} {:>9} | {:>22.1} {:>8.1} {:>12.1} {:>9} | {:.2}{}",
            s.rate,
            s.p99,
            kb(s.wire, n),
            format!("({:.1})", kb(s.raw, n)),
            m.rate,
            m.p99,
            kb(m.wire, n),
            format!("({:.1})", kb(m.raw, n)),
            s.rate / m.rate,
            if s.errors + m.errors > 0 {
                format!("  (errors: shikong {}, martin {})", s.errors, m.errors)
            } else {
                String::new()
            }
        );
    }
    println!(
        "all   {total:>6} | {:>15.1} {:>32} | {:>22.1} {:>32} | {:.2}",
        total as f64 / sk_all,
        "",
        total as f64 / mg_all,
        "",
        mg_all / sk_all
    );
    drop(mg_proc);

    // (b) cached: shikong's cache now holds every tile; Martin serves an MBTiles of the same
    // tiles made by martin-cp from the same PostGIS table (gzip, as served).
    let mbtiles = dir.join("manhole.mbtiles");
    let _ = std::fs::remove_file(&mbtiles);
    let t = Instant::now();
    exec(
        Command::new(martin.with_file_name("martin-cp"))
            .args(["--output-file"])
            .arg(&mbtiles)
            .args([
                "--mbtiles-type",
                "flat",
                "--encoding",
                "gzip",
                "--concurrency",
                "4",
                "--min-zoom",
                "12",
                "--max-zoom",
                "16",
            ])
            .args([
                "--bbox",
                &format!("{},{},{},{}", area.min_x + 1e-9, area.min_y + 1e-9, area.max_x - 1e-9, area.max_y - 1e-9),
            ])
            .arg(pg.url("bench")),
    )?;
    println!("\n# martin-cp wrote {} in {:.1} s", mbtiles.display(), t.elapsed().as_secs_f64());
    let (mg_proc, mg) = start_martin(&martin, &mbtiles.display().to_string())?;
    // The bytes of every cached tile as served, zoom by zoom: what a map pays for on the wire.
    println!("\n(b) cached vector tiles: bytes as served (each tile once, Accept-Encoding: gzip)");
    println!("zoom  tiles | shikong KB/tile gzip   (MVT) | Martin KB/tile gzip   (MVT) | gzip ratio  MVT ratio");
    let (mut sk_bytes, mut mg_bytes) = ((0, 0), (0, 0));
    for (z, tiles) in zooms.iter().zip(&per_zoom) {
        let n = tiles.len();
        let s = each_once(
            &tiles.iter().map(|t| format!("{sk}/tiles/manhole/{}/{}/{}.mvt", t.0, t.1, t.2)).collect::<Vec<_>>(),
            a.clients,
        )?;
        let m = each_once(
            &tiles.iter().map(|t| format!("{mg}/manhole/{}/{}/{}", t.0, t.1, t.2)).collect::<Vec<_>>(),
            a.clients,
        )?;
        sk_bytes = (sk_bytes.0 + s.wire, sk_bytes.1 + s.raw);
        mg_bytes = (mg_bytes.0 + m.wire, mg_bytes.1 + m.raw);
        println!(
            "z{z:<3} {n:>6} | {:>20.1} {:>8} | {:>19.1} {:>8} | {:>10.2} {:>10.2}",
            kb(s.wire, n),
            format!("({:.1})", kb(s.raw, n)),
            kb(m.wire, n),
            format!("({:.1})", kb(m.raw, n)),
            s.wire as f64 / m.wire.max(1) as f64,
            s.raw as f64 / m.raw.max(1) as f64,
        );
    }
    println!(
        "all   {total:>6} | {:>17.1} MB {:>8} | {:>16.1} MB {:>8} | {:>10.2} {:>10.2}",
        sk_bytes.0 as f64 / 1_048_576.0,
        format!("({:.1})", sk_bytes.1 as f64 / 1_048_576.0),
        mg_bytes.0 as f64 / 1_048_576.0,
        format!("({:.1})", mg_bytes.1 as f64 / 1_048_576.0),
        sk_bytes.0 as f64 / mg_bytes.0.max(1) as f64,
        sk_bytes.1 as f64 / mg_bytes.1.max(1) as f64,
    );
    let all: Vec<&(u8, u32, u32)> = per_zoom.iter().flatten().collect();
    let sk_paths: Vec<String> = all.iter().map(|t| format!("/tiles/manhole/{}/{}/{}.mvt", t.0, t.1, t.2)).collect();
    let mg_paths: Vec<String> = all.iter().map(|t| format!("/manhole/{}/{}/{}", t.0, t.1, t.2)).collect();
    println!("# load average before wrk: {}", loadavg());
    let s = wrk(&sk, &sk_paths, &a, &dir, "shikong")?;
    let m = wrk(&mg, &mg_paths, &a, &dir, "martin")?;
    drop(mg_proc);
    println!("\n(b) cached vector tiles served (wrk, {} tiles cycled, gzip)", all.len());
    println!(
        "shikong (SQLite tile cache)     : {:>9.1} tiles/s  p50 {:>6.2} ms  p99 {:>6.2} ms {}",
        s.0, s.1, s.2, s.3
    );
    println!(
        "Martin (MBTiles + memory cache) : {:>9.1} tiles/s  p50 {:>6.2} ms  p99 {:>6.2} ms {}",
        m.0, m.1, m.2, m.3
    );
    println!("throughput ratio shikong/Martin : {:.2}", s.0 / m.0);

    // Offline package: a 10 km² district (3.16 km × 3.16 km) outside the benchmarked area,
    // so its tiles are not cached, at z12–18.
    let (lon, lat): (f64, f64) = (114.08, 30.38);
    let dlon = 3.162 / (111.32 * lat.to_radians().cos());
    let dlat = 3.162 / 110.57;
    let body = format!(
        "{{\"set\": \"manhole\", \"minzoom\": 12, \"maxzoom\": 18, \"area\": {{\"type\": \"Polygon\", \"coordinates\": [[[{lon},{lat}],[{x1},{lat}],[{x1},{y1}],[{lon},{y1}],[{lon},{lat}]]]}}}}",
        x1 = lon + dlon,
        y1 = lat + dlat
    );
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let est: serde_json::Value = http
        .post(format!("{sk}/tiles/packages/estimate"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()?
        .json()?;
    let t = Instant::now();
    let r = http.post(format!("{sk}/tiles/packages")).header("content-type", "application/json").body(body).send()?;
    let tiles = r.headers().get("x-tiles").and_then(|v| v.to_str().ok()).unwrap_or("?").to_owned();
    let bytes = r.bytes()?.len();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "\noffline package, 10 km² district z12–18: {tiles} tiles, {:.1} MB in {secs:.1} s (estimate beforehand: {} tiles, {:.1} MB)",
        bytes as f64 / 1_048_576.0,
        est["tiles"],
        est["bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0
    );
    drop(sk_proc);
    drop(pg);
    Ok(())
}
