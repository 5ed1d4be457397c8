//! Map services in process: vector tiles (XYZ, OGC API – Tiles) following layer permissions and
//! invalidated exactly where an edit touches, TileJSON, tile matrix sets, styles, raster time series
//! through XYZ, OGC API – Tiles and WMTS (MBTiles made here with real PNG tiles), offline package
//! estimates; snapshots of TileJSON, the matrix sets, a tileset, WMTS capabilities and a style.
//!
//! What needs GDAL (decoding served tiles, rasters made by `gdaldem`, the WMTS driver, packages
//! opened by `ogrinfo`) stays in the end-to-end tests (`tests/tiles_services.rs`).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::grid::*;
use crate::support::*;

/// GET with the office user `wang`'s token.
fn get(env: &Env, path: &str) -> Resp {
    env.get(path).token(&env.token("wang")).send()
}

#[track_caller]
fn get_json(env: &Env, path: &str) -> Json {
    let r = get(env, path);
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

#[test]
fn tiles_follow_layer_permissions() {
    let env = protected().env();
    let (x, y) = xyz(LON0, LAT0, 14);
    let path = format!("/tiles/manhole/14/{x}/{y}.mvt");
    let anon = env.get(&path).send();
    assert_eq!(anon.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anon.header("content-type"), "application/problem+json");
    assert_eq!(get(&env, &path).status, StatusCode::OK);
    edit_layer(env.store(), "manhole", |d| d.public = true);
    // The layer definition changed (a new transaction): anonymous callers now see the tiles.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if env.get(&path).send().status == StatusCode::OK {
            break;
        }
        assert!(Instant::now() < deadline, "public layer tiles stayed closed to anonymous callers");
        std::thread::sleep(Duration::from_millis(50));
    }
    let missing = get(&env, "/tiles/nosuch/1/0/0.mvt");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let bad = get(&env, "/tiles/manhole/3/9/0.mvt");
    assert_eq!(bad.status, StatusCode::NOT_FOUND);
    assert!(bad.text().contains("outside WebMercatorQuad"));
    let bad = get(&env, &format!("/tiles/manhole/14/{x}/{y}.mvt?colour=red"));
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let bad = get(&env, &format!("/tiles/manhole/14/{x}/{y}.mvt?properties=深度"));
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("unknown attribute `深度`"));
}

/// After an edit through the OGC API, exactly the tiles that held or now hold the feature (with
/// the buffer) are regenerated and changed; all others are served from the cache.
#[test]
fn an_edit_changes_exactly_the_affected_tiles() {
    let env = protected().env();
    let mut tiles = Vec::new();
    let [x0, y0, x1, y1] = DISTRICT;
    for z in 12..=16u8 {
        let (a, b) = xyz(x0, y1, z);
        let (c, d) = xyz(x1, y0, z);
        for x in a..=c {
            for y in b..=d {
                tiles.push((z, x, y));
            }
        }
    }
    let fetch = |t: &(u8, u32, u32)| {
        let r = get(&env, &format!("/tiles/manhole/{}/{}/{}.mvt", t.0, t.1, t.2));
        assert!(r.status.is_success());
        (r.header("x-cache").to_owned(), r.bytes())
    };
    let before: Vec<(String, Vec<u8>)> = tiles.iter().map(fetch).collect();
    assert!(before.iter().all(|b| b.0 == "miss"));
    assert!(tiles.iter().map(fetch).all(|b| b.0 == "hit"));

    // Move JG-10-10 by ~300 m.
    let (ox, oy) = grid_point(10, 10);
    let (nx, ny) = (ox + 0.003, oy + 0.0025);
    let r = env
        .patch("/collections/manhole/items/JG-10-10")
        .token(&env.token("wang"))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"geometry": {"type": "Point", "coordinates": [nx, ny]}}).to_string())
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());

    let buffer = 64.0 / 4096.0;
    let touched = |t: &(u8, u32, u32)| {
        let tms = shikong_tiles::TileMatrixSet::WebMercatorQuad;
        [(ox, oy), (nx, ny)].iter().any(|(x, y)| {
            let b = shikong_model::Bbox { min_x: *x, min_y: *y, max_x: *x, max_y: *y };
            tms.tiles_for(&b, t.0, buffer).is_some_and(|r| r.contains(shikong_tiles::TileId { z: t.0, x: t.1, y: t.2 }))
        })
    };
    // The server notices the commit (at once when the write path tells the tile service, else
    // within its freshness interval): wait until a touched tile is regenerated.
    let first = tiles.iter().position(touched).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut first_after = fetch(&tiles[first]);
    while first_after.0 == "hit" {
        assert!(Instant::now() < deadline, "the edit never invalidated {:?}", tiles[first]);
        std::thread::sleep(Duration::from_millis(50));
        first_after = fetch(&tiles[first]);
    }
    let mut n_touched = 0;
    for (i, (t, b)) in tiles.iter().zip(&before).enumerate() {
        let after = if i == first { first_after.clone() } else { fetch(t) };
        if touched(t) {
            n_touched += 1;
            assert_eq!(after.0, "miss", "{t:?} should have been regenerated");
            assert_ne!(after.1, b.1, "{t:?} regenerated with the same content");
        } else {
            assert_eq!(after.0, "hit", "{t:?} should still come from the cache");
            assert_eq!(after.1, b.1);
        }
    }
    println!("{} tiles at z12–16, {n_touched} touched by the edit", tiles.len());
    assert!(n_touched >= 5 && n_touched < tiles.len() / 3, "{n_touched} of {}", tiles.len());
}

