//! Conformance cases of the sync bookkeeping (documents, replicas, attachments and their
//! references, the conflict index) and of the audit outbox: what offline sync and the audit log
//! keep beside the features, committed and rolled back with them. Part of [`super`]'s suite.

use super::*;

fn replica_record(id: ReplicaId) -> ReplicaRecord {
    ReplicaRecord {
        id,
        name: Some("东湖巡检".into()),
        author: "li".into(),
        device: Some("pad-7".into()),
        layers: vec!["manhole".into()],
        area: None,
        created_tx: TxId(5),
    }
}

fn blob_record(sha256: &str, mime: &str) -> BlobRecord {
    BlobRecord {
        sha256: sha256.into(),
        size: 1234,
        mime: mime.into(),
        evidence: serde_json::json!({"capture_time": "2025-01-04T09:30:00+08:00", "lon": 114.3, "lat": 30.5}),
        uploaded_by: "li".into(),
    }
}

pub fn the_conflict_index_lists_filters_pages_and_forgets(s: &dyn Store) {
    history_fixture(s);
    let id = |code: &str| s.get("manhole", &FeatureKey::Code(code.into()), None).unwrap().unwrap().feature.id;
    let (a, c) = (id("A"), id("C"));
    let all = |f: ConflictFilter| s.open_conflicts(&ConflictFilter { limit: 10, ..f }).unwrap();
    assert!(all(ConflictFilter::default()).is_empty());
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    let first = tx.id().1;
    tx.put_conflicts("manhole", a, 2, &["li".into(), "wang".into(), "li".into()]).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    let second = tx.id().1;
    tx.put_conflicts("manhole", c, 1, &["zhang".into()]).unwrap();
    // A later merge changes the count and authors, never the opening time.
    tx.put_conflicts("manhole", a, 1, &["wang".into(), "li".into()]).unwrap();
    tx.commit().unwrap();
    let listed = all(ConflictFilter::default());
    let mut expected = vec![
        ConflictEntry {
            layer: "manhole".into(),
            entity: a,
            conflicts: 1,
            authors: vec!["li".into(), "wang".into()],
            opened: first,
        },
        ConflictEntry {
            layer: "manhole".into(),
            entity: c,
            conflicts: 1,
            authors: vec!["zhang".into()],
            opened: second,
        },
    ];
    expected.sort_by_key(|e| e.entity.to_string());
    assert_eq!(listed, expected);
    let only = |f: ConflictFilter| all(f).into_iter().map(|e| e.entity).collect::<Vec<_>>();
    assert_eq!(only(ConflictFilter { author: Some("zhang".into()), ..Default::default() }), [c]);
    assert_eq!(only(ConflictFilter { since: Some(second), ..Default::default() }), [c]);
    assert!(only(ConflictFilter { layer: Some("road".into()), ..Default::default() }).is_empty());
    let page = s.open_conflicts(&ConflictFilter { limit: 1, ..Default::default() }).unwrap();
    assert_eq!(page, expected[..1]);
    let after = Some(("manhole".to_owned(), expected[0].entity));
    assert_eq!(only(ConflictFilter { after, ..Default::default() }), [expected[1].entity]);
    // Resolved: the entry goes; dropping a transaction keeps the index as it was.
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    tx.put_conflicts("manhole", c, 0, &[]).unwrap();
    drop(tx);
    assert_eq!(all(ConflictFilter::default()).len(), 2);
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    tx.put_conflicts("manhole", c, 0, &[]).unwrap();
    tx.commit().unwrap();
    assert_eq!(only(ConflictFilter::default()), [a]);
}

