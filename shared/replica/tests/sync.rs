//! The sync-facing API against a fake server: batches, answers, pull pages, merges, conflicts,
//! layer updates and crash safety.

use serde_json::json;
use shikong_model::{FieldType, Properties, Value};
use shikong_protocol::{
    Bytes, ConflictKind, EntityResult, Outcome, PROTOCOL_VERSION, PullPage, PulledEntity, PushResponse, SyncErrorCode,
};
use shikong_replica::{FeatureKey, LocalStatus, NewFeature, Replica, Resolved};

use crate::support::*;

fn code(c: &str) -> FeatureKey {
    FeatureKey::Code(c.into())
}

fn set(r: &mut Replica, c: &str, items: &[(&str, Value)], who: &str) {
    let props: Properties = items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    assert!(r.set_fields("manhole", &code(c), props, &meta(who, "2025-06-02T10:00:00+08:00")).unwrap());
}

fn prop(r: &Replica, c: &str, name: &str) -> Option<Value> {
    r.get("manhole", &code(c)).unwrap().unwrap().feature.properties.get(name).cloned()
}

#[test]
fn a_batch_stays_the_same_until_its_answer_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 5));
    let mut server = FakeServer::new(5);
    set(&mut r, "420111-JG-000001", &[("depth", 2.0.into())], "张三");
    set(&mut r, "420111-JG-000002", &[("depth", 3.0.into())], "张三");
    set(&mut r, "420111-JG-000001", &[("ok", true.into())], "张三");
    set(&mut r, "420111-JG-000003", &[("depth", 4.0.into())], "张三");
    assert_eq!(r.push_batch(0).unwrap().unwrap().entities.len(), 1, "at least one entity per batch");
    let first = r.push_batch(2).unwrap().unwrap();
    assert_eq!((first.protocol, first.replica), (PROTOCOL_VERSION, info().id));
    assert_eq!(first.entities.len(), 1, "the batch cut by the first call is kept");
    // An edit while the batch is out goes to the next batch, not into this one.
    set(&mut r, "420111-JG-000001", &[("depth", 2.5.into())], "张三");
    assert_eq!(r.push_batch(2).unwrap().unwrap(), first);
    let resp = server.push(&first);
    assert_eq!(r.apply_push_response(&resp).unwrap().accepted, 1);
    let f = r.get("manhole", &code("420111-JG-000001")).unwrap().unwrap();
    assert_eq!((f.version, f.status), (Some(2), LocalStatus::Pending));
    assert_eq!(f.feature.properties["depth"], Value::Real(2.5));

    let second = r.push_batch(2).unwrap().unwrap();
    assert_ne!(second.batch, first.batch);
    let ids: Vec<_> = second.entities.iter().map(|e| e.entity).collect();
    assert_eq!(ids, [id(2).0, id(3).0], "entities in the order of their oldest pending change");
    // A resend of an answered batch changes nothing on the server.
    let again = server.push(&first);
    assert!(matches!(again.results[0].outcome, Outcome::Unchanged { version: 2 }));
    sync_push(&mut r, &mut server);
    assert_eq!(r.pending().unwrap(), 0);
    assert_eq!(r.push_batch(10).unwrap(), None);
    let f = r.get("manhole", &code("420111-JG-000001")).unwrap().unwrap();
    assert_eq!((f.version, f.status), (Some(3), LocalStatus::Synced));
    let server_state = server.docs[&id(1)].0.state(&manhole().schema).unwrap().feature;
    assert_eq!(server_state, f.feature);
}

