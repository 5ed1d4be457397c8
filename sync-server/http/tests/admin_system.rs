//! The admin console's page and assets (`/admin`) and the system resources behind its 系统资源
//! tab (`GET /admin/system`, `PUT /admin/system/thresholds`): administrators only, thresholds
//! validated and kept in the data folder across a restart, a crossed threshold raising an alert
//! on the live channel and closing it when the value is back.

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::json;

use crate::events::{off, open, runtime};
use crate::support::*;

#[test]
fn the_console_page_and_its_assets_are_served() {
    let env = manholes().env();
    let r = env.get("/admin").send();
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.header("content-type").starts_with("text/html"), "{:?}", r.headers);
    let html = r.text();
    assert!(html.contains("管理控制台") && html.contains("需要管理员权限"), "{html}");
    assert!(html.contains("/admin/assets/admin.js"), "{html}");
    let js = env.get("/admin/assets/admin.js").send();
    assert_eq!(js.status, StatusCode::OK);
    assert_eq!(js.header("content-type"), "text/javascript; charset=utf-8");
    assert_eq!(js.header("cache-control"), "public, max-age=3600");
    // The bundle holds its Chinese words as text, and the admin APIs it calls.
    let text = js.text();
    for w in ["用户与审批", "/admin/system/thresholds", "/admin/audit", "/keys", "/services"] {
        assert!(text.contains(w), "admin.js lacks {w}");
    }
    let css = env.get("/admin/assets/admin.css").send();
    assert_eq!((css.status, css.header("content-type")), (StatusCode::OK, "text/css; charset=utf-8"));
    assert_eq!(env.get("/admin/assets/nope.js").send().status, StatusCode::NOT_FOUND);
    assert_eq!(env.get("/admin?secret=1").send().status, StatusCode::BAD_REQUEST);
}

