//! Desktop figures (issue 16), each beside a peer measured in the same run:
//!
//! - **Time-slider scrubbing** over 100k features added in `--steps` transactions: from the
//!   slider's `input` event to the map's next `idle` (every as-of tile in and drawn), in the
//!   web map (`/map`, the same time module as the desktop) in Debian's Chromium with software
//!   WebGL (SwiftShader). Peer: the same features held by the page as one GeoJSON source and
//!   filtered on the client (`setFilter` on a step property: how QGIS's temporal controller or
//!   kepler.gl scrub an in-memory layer).
//! - **Attribute-table pages** over a 1M-feature layer: `GET …/items?limit=100` following the
//!   `next` links (what the table does), and sorted when the server takes `sortby`. Peer: the same
//!   pages of a GeoPackage made by `ogr2ogr` read with `LIMIT … OFFSET …` in process (how a desktop
//!   GIS pages a GeoPackage table; no HTTP, no JSON).
//! - **Cold start** of the real `shikong-desktop` (release, under `xvfb-run`): from spawning the
//!   process to its `map ready after N ms` log line (the map's first `idle`), signed in by script.
//!   Peer: Chromium loading `/map` to its first `idle`.
//!
//! Nothing here is a threshold; the goals are printed beside the figures.

use std::io::{BufRead as _, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value as Json;
use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_store::{StoreConfig, TxMeta};

use crate::data::{AREA, Lcg, write_geojson};
use crate::serve::{shikong_exe, start_shikong};

#[derive(clap::Args)]
pub struct Args {
    /// Features of the time-slider layer.
    #[arg(long, default_value_t = 100_000)]
    timed: u64,
    /// Transactions they are added in (the slider's steps).
    #[arg(long, default_value_t = 50)]
    steps: u64,
    /// Slider moves measured (each to a random step).
    #[arg(long, default_value_t = 40)]
    scrubs: usize,
    /// Features of the attribute-table layer.
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Table pages read.
    #[arg(long, default_value_t = 200)]
    pages: usize,
    /// Cold starts of the desktop app measured.
    #[arg(long, default_value_t = 5)]
    starts: usize,
    /// Working directory (reused: the stores and the GeoPackage are kept between runs).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The desktop binary (default: `shikong-desktop` beside this binary; build it with
    /// `cargo build --release -p shikong-desktop`).
    #[arg(long)]
    desktop: Option<PathBuf>,
}

const PASSWORD: &str = "bench-password-123";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The `p` quantile (0–1) of `v` in ms (sorts `v`).
fn quantile(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn summary(v: &mut [f64]) -> String {
    format!(
        "p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms  (n={})",
        quantile(v, 0.5),
        quantile(v, 0.95),
        quantile(v, 1.0),
        v.len()
    )
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp;
    let dir = match &a.dir {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_owned()
        }
    };
    std::fs::create_dir_all(&dir)?;
    println!("# desktop figures (issue 16) in {}", dir.display());
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../http/web");
    if !web.join("node_modules/playwright-core").is_dir() {
        bail!("the web map's npm packages are missing in {}: run scripts/deps.sh", web.display());
    }

    // Time slider: its own server (only the timed layer on the map).
    let (slider_data, instants, timed_geojson) = timed_layer(&dir, a.timed, a.steps)?;
    add_user(&slider_data)?;
    let (server, base) = start_shikong(&slider_data)?;
    let out = node(
        &web.join("test/slider-bench.mjs"),
        &[&base, &instants.to_string_lossy(), &timed_geojson.to_string_lossy(), &a.scrubs.to_string()],
    )?;
    let mut ours: Vec<f64> = floats(&out["ours"]);
    let mut peer: Vec<f64> = floats(&out["peer"]);
    println!("\n## time slider: input → map idle, {} features in {} steps ({})", a.timed, a.steps, out["webgl"]);
    println!("shikong as-of tiles (/map)        {}", summary(&mut ours));
    println!("peer: client-side filter (GeoJSON) {}", summary(&mut peer));
    println!("goal: p95 < 150 ms");
    let mut web_cold = floats(&out["cold"]);

    // Cold start: the desktop app against the same server.
    match desktop_bin(&a) {
        Ok(bin) => {
            let mut starts = Vec::new();
            for i in 0..a.starts {
                starts.push(cold_start(&bin, &base, &dir.join(format!("desktop-{i}")))?);
            }
            println!("\n## cold start to a usable map");
            println!("shikong-desktop (Xvfb)            {}  ({})", summary(&mut starts), bin.display());
            println!("peer: Chromium loading /map       {}", summary(&mut web_cold));
            println!("goal: < 2 s");
        }
        Err(e) => println!("\n## cold start: not measured: {e}"),
    }
    drop(server);

    // Attribute table: a 1M layer.
    table_pages(&a, &dir)?;
    Ok(())
}

fn floats(v: &Json) -> Vec<f64> {
    v.as_array().map(|a| a.iter().filter_map(Json::as_f64).collect()).unwrap_or_default()
}

/// Runs `node SCRIPT ARGS` and parses its last stdout line as JSON (the scripts print one line).
fn node(script: &Path, args: &[&str]) -> anyhow::Result<Json> {
    let out = Command::new("node")
        .arg(script)
        .args(args)
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("node {}", script.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().last().unwrap_or_default();
    let v: Json = serde_json::from_str(line).with_context(|| format!("{}: {text}", script.display()))?;
    if v["ok"] != true {
        bail!("{} failed: {}", script.display(), v["error"]);
    }
    Ok(v)
}

fn add_user(data: &Path) -> anyhow::Result<()> {
    if data.join(".bench-user").exists() {
        return Ok(());
    }
    let mut add = Command::new(shikong_exe()?)
        .args(["user", "add", "--data"])
        .arg(data)
        .args(["--role", "office", "wang"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    writeln!(add.stdin.take().context("stdin")?, "{PASSWORD}")?;
    if !add.wait()?.success() {
        bail!("shikong user add wang failed");
    }
    std::fs::write(data.join(".bench-user"), "")?;
    Ok(())
}

/// The slider's layer: `n` points added in `steps` imports (one transaction each). Returns the
/// store's folder, a JSON file of the instant after each step, and one GeoJSON file of all the
/// features with their step in `k` (the peer's source).
fn timed_layer(dir: &Path, n: u64, steps: u64) -> anyhow::Result<(PathBuf, PathBuf, PathBuf)> {
    let data = dir.join("slider-data");
    let instants = dir.join("slider-instants.json");
    let all = dir.join("timed.geojson");
    if instants.is_file() {
        return Ok((data, instants, all));
    }
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data)?;
    let store = shikong_store::init(&StoreConfig::sqlite_file(data.join("store.gpkg")))?;
    let per = n.div_ceil(steps);
    let mut rng = Lcg(7);
    let mut whole = BufWriter::new(std::fs::File::create(&all)?);
    write!(whole, "{{\"type\":\"FeatureCollection\",\"features\":[")?;
    let mut times = Vec::new();
    let t = Instant::now();
    for k in 0..steps {
        let chunk = dir.join("timed-chunk.geojson");
        let mut w = BufWriter::new(std::fs::File::create(&chunk)?);
        write!(w, "{{\"type\":\"FeatureCollection\",\"features\":[")?;
        for i in 0..per.min(n - k * per) {
            let (x, y) = (AREA.min_x + rng.next() * AREA.width(), AREA.min_y + rng.next() * AREA.height());
            let f = format!(
                "{{\"type\":\"Feature\",\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{x:.6},{y:.6}]}},\"properties\":{{\"code\":\"SJ-{k:03}-{i:05}\",\"name\":\"第{k}批第{i}号\",\"k\":{k}}}}}"
            );
            write!(w, "{}{f}", if i == 0 { "" } else { "," })?;
            write!(whole, "{}{f}", if k == 0 && i == 0 { "" } else { "," })?;
        }
        writeln!(w, "]}}")?;
        w.flush()?;
        drop(w);
        let opts = ImportOptions { layer: "timed".into(), author: "bench".into(), ..ImportOptions::default() };
        import::import(&*store, &chunk, &opts, &ToStoreFrame, &mut |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
        std::thread::sleep(Duration::from_millis(2));
        times.push(jiff::Timestamp::now().to_string());
    }
    writeln!(whole, "]}}")?;
    whole.flush()?;
    let mut def = store.layer("timed")?.def;
    def.public = true;
    let mut tx = store.begin(TxMeta::by("bench"))?;
    tx.update_layer("timed", def)?;
    tx.commit()?;
    println!("# slider layer: {n} features in {steps} transactions, {:.1} s", t.elapsed().as_secs_f64());
    std::fs::write(&instants, serde_json::to_string(&times)?)?;
    Ok((data, instants, all))
}

fn desktop_bin(a: &Args) -> anyhow::Result<PathBuf> {
    let bin = match &a.desktop {
        Some(b) => b.clone(),
        None => std::env::current_exe()?.with_file_name("shikong-desktop"),
    };
    if !bin.is_file() {
        bail!("{} not found: build it with `cargo build --release -p shikong-desktop`", bin.display());
    }
    if Command::new("xvfb-run").arg("--help").stdout(Stdio::null()).stderr(Stdio::null()).status().is_err() {
        bail!("xvfb-run not found: apt install xvfb");
    }
    Ok(bin)
}

/// One cold start: spawn → `map ready` on the app's log (ms).
fn cold_start(bin: &Path, base: &str, data: &Path) -> anyhow::Result<f64> {
    use std::os::unix::process::CommandExt as _;
    std::fs::create_dir_all(data)?;
    let password = data.join("password");
    std::fs::write(&password, format!("{PASSWORD}\n"))?;
    let t = Instant::now();
    let mut child = Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1280x900x24"])
        .arg(bin)
        .args(["--server", base, "--user", "wang", "--view", "map", "--data"])
        .arg(data)
        .env("SHIKONG_DESKTOP_PASSWORD_FILE", &password)
        .env("SHIKONG_DESKTOP_SECRETS", "file")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()?;
    let err = child.stderr.take().context("stderr")?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(err).lines().map_while(Result::ok) {
            if line.contains("map ready after") {
                let _ = tx.send(Ok(()));
                return;
            }
            if line.contains("ERROR") {
                let _ = tx.send(Err(line));
                return;
            }
        }
    });
    let got = rx.recv_timeout(Duration::from_secs(60));
    let elapsed = ms(t.elapsed());
    let _ = Command::new("kill").args(["-s", "TERM", "--", &format!("-{}", child.id())]).status();
    let _ = child.wait();
    match got {
        Ok(Ok(())) => Ok(elapsed),
        Ok(Err(line)) => bail!("shikong-desktop: {line}"),
        Err(_) => bail!("shikong-desktop drew no map within 60 s"),
    }
}

/// Table pages over `rows` features, ours over HTTP and the GeoPackage peer.
fn table_pages(a: &Args, dir: &Path) -> anyhow::Result<()> {
    let data = dir.join("table-data");
    let src = dir.join("rows.geojson");
    let gpkg = dir.join("rows.gpkg");
    if !data.join(".bench-ready").exists() {
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data)?;
        write_geojson(&src, a.rows)?;
        let store = shikong_store::init(&StoreConfig::sqlite_file(data.join("store.gpkg")))?;
        let opts = ImportOptions { layer: "manhole".into(), author: "bench".into(), ..ImportOptions::default() };
        let t = Instant::now();
        import::import(&*store, &src, &opts, &ToStoreFrame, &mut |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("# table layer: {} features imported, {:.1} s", a.rows, t.elapsed().as_secs_f64());
        drop(store);
        add_user(&data)?;
        std::fs::write(data.join(".bench-ready"), "")?;
    }
    if !gpkg.is_file() {
        let out = Command::new("ogr2ogr")
            .args(["-f", "GPKG", "-nln", "manhole"])
            .arg(&gpkg)
            .arg(&src)
            .output()
            .context("ogr2ogr (apt install gdal-bin)")?;
        if !out.status.success() {
            bail!("ogr2ogr failed: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    let (server, base) = start_shikong(&data)?;
    let http = reqwest::blocking::Client::new();
    let token = {
        let r: Json = http
            .post(format!("{base}/auth/login"))
            .json(&serde_json::json!({"username": "wang", "password": PASSWORD}))
            .send()?
            .error_for_status()?
            .json()?;
        r["token"].as_str().context("token")?.to_owned()
    };
    println!("\n## attribute table: pages of 100 over {} features", a.rows);
    let walk = |first: String| -> anyhow::Result<Option<Vec<f64>>> {
        let mut times = Vec::new();
        let mut url = Some(first);
        while let Some(u) = url.take() {
            if times.len() == a.pages {
                break;
            }
            let t = Instant::now();
            let r = http.get(&u).bearer_auth(&token).header("accept", "application/geo+json").send()?;
            if r.status() == 400 && times.is_empty() {
                return Ok(None);
            }
            let page: Json = r.error_for_status()?.json()?;
            times.push(ms(t.elapsed()));
            let n = page["features"].as_array().map_or(0, Vec::len);
            if n != 100 {
                bail!("a page of {n} features at {u}");
            }
            url = page["links"]
                .as_array()
                .and_then(|l| l.iter().find(|l| l["rel"] == "next"))
                .and_then(|l| l["href"].as_str())
                .map(str::to_owned);
        }
        Ok(Some(times))
    };
    let mut plain = walk(format!("{base}/collections/manhole/items?limit=100"))?.context("items refused")?;
    println!("shikong items, next links          {}", summary(&mut plain));
    match walk(format!("{base}/collections/manhole/items?limit=100&sortby=-depth"))? {
        Some(mut sorted) => println!("shikong items, sortby=-depth       {}", summary(&mut sorted)),
        None => println!("shikong items, sortby=-depth       refused (400)"),
    }
    drop(server);

    let db = rusqlite::Connection::open_with_flags(&gpkg, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = db.prepare("SELECT * FROM manhole LIMIT 100 OFFSET ?1")?;
    let cols = stmt.column_count();
    let mut peer = Vec::new();
    // The same pages the walk read, and one deep page (the middle of the layer).
    let mut deep = Vec::new();
    for p in 0..=a.pages as u64 {
        let offset = if p == a.pages as u64 { a.rows / 2 } else { p * 100 };
        let t = Instant::now();
        let mut rows = stmt.query([offset])?;
        let mut n = 0;
        while let Some(r) = rows.next()? {
            for c in 0..cols {
                let _: rusqlite::types::Value = r.get(c)?;
            }
            n += 1;
        }
        if p == a.pages as u64 {
            deep.push(ms(t.elapsed()))
        } else {
            peer.push(ms(t.elapsed()))
        }
        if n != 100 {
            bail!("GeoPackage page at {offset}: {n} rows");
        }
    }
    println!("peer: GeoPackage LIMIT/OFFSET      {}  (in process, no HTTP)", summary(&mut peer));
    println!("peer: the same, page at row {}     {:.1} ms", a.rows / 2, deep[0]);
    println!("goal: < 100 ms a page");
    Ok(())
}
