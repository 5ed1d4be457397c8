//! What every deployment has: health, Prometheus metrics per route template, the OpenAPI document
//! (snapshot), HTML for browsers, CORS, the fallback 404.

use axum::http::StatusCode;
use serde_json::json;

use crate::support::*;

#[test]
fn health_is_ok_without_a_login() {
    let env = manholes().env();
    let r = env.get("/healthz").send();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json(), json!({"status": "ok"}));
}

#[test]
fn metrics_count_requests_per_route() {
    let env = manholes().env();
    for _ in 0..3 {
        let r = env.get("/collections/manhole/items?limit=1").token(&env.token("wang")).send();
        assert_eq!(r.status, StatusCode::OK);
    }
    let m = env.get("/metrics").send().text();
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
    // Both verification outcomes exist from the start.
    assert!(m.contains("shikong_sync_verifications_total{outcome=\"differed\"} 0"), "{m}");
}

#[test]
fn unknown_paths_are_problem_json() {
    let env = manholes().env();
    let p = problem(&env.get("/no/such/path").send(), StatusCode::NOT_FOUND);
    assert!(p["detail"].as_str().unwrap().contains("no such resource"), "{p}");
}

#[test]
fn browsers_get_html() {
    let env = manholes().env();
    for path in ["/", "/conformance", "/api", "/collections"] {
        let r = env.get(path).header("accept", "text/html").token(&env.token("wang")).send();
        assert_eq!(r.status, StatusCode::OK, "{path}");
        assert!(r.header("content-type").starts_with("text/html"), "{path}: {:?}", r.headers);
        assert!(r.text().contains("<html lang=\"zh-CN\">"), "{path}");
    }
    // `?f=json` wins over the Accept header.
    let r = env.get("/?f=json").header("accept", "text/html").send();
    assert_eq!(r.header("content-type"), "application/json");
}

#[test]
fn cors_headers_for_the_configured_origins() {
    let env = manholes().env_with(|c| c.cors_origins = vec!["https://map.example.cn".into()]);
    let r = env.get("/healthz").header("origin", "https://map.example.cn").send();
    assert_eq!(r.header("access-control-allow-origin"), "https://map.example.cn");
    let r = env.get("/healthz").header("origin", "https://elsewhere.example").send();
    assert!(!r.headers.contains_key("access-control-allow-origin"), "{:?}", r.headers);
    // Without configured origins: no CORS headers at all.
    let env = manholes().env();
    let r = env.get("/healthz").header("origin", "https://map.example.cn").send();
    assert!(!r.headers.contains_key("access-control-allow-origin"), "{:?}", r.headers);
}

#[test]
fn openapi_snapshot() {
    let env = manholes().env();
    let r = env.get("/api").send();
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("content-type"), "application/vnd.oai.openapi+json;version=3.0");
    // The crate version changes with every release; the document's shape does not.
    insta::assert_json_snapshot!("openapi", r.json(), {".info.version" => "[version]"});
}

#[test]
fn metric_labels_come_from_closed_sets() {
    let env = manholes().env();
    // HTTP allows any token as a method, and any path: neither may become a label value.
    for (i, path) in ["/healthz", "/no/such/path-1", "/no/such/path-2"].iter().enumerate() {
        let method = axum::http::Method::from_bytes(format!("X-WEIRD-{i}").as_bytes()).unwrap();
        let r = env.request(method, path).send();
        assert!(r.status.is_client_error(), "{}", r.status);
    }
    let r = env.get("/no/such/path-3").send();
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let m = env.get("/metrics").send().text();
    assert!(!m.contains("X-WEIRD"), "{m}");
    assert!(!m.contains("/no/such"), "{m}");
    assert!(m.lines().any(|l| l.starts_with("shikong_http_requests_total") && l.contains("method=\"other\"")), "{m}");
    assert!(
        m.lines().any(|l| l.starts_with("shikong_http_requests_total")
            && l.contains("method=\"GET\"")
            && l.contains("route=\"unmatched\"")),
        "{m}"
    );
}
