use rusqlite::Connection;
use shikong_model::{Coord, Geometry, GeometryKind, gpkg_blob};

use super::*;

fn sample(conn: &Connection) {
    init(conn).unwrap();
    let cols = [ColumnDef::new("名称", "TEXT"), ColumnDef::new("depth", "REAL")];
    create_feature_table(
        conn,
        &FeatureTableDef {
            table: "manhole",
            identifier: "井盖",
            description: "test",
            geometry_column: "geom",
            kind: GeometryKind::Point,
            has_z: false,
            srs_id: 4490,
            columns: &cols,
        },
    )
    .unwrap();
}

#[test]
fn triggers_keep_the_rtree_in_step() {
    let conn = Connection::open_in_memory().unwrap();
    sample(&conn);
    let blob = gpkg_blob::encode(&Geometry::Point(Coord::xy(114.3, 30.5)), 4490);
    conn.execute("INSERT INTO manhole (geom, \"名称\", depth) VALUES (?1, '井盖一', 1.5)", [&blob]).unwrap();
    let n: (i64, f64) = conn
        .query_row("SELECT count(*), max(minx) FROM rtree_manhole_geom", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    // The R-tree keeps 32-bit floats rounded outwards: a conservative prefilter.
    assert_eq!(n.0, 1);
    assert!(n.1 <= 114.3 && 114.3 - n.1 < 1e-4, "{}", n.1);
    let moved = gpkg_blob::encode(&Geometry::Point(Coord::xy(114.4, 30.5)), 4490);
    conn.execute("UPDATE manhole SET geom = ?1", [&moved]).unwrap();
    let x: f64 = conn.query_row("SELECT minx FROM rtree_manhole_geom", [], |r| r.get(0)).unwrap();
    assert!((x - 114.4).abs() < 1e-4, "{x}");
    conn.execute("DELETE FROM manhole", []).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM rtree_manhole_geom", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
}

#[test]
fn bulk_load_then_rebuild() {
    let conn = Connection::open_in_memory().unwrap();
    sample(&conn);
    drop_rtree_triggers(&conn, "manhole", "geom").unwrap();
    for i in 0..100 {
        let blob = gpkg_blob::encode(&Geometry::Point(Coord::xy(114.0 + f64::from(i) * 0.01, 30.5)), 4490);
        conn.execute("INSERT INTO manhole (geom) VALUES (?1)", [&blob]).unwrap();
    }
    let n: i64 = conn.query_row("SELECT count(*) FROM rtree_manhole_geom", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 0);
    rebuild_rtree(&conn, "manhole", "geom").unwrap();
    create_rtree_triggers(&conn, "manhole", "geom").unwrap();
    update_extent(&conn, "manhole", "geom").unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM rtree_manhole_geom", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 100);
    let max_x: f64 =
        conn.query_row("SELECT max_x FROM gpkg_contents WHERE table_name='manhole'", [], |r| r.get(0)).unwrap();
    assert!((max_x - 114.99).abs() < 1e-4);
}

#[test]
fn lists_and_reads_layers() {
    let conn = Connection::open_in_memory().unwrap();
    sample(&conn);
    assert!(is_geopackage(&conn).unwrap());
    let blob = gpkg_blob::encode(&Geometry::Point(Coord::xy(114.3, 30.5)), 4490);
    conn.execute("INSERT INTO manhole (geom, \"名称\") VALUES (?1, '井盖一')", [&blob]).unwrap();
    let layers = list_layers(&conn).unwrap();
    assert_eq!(layers.len(), 1);
    let l = &layers[0];
    assert_eq!((l.identifier.as_deref(), l.srs_id, l.pk()), (Some("井盖"), Some(4490), Some("fid")));
    let names: Vec<_> = l.attribute_columns().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["名称", "depth"]);
    let mut seen = vec![];
    read_layer(&conn, l, |fid, g, vals| {
        seen.push((fid, g.is_some(), vals[0].clone()));
        Ok(true)
    })
    .unwrap();
    assert_eq!(seen, [(1, true, rusqlite::types::Value::Text("井盖一".into()))]);
}

#[test]
fn every_supported_srs_has_a_definition() {
    for code in [4326, 4490, 3857, 4491, 4501, 4502, 4512, 4513, 4533, 4534, 4547, 4554] {
        let s = srs_for_epsg(code).unwrap();
        assert_eq!(s.organization_id, code);
        assert!(s.definition.contains(&format!("\"EPSG\",\"{code}\"")), "{code}");
    }
    assert!(srs_for_epsg(4555).is_none());
    assert!(srs_for_epsg(4547).unwrap().definition.contains("central_meridian\",114"));
    assert!(srs_for_epsg(4526).unwrap().definition.contains("central_meridian\",114"));
}
