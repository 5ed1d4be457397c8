//! The store through the real `shikong` binary: import, as-of queries, history, diff, export,
//! rollback of bad imports, Chinese text through every format — checked with real GDAL.

use crate::common::*;
use serde_json::json;

fn init() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    ok(&["init", "--data", s(&data)]);
    (dir, s(&data).to_owned())
}

fn import(data: &str, layer: &str, file: &str, extra: &[&str]) -> String {
    let mut args = vec!["import", "--data", data, "--layer", layer];
    args.extend_from_slice(extra);
    args.push(file);
    ok(&args)
}

/// The transaction time of the latest version of `code` (an instant at which that version is visible).
fn latest_tx_time(data: &str, layer: &str, code: &str) -> String {
    let h = json(&ok(&["history", "--data", data, "--layer", layer, code]));
    h["versions"].as_array().unwrap().last().unwrap()["tx"]["time"].as_str().unwrap().to_owned()
}

fn query(data: &str, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["query", "--data", data];
    a.extend_from_slice(args);
    json(&ok(&a))
}

#[test]
fn gdal_lists_the_store_layers_and_counts() {
    let (_d, data) = init();
    let out = import(&data, "manhole", &fixture("manholes_v1.geojson"), &["--title", "井盖"]);
    assert!(out.contains("3 inserted"), "{out}");
    let info = ogrinfo(&["-so", "-al", &format!("{data}/store.gpkg")]);
    assert!(info.contains("Layer name: manhole"), "{info}");
    assert!(info.contains("IDENTIFIER=井盖"), "{info}");
    assert!(info.contains("Feature Count: 3"), "{info}");
    assert!(info.contains("名称: String"), "{info}");
    assert!(!info.contains("Warning") && !info.contains("ERROR"), "{info}");
    // Only registered tables are layers (history tables stay internal).
    assert!(!info.contains("sk_hist"), "{info}");
    // Real features through GDAL: the geometry and the Chinese value.
    let f = ogrinfo(&["-q", &format!("{data}/store.gpkg"), "manhole", "-where", "code = 'HS-JG-0002'"]);
    assert!(f.contains("关山大道井盖") && f.contains("POINT (114.3502 30.5155)"), "{f}");
}

