//! Offline sync end to end: the real `shikong serve` on loopback and three devices driven through
//! the `shikong replica` command line; resumable attachment upload over real HTTP; and a crash
//! test — the server killed during a large push, restarted, and the device resyncs: nothing lost,
//! nothing duplicated.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::common::server::{Server, TestCa};
use crate::common::*;
use serde_json::{Value as Json, json};
use shikong_model::Bbox;
use shikong_replica::{EditMeta, FeatureKey, Replica};

const WORLD: Bbox = Bbox { min_x: 73.0, min_y: 3.0, max_x: 136.0, max_y: 54.0 };

fn setup(users: &[&str]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]);
    for u in users {
        ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", u], "巡查员的密码123\n");
    }
    (dir, data)
}

fn token(data: &str, user: &str) -> String {
    ok(&["user", "token", "--data", data, user]).trim().to_owned()
}

/// Every live feature of a replica file: code → properties (as the GeoJSON the server would give).
fn replica_state(path: &std::path::Path) -> BTreeMap<String, (Json, Option<String>)> {
    let r = Replica::open(path).unwrap();
    r.query_bbox("manhole", &WORLD)
        .unwrap()
        .into_iter()
        .map(|f| {
            let depth = f.feature.properties.get("depth").map_or(Json::Null, shikong_model::Value::to_json);
            let material = f.feature.properties.get("material").map(shikong_model::Value::to_text);
            (f.feature.code, (depth, material))
        })
        .collect()
}

fn server_state(server: &Server, token: &str) -> BTreeMap<String, (Json, Option<String>)> {
    let fc: Json = server
        .http
        .get(server.url("/collections/manhole/items?limit=1000"))
        .bearer_auth(token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = &f["properties"];
            (p["code"].as_str().unwrap().to_owned(), (p["depth"].clone(), p["material"].as_str().map(str::to_owned)))
        })
        .collect()
}

#[test]
fn three_devices_sync_through_the_real_server() {
    three_devices(false);
}

/// The same over HTTPS: `shikong serve --tls-cert/--tls-key` with a test CA's certificate, the
/// devices given the CA with `--ca-cert`.
#[test]
fn three_devices_sync_over_https_with_a_test_ca() {
    three_devices(true);
}

