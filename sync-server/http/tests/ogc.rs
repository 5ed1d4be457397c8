//! OGC API – Features Parts 1–4 in process: the core resources, paging, filtering (CQL2 text and
//! JSON), CRS (Part 2, authority axis order), errors as problem+json naming the parameter, writes
//! as versions attributed to the caller; snapshots of the landing page, conformance, collections
//! and queryables.

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

// The office user `wang`'s reads (shared with the other OGC test modules).
use crate::support::{get_as_wang as get, ok_as_wang as ok, problem_as_wang as problem_at};

#[test]
fn core_resources_have_the_ogc_shape() {
    let env = manholes().env();
    let landing = ok(&env, "/");
    for rel in ["self", "service-desc", "conformance", "data"] {
        assert!(rels(&landing).contains(&rel.to_owned()), "{rel}");
    }
    let conf = ok(&env, "/conformance");
    let classes: Vec<&str> = conf["conformsTo"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    for c in [
        "ogcapi-features-1/1.0/conf/core",
        "ogcapi-features-2/1.0/conf/crs",
        "ogcapi-features-3/1.0/conf/filter",
        "ogcapi-features-4/1.0/conf/create-replace-delete",
    ] {
        assert!(classes.iter().any(|x| x.contains(c)), "{c}");
    }
    let api = ok(&env, "/api");
    assert_eq!(api["openapi"], "3.0.3");
    assert!(api["paths"]["/collections/{collectionId}/items"]["get"].is_object());
    let cols = ok(&env, "/collections");
    let c = &cols["collections"][0];
    assert_eq!((c["id"].as_str(), c["title"].as_str()), (Some("manhole"), Some("井盖")));
    assert_eq!(c["storageCrs"], "http://www.opengis.net/def/crs/EPSG/0/4490");
    assert!(c["crs"].as_array().unwrap().iter().any(|x| x == "http://www.opengis.net/def/crs/EPSG/0/4547"));
    let bbox = &c["extent"]["spatial"]["bbox"][0];
    assert!((bbox[0].as_f64().unwrap() - 114.3421).abs() < 1e-3, "{bbox}");
    let q = ok(&env, "/collections/manhole/queryables");
    assert_eq!(q["properties"]["depth"]["type"], "number");
    assert_eq!(q["properties"]["installed"]["format"], "date");
    assert_eq!(q["properties"]["名称"]["type"], "string");
    // HTML for browsers, Chinese first.
    let r = env.get("/collections/manhole/items").token(&env.token("wang")).header("accept", "text/html").send();
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    assert!(html.contains("<html lang=\"zh-CN\">") && html.contains("关山大道井盖"), "{html}");
    assert_eq!(env.get("/healthz").send().status, StatusCode::OK);
}

#[test]
fn items_page_filter_and_reproject() {
    let env = manholes().env();
    let page1 = ok(&env, "/collections/manhole/items?limit=2");
    assert_eq!(page1["numberReturned"], 2);
    let next = page1["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let page2 = env.get(&next).token(&env.token("wang")).send().json();
    assert_eq!(page2["numberReturned"], 1);
    assert!(!rels(&page2).contains(&"next".to_owned()));
    let mut all = codes(&page1);
    all.extend(codes(&page2));
    all.sort();
    assert_eq!(all, ["HS-JG-0001", "HS-JG-0002", "HS-JG-0003"]);

    assert_eq!(
        codes(&ok(&env, "/collections/manhole/items?bbox=114.34,30.50,114.36,30.52")),
        ["HS-JG-0001", "HS-JG-0002"]
    );
    let f = "/collections/manhole/items?filter=depth%20%3E%201.5%20AND%20material%20%3D%20'%E9%93%B8%E9%93%81'";
    assert_eq!(codes(&ok(&env, f)), ["HS-JG-0003"]);
    let cql_json = r#"{"op":"=","args":[{"property":"good"},false]}"#;
    let url = format!(
        "/collections/manhole/items?filter-lang=cql2-json&filter={}",
        cql_json.replace('"', "%22").replace('{', "%7B").replace('}', "%7D").replace('[', "%5B").replace(']', "%5D")
    );
    assert_eq!(codes(&ok(&env, &url)), ["HS-JG-0003"]);
    // Valid time (datetime) is the OGC temporal filter; features without valid time always match.
    assert_eq!(codes(&ok(&env, "/collections/manhole/items?datetime=2020-01-01T00:00:00Z")).len(), 3);

    // Part 2: a GK zone in its authority axis order (northing, easting) equals shikong-crs (what
    // `shikong crs transform` prints).
    let gk = env
        .get("/collections/manhole/items/HS-JG-0001?crs=http://www.opengis.net/def/crs/EPSG/0/4547")
        .token(&env.token("wang"))
        .send();
    assert_eq!(gk.header("content-crs"), "<http://www.opengis.net/def/crs/EPSG/0/4547>");
    let gk = gk.json();
    let expected = shikong_crs::cli::transform_command("EPSG:4490", "EPSG:4547", 114.3421, 30.5102, None).unwrap();
    let e: Vec<f64> = expected.split_whitespace().map(|v| v.parse().unwrap()).collect();
    let c = &gk["geometry"]["coordinates"];
    assert!(
        (c[0].as_f64().unwrap() - e[1]).abs() < 1e-3 && (c[1].as_f64().unwrap() - e[0]).abs() < 1e-3,
        "{c} vs {expected}"
    );
    // EPSG:4326 in its authority order: latitude first.
    let ll = ok(&env, "/collections/manhole/items/HS-JG-0001?crs=EPSG:4326");
    assert_eq!(ll["geometry"]["coordinates"], json!([30.5102, 114.3421]));
    // A bbox in a GK zone (bbox-crs) selects the same features.
    let p = |code: &str| -> Vec<f64> {
        let g = ok(&env, &format!("/collections/manhole/items/{code}?crs=EPSG:4547"));
        g["geometry"]["coordinates"].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
    };
    let (a, b) = (p("HS-JG-0001"), p("HS-JG-0002"));
    let bbox = format!(
        "{},{},{},{}",
        a[0].min(b[0]) - 10.0,
        a[1].min(b[1]) - 10.0,
        a[0].max(b[0]) + 10.0,
        a[1].max(b[1]) + 10.0
    );
    let url = format!("/collections/manhole/items?bbox={bbox}&bbox-crs=http://www.opengis.net/def/crs/EPSG/0/4547");
    assert_eq!(codes(&ok(&env, &url)), ["HS-JG-0001", "HS-JG-0002"]);
}

#[test]
fn errors_are_problem_json_naming_the_parameter() {
    // `shikong serve --max-body 2048`
    let env = manholes().env_with(|c| c.max_body = 2048);
    let p = problem_at(&env, "/collections/manhole/items?bbox=1,2,3", StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "bbox");
    assert!(p["detail"].as_str().unwrap().contains("expected 4 numbers"));
    let p = problem_at(&env, "/collections/manhole/items?filter=depth%20%3E%3E%201", StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "filter");
    let p = problem_at(&env, "/collections/manhole/items?filter=colour%3D'red'", StatusCode::BAD_REQUEST);
    assert!(p["detail"].as_str().unwrap().contains("colour"));
    assert_eq!(problem_at(&env, "/collections/manhole/items?limit=0", StatusCode::BAD_REQUEST)["parameter"], "limit");
    assert_eq!(
        problem_at(&env, "/collections/manhole/items?colour=red", StatusCode::BAD_REQUEST)["parameter"],
        "colour"
    );
    assert_eq!(
        problem_at(&env, "/collections/manhole/items?crs=EPSG:2000", StatusCode::BAD_REQUEST)["parameter"],
        "crs"
    );
    assert_eq!(
        problem_at(&env, "/collections/manhole/items?as-of=yesterday", StatusCode::BAD_REQUEST)["parameter"],
        "as-of"
    );
    problem_at(&env, "/collections/nope/items", StatusCode::NOT_FOUND);
    problem_at(&env, "/collections/manhole/items/NOPE", StatusCode::NOT_FOUND);
    problem_at(&env, "/no/such/path", StatusCode::NOT_FOUND);
    // 413 for a body over --max-body.
    let big = json!({"type": "Feature", "geometry": null, "properties": {"名称": "x".repeat(5000)}});
    let r = env.post("/collections/manhole/items").token(&env.token("wang")).json(&big).send();
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.header("content-type"), "application/problem+json");
}

/// Status, body (JSON, or the text as a JSON string) and headers.
fn send(call: Call<'_>, token: Option<&str>) -> (StatusCode, Json, axum::http::HeaderMap) {
    let r = call.maybe_token(token).send();
    (r.status, r.json_or_text(), r.headers.clone())
}

#[test]
fn writes_are_versions_attributed_to_the_user() {
    let env = manholes().env();
    let li = env.login("li");
    let new = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.52]},
                     "properties": {"code": "HS-JG-0100", "名称": "新装井盖", "depth": 1.1, "material": "铸铁", "good": true}});
    let (st, created, h) = send(env.post("/collections/manhole/items").json(&new), Some(&li));
    assert_eq!(st, StatusCode::CREATED, "{created}");
    let location = h["location"].to_str().unwrap().to_owned();
    assert!(location.ends_with(created["id"].as_str().unwrap()), "{location}");
    assert_eq!(created["properties"]["version"], 1);
    let etag1 = h["etag"].to_str().unwrap().to_owned();

    // PATCH one field (JSON merge patch) → version 2; stale If-Match → 412.
    let patch = json!({"properties": {"depth": 2.4}});
    let (st, v2, h2) = send(env.patch(&location).header("if-match", &etag1).json(&patch), Some(&li));
    assert_eq!(st, StatusCode::OK, "{v2}");
    assert_eq!((v2["properties"]["version"].as_i64(), v2["properties"]["depth"].as_f64()), (Some(2), Some(2.4)));
    let (st, p, _) = send(env.patch(&location).header("if-match", &etag1).json(&patch), Some(&li));
    assert_eq!(st, StatusCode::PRECONDITION_FAILED, "{p}");
    // PUT replaces everything: fields left out become null.
    let replace = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.361, 30.521]},
                         "properties": {"code": "HS-JG-0100", "名称": "新装井盖（移位）", "depth": 2.4}});
    let (st, v3, _) =
        send(env.put(&location).header("if-match", h2["etag"].to_str().unwrap()).json(&replace), Some(&li));
    assert_eq!(st, StatusCode::OK, "{v3}");
    assert_eq!((v3["properties"]["version"].as_i64(), v3["properties"]["material"].clone()), (Some(3), Json::Null));
    // Validation errors name the field; nothing is written.
    let (st, p, _) = send(env.patch(&location).json(&json!({"properties": {"depth": "深"}})), Some(&li));
    assert_eq!((st, p["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("depth")), "{p}");
    let (st, p, _) = send(
        env.patch(&location).json(&json!({"geometry": {"type": "Point", "coordinates": [114.3, 91.0]}})),
        Some(&li),
    );
    assert_eq!((st, p["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("geometry")), "{p}");
    let (st, p, _) = send(env.post("/collections/manhole/items").json(&new), Some(&li));
    assert_eq!(st, StatusCode::CONFLICT, "{p}");
    // DELETE; the past stays readable with as-of.
    let t2 = v2["properties"]["tx_time"].as_str().unwrap().to_owned();
    let (st, _, _) = send(env.delete(&location), Some(&li));
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = send(env.get(&location), Some(&li));
    assert_eq!(st, StatusCode::NOT_FOUND);
    let past = ok(&env, &format!("/collections/manhole/items/HS-JG-0100?as-of={}", t2.replace('+', "%2B")));
    assert_eq!(past["properties"]["depth"], 2.4);
    let changes = ok(&env, &format!("/collections/manhole/changes?from={}", t2.replace('+', "%2B")));
    assert_eq!(changes["summary"], json!({"created": 0, "modified": 0, "deleted": 1}));

    // The store's history (as `shikong history` prints it) attributes every version to `li`; the
    // audit log shows the writes.
    let layer = env.store().layer("manhole").unwrap();
    let versions = env.store().history("manhole", &shikong_store::FeatureKey::Code("HS-JG-0100".into())).unwrap();
    let h = shikong_ingest::json::history(&layer, &versions, &[]);
    let authors: Vec<_> =
        h["versions"].as_array().unwrap().iter().map(|v| v["tx"]["author"].as_str().unwrap().to_owned()).collect();
    assert_eq!(authors, ["li", "li", "li", "li"]);
    let admin = env.login("admin");
    let (st, log, _) = send(env.get("/admin/audit?user=li&layer=manhole"), Some(&admin));
    assert_eq!(st, StatusCode::OK, "{log}");
    let actions: Vec<_> =
        log["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert_eq!(actions, ["feature.delete", "feature.update", "feature.update", "feature.create"]);
    let (st, logins, _) = send(env.get("/admin/audit?action=login.ok"), Some(&admin));
    assert_eq!(st, StatusCode::OK);
    assert!(logins["entries"].as_array().unwrap().iter().any(|e| e["actor"]["user"] == "li"), "{logins}");
    // Only admins read the audit log.
    let (st, _, _) = send(env.get("/admin/audit"), Some(&li));
    assert_eq!(st, StatusCode::FORBIDDEN);
}

#[test]
fn item_history_lists_every_version() {
    let env = manholes().env();
    let wang = env.token("wang");
    let r = env
        .patch("/collections/manhole/items/HS-JG-0002")
        .token(&wang)
        .json(&json!({"properties": {"depth": 2.5}}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let h = ok(&env, "/collections/manhole/items/HS-JG-0002/history");
    let versions = h["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 2, "{h}");
    assert_eq!(versions[1]["tx"]["author"], "wang", "{h}");
}

// ---------------------------------------------------------------------------------------------
// Snapshots of the catalogue documents

#[test]
fn landing_page_snapshot() {
    let env = catalogue().env();
    insta::assert_json_snapshot!("landing", ok(&env, "/"));
}

#[test]
fn conformance_snapshot() {
    let env = catalogue().env();
    insta::assert_json_snapshot!("conformance", ok(&env, "/conformance"));
}

#[test]
fn collections_snapshot() {
    let env = catalogue().env();
    // The transaction-time range is the run's clock (tests/time_range.rs checks it).
    let tx = "[transaction times]";
    insta::assert_json_snapshot!("collections", ok(&env, "/collections"), {".collections[][\"shikong:transactions\"]" => tx});
    insta::assert_json_snapshot!("collection_manhole", ok(&env, "/collections/manhole"), {"[\"shikong:transactions\"]" => tx});
}

#[test]
fn queryables_snapshot() {
    let env = catalogue().env();
    let r = env.get("/collections/manhole/queryables").token(&env.token("wang")).send();
    assert_eq!(r.header("content-type"), "application/schema+json");
    insta::assert_json_snapshot!("queryables_manhole", r.json());
    insta::assert_json_snapshot!("queryables_road", ok(&env, "/collections/road/queryables"));
}

// ---------------------------------------------------------------------------------------------
// Paging by cursor (issue 14): `next` links carry a keyset cursor pinned to a transaction

/// The ids of a page's features.
fn ids(page: &Json) -> Vec<String> {
    page["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn next_links_page_every_feature_exactly_once_while_others_write() {
    let env = grid::protected().env();
    let wang = env.token("wang");
    let mut expected = Vec::new();
    env.store()
        .query(&shikong_store::Query::layer("manhole"), &mut |f| {
            expected.push(f.feature.id.to_string());
            true
        })
        .unwrap();
    assert_eq!(expected.len(), grid::N * grid::N);
    expected.sort();

    let mut seen: Vec<String> = Vec::new();
    let mut url = Some("/collections/manhole/items?limit=7".to_owned());
    let mut pages = 0;
    while let Some(u) = url {
        let page = ok(&env, &u);
        seen.extend(ids(&page));
        url = next_link(&page);
        pages += 1;
        assert!(pages < 200, "paging does not end");
        if url.is_none() {
            break;
        }
        // Another writer, between every two pages: a new feature …
        let new = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.35, 30.51]},
                         "properties": {"code": format!("NEW-{pages}"), "名称": "翻页时新增"}});
        let r = env.post("/collections/manhole/items").token(&wang).json(&new).send();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let unseen: Vec<&String> = expected.iter().filter(|id| !seen.contains(id)).collect();
        let target = match pages {
            // … a feature already listed deleted (offsets would skip one) …
            2 => Some((seen[0].clone(), "delete")),
            // … one not listed yet deleted (it existed when paging began) …
            3 => unseen.last().map(|id| ((*id).clone(), "delete")),
            // … and updates of one listed and one not listed yet.
            4 => Some((seen[1].clone(), "patch")),
            5 => unseen.first().map(|id| ((*id).clone(), "patch")),
            _ => None,
        };
        if let Some((id, what)) = target {
            let item = format!("/collections/manhole/items/{id}");
            let r = if what == "delete" {
                env.delete(&item).token(&wang).send()
            } else {
                env.patch(&item).token(&wang).json(&json!({"properties": {"depth": 9.5}})).send()
            };
            assert!(r.status.is_success(), "{what} {id}: {}", r.text());
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    let twice: Vec<&String> = sorted.windows(2).filter(|w| w[0] == w[1]).map(|w| &w[0]).collect();
    assert!(twice.is_empty(), "listed twice: {twice:?}");
    let missing: Vec<&String> = expected.iter().filter(|id| sorted.binary_search(id).is_err()).collect();
    let extra: Vec<&String> = sorted.iter().filter(|id| expected.binary_search(id).is_err()).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "every feature of the collection as paging began, exactly once: missing {missing:?}, not there then {extra:?}"
    );
    assert!(pages > 50, "{pages} pages");
}

#[test]
fn cursors_are_checked_and_offset_still_works() {
    let env = manholes().env();
    // `offset` is still accepted (within its cap); its next link carries a cursor.
    let page = ok(&env, "/collections/manhole/items?limit=1&offset=1");
    assert_eq!(page["numberReturned"], 1);
    let next = next_link(&page).expect("a next link");
    assert!(next.contains("cursor=") && !next.contains("offset="), "{next}");
    let last = ok(&env, &next);
    assert_eq!(last["numberReturned"], 1);
    assert!(next_link(&last).is_none());
    let mut all = ids(&ok(&env, "/collections/manhole/items"));
    let mut paged = ids(&ok(&env, "/collections/manhole/items?limit=1"));
    let first = ok(&env, "/collections/manhole/items?limit=1");
    let mut url = next_link(&first);
    while let Some(u) = url {
        let p = ok(&env, &u);
        paged.extend(ids(&p));
        url = next_link(&p);
    }
    all.sort();
    paged.sort();
    assert_eq!(all, paged);

    let cursor = next.split("cursor=").nth(1).unwrap().split('&').next().unwrap().to_owned();
    // A damaged, forged or foreign cursor is a 400 naming the parameter.
    let mut damaged = cursor.clone().into_bytes();
    let i = damaged.len() / 2;
    damaged[i] = if damaged[i] == b'A' { b'B' } else { b'A' };
    let damaged = String::from_utf8(damaged).unwrap();
    for bad in ["garbage", "", &damaged, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"] {
        let p = problem_at(&env, &format!("/collections/manhole/items?cursor={bad}"), StatusCode::BAD_REQUEST);
        assert_eq!(p["parameter"], "cursor", "{bad}: {p}");
    }
    // The same cursor with another filter (it pins the query it was issued for).
    let p = problem_at(
        &env,
        &format!("/collections/manhole/items?cursor={cursor}&bbox=114.34,30.50,114.36,30.52"),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["parameter"], "cursor", "{p}");
    // Not both ways of paging at once.
    let p = problem_at(&env, &format!("/collections/manhole/items?cursor={cursor}&offset=1"), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "offset", "{p}");
    // The HTML pages page by cursor too.
    let (status, html) = get(&env, "/collections/manhole/items?limit=1&f=html");
    let html = html.as_str().unwrap().to_owned();
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("&amp;cursor=") || html.contains("&cursor="), "{html}");
    let (status, _) = get(&env, &format!("/collections/manhole/items?limit=1&f=html&cursor={cursor}"));
    assert_eq!(status, StatusCode::OK);
    // The OpenAPI document lists the parameter.
    let api = ok(&env, "/api");
    let params = api["paths"]["/collections/{collectionId}/items"]["get"]["parameters"].to_string();
    assert!(params.contains("cursor"), "{params}");
}
