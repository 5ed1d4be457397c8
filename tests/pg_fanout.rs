//! Two `shikong serve` processes on one PostgreSQL database, each with its own data folder (its
//! own tile cache): a write through process A drops the tiles it touched from process B's cache
//! by itself — B hears A's commit (`LISTEN shikong_commit`, `shikong_store::watch`) and catches
//! up without any request to it — and B's next tile shows the change.

use std::path::Path;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::server::Server;
use crate::common::*;
use crate::tiles_common::xyz;

const PASSWORD: &str = "办公室密码123";

/// Rows of B's tile cache for `layer` at tile `z/x/y` (any matrix set), read from its file.
fn cached(data: &Path, layer: &str, (z, x, y): (u8, u32, u32)) -> i64 {
    let file = data.join("tiles/cache.sqlite");
    if !file.exists() {
        return 0;
    }
    let conn = rusqlite::Connection::open_with_flags(&file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.query_row(
        "SELECT count(*) FROM tiles WHERE layer = ?1 AND z = ?2 AND x = ?3 AND y = ?4",
        rusqlite::params![layer, z, x, y],
        |r| r.get(0),
    )
    .unwrap()
}

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

#[test]
fn a_write_through_one_process_drops_the_other_processes_cached_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let (data_a, data_b) = (dir.path().join("a"), dir.path().join("b"));
    let url = shikong_pgtest::Cluster::shared().fresh_db();
    let (lon, lat) = (114.3512, 30.5123);
    let points = json!({"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]}, "properties": {"code": "JG-1", "名称": "一号井盖"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon + 0.003, lat]}, "properties": {"code": "JG-2", "名称": "二号井盖"}},
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat + 0.003]}, "properties": {"code": "JG-3", "名称": "三号井盖"}},
    ]});
    let file = write(dir.path(), "manholes.geojson", &points.to_string());
    for data in [&data_a, &data_b] {
        ok(&["init", "--data", s(data), "--store", &url]);
    }
    let a_store = ["--data", s(&data_a), "--store", url.as_str()];
    ok(&[&["import"][..], &a_store[..], &["--layer", "manhole", "--title", "井盖", s(&file)]].concat());
    // Public, so B serves tiles without an account of its own.
    let mut def = json(&ok(&[&["layer", "show"][..], &a_store[..], &["manhole"]].concat()));
    def["public"] = json!(true);
    let schema = write(dir.path(), "manhole.json", &def.to_string());
    ok(&[&["layer", "edit"][..], &a_store[..], &["manhole", "--schema", s(&schema)]].concat());
    ok_stdin(&[&["user", "add"][..], &a_store[..], &["--role", "office", "wang"]].concat(), &format!("{PASSWORD}\n"));

    let a = Server::start(s(&data_a), &["--store", &url]);
    let b = Server::start(s(&data_b), &["--store", &url]);
    let http = reqwest::blocking::Client::new();
    let r = http.post(a.url("/auth/login")).json(&json!({"username": "wang", "password": PASSWORD})).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Json>().unwrap()["token"].as_str().unwrap().to_owned();

    // B renders and caches the tile holding JG-1.
    let z = 14;
    let (x, y) = xyz(lon, lat, z);
    let path = format!("/tiles/manhole/{z}/{x}/{y}.mvt");
    let tile = |server: &Server| {
        let r = http.get(server.url(&path)).send().unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path} from {}", server.base);
        r.bytes().unwrap().to_vec()
    };
    let before = tile(&b);
    assert!(!before.is_empty(), "the tile holds the points");
    // Rendered tiles are queued and written to the cache file in batches (the next one after a
    // second): other tiles requested meanwhile push it to the file.
    let mut other = x;
    eventually(Duration::from_secs(10), "B caches the tile in its file", || {
        other += 1;
        let r = http.get(b.url(&format!("/tiles/manhole/{z}/{other}/{y}.mvt"))).send().unwrap();
        assert!(r.status().is_success(), "tile {other}: {}", r.status());
        std::thread::sleep(Duration::from_millis(200));
        cached(&data_b, "manhole", (z, x, y)) > 0
    });

    // A moves JG-1 a little (staying in the same tile).
    let fc = a.get_json("/collections/manhole/items?limit=10", &token);
    let id = fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["properties"]["code"] == "JG-1")
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .expect("JG-1 through A");
    let moved = json!({"geometry": {"type": "Point", "coordinates": [lon + 0.001, lat + 0.001]}});
    let r =
        http.patch(a.url(&format!("/collections/manhole/items/{id}"))).bearer_auth(&token).json(&moved).send().unwrap();
    assert_eq!(r.status(), StatusCode::OK, "PATCH through A: {}", r.text().unwrap_or_default());

    // Without any request to B, B's cache loses the tile: it heard A's commit.
    let took = eventually(Duration::from_secs(5), "B drops its stale tile by itself", || {
        cached(&data_b, "manhole", (z, x, y)) == 0
    });
    eprintln!("pg fan-out: A's commit → B's cached tile dropped in {took:?}");

    // And B's tile now shows the move, as A's does.
    let after = tile(&b);
    assert_ne!(after, before, "B serves the moved point");
    assert_eq!(after, tile(&a), "both processes serve the same tile");
}