#[test]
fn as_of_reads_three_versions_and_diff_lists_field_changes() {
    let (d, data) = init();
    import(&data, "manhole", &fixture("manholes_v1.geojson"), &[]);
    let t1 = latest_tx_time(&data, "manhole", "HS-JG-0001");
    let v2 = write(
        d.path(),
        "v2.geojson",
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[114.3421,30.5102]},
            "properties":{"code":"HS-JG-0001","名称":"珞喻路井盖","depth":2.5,"material":"铸铁","installed":"2019-04-01","good":false}}]}"#,
    );
    import(&data, "manhole", s(&v2), &["--upsert-key", "code"]);
    let t2 = latest_tx_time(&data, "manhole", "HS-JG-0001");
    let v3 = write(
        d.path(),
        "v3.geojson",
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[114.3430,30.5110]},
            "properties":{"code":"HS-JG-0001","名称":"珞喻路井盖（已更换）","depth":2.5,"material":"球墨铸铁","installed":"2024-03-01","good":true}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.36,30.52]},
            "properties":{"code":"HS-JG-0004","名称":"新井盖","depth":1.0,"material":"铸铁","installed":"2024-03-01","good":true}}]}"#,
    );
    import(&data, "manhole", s(&v3), &["--upsert-key", "code"]);
    let t3 = latest_tx_time(&data, "manhole", "HS-JG-0001");
    assert!(t1 < t2 && t2 < t3, "{t1} {t2} {t3}");

    let depth_at = |t: &str| codes_and(&query(&data, &["--layer", "manhole", "--as-of", t]), "depth");
    assert_eq!(depth_at(&t1)[0], ("HS-JG-0001".into(), json!(1.2)));
    assert_eq!(depth_at(&t2)[0], ("HS-JG-0001".into(), json!(2.5)));
    assert_eq!(depth_at(&t3).len(), 4);
    let names_now = codes_and(&query(&data, &["--layer", "manhole"]), "名称");
    assert_eq!(names_now[0].1, json!("珞喻路井盖（已更换）"));
    let names_t2 = codes_and(&query(&data, &["--layer", "manhole", "--as-of", &t2]), "名称");
    assert_eq!(names_t2[0].1, json!("珞喻路井盖"));
    assert_eq!(names_t2.len(), 3);
    let before = query(&data, &["--layer", "manhole", "--as-of", "2000-01-01"]);
    assert_eq!(before["features"].as_array().unwrap().len(), 0);

    let h = json(&ok(&["history", "--data", &data, "--layer", "manhole", "HS-JG-0001"]));
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    let attrs = |v: &serde_json::Value| -> Vec<String> {
        v["changes"].as_array().unwrap().iter().map(|c| c["attribute"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(attrs(&versions[1]), ["depth", "good"]);
    assert_eq!(attrs(&versions[2]), ["geometry", "good", "installed", "material", "名称"]);
    assert_eq!(versions[1]["changes"][0], json!({"attribute": "depth", "old": 1.2, "new": 2.5}));

    let diff = json(&ok(&["diff", "--data", &data, "--layer", "manhole", "--from", &t1, "--to", &t3]));
    assert_eq!(diff["summary"], json!({"created": 1, "modified": 1, "deleted": 0}));
    assert_eq!(diff["created"][0]["properties"]["code"], "HS-JG-0004");
    let m = &diff["modified"][0];
    assert_eq!(
        (m["code"].as_str(), m["from_version"].as_i64(), m["to_version"].as_i64()),
        (Some("HS-JG-0001"), Some(1), Some(3))
    );
    let changed: Vec<_> = m["changes"].as_array().unwrap().iter().map(|c| c["attribute"].as_str().unwrap()).collect();
    assert_eq!(changed, ["geometry", "depth", "installed", "material", "名称"]);
}

#[test]
fn bbox_cql2_and_as_of_combine() {
    let (d, data) = init();
    import(&data, "manhole", &fixture("manholes_v1.geojson"), &[]);
    let t1 = latest_tx_time(&data, "manhole", "HS-JG-0001");
    let moved = write(
        d.path(),
        "moved.geojson",
        r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[114.5,30.6]},
            "properties":{"code":"HS-JG-0002","名称":"关山大道井盖","depth":2.0,"material":"复合材料","installed":"2020-09-15","good":true}}]}"#,
    );
    import(&data, "manhole", s(&moved), &["--upsert-key", "code"]);
    let west = ["--layer", "manhole", "--bbox", "114.30,30.50,114.36,30.52"];
    let with = |extra: &[&str]| {
        let mut a = west.to_vec();
        a.extend_from_slice(extra);
        codes_and(&query(&data, &a), "depth").into_iter().map(|(c, _)| c).collect::<Vec<_>>()
    };
    assert_eq!(with(&["--filter", "depth > 1.5", "--as-of", &t1]), ["HS-JG-0002"]);
    assert_eq!(with(&["--filter", "depth > 1.5"]), Vec::<String>::new());
    assert_eq!(with(&["--filter", "material = '铸铁' AND good = true", "--as-of", &t1]), ["HS-JG-0001"]);
    assert_eq!(with(&["--filter", "\"名称\" LIKE '%大道%'", "--as-of", &t1]), ["HS-JG-0002"]);
    assert_eq!(with(&["--filter", "installed < DATE('2020-01-01')"]), ["HS-JG-0001"]);
}