pub fn sync_documents_replicas_and_blobs_round_trip(s: &dyn Store) {
    history_fixture(s);
    let a = s.get("manhole", &FeatureKey::Code("A".into()), None).unwrap().unwrap().feature.id;
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap().feature.id;
    let replica: ReplicaId = "0191d2c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6".parse().unwrap();
    let sha = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    assert_eq!(s.sync_doc("manhole", a).unwrap(), None);
    assert!(s.sync_doc_ids("manhole").unwrap().is_empty());
    assert_eq!(s.replica(replica).unwrap(), None);
    assert_eq!(s.blob(sha).unwrap(), None);

    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.put_sync_doc("manhole", a, 4, b"doc of A").unwrap();
    tx.put_sync_doc("manhole", c, 1, b"doc of C").unwrap();
    tx.put_sync_doc("manhole", c, 1, b"doc of C, merged").unwrap();
    tx.put_replica(&replica_record(replica)).unwrap();
    tx.put_blob(&blob_record(sha, "image/jpeg")).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.sync_doc("manhole", a).unwrap(), Some((4, b"doc of A".to_vec())));
    assert_eq!(s.sync_doc("manhole", c).unwrap(), Some((1, b"doc of C, merged".to_vec())));
    assert_eq!(s.sync_doc_ids("manhole").unwrap(), [a, c].into_iter().collect::<std::collections::HashSet<_>>());
    assert_eq!(s.replica(replica).unwrap(), Some(replica_record(replica)));
    assert_eq!(s.blob(sha).unwrap(), Some(blob_record(sha, "image/jpeg")));

    // A replica's name, layers and area change; who cut it and when do not. A known blob keeps
    // its first record.
    let mut tx = s.begin(TxMeta::by("wang")).unwrap();
    let area = "POLYGON((114.29 30.49,114.315 30.49,114.315 30.515,114.29 30.515,114.29 30.49))";
    let changed = ReplicaRecord {
        name: Some("东湖巡检 二组".into()),
        author: "wang".into(),
        device: None,
        layers: vec!["manhole".into(), "lamp".into()],
        area: Some(area.into()),
        created_tx: TxId(99),
        ..replica_record(replica)
    };
    tx.put_replica(&changed).unwrap();
    tx.put_blob(&blob_record(sha, "image/png")).unwrap();
    tx.commit().unwrap();
    let expected = ReplicaRecord {
        name: changed.name.clone(),
        layers: changed.layers.clone(),
        area: changed.area.clone(),
        ..replica_record(replica)
    };
    assert_eq!(s.replica(replica).unwrap(), Some(expected));
    assert_eq!(s.blob(sha).unwrap().map(|b| b.mime), Some("image/jpeg".into()));
}

pub fn a_document_written_alone_commits_and_is_a_change(s: &dyn Store) {
    history_fixture(s);
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap();
    let b = s.history("manhole", &FeatureKey::Code("B".into())).unwrap()[0].state.clone().unwrap().id;
    let before = s.latest_tx().unwrap();
    // A merge that keeps the visible state (C) and an edit that lost to a deletion (B): documents
    // change, no version is written, and the transaction still commits.
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.put_sync_doc("manhole", c.feature.id, c.version, b"merged").unwrap();
    tx.put_sync_doc("manhole", b, 2, b"lost to the deletion").unwrap();
    let info = tx.commit().unwrap();
    assert_eq!((info.tx, info.versions_written()), (Some(TxId(before.0 + 1)), 0));
    let page = s.changes_since("manhole", ChangeCursor::after_tx(before), 100).unwrap();
    let seen: Vec<_> = page.changes.iter().map(|ch| (ch.id, ch.version, ch.tx, ch.state.is_some())).collect();
    let mut expected = vec![(c.feature.id, c.version, TxId(before.0 + 1), true), (b, 2, TxId(before.0 + 1), false)];
    // Positions within one transaction follow the backend's row order; compare as sets.
    let mut seen_sorted = seen.clone();
    seen_sorted.sort();
    expected.sort();
    assert_eq!(seen_sorted, expected, "{seen:?}");
    let live = page.changes.iter().find(|ch| ch.id == c.feature.id).and_then(|ch| ch.state.clone());
    assert_eq!(live, Some(c));
    assert!(!page.more);
    assert_eq!(page.next, ChangeCursor::after_tx(TxId(before.0 + 1)));
}

pub fn bookkeeping_rolls_back_with_its_transaction(s: &dyn Store) {
    history_fixture(s);
    let c = s.get("manhole", &FeatureKey::Code("C".into()), None).unwrap().unwrap().feature.id;
    let replica: ReplicaId = "0191d2c4-5a6b-7c8d-9e0f-a1b2c3d4e5f6".parse().unwrap();
    let before = s.latest_tx().unwrap();
    {
        let mut tx = s.begin(TxMeta::by("li")).unwrap();
        tx.insert("manhole", new("E", 114.3, 30.5, "井盖E", 1.0)).unwrap();
        tx.put_sync_doc("manhole", c, 1, b"doc").unwrap();
        tx.put_replica(&replica_record(replica)).unwrap();
        // dropped without commit
    }
    assert_eq!((s.sync_doc("manhole", c).unwrap(), s.replica(replica).unwrap()), (None, None));
    assert!(s.get("manhole", &FeatureKey::Code("E".into()), None).unwrap().is_none());
    // A document written after a savepoint goes with it; a transaction left with nothing leaves
    // no row.
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.savepoint().unwrap();
    tx.put_sync_doc("manhole", c, 1, b"doc").unwrap();
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(tx.commit().unwrap().tx, None);
    assert_eq!(s.sync_doc("manhole", c).unwrap(), None);
    assert_eq!(s.latest_tx().unwrap(), before);
}

