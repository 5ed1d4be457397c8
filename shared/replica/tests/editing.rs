//! Opening replicas, reading them, and every kind of edit with its validation.

use shikong_model::{Bbox, Coord, Geometry, Properties, ValidTime, Value};
use shikong_replica::{FeatureKey, LocalStatus, NewFeature, Replica, ReplicaError, Resolved};

use crate::support::*;

fn code(c: &str) -> FeatureKey {
    FeatureKey::Code(c.into())
}

fn props(items: &[(&str, Value)]) -> Properties {
    items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

#[test]
fn a_written_replica_opens_with_its_facts_layers_and_features() {
    let dir = tempfile::tempdir().unwrap();
    let r = open(&cut(dir.path(), "r.gpkg", 50));
    assert_eq!(r.info(), &info());
    let names: Vec<_> = r.layers().iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["manhole", "road"]);
    assert_eq!(r.layer("manhole").unwrap(), &manhole());
    assert_eq!(r.cursor().unwrap(), "10");
    assert_eq!((r.count("manhole").unwrap(), r.count("road").unwrap()), (50, 2));
    assert_eq!(r.pending().unwrap(), 0);

    let by_code = r.get("manhole", &code("420111-JG-000007")).unwrap().unwrap();
    assert_eq!(by_code.feature, manhole_feature(7));
    assert_eq!((by_code.version, &by_code.status), (Some(1), &LocalStatus::Synced));
    let by_id = r.get("manhole", &FeatureKey::Id(id(7))).unwrap().unwrap();
    assert_eq!(by_id, by_code);
    assert_eq!(r.get("manhole", &code("nope")).unwrap(), None);
    assert!(matches!(r.get("pipes", &code("x")), Err(ReplicaError::NoSuchLayer(_))));

    // Points 0..50 sit at x = 114.000 … 114.049 on y = 30.0.
    let hits = r.query_bbox("manhole", &Bbox::new(114.0095, 29.9, 114.0205, 30.1).unwrap()).unwrap();
    let codes: Vec<_> = hits.iter().map(|h| h.feature.code.as_str()).collect();
    assert_eq!(codes, (10..=20).map(|i| format!("420111-JG-{i:06}")).collect::<Vec<_>>());
}

#[test]
fn open_refuses_files_that_are_not_replicas_of_this_format() {
    let dir = tempfile::tempdir().unwrap();
    let check = |path: &std::path::Path, want: &str| {
        let e = Replica::open(path).unwrap_err().to_string();
        assert!(e.contains(want), "{e} lacks {want}");
    };
    check(&dir.path().join("missing.gpkg"), "no such file");
    let text = dir.path().join("notes.gpkg");
    std::fs::write(&text, "这不是数据库 not a database at all, just some text that is long enough").unwrap();
    check(&text, "not a shikong replica");
    let plain = dir.path().join("plain.gpkg");
    shikong_gpkg::init(&rusqlite::Connection::open(&plain).unwrap()).unwrap();
    check(&plain, "a GeoPackage without replica tables");
    let newer = cut(dir.path(), "newer.gpkg", 1);
    rusqlite::Connection::open(&newer)
        .unwrap()
        .execute("UPDATE sk_replica SET value = '2' WHERE key = 'format_version'", [])
        .unwrap();
    check(&newer, "replica format 2 is newer than this app understands (up to 1)");
}

#[test]
fn the_writer_refuses_an_existing_file_and_bad_layers() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "r.gpkg", 1);
    let e = shikong_replica::ReplicaWriter::create(&path, &info(), &[manhole()]).unwrap_err();
    assert!(e.to_string().contains("already exists"), "{e}");
    let mut bad = manhole();
    bad.schema.fields[1].id.clear();
    let e = shikong_replica::ReplicaWriter::create(dir.path().join("b.gpkg"), &info(), &[bad]).unwrap_err();
    assert!(e.to_string().contains("field `depth` has no id"), "{e}");
    let mut w = shikong_replica::ReplicaWriter::create(dir.path().join("c.gpkg"), &info(), &[manhole()]).unwrap();
    let mut f = manhole_feature(1);
    f.properties.insert("colour".into(), "red".into());
    let e = w.add_feature("manhole", &f, 1, None).unwrap_err();
    assert!(e.to_string().contains("`colour`, which is not a field"), "{e}");
    let e = w.add_feature("pipes", &manhole_feature(1), 1, None).unwrap_err();
    assert!(e.to_string().contains("layer `pipes` is not in this replica"), "{e}");
}

