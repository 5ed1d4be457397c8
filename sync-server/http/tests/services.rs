//! Registered outside services, API keys and the service proxy (issue 20), against a fake
//! outside WMTS: a small axum server on a loopback port of its own that serves a capabilities
//! document naming its own address, tiles, records what it was sent, and can be switched to
//! failing. Every answer the platform gives is searched for that address (body and headers).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value as Json, json};
use shikong_tiles::TileMatrixSet;

use crate::events::{off, open, runtime};
use crate::support::*;

/// The fake outside service.
#[derive(Clone, Default)]
struct Upstream {
    port: u16,
    down: Arc<AtomicBool>,
    /// (path and query, headers) of every request received.
    seen: Arc<Mutex<Vec<(String, HeaderMap)>>>,
}

/// A tile's bytes: a PNG signature, then a pattern that depends on the tile (200 KB, so the
/// proxy streams it in many chunks).
fn tile_bytes(z: u32, y: u32, x: u32) -> Vec<u8> {
    let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
    b.extend((0..200_000u32).map(|i| (i.wrapping_mul(31) ^ (z * 7 + y * 13 + x * 17)) as u8));
    b
}

fn capabilities(port: u16) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1" xmlns:xlink="http://www.w3.org/1999/xlink" version="1.0.0">
<ows:OperationsMetadata><ows:Operation name="GetTile"><ows:DCP><ows:HTTP><ows:Get xlink:href="http://127.0.0.1:{port}/wmts?"/></ows:HTTP></ows:DCP></ows:Operation></ows:OperationsMetadata>
<Contents><Layer><ows:Title>道路</ows:Title><ows:WGS84BoundingBox><ows:LowerCorner>114 30</ows:LowerCorner><ows:UpperCorner>115 31</ows:UpperCorner></ows:WGS84BoundingBox>
<ows:Identifier>roads</ows:Identifier><Style isDefault="true"><ows:Identifier>default</ows:Identifier></Style><Format>image/png</Format>
<TileMatrixSetLink><TileMatrixSet>WebMercatorQuad</TileMatrixSet></TileMatrixSetLink>
<ResourceURL format="image/png" resourceType="tile" template="http://127.0.0.1:{port}/wmts/tile/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.png"/>
<LegendURL xlink:href="http://127.0.0.1:{port}/legend.png"/></Layer></Contents></Capabilities>"#
    )
}

async fn kvp(State(u): State<Upstream>, RawQuery(q): RawQuery, headers: HeaderMap) -> Response {
    let q = q.unwrap_or_default();
    u.seen.lock().unwrap().push((format!("/wmts?{q}"), headers));
    if u.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    if q.contains("REQUEST=GetCapabilities") {
        return ([("content-type", "application/xml; charset=utf-8")], capabilities(u.port)).into_response();
    }
    let get = |name: &str| -> u32 {
        q.split('&').find_map(|kv| kv.strip_prefix(&format!("{name}="))).and_then(|v| v.parse().ok()).unwrap_or(0)
    };
    ([("content-type", "image/png")], tile_bytes(get("TileMatrix"), get("TileRow"), get("TileCol"))).into_response()
}

async fn tile(
    State(u): State<Upstream>,
    Path((_tms, z, y, x)): Path<(String, u32, u32, String)>,
    headers: HeaderMap,
) -> Response {
    u.seen.lock().unwrap().push((format!("/wmts/tile/{z}/{y}/{x}"), headers));
    if u.down.load(Ordering::SeqCst) {
        return (StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
    }
    let x: u32 = x.trim_end_matches(".png").parse().unwrap();
    ([("content-type", "image/png")], tile_bytes(z, y, x)).into_response()
}

/// Starts the fake service on a free loopback port (on the harness's runtime).
fn start_upstream() -> Upstream {
    let listener = runtime_support().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_ne!(port, 8080, "the fake service must not share the platform's test port");
    let u = Upstream { port, ..Upstream::default() };
    let app = axum::Router::new()
        .route("/wmts", axum::routing::get(kvp))
        .route("/wmts/tile/{tms}/{z}/{y}/{x}", axum::routing::get(tile))
        .with_state(u.clone());
    runtime_support().spawn(async move { axum::serve(listener, app).await.unwrap() });
    u
}

fn runtime_support() -> &'static tokio::runtime::Runtime {
    crate::support::runtime()
}

