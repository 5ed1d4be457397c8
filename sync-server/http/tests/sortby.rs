//! `sortby` on OGC API – Features items (Part 8 style, `sortby=-depth,+名称`): the order, keyset
//! paging through `next` links in that order (every feature once, pinned to the first page's
//! transaction), `numberMatched` of a sorted answer, and precise problem+json for bad fields,
//! too many keys, `offset` with `sortby`, foreign cursors and queries too large to sort.

use std::cmp::Ordering;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

// The office user `wang`'s reads (shared with the other OGC test modules).
use crate::support::{all_pages_as_wang as all_pages, ok_as_wang as ok};

/// `wang`'s GET answered 400 problem+json; its body.
#[track_caller]
fn problem_at(env: &Env, path: &str) -> Json {
    problem_as_wang(env, path, StatusCode::BAD_REQUEST)
}

fn depth(f: &Json) -> f64 {
    f["properties"]["depth"].as_f64().unwrap()
}

fn name(f: &Json) -> &str {
    f["properties"]["名称"].as_str().unwrap()
}

fn id(f: &Json) -> &str {
    f["id"].as_str().unwrap()
}

#[test]
fn sortby_orders_every_page_and_pages_each_feature_once() {
    let env = grid::protected().env();
    let wang = env.token("wang");
    let (mut expected, _) = all_pages(&env, "/collections/manhole/items?limit=1000");
    assert_eq!(expected.len(), grid::N * grid::N);
    // depth descending, then 名称 ascending (text order), then the entity id (ties).
    expected.sort_by(|a, b| {
        depth(b).partial_cmp(&depth(a)).unwrap_or(Ordering::Equal).then(name(a).cmp(name(b))).then(id(a).cmp(id(b)))
    });
    // `+` in a query is a space when decoded: both spellings mean ascending.
    let first = "/collections/manhole/items?limit=7&sortby=-depth,%2B名称";
    let page = ok(&env, first);
    assert_eq!(page["numberMatched"], grid::N * grid::N, "a sorted answer counts the matches");
    assert_eq!(page["numberReturned"], 7);
    // Another writer between pages does not move the pages (pinned to the first page's transaction).
    let new = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.35, 30.51]},
                     "properties": {"code": "NEW-1", "名称": "新增", "depth": 99.0}});
    let r = env.post("/collections/manhole/items").token(&wang).json(&new).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let mut seen: Vec<Json> = page["features"].as_array().unwrap().clone();
    let (rest, pages) = all_pages(&env, &next_link(&page).unwrap());
    seen.extend(rest);
    assert!(pages > 50, "{pages} pages");
    let seen_ids: Vec<&str> = seen.iter().map(id).collect();
    let expected_ids: Vec<&str> = expected.iter().map(id).collect();
    assert_eq!(seen_ids, expected_ids, "sorted pages list every feature once, in order");
    // A fresh query sees the new feature first (deepest).
    let page = ok(&env, "/collections/manhole/items?limit=2&sortby=-depth, 名称");
    assert_eq!(name(&page["features"][0]), "新增");

    // With a filter: only its matches, counted and ordered (ascending number, then text).
    let (seen, _) = all_pages(&env, "/collections/manhole/items?limit=9&filter=material%3D'铸铁'&sortby=depth,-code");
    assert_eq!(seen.len(), grid::N * grid::N / 2);
    for w in seen.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert_eq!(a["properties"]["material"], "铸铁");
        let ord = depth(a).partial_cmp(&depth(b)).unwrap();
        let codes = b["properties"]["code"].as_str().cmp(&a["properties"]["code"].as_str());
        assert!(ord == Ordering::Less || ord == Ordering::Equal && codes == Ordering::Less, "{a} before {b}");
    }
    // `sortby=id` is the default keyset order (no count needed, nothing to sort).
    let by_id = ok(&env, "/collections/manhole/items?limit=3&sortby=%2Bid");
    let plain = ok(&env, "/collections/manhole/items?limit=3");
    assert_eq!(by_id["features"], plain["features"]);
    // `-id`: the last ids first.
    let (now, _) = all_pages(&env, "/collections/manhole/items?limit=1000");
    let mut all_ids: Vec<&str> = now.iter().map(id).collect();
    all_ids.sort_unstable();
    all_ids.reverse();
    let desc = ok(&env, "/collections/manhole/items?limit=3&sortby=-id");
    let got: Vec<&str> = desc["features"].as_array().unwrap().iter().map(id).collect();
    assert_eq!(got, all_ids[..3]);
    // The OpenAPI document and conformance list it.
    let api = ok(&env, "/api");
    let params = api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"].to_string();
    assert!(params.contains("sortby"), "{params}");
    let conf = ok(&env, "/conformance").to_string();
    assert!(conf.contains("ogcapi-features-8/1.0/conf/sorting"), "{conf}");
}