#[test]
fn creating_generates_a_device_unique_code_and_queues_one_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 3));
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    let new = NewFeature {
        geometry: Some(Geometry::Point(Coord::xy(114.3, 30.5))),
        properties: props(&[("名称", "新井盖".into()), ("depth", Value::Integer(2))]),
        ..NewFeature::default()
    };
    let a = r.create_feature("manhole", new.clone(), &m).unwrap();
    let b = r.create_feature("manhole", new, &m).unwrap();
    let prefix: String = r.actor().to_string().chars().take(6).collect();
    let fa = r.get("manhole", &FeatureKey::Id(a)).unwrap().unwrap();
    let fb = r.get("manhole", &FeatureKey::Id(b)).unwrap().unwrap();
    assert_eq!(fa.feature.code, format!("manhole-{prefix}-1"));
    assert_eq!(fb.feature.code, format!("manhole-{prefix}-2"));
    // An integer in a real field is stored as the real it means, like the server stores it.
    assert_eq!(fa.feature.properties["depth"], Value::Real(2.0));
    assert_eq!((fa.version, fa.status), (None, LocalStatus::Pending));
    assert_eq!(r.pending().unwrap(), 2);
    assert_eq!(r.count("manhole").unwrap(), 5);
    // Ids are UUID v7 from the device time of the edit.
    assert_eq!(a.0.get_version_num(), 7);
    let e = r.create_feature("manhole", NewFeature { id: Some(a), ..NewFeature::default() }, &m).unwrap_err();
    assert!(matches!(e, ReplicaError::DuplicateId { .. }), "{e}");
    let e = r
        .create_feature(
            "manhole",
            NewFeature {
                code: Some("420111-JG-000001".into()),
                properties: props(&[("名称", "重复".into())]),
                ..NewFeature::default()
            },
            &m,
        )
        .unwrap_err();
    assert_eq!(e.to_string(), "layer `manhole`: code `420111-JG-000001` is already used by another feature");
}

#[test]
fn every_edit_kind_updates_the_row_and_queues_a_change() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "r.gpkg", 3);
    let mut r = open(&path);
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    let k = code("420111-JG-000001");
    assert!(r.set_fields("manhole", &k, props(&[("depth", 3.25.into()), ("status", Value::Null)]), &m).unwrap());
    // Setting what is already there changes nothing and queues nothing.
    assert!(!r.set_fields("manhole", &k, props(&[("depth", 3.25.into())]), &m).unwrap());
    let moved = Geometry::Point(Coord::xy(114.5, 30.5));
    assert!(r.set_geometry("manhole", &k, Some(moved.clone()), &m).unwrap());
    let valid = ValidTime { from: Some(ts("2024-02-01")), to: Some(ts("2030-01-01")) };
    assert!(r.set_valid("manhole", &k, valid, &m).unwrap());
    assert!(r.set_code("manhole", &k, "420111-JG-100001", &m).unwrap());
    let e = r.set_code("manhole", &code("420111-JG-000002"), "420111-JG-100001", &m).unwrap_err();
    assert!(matches!(e, ReplicaError::DuplicateCode { .. }), "{e}");
    let f = r.get("manhole", &code("420111-JG-100001")).unwrap().unwrap();
    assert_eq!(f.feature.properties.get("depth"), Some(&Value::Real(3.25)));
    assert_eq!(f.feature.properties.get("status"), None);
    assert_eq!(f.feature.geometry, Some(moved));
    assert_eq!(f.feature.valid, valid);
    assert_eq!((f.version, f.status), (Some(1), LocalStatus::Pending));
    assert_eq!(r.pending().unwrap(), 4);
    // The columns hold what the store would hold.
    let depth = column(&path, "manhole", "depth");
    assert_eq!(depth[1], ("420111-JG-100001".into(), rusqlite::types::Value::Real(3.25)));

    let k = code("420111-JG-100001");
    assert!(r.delete("manhole", &k, &m).unwrap());
    assert_eq!(r.get("manhole", &k).unwrap(), None);
    assert_eq!(r.count("manhole").unwrap(), 2);
    let e = r.set_fields("manhole", &k, props(&[("depth", 1.0.into())]), &m).unwrap_err();
    assert_eq!(e.to_string(), "layer `manhole`, feature `420111-JG-100001` is deleted (restore it first)");
    assert!(r.restore("manhole", &k, &m).unwrap());
    assert_eq!(r.get("manhole", &k).unwrap().unwrap().feature.properties["depth"], Value::Real(3.25));
    let e = r.restore("manhole", &k, &m).unwrap_err();
    assert!(matches!(e, ReplicaError::NotDeleted { .. }), "{e}");
    assert_eq!(r.pending().unwrap(), 6);
}

