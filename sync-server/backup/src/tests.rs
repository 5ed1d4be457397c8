//! Backups of a store that went through every kind of write (inserts, updates, deletions,
//! restores, schema changes, a new layer, documents, replicas, attachments), restored and compared
//! with the original through the store's own API: current state, history, as-of reads at every
//! transaction and the change feed with its cursor positions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::Digest as _;
use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value};
use shikong_store::{
    BlobRecord, ChangeCursor, FeatureKey, LayerDef, NewFeature, Patch, Query, ReplicaRecord, Store, StoreConfig, TxMeta,
};

use super::*;

fn props(kv: &[(&str, Value)]) -> Properties {
    kv.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
}

fn point(x: f64, y: f64) -> Option<Geometry> {
    Some(Geometry::Point(Coord::xy(x, y)))
}

fn open(dir: &Path) -> Arc<dyn Store> {
    shikong_store::open(&StoreConfig::in_dir(dir)).unwrap()
}

fn blob(data: &Path, s: &dyn Store, bytes: &[u8]) -> String {
    let sha = format!("{:x}", sha2::Sha256::digest(bytes));
    let path = data.join(blob_rel(&sha).unwrap());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.put_blob(&BlobRecord {
        sha256: sha.clone(),
        size: bytes.len() as u64,
        mime: "image/jpeg".into(),
        evidence: serde_json::json!({"lon": 114.3}),
        uploaded_by: "li".into(),
    })
    .unwrap();
    tx.commit().unwrap();
    sha
}

/// The first state: a layer of 40 manholes, some edited, some deleted; a document, a replica,
/// an attachment, accounts and a gazetteer alias file.
fn first_state(data: &Path) -> Arc<dyn Store> {
    let s = shikong_store::init(&StoreConfig::in_dir(data)).unwrap();
    let schema = LayerSchema {
        fields: vec![
            FieldDef::new("名称", FieldType::Text),
            FieldDef::new("depth", FieldType::Real),
            FieldDef::new("material", FieldType::Text),
        ],
    };
    let mut tx = s.begin(TxMeta::by("demo")).unwrap();
    tx.create_layer(LayerDef::new("manhole", GeometryKind::Point, schema)).unwrap();
    tx.bulk_load("manhole").unwrap();
    for i in 0..40 {
        tx.insert(
            "manhole",
            NewFeature {
                code: Some(format!("M{i:03}")),
                geometry: point(114.0 + f64::from(i) * 0.01, 30.5),
                properties: props(&[("名称", format!("井盖{i}").into()), ("depth", Value::Real(1.0 + f64::from(i)))]),
                ..NewFeature::default()
            },
        )
        .unwrap();
    }
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    for i in 0..5 {
        tx.update(
            "manhole",
            &FeatureKey::Code(format!("M{i:03}")),
            Patch { set: props(&[("material", "铸铁".into())]), ..Patch::default() },
        )
        .unwrap();
    }
    tx.delete("manhole", &FeatureKey::Code("M039".into())).unwrap();
    tx.delete("manhole", &FeatureKey::Code("M038".into())).unwrap();
    tx.commit().unwrap();
    let m1 = s.get("manhole", &FeatureKey::Code("M001".into()), None).unwrap().unwrap().feature.id;
    let mut tx = s.begin(TxMeta::by("li").source("sync push")).unwrap();
    tx.put_sync_doc("manhole", m1, 2, b"doc-v2").unwrap();
    tx.put_replica(&ReplicaRecord {
        id: uuid::Uuid::from_u128(7),
        name: Some("平板1".into()),
        author: "li".into(),
        device: Some("tablet-1".into()),
        layers: vec!["manhole".into()],
        area: None,
        created_tx: shikong_store::TxId(2),
    })
    .unwrap();
    tx.commit().unwrap();
    blob(data, s.as_ref(), b"photo one");
    shikong_auth::AuthStore::open_in(data).unwrap();
    std::fs::write(data.join(shikong_gazetteer::USER_ALIASES_FILE), "alias,name,code\n华科,洪山区,420111\n").unwrap();
    s
}

