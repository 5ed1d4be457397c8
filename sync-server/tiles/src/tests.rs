//! Tile service behaviour on a real store: generation, caching, as-of, exact invalidation.

use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use shikong_model::{Coord, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Value};
use shikong_store::{FeatureKey, FixedStepClock, LayerDef, NewFeature, OpenOptions, Patch, Store, StoreConfig, TxMeta};
use shikong_tiles::{DecodedGeometry, TileId, TileMatrixSet, decode_tile};

use super::*;

pub(crate) fn t(s: &str) -> Timestamp {
    shikong_model::parse_instant(s).unwrap()
}

/// A store opened through the factory, as the server opens it; the tile service sees only
/// [`FeatureStore`].
pub(crate) struct TestStore(Arc<dyn Store>);

impl std::ops::Deref for TestStore {
    type Target = dyn FeatureStore;
    fn deref(&self) -> &Self::Target {
        &*self.0
    }
}

/// A store in `dir` whose transactions are `step` apart from `start`.
fn store_from(dir: &Path, start: &str, step: SignedDuration) -> TestStore {
    let clock = FixedStepClock::new(t(start), step);
    let options = OpenOptions { create: true, clock: Some(Arc::new(clock)) };
    TestStore(shikong_store::open_with(&StoreConfig::in_dir(dir), &options).unwrap())
}

/// A store whose transactions are one day apart from 2025-01-01 (Beijing time).
pub(crate) fn store(dir: &Path) -> TestStore {
    store_from(dir, "2025-01-01T00:00:00+08:00", SignedDuration::from_hours(24))
}

pub(crate) fn point(x: f64, y: f64) -> Option<Geometry> {
    Some(Geometry::Point(Coord::xy(x, y)))
}

/// tx 1: layer `manhole`; tx 2: a 10×10 grid of points 0.01° apart from (114.30, 30.50), codes
/// `JG-r-c`, depth r+c.
pub(crate) fn fixture(dir: &Path) -> TestStore {
    let s = store(dir);
    let mut tx = s.begin(TxMeta::by("admin")).unwrap();
    let schema =
        LayerSchema { fields: vec![FieldDef::new("名称", FieldType::Text), FieldDef::new("depth", FieldType::Real)] };
    let mut def = LayerDef::new("manhole", GeometryKind::Point, schema);
    def.title = Some("井盖".into());
    tx.create_layer(def).unwrap();
    tx.commit().unwrap();
    let mut tx = s.begin(TxMeta::by("alice")).unwrap();
    for r in 0..10 {
        for c in 0..10 {
            let mut props = shikong_model::Properties::new();
            props.insert("名称".into(), Value::Text(format!("{r}排{c}号井")));
            props.insert("depth".into(), Value::Real(f64::from(r + c)));
            tx.insert(
                "manhole",
                NewFeature {
                    code: Some(format!("JG-{r}-{c}")),
                    geometry: point(114.30 + f64::from(c) * 0.01, 30.50 + f64::from(r) * 0.01),
                    properties: props,
                    ..NewFeature::default()
                },
            )
            .unwrap();
        }
    }
    tx.commit().unwrap();
    s
}

fn service(dir: &Path) -> TileService {
    TileService::new(TileConfig { freshness: Duration::ZERO, ..TileConfig::new(dir.join("tiles")) })
}

const WM: TileMatrixSet = TileMatrixSet::WebMercatorQuad;

/// The z/x/y of the Web Mercator tile holding lon/lat.
fn tile_at(z: u8, lon: f64, lat: f64) -> TileId {
    let r = WM.tiles_for(&Bbox { min_x: lon, min_y: lat, max_x: lon, max_y: lat }, z, 0.0).unwrap();
    TileId { z, x: r.min_x, y: r.min_y }
}

fn get(svc: &TileService, s: &dyn FeatureStore, tile: TileId, as_of: Option<Timestamp>) -> VectorTile {
    let layers = [s.layer("manhole").unwrap()];
    svc.vector_tile(s, &VectorRequest { layers: &layers, tms: WM, tile, as_of, fields: None }).unwrap()
}

