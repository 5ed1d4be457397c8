//! Offline field tasks in process (issue 15): a case dispatched to inspector `li` reaches li's
//! replica (a real GeoPackage, `shikong-replica`) at the next sync and in every replica li cuts;
//! li handles it offline with a photo; the action is merged by the flow's rules, once, however
//! often the device syncs; an action the office overtook while li was offline is rejected, kept in
//! the case, reported to the device and shown to the office.
//!
//! The device's sync step is driven here as `shikong-sync-client` drives it (`tasks.rs` there):
//! upload unconfirmed attachments, `POST /sync/tasks/actions`, write the answers back, then
//! `GET /sync/tasks` into the replica. The client itself runs over a real socket in
//! `tests/sync_e2e.rs`.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};
use shikong_protocol::api::tasks::{TaskActionResults, TaskList};
use shikong_replica::{Evidence, Replica, ReplicaError, TaskActionStatus};

use crate::support::*;

/// Cuts a replica of `manhole` for `user` into `dir`; opens it.
fn cut(env: &Env, user: &str, dir: &std::path::Path, name: &str) -> Replica {
    let r =
        env.post("/sync/replicas").token(&env.token(user)).json(&json!({"protocol": 1, "layers": ["manhole"]})).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let path = dir.join(name);
    std::fs::write(&path, &r.body).unwrap();
    Replica::open(&path).unwrap()
}

/// What a device's sync does for tasks; returns the answers to the actions sent (none when
/// nothing was pending).
fn sync_tasks(env: &Env, user: &str, replica: &mut Replica) -> Option<TaskActionResults> {
    upload_attachments(env, user, replica);
    let token = env.token(user);
    let pending = replica.pending_task_actions().unwrap();
    let mut answer = None;
    if !pending.is_empty() {
        let batch = json!({"replica": replica.info().id, "actions": pending});
        let r = env.post("/sync/tasks/actions").token(&token).json(&batch).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let results: TaskActionResults = serde_json::from_slice(&r.body).unwrap();
        replica.apply_task_results(&results).unwrap();
        answer = Some(results);
    }
    let r = env.get("/sync/tasks").token(&token).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list: TaskList = serde_json::from_slice(&r.body).unwrap();
    replica.replace_tasks(&list).unwrap();
    answer
}

fn act(env: &Env, case: &str, user: &str, body: Json) -> Json {
    let r = env.post(&format!("/cases/{case}/actions")).token(&env.token(user)).json(&body).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

fn get_case(env: &Env, case: &str) -> Json {
    let r = env.get(&format!("/cases/{case}")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()
}

/// A rubbish case opened, accepted, registered and dispatched to `li` by the office; its id.
fn dispatched_to_li(env: &Env, tag: &str) -> String {
    let body = json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.36, 30.51]},
                      "description": "珞喻路公交站旁暴露垃圾", "asset": "manhole/420111-JG-00007"});
    let r = env.post("/cases").token(&env.token("wang")).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    act(env, &id, "wang", json!({"action": "accept", "action_id": format!("{tag}-1")}));
    act(env, &id, "wang", json!({"action": "register", "action_id": format!("{tag}-2")}));
    act(env, &id, "wang", json!({"action": "dispatch", "action_id": format!("{tag}-3"), "assignee": "user:li"}));
    id
}

fn photo(r: &mut Replica, seed: u32) -> String {
    let bytes: Vec<u8> = (0..30_000u32).map(|i| (i.wrapping_mul(seed) % 253) as u8).collect();
    let ev = Evidence {
        capture_time: jiff::Timestamp::now(),
        lon: Some(114.36),
        lat: Some(30.51),
        heading: None,
        device: None,
    };
    r.add_attachment(&bytes, "image/jpeg", &ev).unwrap()
}