fn three_devices(tls: bool) {
    let (dir, data) = setup(&["li", "wu", "zhao"]);
    let ca = tls.then(|| TestCa::new(dir.path()));
    let server = match &ca {
        Some(ca) => Server::start_tls(&data, &[], ca),
        None => Server::start(&data, &[]),
    };
    let ca_args: Vec<&str> = ca.as_ref().map(|c| c.arg().to_vec()).unwrap_or_default();
    let devices: Vec<(String, std::path::PathBuf)> = ["li", "wu", "zhao"]
        .iter()
        .map(|u| {
            let t = token(&data, u);
            let path = dir.path().join(format!("{u}.gpkg"));
            let mut a = vec!["replica", "create", "--server", &server.base, "--token", &t, "--layers", "manhole"];
            a.extend_from_slice(&ca_args);
            a.push(s(&path));
            ok(&a);
            (t, path)
        })
        .collect();
    let edit = |i: usize, args: &[&str]| {
        let mut a = vec!["replica", "edit", s(&devices[i].1), "--layer", "manhole"];
        a.extend_from_slice(args);
        ok(&a)
    };
    let sync = |i: usize| {
        let mut a = vec!["replica", "sync", "--token", &devices[i].0];
        a.extend_from_slice(&ca_args);
        a.push(s(&devices[i].1));
        ok(&a)
    };
    // Offline: different fields of one feature, the same field on two devices, a creation, and a
    // deletion racing an edit.
    edit(0, &["--code", "HS-JG-0001", "--set", "depth=2.5"]);
    edit(1, &["--code", "HS-JG-0001", "--set", "material=球墨铸铁", "--set", "depth=3.0"]);
    edit(
        2,
        &[
            "--create",
            "--point",
            "114.37,30.51",
            "--set",
            "code=HS-JG-0100",
            "--set",
            "名称=新井盖",
            "--set",
            "depth=1.1",
        ],
    );
    edit(0, &["--code", "HS-JG-0003", "--delete"]);
    edit(2, &["--code", "HS-JG-0003", "--set", "depth=9.9"]);
    let first = sync(0);
    assert!(first.contains("pushed 2 entities (2 accepted"), "{first}");
    sync(1);
    sync(2);
    for i in 0..3 {
        sync(i);
    }
    // Everyone holds the server's state.
    let office = token(&data, "li");
    let expected = server_state(&server, &office);
    assert_eq!(expected.len(), 3, "{expected:?}"); // 0001, 0002, 0100 (0003 deleted: delete wins)
    assert_eq!(expected["HS-JG-0001"].1.as_deref(), Some("球墨铸铁"), "both devices' fields are kept");
    assert_eq!(expected["HS-JG-0100"].0, json!(1.1));
    for (_, path) in &devices {
        assert_eq!(replica_state(path), expected, "{}", path.display());
        let info = ogrinfo(&["-so", "-al", s(path)]);
        assert!(info.contains("Feature Count: 3") && !info.contains("Warning"), "{info}");
    }
    // The depth conflict is listed on every device with both values, and the raced deletion on the
    // device whose edit lost.
    for (i, (_, path)) in devices.iter().enumerate() {
        let c = ok(&["replica", "conflicts", s(path)]);
        assert!(c.contains("HS-JG-0001\tdepth\t"), "device {i}: {c}");
        assert!(c.contains("2.5") && c.contains("3.0") || c.contains("2.5") && c.contains('3'), "device {i}: {c}");
    }
    let c = ok(&["replica", "conflicts", s(&devices[2].1)]);
    assert!(c.contains("HS-JG-0003\tdeleted"), "{c}");
    // Resolution is an edit too: it syncs and clears the conflict everywhere.
    ok(&[
        "replica",
        "resolve",
        s(&devices[1].1),
        "--layer",
        "manhole",
        "--code",
        "HS-JG-0001",
        "--field",
        "depth",
        "--value",
        "3.0",
    ]);
    for i in [1, 0, 2] {
        sync(i);
    }
    for (_, path) in &devices {
        let c = ok(&["replica", "conflicts", s(path)]);
        assert!(!c.contains("HS-JG-0001"), "{c}");
    }
    assert_eq!(server_state(&server, &office)["HS-JG-0001"].0, json!(3.0));
    // The store's history has every version with its author, and the edit that lost to the delete.
    let h = json(&ok(&["history", "--data", &data, "--layer", "manhole", "HS-JG-0001"]));
    let authors: Vec<_> =
        h["versions"].as_array().unwrap().iter().map(|v| v["tx"]["author"].as_str().unwrap().to_owned()).collect();
    assert_eq!(authors.first().map(String::as_str), Some("cli"));
    assert!(authors.contains(&"li".to_owned()) && authors.contains(&"wu".to_owned()), "{authors:?}");
    assert!(h["edits"].as_array().unwrap().iter().any(|e| e["op"] == "resolve" && e["user"] == "wu"), "{h}");
    let h3 = json(&ok(&["history", "--data", &data, "--layer", "manhole", "HS-JG-0003"]));
    assert!(h3["edits"].as_array().unwrap().iter().any(|e| e["user"] == "zhao" && e["lost_to_delete"] == true), "{h3}");
}

