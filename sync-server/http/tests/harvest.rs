//! Harvesting another catalogue (issue 20) in process, against a fake outside CSW 2.0.2: a small
//! axum server on a loopback port of its own serving its records in pages of 100 with
//! `nextRecord`, whose records the test changes, removes, adds, and whose pages it can make fail
//! from a given position. The harvest gets every record (no ceiling), a re-run counts exactly
//! what changed, the records are found through Records and CSW, only administrators manage
//! harvests, and a run that fails half-way keeps what the previous run harvested.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};

use crate::support::*;

/// The fake outside catalogue: remote id → (title, abstract).
#[derive(Clone, Default)]
pub struct FakeCsw {
    pub port: u16,
    pub records: Arc<Mutex<BTreeMap<String, (String, String)>>>,
    /// Pages starting at or after this position answer 500 (0: never).
    pub fail_from: Arc<AtomicU64>,
    /// GetRecords requests served.
    pub pages: Arc<AtomicU64>,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

async fn csw(State(f): State<FakeCsw>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let get = |name: &str| -> Option<u64> {
        q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok())
    };
    let start = get("startPosition").unwrap_or(1).max(1);
    let max = get("maxRecords").unwrap_or(10).min(100);
    let fail = f.fail_from.load(Ordering::SeqCst);
    if fail > 0 && start >= fail {
        return (StatusCode::INTERNAL_SERVER_ERROR, "database gone").into_response();
    }
    f.pages.fetch_add(1, Ordering::SeqCst);
    let recs = f.records.lock().unwrap();
    let total = recs.len() as u64;
    let mut body = String::new();
    let mut returned = 0u64;
    for (id, (title, abs)) in recs.iter().skip((start - 1) as usize).take(max as usize) {
        returned += 1;
        body.push_str(&format!(
            "<csw:Record><dc:identifier>{}</dc:identifier><dc:title>{}</dc:title><dc:type>dataset</dc:type>\
             <dc:subject>邻区</dc:subject><dct:abstract>{}</dct:abstract><dct:modified>2026-11-01</dct:modified>\
             <dct:references scheme=\"WWW:LINK\">http://127.0.0.1:{}/records/{}</dct:references>\
             <ows:BoundingBox crs=\"urn:ogc:def:crs:EPSG::4326\"><ows:LowerCorner>30.1 114.1</ows:LowerCorner>\
             <ows:UpperCorner>30.2 114.2</ows:UpperCorner></ows:BoundingBox></csw:Record>",
            esc(id),
            esc(title),
            esc(abs),
            f.port,
            esc(id)
        ));
    }
    let next = if start + returned <= total && returned > 0 { start + returned } else { 0 };
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<csw:GetRecordsResponse xmlns:csw="http://www.opengis.net/cat/csw/2.0.2" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dct="http://purl.org/dc/terms/" xmlns:ows="http://www.opengis.net/ows" version="2.0.2">
<csw:SearchStatus timestamp="2026-12-07T00:00:00Z"/>
<csw:SearchResults numberOfRecordsMatched="{total}" numberOfRecordsReturned="{returned}" nextRecord="{next}" recordSchema="http://www.opengis.net/cat/csw/2.0.2" elementSet="full">{body}</csw:SearchResults></csw:GetRecordsResponse>"#
    );
    ([("content-type", "application/xml; charset=utf-8")], xml).into_response()
}

/// The record the fake catalogue holds as number `i`.
pub fn fake_record(i: u64) -> (String, (String, String)) {
    (format!("rec-{i:06}"), (format!("邻区档案 {i}"), format!("邻区目录第 {i} 条 lqml{i}x")))
}

/// Starts the fake catalogue with records 1..=n on a free loopback port (on `rt`).
pub fn start_fake_csw(rt: &tokio::runtime::Runtime, n: u64) -> FakeCsw {
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let f = FakeCsw { port, ..FakeCsw::default() };
    f.records.lock().unwrap().extend((1..=n).map(fake_record));
    let app = axum::Router::new().route("/csw", axum::routing::get(csw)).with_state(f.clone());
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    f
}

fn enc(s: &str) -> String {
    shikong_protocol::url::encode_component(s)
}

