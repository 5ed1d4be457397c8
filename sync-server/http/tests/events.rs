//! The live channel (`GET /events`): who hears what, feature changes from any writer, the bounds on
//! streams, and a token revoked while a stream is open.

use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value as Json, json};
use shikong_http::events::Audience;
use shikong_protocol::api::LiveEvent;
use tower::ServiceExt;

use crate::support::*;

/// An open stream: its data frames, parsed.
pub(crate) struct Stream {
    body: axum::body::BodyDataStream,
    buf: String,
}

impl Stream {
    /// The next `data:` message within `wait`, or `None`.
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Json> {
        let until = tokio::time::Instant::now() + wait;
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let frame: String = self.buf.drain(..end + 2).collect();
                if let Some(data) = frame.lines().find_map(|l| l.strip_prefix("data:")) {
                    return Some(serde_json::from_str(data.trim()).expect("JSON data"));
                }
                continue; // a keep-alive comment
            }
            let chunk = tokio::time::timeout_at(until, self.body.next()).await.ok()??.expect("body chunk");
            self.buf.push_str(std::str::from_utf8(&chunk).expect("UTF-8"));
        }
    }

    /// Messages until `wait` passes with none.
    pub(crate) async fn drain(&mut self, wait: Duration) -> Vec<Json> {
        let mut out = Vec::new();
        while let Some(m) = self.next(wait).await {
            out.push(m);
        }
        out
    }
}

pub(crate) async fn open(env: &Env, token: &str) -> Result<Stream, (StatusCode, Json)> {
    let app = shikong_http::app(env.state.clone());
    let mut req =
        Request::get("/events").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap();
    req.extensions_mut().insert(axum::extract::ConnectInfo(std::net::SocketAddr::from(([127, 0, 0, 1], 50_000))));
    let Ok(resp) = app.oneshot(req).await;
    let status = resp.status();
    if status != StatusCode::OK {
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        return Err((status, serde_json::from_slice(&bytes).unwrap_or(Json::Null)));
    }
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    Ok(Stream { body: resp.into_body().into_data_stream(), buf: String::new() })
}

/// Runs a blocking test call (the support module's requests run their own runtime) off this one.
pub(crate) fn off<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().expect("the call panicked"))
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn each_caller_hears_only_what_is_theirs() {
    let env = manholes().env();
    let (office, citizen) = (env.token("wang"), env.token("zhang"));
    runtime().block_on(async {
        let mut wang = open(&env, &office).await.unwrap();
        let mut zhang = open(&env, &citizen).await.unwrap();
        // A write through the OGC API reaches the office (who reads `manhole`), not the citizen.
        let feature = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.3, 30.5]},
                             "properties": {"code": "EV-1"}});
        let created = off(|| env.post("/collections/manhole/items").token(&office).json(&feature).send());
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let m = wang.next(Duration::from_secs(5)).await.expect("the office hears the change");
        assert_eq!((m["type"].as_str(), m["layer"].as_str()), (Some("features_changed"), Some("manhole")), "{m}");
        assert!(m["tx"].as_i64().unwrap() > 0 && m["time"].as_str().unwrap().ends_with("+08:00"), "{m}");
        // Messages addressed to people.
        let task = LiveEvent::Task { case: "c-1".into(), number: None, state: "dispatched".into(), deadline: None };
        env.state.events.publish(Audience::User("zhang".into()), task);
        env.state.events.publish(Audience::Role("office".into()), LiveEvent::Lagged { missed: 0 });
        let got = zhang.drain(Duration::from_millis(800)).await;
        assert_eq!(got, vec![json!({"type": "task", "case": "c-1", "state": "dispatched"})], "the citizen: {got:?}");
        let got = wang.drain(Duration::from_millis(800)).await;
        assert_eq!(got, vec![json!({"type": "lagged", "missed": 0})], "the office: {got:?}");
    });
}