#[test]
fn attachments_upload_in_resumable_chunks_and_are_verified() {
    let (_dir, data) = setup(&["li"]);
    // The attachment limit is a `shikong serve` flag (1 MB here; the photo below is 700 KB).
    let server = Server::start(&data, &["--max-attachment-mb", "1"]);
    let t = token(&data, "li");
    let photo: Vec<u8> = (0..700_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let sha = shikong_replica::sha256_hex(&photo);
    let http = reqwest::blocking::Client::new();
    let url = server.url(&format!("/sync/blobs/{sha}"));
    // A first chunk lands, then the connection "drops".
    let first = shikong_sync_client::CHUNK;
    let r = http
        .put(&url)
        .bearer_auth(&t)
        .header("content-range", format!("bytes 0-{}/{}", first - 1, photo.len()))
        .body(photo[..first].to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let head = http.head(&url).bearer_auth(&t).send().unwrap();
    assert_eq!(head.status(), 404);
    assert_eq!(head.headers()["x-shikong-received"], first.to_string().as_str());
    // The client resumes from what the server holds.
    let client = shikong_sync_client::SyncClient::new(&server.base, &t).unwrap();
    client
        .upload(
            &sha,
            &photo,
            "image/jpeg",
            &json!({"capture_time": "2025-06-01T08:00:00+08:00", "lon": 114.3, "lat": 30.5, "heading": 45}),
        )
        .unwrap();
    let got = http.get(&url).bearer_auth(&t).send().unwrap();
    assert_eq!(got.headers()["content-type"], "image/jpeg");
    assert_eq!(got.bytes().unwrap().to_vec(), photo);
    // Wrong bytes for a hash are refused; so are oversize uploads.
    let wrong = "0".repeat(64);
    let r = http
        .put(server.url(&format!("/sync/blobs/{wrong}")))
        .bearer_auth(&t)
        .header("content-range", "bytes 0-2/3")
        .body(b"abc".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http
        .put(server.url(&format!("/sync/blobs/{wrong}")))
        .bearer_auth(&t)
        .header("content-range", format!("bytes 0-2/{}", 2u64 << 20))
        .body(b"abc".to_vec())
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    let problem: serde_json::Value = r.json().unwrap();
    assert!(problem.to_string().contains("1048576"), "the 413 names the flag's limit: {problem}");
}

#[test]
fn killing_the_server_during_a_large_push_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    // 700 features: the push needs two batches (500 + 200).
    let mut feats = Vec::new();
    for i in 0..700 {
        feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.0 + f64::from(i) * 0.0005, 30.5]},
                          "properties": {"code": format!("K-{i:04}"), "depth": 1.0}}));
    }
    let src = write(dir.path(), "many.geojson", &json!({"type": "FeatureCollection", "features": feats}).to_string());
    ok(&["import", "--data", &data, "--layer", "manhole", s(&src)]);
    ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", "li"], "巡查员的密码123\n");
    let t = token(&data, "li");
    let server = Server::start(&data, &[]);
    let path = dir.path().join("li.gpkg");
    ok(&["replica", "create", "--server", &server.base, "--token", &t, "--layers", "manhole", s(&path)]);
    {
        let mut r = Replica::open(&path).unwrap();
        let m = EditMeta { user: "li".into(), device: Some("平板-1".into()), time: jiff::Timestamp::now() };
        for i in 0..700 {
            r.set_fields(
                "manhole",
                &FeatureKey::Code(format!("K-{i:04}")),
                [("depth".to_string(), shikong_model::Value::Real(2.0))].into(),
                &m,
            )
            .unwrap();
        }
        assert_eq!(r.pending().unwrap(), 700);
    }
    // Start the sync, and kill the server as soon as the first batch is committed.
    let mut child = std::process::Command::new(shikong_bin())
        .args(["replica", "sync", "--token", &t, s(&path)])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let store = format!("{data}/store.gpkg");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let conn = rusqlite::Connection::open_with_flags(&store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM sk_transactions WHERE source LIKE 'sync push%'", [], |r| r.get(0))
            .unwrap_or(0);
        if n >= 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the first batch never committed");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.kill();
    let status = child.wait().unwrap();
    let committed_before_restart = {
        let conn = rusqlite::Connection::open(&store).unwrap();
        conn.query_row("SELECT count(*) FROM manhole WHERE depth = 2.0", [], |r| r.get::<_, i64>(0)).unwrap()
    };
    assert!(committed_before_restart >= 500, "the first batch must have been durable ({committed_before_restart})");
    // Restart (another port) and resync: the batch the device never heard about is resent and
    // skipped, the rest applied.
    let server = Server::start(&data, &[]);
    let out = ok(&["replica", "sync", "--server", &server.base, "--token", &t, s(&path)]);
    assert!(out.contains("0 rejected"), "{out} (first run: {status})");
    assert_eq!(Replica::open(&path).unwrap().pending().unwrap(), 0);
    let conn = rusqlite::Connection::open(&store).unwrap();
    let updated: i64 =
        conn.query_row("SELECT count(*) FROM manhole WHERE depth = 2.0 AND sk_version = 2", [], |r| r.get(0)).unwrap();
    assert_eq!(updated, 700, "every edit arrived exactly once (version 2, not 3)");
    let closed: i64 = conn.query_row("SELECT count(*) FROM sk_hist_manhole", [], |r| r.get(0)).unwrap();
    assert_eq!(closed, 700, "one superseded version per feature: nothing duplicated");
}

