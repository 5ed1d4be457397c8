//! Shared set-up of the map service tests: a store with a point layer on a grid, a district
//! polygon, users, and a running server.
use std::path::Path;

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

use crate::common::server::Server;
use crate::common::*;

pub const PASSWORD: &str = "城管巡查2025!";

/// The grid: `N × N` manholes 0.002° apart from (LON0, LAT0); codes `JG-rr-cc`.
pub const N: usize = 20;
pub const LON0: f64 = 114.34;
pub const LAT0: f64 = 30.50;
pub const STEP: f64 = 0.002;

/// The district polygon (about 3.4 km × 3.9 km ≈ 13 km², covering most of the grid).
pub const DISTRICT: [f64; 4] = [114.338, 30.498, 114.374, 30.533];

pub fn grid_point(r: usize, c: usize) -> (f64, f64) {
    (LON0 + c as f64 * STEP, LAT0 + r as f64 * STEP)
}

pub fn write_fixtures(dir: &Path) -> (String, String) {
    let mut feats = Vec::new();
    for r in 0..N {
        for c in 0..N {
            let (x, y) = grid_point(r, c);
            feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                "properties": {"code": format!("JG-{r:02}-{c:02}"), "名称": format!("{r}排{c}号井盖"), "depth": (r + c) as f64 / 10.0, "material": if (r + c) % 2 == 0 { "铸铁" } else { "复合材料" }}}));
        }
    }
    let points = dir.join("manholes.geojson");
    std::fs::write(&points, json!({"type": "FeatureCollection", "features": feats}).to_string()).unwrap();
    let [x0, y0, x1, y1] = DISTRICT;
    let district = dir.join("district.geojson");
    let poly = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
        "properties": {"code": "洪山-1", "名称": "洪山区示范街道"}}]});
    std::fs::write(&district, poly.to_string()).unwrap();
    (s(&points).to_owned(), s(&district).to_owned())
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub server: Server,
    pub http: Client,
    /// Office user `wang`.
    pub token: String,
    pub admin: String,
}

pub fn login(http: &Client, server: &Server, user: &str) -> String {
    let r = http.post(server.url("/auth/login")).json(&json!({"username": user, "password": PASSWORD})).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "login {user}");
    r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned()
}

/// Marks a layer public through `shikong layer edit`.
pub fn make_public(data: &str, dir: &Path, layer: &str) {
    let mut def = json(&ok(&["layer", "show", "--data", data, layer]));
    def["public"] = json!(true);
    let f = write(dir, &format!("{layer}.json"), &def.to_string());
    ok(&["layer", "edit", "--data", data, layer, "--schema", s(&f)]);
}

pub fn start(public: bool) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    let (points, district) = write_fixtures(dir.path());
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "manhole", "--title", "井盖", &points]);
    ok(&["import", "--data", &data, "--layer", "district", "--title", "行政区", &district]);
    if public {
        make_public(&data, dir.path(), "manhole");
        make_public(&data, dir.path(), "district");
    }
    for (name, role) in [("admin", "admin"), ("wang", "office"), ("li", "inspector")] {
        ok_stdin(&["user", "add", "--data", &data, "--role", role, name], &format!("{PASSWORD}\n"));
    }
    let server = Server::start(&data, &[]);
    let http = Client::new();
    let token = login(&http, &server, "wang");
    let admin = login(&http, &server, "admin");
    Env { dir, server, http, token, admin }
}

impl Env {
    pub fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http.get(self.server.url(path)).bearer_auth(&self.token).send().unwrap()
    }
}

/// The Web Mercator tile (x, y) holding lon/lat at zoom z.
pub fn xyz(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    let t = shikong_tiles::TileMatrixSet::WebMercatorQuad.tile_at(lon, lat, z);
    (t.x, t.y)
}

pub fn gdal(tool_name: &str, args: &[&str]) -> String {
    let mut c = tool(tool_name, "gdal-bin");
    // GDAL's WMTS driver would otherwise leave a tile cache (`gdalwmscache/`) in the working
    // directory.
    c.env("GDAL_ENABLE_WMS_CACHE", "NO");
    c.args(args);
    run_tool(c)
}

/// A small DEM as an ESRI ASCII grid: a hill in the middle of Wuhan's 光谷.
pub fn write_dem(path: &Path, peak: f64) {
    let n = 96;
    let mut text =
        format!("ncols {n}\nnrows {n}\nxllcorner 114.30\nyllcorner 30.47\ncellsize 0.001\nNODATA_value -9999\n");
    for r in 0..n {
        let row: Vec<String> = (0..n)
            .map(|c| {
                let (dx, dy) = (c as f64 - 48.0, r as f64 - 48.0);
                format!("{:.1}", 20.0 + peak * (-(dx * dx + dy * dy) / 300.0).exp())
            })
            .collect();
        text.push_str(&row.join(" "));
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}

/// hillshade MBTiles (with overviews) of a DEM, made by GDAL's own tools.
pub fn hillshade_mbtiles(dir: &Path, name: &str, azimuth: &str) -> std::path::PathBuf {
    let asc = dir.join(format!("{name}.asc"));
    write_dem(&asc, 150.0);
    let dem = dir.join(format!("{name}-dem.tif"));
    let hs = dir.join(format!("{name}-hs.tif"));
    let mb = dir.join(format!("{name}.mbtiles"));
    gdal("gdal_translate", &["-q", "-a_srs", "EPSG:4326", s(&asc), s(&dem)]);
    gdal("gdaldem", &["hillshade", "-q", "-s", "111120", "-az", azimuth, s(&dem), s(&hs)]);
    gdal("gdal_translate", &["-q", "-of", "MBTILES", s(&hs), s(&mb)]);
    gdal("gdaladdo", &["-q", "-r", "average", s(&mb), "2", "4"]);
    mb
}

pub fn upload(env: &Env, set: &str, query: &str, file: &Path) -> Json {
    let r = env
        .http
        .post(env.server.url(&format!("/tiles/rasters/{set}?{query}")))
        .bearer_auth(&env.admin)
        .body(std::fs::read(file).unwrap())
        .send()
        .unwrap();
    let status = r.status();
    let body = r.text().unwrap();
    assert_eq!(status, StatusCode::CREATED, "{body}");
    json(&body)
}