#[test]
fn tilejson_ogc_tiles_and_matrix_sets() {
    let env = public().env();
    let tj = get_json(&env, "/tiles/manhole.json");
    assert_eq!(tj["tilejson"], "3.0.0");
    assert!(tj["tiles"][0].as_str().unwrap().ends_with("/tiles/manhole/{z}/{x}/{y}.mvt"));
    assert_eq!(tj["vector_layers"][0]["id"], "manhole");
    assert_eq!(tj["vector_layers"][0]["fields"]["depth"], "Number");
    let tj = get_json(&env, "/tiles/manhole.json?as-of=2030-01-01");
    assert!(tj["tiles"][0].as_str().unwrap().ends_with(".mvt?as-of=2030-01-01"));
    let list = get_json(&env, "/tiles");
    let ids: Vec<&str> = list["tilesets"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["district", "manhole"]);

    let sets = get_json(&env, "/tileMatrixSets");
    assert_eq!(sets["tileMatrixSets"].as_array().unwrap().len(), 2);
    let cg = get_json(&env, "/tileMatrixSets/CGCS2000Quad");
    assert_eq!(cg["crs"], "http://www.opengis.net/def/crs/EPSG/0/4490");
    assert_eq!(cg["tileMatrices"][0]["matrixWidth"], 2);
    assert_eq!(cg["tileMatrices"][0]["pointOfOrigin"], json!([90.0, -180.0]));
    let wm = get_json(&env, "/tileMatrixSets/WebMercatorQuad");
    assert!((wm["tileMatrices"][0]["scaleDenominator"].as_f64().unwrap() - 559_082_264.028_717_8).abs() < 1e-3);

    let ts = get_json(&env, "/collections/manhole/tiles");
    assert_eq!(ts["tilesets"].as_array().unwrap().len(), 2);
    let one = get_json(&env, "/collections/manhole/tiles/CGCS2000Quad");
    assert_eq!(one["dataType"], "vector");
    // A CGCS2000Quad tile (lon/lat grid): z14 tile of 180/2^14° holding JG-05-05.
    let (lon, lat) = grid_point(5, 5);
    let span = 180.0 / f64::from(1u32 << 14);
    let (col, row) = (((lon + 180.0) / span) as u32, ((90.0 - lat) / span) as u32);
    let r = get(&env, &format!("/collections/manhole/tiles/CGCS2000Quad/14/{row}/{col}"));
    assert_eq!(r.status, StatusCode::OK);
    let layers = shikong_tiles::decode_tile(&r.bytes()).unwrap();
    let f = layers[0]
        .features
        .iter()
        .find(|f| f.property("code") == Some(&shikong_model::Value::Text("JG-05-05".into())))
        .expect("JG-05-05 in its CGCS2000 tile");
    let shikong_tiles::DecodedGeometry::Points(p) = &f.geometry else { panic!("not a point") };
    let expect_x = ((lon + 180.0) / span - f64::from(col)) * 4096.0;
    let expect_y = ((90.0 - lat) / span - f64::from(row)) * 4096.0;
    assert!((f64::from(p[0].0) - expect_x).abs() <= 0.5 && (f64::from(p[0].1) - expect_y).abs() <= 0.5);
    // The same tile through the XYZ path is Web Mercator only; an unknown matrix set is a 404.
    assert_eq!(get(&env, "/collections/manhole/tiles/WorldCRS84Quad/1/0/0").status, StatusCode::NOT_FOUND);
}