#[test]
fn multi_part_layers_take_single_parts_as_the_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 1));
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    let line = Geometry::LineString(vec![Coord::xy(114.0, 30.0), Coord::xy(114.2, 30.2)]);
    assert!(r.set_geometry("road", &code("road-0"), Some(line.clone()), &m).unwrap());
    let g = r.get("road", &code("road-0")).unwrap().unwrap().feature.geometry.unwrap();
    assert_eq!(g, Geometry::MultiLineString(vec![vec![Coord::xy(114.0, 30.0), Coord::xy(114.2, 30.2)]]));
}

/// One refused edit: the message says which layer, feature and field, and nothing is written.
#[track_caller]
fn refused(r: &mut Replica, edit: impl FnOnce(&mut Replica) -> Result<bool, ReplicaError>, message: &str) {
    let before =
        (r.pending().unwrap(), r.get("manhole", &code("420111-JG-000001")).unwrap(), r.count("manhole").unwrap());
    let e = edit(r).map(|_| ()).unwrap_err().to_string();
    assert_eq!(e, message);
    let after =
        (r.pending().unwrap(), r.get("manhole", &code("420111-JG-000001")).unwrap(), r.count("manhole").unwrap());
    assert_eq!(before, after, "a refused edit wrote something");
}

#[test]
fn refused_edits_say_what_is_wrong_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 3));
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    let k = code("420111-JG-000001");
    let set = |items: Vec<(&'static str, Value)>| {
        let m = m.clone();
        let k = k.clone();
        move |r: &mut Replica| {
            r.set_fields("manhole", &k, items.iter().map(|(a, b)| (a.to_string(), b.clone())).collect(), &m)
        }
    };
    let f = "layer `manhole`, feature `420111-JG-000001`";
    refused(&mut r, set(vec![("depth", 25.0.into())]), &format!("{f}: field `depth`: 25 is above the maximum 20"));
    refused(&mut r, set(vec![("depth", "深".into())]), &format!("{f}: field `depth`: expected real, got \"深\""));
    refused(
        &mut r,
        set(vec![("status", "9".into())]),
        &format!("{f}: field `status`: `9` is not in the code list: 1 (完好), 2 (破损)"),
    );
    refused(&mut r, set(vec![("名称", Value::Null)]), &format!("{f}: field `名称`: is required"));
    refused(
        &mut r,
        set(vec![("名称", "二十一个字二十一个字二十一个字二十一个字二".into())]),
        &format!("{f}: field `名称`: 21 characters, at most 20 allowed"),
    );
    refused(&mut r, set(vec![("colour", "red".into())]), &format!("{f}: field `colour`: is not a field of this layer"));
    refused(
        &mut r,
        set(vec![("旧备注", "新值".into())]),
        &format!("{f}: field `旧备注`: is retired and accepts no new values"),
    );
    refused(
        &mut r,
        set(vec![("photos", Value::Attachments(vec!["abc".into()]))]),
        &format!("{f}: field `photos`: `abc` is not a SHA-256 hex digest"),
    );
    let (m2, k2) = (m.clone(), k.clone());
    refused(
        &mut r,
        move |r| {
            r.set_geometry(
                "manhole",
                &k2,
                Some(Geometry::LineString(vec![Coord::xy(114.0, 30.0), Coord::xy(114.1, 30.1)])),
                &m2,
            )
        },
        &format!("{f}: invalid geometry: a POINT layer cannot hold a LINESTRING"),
    );
    let (m2, k2) = (m.clone(), k.clone());
    refused(
        &mut r,
        move |r| r.set_geometry("manhole", &k2, Some(Geometry::Point(Coord::xy(114.0, 95.0))), &m2),
        &format!("{f}: invalid geometry: latitude 95 at coordinate 0 is beyond ±90°"),
    );
    let (m2, k2) = (m.clone(), k.clone());
    refused(
        &mut r,
        move |r| {
            r.set_valid("manhole", &k2, ValidTime { from: Some(ts("2025-01-01")), to: Some(ts("2024-01-01")) }, &m2)
        },
        &format!("{f}: invalid time `2024-12-31T16:00:00Z/2023-12-31T16:00:00Z`: valid_from must be before valid_to"),
    );
    let m2 = m.clone();
    refused(
        &mut r,
        move |r| {
            r.create_feature("manhole", NewFeature { code: Some("新-1".into()), ..NewFeature::default() }, &m2)
                .map(|_| true)
        },
        "layer `manhole`, feature `新-1`: field `名称`: is required",
    );
    let m2 = m.clone();
    refused(
        &mut r,
        move |r| r.set_fields("manhole", &code("nope"), Properties::new(), &m2),
        "layer `manhole`: no feature with code `nope`",
    );
}

