//! Appends per second into both time-series backends, beside FROST-Server's ~5,000 inserts/s
//! (issue 18's mark). 1,000 datastreams; producers append small batches concurrently, as MQTT
//! intake would, and large ones, as a `dataArray` bulk post would; every append is acknowledged
//! only after its durable commit. PostgreSQL: a durable private cluster (`shikong-pgtest`), or
//! the database named by `SHIKONG_TS_PG`.
//!
//! `cargo run --release -p shikong-timeseries --example ts_bench [-- READINGS]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use jiff::{SignedDuration, Timestamp};
use shikong_model::SystemClock;
use shikong_timeseries::postgres::PgSeries;
use shikong_timeseries::sqlite::SqliteSeries;
use shikong_timeseries::{Datastream, Order, Outcome, Reading, TimeSeries, WriterOptions};

const STREAMS: i64 = 1_000;

fn run(name: &str, s: Arc<dyn TimeSeries>, total: usize, producers: usize, batch: usize, start: Timestamp) {
    let per = total / producers;
    let t0 = Instant::now();
    let commits0 = s.counts().unwrap().commits;
    let threads: Vec<_> = (0..producers)
        .map(|p| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut i = 0usize;
                while i < per {
                    let n = batch.min(per - i);
                    let readings: Vec<Reading> = (i..i + n)
                        .map(|k| {
                            let seq = (p * per + k) as i64;
                            let ds = seq % STREAMS + 1;
                            // each datastream reports once a second
                            let at = start + SignedDuration::from_secs(seq / STREAMS);
                            Reading::new(ds, at, (seq % 977) as f64 / 10.0)
                        })
                        .collect();
                    let out = s.append(&readings).unwrap();
                    assert!(
                        out.iter().all(|o| *o == Outcome::Accepted),
                        "{:?}",
                        out.iter().find(|o| **o != Outcome::Accepted)
                    );
                    i += n;
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let secs = t0.elapsed().as_secs_f64();
    let commits = s.counts().unwrap().commits - commits0;
    println!(
        "{name:<10} {producers:>3} producers × batches of {batch:>5}: {total:>8} readings in {secs:>6.2} s = {:>8.0} readings/s ({commits} commits)",
        total as f64 / secs
    );
}

fn bench(name: &str, open: &dyn Fn() -> Arc<dyn TimeSeries>, total: usize) {
    // phenomenon times from 20 days ago, one window per run so every reading is new
    let base = Timestamp::now() - SignedDuration::from_hours(24 * 20);
    let s = open();
    for id in 1..=STREAMS {
        s.define(&Datastream { id, unit: "m".into(), min: -10.0, max: 200.0, retention: None }).unwrap();
    }
    let window = |k: i64| base + SignedDuration::from_hours(24 * k);
    run(name, s.clone(), total, 8, 10, window(0));
    run(name, s.clone(), total, 64, 10, window(12));
    run(name, s.clone(), total, 8, 100, window(4));
    run(name, s.clone(), total, 2, 5_000, window(8));
    let t0 = Instant::now();
    let n = 200;
    for k in 0..n {
        let latest = s.range(k % STREAMS + 1, base, Timestamp::now(), 100, Order::Desc).unwrap();
        assert_eq!(latest.len(), 100);
    }
    println!(
        "{name:<10} latest 100 of a datastream: {:.2} ms mean",
        t0.elapsed().as_secs_f64() * 1e3 / f64::from(n as i32)
    );
    let c = s.counts().unwrap();
    println!("{name:<10} stored {} readings in {} partitions", c.readings, c.partitions);
}

fn main() {
    let total: usize = std::env::args().nth(1).map(|a| a.parse().unwrap()).unwrap_or(200_000);
    let dir = tempfile::tempdir().unwrap();
    println!(
        "FROST-Server mark: ~5,000 inserts/s. Durable commits (SQLite WAL + synchronous FULL; PostgreSQL fsync on)."
    );
    bench(
        "sqlite",
        &|| {
            Arc::new(
                SqliteSeries::open(
                    &dir.path().join("timeseries.sqlite"),
                    Arc::new(SystemClock),
                    WriterOptions::default(),
                )
                .unwrap(),
            )
        },
        total,
    );
    let (url, _cluster) = match std::env::var("SHIKONG_TS_PG") {
        Ok(url) => (url, None),
        Err(_) => {
            let c = shikong_pgtest::Cluster::start(true).unwrap();
            (c.fresh_db(), Some(c))
        }
    };
    bench(
        "postgresql",
        &|| Arc::new(PgSeries::open(&url, Arc::new(SystemClock), WriterOptions::default()).unwrap()),
        total,
    );
}
