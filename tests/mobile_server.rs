//! The server routes the mobile app needs, on the real `shikong serve` over loopback: enrolment by
//! QR code (JSON with the link and an SVG, or the PNG itself — decoded here with a real QR reader
//! and redeemed once), replica size estimates checked against replicas actually cut from the demo
//! data, and a citizen's own reports (我的上报) with the status the office set.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;

use common::server::Server;
use common::*;
use reqwest::StatusCode;
use reqwest::blocking::{Client, Response};
use serde_json::{Value as Json, json};
use shikong_protocol::enrolment::EnrolmentLink;

const PASSWORD: &str = "城管巡查2025!";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The reference data folder the demo loads; the test fails (never skips) without it.
fn reference() -> PathBuf {
    let d = root().join(".cache/data");
    assert!(
        d.join("china-division/areas.csv").is_file() && d.join("cpca/adcodes.csv").is_file(),
        "reference data missing in {}: run scripts/fetch-data.sh (scripts/test.sh does)",
        d.display()
    );
    d
}

struct Env {
    _dir: tempfile::TempDir,
    server: Server,
    http: Client,
}

/// A server over a fresh store (`demo`: the demo data) with these users.
fn start(demo: bool, users: &[(&str, &str)]) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    if demo {
        ok(&["demo", "--data", &data, "--source", s(&reference())]);
    } else {
        ok(&["init", "--data", &data]);
    }
    for (name, role) in users {
        ok_stdin(&["user", "add", "--data", &data, "--role", role, name], &format!("{PASSWORD}\n"));
    }
    let server = Server::start(&data, &[]);
    Env { _dir: dir, server, http: Client::new() }
}

impl Env {
    fn login(&self, user: &str) -> String {
        let r = self
            .http
            .post(self.server.url("/auth/login"))
            .json(&json!({"username": user, "password": PASSWORD}))
            .send()
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "login {user}");
        r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned()
    }

    fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut r = self.http.get(self.server.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    }

    fn post(&self, path: &str, token: Option<&str>, body: &Json) -> Response {
        let mut r = self.http.post(self.server.url(path)).json(body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().unwrap()
    }
}

/// Checks an error answer is problem+json with this status; returns its body.
#[track_caller]
fn problem(r: Response, status: StatusCode) -> Json {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Json = r.json().unwrap();
    assert_eq!(p["status"], status.as_u16(), "{p}");
    p
}

