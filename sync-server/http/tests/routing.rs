//! Dispatch rules at run time (派遣规则): an administrator sets them over HTTP (validated, kept
//! across a restart); a case waiting for a dispatch shows where they send it by its unit grid and
//! class; a dispatch without an assignee goes there; the office's own choice wins; no rule, no
//! guess.

use std::sync::LazyLock;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_http::grid::GRID_LAYER;

use crate::support::*;

fn template() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(&[("root", "admin"), ("wang", "office"), ("li", "inspector")], |store, dir| {
            // Two unit grid cells side by side in 洪山区 (15-digit codes: street and community
            // follow from the prefixes).
            let cell = |code: &str, x0: f64| {
                json!({"type": "Feature", "properties": {"grid_code": code}, "geometry": {"type": "Polygon",
                    "coordinates": [[[x0, 30.50], [x0 + 0.01, 30.50], [x0 + 0.01, 30.51], [x0, 30.51], [x0, 30.50]]]}})
            };
            let fc = json!({"type": "FeatureCollection", "features": [
                cell("420111001002001", 114.30), cell("420111002003004", 114.31)]});
            let file = dir.join("grid.geojson");
            std::fs::write(&file, fc.to_string()).unwrap();
            import(store, &file, GRID_LAYER, Some("单元网格"));
        })
    });
    &T
}

fn open(env: &Env, class: &str, x: f64) -> String {
    let body = json!({"class": class, "location": {"type": "Point", "coordinates": [x, 30.505]}, "source": "hotline"});
    let r = env.post("/cases").token(&env.token("wang")).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    for (i, action) in ["accept", "register"].into_iter().enumerate() {
        let b = json!({"action": action, "action_id": format!("{id}-{i}")});
        let r = env.post(&format!("/cases/{id}/actions")).token(&env.token("wang")).json(&b).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    }
    id
}

fn case(env: &Env, id: &str) -> Json {
    let r = env.get(&format!("/cases/{id}")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn dispatch(env: &Env, id: &str, assignee: Option<&str>) -> crate::support::Resp {
    let mut b = json!({"action": "dispatch", "action_id": format!("{id}-d")});
    if let Some(a) = assignee {
        b["assignee"] = json!(a);
    }
    env.post(&format!("/cases/{id}/actions")).token(&env.token("wang")).json(&b).send()
}

#[test]
fn dispatch_rules_route_cases_by_grid_and_class() {
    let env = template().env();
    let rules = json!({"rules": [
        {"department": "城管局"},
        {"class": "01", "department": "环卫所"},
        {"class": "0102", "street": "420111001", "department": "洪山街环卫站"},
        {"grid": "420111002003004", "class": "01", "department": "网格四环卫组"}
    ]});
    // Only an administrator sets them; office staff read them; inspectors do neither.
    let r = env.put("/cases/routing").token(&env.token("wang")).json(&rules).send();
    problem(&r, StatusCode::FORBIDDEN);
    let r = env.put("/cases/routing").token(&env.token("root")).json(&rules).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = env.get("/cases/routing").token(&env.token("wang")).send();
    assert_eq!(r.json(), rules);
    problem(&env.get("/cases/routing").token(&env.token("li")).send(), StatusCode::FORBIDDEN);

    // 暴露垃圾 (0102) in the first cell: the street rule is the most specific.
    let a = open(&env, "0102", 114.305);
    assert_eq!(case(&env, &a)["route"], "department:洪山街环卫站");
    let r = dispatch(&env, &a, None);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["case"]["assignee"], "department:洪山街环卫站");
    assert_eq!(r.json()["transition"]["assignee"], "department:洪山街环卫站");
    assert!(r.json()["case"].get("route").is_none(), "a dispatched case waits for no dispatch");
    // Another 市容环境 event in the other cell: the grid rule wins over the class rule.
    let b = open(&env, "0101", 114.315);
    assert_eq!(case(&env, &b)["route"], "department:网格四环卫组");
    // The office's own choice wins over the rules.
    let r = dispatch(&env, &b, Some("user:li"));
    assert_eq!(r.json()["case"]["assignee"], "user:li");
    // Outside every cell, another major class: the catch-all rule.
    let c = open(&env, "0201", 114.50);
    assert_eq!(case(&env, &c)["route"], "department:城管局");

    // Kept across a restart (DATA/routing.json).
    let env = env.restarted_with(|_| {});
    let r = env.get("/cases/routing").token(&env.token("wang")).send();
    assert_eq!(r.json(), rules);
    assert_eq!(case(&env, &c)["route"], "department:城管局");
}

#[test]
fn without_a_matching_rule_a_dispatch_needs_its_assignee_and_bad_rules_change_nothing() {
    let env = template().env();
    let id = open(&env, "0102", 114.305);
    assert!(case(&env, &id).get("route").is_none());
    let p = problem(&dispatch(&env, &id, None), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "assignee", "{p}");
    assert_eq!(case(&env, &id)["state"], "registered", "nothing changed");

    let good = json!({"rules": [{"class": "02", "department": "市政所"}]});
    let r = env.put("/cases/routing").token(&env.token("root")).json(&good).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    for (bad, field) in [
        (json!({"rules": [{"class": "01", "department": ""}]}), "rules[0].department"),
        (json!({"rules": [{"department": "a"}, {"grid": "4201 11", "department": "b"}]}), "rules[1].grid"),
        (json!({"rules": [{"department": "department:x"}]}), "rules[0].department"),
    ] {
        let p = problem(
            &env.put("/cases/routing").token(&env.token("root")).json(&bad).send(),
            StatusCode::UNPROCESSABLE_ENTITY,
        );
        assert_eq!(p["field"], field, "{p}");
    }
    let p = problem(
        &env.put("/cases/routing").token(&env.token("root")).json(&json!({"rules": [{"dept": "x"}]})).send(),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("dept"), "{p}");
    let r = env.get("/cases/routing").token(&env.token("wang")).send();
    assert_eq!(r.json(), good, "refused edits changed nothing");
    // A class the rules do not cover still needs its assignee.
    problem(&dispatch(&env, &id, None), StatusCode::UNPROCESSABLE_ENTITY);
}
