//! Profiling harness for device-local edits and the server merge, without HTTP (the bench's
//! `sync` figures, in a binary small enough to profile): a store of N manholes, a replica cut from
//! it, E edits made on the device in one batch, then pushed batch by batch through the engine.
//! `cargo run --release -p shikong-sync-engine --example sync_profile -- [features] [edits]`

#![allow(clippy::unwrap_used, clippy::expect_used)] // a profiling tool: a failure is a panic

use std::time::Instant;

use shikong_auth::{Action, AuthError, Decision, LayerAccess, Principal, Role, TokenId, UserId};
use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_protocol as wire;
use shikong_replica::{EditMeta, FeatureKey, Replica};
use shikong_store::{LayerDef, NewFeature, StoreConfig, TxMeta};

struct AllowAll;

impl shikong_sync_engine::Authorizer for AllowAll {
    fn authorize(&self, _: Option<&Principal>, _: &LayerAccess<'_>, _: Action) -> Result<Decision, AuthError> {
        Ok(Decision::Allow)
    }
}

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(100_000);
    let edits = args.get(1).copied().unwrap_or(10_000);
    let dir = tempfile::tempdir().unwrap();
    let store = shikong_store::init(&StoreConfig::in_dir(dir.path())).unwrap();
    let t = Instant::now();
    let mut tx = store.begin(TxMeta::by("cli:bench")).unwrap();
    let fields = vec![
        FieldDef::new("name", FieldType::Text),
        FieldDef::new("depth", FieldType::Real),
        FieldDef::new("material", FieldType::Text),
        FieldDef::new("installed", FieldType::Date),
        FieldDef::new("good", FieldType::Bool),
    ];
    tx.create_layer(LayerDef::new("manhole", GeometryKind::Point, LayerSchema { fields })).unwrap();
    for i in 0..n {
        let props = [
            ("name".to_owned(), Value::Text(format!("珞喻路{}号井盖", i % 1000))),
            ("depth".to_owned(), Value::Real((i % 500) as f64 / 100.0)),
            ("material".to_owned(), Value::Text("铸铁".into())),
            ("good".to_owned(), Value::Bool(i % 7 != 0)),
        ]
        .into();
        let f = NewFeature {
            code: Some(format!("JG-{i:08}")),
            geometry: Some(Geometry::Point(Coord::xy(
                114.0 + (i % 600) as f64 / 1000.0,
                30.3 + (i / 600) as f64 / 1e5,
            ))),
            properties: props,
            ..NewFeature::default()
        };
        tx.insert("manhole", f).unwrap();
    }
    tx.commit().unwrap();
    println!("seed {n}: {:.2} s", t.elapsed().as_secs_f64());
    let who = Principal {
        user_id: UserId(1),
        username: "li".into(),
        role: Role::Inspector,
        groups: Vec::new(),
        device: None,
        token: TokenId(1),
    };
    let req = wire::ReplicaRequest {
        protocol: wire::PROTOCOL_VERSION,
        layers: vec!["manhole".into()],
        area: None,
        name: None,
    };
    let path = dir.path().join("a.gpkg");
    shikong_sync_engine::sync::cut_replica(&*store, &AllowAll, &who, "http://x", &req, &path).unwrap();
    let mut r = Replica::open(&path).unwrap();
    let m = EditMeta { user: "li".into(), device: Some("li-pad".into()), time: jiff::Timestamp::now() };
    let t = Instant::now();
    r.batch(|r| {
        for i in 0..edits {
            r.set_fields(
                "manhole",
                &FeatureKey::Code(format!("JG-{i:08}")),
                [("depth".to_string(), Value::Real(7.5))].into(),
                &m,
            )?;
        }
        Ok(())
    })
    .unwrap();
    let s = t.elapsed().as_secs_f64();
    println!("device: {edits} edits in {s:.2} s = {:.0} edits/s", edits as f64 / s);
    let (mut merged, mut secs) = (0usize, 0.0);
    while let Some(batch) = r.push_batch(wire::MAX_PUSH_ENTITIES).unwrap() {
        let t = Instant::now();
        let resp = shikong_sync_engine::sync::push(&*store, &AllowAll, &who, &batch, &|_: &str| true).unwrap();
        secs += t.elapsed().as_secs_f64();
        merged += resp.results.iter().filter(|r| matches!(r.outcome, wire::Outcome::Accepted { .. })).count();
        r.apply_push_response(&resp).unwrap();
    }
    println!("merge: {merged} edits in {secs:.2} s = {:.0} edits/s", merged as f64 / secs);
}
