//! `shikong backup` and `shikong restore` on the real binary: a full backup taken while a client
//! writes through the OGC API, an incremental one after more writes and a device's sync, both
//! restored into new folders, and servers started on them answering like the original — every
//! collection's current state, as-of reads, the change feed, the history of every entity the
//! writer touched — and the device syncing on against the restored server. Plus the refusals: a
//! gap in the chain, the wrong order, an incremental alone, a folder already in use.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::blocking::Client;
use serde_json::{Value as Json, json};

use crate::common::server::Server;
use crate::common::*;

const PASSWORD: &str = "备份恢复测试2025!";

/// One acknowledged write: the entity, the version the server answered with, and when.
#[derive(Debug, Clone)]
struct Ack {
    id: String,
    version: i64,
    at: Instant,
}

/// A client writing manholes (creates, merge-patches, deletes) until told to stop.
struct Writer {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<Ack>>,
}

fn version_of(r: &reqwest::blocking::Response) -> i64 {
    let tag = r.headers().get("etag").and_then(|v| v.to_str().ok()).expect("an ETag").trim_matches('"').to_owned();
    tag.rsplit('-').next().and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("ETag {tag}"))
}

fn start_writer(base: &str, token: &str, round: u32) -> Writer {
    let stop = Arc::new(AtomicBool::new(false));
    let (base, token, flag) = (base.to_owned(), token.to_owned(), Arc::clone(&stop));
    let handle = std::thread::spawn(move || {
        let http = Client::new();
        let mut acks = Vec::new();
        let mut live: Vec<String> = Vec::new();
        let mut n = 0u32;
        while !flag.load(Ordering::Relaxed) {
            n += 1;
            let items = format!("{base}/collections/manhole/items");
            if !n.is_multiple_of(3) || live.is_empty() {
                let body = json!({"type": "Feature",
                    "geometry": {"type": "Point", "coordinates": [114.40 + f64::from(n) * 1e-4, 30.50 + f64::from(round) * 1e-3]},
                    "properties": {"名称": format!("备份测试{round}-{n}"), "状态": "1", "埋深": 1.5}});
                let r = http.post(&items).bearer_auth(&token).json(&body).send().unwrap();
                assert_eq!(r.status(), StatusCode::CREATED, "create: {}", r.text().unwrap_or_default());
                let version = version_of(&r);
                let id = r.json::<Json>().unwrap()["id"].as_str().unwrap().to_owned();
                acks.push(Ack { id: id.clone(), version, at: Instant::now() });
                live.push(id);
            } else if n.is_multiple_of(7) {
                let id = live.remove(0);
                let r = http.delete(format!("{items}/{id}")).bearer_auth(&token).send().unwrap();
                assert!(r.status().is_success(), "delete: {}", r.status());
            } else {
                let id = live[n as usize % live.len()].clone();
                let body = json!({"properties": {"埋深": f64::from(n % 90) / 10.0 + 0.1, "状态": "2"}});
                let r = http.patch(format!("{items}/{id}")).bearer_auth(&token).json(&body).send().unwrap();
                assert_eq!(r.status(), StatusCode::OK, "patch: {}", r.text().unwrap_or_default());
                acks.push(Ack { id, version: version_of(&r), at: Instant::now() });
            }
        }
        acks
    });
    Writer { stop, handle }
}

impl Writer {
    fn finish(self) -> Vec<Ack> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("the writer thread")
    }
}

/// GET as the office user, with the server's own address replaced (two servers, two ports).
fn get(http: &Client, server: &Server, token: &str, path: &str) -> (StatusCode, String) {
    let r = http.get(server.url(path)).bearer_auth(token).send().unwrap();
    let status = r.status();
    (status, r.text().unwrap().replace(&server.base, "BASE"))
}

/// Every feature of a collection (all pages; the first 1000 of the gazetteer's divisions), by id.
fn features(http: &Client, server: &Server, token: &str, collection: &str, extra: &str) -> Vec<Json> {
    let mut out = Vec::new();
    let mut offset = 0;
    let limit = if collection == "gazetteer" { 1000 } else { 10_000 };
    loop {
        let (status, body) =
            get(http, server, token, &format!("/collections/{collection}/items?limit={limit}&offset={offset}{extra}"));
        assert_eq!(status, StatusCode::OK, "{collection}: {body}");
        let page = json(&body);
        let batch = page["features"].as_array().cloned().unwrap_or_default();
        let n = batch.len();
        out.extend(batch);
        if n < limit || collection == "gazetteer" {
            break;
        }
        offset += n;
    }
    // As-of reads list current rows, then superseded versions: compare as sets.
    out.sort_by(|a, b| a["id"].to_string().cmp(&b["id"].to_string()));
    out
}

