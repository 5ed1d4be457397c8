//! `shikong-bench`: the benchmarks named by the issues. Each prints its figures, and where an issue
//! asks, the same measurement of a peer tool in the same run with the ratio. Not tests: timings are
//! noisy, so nothing here fails on a threshold.

use clap::{Parser, Subcommand};

// Same allocator as the `shikong` binary, so in-process figures match the product.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod analysis;
mod cases;
mod catalog;
mod crs;
mod data;
mod desktop;
mod flood;
mod geocode;
mod iot;
mod scaleout;
mod serve;
mod store;
mod sync;
mod tiles;
mod wrk;

#[derive(Parser)]
#[command(name = "shikong-bench", about = "shikong benchmarks (print figures, compare with peers)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Geocoding: batch addresses/s, single-query p50/p99, county/township accuracy beside cpca.
    Geocode(geocode::Args),
    /// Coordinate transforms per second (4490→4547, WGS84→GCJ-02) beside pyproj.
    Crs(crs::Args),
    /// Store: import rate of 1M points beside ogr2ogr; bbox query p50/p95; as-of after 10% updated.
    Store(store::Args),
    /// Server: requests/s and p50/p99 of items?bbox=…&limit=100 on a 1M layer, beside pygeoapi.
    Serve(serve::Args),
    /// Map tiles: generated (z12–16, 1M points) and cached vector tiles/s and p99 beside Martin
    /// (PostGIS and MBTiles); offline package time for a 10 km² district.
    Tiles(tiles::Args),
    /// Sync: replica creation (s, size vs ogr2ogr), 10k edits up / down (s), server merge edits/s.
    Sync(sync::Args),
    /// Hostile flood: /healthz and a bbox query p50/p99 while 8 clients send refused filters and
    /// 8 flood logins, beside the same figures on a quiet server.
    Flood(flood::Args),
    /// Desktop (issue 16): time-slider input → map idle p95 over 100k features beside client-side
    /// filtering; attribute-table pages over 1M features beside GeoPackage OFFSET paging; the
    /// desktop app's cold start to a usable map beside Chromium loading /map.
    Desktop(desktop::Args),
    /// Scale-out (issue 17): PostgreSQL vs SQLite at 1M and 10M points (import, bbox p50/p95,
    /// as-of p50), OGC items req/s through one and two server processes on one database.
    Scaleout(scaleout::Args),
    /// Case workflow: durable transitions/s with p50/p99, the overdue scan over 1M open cases,
    /// and GET /cases p50 with 1M cases.
    Cases(cases::Args),
    /// IoT sensing (issue 18): MQTT QoS 1 intake obs/s and p99 publish→queryable with 1,000
    /// simulated stations, dataArray bulk load of 250k, latest-100 at 10M readings, server RSS.
    Iot(iot::Args),
    /// Analysis engine (issue 19): Getis-Ord Gi* beside esda, DBSCAN beside scikit-learn, HDBSCAN
    /// beside the hdbscan package, stop detection beside MovingPandas; ratios and agreement.
    Analysis(analysis::Args),
    /// Catalog and proxy (issue 20): Records/CSW queries at 16 clients over 10k records beside
    /// pycsw (req/s, p50/p95, hits); WMTS tiles direct vs through the key proxy vs MapProxy.
    Catalog(catalog::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Crs(a) => crs::run(a),
        Bench::Geocode(a) => geocode::run(a),
        Bench::Store(a) => store::run(a),
        Bench::Serve(a) => serve::run(a),
        Bench::Sync(a) => sync::run(a),
        Bench::Tiles(a) => tiles::run(a),
        Bench::Flood(a) => flood::run(a),
        Bench::Cases(a) => cases::run(a),
        Bench::Scaleout(a) => scaleout::run(a),
        Bench::Desktop(a) => desktop::run(a),
        Bench::Iot(a) => iot::run(a),
        Bench::Analysis(a) => analysis::run(a),
        Bench::Catalog(a) => catalog::run(a),
    }
}