#[test]
fn refused_changes_stay_until_the_user_edits_again_or_retries() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 3));
    set(&mut r, "420111-JG-000001", &[("depth", 2.0.into())], "张三");
    let batch = r.push_batch(10).unwrap().unwrap();
    let refuse = PushResponse {
        protocol: PROTOCOL_VERSION,
        results: vec![EntityResult {
            layer: "manhole".into(),
            entity: id(1).0,
            outcome: Outcome::Rejected {
                code: SyncErrorCode::Forbidden,
                reason: "张三 may not edit layer manhole".into(),
            },
            doc: None,
        }],
        conflicts: vec![],
        mark: None,
        diverged: false,
    };
    assert_eq!(r.apply_push_response(&refuse).unwrap().rejected, 1);
    let f = r.get("manhole", &code("420111-JG-000001")).unwrap().unwrap();
    assert_eq!(f.status, LocalStatus::Rejected { reason: "张三 may not edit layer manhole".into() });
    assert_eq!(f.feature.properties["depth"], Value::Real(2.0), "the refused edit stays visible");
    assert_eq!(r.pending().unwrap(), 0);
    let rejected = r.rejected().unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        (rejected[0].code.as_str(), rejected[0].op.as_str(), rejected[0].error_code.as_deref()),
        ("420111-JG-000001", "set", Some("forbidden"))
    );
    assert_eq!(r.push_batch(10).unwrap(), None, "not retried on its own");
    // Editing again sends the refused change along (the new one depends on it).
    set(&mut r, "420111-JG-000001", &[("ok", true.into())], "张三");
    let again = r.push_batch(10).unwrap().unwrap();
    assert_ne!(again.batch, batch.batch);
    assert_eq!(again.entities[0].changes.len(), 2);
    assert_eq!(r.apply_push_response(&PushResponse { results: vec![], ..refuse.clone() }).unwrap().rejected, 0);
    assert_eq!(r.pending().unwrap(), 2, "entities the answer does not mention stay pending");
    let third = r.push_batch(10).unwrap().unwrap();
    assert_ne!(third.batch, again.batch);
    assert_eq!(r.apply_push_response(&refuse).unwrap().rejected, 1);
    assert_eq!((r.pending().unwrap(), r.rejected().unwrap().len()), (0, 2));
    assert_eq!(r.retry(None).unwrap(), 2);
    assert_eq!(r.pending().unwrap(), 2);
}

#[test]
fn edits_travel_to_a_second_replica() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&cut(dir.path(), "a.gpkg", 5));
    let mut b = open(&cut(dir.path(), "b.gpkg", 5));
    assert_ne!(a.actor(), b.actor(), "every replica file writes under its own id");
    let mut server = FakeServer::new(5);
    set(&mut a, "420111-JG-000001", &[("depth", 9.0.into()), ("名称", "东湖路井盖".into())], "张三");
    let new = a
        .create_feature(
            "manhole",
            NewFeature {
                geometry: Some(shikong_model::Geometry::Point(shikong_model::Coord::xy(114.4, 30.6))),
                properties: [("名称".to_string(), Value::from("新增井盖"))].into(),
                ..NewFeature::default()
            },
            &meta("张三", "2025-06-02T10:01:00+08:00"),
        )
        .unwrap();
    a.delete("manhole", &code("420111-JG-000004"), &meta("张三", "2025-06-02T10:02:00+08:00")).unwrap();
    sync_push(&mut a, &mut server);
    assert_eq!(a.get("manhole", &FeatureKey::Id(new)).unwrap().unwrap().version, Some(1));

    let page = server.page(&[id(1), new, id(4)]);
    let summary = b.apply_pull_page(&page).unwrap();
    assert_eq!((summary.updated, summary.removed, summary.merged), (2, 1, 0));
    assert_eq!(b.cursor().unwrap(), server.tx.to_string());
    assert_eq!(prop(&b, "420111-JG-000001", "depth"), Some(Value::Real(9.0)));
    assert_eq!(prop(&b, "420111-JG-000001", "名称"), Some(Value::from("东湖路井盖")));
    let created = b.get("manhole", &FeatureKey::Id(new)).unwrap().unwrap();
    assert_eq!(created.feature, a.get("manhole", &FeatureKey::Id(new)).unwrap().unwrap().feature);
    assert_eq!((created.version, created.status), (Some(1), LocalStatus::Synced));
    assert_eq!(b.get("manhole", &code("420111-JG-000004")).unwrap(), None);
    assert_eq!(b.pending().unwrap(), 0);
    // B edits on top of A's edit; the server's document has both, in order.
    set(&mut b, "420111-JG-000001", &[("depth", 10.0.into())], "李四");
    sync_push(&mut b, &mut server);
    let page = server.page(&[id(1)]);
    a.apply_pull_page(&page).unwrap();
    assert_eq!(prop(&a, "420111-JG-000001", "depth"), Some(Value::Real(10.0)));
    assert!(a.conflicts().unwrap().is_empty() && b.conflicts().unwrap().is_empty());
}