#[test]
fn styles_are_served_and_edited_by_office_staff() {
    let env = public().env();
    let list = get_json(&env, "/styles");
    let ids: Vec<&str> = list["styles"].as_array().unwrap().iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"default") && ids.contains(&"manhole"), "{ids:?}");
    let r = get(&env, "/styles/default?as-of=2025-01-01");
    assert_eq!(r.header("content-type"), "application/vnd.mapbox.style+json");
    let doc = r.json();
    let url = doc["sources"]["manhole"]["url"].as_str().unwrap();
    assert!(url.starts_with("http://127.0.0.1:") && url.ends_with("/tiles/manhole.json?as-of=2025-01-01"), "{url}");
    assert!(doc["layers"].as_array().unwrap().iter().any(|l| l["id"] == "manhole-point"));

    // Office staff save a style (201, then 200), with optimistic concurrency; inspectors may not.
    let mut mine = get_json(&env, "/styles/manhole");
    mine["name"] = json!("井盖专题图");
    mine["sources"]["manhole"]["url"] = json!("/tiles/manhole.json");
    let put = |token: &str, doc: &Json, if_match: Option<&str>| {
        let mut r = env.put("/styles/manhole-theme").token(token).json(doc);
        if let Some(v) = if_match {
            r = r.header("if-match", v);
        }
        r.send()
    };
    let wang = env.token("wang");
    assert_eq!(put(&wang, &mine, None).status, StatusCode::CREATED);
    assert_eq!(put(&wang, &mine, Some("\"1\"")).status, StatusCode::OK);
    assert_eq!(put(&wang, &mine, Some("\"1\"")).status, StatusCode::PRECONDITION_FAILED);
    let li = env.login("li");
    assert_eq!(put(&li, &mine, None).status, StatusCode::FORBIDDEN);
    let mut broken = mine.clone();
    broken["layers"][1]["source"] = json!("nowhere");
    let r = put(&wang, &broken, None);
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().contains("is not in `sources`"));
    let saved = get(&env, "/styles/manhole-theme");
    assert_eq!(saved.header("etag"), "\"2\"");
    let saved = saved.json();
    assert_eq!(saved["name"], "井盖专题图");
    assert!(saved["sources"]["manhole"]["url"].as_str().unwrap().starts_with("http://"));
}

#[test]
fn offline_package_estimate_and_refusals() {
    let env = protected().env();
    let wang = env.token("wang");
    let body =
        json!({"set": "manhole", "area": {"layer": "district", "feature": "洪山-1"}, "minzoom": 12, "maxzoom": 14});
    let r = env.post("/tiles/packages/estimate").token(&wang).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let est = r.json();
    assert!(est["tiles"].as_u64().unwrap() > 0, "{est}");
    let r = env.post("/tiles/packages").token(&wang).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let written: u64 = r.header("x-tiles").parse().unwrap();
    assert!(written > 0, "{written} tiles, estimate {est}");
    assert!(r.body.starts_with(b"SQLite format 3\0"), "an MBTiles file");
    // An area must be a polygon (or a feature of a polygon layer); anonymous callers may not.
    let bad = json!({"set": "manhole", "area": {"type": "Point", "coordinates": [114.3, 30.5]}});
    assert_eq!(env.post("/tiles/packages").token(&wang).json(&bad).send().status, StatusCode::BAD_REQUEST);
    assert_eq!(env.post("/tiles/packages/estimate").json(&body).send().status, StatusCode::UNAUTHORIZED);
}

