//! Store copies between backends: every read gives the same answer on the source and on each
//! copy (SQLite → PostgreSQL → SQLite, and SQLite → SQLite), a device's old cursor keeps
//! working, new writes continue the numbering, and a destination holding anything is refused and
//! left as it was.

use std::sync::Arc;

use shikong_model::{FieldDef, FieldType, GeometryKind, LayerSchema};
use shikong_pgtest::Cluster;

use super::*;
use crate::conformance::{history_fixture, new, props, pt, t};
use crate::{OpenOptions, Store, StoreConfig};

/// Transactions one day apart from 2025-01-01 (Beijing), so instants pick known states.
fn dated(config: &StoreConfig) -> Arc<dyn Store> {
    let clock = crate::FixedStepClock::new(t("2025-01-01T00:00:00"), jiff::SignedDuration::from_hours(24));
    crate::open_with(config, &OpenOptions { create: true, clock: Some(Arc::new(clock)) }).unwrap()
}

const REPLICA: &str = "0191d2c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6";

fn sha(c: char) -> String {
    c.to_string().repeat(64)
}

/// The conformance history, a second layer whose schema changed (attachments, a 3-D geometry),
/// a restored entity, documents (one rewritten without a version), a replica, attachment
/// records and references, conflicts and outbox records.
fn fill(s: &dyn Store) {
    history_fixture(s); // tx 1..5
    let a = s.get("manhole", &FeatureKey::Code("A".into()), None).unwrap().unwrap().feature.id;
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap().feature.id;
    let b = s.history("manhole", &FeatureKey::Code("B".into())).unwrap()[0].state.as_ref().unwrap().id;
    let replica: ReplicaId = REPLICA.parse().unwrap();
    // tx 6: a layer with attachments; documents; a replica pushes.
    let mut tx = s.begin(TxMeta::by("li").replica(replica).source("sync push test")).unwrap();
    let mut lamp = LayerDef::new(
        "lamp",
        GeometryKind::Point,
        LayerSchema {
            fields: vec![FieldDef::new("照片", FieldType::Attachments), FieldDef::new("功率", FieldType::Integer)],
        },
    );
    lamp.title = Some("路灯".into());
    tx.create_layer(lamp).unwrap();
    for (i, x) in [114.30, 114.31, 114.32].iter().enumerate() {
        let mut f = NewFeature { geometry: pt(*x, 30.5), ..NewFeature::default() };
        f.properties = props(&[("照片", Value::Attachments(vec![sha('a')])), ("功率", Value::Integer(i as i64 * 100))]);
        f.device_time = Some(t("2024-12-31T08:00:00"));
        tx.insert("lamp", f).unwrap();
    }
    tx.put_sync_doc("manhole", a, 4, b"doc of A").unwrap();
    tx.put_sync_doc("manhole", c, 1, b"doc of C").unwrap();
    tx.put_replica(&ReplicaRecord {
        id: replica,
        name: Some("东湖巡检".into()),
        author: "li".into(),
        device: Some("pad-7".into()),
        layers: vec!["manhole".into(), "lamp".into()],
        area: Some("POLYGON((114.29 30.49,114.4 30.49,114.4 30.6,114.29 30.6,114.29 30.49))".into()),
        created_tx: TxId(5),
    })
    .unwrap();
    for ch in ['a', 'b'] {
        tx.put_blob(&BlobRecord {
            sha256: sha(ch),
            size: 3,
            mime: "image/jpeg".into(),
            evidence: serde_json::json!({"capture_time": "2025-01-06T09:00:00+08:00", "lon": 114.3, "lat": 30.5}),
            uploaded_by: "li".into(),
        })
        .unwrap();
    }
    tx.put_conflicts("manhole", a, 2, &["pad-7".into(), "li".into(), "wang".into()]).unwrap();
    tx.put_outbox(uuid::Uuid::now_v7(), r#"{"action":"sync push"}"#).unwrap();
    tx.commit().unwrap();
    // tx 7: schema change (a new field), B restored, a lamp updated and one deleted.
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    let mut def = s.layer("lamp").unwrap().def;
    def.schema.fields.push(FieldDef::new("状态", FieldType::Text));
    def.has_z = true;
    tx.update_layer("lamp", def).unwrap();
    tx.restore("manhole", b, new("B", 114.31, 30.51, "井盖B 恢复", 1.6)).unwrap();
    let lamps = {
        let mut v = Vec::new();
        s.query(&Query { by_id: true, ..Query::layer("lamp") }, &mut |f| {
            v.push(f.feature.id);
            true
        })
        .unwrap();
        v
    };
    let patch = Patch {
        set: props(&[("状态", "正常".into()), ("照片", Value::Attachments(vec![sha('b')]))]),
        geometry: Some(Some(shikong_model::Geometry::Point(shikong_model::Coord::xyz(114.30, 30.5, 21.5)))),
        ..Patch::default()
    };
    tx.update("lamp", &FeatureKey::Id(lamps[0]), patch).unwrap();
    tx.delete("lamp", &FeatureKey::Id(lamps[1])).unwrap();
    tx.put_outbox(uuid::Uuid::now_v7(), r#"{"action":"api update"}"#).unwrap();
    tx.commit().unwrap();
    // tx 8: a document rewritten without a version (a change of kind 2); C's conflicts resolved.
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    tx.put_sync_doc("manhole", c, 1, b"doc of C, resolved").unwrap();
    tx.put_conflicts("manhole", c, 1, &["li".into()]).unwrap();
    tx.commit().unwrap();
}

/// Every read of the traits, as text: equal texts, equal stores.
fn reads(s: &dyn Store) -> String {
    let mut out = String::new();
    let mut w = |label: &str, v: &dyn std::fmt::Debug| out.push_str(&format!("{label}: {v:?}\n"));
    let latest = s.latest_tx().unwrap();
    w("latest", &latest);
    w("transactions", &s.transactions(None, 1000).unwrap());
    w("transactions after 3", &s.transactions(Some(TxId(3)), 2).unwrap());
    for tx in 0..=latest.0 + 1 {
        w("tx_time", &s.tx_time(TxId(tx)).unwrap());
    }
    let instants =
        ["2025-01-01T12:00:00", "2025-01-03T12:00:00", "2025-01-05T12:00:00", "2025-01-07T12:00:00", "2030-01-01"];
    let layers = s.layers().unwrap();
    w("layers", &layers);
    for layer in &layers {
        let name = layer.name();
        w("count", &s.count(name).unwrap());
        w("last tx", &s.layer_last_tx(name).unwrap());
        // Every entity ever, from the change feed read from the start, a page of 2 at a time.
        let mut cursor = ChangeCursor::default();
        let mut ids = Vec::new();
        loop {
            let page = s.changes_since(name, cursor, 2).unwrap();
            ids.extend(page.changes.iter().map(|c| c.id));
            w("change page", &page);
            cursor = page.next;
            if !page.more {
                break;
            }
        }
        // An old cursor in the middle of a transaction (after its first row) still pages on.
        for old in [
            ChangeCursor { tx: 2, kind: 0, key: 1 },
            ChangeCursor { tx: 4, kind: 1, key: 0 },
            ChangeCursor::after_tx(TxId(6)),
        ] {
            w("from old cursor", &s.changes_since(name, old, 100).unwrap());
        }
        ids.sort();
        ids.dedup();
        for id in &ids {
            let key = FeatureKey::Id(*id);
            w("history", &s.history(name, &key).unwrap());
            w("sync doc", &s.sync_doc(name, *id).unwrap());
            for at in instants {
                w("as of", &s.get(name, &key, Some(t(at))).unwrap());
            }
        }
        let mut doc_ids: Vec<_> = s.sync_doc_ids(name).unwrap().into_iter().collect();
        doc_ids.sort();
        w("doc ids", &doc_ids);
        for (from, to) in [(0, 2), (1, 3), (2, 4), (0, 4)] {
            w("diff", &s.diff(name, t(instants[from]), t(instants[to])).unwrap());
            w("diff page", &s.diff_page(name, t(instants[from]), t(instants[to]), None, 1).unwrap());
        }
        for at in [TxId(2), TxId(5), latest] {
            let mut v = Vec::new();
            s.versions_at(name, at, None, &mut |id, version| v.push((id, version))).unwrap();
            v.sort();
            w("versions at", &v);
        }
        for at in [None, Some(t(instants[1])), Some(t(instants[3]))] {
            let mut v = Vec::new();
            let q = Query {
                as_of: at,
                bbox: Some(shikong_model::Bbox::new(114.0, 30.0, 114.315, 30.6).unwrap()),
                ..Query::layer(name)
            };
            let stats = s
                .query(&q, &mut |f| {
                    v.push(f);
                    true
                })
                .unwrap();
            v.sort_by_key(|f| f.feature.id);
            w("query", &(stats, v));
        }
        for author in ["alice", "dave", "li", "wang"] {
            w("created by", &s.entities_created_by(name, author).unwrap());
        }
    }
    w("replica", &s.replica(REPLICA.parse().unwrap()).unwrap());
    for ch in ['a', 'b', 'c'] {
        w("blob", &s.blob(&sha(ch)).unwrap());
        w("blob layers", &s.blob_layers(&sha(ch)).unwrap());
    }
    w("conflicts", &s.open_conflicts(&ConflictFilter { limit: 100, ..ConflictFilter::default() }).unwrap());
    w(
        "conflicts of li",
        &s.open_conflicts(&ConflictFilter { author: Some("li".into()), limit: 1, ..ConflictFilter::default() })
            .unwrap(),
    );
    w("outbox", &s.outbox(100).unwrap());
    out
}

fn store_id(config: &StoreConfig) -> String {
    match config {
        StoreConfig::Sqlite { path } => rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT value FROM sk_meta WHERE key = 'store_id'", [], |r| r.get(0))
            .unwrap(),
        StoreConfig::Postgres { url } => crate::PgStore::open(url, false).unwrap().store_id().to_owned(),
    }
}

fn copy_all(from: &StoreConfig, to: &StoreConfig) -> CopyReport {
    let mut last = CopyProgress::default();
    let report = copy(from, to, &CopyOptions::default(), &mut |p| last = p).unwrap();
    assert_eq!((last.done, last.total), (last.total, last.total), "progress ends at its total");
    report
}

/// After a copy the destination goes on where the source stopped: the next transaction number
/// and a later instant, and a new row's change position after every copied one.
fn writes_continue(s: &dyn Store, before: &str) {
    let latest = s.latest_tx().unwrap();
    let last = s.transactions(None, 1000).unwrap().pop().unwrap();
    let cursor = s.changes_since("manhole", ChangeCursor::default(), 1000).unwrap().next;
    let mut tx = s.begin(TxMeta::by("zhao")).unwrap();
    tx.insert("manhole", new("E", 114.33, 30.53, "井盖E", 1.0)).unwrap();
    tx.put_sync_doc(
        "manhole",
        s.get("manhole", &FeatureKey::Code("D".into()), None).unwrap().unwrap().feature.id,
        1,
        b"d",
    )
    .unwrap();
    let info = tx.commit().unwrap();
    assert_eq!(info.tx, Some(TxId(latest.0 + 1)), "{before}");
    assert!(s.tx_time(TxId(latest.0 + 1)).unwrap().unwrap() > last.time);
    let page = s.changes_since("manhole", cursor, 10).unwrap();
    let codes: Vec<String> =
        page.changes.iter().map(|c| c.state.as_ref().map_or("-".into(), |f| f.feature.code.clone())).collect();
    assert_eq!(codes, ["E", "D"], "{before}: {page:?}");
    // A restored entity's row, a superseded version and a tombstone also get fresh keys.
    let mut tx = s.begin(TxMeta::by("zhao")).unwrap();
    tx.delete("manhole", &FeatureKey::Code("E".into())).unwrap();
    tx.update(
        "lamp",
        &FeatureKey::Code(
            s.changes_since("lamp", ChangeCursor::default(), 1).unwrap().changes[0]
                .state
                .as_ref()
                .unwrap()
                .feature
                .code
                .clone(),
        ),
        Patch { set: props(&[("功率", Value::Integer(7))]), ..Patch::default() },
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(s.history("manhole", &FeatureKey::Code("E".into())).unwrap().len(), 2);
    // Restoring E closes E's tombstone by its row key, and nothing else: the copied rows keep
    // their intervals (a key reused from the copy would close one of them too).
    let e = s.history("manhole", &FeatureKey::Code("E".into())).unwrap()[0].state.as_ref().unwrap().id;
    let past = |s: &dyn Store| {
        let mut out = Vec::new();
        for tx in 1..=8 {
            let mut v = Vec::new();
            s.versions_at("manhole", TxId(tx), None, &mut |id, version| v.push((id, version))).unwrap();
            v.sort();
            out.push(format!("{v:?}"));
        }
        out
    };
    let others = past(s);
    let mut tx = s.begin(TxMeta::by("zhao")).unwrap();
    tx.restore("manhole", e, new("E", 114.33, 30.53, "井盖E", 2.0)).unwrap();
    tx.commit().unwrap();
    let after = past(s);
    assert_eq!(after, others, "{before}");
    assert_eq!(s.history("manhole", &FeatureKey::Code("E".into())).unwrap().len(), 3);
}

#[test]
fn sqlite_to_postgres_and_back_answers_every_read_alike() {
    let dir = tempfile::tempdir().unwrap();
    let a = StoreConfig::in_dir(dir.path().join("a"));
    let pg: StoreConfig = Cluster::shared().fresh_db().parse().unwrap();
    let c = StoreConfig::in_dir(dir.path().join("c"));
    let source = dated(&a);
    fill(&*source);
    let expected = reads(&*source);
    drop(source);

    let r = copy_all(&a, &pg);
    assert_eq!(
        (
            r.layers,
            r.transactions,
            r.versions,
            r.live,
            r.sync_docs,
            r.replicas,
            r.blobs,
            r.blob_refs,
            r.conflicts,
            r.outbox
        ),
        (2, 8, 14, 6, 2, 1, 2, 2, 2, 2),
        "{r}"
    );
    assert_eq!(reads(&*crate::open(&pg).unwrap()), expected, "SQLite → PostgreSQL");
    let r2 = copy_all(&pg, &c);
    assert_eq!((r2.versions, r2.transactions), (r.versions, r.transactions));
    assert_eq!(reads(&*crate::open(&c).unwrap()), expected, "PostgreSQL → SQLite");
    let id = store_id(&a);
    assert_eq!((store_id(&pg), store_id(&c)), (id.clone(), id));

    // Each copy goes on as its source would have.
    for config in [&a, &pg, &c] {
        writes_continue(&*crate::open(config).unwrap(), &config.to_string());
    }
    // A GeoPackage reader sees the copied layer through its R-tree.
    let conn = rusqlite::Connection::open(dir.path().join("c/store.gpkg")).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM rtree_lamp_geom", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2);
}

#[test]
fn sqlite_to_sqlite_copies_attachment_files_too() {
    let dir = tempfile::tempdir().unwrap();
    let a = StoreConfig::in_dir(dir.path().join("a"));
    let b = StoreConfig::in_dir(dir.path().join("b"));
    let source = dated(&a);
    fill(&*source);
    let expected = reads(&*source);
    drop(source);
    let file = blob_file(&dir.path().join("a"), &sha('a'));
    std::fs::create_dir_all(file.parent().unwrap()).unwrap();
    std::fs::write(&file, b"jpg").unwrap();
    let r = copy_all(&a, &b);
    assert_eq!((r.blob_files_copied, r.blob_files_missing, r.blob_files_note.as_deref()), (1, 1, None), "{r}");
    assert_eq!(std::fs::read(blob_file(&dir.path().join("b"), &sha('a'))).unwrap(), b"jpg");
    assert_eq!(reads(&*crate::open(&b).unwrap()), expected);
}

#[test]
fn a_destination_holding_anything_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let a = StoreConfig::in_dir(dir.path().join("a"));
    let b = StoreConfig::in_dir(dir.path().join("b"));
    let pg: StoreConfig = Cluster::shared().fresh_db().parse().unwrap();
    fill(&*dated(&a));
    // b holds only an outbox record; the database one layer and its transaction.
    let s = dated(&b);
    let mut tx = s.begin(TxMeta::by("x")).unwrap();
    tx.put_replica(&ReplicaRecord {
        id: uuid::Uuid::now_v7(),
        name: None,
        author: "x".into(),
        device: None,
        layers: vec![],
        area: None,
        created_tx: TxId(0),
    })
    .unwrap();
    tx.commit().unwrap();
    drop(s);
    let s = dated(&pg);
    let mut tx = s.begin(TxMeta::by("x")).unwrap();
    tx.create_layer(crate::conformance::manhole_layer()).unwrap();
    tx.commit().unwrap();
    drop(s);
    for (to, holds) in [(&b, "1 transactions, 1 replicas"), (&pg, "1 layers, 1 transactions")] {
        let before = reads(&*crate::open(to).unwrap());
        let e = copy(&a, to, &CopyOptions::default(), &mut |_| {}).unwrap_err();
        assert!(matches!(e, StoreError::DestinationNotEmpty { .. }), "{e}");
        let msg = e.to_string();
        assert!(msg.starts_with(&to.to_string()) && msg.contains(holds) && msg.contains("empty"), "{msg}");
        assert_eq!(reads(&*crate::open(to).unwrap()), before, "{to} unchanged");
    }
    let same = copy(&a, &a, &CopyOptions::default(), &mut |_| {}).unwrap_err();
    assert!(same.to_string().contains("same store"), "{same}");
}

#[test]
fn an_interrupted_copy_leaves_an_empty_destination_that_a_rerun_fills() {
    let dir = tempfile::tempdir().unwrap();
    let a = StoreConfig::in_dir(dir.path().join("a"));
    let pg: StoreConfig = Cluster::shared().fresh_db().parse().unwrap();
    let source = dated(&a);
    fill(&*source);
    let expected = reads(&*source);
    drop(source);
    // The copy stops half-way (cancelled between batches, as a killed process would).
    let token = crate::cancel::CancelToken::new(None);
    let stop = token.clone();
    let e = crate::cancel::scope(&token, || {
        copy(&a, &pg, &CopyOptions::default(), &mut |p| {
            if p.done > 10 {
                stop.cancel();
            }
        })
    })
    .unwrap_err();
    assert!(matches!(e, StoreError::Cancelled(_)), "{e}");
    let s = crate::open(&pg).unwrap();
    assert_eq!((s.latest_tx().unwrap(), s.layers().unwrap().len()), (TxId(0), 0));
    drop(s);
    copy_all(&a, &pg);
    assert_eq!(reads(&*crate::open(&pg).unwrap()), expected);
}
