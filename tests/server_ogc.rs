//! The real server over HTTP on an ephemeral loopback port: OGC API – Features Parts 1–4, CRS,
//! filtering, as-of and changes, errors as problem+json — and real clients no one here wrote
//! (GDAL's OAPIF driver, OWSLib).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use common::server::Server;
use common::*;
use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR").trim_end_matches("/sync-server/server"))
}

struct Env {
    _dir: tempfile::TempDir,
    data: String,
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
    Env { _dir: dir, data, server, http, token }
}

fn login(http: &Client, server: &Server, user: &str) -> String {
    let r = http.post(server.url("/auth/login")).json(&json!({"username": user, "password": PASSWORD})).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "login {user}");
    let body: Json = r.json().unwrap();
    body["token"].as_str().unwrap().to_owned()
}

impl Env {
    fn get(&self, path: &str) -> (StatusCode, Json) {
        let r = self.http.get(self.server.url(path)).bearer_auth(&self.token).send().unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Json::String(text)))
    }

    fn ok(&self, path: &str) -> Json {
        let (status, body) = self.get(path);
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        body
    }

    fn problem(&self, path: &str, status: StatusCode) -> Json {
        let r = self.http.get(self.server.url(path)).bearer_auth(&self.token).send().unwrap();
        assert_eq!(r.status(), status, "{path}");
        assert_eq!(r.headers()["content-type"], "application/problem+json", "{path}");
        r.json().unwrap()
    }
}

fn codes(fc: &Json) -> Vec<String> {
    let mut v: Vec<String> = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["properties"]["code"].as_str().unwrap().to_owned())
        .collect();
    v.sort();
    v
}