#[test]
fn a_pull_merges_with_local_edits_and_records_the_conflict_until_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&cut(dir.path(), "a.gpkg", 3));
    let mut b = open(&cut(dir.path(), "b.gpkg", 3));
    let mut server = FakeServer::new(3);
    set(&mut a, "420111-JG-000001", &[("depth", 4.0.into())], "张三");
    set(&mut b, "420111-JG-000001", &[("depth", 6.0.into()), ("status", "2".into())], "李四");
    sync_push(&mut b, &mut server);
    let summary = a.apply_pull_page(&server.page(&[id(1)])).unwrap();
    assert_eq!(summary.merged, 1);
    // B's edit of another field arrived; A's edit is still there and still to be pushed.
    assert_eq!(prop(&a, "420111-JG-000001", "status"), Some(Value::from("2")));
    assert_eq!(a.pending().unwrap(), 1);
    let conflicts = a.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    let c = &conflicts[0];
    assert_eq!((c.layer.as_str(), c.entity, c.code.as_str()), ("manhole", id(1).0, "420111-JG-000001"));
    assert_eq!((c.kind, c.field.as_str()), (ConflictKind::Field, "depth"));
    let mut values = vec![c.winner.value.clone()];
    values.extend(c.others.iter().map(|o| o.value.clone()));
    values.sort_by_key(|v| v.to_string());
    assert_eq!(values, [json!(4.0), json!(6.0)]);
    let users: Vec<_> = std::iter::once(&c.winner).chain(&c.others).filter_map(|s| s.user.clone()).collect();
    assert!(users.contains(&"张三".to_string()) && users.contains(&"李四".to_string()), "{users:?}");
    // The row shows automerge's winner.
    assert_eq!(prop(&a, "420111-JG-000001", "depth").map(|v| v.to_json()), Some(c.winner.value.clone()));

    // A pushes; B pulls and sees the same conflict; A resolves; both end without it.
    sync_push(&mut a, &mut server);
    b.apply_pull_page(&server.page(&[id(1)])).unwrap();
    assert_eq!(b.conflicts().unwrap().len(), 1);
    a.resolve(
        "manhole",
        &code("420111-JG-000001"),
        "depth",
        Resolved::Value(Value::Real(5.0)),
        &meta("张三", "2025-06-02T11:00:00+08:00"),
    )
    .unwrap();
    assert!(a.conflicts().unwrap().is_empty());
    sync_push(&mut a, &mut server);
    b.apply_pull_page(&server.page(&[id(1)])).unwrap();
    assert!(b.conflicts().unwrap().is_empty());
    assert_eq!(prop(&b, "420111-JG-000001", "depth"), Some(Value::Real(5.0)));
    assert_eq!(prop(&a, "420111-JG-000001", "depth"), Some(Value::Real(5.0)));
}

#[test]
fn a_deletion_wins_over_a_local_edit_which_is_kept_and_can_restore_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&cut(dir.path(), "a.gpkg", 3));
    let mut b = open(&cut(dir.path(), "b.gpkg", 3));
    let mut server = FakeServer::new(3);
    b.delete("manhole", &code("420111-JG-000002"), &meta("李四", "2025-06-02T10:00:00+08:00")).unwrap();
    sync_push(&mut b, &mut server);
    set(&mut a, "420111-JG-000002", &[("depth", 8.0.into())], "张三");
    a.apply_pull_page(&server.page(&[id(2)])).unwrap();
    assert_eq!(a.get("manhole", &code("420111-JG-000002")).unwrap(), None, "delete wins");
    let conflicts = a.conflicts().unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!((conflicts[0].kind, conflicts[0].code.as_str()), (ConflictKind::DeletedWhileEdited, "420111-JG-000002"));
    assert_eq!(a.pending().unwrap(), 1, "the edit is kept");
    a.restore("manhole", &code("420111-JG-000002"), &meta("张三", "2025-06-02T11:00:00+08:00")).unwrap();
    let f = a.get("manhole", &code("420111-JG-000002")).unwrap().unwrap();
    assert_eq!(f.feature.properties["depth"], Value::Real(8.0));
    assert!(a.conflicts().unwrap().is_empty());
    sync_push(&mut a, &mut server);
    b.apply_pull_page(&server.page(&[id(2)])).unwrap();
    assert_eq!(prop(&b, "420111-JG-000002", "depth"), Some(Value::Real(8.0)));
}