/// Every kind of later write.
fn more_writes(data: &Path, s: &dyn Store, round: u32) {
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    for i in 5..12 {
        tx.update(
            "manhole",
            &FeatureKey::Code(format!("M{i:03}")),
            Patch {
                geometry: Some(point(115.0 + f64::from(i + round) * 0.01, 31.0)),
                set: props(&[("depth", Value::Real(f64::from(round) + 0.5))]),
                ..Patch::default()
            },
        )
        .unwrap();
    }
    tx.delete("manhole", &FeatureKey::Code(format!("M{:03}", 20 + round))).unwrap();
    tx.insert(
        "manhole",
        NewFeature { code: Some(format!("N{round}")), geometry: point(114.2, 30.2), ..NewFeature::default() },
    )
    .unwrap();
    tx.commit().unwrap();
    // A deleted entity restored under its own id (its tombstone is closed: a row changed in place).
    let gone = s.history("manhole", &FeatureKey::Code("M039".into())).unwrap();
    if s.get("manhole", &FeatureKey::Code("M039".into()), None).unwrap().is_none() {
        let id = gone[0].state.as_ref().unwrap().id;
        let mut tx = s.begin(TxMeta::by("wang")).unwrap();
        tx.restore(
            "manhole",
            id,
            NewFeature { code: Some("M039".into()), geometry: point(114.9, 30.9), ..NewFeature::default() },
        )
        .unwrap();
        tx.commit().unwrap();
    }
    let m2 = s.get("manhole", &FeatureKey::Code("M002".into()), None).unwrap().unwrap().feature.id;
    let mut tx = s.begin(TxMeta::by("li").source("sync push")).unwrap();
    tx.put_sync_doc("manhole", m2, 2, format!("doc round {round}").as_bytes()).unwrap();
    tx.commit().unwrap();
    blob(data, s, format!("photo round {round}").as_bytes());
    std::fs::write(
        data.join(shikong_gazetteer::USER_ALIASES_FILE),
        format!("alias,name,code\n光谷{round},洪山区,420111\n"),
    )
    .unwrap();
}

/// A schema change (a field renamed, one added), an upsert index and a new layer.
fn schema_writes(s: &dyn Store) {
    let mut def = s.layer("manhole").unwrap().def;
    def.schema.fields[2].name = "材质".into();
    def.schema.fields.push(FieldDef::new("inspected", FieldType::Date));
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.update_layer("manhole", def).unwrap();
    tx.find_by_field("manhole", "名称", &"井盖3".into()).unwrap();
    tx.update(
        "manhole",
        &FeatureKey::Code("M003".into()),
        Patch { set: props(&[("材质", "混凝土".into())]), ..Patch::default() },
    )
    .unwrap();
    tx.create_layer(LayerDef::new(
        "lamp",
        GeometryKind::Point,
        LayerSchema { fields: vec![FieldDef::new("watts", FieldType::Integer)] },
    ))
    .unwrap();
    for i in 0..3 {
        tx.insert("lamp", NewFeature { geometry: point(114.1, 30.1 + f64::from(i) * 0.001), ..NewFeature::default() })
            .unwrap();
    }
    tx.commit().unwrap();
}

fn all(s: &dyn Store, layer: &str, as_of: Option<jiff::Timestamp>) -> Vec<shikong_store::StoredFeature> {
    let mut out = Vec::new();
    s.query(&Query { as_of, ..Query::layer(layer) }, &mut |f| {
        out.push(f);
        true
    })
    .unwrap();
    out
}