#[test]
fn only_administrators_see_the_system() {
    let env = manholes().env();
    assert_eq!(env.get("/admin/system").send().status, StatusCode::UNAUTHORIZED);
    for user in ["wang", "li", "zhang"] {
        let r = env.get("/admin/system").token(&env.token(user)).send();
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}: {}", r.text());
        let r = env.put("/admin/system/thresholds").token(&env.token(user)).json(&json!({"memory_max_mb": 1})).send();
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{user}");
    }
    assert!(!env.dir.path().join(shikong_http::system::THRESHOLDS_FILE).exists(), "a refused call wrote nothing");
    let s = env.get("/admin/system").token(&env.token("admin")).send().json();
    // The data folder's file system and this process's memory, as Linux tells them.
    assert!(s["disk"]["total_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["disk"]["free_bytes"].as_u64().unwrap() <= s["disk"]["total_bytes"].as_u64().unwrap(), "{s}");
    let pct = s["disk"]["free_percent"].as_f64().unwrap();
    assert!((0.0..=100.0).contains(&pct), "{s}");
    assert!(s["memory"]["rss_bytes"].as_u64().unwrap() > 1 << 20, "{s}");
    assert!(s["memory"]["machine_total_bytes"].as_u64().unwrap() > s["memory"]["rss_bytes"].as_u64().unwrap(), "{s}");
    // The requests counted so far: the refusals above (and not more than were sent).
    let total = s["requests"]["total"].as_u64().unwrap();
    assert!((7..=8).contains(&total), "{s}");
    assert_eq!(s["thresholds"], json!({}), "{s}");
    assert_eq!(s["alerts"], json!([]), "{s}");
}

#[test]
fn thresholds_are_checked_kept_and_raise_alerts() {
    let env = manholes().env();
    let admin = env.token("admin");
    // Bad values are refused naming the member; unknown members too.
    for (body, field) in [
        (json!({"disk_free_min_percent": 101}), "disk_free_min_percent"),
        (json!({"memory_max_mb": 0}), "memory_max_mb"),
        (json!({"requests_max_per_second": -1}), "requests_max_per_second"),
    ] {
        let r = env.put("/admin/system/thresholds").token(&admin).json(&body).send();
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {}", r.text());
        assert_eq!(r.json()["field"], field, "{}", r.text());
    }
    let r = env.put("/admin/system/thresholds").token(&admin).json(&json!({"disk_percent": 5})).send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    let r = env.put("/admin/system/thresholds").token(&admin).body(vec![b' '; 5000]).send();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());

    runtime().block_on(async {
        let mut stream = open(&env, &admin).await.unwrap();
        let mut office = open(&env, &env.token("wang")).await.unwrap();
        // 1 MiB of memory is crossed at once (the test process holds far more): an open alert,
        // told to administrators; free space of 100 % cannot be had on a used disk: crossed too.
        let s = off(|| {
            env.put("/admin/system/thresholds")
                .token(&admin)
                .json(&json!({"memory_max_mb": 1, "disk_free_min_percent": 100}))
                .send()
        });
        assert_eq!(s.status, StatusCode::OK, "{}", s.text());
        let s = s.json();
        let metrics: Vec<&str> =
            s["alerts"].as_array().unwrap().iter().map(|a| a["metric"].as_str().unwrap()).collect();
        assert_eq!(metrics, ["disk_free", "memory"], "{s}");
        let mem = s["alerts"].as_array().unwrap().iter().find(|a| a["metric"] == "memory").unwrap();
        assert!(mem["message"].as_str().unwrap().starts_with("服务进程内存"), "{s}");
        assert_eq!(mem["threshold"], 1.0, "{s}");
        let mut seen = Vec::new();
        for _ in 0..2 {
            let m = stream.next(Duration::from_secs(5)).await.expect("the alert reaches the administrator");
            assert_eq!((m["type"].as_str(), m["state"].as_str()), (Some("system_alert"), Some("open")), "{m}");
            seen.push(m["metric"].as_str().unwrap().to_owned());
        }
        seen.sort();
        assert_eq!(seen, ["disk_free", "memory"]);
        // Checked again: still open, not told twice.
        let again = off(|| env.get("/admin/system").token(&admin).send()).json();
        assert_eq!(again["alerts"].as_array().unwrap().len(), 2, "{again}");
        assert_eq!(again["alerts"][1]["since"], s["alerts"][1]["since"], "the alert keeps its start");
        assert!(stream.next(Duration::from_millis(300)).await.is_none(), "no second message for an open alert");
        // The memory threshold raised far above: that alert closes (told), the disk one stays.
        let s = off(|| {
            env.put("/admin/system/thresholds")
                .token(&admin)
                .json(&json!({"memory_max_mb": 16 * 1024 * 1024, "disk_free_min_percent": 100}))
                .send()
        })
        .json();
        assert_eq!(s["alerts"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(s["alerts"][0]["metric"], "disk_free", "{s}");
        let m = stream.next(Duration::from_secs(5)).await.expect("the recovery is told");
        assert_eq!((m["metric"].as_str(), m["state"].as_str()), (Some("memory"), Some("closed")), "{m}");
        // Office staff hear nothing of it.
        assert!(office.next(Duration::from_millis(300)).await.is_none(), "office staff are not told");
    });

    // Kept in the data folder: a restarted server has them, and judges them at its first check.
    let file = env.dir.path().join(shikong_http::system::THRESHOLDS_FILE);
    let kept: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(kept["disk_free_min_percent"], 100.0);
    let env = env.restarted_with(|_| {});
    let s = env.get("/admin/system").token(&admin).send().json();
    assert_eq!(s["thresholds"], json!({"disk_free_min_percent": 100.0, "memory_max_mb": 16 * 1024 * 1024}), "{s}");
    assert_eq!(s["alerts"][0]["metric"], "disk_free", "{s}");
    // Cleared: nothing watched, nothing open.
    let s = env.put("/admin/system/thresholds").token(&admin).json(&json!({})).send().json();
    assert_eq!((s["thresholds"].clone(), s["alerts"].clone()), (json!({}), json!([])), "{s}");
}