/// Codes of the features in a served tile, sorted.
fn codes(v: &VectorTile) -> Vec<String> {
    let raw = gunzip(&v.gzip).unwrap();
    let mut out: Vec<String> = decode_tile(&raw)
        .unwrap()
        .iter()
        .flat_map(|l| l.features.iter())
        .map(|f| match f.property("code") {
            Some(Value::Text(c)) => c.clone(),
            other => panic!("no code: {other:?}"),
        })
        .collect();
    out.sort();
    out
}

#[test]
fn tiles_hold_the_features_and_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    let whole = tile_at(10, 114.35, 30.55);
    let first = get(&svc, &*s, whole, None);
    assert_eq!(first.cache, CacheStatus::Miss);
    assert_eq!(codes(&first).len(), 100);
    let again = get(&svc, &*s, whole, None);
    assert_eq!(again.cache, CacheStatus::Hit);
    assert_eq!(again.gzip, first.gzip);
    // Attributes, in order, with Chinese names and values intact.
    let raw = gunzip(&first.gzip).unwrap();
    let layers = decode_tile(&raw).unwrap();
    assert_eq!(layers[0].name, "manhole");
    let f = layers[0].features.iter().find(|f| f.property("code") == Some(&Value::Text("JG-2-3".into()))).unwrap();
    let keys: Vec<&str> = f.properties.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["id", "code", "名称", "depth"]);
    assert_eq!(f.property("名称"), Some(&Value::Text("2排3号井".into())));
    assert_eq!(f.property("depth"), Some(&Value::Real(5.0)));
    assert!(matches!(&f.geometry, DecodedGeometry::Points(p) if p.len() == 1));
    // A tile far away is empty (and an empty tile is no bytes).
    assert!(get(&svc, &*s, tile_at(10, 100.0, 20.0), None).gzip.is_empty());
}

#[test]
fn attribute_selection() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    let layers = [s.layer("manhole").unwrap()];
    let fields = vec!["depth".to_owned(), "code".to_owned()];
    let req = VectorRequest {
        layers: &layers,
        tms: WM,
        tile: tile_at(10, 114.35, 30.55),
        as_of: None,
        fields: Some(&fields),
    };
    let v = svc.vector_tile(&*s, &req).unwrap();
    let raw = gunzip(&v.gzip).unwrap();
    let f = &decode_tile(&raw).unwrap()[0].features[0];
    let keys: Vec<&str> = f.properties.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["code", "depth"]);
    let bad = vec!["深度".to_owned()];
    let err = svc.vector_tile(&*s, &VectorRequest { fields: Some(&bad), ..req }).unwrap_err();
    assert_eq!(err.to_string(), "unknown attribute `深度` (the set's attributes: id, code, 名称, depth)");
}

#[test]
fn as_of_tiles_show_the_past_and_are_keyed_by_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    // tx 3 (2025-01-03): JG-0-0 moves far away.
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    let patch = Patch { geometry: Some(point(100.0, 20.0)), ..Patch::default() };
    tx.update("manhole", &FeatureKey::Code("JG-0-0".into()), patch).unwrap();
    tx.commit().unwrap();
    let tile = tile_at(10, 114.35, 30.55);
    assert_eq!(codes(&get(&svc, &*s, tile, None)).len(), 99);
    let past = get(&svc, &*s, tile, Some(t("2025-01-02T12:00:00+08:00")));
    assert_eq!(codes(&past).len(), 100);
    assert_eq!(past.tx, Some(TxId(2)));
    // Another instant in the same transaction's span shares the cached tile.
    let same = get(&svc, &*s, tile, Some(t("2025-01-02T23:00:00+08:00")));
    assert_eq!((same.cache, same.tx), (CacheStatus::Hit, Some(TxId(2))));
    // Before the layer had features, and before the store existed: empty.
    assert!(get(&svc, &*s, tile, Some(t("2025-01-01T12:00:00+08:00"))).gzip.is_empty());
    assert!(get(&svc, &*s, tile, Some(t("2024-06-01T00:00:00+08:00"))).gzip.is_empty());
}