#[test]
fn streams_are_bounded_per_user_and_need_a_token() {
    let env = manholes().env();
    let token = env.token("li");
    runtime().block_on(async {
        let mut open_ones = Vec::new();
        for _ in 0..4 {
            open_ones.push(open(&env, &token).await.unwrap());
        }
        let (status, p) = open(&env, &token).await.err().expect("a fifth stream is refused");
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{p}");
        assert_eq!((p["limit"].as_str(), p["max"].as_u64()), (Some("per-user-streams"), Some(4)), "{p}");
        assert_eq!(env.state.events.open_streams(), 4);
        drop(open_ones);
        assert_eq!(env.state.events.open_streams(), 0, "closed streams give their places back");
        assert!(open(&env, &token).await.is_ok());
    });
    let r = env.get("/events").send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
}

#[test]
fn a_stream_ends_when_its_token_is_revoked() {
    let env = manholes().env_with(|c| c.events.recheck = Duration::from_millis(200));
    let token = env.login("li");
    runtime().block_on(async {
        let mut s = open(&env, &token).await.unwrap();
        let out = off(|| env.post("/auth/logout").token(&token).send());
        assert!(out.status.is_success(), "{}", out.text());
        let m = s.next(Duration::from_secs(5)).await.expect("a closing message");
        assert_eq!(m["type"], "closing", "{m}");
        assert!(m["reason"].as_str().unwrap().contains("token"), "{m}");
        assert_eq!(s.next(Duration::from_secs(1)).await, None, "and the stream is over");
    });
}

#[test]
fn a_dispatched_case_reaches_the_inspectors_stream_as_a_task() {
    let env = manholes().env();
    let (office, inspector) = (env.token("wang"), env.token("li"));
    runtime().block_on(async {
        let mut li = open(&env, &inspector).await.unwrap();
        let case = off(|| {
            let body = json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.36, 30.51]},
                              "description": "暴露垃圾", "source": "hotline"});
            let r = env.post("/cases").token(&office).json(&body).send();
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
            let id = r.json()["id"].as_str().unwrap().to_owned();
            for (i, (action, extra)) in
                [("accept", json!({})), ("register", json!({})), ("dispatch", json!({"assignee": "li"}))]
                    .into_iter()
                    .enumerate()
            {
                let mut b = json!({"action": action, "action_id": format!("live-{i}")});
                b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
                let r = env.post(&format!("/cases/{id}/actions")).token(&office).json(&b).send();
                assert_eq!(r.status, StatusCode::OK, "{action}: {}", r.text());
            }
            id
        });
        let got = li.drain(Duration::from_millis(1500)).await;
        let tasks: Vec<&Json> = got.iter().filter(|m| m["type"] == "task").collect();
        assert_eq!(tasks.len(), 1, "exactly the dispatch is a task for li: {got:?}");
        assert_eq!((tasks[0]["case"].as_str(), tasks[0]["state"].as_str()), (Some(case.as_str()), Some("dispatched")));
        assert!(tasks[0]["deadline"].as_str().is_some_and(|d| d.ends_with("+08:00")), "{got:?}");

        // Two months on, the handling stage is overdue: marked once, and the assignee is told.
        let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 60);
        let state = env.state.clone();
        let report = off(|| shikong_http::cases::overdue::scan(&state, later).unwrap());
        assert_eq!((report.found, report.marked), (1, 1));
        let again = off(|| shikong_http::cases::overdue::scan(&state, later).unwrap());
        assert_eq!((again.found, again.marked), (0, 0), "a stage is marked once");
        let got = li.drain(Duration::from_millis(1500)).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0]["type"].as_str(), got[0]["case"].as_str()),
            (Some("overdue"), Some(case.as_str())),
            "{got:?}"
        );
        // The stored flag (the case document's `overdue` compares the deadline with the real clock).
        let feature = off(|| env.get(&format!("/collections/cases/items/{case}")).token(&office).send().json());
        assert_eq!(feature["properties"]["overdue"], true, "{feature}");
        let history = off(|| env.get(&format!("/collections/cases/items/{case}/history")).token(&office).send().json());
        let versions = history["versions"].as_array().unwrap();
        assert_eq!(versions.len(), 5, "opened, three actions, the marking: {history}");
    });
}
