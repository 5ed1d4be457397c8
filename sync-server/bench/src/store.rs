//! Store benchmark (issue 2): import rate of N point features with 6 attributes from GeoJSON,
//! beside `ogr2ogr` loading the same file into a GeoPackage in the same run; p50/p95 of a bbox
//! query returning about 1,000 features; the same query as of a past instant after 10% of the
//! features were updated, as a ratio to the current-state query. File sizes (issue 21): the store
//! fresh after the import and after the 10% update, each beside ogr2ogr's GeoPackage, with the
//! history's share and where the bytes go (per table with its indexes, from SQLite's `dbstat`).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_model::{Bbox, Value};
use shikong_store::{FeatureKey, FeatureStore, Patch, Query, StoreConfig, TxMeta};

use crate::data::write_geojson;

#[derive(clap::Args)]
pub struct Args {
    /// Number of point features.
    #[arg(long, default_value_t = 1_000_000)]
    features: u64,
    /// Number of bbox queries to time (each way).
    #[arg(long, default_value_t = 300)]
    queries: usize,
    /// Work directory (default: a temporary directory).
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// `(file bytes, bytes per part, history bytes)`.
type Sizes = (u64, Vec<(String, u64)>, u64);

/// The store file's size after a checkpoint that empties its write-ahead log into it (the
/// bytes a copy of the file holds), the bytes of each part (a table with its indexes; the
/// layer's R-tree; the history: `sk_hist_*` with its indexes and R-tree), largest first, and the
/// history's bytes.
fn store_bytes(path: &std::path::Path, layer: &str) -> anyhow::Result<Sizes> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    let total = std::fs::metadata(path)?.len();
    let mut stmt = conn.prepare(
        "SELECT coalesce(m.tbl_name, d.name), sum(d.pgsize) FROM dbstat d \
         LEFT JOIN sqlite_schema m ON m.name = d.name GROUP BY 1 ORDER BY 2 DESC",
    )?;
    let mut parts: Vec<(String, u64)> = Vec::new();
    let mut history = 0u64;
    let hist = format!("sk_hist_{layer}");
    for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (name, bytes) = row?;
        let bytes = u64::try_from(bytes).unwrap_or(0);
        // R-tree shadow tables (`<rtree>_node` …) belong to their R-tree.
        let part = if name.starts_with(&hist) {
            history += bytes;
            "history (sk_hist_*: table, indexes, R-tree)".to_owned()
        } else if name.starts_with(&format!("rtree_{layer}_")) {
            format!("{layer} R-tree")
        } else {
            name
        };
        match parts.iter_mut().find(|(n, _)| *n == part) {
            Some((_, b)) => *b += bytes,
            None => parts.push((part, bytes)),
        }
    }
    Ok((total, parts, history))
}

fn print_sizes(label: &str, path: &std::path::Path, ogr_bytes: u64, layer: &str) -> anyhow::Result<u64> {
    let (total, parts, history) = store_bytes(path, layer)?;
    let mb = |b: u64| b as f64 / 1e6;
    println!(
        "size {label}: shikong store {:.1} MB, ogr2ogr GeoPackage {:.1} MB, ratio {:.2}; history {:.1} MB ({:.1}% of the store)",
        mb(total),
        mb(ogr_bytes),
        total as f64 / ogr_bytes as f64,
        mb(history),
        100.0 * history as f64 / total as f64
    );
    for (name, bytes) in parts.iter().filter(|(_, b)| *b >= total / 200) {
        println!("    {name:<44} {:>8.1} MB", mb(*bytes));
    }
    Ok(total)
}