#[test]
fn enrolment_qr_code_enrols_a_device_once() {
    let env = start(false, &[("wang", "office"), ("张三", "inspector")]);
    let zhang = env.login("张三");

    // JSON: the code, and the link a device scans with its QR code drawn as SVG.
    let r = env.post("/auth/enrolments", Some(&zhang), &json!({}));
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let e: Json = r.json().unwrap();
    let link = EnrolmentLink::parse(e["qr"]["payload"].as_str().unwrap()).unwrap();
    assert_eq!(link.server, env.server.base);
    assert_eq!(link.code, e["code"].as_str().unwrap());
    assert_eq!(link.user.as_deref(), Some("张三"));
    assert!(e["qr"]["payload"].as_str().unwrap().contains("user=%E5%BC%A0%E4%B8%89"), "{e}");
    let svg = e["qr"]["svg"].as_str().unwrap();
    assert!(svg.contains("<svg") && svg.ends_with("</svg>"), "{svg}");

    // PNG: the QR code itself, read back by a real decoder.
    let r = env
        .http
        .post(env.server.url("/auth/enrolments"))
        .bearer_auth(&zhang)
        .header("accept", "image/png")
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.headers()["content-type"], "image/png");
    let header_code = r.headers()["x-shikong-enrolment-code"].to_str().unwrap().to_owned();
    assert!(r.headers()["x-shikong-enrolment-expires"].to_str().unwrap().ends_with("+08:00"));
    let png = r.bytes().unwrap();
    let img = image::load_from_memory(&png).unwrap().to_luma8();
    let width = img.width();
    assert!(width > 0 && width == img.height(), "{width}×{}", img.height());
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the PNG");
    let (meta, payload) = grids[0].decode().unwrap();
    assert_eq!(meta.ecc_level, 0, "error correction level M (rqrr numbers M as 0)");
    // 8 px per module and the 4-module quiet zone on each side.
    let modules = u32::try_from(meta.version.to_size()).unwrap();
    assert_eq!(width, (modules + 2 * 4) * 8, "{modules} modules");
    let scanned = EnrolmentLink::parse(&payload).unwrap();
    assert_eq!(scanned.code, header_code);
    assert_eq!(scanned.server, env.server.base);
    assert_eq!(scanned.user.as_deref(), Some("张三"));
    assert_ne!(scanned.code, link.code, "every request issues a new code");

    // The scanned code enrols a device for 张三 …
    let device = json!({"code": scanned.code, "device": {"name": "张三的手机", "platform": "android"}});
    let r = env.post("/auth/enrol", None, &device);
    assert_eq!(r.status(), StatusCode::OK);
    let enrolled: Json = r.json().unwrap();
    assert_eq!(enrolled["user"]["username"], "张三");
    let me: Json = env.get("/auth/me", enrolled["token"].as_str()).json().unwrap();
    assert_eq!(me["username"], "张三");
    assert_eq!(me["device"], enrolled["device"]);
    // … once.
    let p = problem(env.post("/auth/enrol", None, &device), StatusCode::UNAUTHORIZED);
    assert!(p["detail"].as_str().unwrap().contains("enrol"), "{p}");

    // Anonymous callers get no code.
    let p = problem(env.post("/auth/enrolments", None, &json!({})), StatusCode::UNAUTHORIZED);
    assert!(p["detail"].as_str().unwrap().contains("logged-in"), "{p}");
    // The route is in the API definition.
    let api: Json = env.get("/api", None).json().unwrap();
    assert!(api["paths"]["/auth/enrolments"]["post"]["responses"]["201"]["content"]["image/png"].is_object());
}

/// `(features per layer, file bytes)` of a replica cut for `req`.
fn cut(env: &Env, token: &str, req: &Json) -> (Vec<(String, u64)>, u64) {
    let r = env.post("/sync/replicas", Some(token), req);
    assert_eq!(r.status(), StatusCode::CREATED);
    let bytes = r.bytes().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.gpkg");
    std::fs::write(&path, &bytes).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let counts = req["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let l = l.as_str().unwrap();
            let n: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{l}\""), [], |r| r.get(0)).unwrap();
            (l.to_owned(), u64::try_from(n).unwrap())
        })
        .collect();
    (counts, bytes.len() as u64)
}