/// Every tile at zooms 8–16 around the grid, cached, then one edit: only the tiles that held or
/// now hold the moved feature (with the buffer) are regenerated, and their content changed.
#[test]
fn an_edit_invalidates_exactly_the_tiles_it_touches() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    let area = Bbox { min_x: 114.29, min_y: 30.49, max_x: 114.40, max_y: 30.60 };
    let mut tiles = Vec::new();
    for z in 8..=16u8 {
        tiles.extend(WM.tiles_for(&area, z, 0.0).unwrap().iter());
    }
    let before: Vec<VectorTile> = tiles.iter().map(|t| get(&svc, &*s, *t, None)).collect();
    assert!(tiles.iter().all(|t| get(&svc, &*s, *t, None).cache == CacheStatus::Hit));
    svc.catch_up(&*s).unwrap();

    // JG-4-4 (114.34, 30.54) moves to (114.345, 30.545).
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    let patch = Patch { geometry: Some(point(114.345, 30.545)), ..Patch::default() };
    tx.update("manhole", &FeatureKey::Code("JG-4-4".into()), patch).unwrap();
    tx.commit().unwrap();
    let report = svc.catch_up(&*s).unwrap();
    assert_eq!(report.layers.len(), 1);
    assert_eq!((report.layers[0].entities, report.layers[0].whole_layer), (1, false));

    let old = Bbox { min_x: 114.34, min_y: 30.54, max_x: 114.34, max_y: 30.54 };
    let new = Bbox { min_x: 114.345, min_y: 30.545, max_x: 114.345, max_y: 30.545 };
    let touched = TileService::touched_tiles(&[old, new]);
    let is_touched = |t: &TileId| touched.iter().any(|(tms, r)| *tms == WM.code() && r.contains(*t));
    let mut n_touched = 0;
    for (t, b) in tiles.iter().zip(&before) {
        let after = get(&svc, &*s, *t, None);
        if is_touched(t) {
            n_touched += 1;
            assert_eq!(after.cache, CacheStatus::Miss, "{t} should have been regenerated");
            assert_ne!(after.gzip, b.gzip, "{t}: regenerated but unchanged");
        } else {
            assert_eq!(after.cache, CacheStatus::Hit, "{t} should still be cached");
        }
    }
    // One or two tiles per zoom (the two points are ~700 m apart), never the whole area.
    assert!((9..=36).contains(&n_touched), "{n_touched} touched");
    assert!(n_touched < tiles.len() / 4, "{n_touched} of {}", tiles.len());
    // The invalidation report counted what it deleted (both matrix sets; only WebMercator cached).
    assert_eq!(report.layers[0].tiles, n_touched as u64);
}

#[test]
fn deletion_and_attribute_edits_invalidate_too() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    let tile = tile_at(14, 114.35, 30.55);
    let before = codes(&get(&svc, &*s, tile, None));
    assert!(before.contains(&"JG-5-5".to_owned()));
    svc.catch_up(&*s).unwrap();
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    tx.delete("manhole", &FeatureKey::Code("JG-5-5".into())).unwrap();
    tx.commit().unwrap();
    // No explicit catch-up: the tile request notices the write (freshness interval zero here).
    let after = get(&svc, &*s, tile, None);
    assert_eq!(after.cache, CacheStatus::Miss);
    assert!(!codes(&after).contains(&"JG-5-5".to_owned()));
}

#[test]
fn bulk_writes_and_schema_changes_drop_the_layer() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = TileService::new(TileConfig { max_exact_entities: 5, ..TileConfig::new(dir.path().join("tiles")) });
    let tile = tile_at(10, 114.35, 30.55);
    get(&svc, &*s, tile, None);
    svc.catch_up(&*s).unwrap();
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    for c in 0..10 {
        let patch = Patch { set: [("depth".to_owned(), Value::Real(9.0))].into(), ..Patch::default() };
        tx.update("manhole", &FeatureKey::Code(format!("JG-0-{c}")), patch).unwrap();
    }
    tx.commit().unwrap();
    let r = svc.catch_up(&*s).unwrap();
    assert!(r.layers[0].whole_layer);
    assert_eq!(r.layers[0].tiles, 1);
    assert_eq!(svc.cached_tiles(None).unwrap(), 0);
}