fn time_queries(
    store: &dyn FeatureStore,
    boxes: &[Bbox],
    as_of: Option<jiff::Timestamp>,
) -> anyhow::Result<(Vec<Duration>, f64)> {
    let mut times = Vec::with_capacity(boxes.len());
    let mut total = 0usize;
    for b in boxes {
        let t = Instant::now();
        let mut got = Vec::with_capacity(1200);
        store.query(&Query { bbox: Some(*b), as_of, ..Query::layer("manhole") }, &mut |f| {
            got.push(f);
            true
        })?;
        times.push(t.elapsed());
        total += got.len();
    }
    times.sort();
    Ok((times, total as f64 / boxes.len() as f64))
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    let src = dir.join("points.geojson");
    println!("# shikong store benchmark: {} point features, 6 attributes", a.features);
    let t = Instant::now();
    write_geojson(&src, a.features)?;
    let size = std::fs::metadata(&src)?.len();
    println!("generated {} ({:.1} MB) in {:.1} s", src.display(), size as f64 / 1e6, t.elapsed().as_secs_f64());

    // Peer: ogr2ogr into a GeoPackage (with its spatial index), same file, same machine, same run.
    let ogr_out = dir.join("ogr2ogr.gpkg");
    let _ = std::fs::remove_file(&ogr_out);
    let t = Instant::now();
    let status = Command::new("ogr2ogr")
        .args(["-f", "GPKG", ogr_out.to_str().unwrap_or_default(), src.to_str().unwrap_or_default()])
        .status()
        .context("running ogr2ogr (apt-get install gdal-bin)")?;
    if !status.success() {
        bail!("ogr2ogr failed");
    }
    let ogr_secs = t.elapsed().as_secs_f64();

    // shikong import: one transaction, current table + spatial index + version records.
    let store_path = dir.join("store.gpkg");
    let _ = std::fs::remove_file(&store_path);
    let store = shikong_store::init(&StoreConfig::sqlite_file(&store_path))?;
    let opts = ImportOptions { layer: "manhole".into(), author: "bench".into(), ..ImportOptions::default() };
    let t = Instant::now();
    let report =
        import::import(&*store, &src, &opts, &ToStoreFrame, &mut |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    let sk_secs = t.elapsed().as_secs_f64();
    let n = report.inserted as f64;
    println!(
        "import  shikong: {:>9.0} features/s ({sk_secs:.2} s, {} features, with history)",
        n / sk_secs,
        report.inserted
    );
    println!("import  ogr2ogr: {:>9.0} features/s ({ogr_secs:.2} s)", n / ogr_secs);
    println!("import  ratio shikong/ogr2ogr throughput: {:.2}", ogr_secs / sk_secs);
    let ogr_bytes = std::fs::metadata(&ogr_out)?.len();
    let fresh = print_sizes("fresh", &store_path, ogr_bytes, "manhole")?;

    // Boxes expected to hold ~1,000 of the features.
    let boxes = crate::data::boxes(a.features, 1000.0, a.queries, 7);
    time_queries(&*store, &boxes[..20.min(boxes.len())], None)?; // warm the page cache
    let (cur, avg) = time_queries(&*store, &boxes, None)?;
    println!(
        "bbox query (current, ~{avg:.0} features): p50 {:.2} ms, p95 {:.2} ms",
        ms(percentile(&cur, 0.5)),
        ms(percentile(&cur, 0.95))
    );

    // Update 10% of the features (new versions), then read as of before the update.
    std::thread::sleep(Duration::from_millis(5));
    let before = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(5));
    let t = Instant::now();
    let mut tx = store.begin(TxMeta::by("bench").source("update 10%"))?;
    let step = 10u64;
    let mut updated = 0u64;
    for i in (0..a.features).step_by(step as usize) {
        let patch = Patch { set: [("depth".to_owned(), Value::Real(9.99))].into(), ..Patch::default() };
        if tx.update("manhole", &FeatureKey::Code(format!("JG-{i:08}")), patch)?.is_some() {
            updated += 1;
        }
    }
    tx.commit()?;
    println!(
        "update {updated} features (10%) in one transaction: {:.2} s ({:.0} versions/s)",
        t.elapsed().as_secs_f64(),
        updated as f64 / t.elapsed().as_secs_f64()
    );
    time_queries(&*store, &boxes[..20.min(boxes.len())], Some(before))?;
    let (past, avg_past) = time_queries(&*store, &boxes, Some(before))?;
    let (cur2, _) = time_queries(&*store, &boxes, None)?;
    println!(
        "bbox query (as-of before update, ~{avg_past:.0} features): p50 {:.2} ms, p95 {:.2} ms",
        ms(percentile(&past, 0.5)),
        ms(percentile(&past, 0.95))
    );
    println!(
        "bbox query (current after update): p50 {:.2} ms, p95 {:.2} ms",
        ms(percentile(&cur2, 0.5)),
        ms(percentile(&cur2, 0.95))
    );
    println!("as-of / current p50 ratio: {:.2}", ms(percentile(&past, 0.5)) / ms(percentile(&cur2, 0.5)));
    let after = print_sizes("after 10% updated", &store_path, ogr_bytes, "manhole")?;
    println!(
        "size growth from the update: {:.1} MB for {updated} new versions ({:.0} bytes a version, {:.1}% of the fresh store)",
        (after as f64 - fresh as f64) / 1e6,
        (after as f64 - fresh as f64) / updated.max(1) as f64,
        100.0 * (after as f64 - fresh as f64) / fresh as f64
    );
    Ok(())
}
