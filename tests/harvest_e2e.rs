//! Harvesting a real second server: `shikong serve` A holds public layers; B's administrator adds A's
//! `/csw` as a harvest source and runs it. B gets every record A's CSW offers an anonymous
//! caller (counted from A's own `resultType=hits`), finds them through its own Records API, and a
//! re-run after a new layer at A is incremental: the new records added, the rest unchanged. The
//! counts of changes, removals and failures are tested in process
//! (`sync-server/http/tests/harvest.rs`).

use crate::common::server::Server;
use crate::common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

const PASSWORD: &str = "城管巡查2025!";

fn csw_hits(http: &Client, server: &Server) -> u64 {
    let url = server.url("/csw?service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=hits");
    let xml = http.get(url).send().unwrap().text().unwrap();
    let at = xml.find("numberOfRecordsMatched=\"").unwrap_or_else(|| panic!("{xml}")) + 24;
    xml[at..].split('"').next().unwrap().parse().unwrap()
}

/// Makes a layer readable by anyone, so A's catalogue offers its records to the harvester (which
/// calls without an account).
fn make_public(dir: &std::path::Path, data: &str, layer: &str) {
    let mut def = json(&ok(&["layer", "show", "--data", data, layer]));
    def["public"] = json!(true);
    let schema = write(dir, &format!("{layer}.json"), &def.to_string());
    ok(&["layer", "edit", "--data", data, layer, "--schema", s(&schema)]);
}

fn counts(run: &Json) -> [u64; 4] {
    ["added", "updated", "removed", "unchanged"].map(|k| run[k].as_u64().unwrap_or_else(|| panic!("{k}: {run}")))
}

#[test]
fn a_second_servers_csw_is_harvested_completely_and_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let a_data = s(&dir.path().join("a")).to_owned();
    let b_data = s(&dir.path().join("b")).to_owned();
    ok(&["init", "--data", &a_data]);
    ok(&["import", "--data", &a_data, "--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]);
    make_public(dir.path(), &a_data, "manhole");
    ok(&["init", "--data", &b_data]);
    ok_stdin(&["user", "add", "--data", &b_data, "--role", "admin", "admin"], &format!("{PASSWORD}\n"));
    let a = Server::start(&a_data, &[]);
    let b = Server::start(&b_data, &[]);
    let http = Client::new();
    let r = http.post(b.url("/auth/login")).json(&json!({"username": "admin", "password": PASSWORD})).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let admin = r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned();

    let body = json!({"url": a.url("/csw"), "type": "csw", "title": "A 区目录"});
    let r = http.post(b.url("/harvests")).bearer_auth(&admin).json(&body).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Json>().unwrap()["id"].as_str().unwrap().to_owned();
    let run = |http: &Client| -> Json {
        let r = http.post(b.url(&format!("/harvests/{id}/run?wait=true"))).bearer_auth(&admin).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Json>().unwrap()["run"].clone()
    };

    let offered = csw_hits(&http, &a);
    assert!(offered > 0);
    let first = run(&http);
    assert!(first["error"].is_null(), "{first}");
    assert_eq!(counts(&first), [offered, 0, 0, 0], "{first}");
    // B serves them: every harvested record is in B's catalog under `harvest:{id}:`.
    let rec = http
        .get(b.url(&format!("/collections/catalog/items/harvest:{id}:process:hotspot")))
        .bearer_auth(&admin)
        .send()
        .unwrap();
    assert_eq!(rec.status(), StatusCode::OK, "{}", rec.text().unwrap_or_default());
    let q = shikong_protocol::url::encode_component("分析");
    let page: Json = http
        .get(b.url(&format!("/collections/catalog/items?q={q}&limit=1000")))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: Vec<&str> = page["features"].as_array().unwrap().iter().filter_map(|f| f["id"].as_str()).collect();
    assert!(ids.iter().any(|i| i.starts_with(&format!("harvest:{id}:"))), "{ids:?}");

    // A new layer at A: the re-run adds what A now offers more, the rest unchanged.
    ok(&["import", "--data", &a_data, "--layer", "road", "--title", "道路", &fixture("roads.geojson")]);
    make_public(dir.path(), &a_data, "road");
    let now = csw_hits(&http, &a);
    assert!(now > offered, "A offers the new layer's records ({offered} → {now})");
    let second = run(&http);
    assert!(second["error"].is_null(), "{second}");
    assert_eq!(counts(&second), [now - offered, 0, 0, offered], "{second}");
    let listed: Json = http.get(b.url("/harvests")).bearer_auth(&admin).send().unwrap().json().unwrap();
    assert_eq!(listed["harvests"][0]["records"].as_u64(), Some(now), "{listed}");
}

/// pycsw (the OGC reference CSW, from PyPI) serving `n` Dublin Core records, its process ended
/// when dropped.
struct Pycsw {
    child: std::process::Child,
    url: String,
    venv: std::path::PathBuf,
    cfg: std::path::PathBuf,
}

impl Drop for Pycsw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn pycsw_record(i: usize, title: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<csw:Record xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dct="http://purl.org/dc/terms/" xmlns:ows="http://www.opengis.net/ows">
<dc:identifier>pyc-{i:04}</dc:identifier><dc:title>{title}</dc:title><dc:type>dataset</dc:type>
<dc:subject>pycswharvest</dc:subject><dct:abstract>pycsw record {i}</dct:abstract><dct:modified>2026-01-01</dct:modified>
<ows:BoundingBox crs="urn:x-ogc:def:crs:EPSG:6.11:4326"><ows:LowerCorner>30 114</ows:LowerCorner><ows:UpperCorner>31 115</ows:UpperCorner></ows:BoundingBox>
</csw:Record>"#
    )
}