#[test]
fn undo_takes_back_this_replicas_last_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 3));
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    let k = code("420111-JG-000002");
    let e = r.undo("manhole", &k, &m).unwrap_err();
    assert_eq!(e.to_string(), "layer `manhole`, feature `420111-JG-000002`: nothing of this replica's to undo");
    r.set_fields("manhole", &k, props(&[("depth", 4.0.into())]), &m).unwrap();
    r.set_fields("manhole", &k, props(&[("depth", 5.0.into()), ("ok", true.into())]), &m).unwrap();
    r.undo("manhole", &k, &m).unwrap();
    let f = r.get("manhole", &k).unwrap().unwrap().feature;
    assert_eq!((&f.properties["depth"], &f.properties["ok"]), (&Value::Real(4.0), &Value::Bool(true)));
    r.undo("manhole", &k, &m).unwrap();
    assert_eq!(r.get("manhole", &k).unwrap().unwrap().feature, manhole_feature(2));
    // Undo of a deletion brings the feature back.
    r.delete("manhole", &k, &m).unwrap();
    r.undo("manhole", &k, &m).unwrap();
    assert_eq!(r.get("manhole", &k).unwrap().unwrap().feature, manhole_feature(2));
    // Undo of a creation deletes.
    let new = r
        .create_feature(
            "manhole",
            NewFeature { properties: props(&[("名称", "临时".into())]), ..NewFeature::default() },
            &m,
        )
        .unwrap();
    r.undo("manhole", &FeatureKey::Id(new), &m).unwrap();
    assert_eq!(r.get("manhole", &FeatureKey::Id(new)).unwrap(), None);
    // Every step is a change of its own, to be synced.
    assert_eq!(r.pending().unwrap(), 8);
}

#[test]
fn resolving_without_a_conflict_is_an_ordinary_edit_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = open(&cut(dir.path(), "r.gpkg", 2));
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    let k = code("420111-JG-000001");
    r.resolve("manhole", &k, "depth", Resolved::Value(Value::Real(7.0)), &m).unwrap();
    assert_eq!(r.get("manhole", &k).unwrap().unwrap().feature.properties["depth"], Value::Real(7.0));
    let e = r.resolve("manhole", &k, "depth", Resolved::Value(Value::Real(70.0)), &m).unwrap_err();
    assert_eq!(e.to_string(), "layer `manhole`, feature `420111-JG-000001`: field `depth`: 70 is above the maximum 20");
    assert!(r.conflicts().unwrap().is_empty());
}