fn run(env: &Env, admin: &str, id: &str) -> Json {
    let r = env.post(&format!("/harvests/{id}/run?wait=true")).token(admin).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let j = r.json();
    assert_eq!(j["started"], true, "{j}");
    j["run"].clone()
}

fn records_matched(env: &Env, token: &str, q: &str) -> u64 {
    let r = env.get(&format!("/collections/catalog/items?q={}&limit=1", enc(q))).token(token).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["numberMatched"].as_u64().unwrap()
}

fn csw_matched(env: &Env, q: &str) -> u64 {
    let c = enc(&format!("AnyText LIKE '%{q}%'"));
    let r = env
        .get(&format!(
            "/csw?service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=hits&constraintLanguage=CQL_TEXT&constraint={c}"
        ))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let xml = r.text();
    let at = xml.find("numberOfRecordsMatched=\"").unwrap_or_else(|| panic!("{xml}")) + 24;
    xml[at..].split('"').next().unwrap().parse().unwrap()
}

fn counts(run: &Json) -> [u64; 4] {
    ["added", "updated", "removed", "unchanged"].map(|k| run[k].as_u64().unwrap_or_else(|| panic!("{k}: {run}")))
}

#[test]
fn a_csw_is_harvested_whole_then_incrementally() {
    let env = manholes().env();
    let fake = start_fake_csw(runtime(), 2500);
    let admin = env.token("admin");
    let body = json!({"url": format!("http://127.0.0.1:{}/csw", fake.port), "type": "csw", "title": "邻区目录"});

    // Administrators only.
    assert_eq!(env.post("/harvests").json(&body).send().status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.post("/harvests").token(&env.token("wang")).json(&body).send().status, StatusCode::FORBIDDEN);
    assert_eq!(env.get("/harvests").send().status, StatusCode::UNAUTHORIZED);
    assert_eq!(env.get("/harvests").token(&env.token("wang")).send().status, StatusCode::FORBIDDEN);
    let bad = json!({"url": "ftp://x/", "type": "csw", "title": "x"});
    let r = env.post("/harvests").token(&admin).json(&bad).send();
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("url")), "{}", r.text());

    let r = env.post("/harvests").token(&admin).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(env.post(&format!("/harvests/{id}/run")).token(&env.token("wang")).send().status, StatusCode::FORBIDDEN);

    // All 2,500 in 25 pages: no ceiling.
    let first = run(&env, &admin, &id);
    assert_eq!(counts(&first), [2500, 0, 0, 0], "{first}");
    assert!(first["error"].is_null() && first["finished"].is_string(), "{first}");
    assert_eq!(fake.pages.load(Ordering::SeqCst), 25);
    let wang = env.token("wang");
    assert_eq!(records_matched(&env, &wang, "邻区目录"), 2500);
    assert_eq!(csw_matched(&env, "邻区目录"), 2500);
    // One record, by a word only it has, through both protocols; its id names the source.
    let one = env.get(&format!("/collections/catalog/items?q={}", enc("lqml1234x"))).send().json();
    assert_eq!(one["numberMatched"], 1, "{one}");
    let f = &one["features"][0];
    assert_eq!(f["id"], format!("harvest:{id}:rec-001234"));
    assert_eq!(f["properties"]["title"], "邻区档案 1234");
    assert_eq!(csw_matched(&env, "lqml1234x"), 1);
    // The EPSG:4326 box (lat/lon) is stored lon/lat.
    let bb = env.get("/collections/catalog/items?q=lqml1234x&bbox=114,30,114.15,30.15").send().json();
    assert_eq!(bb["numberMatched"], 1, "{bb}");
    let rec = env.get(&format!("/collections/catalog/items/harvest:{id}:rec-001234")).send();
    assert_eq!(rec.status, StatusCode::OK, "{}", rec.text());

    // At the source: 10 changed, 5 removed, 3 added.
    {
        let mut recs = fake.records.lock().unwrap();
        for i in 1..=10 {
            recs.get_mut(&format!("rec-{i:06}")).unwrap().0 = format!("邻区档案 {i}（修订）");
        }
        for i in 100..105 {
            recs.remove(&format!("rec-{i:06}"));
        }
        recs.extend((9001..=9003).map(fake_record));
    }
    let second = run(&env, &admin, &id);
    assert_eq!(counts(&second), [3, 10, 5, 2500 - 10 - 5], "{second}");
    assert_eq!(records_matched(&env, &wang, "邻区目录"), 2498);
    assert_eq!(records_matched(&env, &wang, "修订"), 10);
    assert_eq!(records_matched(&env, &wang, "lqml102x"), 0);
    assert_eq!(csw_matched(&env, "lqml9002x"), 1);
    let listed = env.get("/harvests").token(&admin).send();
    assert_eq!(listed.status, StatusCode::OK);
    let h = &listed.json()["harvests"][0];
    assert_eq!(
        (h["id"].as_str(), h["records"].as_u64(), h["type"].as_str()),
        (Some(id.as_str()), Some(2498), Some("csw"))
    );
    assert_eq!(counts(&h["last_run"]), [3, 10, 5, 2485]);

    // The source fails half-way (and meanwhile lost records): the run reports it, nothing is removed.
    {
        let mut recs = fake.records.lock().unwrap();
        for i in 200..207 {
            recs.remove(&format!("rec-{i:06}"));
        }
    }
    fake.fail_from.store(1001, Ordering::SeqCst);
    let failed = run(&env, &admin, &id);
    let err = failed["error"].as_str().unwrap_or_else(|| panic!("no error: {failed}"));
    assert!(err.contains("500"), "{err}");
    assert!(!err.contains(&fake.port.to_string()), "the source's address in the error: {err}");
    assert_eq!(failed["removed"], 0, "{failed}");
    assert_eq!(records_matched(&env, &wang, "邻区目录"), 2498, "the previous records are intact");
    let h = env.get("/harvests").token(&admin).send().json();
    assert_eq!(h["harvests"][0]["last_run"]["error"], err);

    // Repaired: the next run catches up (the 7 gone are removed).
    fake.fail_from.store(0, Ordering::SeqCst);
    let again = run(&env, &admin, &id);
    assert_eq!(counts(&again), [0, 0, 7, 2491], "{again}");

    // Removing the source removes its records.
    assert_eq!(env.delete(&format!("/harvests/{id}")).token(&wang).send().status, StatusCode::FORBIDDEN);
    assert_eq!(env.delete(&format!("/harvests/{id}")).token(&admin).send().status, StatusCode::NO_CONTENT);
    assert_eq!(records_matched(&env, &wang, "邻区目录"), 0);
    assert_eq!(env.delete(&format!("/harvests/{id}")).token(&admin).send().status, StatusCode::NOT_FOUND);
}

