//! Crash windows (issue 14): what a server that stops between two steps of one operation leaves
//! behind is completed at the next start. The "crash" is a fault point of the server state
//! (`AppState::simulate_crash_before_audit`) or files left on disk, then a restart over the same
//! data directory (`Env::restarted_with`).

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

/// The audit rows of `action` on layer `manhole`, newest first (read by the admin).
fn audit_rows(env: &Env, action: &str) -> Vec<Json> {
    let r = env.get(&format!("/admin/audit?layer=manhole&action={action}")).token(&env.token("admin")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["entries"].as_array().unwrap().clone()
}

#[test]
fn a_write_whose_audit_append_was_lost_in_a_crash_is_audited_at_restart() {
    let env = manholes().env();
    let li = env.token("li");
    let logins_before = {
        let r = env.get("/admin/audit").token(&env.token("admin")).send();
        r.json()["entries"].as_array().unwrap().len()
    };
    // The server "dies" after the store committed the write and before the audit log heard of it.
    env.state.simulate_crash_before_audit(true);
    let new = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.52]},
                     "properties": {"code": "HS-JG-0200", "名称": "崩溃前写入", "depth": 1.0}});
    let r = env.post("/collections/manhole/items").token(&li).json(&new).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    // The write is in the store …
    assert!(env.store().get("manhole", &shikong_store::FeatureKey::Id(id.parse().unwrap()), None).unwrap().is_some());

    // … and after the restart its audit row is in the audit log, attributed to the caller, with
    // the store transaction it became.
    let env = env.restarted_with(|_| {});
    let rows = audit_rows(&env, "feature.create");
    let mine: Vec<&Json> =
        rows.iter().filter(|e| e["entities"].as_array().is_some_and(|a| a.iter().any(|x| x == &json!(id)))).collect();
    assert_eq!(mine.len(), 1, "exactly one audit row for the write: {rows:?}");
    assert_eq!(mine[0]["actor"]["user"], "li", "{:?}", mine[0]);
    assert!(
        mine[0]["tx"].as_str().is_some_and(|t| !t.is_empty()),
        "the row names the store transaction: {:?}",
        mine[0]
    );

    // Draining again (another restart, another write) never writes it twice, and nothing of the
    // audit history before is gone.
    let env = env.restarted_with(|_| {});
    let r = env.delete(&format!("/collections/manhole/items/{id}")).token(&li).send();
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let rows = audit_rows(&env, "feature.create");
    let n = rows.iter().filter(|e| e["entities"].as_array().is_some_and(|a| a.iter().any(|x| x == &json!(id)))).count();
    assert_eq!(n, 1, "{rows:?}");
    assert_eq!(audit_rows(&env, "feature.delete").len(), 1);
    let r = env.get("/admin/audit").token(&env.token("admin")).send();
    assert!(r.json()["entries"].as_array().unwrap().len() >= logins_before + 2);
}

/// `POST /sync/push` of one device change to manhole `code` (still at version 1), setting
/// `depth`, by `user` with `token`.
fn push_depth(env: &Env, user: &str, token: &str, code: &str, depth: f64) -> Json {
    use shikong_crdt::{Actor, Edit, EditMeta, EntityDoc};
    let r = env.post("/sync/replicas").token(token).json(&json!({"protocol": 1, "layers": ["manhole"]})).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let replica = r.header("x-shikong-replica").to_owned();
    let store = env.state.store();
    let layer = store.layer("manhole").unwrap();
    let f = store.get("manhole", &shikong_store::FeatureKey::Code(code.into()), None).unwrap().unwrap();
    let mut doc = EntityDoc::base(layer.schema(), &f.feature).unwrap();
    let meta = EditMeta { user: user.into(), device: None, time: jiff::Timestamp::now() };
    let props = [("depth".to_owned(), shikong_model::Value::Real(depth))].into_iter().collect();
    let change = doc.edit(layer.schema(), Actor::random(), &meta, Edit::SetFields(props)).unwrap().unwrap();
    let b64 = {
        use base64ct::Encoding;
        base64ct::Base64::encode_string(&change)
    };
    let body = json!({"protocol": 1, "replica": replica, "batch": uuid::Uuid::new_v4(),
                      "entities": [{"layer": "manhole", "entity": f.feature.id.to_string(), "changes": [b64]}]});
    let r = env.post("/sync/push").token(token).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert!(j["results"][0]["outcome"].to_string().contains("accepted"), "{j}");
    json!(f.feature.id.to_string())
}

#[test]
fn a_push_whose_audit_append_was_lost_in_a_crash_is_audited_at_restart() {
    let env = manholes().env();
    env.state.simulate_crash_before_audit(true);
    let li = env.token("li");
    let id = push_depth(&env, "li", &li, "HS-JG-0002", 3.5);
    let env = env.restarted_with(|_| {});
    let rows = audit_rows(&env, "feature.update");
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!((&rows[0]["actor"]["user"], &rows[0]["entities"][0]), (&json!("li"), &id), "{:?}", rows[0]);
}

/// Waits (at most 20 s) until `done` holds; the start-up scan runs in the background.
fn eventually(what: &str, done: impl Fn() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < Duration::from_secs(20), "{what} did not happen within 20 s");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn attachment_files_without_their_record_are_checked_and_recorded_at_start() {
    let env = manholes().env();
    let blobs = env.dir.path().join("blobs");
    // Renamed into place, never recorded (the server stopped in between).
    let good: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    let good_sha = shikong_replica::sha256_hex(&good);
    // Damaged: the bytes do not hash to the name (a torn write, a disk error).
    let damaged_sha = shikong_replica::sha256_hex(b"what the file should have held");
    // Not an attachment name: left alone.
    for (sha, bytes) in [(&good_sha, &good[..]), (&damaged_sha, &b"half of it"[..])] {
        std::fs::create_dir_all(blobs.join(&sha[..2])).unwrap();
        std::fs::write(blobs.join(&sha[..2]).join(sha), bytes).unwrap();
    }
    std::fs::write(blobs.join(&good_sha[..2]).join("notes.txt"), b"not mine").unwrap();
    assert!(env.state.store().blob(&good_sha).unwrap().is_none());

    // At the next start, without any request for them:
    let env = env.restarted_with(|_| {});
    let store = env.state.store.clone();
    eventually("recording the intact attachment", || store.blob(&good_sha).ok().flatten().is_some());
    let rec = store.blob(&good_sha).unwrap().unwrap();
    assert_eq!(rec.size, good.len() as u64);
    let damaged = blobs.join(&damaged_sha[..2]).join(&damaged_sha);
    eventually("removing the damaged file", || !damaged.exists());
    assert!(store.blob(&damaged_sha).unwrap().is_none());
    assert!(blobs.join(&good_sha[..2]).join("notes.txt").is_file(), "other files are left alone");
    // The intact file serves its bytes (admins read every attachment).
    let r = env.get(&format!("/sync/blobs/{good_sha}")).token(&env.token("admin")).send();
    assert_eq!((r.status, r.bytes()), (StatusCode::OK, good));
}
