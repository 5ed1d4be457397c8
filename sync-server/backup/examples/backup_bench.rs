//! Times a full backup, an incremental one and their restore on a generated store of N point
//! features (default 1,000,000, as `shikong-bench store`) with 10 % of them updated once.
//! `cargo run --release -p shikong-backup --example backup_bench -- [N] [DIR]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Instant;

use shikong_backup::{BackupOptions, NoProgress, backup, restore};
use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{FeatureKey, LayerDef, NewFeature, Patch, StoreConfig, TxMeta};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let tmp = tempfile::tempdir().unwrap();
    let dir = args.next().map_or_else(|| tmp.path().to_owned(), Into::into);
    let data = dir.join("data");
    let store = shikong_store::init(&StoreConfig::in_dir(&data)).unwrap();
    let t = Instant::now();
    let schema = LayerSchema {
        fields: vec![
            FieldDef::new("name", FieldType::Text),
            FieldDef::new("depth", FieldType::Real),
            FieldDef::new("status", FieldType::Text),
            FieldDef::new("road", FieldType::Text),
            FieldDef::new("year", FieldType::Integer),
        ],
    };
    let mut tx = store.begin(TxMeta::by("bench")).unwrap();
    tx.create_layer(LayerDef::new("manhole", GeometryKind::Point, schema)).unwrap();
    tx.bulk_load("manhole").unwrap();
    let mut rng = 7u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        (rng % 1_000_000) as f64 / 1e6
    };
    for i in 0..n {
        let props = [
            ("name".to_owned(), Value::Text(format!("井盖{i}"))),
            ("depth".to_owned(), Value::Real((next() * 500.0).round() / 100.0)),
            ("status".to_owned(), Value::Text("1".into())),
            ("road".to_owned(), Value::Text("珞喻路".into())),
            ("year".to_owned(), Value::Integer(2000 + i64::from(i % 25))),
        ];
        tx.insert(
            "manhole",
            NewFeature {
                code: Some(format!("P{i:07}")),
                geometry: Some(Geometry::Point(Coord::xy(113.7 + next(), 30.2 + next() * 0.8))),
                properties: props.into_iter().collect(),
                ..NewFeature::default()
            },
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let mut tx = store.begin(TxMeta::by("bench")).unwrap();
    for i in (0..n).step_by(10) {
        let patch = Patch { set: [("depth".to_owned(), Value::Real(9.99))].into(), ..Patch::default() };
        tx.update("manhole", &FeatureKey::Code(format!("P{i:07}")), patch).unwrap();
    }
    tx.commit().unwrap();
    let size = std::fs::metadata(data.join("store.gpkg")).unwrap().len();
    println!(
        "store: {n} features + {} updated, {:.0} MB, made in {:.1} s",
        n / 10,
        size as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );

    let b1 = dir.join("b1");
    let t = Instant::now();
    let r = backup(&BackupOptions { data: data.clone(), out: b1.clone(), since: None }, &NoProgress).unwrap();
    println!("full backup: {:.1} s ({:.0} MB)", t.elapsed().as_secs_f64(), r.bytes as f64 / 1e6);

    let mut tx = store.begin(TxMeta::by("bench")).unwrap();
    for i in (5..n).step_by(1000) {
        let patch = Patch { set: [("status".to_owned(), Value::Text("2".into()))].into(), ..Patch::default() };
        tx.update("manhole", &FeatureKey::Code(format!("P{i:07}")), patch).unwrap();
    }
    tx.commit().unwrap();
    let b2 = dir.join("b2");
    let t = Instant::now();
    let r =
        backup(&BackupOptions { data: data.clone(), out: b2.clone(), since: Some(b1.clone()) }, &NoProgress).unwrap();
    println!(
        "incremental backup ({} updates): {:.1} s ({:.1} MB, {} rows)",
        n / 1000,
        t.elapsed().as_secs_f64(),
        r.bytes as f64 / 1e6,
        r.delta_rows.unwrap_or(0)
    );
    let t = Instant::now();
    restore(&dir.join("r1"), std::slice::from_ref(&b1), &NoProgress).unwrap();
    println!("restore full: {:.1} s", t.elapsed().as_secs_f64());
    let t = Instant::now();
    restore(&dir.join("r2"), &[b1, b2], &NoProgress).unwrap();
    println!("restore full + incremental (with digest check): {:.1} s", t.elapsed().as_secs_f64());
}