/// CSW `Harvest` (KVP and XML): the same harvesting, answered with the run's summary; a second
/// request runs the same source again rather than adding it twice; only administrators; bad
/// resource types, intervals and response handlers are exceptions naming the parameter.
#[test]
fn csw_harvest_operation() {
    let env = manholes().env();
    let fake = start_fake_csw(runtime(), 250);
    let admin = env.token("admin");
    let source = format!("http://127.0.0.1:{}/csw", fake.port);
    let kvp = |extra: &str| {
        format!(
            "/csw?service=CSW&version=2.0.2&request=Harvest&Source={}&ResourceType={}{extra}",
            enc(&source),
            enc("http://www.opengis.net/cat/csw/2.0.2")
        )
    };
    let summary = |xml: &str| -> [u64; 3] {
        ["totalInserted", "totalUpdated", "totalDeleted"].map(|t| {
            let open = format!("<csw:{t}>");
            let at = xml.find(&open).unwrap_or_else(|| panic!("{t} in {xml}")) + open.len();
            xml[at..].split('<').next().unwrap().parse().unwrap()
        })
    };

    let r = env.get(&kvp("&HarvestInterval=P1D")).token(&admin).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("<csw:HarvestResponse"), "{}", r.text());
    assert_eq!(summary(&r.text()), [250, 0, 0]);
    assert_eq!(csw_matched(&env, "邻区"), records_matched(&env, &admin, "邻区"));
    let sources = env.get("/harvests").token(&admin).send().json();
    let listed = sources["harvests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{sources}");
    assert_eq!(
        (listed[0]["type"].as_str(), listed[0]["every_minutes"].as_u64()),
        (Some("csw"), Some(1440)),
        "{sources}"
    );

    // Two records change, one goes; asked again as a POSTed XML request.
    {
        let mut recs = fake.records.lock().unwrap();
        let keys: Vec<String> = recs.keys().take(3).cloned().collect();
        for k in &keys[..2] {
            recs.get_mut(k).unwrap().0.push_str("（改）");
        }
        recs.remove(&keys[2]);
    }
    let xml = format!(
        "<csw:Harvest xmlns:csw=\"http://www.opengis.net/cat/csw/2.0.2\" service=\"CSW\" version=\"2.0.2\"><csw:Source>{source}</csw:Source><csw:ResourceType>http://www.opengis.net/cat/csw/2.0.2</csw:ResourceType><csw:ResourceFormat>application/xml</csw:ResourceFormat></csw:Harvest>"
    );
    let r = env.post("/csw").token(&admin).header("content-type", "application/xml").body(xml).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(summary(&r.text()), [0, 2, 1]);
    assert_eq!(env.get("/harvests").token(&admin).send().json()["harvests"].as_array().unwrap().len(), 1);

    // Refusals: who, and what.
    let wang = env.token("wang");
    let r = env.get(&kvp("")).token(&wang).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("ExceptionReport"), "{}", r.text());
    let refused = |path: String, locator: &str| {
        let r = env.get(&path).token(&admin).send();
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
        assert!(r.text().contains(&format!("locator=\"{locator}\"")), "{locator}: {}", r.text());
    };
    refused(kvp("&HarvestInterval=soon"), "HarvestInterval");
    refused(kvp("&ResponseHandler=mailto:a@b.cn"), "ResponseHandler");
    refused(kvp("").replace(&enc("http://www.opengis.net/cat/csw/2.0.2"), "urn%3Ax"), "ResourceType");
    refused("/csw?service=CSW&version=2.0.2&request=Harvest&ResourceType=csw".into(), "Source");
    let caps = env.get("/csw?service=CSW&request=GetCapabilities").send().text();
    assert!(caps.contains("name=\"Harvest\""), "{caps}");
}

