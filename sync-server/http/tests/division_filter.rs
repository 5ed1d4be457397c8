//! `intersects=COLLECTION/FEATURE` on items: the features inside a division (the demo's
//! `district` layer, Wuhan's 13 districts) — what the desktop query builder's 行政区 choice sends,
//! since a district's polygon as CQL2 text would exceed the filter's size bound. Checked against an
//! independent point-in-polygon count over the district geometry read through the API; combined
//! with `filter`, `sortby` and paging; read at the request's `as-of`; bad references and layers
//! the caller cannot read are refused naming the parameter.

use axum::http::StatusCode;
use serde_json::Value as Json;

use crate::support::*;

const HONGSHAN: &str = "420111";

use crate::support::ok_as_wang as ok;

/// Every feature of a query, following `next` links.
fn all(env: &Env, first: &str) -> Vec<Json> {
    all_pages_as_wang(env, first).0
}

fn codes(fs: &[Json]) -> Vec<String> {
    let mut c: Vec<String> = fs.iter().map(|f| f["properties"]["code"].as_str().unwrap().to_owned()).collect();
    c.sort();
    c
}

/// Even-odd ray casting over every ring of a (Multi)Polygon: independent of the `geo` crate.
fn inside(geometry: &Json, x: f64, y: f64) -> bool {
    let polys: Vec<&Json> = match geometry["type"].as_str().unwrap() {
        "Polygon" => vec![&geometry["coordinates"]],
        "MultiPolygon" => geometry["coordinates"].as_array().unwrap().iter().collect(),
        t => panic!("not a polygon: {t}"),
    };
    let mut crossings = 0;
    for rings in polys {
        for ring in rings.as_array().unwrap() {
            let pts: Vec<(f64, f64)> =
                ring.as_array().unwrap().iter().map(|p| (p[0].as_f64().unwrap(), p[1].as_f64().unwrap())).collect();
            for w in pts.windows(2) {
                let ((x0, y0), (x1, y1)) = (w[0], w[1]);
                if (y0 > y) != (y1 > y) && x < x0 + (y - y0) / (y1 - y0) * (x1 - x0) {
                    crossings += 1;
                }
            }
        }
    }
    crossings % 2 == 1
}

/// The manholes inside 洪山区 counted by point-in-polygon on the district read over the API.
fn expected(env: &Env, as_of: Option<&str>) -> Vec<String> {
    let at = as_of.map_or(String::new(), |t| format!("?as-of={}", shikong_protocol::url::encode_component(t)));
    let district = ok(env, &format!("/collections/district/items/{HONGSHAN}{at}"));
    let at = as_of.map_or(String::new(), |t| format!("&as-of={}", shikong_protocol::url::encode_component(t)));
    let manholes = all(env, &format!("/collections/manhole/items?limit=10000{at}"));
    let inside: Vec<Json> = manholes
        .into_iter()
        .filter(|f| {
            let c = &f["geometry"]["coordinates"];
            inside(&district["geometry"], c[0].as_f64().unwrap(), c[1].as_f64().unwrap())
        })
        .collect();
    codes(&inside)
}

/// Redraws 洪山区 as a tiny square far from every manhole.
fn shrink_hongshan(env: &Env) {
    let square = shikong_model::geojson::from_json(&serde_json::json!({"type": "MultiPolygon",
        "coordinates": [[[[113.0, 29.0], [113.001, 29.0], [113.001, 29.001], [113.0, 29.001], [113.0, 29.0]]]]}))
    .unwrap();
    let mut tx = env.store().begin(shikong_store::TxMeta::by("cli:test")).unwrap();
    let patch = shikong_store::Patch { geometry: Some(Some(square)), ..Default::default() };
    tx.update("district", &shikong_store::FeatureKey::Code(HONGSHAN.into()), patch).unwrap();
    tx.commit().unwrap();
}

