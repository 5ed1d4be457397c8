//! Hardening against hostile and heavy requests (issue 14): filters beyond the parser's bounds
//! are 400s in milliseconds; work whose request timed out stops and frees its place in the store
//! budget; deep `offset`s and whole-history `/changes` are bounded; and, over a real socket,
//! `/healthz` stays fast while clients flood the server with hostile filters and wrong passwords.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::LazyLock;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use serde_json::json;
use shikong_model::{FieldDef, FieldType, Geometry, GeometryKind, LayerSchema};
use shikong_store::{LayerDef, NewFeature, TxMeta};

use crate::support::*;

/// Filters beyond each bound of `shikong_query::limits`, with the limit they must be refused for.
fn hostile_filters() -> Vec<(&'static str, &'static str, String)> {
    vec![
        ("cql2-text", "length", format!("depth = 1 OR code = '{}'", "a".repeat(20_000))),
        ("cql2-text", "depth", format!("{}depth = 1{}", "(".repeat(5_000), ")".repeat(5_000))),
        // 16 KB of `1=1=…`: on the old code the parser's recursion overflowed the stack of the
        // thread parsing it, and the whole server aborted.
        ("cql2-text", "nodes", vec!["1"; 8_000].join("=")),
        ("cql2-text", "nodes", format!("depth = {}", vec!["1"; 4_000].join("*"))),
        ("cql2-text", "depth", format!("depth = {}", vec!["1"; 200].join("*"))),
        ("cql2-json", "depth", format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000))),
        (
            "cql2-json",
            "nodes",
            format!("{{\"op\":\"in\",\"args\":[{{\"property\":\"depth\"}},[{}]]}}", vec!["1"; 3_000].join(",")),
        ),
    ]
}

fn items_url(collection: &str, lang: &str, filter: &str) -> String {
    format!("/collections/{collection}/items?filter-lang={lang}&filter={}", enc(filter))
}

#[test]
fn hostile_filters_are_refused_in_milliseconds_naming_the_limit() {
    let env = manholes().env();
    let token = env.token("wang");
    for (lang, limit, filter) in hostile_filters() {
        let url = items_url("manhole", lang, &filter);
        let started = Instant::now();
        let r = env.get(&url).token(&token).send();
        let took = started.elapsed();
        let p = problem(&r, StatusCode::BAD_REQUEST);
        assert_eq!(p["parameter"], "filter", "{p}");
        assert_eq!(p["limit"], limit, "{lang} {limit}: {p}");
        assert!(p["found"].as_u64().unwrap() > p["max"].as_u64().unwrap(), "{p}");
        assert!(p["detail"].as_str().unwrap().contains("too complex"), "{p}");
        println!("hostile filter ({lang}, {limit}, {} bytes) refused in {took:?}", filter.len());
        assert!(took < Duration::from_millis(500), "{lang} {limit}: {took:?}");
    }
    // A large but reasonable filter still works: 1,000 codes in an IN list.
    let codes: Vec<String> = (0..1000).map(|i| format!("'MH-{i:04}'")).collect();
    let r = env.get(&items_url("manhole", "cql2-text", &format!("code IN ({})", codes.join(",")))).token(&token).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
}

#[test]
fn deep_offsets_and_long_property_lists_are_refused() {
    let env = manholes().env();
    let token = env.token("wang");
    let p = problem(&env.get("/collections/manhole/items?offset=100001").token(&token).send(), StatusCode::BAD_REQUEST);
    assert_eq!(p["parameter"], "offset", "{p}");
    assert_eq!(p["max"], 100_000, "{p}");
    let r = env.get("/collections/manhole/items?offset=100000").token(&token).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let many = (0..300).map(|i| format!("f{i}")).collect::<Vec<_>>().join(",");
    let p = problem(
        &env.get(&format!("/tiles/manhole/14/13421/6718.mvt?properties={many}")).token(&token).send(),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["parameter"], "properties", "{p}");
}

#[test]
fn changes_come_in_pages_with_next_links() {
    let env = manholes().env();
    let token = env.token("wang");
    let first = env.get("/collections/manhole/changes?from=2000-01-01T00:00:00Z").token(&token).send();
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let whole = first.json();
    let total = whole["summary"]["created"].as_u64().unwrap();
    assert!(total >= 3, "{whole}");
    // Two entities a page: follow `next` to the end; every created entity comes exactly once.
    let mut url = "/collections/manhole/changes?from=2000-01-01T00:00:00Z&limit=2".to_owned();
    let mut seen = Vec::new();
    for _ in 0..100 {
        let page = env.get(&url).token(&token).send();
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page = page.json();
        assert!(page["created"].as_array().unwrap().len() <= 2, "{page}");
        seen.extend(page["created"].as_array().unwrap().iter().map(|f| f["id"].to_string()));
        let next = page["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next");
        match next {
            Some(l) => url = l["href"].as_str().unwrap().to_owned(),
            None => break,
        }
    }
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!((n, seen.len() as u64), (total as usize, total));
    let p = problem(
        &env.get("/collections/manhole/changes?from=2000-01-01T00:00:00Z&limit=0").token(&token).send(),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["parameter"], "limit");
    let p = problem(
        &env.get("/collections/manhole/changes?from=2000-01-01T00:00:00Z&after=x").token(&token).send(),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["parameter"], "after");
}