/// The end-of-sync verification repairs a replica that missed changes (as devices did before the
/// change feed read one snapshot per page), and the server counts it.
#[test]
fn verification_repairs_a_replica_that_missed_changes() {
    let (dir, data) = setup(&["li", "wu"]);
    let server = Server::start(&data, &[]);
    let device = |u: &str| {
        let t = token(&data, u);
        let path = dir.path().join(format!("{u}.gpkg"));
        ok(&["replica", "create", "--server", &server.base, "--token", &t, "--layers", "manhole", s(&path)]);
        (t, path)
    };
    let (li, wu) = (device("li"), device("wu"));
    ok(&["replica", "edit", s(&wu.1), "--layer", "manhole", "--code", "HS-JG-0002", "--set", "depth=7.5"]);
    let out = ok(&["replica", "sync", "--token", &wu.0, s(&wu.1)]);
    assert!(out.contains("verified: the replica matches the server"), "{out}");
    let out = ok(&["replica", "sync", "--token", &li.0, s(&li.1)]);
    assert!(out.contains("verified: the replica matches the server"), "{out}");
    // Damage li's replica the way a passed-over change looks: one row back at the imported state
    // and version, one row missing. (Bookkeeping of outside edits cleared: this is not a QGIS edit.)
    {
        let conn = rusqlite::Connection::open(&li.1).unwrap();
        shikong_gpkg::register_functions(&conn).unwrap();
        conn.execute_batch(
            "BEGIN; UPDATE manhole SET depth = 2.0, sk_version = 1 WHERE code = 'HS-JG-0002';
             DELETE FROM manhole WHERE code = 'HS-JG-0001'; DELETE FROM sk_capture; COMMIT;",
        )
        .unwrap();
    }
    let expected = server_state(&server, &li.0);
    assert_ne!(replica_state(&li.1), expected);
    let out = ok(&["replica", "sync", "--token", &li.0, s(&li.1)]);
    assert!(out.contains("pulled 0 entities"), "nothing new to pull: {out}");
    assert!(out.contains("verified: 2 entities differed from the server and were repaired"), "{out}");
    assert_eq!(replica_state(&li.1), expected);
    let out = ok(&["replica", "sync", "--token", &li.0, s(&li.1)]);
    assert!(out.contains("verified: the replica matches the server"), "{out}");
    let metrics = reqwest::blocking::get(server.url("/metrics")).unwrap().text().unwrap();
    assert!(metrics.contains("shikong_sync_repaired_entities_total 2"), "{metrics}");
    assert!(metrics.contains("shikong_sync_verifications_total{outcome=\"differed\"} 1"), "{metrics}");
    // wu's sync, li's first, the check after the repair, li's last.
    assert!(metrics.contains("shikong_sync_verifications_total{outcome=\"agreed\"} 4"), "{metrics}");
    // A verification of another user's replica, or with a bad digest, is refused precisely.
    let http = reqwest::blocking::Client::new();
    let li_replica = Replica::open(&li.1).unwrap();
    let mut req = li_replica.verify_request().unwrap();
    let r = http.post(server.url("/sync/verify")).bearer_auth(&wu.0).json(&req).send().unwrap();
    assert_eq!(r.status(), 403);
    req.layers[0].buckets.pop();
    let r = http.post(server.url("/sync/verify")).bearer_auth(&li.0).json(&req).send().unwrap();
    assert_eq!(r.status(), 400);
    let body: Json = r.json().unwrap();
    assert!(body["detail"].as_str().unwrap().contains("layers[0].buckets: 63 buckets, not 64"), "{body}");
}

/// An administrator syncing a colleague's replica file is refused in one clear line naming whose
/// the replica's edits are and who must push them; nothing is applied and the edit stays pending
/// until its owner syncs.
#[test]
fn an_admin_syncing_someone_elses_replica_is_told_whose_it_is() {
    let (dir, data) = setup(&["li"]);
    ok_stdin(&["user", "add", "--data", &data, "--role", "admin", "boss"], "巡查员的密码123\n");
    let server = Server::start(&data, &[]);
    let (li, boss) = (token(&data, "li"), token(&data, "boss"));
    let path = dir.path().join("li.gpkg");
    ok(&["replica", "create", "--server", &server.base, "--token", &li, "--layers", "manhole", s(&path)]);
    ok(&["replica", "edit", s(&path), "--layer", "manhole", "--code", "HS-JG-0002", "--set", "depth=7.5"]);
    let before = server_state(&server, &li);
    let err = fails(&["replica", "sync", "--token", &boss, s(&path)]);
    for part in ["(403)", "belongs to `li`", "must be pushed by `li`", "not by `boss`", "nothing was applied"] {
        assert!(err.contains(part), "{part:?} missing from: {err}");
    }
    assert_eq!(server_state(&server, &li), before, "nothing written");
    assert_eq!(Replica::open(&path).unwrap().pending().unwrap(), 1, "the edit is still pending");
    let out = ok(&["replica", "sync", "--token", &li, s(&path)]);
    assert!(out.contains("1 accepted, 0 unchanged, 0 rejected"), "{out}");
    assert_eq!(server_state(&server, &li)["HS-JG-0002"].0, json!(7.5));
}

