//! Scale-out benchmark (issue 17): the PostgreSQL + PostGIS store beside the SQLite store in one
//! run on this machine — import features/s, bbox query p50/p95 (city-block boxes of ~60 points at
//! random positions, the same boxes for both), as-of bbox p50 after some features were updated —
//! at 1M and 10M points; then OGC API `items?bbox=…&limit=100` requests/s through one `shikong
//! serve` process and through two on the same PostgreSQL database (wrk spread across both, the
//! same total connections), with the ratio. The goals of the issue are printed beside the figures.
//! The sync merge figure on PostgreSQL is `shikong-bench sync --postgres`'s (another benchmark).
//!
//! Import is the store's own bulk path (one transaction, `bulk_load`, the features built in
//! process), so both backends get identical work without a multi-GB GeoJSON file on disk; the
//! GeoJSON parse in front of it is measured by `shikong-bench store`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use shikong_model::{Bbox, Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value};
use shikong_store::{FeatureKey, LayerDef, NewFeature, Patch, Query, Store, StoreConfig, TxMeta};

use crate::data::{AREA, Lcg, boxes};
use crate::serve::{Killed, shikong_exe, wait_ready};
use crate::wrk::{self, Load};

#[derive(clap::Args)]
pub struct Args {
    /// Layer sizes (point features), comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1000000,10000000")]
    sizes: Vec<u64>,
    /// Leave out sizes of 10M and more (a quick run).
    #[arg(long)]
    skip_10m: bool,
    /// Bbox queries timed per backend and size (current and as-of each).
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Points expected in each query box (a city block).
    #[arg(long, default_value_t = 60.0)]
    per_box: f64,
    /// Fraction of the features updated (one transaction) before the as-of queries.
    #[arg(long, default_value_t = 0.01)]
    update_fraction: f64,
    /// Seconds of load per items run.
    #[arg(long, default_value_t = 15)]
    duration: u64,
    /// Total wrk connections (split evenly across the server processes).
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// After the PostgreSQL import, `CLUSTER` the layer table on its GiST index (neighbouring
    /// points on the same pages), timed apart; a DBA's step, not the store's.
    #[arg(long)]
    cluster: bool,
    /// Measure PostgreSQL only (e.g. its 10M row against an earlier run's SQLite 1M row, when
    /// there is no time for the SQLite import).
    #[arg(long)]
    postgres_only: bool,
    /// Data folder for the SQLite stores and the servers' `--data` (default: a temporary
    /// directory; removed afterwards either way). The PostgreSQL cluster lives in $TMPDIR.
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// One backend at one size.
struct Row {
    size: u64,
    backend: &'static str,
    import_fps: f64,
    import_s: f64,
    p50: f64,
    p95: f64,
    per_query: f64,
    asof_p50: f64,
    asof_p95: f64,
    updates: u64,
    update_s: f64,
    load: String,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    ms(sorted[i.min(sorted.len() - 1)])
}

/// The 1-, 5- and 15-minute load averages (`uptime`), as text.
/// Machine CPU (busy, total) jiffies from `/proc/stat`, over all cores.
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let f: Vec<u64> =
        stat.lines().next().unwrap_or_default().split_whitespace().skip(1).filter_map(|v| v.parse().ok()).collect();
    let total: u64 = f.iter().take(8).sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// CPU seconds (user + system) a process has used, from `/proc/PID/stat`.
fn process_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// Where the CPU went during a load run: the machine's busy share of all cores and the server
/// processes' CPU seconds (the rest of the busy time is PostgreSQL and wrk).
struct CpuUse {
    busy: f64,
    servers: Vec<f64>,
    secs: f64,
}

impl CpuUse {
    fn measure<T>(pids: &[u32], f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, CpuUse)> {
        let (b0, t0) = machine_cpu();
        let c0: Vec<f64> = pids.iter().map(|p| process_cpu(*p)).collect();
        let start = Instant::now();
        let out = f()?;
        let secs = start.elapsed().as_secs_f64();
        let (b1, t1) = machine_cpu();
        let servers = pids.iter().zip(c0).map(|(p, c)| process_cpu(*p) - c).collect();
        let busy = (b1 - b0) as f64 / (t1 - t0).max(1) as f64;
        Ok((out, CpuUse { busy, servers, secs }))
    }