/// Flat memory: 100,000 records harvested from the fake catalogue; the peak RSS (VmHWM) before
/// and after is printed. `cargo test -p shikong-http --test http harvest::flat_memory -- --ignored --nocapture`
#[test]
#[ignore = "harvests 100,000 records (minutes); run by hand to measure"]
fn flat_memory() {
    fn hwm() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        s.lines().find_map(|l| l.strip_prefix("VmHWM:")).unwrap().trim().trim_end_matches(" kB").trim().parse().unwrap()
    }
    let env = manholes().env();
    let n: u64 = std::env::var("HARVEST_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let fake = start_fake_csw(runtime(), n);
    let admin = env.token("admin");
    let body = json!({"url": format!("http://127.0.0.1:{}/csw", fake.port), "type": "csw", "title": "大目录"});
    let id = env.post("/harvests").token(&admin).json(&body).send().json()["id"].as_str().unwrap().to_owned();
    let before = hwm();
    let t = std::time::Instant::now();
    let r = run(&env, &admin, &id);
    let after = hwm();
    assert_eq!(counts(&r), [n, 0, 0, 0], "{r}");
    println!(
        "harvested {n} records in {:.1} s; peak RSS (VmHWM) before {} MiB, after {} MiB (the fake source's {n} records included)",
        t.elapsed().as_secs_f64(),
        before / 1024,
        after / 1024
    );
    let t = std::time::Instant::now();
    let again = run(&env, &admin, &id);
    assert_eq!(counts(&again), [0, 0, 0, n], "{again}");
    println!("re-run (all unchanged) in {:.1} s; peak RSS after {} MiB", t.elapsed().as_secs_f64(), hwm() / 1024);
    // The catalog's cost over them: the first answer builds the cached entries, the next reuse them.
    let wang = env.token("wang");
    for pass in ["first (builds the cache)", "second (cached)"] {
        let t = std::time::Instant::now();
        assert_eq!(records_matched(&env, &wang, "lqml77777x"), u64::from(n >= 77_777));
        println!(
            "catalog q over {n} harvested, {pass}: {:.2} s; peak RSS {} MiB",
            t.elapsed().as_secs_f64(),
            hwm() / 1024
        );
    }
}

