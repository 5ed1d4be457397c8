//! `GET /cases/stats`: the supervision figures over cases run through the standard flow.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

fn photo(env: &Env, user: &str, seed: u32) -> String {
    let bytes: Vec<u8> = (0..5_000u32).map(|i| (i.wrapping_mul(seed) % 251) as u8).collect();
    let sha = shikong_replica::sha256_hex(&bytes);
    let r = env
        .put(&format!("/sync/blobs/{sha}"))
        .token(&env.token(user))
        .header("content-type", "image/jpeg")
        .header("content-range", &format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len()))
        .body(bytes)
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    sha
}

/// Opens a case and runs `steps` (user, action, extra members); returns its id.
fn run(env: &Env, class: &str, steps: &[(&str, &str, Json)]) -> String {
    let body = json!({"class": class, "location": {"type": "Point", "coordinates": [114.36, 30.51]},
                      "description": "统计用案件", "source": "inspector"});
    let r = env.post("/cases").token(&env.token("wang")).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for (i, (user, action, extra)) in steps.iter().enumerate() {
        let mut b = json!({"action": action, "action_id": format!("{id}-{i}")});
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let r = env.post(&format!("/cases/{id}/actions")).token(&env.token(user)).json(&b).send();
        assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.text());
    }
    id
}

#[test]
fn stats_count_registration_on_time_handling_and_rework() {
    let env = manholes().env();
    let handled = |seed| json!({"photos": [photo(&env, "li", seed)], "note": "已处置"});
    let to_li = || json!({"assignee": "li"});
    let none = || json!({});
    // Closed on time.
    run(
        &env,
        "0102",
        &[
            ("wang", "accept", none()),
            ("wang", "register", none()),
            ("wang", "dispatch", to_li()),
            ("li", "handle", handled(3)),
            ("wang", "verify", none()),
            ("wang", "close", none()),
        ],
    );
    // Handled, sent back (返工), handled again.
    run(
        &env,
        "0102",
        &[
            ("wang", "accept", none()),
            ("wang", "register", none()),
            ("wang", "dispatch", to_li()),
            ("li", "handle", handled(5)),
            ("wang", "return", json!({"note": "未清理干净"})),
            ("li", "handle", handled(7)),
        ],
    );
    // Accepted, not registered.
    run(&env, "0101", &[("wang", "accept", none())]);

    let r = env.get("/cases/stats").token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let all = &r.json()["groups"][0];
    assert_eq!(all["key"], "all");
    assert_eq!(all["cases"], 3);
    let parts = |k: &str| (all[k]["numerator"].as_u64().unwrap(), all[k]["denominator"].as_u64().unwrap());
    assert_eq!(parts("registration_rate"), (2, 3), "{all}");
    assert_eq!(parts("on_time_handling_rate"), (3, 3), "{all}");
    assert_eq!(parts("on_time_closing_rate"), (1, 1), "{all}");
    assert_eq!(parts("rework_rate"), (1, 2), "{all}");
    assert!(all["average_handling_hours"].as_f64().is_some_and(|h| h >= 0.0), "{all}");

    let by_dept = env.get("/cases/stats?group_by=department").token(&env.token("wang")).send().json();
    let keys: Vec<&str> = by_dept["groups"].as_array().unwrap().iter().map(|g| g["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["(none)", "li"], "{by_dept}");
    let by_class = env.get("/cases/stats?group_by=class").token(&env.token("wang")).send().json();
    assert_eq!(by_class["groups"].as_array().unwrap().len(), 2, "{by_class}");

    // The period: nothing before 2000.
    let r = env.get("/cases/stats?to=2000-01-01T00:00:00Z").token(&env.token("wang")).send().json();
    assert_eq!(r["groups"], json!([]), "{r}");
    // Refusals.
    let p = problem(&env.get("/cases/stats?group_by=street").token(&env.token("wang")).send(), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "group_by", "{p}");
    let r = env.get("/cases/stats").token(&env.token("li")).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
}

/// The office's web view: sign in with a form, a session cookie for reads only, the list and the
/// case page, sign out.
#[test]
fn office_pages_show_cases_to_signed_in_staff() {
    let env = manholes().env();
    let id = run(&env, "0102", &[("wang", "accept", json!({})), ("wang", "register", json!({}))]);
    let r = env.get("/office/cases").send();
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/office/login"));
    let form = |user: &str, password: &str| {
        env.post("/office/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("username={}&password={}", enc(user), enc(password)))
            .send()
    };
    let r = form("wang", "wrong");
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("<form"), "the form again, with the reason");
    let r = form("li", PASSWORD);
    assert_eq!(r.status, StatusCode::FORBIDDEN, "an inspector is not office staff: {}", r.text());

    let r = form("wang", PASSWORD);
    assert_eq!((r.status, r.header("location")), (StatusCode::SEE_OTHER, "/office/cases"));
    let set = r.header("set-cookie").to_owned();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();

    let page = env.get("/office/cases").header("cookie", &cookie).send();
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    let case = env.get(&format!("/cases/{id}")).token(&env.token("wang")).send().json();
    let number = case["case_no"].as_str().unwrap();
    assert!(page.text().contains(number) && page.text().contains("已立案"), "{}", page.text());
    let one = env.get(&format!("/office/cases/{id}")).header("cookie", &cookie).send();
    assert_eq!(one.status, StatusCode::OK);
    let text = one.text();
    assert!(text.contains("accept") && text.contains("register") && text.contains("wang"), "{text}");
    // Markup in data is escaped.
    assert!(!text.contains("<script"), "{text}");

    // The cookie is never trusted for a write.
    let body = json!({"action": "dispatch", "action_id": "cookie-1", "assignee": "li"});
    let r = env.post(&format!("/cases/{id}/actions")).header("cookie", &cookie).json(&body).send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // Signing out revokes the session.
    let r = env.post("/office/logout").header("cookie", &cookie).send();
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.header("set-cookie").contains("Max-Age=0"));
    let r = env.get("/office/cases").header("cookie", &cookie).send();
    assert_eq!(r.status, StatusCode::SEE_OTHER, "the old cookie no longer signs in");
}