#[test]
fn a_layer_update_adds_and_renames_columns_keeping_data_and_local_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "a.gpkg", 3);
    let mut a = open(&path);
    let mut server = FakeServer::new(3);
    set(&mut a, "420111-JG-000001", &[("depth", 4.0.into())], "张三");
    let mut layer = manhole();
    layer.schema.fields[1].name = "井深".into();
    layer.schema.fields.push(field("c9", "备注", FieldType::Text));
    layer.title = Some("井盖（2025版）".into());
    let page = server.layer_update(&layer);
    assert_eq!(a.apply_pull_page(&page).unwrap().layers_changed, 1);
    assert_eq!(a.layer("manhole").unwrap(), &layer);
    assert_eq!(prop(&a, "420111-JG-000001", "井深"), Some(Value::Real(4.0)));
    assert_eq!(prop(&a, "420111-JG-000002", "井深"), Some(Value::Real(1.5)));
    set(&mut a, "420111-JG-000002", &[("备注", "盖板松动".into())], "张三");
    let reopened = Replica::open(&path).unwrap();
    assert_eq!(reopened.layer("manhole").unwrap(), &layer);
    let gpkg = shikong_gpkg::list_layers(&rusqlite::Connection::open(&path).unwrap()).unwrap();
    let m = gpkg.iter().find(|l| l.table == "manhole").unwrap();
    assert_eq!(m.identifier.as_deref(), Some("井盖（2025版）"));
    let cols: Vec<_> = m.attribute_columns().map(|c| c.name.as_str()).collect();
    assert!(cols.contains(&"井深") && cols.contains(&"备注") && !cols.contains(&"depth"), "{cols:?}");
    // The pending edit was made under the old name and still goes out by field id.
    sync_push(&mut a, &mut server);
    let st = server.docs[&id(1)].0.state(&layer.schema).unwrap();
    assert_eq!(st.feature.properties["井深"], Value::Real(4.0));
}

#[test]
fn a_page_that_fails_half_way_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "a.gpkg", 3);
    let mut a = open(&path);
    let mut server = FakeServer::new(3);
    let mut b = open(&cut(dir.path(), "b.gpkg", 3));
    set(&mut b, "420111-JG-000001", &[("depth", 7.0.into())], "李四");
    sync_push(&mut b, &mut server);
    let mut layer = manhole();
    layer.schema.fields.push(field("c9", "备注", FieldType::Text));
    let mut page = server.page(&[id(1)]);
    page.layers = server.layer_update(&layer).layers;
    page.cursor = server.tx.to_string();
    page.entities.push(PulledEntity {
        layer: "manhole".into(),
        entity: id(2).0,
        version: 2,
        tx: server.tx,
        state: None,
        doc: Some(Bytes(b"not an automerge document".to_vec())),
        left_area: false,
    });
    let e = a.apply_pull_page(&page).unwrap_err().to_string();
    assert!(e.starts_with(&format!("sync message, layer `manhole`, entity {}: document:", id(2))), "{e}");
    assert_eq!(a.cursor().unwrap(), "10");
    assert_eq!(prop(&a, "420111-JG-000001", "depth"), Some(Value::Real(1.5)));
    assert_eq!(a.layer("manhole").unwrap(), &manhole());
    drop(a);
    let a = Replica::open(&path).unwrap();
    assert_eq!(a.layer("manhole").unwrap(), &manhole());
    assert_eq!(a.cursor().unwrap(), "10");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let has: i64 = conn
        .query_row("SELECT count(*) FROM pragma_table_info('manhole') WHERE name = '备注'", [], |r| r.get(0))
        .unwrap();
    assert_eq!(has, 0);
}

#[test]
fn stale_entities_and_unknown_protocols_are_not_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&cut(dir.path(), "a.gpkg", 3));
    let mut server = FakeServer::new(3);
    // A page entity older than what the replica has is skipped.
    set(&mut a, "420111-JG-000001", &[("depth", 2.0.into())], "张三");
    sync_push(&mut a, &mut server);
    let mut old = server.page(&[id(1)]);
    old.entities[0].version = 1;
    old.entities[0].state.as_mut().unwrap().properties.insert("c2".into(), json!(0.5));
    old.entities[0].doc = None;
    assert_eq!(a.apply_pull_page(&old).unwrap().stale, 1);
    assert_eq!(prop(&a, "420111-JG-000001", "depth"), Some(Value::Real(2.0)));
    let e = a.apply_pull_page(&PullPage { protocol: 2, ..old }).unwrap_err();
    assert_eq!(e.to_string(), "sync message speaks protocol 2; this app speaks 1");
}

