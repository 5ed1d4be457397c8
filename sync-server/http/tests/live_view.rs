//! Issue 18's live view: the chart series of a datastream (`/sta/series/{id}`: raw readings for
//! short windows, roll-ups for long ones, bounded, permissions), the latest-readings layer
//! (`/collections/sta_latest/items`: latest values and states per station — from thresholds and
//! from alert rules' open incidents —, permissions) and new readings and alerts on the live
//! channel (`reading` and `alert` messages for those who may read `sta_datastream`).

use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::events::{off, open, runtime};
use crate::support::{Env, manholes, problem};

fn sta_post(env: &Env, path: &str, body: &Json) -> Json {
    let r = env.post(&format!("/sta/v1.1{path}")).token(&env.token("wang")).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "POST {path}: {}", r.text());
    r.json()
}

/// A station (Thing at a Location) with one Datastream; `thresholds` go in its properties.
/// Returns (thing id, datastream id).
fn station(env: &Env, name: &str, lon: f64, thresholds: Json) -> (i64, i64) {
    let thing = sta_post(
        env,
        "/Things",
        &json!({
            "name": name,
            "description": "洪山区 水位站",
            "Locations": [{"name": format!("{name} 位置"), "description": "河道", "encodingType": "application/geo+json",
                           "location": {"type": "Point", "coordinates": [lon, 30.50]}}],
            "Datastreams": [{
                "name": format!("{name} 水位"),
                "description": "water level",
                "unitOfMeasurement": {"name": "metre", "symbol": "m", "definition": "http://unitsofmeasure.org/ucum#m"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "properties": {"thresholds": thresholds},
                "Sensor": {"name": "水位计", "description": "level", "encodingType": "application/pdf", "metadata": "http://example.org/l.pdf"},
                "ObservedProperty": {"name": "水位", "definition": "http://example.org/level", "description": "water level"}
            }]
        }),
    );
    let tid = thing["@iot.id"].as_i64().expect("thing id");
    let r = env.get(&format!("/sta/v1.1/Things({tid})/Datastreams")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    (tid, r.json()["value"][0]["@iot.id"].as_i64().expect("datastream id"))
}

fn series(env: &Env, ds: i64, query: &str, user: Option<&str>) -> crate::support::Resp {
    let token = user.map(|u| env.token(u));
    env.get(&format!("/sta/series/{ds}{query}")).maybe_token(token.as_deref()).send()
}

#[test]
fn a_chart_reads_readings_for_short_windows_and_rollups_for_long_ones() {
    let env = manholes().env();
    let (_, ds) = station(&env, "一号站", 114.34, json!({}));
    // 2,500 readings a second apart from 10:00 Beijing time (more than one answer's 2,000 points)
    let start = jiff::Timestamp::from_second(1_796_349_600).unwrap(); // 2026-12-04T10:00:00+08:00
    let rows: Vec<Json> = (0..2_500)
        .map(|i| {
            let t = start.checked_add(jiff::SignedDuration::from_secs(i)).unwrap();
            json!([t.to_string(), (i % 100) as f64 / 10.0])
        })
        .collect();
    let body = json!([{"Datastream": {"@iot.id": ds}, "components": ["phenomenonTime", "result"], "dataArray": rows}]);
    let answers = sta_post(&env, "/CreateObservations", &body);
    assert!(answers.as_array().unwrap().iter().all(|a| a != "error"), "every row stored");

    // ten minutes: 600 readings, raw
    let r = series(&env, ds, "?from=2026-12-04T10:00:00%2B08:00&to=2026-12-04T10:10:00%2B08:00", Some("wang"));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let s = r.json();
    assert_eq!(s["source"], "raw", "{s}");
    assert_eq!(s["points"].as_array().unwrap().len(), 600);
    assert_eq!(
        s["points"][1],
        json!({"t": "2026-12-04T10:00:01+08:00", "count": 1, "min": 0.1, "max": 0.1, "avg": 0.1})
    );
    assert_eq!((s["unit"].as_str(), s["max_points"].as_u64()), (Some("m"), Some(2000)));
    assert_eq!(s["from"], "2026-12-04T10:00:00+08:00");

    // the hour: 2,500 readings, more than 2,000 points: minute roll-ups that hold them all
    let r = series(&env, ds, "?from=2026-12-04T10:00:00%2B08:00&to=2026-12-04T11:00:00%2B08:00", Some("wang"));
    let s = r.json();
    assert_eq!(s["source"], "minute", "{s}");
    let points = s["points"].as_array().unwrap();
    assert_eq!(points.len(), 42, "41 full minutes and 40 s of the 42nd");
    assert_eq!(points.iter().map(|p| p["count"].as_u64().unwrap()).sum::<u64>(), 2_500);
    assert_eq!(points[0]["t"], "2026-12-04T10:00:00+08:00");
    assert_eq!((points[0]["min"].as_f64(), points[0]["max"].as_f64()), (Some(0.0), Some(5.9)));
    // a month: hour roll-ups; a year: day roll-ups (a Beijing day)
    let r = series(&env, ds, "?from=2026-11-10T00:00:00%2B08:00&to=2026-12-07T00:00:00%2B08:00", Some("wang"));
    let s = r.json();
    assert_eq!((s["source"].as_str(), s["points"].as_array().map(Vec::len)), (Some("hour"), Some(1)), "{s}");
    let r = series(&env, ds, "?from=2026-01-01T00:00:00%2B08:00&to=2027-01-01T00:00:00%2B08:00", Some("wang"));
    let s = r.json();
    assert_eq!(s["source"], "day", "{s}");
    assert_eq!(s["points"][0]["t"], "2026-12-04T00:00:00+08:00");
    assert_eq!(s["points"][0]["count"], 2_500);

    // bounds: an empty or reversed window, more than 2,000 days, unknown parameters
    let bad = |q: &str| problem(&series(&env, ds, q, Some("wang")), StatusCode::BAD_REQUEST);
    assert_eq!(bad("?from=2026-12-04T11:00:00Z&to=2026-12-04T10:00:00Z")["parameter"], "from");
    let p = bad("?from=2000-01-01T00:00:00Z&to=2026-12-05T00:00:00Z");
    assert_eq!((p["parameter"].as_str(), p["max"].as_u64()), (Some("from"), Some(2000)), "{p}");
    assert_eq!(bad("?from=yesterday")["parameter"], "from");
    assert_eq!(bad("?colour=red")["parameter"], "colour");
}

#[test]
fn a_chart_needs_read_permission_and_an_existing_datastream() {
    let env = manholes().env();
    let (_, ds) = station(&env, "二号站", 114.34, json!({}));
    // no readings yet: an empty series of the last 24 hours
    let r = series(&env, ds, "", Some("li"));
    assert_eq!(r.status, StatusCode::OK, "the inspector reads: {}", r.text());
    assert_eq!((r.json()["source"].as_str(), r.json()["points"].as_array().map(Vec::len)), (Some("raw"), Some(0)));
    problem(&series(&env, ds, "", Some("zhang")), StatusCode::FORBIDDEN);
    problem(&series(&env, ds, "", None), StatusCode::UNAUTHORIZED);
    let p = problem(&series(&env, 999, "", Some("wang")), StatusCode::NOT_FOUND);
    assert_eq!(p["datastream"], 999, "{p}");
}

#[test]
fn the_latest_layer_shows_each_stations_newest_reading_and_state() {
    let env = manholes().env();
    let limits = json!({"warningAbove": 5, "alarmAbove": 10});
    let (a, ds_a) = station(&env, "三号站", 114.34, limits.clone());
    let (b, _) = station(&env, "四号站", 114.40, limits);
    let now = jiff::Timestamp::now();
    let at = |secs: i64| now.checked_sub(jiff::SignedDuration::from_secs(secs)).unwrap().to_string();
    for (t, v) in [(at(30), 3.0), (at(10), 12.5), (at(20), 4.0)] {
        sta_post(&env, &format!("/Datastreams({ds_a})/Observations"), &json!({"phenomenonTime": t, "result": v}));
    }
    let r = env.get("/collections/sta_latest/items").token(&env.token("li")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/geo+json");
    let fc = r.json();
    assert_eq!((fc["type"].as_str(), fc["numberReturned"].as_u64()), (Some("FeatureCollection"), Some(2)), "{fc}");
    let feature = |id: i64| fc["features"].as_array().unwrap().iter().find(|f| f["id"] == id).cloned().unwrap();
    let fa = feature(a);
    assert_eq!(fa["geometry"], json!({"type": "Point", "coordinates": [114.34, 30.50]}));
    let p = &fa["properties"];
    assert_eq!((p["state"].as_str(), p["state_label"].as_str()), (Some("alarm"), Some("报警")), "{p}");
    let reading = &p["datastreams"][0];
    assert_eq!((reading["datastream"].as_i64(), reading["result"].as_f64()), (Some(ds_a), Some(12.5)), "{p}");
    assert_eq!(reading["unit"], "m");
    assert!(reading["phenomenonTime"].as_str().unwrap().ends_with("+08:00"), "{reading}");
    assert_eq!(p["phenomenonTime"], reading["phenomenonTime"]);
    // no reading yet and no rule: unknown
    assert_eq!(feature(b)["properties"]["state"], "unknown");
    assert_eq!(feature(b)["properties"]["datastreams"][0]["state"], "unknown");
    // bbox narrows by position
    let r = env.get("/collections/sta_latest/items?bbox=114.39,30.4,114.5,30.6").token(&env.token("li")).send();
    let ids: Vec<i64> = r.json()["features"].as_array().unwrap().iter().map(|f| f["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, vec![b]);
    // the collection's document
    let r = env.get("/collections/sta_latest").token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["id"], "sta_latest");
    // who may not read the stations' layers
    problem(&env.get("/collections/sta_latest/items").token(&env.token("zhang")).send(), StatusCode::FORBIDDEN);
    problem(&env.get("/collections/sta_latest/items").send(), StatusCode::UNAUTHORIZED);
    problem(&env.get("/collections/sta_latest").token(&env.token("zhang")).send(), StatusCode::FORBIDDEN);
    let p = problem(
        &env.get("/collections/sta_latest/items?f=html").token(&env.token("li")).send(),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["parameter"], "f");
}

#[test]
fn a_new_reading_reaches_the_live_channel_of_its_readers_only() {
    let env = manholes().env();
    let (office, citizen) = (env.token("wang"), env.token("zhang"));
    let (thing, ds) = off(|| station(&env, "五号站", 114.34, json!({"warningAbove": 5})));
    runtime().block_on(async {
        let mut wang = open(&env, &office).await.unwrap();
        let mut zhang = open(&env, &citizen).await.unwrap();
        let t = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(5)).unwrap();
        off(|| {
            sta_post(
                &env,
                &format!("/Datastreams({ds})/Observations"),
                &json!({"phenomenonTime": t.to_string(), "result": 6.5}),
            )
        });
        let reading = loop {
            let m = wang.next(Duration::from_secs(10)).await.expect("the office hears the reading");
            if m["type"] == "reading" {
                break m;
            }
        };
        assert_eq!(
            reading,
            json!({"type": "reading", "datastream": ds, "thing": thing, "result": 6.5,
                   "phenomenonTime": shikong_model::time::beijing(t), "state": "warning"})
        );
        let heard = zhang.drain(Duration::from_millis(800)).await;
        assert!(heard.iter().all(|m| m["type"] != "reading"), "the citizen may not read sta_datastream: {heard:?}");
    });
}

fn rule(env: &Env, body: &Json) -> Json {
    let r = env.post("/alerts/rules").token(&env.token("wang")).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

fn observe(env: &Env, ds: i64, at: jiff::Timestamp, value: f64) {
    sta_post(
        env,
        &format!("/Datastreams({ds})/Observations"),
        &json!({"phenomenonTime": at.to_string(), "result": value}),
    );
}

fn settle(env: &Env) {
    shikong_http::alerts::settle(&env.state).expect("the evaluator settles");
}

/// The next `alert` message within ten seconds.
async fn next_alert(s: &mut crate::events::Stream) -> Json {
    loop {
        let m = s.next(Duration::from_secs(10)).await.expect("an alert message");
        if m["type"] == "alert" {
            return m;
        }
    }
}

#[test]
fn an_alert_opening_and_closing_reaches_the_live_channel_of_its_readers_only() {
    let env = manholes().env();
    let (office, citizen) = (env.token("wang"), env.token("zhang"));
    let (thing, ds) = off(|| station(&env, "七号站", 114.34, json!({})));
    let r = off(|| {
        rule(
            &env,
            &json!({"name": "水位超限", "scope": {"datastream": ds}, "condition": {"kind": "above", "threshold": 10.0}}),
        )
    });
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_mins(5);
    runtime().block_on(async {
        let mut wang = open(&env, &office).await.unwrap();
        let mut zhang = open(&env, &citizen).await.unwrap();
        off(|| {
            observe(&env, ds, t, 12.5);
            settle(&env);
        });
        let opened = next_alert(&mut wang).await;
        let open_alerts = off(|| env.get("/alerts?state=open").token(&office).send().json());
        let case = open_alerts["alerts"][0]["case"].clone();
        let case_no = open_alerts["alerts"][0]["case_no"].clone();
        assert!(case.is_string() && case_no.is_string(), "{open_alerts}");
        assert_eq!(
            opened,
            json!({"type": "alert", "rule": r["id"], "rule_name": "水位超限", "datastream": ds, "thing": thing,
                   "state": "open", "map_state": "alarm", "value": 12.5,
                   "at": shikong_model::time::beijing(t), "case": case, "case_no": case_no})
        );
        let later = t + jiff::SignedDuration::from_secs(30);
        off(|| {
            observe(&env, ds, later, 3.0);
            settle(&env);
        });
        let closed = next_alert(&mut wang).await;
        assert_eq!((closed["state"].as_str(), closed["value"].as_f64()), (Some("closed"), Some(3.0)), "{closed}");
        assert_eq!((&closed["case"], &closed["thing"]), (&case, &json!(thing)), "{closed}");
        assert_eq!(closed["at"], shikong_model::time::beijing(later));
        let heard = zhang.drain(Duration::from_millis(800)).await;
        assert!(heard.iter().all(|m| m["type"] != "alert"), "the citizen may not read sta_datastream: {heard:?}");
    });
}

#[test]
fn the_latest_layer_colours_stations_by_their_alerts() {
    let env = manholes().env();
    // No thresholds: the colours come from alert rules alone.
    let (breach, ds_breach) = station(&env, "八号站", 114.30, json!({}));
    let (quiet, ds_quiet) = station(&env, "九号站", 114.31, json!({}));
    let (fine, ds_fine) = station(&env, "十号站", 114.32, json!({}));
    let (unwatched, _) = station(&env, "十一号站", 114.33, json!({}));
    let now = jiff::Timestamp::now();
    let ago = |m: i64| now - jiff::SignedDuration::from_mins(m);
    for ds in [ds_breach, ds_fine] {
        rule(
            &env,
            &json!({"name": "超限", "scope": {"datastream": ds}, "condition": {"kind": "above", "threshold": 10.0}}),
        );
    }
    rule(
        &env,
        &json!({"name": "断线", "scope": {"datastream": ds_quiet}, "condition": {"kind": "silence", "minutes": 10}}),
    );
    observe(&env, ds_breach, ago(3), 12.5);
    observe(&env, ds_fine, ago(3), 4.0);
    observe(&env, ds_quiet, ago(3), 1.0);
    settle(&env);
    let states = || {
        let r = env.get("/collections/sta_latest/items").token(&env.token("li")).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let fc = r.json();
        let of = |id: i64| {
            let f = fc["features"].as_array().unwrap().iter().find(|f| f["id"] == id).cloned().unwrap();
            let p = &f["properties"];
            (p["state"].as_str().unwrap().to_owned(), p["datastreams"][0]["alert"].as_str().map(str::to_owned))
        };
        [of(breach), of(quiet), of(fine), of(unwatched)]
    };
    let s = |x: &str, a: Option<&str>| (x.to_owned(), a.map(str::to_owned));
    // an open incident: alarm; rules and recent readings: normal; no rule, no reading: unknown
    assert_eq!(states(), [s("alarm", Some("alarm")), s("normal", None), s("normal", None), s("unknown", None)]);
    // the silence rule's incident (the tick, 20 minutes on): silent while it is open
    let report = shikong_http::alerts::tick(&env.state, now + jiff::SignedDuration::from_mins(20)).expect("tick");
    assert_eq!(report.opened, 1);
    assert_eq!(states()[1], s("silent", Some("silent")));
    // recovery and a new reading: back to normal
    observe(&env, ds_breach, ago(2), 3.0);
    observe(&env, ds_quiet, ago(1), 1.5);
    settle(&env);
    assert_eq!(states(), [s("normal", None), s("normal", None), s("normal", None), s("unknown", None)]);
}