/// `got` answers like `want`: the journal, layers, current state, as-of reads at every
/// transaction, the history of every entity, the change feed with its positions, documents and
/// replicas.
fn assert_same(got: &dyn Store, want: &dyn Store) {
    let txs = want.transactions(None, 100_000).unwrap();
    assert_eq!(got.latest_tx().unwrap(), want.latest_tx().unwrap());
    assert_eq!(got.transactions(None, 100_000).unwrap(), txs);
    assert_eq!(got.layers().unwrap(), want.layers().unwrap());
    for layer in want.layers().unwrap() {
        let l = layer.name();
        let now = all(got, l, None);
        assert_eq!(now, all(want, l, None), "layer {l} now");
        for t in &txs {
            assert_eq!(all(got, l, Some(t.time)), all(want, l, Some(t.time)), "layer {l} as of tx {}", t.tx.0);
        }
        let start = ChangeCursor { tx: 0, kind: 0, key: 0 };
        let feed = got.changes_since(l, start, 100_000).unwrap();
        assert_eq!(feed, want.changes_since(l, start, 100_000).unwrap(), "feed of {l}");
        for c in &feed.changes {
            let key = FeatureKey::Id(c.id);
            assert_eq!(got.history(l, &key).unwrap(), want.history(l, &key).unwrap(), "history of {}", c.id);
            assert_eq!(got.sync_doc(l, c.id).unwrap(), want.sync_doc(l, c.id).unwrap());
        }
        assert_eq!(got.sync_doc_ids(l).unwrap(), want.sync_doc_ids(l).unwrap());
    }
    assert_eq!(got.replica(uuid::Uuid::from_u128(7)).unwrap(), want.replica(uuid::Uuid::from_u128(7)).unwrap());
}

/// A page-for-page copy of the store as it is now, opened as a store: what a restore of a
/// backup taken now must equal, after the original has moved on.
fn reference(data: &Path, to: &Path) -> Arc<dyn Store> {
    let from = data.join(STORE_FILE);
    let conn = sqlite::open_existing(&from).unwrap();
    sqlite::begin_snapshot(&conn, &from).unwrap();
    sqlite::copy_snapshot(&conn, &from, to, &mut |_, _| {}).unwrap();
    sqlite::end_snapshot(&conn, &from).unwrap();
    shikong_store::open(&StoreConfig::sqlite_file(to)).unwrap()
}

fn take(data: &Path, out: &Path, since: Option<&Path>) -> BackupReport {
    backup(&BackupOptions { data: data.into(), out: out.into(), since: since.map(Into::into) }, &NoProgress).unwrap()
}

#[test]
fn full_and_incremental_backups_restore_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = first_state(&data);
    let (b1, b2, b3) = (dir.path().join("b1"), dir.path().join("b2"), dir.path().join("b3"));
    let r1 = take(&data, &b1, None);
    let ref1 = reference(&data, &dir.path().join("ref1.gpkg"));
    assert_eq!(r1.manifest.kind, Kind::Full);
    assert_eq!(r1.manifest.tx, s.latest_tx().unwrap().0);
    assert!(!dir.path().join("b1.tmp").exists());
    let tx1 = r1.manifest.tx;

    more_writes(&data, s.as_ref(), 1);
    schema_writes(s.as_ref());
    let r2 = take(&data, &b2, Some(&b1));
    let ref2 = reference(&data, &dir.path().join("ref2.gpkg"));
    assert_eq!(r2.manifest.previous.as_ref().unwrap().tx, tx1);
    // Only what changed: not the 40 rows of the first import again (the redefined table is whole).
    let kinds: Vec<_> = r2.manifest.files.iter().map(|f| f.kind).collect();
    assert!(
        kinds.contains(&manifest::FileKind::StoreDelta) && !kinds.contains(&manifest::FileKind::Store),
        "{kinds:?}"
    );
    assert_eq!(kinds.iter().filter(|k| **k == manifest::FileKind::Blob).count(), 1);

    more_writes(&data, s.as_ref(), 2);
    let r3 = take(&data, &b3, Some(&b2));
    let small = r3.delta_rows.unwrap();
    assert!(small < 60, "an incremental after a few writes carries {small} rows");
    assert_eq!(r3.manifest.blobs, 3);

    // The whole chain: the store exactly as it is now, and the files.
    let back = dir.path().join("back");
    let rep = restore(&back, &[b1.clone(), b2.clone(), b3.clone()], &NoProgress).unwrap();
    assert_eq!(rep.tx, s.latest_tx().unwrap().0);
    assert_same(open(&back).as_ref(), s.as_ref());
    assert_eq!(
        std::fs::read(back.join(shikong_gazetteer::USER_ALIASES_FILE)).unwrap(),
        std::fs::read(data.join(shikong_gazetteer::USER_ALIASES_FILE)).unwrap()
    );
    assert!(back.join(AUTH_FILE).is_file());
    assert_eq!(files::list_files(&back.join(BLOB_DIR)).unwrap(), files::list_files(&data.join(BLOB_DIR)).unwrap());

    // A prefix of the chain: the store as it was at that backup.
    let back1 = dir.path().join("back1");
    restore(&back1, std::slice::from_ref(&b1), &NoProgress).unwrap();
    assert_eq!(ref1.latest_tx().unwrap().0, tx1);
    assert_same(open(&back1).as_ref(), ref1.as_ref());
    let back2 = dir.path().join("back2");
    std::fs::create_dir(&back2).unwrap(); // an empty folder is a fine target
    restore(&back2, &[b1.clone(), b2.clone()], &NoProgress).unwrap();
    assert_eq!(ref2.latest_tx().unwrap().0, r2.manifest.tx);
    assert_same(open(&back2).as_ref(), ref2.as_ref());

    // A restored store keeps taking writes and backups that chain on.
    let restored = open(&back);
    more_writes(&back, restored.as_ref(), 3);
    let b4 = dir.path().join("b4");
    take(&back, &b4, Some(&b3));
    let again = dir.path().join("again");
    restore(&again, &[b1, b2, b3, b4], &NoProgress).unwrap();
    assert_same(open(&again).as_ref(), restored.as_ref());
}

