//! Raster sets marked GCJ-02 at import (`crs=gcj02`: tiles cut from Amap/Tencent basemaps) are
//! served cut into place on the CGCS2000 map — through XYZ, OGC API – Tiles and WMTS alike —
//! while unmarked sets are served byte for byte as imported; the datum shows in the import's
//! answer, TileJSON and `/tiles`; a bad `crs` is a problem+json naming the parameter and
//! changes nothing.

use axum::http::StatusCode;

use crate::support::grid::*;
use crate::support::*;

/// 江汉关, Wuhan (CGCS2000), and the zoom the marker is checked at (≈ 2 m a pixel).
const POINT: (f64, f64) = (114.2895, 30.5838);
const Z: u8 = 16;

/// Global Web Mercator pixel of lon/lat at zoom `z`.
fn global_px(lon: f64, lat: f64, z: u8) -> (f64, f64) {
    let (ux, uy) = shikong_tiles::TileMatrixSet::WebMercatorQuad.unit(lon, lat);
    let size = f64::from(256u32 << z);
    (ux * size, uy * size)
}

/// A GCJ-02 basemap around [`POINT`]: the 3 × 3 tiles at [`Z`] around where GCJ-02 draws it,
/// blue, with a 4 × 4 red block whose top-left pixel is at the point's GCJ-02 position. Returns
/// that pixel.
fn amap_mbtiles(path: &std::path::Path) -> (f64, f64) {
    let (glon, glat) = shikong_geodesy::wgs84_to_gcj02(POINT.0, POINT.1);
    let (gx, gy) = global_px(glon, glat, Z);
    let (cx, cy) = xyz(glon, glat, Z);
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
         INSERT INTO metadata VALUES ('name', '高德示例'), ('format', 'png');",
    )
    .unwrap();
    for x in cx - 1..=cx + 1 {
        for y in cy - 1..=cy + 1 {
            let mut img = image::RgbaImage::from_pixel(256, 256, image::Rgba([0, 0, 255, 255]));
            for i in 0..4 {
                for j in 0..4 {
                    let (px, py) =
                        (gx.floor() as i64 + i - i64::from(x) * 256, gy.floor() as i64 + j - i64::from(y) * 256);
                    if (0..256).contains(&px) && (0..256).contains(&py) {
                        img.put_pixel(px as u32, py as u32, image::Rgba([255, 0, 0, 255]));
                    }
                }
            }
            let mut png = std::io::Cursor::new(Vec::new());
            img.write_to(&mut png, image::ImageFormat::Png).unwrap();
            let row = (1u32 << Z) - 1 - y;
            c.execute("INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)", rusqlite::params![Z, x, row, png.into_inner()])
                .unwrap();
        }
    }
    (gx.floor(), gy.floor())
}

/// Where the red block's top-left pixel is in the served tiles of `set` around `(x, y)`
/// (global pixels), looking at the tile and its eight neighbours (the block may straddle them).
fn find_marker(env: &Env, set: &str, (x, y): (u32, u32)) -> Option<(f64, f64)> {
    let mut red = Vec::new();
    for tx in x - 1..=x + 1 {
        for ty in y - 1..=y + 1 {
            let r = env.get(&format!("/tiles/{set}/{Z}/{tx}/{ty}.png")).send();
            if r.status == StatusCode::NO_CONTENT {
                continue;
            }
            assert_eq!(r.status, StatusCode::OK, "{set} {tx}/{ty}: {}", r.text());
            let img = image::load_from_memory(&r.bytes()).unwrap().to_rgba8();
            red.extend(
                img.enumerate_pixels()
                    .filter(|(_, _, p)| p.0 == [255, 0, 0, 255])
                    .map(|(i, j, _)| (tx * 256 + i, ty * 256 + j)),
            );
        }
    }
    let min_x = red.iter().map(|p| p.0).min()?;
    let min_y = red.iter().map(|p| p.1).min()?;
    Some((f64::from(min_x), f64::from(min_y)))
}

