//! The city-management loop end to end (issue 15's "must show"), every party through its real
//! client against the real `shikong serve`: the citizen through the mobile app's core (`Device`:
//! registration, sign-in, a report with a photo, 我的上报), the office over HTTP (`/cases`), the
//! inspector through a replica file and the `shikong replica` command line (the task arrives at a
//! sync, is handled offline with a photo, and the tablet syncs twice). At the end the case's
//! transitions and its feature's history hold every step, with actor and time.

use std::sync::Arc;

use crate::common::*;
use jiff::Timestamp;
use serde_json::{Value as Json, json};
use shikong_mobile::Device;
use shikong_mobile::app_core::ReportForm;
use shikong_mobile::app_core::platform::{ImageFolder, ManualLocation, Switchable};

/// Where the citizen stands: 珞喻路, 洪山区 (inside the demo's area).
const AT: (f64, f64) = (114.3437, 30.5043);

fn jpeg(path: &std::path::Path, tint: u8) {
    let img = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, tint]));
    img.save(path).unwrap();
}

fn time(t: &Json) -> Timestamp {
    let s = t.as_str().unwrap_or_else(|| panic!("not a time: {t}"));
    assert!(s.ends_with("+08:00"), "Beijing time: {s}");
    s.parse().unwrap_or_else(|e| panic!("`{s}` is not RFC 3339: {e}"))
}