/// Offline field tasks through the real binary (issue 15): a case the office dispatched to li is
/// in the replica li cuts (`shikong replica tasks`), li records `handle` with a photo offline
/// (`shikong replica task`), the next `shikong replica sync` sends it once — a second sync sends
/// nothing — and the office sees the case handled by li with the photo.
#[test]
fn an_inspector_handles_a_dispatched_task_offline_from_the_command_line() {
    let (dir, data) = setup(&["li"]);
    ok_stdin(&["user", "add", "--data", &data, "--role", "office", "wang"], "巡查员的密码123\n");
    let server = Server::start(&data, &[]);
    let (li, wang) = (token(&data, "li"), token(&data, "wang"));
    let http = reqwest::blocking::Client::new();
    let post = |path: &str, body: Json| -> Json {
        let r = http.post(server.url(path)).bearer_auth(&wang).json(&body).send().unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    };
    let case = post(
        "/cases",
        json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.36, 30.51]},
               "asset": "manhole/HS-JG-0002"}),
    );
    let id = case["id"].as_str().unwrap().to_owned();
    let act = |action: &str, n: u32, extra: Json| {
        let mut body = json!({"action": action, "action_id": format!("e2e-{n}")});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        post(&format!("/cases/{id}/actions"), body)
    };
    act("accept", 1, json!({}));
    act("register", 2, json!({}));
    act("dispatch", 3, json!({"assignee": "user:li"}));

    let path = dir.path().join("li.gpkg");
    ok(&["replica", "create", "--server", &server.base, "--token", &li, "--layers", "manhole", s(&path)]);
    let out = ok(&["replica", "tasks", s(&path)]);
    assert!(out.contains(&id) && out.contains("class 0102") && out.contains("state dispatched"), "{out}");
    assert!(out.contains("deadline 20") && out.contains("+08:00"), "{out}");

    let photo = write(dir.path(), "after.jpg", "清运后的照片 (stand-in bytes)");
    let err = fails(&["replica", "task", s(&path), &id, "--action", "verify"]);
    assert!(err.contains("wrong_state") || err.contains("not allowed in state"), "{err}");
    let out = ok(&["replica", "task", s(&path), &id, "--action", "handle", "--note", "已清运", "--photo", s(&photo)]);
    assert!(out.contains("recorded handle"), "{out}");
    let out = ok(&["replica", "tasks", s(&path)]);
    assert!(out.contains("queued") && out.contains("handle"), "{out}");

    let out = ok(&["replica", "sync", "--token", &li, s(&path)]);
    assert!(out.contains("uploaded 1 attachments"), "{out}");
    assert!(out.contains("offline actions: 1 applied, 0 rejected"), "{out}");
    let out = ok(&["replica", "sync", "--token", &li, s(&path)]);
    assert!(out.contains("offline actions: 0 applied, 0 rejected"), "the second sync sends nothing: {out}");

    let doc: Json = http.get(server.url(&format!("/cases/{id}"))).bearer_auth(&wang).send().unwrap().json().unwrap();
    assert_eq!(doc["state"], "handled");
    let handles: Vec<&Json> =
        doc["transitions"].as_array().unwrap().iter().filter(|t| t["action"] == "handle").collect();
    assert_eq!(handles.len(), 1, "{doc}");
    assert_eq!(handles[0]["actor"], "li");
    assert_eq!(handles[0]["note"], "已清运");
    let sha = shikong_replica::sha256_hex(&std::fs::read(&photo).unwrap());
    assert_eq!(handles[0]["photos"], json!([sha]));
    let out = ok(&["replica", "tasks", s(&path)]);
    assert!(out.contains("state handled") && !out.contains("queued"), "{out}");
}
