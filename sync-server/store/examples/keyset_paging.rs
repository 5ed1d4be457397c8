//! What a deep page costs by offset and by keyset (the items endpoint's `next` links, issue 14):
//! `cargo run -p shikong-store --release --example keyset_paging [-- N]` prints the figures for a
//! layer of N points (default 200,000) with 10 % of them updated after paging began.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a benchmark: a failure is a crash with its message

use std::time::Instant;

use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{EntityId, FeatureKey, LayerDef, NewFeature, Patch, Query, Store, TxId, TxMeta};

fn page(s: &dyn Store, q: &Query<'_>) -> (Vec<EntityId>, Option<TxId>, std::time::Duration) {
    let started = Instant::now();
    let mut ids = Vec::new();
    let stats = s
        .query(q, &mut |f| {
            ids.push(f.feature.id);
            true
        })
        .expect("query");
    (ids, stats.tx, started.elapsed())
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let s = shikong_store::init(&shikong_store::StoreConfig::in_dir(dir.path())).expect("store");
    let def = LayerDef::new(
        "pts",
        GeometryKind::Point,
        LayerSchema { fields: vec![FieldDef::new("depth", FieldType::Real)] },
    );
    let started = Instant::now();
    let mut tx = s.begin(TxMeta::by("bench")).expect("tx");
    tx.create_layer(def).expect("layer");
    tx.bulk_load("pts").expect("bulk");
    let mut codes = Vec::with_capacity(n);
    for i in 0..n {
        let x = 114.0 + (i % 1000) as f64 * 0.001;
        let y = 30.0 + (i / 1000) as f64 * 0.001;
        let props = [("depth".to_owned(), Value::Real(1.0))].into_iter().collect();
        let code = format!("P{i:07}");
        tx.insert(
            "pts",
            NewFeature {
                code: Some(code.clone()),
                geometry: Some(Geometry::Point(Coord::xy(x, y))),
                properties: props,
                ..NewFeature::default()
            },
        )
        .expect("insert");
        codes.push(code);
    }
    tx.commit().expect("commit");
    println!("{n} points loaded in {:.1?}", started.elapsed());

    let limit = 100;
    let (first, pinned, t) = page(&*s, &Query { by_id: true, limit: Some(limit), ..Query::layer("pts") });
    println!("first page (keyset): {t:.1?}");
    // Others write while a client pages: a tenth of the points get a new version.
    let started = Instant::now();
    let mut tx = s.begin(TxMeta::by("others")).expect("tx");
    for code in codes.iter().step_by(10) {
        let patch = Patch { set: [("depth".to_owned(), Value::Real(2.0))].into_iter().collect(), ..Patch::default() };
        tx.update("pts", &FeatureKey::Code(code.clone()), patch).expect("update");
    }
    tx.commit().expect("commit");
    println!("{} updates committed in {:.1?}", n / 10, started.elapsed());

    for offset in [0, n / 4, n.saturating_sub(limit).min(100_000)] {
        let (_, _, t) = page(&*s, &Query { by_id: true, offset, limit: Some(limit), ..Query::layer("pts") });
        println!("offset {offset:>7}: {t:.1?}");
    }
    // Keyset pages pinned to the first page's transaction, through the whole layer.
    let started = Instant::now();
    let mut after = first.last().copied();
    let mut seen = first.len();
    let mut slowest = std::time::Duration::ZERO;
    let mut pages = 1;
    while let Some(a) = after {
        let q = Query { by_id: true, after: Some(a), at_tx: pinned, limit: Some(limit), ..Query::layer("pts") };
        let (ids, _, t) = page(&*s, &q);
        slowest = slowest.max(t);
        seen += ids.len();
        pages += 1;
        after = if ids.len() == limit { ids.last().copied() } else { None };
    }
    assert_eq!(seen, n, "every point once, as of the pinned transaction");
    println!(
        "keyset, pinned: {pages} pages of {limit} in {:.1?} ({:.2?} per page, slowest {slowest:.1?})",
        started.elapsed(),
        started.elapsed() / pages as u32
    );
}
