//! Sensor alert rules (`/alerts/rules`, `/alerts`; issue 18): a threshold rule opens exactly one
//! case for one breach (with the station as asset), keeps it across more breaching, duplicate and
//! late readings and across a restart, and closes it when readings recover; a silence rule fires
//! on the tick with an injected clock and a reading ends it; a second server process judging the
//! same breach opens no second case; permissions and bad rules; an evaluator that fell behind
//! the observation stream (`Lagged`) catches up from the time-series store and misses neither a
//! breach nor a recovery, nor an incident begun and ended while it was behind.

use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value as Json, json};

use crate::support::{Env, manholes, problem};

fn sta_post(env: &Env, path: &str, body: &Json) -> Json {
    let r = env.post(&format!("/sta/v1.1{path}")).token(&env.token("wang")).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text());
    r.json()
}

/// A station (Thing with a Location) and its Datastream; returns (thing, datastream, sensor).
fn station(env: &Env) -> (i64, i64, i64) {
    let thing = sta_post(
        env,
        "/Things",
        &json!({
            "name": "洪山区 1号井盖站",
            "description": "井盖倾角监测站",
            "properties": {"asset": "manhole/420111-JG-00007"},
            "Locations": [{
                "name": "1号井盖", "description": "井盖", "encodingType": "application/geo+json",
                "location": {"type": "Point", "coordinates": [114.34, 30.50]}
            }],
            "Datastreams": [{
                "name": "井盖倾角", "description": "cover tilt",
                "unitOfMeasurement": {"name": "degree", "symbol": "°", "definition": "http://unitsofmeasure.org/ucum#deg"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"name": "倾角计", "description": "tilt", "encodingType": "application/pdf", "metadata": "http://example.org/tilt.pdf"},
                "ObservedProperty": {"name": "倾角", "definition": "http://example.org/tilt", "description": "cover tilt"}
            }]
        }),
    );
    let thing_id = thing["@iot.id"].as_i64().expect("thing id");
    let r =
        env.get(&format!("/sta/v1.1/Things({thing_id})/Datastreams?$expand=Sensor")).token(&env.token("wang")).send();
    let ds = &r.json()["value"][0];
    (thing_id, ds["@iot.id"].as_i64().expect("ds id"), ds["Sensor"]["@iot.id"].as_i64().expect("sensor id"))
}

fn observe(env: &Env, ds: i64, at: Timestamp, value: f64) {
    sta_post(
        env,
        &format!("/Datastreams({ds})/Observations"),
        &json!({"phenomenonTime": at.to_string(), "result": value}),
    );
}

fn settle(env: &Env) {
    shikong_http::alerts::settle(&env.state).expect("the evaluator settles");
}

