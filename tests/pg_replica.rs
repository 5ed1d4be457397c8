//! A read replica and a failover drill on PostgreSQL (issue 17), on private clusters of
//! `shikong-pgtest`: a primary and a streaming standby made by `pg_basebackup` on loopback.
//!
//! - Standby reads: two `shikong serve` processes, W and R, both `--store PRIMARY
//!   --read-replica STANDBY`. R's item reads run on the standby (its sessions there show in
//!   `pg_stat_activity`); W writes while the standby's replay is paused and reads its write at
//!   once (read-your-writes: the standby is behind what W committed, so after waiting briefly
//!   W reads the primary); R shows the write once replay resumes; with the standby stopped, R
//!   still answers, from the primary.
//! - Failover: one server on a two-host URL (`target_session_attrs=read-write`) with a
//!   synchronous standby; a client writes features one after another and counts the
//!   acknowledged ones; the primary is stopped at once (`pg_ctl stop -m immediate`), the standby
//!   promoted; meanwhile writes fail with 503 `store-unavailable` (never a 500, never a hang),
//!   then the server reconnects by itself and writes succeed again; every acknowledged write is
//!   there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value as Json, json};
use shikong_pgtest::postgres;
use shikong_pgtest::{Cluster, Replication};

use crate::common::server::Server;
use crate::common::*;

const PASSWORD: &str = "办公室密码123";

/// Polls `f` until it holds or `within` passes; how long it took.
#[track_caller]
fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) -> Duration {
    let started = Instant::now();
    while !f() {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    started.elapsed()
}

/// A store with the manhole layer and an office user in `data`, on the database at `url`.
fn setup(data: &str, url: &str) {
    let store = ["--data", data, "--store", url];
    ok(&[&["init"][..], &store[..]].concat());
    ok(&[&["import"][..], &store[..], &["--layer", "manhole", "--title", "井盖", &fixture("manholes_v1.geojson")]]
        .concat());
    ok_stdin(&[&["user", "add"][..], &store[..], &["--role", "office", "wang"]].concat(), &format!("{PASSWORD}\n"));
}

fn login(server: &Server) -> String {
    let r = server.http.post(server.url("/auth/login")).json(&json!({"username": "wang", "password": PASSWORD})).send();
    let r = r.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned()
}

fn manhole(code: &str, i: usize) -> Json {
    let (lon, lat) = (114.30 + (i % 100) as f64 * 0.001, 30.50 + (i / 100) as f64 * 0.001);
    json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
           "properties": {"code": code, "名称": format!("井盖{i}"), "depth": 1.5}})
}

/// POSTs a feature; its status and (when created) its id.
fn create(server: &Server, token: &str, feature: &Json) -> (StatusCode, Option<String>) {
    let r = server.http.post(server.url("/collections/manhole/items")).bearer_auth(token).json(feature).send().unwrap();
    let status = r.status();
    let body: Json = r.json().unwrap_or(Json::Null);
    (status, body["id"].as_str().map(str::to_owned))
}

fn item_status(server: &Server, token: &str, id: &str) -> StatusCode {
    server.http.get(server.url(&format!("/collections/manhole/items/{id}"))).bearer_auth(token).send().unwrap().status()
}

fn codes(server: &Server, token: &str) -> Vec<String> {
    let fc = server.get_json("/collections/manhole/items?limit=10000", token);
    fc["features"].as_array().unwrap().iter().map(|f| f["properties"]["code"].as_str().unwrap().to_owned()).collect()
}

fn database(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

/// Statements the sessions named `app` ran on `cluster` (database `db`) since `since` (a
/// `clock_timestamp()` of that server), from `pg_stat_activity`.
fn sessions_active_since(cluster: &Cluster, db: &str, app: &str, since: &str) -> i64 {
    let mut c = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls).unwrap();
    c.query_one(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND application_name = $2 \
         AND query_start > $3::text::timestamptz",
        &[&db, &app, &since],
    )
    .unwrap()
    .get(0)
}

fn now_on(cluster: &Cluster) -> String {
    let mut c = postgres::Client::connect(&cluster.url("postgres"), postgres::NoTls).unwrap();
    c.query_one("SELECT clock_timestamp()::text", &[]).unwrap().get(0)
}