#[test]
fn entities_leaving_the_area_or_changed_without_a_document_follow_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = open(&cut(dir.path(), "a.gpkg", 3));
    let mut changed = manhole_feature(1);
    changed.properties.insert("depth".into(), Value::Real(12.0));
    let page = PullPage {
        protocol: PROTOCOL_VERSION,
        cursor: "12".into(),
        more: false,
        layers: vec![],
        entities: vec![
            PulledEntity {
                layer: "manhole".into(),
                entity: id(2).0,
                version: 1,
                tx: 11,
                state: None,
                doc: None,
                left_area: true,
            },
            PulledEntity {
                layer: "manhole".into(),
                entity: id(1).0,
                version: 2,
                tx: 12,
                state: Some(wire(&manhole(), &changed)),
                doc: None,
                left_area: false,
            },
        ],
        revoked: vec![],
        diverged: false,
    };
    let s = a.apply_pull_page(&page).unwrap();
    assert_eq!((s.updated, s.removed), (1, 1));
    assert_eq!(a.get("manhole", &code("420111-JG-000002")).unwrap(), None);
    let f = a.get("manhole", &code("420111-JG-000001")).unwrap().unwrap();
    assert_eq!((f.feature, f.version), (changed.clone(), Some(2)));
    // Its document is now the base of that state: a local edit builds on it.
    set(&mut a, "420111-JG-000001", &[("ok", true.into())], "张三");
    let batch = a.push_batch(10).unwrap().unwrap();
    let mut server_doc = shikong_crdt::EntityDoc::base(&manhole().schema, &changed).unwrap();
    let changes: Vec<Vec<u8>> = batch.entities[0].changes.iter().map(|c| c.0.clone()).collect();
    assert_eq!(server_doc.apply_changes(&changes).unwrap(), 1);
    assert_eq!(server_doc.state(&manhole().schema).unwrap().feature.properties["ok"], Value::Bool(true));
}

#[test]
fn a_replica_cut_with_an_explicit_document_edits_on_top_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let layer = manhole();
    // Entity 1 was edited by another device before the cut: the server sends its document.
    let other = shikong_crdt::Actor::random();
    let mut doc = shikong_crdt::EntityDoc::base(&layer.schema, &manhole_feature(1)).unwrap();
    let props: Properties = [("depth".to_string(), Value::Real(7.0))].into();
    doc.edit(&layer.schema, other, &meta("王五", "2025-05-01T08:00:00+08:00"), shikong_crdt::Edit::SetFields(props))
        .unwrap();
    let state = doc.state(&layer.schema).unwrap().feature;
    let path = dir.path().join("r.gpkg");
    let mut w = shikong_replica::ReplicaWriter::create(&path, &info(), std::slice::from_ref(&layer)).unwrap();
    w.add_feature("manhole", &manhole_feature(0), 1, None).unwrap();
    w.add_feature("manhole", &state, 2, Some(&doc.save())).unwrap();
    assert_eq!(w.features(), 2);
    w.finish("20").unwrap();

    let mut r = open(&path);
    assert_eq!(prop(&r, "420111-JG-000001", "depth"), Some(Value::Real(7.0)));
    set(&mut r, "420111-JG-000001", &[("ok", true.into())], "张三");
    let mut server = FakeServer::new(1);
    server.docs.insert(id(1), (doc, 2));
    sync_push(&mut r, &mut server);
    let st = server.docs[&id(1)].0.state(&layer.schema).unwrap().feature;
    assert_eq!((&st.properties["depth"], &st.properties["ok"]), (&Value::Real(7.0), &Value::Bool(true)));
    assert_eq!(r.get("manhole", &code("420111-JG-000001")).unwrap().unwrap().version, Some(3));
}

#[test]
fn a_new_replica_file_can_take_a_new_writer_id_until_its_first_edit() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "r.gpkg", 2);
    let mut r = open(&path);
    let before = r.actor();
    let after = r.renew_actor().unwrap();
    assert_ne!(before, after);
    assert_eq!(open(&path).actor(), after);
    set(&mut r, "420111-JG-000001", &[("ok", true.into())], "张三");
    assert!(matches!(r.renew_actor(), Err(shikong_replica::ReplicaError::ActorInUse)));
}