#[test]
fn a_cache_of_another_store_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    get(&svc, &*s, tile_at(10, 114.35, 30.55), None);
    assert_eq!(svc.cached_tiles(None).unwrap(), 1);
    drop(svc);
    // The same cache directory in front of a different store.
    let other = tempfile::tempdir().unwrap();
    let s2 = store_from(other.path(), "2026-01-01T00:00:00+08:00", SignedDuration::from_hours(1));
    let mut tx = s2.begin(TxMeta::by("x")).unwrap();
    tx.create_layer(LayerDef::new("manhole", GeometryKind::Point, LayerSchema::default())).unwrap();
    tx.commit().unwrap();
    let svc = service(dir.path());
    svc.catch_up(&*s2).unwrap();
    assert_eq!(svc.cached_tiles(None).unwrap(), 0);
}

const PNG: &[u8] = &[0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3];

/// An MBTiles with one PNG-looking tile per zoom 0..=3 over Wuhan, the tile bytes ending in `mark`.
fn mbtiles(path: &Path, mark: u8) {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
         INSERT INTO metadata VALUES ('format', 'png'), ('bounds', '114.0,30.3,114.6,30.8');",
    )
    .unwrap();
    for z in 0..=3u8 {
        let t = tile_at(z, 114.3, 30.5);
        let row = (1u32 << z) - 1 - t.y;
        let mut data = PNG.to_vec();
        data.push(mark);
        c.execute("INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)", rusqlite::params![z, t.x, row, data]).unwrap();
    }
}

#[test]
fn raster_time_series() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let (a, b) = (dir.path().join("2019.mbtiles"), dir.path().join("2023.mbtiles"));
    mbtiles(&a, 19);
    mbtiles(&b, 23);
    fn imp<'a>(date: &'a str, source: &'a Path) -> raster::RasterImport<'a> {
        raster::RasterImport {
            set: "imagery",
            date,
            title: Some("影像"),
            kind: "imagery",
            crs: Default::default(),
            source,
        }
    }
    svc.import_raster(&imp("2019-05-01", &a)).unwrap();
    let s = svc.import_raster(&imp("2023-08-01", &b)).unwrap();
    assert_eq!((s.minzoom, s.maxzoom, s.tiles, s.format), (0, 3, 4, raster::ImageFormat::Png));
    let set = svc.raster_set("imagery").unwrap();
    assert_eq!(set.slices.len(), 2);
    let tile = tile_at(3, 114.3, 30.5);
    let at = |when: Option<&str>| {
        let slice = set.slice_at(when.map(t))?;
        svc.raster_tile(slice, tile).unwrap().map(|d| d[d.len() - 1])
    };
    assert_eq!(at(None), Some(23));
    assert_eq!(at(Some("2020-01-01")), Some(19));
    assert_eq!(at(Some("2023-08-01")), Some(23));
    assert_eq!(at(Some("2019-01-01")), None);
    assert!(svc.raster_tile(set.slice_at(None).unwrap(), TileId { z: 3, x: 0, y: 0 }).unwrap().is_none());
    // An instant finer than the registry's microseconds is kept at microseconds, not lost.
    let fine = svc
        .import_raster(&raster::RasterImport { set: "fine", ..imp("2024-02-01T08:00:00.123456789+08:00", &b) })
        .unwrap();
    assert_eq!(fine.time.subsec_nanosecond(), 123_456_000);
    // Errors name the file and the fix.
    let vector = dir.path().join("v.mbtiles");
    mbtiles(&vector, 1);
    rusqlite::Connection::open(&vector)
        .unwrap()
        .execute("UPDATE metadata SET value = 'pbf' WHERE name = 'format'", [])
        .unwrap();
    let err = svc.import_raster(&imp("2024-01-01", &vector)).unwrap_err().to_string();
    assert!(err.contains("holds vector tiles"), "{err}");
    let err =
        svc.import_raster(&raster::RasterImport { set: "影像", ..imp("2024-01-01", &a) }).unwrap_err().to_string();
    assert!(err.contains("invalid tile set name `影像`"), "{err}");
    assert_eq!(svc.delete_raster("imagery", Some("2019-05-01")).unwrap(), 1);
    assert_eq!(svc.raster_set("imagery").unwrap().slices.len(), 1);
}

