//! The real server over HTTP on an ephemeral loopback port, read by real clients no one here wrote
//! (GDAL's OAPIF driver, OWSLib), and stopped by SIGTERM. The API itself (OGC API – Features
//! Parts 1–4, CRS, filtering, as-of and changes, errors, roles, metrics) is tested in process in
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
    assert_eq!(v["collections"], json!(["manhole"]));
    assert_eq!(v["codes"], json!(["HS-JG-0001", "HS-JG-0002"]));
    assert!(v["queryables"].as_array().unwrap().iter().any(|q| q == "名称"), "{v}");
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