#[test]
fn sortby_as_of_reads_the_past_in_order() {
    let env = grid::protected().env();
    let wang = env.token("wang");
    let before = jiff::Timestamp::now().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    let first = ok(&env, "/collections/manhole/items?limit=1&sortby=-depth");
    let deepest = id(&first["features"][0]).to_owned();
    let r = env
        .patch(&format!("/collections/manhole/items/{deepest}"))
        .token(&wang)
        .json(&json!({"properties": {"depth": 0.0}}))
        .send();
    assert!(r.status.is_success(), "{}", r.text());
    let now = ok(&env, "/collections/manhole/items?limit=1&sortby=-depth");
    assert_ne!(id(&now["features"][0]), deepest);
    let past = ok(&env, &format!("/collections/manhole/items?limit=1&sortby=-depth&as-of={before}"));
    assert_eq!(id(&past["features"][0]), deepest, "as-of sorts the past values");
}

#[test]
fn bad_sortby_is_a_precise_problem() {
    let env = grid::protected().env();
    for (q, says) in [
        ("sortby=nope", "`nope` is not a field of `manhole`"),
        ("sortby=", "empty"),
        ("sortby=depth,,名称", "empty"),
        ("sortby=depth,-depth", "more than once"),
        ("sortby=a,b,c,d,e", "at most 4"),
        ("sortby=*depth", "`*depth` is not a field"),
    ] {
        let p = problem_at(&env, &format!("/collections/manhole/items?{q}"));
        assert_eq!(p["parameter"], "sortby", "{q}: {p}");
        let detail = p["detail"].as_str().unwrap();
        assert!(detail.contains(says), "{q}: {detail}");
    }
    // An unknown field names the fields that sort.
    let p = problem_at(&env, "/collections/manhole/items?sortby=nope");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("depth") && detail.contains("名称") && detail.contains("id"), "{detail}");
    // Paging a sorted query is by its `next` link; `offset` would re-sort the whole query per page.
    let p = problem_at(&env, "/collections/manhole/items?sortby=depth&offset=5");
    assert_eq!(p["parameter"], "offset", "{p}");
    // A cursor belongs to its order.
    let page = ok(&env, "/collections/manhole/items?limit=2&sortby=depth");
    let next = next_link(&page).unwrap();
    let cursor = next.split("cursor=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    let p = problem_at(&env, &format!("/collections/manhole/items?limit=2&sortby=-depth&cursor={cursor}"));
    assert_eq!(p["parameter"], "cursor", "{p}");
    let p = problem_at(&env, &format!("/collections/manhole/items?limit=2&cursor={cursor}"));
    assert_eq!(p["parameter"], "cursor", "{p}");
}

#[test]
fn sorting_more_matches_than_the_bound_is_refused_not_scanned() {
    let env = grid::protected().env().restarted_with(|c| c.max_sorted = 100);
    let p = problem_at(&env, "/collections/manhole/items?sortby=depth&limit=5");
    assert_eq!(p["parameter"], "sortby", "{p}");
    assert_eq!(p["max"], 100, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("more than 100"), "{detail}");
    // Narrowed by a filter it sorts; the default id order pages any size.
    let page = ok(&env, "/collections/manhole/items?sortby=depth&limit=5&filter=code%20LIKE%20'JG-01-%25'");
    assert_eq!(page["numberMatched"], grid::N);
    let page = ok(&env, "/collections/manhole/items?limit=5");
    assert_eq!(page["numberReturned"], 5);
}
