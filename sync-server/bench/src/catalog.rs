//! Catalog and service proxy benchmark (issue 20), two parts printed side by side in one run:
//!
//! 1. **Records and CSW queries beside pycsw.** The same generated ISO 19139 records (10,000 by
//!    default: titles, abstracts and keywords in Chinese and English, an extent box over Wuhan and
//!    a time span between 2015 and 2025) go into both catalogs: into ours as the ISO-imported
//!    records (`DATA/catalog/imported.json`, written before the server starts because importing
//!    10k records one `POST` at a time rewrites that file each time; one record is then re-imported
//!    through `POST /collections/catalog/items` to show the documents are what the API accepts),
//!    and into pycsw's SQLite repository with `pycsw-admin.py load-records` from the same XML
//!    files. pycsw runs under gunicorn with one worker per core. pycsw's PyPI package `pycsw` stops
//!    at 2.6 (CSW only), so the OGC API – Records peer is GeoNode's packaging of pycsw 3.0
//!    (`geonode-pycsw`, same code base), installed into a venv with the dependency versions it
//!    works with. Each query (`q` with a Chinese word and with an English word, `bbox`, `datetime`)
//!    runs for `--duration` seconds under wrk with 16 connections against our
//!    `/collections/catalog/items` and pycsw's `/collections/metadata:main/items`, and as CSW 2.0.2
//!    `GetRecords` (KVP, CQL text or an OGC Filter) against both `/csw`; printed: req/s, p50/p95,
//!    the hits each side reports (`numberMatched`, `numberOfRecordsMatched`) and the ratio.
//!    Both sides return 10 records per page.
//! 2. **Proxy overhead on WMTS tiles.** A hillshade made by GDAL is uploaded as a raster set; the
//!    server's own `/wmts` is registered as an outside service and a key is issued for it. The same
//!    RESTful tiles are fetched directly and through `/services/{id}/proxy/…?key=` with one
//!    connection (so the figures are per-request latency, not queueing), and, when Debian's
//!    `mapproxy` is installed, through MapProxy (gunicorn, tile source on the same WMTS, storage
//!    disabled so it forwards every request as our proxy does). Printed: p50/p95/p99 of each
//!    route and the overhead at p95 against the direct figures.
//!
//! Nothing here is a threshold; the figures are printed as they come.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use shikong_model::Bbox;
use shikong_store::StoreConfig;

use crate::data::Lcg;
use crate::serve::{Killed, free_port, shikong_exe, start_shikong, wait_ready};