#[test]
fn a_bad_row_rolls_back_the_import_and_names_the_row() {
    let (d, data) = init();
    let bad = write(
        d.path(),
        "bad.geojson",
        r#"{"type":"FeatureCollection","features":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.3,30.5]},"properties":{"code":"A","depth":1.0}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.3,30.5]},"properties":{"code":"B","depth":2.0}},
            {"type":"Feature","geometry":{"type":"Point","coordinates":[114.3,95.5]},"properties":{"code":"C","depth":3.0}}]}"#,
    );
    let err = fails(&["import", "--data", &data, "--layer", "manhole", s(&bad)]);
    assert!(err.contains("bad.geojson, feature 3") && err.contains("beyond ±90"), "{err}");
    // Nothing was written: not even the layer the import would have created.
    let (good, _, e) = shikong(&["query", "--data", &data, "--layer", "manhole"]);
    assert!(!good && e.contains("no layer named `manhole`"), "{e}");

    import(&data, "manhole", &fixture("manholes_v1.geojson"), &[]);
    let csv = write(
        d.path(),
        "more.csv",
        "code,名称,depth,material,installed,good,lon,lat\nX1,井一,1.0,铸铁,2020-01-01,true,114.30,30.50\nX2,井二,很深,铸铁,2020-01-01,true,114.31,30.51\n",
    );
    let err = fails(&["import", "--data", &data, "--layer", "manhole", s(&csv)]);
    assert!(err.contains("more.csv, row 3") && err.contains("field `depth`") && err.contains("很深"), "{err}");
    let dup = write(d.path(), "dup.csv", "code,名称,lon,lat\nHS-JG-0001,重复,114.3,30.5\n");
    let err = fails(&["import", "--data", &data, "--layer", "manhole", s(&dup)]);
    assert!(err.contains("dup.csv, row 2") && err.contains("`HS-JG-0001` is already used"), "{err}");
    let unknown = write(d.path(), "unknown.csv", "code,颜色,lon,lat\nZ1,红,114.3,30.5\n");
    let err = fails(&["import", "--data", &data, "--layer", "manhole", s(&unknown)]);
    assert!(err.contains("row 2") && err.contains("`颜色` is not a field of layer `manhole`"), "{err}");
    let n = query(&data, &["--layer", "manhole"])["features"].as_array().unwrap().len();
    assert_eq!(n, 3);
}

fn zip_dir(dir: &std::path::Path, out: &std::path::Path) {
    let mut cmd = tool("python3", "python3");
    cmd.args(["-c", "import sys,zipfile,pathlib; z=zipfile.ZipFile(sys.argv[2],'w'); [z.write(p,p.name) for p in pathlib.Path(sys.argv[1]).iterdir()]; z.close()", s(dir), s(out)]);
    run_tool(cmd);
}

#[test]
fn chinese_text_round_trips_through_every_format() {
    let (d, data) = init();
    import(&data, "manhole", &fixture("manholes_v1.geojson"), &["--title", "井盖"]);
    let expected = codes_and(&query(&data, &["--layer", "manhole"]), "名称");
    assert_eq!(expected[1].1, json!("关山大道井盖"));
    for (format, ext) in [("geojson", "geojson"), ("gpkg", "gpkg"), ("csv", "csv")] {
        let out = d.path().join(format!("export.{ext}"));
        ok(&["export", "--data", &data, "--layer", "manhole", "--format", format, s(&out)]);
        // GDAL reads every export, with the Chinese intact.
        let info = ogrinfo(&["-al", "-q", s(&out)]);
        assert!(info.contains("关山大道井盖") && info.contains("复合材料"), "{format}: {info}");
        let layer = format!("back_{format}");
        import(&data, &layer, s(&out), &[]);
        let back = codes_and(&query(&data, &["--layer", &layer]), "名称");
        assert_eq!(back, expected, "{format}");
        // Identity survives the round trip.
        let a = query(&data, &["--layer", "manhole", "--filter", "code = 'HS-JG-0003'"]);
        let b = query(&data, &["--layer", &layer, "--filter", "code = 'HS-JG-0003'"]);
        assert_eq!(a["features"][0]["id"], b["features"][0]["id"], "{format}");
        assert_eq!(b["features"][0]["properties"]["installed"], json!("2021-01-20"), "{format}");
    }
    // Zipped Shapefiles as GDAL writes them, in UTF-8 and in GBK (CP936, the ArcGIS default in China).
    for (encoding, layer) in [("UTF-8", "from_shp_utf8"), ("CP936", "from_shp_gbk")] {
        let shp_dir = d.path().join(format!("shp_{layer}"));
        let mut c = tool("ogr2ogr", "gdal-bin");
        c.args([
            "-f",
            "ESRI Shapefile",
            "-lco",
            &format!("ENCODING={encoding}"),
            s(&shp_dir),
            &fixture("manholes_v1.geojson"),
        ]);
        run_tool(c);
        let zip = d.path().join(format!("{layer}.zip"));
        zip_dir(&shp_dir, &zip);
        import(&data, layer, s(&zip), &[]);
        let back = codes_and(&query(&data, &["--layer", layer]), "名称");
        assert_eq!(back, expected, "{encoding}");
    }
}

