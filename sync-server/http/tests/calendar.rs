//! The working-time calendar over HTTP: deadlines on the official 2025 schedule (the 调休 Sunday),
//! provisional answers for years without data, refused input naming the parameter, and an
//! administrator's edit of a year — validated, kept in `DATA/calendar.json`, used at once and
//! after a restart.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

fn deadline(env: &Env, query: &str) -> Json {
    let r = env.get(&format!("/calendar/deadline?{query}")).send();
    assert_eq!(r.status, StatusCode::OK, "{query}: {}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    r.json()
}

fn refused(env: &Env, query: &str) -> Json {
    problem(&env.get(&format!("/calendar/deadline?{query}")).send(), StatusCode::BAD_REQUEST)
}

#[test]
fn deadlines_follow_the_official_schedule_and_are_public() {
    let env = manholes().env();
    // Friday 10:00 + 1 working day before the 调休 Sunday of 2025 is that Sunday, asked anonymously.
    assert_eq!(
        deadline(&env, "start=2025-09-26T10:00:00%2B08:00&days=1"),
        json!({"deadline": "2025-09-28T10:00:00+08:00", "provisional": false})
    );
    // The offset's `+` sent unencoded arrives as a space and is still read as `+08:00`.
    assert_eq!(deadline(&env, "start=2025-09-26T10:00:00+08:00&days=1")["deadline"], "2025-09-28T10:00:00+08:00");
    // A local time is Beijing time; UTC input keeps its Beijing time of day.
    assert_eq!(deadline(&env, "start=2025-09-26T10:00&days=4")["deadline"], "2025-10-09T10:00:00+08:00");
    assert_eq!(deadline(&env, "start=2025-09-26T02:00:00Z&days=1")["deadline"], "2025-09-28T10:00:00+08:00");
    // Hours count working time only: across the October holiday week; across lunch in minutes.
    assert_eq!(deadline(&env, "start=2025-09-30T16:00&hours=2")["deadline"], "2025-10-09T10:00:00+08:00");
    assert_eq!(deadline(&env, "start=2025-06-10T11:30&minutes=60")["deadline"], "2025-06-10T13:30:00+08:00");
    // Into a year without the official schedule: Monday–Friday, and the answer says so.
    assert_eq!(
        deadline(&env, "start=2026-12-31T16:00&hours=2"),
        json!({"deadline": "2027-01-01T10:00:00+08:00", "provisional": true})
    );
}

#[test]
fn bad_deadline_requests_name_the_parameter() {
    let env = manholes().env();
    for (query, parameter) in [
        ("days=1", "start"),
        ("start=tomorrow&days=1", "start"),
        ("start=2025-09-26&days=1", "start"),
        ("start=2025-09-26T10:00", "days"),
        ("start=2025-09-26T10:00&days=1&hours=2", "hours"),
        ("start=2025-09-26T10:00&days=-1", "days"),
        ("start=2025-09-26T10:00&days=3651", "days"),
        ("start=2025-09-26T10:00&hours=100001", "hours"),
        ("start=2025-09-26T10:00&days=1&colour=red", "colour"),
        ("start=9999-12-31T10:00&days=5", "start"),
    ] {
        let p = refused(&env, query);
        assert_eq!(p["parameter"], parameter, "{query}: {p}");
    }
    assert_eq!(refused(&env, "start=2025-09-26T10:00&days=3651")["max"], 3650);
}

fn year_2027() -> Json {
    json!({
        "source": "国务院办公厅关于2027年部分节假日安排的通知（测试数据）",
        "holidays": [{"name": "元旦", "from": "2027-01-01", "to": "2027-01-03"}],
        "workdays": [{"date": "2027-01-09", "name": "元旦"}]
    })
}

#[test]
fn the_calendar_document_lists_the_shipped_years() {
    let env = manholes().env();
    let r = env.get("/calendar").send();
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.json();
    assert_eq!(doc["periods"], json!([{"start": "09:00", "end": "12:00"}, {"start": "13:00", "end": "17:00"}]));
    let years: Vec<&String> = doc["years"].as_object().unwrap().keys().collect();
    assert_eq!(years, ["2025", "2026"]);
    assert!(
        doc["years"]["2025"]["workdays"]
            .as_array()
            .unwrap()
            .contains(&json!({"date": "2025-09-28", "name": "国庆节、中秋节"}))
    );
    assert!(doc["years"]["2025"]["source"].as_str().unwrap().contains("国办发明电〔2024〕12号"));
}

#[test]
fn administrators_edit_a_year_and_it_is_used_at_once_and_kept() {
    let env = manholes().env();
    let url = "/calendar/years/2027";
    // Only administrators.
    problem(&env.put(url).json(&year_2027()).send(), StatusCode::UNAUTHORIZED);
    problem(&env.put(url).token(&env.token("wang")).json(&year_2027()).send(), StatusCode::FORBIDDEN);
    let admin = env.token("admin");
    // Refused edits change nothing: a date both off and worked, a date of another year, a typo'd
    // member, a year out of range.
    let mut both = year_2027();
    both["workdays"] = json!([{"date": "2027-01-02", "name": "元旦"}]);
    let p = problem(&env.put(url).token(&admin).json(&both).send(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["field"], "workdays[0].date", "{p}");
    let p = problem(
        &env.put("/calendar/years/2028").token(&admin).json(&year_2027()).send(),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert_eq!(p["field"], "holidays[0].from", "{p}");
    let mut typo = year_2027();
    typo["holiday"] = typo["holidays"].take();
    typo.as_object_mut().unwrap().remove("holidays");
    problem(&env.put(url).token(&admin).json(&typo).send(), StatusCode::BAD_REQUEST);
    let p = problem(&env.put("/calendar/years/12025").token(&admin).json(&year_2027()).send(), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "year");
    assert!(!env.dir.path().join("calendar.json").exists(), "refused edits write nothing");
    assert_eq!(deadline(&env, "start=2026-12-31T16:00&hours=2")["provisional"], true);

    // The edit is answered, stored and used by the next request.
    let r = env.put(url).token(&admin).json(&year_2027()).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), year_2027());
    let stored: Json = serde_json::from_slice(&std::fs::read(env.dir.path().join("calendar.json")).unwrap()).unwrap();
    assert_eq!(stored["years"]["2027"], year_2027());
    assert!(stored.get("periods").is_none(), "only the edits are stored: {stored}");
    // Thursday 31 December 2026 16:00 + 2 working hours: 1 January 2027 is now a holiday.
    assert_eq!(
        deadline(&env, "start=2026-12-31T16:00&hours=2"),
        json!({"deadline": "2027-01-04T10:00:00+08:00", "provisional": false})
    );
    // Friday 8 January + 1 working day is the adjusted Saturday.
    assert_eq!(deadline(&env, "start=2027-01-08T10:00&days=1")["deadline"], "2027-01-09T10:00:00+08:00");
    let years: Vec<String> = env.get("/calendar").send().json()["years"].as_object().unwrap().keys().cloned().collect();
    assert_eq!(years, ["2025", "2026", "2027"]);

    // Replacing a shipped year; and all of it survives a restart.
    let r = env
        .put("/calendar/years/2025")
        .token(&admin)
        .json(&json!({"source": "改", "holidays": [{"name": "国庆节", "from": "2025-10-01", "to": "2025-10-03"}]}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let env = env.restarted_with(|_| {});
    assert_eq!(deadline(&env, "start=2025-09-26T10:00&days=1")["deadline"], "2025-09-29T10:00:00+08:00");
    assert_eq!(deadline(&env, "start=2027-01-08T10:00&days=1")["deadline"], "2027-01-09T10:00:00+08:00");
    assert_eq!(deadline(&env, "start=2026-01-03T10:00&days=1")["deadline"], "2026-01-04T10:00:00+08:00");
}

#[test]
fn a_broken_edits_file_stops_the_server_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calendar.json");
    std::fs::write(&file, r#"{"years": {"2027": {"source": "", "holidays": [{"name": "元旦", "from": "2026-12-31", "to": "2027-01-01"}]}}}"#)
        .unwrap();
    let e = shikong_http::LiveCalendar::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("calendar.json") && e.contains("years.2027.holidays[0].from"), "{e}");
    std::fs::write(&file, "{ not json").unwrap();
    let e = shikong_http::LiveCalendar::open(dir.path()).unwrap_err().to_string();
    assert!(e.contains("calendar.json") && e.contains("not a calendar document"), "{e}");
}