/// Fails when the outside address is anywhere in an answer.
#[track_caller]
fn no_outside_address(r: &Resp, port: u16) {
    let needle = format!("127.0.0.1:{port}");
    assert!(!r.text().contains(&needle), "the outside address leaked in the body: {}", r.text());
    for (name, v) in &r.headers {
        assert!(!v.to_str().unwrap_or("").contains(&needle), "the outside address leaked in `{name}`: {v:?}");
    }
}

fn register(env: &Env, admin: &str, port: u16) -> Json {
    let body = json!({"url": format!("http://127.0.0.1:{port}/wmts"), "type": "wmts", "title": "区政府底图",
        "headers": [{"name": "X-Upstream-Key", "value": "their-secret-42"}]});
    let r = env.post("/services").token(admin).json(&body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    no_outside_address(&r, port);
    assert!(!r.text().contains("their-secret-42"), "{}", r.text());
    r.json()
}

fn new_key(env: &Env, admin: &str, body: &Json) -> (String, String) {
    let r = env.post("/keys").token(admin).json(body).send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let j = r.json();
    (j["key"].as_str().unwrap().to_owned(), j["id"].as_str().unwrap().to_owned())
}

fn tile_path(id: &str, lon: f64, lat: f64, z: u8) -> (String, (u32, u32, u32)) {
    let t = TileMatrixSet::WebMercatorQuad.tile_at(lon, lat, z);
    (format!("/services/{id}/proxy/tile/WebMercatorQuad/{z}/{}/{}.png", t.y, t.x), (u32::from(z), t.y, t.x))
}

#[test]
fn a_registered_wmts_is_read_through_the_proxy_with_a_key() {
    let env = manholes().env();
    let up = start_upstream();
    let admin = env.token("admin");
    // Only administrators register.
    let body = json!({"url": format!("http://127.0.0.1:{}/wmts", up.port), "type": "wmts", "title": "x"});
    assert_eq!(env.post("/services").token(&env.token("wang")).json(&body).send().status, StatusCode::FORBIDDEN);
    assert_eq!(env.post("/services").json(&body).send().status, StatusCode::UNAUTHORIZED);
    let bad = json!({"url": "ftp://example.org/", "type": "wmts", "title": "x"});
    let r = env.post("/services").token(&admin).json(&bad).send();
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("url")), "{}", r.text());

    let svc = register(&env, &admin, up.port);
    let id = svc["id"].as_str().unwrap().to_owned();
    assert_eq!(svc["type"], "wmts");
    assert_eq!(svc["credentials"], true);
    assert_eq!(svc["url"], format!("{BASE}/services/{id}/proxy/"));
    assert_eq!(
        svc["layers"],
        json!([{"name": "roads", "title": "道路", "bbox": [114.0, 30.0, 115.0, 31.0]}]),
        "the layers of the capabilities"
    );
    let listed = env.get("/services").token(&admin).send();
    assert_eq!(listed.json()["services"][0]["id"], id.as_str());
    no_outside_address(&listed, up.port);
    assert_eq!(env.get("/services").token(&env.token("wang")).send().status, StatusCode::FORBIDDEN);

    let (key, _) = new_key(&env, &admin, &json!({"name": "区应急App", "quota": 100, "services": [id]}));
    // Capabilities through the proxy: the outside address rewritten to the proxy's.
    let caps = env.get(&format!("/services/{id}/proxy/?SERVICE=WMTS&REQUEST=GetCapabilities&key={key}")).send();
    assert_eq!(caps.status, StatusCode::OK, "{}", caps.text());
    no_outside_address(&caps, up.port);
    // The key sent in the query is carried by the rewritten addresses (GDAL follows templates).
    let proxy = format!("{BASE}/services/{id}/proxy/~key/{key}");
    assert!(caps.text().contains(&format!("template=\"{proxy}/tile/{{TileMatrixSet}}")), "{}", caps.text());
    assert!(caps.text().contains(&format!("{proxy}/~origin/legend.png")), "{}", caps.text());
    // Sent with a header, the key is not written into the answer.
    let caps_h = env
        .get(&format!("/services/{id}/proxy/?SERVICE=WMTS&REQUEST=GetCapabilities"))
        .header("x-api-key", &key)
        .send();
    assert_eq!(caps_h.status, StatusCode::OK);
    assert!(!caps_h.text().contains(&key) && caps_h.text().contains(&format!("{BASE}/services/{id}/proxy/tile/")));
    no_outside_address(&caps_h, up.port);
    // The outside service got the stored credential, not the key nor the caller's token.
    let (seen_uri, seen_headers) = up.seen.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen_headers["x-upstream-key"], "their-secret-42");
    assert!(!seen_uri.contains(&key) && !seen_uri.contains("key="), "{seen_uri}");

    // A tile, RESTful and KVP, by query key and by header: the outside service's bytes.
    let (path, (z, y, x)) = tile_path(&id, 114.3, 30.5, 8);
    let t = env.get(&format!("{path}?key={key}")).token(&env.token("zhang")).send();
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    assert_eq!(t.body.as_ref(), tile_bytes(z, y, x).as_slice());
    assert_eq!(t.header("content-type"), "image/png");
    no_outside_address(&t, up.port);
    let (_, h) = up.seen.lock().unwrap().last().cloned().unwrap();
    assert!(h.get("authorization").is_none(), "the caller's token went outside: {h:?}");
    // The template's address, key in the path.
    let t = env.get(&format!("/services/{id}/proxy/~key/{key}/tile/WebMercatorQuad/{z}/{y}/{x}.png")).send();
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    assert_eq!(t.body.as_ref(), tile_bytes(z, y, x).as_slice());
    let kvp = format!(
        "/services/{id}/proxy/?SERVICE=WMTS&REQUEST=GetTile&LAYER=roads&STYLE=default&FORMAT=image/png&TileMatrixSet=WebMercatorQuad&TileMatrix={z}&TileRow={y}&TileCol={x}"
    );
    let t = env.get(&kvp).header("x-api-key", &key).send();
    assert_eq!(t.status, StatusCode::OK, "{}", t.text());
    assert_eq!(t.body.as_ref(), tile_bytes(z, y, x).as_slice());

    // Elsewhere on the outside host (`~origin`): no stored credentials; never above the base.
    let r =
        env.get(&format!("/services/{id}/proxy/~origin/wmts?SERVICE=WMTS&REQUEST=GetCapabilities&key={key}")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    no_outside_address(&r, up.port);
    let (_, h) = up.seen.lock().unwrap().last().cloned().unwrap();
    assert!(h.get("x-upstream-key").is_none(), "credentials went outside the service's base: {h:?}");
    let r = env.get(&format!("/services/{id}/proxy/tile/%2E%2E/%2E%2E/admin?key={key}")).send();
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // Staff use their own token; citizens need a key; nobody gets in without either.
    assert_eq!(env.get(&path).token(&env.token("wang")).send().status, StatusCode::OK);
    assert_eq!(env.get(&path).token(&env.token("zhang")).send().status, StatusCode::FORBIDDEN);
    assert_eq!(env.get(&path).send().status, StatusCode::UNAUTHORIZED);
    let r = env.get(&format!("{path}?key=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")).send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());

    // A key for other services only is refused; a revoked key too.
    let (other, _) = new_key(&env, &admin, &json!({"name": "other", "quota": 100, "services": []}));
    let r = env.get(&format!("{path}?key={other}")).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let (revoked, revoked_id) = new_key(&env, &admin, &json!({"name": "old", "quota": 100, "services": [id]}));
    assert_eq!(env.get(&format!("{path}?key={revoked}")).send().status, StatusCode::OK);
    assert_eq!(env.delete(&format!("/keys/{revoked_id}")).token(&admin).send().status, StatusCode::NO_CONTENT);
    let r = env.get(&format!("{path}?key={revoked}")).send();
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.text());
    assert!(r.text().contains("key-revoked"), "{}", r.text());

    // Keys are listed without secrets; their use is in the audit log once flushed.
    let keys = env.get("/keys").token(&admin).send();
    assert_eq!(keys.status, StatusCode::OK);
    assert!(!keys.text().contains(&key), "a key's secret is shown once only");
    assert_eq!(keys.json()["keys"][0]["used_today"], 6, "{}", keys.text());
    shikong_http::services::flush(&env.state);
    let audit = env.get("/admin/audit?action=service.proxy").token(&admin).send();
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.text());
    let entries = audit.json()["entries"].as_array().cloned().unwrap_or_default();
    assert!(entries.len() >= 6, "{}", audit.text());
    assert!(entries.iter().any(|e| e["count"] == tile_bytes(z, y, x).len()), "{}", audit.text());
    assert!(entries.iter().any(|e| e["outcome"] == "denied"), "{}", audit.text());
    no_outside_address(&audit, up.port);
}