#[test]
fn restore_refuses_gaps_wrong_order_damage_and_a_used_folder() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = first_state(&data);
    let b: Vec<PathBuf> = (1..=3).map(|i| dir.path().join(format!("b{i}"))).collect();
    take(&data, &b[0], None);
    more_writes(&data, s.as_ref(), 1);
    take(&data, &b[1], Some(&b[0]));
    more_writes(&data, s.as_ref(), 2);
    take(&data, &b[2], Some(&b[1]));
    let target = dir.path().join("new");
    let err = |chain: &[PathBuf]| restore(&target, chain, &NoProgress).unwrap_err().to_string();

    let gap = err(&[b[0].clone(), b[2].clone()]);
    assert!(gap.contains("a backup is missing between them") && gap.contains("b3") && gap.contains("b1"), "{gap}");
    let order = err(&[b[0].clone(), b[2].clone(), b[1].clone()]);
    assert!(order.contains("missing") || order.contains("wrong order"), "{order}");
    let first = err(&[b[1].clone(), b[2].clone()]);
    assert!(first.contains("the first backup must be a full one"), "{first}");
    assert!(!target.exists(), "a refused restore leaves nothing behind");

    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep.txt"), "mine").unwrap();
    let used = err(&[b[0].clone()]);
    assert!(used.contains("is not empty (1 entries)"), "{used}");
    assert_eq!(std::fs::read_to_string(target.join("keep.txt")).unwrap(), "mine");
    std::fs::remove_dir_all(&target).unwrap();

    // A damaged file is named, and nothing is left behind.
    let blob = files::list_files(&b[1]).unwrap().into_iter().find(|p| p.starts_with("blobs/")).unwrap();
    std::fs::write(b[1].join(&blob), b"tampered").unwrap();
    let damaged = err(&[b[0].clone(), b[1].clone()]);
    assert!(damaged.contains(&blob) && damaged.contains("damaged"), "{damaged}");
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains("restoring"))
        .collect();
    assert!(leftovers.is_empty());

    // Backups are never written over, and only chain onto their own store.
    let again = backup(&BackupOptions { data: data.clone(), out: b[0].clone(), since: None }, &NoProgress).unwrap_err();
    assert!(again.to_string().contains("already exists"), "{again}");
    let other = dir.path().join("other");
    first_state(&other);
    let e = backup(&BackupOptions { data: other, out: dir.path().join("x"), since: Some(b[0].clone()) }, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("that backup is of another store"), "{e}");
}
