//! Integration tests of `shikong-replica`: real files, real GDAL, a fake sync server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod attachments;
mod editing;
mod gdal;
mod properties;
mod support;
mod sync;

#[test]
fn a_batch_keeps_all_edits_or_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = support::cut(dir.path(), "batch.gpkg", 3);
    let mut r = support::open(&path);
    let m = support::meta("li", "2025-06-01T08:00:00+08:00");
    let before = r.pending().unwrap();
    let new = |name: &str| shikong_replica::NewFeature {
        geometry: Some(shikong_model::Geometry::Point(shikong_model::Coord::xy(114.3, 30.5))),
        properties: [("名称".to_string(), shikong_model::Value::from(name))].into(),
        ..shikong_replica::NewFeature::default()
    };
    r.batch(|r| {
        r.create_feature("manhole", new("一"), &m)?;
        r.create_feature("manhole", new("二"), &m)
    })
    .unwrap();
    assert_eq!(r.pending().unwrap(), before + 2);
    let bad = shikong_replica::NewFeature {
        geometry: Some(shikong_model::Geometry::Point(shikong_model::Coord::xy(114.3, 95.0))),
        ..new("三")
    };
    assert!(
        r.batch(|r| {
            r.create_feature("manhole", new("四"), &m)?;
            r.create_feature("manhole", bad, &m)
        })
        .is_err()
    );
    assert_eq!(r.pending().unwrap(), before + 2, "a failed batch keeps nothing");
}