#[test]
fn manholes_inside_hongshan_match_point_in_polygon() {
    let env = demo().env();
    let total = all(&env, "/collections/manhole/items?limit=10000").len();
    let want = expected(&env, None);
    assert!(!want.is_empty() && want.len() < total, "the demo's manholes straddle 洪山区: {} of {total}", want.len());
    // Small pages: the `next` links carry the parameter.
    let got = all(&env, &format!("/collections/manhole/items?limit=97&intersects=district/{HONGSHAN}"));
    assert_eq!(codes(&got), want, "intersects=district/{HONGSHAN} vs point-in-polygon");
    let page = ok(&env, &format!("/collections/manhole/items?limit=97&intersects=district/{HONGSHAN}"));
    let next = page["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap();
    assert!(next["href"].as_str().unwrap().contains(&format!("intersects=district%2F{HONGSHAN}")), "{next}");
    // By entity id too (`/items/{id}` takes either).
    let id = ok(&env, &format!("/collections/district/items/{HONGSHAN}"))["id"].as_str().unwrap().to_owned();
    assert_eq!(codes(&all(&env, &format!("/collections/manhole/items?limit=10000&intersects=district/{id}"))), want);
    // Sorted answers count their matches.
    let sorted = ok(&env, &format!("/collections/manhole/items?limit=5&sortby=-埋深&intersects=district/{HONGSHAN}"));
    assert_eq!(sorted["numberMatched"].as_u64(), Some(want.len() as u64), "numberMatched");
    eprintln!("洪山区: {} of {total} demo manholes", want.len());
}

#[test]
fn combined_with_filter_and_bbox() {
    let env = demo().env();
    let inside = expected(&env, None);
    let filter = shikong_protocol::url::encode_component("埋深 > 2.5");
    let deep = codes(&all(&env, &format!("/collections/manhole/items?limit=10000&filter={filter}")));
    let want: Vec<String> = inside.iter().filter(|c| deep.contains(c)).cloned().collect();
    assert!(!want.is_empty() && want.len() < inside.len());
    let got = all(&env, &format!("/collections/manhole/items?limit=50&filter={filter}&intersects=district/{HONGSHAN}"));
    assert_eq!(codes(&got), want, "filter AND intersects");
    // A bbox outside the district: nothing.
    let none =
        ok(&env, &format!("/collections/manhole/items?bbox=113.0,29.0,113.1,29.1&intersects=district/{HONGSHAN}"));
    assert_eq!(none["numberReturned"], 0, "{none}");
}

#[test]
fn the_division_is_read_at_the_same_as_of() {
    let env = demo().env();
    let before_count = expected(&env, None);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t = jiff::Timestamp::now().to_string();
    std::thread::sleep(std::time::Duration::from_millis(20));
    shrink_hongshan(&env);
    let now = ok(&env, &format!("/collections/manhole/items?limit=100&intersects=district/{HONGSHAN}"));
    assert_eq!(now["numberReturned"], 0, "the district now: {now}");
    let at = shikong_protocol::url::encode_component(&t);
    let then = all(&env, &format!("/collections/manhole/items?limit=10000&as-of={at}&intersects=district/{HONGSHAN}"));
    assert_eq!(codes(&then), before_count, "as-of reads the district as it was then");
    assert_eq!(expected(&env, Some(&t)), before_count);
}

/// A `next` link pins the transaction its first page read; the division is read at that pin too,
/// so a district redrawn between two pages does not change what the later pages hold.
#[test]
fn later_pages_read_the_division_at_the_first_pages_transaction() {
    let env = demo().env();
    let want = expected(&env, None);
    assert!(want.len() > 20, "{} manholes in the district", want.len());
    let first = ok(&env, &format!("/collections/manhole/items?limit=10&intersects=district/{HONGSHAN}"));
    let mut got: Vec<Json> = first["features"].as_array().unwrap().clone();
    let next = next_link(&first).expect("a next link");
    // 洪山区 redrawn between the pages.
    shrink_hongshan(&env);
    got.extend(all(&env, &next));
    assert_eq!(codes(&got), want, "the pages together are the district as the first page saw it");
}

#[test]
fn bad_references_name_the_parameter() {
    let env = demo().env();
    let wang = env.token("wang");
    for (reference, status) in [
        ("district", StatusCode::BAD_REQUEST),
        ("district/", StatusCode::BAD_REQUEST),
        ("/420111", StatusCode::BAD_REQUEST),
        ("district/999999", StatusCode::NOT_FOUND),
        ("no_such_layer/420111", StatusCode::NOT_FOUND),
    ] {
        let url =
            format!("/collections/manhole/items?intersects={}", shikong_protocol::url::encode_component(reference));
        let p = problem(&env.get(&url).token(&wang).send(), status);
        assert_eq!(p["parameter"], "intersects", "{reference}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("intersects"), "{reference}: {p}");
    }
    // Given twice: refused like any repeated parameter.
    let p = problem(
        &env.get("/collections/manhole/items?intersects=district/420111&intersects=district/420102")
            .token(&wang)
            .send(),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("more than once"), "{p}");
}

#[test]
fn a_division_layer_the_caller_cannot_read_is_refused() {
    let env = demo().env();
    edit_layer(env.store(), "district", |d| d.public = false);
    // The citizen reads the public manholes, but not the (now non-public) districts.
    let citizen = env.token("zhang");
    let r = env.get("/collections/manhole/items?limit=1").token(&citizen).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let r = env.get(&format!("/collections/manhole/items?intersects=district/{HONGSHAN}")).token(&citizen).send();
    assert!(matches!(r.status, StatusCode::FORBIDDEN | StatusCode::NOT_FOUND), "{}: {}", r.status, r.text());
    let p = r.json();
    assert_eq!(p["parameter"], "intersects", "{p}");
    assert_eq!(p["collection"], "district", "{p}");
    // Anonymous callers: 401, naming it too.
    let r = env.get(&format!("/collections/manhole/items?intersects=district/{HONGSHAN}")).send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert_eq!(r.json()["parameter"], "intersects");
    // The office user still may.
    ok(&env, &format!("/collections/manhole/items?intersects=district/{HONGSHAN}"));
}

#[test]
fn a_division_with_too_many_vertices_is_refused() {
    let env = demo().env();
    // 洪山区 redrawn as a 200,001-vertex circle: over the bound by one.
    let n = 200_001;
    let ring: Vec<Json> = (0..n)
        .map(|i| {
            let a = std::f64::consts::TAU * i as f64 / (n - 1) as f64;
            let (x, y) = if i == n - 1 { (114.4 + 0.1, 30.5) } else { (114.4 + 0.1 * a.cos(), 30.5 + 0.1 * a.sin()) };
            serde_json::json!([x, y])
        })
        .collect();
    let g = shikong_model::geojson::from_json(&serde_json::json!({"type": "MultiPolygon", "coordinates": [[ring]]}))
        .unwrap();
    assert_eq!(g.coord_count(), n);
    let mut tx = env.store().begin(shikong_store::TxMeta::by("cli:test")).unwrap();
    let patch = shikong_store::Patch { geometry: Some(Some(g)), ..Default::default() };
    tx.update("district", &shikong_store::FeatureKey::Code(HONGSHAN.into()), patch).unwrap();
    tx.commit().unwrap();
    let r =
        env.get(&format!("/collections/manhole/items?intersects=district/{HONGSHAN}")).token(&env.token("wang")).send();
    let p = problem(&r, StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "intersects", "{p}");
    assert_eq!(p["max"], 200_000, "{p}");
    assert_eq!(p["vertices"], n, "{p}");
    assert!(p["detail"].as_str().unwrap().contains("200001 vertices"), "{p}");
}
