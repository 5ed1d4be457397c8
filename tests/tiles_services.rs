//! Map services over HTTP against real clients: GDAL's MVT driver decodes served vector tiles
//! (also as of a past instant), GDAL's WMTS driver opens the capabilities and reads raster tiles
//! imported from files made by `gdaldem`, `gdal_translate` and `gdaladdo`; GDAL opens an offline
//! package. Permissions, cache invalidation, OGC API – Tiles, TileJSON and styles are tested in
//! process in `sync-server/http/tests/tiles.rs`.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::tiles_common::*;
use reqwest::StatusCode;
use serde_json::{Value as Json, json};

/// Codes and lon/lat of the features GDAL decodes from a tile file `DIR/z/x/y.pbf`.
fn gdal_features(dir: &Path, z: u8, x: u32, y: u32, bytes: &[u8]) -> Vec<(String, f64, f64, Json)> {
    let tile_dir = dir.join(format!("{z}/{x}"));
    std::fs::create_dir_all(&tile_dir).unwrap();
    let file = tile_dir.join(format!("{y}.pbf"));
    std::fs::write(&file, bytes).unwrap();
    let out = dir.join(format!("decoded-{z}-{x}-{y}.geojson"));
    let _ = std::fs::remove_file(&out);
    gdal("ogr2ogr", &["-f", "GeoJSON", "-t_srs", "EPSG:4326", s(&out), s(&file)]);
    let fc = json(&std::fs::read_to_string(&out).unwrap());
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let c = &f["geometry"]["coordinates"];
            (
                f["properties"]["code"].as_str().unwrap().to_owned(),
                c[0].as_f64().unwrap(),
                c[1].as_f64().unwrap(),
                f["properties"].clone(),
            )
        })
        .collect()
}

#[test]
fn gdal_decodes_served_vector_tiles_with_the_expected_features() {
    let env = start(false);
    let (lon, lat) = grid_point(5, 5);
    for z in [12u8, 14, 16] {
        let (x, y) = xyz(lon, lat, z);
        let r = env.get(&format!("/tiles/manhole/{z}/{x}/{y}.mvt"));
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/vnd.mapbox-vector-tile");
        let bytes = r.bytes().unwrap();
        let got = gdal_features(env.dir.path(), z, x, y, &bytes);
        // Expected: every grid point inside the tile grown by the 64/4096 buffer; GDAL clips
        // to the tile itself, so take the points inside the tile proper.
        let tile = shikong_tiles::TileMatrixSet::WebMercatorQuad.tile_bbox(shikong_tiles::TileId { z, x, y }, 0.0);
        let mut expected = BTreeSet::new();
        for r in 0..N {
            for c in 0..N {
                let (px, py) = grid_point(r, c);
                if tile.contains_point(px, py) {
                    expected.insert(format!("JG-{r:02}-{c:02}"));
                }
            }
        }
        let codes: BTreeSet<String> = got.iter().map(|g| g.0.clone()).collect();
        assert_eq!(codes, expected, "z{z}");
        assert!(!expected.is_empty());
        // Positions within the tile grid's resolution (4096 units per tile side), attributes intact.
        let unit_deg = 360.0 / f64::from(1u32 << z) / 4096.0;
        for (code, gx, gy, props) in &got {
            let r: usize = code[3..5].parse().unwrap();
            let c: usize = code[6..8].parse().unwrap();
            let (px, py) = grid_point(r, c);
            assert!((gx - px).abs() <= unit_deg && (gy - py).abs() <= unit_deg, "{code}: {gx},{gy} vs {px},{py}");
            assert_eq!(props["名称"], json!(format!("{r}排{c}号井盖")));
            assert_eq!(props["depth"].as_f64().unwrap(), (r + c) as f64 / 10.0);
        }
    }
    // A group of layers: both layers in one tile; GDAL lists both.
    let (x, y) = xyz(lon, lat, 14);
    let bytes = env.get(&format!("/tiles/manhole,district/14/{x}/{y}.mvt")).bytes().unwrap();
    let file = env.dir.path().join(format!("group/14/{x}"));
    std::fs::create_dir_all(&file).unwrap();
    let file = file.join(format!("{y}.pbf"));
    std::fs::write(&file, &bytes).unwrap();
    let info = gdal("ogrinfo", &["-ro", "-so", "-al", s(&file)]);
    assert!(info.contains("Layer name: manhole") && info.contains("Layer name: district"), "{info}");
    // Attribute selection.
    let bytes = env.get(&format!("/tiles/manhole/14/{x}/{y}.mvt?properties=code,depth")).bytes().unwrap();
    let got = gdal_features(env.dir.path(), 14, x, y, &bytes);
    let keys: Vec<&str> = got[0].3.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["code", "depth"]);
}