fn collections(http: &Client, server: &Server, token: &str) -> Vec<String> {
    let (_, body) = get(http, server, token, "/collections");
    // Layers only: the catalog (`itemType` record) describes the server, it has no past to restore.
    let mut ids: Vec<String> = json(&body)["collections"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["itemType"].as_str().is_none_or(|t| t == "feature"))
        .map(|c| c["id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// `got` answers every read like `want` did at instant `at` (`None`: now).
fn assert_same_reads(http: &Client, got: &Server, want: &Server, token: &str, at: Option<&str>, touched: &[String]) {
    let as_of = at.map(|t| format!("&as-of={}", percent(t))).unwrap_or_default();
    let names = collections(http, got, token);
    assert_eq!(names, collections(http, want, token), "the same collections");
    for c in &names {
        // The gazetteer collection is served from the gazetteer files, which have no past.
        let extra = if c == "gazetteer" { String::new() } else { as_of.clone() };
        let mine = features(http, got, token, c, "");
        assert_eq!(mine, features(http, want, token, c, &extra), "collection {c} (as of {at:?})");
        println!("backup e2e: collection {c}: {} features equal", mine.len());
    }
    // An as-of read further in the past (after the demo's first transaction), and the change feed.
    let first = json(&get(http, want, token, "/collections/manhole/items/420111-JG-00001/history").1);
    let t0 = first["versions"][0]["tx"]["time"].as_str().unwrap().to_owned();
    let before = format!("&as-of={}", percent(&t0));
    assert_eq!(features(http, got, token, "manhole", &before), features(http, want, token, "manhole", &before));
    let to = at.map(percent).unwrap_or_else(|| "2100-01-01T00:00:00Z".into());
    let changes = format!("/collections/manhole/changes?from=2000-01-01T00:00:00Z&to={to}&limit=10000");
    assert_eq!(get(http, got, token, &changes), get(http, want, token, &changes), "changes");
    // The history of every entity the writer touched, up to the instant.
    for id in touched {
        let path = format!("/collections/manhole/items/{id}/history");
        let (gs, g) = get(http, got, token, &path);
        let (ws, w) = get(http, want, token, &path);
        if at.is_none() {
            assert_eq!((gs, &g), (ws, &w), "history of {id}");
        } else if gs == StatusCode::OK {
            let (g, w) = (json(&g), json(&w));
            let n = g["versions"].as_array().unwrap().len();
            assert_eq!(
                g["versions"].as_array().unwrap()[..],
                w["versions"].as_array().unwrap()[..n],
                "history of {id}"
            );
        }
    }
}

fn percent(t: &str) -> String {
    t.replace('+', "%2B")
}

fn manifest(dir: &std::path::Path) -> Json {
    json(&std::fs::read_to_string(dir.join("manifest.json")).unwrap())
}

fn timed(args: &[&str]) -> (String, f64) {
    let started = Instant::now();
    let out = ok(args);
    (out, started.elapsed().as_secs_f64())
}

#[test]
fn backup_under_writes_restores_a_server_that_answers_alike() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    demo_data(&data);
    let data = s(&data).to_owned();
    for (name, role) in [("wang", "office"), ("li", "inspector")] {
        ok_stdin(&["user", "add", "--data", &data, "--role", role, name], &format!("{PASSWORD}\n"));
    }
    let original = Server::start(&data, &[]);
    let http = Client::new();
    let wang = ok(&["user", "token", "--data", &data, "wang"]).trim().to_owned();
    let li = ok(&["user", "token", "--data", &data, "li"]).trim().to_owned();
    // A device that synced before the backups and syncs on against the restored server.
    let device = dir.path().join("li.gpkg");
    ok(&["replica", "create", "--server", &original.base, "--token", &li, "--layers", "manhole", s(&device)]);

    // A full backup while a client writes.
    let writer = start_writer(&original.base, &wang, 1);
    std::thread::sleep(Duration::from_millis(800));
    let b1 = dir.path().join("b1");
    let started = Instant::now();
    let (out, full_secs) = timed(&["backup", "--data", &data, s(&b1)]);
    assert!(out.contains("full backup written to"), "{out}");
    std::thread::sleep(Duration::from_millis(500));
    let acks1 = writer.finish();
    let before_backup: Vec<&Ack> = acks1.iter().filter(|a| a.at < started).collect();
    assert!(before_backup.len() >= 5, "the writer was slow: {} writes before the backup", before_backup.len());
    assert!(acks1.iter().any(|a| a.at > started), "writes went on during the backup");
    let m1 = manifest(&b1);
    let t1 = m1["tx_time"].as_str().unwrap().to_owned();

    // The device edits and syncs; more writes; an incremental backup.
    ok(&["replica", "edit", s(&device), "--layer", "manhole", "--code", "420111-JG-00010", "--set", "埋深=7.25"]);
    let out = ok(&["replica", "sync", "--token", &li, s(&device)]);
    assert!(out.contains("1 accepted") && out.contains("0 rejected"), "{out}");
    let writer = start_writer(&original.base, &wang, 2);
    std::thread::sleep(Duration::from_millis(600));
    let acks2 = writer.finish();
    let b2 = dir.path().join("b2");
    let (out, incr_secs) = timed(&["backup", "--data", &data, "--since", s(&b1), s(&b2)]);
    assert!(out.contains("incremental backup (transactions"), "{out}");
    let m2 = manifest(&b2);
    assert_eq!(m2["previous"]["id"], m1["id"]);
    assert!(m2["files"].as_array().unwrap().iter().all(|f| f["kind"] != "store"), "no whole store in an incremental");

    // Restores: the chain, and the full backup alone.
    let r2 = dir.path().join("r2");
    let (out, restore_secs) = timed(&["restore", "--data", s(&r2), s(&b1), s(&b2)]);
    assert!(out.contains("restored 2 backup(s)"), "{out}");
    let r1 = dir.path().join("r1");
    let (_, restore_full_secs) = timed(&["restore", "--data", s(&r1), s(&b1)]);
    let size = |p: &std::path::Path| std::fs::metadata(p.join("store.gpkg")).map(|m| m.len()).unwrap_or(0);
    println!(
        "backup e2e timings (debug build, demo data, store {:.1} MB): full backup under writes {full_secs:.2} s, incremental {incr_secs:.2} s, restore full {restore_full_secs:.2} s, restore full+incremental {restore_secs:.2} s",
        size(std::path::Path::new(&data)) as f64 / 1e6
    );

    let mut touched: Vec<String> = acks1.iter().chain(&acks2).map(|a| a.id.clone()).collect();
    touched.sort();
    touched.dedup();
    touched.truncate(60);
    let device_id = json(&get(&http, &original, &wang, "/collections/manhole/items/420111-JG-00010").1)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    touched.push(device_id);

    // The chain restored: the original now (no writes since the incremental backup).
    let restored = Server::start(s(&r2), &[]);
    assert_same_reads(&http, &restored, &original, &wang, None, &touched);
    // The full backup alone: the original as of the backup's transaction, and nothing
    // acknowledged before the backup began is missing.
    let restored1 = Server::start(s(&r1), &[]);
    assert_same_reads(&http, &restored1, &original, &wang, Some(&t1), &touched);
    for a in &before_backup {
        let (status, body) = get(&http, &restored1, &wang, &format!("/collections/manhole/items/{}/history", a.id));
        assert_eq!(status, StatusCode::OK, "{}: {body}", a.id);
        let versions: Vec<i64> =
            json(&body)["versions"].as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
        assert!(versions.contains(&a.version), "acknowledged version {} of {} lost: {versions:?}", a.version, a.id);
    }
    drop(restored1);

    // The device syncs on against the restored server: nothing to repair, its next edit lands.
    let out = ok(&["replica", "sync", "--server", &restored.base, "--token", &li, s(&device)]);
    assert!(out.contains("0 rejected") && out.contains("verified: the replica matches the server"), "{out}");
    ok(&["replica", "edit", s(&device), "--layer", "manhole", "--code", "420111-JG-00010", "--set", "埋深=8.5"]);
    let out = ok(&["replica", "sync", "--server", &restored.base, "--token", &li, s(&device)]);
    assert!(out.contains("1 accepted") && out.contains("verified: the replica matches the server"), "{out}");
    let f = json(&get(&http, &restored, &wang, "/collections/manhole/items/420111-JG-00010").1);
    assert_eq!(f["properties"]["埋深"], json!(8.5), "{f}");

    // Refusals, each one line naming the problem.
    let b3 = dir.path().join("b3");
    ok(&["backup", "--data", &data, "--since", s(&b2), s(&b3)]);
    let e = fails(&["restore", "--data", s(&dir.path().join("x")), s(&b1), s(&b3)]);
    assert!(e.contains("a backup is missing between them") && e.contains(s(&b3)) && e.contains(s(&b1)), "{e}");
    let e = fails(&["restore", "--data", s(&dir.path().join("x")), s(&b1), s(&b3), s(&b2)]);
    assert!(e.contains("missing between them"), "{e}");
    let e = fails(&["restore", "--data", s(&dir.path().join("x")), s(&b2)]);
    assert!(e.contains("the first backup must be a full one"), "{e}");
    let e = fails(&["restore", "--data", s(&r2), s(&b1)]);
    assert!(e.contains("is not empty") && e.contains("restore only into a new or empty folder"), "{e}");
    let e = fails(&["backup", "--data", &data, s(&b1)]);
    assert!(e.contains("already exists"), "{e}");
    assert!(!dir.path().join("x").exists(), "a refused restore writes nothing");
}