/// Every write records which layers reference an attachment, in its transaction; references
/// stay when a later version drops the attachment (history keeps it readable).
pub fn attachment_references_follow_every_write(s: &dyn Store) {
    let sha = |c: char| c.to_string().repeat(64);
    let photos = || FieldDef::new("照片", FieldType::Attachments);
    let mut manhole = manhole_layer();
    manhole.schema.fields.push(photos());
    let lamp = LayerDef::new("lamp", GeometryKind::Point, LayerSchema { fields: vec![photos()] });
    let with = |mut f: NewFeature, list: &[String]| {
        f.properties.insert("照片".into(), Value::Attachments(list.to_vec()));
        f
    };
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(manhole).unwrap();
    tx.create_layer(lamp).unwrap();
    let a = tx.insert("manhole", with(new("A", 114.3, 30.5, "井盖A", 1.0), &[sha('a')])).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.blob_layers(&sha('a')).unwrap(), ["manhole"]);
    assert!(s.blob_layers(&sha('b')).unwrap().is_empty());

    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    let patch = Patch { set: props(&[("照片", Value::Attachments(vec![sha('b')]))]), ..Patch::default() };
    tx.update("manhole", &FeatureKey::Id(a), patch).unwrap();
    tx.insert("lamp", with(NewFeature { geometry: pt(114.3, 30.5), ..NewFeature::default() }, &[sha('a')])).unwrap();
    tx.commit().unwrap();
    assert_eq!(s.blob_layers(&sha('a')).unwrap(), ["lamp", "manhole"]);
    assert_eq!(s.blob_layers(&sha('b')).unwrap(), ["manhole"]);

    // Rolled back with the write.
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.savepoint().unwrap();
    tx.insert("lamp", with(NewFeature { geometry: pt(114.3, 30.5), ..NewFeature::default() }, &[sha('c')])).unwrap();
    tx.rollback_to_savepoint().unwrap();
    drop(tx);
    assert!(s.blob_layers(&sha('c')).unwrap().is_empty());
}

pub fn outbox_records_commit_and_roll_back_with_their_transaction(s: &dyn Store) {
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    tx.create_layer(manhole_layer()).unwrap();
    let kept = uuid::Uuid::now_v7();
    tx.put_outbox(kept, "{\"what\":\"create layer\"}").unwrap();
    let info = tx.commit().unwrap();
    // Rolled back with its write.
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.insert("manhole", new("A", 114.3, 30.5, "井盖A", 1.0)).unwrap();
    tx.put_outbox(uuid::Uuid::now_v7(), "lost").unwrap();
    drop(tx);
    // Alone it keeps no empty transaction.
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    tx.put_outbox(uuid::Uuid::now_v7(), "alone").unwrap();
    assert_eq!(tx.commit().unwrap().tx, None);
    let pending = s.outbox(10).unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(
        (pending[0].id, pending[0].tx, pending[0].payload.as_str()),
        (kept, info.tx.unwrap(), "{\"what\":\"create layer\"}")
    );
    s.outbox_delivered(&[kept, uuid::Uuid::now_v7()]).unwrap();
    assert!(s.outbox(10).unwrap().is_empty());
    s.outbox_delivered(&[]).unwrap();
}