// ---- work that outlives its request ----------------------------------------------------------

/// Points in the layer `bulk`: enough that a query checking each against a many-sided polygon
/// runs for seconds.
const BULK: usize = 150_000;

fn bulk() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(&[("wang", "office")], |store, _| {
            let schema = LayerSchema { fields: vec![FieldDef::new("n", FieldType::Integer)] };
            let mut tx = store.begin(TxMeta::by("cli:test")).expect("tx");
            tx.create_layer(LayerDef::new("bulk", GeometryKind::Point, schema)).expect("layer");
            for i in 0..BULK {
                let (x, y) = (114.0 + (i % 400) as f64 * 0.001, 30.0 + (i / 400) as f64 * 0.0005);
                let mut props = shikong_model::Properties::new();
                props.insert("n".into(), shikong_model::Value::Integer(i as i64));
                tx.insert(
                    "bulk",
                    NewFeature {
                        geometry: Some(Geometry::Point(shikong_model::Coord::xy(x, y))),
                        properties: props,
                        ..NewFeature::default()
                    },
                )
                .expect("insert");
            }
            tx.commit().expect("commit");
        })
    });
    &T
}

/// A polygon around every bulk point with a saw-tooth edge of `teeth` teeth: testing a point
/// against it costs time in proportion to its vertices.
fn saw(teeth: usize) -> String {
    let (x0, x1, y0, y1) = (113.9, 114.4, 29.9, 30.3);
    let mut ring = vec![format!("{x0} {y1}"), format!("{x0} {y0}")];
    for i in 0..teeth {
        let x = x0 + (x1 - x0) * (i as f64 + 0.5) / teeth as f64;
        ring.push(format!("{x:.4} {}", if i % 2 == 0 { 29.95 } else { 29.9 }));
    }
    ring.extend([format!("{x1} {y0}"), format!("{x1} {y1}"), format!("{x0} {y1}")]);
    format!("S_INTERSECTS(geometry, POLYGON(({})))", ring.join(", "))
}

/// A request whose store work runs for a second or more times out after 100 ms; its work is interrupted
/// (the store reports a cancellation at once instead of running to the end) and the store budget
/// serves the next requests straight away.
#[test]
fn a_timed_out_request_stops_its_store_work() {
    let env = bulk().env_with(|c| c.timeout = Duration::from_millis(100));
    let token = env.token("wang");
    let slow = format!("{}&offset=99999&limit=1", items_url("bulk", "cql2-text", &saw(900)));
    // How long the work takes when nothing stops it (directly on the store, no deadline).
    let filter = shikong_query::Filter::parse_text(&saw(900), env.store().layer("bulk").unwrap().schema()).unwrap();
    let started = Instant::now();
    let q = shikong_store::Query { filter: Some(&filter), ..shikong_store::Query::layer("bulk") };
    let stats = env.store().query(&q, &mut |_| true).unwrap();
    let uninterrupted = started.elapsed();
    assert_eq!(stats.returned, BULK);
    // It must outlast the 100 ms timeout by far, so that only a cancellation (counted below), not
    // the work ending by itself, can explain the counter moving. How far beyond depends on the
    // machine (0.7 s on a quiet one, several seconds under load); a bigger filter would pass the
    // CQL2 text limit.
    assert!(uninterrupted > Duration::from_millis(300), "the slow request must be slow: {uninterrupted:?}");

    let before = shikong_store::cancel::cancelled_total();
    let started = Instant::now();
    let r = env.get(&slow).token(&token).send();
    let answered = started.elapsed();
    assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT, "{}", r.text());
    // The work notices within a few hundred milliseconds, not after `uninterrupted`.
    let deadline = Instant::now() + Duration::from_millis(500);
    while shikong_store::cancel::cancelled_total() == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped = started.elapsed();
    assert!(
        shikong_store::cancel::cancelled_total() > before,
        "the store work went on after its request timed out (uninterrupted it takes {uninterrupted:?})"
    );
    println!(
        "slow request: 408 after {answered:?}, store work stopped after {stopped:?} (uninterrupted {uninterrupted:?})"
    );

    // As many slow requests at once as there are permits: all time out and stop, and an ordinary
    // request right after gets a permit without waiting for them.
    let permits = std::thread::available_parallelism().map_or(4, |n| n.get() * 2);
    std::thread::scope(|s| {
        for _ in 0..permits {
            s.spawn(|| {
                let r = env.get(&slow).token(&token).send();
                assert_eq!(r.status, StatusCode::REQUEST_TIMEOUT);
            });
        }
    });
    let started = Instant::now();
    let r = env.get("/collections/bulk/items?limit=5").token(&token).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let next = started.elapsed();
    println!("an ordinary request after {permits} timed-out slow ones: {next:?}");
    assert!(next < Duration::from_millis(250), "{next:?}");
}