    fn show(&self) -> String {
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        let servers: f64 = self.servers.iter().sum();
        format!(
            "machine CPU busy {:.0}% of {cores:.0} cores; server process(es) {} CPU-s of {:.1} CPU-s busy ({:.0}%; the rest PostgreSQL and wrk)",
            self.busy * 100.0,
            self.servers.iter().map(|c| format!("{c:.1}")).collect::<Vec<_>>().join(" + "),
            self.busy * cores * self.secs,
            servers / (self.busy * cores * self.secs).max(1e-9) * 100.0
        )
    }
}

fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn bar(len: u64, msg: String) -> ProgressBar {
    let b = ProgressBar::new(len).with_message(msg);
    b.set_style(
        ProgressStyle::with_template("{msg:<28} {bar:40} {pos}/{len} ({elapsed}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    b
}

/// Free bytes on the filesystem holding `path` (`df`).
fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let out = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output().context("running df")?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("cannot read df's output for {}", path.display()))
}

fn layer_def() -> LayerDef {
    let fields = vec![
        FieldDef::new("名称", FieldType::Text),
        FieldDef::new("depth", FieldType::Real),
        FieldDef::new("material", FieldType::Text),
    ];
    let mut def = LayerDef::new("manhole", GeometryKind::Point, LayerSchema { fields });
    def.title = Some("井盖".into());
    def.public = true; // the items runs are anonymous
    def
}

/// Point `i` of the deterministic set: uniform over [`AREA`], as `data::write_geojson`'s.
fn feature(i: u64, rng: &mut Lcg) -> NewFeature {
    const ROADS: [&str; 6] = ["珞喻路", "关山大道", "光谷大道", "雄楚大道", "民族大道", "鲁磨路"];
    const MATERIALS: [&str; 5] = ["铸铁", "球墨铸铁", "复合材料", "混凝土", "钢"];
    let x = AREA.min_x + rng.next() * AREA.width();
    let y = AREA.min_y + rng.next() * AREA.height();
    let mut properties = Properties::new();
    properties.insert("名称".into(), Value::Text(format!("{}{}号井盖", ROADS[(i % 6) as usize], i % 1000)));
    properties.insert("depth".into(), Value::Real((rng.next() * 500.0).round() / 100.0));
    properties.insert("material".into(), Value::Text(MATERIALS[(i % 5) as usize].into()));
    NewFeature {
        code: Some(format!("JG-{i:08}")),
        geometry: Some(Geometry::Point(Coord::xy(x, y))),
        properties,
        ..NewFeature::default()
    }
}

fn time_queries(
    store: &dyn Store,
    boxes: &[Bbox],
    as_of: Option<jiff::Timestamp>,
    what: String,
) -> anyhow::Result<(Vec<Duration>, f64)> {
    let pb = bar(boxes.len() as u64, what);
    let mut times = Vec::with_capacity(boxes.len());
    let mut found = 0usize;
    for b in boxes {
        let t = Instant::now();
        let q = Query { bbox: Some(*b), as_of, ..Query::layer("manhole") };
        found += store.query(&q, &mut |_| true)?.returned;
        times.push(t.elapsed());
        pb.inc(1);
    }
    pb.finish_and_clear();
    times.sort();
    Ok((times, found as f64 / boxes.len().max(1) as f64))
}

/// Import, bbox, updates and as-of on one store; `after_import` runs between the import and the
/// queries (PostgreSQL: `VACUUM ANALYZE`, as after any bulk load).
fn measure(
    backend: &'static str,
    store: &dyn Store,
    n: u64,
    a: &Args,
    after_import: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<Row> {
    let mut tx = store.begin(TxMeta::by("bench").source("scaleout import"))?;
    tx.create_layer(layer_def())?;
    tx.commit()?;
    let pb = bar(n, format!("{backend} import {n}"));
    let started = Instant::now();
    let mut tx = store.begin(TxMeta::by("bench").source("scaleout import"))?;
    tx.bulk_load("manhole")?;
    let mut rng = Lcg(42);
    for i in 0..n {
        tx.insert("manhole", feature(i, &mut rng))?;
        if i % 10_000 == 0 {
            pb.set_position(i);
        }
    }
    pb.set_position(n);
    pb.set_message(format!("{backend} commit {n}"));
    tx.commit()?;
    let import_s = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    let t = Instant::now();
    after_import()?;
    let analyze_s = t.elapsed().as_secs_f64();

    let qboxes = boxes(n, a.per_box, a.queries, 7);
    time_queries(store, &qboxes[..20.min(qboxes.len())], None, format!("{backend} warm-up"))?;
    let (cur, per_query) = time_queries(store, &qboxes, None, format!("{backend} bbox {n}"))?;

    let before = store.latest_tx()?;
    let before = store.tx_time(before)?.ok_or_else(|| anyhow::anyhow!("no time for the import's transaction"))?;
    let step = ((1.0 / a.update_fraction.clamp(1e-6, 1.0)).round() as u64).max(1);
    let pb = bar(n.div_ceil(step), format!("{backend} update 1/{step}"));
    let started = Instant::now();
    let mut tx = store.begin(TxMeta::by("bench").source("scaleout updates"))?;
    let mut updates = 0u64;
    for i in (0..n).step_by(step as usize) {
        let patch = Patch { set: [("depth".to_owned(), Value::Real(9.99))].into(), ..Patch::default() };
        if tx.update("manhole", &FeatureKey::Code(format!("JG-{i:08}")), patch)?.is_some() {
            updates += 1;
        }
        pb.inc(1);
    }
    tx.commit()?;
    let update_s = started.elapsed().as_secs_f64();
    pb.finish_and_clear();
    after_import()?;
    time_queries(store, &qboxes[..20.min(qboxes.len())], Some(before), format!("{backend} warm-up as-of"))?;
    let (past, _) = time_queries(store, &qboxes, Some(before), format!("{backend} as-of {n}"))?;
    let row = Row {
        size: n,
        backend,
        import_fps: n as f64 / import_s,
        import_s,
        p50: percentile(&cur, 0.5),
        p95: percentile(&cur, 0.95),
        per_query,
        asof_p50: percentile(&past, 0.5),
        asof_p95: percentile(&past, 0.95),
        updates,
        update_s,
        load: load(),
    };
    println!(
        "  {backend:<10} {n:>9}: import {:.0} features/s ({import_s:.1} s{}), bbox p50 {:.2} ms p95 {:.2} ms (~{per_query:.0} features), \
         {updates} updates in {update_s:.1} s, as-of p50 {:.2} ms p95 {:.2} ms; load {}",
        row.import_fps,
        if backend == "PostgreSQL" { format!(", then VACUUM ANALYZE {analyze_s:.1} s") } else { String::new() },
        row.p50,
        row.p95,
        row.asof_p50,
        row.asof_p95,
        row.load
    );
    Ok(row)
}

/// `VACUUM ANALYZE` of the layer's tables and the transactions (what autovacuum would do a while
/// after a bulk load; done now so the queries are not timed against a running autovacuum).
fn vacuum_analyze(url: &str) -> anyhow::Result<()> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).with_context(|| format!("connecting to {url}"))?;
    // One statement each: several in one simple query would be one transaction, refused.
    for t in ["manhole", "sk_hist_manhole", "sk_transactions"] {
        c.batch_execute(&format!("VACUUM ANALYZE {t}"))?;
    }
    Ok(())
}