#[test]
fn the_web_map_page_and_its_assets() {
    let env = public().env();
    let r = env.get("/map").send();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/html"), "{:?}", r.headers);
    assert!(r.text().contains("map.js"), "{}", r.text());
    let js = env.get("/map/assets/map.js").send();
    assert_eq!(js.status, StatusCode::OK);
    assert!(!js.body.is_empty());
    assert_eq!(env.get("/map/assets/nope.js").send().status, StatusCode::NOT_FOUND);
    // The sign-in form is on the page; the token never goes in its URL.
    assert!(r.text().contains(r#"id="signin""#) && r.text().contains(r#"type="password""#), "{}", r.text());
    // A start view in the URL: a bbox in lon/lat, or a group of layers; nonsense is refused.
    for ok in ["/map?bbox=114.3,30.5,114.4,30.6", "/map?layers=manhole,district", "/map?center=114.35,30.5&zoom=14"] {
        assert_eq!(env.get(ok).send().status, StatusCode::OK, "{ok}");
    }
    for bad in ["/map?bbox=114.3,30.5", "/map?bbox=200,0,210,10", "/map?style=default&layers=manhole", "/map?token=x"] {
        let r = env.get(bad).send();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.text());
    }
}

/// The demo data: China's divisions (points all over the country) next to a district's assets.
/// The start view of a generated style is the assets, not the centre of the union extent (which
/// was in Sichuan, where the map showed nothing).
#[test]
fn generated_styles_open_on_the_assets_not_on_country_wide_reference_layers() {
    let env = demo().env();
    let layers = env.store().layers().unwrap();
    let manhole = layers.iter().find(|l| l.name() == "manhole").unwrap().extent.unwrap();
    let union = layers.iter().filter_map(|l| l.extent).reduce(|a, b| a.union(&b)).unwrap();
    let (ux, uy) = ((union.min_x + union.max_x) / 2.0, (union.min_y + union.max_y) / 2.0);
    assert!(!manhole.contains_point(ux, uy), "the old start view ({ux}, {uy}) is far from the assets");
    // The reference layers: the divisions and the gazetteer (whole country), Wuhan's districts.
    let mut country: Vec<&str> =
        layers.iter().filter(|l| l.extent.is_some_and(|b| b.width() > 1.0)).map(|l| l.name()).collect();
    country.sort_unstable();
    assert!(country.contains(&"division") && country.contains(&"district"), "{country:?}");
    let wang = env.token("wang");
    for token in [None, Some(wang.as_str())] {
        let r = env.get("/styles/default").maybe_token(token).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let doc = r.json();
        let (x, y) = (doc["center"][0].as_f64().unwrap(), doc["center"][1].as_f64().unwrap());
        assert!(manhole.contains_point(x, y), "{token:?}: centre ({x}, {y}) outside the manholes {manhole:?}");
        let zoom = doc["zoom"].as_f64().unwrap();
        assert!((11.0..=14.0).contains(&zoom), "{token:?}: zoom {zoom}");
        assert_eq!(doc["metadata"]["shikong:reference"], json!(country), "{token:?}");
        let b: Vec<f64> =
            doc["metadata"]["shikong:bounds"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        assert!(b[0] <= manhole.min_x && b[1] <= manhole.min_y && b[2] >= manhole.max_x && b[3] >= manhole.max_y);
        assert!(b[2] - b[0] < 0.5 && b[3] - b[1] < 0.5, "{token:?}: bounds {b:?} span more than the district");
    }
    // The divisions alone are the view: the whole country, at a country's zoom.
    let doc = env.get("/styles/division").send().json();
    assert!(doc["zoom"].as_f64().unwrap() < 5.0, "{}", doc["zoom"]);
    assert_eq!(doc["metadata"]["shikong:reference"], json!([]));
    // A group (what /map?layers= loads) opens on its own layers.
    let doc = env.get("/styles/manhole,poi").send().json();
    assert_eq!(doc["metadata"]["shikong:reference"], json!([]));
    let (x, y) = (doc["center"][0].as_f64().unwrap(), doc["center"][1].as_f64().unwrap());
    assert!(manhole.contains_point(x, y), "({x}, {y})");
}

// ---------------------------------------------------------------------------------------------
// Raster sets, made here: MBTiles with one real PNG per zoom over Wuhan

const RASTER_ZOOMS: std::ops::RangeInclusive<u8> = 8..=10;
const WUHAN: (f64, f64) = (114.348, 30.518);

/// A 256 × 256 PNG of one colour.
fn png(rgb: [u8; 3]) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(256, 256, image::Rgb(rgb));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// An MBTiles file with the tile holding Wuhan at each of [`RASTER_ZOOMS`], all of colour `rgb`.
fn mbtiles(path: &std::path::Path, rgb: [u8; 3]) -> Vec<u8> {
    let c = rusqlite::Connection::open(path).unwrap();
    c.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
         INSERT INTO metadata VALUES ('format', 'png'), ('bounds', '114.0,30.3,114.6,30.8');",
    )
    .unwrap();
    let data = png(rgb);
    for z in RASTER_ZOOMS {
        let (x, y) = xyz(WUHAN.0, WUHAN.1, z);
        // MBTiles rows count from the bottom.
        let row = (1u32 << z) - 1 - y;
        c.execute("INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)", rusqlite::params![z, x, row, data]).unwrap();
    }
    data
}

/// Uploads a raster file as the administrator; the import's answer.
#[track_caller]
fn upload(env: &Env, set: &str, query: &str, file: &std::path::Path) -> Json {
    let r = env
        .post(&format!("/tiles/rasters/{set}?{query}"))
        .token(&env.token("admin"))
        .body(std::fs::read(file).unwrap())
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

/// A state with the hillshade set `hillshade` of two acquisitions (2019: grey, 2023: white); the
/// tiles' bytes.
fn with_hillshade() -> (Env, Vec<u8>, Vec<u8>) {
    let env = public().env();
    let files = tempfile::tempdir().unwrap();
    let (a, b) = (files.path().join("hs2019.mbtiles"), files.path().join("hs2023.mbtiles"));
    let old = mbtiles(&a, [128, 128, 128]);
    let newest = mbtiles(&b, [255, 255, 255]);
    let title = "title=%E5%9C%B0%E5%BD%A2%E6%99%95%E6%B8%B2&kind=hillshade";
    let s = upload(&env, "hillshade", &format!("date=2019-05-01&{title}"), &a);
    assert_eq!((s["tileMatrixSet"].as_str(), s["format"].as_str()), (Some("WebMercatorQuad"), Some("png")));
    assert_eq!((s["minzoom"].as_u64(), s["maxzoom"].as_u64(), s["tiles"].as_u64()), (Some(8), Some(10), Some(3)));
    upload(&env, "hillshade", &format!("date=2023-08-01&{title}"), &b);
    (env, old, newest)
}

#[test]
fn raster_time_series_through_xyz_ogc_tiles_and_wmts() {
    let (env, old, newest) = with_hillshade();
    let maxz = *RASTER_ZOOMS.end();
    // Only administrators import.
    let r = env.post("/tiles/rasters/x?date=2020-01-01").token(&env.token("wang")).body(vec![1u8]).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Not a tile file: refused with the reason.
    let r = env.post("/tiles/rasters/x?date=2020-01-01").token(&env.token("admin")).body(b"not sqlite".to_vec()).send();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());

    // XYZ with the time series: as-of picks the acquisition in effect (raster sets are basemaps:
    // anonymous callers read them).
    let (x, y) = xyz(WUHAN.0, WUHAN.1, maxz);
    let tile = |q: &str| {
        let r = env.get(&format!("/tiles/hillshade/{maxz}/{x}/{y}.png{q}")).send();
        assert_eq!(r.status, StatusCode::OK, "{q}");
        assert_eq!(r.header("content-type"), "image/png");
        (r.header("x-acquisition-date").to_owned(), r.bytes())
    };
    let (d_now, now_bytes) = tile("");
    let (d_2020, bytes_2020) = tile("?as-of=2020-06-01");
    assert_eq!((d_now.as_str(), d_2020.as_str()), ("2023-08-01", "2019-05-01"));
    assert_eq!((now_bytes, bytes_2020), (newest.clone(), old.clone()));
    let r = env.get(&format!("/tiles/hillshade/{maxz}/{x}/{y}.png?as-of=2010-01-01")).send();
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let tj = env.get("/tiles/hillshade.json").send().json();
    assert_eq!(tj["shikong:dates"], json!(["2019-05-01", "2023-08-01"]));
    assert_eq!(tj["maxzoom"], json!(maxz));

    // OGC API – Tiles (map tiles) and WMTS KVP/RESTful with the Time dimension.
    let r =
        env.get(&format!("/collections/hillshade/map/tiles/WebMercatorQuad/{maxz}/{y}/{x}?datetime=2019-05-01")).send();
    assert_eq!(r.bytes(), old);
    let kvp = format!(
        "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=hillshade&STYLE=default&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX={maxz}&TILEROW={y}&TILECOL={x}&FORMAT=image/png&TIME=2019-05-01"
    );
    assert_eq!(env.get(&kvp).send().bytes(), old);
    let rest = format!("/wmts/1.0.0/hillshade/default/2023-08-01/WebMercatorQuad/{maxz}/{y}/{x}.png");
    assert_eq!(env.get(&rest).send().bytes(), newest);
    let bad = env.get("/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=hillshade").send();
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("MissingParameterValue"));
    // The KVP capabilities are the RESTful document.
    let caps = env.get("/wmts/1.0.0/WMTSCapabilities.xml").send().text();
    assert!(caps.contains("<Value>2019-05-01</Value><Value>2023-08-01</Value>"), "{caps}");
    assert_eq!(env.get("/wmts?SERVICE=WMTS&REQUEST=GetCapabilities").send().text(), caps);

    // Deleting one acquisition leaves the other.
    let r = env.delete("/tiles/rasters/hillshade?date=2023-08-01").token(&env.token("admin")).send();
    assert_eq!((r.status, r.json()["deleted"].as_u64()), (StatusCode::OK, Some(1)));
    assert_eq!(tile("").0, "2019-05-01");
}