/// Installs pycsw 2.6.2 into a venv under the target folder once (PyPI), loads `n` records and
/// serves them with its WSGI reference server (50 records a page at most).
fn start_pycsw(dir: &std::path::Path, n: usize) -> Pycsw {
    let venv = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pycsw-venv");
    let admin = venv.join("bin/pycsw-admin.py");
    if !admin.exists() {
        let mut c = tool("python3", "python3-venv");
        c.args(["-m", "venv", s(&venv)]);
        run_tool(c);
        let mut c = std::process::Command::new(venv.join("bin/pip"));
        c.args(["install", "-q", "pycsw==2.6.2", "sqlalchemy<2"]);
        run_tool(c);
    }
    let port = crate::common::desktop::free_port();
    let recs = dir.join("pycsw-records");
    std::fs::create_dir_all(&recs).unwrap();
    for i in 1..=n {
        write(&recs, &format!("r{i}.xml"), &pycsw_record(i, &format!("pycsw record {i}")));
    }
    let home = s(dir);
    let cfg = write(
        dir,
        "pycsw.cfg",
        &format!(
            "[server]\nhome={home}\nurl=http://127.0.0.1:{port}/\nmimetype=application/xml; charset=UTF-8\nencoding=UTF-8\n\
             language=en-US\nmaxrecords=50\nloglevel=WARNING\nlogfile={home}/pycsw.log\npretty_print=false\n\
             gzip_compresslevel=0\ndomainquerytype=list\ndomaincounts=false\nprofiles=apiso\n\n\
             [manager]\ntransactions=false\nallowed_ips=127.0.0.1\n\n[metadata:main]\nidentification_title=pycsw\n\
             identification_abstract=t\nidentification_keywords=a\nidentification_keywords_type=theme\n\
             identification_fees=None\nidentification_accessconstraints=None\nprovider_name=x\nprovider_url=http://x\n\
             contact_name=x\ncontact_position=x\ncontact_address=x\ncontact_city=x\ncontact_stateorprovince=x\n\
             contact_postalcode=x\ncontact_country=x\ncontact_phone=x\ncontact_fax=x\ncontact_email=x@x\n\
             contact_url=http://x\ncontact_hours=x\ncontact_instructions=x\ncontact_role=pointOfContact\n\n\
             [repository]\ndatabase=sqlite:///{home}/pycsw.db\ntable=records\n"
        ),
    );
    for args in [vec!["-c", "setup_db", "-f", s(&cfg)], vec!["-c", "load_records", "-f", s(&cfg), "-p", s(&recs)]] {
        let mut c = std::process::Command::new(venv.join("bin/python"));
        c.arg(&admin).args(args);
        run_tool(c);
    }
    let child = std::process::Command::new(venv.join("bin/python"))
        .args(["-m", "pycsw.wsgi", &port.to_string()])
        .env("PYCSW_CONFIG", &cfg)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start pycsw");
    let url = format!("http://127.0.0.1:{port}/");
    let caps = format!("{url}?service=CSW&request=GetCapabilities");
    let up = (0..300).any(|_| {
        let ok = reqwest::blocking::get(&caps).is_ok_and(|r| r.status().is_success());
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        ok
    });
    assert!(up, "pycsw did not start on port {port}");
    Pycsw { child, url, venv, cfg }
}

#[test]
fn a_pycsw_catalogue_is_harvested_completely_and_incrementally() {
    let dir = tempfile::tempdir().unwrap();
    let py = start_pycsw(dir.path(), 130);
    let data = s(&dir.path().join("b")).to_owned();
    ok(&["init", "--data", &data]);
    ok_stdin(&["user", "add", "--data", &data, "--role", "admin", "admin"], &format!("{PASSWORD}\n"));
    let b = Server::start(&data, &[]);
    let http = Client::new();
    let r = http.post(b.url("/auth/login")).json(&json!({"username": "admin", "password": PASSWORD})).send().unwrap();
    let admin = r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned();
    let body = json!({"url": py.url, "type": "csw", "title": "pycsw"});
    let r = http.post(b.url("/harvests")).bearer_auth(&admin).json(&body).send().unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Json>().unwrap()["id"].as_str().unwrap().to_owned();
    let run = || -> Json {
        let r = http.post(b.url(&format!("/harvests/{id}/run?wait=true"))).bearer_auth(&admin).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Json>().unwrap()["run"].clone()
    };
    // 130 records in pycsw's pages of 50, followed by nextRecord.
    let first = run();
    assert_eq!(counts(&first), [130, 0, 0, 0], "{first}");
    let page: Json = http
        .get(b.url("/collections/catalog/items?q=pycswharvest&limit=1"))
        .bearer_auth(&admin)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(page["numberMatched"], 130, "{page}");
    assert_eq!(counts(&run()), [0, 0, 0, 130]);
    // One record changed at pycsw: only it is rewritten.
    let changed = dir.path().join("changed");
    std::fs::create_dir_all(&changed).unwrap();
    write(&changed, "r1.xml", &pycsw_record(1, "pycsw record 1 revised"));
    let mut c = std::process::Command::new(py.venv.join("bin/python"));
    c.arg(py.venv.join("bin/pycsw-admin.py")).args(["-c", "load_records", "-f", s(&py.cfg), "-p", s(&changed), "-y"]);
    run_tool(c);
    assert_eq!(counts(&run()), [0, 1, 0, 129]);
}