#[test]
fn replica_estimates_are_close_to_the_files_cut() {
    let env = start(true, &[("li", "inspector"), ("zhang", "citizen")]);
    let li = env.login("li");
    let area = "POLYGON((114.30 30.45,114.42 30.45,114.42 30.56,114.30 30.56,114.30 30.45))";
    let requests = [
        json!({"protocol": 1, "layers": ["manhole"]}),
        json!({"protocol": 1, "layers": ["manhole", "street_lamp", "road", "address_point", "poi"]}),
        json!({"protocol": 1, "layers": ["manhole", "street_lamp", "address_point"], "area": area}),
        json!({"protocol": 1, "layers": ["division"], "name": "行政区划"}),
        json!({"protocol": 1, "layers": ["citizen_report"]}),
    ];
    let mut worst: f64 = 0.0;
    for req in &requests {
        let started = std::time::Instant::now();
        let r = env.post("/sync/replicas/estimate", Some(&li), req);
        assert_eq!(r.status(), StatusCode::OK, "{req}");
        let est: Json = r.json().unwrap();
        let estimated_in = started.elapsed();
        let started = std::time::Instant::now();
        let (counts, real) = cut(&env, &li, req);
        let cut_in = started.elapsed();
        // Counts are exact.
        for (layer, n) in &counts {
            let l = est["layers"].as_array().unwrap().iter().find(|l| l["layer"] == layer.as_str()).unwrap();
            assert_eq!(l["features"], *n, "{layer}: {est}");
        }
        assert_eq!(est["features"], counts.iter().map(|c| c.1).sum::<u64>());
        let parts = est["overhead_bytes"].as_u64().unwrap()
            + est["gazetteer_bytes"].as_u64().unwrap()
            + est["layers"].as_array().unwrap().iter().map(|l| l["bytes"].as_u64().unwrap()).sum::<u64>();
        assert_eq!(est["bytes"], parts);
        let estimate = est["bytes"].as_u64().unwrap();
        let error = (estimate as f64 - real as f64) / real as f64;
        println!(
            "estimate {estimate} B, real {real} B ({:+.1} %), gazetteer {} B, layers {}; {estimated_in:?} vs cut {cut_in:?}",
            error * 100.0,
            est["gazetteer_bytes"],
            req["layers"]
        );
        worst = worst.max(error.abs());
        assert!(error.abs() < 0.5, "estimate {estimate} vs real {real} for {req}: {est}");
    }
    println!("worst estimate error: {:.1} %", worst * 100.0);

    // The same refusals as POST /sync/replicas.
    let unknown = json!({"protocol": 1, "layers": ["manhole", "no_such_layer"]});
    let p = problem(env.post("/sync/replicas/estimate", Some(&li), &unknown), StatusCode::NOT_FOUND);
    assert_eq!(p["sync"]["code"], "unknown-layer", "{p}");
    problem(env.post("/sync/replicas/estimate", None, &requests[0]), StatusCode::UNAUTHORIZED);
    let zhang = env.login("zhang");
    let p = problem(env.post("/sync/replicas/estimate", Some(&zhang), &requests[4]), StatusCode::FORBIDDEN);
    assert!(p["detail"].as_str().unwrap().contains("citizen_report"), "{p}");
    let bad_area = json!({"protocol": 1, "layers": ["manhole"], "area": "POINT(114 30)"});
    problem(env.post("/sync/replicas/estimate", Some(&li), &bad_area), StatusCode::BAD_REQUEST);
    let api: Json = env.get("/api", None).json().unwrap();
    assert!(api["paths"]["/sync/replicas/estimate"]["post"].is_object());
}

