//! Two devices pushing edits of the same entities at the same moment, on SQLite and PostgreSQL.
//! A push merges its batch before it begins its write transaction (`merge.rs`); when the other
//! device's push commits in between, that merge is stale and is done again inside the
//! transaction. Nothing either device sent may be lost: every change is in the stored
//! documents, every push wrote its version, and the rows hold each device's last values.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Barrier;

use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc};
use shikong_model::{EntityId, Value};
use shikong_protocol as wire;
use shikong_store::{FeatureKey, Store, StoreConfig};
use support::{AllowAll, li};

const ENTITIES: usize = 12;
const ROUNDS: usize = 6;
/// Device `d` writes field `FIELDS[d]` alone and field `shared` with the other device.
const FIELDS: [&str; 3] = ["a", "b", "shared"];

/// Device `d`'s pushes: each round it edits every entity on its own copy and pushes the round's
/// changes in one batch, at the same moment as the other device. Returns every change it sent.
fn device(store: &dyn Store, ids: &[EntityId], d: usize, start: &Barrier) -> Vec<(EntityId, Vec<u8>)> {
    let layer = store.layer("manhole").unwrap();
    let schema = layer.schema();
    let actor = Actor::random();
    let mut docs: Vec<EntityDoc> = ids
        .iter()
        .map(|id| EntityDoc::base(schema, &store.get("manhole", &FeatureKey::Id(*id), None).unwrap().unwrap().feature))
        .collect::<Result<_, _>>()
        .unwrap();
    let mut sent = Vec::new();
    for round in 0..ROUNDS {
        let mut entities = Vec::new();
        for (id, doc) in ids.iter().zip(&mut docs) {
            let value = Value::Real((100 * d + round + 1) as f64);
            let props = [(FIELDS[d].to_owned(), value.clone()), ("shared".to_owned(), value)].into();
            let meta = EditMeta { user: "li".into(), device: None, time: jiff::Timestamp::now() };
            let c = doc.edit(schema, actor, &meta, Edit::SetFields(props)).unwrap().expect("a change");
            sent.push((*id, c.clone()));
            entities.push(wire::EntityChanges { layer: "manhole".into(), entity: id.0, changes: vec![wire::Bytes(c)] });
        }
        let req = wire::PushRequest {
            protocol: wire::PROTOCOL_VERSION,
            replica: uuid::Uuid::now_v7(),
            batch: uuid::Uuid::now_v7(),
            entities,
            seen: None,
        };
        start.wait();
        let resp = shikong_sync_engine::sync::push(store, &AllowAll, &li(), &req, &|_| true).unwrap();
        assert_eq!(resp.results.len(), ENTITIES);
        for r in &resp.results {
            assert!(matches!(r.outcome, wire::Outcome::Accepted { .. }), "device {d} round {round}: {:?}", r.outcome);
        }
    }
    sent
}

fn two_devices_at_once(store: &dyn Store) {
    let ids = support::seed_manholes(store, &FIELDS, ENTITIES);
    let start = Barrier::new(2);
    let sent: Vec<Vec<(EntityId, Vec<u8>)>> = std::thread::scope(|s| {
        let (ids, start) = (&ids, &start);
        let handles: Vec<_> = (0..2).map(|d| s.spawn(move || device(store, ids, d, start))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let schema = store.layer("manhole").unwrap().schema().clone();
    for id in &ids {
        let (_, bytes) = store.sync_doc("manhole", *id).unwrap().expect("a merged document");
        let doc = EntityDoc::load(&bytes).unwrap();
        for (d, changes) in sent.iter().enumerate() {
            for (_, c) in changes.iter().filter(|(e, _)| e == id) {
                let hash = shikong_crdt::change_hash(c).unwrap();
                assert!(doc.has_change(&hash), "entity {id}: a change of device {d} is missing from its document");
            }
        }
        let row = store.get("manhole", &FeatureKey::Id(*id), None).unwrap().unwrap();
        assert_eq!(row.version, 1 + 2 * ROUNDS as i64, "entity {id}: one version per push");
        let last = ROUNDS as f64;
        assert_eq!(row.feature.properties.get("a"), Some(&Value::Real(last)));
        assert_eq!(row.feature.properties.get("b"), Some(&Value::Real(100.0 + last)));
        assert_eq!(row.feature.properties, doc.state(&schema).unwrap().feature.properties);
        assert_eq!(store.history("manhole", &FeatureKey::Id(*id)).unwrap().len(), 1 + 2 * ROUNDS);
    }
}

#[test]
fn two_devices_pushing_the_same_entities_at_once_lose_nothing_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = shikong_store::init(&StoreConfig::in_dir(dir.path())).unwrap();
    two_devices_at_once(&*store);
}

#[test]
fn two_devices_pushing_the_same_entities_at_once_lose_nothing_on_postgres() {
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let store = shikong_store::init(&StoreConfig::Postgres { url }).unwrap();
    two_devices_at_once(&*store);
}
