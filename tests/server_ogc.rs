//! The real server over HTTP on an ephemeral loopback port, read by real clients no one here wrote
//! (GDAL's OAPIF driver, OWSLib, frost-sta-client for the SensorThings API), and stopped by
//! SIGTERM. The API itself (OGC API – Features Parts 1–4, CRS, filtering, as-of and changes,
//! errors, roles, metrics; the SensorThings API) is tested in process in
//! `sync-server/http/tests/`.

use crate::common::server::Server;
use crate::common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

struct Env {
    _dir: tempfile::TempDir,
    server: Server,
    http: Client,
    /// Token of the office user `wang` (reads and edits every layer by default).
    token: String,
}

const USERS: [(&str, &str); 4] = [("admin", "admin"), ("wang", "office"), ("li", "inspector"), ("zhang", "citizen")];
const PASSWORD: &str = "城管巡查2025!";

fn start(extra: &[&str]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]);
    for (name, role) in USERS {
        ok_stdin(&["user", "add", "--data", &data, "--role", role, name], &format!("{PASSWORD}\n"));
    }
    let server = Server::start(&data, extra);
    let http = Client::new();
    let token = login(&http, &server, "wang");
    Env { _dir: dir, server, http, token }
}

fn login(http: &Client, server: &Server, user: &str) -> String {
    let r = http.post(server.url("/auth/login")).json(&json!({"username": user, "password": PASSWORD})).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "login {user}");
    let body: Json = r.json().unwrap();
    body["token"].as_str().unwrap().to_owned()
}

#[test]
fn gdal_oapif_driver_reads_the_live_server() {
    let env = start(&[]);
    let url = format!("OAPIF:{}", env.server.base);
    let header = format!("GDAL_HTTP_HEADERS=Authorization: Bearer {}", env.token);
    let mut c = tool("ogrinfo", "gdal-bin");
    c.args(["--config", "GDAL_HTTP_HEADERS", &header["GDAL_HTTP_HEADERS=".len()..], &url]);
    let list = run_tool(c);
    assert!(list.contains("manhole (title: 井盖) (Point)"), "{list}");
    let mut c = tool("ogrinfo", "gdal-bin");
    c.args([
        "--config",
        "GDAL_HTTP_HEADERS",
        &header["GDAL_HTTP_HEADERS=".len()..],
        "-q",
        &url,
        "manhole",
        "-spat",
        "114.34",
        "30.50",
        "114.36",
        "30.52",
    ]);
    let feats = run_tool(c);
    assert!(feats.contains("珞喻路井盖") && feats.contains("关山大道井盖"), "{feats}");
    assert!(!feats.contains("光谷广场井盖"), "the spatial filter must exclude it: {feats}");
}

