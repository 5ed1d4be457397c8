//! The transaction-time range a time slider moves over (issue 16): `shikong:transactions` in
//! `GET /collections` and `GET /collections/{id}` — `first`, the layer's creation (before it the
//! layer reads empty `as-of`), `last`, the store's newest transaction (a write moves it).

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

fn get(env: &Env, token: &str, path: &str) -> Json {
    let r = env.get(path).token(token).send();
    assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
    r.json()
}

fn instant(s: &Json) -> jiff::Timestamp {
    s.as_str().unwrap_or_else(|| panic!("not a string: {s}")).parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn collections_give_the_transaction_time_range_a_slider_spans() {
    let env = catalogue().env();
    let wang = env.token("wang");
    let one = get(&env, &wang, "/collections/manhole");
    let span = &one["shikong:transactions"];
    let (first, last) = (instant(&span["first"]), instant(&span["last"]));
    assert!(first <= last, "{span}");
    assert!(span["first"].as_str().unwrap().ends_with("+08:00"), "Beijing time: {span}");
    // The list says the same.
    let all = get(&env, &wang, "/collections");
    let listed = all["collections"].as_array().unwrap().iter().find(|c| c["id"] == "manhole").unwrap();
    assert_eq!(listed["shikong:transactions"], *span, "{all}");

    // Every feature was written within the range; before `first` the layer is empty.
    let items = get(&env, &wang, "/collections/manhole/items?limit=1000");
    let features = items["features"].as_array().unwrap();
    assert!(!features.is_empty());
    for f in features {
        let t = instant(&f["properties"]["tx_time"]);
        assert!(first <= t && t <= last, "{t} outside {span}");
    }
    let before = first.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap();
    let empty = get(&env, &wang, &format!("/collections/manhole/items?as-of={}", enc(&before.to_string())));
    assert_eq!(empty["features"].as_array().map(Vec::len), Some(0), "{empty}");

    // A write moves `last` to its transaction time (as the feature's history records it).
    let r = env
        .patch("/collections/manhole/items/HS-JG-0002")
        .token(&wang)
        .json(&json!({"properties": {"depth": 2.5}}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let h = get(&env, &wang, "/collections/manhole/items/HS-JG-0002/history");
    let written = h["versions"].as_array().unwrap().last().unwrap()["tx"]["time"].clone();
    let after = get(&env, &wang, "/collections/manhole");
    assert_eq!(after["shikong:transactions"]["first"], span["first"], "{after}");
    assert_eq!(instant(&after["shikong:transactions"]["last"]), instant(&written), "{after} vs {h}");

    // A delete in another layer moves that layer's `last`, not the manholes'.
    let road = get(&env, &wang, "/collections/road/items?limit=1");
    let rid = road["features"][0]["id"].as_str().unwrap().to_owned();
    let r = env.delete(&format!("/collections/road/items/{rid}")).token(&wang).send();
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let gone = get(&env, &wang, &format!("/collections/road/items/{rid}/history"));
    let deleted = gone["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(deleted["op"], "delete", "{gone}");
    let roads = get(&env, &wang, "/collections/road");
    assert_eq!(instant(&roads["shikong:transactions"]["last"]), instant(&deleted["tx"]["time"]), "{roads}");
    let manholes = get(&env, &wang, "/collections/manhole");
    assert_eq!(manholes["shikong:transactions"], after["shikong:transactions"], "{manholes}");
}