#[test]
fn as_of_tiles_show_the_city_at_a_past_instant() {
    let env = start(false);
    let (lon, lat) = grid_point(3, 3);
    let (x, y) = xyz(lon, lat, 15);
    let path = format!("/tiles/manhole/15/{x}/{y}.mvt");
    let before = gdal_features(env.dir.path(), 15, x, y, &env.get(&path).bytes().unwrap());
    assert!(before.iter().any(|f| f.0 == "JG-03-03"));
    let instant = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(20));
    let r =
        env.http.delete(env.server.url("/collections/manhole/items/JG-03-03")).bearer_auth(&env.token).send().unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = gdal_features(env.dir.path(), 15, x, y, &env.get(&path).bytes().unwrap());
        if !now.iter().any(|f| f.0 == "JG-03-03") {
            break;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(50));
    }
    let r = env.get(&format!("{path}?as-of={}", instant.replace('+', "%2B")));
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-as-of-transaction"));
    let past = gdal_features(env.dir.path(), 15, x, y, &r.bytes().unwrap());
    assert_eq!(past.len(), before.len());
    assert!(past.iter().any(|f| f.0 == "JG-03-03"));
    // Before the store existed: nothing.
    assert_eq!(env.get(&format!("{path}?as-of=2000-01-01")).status(), StatusCode::NO_CONTENT);
    let bad = env.get(&format!("{path}?as-of=yesterday"));
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[test]
fn raster_time_series_through_xyz_ogc_and_wmts_read_by_gdal() {
    let env = start(true);
    let dir = env.dir.path();
    let y2019 = hillshade_mbtiles(dir, "hs2019", "315");
    let y2023 = hillshade_mbtiles(dir, "hs2023", "135");
    let a =
        upload(&env, "hillshade", "date=2019-05-01&title=%E5%9C%B0%E5%BD%A2%E6%99%95%E6%B8%B2&kind=hillshade", &y2019);
    upload(&env, "hillshade", "date=2023-08-01&title=%E5%9C%B0%E5%BD%A2%E6%99%95%E6%B8%B2&kind=hillshade", &y2023);
    let maxz = a["maxzoom"].as_u64().unwrap() as u8;
    assert_eq!(a["tileMatrixSet"], "WebMercatorQuad");
    assert_eq!(a["format"], "png");
    // Only administrators import.
    let r = env
        .http
        .post(env.server.url("/tiles/rasters/x?date=2020-01-01"))
        .bearer_auth(&env.token)
        .body(vec![1u8])
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // XYZ with the time series: as-of picks the acquisition in effect.
    let (x, y) = xyz(114.348, 30.518, maxz);
    let tile = |q: &str| {
        let r = env.http.get(env.server.url(&format!("/tiles/hillshade/{maxz}/{x}/{y}.png{q}"))).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        assert_eq!(r.headers()["content-type"], "image/png");
        let date = r.headers()["x-acquisition-date"].to_str().unwrap().to_owned();
        (date, r.bytes().unwrap().to_vec())
    };
    let (d_now, newest) = tile("");
    let (d_2020, old) = tile("?as-of=2020-06-01");
    assert_eq!((d_now.as_str(), d_2020.as_str()), ("2023-08-01", "2019-05-01"));
    assert_ne!(newest, old);
    // The bytes are the file's own tile (MBTiles rows count from the bottom).
    let c = rusqlite::Connection::open(&y2019).unwrap();
    let row = (1u32 << maxz) - 1 - y;
    let stored: Vec<u8> = c
        .query_row(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            [u32::from(maxz), x, row],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, old);
    let r =
        env.http.get(env.server.url(&format!("/tiles/hillshade/{maxz}/{x}/{y}.png?as-of=2010-01-01"))).send().unwrap();
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let tj: Json = env.http.get(env.server.url("/tiles/hillshade.json")).send().unwrap().json().unwrap();
    assert_eq!(tj["shikong:dates"], json!(["2019-05-01", "2023-08-01"]));
    assert_eq!(tj["maxzoom"], json!(maxz));

    // OGC API – Tiles (map tiles) and WMTS KVP/RESTful with the Time dimension.
    let r = env
        .http
        .get(
            env.server
                .url(&format!("/collections/hillshade/map/tiles/WebMercatorQuad/{maxz}/{y}/{x}?datetime=2019-05-01")),
        )
        .send()
        .unwrap();
    assert_eq!(r.bytes().unwrap().to_vec(), old);
    let kvp = format!(
        "/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0&LAYER=hillshade&STYLE=default&TILEMATRIXSET=WebMercatorQuad&TILEMATRIX={maxz}&TILEROW={y}&TILECOL={x}&FORMAT=image/png&TIME=2019-05-01"
    );
    assert_eq!(env.http.get(env.server.url(&kvp)).send().unwrap().bytes().unwrap().to_vec(), old);
    let rest = format!("/wmts/1.0.0/hillshade/default/2023-08-01/WebMercatorQuad/{maxz}/{y}/{x}.png");
    assert_eq!(env.http.get(env.server.url(&rest)).send().unwrap().bytes().unwrap().to_vec(), newest);
    let bad = env.http.get(env.server.url("/wmts?SERVICE=WMTS&REQUEST=GetTile&LAYER=hillshade")).send().unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().unwrap().contains("MissingParameterValue"));

    // GDAL's WMTS driver: capabilities, then real pixels from the newest acquisition.
    let caps = format!("WMTS:{}", env.server.url("/wmts/1.0.0/WMTSCapabilities.xml"));
    let info = gdal("gdalinfo", &[&caps]);
    assert!(info.contains("Driver: WMTS"), "{info}");
    assert!(info.contains("EPSG\",3857") || info.contains("Pseudo-Mercator"), "{info}");
    let kvp_caps = format!("WMTS:{}", env.server.url("/wmts?SERVICE=WMTS&REQUEST=GetCapabilities"));
    assert!(gdal("gdalinfo", &[&kvp_caps]).contains("Driver: WMTS"));
    let out = dir.join("wmts-read.tif");
    gdal(
        "gdal_translate",
        &["-q", "-projwin_srs", "EPSG:4326", "-projwin", "114.33", "30.53", "114.37", "30.50", &caps, s(&out)],
    );
    let stats = gdal("gdalinfo", &["-stats", s(&out)]);
    let max = stats
        .lines()
        .find_map(|l| l.trim().strip_prefix("STATISTICS_MAXIMUM="))
        .and_then(|v| v.parse::<f64>().ok())
        .expect("statistics");
    assert!(max > 100.0, "GDAL read no hillshade through WMTS:\n{stats}");

    // A GeoPackage pyramid (GoogleMapsCompatible) as a second set, and a refused CUSTOM one.
    let hs_tif = dir.join("hs2019-hs.tif");
    let gpkg = dir.join("scan.gpkg");
    gdal("gdal_translate", &["-q", "-of", "GPKG", "-co", "TILING_SCHEME=GoogleMapsCompatible", s(&hs_tif), s(&gpkg)]);
    let g = upload(&env, "scan1950", "date=1950-01-01&kind=historical", &gpkg);
    assert_eq!(g["tileMatrixSet"], "WebMercatorQuad");
    let geo = dir.join("scan-geo.gpkg");
    gdal("gdal_translate", &["-q", "-of", "GPKG", "-co", "TILING_SCHEME=InspireCRS84Quad", s(&hs_tif), s(&geo)]);
    let g = upload(&env, "scan1950geo", "date=1950-01-01&kind=historical", &geo);
    assert_eq!(g["tileMatrixSet"], "CGCS2000Quad");
    let custom = dir.join("scan-custom.gpkg");
    gdal("gdal_translate", &["-q", "-of", "GPKG", s(&hs_tif), s(&custom)]);
    let r = env
        .http
        .post(env.server.url("/tiles/rasters/bad?date=1950-01-01"))
        .bearer_auth(&env.admin)
        .body(std::fs::read(&custom).unwrap())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let text = r.text().unwrap();
    assert!(text.contains("TILING_SCHEME"), "{text}");
    let caps_text = env.http.get(env.server.url("/wmts/1.0.0/WMTSCapabilities.xml")).send().unwrap().text().unwrap();
    assert!(caps_text.contains("<ows:Identifier>CGCS2000Quad</ows:Identifier>"));
    assert!(caps_text.contains("<Value>2019-05-01</Value><Value>2023-08-01</Value>"));
    let sub = format!("WMTS:{},layer=scan1950geo", env.server.url("/wmts/1.0.0/WMTSCapabilities.xml"));
    let info = gdal("gdalinfo", &[&sub]);
    assert!(info.contains("4490") || info.contains("China Geodetic Coordinate System 2000"), "{info}");
}