#[test]
fn cli_errors_are_one_clear_line() {
    let (d, data) = init();
    import(&data, "manhole", &fixture("manholes_v1.geojson"), &[]);
    let e = fails(&["query", "--data", &data, "--layer", "nope"]);
    assert!(e.contains("no layer named `nope`"), "{e}");
    let e = fails(&["query", "--data", &data, "--layer", "manhole", "--bbox", "1,2,3"]);
    assert!(e.contains("--bbox") && e.contains("expected 4 numbers"), "{e}");
    let e = fails(&["query", "--data", &data, "--layer", "manhole", "--filter", "depth >>> 1"]);
    assert!(e.contains("--filter"), "{e}");
    let e = fails(&["query", "--data", &data, "--layer", "manhole", "--filter", "colour = 'red'"]);
    assert!(e.contains("colour"), "{e}");
    let e = fails(&["query", "--data", &data, "--layer", "manhole", "--as-of", "yesterday"]);
    assert!(e.contains("--as-of") && e.contains("RFC 3339"), "{e}");
    let e = fails(&["history", "--data", &data, "--layer", "manhole", "NO-SUCH-CODE"]);
    assert!(e.contains("NO-SUCH-CODE"), "{e}");
    let e = fails(&["query", "--data", s(&d.path().join("nowhere")), "--layer", "manhole"]);
    assert!(e.contains("shikong init"), "{e}");
    let junk = write(d.path(), "junk.geojson", "{ this is not json");
    let e = fails(&["import", "--data", &data, "--layer", "junk", s(&junk)]);
    assert!(e.contains("junk.geojson"), "{e}");
}

#[test]
fn layer_schema_can_be_shown_and_edited() {
    let (d, data) = init();
    import(&data, "manhole", &fixture("manholes_v1.geojson"), &[]);
    let mut doc = json(&ok(&["layer", "show", "--data", &data, "manhole"]));
    assert_eq!(doc["geometry_type"], "POINT");
    let fields = doc["fields"].as_array_mut().unwrap();
    let depth = fields.iter_mut().find(|f| f["name"] == "depth").unwrap();
    assert_eq!(depth["type"], "real");
    depth["title"] = json!("埋深（米）");
    depth["max"] = json!(1.0); // tighter than live data (2.0): refused
    let path = d.path().join("schema.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    let e = fails(&["layer", "edit", "--data", &data, "manhole", "--schema", s(&path)]);
    assert!(e.contains("does not satisfy the new schema") && e.contains("depth"), "{e}");
    let fields = doc["fields"].as_array_mut().unwrap();
    fields.iter_mut().find(|f| f["name"] == "depth").unwrap()["max"] = json!(10.0);
    fields.push(json!({"name": "巡检员", "type": "text", "max_length": 8}));
    std::fs::write(&path, doc.to_string()).unwrap();
    ok(&["layer", "edit", "--data", &data, "manhole", "--schema", s(&path)]);
    let after = json(&ok(&["layer", "show", "--data", &data, "manhole"]));
    let names: Vec<_> =
        after["fields"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&"巡检员".to_owned()));
    let info = ogrinfo(&["-so", "-al", &format!("{data}/store.gpkg")]);
    assert!(info.contains("巡检员: String"), "{info}");
}

#[test]
fn gcj02_and_projected_input_is_converted_to_cgcs2000() {
    let (d, data) = init();
    // A point picked on an Amap basemap (GCJ-02) and the same place surveyed in a 3° GK zone.
    let gcj = write(d.path(), "amap.csv", "code,名称,lon,lat\nG1,武汉站,114.31094488843175,30.590390564305725\n");
    import(&data, "picked", s(&gcj), &["--crs", "GCJ02"]);
    let fc = query(&data, &["--layer", "picked"]);
    let c = &fc["features"][0]["geometry"]["coordinates"];
    assert!((c[0].as_f64().unwrap() - 114.3055).abs() < 1e-7 && (c[1].as_f64().unwrap() - 30.5928).abs() < 1e-7, "{c}");
    let gk = write(d.path(), "survey.csv", "code,lon,lat\nS1,529299.8603,3385869.4534\n");
    import(&data, "surveyed", s(&gk), &["--crs", "EPSG:4547"]);
    let c = query(&data, &["--layer", "surveyed"])["features"][0]["geometry"]["coordinates"].clone();
    assert!((c[0].as_f64().unwrap() - 114.3055).abs() < 1e-8 && (c[1].as_f64().unwrap() - 30.5928).abs() < 1e-8, "{c}");
    let e = fails(&["import", "--data", &data, "--layer", "x", "--crs", "EPSG:2000", s(&gk)]);
    assert!(e.contains("unknown CRS `EPSG:2000`"), "{e}");
}

