//! The two backends side by side on the same work: `cargo run -p shikong-store --release --example
//! backends [-- N]` loads N points (default 100,000) in one transaction, updates 10 % of them in a
//! second, then times bbox queries (now) and as-of queries (before the update) of about 50
//! features each. PostgreSQL runs in a private durable cluster (`shikong-pgtest`), SQLite in a
//! temporary folder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash with its message

use std::time::{Duration, Instant};

use shikong_model::{Bbox, Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{FeatureKey, LayerDef, NewFeature, Patch, Query, Store, StoreConfig, TxMeta};

fn point(i: usize, n: usize) -> (f64, f64) {
    // A square grid over about 0.3° × 0.3° (Wuhan), in a scrambled order.
    let side = (n as f64).sqrt().ceil() as usize;
    let j = (i * 7919) % n;
    (114.2 + 0.3 * (j % side) as f64 / side as f64, 30.4 + 0.3 * (j / side) as f64 / side as f64)
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0
}

fn run(name: &str, s: &dyn Store, n: usize) {
    let def = LayerDef::new(
        "pts",
        GeometryKind::Point,
        LayerSchema { fields: vec![FieldDef::new("名称", FieldType::Text), FieldDef::new("depth", FieldType::Real)] },
    );
    let mut tx = s.begin(TxMeta::by("bench")).unwrap();
    tx.create_layer(def).unwrap();
    tx.commit().unwrap();
    let started = Instant::now();
    let mut tx = s.begin(TxMeta::by("bench")).unwrap();
    tx.bulk_load("pts").unwrap();
    for i in 0..n {
        let (x, y) = point(i, n);
        let mut properties = shikong_model::Properties::new();
        properties.insert("名称".into(), Value::Text(format!("井盖{i}")));
        properties.insert("depth".into(), Value::Real((i % 50) as f64 / 10.0));
        tx.insert(
            "pts",
            NewFeature {
                code: Some(format!("P{i}")),
                geometry: Some(Geometry::Point(Coord::xy(x, y))),
                properties,
                ..NewFeature::default()
            },
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let import = started.elapsed();
    let before = s.tx_time(s.latest_tx().unwrap()).unwrap().unwrap();
    let started = Instant::now();
    let mut tx = s.begin(TxMeta::by("bench")).unwrap();
    for i in (0..n).step_by(10) {
        let mut set = shikong_model::Properties::new();
        set.insert("depth".into(), Value::Real(9.9));
        tx.update("pts", &FeatureKey::Code(format!("P{i}")), Patch { set, ..Patch::default() }).unwrap();
    }
    tx.commit().unwrap();
    let update = started.elapsed();
    // Boxes holding about 50 points each.
    let w = 0.3 * (50.0 / n as f64).sqrt();
    let boxes: Vec<Bbox> = (0..200)
        .map(|k| {
            let (x, y) = point(k * 97 % n, n);
            Bbox { min_x: x, min_y: y, max_x: (x + w).min(114.5), max_y: (y + w).min(30.7) }
        })
        .collect();
    let time = |as_of| {
        let mut t = Vec::new();
        let mut found = 0;
        for b in &boxes {
            let started = Instant::now();
            let q = Query { bbox: Some(*b), as_of, ..Query::layer("pts") };
            found += s.query(&q, &mut |_| true).unwrap().returned;
            t.push(started.elapsed());
        }
        (t, found / boxes.len())
    };
    let (mut now, per) = time(None);
    let (mut past, _) = time(Some(before));
    println!(
        "{name:<10} import {:>8.0} features/s   update 10 % {:>7.0} ms   bbox p50 {:>6.2} ms p95 {:>6.2} ms (~{per} features)   as-of p50 {:>6.2} ms",
        n as f64 / import.as_secs_f64(),
        update.as_secs_f64() * 1000.0,
        pct(&mut now, 0.5),
        pct(&mut now, 0.95),
        pct(&mut past, 0.5),
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = shikong_store::init(&StoreConfig::in_dir(dir.path())).expect("SQLite store");
    run("SQLite", sqlite.as_ref(), n);
    let cluster = shikong_pgtest::Cluster::start(true).expect("a durable private PostgreSQL cluster");
    let url = cluster.fresh_db();
    let pg = shikong_store::init(&url.parse().unwrap()).expect("PostgreSQL store");
    run("PostgreSQL", pg.as_ref(), n);
}