/// A registry written before raster sets had a datum opens with its slices as CGCS2000 (as they
/// were served), and takes GCJ-02 imports after.
#[test]
fn an_old_registry_gains_the_datum_column() {
    let dir = tempfile::tempdir().unwrap();
    let tiles = dir.path().join("tiles");
    std::fs::create_dir_all(tiles.join("raster/old")).unwrap();
    let src = dir.path().join("a.mbtiles");
    mbtiles(&src, 7);
    std::fs::copy(&src, tiles.join("raster/old/1.mbtiles")).unwrap();
    let c = rusqlite::Connection::open(tiles.join("registry.sqlite")).unwrap();
    c.execute_batch(
        "CREATE TABLE raster_slices (set_name TEXT NOT NULL, date TEXT NOT NULL, time_us INTEGER NOT NULL, title TEXT,
           kind TEXT NOT NULL, tms INTEGER NOT NULL, format TEXT NOT NULL, minzoom INTEGER NOT NULL, maxzoom INTEGER NOT NULL,
           min_x REAL NOT NULL, min_y REAL NOT NULL, max_x REAL NOT NULL, max_y REAL NOT NULL, file TEXT NOT NULL,
           source TEXT NOT NULL, tiles INTEGER NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (set_name, time_us));
         INSERT INTO raster_slices VALUES ('old', '2020-01-01', 1, NULL, 'imagery', 0, 'png', 0, 3, 114, 30, 115, 31,
           'old/1.mbtiles', 'a.mbtiles', 4, 400);",
    )
    .unwrap();
    drop(c);
    let svc = service(dir.path());
    let old = svc.raster_set("old").unwrap();
    assert_eq!((old.crs(), old.slices[0].bounds.min_x), (raster::RasterCrs::Cgcs2000, 114.0));
    let imp = raster::RasterImport {
        set: "amap",
        date: "2024-01-01",
        title: None,
        kind: "imagery",
        crs: raster::RasterCrs::Gcj02,
        source: &src,
    };
    let s = svc.import_raster(&imp).unwrap();
    assert_eq!(s.crs, raster::RasterCrs::Gcj02);
    // A later acquisition of the set must share the datum.
    let again = raster::RasterImport { date: "2025-01-01", crs: raster::RasterCrs::Cgcs2000, ..imp };
    let err = svc.import_raster(&again).unwrap_err().to_string();
    assert!(err.contains("set `amap` holds GCJ02 tiles") && err.contains("this import says CGCS2000"), "{err}");
    assert_eq!(svc.raster_set("amap").unwrap().slices.len(), 1);
    assert!(raster::RasterCrs::parse("BD-09").unwrap_err().to_string().contains("Baidu"));
    assert_eq!(raster::RasterCrs::parse("gcj-02").unwrap(), raster::RasterCrs::Gcj02);
    assert_eq!(raster::RasterCrs::parse("EPSG:4490").unwrap(), raster::RasterCrs::Cgcs2000);
}

#[test]
fn geopackage_pyramids_must_be_aligned() {
    let dir = tempfile::tempdir().unwrap();
    let svc = service(dir.path());
    let gpkg = dir.path().join("scan.gpkg");
    let c = rusqlite::Connection::open(&gpkg).unwrap();
    let half = 20_037_508.342_789_244;
    c.execute_batch(&format!(
        "CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT, srs_id INTEGER PRIMARY KEY, organization TEXT, organization_coordsys_id INTEGER, definition TEXT);
         INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84 / Pseudo-Mercator', 3857, 'EPSG', 3857, '');
         CREATE TABLE gpkg_contents (table_name TEXT, data_type TEXT, min_x REAL, min_y REAL, max_x REAL, max_y REAL);
         INSERT INTO gpkg_contents VALUES ('scan', 'tiles', 12700000, 3550000, 12740000, 3580000);
         CREATE TABLE gpkg_tile_matrix_set (table_name TEXT, srs_id INTEGER, min_x REAL, min_y REAL, max_x REAL, max_y REAL);
         INSERT INTO gpkg_tile_matrix_set VALUES ('scan', 3857, -{half}, -{half}, {half}, {half});
         CREATE TABLE gpkg_tile_matrix (table_name TEXT, zoom_level INTEGER, matrix_width INTEGER, matrix_height INTEGER, tile_width INTEGER, tile_height INTEGER);
         INSERT INTO gpkg_tile_matrix VALUES ('scan', 2, 4, 4, 256, 256);
         CREATE TABLE scan (id INTEGER PRIMARY KEY, zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);"
    ))
    .unwrap();
    c.execute("INSERT INTO scan VALUES (1, 2, 3, 1, ?1)", [PNG]).unwrap();
    let imp = raster::RasterImport {
        set: "scan1950",
        date: "1950-01-01",
        title: None,
        kind: "historical",
        crs: raster::RasterCrs::Cgcs2000,
        source: &gpkg,
    };
    let s = svc.import_raster(&imp).unwrap();
    assert_eq!((s.tms, s.minzoom, s.maxzoom, s.tiles), (TileMatrixSet::WebMercatorQuad, 2, 2, 1));
    assert!(svc.raster_tile(&s, TileId { z: 2, x: 3, y: 1 }).unwrap().is_some());
    assert!((s.bounds.min_x - 114.08).abs() < 0.01, "{:?}", s.bounds);
    // A CUSTOM tiling (GDAL's default) is refused with the option to use.
    c.execute("UPDATE gpkg_tile_matrix_set SET min_x = 12700000", []).unwrap();
    let err = svc.import_raster(&imp).unwrap_err().to_string();
    assert!(err.contains("TILING_SCHEME=GoogleMapsCompatible"), "{err}");
}