#[test]
fn a_standby_serves_reads_and_each_writer_reads_its_own_writes() {
    let primary = Cluster::start(false).expect("start the primary");
    let url = primary.fresh_db();
    let db = database(&url).to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    setup(&data, &url);
    // Asynchronous: the standby may lag (and may stop) without holding the primary's commits up.
    let standby = primary.standby(Replication::Async).expect("start the standby");
    let replica = |app: &str| format!("{}?application_name={app}", standby.url(&db));
    let w = Server::start(&data, &["--store", &url, "--read-replica", &replica("sk_w")]);
    let r = Server::start(&data, &["--store", &url, "--read-replica", &replica("sk_r")]);
    let token = login(&w);
    let before = codes(&w, &token);
    assert_eq!(codes(&r, &token), before);

    // R's item reads run on the standby.
    let since = now_on(&standby);
    for _ in 0..3 {
        assert_eq!(codes(&r, &token).len(), before.len());
    }
    assert!(sessions_active_since(&standby, &db, "sk_r", &since) > 0, "R read from the standby");

    // The standby stops replaying: W's write is acknowledged by the primary, and W reads it at
    // once (the standby is behind what W committed: W waits up to 200 ms, then reads the
    // primary). Without read-your-writes W would answer 404 from the standby.
    let mut admin = postgres::Client::connect(&standby.url("postgres"), postgres::NoTls).unwrap();
    admin.batch_execute("SELECT pg_wal_replay_pause()").unwrap();
    let (status, id) = create(&w, &token, &manhole("RR-1", 1));
    assert_eq!(status, StatusCode::CREATED);
    let id = id.expect("the created feature's id");
    let asked = Instant::now();
    assert_eq!(item_status(&w, &token, &id), StatusCode::OK, "W reads its own write");
    eprintln!("read-your-writes with replay paused: {:?}", asked.elapsed());
    assert!(codes(&w, &token).contains(&"RR-1".to_owned()));
    let mut on_standby = postgres::Client::connect(&standby.url(&db), postgres::NoTls).unwrap();
    let replayed: i64 = on_standby.query_one("SELECT count(*) FROM manhole WHERE code = 'RR-1'", &[]).unwrap().get(0);
    assert_eq!(replayed, 0, "the standby had not replayed it: W's answer came from the primary");

    // Replay resumes: R shows W's write (from the standby, or from the primary once R knows of a
    // newer transaction than the standby holds).
    admin.batch_execute("SELECT pg_wal_replay_resume()").unwrap();
    let took =
        eventually(Duration::from_secs(10), "R shows W's write", || item_status(&r, &token, &id) == StatusCode::OK);
    eprintln!("W's write visible through R after {took:?}");
    // Caught up, the standby serves W's reads of its own writes again, without waiting long.
    let (status, id2) = create(&w, &token, &manhole("RR-2", 2));
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(item_status(&w, &token, &id2.unwrap()), StatusCode::OK);
    // (W skipped the standby for a second after falling back to the primary.)
    let since = now_on(&standby);
    eventually(Duration::from_secs(30), "W reads from the standby again", || {
        assert!(codes(&w, &token).contains(&"RR-2".to_owned()));
        sessions_active_since(&standby, &db, "sk_w", &since) > 0
    });

    // The standby stops: reads go to the primary, nothing fails.
    drop((admin, on_standby));
    standby.stop().expect("stop the standby");
    let (status, id3) = create(&w, &token, &manhole("RR-3", 3));
    assert_eq!(status, StatusCode::CREATED);
    for server in [&r, &w] {
        let now = codes(server, &token);
        for code in ["RR-1", "RR-2", "RR-3"] {
            assert!(now.contains(&code.to_owned()), "{code} through {}", server.base);
        }
        assert_eq!(now.len(), before.len() + 3);
        assert_eq!(item_status(server, &token, id3.as_deref().unwrap()), StatusCode::OK);
    }
}

#[test]
fn failover_drill_loses_no_acknowledged_write() {
    let primary = Cluster::start(false).expect("start the primary");
    let url = primary.fresh_db();
    let db = database(&url).to_owned();
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    setup(&data, &url);
    // Synchronous: the primary acknowledges a commit once the standby has it.
    let standby = primary.standby(Replication::Sync).expect("start the standby");
    let both = format!(
        "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/{db}?target_session_attrs=read-write&connect_timeout=5",
        primary.port(),
        standby.port()
    );
    let server = Arc::new(Server::start(&data, &["--store", &both]));
    let token = login(&server);
    let initial = codes(&server, &token).len();

    // One client writing features one after another; a refused write is retried.
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let refusals = Arc::new(Mutex::new(Vec::<(StatusCode, String)>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (server, token, acked, refusals, stop) =
            (server.clone(), token.clone(), acked.clone(), refusals.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let code = format!("FO-{i}");
                loop {
                    let r = server
                        .http
                        .post(server.url("/collections/manhole/items"))
                        .bearer_auth(&token)
                        .timeout(Duration::from_secs(30))
                        .json(&manhole(&code, i))
                        .send()
                        .expect("the server answers (no hang, no crash)");
                    match r.status() {
                        StatusCode::CREATED => {
                            acked.lock().unwrap().push(code);
                            break;
                        }
                        // Written, but the answer was lost with the primary: not acknowledged.
                        StatusCode::CONFLICT => break,
                        status => {
                            refusals.lock().unwrap().push((status, r.text().unwrap_or_default()));
                            std::thread::sleep(Duration::from_millis(50));
                        }
                    }
                }
            }
        })
    };
    let acked_count = || acked.lock().unwrap().len();
    eventually(Duration::from_secs(30), "20 writes acknowledged", || acked_count() >= 20);
    primary.stop_immediate().expect("stop the primary");
    let at_stop = acked_count();
    std::thread::sleep(Duration::from_millis(500));
    standby.promote().expect("promote the standby");
    let promoted = Instant::now();
    let at_promote = acked_count();
    let took =
        eventually(Duration::from_secs(60), "writes succeed after the promotion", || acked_count() >= at_promote + 10);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    eprintln!(
        "failover: {at_stop} acknowledged before the stop, {} in all; 10 more within {took:?} of the promotion",
        acked_count()
    );
    let _ = promoted;

    let refusals = refusals.lock().unwrap().clone();
    assert!(!refusals.is_empty(), "writes between the stop and the promotion were refused");
    for (status, body) in &refusals {
        assert_eq!(*status, StatusCode::SERVICE_UNAVAILABLE, "a write during the failover: {body}");
        assert!(body.contains("store-unavailable"), "{body}");
    }
    // Every acknowledged write is there: through the server, and in the promoted database.
    let acked = acked.lock().unwrap().clone();
    let served = codes(&server, &token);
    for code in &acked {
        assert!(served.contains(code), "acknowledged {code} lost");
    }
    assert!(served.len() >= initial + acked.len());
    let mut c = postgres::Client::connect(&standby.url(&db), postgres::NoTls).unwrap();
    let n: i64 = c.query_one("SELECT count(*) FROM manhole WHERE code = ANY($1)", &[&acked]).unwrap().get(0);
    assert_eq!(n as usize, acked.len());
}