#[test]
fn owslib_features_client_reads_collections_and_items() {
    let env = start(&[]);
    let script = r#"
import json, sys
from owslib.ogcapi.features import Features
w = Features(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
cols = [c["id"] for c in w.collections()["collections"]]
items = w.collection_items("manhole", bbox=[114.34, 30.50, 114.36, 30.52], limit=10)
q = w.collection_queryables("manhole")
print(json.dumps({"collections": cols, "codes": sorted(f["properties"]["code"] for f in items["features"]), "queryables": sorted(q["properties"])}, ensure_ascii=False))
"#;
    let check = std::process::Command::new("python3").args(["-c", "import owslib"]).status().unwrap();
    assert!(check.success(), "OWSLib is not installed (pip install owslib; scripts/test.sh installs it)");
    let mut c = tool("python3", "python3");
    c.args(["-c", script, &env.server.base, &env.token]);
    let out = run_tool(c);
    let v = json(out.lines().last().unwrap());
    // The catalog (OGC API – Records) is listed after the layers.
    assert_eq!(v["collections"], json!(["manhole", "catalog"]));
    assert_eq!(v["codes"], json!(["HS-JG-0001", "HS-JG-0002"]));
    assert!(v["queryables"].as_array().unwrap().iter().any(|q| q == "名称"), "{v}");
}

/// OWSLib's OGC API – Processes client: lists and describes the processes, executes `hotspot`
/// synchronously (a results document) and `dbscan` asynchronously (`Prefer: respond-async`),
/// then follows the job to its results as any OGC client would.
#[test]
fn owslib_processes_client_runs_sync_and_async_jobs() {
    let env = start(&[]);
    let script = r#"
import json, sys, time
from owslib.ogcapi.processes import Processes
p = Processes(sys.argv[1], headers={"Authorization": "Bearer " + sys.argv[2]})
ids = [x["id"] for x in p.processes()]
desc = p.process("hotspot")
sync = p.execute("hotspot", {"collection": "manhole", "field": "depth", "weights": {"type": "knn", "k": 1}, "star": True})
status = p.execute("dbscan", {"collection": "manhole", "eps": 1500, "min_samples": 2}, async_=True)
job = status["jobID"]
location = p.response_headers["Location"]
for _ in range(600):
    s = p._request(path="jobs/" + job)
    if s["status"] in ("successful", "failed", "dismissed"):
        break
    time.sleep(0.05)
res = p._request(path="jobs/" + job + "/results")
print(json.dumps({"ids": ids, "inputs": sorted(desc["inputs"]), "sync": {f["properties"]["code"]: f["properties"]["gi_z"] for f in sync["result"]["features"]},
    "first": status["status"], "location": location, "job": job, "final": s["status"], "progress": s["progress"],
    "clusters": {f["properties"]["code"]: f["properties"]["cluster"] for f in res["result"]["features"]}}, ensure_ascii=False))
"#;
    let check = std::process::Command::new("python3").args(["-c", "import owslib"]).status().unwrap();
    assert!(check.success(), "OWSLib is not installed (pip install owslib; scripts/test.sh installs it)");
    let mut c = tool("python3", "python3");
    c.args(["-c", script, &env.server.base, &env.token]);
    let out = run_tool(c);
    let v = json(out.lines().last().unwrap());
    for id in ["hotspot", "dbscan", "local-moran"] {
        assert!(v["ids"].as_array().unwrap().iter().any(|x| x == id), "{v}");
    }
    for input in ["collection", "field", "weights", "star"] {
        assert!(v["inputs"].as_array().unwrap().iter().any(|x| x == input), "{v}");
    }
    assert_eq!(v["sync"].as_object().unwrap().len(), 3, "{v}");
    assert!(v["sync"]["HS-JG-0001"].is_f64(), "{v}");
    assert!(["accepted", "running", "successful"].contains(&v["first"].as_str().unwrap()), "{v}");
    assert_eq!(v["location"], format!("{}/jobs/{}", env.server.base, v["job"].as_str().unwrap()));
    assert_eq!((v["final"].as_str(), v["progress"].as_u64()), (Some("successful"), Some(100)), "{v}");
    // The two manholes 1 km apart cluster; the one 6 km away is noise.
    assert_eq!(v["clusters"], json!({"HS-JG-0001": 0, "HS-JG-0002": 0, "HS-JG-0003": -1}));
}

/// FROST-Server's own Python client (frost-sta-client, from PyPI; `scripts/deps.sh test`
/// installs it) drives the SensorThings API: a Thing with its Location, a Sensor, an
/// ObservedProperty, a Datastream linking them, Observations one by one and as a dataArray, a
/// PUT and a JSON Patch, then queries with `$filter`, `$orderby`, `$top`, `$count`, `$expand`
/// (with nested `$select`), following `@iot.nextLink` (`tests/fixtures/sta_client.py`).
#[test]
fn frost_sta_client_writes_and_reads_the_sensorthings_api() {
    let env = start(&[]);
    let check = std::process::Command::new("python3").args(["-c", "import frost_sta_client"]).status().unwrap();
    assert!(
        check.success(),
        "frost-sta-client is not installed (pip install frost-sta-client; scripts/deps.sh test installs it)"
    );
    let mut c = tool("python3", "python3");
    c.args([&fixture("sta_client.py"), &format!("{}/sta/v1.1", env.server.base), &env.token]);
    let out = run_tool(c);
    let v = json(out.lines().last().unwrap());
    assert!(v["thing"].is_i64(), "{v}");
    assert_eq!(v["thing_description"], "倾斜传感器（已校准）", "PUT");
    assert_eq!(v["sensor_description"], "tilt meter", "JSON Patch");
    assert_eq!(v["locations"], json!(["珞喻路井盖"]));
    assert_eq!(v["location"]["coordinates"], json!([114.35, 30.51]));
    assert_eq!(v["datastreams"], json!(["井盖倾角"]));
    assert_eq!(v["unit"], "deg");
    assert_eq!(v["high_page"], json!([5.0, 4.0]), "$filter, $orderby desc, $top: {v}");
    assert_eq!(v["high_count"], 5);
    assert_eq!(v["high_all"], json!([5.0, 4.0, 12.5, 3.0, 7.25]), "pages through @iot.nextLink: {v}");
    assert_eq!(v["every"], json!([1.5, 2.0, 7.25, 3.0, 12.5, 4.0, 5.0]));
    let links = v["data_array"].as_array().unwrap();
    assert_eq!(links.len(), 2, "{v}");
    assert!(links.iter().all(|l| l.as_str().is_some_and(|l| l.contains("/Observations('"))), "{v}");
    assert_eq!(v["foi"], json!(["珞喻路井盖"]), "generated from the Thing's Location: {v}");
    assert_eq!(v["first_foi"], "珞喻路井盖");
}

#[test]
fn sigterm_stops_gracefully() {
    let env = start(&[]);
    for _ in 0..3 {
        let r =
            env.http.get(env.server.url("/collections/manhole/items?limit=1")).bearer_auth(&env.token).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
    let Env { server, .. } = env;
    assert!(server.stop(), "SIGTERM must end the server with exit status 0");
}