#[test]
fn packages_estimates_and_updates() {
    let dir = tempfile::tempdir().unwrap();
    let s = fixture(dir.path());
    let svc = service(dir.path());
    let layers = [s.layer("manhole").unwrap()];
    // About 3 km × 3 km around the middle of the grid.
    let area = Geometry::from_bbox(&Bbox { min_x: 114.33, min_y: 30.53, max_x: 114.36, max_y: 30.56 });
    let spec = package::PackageSpec {
        area: &area,
        minzoom: 12,
        maxzoom: 16,
        content: package::PackageContent::Vector { layers: &layers },
        since_tx: None,
        since_date: None,
        max_tiles: 100_000,
    };
    let est = svc.estimate_package(&*s, &spec).unwrap();
    let out = dir.path().join("pkg.mbtiles");
    let info = svc.write_package(&*s, &spec, &out).unwrap();
    assert_eq!(info.tx, Some(TxId(2)));
    assert!(info.tiles > 0 && info.tiles <= est.tiles, "{info:?} {est:?}");
    assert!(est.sampled > 0 && est.bytes > 0);
    let c = rusqlite::Connection::open(&out).unwrap();
    let meta =
        |k: &str| -> String { c.query_row("SELECT value FROM metadata WHERE name = ?1", [k], |r| r.get(0)).unwrap() };
    assert_eq!(meta("format"), "pbf");
    assert_eq!(meta("shikong:tx"), "2");
    assert!(meta("json").contains("\"vector_layers\""));
    // Points at 0.01° spacing: 16 of them inside the area, each in one tile per zoom.
    let z16: i64 = c.query_row("SELECT count(*) FROM tiles WHERE zoom_level = 16", [], |r| r.get(0)).unwrap();
    assert!((16..=32).contains(&z16), "{z16}");

    // An edit, then the update since tx 2: only the tiles the edit touched.
    let mut tx = s.begin(TxMeta::by("bob")).unwrap();
    let patch = Patch { geometry: Some(point(114.345, 30.545)), ..Patch::default() };
    tx.update("manhole", &FeatureKey::Code("JG-4-4".into()), patch).unwrap();
    tx.commit().unwrap();
    let upd = package::PackageSpec { since_tx: Some(TxId(2)), ..spec };
    let delta = svc.write_package(&*s, &upd, &dir.path().join("delta.mbtiles")).unwrap();
    assert_eq!(delta.tx, Some(TxId(3)));
    // One to four tiles per zoom (old and new position), never the whole package.
    assert!((5..=20).contains(&delta.tiles), "{delta:?}");
    assert!(delta.tiles < info.tiles);
    // Too large an area is refused before any work.
    let china = Geometry::from_bbox(&Bbox { min_x: 73.0, min_y: 18.0, max_x: 135.0, max_y: 53.0 });
    let err = svc.estimate_package(&*s, &package::PackageSpec { area: &china, maxzoom: 18, ..spec }).unwrap_err();
    assert!(err.to_string().contains("more than 100000 tiles"), "{err}");
}