#[test]
fn offline_package_of_a_district_with_estimate_and_update() {
    let env = start(false);
    let body =
        json!({"set": "manhole", "area": {"layer": "district", "feature": "洪山-1"}, "minzoom": 12, "maxzoom": 18});
    let est: Json = env
        .http
        .post(env.server.url("/tiles/packages/estimate"))
        .bearer_auth(&env.token)
        .json(&body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let tiles = est["tiles"].as_u64().unwrap();
    assert!(tiles > 500, "{est}");
    assert!(est["bytes"].as_u64().unwrap() > 0);
    let t0 = Instant::now();
    let r = env.http.post(env.server.url("/tiles/packages")).bearer_auth(&env.token).json(&body).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let tx: i64 = r.headers()["x-package-transaction"].to_str().unwrap().parse().unwrap();
    let written: u64 = r.headers()["x-tiles"].to_str().unwrap().parse().unwrap();
    let bytes = r.bytes().unwrap();
    println!(
        "package: {written} tiles (estimate {tiles}), {} bytes (estimate {}), {:?}",
        bytes.len(),
        est["bytes"],
        t0.elapsed()
    );
    let file = env.dir.path().join("district.mbtiles");
    std::fs::write(&file, &bytes).unwrap();
    // GDAL opens it as vector MBTiles and sees the points of the district.
    let info = gdal("ogrinfo", &["-ro", "-so", "-al", s(&file)]);
    assert!(info.contains("Layer name: manhole"), "{info}");
    let count: usize = info.lines().find_map(|l| l.strip_prefix("Feature Count: ")).unwrap().trim().parse().unwrap();
    let [x0, y0, x1, y1] = DISTRICT;
    let inside = (0..N)
        .flat_map(|r| (0..N).map(move |c| grid_point(r, c)))
        .filter(|(x, y)| *x > x0 && *x < x1 && *y > y0 && *y < y1)
        .count();
    assert!(count >= inside && count <= N * N, "{count} features, {inside} inside the district");

    // An edit inside the district, then the update: only the touched tiles.
    let (ox, oy) = grid_point(8, 8);
    let r = env
        .http
        .patch(env.server.url("/collections/manhole/items/JG-08-08"))
        .bearer_auth(&env.token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"geometry": {"type": "Point", "coordinates": [ox + 0.0004, oy]}}).to_string())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let upd = json!({"set": "manhole", "area": {"layer": "district", "feature": "洪山-1"}, "minzoom": 12, "maxzoom": 18, "since": tx.to_string()});
    let r = env.http.post(env.server.url("/tiles/packages")).bearer_auth(&env.token).json(&upd).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let delta: u64 = r.headers()["x-tiles"].to_str().unwrap().parse().unwrap();
    assert!((7..=28).contains(&delta), "{delta} tiles in the update");
    let bad = env
        .http
        .post(env.server.url("/tiles/packages"))
        .bearer_auth(&env.token)
        .json(&json!({"set": "manhole", "area": {"type": "Point", "coordinates": [114.3, 30.5]}}))
        .send()
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}