#[test]
fn citizens_see_their_own_reports_and_nobody_elses() {
    let users = [
        ("wang", "office"),
        ("li", "inspector"),
        ("citizen_a", "citizen"),
        ("citizen_b", "citizen"),
        ("citizen_c", "citizen"),
    ];
    let env = start(true, &users);
    let (a, b, c, office) = (env.login("citizen_a"), env.login("citizen_b"), env.login("citizen_c"), env.login("wang"));

    // A citizen uploads the report's photo (resumable attachment upload, one chunk here) …
    let photo: Vec<u8> = (0..50_000u32).map(|i| (i * 13 % 251) as u8).collect();
    let sha = shikong_replica::sha256_hex(&photo);
    let blob = env.server.url(&format!("/sync/blobs/{sha}"));
    let r = env
        .http
        .put(&blob)
        .bearer_auth(&a)
        .header("content-type", "image/jpeg")
        .header("content-range", format!("bytes 0-{}/{}", photo.len() - 1, photo.len()))
        .body(photo.clone())
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(env.http.head(&blob).bearer_auth(&a).send().unwrap().status(), StatusCode::OK);

    // … and reports through OGC API – Features, which citizens may create in but not read.
    let items = "/collections/citizen_report/items";
    let report = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.51]},
        "properties": {"类别": "1", "描述": "珞喻路井盖破损，有安全隐患", "地址": "珞喻路1037号", "照片": [sha]}});
    let r = env.post(items, Some(&a), &report);
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Json>().unwrap()["id"].as_str().unwrap().to_owned();
    problem(env.get(items, Some(&a)), StatusCode::FORBIDDEN);
    // C reports too.
    let r = env.post(
        items,
        Some(&c),
        &json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.37, 30.52]},
        "properties": {"类别": "2", "描述": "路灯不亮"}}),
    );
    assert_eq!(r.status(), StatusCode::CREATED);
    let c_id = r.json::<Json>().unwrap()["id"].as_str().unwrap().to_owned();

    // Nothing handled yet: no status, one version.
    let mine: Json = env.get("/reports/mine", Some(&a)).json().unwrap();
    assert_eq!(mine["type"], "FeatureCollection");
    assert_eq!(mine["features"].as_array().unwrap().len(), 1, "{mine}");
    let p = &mine["features"][0]["properties"];
    assert_eq!(p["status"], json!({"field": "办理状态", "code": null, "label": null}));
    assert_eq!(p["versions"], 1);

    // The office takes it on.
    let r = env
        .http
        .patch(env.server.url(&format!("{items}/{id}")))
        .bearer_auth(&office)
        .json(&json!({"properties": {"办理状态": "2"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let r = env.get("/reports/mine", Some(&a));
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let mine: Json = r.json().unwrap();
    assert_eq!(mine["numberReturned"], 1, "{mine}");
    let f = &mine["features"][0];
    assert_eq!(f["id"], id.as_str());
    assert_eq!(f["geometry"]["coordinates"], json!([114.36, 30.51]));
    let p = &f["properties"];
    assert_eq!(p["layer"], "citizen_report");
    assert_eq!(p["layer_title"], "群众上报");
    assert_eq!(p["status"], json!({"field": "办理状态", "code": "2", "label": "处理中"}));
    assert_eq!(p["versions"], 2);
    assert_eq!(p["deleted"], false);
    assert_eq!(p["fields"]["描述"], "珞喻路井盖破损，有安全隐患");
    assert_eq!(p["fields"]["照片"], json!([sha]));
    let (created, updated) = (p["created_at"].as_str().unwrap(), p["updated_at"].as_str().unwrap());
    assert!(created.ends_with("+08:00") && updated.ends_with("+08:00"), "{p}");
    assert!(updated > created, "{p}");

    // Restricting by id: A's own id, C's id (not A's: absent), a bad id.
    let only: Json = env.get(&format!("/reports/mine?id={id}&id={c_id}"), Some(&a)).json().unwrap();
    assert_eq!(only["numberReturned"], 1, "{only}");
    assert_eq!(only["features"][0]["id"], id.as_str());
    let none: Json = env.get(&format!("/reports/mine?id={c_id}"), Some(&a)).json().unwrap();
    assert_eq!(none["numberReturned"], 0, "{none}");
    let p = problem(env.get("/reports/mine?id=not-a-uuid", Some(&a)), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "id");
    problem(env.get("/reports/mine?status=1", Some(&a)), StatusCode::BAD_REQUEST);

    // B, who reported nothing, sees an empty list; C sees only C's report, still unhandled; staff
    // created none (they read the layer through OGC API – Features instead).
    let nothing: Json = env.get("/reports/mine", Some(&b)).json().unwrap();
    assert_eq!(nothing["features"], json!([]), "{nothing}");
    assert_eq!(nothing["numberReturned"], 0);
    let theirs: Json = env.get("/reports/mine", Some(&c)).json().unwrap();
    assert_eq!(theirs["numberReturned"], 1);
    assert_eq!(theirs["features"][0]["id"], c_id.as_str());
    assert_eq!(theirs["features"][0]["properties"]["status"]["code"], Json::Null);
    assert_eq!(theirs["features"][0]["properties"]["versions"], 1);
    let staff: Json = env.get("/reports/mine", Some(&office)).json().unwrap();
    assert_eq!(staff["features"], json!([]));
    let inspector: Json = env.get("/reports/mine", Some(&env.login("li"))).json().unwrap();
    assert_eq!(inspector["features"], json!([]));

    // Anonymous callers are told to log in.
    problem(env.get("/reports/mine", None), StatusCode::UNAUTHORIZED);
    let api: Json = env.get("/api", None).json().unwrap();
    assert!(api["paths"]["/reports/mine"]["get"].is_object());
}