#[test]
fn a_dispatched_task_reaches_the_replica_and_an_offline_handle_is_applied_once() {
    let env = demo().env();
    let dir = tempfile::tempdir().unwrap();
    let mut li = cut(&env, "li", dir.path(), "li.gpkg");
    assert!(li.tasks().unwrap().is_empty());

    let id = dispatched_to_li(&env, "t");
    // The next sync brings the task, with what the inspector needs in the field.
    assert!(sync_tasks(&env, "li", &mut li).is_none());
    let tasks = li.tasks().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    let t = &tasks[0];
    assert_eq!((t.case_id.as_str(), t.state.as_str(), t.class.as_deref()), (id.as_str(), "dispatched", Some("0102")));
    assert_eq!(t.asset.as_deref(), Some("manhole/420111-JG-00007"));
    assert_eq!(t.location, Some(json!({"type": "Point", "coordinates": [114.36, 30.51]})));
    assert!(t.stage_deadline.as_deref().is_some_and(|d| d.ends_with("+08:00")), "{t:?}");
    assert_eq!(t.assignee.as_deref(), Some("user:li"));
    // Every replica li cuts carries li's open tasks; the office's does not.
    assert_eq!(cut(&env, "li", dir.path(), "li2.gpkg").tasks().unwrap().len(), 1);
    assert!(cut(&env, "wang", dir.path(), "wang.gpkg").tasks().unwrap().is_empty());

    // Offline: the flow is checked locally (verify before handle is refused, nothing queued) …
    let e = li.record_task_action(&id, "verify", None, &[], jiff::Timestamp::now()).unwrap_err();
    assert!(matches!(&e, ReplicaError::TaskRefused { kind, .. } if kind == "wrong_state"), "{e}");
    let e = li.record_task_action(&id, "handle", None, &[], jiff::Timestamp::now()).unwrap_err();
    assert!(matches!(&e, ReplicaError::TaskRefused { kind, .. } if kind == "missing_photo"), "{e}");
    // … and handle with a photo is queued.
    let sha = photo(&mut li, 7);
    let done_at = jiff::Timestamp::now();
    let q = li.record_task_action(&t.case_no, "handle", Some("已清运"), std::slice::from_ref(&sha), done_at).unwrap();
    assert_eq!(li.pending_task_actions().unwrap().len(), 1);
    let before = get_case(&env, &id);
    assert_eq!(before["state"], "dispatched", "nothing reaches the office before the sync");

    // First sync: applied, by li, at the device's time, with the photo.
    let answer = sync_tasks(&env, "li", &mut li).unwrap();
    assert_eq!(answer.results.len(), 1);
    assert_eq!(serde_json::to_value(answer.results[0].outcome).unwrap(), "applied");
    let case = get_case(&env, &id);
    assert_eq!(case["state"], "handled");
    let last = case["transitions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!((last["action"].as_str(), last["actor"].as_str()), (Some("handle"), Some("li")));
    assert_eq!(last["action_id"], q.action_id);
    assert_eq!(last["photos"], json!([sha]));
    assert_eq!(last["note"], "已清运");
    let at: jiff::Timestamp = last["at"].as_str().unwrap().parse().unwrap();
    assert_eq!(at.as_millisecond(), done_at.as_millisecond(), "the transition carries the device's time");
    assert_eq!(case["version"].as_i64().unwrap(), before["version"].as_i64().unwrap() + 1);
    let queued = li.task_actions().unwrap();
    assert_eq!(queued[0].status, TaskActionStatus::Applied);
    assert_eq!(li.tasks().unwrap()[0].state, "handled");

    // Second sync: nothing to send, nothing changes.
    assert!(sync_tasks(&env, "li", &mut li).is_none());
    assert_eq!(get_case(&env, &id)["version"], case["version"]);
    // A late duplicate of the same action (a tablet whose answer was lost) changes nothing either.
    let again = json!({"replica": li.info().id, "actions": [{"case_id": id, "action": "handle", "action_id": q.action_id,
                       "photos": [sha], "note": "已清运", "device_time": q.device_time}]});
    let r = env.post("/sync/tasks/actions").token(&env.token("li")).json(&again).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["results"][0]["outcome"], "duplicate");
    assert_eq!(get_case(&env, &id)["version"], case["version"]);
    // Someone else may not send li's replica's actions.
    let r = env.post("/sync/tasks/actions").token(&env.token("wang")).json(&again).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());

    // The office verifies and closes: the task leaves li's device at the next sync.
    act(&env, &id, "wang", json!({"action": "verify", "action_id": "t-5"}));
    act(&env, &id, "wang", json!({"action": "close", "action_id": "t-6"}));
    sync_tasks(&env, "li", &mut li);
    assert!(li.tasks().unwrap().is_empty());
}

