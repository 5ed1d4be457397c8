//! The case runtime in process (issue 15), on the demo data: the office opens a case and moves it
//! through the standard flow with an inspector handling it with an uploaded photo; every kind of
//! refusal over HTTP changes nothing; an action id sent twice is answered twice but applied once;
//! the case feature's history holds every transition with its actor and time; a citizen's report
//! opens a case whose public progress `/reports/mine` shows without staff notes; `GET /cases`
//! filters.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

/// Uploads `seed`-made bytes as an attachment by `user`; returns its SHA-256.
fn upload_photo(env: &Env, user: &str, seed: u32) -> String {
    let photo: Vec<u8> = (0..20_000u32).map(|i| (i.wrapping_mul(seed) % 251) as u8).collect();
    let sha = shikong_replica::sha256_hex(&photo);
    let r = env
        .put(&format!("/sync/blobs/{sha}"))
        .token(&env.token(user))
        .header("content-type", "image/jpeg")
        .header("content-range", &format!("bytes 0-{}/{}", photo.len() - 1, photo.len()))
        .body(photo)
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    sha
}

fn open_case(env: &Env, body: &Json) -> Json {
    let r = env.post("/cases").token(&env.token("wang")).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert!(r.header("location").ends_with(&format!("/cases/{}", r.json()["id"].as_str().unwrap())));
    r.json()
}

fn rubbish_case(env: &Env) -> Json {
    open_case(
        env,
        &json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.36, 30.51]},
                "description": "珞喻路公交站旁暴露垃圾", "source": "hotline", "source_ref": "12345-20261206-0001",
                "asset": "manhole/420111-JG-00007"}),
    )
}

/// Sends an action as `user`; returns the response.
fn act(env: &Env, case: &str, user: &str, body: Json) -> Resp {
    env.post(&format!("/cases/{case}/actions")).token(&env.token(user)).json(&body).send()
}