#[test]
fn crs_transform_and_measure_commands() {
    let out = ok(&["crs", "transform", "--from", "EPSG:4490", "--to", "EPSG:4547", "114.3055", "30.5928"]);
    let v: Vec<f64> = out.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert!((v[0] - 529299.8603).abs() < 1e-3 && (v[1] - 3385869.4534).abs() < 1e-3, "{out}");
    let out = ok(&["crs", "transform", "--from", "WGS84", "--to", "GCJ02", "114.3055", "30.5928"]);
    assert!(out.starts_with("114.310944888 30.590390564"), "{out}");
    // A 1° × 1° cell at 30°N on the CGCS2000 ellipsoid: GeographicLib's area (reference table).
    let out = ok(&["measure", "--crs", "EPSG:4490", "POLYGON ((114 30,115 30,115 31,114 31,114 30))"]);
    let area: f64 = out.split_whitespace().find_map(|kv| kv.strip_prefix("area_m2=")).unwrap().parse().unwrap();
    assert!((area - 10_642_455_822.155_64).abs() / 10_642_455_822.155_64 < 1e-4, "{out}");
    assert!(out.contains("method=geodesic"), "{out}");
    let e = fails(&["measure", "--crs", "EPSG:4490", "POLYGON ((114 30,115 30,115 31,114 31))"]);
    assert!(e.contains("not closed"), "{e}");
    let e = fails(&["crs", "transform", "--from", "EPSG:4490", "--to", "EPSG:4547", "114", "95"]);
    assert!(e.contains("90"), "{e}");
}

#[test]
fn calendar_add_prints_deadlines_in_working_time() {
    let (_d, data) = init();
    let add = |args: &[&str]| {
        let mut a = vec!["calendar", "add", "--data", data.as_str()];
        a.extend_from_slice(args);
        ok(&a)
    };
    // Friday 10:00 + 1 working day before the 调休 Sunday of 2025; hours across the October week.
    assert_eq!(add(&["--start", "2025-09-26T10:00:00+08:00", "--days", "1"]), "2025-09-28T10:00:00+08:00\n");
    assert_eq!(add(&["--start", "2025-09-30T16:00", "--hours", "2"]), "2025-10-09T10:00:00+08:00\n");
    // Into a year without the official schedule: the deadline alone on stdout, a warning on stderr.
    let args = ["calendar", "add", "--data", &data, "--start", "2026-12-31T16:00", "--hours", "2"];
    let (good, out, err) = shikong(&args);
    assert!(good && out == "2027-01-01T10:00:00+08:00\n", "{out} {err}");
    assert!(err.contains("official holiday schedule"), "{err}");
    // The data folder's calendar edits (what `PUT /calendar/years/2027` stores) are used.
    write(
        std::path::Path::new(&data),
        "calendar.json",
        r#"{"years": {"2027": {"source": "test", "holidays": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"}]}}}"#,
    );
    let (good, out, err) = shikong(&args);
    assert!(good && out == "2027-01-04T10:00:00+08:00\n" && err.is_empty(), "{out} {err}");
    let e = fails(&["calendar", "add", "--data", &data, "--start", "tomorrow", "--days", "1"]);
    assert!(e.contains("--start") && e.contains("RFC 3339"), "{e}");
    let e = fails(&["calendar", "add", "--data", &data, "--start", "2025-09-26T10:00", "--days", "3651"]);
    assert!(e.contains("--days") && e.contains("3650"), "{e}");
    write(std::path::Path::new(&data), "calendar.json", r#"{"years": {"2027": {"source": "", "holiday": []}}}"#);
    let e = fails(&["calendar", "add", "--data", &data, "--start", "2025-09-26T10:00", "--days", "1"]);
    assert!(e.contains("calendar.json"), "{e}");
}