#[test]
fn an_offline_action_the_office_overtook_is_rejected_kept_and_reported() {
    let env = demo().env();
    let dir = tempfile::tempdir().unwrap();
    let id = dispatched_to_li(&env, "c");
    let mut li = cut(&env, "li", dir.path(), "li.gpkg");
    assert_eq!(li.tasks().unwrap().len(), 1, "the cut carries the task");

    // li handles offline; meanwhile the office takes the case back (回退 to 立案, assignee cleared).
    let sha = photo(&mut li, 11);
    let q = li.record_task_action(&id, "handle", None, std::slice::from_ref(&sha), jiff::Timestamp::now()).unwrap();
    act(&env, &id, "wang", json!({"action": "return", "action_id": "c-4", "note": "派错了，重新派遣"}));
    let before = get_case(&env, &id);
    assert_eq!(before["state"], "registered");

    let answer = sync_tasks(&env, "li", &mut li).unwrap();
    let r = &answer.results[0];
    assert_eq!(serde_json::to_value(r.outcome).unwrap(), "rejected");
    assert_eq!(r.kind.as_deref(), Some("wrong_state"));
    assert_eq!(r.state.as_deref(), Some("registered"));
    // The device keeps it, rejected with the reason; the task itself is gone (no longer li's).
    let queued = li.task_actions().unwrap();
    assert_eq!(queued.len(), 1);
    assert_eq!(queued[0].status, TaskActionStatus::Rejected);
    assert!(queued[0].reason.as_deref().is_some_and(|s| s.contains("registered")), "{queued:?}");
    assert!(li.tasks().unwrap().is_empty());
    // The office sees it in the case, and the case's state is the office's.
    let case = get_case(&env, &id);
    assert_eq!(case["state"], "registered");
    assert_eq!(case["transitions"].as_array().unwrap().len(), 4, "no transition from the rejected action");
    let rejected = case["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{case}");
    assert_eq!(rejected[0]["action_id"], q.action_id);
    assert_eq!((rejected[0]["actor"].as_str(), rejected[0]["kind"].as_str()), (Some("li"), Some("wrong_state")));
    assert_eq!(rejected[0]["state_at_arrival"], "registered");

    // Syncing again sends nothing; the same action sent late is answered, not recorded twice.
    assert!(sync_tasks(&env, "li", &mut li).is_none());
    let again = json!({"replica": li.info().id, "actions": [{"case_id": id, "action": "handle", "action_id": q.action_id,
                       "photos": [sha], "device_time": q.device_time}]});
    let r = env.post("/sync/tasks/actions").token(&env.token("li")).json(&again).send();
    assert_eq!(r.json()["results"][0]["outcome"], "already_rejected");
    let after = get_case(&env, &id);
    assert_eq!(after["version"], case["version"]);
    assert_eq!(after["rejected"].as_array().unwrap().len(), 1);
    // Re-dispatched to li, the task comes back and a new handle is applied.
    act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "c-5", "assignee": "user:li"}));
    sync_tasks(&env, "li", &mut li);
    assert_eq!(li.tasks().unwrap()[0].state, "dispatched");
    li.record_task_action(&id, "handle", None, &[sha], jiff::Timestamp::now()).unwrap();
    let answer = sync_tasks(&env, "li", &mut li).unwrap();
    assert_eq!(serde_json::to_value(answer.results[0].outcome).unwrap(), "applied");
    assert_eq!(get_case(&env, &id)["state"], "handled");
}

#[test]
fn actions_on_cases_that_were_never_the_senders_are_refused_and_not_recorded() {
    let env = demo().env();
    let dir = tempfile::tempdir().unwrap();
    let li = cut(&env, "li", dir.path(), "li.gpkg");
    let body = json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.36, 30.51]}});
    let r = env.post("/cases").token(&env.token("wang")).json(&body).send();
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let batch = json!({"replica": li.info().id, "actions": [
        {"case_id": id, "action": "handle", "action_id": "x-1", "device_time": "2026-12-07T10:00:00+08:00"},
        {"case_id": "00000000-0000-7000-8000-000000000000", "action": "handle", "action_id": "x-2",
         "device_time": "2026-12-07T10:00:00+08:00"}]});
    let r = env.post("/sync/tasks/actions").token(&env.token("li")).json(&batch).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(
        (j["results"][0]["outcome"].as_str(), j["results"][0]["kind"].as_str()),
        (Some("refused"), Some("forbidden"))
    );
    assert_eq!(
        (j["results"][1]["outcome"].as_str(), j["results"][1]["kind"].as_str()),
        (Some("refused"), Some("no_case"))
    );
    let case = get_case(&env, &id);
    assert_eq!(case["rejected"], json!([]));
    assert_eq!(case["version"], 1);
}

#[test]
fn a_task_dispatched_to_an_inspectors_department_reaches_them_and_they_may_handle_it() {
    let env = demo().env();
    let local = shikong_auth::Actor::local("test");
    env.state.auth.create_group(&local, "排水队", None).unwrap();
    env.state.auth.add_to_group(&local, "排水队", "li").unwrap();
    let body = json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.36, 30.51]}});
    let r = env.post("/cases").token(&env.token("wang")).json(&body).send();
    let id = r.json()["id"].as_str().unwrap().to_owned();
    act(&env, &id, "wang", json!({"action": "accept", "action_id": "g-1"}));
    act(&env, &id, "wang", json!({"action": "register", "action_id": "g-2"}));
    act(&env, &id, "wang", json!({"action": "dispatch", "action_id": "g-3", "assignee": "department:排水队"}));
    let dir = tempfile::tempdir().unwrap();
    let mut li = cut(&env, "li", dir.path(), "li.gpkg");
    let tasks = li.tasks().unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].assignee.as_deref(), Some("department:排水队"));
    let sha = photo(&mut li, 5);
    li.record_task_action(&id, "handle", None, &[sha], jiff::Timestamp::now()).unwrap();
    let answer = sync_tasks(&env, "li", &mut li).unwrap();
    assert_eq!(serde_json::to_value(answer.results[0].outcome).unwrap(), "applied");
    assert_eq!(get_case(&env, &id)["state"], "handled");
}