/// Where a PostgreSQL bbox read's time goes, each a p50 over the same boxes: a round trip
/// (`SELECT 1`, prepared); `BEGIN … READ ONLY` + `COMMIT` (two round trips); the rows statement
/// from this client (prepared, rows fetched, not decoded); the server's planning and execution
/// of it (`EXPLAIN ANALYZE`); and the plan of the first box.
fn diagnose(url: &str, qboxes: &[Bbox]) -> anyhow::Result<String> {
    let mut c = postgres::Client::connect(url, postgres::NoTls)?;
    let p50 = |mut v: Vec<Duration>| {
        v.sort();
        if v.is_empty() { f64::NAN } else { percentile(&v, 0.5) }
    };
    let one = c.prepare("SELECT 1")?;
    let mut rtt = Vec::new();
    let mut begin_commit = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        c.query_one(&one, &[])?;
        rtt.push(t.elapsed());
        let t = Instant::now();
        c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY;")?;
        c.batch_execute("COMMIT")?;
        begin_commit.push(t.elapsed());
    }
    let select = "SELECT t.fid, ST_AsBinary(t.geom), t.entity_id, t.code, t.valid_from, \
                  t.valid_to, t.sk_version, t.sk_tx, t.sk_device_time, x.time_us, t.\"名称\", t.depth, t.material \
                  FROM manhole AS t LEFT JOIN sk_transactions x ON x.tx = t.sk_tx \
                  WHERE t.geom && ST_MakeEnvelope($1, $2, $3, $4, 4490) ORDER BY t.fid";
    let rows_stmt = c.prepare(select)?;
    let mut fetch = Vec::new();
    for b in qboxes {
        let t = Instant::now();
        c.query(&rows_stmt, &[&b.min_x, &b.min_y, &b.max_x, &b.max_y])?;
        fetch.push(t.elapsed());
    }
    let explain = c.prepare(&format!("EXPLAIN (ANALYZE, BUFFERS) {select}"))?;
    let (mut exec, mut planning) = (Vec::new(), Vec::new());
    let mut plan = String::new();
    let ms_of = |lines: &[String], prefix: &str| {
        lines.iter().find_map(|l| {
            l.trim().strip_prefix(prefix).and_then(|v| v.trim().trim_end_matches(" ms").parse::<f64>().ok())
        })
    };
    for (i, b) in qboxes.iter().take(51).enumerate() {
        let rows = c.query(&explain, &[&b.min_x, &b.min_y, &b.max_x, &b.max_y])?;
        let lines: Vec<String> = rows.iter().map(|r| r.get::<_, String>(0)).collect();
        if let Some(ms) = ms_of(&lines, "Execution Time:") {
            exec.push(Duration::from_secs_f64(ms / 1e3));
        }
        // The first plans with cold catalog caches.
        if let Some(ms) = ms_of(&lines, "Planning Time:")
            && i > 0
        {
            planning.push(Duration::from_secs_f64(ms / 1e3));
        }
        if plan.is_empty() {
            plan = lines.join("\n      ");
        }
    }
    Ok(format!(
        "round trip {:.3} ms (a bbox or as-of read is one statement); BEGIN+COMMIT {:.3} ms; rows statement from the client {:.3} ms, \
         of which planning {:.3} ms and execution {:.3} ms (EXPLAIN ANALYZE); plan:\n      {plan}",
        p50(rtt),
        p50(begin_commit),
        p50(fetch),
        p50(planning),
        p50(exec)
    ))
}

