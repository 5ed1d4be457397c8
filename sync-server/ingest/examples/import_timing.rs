//! How long one import takes, without the rest of the benchmark suite (issue 21: profiling the
//! import under `perf` and timing it between builds without building the whole server):
//! `cargo run -p shikong-ingest --release --example import_timing -- POINTS.geojson STORE.gpkg`
//! imports the file into layer `manhole` of a new store and prints features/s. The side-by-side
//! figure beside ogr2ogr is `shikong-bench store`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a timing tool: a failure is a crash with its message

use std::time::Instant;

use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_store::StoreConfig;

fn main() {
    let mut args = std::env::args().skip(1);
    let src = std::path::PathBuf::from(args.next().expect("usage: import_timing POINTS.geojson STORE.gpkg"));
    let out = std::path::PathBuf::from(args.next().expect("usage: import_timing POINTS.geojson STORE.gpkg"));
    let _ = std::fs::remove_file(&out);
    let store = shikong_store::init(&StoreConfig::sqlite_file(&out)).expect("store");
    let opts = ImportOptions { layer: "manhole".into(), author: "timing".into(), ..ImportOptions::default() };
    let t = Instant::now();
    let report = import::import(&*store, &src, &opts, &ToStoreFrame, &mut |_, _| {}).expect("import");
    let secs = t.elapsed().as_secs_f64();
    println!("{} features in {secs:.2} s: {:.0} features/s", report.inserted, report.inserted as f64 / secs);
}