#[test]
fn quotas_fences_and_health() {
    let env = manholes().env();
    let up = start_upstream();
    let admin = env.token("admin");
    let id = register(&env, &admin, up.port)["id"].as_str().unwrap().to_owned();
    let (inside, (z, y, x)) = tile_path(&id, 114.3, 30.5, 8);
    let (outside, _) = tile_path(&id, 2.35, 48.85, 8);

    // A quota of 3 a day: the fourth request is 429 until the next Beijing midnight.
    let (key, _) = new_key(&env, &admin, &json!({"name": "quota", "quota": 3, "services": [id]}));
    for _ in 0..3 {
        assert_eq!(env.get(&format!("{inside}?key={key}")).send().status, StatusCode::OK);
    }
    let r = env.get(&format!("{inside}?key={key}")).send();
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.text());
    let secs: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&secs), "{secs}");
    assert_eq!(r.json()["quota"], 3);
    assert_eq!(r.header("content-type"), "application/problem+json");

    // A rate of 1 a second: a second request at once is 429 with Retry-After, not counted
    // against the day's quota.
    let (rated, rated_id) = new_key(&env, &admin, &json!({"name": "rate", "quota": 100, "services": [id], "rate": 1}));
    assert_eq!(env.get(&format!("{inside}?key={rated}")).send().status, StatusCode::OK);
    let refused: Vec<_> = (0..2)
        .map(|_| env.get(&format!("{inside}?key={rated}")).send())
        .filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert!(!refused.is_empty(), "two more requests at once: one at least over the rate");
    assert_eq!(
        refused[0].json()["type"].as_str().map(|t| t.ends_with("rate-limited")),
        Some(true),
        "{}",
        refused[0].text()
    );
    assert_eq!(refused[0].json()["rate"], 1);
    assert_eq!(refused[0].header("retry-after"), "1");
    let keys = env.get("/keys").token(&admin).send().json();
    let listed = keys["keys"].as_array().unwrap().iter().find(|k| k["id"] == rated_id.as_str()).unwrap().clone();
    assert_eq!(listed["rate"], 1, "{listed}");
    assert_eq!(listed["used_today"].as_u64(), Some(3 - refused.len() as u64), "{listed}");
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(env.get(&format!("{inside}?key={rated}")).send().status, StatusCode::OK, "a second later");
    let r = env.post("/keys").token(&admin).json(&json!({"name": "x", "quota": 1, "services": [id], "rate": 0})).send();
    assert_eq!(
        (r.status, r.json()["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("rate")),
        "{}",
        r.text()
    );

    // A key fenced to 洪山区's square: tiles inside are served, outside refused.
    let fence = "POLYGON((114.2 30.4, 114.5 30.4, 114.5 30.6, 114.2 30.6, 114.2 30.4))";
    let (fenced, _) = new_key(&env, &admin, &json!({"name": "洪山", "quota": 100, "services": [id], "fence": fence}));
    let r = env.get(&format!("{inside}?key={fenced}")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.body.as_ref(), tile_bytes(z, y, x).as_slice());
    let before = up.seen.lock().unwrap().len();
    let r = env.get(&format!("{outside}?key={fenced}")).send();
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert!(r.text().contains("outside-fence"), "{}", r.text());
    let kvp_out = format!(
        "/services/{id}/proxy/?REQUEST=GetTile&TileMatrixSet=WebMercatorQuad&TileMatrix=8&TileRow=90&TileCol=129&key={fenced}"
    );
    assert_eq!(env.get(&kvp_out).send().status, StatusCode::FORBIDDEN);
    assert_eq!(up.seen.lock().unwrap().len(), before, "a refused request never goes outside");
    // Capabilities name no area: a fenced key reads them.
    let caps = format!("/services/{id}/proxy/?SERVICE=WMTS&REQUEST=GetCapabilities&key={fenced}");
    assert_eq!(env.get(&caps).send().status, StatusCode::OK);
    // A fence that is not a polygon is refused, naming it.
    let r = env
        .post("/keys")
        .token(&admin)
        .json(&json!({"name": "x", "quota": 1, "services": [id], "fence": "POINT(1 2)"}))
        .send();
    assert_eq!((r.status, r.json()["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("fence")));

    // Health: up; the service fails → down with an alert to administrators; back → up.
    let admin_token = admin.clone();
    runtime().block_on(async {
        let mut stream = open(&env, &admin_token).await.unwrap();
        let round = shikong_http::services::health::check_all(&env.state).await.unwrap();
        assert_eq!((round.up, round.down), (1, 0));
        let h = off(|| env.get(&format!("/services/{id}")).token(&admin_token).send()).json();
        assert_eq!(h["health"]["state"], "up", "{h}");
        up.down.store(true, Ordering::SeqCst);
        let round = shikong_http::services::health::check_all(&env.state).await.unwrap();
        assert_eq!((round.down, round.changed), (1, 1));
        let m = stream.next(Duration::from_secs(5)).await.expect("the alert reaches the administrator");
        assert_eq!((m["type"].as_str(), m["state"].as_str()), (Some("service_health"), Some("down")), "{m}");
        assert_eq!(m["error"], "the service answered HTTP 503", "{m}");
        let r = off(|| env.get(&format!("/services/{id}")).token(&admin_token).send());
        no_outside_address(&r, up.port);
        let h = r.json();
        assert_eq!(h["health"]["state"], "down", "{h}");
        assert!(h["health"]["down_since"].is_string(), "{h}");
        up.down.store(false, Ordering::SeqCst);
        let round = shikong_http::services::health::check_all(&env.state).await.unwrap();
        assert_eq!((round.up, round.changed), (1, 1));
        let m = stream.next(Duration::from_secs(5)).await.expect("the all-clear reaches the administrator");
        assert_eq!(m["state"], "up", "{m}");
        let h = off(|| env.get(&format!("/services/{id}")).token(&admin_token).send()).json();
        assert_eq!(h["health"]["state"], "up", "{h}");
        assert!(h["health"].get("down_since").is_none(), "{h}");
    });

    // Removal: the proxy answers 404 at once on this process.
    assert_eq!(env.delete(&format!("/services/{id}")).token(&admin).send().status, StatusCode::NO_CONTENT);
    assert_eq!(env.get(&format!("{inside}?key={fenced}")).send().status, StatusCode::NOT_FOUND);
}

/// A second server state over the same data folder (another process on the same accounts),
/// with the flush thread effectively off so the test decides when counts are shared.
fn second_process(env: &Env) -> (shikong_http::AppState, axum::Router) {
    let dir = env.dir.path();
    let store = shikong_store::open(&shikong_store::StoreConfig::in_dir(dir)).unwrap();
    let auth = shikong_auth::AuthStore::open_in(dir).unwrap();
    let mut config = (*env.state.config).clone();
    config.services.cache_ttl = Duration::ZERO;
    let state = shikong_http::AppState::new(store, auth, config).unwrap();
    (state.clone(), shikong_http::app(state))
}

fn get_on(app: &axum::Router, path: &str) -> StatusCode {
    let req = axum::http::Request::get(path).header("host", HOST).body(axum::body::Body::empty()).unwrap();
    runtime_support().block_on(call(app, req)).0
}

#[test]
fn two_processes_share_the_registry_keys_and_quota() {
    let env = manholes().env_with(|c| c.services.flush_every = Duration::from_secs(3600));
    let up = start_upstream();
    let admin = env.token("admin");
    let id = register(&env, &admin, up.port)["id"].as_str().unwrap().to_owned();
    let (key, key_id) = new_key(&env, &admin, &json!({"name": "shared", "quota": 4, "services": [id]}));
    let (tile, _) = tile_path(&id, 114.3, 30.5, 8);
    let url = format!("{tile}?key={key}");
    // B knows the service and the key registered through A.
    let (b_state, b) = second_process(&env);
    assert_eq!(get_on(&b, &url), StatusCode::OK);
    for _ in 0..2 {
        assert_eq!(env.get(&url).send().status, StatusCode::OK);
    }
    // Once both flushed, each judges the quota against both's use: 3 used of 4.
    shikong_http::services::flush(&env.state);
    shikong_http::services::flush(&b_state);
    shikong_http::services::flush(&env.state);
    assert_eq!(get_on(&b, &url), StatusCode::OK);
    assert_eq!(get_on(&b, &url), StatusCode::TOO_MANY_REQUESTS);
    shikong_http::services::flush(&b_state);
    shikong_http::services::flush(&env.state);
    assert_eq!(env.get(&url).send().status, StatusCode::TOO_MANY_REQUESTS);
    // A revocation through A applies on B at its next key read (here: no cache).
    let (fresh, _) = new_key(&env, &admin, &json!({"name": "fresh", "quota": 100, "services": [id]}));
    let fresh_url = format!("{tile}?key={fresh}");
    assert_eq!(get_on(&b, &fresh_url), StatusCode::OK);
    let fresh_id = env.get("/keys").token(&admin).send().json()["keys"][1]["id"].as_str().unwrap().to_owned();
    assert_ne!(fresh_id, key_id);
    assert_eq!(env.delete(&format!("/keys/{fresh_id}")).token(&admin).send().status, StatusCode::NO_CONTENT);
    assert_eq!(get_on(&b, &fresh_url), StatusCode::UNAUTHORIZED);
}

#[test]
fn a_registered_service_is_in_the_catalog_for_staff_with_its_proxy_link() {
    let env = manholes().env();
    let up = start_upstream();
    let admin = env.token("admin");
    let svc = register(&env, &admin, up.port);
    let id = svc["id"].as_str().unwrap();
    // Staff find it by its title, its layer's title and by kind, with the proxy as its link.
    for query in ["q=区政府底图", "q=道路", "type=service"] {
        let r = env.get(&format!("/collections/catalog/items?{query}")).token(&env.token("wang")).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        no_outside_address(&r, up.port);
        let page = r.json();
        let rec = page["features"].as_array().unwrap().iter().find(|f| f["id"] == format!("service:{id}"));
        let rec = rec.unwrap_or_else(|| panic!("{query}: no record of the service in {page:#}"));
        assert_eq!(rec["properties"]["type"], "service", "{rec:#}");
        assert_eq!(rec["properties"]["title"], "区政府底图", "{rec:#}");
        let hrefs: Vec<&str> = rec["links"].as_array().unwrap().iter().filter_map(|l| l["href"].as_str()).collect();
        assert!(hrefs.iter().any(|h| h.ends_with(&format!("/services/{id}/proxy/"))), "{hrefs:?}");
    }
    // CSW finds the same record for staff.
    let r =
        env.get(&format!("/csw?service=CSW&version=2.0.2&request=GetRecordById&id=service:{id}")).token(&admin).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert!(r.text().contains("区政府底图"), "{}", r.text());
    no_outside_address(&r, up.port);
    // Anonymous callers do not see the service pool.
    let r = env.get("/collections/catalog/items?type=service").send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["numberMatched"], 0, "{}", r.text());
}