fn rule(env: &Env, body: &Json) -> Json {
    let r = env.post("/alerts/rules").token(&env.token("wang")).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

/// The cases alerts opened (source `sensor`), oldest first.
fn alert_cases(env: &Env) -> Vec<Json> {
    let r = env.get("/cases?limit=100").token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let mut cases: Vec<Json> =
        r.json()["cases"].as_array().expect("cases").iter().filter(|c| c["source"] == "sensor").cloned().collect();
    cases.sort_by_key(|c| c["case_no"].as_str().unwrap_or_default().to_owned());
    cases
}

fn alerts(env: &Env, query: &str) -> Vec<Json> {
    let r = env.get(&format!("/alerts{query}")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["alerts"].as_array().expect("alerts").clone()
}

#[test]
fn a_threshold_breach_opens_one_case_and_recovery_closes_it_across_a_restart() {
    let env = manholes().env();
    let (thing, ds, _) = station(&env);
    let t0 = Timestamp::now() - SignedDuration::from_mins(30);
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    let r = rule(
        &env,
        &json!({"name": "井盖倾角超限", "scope": {"datastream": ds},
                "condition": {"kind": "above", "threshold": 10.0, "clear": 8.0}}),
    );
    assert_eq!(r["scope"], json!({"datastream": ds}));
    let listed = env.get("/alerts/rules").token(&env.token("wang")).send().json();
    assert_eq!(listed["rules"][0]["id"], r["id"]);

    observe(&env, ds, at(0), 5.0);
    observe(&env, ds, at(10), 12.5);
    settle(&env);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 1, "{cases:?}");
    let case = &cases[0];
    assert_eq!(case["flow"]["id"], "sensor-alert");
    assert_eq!(case["state"], "alerting");
    assert_eq!(case["asset"], format!("sta_thing/sta_thing-{thing:06}"));
    assert_eq!(case["location"]["coordinates"], json!([114.34, 30.5]));
    let text = case["description"].as_str().expect("description");
    assert!(text.contains("洪山区 1号井盖站") && text.contains("读数 12.5° 超过阈值 10°"), "{text}");
    assert!(text.contains("北京时间") && text.contains("关联部件：manhole/420111-JG-00007"), "{text}");
    let open = alerts(&env, "?state=open");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0]["case"], case["id"]);
    assert_eq!(open[0]["incidents"], 1);

    // More breaching readings, a band reading, the same reading again and a late one: one case.
    observe(&env, ds, at(20), 14.0);
    observe(&env, ds, at(30), 9.0);
    observe(&env, ds, at(10), 12.5);
    observe(&env, ds, at(5), 1.0);
    settle(&env);
    assert_eq!(alert_cases(&env).len(), 1);
    assert_eq!(alerts(&env, "?state=open").len(), 1);

    // A restart keeps the incident: a breaching reading after it opens nothing new.
    let env = env.restarted_with(|_| {});
    observe(&env, ds, at(40), 15.0);
    settle(&env);
    assert_eq!(alert_cases(&env).len(), 1);

    // Recovery (≤ clear) closes the case through the flow's `recover` action, with a note.
    observe(&env, ds, at(50), 7.5);
    settle(&env);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 1);
    assert_eq!(cases[0]["state"], "recovered");
    let last = cases[0]["transitions"].as_array().expect("transitions").last().cloned().expect("one");
    assert_eq!(last["action"], "recover");
    assert!(last["note"].as_str().is_some_and(|n| n.contains("读数已恢复：7.5°")), "{last}");
    assert!(alerts(&env, "?state=open").is_empty());
    assert_eq!(alerts(&env, "?state=closed").len(), 1);

    // A new breach is a new incident: a second case.
    observe(&env, ds, at(60), 11.0);
    settle(&env);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 2);
    assert_eq!(cases[1]["state"], "alerting");
    assert_eq!(alerts(&env, "?state=open")[0]["incidents"], 2);
}

#[test]
fn a_silence_rule_fires_on_the_tick_and_a_reading_ends_it() {
    let env = manholes().env();
    let (_, ds, sensor) = station(&env);
    let now = Timestamp::now();
    observe(&env, ds, now - SignedDuration::from_mins(1), 3.0);
    // A class of sensor: every Datastream of this Sensor.
    rule(
        &env,
        &json!({"name": "井盖站断线", "scope": {"sensor": sensor}, "condition": {"kind": "silence", "minutes": 10}}),
    );
    let tick = |at: Timestamp| shikong_http::alerts::tick(&env.state, at).expect("tick");
    assert_eq!(tick(now + SignedDuration::from_mins(9)).opened, 0);
    assert_eq!(tick(now + SignedDuration::from_mins(11)).opened, 1);
    assert_eq!(tick(now + SignedDuration::from_mins(30)).opened, 0, "still the same silence");
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 1);
    assert!(cases[0]["description"].as_str().is_some_and(|d| d.contains("已 10 分钟无读数")), "{}", cases[0]);
    observe(&env, ds, Timestamp::now(), 3.1);
    settle(&env);
    let cases = alert_cases(&env);
    assert_eq!(cases[0]["state"], "recovered");
    assert!(alerts(&env, "?state=open").is_empty());
}