#[derive(clap::Args)]
pub struct Args {
    /// Catalog records loaded into both catalogs (ours keeps at most 10,000 imported).
    #[arg(long, default_value_t = 10_000)]
    records: usize,
    /// Seconds of wrk load per query and server.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent clients (wrk connections) for the catalog queries.
    #[arg(long, default_value_t = 16)]
    connections: u32,
    /// Seconds of load per tile route in the proxy part.
    #[arg(long, default_value_t = 10)]
    tile_duration: u64,
    /// Connections for the tile routes (1: per-request latency without queueing).
    #[arg(long, default_value_t = 1)]
    tile_connections: u32,
    /// Reduced run: 2,000 records, 3 s per load.
    #[arg(long)]
    quick: bool,
    /// Which parts run: `records`, `proxy` or `all`.
    #[arg(long, default_value = "all")]
    part: String,
    /// A Python with pycsw 3 (`pycsw.wsgi_flask`) and gunicorn installed, `pycsw-admin.py` beside
    /// it (default: a venv in ~/.cache/shikong-bench/pycsw-venv, made when missing).
    #[arg(long)]
    python: Option<PathBuf>,
    /// gunicorn workers for pycsw and MapProxy (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Working directory (default: a temporary one).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const ADMIN: &str = "benchadmin";
const PASSWORD: &str = "bench-password-123";
const PAGE: usize = 10;

const DISTRICTS: [&str; 6] = ["洪山区", "武昌区", "江汉区", "汉阳区", "青山区", "江夏区"];
const THEMES: [(&str, &str); 8] = [
    ("排水管网", "drainage network"),
    ("道路中心线", "street centreline"),
    ("井盖", "manhole cover"),
    ("绿地", "green space"),
    ("路灯", "street light"),
    ("公交站", "bus stop"),
    ("河道", "river channel"),
    ("学校", "school"),
];

/// One generated catalog record.
struct Rec {
    id: String,
    title: String,
    description: String,
    keywords: Vec<String>,
    bbox: Bbox,
    begin: String,
    end: String,
}

fn generate(n: usize) -> anyhow::Result<Vec<Rec>> {
    let mut rng = Lcg(20);
    let start = jiff::civil::date(2015, 1, 1);
    (0..n)
        .map(|i| {
            let d = DISTRICTS[(rng.next() * 6.0) as usize % 6];
            let (cn, en) = THEMES[(rng.next() * 8.0) as usize % 8];
            let (cx, cy) = (113.7 + rng.next() * 1.4, 29.9 + rng.next() * 1.5);
            let (hw, hh) = (0.005 + rng.next() * 0.025, 0.005 + rng.next() * 0.025);
            let b = start.checked_add(jiff::Span::new().days((rng.next() * 3650.0) as i64))?;
            let e = b.checked_add(jiff::Span::new().days(30 + (rng.next() * 700.0) as i64))?;
            let r6 = |v: f64| (v * 1e6).round() / 1e6;
            Ok(Rec {
                id: format!("bench-{i:05}"),
                title: format!("{d}{cn}普查 {} 第{i}号", b.year()),
                description: format!("{d}{cn}数据 ({en} survey {}, Wuhan)", b.year()),
                keywords: vec![cn.to_owned(), d.to_owned(), en.to_owned()],
                bbox: Bbox { min_x: r6(cx - hw), min_y: r6(cy - hh), max_x: r6(cx + hw), max_y: r6(cy + hh) },
                begin: format!("{b}T00:00:00Z"),
                end: format!("{e}T00:00:00Z"),
            })
        })
        .collect()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// The record as an ISO 19139 `gmd:MD_Metadata`, shaped like the catalog's own export.
fn iso(r: &Rec) -> String {
    let cs =
        |tag: &str, v: &str| format!("<gmd:{tag}><gco:CharacterString>{}</gco:CharacterString></gmd:{tag}>", esc(v));
    let dec = |tag: &str, v: f64| format!("<gmd:{tag}><gco:Decimal>{v}</gco:Decimal></gmd:{tag}>");
    let keywords: String = r.keywords.iter().map(|k| cs("keyword", k)).collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<gmd:MD_Metadata xmlns:gmd=\"http://www.isotc211.org/2005/gmd\" xmlns:gco=\"http://www.isotc211.org/2005/gco\" xmlns:gml=\"http://www.opengis.net/gml\">\
         {}{}<gmd:hierarchyLevel><gmd:MD_ScopeCode codeList=\"http://www.isotc211.org/2005/resources/Codelist/gmxCodelists.xml#MD_ScopeCode\" codeListValue=\"dataset\">dataset</gmd:MD_ScopeCode></gmd:hierarchyLevel>{}\
         <gmd:dateStamp><gco:DateTime>{begin}</gco:DateTime></gmd:dateStamp>{}\
         <gmd:identificationInfo><gmd:MD_DataIdentification><gmd:citation><gmd:CI_Citation>{}\
         <gmd:date><gmd:CI_Date><gmd:date><gco:DateTime>{begin}</gco:DateTime></gmd:date><gmd:dateType><gmd:CI_DateTypeCode codeList=\"http://www.isotc211.org/2005/resources/Codelist/gmxCodelists.xml#CI_DateTypeCode\" codeListValue=\"creation\">creation</gmd:CI_DateTypeCode></gmd:dateType></gmd:CI_Date></gmd:date>\
         </gmd:CI_Citation></gmd:citation>{}<gmd:descriptiveKeywords><gmd:MD_Keywords>{keywords}</gmd:MD_Keywords></gmd:descriptiveKeywords>{}\
         <gmd:extent><gmd:EX_Extent><gmd:geographicElement><gmd:EX_GeographicBoundingBox>{}{}{}{}</gmd:EX_GeographicBoundingBox></gmd:geographicElement>\
         <gmd:temporalElement><gmd:EX_TemporalExtent><gmd:extent><gml:TimePeriod gml:id=\"T1\"><gml:beginPosition>{begin}</gml:beginPosition><gml:endPosition>{end}</gml:endPosition></gml:TimePeriod></gmd:extent></gmd:EX_TemporalExtent></gmd:temporalElement>\
         </gmd:EX_Extent></gmd:extent></gmd:MD_DataIdentification></gmd:identificationInfo></gmd:MD_Metadata>\n",
        cs("fileIdentifier", &r.id),
        cs("language", "zh-CN"),
        cs("hierarchyLevelName", "dataset"),
        cs("metadataStandardName", "ISO 19115:2003/19139"),
        cs("title", &r.title),
        cs("abstract", &r.description),
        cs("language", "zh-CN"),
        dec("westBoundLongitude", r.bbox.min_x),
        dec("eastBoundLongitude", r.bbox.max_x),
        dec("southBoundLatitude", r.bbox.min_y),
        dec("northBoundLatitude", r.bbox.max_y),
        begin = r.begin,
        end = r.end,
    )
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// wrk's figures with p95 (read from the script's `done`).
struct Fig {
    rps: f64,
    p50: f64,
    p95: f64,
    p99: f64,
    errors: String,
}

/// A wrk script cycling over `paths` that prints p50/p95/p99 (µs) when done.
fn script(file: &Path, paths: &[String]) -> anyhow::Result<()> {
    let mut lua = String::from("local paths = {\n");
    for p in paths {
        lua.push_str(&format!("  \"{p}\",\n"));
    }
    lua.push_str(
        "}\nlocal i = 0\nrequest = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n\
         done = function(summary, latency, requests)\n  io.write(string.format(\"PCTL %d %d %d\\n\", latency:percentile(50), latency:percentile(95), latency:percentile(99)))\nend\n",
    );
    std::fs::write(file, lua)?;
    Ok(())
}

fn load(base: &str, dir: &Path, paths: &[String], connections: u32, secs: u64) -> anyhow::Result<Fig> {
    let file = dir.join("load.lua");
    script(&file, paths)?;
    let threads = connections.min(2);
    // A slow answer is measured, not dropped as a timeout (wrk's default is 2 s).
    let out = crate::wrk::command(base, &file, threads, connections, secs)
        .args(["--timeout", "30s"])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let l = crate::wrk::parse(out)?;
    let pct: Vec<f64> = text
        .lines()
        .find_map(|l| l.strip_prefix("PCTL "))
        .map(|v| v.split_whitespace().filter_map(|x| x.parse::<f64>().ok()).map(|us| us / 1000.0).collect())
        .unwrap_or_default();
    let at = |i: usize| pct.get(i).copied().unwrap_or(f64::NAN);
    Ok(Fig { rps: l.rps, p50: at(0), p95: at(1), p99: at(2), errors: l.errors })
}

fn get_text(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<String> {
    let r = http.get(url).send().with_context(|| format!("GET {url}"))?;
    let status = r.status();
    let text = r.text()?;
    if !status.is_success() {
        bail!("GET {url}: {status}: {}", text.chars().take(400).collect::<String>());
    }
    Ok(text)
}

/// Hits as the answer reports them: Records' `numberMatched` or CSW's `numberOfRecordsMatched`.
fn hits(http: &reqwest::blocking::Client, url: &str) -> anyhow::Result<u64> {
    let text = get_text(http, url)?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return v["numberMatched"].as_u64().with_context(|| format!("no numberMatched from {url}"));
    }
    let at = text.find("numberOfRecordsMatched=\"").with_context(|| {
        format!("no numberOfRecordsMatched from {url}: {}", text.chars().take(400).collect::<String>())
    })?;
    let rest = &text[at + "numberOfRecordsMatched=\"".len()..];
    Ok(rest.split('"').next().unwrap_or_default().parse()?)
}

/// A query as each protocol writes it (`None`: that side has no such query).
struct Case {
    label: &'static str,
    records: String,
    csw_ours: Option<String>,
    csw_pycsw: Option<String>,
}

fn csw_path(lang: &str, constraint: &str) -> String {
    format!(
        "/csw?service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=results&elementSetName=brief&maxRecords={PAGE}&constraintLanguage={lang}&constraint_language_version=1.1.0&constraint={}",
        enc(constraint)
    )
}

fn cases() -> Vec<Case> {
    let like = |w: &str| csw_path("CQL_TEXT", &format!("csw:AnyText like '%{w}%'"));
    let bbox = "<ogc:Filter xmlns:ogc=\"http://www.opengis.net/ogc\" xmlns:gml=\"http://www.opengis.net/gml\"><ogc:BBOX><ogc:PropertyName>ows:BoundingBox</ogc:PropertyName><gml:Envelope srsName=\"urn:ogc:def:crs:OGC:1.3:CRS84\"><gml:lowerCorner>114.2 30.4</gml:lowerCorner><gml:upperCorner>114.4 30.6</gml:upperCorner></gml:Envelope></ogc:BBOX></ogc:Filter>";
    let (from, to) = ("2021-01-01T00:00:00Z", "2021-12-31T23:59:59Z");
    vec![
        Case {
            label: "q=排水",
            records: format!("q={}", enc("排水")),
            csw_ours: Some(like("排水")),
            csw_pycsw: Some(like("排水")),
        },
        Case {
            label: "q=drainage",
            records: "q=drainage".into(),
            csw_ours: Some(like("drainage")),
            csw_pycsw: Some(like("drainage")),
        },
        Case {
            label: "bbox (0.2°×0.2°)",
            records: format!("bbox={}", enc("114.2,30.4,114.4,30.6")),
            csw_ours: Some(csw_path("FILTER", bbox)),
            csw_pycsw: Some(csw_path("FILTER", bbox)),
        },
        Case {
            label: "datetime (2021)",
            records: format!("datetime={}", enc(&format!("{from}/{to}"))),
            // Our CSW has no temporal queryable; pycsw's apiso ones, written as an intersection.
            csw_ours: None,
            csw_pycsw: Some(csw_path(
                "CQL_TEXT",
                &format!("apiso:TempExtent_begin <= '{to}' and apiso:TempExtent_end >= '{from}'"),
            )),
        },
    ]
}

/// One measured route: its figures and hits.
struct Row {
    fig: Fig,
    hits: u64,
}

fn measure(
    http: &reqwest::blocking::Client,
    base: &str,
    dir: &Path,
    path: &str,
    a: &Args,
    who: &str,
) -> anyhow::Result<Row> {
    let hits = hits(http, &format!("{base}{path}"))?;
    let fig = load(base, dir, &[path.to_owned()], a.connections, a.duration)?;
    println!(
        "  {who:<7} {:>8.1} req/s  p50 {:>7.2} ms  p95 {:>7.2} ms  hits {hits:>5}  {}  {path}",
        fig.rps, fig.p50, fig.p95, fig.errors
    );
    Ok(Row { fig, hits })
}

fn run_cmd(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout).chars().take(1000).collect::<String>(),
            String::from_utf8_lossy(&out.stderr).chars().take(2000).collect::<String>()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The Python running pycsw 3: `--python`, or a venv made once in the user's cache.
fn pycsw_python(a: &Args) -> anyhow::Result<PathBuf> {
    if let Some(p) = &a.python {
        return Ok(p.clone());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).context("HOME")?;
    let venv = home.join(".cache/shikong-bench/pycsw-venv");
    let py = venv.join("bin/python");
    let ready = |py: &Path| {
        Command::new(py)
            .args(["-c", "import pycsw.wsgi_flask, gunicorn"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ready(&py) {
        println!("installing pycsw 3 (geonode-pycsw from PyPI) into {}", venv.display());
        run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
        // pycsw 3.0.0b2 needs SQLAlchemy 1.x and the pygeofilter API before `undefined_as_null`.
        run_cmd(Command::new(&py).args([
            "-m",
            "pip",
            "install",
            "-q",
            "geonode-pycsw==3.0.0b2",
            "SQLAlchemy<2",
            "pygeofilter==0.2.1",
            "flask",
            "gunicorn",
        ]))?;
    }
    Ok(py)
}

fn workers(a: &Args) -> usize {
    a.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from))
}

/// pycsw 3 with the records in `iso` loaded, under gunicorn: the guard and its base URL.
fn start_pycsw(a: &Args, dir: &Path, iso: &Path) -> anyhow::Result<(Killed, String)> {
    let py = pycsw_python(a)?;
    let admin = py.with_file_name("pycsw-admin.py");
    let port = free_port()?;
    let db = dir.join("pycsw.db");
    let _ = std::fs::remove_file(&db);
    let cfg = dir.join("pycsw.yml");
    std::fs::write(
        &cfg,
        format!(
            "server:\n  url: http://127.0.0.1:{port}\n  mimetype: application/xml; charset=UTF-8\n  encoding: UTF-8\n  language: en-US\n  maxrecords: {PAGE}\n  pretty_print: false\n  gzip_compresslevel: 0\n\
             logging:\n  level: ERROR\nprofiles:\n  - apiso\nfederatedcatalogues: []\nmanager:\n  transactions: false\n  allowed_ips: [127.0.0.1]\n\
             metadata:\n  identification:\n    title: bench\n    description: bench\n    keywords: [bench]\n    keywords_type: theme\n    fees: None\n    accessconstraints: None\n    terms_of_service: none\n    url: http://example.org\n\
             \x20 license: {{name: CC-BY 4.0, url: https://creativecommons.org/licenses/by/4.0/}}\n  provider: {{name: bench, url: http://example.org}}\n\
             \x20 contact: {{name: bench, position: bench, address: bench, city: bench, stateorprovince: bench, postalcode: '0', country: CN, phone: '0', fax: '0', email: a@example.org, url: http://example.org, hours: all, instructions: none, role: pointOfContact}}\n\
             \x20 inspire: {{enabled: false}}\nrepository:\n  database: sqlite:///{}\n  table: records\n",
            db.display()
        ),
    )?;
    run_cmd(Command::new(&py).arg(&admin).args(["setup-repository", "-c"]).arg(&cfg))?;
    let t = std::time::Instant::now();
    // pycsw writes extents with 2 decimals unless told: 6, as the records hold.
    run_cmd(
        Command::new(&py)
            .arg(&admin)
            .args(["load-records", "-c"])
            .arg(&cfg)
            .arg("-p")
            .arg(iso)
            .env("COORDINATE_PRECISION", "6"),
    )?;
    println!("pycsw load-records: {:.1} s", t.elapsed().as_secs_f64());
    let w = workers(a);
    let child = Command::new(&py)
        .args(["-m", "gunicorn", "-w", &w.to_string(), "-b", &format!("127.0.0.1:{port}"), "pycsw.wsgi_flask:APP"])
        .env("PYCSW_CONFIG", &cfg)
        .env("COORDINATE_PRECISION", "6")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting gunicorn for pycsw")?;
    let guard = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/collections/metadata:main/items?f=json&limit=1"))?;
    Ok((guard, base))
}

/// A fresh data folder: an empty store, an administrator, and (when `recs` is given) the records
/// as the catalog's imported documents.
fn prepare(data: &Path, docs: Option<&BTreeMap<String, String>>) -> anyhow::Result<()> {
    if data.exists() {
        std::fs::remove_dir_all(data)?;
    }
    std::fs::create_dir_all(data)?;
    drop(shikong_store::init(&StoreConfig::in_dir(data))?);
    let mut add = Command::new(shikong_exe()?)
        .args(["user", "add", "--data"])
        .arg(data)
        .args(["--role", "admin", ADMIN])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    std::io::Write::write_all(&mut add.stdin.take().context("stdin")?, format!("{PASSWORD}\n").as_bytes())?;
    if !add.wait()?.success() {
        bail!("shikong user add failed");
    }
    if let Some(docs) = docs {
        std::fs::create_dir_all(data.join("catalog"))?;
        std::fs::write(data.join("catalog/imported.json"), serde_json::to_vec(docs)?)?;
    }
    Ok(())
}

fn login(http: &reqwest::blocking::Client, base: &str) -> anyhow::Result<String> {
    let v: Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": ADMIN, "password": PASSWORD}))
        .send()?
        .error_for_status()?
        .json()?;
    Ok(v["token"].as_str().context("token")?.to_owned())
}

fn print_row(label: &str, proto: &str, ours: Option<&Row>, peer: Option<&Row>) {
    let side = |r: Option<&Row>| {
        r.map_or_else(
            || format!("{:>9} {:>8} {:>8} {:>6}", "n/a", "", "", ""),
            |r| format!("{:>9.1} {:>8.2} {:>8.2} {:>6}", r.fig.rps, r.fig.p50, r.fig.p95, r.hits),
        )
    };
    let ratio = match (ours, peer) {
        (Some(o), Some(p)) => format!(
            "{:>6.1}×  {}",
            o.fig.rps / p.fig.rps,
            if o.hits == p.hits { "same hits" } else { "DIFFERENT hits" }
        ),
        _ => String::new(),
    };
    println!("{label:<18} {proto:<8} | {} | {} | {ratio}", side(ours), side(peer));
}

fn records_part(a: &Args, dir: &Path, recs: &[Rec], docs: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let http = reqwest::blocking::Client::new();
    let data = dir.join("data-records");
    prepare(&data, Some(docs))?;
    let cases = cases();
    println!("## shikong (wrk -c{} for {} s per query)", a.connections, a.duration);
    let (server, base) = start_shikong(&data)?;
    // One record through the import API: the documents are what `POST` accepts (200: replaced).
    let token = login(&http, &base)?;
    let first = &recs[0];
    let r = http
        .post(format!("{base}/collections/catalog/items"))
        .bearer_auth(&token)
        .header("content-type", "application/xml")
        .body(docs[&first.id].clone())
        .send()?;
    let status = r.status();
    if status.as_u16() != 200 {
        bail!("re-importing {} gave {status}: {}", first.id, r.text()?);
    }
    let total = hits(&http, &format!("{base}/collections/catalog/items?f=json&type=dataset&limit=1"))?;
    println!("  catalog holds {total} dataset records (generated {})", recs.len());
    let mut ours = Vec::new();
    for c in &cases {
        println!("{}", c.label);
        let rec = measure(
            &http,
            &base,
            dir,
            &format!("/collections/catalog/items?f=json&limit={PAGE}&{}", c.records),
            a,
            "Records",
        )?;
        let csw = match &c.csw_ours {
            Some(p) => Some(measure(&http, &base, dir, p, a, "CSW")?),
            None => None,
        };
        ours.push((rec, csw));
    }
    drop(server);

    println!("## pycsw 3.0.0b2 ({} gunicorn workers, SQLite repository)", workers(a));
    let (pycsw, py_base) = start_pycsw(a, dir, &dir.join("iso"))?;
    let total = hits(&http, &format!("{py_base}/collections/metadata:main/items?f=json&limit=1"))?;
    println!("  pycsw holds {total} records");
    let mut peer = Vec::new();
    for c in &cases {
        println!("{}", c.label);
        let rec = measure(
            &http,
            &py_base,
            dir,
            &format!("/collections/metadata:main/items?f=json&limit={PAGE}&{}", c.records),
            a,
            "Records",
        )?;
        let csw = match &c.csw_pycsw {
            Some(p) => Some(measure(&http, &py_base, dir, p, a, "CSW")?),
            None => None,
        };
        peer.push((rec, csw));
    }
    drop(pycsw);

    println!(
        "\n# catalog queries over {} records, {} clients, {} per page: shikong vs pycsw",
        recs.len(),
        a.connections,
        PAGE
    );
    println!(
        "{:<18} {:<8} | {:>9} {:>8} {:>8} {:>6} | {:>9} {:>8} {:>8} {:>6} | ratio",
        "query", "protocol", "req/s", "p50 ms", "p95 ms", "hits", "req/s", "p50 ms", "p95 ms", "hits"
    );
    println!("{:<27} | {:^34} | {:^34} |", "", "shikong", "pycsw");
    for (c, ((or, oc), (pr, pc))) in cases.iter().zip(ours.iter().zip(peer.iter())) {
        print_row(c.label, "Records", Some(or), Some(pr));
        print_row(c.label, "CSW", oc.as_ref(), pc.as_ref());
    }
    println!(
        "(pycsw's Records `datetime` keeps records inside the interval — time_begin ≥ start and time_end ≤ end — ours those \
         that intersect it, as OGC API – Common says; pycsw's CSW line asks for the intersection with apiso:TempExtent_begin/end. \
         Our CSW has no temporal queryable.)"
    );
    Ok(())
}

/// A hillshade MBTiles (with overviews) of a made-up DEM over 光谷, by GDAL's own tools.
fn hillshade(dir: &Path) -> anyhow::Result<PathBuf> {
    // 1024 cells of 12.5 m over 0.128°: tiles down to z13/z14.
    let n = 1024;
    let mut text =
        format!("ncols {n}\nnrows {n}\nxllcorner 114.30\nyllcorner 30.40\ncellsize 0.000125\nNODATA_value -9999\n");
    for r in 0..n {
        let row: Vec<String> = (0..n)
            .map(|c| {
                let (dx, dy) = (f64::from(c) - 512.0, f64::from(r) - 512.0);
                format!(
                    "{:.1}",
                    20.0 + 150.0 * (-(dx * dx + dy * dy) / 48000.0).exp() + 5.0 * (f64::from(c) / 36.0).sin()
                )
            })
            .collect();
        text.push_str(&row.join(" "));
        text.push('\n');
    }
    let asc = dir.join("dem.asc");
    std::fs::write(&asc, text)?;
    let (dem, hs, mb) = (dir.join("dem.tif"), dir.join("hs.tif"), dir.join("hillshade.mbtiles"));
    let _ = std::fs::remove_file(&mb);
    run_cmd(Command::new("gdal_translate").args(["-q", "-a_srs", "EPSG:4326"]).arg(&asc).arg(&dem))?;
    run_cmd(Command::new("gdaldem").args(["hillshade", "-q", "-s", "111120"]).arg(&dem).arg(&hs))?;
    run_cmd(Command::new("gdal_translate").args(["-q", "-of", "MBTILES"]).arg(&hs).arg(&mb))?;
    run_cmd(Command::new("gdaladdo").args(["-q", "-r", "average"]).arg(&mb).args(["2", "4"]))?;
    Ok(mb)
}

/// MapProxy (Debian's package, under gunicorn) forwarding the same tiles: guard, base URL, or why not.
fn start_mapproxy(a: &Args, dir: &Path, source: &str) -> anyhow::Result<Option<(Killed, String)>> {
    let has = Command::new("/usr/bin/python3")
        .args(["-c", "import mapproxy"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        println!("MapProxy: not installed (apt-get install mapproxy) — skipped");
        return Ok(None);
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).context("HOME")?;
    let venv = home.join(".cache/shikong-bench/mapproxy-venv");
    let py = venv.join("bin/python");
    let ok = |py: &Path| {
        Command::new(py)
            .args(["-c", "import mapproxy, gunicorn"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok(&py) {
        // Debian's MapProxy is in the system Python: a venv that sees it, with gunicorn from PyPI.
        run_cmd(Command::new("/usr/bin/python3").args(["-m", "venv", "--system-site-packages"]).arg(&venv))?;
        run_cmd(Command::new(&py).args(["-m", "pip", "install", "-q", "gunicorn"]))?;
    }
    let cfg = dir.join("mapproxy.yaml");
    std::fs::write(
        &cfg,
        format!(
            "services:\n  wmts:\n    restful: true\n    restful_template: '/{{Layer}}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileCol}}/{{TileRow}}.{{Format}}'\n    kvp: false\n\
             layers:\n  - name: hillshade\n    title: hillshade\n    sources: [hs_cache]\n\
             caches:\n  hs_cache:\n    grids: [webmercator]\n    sources: [hs_tiles]\n    format: image/png\n    disable_storage: true\n    meta_size: [1, 1]\n    meta_buffer: 0\n\
             sources:\n  hs_tiles:\n    type: tile\n    url: {source}/wmts/1.0.0/hillshade/default/2023-08-01/WebMercatorQuad/%(z)s/%(y)s/%(x)s.png\n    grid: webmercator\n\
             grids:\n  webmercator:\n    base: GLOBAL_WEBMERCATOR\n    origin: nw\n"
        ),
    )?;
    std::fs::write(
        dir.join("mapproxy_app.py"),
        format!("from mapproxy.wsgiapp import make_wsgi_app\napplication = make_wsgi_app(r'{}')\n", cfg.display()),
    )?;
    let port = free_port()?;
    let child = Command::new(&py)
        .args(["-m", "gunicorn", "-w", &workers(a).to_string(), "-b", &format!("127.0.0.1:{port}"), "--chdir"])
        .arg(dir)
        .arg("mapproxy_app:application")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting gunicorn for MapProxy")?;
    let guard = Killed(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{base}/wmts/1.0.0/WMTSCapabilities.xml"))?;
    Ok(Some((guard, base)))
}

fn proxy_part(a: &Args, dir: &Path) -> anyhow::Result<()> {
    let http = reqwest::blocking::Client::new();
    let data = dir.join("data-proxy");
    prepare(&data, None)?;
    let mb = hillshade(dir)?;
    let (server, base) = start_shikong(&data)?;
    let token = login(&http, &base)?;
    let up: Value = http
        .post(format!("{base}/tiles/rasters/hillshade?date=2023-08-01&kind=hillshade"))
        .bearer_auth(&token)
        .body(std::fs::read(&mb)?)
        .send()?
        .error_for_status()?
        .json()?;
    let maxz = up["maxzoom"].as_u64().context("maxzoom")? as u8;
    let svc: Value = http
        .post(format!("{base}/services"))
        .bearer_auth(&token)
        .json(&json!({"url": format!("{base}/wmts"), "type": "wmts", "title": "本机 WMTS"}))
        .send()?
        .error_for_status()?
        .json()?;
    let id = svc["id"].as_str().context("service id")?.to_owned();
    let k: Value = http
        .post(format!("{base}/keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "bench", "quota": 100_000_000u64, "services": [id]}))
        .send()?
        .error_for_status()?
        .json()?;
    let key = k["key"].as_str().context("key")?.to_owned();

    // The tiles inside the hillshade at its two deepest zooms (edges left out), each answering 200.
    let inner = Bbox { min_x: 114.31, min_y: 30.41, max_x: 114.42, max_y: 30.52 };
    let tms = shikong_tiles::TileMatrixSet::WebMercatorQuad;
    let mut tiles = Vec::new();
    for z in [maxz.saturating_sub(1), maxz] {
        if let Some(r) = tms.tiles_for(&inner, z, 0.0) {
            tiles.extend(r.iter().map(|t| (t.z, t.x, t.y)));
        }
    }
    let rest = |z: u8, x: u32, y: u32| format!("1.0.0/hillshade/default/2023-08-01/WebMercatorQuad/{z}/{y}/{x}.png");
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    let mut mapproxy_paths = Vec::new();
    for &(z, x, y) in &tiles {
        let d = format!("/wmts/{}", rest(z, x, y));
        let r = http.get(format!("{base}{d}")).send()?;
        if r.status().as_u16() != 200 {
            continue;
        }
        let bytes = r.bytes()?;
        let p = format!("/services/{id}/proxy/{}?key={key}", rest(z, x, y));
        let via = http.get(format!("{base}{p}")).send()?.error_for_status()?.bytes()?;
        if via != bytes {
            bail!("the proxy changed tile {z}/{x}/{y}");
        }
        direct.push(d);
        proxied.push(p);
        mapproxy_paths.push(format!("/wmts/hillshade/webmercator/{z}/{x}/{y}.png"));
    }
    if direct.is_empty() {
        bail!("no hillshade tile answered 200 at z{}–{maxz}", maxz.saturating_sub(1));
    }
    println!(
        "{} tiles at z{}–{maxz} (each the same bytes direct and through the proxy); wrk -c{} for {} s per route",
        direct.len(),
        maxz.saturating_sub(1),
        a.tile_connections,
        a.tile_duration
    );
    let run = |who: &str, b: &str, paths: &[String]| -> anyhow::Result<Fig> {
        let f = load(b, dir, paths, a.tile_connections, a.tile_duration)?;
        println!(
            "  {who:<22} {:>8.1} req/s  p50 {:>6.3} ms  p95 {:>6.3} ms  p99 {:>6.3} ms  {}",
            f.rps, f.p50, f.p95, f.p99, f.errors
        );
        Ok(f)
    };
    let d = run("direct /wmts", &base, &direct)?;
    let p = run("shikong proxy + key", &base, &proxied)?;
    let m = match start_mapproxy(a, dir, &base)? {
        Some((guard, mp_base)) => {
            let check = http.get(format!("{mp_base}{}", mapproxy_paths[0])).send()?;
            if !check.status().is_success() {
                bail!("MapProxy answered {} for {}", check.status(), mapproxy_paths[0]);
            }
            let f = run("MapProxy (no storage)", &mp_base, &mapproxy_paths)?;
            drop(guard);
            Some(f)
        }
        None => None,
    };
    drop(server);
    println!("\n# WMTS tiles: proxy overhead ({} connection(s))", a.tile_connections);
    println!("{:<24} {:>8} {:>8} {:>8} {:>14}", "route", "p50 ms", "p95 ms", "p99 ms", "p95 − direct");
    let line = |who: &str, f: &Fig| {
        println!("{who:<24} {:>8.3} {:>8.3} {:>8.3} {:>11.3} ms", f.p50, f.p95, f.p99, f.p95 - d.p95);
    };
    line("direct /wmts", &d);
    line("shikong proxy + key", &p);
    if let Some(m) = &m {
        line("MapProxy (no storage)", m);
    }
    Ok(())
}

pub fn run(mut a: Args) -> anyhow::Result<()> {
    if a.quick {
        a.records = a.records.min(2_000);
        a.duration = a.duration.min(3);
        a.tile_duration = a.tile_duration.min(3);
    }
    let (do_records, do_proxy) = match a.part.as_str() {
        "all" => (true, true),
        "records" => (true, false),
        "proxy" => (false, true),
        other => bail!("--part {other}: records, proxy or all"),
    };
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    println!("# shikong catalog and proxy benchmark (issue 20)");
    if do_records {
        let recs = generate(a.records)?;
        let iso_dir = dir.join("iso");
        if iso_dir.exists() {
            std::fs::remove_dir_all(&iso_dir)?;
        }
        std::fs::create_dir_all(&iso_dir)?;
        let mut docs = BTreeMap::new();
        for r in &recs {
            let doc = iso(r);
            std::fs::write(iso_dir.join(format!("{}.xml", r.id)), &doc)?;
            docs.insert(r.id.clone(), doc);
        }
        println!("{} ISO 19139 records written to {}", recs.len(), iso_dir.display());
        records_part(&a, &dir, &recs, &docs)?;
    }
    if do_proxy {
        println!();
        proxy_part(&a, &dir)?;
    }
    Ok(())
}
