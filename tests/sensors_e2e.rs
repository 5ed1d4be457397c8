//! `shikong sensors simulate` against a real `shikong serve --mqtt` process: the stations are
//! created as SensorThings Things in 洪山区 (once: a second run reuses them by name), and every
//! reading the simulator reports stored is readable through the API.

use crate::common::desktop::free_port;
use crate::common::server::Server;
use crate::common::*;
use serde_json::json;

const PASSWORD: &str = "传感器模拟2026!";

/// The number before `label` in the simulator's summary line.
fn figure(summary: &str, label: &str) -> u64 {
    let i = summary.find(label).unwrap_or_else(|| panic!("no `{label}` in {summary}"));
    summary[..i].split_whitespace().last().unwrap().parse().unwrap()
}

fn stored(summary: &str) -> u64 {
    figure(summary, " stored")
}

#[test]
fn simulator_creates_stations_and_publishes_readings_over_mqtt() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    ok_stdin(&["user", "add", "--data", &data, "--role", "office", "wang"], &format!("{PASSWORD}\n"));
    let mqtt = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&data, &["--mqtt", &mqtt]);
    let http = reqwest::blocking::Client::new();
    let login: serde_json::Value = http
        .post(server.url("/auth/login"))
        .json(&json!({"username": "wang", "password": PASSWORD}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = login["token"].as_str().unwrap().to_owned();

    // Signed in with --user (password on stdin); the broker comes from the landing page.
    let args = ["sensors", "simulate", "--server", &server.base, "--stations", "4", "--rate", "20", "--duration", "2"];
    let first = ok_stdin(&[&args[..], &["--user", "wang"]].concat(), &format!("{PASSWORD}\n"));
    assert!(first.contains("simulated 4 stations"), "{first}");
    // Again with --token: the same stations, more readings.
    let second = ok(&[&args[..], &["--token", &token]].concat());
    let total = stored(&first) + stored(&second);
    assert!(stored(&first) > 0 && stored(&second) > 0, "{first}\n{second}");

    let things = server.get_json("/sta/v1.1/Things?$expand=Locations,Datastreams&$orderby=name", &token);
    let things = things["value"].as_array().unwrap();
    let mut names: Vec<&str> = things.iter().map(|t| t["name"].as_str().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["洪山区井盖监测点 002", "洪山区水位站 001", "洪山区空气质量站 004", "洪山区路灯监测点 003"]);
    let mut units = Vec::new();
    for t in things {
        let [lon, lat] = [0, 1].map(|i| t["Locations"][0]["location"]["coordinates"][i].as_f64().unwrap());
        assert!((114.33..=114.45).contains(&lon) && (30.47..=30.56).contains(&lat), "{t}");
        let ds = &t["Datastreams"][0];
        units.push(ds["unitOfMeasurement"]["symbol"].as_str().unwrap().to_owned());
        let obs = server.get_json(
            &format!("/sta/v1.1/Datastreams({})/Observations?$top=1&$orderby=phenomenonTime%20desc", ds["@iot.id"]),
            &token,
        );
        assert!(obs["value"][0]["result"].is_number(), "{} has no readings: {obs}", t["name"]);
    }
    units.sort();
    assert_eq!(units, ["A", "deg", "m", "ug/m3"]);
    assert_eq!(server.get_json("/sta/v1.1/Datastreams?$count=true&$top=1", &token)["@iot.count"], 4);
    let count = server.get_json("/sta/v1.1/Observations?$count=true&$top=1", &token);
    // Every acknowledged reading is stored; one whose PUBACK the simulator did not wait for may be
    // stored too, never more than were published.
    let published = figure(&first, " readings published") + figure(&second, " readings published");
    let n = count["@iot.count"].as_u64().unwrap();
    assert!(n >= total && n <= published, "{n} stored, {total} acknowledged: {first}\n{second}");

    // A wrong token is refused with one line, before anything is created or sent.
    let err = fails(&[&args[..], &["--token", "not-a-token"]].concat());
    assert!(err.contains("401"), "{err}");
}
