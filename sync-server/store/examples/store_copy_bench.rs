//! How fast a whole store moves between backends (`shikong store copy`, issue 17's goal: 1M
//! features with history in under 2 minutes):
//! `cargo run -p shikong-store --release --example store_copy_bench [-- N]` builds a SQLite store
//! of N points (default 1,000,000; three text/number fields) with 20 % of them updated twice and
//! 2 % deleted, then copies it into PostgreSQL (a private cluster of `shikong-pgtest`) and back
//! into a new SQLite store, printing rows/s and features/s each way.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash with its message

use std::time::Instant;

use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::copy::{CopyOptions, copy};
use shikong_store::{FeatureKey, LayerDef, NewFeature, Patch, StoreConfig, TxMeta};

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let src = StoreConfig::in_dir(dir.path().join("src"));
    let s = shikong_store::init(&src).expect("store");
    let def = LayerDef::new(
        "pts",
        GeometryKind::Point,
        LayerSchema {
            fields: vec![
                FieldDef::new("名称", FieldType::Text),
                FieldDef::new("depth", FieldType::Real),
                FieldDef::new("status", FieldType::Integer),
            ],
        },
    );
    let started = Instant::now();
    let mut tx = s.begin(TxMeta::by("bench")).expect("tx");
    tx.create_layer(def).expect("layer");
    tx.bulk_load("pts").expect("bulk");
    for i in 0..n {
        let x = 114.0 + (i % 1000) as f64 * 0.001;
        let y = 30.0 + (i / 1000) as f64 * 0.001;
        let props = [
            ("名称".to_owned(), Value::Text(format!("井盖{i}"))),
            ("depth".to_owned(), Value::Real(1.0 + (i % 7) as f64)),
            ("status".to_owned(), Value::Integer((i % 3) as i64)),
        ]
        .into_iter()
        .collect();
        tx.insert(
            "pts",
            NewFeature {
                code: Some(format!("P{i:07}")),
                geometry: Some(Geometry::Point(Coord::xy(x, y))),
                properties: props,
                ..NewFeature::default()
            },
        )
        .expect("insert");
    }
    tx.commit().expect("commit");
    // History: two update rounds over a fifth of the points, then 2 % deleted.
    for round in 0..2 {
        let mut tx = s.begin(TxMeta::by("inspector")).expect("tx");
        for i in (0..n).step_by(5) {
            let patch = Patch {
                set: [("depth".to_owned(), Value::Real(10.0 + f64::from(round)))].into_iter().collect(),
                ..Patch::default()
            };
            tx.update("pts", &FeatureKey::Code(format!("P{i:07}")), patch).expect("update");
        }
        tx.commit().expect("commit");
    }
    let mut tx = s.begin(TxMeta::by("office")).expect("tx");
    for i in (0..n).step_by(50) {
        tx.delete("pts", &FeatureKey::Code(format!("P{i:07}"))).expect("delete");
    }
    tx.commit().expect("commit");
    drop(s);
    println!("source: {n} features with history built in {:.1?}", started.elapsed());

    let pg: StoreConfig = shikong_pgtest::Cluster::shared().fresh_db().parse().expect("url");
    let back = StoreConfig::in_dir(dir.path().join("back"));
    for (label, from, to) in [("SQLite → PostgreSQL", &src, &pg), ("PostgreSQL → SQLite", &pg, &back)] {
        let r = copy(from, to, &CopyOptions::default(), &mut |_| {}).expect("copy");
        println!(
            "{label}: {} versions ({} live features), {} transactions in {:.1} s: {:.0} versions/s, {:.0} features/s",
            r.versions,
            r.live,
            r.transactions,
            r.seconds,
            r.versions as f64 / r.seconds,
            n as f64 / r.seconds
        );
    }
}