#[test]
fn a_citizen_report_goes_round_the_loop_to_a_rating() {
    let dir = tempfile::tempdir().unwrap();
    let (data, server, wang, li) = crate::common::demo_with_office(dir.path());
    let http = reqwest::blocking::Client::new();
    let case_doc = |id: &str| -> Json {
        let r = http.get(server.url(&format!("/cases/{id}"))).bearer_auth(&wang).send().unwrap();
        assert_eq!(r.status(), 200, "GET /cases/{id}");
        r.json().unwrap()
    };

    // The citizen: registers in the app, waits for approval, signs in, reports with a photo.
    let cam = dir.path().join("camera");
    std::fs::create_dir_all(&cam).unwrap();
    jpeg(&cam.join("IMG_0001.jpg"), 120);
    let mut phone = Device::open(
        dir.path().join("phone"),
        Arc::new(ManualLocation::at(AT.0, AT.1)),
        Arc::new(ImageFolder::new(&cam)),
        Arc::new(Switchable::default()),
    )
    .unwrap();
    let msg = phone.register(&server.base, "chen", "市民的密码123", "13800000000").unwrap();
    assert!(msg.contains("注册待审核"), "{msg}");
    assert!(phone.login(&server.base, "chen", "市民的密码123").is_err(), "not before approval");
    ok(&["user", "approve", "--data", &data, "chen"]);
    assert_eq!(phone.login(&server.base, "chen", "市民的密码123").unwrap().role, "citizen");
    let forms = phone.report_layers().unwrap();
    assert_eq!(forms.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(), ["citizen_report"]);
    let photo = phone.take_photo().unwrap();
    let form = ReportForm {
        layer: "citizen_report".into(),
        category: "1".into(),
        description: "珞喻路井盖破损，有安全隐患".into(),
        address: "洪山区珞喻路".into(),
    };
    assert_eq!(phone.submit_report(&form, Some(AT), Some(&photo)).unwrap(), 1, "sent at once");
    let id = phone.queued_reports().unwrap()[0].server_id.clone().expect("the server's id");
    let mine = phone.follow_reports().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].description, "珞喻路井盖破损，有安全隐患");

    // A case opened: the office finds it among the new cases, with the report as its source.
    let list: Json = http.get(server.url("/cases?status=reported")).bearer_auth(&wang).send().unwrap().json().unwrap();
    assert_eq!(list["numberReturned"], 1, "{list}");
    let case = &list["cases"][0];
    assert_eq!(case["id"], id.as_str(), "the case takes the report's id");
    assert_eq!(case["source"], "citizen_report");
    assert_eq!(case["source_ref"], format!("citizen_report/{id}"));
    assert_eq!(case["reporter"], "chen");
    assert_eq!(case["description"], "珞喻路井盖破损，有安全隐患");
    assert_eq!(case["flow"], json!({"id": "city-standard", "version": 1}));
    assert_eq!(case["location"]["coordinates"], json!([AT.0, AT.1]));
    assert_eq!(case["transitions"], json!([]));
    let report = &phone.my_reports().unwrap()[0];
    assert_eq!(report.properties.fields["照片"], json!([photo.sha256]), "the report kept its photo");
    let progress = report.properties.case.as_ref().expect("the report shows its case");
    assert_eq!((progress.state.as_str(), progress.steps.len()), ("reported", 0));

    // The inspector's tablet: a replica cut before the case reaches li carries no task.
    let tablet = dir.path().join("li.gpkg");
    ok(&["replica", "create", "--server", &server.base, "--token", &li, "--layers", "manhole", s(&tablet)]);
    assert_eq!(ok(&["replica", "tasks", s(&tablet)]).trim(), "no open tasks");

    // The office accepts, registers and dispatches to li.
    let act = |token: &str, body: Json| -> Json {
        let r = http.post(server.url(&format!("/cases/{id}/actions"))).bearer_auth(token).json(&body).send().unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert_eq!(status, 200, "{body}: {text}");
        json(&text)
    };
    let r = act(&wang, json!({"action": "accept", "action_id": "office-1", "note": "内部备注：联系市政王工"}));
    assert_eq!(r["case"]["state"], "accepted");
    act(&wang, json!({"action": "register", "action_id": "office-2"}));
    let r = act(&wang, json!({"action": "dispatch", "action_id": "office-3", "assignee": "user:li"}));
    assert_eq!((r["case"]["state"].as_str(), r["case"]["assignee"].as_str()), (Some("dispatched"), Some("user:li")));
    let deadline = r["case"]["stage_deadline"].as_str().expect("the dispatched stage has a deadline").to_owned();
    assert!(time(&r["case"]["stage_deadline"]) > time(&r["transition"]["at"]), "{deadline}");
    let mine = phone.follow_reports().unwrap();
    assert_eq!(mine[0].status, "处理中", "the report follows the case");

    // One sync brings the task; the file alone then lists it (no server needed to read it).
    let out = ok(&["replica", "sync", "--token", &li, s(&tablet)]);
    assert!(out.contains("tasks: 1 open; offline actions: 0 applied, 0 rejected"), "{out}");
    let out = ok(&["replica", "tasks", s(&tablet)]);
    let line = out.lines().find(|l| l.starts_with(&id)).unwrap_or_else(|| panic!("the task is listed: {out}"));
    assert!(line.contains("state dispatched") && line.contains(&format!("deadline {deadline}")), "{line}");
    assert!(line.contains(case["case_no"].as_str().unwrap()), "{line}");

    // li handles it offline with a photo: recorded in the file, the server does not know yet.
    let after = dir.path().join("after.jpg");
    jpeg(&after, 30);
    let err = fails(&["replica", "task", s(&tablet), &id, "--action", "handle", "--note", "已更换井盖"]);
    assert!(err.contains("photo"), "the flow asks for a photo, checked on the tablet: {err}");
    let out =
        ok(&["replica", "task", s(&tablet), &id, "--action", "handle", "--note", "已更换井盖", "--photo", s(&after)]);
    assert!(out.contains("recorded handle") && out.contains("1 photo(s)"), "{out}");
    let out = ok(&["replica", "tasks", s(&tablet)]);
    assert!(out.lines().any(|l| l.starts_with("queued") && l.contains("handle")), "{out}");
    let before_sync = case_doc(&id);
    assert_eq!(before_sync["state"], "dispatched", "offline: nothing reached the server");
    assert_eq!(before_sync["transitions"].as_array().unwrap().len(), 3);

    // Two syncs: the first sends the photo and the action, the second changes nothing.
    let out = ok(&["replica", "sync", "--token", &li, s(&tablet)]);
    assert!(out.contains("uploaded 1 attachments"), "{out}");
    assert!(out.contains("offline actions: 1 applied, 0 rejected"), "{out}");
    let handled = case_doc(&id);
    assert_eq!(handled["state"], "handled");
    assert_eq!(handled["transitions"].as_array().unwrap().len(), 4);
    let out = ok(&["replica", "sync", "--token", &li, s(&tablet)]);
    assert!(out.contains("offline actions: 0 applied, 0 rejected"), "{out}");
    let again = case_doc(&id);
    assert_eq!(again["transitions"], handled["transitions"], "the second sync added no transition");
    assert_eq!(again["version"], handled["version"], "nor a version");
    assert_eq!(again["rejected"], json!([]));
    let out = ok(&["replica", "tasks", s(&tablet)]);
    assert!(out.contains("state handled") && !out.contains("queued"), "{out}");
    let early = phone.my_reports().unwrap().remove(0).properties.case.expect("progress");
    assert_eq!(early.state, "handled");
    let e = phone.rate_case(&early, 5, "").unwrap_err().to_string();
    assert!(e.contains("尚未结案"), "not before closing: {e}");

    // The office verifies (after looking at the evidence) and closes; the task leaves the tablet.
    let sha = shikong_replica::sha256_hex(&std::fs::read(&after).unwrap());
    let evidence = http.get(server.url(&format!("/sync/blobs/{sha}"))).bearer_auth(&wang).send().unwrap();
    assert_eq!(evidence.status(), 200);
    assert_eq!(evidence.bytes().unwrap().as_ref(), std::fs::read(&after).unwrap().as_slice());
    act(&wang, json!({"action": "verify", "action_id": "office-4"}));
    let r = act(&wang, json!({"action": "close", "action_id": "office-5"}));
    assert_eq!(r["case"]["state"], "closed");
    assert_eq!(r["case"]["stage_deadline"], Json::Null);
    let out = ok(&["replica", "sync", "--token", &li, s(&tablet)]);
    assert!(out.contains("tasks: 0 open"), "{out}");
    assert_eq!(ok(&["replica", "tasks", s(&tablet)]).trim(), "no open tasks");

    // 我的上报: closed (已办结), every step public, no staff names or notes.
    let report = &phone.my_reports().unwrap()[0];
    let status = report.properties.status.as_ref().expect("a status field");
    assert_eq!((status.code.as_deref(), status.label.as_deref()), (Some("3"), Some("已办结")));
    let progress = report.properties.case.as_ref().expect("the case's progress");
    assert_eq!(progress.state, "closed");
    let labels: Vec<&str> = progress.steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(labels, ["受理", "立案", "派遣", "处置", "核查", "结案"]);
    let public = serde_json::to_string(report).unwrap();
    for secret in ["wang", "\"li\"", "user:li", "内部备注", "已更换井盖"] {
        assert!(!public.contains(secret), "`{secret}` shown to the citizen: {public}");
    }
    assert_eq!(phone.follow_reports().unwrap()[0].status, "已办结");

    // The citizen rates it (1–5) in the app. The server refuses a rating out of range, and a
    // second rating; the same action again is a replay.
    let citizen = phone.session().expect("signed in").token.clone();
    let rate = |rating: u8, action_id: &str| {
        let body = json!({"action": "rate", "action_id": action_id, "rating": rating});
        http.post(server.url(&format!("/cases/{id}/actions"))).bearer_auth(&citizen).json(&body).send().unwrap()
    };
    let r = rate(6, "phone-rate-0");
    assert_eq!(r.status(), 422, "{}", r.text().unwrap());
    assert_eq!(case_doc(&id)["state"], "closed", "a refusal changes nothing");
    let e = phone.rate_case(progress, 0, "").unwrap_err().to_string();
    assert!(e.starts_with("rating:"), "checked on the phone: {e}");
    assert_eq!(phone.rate_case(progress, 5, "处理及时").unwrap(), "已评价");
    let doc = case_doc(&id);
    assert_eq!(doc["state"], "rated");
    let applied = doc["transitions"][6]["action_id"].as_str().unwrap().to_owned();
    let r = rate(1, "phone-rate-2");
    assert_eq!(r.status(), 409, "rated once: {}", r.text().unwrap());
    let r = rate(5, &applied);
    assert_eq!(r.status(), 200);
    let r: Json = r.json().unwrap();
    assert_eq!(r["replayed"], true);
    assert_eq!(r["case"]["reporter"], Json::Null, "a citizen's answer names no one");
    assert_eq!(r["case"]["transitions"].as_array().map(Vec::len), Some(7), "no second rating");
    let report = &phone.my_reports().unwrap()[0];
    let progress = report.properties.case.as_ref().unwrap();
    assert_eq!((progress.state.as_str(), progress.steps.last().map(|s| s.label.as_str())), ("rated", Some("评价")));
    assert_eq!(report.properties.status.as_ref().and_then(|s| s.label.as_deref()), Some("已办结"));
    let http_citizen = http.get(server.url(&format!("/cases/{id}"))).bearer_auth(&citizen).send().unwrap();
    assert_eq!(http_citizen.status(), 403, "citizens follow /reports/mine, not the office's case");

    // The case's history: every transition in order, with actor and time.
    let doc = case_doc(&id);
    assert_eq!(doc["state"], "rated");
    let transitions = doc["transitions"].as_array().unwrap();
    let steps: Vec<(&str, &str, &str, &str)> = transitions
        .iter()
        .map(|t| {
            let f = |k: &str| t[k].as_str().unwrap_or_else(|| panic!("{k} in {t}"));
            (f("action"), f("actor"), f("from"), f("to"))
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("accept", "wang", "reported", "accepted"),
            ("register", "wang", "accepted", "registered"),
            ("dispatch", "wang", "registered", "dispatched"),
            ("handle", "li", "dispatched", "handled"),
            ("verify", "wang", "handled", "verified"),
            ("close", "wang", "verified", "closed"),
            ("rate", "chen", "closed", "rated"),
        ]
    );
    let ids: Vec<&str> = transitions.iter().map(|t| t["action_id"].as_str().unwrap()).collect();
    assert_eq!(ids[..3], ["office-1", "office-2", "office-3"]);
    assert_eq!(ids[4..6], ["office-4", "office-5"]);
    assert_eq!(ids[6], applied);
    assert_eq!(transitions[0]["note"], "内部备注：联系市政王工", "the office sees its notes");
    assert_eq!(transitions[2]["assignee"], "user:li");
    assert_eq!(transitions[3]["note"], "已更换井盖");
    assert_eq!(transitions[3]["photos"], json!([sha]));
    assert_eq!((transitions[6]["rating"].clone(), transitions[6]["note"].clone()), (json!(5), json!("处理及时")));
    let times: Vec<Timestamp> = transitions.iter().map(|t| time(&t["at"])).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in time order: {times:?}");
    // The handle is dated on the tablet (recorded offline, before the sync that sent it: below).
    assert!(times[2] < times[3] && times[3] < times[4], "{times:?}");

    // The case feature's history: the opening, then one version per transition, by its actor.
    let r = http.get(server.url(&format!("/collections/cases/items/{id}/history"))).bearer_auth(&wang).send().unwrap();
    assert_eq!(r.status(), 200);
    let h: Json = r.json().unwrap();
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1 + transitions.len(), "opening + one version per transition: {h}");
    let authors: Vec<&str> = versions.iter().map(|v| v["tx"]["author"].as_str().unwrap()).collect();
    assert_eq!(authors, ["system:cases", "wang", "wang", "wang", "li", "wang", "wang", "chen"]);
    let numbers: Vec<i64> = versions.iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(numbers, (1..=8).collect::<Vec<i64>>());
    for (n, (v, t)) in versions[1..].iter().zip(transitions).enumerate() {
        let (tx_time, at) = (time(&v["tx"]["time"]), time(&t["at"]));
        if t["action"] == "handle" {
            assert!(tx_time >= at, "sent after it was done offline: {v}");
        } else {
            assert_eq!(
                v["tx"]["time"].as_str().unwrap()[..19],
                t["at"].as_str().unwrap()[..19],
                "transition {n}: its version's transaction time"
            );
        }
    }
}
