//! Server load benchmark (issue 4): requests/s and p50/p99 latency of
//! `items?bbox=…&limit=100` on a large point layer at 32 concurrent clients (wrk on loopback),
//! beside pygeoapi serving the same features from a GeoPackage through its OGR provider (GDAL's
//! spatial index) under gunicorn, in the same run.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_store::{StoreConfig, TxMeta};

use crate::data::{boxes, write_geojson};
use crate::wrk::{Load, bbox_items_script};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 1_000_000)]
    features: u64,
    /// Seconds of load per server.
    #[arg(long, default_value_t = 20)]
    duration: u64,
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// Gunicorn workers for pygeoapi (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    #[arg(long)]
    dir: Option<PathBuf>,
}

pub(crate) struct Killed(pub(crate) Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub(crate) fn wait_ready(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::blocking::get(url)
            && r.status().is_success()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("{url} did not become ready")
}

/// A store in `data` holding the points of `src` as the public layer `manhole`.
pub(crate) fn public_point_store(data: &Path, src: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(data)?;
    let store = shikong_store::init(&StoreConfig::in_dir(data))?;
    let opts = ImportOptions { layer: "manhole".into(), author: "bench".into(), ..ImportOptions::default() };
    import::import(&*store, src, &opts, &ToStoreFrame, &mut |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut def = store.layer("manhole")?.def;
    def.public = true;
    let mut tx = store.begin(TxMeta::by("bench"))?;
    tx.update_layer("manhole", def)?;
    tx.commit()?;
    Ok(())
}

/// The release `shikong` binary beside this one, serving `data` on a free loopback port; killed on
/// drop. Returns the process guard and the base URL once `/healthz` answers.
pub(crate) fn start_shikong(data: &Path) -> anyhow::Result<(Killed, String)> {
    start_shikong_with(data, &[])
}

/// [`start_shikong`] with extra environment variables.
pub(crate) fn start_shikong_with(data: &Path, env: &[(&str, &str)]) -> anyhow::Result<(Killed, String)> {
    let exe = shikong_exe()?;
    let mut child = Command::new(&exe)
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?).read_line(&mut line)?;
    let guard = Killed(child);
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    wait_ready(&format!("{base}/healthz"))?;
    Ok((guard, base))
}

/// The release `shikong` binary built beside this one.
pub(crate) fn shikong_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?.with_file_name("shikong");
    if !exe.exists() {
        bail!("{} not found: build it with `cargo build --release -p shikong-server`", exe.display());
    }
    Ok(exe)
}

fn wrk(base: &str, script: &Path, a: &Args) -> anyhow::Result<Load> {
    crate::wrk::run(crate::wrk::command(base, script, 2, a.connections, a.duration))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let src = dir.join("points.geojson");
    println!(
        "# shikong server benchmark: {} point features, wrk -c{} for {} s per server",
        a.features, a.connections, a.duration
    );
    write_geojson(&src, a.features)?;

    // The same features in a shikong store (public layer: both servers answer anonymously)…
    let data = dir.join("data");
    public_point_store(&data, &src)?;
    // …and in a plain GeoPackage for pygeoapi.
    let gpkg = dir.join("points.gpkg");
    let _ = std::fs::remove_file(&gpkg);
    let st = Command::new("ogr2ogr")
        .args(["-f", "GPKG", "-nln", "manhole"])
        .arg(&gpkg)
        .arg(&src)
        .status()
        .context("ogr2ogr")?;
    if !st.success() {
        bail!("ogr2ogr failed");
    }

    let script = dir.join("bbox.lua");
    bbox_items_script(&script, &boxes(a.features, 1000.0, 2000, 11))?;

    // shikong
    let (shikong, sk_base) = start_shikong(&data)?;
    let sk = wrk(&sk_base, &script, &a)?;
    drop(shikong);

    // pygeoapi (OGR provider on the GeoPackage), gunicorn with one worker per core.
    let port = free_port()?;
    let cfg = dir.join("pygeoapi.yml");
    let mut f = std::fs::File::create(&cfg)?;
    write!(
        f,
        "server:\n  bind: {{host: 127.0.0.1, port: {port}}}\n  url: http://127.0.0.1:{port}\n  mimetype: application/json; charset=UTF-8\n  encoding: utf-8\n  language: en-US\n  limits: {{default_items: 10, max_items: 10000}}\n  map: {{url: 'https://tile.openstreetmap.org/{{z}}/{{x}}/{{y}}.png', attribution: OSM}}\n\
         logging: {{level: ERROR}}\nmetadata:\n  identification: {{title: bench, description: bench, keywords: [bench], keywords_type: theme, terms_of_service: none, url: http://example.org}}\n  license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}\n  provider: {{name: bench, url: http://example.org}}\n  contact: {{name: bench, position: bench, address: bench, city: bench, stateorprovince: bench, postalcode: '0', country: CN, phone: '0', fax: '0', email: a@example.org, url: http://example.org, hours: all, instructions: none, role: pointOfContact}}\n\
         resources:\n  manhole:\n    type: collection\n    title: manhole\n    description: manhole\n    keywords: [manhole]\n    extents: {{spatial: {{bbox: [114.0, 30.3, 114.6, 30.8], crs: 'http://www.opengis.net/def/crs/OGC/1.3/CRS84'}}}}\n    providers:\n      - type: feature\n        name: OGR\n        data: {{source_type: GPKG, source: {}, source_capabilities: {{paging: true}}, source_options: {{}}, gdal_ogr_options: {{}}}}\n        id_field: fid\n        layer: manhole\n",
        gpkg.display()
    )?;
    drop(f);
    let openapi = dir.join("pygeoapi-openapi.yml");
    let generated =
        Command::new("pygeoapi").args(["openapi", "generate"]).arg(&cfg).args(["--output-file"]).arg(&openapi).status();
    if !generated.map(|s| s.success()).unwrap_or(false) {
        bail!("pygeoapi is not installed or failed (pip install pygeoapi gunicorn GDAL==$(gdal-config --version))");
    }
    let workers = a.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let py = Command::new("gunicorn")
        .args(["-w", &workers.to_string(), "-b", &format!("127.0.0.1:{port}"), "pygeoapi.flask_app:APP"])
        .env("PYGEOAPI_CONFIG", &cfg)
        .env("PYGEOAPI_OPENAPI", &openapi)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting gunicorn (pip install gunicorn)")?;
    let pygeoapi = Killed(py);
    let py_base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{py_base}/collections/manhole/items?f=json&limit=1"))?;
    let check = reqwest::blocking::get(format!(
        "{py_base}/collections/manhole/items?f=json&limit=100&bbox=114.2,30.5,114.21,30.51"
    ))?
    .text()?;
    if !check.contains("Feature") {
        bail!("pygeoapi does not answer features: {}", check.chars().take(300).collect::<String>());
    }
    let py = wrk(&py_base, &script, &a)?;
    drop(pygeoapi);

    println!("shikong : {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms {}", sk.rps, sk.p50, sk.p99, sk.errors);
    println!(
        "pygeoapi: {:>8.1} req/s  p50 {:>7.2} ms  p99 {:>7.2} ms {} ({workers} gunicorn workers, OGR provider)",
        py.rps, py.p50, py.p99, py.errors
    );
    println!("throughput ratio shikong/pygeoapi: {:.1}", sk.rps / py.rps);
    Ok(())
}