/// A sync push's pattern: the batch's live rows read in one go, then per entity a savepoint, its
/// write, its document and conflict entry, and a release — or a rollback that undoes exactly that
/// entity's writes, whatever was already sent (deferred writes, immediate ones, a refusal).
pub fn savepoints_of_a_batch_keep_each_entitys_writes_apart(s: &dyn Store) {
    history_fixture(s);
    let id = |code: &str| s.get("manhole", &FeatureKey::Code(code.into()), None).unwrap().unwrap().feature.id;
    let (a, c, d) = (id("A"), id("C"), id("D"));
    let g = EntityId(uuid::Uuid::now_v7());
    let key = FeatureKey::Id;
    let depth = |v: f64| Patch { set: props(&[("depth", v.into())]), ..Patch::default() };
    let depth_in = |f: Option<&StoredFeature>| f.and_then(|f| f.feature.properties.get("depth").cloned());
    let mut tx = s.begin(TxMeta::by("li")).unwrap();
    let rows = tx.get_many("manhole", &[a, c, d, g]).unwrap();
    assert_eq!(rows.len(), 3, "live rows only");
    assert_eq!(rows.get(&a), s.get("manhole", &key(a), None).unwrap().as_ref());
    assert!(s.sync_docs("manhole", &[a, c, g]).unwrap().is_empty());
    // A: kept.
    tx.savepoint().unwrap();
    assert_eq!(tx.update("manhole", &key(a), depth(7.0)).unwrap(), Some(5));
    tx.put_sync_doc("manhole", a, 5, b"doc-a").unwrap();
    tx.put_conflicts("manhole", a, 1, &["li".into()]).unwrap();
    tx.release_savepoint().unwrap();
    // C: updated, documented, indexed, rolled back.
    tx.savepoint().unwrap();
    tx.update("manhole", &key(c), depth(8.0)).unwrap();
    tx.put_sync_doc("manhole", c, 2, b"doc-c").unwrap();
    tx.put_conflicts("manhole", c, 1, &["wang".into()]).unwrap();
    tx.rollback_to_savepoint().unwrap();
    // D: deleted, rolled back.
    tx.savepoint().unwrap();
    tx.delete("manhole", &key(d)).unwrap();
    tx.put_sync_doc("manhole", d, 2, b"doc-d").unwrap();
    tx.rollback_to_savepoint().unwrap();
    // G: refused (A's code), rolled back; then accepted.
    tx.savepoint().unwrap();
    let dup = tx.insert("manhole", NewFeature { id: Some(g), ..new("A", 114.4, 30.6, "重码", 1.0) }).unwrap_err();
    assert!(matches!(dup, StoreError::DuplicateCode { .. }), "{dup}");
    tx.rollback_to_savepoint().unwrap();
    tx.savepoint().unwrap();
    tx.insert("manhole", NewFeature { id: Some(g), ..new("G", 114.4, 30.6, "新井", 1.0) }).unwrap();
    tx.put_sync_doc("manhole", g, 1, b"doc-g").unwrap();
    tx.release_savepoint().unwrap();
    // C again: the stored row, not the rolled-back one; D's document alone.
    tx.savepoint().unwrap();
    assert_eq!(depth_in(tx.get("manhole", &key(c)).unwrap().as_ref()), Some(2.5.into()));
    assert_eq!(tx.update("manhole", &key(c), depth(9.0)).unwrap(), Some(2));
    tx.put_sync_doc("manhole", d, 1, b"doc-d").unwrap();
    tx.release_savepoint().unwrap();
    // Rows read after a savepoint that showed its writes are forgotten by the rollback.
    tx.savepoint().unwrap();
    tx.update("manhole", &key(c), depth(11.0)).unwrap();
    assert_eq!(depth_in(tx.get_many("manhole", &[c]).unwrap().get(&c)), Some(11.0.into()));
    tx.rollback_to_savepoint().unwrap();
    assert_eq!(tx.update("manhole", &key(c), depth(11.0)).unwrap(), Some(2), "C is at 9 again, so 11 is a change");
    // The transaction sees its own writes.
    let rows = tx.get_many("manhole", &[a, c, d, g]).unwrap();
    let depths: Vec<Option<Value>> = [a, c, d, g].iter().map(|id| depth_in(rows.get(id))).collect();
    assert_eq!(depths, [Some(7.0.into()), Some(11.0.into()), Some(0.5.into()), Some(1.0.into())]);
    let info = tx.commit().unwrap();
    assert_eq!((info.inserted, info.updated, info.deleted), (1, 2, 0), "{info:?}");

    assert_eq!(depth_of(s, "A", None), Some(7.0.into()));
    assert_eq!(depth_of(s, "C", None), Some(11.0.into()));
    assert_eq!(depth_of(s, "D", None), Some(0.5.into()));
    assert_eq!(depth_of(s, "G", None), Some(1.0.into()));
    assert_eq!(s.history("manhole", &key(c)).unwrap().iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    let docs = s.sync_docs("manhole", &[a, c, d, g]).unwrap();
    assert_eq!(docs.len(), 3);
    assert_eq!(docs.get(&a), Some(&(5, b"doc-a".to_vec())));
    assert_eq!(docs.get(&d), Some(&(1, b"doc-d".to_vec())));
    assert_eq!(docs.get(&g), Some(&(1, b"doc-g".to_vec())));
    assert_eq!(s.sync_doc("manhole", c).unwrap(), None);
    let open = s.open_conflicts(&ConflictFilter { limit: 10, ..ConflictFilter::default() }).unwrap();
    assert_eq!(open.iter().map(|e| (e.entity, e.authors.clone())).collect::<Vec<_>>(), [(a, vec!["li".to_owned()])]);
}