/// `shikong serve --data DATA --store URL` on a free loopback port; killed on drop.
fn start_pg_server(data: &Path, url: &str) -> anyhow::Result<(Killed, String)> {
    use std::io::{BufRead, BufReader};
    let mut child = Command::new(shikong_exe()?)
        .args(["serve", "--data"])
        .arg(data)
        .args(["--store", url, "--listen", "127.0.0.1:0"])
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

/// Items req/s through one process, then through two on the same database.
struct Items {
    size: u64,
    one: Load,
    two: Vec<Load>,
    load_one: String,
    load_two: String,
    cpu_one: CpuUse,
    cpu_two: CpuUse,
}

fn items(url: &str, n: u64, data: &Path, a: &Args) -> anyhow::Result<Items> {
    std::fs::create_dir_all(data)?;
    let script = data.join("bbox.lua");
    wrk::bbox_items_script(&script, &boxes(n, 1000.0, 2000, 11))?;

    let (first, base_a) = start_pg_server(data, url)?;
    let (second, base_b) = start_pg_server(data, url)?;
    for base in [&base_a, &base_b] {
        let check = reqwest::blocking::get(format!(
            "{base}/collections/manhole/items?f=json&limit=100&bbox=114.2,30.5,114.21,30.51"
        ))?;
        if !check.status().is_success() {
            bail!("{base} answers {} to an anonymous items request", check.status());
        }
    }
    // Warm both processes (pools, prepared statements, page cache).
    for base in [&base_a, &base_b] {
        wrk::command(base, &script, 1, 4, 3).output().context("running wrk (apt-get install wrk)")?;
    }
    println!("  items: one process, wrk -t2 -c{} for {} s …", a.connections, a.duration);
    let (pid_a, pid_b) = (first.0.id(), second.0.id());
    let (one, cpu_one) = CpuUse::measure(&[pid_a], || {
        wrk::parse(wrk::command(&base_a, &script, 2, a.connections, a.duration).output()?)
    })?;
    let load_one = load();
    println!("  items: two processes, wrk -t1 -c{} on each for {} s …", a.connections / 2, a.duration);
    let (two, cpu_two) = CpuUse::measure(&[pid_a, pid_b], || {
        let runs: Vec<_> = [&base_a, &base_b]
            .iter()
            .map(|b| wrk::command(b, &script, 1, a.connections / 2, a.duration).spawn())
            .collect::<Result<_, _>>()?;
        let mut two = Vec::new();
        for r in runs {
            two.push(wrk::parse(r.wait_with_output()?)?);
        }
        Ok(two)
    })?;
    let load_two = load();
    drop((first, second));
    Ok(Items { size: n, one, two, load_one, load_two, cpu_one, cpu_two })
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let sizes: Vec<u64> = a.sizes.iter().copied().filter(|&n| !(a.skip_10m && n >= 10_000_000)).collect();
    if sizes.is_empty() {
        bail!("no sizes left to run");
    }
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "# shikong scale-out benchmark: PostgreSQL + PostGIS (durable private cluster) vs SQLite store; sizes {sizes:?}; \
         {} bbox queries of ~{} points; {} cores; load {} at start",
        a.queries,
        a.per_box,
        cores,
        load()
    );
    let cluster = shikong_pgtest::Cluster::start(true).map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("PostgreSQL cluster in {} (port {})", cluster.root_dir().display(), cluster.port());

    let mut rows = Vec::new();
    let mut item_runs = Vec::new();
    let mut diags = Vec::new();
    let mut last: Option<(u64, f64)> = None;
    for &n in &sizes {
        // Peak disk: the SQLite store (~0.35 KB/point, twice while its WAL is checkpointed), then
        // the PostgreSQL tables, indexes and WAL (~0.5 KB/point); a generous margin.
        let need = n * 1_200;
        for place in [&dir, &cluster.root_dir().to_owned()] {
            let free = free_bytes(place)?;
            if free < need {
                bail!(
                    "{} has {:.1} GB free; {n} features need about {:.1} GB: free some space or pass --sizes",
                    place.display(),
                    free as f64 / 1e9,
                    need as f64 / 1e9
                );
            }
        }
        if let Some((m, secs)) = last {
            println!("## {n} features (estimate from {m}: about {:.0} min)", secs * n as f64 / m as f64 / 60.0);
        } else {
            println!("## {n} features");
        }
        let started = Instant::now();
        if !a.postgres_only {
            let sqlite_dir = dir.join(format!("sqlite-{n}"));
            let _ = std::fs::remove_dir_all(&sqlite_dir);
            std::fs::create_dir_all(&sqlite_dir)?;
            {
                let store = shikong_store::init(&StoreConfig::in_dir(&sqlite_dir))?;
                rows.push(measure("SQLite", store.as_ref(), n, &a, &|| Ok(()))?);
            }
            std::fs::remove_dir_all(&sqlite_dir)?;
        }
        let url = cluster.try_fresh_db().map_err(|e| anyhow::anyhow!("{e}"))?;
        {
            let store = shikong_store::init(&url.parse()?)?;
            let clustered = std::cell::Cell::new(!a.cluster);
            let after = || {
                if !clustered.replace(true) {
                    let t = Instant::now();
                    let mut c = postgres::Client::connect(&url, postgres::NoTls)?;
                    c.batch_execute("CLUSTER manhole USING \"sk_manhole:geom\"")?;
                    println!("  PostgreSQL {n:>9}: CLUSTER on the GiST index in {:.1} s", t.elapsed().as_secs_f64());
                }
                vacuum_analyze(&url)
            };
            rows.push(measure("PostgreSQL", store.as_ref(), n, &a, &after)?);
            let diag = diagnose(&url, &boxes(n, a.per_box, a.queries, 7))?;
            println!("  PostgreSQL {n:>9}: {diag}");
            diags.push((n, diag));
        }
        if item_runs.is_empty() {
            let data = dir.join(format!("serve-{n}"));
            item_runs.push(items(&url, n, &data, &a)?);
            let _ = std::fs::remove_dir_all(&data);
        }
        // The database stays until the cluster stops (its folder is removed then).
        let mut c = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls)?;
        let db = url.rsplit('/').next().unwrap_or_default();
        c.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))?;
        last = Some((n, started.elapsed().as_secs_f64()));
    }
    drop(cluster);

    println!();
    println!("# shikong-bench scaleout (issue 17) — release build, this machine ({cores} cores, shared)");
    println!(
        "{:>10}  {:<10} {:>12} {:>10} {:>10} {:>8} {:>11} {:>11}  load (1/5/15 min)",
        "features", "store", "import f/s", "bbox p50", "bbox p95", "~feat", "as-of p50", "as-of p95"
    );
    for r in &rows {
        println!(
            "{:>10}  {:<10} {:>12.0} {:>7.2} ms {:>7.2} ms {:>8.0} {:>8.2} ms {:>8.2} ms  {}   ({:.0} s import, {} updates in {:.1} s)",
            r.size,
            r.backend,
            r.import_fps,
            r.p50,
            r.p95,
            r.per_query,
            r.asof_p50,
            r.asof_p95,
            r.load,
            r.import_s,
            r.updates,
            r.update_s
        );
    }
    for (n, d) in &diags {
        println!("PostgreSQL bbox at {n}: {}", d.lines().next().unwrap_or_default());
    }
    for it in &item_runs {
        let sum: f64 = it.two.iter().map(|l| l.rps).sum();
        println!(
            "items?bbox=…&limit=100 on the {} layer (PostgreSQL, wrk {} connections in total, {} s):",
            it.size, a.connections, a.duration
        );
        println!(
            "  one process : {:>8.1} req/s  p50 {:.2} ms  p99 {:.2} ms {}  load {}",
            it.one.rps, it.one.p50, it.one.p99, it.one.errors, it.load_one
        );
        println!(
            "  two processes: {:>8.1} req/s  ({})  load {}",
            sum,
            it.two
                .iter()
                .map(|l| format!("{:.1} req/s p50 {:.2} ms p99 {:.2} ms {}", l.rps, l.p50, l.p99, l.errors))
                .collect::<Vec<_>>()
                .join(" + "),
            it.load_two
        );
        println!("  one process : {}", it.cpu_one.show());
        println!("  two processes: {}", it.cpu_two.show());
        println!(
            "  two / one: {:.2} (goal ≥ 1.7; with the machine {:.0}% busy under one process, a second process on the same cores can add at most {:.2}×)",
            sum / it.one.rps,
            it.cpu_one.busy * 100.0,
            1.0 / it.cpu_one.busy.max(1e-9)
        );
    }
    let sqlite_1m = rows.iter().find(|r| r.backend == "SQLite" && r.size == 1_000_000);
    let pg_10m = rows.iter().find(|r| r.backend == "PostgreSQL" && r.size == 10_000_000);
    match (sqlite_1m, pg_10m) {
        (Some(s), Some(p)) => println!(
            "bbox p50: PostgreSQL at 10M {:.2} ms / SQLite at 1M {:.2} ms = {:.2} (goal ≤ 2)",
            p.p50,
            s.p50,
            p.p50 / s.p50
        ),
        _ => println!("bbox p50 goal (PostgreSQL at 10M within 2× of SQLite at 1M): needs sizes 1000000 and 10000000"),
    }
    println!(
        "sync merge edits/s on PostgreSQL: `shikong-bench sync --postgres` (its `server merge (PostgreSQL…)` line, \
         durable private cluster)"
    );
    Ok(())
}
