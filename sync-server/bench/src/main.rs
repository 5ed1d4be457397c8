//! `shikong-bench`: the benchmarks named by the issues. Each prints its figures, and where an issue
//! asks, the same measurement of a peer tool in the same run with the ratio. Not tests: timings are
//! noisy, so nothing here fails on a threshold.

use clap::{Parser, Subcommand};

mod crs;

#[derive(Parser)]
#[command(name = "shikong-bench", about = "shikong benchmarks (print figures, compare with peers)")]
struct Cli {
    #[command(subcommand)]
    bench: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Coordinate transforms per second (4490→4547, WGS84→GCJ-02) beside pyproj.
    Crs(crs::Args),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().bench {
        Bench::Crs(a) => crs::run(a),
    }
}