// ---------------------------------------------------------------------------------------------
// Snapshots

#[test]
fn tilejson_snapshot() {
    let env = public().env();
    insta::assert_json_snapshot!("tilejson_manhole_district", get_json(&env, "/tiles/manhole,district.json"));
    insta::assert_json_snapshot!("tilesets", get_json(&env, "/tiles"));
}

#[test]
fn tile_matrix_sets_snapshot() {
    let env = public().env();
    insta::assert_json_snapshot!("tile_matrix_sets", get_json(&env, "/tileMatrixSets"));
    insta::assert_json_snapshot!("web_mercator_quad", get_json(&env, "/tileMatrixSets/WebMercatorQuad"));
}

#[test]
fn vector_tileset_snapshot() {
    let env = public().env();
    insta::assert_json_snapshot!(
        "tileset_manhole_webmercatorquad",
        get_json(&env, "/collections/manhole/tiles/WebMercatorQuad")
    );
}

#[test]
fn style_snapshot() {
    let env = public().env();
    insta::assert_json_snapshot!("style_default", get_json(&env, "/styles/default"));
}

#[test]
fn wmts_capabilities_snapshot() {
    let env = public().env();
    // No raster sets: the service and its operations, no layers.
    let r = env.get("/wmts/1.0.0/WMTSCapabilities.xml").send();
    assert_eq!((r.status, r.header("content-type")), (StatusCode::OK, "application/xml"));
    insta::assert_snapshot!("wmts_capabilities_empty", r.text().replace("><", ">\n<"));
    let (env, _, _) = with_hillshade();
    let r = env.get("/wmts/1.0.0/WMTSCapabilities.xml").send();
    insta::assert_snapshot!("wmts_capabilities_hillshade", r.text().replace("><", ">\n<"));
}

