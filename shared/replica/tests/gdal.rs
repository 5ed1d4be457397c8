//! Real GDAL against real replicas: `ogrinfo` must open them without a warning, edits made with
//! GDAL (as QGIS makes them) must become changes, and the size of a replica is measured against a
//! plain GeoPackage that `ogr2ogr` writes from the same features.

use std::path::Path;
use std::process::{Command, Output};

use shikong_model::{Coord, Feature, FieldType, Geometry, GeometryKind, LayerSchema, ValidTime, Value};
use shikong_replica::{FeatureKey, LocalStatus, NewFeature, ReplicaError, ReplicaLayer, ReplicaWriter};

use crate::support::*;

/// Runs a GDAL tool; fails loudly when GDAL is missing.
fn gdal(tool: &str, args: &[&str]) -> Output {
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{tool}` ({e}): install the Debian package gdal-bin"));
    assert!(out.status.success(), "{tool} {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// `ogrinfo -so -al`: every layer listed with its count, nothing on stderr, no warning anywhere.
fn ogrinfo_clean(path: &Path, expected: &[(&str, u64)]) -> String {
    let p = path.to_str().unwrap();
    let out = gdal("ogrinfo", &["-so", "-al", p]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.trim(), "", "ogrinfo wrote to stderr");
    for bad in ["Warning", "ERROR"] {
        assert!(!stdout.contains(bad), "ogrinfo said {bad}:\n{stdout}");
    }
    for (layer, count) in expected {
        let block = stdout.split("Layer name: ").find(|b| b.starts_with(&format!("{layer}\n"))).unwrap_or_else(|| {
            panic!("ogrinfo does not list layer {layer}:\n{stdout}");
        });
        assert!(block.contains(&format!("Feature Count: {count}\n")), "layer {layer} should count {count}:\n{block}");
    }
    for hidden in ["sk_replica", "sk_docs", "sk_outbox", "sk_conflicts", "sk_blobs", "sk_layers", "sk_capture"] {
        assert!(!stdout.contains(&format!("Layer name: {hidden}\n")), "{hidden} is listed as a layer:\n{stdout}");
    }
    stdout
}

#[test]
fn ogrinfo_opens_replicas_without_warnings_before_and_after_edits() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "r.gpkg", 20);
    let info = ogrinfo_clean(&path, &[("manhole", 20), ("road", 2), ("sk_replica_info", 12)]);
    assert!(info.contains("Geometry: Point") && info.contains("Geometry: Multi Line String"), "{info}");
    assert!(info.contains("井盖") && info.contains("名称: String"), "{info}");
    assert!(
        info.contains("EPSG\",\"4490\"")
            || info.contains("EPSG:4490")
            || info.contains("CGCS2000")
            || info.contains("China Geodetic"),
        "{info}"
    );

    let mut r = open(&path);
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    r.set_fields(
        "manhole",
        &FeatureKey::Code("420111-JG-000001".into()),
        [("depth".to_string(), Value::Real(3.0))].into(),
        &m,
    )
    .unwrap();
    r.delete("manhole", &FeatureKey::Code("420111-JG-000002".into()), &m).unwrap();
    r.create_feature(
        "manhole",
        NewFeature {
            geometry: Some(Geometry::Point(Coord::xy(114.3, 30.5))),
            properties: [("名称".to_string(), Value::from("新井"))].into(),
            ..NewFeature::default()
        },
        &m,
    )
    .unwrap();
    r.add_attachment(
        b"photo",
        "image/jpeg",
        &shikong_replica::Evidence {
            capture_time: ts("2025-06-02T09:00:00+08:00"),
            lon: None,
            lat: None,
            heading: None,
            device: None,
        },
    )
    .unwrap();
    drop(r);
    ogrinfo_clean(&path, &[("manhole", 20), ("road", 2)]);
    // GDAL's own check of the R-tree against the table.
    let out = gdal("ogrinfo", &[path.to_str().unwrap(), "-sql", "SELECT count(*) AS n FROM rtree_manhole_geom", "-q"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("n (Integer) = 20"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn edits_made_with_gdal_become_changes_and_invalid_ones_are_undone() {
    let dir = tempfile::tempdir().unwrap();
    let path = cut(dir.path(), "r.gpkg", 4);
    let p = path.to_str().unwrap();
    gdal("ogrinfo", &[p, "-sql", "UPDATE manhole SET depth = 3 WHERE code = '420111-JG-000001'"]);
    gdal("ogrinfo", &[p, "-sql", "UPDATE manhole SET depth = 99 WHERE code = '420111-JG-000002'"]);
    gdal("ogrinfo", &[p, "-sql", "DELETE FROM manhole WHERE code = '420111-JG-000003'"]);
    // A new feature the way QGIS adds one: through OGR, without entity id or code.
    let geojson = dir.path().join("new.geojson");
    std::fs::write(
        &geojson,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"名称":"QGIS 新增","depth":2.5},"geometry":{"type":"Point","coordinates":[114.35,30.55]}}]}"#,
    )
    .unwrap();
    gdal("ogr2ogr", &["-update", "-append", p, geojson.to_str().unwrap(), "-nln", "manhole"]);

    let mut r = open(&path);
    assert_eq!(r.external_edits().unwrap(), 4);
    let mut server = FakeServer::new(4);
    let page = server.page(&[id(0)]);
    let e = r.apply_pull_page(&page).unwrap_err();
    assert!(matches!(e, ReplicaError::ExternalEditsPending { count: 4 }), "{e}");
    assert!(matches!(r.push_batch(10), Err(ReplicaError::ExternalEditsPending { .. })));

    let done = r.import_external_edits(&meta("张三", "2025-06-02T12:00:00+08:00")).unwrap();
    assert_eq!(done.recorded, 3);
    assert_eq!(done.reverted.len(), 1);
    assert_eq!(done.reverted[0].feature, "420111-JG-000002");
    assert_eq!(
        done.reverted[0].message,
        "layer `manhole`, feature `420111-JG-000002`: field `depth`: 99 is above the maximum 20"
    );
    assert_eq!(r.external_edits().unwrap(), 0);
    let get = |r: &shikong_replica::Replica, c: &str| r.get("manhole", &FeatureKey::Code(c.into())).unwrap();
    assert_eq!(get(&r, "420111-JG-000001").unwrap().feature.properties["depth"], Value::Real(3.0));
    assert_eq!(get(&r, "420111-JG-000001").unwrap().status, LocalStatus::Pending);
    assert_eq!(get(&r, "420111-JG-000002").unwrap().feature, manhole_feature(2));
    assert_eq!(get(&r, "420111-JG-000002").unwrap().status, LocalStatus::Synced);
    assert_eq!(get(&r, "420111-JG-000003"), None);
    let prefix: String = r.actor().to_string().chars().take(6).collect();
    let added = get(&r, &format!("manhole-{prefix}-1")).expect("the added feature got a code");
    assert_eq!(added.feature.properties["名称"], Value::from("QGIS 新增"));
    assert_eq!(added.feature.geometry, Some(Geometry::Point(Coord::xy(114.35, 30.55))));
    assert_eq!((added.version, added.status), (None, LocalStatus::Pending));
    assert_eq!(r.pending().unwrap(), 3);

    // They sync like any edit.
    sync_push(&mut r, &mut server);
    let schema = &manhole().schema;
    assert_eq!(server.docs[&id(1)].0.state(schema).unwrap().feature.properties["depth"], Value::Real(3.0));
    assert!(server.docs[&id(3)].0.state(schema).unwrap().deleted);
    assert_eq!(server.docs[&added.feature.id].0.state(schema).unwrap().feature, added.feature);
    // An API edit records pending outside edits first, under the same change rules.
    gdal("ogrinfo", &[p, "-sql", "UPDATE manhole SET ok = 1 WHERE code = '420111-JG-000001'"]);
    let m = meta("张三", "2025-06-02T12:05:00+08:00");
    r.set_fields(
        "manhole",
        &FeatureKey::Code("420111-JG-000000".into()),
        [("depth".to_string(), Value::Real(2.0))].into(),
        &m,
    )
    .unwrap();
    assert_eq!(get(&r, "420111-JG-000001").unwrap().status, LocalStatus::Pending);
    assert_eq!(r.pending().unwrap(), 2);
    drop(r);
    ogrinfo_clean(&path, &[("manhole", 4)]);
}

/// Many points with 6 attributes: written by [`ReplicaWriter`], clean for GDAL, read back equal,
/// and edited by id. Size and speed of a 100,000-point replica beside `ogr2ogr` are benchmark
/// figures (`shikong-bench sync`), not test assertions.
#[test]
fn a_large_point_replica_reads_back_and_takes_edits() {
    let dir = tempfile::tempdir().unwrap();
    let n: u32 = 20_000;
    let layer = ReplicaLayer {
        name: "poi".into(),
        title: Some("兴趣点".into()),
        description: None,
        geometry_kind: GeometryKind::Point,
        has_z: false,
        schema: LayerSchema {
            fields: vec![
                field("c1", "名称", FieldType::Text),
                field("c2", "类别", FieldType::Text),
                field("c3", "高度", FieldType::Real),
                field("c4", "层数", FieldType::Integer),
                field("c5", "建成日期", FieldType::Date),
                field("c6", "在用", FieldType::Bool),
            ],
        },
        public: true,
        citizen_reports: false,
    };
    let features: Vec<Feature> = (0..n)
        .map(|i| Feature {
            id: shikong_model::EntityId(uuid::Uuid::from_u128(
                0x0192_f3c4_0000_7000_8000_0000_0000_0000 + u128::from(i) * 7919,
            )),
            code: format!("420111-POI-{i:07}"),
            geometry: Some(Geometry::Point(Coord::xy(
                114.0 + f64::from(i % 1000) * 0.0007,
                30.3 + f64::from(i / 1000) * 0.0007,
            ))),
            valid: ValidTime::ALWAYS,
            properties: [
                ("名称".to_string(), Value::from(format!("洪山区兴趣点{i}"))),
                ("类别".to_string(), Value::from(["餐饮", "学校", "医院", "公园"][(i % 4) as usize])),
                ("高度".to_string(), Value::Real(f64::from(i % 97) * 0.5)),
                ("层数".to_string(), Value::Integer(i64::from(i % 33))),
                (
                    "建成日期".to_string(),
                    Value::Date(jiff::civil::date(2000 + (i % 25) as i16, 1 + (i % 12) as i8, 1 + (i % 28) as i8)),
                ),
                ("在用".to_string(), Value::Bool(i % 3 != 0)),
            ]
            .into(),
        })
        .collect();

    let replica = dir.path().join("replica.gpkg");
    let mut w = ReplicaWriter::create(&replica, &info(), std::slice::from_ref(&layer)).unwrap();
    for f in &features {
        w.add_feature("poi", f, 1, None).unwrap();
    }
    w.finish("1").unwrap();
    ogrinfo_clean(&replica, &[("poi", u64::from(n))]);
    let mut r = open(&replica);
    assert_eq!(r.count("poi").unwrap(), u64::from(n));
    let last = r.get("poi", &FeatureKey::Code(format!("420111-POI-{:07}", n - 1))).unwrap().unwrap();
    assert_eq!(last.feature, features[(n - 1) as usize]);
    // Edits on the big replica: by id (indexed), one SQLite transaction each.
    let m = meta("张三", "2025-06-02T09:00:00+08:00");
    for f in features.iter().step_by(100) {
        let props = [("高度".to_string(), Value::Real(99.5))].into();
        assert!(r.set_fields("poi", &FeatureKey::Id(f.id), props, &m).unwrap());
    }
    assert_eq!(r.pending().unwrap(), 200);
}