/// A fake OGC API – Records collection (`/cat/collections/x/items`, pages by `offset` with `next`
/// links) and a fake WMS whose capabilities name two layers.
fn start_fake_records(rt: &tokio::runtime::Runtime) -> u16 {
    async fn items(State(port): State<u16>, RawQuery(q): RawQuery) -> Response {
        let q = q.unwrap_or_default();
        let get = |name: &str| -> Option<usize> {
            q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok())
        };
        let (limit, offset, n) =
            (get("limit").unwrap_or(10).min(40), get("offset").unwrap_or(0), get("n").unwrap_or(0));
        let features: Vec<Json> = (offset..n.min(offset + limit))
            .map(|i| {
                json!({"type": "Feature", "id": format!("r{i}"),
                   "geometry": {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.5, 30.0], [114.5, 30.5], [114.0, 30.0]]]},
                   "properties": {"title": format!("水文站 {i}"), "description": "qxrecords", "type": "dataset", "keywords": ["水文"]}})
            })
            .collect();
        let mut links = vec![];
        if offset + limit < n {
            links.push(json!({"rel": "next", "href": format!("http://127.0.0.1:{port}/cat/collections/x/items?n={n}&limit={limit}&offset={}", offset + limit)}));
        }
        axum::Json(json!({"type": "FeatureCollection", "features": features, "links": links})).into_response()
    }
    async fn wms() -> Response {
        let xml = r#"<?xml version="1.0"?><WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms"><Capability><Layer><Title>根</Title>
<Layer><Name>rivers</Name><Title>河流 qxwms</Title><EX_GeographicBoundingBox><westBoundLongitude>114</westBoundLongitude><eastBoundLongitude>115</eastBoundLongitude><southBoundLatitude>30</southBoundLatitude><northBoundLatitude>31</northBoundLatitude></EX_GeographicBoundingBox></Layer>
<Layer><Name>lakes</Name><Title>湖泊 qxwms</Title></Layer></Layer></Capability></WMS_Capabilities>"#;
        ([("content-type", "text/xml")], xml).into_response()
    }
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route("/cat/collections/x/items", axum::routing::get(items))
        .route("/wms", axum::routing::get(wms))
        .with_state(port);
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

#[test]
fn records_and_capabilities_sources_are_harvested() {
    let env = manholes().env();
    let port = start_fake_records(runtime());
    let admin = env.token("admin");
    let wang = env.token("wang");
    // 95 records in pages of 40 (the source's own cap), followed by `next` links.
    let url = format!("http://127.0.0.1:{port}/cat/collections/x/items?n=95");
    let r = env
        .post("/harvests")
        .token(&admin)
        .json(&json!({"url": url, "type": "ogcapi-records", "title": "水文"}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let got = run(&env, &admin, &id);
    assert_eq!(counts(&got), [95, 0, 0, 0], "{got}");
    assert_eq!(records_matched(&env, &wang, "qxrecords"), 95);
    let bb = env.get("/collections/catalog/items?q=qxrecords&bbox=114.4,30.4,114.6,30.6&limit=1").send().json();
    assert_eq!(bb["numberMatched"], 95, "the geometry's envelope is the box: {bb}");
    assert_eq!(counts(&run(&env, &admin, &id)), [0, 0, 0, 95]);

    // WMS capabilities: one record per named layer.
    let body = json!({"url": format!("http://127.0.0.1:{port}/wms"), "type": "wms", "title": "水务 WMS"});
    let wms = env.post("/harvests").token(&admin).json(&body).send().json()["id"].as_str().unwrap().to_owned();
    assert_eq!(counts(&run(&env, &admin, &wms)), [2, 0, 0, 0]);
    let page = env.get("/collections/catalog/items?q=qxwms").token(&wang).send().json();
    let mut ids: Vec<&str> = page["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, [format!("harvest:{wms}:lakes"), format!("harvest:{wms}:rivers")]);
    assert_eq!(page["features"].as_array().unwrap()[0]["properties"]["type"], "service");
}