#[test]
fn a_gcj02_raster_set_is_served_in_place() {
    let env = public().env();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("amap.mbtiles");
    let (gx, gy) = amap_mbtiles(&file);
    let s = upload_raster(&env, "amap", "date=2024-06-01&crs=gcj02&kind=basemap", &file);
    assert_eq!(s["sourceCrs"], "GCJ02", "{s}");
    let plain = upload_raster(&env, "plain", "date=2024-06-01", &file);
    assert_eq!(plain["sourceCrs"], "CGCS2000", "{plain}");

    // The point's CGCS2000 pixel, and the GCJ-02 one the file draws it at: hundreds of pixels
    // apart at z16 (≈ 500 m in Wuhan).
    let (px, py) = global_px(POINT.0, POINT.1, Z);
    assert!((gx - px).hypot(gy - py) > 150.0, "the offset is large: {gx},{gy} vs {px},{py}");
    let here = xyz(POINT.0, POINT.1, Z);
    let (fx, fy) = find_marker(&env, "amap", here).expect("the marker is served near the point");
    assert!(
        (fx - px.floor()).abs() <= 2.0 && (fy - py.floor()).abs() <= 2.0,
        "marker served at {fx},{fy}; the point is at {px},{py} (GCJ-02 at {gx},{gy})"
    );

    // The same tile through OGC API – Tiles and WMTS (the cached cut tile), and again by XYZ.
    let (x, y) = here;
    let xyz_tile = env.get(&format!("/tiles/amap/{Z}/{x}/{y}.png")).send().bytes();
    let ogc = env.get(&format!("/collections/amap/map/tiles/WebMercatorQuad/{Z}/{y}/{x}")).send();
    assert_eq!(ogc.status, StatusCode::OK);
    assert_eq!(ogc.bytes(), xyz_tile);
    let wmts = env
        .get(&format!(
            "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=amap&STYLE=default&FORMAT=image/png&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX={Z}&TILEROW={y}&TILECOL={x}"
        ))
        .send();
    assert_eq!(wmts.status, StatusCode::OK, "{}", wmts.text());
    assert_eq!(wmts.bytes(), xyz_tile);
    assert_eq!(env.get(&format!("/tiles/amap/{Z}/{x}/{y}.png")).send().bytes(), xyz_tile);

    // An offline package of the set holds the tiles cut into place, as served.
    let (lon, lat) = POINT;
    let area = serde_json::json!({"type": "Polygon", "coordinates": [[[lon - 0.001, lat - 0.001], [lon + 0.001, lat - 0.001],
        [lon + 0.001, lat + 0.001], [lon - 0.001, lat + 0.001], [lon - 0.001, lat - 0.001]]]});
    let body = serde_json::json!({"set": "amap", "area": area, "minzoom": Z, "maxzoom": Z});
    let r = env.post("/tiles/packages").token(&env.token("wang")).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let package = files.path().join("package.mbtiles");
    std::fs::write(&package, r.bytes()).unwrap();
    let packed: Vec<u8> = rusqlite::Connection::open(&package)
        .unwrap()
        .query_row(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            rusqlite::params![Z, x, (1u32 << Z) - 1 - y],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(packed, xyz_tile, "the package's tile is the served one");

    // The unmarked set is served as imported: the marker stays at the GCJ-02 position, and the
    // tile holding it is the file's own bytes.
    let (ux, uy) = find_marker(&env, "plain", ((gx / 256.0) as u32, (gy / 256.0) as u32)).expect("marker");
    assert_eq!((ux, uy), (gx, gy));
    let (cx, cy) = ((gx / 256.0) as u32, (gy / 256.0) as u32);
    let stored: Vec<u8> = rusqlite::Connection::open(&file)
        .unwrap()
        .query_row(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            rusqlite::params![Z, cx, (1u32 << Z) - 1 - cy],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(env.get(&format!("/tiles/plain/{Z}/{cx}/{cy}.png")).send().bytes(), stored);

    // The datum in TileJSON and the list of sets; the bounds are those of the tiles as served.
    let tj = env.get("/tiles/amap.json").send().json();
    assert_eq!(tj["shikong:sourceCrs"], "GCJ02", "{tj}");
    assert!(tj["description"].as_str().unwrap().contains("GCJ-02"), "{tj}");
    assert_eq!(env.get("/tiles/plain.json").send().json()["shikong:sourceCrs"], "CGCS2000");
    let (tb, pb) = (&tj["bounds"], &env.get("/tiles/plain.json").send().json()["bounds"]);
    assert!(tb[0].as_f64().unwrap() < pb[0].as_f64().unwrap(), "moved west into place: {tb} vs {pb}");
    let list = env.get("/tiles").send().json();
    let crs_of =
        |id: &str| list["tilesets"].as_array().unwrap().iter().find(|s| s["id"] == id).map(|s| s["sourceCrs"].clone());
    assert_eq!((crs_of("amap").unwrap(), crs_of("plain").unwrap()), ("GCJ02".into(), "CGCS2000".into()));
}

#[test]
fn a_bad_crs_is_refused_and_changes_nothing() {
    let env = public().env();
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("amap.mbtiles");
    amap_mbtiles(&file);
    let body = std::fs::read(&file).unwrap();
    let admin = env.token("admin");
    for (crs, says) in [("utm50", "unknown crs `utm50`"), ("bd09", "Baidu"), ("", "unknown crs ``")] {
        let r =
            env.post(&format!("/tiles/rasters/amap?date=2024-06-01&crs={crs}")).token(&admin).body(body.clone()).send();
        let p = problem(&r, StatusCode::BAD_REQUEST);
        assert_eq!(p["parameter"], "crs", "{p}");
        assert!(p["detail"].as_str().unwrap().contains(says), "{p}");
    }
    let list = env.get("/tiles").send().json();
    assert!(list["tilesets"].as_array().unwrap().iter().all(|s| s["id"] != "amap"), "{list}");
    assert_eq!(env.get(&format!("/tiles/amap/{Z}/0/0.png")).send().status, StatusCode::NOT_FOUND);
    let raster_dir = env.dir.path().join("tiles/raster/amap");
    assert!(!raster_dir.exists(), "nothing written: {}", raster_dir.display());

    // A later acquisition must share the set's datum: refused, the set unchanged.
    upload_raster(&env, "amap", "date=2024-06-01", &file);
    let r = env.post("/tiles/rasters/amap?date=2025-06-01&crs=gcj02").token(&admin).body(body).send();
    let p = problem(&r, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(p["detail"].as_str().unwrap().contains("shares its datum"), "{p}");
    assert_eq!(env.get("/tiles/amap.json").send().json()["shikong:dates"], serde_json::json!(["2024-06-01"]));
}