#[test]
fn rules_are_managed_by_the_office_and_bad_rules_name_the_member() {
    let env = manholes().env();
    let (_, ds, _) = station(&env);
    let good = json!({"name": "水位", "scope": {"datastream": ds}, "condition": {"kind": "below", "threshold": 1.0}});
    let r = env.post("/alerts/rules").token(&env.token("li")).json(&good).send();
    problem(&r, StatusCode::FORBIDDEN);
    let r = env.get("/alerts/rules").token(&env.token("zhang")).send();
    problem(&r, StatusCode::FORBIDDEN);
    // citizens may not read the datastreams, so not their alerts either
    problem(&env.get("/alerts").token(&env.token("zhang")).send(), StatusCode::FORBIDDEN);
    let bad = json!({"name": "x", "scope": {"datastream": ds}, "condition": {"kind": "above", "threshold": 1.0, "clear": 2.0}});
    let p = problem(
        &env.post("/alerts/rules").token(&env.token("wang")).json(&bad).send(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "condition.clear", "{p}");
    let missing = json!({"name": "x", "scope": {"datastream": 999}, "condition": {"kind": "silence", "minutes": 5}});
    let p = problem(&env.post("/alerts/rules").token(&env.token("wang")).json(&missing).send(), StatusCode::NOT_FOUND);
    assert_eq!(p["field"], "scope", "{p}");
    problem(&env.post("/alerts/rules").token(&env.token("wang")).body("{\"name\":1}").send(), StatusCode::BAD_REQUEST);
    problem(&env.get("/alerts?state=maybe").token(&env.token("wang")).send(), StatusCode::BAD_REQUEST);
    // Deleting a rule closes its open alert with the case.
    let id = rule(&env, &good)["id"].as_str().expect("id").to_owned();
    observe(&env, ds, Timestamp::now() - SignedDuration::from_mins(1), 0.5);
    settle(&env);
    assert_eq!(alerts(&env, "?state=open").len(), 1);
    let r = env.delete(&format!("/alerts/rules/{id}")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    assert!(alerts(&env, "?state=open").is_empty());
    assert_eq!(alert_cases(&env)[0]["state"], "recovered");
    let r = env.get("/alerts/rules").token(&env.token("wang")).send();
    assert_eq!(r.json()["rules"], json!([]));
}

#[test]
fn two_processes_judging_the_same_breach_open_one_case() {
    use shikong_timeseries::{Outcome, Reading};
    let env = manholes().env();
    let (_, ds, _) = station(&env);
    rule(
        &env,
        &json!({"name": "超限", "scope": {"datastream": ds}, "condition": {"kind": "above", "threshold": 10.0}}),
    );
    // A second server process over the same data folder, judging the readings it receives.
    let other = crate::support::state_in(env.dir.path());
    let t0 = Timestamp::now() - SignedDuration::from_mins(5);
    let feed = |value: f64, at: Timestamp| {
        let r = [Reading::new(ds, at, value)];
        other.observations().stored(shikong_http::ObservationOrigin::Http, None, &r, &[Outcome::Accepted]);
        shikong_http::alerts::settle(&other).expect("the other evaluator settles");
    };
    // The other process knows the datastream as normal …
    feed(5.0, t0);
    // … this one sees the breach first and opens the case …
    observe(&env, ds, t0 + SignedDuration::from_secs(10), 12.0);
    settle(&env);
    // … then the other judges a breach too: storage says open, no second case.
    feed(12.0, t0 + SignedDuration::from_secs(10));
    feed(13.0, t0 + SignedDuration::from_secs(20));
    assert_eq!(alert_cases(&env).len(), 1);
    assert_eq!(alerts(&env, "?state=open")[0]["incidents"], 1);
}

/// Publishes more batches than the observation stream keeps (of a datastream no rule watches),
/// so that a held evaluator loses what was published before: it gets `Lagged`.
fn flood(env: &Env, ds: i64) {
    use shikong_timeseries::{Outcome, Reading};
    let t = Timestamp::now() - SignedDuration::from_hours(1);
    for i in 0..=shikong_http::OBSERVATION_BACKLOG as i64 {
        let r = [Reading::new(ds, t + SignedDuration::from_micros(i), 1.0)];
        env.state.observations().stored(shikong_http::ObservationOrigin::Http, None, &r, &[Outcome::Accepted]);
    }
}

/// Stores readings while the evaluator is held, then floods the stream past them.
fn behind(env: &Env, ds: i64, readings: &[(Timestamp, f64)]) {
    let held = shikong_http::alerts::hold(&env.state).expect("the evaluator holds");
    for (at, v) in readings {
        observe(env, ds, *at, *v);
    }
    flood(env, ds + 1_000);
    drop(held);
    settle(env);
}

#[test]
fn an_evaluator_behind_the_stream_catches_up_from_the_store() {
    let env = manholes().env();
    let (_, ds, _) = station(&env);
    let t0 = Timestamp::now() - SignedDuration::from_mins(30);
    let at = |s: i64| t0 + SignedDuration::from_secs(s);
    rule(
        &env,
        &json!({"name": "井盖倾角超限", "scope": {"datastream": ds},
                "condition": {"kind": "above", "threshold": 10.0, "clear": 8.0}}),
    );
    observe(&env, ds, at(0), 5.0);
    settle(&env);
    assert!(alert_cases(&env).is_empty());

    // The breach (and more of it) published while the evaluator was behind: one case.
    behind(&env, ds, &[(at(10), 12.5), (at(20), 13.0)]);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0]["state"], "alerting");
    assert!(cases[0]["description"].as_str().is_some_and(|d| d.contains("读数 12.5° 超过阈值 10°")), "{}", cases[0]);
    assert_eq!(alerts(&env, "?state=open")[0]["incidents"], 1);

    // A reading it took after catching up changes nothing; the recovery missed in a lag closes it.
    observe(&env, ds, at(25), 14.0);
    settle(&env);
    behind(&env, ds, &[(at(30), 7.0)]);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert_eq!(cases[0]["state"], "recovered");
    assert!(alerts(&env, "?state=open").is_empty());

    // An incident begun and ended while behind is still one case, opened and closed.
    behind(&env, ds, &[(at(40), 11.0), (at(50), 6.0)]);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 2, "{cases:?}");
    assert!(cases.iter().all(|c| c["state"] == "recovered"), "{cases:?}");
    let closed = alerts(&env, "?state=closed");
    assert_eq!((closed.len(), closed[0]["incidents"].as_i64()), (1, Some(2)), "{closed:?}");

    // A reading taken twice — read from the store by the catch-up, then still in the stream —
    // opens nothing twice.
    let held = shikong_http::alerts::hold(&env.state).expect("the evaluator holds");
    observe(&env, ds, at(60), 15.0);
    flood(&env, ds + 1_000);
    observe(&env, ds, at(70), 16.0);
    drop(held);
    settle(&env);
    assert_eq!(alert_cases(&env).len(), 3);
    assert_eq!(alerts(&env, "?state=open")[0]["incidents"], 3);
}

