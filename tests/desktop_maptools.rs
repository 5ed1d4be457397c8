//! The desktop map's tools (issue 16, "Map") as a user drives them: the real `shikong-desktop`
//! under Xvfb through WebDriver, against the real server with the demo data.
//!
//! `map_tools_measure_locate_bookmark_translate`: the layer tree hides a layer (gone from the
//! rendered features) and switches to another of the server's styles; an offline GCJ-02 raster package in the data folder is drawn shifted into
//! place (its marker pixel lands on the true position, not where the unshifted tile puts it); a
//! measured line and area match the geodesic figures on CGCS2000 of the clicked points; the
//! pointer's readout shows the CGCS2000 3° Gauss-Krüger zone (38, zone-prefixed easting) of a
//! known point and throttles its calls; an address of the demo gazetteer is located where the
//! server's geocoder puts it; a bookmark survives a restart and restores its view; English
//! renames the tabs (and stays after the restart); shortcuts (Ctrl+P and Esc typed through
//! WebDriver; 1–6, /, M, A, ? dispatched as key events) work.
//! Screenshots: `maptools.png`, `measure.png`.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::desktop::{desktop_bin, shots, signed_in};
use crate::common::s;
use crate::common::webdriver::Session;
use serde_json::{Value as Json, json};

/// Runs `script` until it returns something other than null/false; returns that value.
#[track_caller]
fn until(app: &Session, secs: u64, what: &str, script: &str, args: Json) -> Json {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = app.execute(script, args.clone());
        if !(v.is_null() || v == Json::Bool(false)) {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not after {secs} s; page: {}", app.page_text());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Waits for the map to settle (no tiles loading) and returns the rendered layer ids.
fn rendered(app: &Session) -> Vec<String> {
    until(
        app,
        60,
        "map idle",
        "const m = window.shikongDesktop.state.map; return m && m.loaded() && !m.isMoving();",
        json!([]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let v = app.execute("return window.shikongDesktop.rendered()", json!([]));
    v.as_array().unwrap().iter().filter_map(Json::as_str).map(str::to_owned).collect()
}

fn key(app: &Session, k: &str) {
    app.execute(
        "document.dispatchEvent(new KeyboardEvent('keydown', {key: arguments[0], bubbles: true, cancelable: true}))",
        json!([k]),
    );
}

/// Web Mercator pixel of `lon, lat` at zoom `z` (256-px tiles).
fn pixel(lon: f64, lat: f64, z: u8) -> (f64, f64) {
    let size = 256.0 * 2f64.powi(i32::from(z));
    let s = lat.to_radians().sin();
    ((lon + 180.0) / 360.0 * size, (0.5 - ((1.0 + s) / (1.0 - s)).ln() / (4.0 * std::f64::consts::PI)) * size)
}

/// An offline raster package in GCJ-02 (as tiles cut from Amap are): one tile at zoom `z` with a
/// red 11-px square where GCJ-02 draws `lon, lat`.
fn gcj_package(path: &Path, lon: f64, lat: f64, z: u8) {
    let (g, h) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
    let (gx, gy) = pixel(g, h, z);
    let (tx, ty) = ((gx / 256.0) as u32, (gy / 256.0) as u32);
    let (i, j) = ((gx - f64::from(tx) * 256.0) as i64, (gy - f64::from(ty) * 256.0) as i64);
    assert!((6..250).contains(&i) && (6..250).contains(&j), "the square fits one tile: {i} {j}");
    let mut img = image::RgbaImage::from_pixel(256, 256, image::Rgba([240, 240, 235, 255]));
    for y in j - 5..=j + 5 {
        for x in i - 5..=i + 5 {
            img.put_pixel(x as u32, y as u32, image::Rgba([255, 0, 0, 255]));
        }
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgba8(img)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT);
         CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB);
         INSERT INTO metadata VALUES ('name', '高德影像（示例）'), ('format', 'png'), ('minzoom', '15'), ('maxzoom', '15');",
    )
    .unwrap();
    let row = (1u32 << z) - 1 - ty;
    db.execute("INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)", rusqlite::params![z, tx, row, png]).unwrap();
}

/// The colours on screen (a WebDriver screenshot: what the user sees) at the pixels of
/// `lon, lat` moved by each of `offsets` pixels.
fn screen_rgb(app: &Session, shot: &Path, lon: f64, lat: f64, offsets: &[(f64, f64)]) -> Vec<[u8; 3]> {
    let at = app.execute(
        "const m = window.shikongDesktop.state.map; const p = m.project(arguments[0]);
         const r = m.getCanvas().getBoundingClientRect(); return [r.left + p.x, r.top + p.y];",
        json!([[lon, lat]]),
    );
    let (x, y) = (at[0].as_f64().unwrap(), at[1].as_f64().unwrap());
    app.screenshot(shot);
    let img = image::open(shot).unwrap().to_rgb8();
    offsets.iter().map(|(dx, dy)| img.get_pixel((x + dx).round() as u32, (y + dy).round() as u32).0).collect()
}

#[test]
fn map_tools_measure_locate_bookmark_translate() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let http = reqwest::blocking::Client::new();
    // The GCJ-02 package: copied into the app's data folder (signed_in's folder for wang).
    let app_data = dir.path().join("desktop-wang");
    let gcj_point = (114.2000, 30.6500);
    gcj_package(&app_data.join("basemaps/amap.gcj02.mbtiles"), gcj_point.0, gcj_point.1, 15);

    let (driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-map");
    app.wait_text("[data-testid=map-status]", 60, "map drawn", |t| t.starts_with("已显示"));
    app.find("[data-testid=maptools] #mt-search", 10);
    app.execute("window.shikongDesktop.jumpTo({center: [114.3437, 30.5043], zoom: 14})", json!([]));
    let layers = rendered(&app);
    assert!(layers.iter().any(|l| l.starts_with("manhole")), "manholes drawn at first: {layers:?}");

    // Layer tree: the server's layers with their style colours; switching manholes off.
    app.click("#mt-layers-btn");
    let row = "[data-testid=layer-toggle][data-layers*='manhole-']";
    let title = app.text(row);
    assert!(title.contains("井盖"), "{title}");
    let tree = app.text("[data-testid=layer-tree]");
    assert!(tree.contains("底图") && tree.contains("高德影像（示例）") && tree.contains("GCJ-02"), "{tree}");
    app.click(&format!("{row} input"));
    let layers = rendered(&app);
    assert!(!layers.iter().any(|l| l.starts_with("manhole")), "manholes hidden: {layers:?}");
    assert!(layers.iter().any(|l| l.starts_with("street_lamp")), "the others stay: {layers:?}");
    // Another of the server's styles (the generated one of the road layer): the app's own layers
    // (the cases) stay on top; back to the default, manholes still hidden.
    let styles = app.text("[data-testid=style-select]");
    assert!(styles.contains("道路"), "the server's styles: {styles}");
    app.click("#mt-style option[value=road]");
    until(
        &app,
        30,
        "the road style",
        "return window.shikongDesktop.state.map.getStyle().layers.every((l) => !l.id.startsWith('street_lamp'))",
        json!([]),
    );
    let layers = rendered(&app);
    assert!(layers.iter().any(|l| l.starts_with("road")), "{layers:?}");
    assert!(!layers.iter().any(|l| l.starts_with("street_lamp") || l.starts_with("manhole")), "{layers:?}");
    assert_eq!(app.execute("return !!window.shikongDesktop.state.map.getLayer('desk-cases')", json!([])), true);
    app.click("#mt-style option[value=default]");
    until(
        &app,
        30,
        "the default style",
        "return !!window.shikongDesktop.state.map.getLayer('street_lamp-point')",
        json!([]),
    );
    let layers = rendered(&app);
    assert!(layers.iter().any(|l| l.starts_with("street_lamp")), "{layers:?}");
    assert!(!layers.iter().any(|l| l.starts_with("manhole")), "still hidden: {layers:?}");

    // The GCJ-02 package as the basemap: its marker lands on the true position.
    app.click("input[name=mt-basemap][value='pkg:amap.gcj02']");
    app.execute(
        "window.shikongDesktop.jumpTo({center: arguments[0], zoom: 15, bearing: 0, pitch: 0})",
        json!([[gcj_point.0, gcj_point.1]]),
    );
    rendered(&app);
    let (px, py) = pixel(gcj_point.0, gcj_point.1, 15);
    let (g, h) = shikong_geodesy::wgs84_to_gcj02(gcj_point.0, gcj_point.1);
    let (gx, gy) = pixel(g, h, 15);
    let shift = (gx - px, gy - py);
    assert!(shift.0.hypot(shift.1) > 50.0, "GCJ-02 moves it far at z15: {shift:?}");
    let colours = screen_rgb(&app, &dir.path().join("gcj.png"), gcj_point.0, gcj_point.1, &[(0.0, 0.0), shift]);
    let red = |c: [u8; 3]| c[0] > 200 && c[1] < 80 && c[2] < 80;
    assert!(red(colours[0]), "red at the true position: {colours:?}");
    assert!(!red(colours[1]), "not where the unshifted tile would put it: {colours:?}");
    app.click("input[name=mt-basemap][value=none]");
    app.click("#mt-layers-btn");

    // Measure a line (M) between two points, then an area: geodesic on CGCS2000.
    app.execute("window.shikongDesktop.jumpTo({center: [114.365, 30.515], zoom: 13})", json!([]));
    rendered(&app);
    key(&app, "m");
    assert_eq!(app.execute("return window.shikongDesktop.tool()", json!([])), "line");
    let (a, b) = ([114.3500, 30.5100], [114.3800, 30.5200]);
    for p in [a, b] {
        app.execute("window.shikongDesktop.clickMapAt(arguments[0])", json!([p]));
    }
    let shown = until(
        &app,
        10,
        "measured length",
        "const e = document.querySelector('[data-testid=measure-length]'); return e && Number(e.dataset.value);",
        json!([]),
    );
    let pts = app.execute("return window.shikongDesktop.measurePoints()", json!([]));
    let pts: Vec<[f64; 2]> = serde_json::from_value(pts).unwrap();
    assert_eq!(pts.len(), 2, "{pts:?}");
    for (got, want) in pts.iter().zip([a, b]) {
        // the click lands on the pixel of the point: within a pixel (≈ 19 m at z13)
        let off = shikong_geodesy::distance(&coord(*got), &coord(want)).unwrap();
        assert!(off < 20.0, "clicked {got:?} for {want:?}: {off} m");
    }
    let geodesic = shikong_geodesy::distance(&coord(pts[0]), &coord(pts[1])).unwrap();
    let shown = shown.as_f64().unwrap();
    assert!((shown - geodesic).abs() < 1e-6, "shown {shown} m, geodesic {geodesic} m");
    assert!((shown - 3_127.0).abs() < 60.0, "about 3.1 km: {shown}");
    assert!(app.text("[data-testid=measure]").contains("km"));
    assert!(app.try_find(".maplibregl-popup").is_none(), "measuring clicks do not identify");
    // Esc typed into the search box ends the tool (a real key through WebDriver).
    app.type_into("#mt-search", "\u{E00C}");
    until(&app, 5, "Esc ends the tool", "return window.shikongDesktop.tool() === null", json!([]));
    key(&app, "a");
    let square = [[114.355, 30.505], [114.375, 30.505], [114.375, 30.525], [114.355, 30.525]];
    for p in square {
        app.execute("window.shikongDesktop.clickMapAt(arguments[0])", json!([p]));
    }
    let last = square[3];
    app.execute("window.shikongDesktop.clickMapAt(arguments[0], 'dblclick')", json!([last]));
    until(&app, 5, "double-click ends the area", "return window.shikongDesktop.tool() === null", json!([]));
    let area = until(
        &app,
        10,
        "measured area",
        "const e = document.querySelector('[data-testid=measure-area]'); return e && Number(e.dataset.value);",
        json!([]),
    )
    .as_f64()
    .unwrap();
    let pts: Vec<[f64; 2]> =
        serde_json::from_value(app.execute("return window.shikongDesktop.measurePoints()", json!([]))).unwrap();
    assert_eq!(pts.len(), 4, "the double-click adds no point: {pts:?}");
    let mut ring: Vec<shikong_model::Coord> = pts.iter().map(|p| coord(*p)).collect();
    ring.push(ring[0]);
    let want = shikong_geodesy::measure_geodesic(&shikong_model::Geometry::Polygon(vec![ring])).unwrap().area_m2;
    assert!((area - want).abs() < 1e-3, "shown {area} m², geodesic {want} m²");
    app.screenshot(&shots().join("measure.png"));

    // The pointer's readout: CGCS2000 lon/lat and the 3° Gauss-Krüger zone 38, easting prefixed.
    let before = app.execute("return window.shikongDesktop.coordCalls()", json!([])).as_u64().unwrap();
    app.execute(
        "for (let i = 0; i < 200; i++) window.shikongDesktop.pointerAt([114.30 + i * 0.0002, 30.50]);
         window.shikongDesktop.pointerAt([114.34, 30.51]);",
        json!([]),
    );
    let readout = until(
        &app,
        10,
        "readout of the last position",
        "const d = document.querySelector('[data-testid=coords]').dataset;
         return d.zone && Math.abs(Number(d.lon) - 114.34) < 1e-3 && Math.abs(Number(d.lat) - 30.51) < 1e-3 ? Object.assign({}, d) : null;",
        json!([]),
    );
    std::thread::sleep(Duration::from_millis(300));
    let calls = app.execute("return window.shikongDesktop.coordCalls()", json!([])).as_u64().unwrap() - before;
    assert!(calls <= 5, "201 pointer moves, {calls} readout calls (one in flight, the latest next)");
    let num = |k: &str| readout[k].as_str().unwrap().parse::<f64>().unwrap();
    assert_eq!((readout["zone"].as_str(), readout["epsg"].as_str()), (Some("38"), Some("4526")), "{readout}");
    let (lon, lat) = (num("lon"), num("lat"));
    let gk = shikong_crs::transform_geometry(
        &shikong_model::Geometry::Point(shikong_model::Coord::xy(lon, lat)),
        shikong_crs::Crs::CGCS2000,
        shikong_crs::Crs::Epsg(4526),
    )
    .unwrap();
    let shikong_model::Geometry::Point(gk) = gk else { panic!("a point") };
    assert!((num("easting") - gk.x).abs() < 1e-6 && (num("northing") - gk.y).abs() < 1e-6, "{readout} vs {gk:?}");
    assert!((38_500_000.0..38_600_000.0).contains(&num("easting")), "zone-prefixed easting: {readout}");
    assert!((3_370_000.0..3_390_000.0).contains(&num("northing")), "{readout}");
    let text = app.text("[data-testid=coords]");
    assert!(text.contains("3°带 38") && text.contains("EPSG:4526") && text.contains(&format!("{:.2}", gk.x)), "{text}");

    // Locate an address of the demo gazetteer: the map goes where the server's geocoder says.
    let q = "武汉市洪山区珞喻路10号";
    let r: Json = http
        .get(server.url(&format!("/geocode?q={}", shikong_protocol::url::encode_component(q))))
        .bearer_auth(&wang)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let (want_lon, want_lat) = (r["point"]["lon"].as_f64().unwrap(), r["point"]["lat"].as_f64().unwrap());
    app.type_into("#mt-search", "光谷");
    let first = app.wait_text("[data-testid=suggestion]", 15, "suggestions", |t| t.contains("光谷"));
    assert!(!first.is_empty());
    app.type_into("#mt-search", &format!("{q}\u{E007}"));
    let located = app.wait_text("[data-testid=mt-located]", 15, "located", |t| t.contains("珞喻路"));
    let centre = until(
        &app,
        15,
        "the map moved to the address",
        "const c = window.shikongDesktop.center(); const m = window.shikongDesktop.state.map;
         return c && !m.isMoving() && Math.abs(c[0] - arguments[0]) < 1e-6 && Math.abs(c[1] - arguments[1]) < 1e-6 ? c : null;",
        json!([want_lon, want_lat]),
    );
    assert!(centre[2].as_f64().unwrap() >= 15.0, "zoomed in on the place: {centre} ({located})");
    app.click("#mt-layers-btn");
    app.screenshot(&shots().join("maptools.png"));
    app.click("#mt-layers-btn");

    // A bookmark of a view, kept across a restart.
    app.click("#mt-bookmarks-btn");
    app.execute(
        "window.shikongDesktop.jumpTo({center: [114.3987, 30.5053], zoom: 15.5, bearing: 30, pitch: 0})",
        json!([]),
    );
    app.type_into("[data-testid=bm-name]", "光谷广场视图");
    app.click("[data-testid=bm-save]");
    app.find("[data-testid=bookmark][data-name='光谷广场视图']", 10);
    assert!(std::fs::read_to_string(app_data.join("bookmarks.json")).unwrap().contains("光谷广场视图"));

    // English: the tabs (and the tools) switch; Ctrl+P (typed) opens the print tab.
    app.click("#lang option[value=en]");
    app.wait_text("#tab-map", 10, "English tabs", |t| t == "Map");
    assert_eq!(app.text("#tab-board"), "Dispatch");
    assert_eq!(app.text("#mt-line-btn"), "Distance");
    assert!(app.text("[data-testid=coords]").contains("3° zone 38"));
    app.type_into("#mt-search", "\u{E009}p\u{E000}");
    until(
        &app,
        5,
        "Ctrl+P opens the print tab",
        "return document.getElementById('tab-print').classList.contains('active')",
        json!([]),
    );
    // / goes to the map and into the address search.
    key(&app, "/");
    until(
        &app,
        5,
        "/ focuses the search",
        "return document.activeElement && document.activeElement.id === 'mt-search' && document.getElementById('tab-map').classList.contains('active')",
        json!([]),
    );
    // 1–6 switch tabs; ? shows the help, Esc closes it.
    key(&app, "2");
    until(
        &app,
        5,
        "2 opens the map",
        "return document.getElementById('tab-map').classList.contains('active')",
        json!([]),
    );
    key(&app, "1");
    until(
        &app,
        5,
        "1 opens the board",
        "return document.getElementById('tab-board').classList.contains('active')",
        json!([]),
    );
    key(&app, "?");
    let help = app.wait_text("[data-testid=keys-help]", 5, "help overlay", |t| t.contains("Keyboard shortcuts"));
    assert!(help.contains("Ctrl+P") && help.contains("Esc") && help.contains("Measure a distance"), "{help}");
    key(&app, "Escape");
    until(&app, 5, "Esc closes the help", "return document.getElementById('keys-help').hidden", json!([]));
    app.quit();

    // Restart: still English, and the bookmark restores its view.
    let app = driver.open(&desktop_bin(), &["--data", s(&app_data)]);
    app.wait_text("[data-testid=who]", 60, "the saved session", |t| t.contains("wang"));
    app.wait_text("#tab-map", 10, "English after the restart", |t| t == "Map");
    app.click("#tab-map");
    until(&app, 60, "map ready", "const m = window.shikongDesktop.state.map; return m && m.loaded();", json!([]));
    app.click("#mt-bookmarks-btn");
    app.click("[data-testid=bookmark][data-name='光谷广场视图'] .mt-bm-go");
    let c = until(&app, 10, "bookmark restored", "return window.shikongDesktop.center()", json!([]));
    let bearing = app.execute("return window.shikongDesktop.state.map.getBearing()", json!([])).as_f64().unwrap();
    let c: Vec<f64> = serde_json::from_value(c).unwrap();
    assert!((c[0] - 114.3987).abs() < 1e-7 && (c[1] - 30.5053).abs() < 1e-7 && (c[2] - 15.5).abs() < 1e-7, "{c:?}");
    assert!((bearing - 30.0).abs() < 1e-7, "{bearing}");
    app.quit();

    for shot in ["maptools", "measure"] {
        let p = shots().join(format!("{shot}.png"));
        assert!(std::fs::metadata(&p).map(|m| m.len() > 5_000).unwrap_or(false), "{} saved", p.display());
    }
    let log = std::fs::read_to_string(dir.path().join("driver-wang.log")).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}

fn coord(p: [f64; 2]) -> shikong_model::Coord {
    shikong_model::Coord::xy(p[0], p[1])
}