fn rels(doc: &Json) -> Vec<String> {
    doc["links"].as_array().unwrap().iter().map(|l| l["rel"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn core_resources_have_the_ogc_shape() {
    let env = start(&[]);
    let landing = env.ok("/");
    for rel in ["self", "service-desc", "conformance", "data"] {
        assert!(rels(&landing).contains(&rel.to_owned()), "{rel}");
    }
    let conf = env.ok("/conformance");
    let classes: Vec<&str> = conf["conformsTo"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for c in [
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-2/1.0/conf/crs",
        "ogcapi-features-3/1.0/conf/filter",
        "ogcapi-features-4/1.0/conf/create-replace-delete",
    ] {
        assert!(classes.iter().any(|x| x.contains(c)), "{c}");
    }
    let api = env.ok("/api");
    assert_eq!(api["openapi"], "3.0.3");
    assert!(api["paths"]["/collections/{collectionId}/items"]["get"].is_object());
    let cols = env.ok("/collections");
    let c = &cols["collections"][0];
    assert_eq!((c["id"].as_str(), c["title"].as_str()), (Some("manhole"), Some("井盖")));
    assert_eq!(c["storageCrs"], "http://www.opengis.net/def/crs/EPSG/0/4490");
    assert!(c["crs"].as_array().unwrap().iter().any(|x| x == "http://www.opengis.net/def/crs/EPSG/0/4547"));
    let bbox = &c["extent"]["spatial"]["bbox"][0];
    assert!((bbox[0].as_f64().unwrap() - 114.3421).abs() < 1e-3, "{bbox}");
    let q = env.ok("/collections/manhole/queryables");
    assert_eq!(q["properties"]["depth"]["type"], "number");
    assert_eq!(q["properties"]["installed"]["format"], "date");
    assert_eq!(q["properties"]["名称"]["type"], "string");
    // HTML for browsers, Chinese first.
    let r = env
        .http
        .get(env.server.url("/collections/manhole/items"))
        .bearer_auth(&env.token)
        .header("accept", "text/html")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().unwrap();
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("关山大道井盖"), "{html}");
    assert_eq!(env.http.get(env.server.url("/healthz")).send().unwrap().status(), StatusCode::OK);
}

#[test]
fn items_page_filter_and_reproject() {
    let env = start(&[]);
    let page1 = env.ok("/collections/manhole/items?limit=2");
    assert_eq!(page1["numberReturned"], 2);
    let next = page1["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let page2: Json = env.http.get(&next).bearer_auth(&env.token).send().unwrap().json().unwrap();
    assert_eq!(page2["numberReturned"], 1);
    assert!(!rels(&page2).contains(&"next".to_owned()));
    let mut all = codes(&page1);
    all.extend(codes(&page2));
    all.sort();
    assert_eq!(all, ["HS-JG-0001", "HS-JG-0002", "HS-JG-0003"]);

    assert_eq!(
        codes(&env.ok("/collections/manhole/items?bbox=114.34,30.50,114.36,30.52")),
        ["HS-JG-0001", "HS-JG-0002"]
    );
    let f = "/collections/manhole/items?filter=depth%20%3E%201.5%20AND%20material%20%3D%20'%E9%93%B8%E9%93%81'";
    assert_eq!(codes(&env.ok(f)), ["HS-JG-0003"]);
    let cql_json = r#"{"op":"=","args":[{"property":"good"},false]}"#;
    let url = format!(
        "/collections/manhole/items?filter-lang=cql2-json&filter={}",
        cql_json.replace('"', "%22").replace('{', "%7B").replace('}', "%7D").replace('[', "%5B").replace(']', "%5D")
    );
    assert_eq!(codes(&env.ok(&url)), ["HS-JG-0003"]);
    // Valid time (datetime) is the OGC temporal filter; features without valid time always match.
    assert_eq!(codes(&env.ok("/collections/manhole/items?datetime=2020-01-01T00:00:00Z")).len(), 3);

    // Part 2: a GK zone in its authority axis order (northing, easting) equals shikong-crs.
    let gk = env
        .http
        .get(env.server.url("/collections/manhole/items/HS-JG-0001?crs=http://www.opengis.net/def/crs/EPSG/0/4547"))
        .bearer_auth(&env.token)
        .send()
        .unwrap();
    assert_eq!(gk.headers()["content-crs"], "<http://www.opengis.net/def/crs/EPSG/0/4547>");
    let gk: Json = gk.json().unwrap();
    let expected = ok(&["crs", "transform", "--from", "EPSG:4490", "--to", "EPSG:4547", "114.3421", "30.5102"]);
    let e: Vec<f64> = expected.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let c = &gk["geometry"]["coordinates"];
    assert!(
        (c[0].as_f64().unwrap() - e[1]).abs() < 1e-3 && (c[1].as_f64().unwrap() - e[0]).abs() < 1e-3,
        "{c} vs {expected}"
    );
    // EPSG:4326 in its authority order: latitude first.
    let ll = env.ok("/collections/manhole/items/HS-JG-0001?crs=EPSG:4326");
    assert_eq!(ll["geometry"]["coordinates"], json!([30.5102, 114.3421]));
    // A bbox in a GK zone (bbox-crs) selects the same features.
    let p = |code: &str| -> Vec<f64> {
        let g = env.ok(&format!("/collections/manhole/items/{code}?crs=EPSG:4547"));
        g["geometry"]["coordinates"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
    };
    let (a, b) = (p("HS-JG-0001"), p("HS-JG-0002"));
    let bbox = format!(
        "{},{},{},{}",
        a[0].min(b[0]) - 10.0,
        a[1].min(b[1]) - 10.0,
        a[0].max(b[0]) + 10.0,
        a[1].max(b[1]) + 10.0
    );
    let url = format!("/collections/manhole/items?bbox={bbox}&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4547");
    assert_eq!(codes(&env.ok(&url)), ["HS-JG-0001", "HS-JG-0002"]);
}

#[test]
fn errors_are_problem_json_naming_the_parameter() {
    let env = start(&["--max-body", "2048"]);
    let p = env.problem("/collections/manhole/items?bbox=1,2,3", StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "bbox");
    assert!(p["detail"].as_str().unwrap().contains("expected 4 numbers"));
    let p = env.problem("/collections/manhole/items?filter=depth%20%3E%3E%201", StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "filter");
    let p = env.problem("/collections/manhole/items?filter=colour%3D'red'", StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("colour"));
    assert_eq!(env.problem("/collections/manhole/items?limit=0", StatusCode::BAD_REQUEST)["parameter"], "limit");
    assert_eq!(env.problem("/collections/manhole/items?colour=red", StatusCode::BAD_REQUEST)["parameter"], "colour");
    assert_eq!(env.problem("/collections/manhole/items?crs=EPSG:2000", StatusCode::BAD_REQUEST)["parameter"], "crs");
    assert_eq!(
        env.problem("/collections/manhole/items?as-of=yesterday", StatusCode::BAD_REQUEST)["parameter"],
        "as-of"
    );
    env.problem("/collections/nope/items", StatusCode::NOT_FOUND);
    env.problem("/collections/manhole/items/NOPE", StatusCode::NOT_FOUND);
    env.problem("/no/such/path", StatusCode::NOT_FOUND);
    // 413 for a body over --max-body.
    let big = json!({"type": "Feature", "geometry": null, "properties": {"名称": "x".repeat(5000)}});
    let r =
        env.http.post(env.server.url("/collections/manhole/items")).bearer_auth(&env.token).json(&big).send().unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

impl Env {
    fn token(&self, user: &str) -> String {
        login(&self.http, &self.server, user)
    }

    fn send(
        &self,
        req: reqwest::blocking::RequestBuilder,
        token: Option<&str>,
    ) -> (StatusCode, Json, reqwest::header::HeaderMap) {
        let req = match token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let r = req.send().unwrap();
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Json::String(text)), headers)
    }
}

#[test]
fn writes_are_versions_attributed_to_the_user() {
    let env = start(&[]);
    let li = env.token("li");
    let new = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.52]},
                     "properties": {"code": "HS-JG-0100", "名称": "新装井盖", "depth": 1.1, "material": "铸铁", "good": true}});
    let (st, created, h) = env.send(env.http.post(env.server.url("/collections/manhole/items")).json(&new), Some(&li));
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let location = h["location"].to_str().unwrap().to_owned();
    assert!(location.ends_with(created["id"].as_str().unwrap()), "{location}");
    assert_eq!(created["properties"]["version"], 1);
    let etag1 = h["etag"].to_str().unwrap().to_owned();

    // PATCH one field (JSON merge patch) → version 2; stale If-Match → 412.
    let patch = json!({"properties": {"depth": 2.4}});
    let (st, v2, h2) = env.send(env.http.patch(&location).header("if-match", &etag1).json(&patch), Some(&li));
    assert_eq!(st, StatusCode::OK, "{v2}");
    assert_eq!((v2["properties"]["version"].as_i64(), v2["properties"]["depth"].as_f64()), (Some(2), Some(2.4)));
    let (st, p, _) = env.send(env.http.patch(&location).header("if-match", &etag1).json(&patch), Some(&li));
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "{p}");
    // PUT replaces everything: fields left out become null.
    let replace = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.361, 30.521]},
                         "properties": {"code": "HS-JG-0100", "名称": "新装井盖（移位）", "depth": 2.4}});
    let (st, v3, _) =
        env.send(env.http.put(&location).header("if-match", h2["etag"].to_str().unwrap()).json(&replace), Some(&li));
    assert_eq!(st, StatusCode::OK, "{v3}");
    assert_eq!((v3["properties"]["version"].as_i64(), v3["properties"]["material"].clone()), (Some(3), Json::Null));
    // Validation errors name the field; nothing is written.
    let (st, p, _) = env.send(env.http.patch(&location).json(&json!({"properties": {"depth": "深"}})), Some(&li));
    assert_eq!((st, p["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("depth")), "{p}");
    let (st, p, _) = env.send(
        env.http.patch(&location).json(&json!({"geometry": {"type": "Point", "coordinates": [114.3, 91.0]}})),
        Some(&li),
    );
    assert_eq!((st, p["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("geometry")), "{p}");
    let (st, p, _) = env.send(env.http.post(env.server.url("/collections/manhole/items")).json(&new), Some(&li));
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    // DELETE; the past stays readable with as-of.
    let t2 = v2["properties"]["tx_time"].as_str().unwrap().to_owned();
    let (st, _, _) = env.send(env.http.delete(&location), Some(&li));
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = env.send(env.http.get(&location), Some(&li));
    assert_eq!(st, StatusCode::NOT_FOUND);
    let past = env.ok(&format!("/collections/manhole/items/HS-JG-0100?as-of={}", t2.replace('+', "%2B")));
    assert_eq!(past["properties"]["depth"], 2.4);
    let changes = env.ok(&format!("/collections/manhole/changes?from={}", t2.replace('+', "%2B")));
    assert_eq!(changes["summary"], json!({"created": 0, "modified": 0, "deleted": 1}));

    // The store's history attributes every version to `li`; the audit log shows the writes.
    let h = json(&ok(&["history", "--data", &env.data, "--layer", "manhole", "HS-JG-0100"]));
    let authors: Vec<_> =
        h["versions"].as_array().unwrap().iter().map(|v| v["tx"]["author"].as_str().unwrap().to_owned()).collect();
    assert_eq!(authors, ["li", "li", "li", "li"]);
    let admin = env.token("admin");
    let (st, log, _) = env.send(env.http.get(env.server.url("/admin/audit?user=li&layer=manhole")), Some(&admin));
    assert_eq!(st, StatusCode::OK, "{log}");
    let actions: Vec<_> =
        log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["feature.delete", "feature.update", "feature.update", "feature.create"]);
    let (st, logins, _) = env.send(env.http.get(env.server.url("/admin/audit?action=login.ok")), Some(&admin));
    assert_eq!(st, StatusCode::OK);
    assert!(logins["entries"].as_array().unwrap().iter().any(|e| e["actor"]["user"] == "li"), "{logins}");
    // Only admins read the audit log.
    let (st, _, _) = env.send(env.http.get(env.server.url("/admin/audit")), Some(&li));
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[test]
fn roles_and_tokens_decide_access() {
    let env = start(&[]);
    let zhang = env.token("zhang"); // citizen
    let items = env.server.url("/collections/manhole/items");
    // Anonymous: the layer is not public.
    let (st, p, h) = env.send(env.http.get(&items), None);
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    assert!(h.contains_key("www-authenticate"));
    // A bad token is 401, never silently anonymous.
    let (st, p, _) = env.send(env.http.get(&items), Some("not-a-token"));
    assert_eq!(st, StatusCode::UNAUTHORIZED, "{p}");
    // A citizen may not read or edit a protected layer.
    let (st, p, _) = env.send(env.http.get(&items), Some(&zhang));
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    let f = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.3, 30.5]}, "properties": {"名称": "x"}});
    let (st, p, _) = env.send(env.http.post(&items).json(&f), Some(&zhang));
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("citizen"), "{p}");
    // Anonymous writes need a login.
    let (st, _, _) = env.send(env.http.post(&items).json(&f), None);
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    // Public layer: anonymous and citizens read; marked for citizen reports: citizens create.
    let mut doc = json(&ok(&["layer", "show", "--data", &env.data, "manhole"]));
    doc["public"] = json!(true);
    doc["citizen_reports"] = json!(true);
    let path = env._dir.path().join("layer.json");
    std::fs::write(&path, doc.to_string()).unwrap();
    ok(&["layer", "edit", "--data", &env.data, "manhole", "--schema", s(&path)]);
    let (st, _, _) = env.send(env.http.get(&items), None);
    assert_eq!(st, StatusCode::OK);
    let (st, created, _) = env.send(env.http.post(&items).json(&f), Some(&zhang));
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let own = created["id"].as_str().unwrap();
    let (st, p, _) =
        env.send(env.http.patch(format!("{items}/{own}")).json(&json!({"properties": {"名称": "y"}})), Some(&zhang));
    assert_eq!(st, StatusCode::FORBIDDEN, "citizens create but do not edit: {p}");
    // An admin rule takes office staff's edit right away on this layer.
    let admin = env.token("admin");
    let (st, r, _) = env.send(
        env.http
            .put(env.server.url("/admin/layers/manhole/rules"))
            .json(&json!({"subject": "role:office", "grants": "read"})),
        Some(&admin),
    );
    assert_eq!(st, StatusCode::OK, "{r}");
    let (st, p, _) = env.send(
        env.http.patch(format!("{items}/HS-JG-0001")).json(&json!({"properties": {"depth": 9.0}})),
        Some(&env.token),
    );
    assert_eq!(st, StatusCode::FORBIDDEN, "{p}");
    // Logout revokes the token.
    let (st, _, _) = env.send(env.http.post(env.server.url("/auth/logout")), Some(&zhang));
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, p, _) = env.send(env.http.get(env.server.url("/auth/me")), Some(&zhang));
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(p["detail"].as_str().unwrap().contains("revoked"), "{p}");
    // Wrong password: 401 without saying whether the user exists.
    let r = env
        .http
        .post(env.server.url("/auth/login"))
        .json(&json!({"username": "li", "password": "wrong-password"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn citizens_register_and_wait_for_approval() {
    let env = start(&[]);
    let reg = json!({"username": "市民小赵", "password": "小赵的密码123", "contact": "138-0000-0000"});
    let (st, body, _) = env.send(env.http.post(env.server.url("/auth/register")).json(&reg), None);
    assert_eq!(st, StatusCode::ACCEPTED, "{body}");
    let r = env
        .http
        .post(env.server.url("/auth/login"))
        .json(&json!({"username": "市民小赵", "password": "小赵的密码123"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let p: Json = r.json().unwrap();
    assert!(p["detail"].as_str().unwrap().contains("awaiting approval"), "{p}");
    let admin = env.token("admin");
    let (_, pending, _) = env.send(env.http.get(env.server.url("/admin/users?status=pending")), Some(&admin));
    assert_eq!(pending["users"][0]["username"], "市民小赵");
    let (st, _, _) = env.send(env.http.post(env.server.url("/admin/users/市民小赵/approve")), Some(&admin));
    assert_eq!(st, StatusCode::OK);
    let t = env.token_for("市民小赵", "小赵的密码123");
    let (st, me, _) = env.send(env.http.get(env.server.url("/auth/me")), Some(&t));
    assert_eq!((st, me["role"].as_str()), (StatusCode::OK, Some("citizen")));
}

impl Env {
    fn token_for(&self, user: &str, password: &str) -> String {
        let r = self
            .http
            .post(self.server.url("/auth/login"))
            .json(&json!({"username": user, "password": password}))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned()
    }
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
fn metrics_count_requests_per_route_and_sigterm_stops_gracefully() {
    let env = start(&[]);
    for _ in 0..3 {
        env.ok("/collections/manhole/items?limit=1");
    }
    let m = env.http.get(env.server.url("/metrics")).send().unwrap().text().unwrap();
    let line = m
        .lines()
        .find(|l| {
            l.starts_with("shikong_http_requests_total")
                && l.contains("route=\"/collections/{collection_id}/items\"")
                && l.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("{m}"));
    assert!(line.ends_with(" 3"), "{line}");
    assert!(m.contains("shikong_http_request_duration_seconds_bucket"));
    let Env { server, .. } = env;
    assert!(server.stop(), "SIGTERM must end the server with exit status 0");
}