#[test]
fn a_station_silent_over_a_restart_is_caught_when_the_server_starts() {
    let env = manholes().env();
    let (_, ds, _) = station(&env);
    let now = Timestamp::now();
    observe(&env, ds, now - SignedDuration::from_mins(1), 3.0);
    rule(
        &env,
        &json!({"name": "井盖站断线", "scope": {"datastream": ds}, "condition": {"kind": "silence", "minutes": 10}}),
    );
    settle(&env);
    assert!(alert_cases(&env).is_empty());
    // The server is down for 20 minutes and the station says nothing meanwhile. No tick runs:
    // the evaluator's first round (its first wake, here the settle) judges silence.
    let later = now + SignedDuration::from_mins(20);
    let clock = || -> std::sync::Arc<dyn shikong_model::clock::Clock> {
        std::sync::Arc::new(shikong_model::clock::ManualClock::new(later))
    };
    let env = env.restarted_with(|c| c.alert_clock = clock());
    settle(&env);
    let cases = alert_cases(&env);
    assert_eq!(cases.len(), 1, "{cases:?}");
    assert!(cases[0]["description"].as_str().is_some_and(|d| d.contains("已 10 分钟无读数")), "{}", cases[0]);
    assert_eq!(alerts(&env, "?state=open").len(), 1);
    // Another start at that instant: the same silence, no second case.
    let env = env.restarted_with(|c| c.alert_clock = clock());
    settle(&env);
    assert_eq!(alert_cases(&env).len(), 1);
    // A reading ends it.
    observe(&env, ds, Timestamp::now(), 3.1);
    settle(&env);
    assert_eq!(alert_cases(&env)[0]["state"], "recovered");
}
