//! Sync routes in process: replica size estimates checked against replicas actually cut from the
//! demo data, with the same refusals as the cut itself; attachments (resumable upload) are
//! exercised by the citizen reports in `reports.rs`. Push, pull and convergence over real sockets
//! with many devices stay in the end-to-end tests.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

/// `(features per layer, file bytes)` of a replica cut for `req`.
fn cut(env: &Env, token: &str, req: &Json) -> (Vec<(String, u64)>, u64) {
    let r = env.post("/sync/replicas").token(token).json(req).send();
    assert_eq!(r.status, StatusCode::CREATED);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.gpkg");
    std::fs::write(&path, &r.body).unwrap();
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
    (counts, r.body.len() as u64)
}

#[test]
fn replica_estimates_are_close_to_the_files_cut() {
    let env = demo().env();
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
        let r = env.post("/sync/replicas/estimate").token(&li).json(req).send();
        assert_eq!(r.status, StatusCode::OK, "{req}");
        let est = r.json();
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
    let p = problem(&env.post("/sync/replicas/estimate").token(&li).json(&unknown).send(), StatusCode::NOT_FOUND);
    assert_eq!(p["sync"]["code"], "unknown-layer", "{p}");
    problem(&env.post("/sync/replicas/estimate").json(&requests[0]).send(), StatusCode::UNAUTHORIZED);
    let zhang = env.login("zhang");
    let p =
        problem(&env.post("/sync/replicas/estimate").token(&zhang).json(&requests[4]).send(), StatusCode::FORBIDDEN);
    assert!(p["detail"].as_str().unwrap().contains("citizen_report"), "{p}");
    let bad_area = json!({"protocol": 1, "layers": ["manhole"], "area": "POINT(114 30)"});
    problem(&env.post("/sync/replicas/estimate").token(&li).json(&bad_area).send(), StatusCode::BAD_REQUEST);
    let api = env.get("/api").send().json();
    assert!(api["paths"]["/sync/replicas/estimate"]["post"].is_object());
}

#[test]
fn a_replica_is_a_geopackage_of_the_layers_asked_for() {
    let env = manholes().env();
    let li = env.token("li");
    let req = json!({"protocol": 1, "layers": ["manhole"], "name": "巡查平板"});
    let r = env.post("/sync/replicas").token(&li).json(&req).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/geopackage+sqlite3");
    let id = r.header("x-shikong-replica").to_owned();
    assert!(r.header("content-disposition").contains(&format!("replica-{id}.gpkg")));
    let (counts, _) = cut(&env, &li, &req);
    assert_eq!(counts, [("manhole".to_owned(), 3)]);
    // Citizens get no replica of a protected layer; a bad body names the problem.
    let zhang = env.token("zhang");
    problem(&env.post("/sync/replicas").token(&zhang).json(&req).send(), StatusCode::FORBIDDEN);
    let p = problem(&env.post("/sync/replicas").token(&li).body("{").send(), StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("invalid sync message"), "{p}");
}