// ---- over a real socket: /healthz under a hostile flood ----------------------------------------

/// One HTTP/1.1 request on a fresh connection; the status and how long the answer took.
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Duration) {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.set_nodelay(true).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, started.elapsed())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// The acceptance test: 8 clients send hostile filters and 8 flood `POST /auth/login`
/// with wrong passwords, while one measures `/healthz`; its p99 stays under 100 ms (a loose bound
/// for a noisy 2-core machine; the figures are printed).
#[test]
fn healthz_stays_fast_under_hostile_filters_and_a_login_flood() {
    let env = manholes().env();
    let token = env.token("wang");
    let state = env.state.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        let opts = shikong_http::ServeOptions::new(SocketAddr::from(([127, 0, 0, 1], 0)));
        let served = rt.block_on(shikong_http::serve(state, opts, move |a| tx.send(a).expect("bound")));
        panic!("serve returned: {served:?}");
    });
    let addr = rx.recv_timeout(Duration::from_secs(30)).expect("the server listens");
    assert_eq!(http(addr, "GET", "/healthz", None, "").0, 200);

    let stop = AtomicBool::new(false);
    let (hostile, logins) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let urls: Vec<String> = hostile_filters().iter().map(|(lang, _, f)| items_url("manhole", lang, f)).collect();
    let hostile_ms = std::sync::Mutex::new(Vec::new());
    let mut health: Vec<Duration> = Vec::new();
    std::thread::scope(|s| {
        for i in 0..8 {
            let (stop, hostile, urls, token, hostile_ms) = (&stop, &hostile, &urls, &token, &hostile_ms);
            s.spawn(move || {
                let mut k = i;
                while !stop.load(Ordering::Relaxed) {
                    let (status, took) = http(addr, "GET", &urls[k % urls.len()], Some(token), "");
                    assert_eq!(status, 400, "{}", &urls[k % urls.len()][..60]);
                    hostile.fetch_add(1, Ordering::Relaxed);
                    hostile_ms.lock().unwrap().push(took);
                    k += 1;
                }
            });
        }
        for i in 0..8 {
            let (stop, logins) = (&stop, &logins);
            s.spawn(move || {
                let body =
                    json!({"username": if i % 2 == 0 { "wang" } else { "nobody" }, "password": "wrong"}).to_string();
                while !stop.load(Ordering::Relaxed) {
                    let (status, _) = http(addr, "POST", "/auth/login", None, &body);
                    assert!(matches!(status, 401 | 403 | 429), "login answered {status}");
                    logins.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        // Let the flood build up, then sample /healthz every 10 ms for 5 s.
        std::thread::sleep(Duration::from_millis(500));
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            let (status, took) = http(addr, "GET", "/healthz", None, "");
            assert_eq!(status, 200);
            health.push(took);
            std::thread::sleep(Duration::from_millis(10));
        }
        stop.store(true, Ordering::Relaxed);
    });
    health.sort();
    let mut hostile_ms = hostile_ms.into_inner().unwrap();
    hostile_ms.sort();
    let (p50, p99) = (percentile(&health, 0.5), percentile(&health, 0.99));
    println!(
        "/healthz under flood: {} samples, p50 {p50:?}, p99 {p99:?}, max {:?}; hostile filters answered: {} (p50 {:?}, p99 {:?}); failed logins: {}",
        health.len(),
        health.last().unwrap(),
        hostile.load(Ordering::Relaxed),
        percentile(&hostile_ms, 0.5),
        percentile(&hostile_ms, 0.99),
        logins.load(Ordering::Relaxed),
    );
    assert!(hostile.load(Ordering::Relaxed) > 0 && logins.load(Ordering::Relaxed) > 0);
    assert!(p99 < Duration::from_millis(100), "/healthz p99 {p99:?} under the flood");
    drop(env);
}