#[track_caller]
fn ok_act(env: &Env, case: &str, user: &str, body: Json) -> Json {
    let r = act(env, case, user, body);
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn get_case(env: &Env, case: &str, user: &str) -> Json {
    let r = env.get(&format!("/cases/{case}")).token(&env.token(user)).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

#[test]
fn office_runs_a_case_from_accept_to_close() {
    let env = demo().env();
    let case = rubbish_case(&env);
    let id = case["id"].as_str().unwrap().to_owned();
    assert_eq!(case["state"], "reported");
    assert_eq!(case["state_label"], "信息收集（已上报）");
    assert_eq!(case["state_label_en"], "Reported", "the flow's English label beside the Chinese one");
    assert_eq!(case["flow"], json!({"id": "city-standard", "version": 1}));
    let no = case["case_no"].as_str().unwrap();
    assert!(no.len() == 11 && no.as_bytes()[4] == b'-', "{no}");
    assert_eq!((case["class"].as_str(), case["class_kind"].as_str()), (Some("0102"), Some("event")));
    assert_eq!(case["location"], json!({"type": "Point", "coordinates": [114.36, 30.51]}));
    assert!(case["stage_deadline"].as_str().unwrap().ends_with("+08:00"), "{case}");
    assert_eq!(case["transitions"], json!([]));

    ok_act(&env, &id, "wang", json!({"action": "accept", "action_id": "a1"}));
    ok_act(&env, &id, "wang", json!({"action": "register", "action_id": "a2"}));
    let r = ok_act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "a3", "assignee": "user:li"}));
    assert_eq!(r["replayed"], false);
    assert_eq!(r["case"]["state"], "dispatched");
    assert_eq!(r["case"]["assignee"], "user:li");
    // 暴露垃圾's 处置时限 is 4 working hours: the dispatched stage has a deadline.
    let deadline = r["case"]["stage_deadline"].as_str().unwrap().to_owned();
    assert!(deadline.ends_with("+08:00") && *deadline > *r["transition"]["at"].as_str().unwrap());

    // The inspector now sees the case assigned to them, and handles it with an uploaded photo.
    assert_eq!(get_case(&env, &id, "li")["assignee"], "user:li");
    let photo = upload_photo(&env, "li", 7);
    let r =
        ok_act(&env, &id, "li", json!({"action": "handle", "action_id": "a4", "photos": [photo], "note": "已清运"}));
    assert_eq!(r["transition"]["photos"], json!([photo]));
    assert_eq!(r["case"]["state"], "handled");
    // The verifier in the office can open the evidence.
    let r = env.get(&format!("/sync/blobs/{photo}")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    ok_act(&env, &id, "wang", json!({"action": "verify", "action_id": "a5"}));
    let r = ok_act(&env, &id, "wang", json!({"action": "close", "action_id": "a6"}));
    assert_eq!(r["case"]["state"], "closed");
    assert_eq!(r["case"]["stage_deadline"], Json::Null, "no clock runs in a closed case");

    let doc = get_case(&env, &id, "wang");
    let steps: Vec<(&str, &str, &str)> = doc["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["action"].as_str().unwrap(), t["actor"].as_str().unwrap(), t["to"].as_str().unwrap()))
        .collect();
    assert_eq!(
        steps,
        [
            ("accept", "wang", "accepted"),
            ("register", "wang", "registered"),
            ("dispatch", "wang", "dispatched"),
            ("handle", "li", "handled"),
            ("verify", "wang", "verified"),
            ("close", "wang", "closed"),
        ]
    );
    // The case number finds it too.
    assert_eq!(get_case(&env, doc["case_no"].as_str().unwrap(), "wang")["id"], id.as_str());

    // The case feature's history: one version per transition, by the actor, at the transition's time.
    let h = env.get(&format!("/collections/cases/items/{id}/history")).token(&env.token("wang")).send();
    assert_eq!(h.status, StatusCode::OK, "{}", h.text());
    let versions = h.json()["versions"].as_array().unwrap().clone();
    assert_eq!(versions.len(), 7, "opening + six transitions");
    let authors: Vec<&str> = versions.iter().map(|v| v["tx"]["author"].as_str().unwrap()).collect();
    assert_eq!(authors, ["wang", "wang", "wang", "wang", "li", "wang", "wang"]);
    for (v, t) in versions[1..].iter().zip(doc["transitions"].as_array().unwrap()) {
        let (tx_time, at) = (v["tx"]["time"].as_str().unwrap(), t["at"].as_str().unwrap());
        assert_eq!(tx_time[..19], at[..19], "the transition's time is its version's transaction time");
    }
    // Nobody writes the case layer around the flow: the office reads it, the inspector not at all.
    let patch = json!({"properties": {"state": "closed"}});
    let r = env.patch(&format!("/collections/cases/items/{id}")).token(&env.token("wang")).json(&patch).send();
    problem(&r, StatusCode::FORBIDDEN);
    problem(&env.get("/collections/cases/items").token(&env.token("li")).send(), StatusCode::FORBIDDEN);
}

#[test]
fn refusals_name_what_and_change_nothing() {
    let env = demo().env();
    let id = rubbish_case(&env)["id"].as_str().unwrap().to_owned();
    let version = || get_case(&env, &id, "wang")["version"].as_i64().unwrap();
    let before = version();

    // Wrong role: an inspector cannot accept (and may not even see an unassigned case).
    problem(&act(&env, &id, "li", json!({"action": "accept", "action_id": "x1"})), StatusCode::FORBIDDEN);
    // Wrong state: dispatching a case nobody accepted.
    let p = problem(
        &act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "x2", "assignee": "li"})),
        StatusCode::CONFLICT,
    );
    assert!(p["type"].as_str().unwrap().ends_with("wrong_state"), "{p}");
    assert_eq!(p["refusal"]["state"], "reported");
    // Unknown action.
    let p = problem(
        &act(&env, &id, "wang", json!({"action": "approve", "action_id": "x3"})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert!(p["detail"].as_str().unwrap().contains("approve"), "{p}");
    // An empty action id; a malformed body.
    problem(&act(&env, &id, "wang", json!({"action": "accept", "action_id": " "})), StatusCode::UNPROCESSABLE_ENTITY);
    problem(&act(&env, &id, "wang", json!({"action": "accept"})), StatusCode::BAD_REQUEST);
    assert_eq!(version(), before, "refused actions wrote nothing");

    ok_act(&env, &id, "wang", json!({"action": "accept", "action_id": "a1"}));
    ok_act(&env, &id, "wang", json!({"action": "register", "action_id": "a2"}));
    // Missing field: a dispatch without an assignee.
    let p = problem(
        &act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "x4"})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "assignee", "{p}");
    ok_act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "a3", "assignee": "li"}));
    let dispatched = version();

    // Wrong role on the assignee's action: the office cannot handle in the inspector's place.
    let p = problem(&act(&env, &id, "wang", json!({"action": "handle", "action_id": "x5"})), StatusCode::FORBIDDEN);
    assert_eq!(p["refusal"]["roles"], json!(["assignee"]), "{p}");
    // Missing photo: handling needs evidence.
    let p = problem(
        &act(&env, &id, "li", json!({"action": "handle", "action_id": "x6"})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "photos", "{p}");
    assert!(p["type"].as_str().unwrap().ends_with("missing_photo"), "{p}");
    // A photo that was never uploaded.
    let absent = "ab".repeat(32);
    let p = problem(
        &act(&env, &id, "li", json!({"action": "handle", "action_id": "x7", "photos": [absent]})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "photos[0]", "{p}");
    // Not a SHA-256.
    let p = problem(
        &act(&env, &id, "li", json!({"action": "handle", "action_id": "x8", "photos": ["IMG_0001.jpg"]})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "photos[0]", "{p}");
    // A citizen who did not report it cannot act on it or read it.
    problem(&act(&env, &id, "zhang", json!({"action": "rate", "action_id": "x9", "rating": 5})), StatusCode::FORBIDDEN);
    problem(&env.get(&format!("/cases/{id}")).token(&env.token("zhang")).send(), StatusCode::FORBIDDEN);
    problem(&env.get("/cases").token(&env.token("zhang")).send(), StatusCode::FORBIDDEN);
    // Only the office opens cases; anonymous callers are told to log in.
    let body = json!({"location": {"type": "Point", "coordinates": [114.3, 30.5]}});
    problem(&env.post("/cases").token(&env.token("li")).json(&body).send(), StatusCode::FORBIDDEN);
    problem(&env.post("/cases").json(&body).send(), StatusCode::UNAUTHORIZED);
    let p = problem(
        &env.post("/cases")
            .token(&env.token("wang"))
            .json(&json!({"class": "9999", "location": body["location"]}))
            .send(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "class");
    problem(&env.get("/cases/no-such-case").token(&env.token("wang")).send(), StatusCode::NOT_FOUND);

    let doc = get_case(&env, &id, "wang");
    assert_eq!(doc["version"].as_i64().unwrap(), dispatched, "nothing changed");
    assert_eq!(doc["state"], "dispatched");
    assert_eq!(doc["transitions"].as_array().unwrap().len(), 3);
}

#[test]
fn the_same_action_id_is_applied_once() {
    let env = demo().env();
    let id = rubbish_case(&env)["id"].as_str().unwrap().to_owned();
    let first = ok_act(&env, &id, "wang", json!({"action": "accept", "action_id": "tablet-7"}));
    let again = ok_act(&env, &id, "wang", json!({"action": "accept", "action_id": "tablet-7"}));
    assert_eq!((first["replayed"].clone(), again["replayed"].clone()), (json!(false), json!(true)));
    assert_eq!(first["transition"], again["transition"], "the same result");
    assert_eq!(again["case"]["version"], first["case"]["version"], "no second version");
    assert_eq!(again["case"]["transitions"].as_array().unwrap().len(), 1);
    // The id of one action reused for another is a conflict, not a silent replay.
    let p =
        problem(&act(&env, &id, "wang", json!({"action": "register", "action_id": "tablet-7"})), StatusCode::CONFLICT);
    assert!(p["type"].as_str().unwrap().ends_with("action_id_reused"), "{p}");
}

#[test]
fn a_citizen_report_opens_a_case_the_citizen_follows() {
    let env = demo().env();
    let a = env.token("citizen_a");
    let photo = upload_photo(&env, "citizen_a", 11);
    let report = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.51]},
        "properties": {"类别": "1", "描述": "珞喻路井盖破损，有安全隐患", "照片": [photo]}});
    let r = env.post("/collections/citizen_report/items").token(&a).json(&report).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let rid = r.json()["id"].as_str().unwrap().to_owned();

    // The office finds the case the report opened: same id, source the report, reporter the citizen.
    let list = env.get("/cases?status=reported").token(&env.token("wang")).send().json();
    assert_eq!(list["numberReturned"], 1, "{list}");
    let case = &list["cases"][0];
    assert_eq!(case["id"], rid.as_str());
    assert_eq!(case["source"], "citizen_report");
    assert_eq!(case["source_ref"], format!("citizen_report/{rid}"));
    assert_eq!(case["reporter"], "citizen_a");
    assert_eq!(case["description"], "珞喻路井盖破损，有安全隐患");

    let note = "内部备注：转市政，联系人王工";
    ok_act(&env, &rid, "wang", json!({"action": "accept", "action_id": "r1", "note": note}));
    let mine = env.get("/reports/mine").token(&a).send();
    assert_eq!(mine.status, StatusCode::OK);
    assert!(!mine.text().contains("内部备注") && !mine.text().contains("wang"), "{}", mine.text());
    let p = &mine.json()["features"][0]["properties"];
    assert_eq!(p["status"], json!({"field": "办理状态", "code": "2", "label": "处理中"}), "{p}");
    assert_eq!(p["case"]["state"], "accepted");
    assert_eq!(p["case"]["steps"].as_array().unwrap().len(), 1);
    assert_eq!(p["case"]["steps"][0]["label"], "受理");
    assert!(p["case"]["steps"][0]["at"].as_str().unwrap().ends_with("+08:00"));

    ok_act(&env, &rid, "wang", json!({"action": "register", "action_id": "r2"}));
    ok_act(&env, &rid, "wang", json!({"action": "dispatch", "action_id": "r3", "assignee": "user:li"}));
    let fixed = upload_photo(&env, "li", 13);
    ok_act(&env, &rid, "li", json!({"action": "handle", "action_id": "r4", "photos": [fixed]}));
    ok_act(&env, &rid, "wang", json!({"action": "verify", "action_id": "r5"}));
    ok_act(&env, &rid, "wang", json!({"action": "close", "action_id": "r6"}));
    let p = env.get("/reports/mine").token(&a).send().json()["features"][0]["properties"].clone();
    assert_eq!(p["status"]["label"], "已办结", "{p}");
    assert_eq!(p["case"]["state"], "closed");
    let labels: Vec<&str> =
        p["case"]["steps"].as_array().unwrap().iter().map(|s| s["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["受理", "立案", "派遣", "处置", "核查", "结案"]);

    // The reporter rates the closed case (the flow's `reporter` role); others cannot read it.
    let r = ok_act(&env, &rid, "citizen_a", json!({"action": "rate", "action_id": "r7", "rating": 5}));
    assert_eq!(r["case"]["state"], "rated");
    assert_eq!(r["case"]["reporter"], Json::Null, "a citizen's answer names no one");
    problem(
        &act(&env, &rid, "citizen_b", json!({"action": "rate", "action_id": "r8", "rating": 1})),
        StatusCode::FORBIDDEN,
    );
    // A second catch-up opens no second case.
    assert_eq!(env.get("/cases").token(&env.token("wang")).send().json()["numberReturned"], 1);
}

#[test]
fn listing_filters_by_status_class_place_and_assignee() {
    let env = demo().env();
    let at = |lon: f64, lat: f64| json!({"type": "Point", "coordinates": [lon, lat]});
    let a =
        open_case(&env, &json!({"class": "0102", "location": at(114.30, 30.50)}))["id"].as_str().unwrap().to_owned();
    let b = open_case(&env, &json!({"class": "0505", "location": at(114.40, 30.60), "source": "inspector"}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let c = open_case(&env, &json!({"class": "0101", "class_kind": "component", "location": at(114.50, 30.70)}))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for (n, step) in [("accept", None), ("register", None), ("dispatch", Some("li"))].into_iter().enumerate() {
        let mut body = json!({"action": step.0, "action_id": format!("b{n}")});
        if let Some(who) = step.1 {
            body["assignee"] = json!(who);
        }
        ok_act(&env, &b, "wang", body);
    }
    let wang = env.token("wang");
    let ids = |url: &str, token: &str| -> Vec<String> {
        let r = env.get(url).token(token).send();
        assert_eq!(r.status, StatusCode::OK, "{url}: {}", r.text());
        r.json()["cases"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(ids("/cases", &wang), [a.as_str(), b.as_str(), c.as_str()]);
    assert_eq!(ids("/cases?status=dispatched", &wang), [b.as_str()]);
    assert_eq!(ids("/cases?status=reported", &wang), [a.as_str(), c.as_str()]);
    assert_eq!(ids("/cases?class=0102", &wang), [a.as_str()]);
    assert_eq!(ids("/cases?class=0101&class_kind=component", &wang), [c.as_str()]);
    assert_eq!(ids("/cases?bbox=114.35,30.55,114.45,30.65", &wang), [b.as_str()]);
    assert_eq!(ids("/cases?overdue=true", &wang), Vec::<String>::new());
    assert_eq!(ids("/cases?overdue=false", &wang).len(), 3);
    // A stage whose deadline has passed (set in the store, as time passing would) is overdue.
    let mut tx = env.store().begin(shikong_store::TxMeta::by("cli:test")).unwrap();
    let mut patch = shikong_store::Patch::default();
    let past = "2025-10-09T17:00:00+08:00".parse::<jiff::Timestamp>().unwrap();
    patch.set.insert("stage_deadline".into(), shikong_model::Value::DateTime(past));
    tx.update("cases", &shikong_store::FeatureKey::parse(&a), patch).unwrap();
    tx.commit().unwrap();
    assert_eq!(ids("/cases?overdue=true", &wang), [a.as_str()]);
    assert_eq!(ids("/cases?overdue=false", &wang), [b.as_str(), c.as_str()]);
    assert_eq!(get_case(&env, &a, "wang")["overdue"], true);
    assert_eq!(ids(&format!("/cases?filter={}", enc("source = 'inspector'")), &wang), [b.as_str()]);
    let page = env.get("/cases?limit=2").token(&wang).send().json();
    assert_eq!((page["numberReturned"].as_u64(), page["more"].as_bool()), (Some(2), Some(true)));
    // The inspector lists what is assigned to them; the office lists an inspector's tasks.
    assert_eq!(ids("/cases", &env.token("li")), [b.as_str()]);
    assert_eq!(ids("/cases?assignee=user:li", &wang), [b.as_str()]);
    assert_eq!(ids(&format!("/cases?assignee={}", enc("department:排水队")), &wang), Vec::<String>::new());
    for bad in [
        "/cases?overdue=maybe",
        "/cases?status=DROP%20TABLE",
        "/cases?sort=state",
        "/cases?filter=nonsense%20%3D",
        "/cases?assignee=li",
        "/cases?assignee=team:x",
    ] {
        problem(&env.get(bad).token(&wang).send(), StatusCode::BAD_REQUEST);
    }
}

#[test]
fn a_department_handles_what_is_dispatched_to_it_and_extensions_move_the_deadline() {
    let env = demo().env();
    let local = shikong_auth::Actor::local("test");
    env.state.auth.create_group(&local, "排水队", None).unwrap();
    env.state.auth.add_to_group(&local, "排水队", "li").unwrap();
    let id = rubbish_case(&env)["id"].as_str().unwrap().to_owned();
    ok_act(&env, &id, "wang", json!({"action": "accept", "action_id": "d1"}));
    ok_act(&env, &id, "wang", json!({"action": "register", "action_id": "d2"}));
    let r =
        ok_act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "d3", "assignee": "department:排水队"}));
    assert_eq!(r["case"]["assignee"], "department:排水队");
    let before = r["case"]["stage_deadline"].as_str().unwrap().to_owned();
    // 延期 needs a reason and moves the running deadline three working days later.
    let p = problem(
        &act(&env, &id, "wang", json!({"action": "extend", "action_id": "d4"})),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "note");
    let r = ok_act(&env, &id, "wang", json!({"action": "extend", "action_id": "d5", "note": "需协调产权单位"}));
    assert_eq!(r["case"]["state"], "dispatched");
    let after = r["case"]["stage_deadline"].as_str().unwrap().to_owned();
    assert!(after > before, "{before} → {after}");
    // A member of the group sees the case in their list and handles it.
    let mine = env.get("/cases").token(&env.token("li")).send().json();
    assert_eq!(mine["cases"][0]["id"], id.as_str(), "{mine}");
    let photo = upload_photo(&env, "li", 17);
    let r = ok_act(&env, &id, "li", json!({"action": "handle", "action_id": "d6", "photos": [photo]}));
    assert_eq!(r["case"]["state"], "handled");

    // The hotline flow is chosen by name and starts where its definition says.
    let hotline =
        open_case(&env, &json!({"flow": "hotline-12345", "location": {"type": "Point", "coordinates": [114.3, 30.5]}}));
    assert_eq!(hotline["flow"], json!({"id": "hotline-12345", "version": 1}));
    assert_eq!(hotline["state"], "received");
    // Its states' English labels come from its own definition (no client table knows them).
    assert_eq!(
        (hotline["state_label"].as_str(), hotline["state_label_en"].as_str()),
        (Some("已受理（待派单）"), Some("Received (to dispatch)"))
    );
    let list = env.get("/cases").token(&env.token("wang")).send().json();
    let listed = list["cases"].as_array().unwrap().iter().find(|c| c["id"] == hotline["id"]).cloned().unwrap();
    assert_eq!(listed["state_label_en"], "Received (to dispatch)", "lists carry it too");
}

/// One case's answer offers exactly the actions its reader may take now, with what they need;
/// lists carry none.
#[test]
fn a_case_offers_what_its_reader_may_do_now() {
    let env = demo().env();
    let case = rubbish_case(&env)["id"].as_str().unwrap().to_owned();
    let offered = |user: &str| -> Vec<String> {
        get_case(&env, &case, user)["actions"]
            .as_array()
            .map(|a| a.iter().map(|o| o["action"].as_str().unwrap().to_owned()).collect())
            .unwrap_or_default()
    };
    let office = offered("wang");
    assert!(office.contains(&"accept".to_owned()), "{office:?}");
    assert!(!office.contains(&"handle".to_owned()) && !office.contains(&"dispatch".to_owned()), "{office:?}");
    for (n, step) in ["accept", "register"].into_iter().enumerate() {
        let r = ok_act(&env, &case, "wang", json!({"action": step, "action_id": format!("o{n}")}));
        assert!(r["case"]["actions"].is_array(), "an action's answer offers the next ones: {r}");
    }
    let doc = get_case(&env, &case, "wang");
    let dispatch = doc["actions"].as_array().unwrap().iter().find(|o| o["action"] == "dispatch").cloned();
    let dispatch = dispatch.unwrap_or_else(|| panic!("dispatch offered when registered: {doc}"));
    assert_eq!(dispatch["label"], "派遣");
    assert!(dispatch["fields"].as_array().unwrap().contains(&json!("assignee")), "{dispatch}");
    ok_act(&env, &case, "wang", json!({"action": "dispatch", "action_id": "o2", "assignee": "li"}));
    let inspector = offered("li");
    assert!(inspector.contains(&"handle".to_owned()), "{inspector:?}");
    assert!(!offered("wang").contains(&"handle".to_owned()));
    let list = env.get("/cases").token(&env.token("wang")).send().json();
    assert!(list["cases"].as_array().unwrap().iter().all(|c| c.get("actions").is_none()), "lists carry no offers");
}