/// The bytes of the vector tile cache files (`tiles/cache.sqlite` with its WAL and shared memory).
fn cache_dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir.join("tiles")) else { return 0 };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("cache.sqlite"))
        .map(|e| e.metadata().map_or(0, |m| m.len()))
        .sum()
}

/// Hostile tile requests — every attribute subset, every past transaction, thousands of distinct
/// empty tiles — keep the cache files within `tile_cache_bytes`, and the tiles served stay right.
#[test]
fn hostile_tile_requests_keep_the_cache_within_its_budget() {
    const BUDGET: u64 = 2 << 20;
    let env = public().env_with(|c| c.tile_cache_bytes = BUDGET);
    let mut names: Vec<String> = vec!["id".into(), "code".into()];
    for f in &env.store().layer("manhole").unwrap().schema().fields {
        if !names.contains(&f.name) {
            names.push(f.name.clone());
        }
    }
    let subsets: Vec<String> = (1..(1u32 << names.len()))
        .map(|m| {
            names
                .iter()
                .enumerate()
                .filter(|(i, _)| m & (1 << i) != 0)
                .map(|(_, n)| enc(n))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let mut times: Vec<Option<String>> = vec![None];
    times.extend(env.store().transactions(None, 100).unwrap().iter().map(|t| Some(t.time.to_string())));
    let [x0, y0, x1, y1] = DISTRICT;
    let mut tiles = Vec::new();
    for z in 11..=15u8 {
        let (a, b) = xyz(x0, y1, z);
        let (c, d) = xyz(x1, y0, z);
        for x in a..=c {
            for y in b..=d {
                tiles.push((z, x, y));
            }
        }
    }
    let started = Instant::now();
    let mut requests = 0usize;
    let mut peak = 0u64;
    for (i, (z, x, y)) in tiles.iter().enumerate() {
        for s in &subsets {
            for t in &times {
                let q = match t {
                    Some(t) => format!("properties={s}&as-of={}", enc(t)),
                    None => format!("properties={s}"),
                };
                let r = env.get(&format!("/tiles/manhole/{z}/{x}/{y}.mvt?{q}")).send();
                assert!(r.status.is_success(), "{q}: {}", r.text());
                requests += 1;
            }
        }
        if i % 8 == 0 {
            peak = peak.max(cache_dir_bytes(env.dir.path()));
        }
    }
    // Distinct empty tiles of the default kind, far from any feature.
    for i in 0..3000u32 {
        let r = env.get(&format!("/tiles/manhole/18/{}/{}.mvt", 1000 + i, 2000 + i % 7)).send();
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        requests += 1;
        if i % 200 == 0 {
            peak = peak.max(cache_dir_bytes(env.dir.path()));
        }
    }
    let elapsed = started.elapsed();
    // A restart writes the tiles still queued in memory.
    let env = env.restarted_with(|_| {});
    let after = cache_dir_bytes(env.dir.path());
    peak = peak.max(after);
    println!(
        "{requests} hostile tile requests in {:.1} s: cache files {after} bytes at the end, {peak} at most (budget {BUDGET})",
        elapsed.as_secs_f64()
    );
    assert!(peak <= BUDGET, "the tile cache grew to {peak} bytes, over its budget of {BUDGET}");

    // Answers stay right: a default tile after an edit shows the edit.
    let (lon, lat) = grid_point(10, 10);
    let (x, y) = xyz(lon, lat, 15);
    let path = format!("/tiles/manhole/15/{x}/{y}.mvt");
    let first = get(&env, &path);
    assert_eq!(first.status, StatusCode::OK);
    let r = env
        .patch("/collections/manhole/items/JG-10-10")
        .token(&env.token("wang"))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"properties": {"material": "钢"}}).to_string())
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let after_edit = get(&env, &path);
    let layers = shikong_tiles::decode_tile(&after_edit.bytes()).unwrap();
    let f = layers[0]
        .features
        .iter()
        .find(|f| f.property("code") == Some(&shikong_model::Value::Text("JG-10-10".into())))
        .expect("JG-10-10 in its tile");
    assert_eq!(f.property("material"), Some(&shikong_model::Value::Text("钢".into())));
}
