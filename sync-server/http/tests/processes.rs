//! OGC API – Processes: the process list and descriptions, synchronous and asynchronous
//! execution of `hotspot`, `local-moran` and `dbscan` in the exact words, jobs (progress,
//! results as raw and document, dismissal, expiry, durability over a restart), inputs read as of
//! an instant and through a CQL2 filter, results saved as a versioned layer, and precise errors.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{Value as Json, json};

use crate::support::*;

/// Five blobs of reports (about 150 m across, high counts in the first two) over a uniform
/// background in 洪山区: DBSCAN finds the blobs, Gi* finds the hot ones.
const BLOBS: [(f64, f64, i64); 5] =
    [(114.35, 30.49, 40), (114.37, 30.53, 35), (114.40, 30.50, 5), (114.42, 30.545, 5), (114.44, 30.48, 5)];
const PER_BLOB: usize = 30;
const BACKGROUND: usize = 150;

fn reports_template() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(
            &[("admin", "admin"), ("wang", "office"), ("li", "inspector"), ("zhang", "citizen")],
            |store, _| {
                let mut next = xorshift(20_261_207);
                let mut feats = Vec::new();
                for n in 0..BACKGROUND {
                    let (x, y) = (114.33 + 0.12 * next(), 30.47 + 0.09 * next());
                    feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                    "properties": {"code": format!("BG-{n:03}"), "count": 10 + (next() * 4.0) as i64, "kind": "background"}}));
                }
                for (b, (cx, cy, level)) in BLOBS.iter().enumerate() {
                    for n in 0..PER_BLOB {
                        // Within about ±80 m of the centre.
                        let (x, y) = (cx + 0.0016 * (next() - 0.5), cy + 0.0014 * (next() - 0.5));
                        feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                        "properties": {"code": format!("B{b}-{n:02}"), "count": level + (next() * 4.0) as i64, "kind": format!("blob{b}")}}));
                    }
                }
                import_features(store, "reports", "问题上报", feats);
            },
        )
    });
    &T
}

const TOTAL: usize = BACKGROUND + PER_BLOB * BLOBS.len();

fn hotspot_inputs() -> Json {
    json!({"collection": "reports", "field": "count", "weights": {"type": "distance", "distance": 500}, "star": true})
}

#[track_caller]
fn execute(env: &Env, user: &str, process: &str, body: &Json) -> Resp {
    env.post(&format!("/processes/{process}/execution")).token(&env.token(user)).json(body).send()
}

/// Polls a job until it is final; its status.
#[track_caller]
fn wait_job(env: &Env, user: &str, location: &str) -> Json {
    for _ in 0..600 {
        let r = env.get(location).token(&env.token(user)).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let s = r.json();
        if ["successful", "failed", "dismissed"].contains(&s["status"].as_str().unwrap()) {
            return s;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("job {location} did not finish in 30 s");
}

fn by_code(fc: &Json) -> HashMap<String, Json> {
    fc["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["properties"]["code"].as_str().unwrap().to_owned(), f.clone()))
        .collect()
}

#[test]
fn processes_are_listed_and_described_with_their_inputs() {
    let env = reports_template().env();
    let list = env.get("/processes").send();
    assert_eq!(list.status, StatusCode::OK);
    let ids: Vec<String> =
        list.json()["processes"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap().to_owned()).collect();
    for id in ["hotspot", "local-moran", "dbscan"] {
        assert!(ids.contains(&id.to_owned()), "{ids:?}");
    }
    let d = env.get("/processes/hotspot").send().json();
    for input in ["collection", "field", "weights", "star", "as_of", "filter", "save_as"] {
        assert!(d["inputs"][input]["schema"].is_object(), "hotspot input {input}: {d}");
    }
    assert_eq!(d["inputs"]["field"]["minOccurs"], 1);
    assert_eq!(d["jobControlOptions"], json!(["sync-execute", "async-execute", "dismiss"]));
    assert!(d["links"].as_array().unwrap().iter().any(|l| l["href"] == format!("{BASE}/processes/hotspot/execution")));
    let d = env.get("/processes/dbscan").send().json();
    assert!(d["inputs"]["eps"].is_object() && d["inputs"]["min_samples"].is_object(), "{d}");
    let missing = env.get("/processes/kriging").send();
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.header("content-type"), "application/problem+json");
}

#[test]
fn hotspot_answers_the_input_features_with_gi_z_and_gi_p_and_their_ids() {
    let env = reports_template().env();
    let r = execute(&env, "wang", "hotspot", &json!({"inputs": hotspot_inputs()}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/geo+json");
    let fc = r.json();
    assert_eq!(fc["type"], "FeatureCollection");
    let features = fc["features"].as_array().unwrap();
    assert_eq!(features.len(), TOTAL);

    // Ids unchanged: the same ids as the items endpoint's.
    let items = ok_as_wang(&env, "/collections/reports/items?limit=1000");
    let item_ids: std::collections::BTreeSet<String> =
        items["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect();
    let result_ids: std::collections::BTreeSet<String> =
        features.iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(item_ids, result_ids);

    // The numbers are shikong-analysis's Gi* (checked against esda in its own tests) on the
    // same points, with a two-sided p.
    let points: Vec<[f64; 2]> = features
        .iter()
        .map(|f| [f["geometry"]["coordinates"][0].as_f64().unwrap(), f["geometry"]["coordinates"][1].as_f64().unwrap()])
        .collect();
    let values: Vec<f64> = features.iter().map(|f| f["properties"]["count"].as_f64().unwrap()).collect();
    let expected = shikong_analysis::hotspot(
        &points,
        &values,
        shikong_analysis::WeightsSpec::DistanceBand { metres: 500.0 },
        true,
    )
    .unwrap();
    for (f, e) in features.iter().zip(&expected) {
        let z = f["properties"]["gi_z"].as_f64().unwrap();
        let p = f["properties"]["gi_p"].as_f64().unwrap();
        assert!((z - e.z.unwrap()).abs() < 1e-12, "{f}");
        assert!((p - e.p_two_sided.unwrap()).abs() < 1e-12, "{f}");
        assert!((0.0..=1.0).contains(&p));
    }
    // The two high blobs are hot spots at 99%, the background is not.
    let codes = by_code(&fc);
    for n in 0..PER_BLOB {
        for b in [0, 1] {
            let f = &codes[&format!("B{b}-{n:02}")];
            assert!(f["properties"]["gi_z"].as_f64().unwrap() > 2.58, "{f}");
            assert_eq!(f["properties"]["gi_bin"], 3, "{f}");
        }
    }
    assert!(fc["summary"]["hot"].as_u64().unwrap() >= 2 * PER_BLOB as u64, "{}", fc["summary"]);

    // Gi (without the focal feature) and k-nearest weights, as the issue words them.
    let gi = execute(
        &env,
        "wang",
        "hotspot",
        &json!({"inputs": {"collection": "reports", "field": "count", "weights": {"type": "knn", "k": 8}, "star": false}}),
    );
    assert_eq!(gi.status, StatusCode::OK, "{}", gi.text());
    let gi = gi.json();
    let f = &by_code(&gi)["B0-00"];
    assert!(f["properties"]["gi_z"].as_f64().unwrap() > 1.96, "{f}");
}

#[test]
fn dbscan_labels_the_blobs_and_the_background_as_noise() {
    let env = reports_template().env();
    let r = execute(&env, "li", "dbscan", &json!({"inputs": {"collection": "reports", "eps": 60, "min_samples": 5}}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let fc = r.json();
    let codes = by_code(&fc);
    // Every blob is one cluster of its own.
    let mut blob_cluster = Vec::new();
    for b in 0..BLOBS.len() {
        let labels: std::collections::BTreeSet<i64> = (0..PER_BLOB)
            .map(|n| codes[&format!("B{b}-{n:02}")]["properties"]["cluster"].as_i64().unwrap())
            .filter(|l| *l >= 0)
            .collect();
        assert_eq!(labels.len(), 1, "blob {b}: {labels:?}");
        blob_cluster.push(*labels.iter().next().unwrap());
    }
    blob_cluster.sort();
    blob_cluster.dedup();
    assert_eq!(blob_cluster.len(), BLOBS.len());
    let noise = fc["features"].as_array().unwrap().iter().filter(|f| f["properties"]["cluster"] == -1).count();
    assert!(noise > BACKGROUND / 2, "the sparse background is mostly noise: {noise}");
    assert_eq!(fc["summary"]["noise"], noise);
    // The same labels as shikong-analysis's DBSCAN (equal to scikit-learn's in its own tests).
    let features = fc["features"].as_array().unwrap();
    let points: Vec<[f64; 2]> = features
        .iter()
        .map(|f| [f["geometry"]["coordinates"][0].as_f64().unwrap(), f["geometry"]["coordinates"][1].as_f64().unwrap()])
        .collect();
    let expected = shikong_analysis::dbscan(&points, 60.0, 5).unwrap();
    let got: Vec<i64> = features.iter().map(|f| f["properties"]["cluster"].as_i64().unwrap()).collect();
    assert_eq!(got, expected.iter().map(|l| i64::from(*l)).collect::<Vec<_>>());
}

#[test]
fn local_moran_classifies_clusters_and_outliers() {
    let env = reports_template().env();
    let r = execute(
        &env,
        "wang",
        "local-moran",
        &json!({"inputs": {"collection": "reports", "field": "count", "weights": {"type": "knn", "k": 6}}, "response": "document"}),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/json");
    let doc = r.json();
    let codes = by_code(&doc["result"]);
    let hh = (0..PER_BLOB).filter(|n| codes[&format!("B0-{n:02}")]["properties"]["lisa_cluster"] == "HH").count();
    assert!(hh > PER_BLOB / 2, "the high blob is a high-high cluster: {hh}");
}

#[test]
fn an_async_job_reports_progress_and_gives_the_same_result() {
    let env = reports_template().env();
    let sync = execute(&env, "wang", "hotspot", &json!({"inputs": hotspot_inputs()})).json();
    let r = env
        .post("/processes/hotspot/execution")
        .token(&env.token("wang"))
        .header("prefer", "respond-async")
        .json(&json!({"inputs": hotspot_inputs()}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.header("preference-applied"), "respond-async");
    let status = r.json();
    let location = r.header("location").to_owned();
    assert_eq!(location, format!("{BASE}/jobs/{}", status["jobID"].as_str().unwrap()));
    assert_eq!(status["processID"], "hotspot");
    assert_eq!(status["type"], "process");
    assert!(["accepted", "running", "successful"].contains(&status["status"].as_str().unwrap()), "{status}");

    let done = wait_job(&env, "wang", &location);
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(done["progress"], 100);
    let results = done["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "http://www.opengis.net/def/rel/ogc/1.0/results")
        .expect("a results link")["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = env.get(&results).token(&env.token("wang")).send();
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.header("content-type"), "application/geo+json");
    let (a, b) = (by_code(&sync), by_code(&got.json()));
    assert_eq!(a.len(), b.len());
    for (code, f) in &a {
        assert_eq!(f["id"], b[code]["id"]);
        assert_eq!(f["properties"]["gi_z"], b[code]["properties"]["gi_z"]);
    }

    // The job list is the owner's; another user sees neither the job nor its result.
    let jobs = env.get("/jobs").token(&env.token("wang")).send().json();
    assert!(jobs["jobs"].as_array().unwrap().iter().any(|j| j["jobID"] == done["jobID"]));
    let theirs = env.get("/jobs").token(&env.token("li")).send().json();
    assert!(theirs["jobs"].as_array().unwrap().is_empty(), "{theirs}");
    assert_eq!(env.get(&location).token(&env.token("li")).send().status, StatusCode::FORBIDDEN);
    assert_eq!(env.get(&results).token(&env.token("li")).send().status, StatusCode::FORBIDDEN);
    let admin = env.get("/jobs").token(&env.token("admin")).send().json();
    assert_eq!(admin["jobs"].as_array().unwrap().len(), 1);

    // Dismissing a finished job removes it and its result.
    let del = env.delete(&location).token(&env.token("wang")).send();
    assert_eq!(del.status, StatusCode::OK, "{}", del.text());
    assert_eq!(del.json()["status"], "dismissed");
    assert_eq!(env.get(&location).token(&env.token("wang")).send().status, StatusCode::NOT_FOUND);
    assert_eq!(env.get(&results).token(&env.token("wang")).send().status, StatusCode::NOT_FOUND);
    let files: Vec<_> =
        std::fs::read_dir(env.dir.path().join("processes")).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(files, vec![std::ffi::OsString::from("jobs.json")], "no result file is left");
}

#[test]
fn document_responses_for_owslib_and_failed_jobs_keep_their_problem() {
    let env = reports_template().env();
    let r = env
        .post("/processes/dbscan/execution")
        .token(&env.token("wang"))
        .header("prefer", "respond-async")
        .json(&json!({"inputs": {"collection": "reports", "eps": 60, "min_samples": 5}, "response": "document"}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED);
    let location = r.header("location").to_owned();
    assert_eq!(wait_job(&env, "wang", &location)["status"], "successful");
    let doc = env.get(&format!("{location}/results")).token(&env.token("wang")).send();
    assert_eq!(doc.header("content-type"), "application/json");
    assert_eq!(doc.json()["result"]["features"].as_array().unwrap().len(), TOTAL);

    // A job whose inputs are wrong fails with the problem a synchronous run answers.
    let r = env
        .post("/processes/hotspot/execution")
        .token(&env.token("wang"))
        .header("prefer", "respond-async")
        .json(&json!({"inputs": {"collection": "reports", "field": "kind", "weights": {"type": "knn", "k": 4}}}))
        .send();
    let location = r.header("location").to_owned();
    let failed = wait_job(&env, "wang", &location);
    assert_eq!(failed["status"], "failed");
    assert!(failed["message"].as_str().unwrap().contains("`kind`"), "{failed}");
    let problem = env.get(&format!("{location}/results")).token(&env.token("wang")).send();
    assert_eq!(problem.status, StatusCode::BAD_REQUEST);
    assert_eq!(problem.json()["input"], "field");
}

#[test]
fn waiting_jobs_survive_a_restart_and_can_be_dismissed() {
    // A server without workers: jobs wait.
    let env = reports_template().env_with(|c| c.processes.running = 0);
    let submit = |env: &Env| {
        let r = env
            .post("/processes/hotspot/execution")
            .token(&env.token("wang"))
            .header("prefer", "respond-async")
            .json(&json!({"inputs": hotspot_inputs()}))
            .send();
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.header("location").to_owned()
    };
    let kept = submit(&env);
    let dropped = submit(&env);
    let s = env.get(&kept).token(&env.token("wang")).send().json();
    assert_eq!((s["status"].as_str(), s["progress"].as_u64()), (Some("accepted"), Some(0)));
    let not_ready = env.get(&format!("{kept}/results")).token(&env.token("wang")).send();
    assert_eq!(not_ready.status, StatusCode::NOT_FOUND);
    assert!(not_ready.text().contains("result-not-ready"), "{}", not_ready.text());
    let del = env.delete(&dropped).token(&env.token("wang")).send().json();
    assert_eq!(del["status"], "dismissed");

    // The same data folder with a worker: the waiting job runs, the dismissed one stays so.
    let env = env.restarted_with(|c| c.processes.running = 1);
    let done = wait_job(&env, "wang", &kept);
    assert_eq!(done["status"], "successful", "{done}");
    assert_eq!(env.get(&dropped).token(&env.token("wang")).send().json()["status"], "dismissed");
    let r = env.get(&format!("{kept}/results")).token(&env.token("wang")).send();
    assert_eq!(r.json()["features"].as_array().unwrap().len(), TOTAL);
}

/// `DELETE /jobs/{id}` stops a job inside the library's permutation loop, not only between steps:
/// 99,999 permutations of 299 neighbours for each of the 300 features would take hours in this
/// (unoptimised) build, yet the one worker is free for the next job.
#[test]
fn a_dismissed_job_stops_inside_a_long_computation_and_frees_the_worker() {
    let env = reports_template().env();
    let inputs = json!({"collection": "reports", "field": "count", "weights": {"type": "knn", "k": TOTAL - 1},
        "permutations": 99_999, "seed": 1});
    let r = env
        .post("/processes/hotspot/execution")
        .token(&env.token("wang"))
        .header("prefer", "respond-async")
        .json(&json!({"inputs": inputs}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let long = r.header("location").to_owned();
    // Wait until it is computing Gi* (progress 40 is set just before the library call).
    let mut seen = Json::Null;
    for _ in 0..600 {
        seen = env.get(&long).token(&env.token("wang")).send().json();
        if seen["status"] == "running" && seen["progress"].as_u64() >= Some(40) {
            break;
        }
        assert!(["accepted", "running"].contains(&seen["status"].as_str().unwrap()), "{seen}");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!((seen["status"].as_str(), seen["progress"].as_u64()), (Some("running"), Some(40)), "{seen}");

    let del = env.delete(&long).token(&env.token("wang")).send();
    assert_eq!(del.status, StatusCode::OK, "{}", del.text());
    assert_eq!(del.json()["status"], "dismissed");

    // The next job gets the worker and finishes: the long one let go of it.
    let r = execute_async(&env, "wang", "dbscan", &json!({"collection": "reports", "eps": 60, "min_samples": 5}));
    let next = wait_job(&env, "wang", &r);
    assert_eq!(next["status"], "successful", "{next}");
    let stopped = env.get(&long).token(&env.token("wang")).send().json();
    assert_eq!(stopped["status"], "dismissed", "{stopped}");
    assert!(stopped["links"].as_array().unwrap().iter().all(|l| !l["rel"].as_str().unwrap().ends_with("/results")));
    let results = env.get(&format!("{long}/results")).token(&env.token("wang")).send();
    assert_eq!(results.status, StatusCode::GONE, "{}", results.text());
    let id = stopped["jobID"].as_str().unwrap();
    assert!(!env.dir.path().join(format!("processes/{id}.json")).exists(), "a dismissed job writes no result");
}

#[track_caller]
fn execute_async(env: &Env, user: &str, process: &str, inputs: &Json) -> String {
    let r = env
        .post(&format!("/processes/{process}/execution"))
        .token(&env.token(user))
        .header("prefer", "respond-async")
        .json(&json!({ "inputs": inputs }))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.header("location").to_owned()
}

#[test]
fn finished_jobs_expire_and_users_are_bounded() {
    let env = reports_template().env_with(|c| {
        c.processes.keep_for = Duration::ZERO;
        c.processes.running = 0;
        c.processes.per_user = 2;
    });
    let submit = || {
        env.post("/processes/dbscan/execution")
            .token(&env.token("li"))
            .header("prefer", "respond-async")
            .json(&json!({"inputs": {"collection": "reports", "eps": 60, "min_samples": 5}}))
            .send()
    };
    assert_eq!(submit().status, StatusCode::CREATED);
    assert_eq!(submit().status, StatusCode::CREATED);
    let third = submit();
    assert_eq!(third.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(third.json()["limit"], "per_user");
    // A dismissed job is finished, and with keep_for = 0 it is gone at once.
    let jobs = env.get("/jobs").token(&env.token("li")).send().json();
    let first = jobs["jobs"][0]["jobID"].as_str().unwrap().to_owned();
    assert_eq!(env.delete(&format!("/jobs/{first}")).token(&env.token("li")).send().status, StatusCode::OK);
    assert_eq!(env.get(&format!("/jobs/{first}")).token(&env.token("li")).send().status, StatusCode::NOT_FOUND);
    assert_eq!(submit().status, StatusCode::CREATED);
}

#[test]
fn inputs_are_read_as_of_an_instant_and_through_a_filter() {
    let env = reports_template().env();
    let before = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(20));
    // An edit after `before`: one background report becomes very high.
    let items = ok_as_wang(&env, "/collections/reports/items?limit=1000&filter=code%3D'BG-000'");
    let id = items["features"][0]["id"].as_str().unwrap().to_owned();
    let r = env
        .patch(&format!("/collections/reports/items/{id}"))
        .token(&env.token("wang"))
        .json(&json!({"properties": {"count": 900}}))
        .send();
    assert!(r.status.is_success(), "{}", r.text());

    let now = execute(&env, "wang", "hotspot", &json!({"inputs": hotspot_inputs()})).json();
    let mut old_inputs = hotspot_inputs();
    old_inputs["as_of"] = json!(before.to_string());
    let then = execute(&env, "wang", "hotspot", &json!({"inputs": old_inputs})).json();
    assert_eq!(by_code(&now)["BG-000"]["properties"]["count"], 900);
    assert_ne!(by_code(&then)["BG-000"]["properties"]["count"], 900);

    let mut filtered = hotspot_inputs();
    filtered["filter"] = json!("kind <> 'background'");
    let fc = execute(&env, "wang", "hotspot", &json!({"inputs": filtered})).json();
    assert_eq!(fc["numberReturned"], PER_BLOB * BLOBS.len());
    let mut cql_json = hotspot_inputs();
    cql_json["filter"] = json!({"op": "=", "args": [{"property": "kind"}, "blob0"]});
    let fc = execute(&env, "wang", "hotspot", &json!({"inputs": cql_json})).json();
    assert_eq!(fc["numberReturned"], PER_BLOB);
}

#[test]
fn a_result_saved_as_a_layer_is_versioned_run_by_run() {
    let env = reports_template().env();
    let mut inputs = hotspot_inputs();
    inputs["save_as"] = json!("reports_hotspots");
    let r = execute(&env, "wang", "hotspot", &json!({"inputs": inputs.clone()}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json()["saved_as"], "reports_hotspots");
    let c = ok_as_wang(&env, "/collections/reports_hotspots");
    assert!(c["title"].as_str().unwrap().contains("hotspot"), "{c}");
    let q = ok_as_wang(&env, "/collections/reports_hotspots/queryables");
    assert!(q["properties"]["gi_z"].is_object() && q["properties"]["count"].is_object(), "{q}");
    let items = ok_as_wang(&env, "/collections/reports_hotspots/items?limit=1000");
    assert_eq!(items["features"].as_array().unwrap().len(), TOTAL);
    let source = ok_as_wang(&env, "/collections/reports/items?limit=1000");
    let (saved, source) = (by_code(&items), by_code(&source));
    assert_eq!(saved["B0-00"]["id"], source["B0-00"]["id"], "the saved features keep the source ids");
    assert_eq!(saved["B0-00"]["properties"]["version"], 1);

    // A second run over fewer features: a new version of each kept feature, the rest deleted.
    let id = saved["B0-00"]["id"].as_str().unwrap().to_owned();
    let r = env
        .patch(&format!("/collections/reports/items/{id}"))
        .token(&env.token("wang"))
        .json(&json!({"properties": {"count": 0}}))
        .send();
    assert!(r.status.is_success(), "{}", r.text());
    inputs["filter"] = json!("kind <> 'background'");
    let r = execute(&env, "wang", "hotspot", &json!({"inputs": inputs.clone()}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let items = ok_as_wang(&env, "/collections/reports_hotspots/items?limit=1000");
    assert_eq!(items["features"].as_array().unwrap().len(), PER_BLOB * BLOBS.len());
    let f = &by_code(&items)["B0-00"];
    assert_eq!(f["properties"]["version"], 2);
    assert_eq!(f["properties"]["count"], 0);
    let history = ok_as_wang(&env, &format!("/collections/reports_hotspots/items/{id}/history"));
    assert_eq!(history["versions"].as_array().unwrap().len(), 2, "{history}");

    // Inspectors may run processes but not create layers; a layer of record is never overwritten.
    let mut li = hotspot_inputs();
    li["save_as"] = json!("li_hotspots");
    assert_eq!(execute(&env, "li", "hotspot", &json!({"inputs": li})).status, StatusCode::FORBIDDEN);
    let r = execute(
        &env,
        "wang",
        "hotspot",
        &json!({"inputs": {"collection": "reports_hotspots", "field": "count",
        "weights": {"type": "knn", "k": 4}, "save_as": "reports"}}),
    );
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
}

#[test]
fn bad_inputs_are_precise_problems() {
    let env = reports_template().env();
    let problem = |user: Option<&str>, process: &str, body: Json, status: StatusCode| {
        let r = env
            .post(&format!("/processes/{process}/execution"))
            .maybe_token(user.map(|u| env.token(u)).as_deref())
            .json(&body)
            .send();
        assert_eq!(r.status, status, "{body}: {}", r.text());
        assert_eq!(r.header("content-type"), "application/problem+json");
        r.json()
    };
    problem(None, "hotspot", json!({"inputs": hotspot_inputs()}), StatusCode::UNAUTHORIZED);
    problem(Some("wang"), "kriging", json!({"inputs": {}}), StatusCode::NOT_FOUND);
    let p = problem(
        Some("wang"),
        "hotspot",
        json!({"inputs": {"collection": "reports", "weights": {"type": "knn", "k": 4}}}),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("`field`"), "{p}");
    let p = problem(
        Some("wang"),
        "hotspot",
        json!({"inputs": {"collection": "nowhere", "field": "count", "weights": {"type": "knn", "k": 4}}}),
        StatusCode::BAD_REQUEST,
    );
    assert_eq!(p["input"], "collection");
    let p = problem(
        Some("wang"),
        "hotspot",
        json!({"inputs": {"collection": "reports", "field": "count", "weights": {"type": "ring"}}}),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("ring"), "{p}");
    let p = problem(
        Some("wang"),
        "hotspot",
        json!({"inputs": {"collection": "reports", "field": "count", "weights": {"type": "distance", "distance": 1e9}}}),
        StatusCode::UNPROCESSABLE_ENTITY,
    );
    assert!(p["detail"].as_str().unwrap().contains("distance"), "{p}");
    let p = problem(
        Some("wang"),
        "hotspot",
        json!({"inputs": {"collection": "reports", "field": "count", "weights": {"type": "queen"}}}),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("polygons"), "{p}");
    let mut bad_filter = hotspot_inputs();
    bad_filter["filter"] = json!("nosuchfield = 1");
    let p = problem(Some("wang"), "hotspot", json!({"inputs": bad_filter}), StatusCode::BAD_REQUEST);
    assert_eq!(p["input"], "filter");
    let p = problem(
        Some("wang"),
        "dbscan",
        json!({"inputs": {"collection": "reports", "eps": 60, "min_samples": 5}, "extra": 1}),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("extra"), "{p}");
    let p = problem(
        Some("wang"),
        "dbscan",
        json!({"inputs": {"collection": "reports", "eps": 60, "min_samples": 5}, "subscriber": {"successUri": "http://x"}}),
        StatusCode::BAD_REQUEST,
    );
    assert!(p["detail"].as_str().unwrap().contains("subscriber"), "{p}");
    // A citizen may not read the (non-public) layer: the process refuses like the items endpoint.
    problem(
        Some("zhang"),
        "dbscan",
        json!({"inputs": {"collection": "reports", "eps": 60, "min_samples": 5}}),
        StatusCode::FORBIDDEN,
    );
}

#[test]
fn replay_steps_a_layer_through_its_history() {
    let env = reports_template().env();
    let token = env.token("wang");
    let items = ok_as_wang(&env, "/collections/reports/items?limit=1000");
    let codes = by_code(&items);
    let (a, b) =
        (codes["BG-000"]["id"].as_str().unwrap().to_owned(), codes["BG-001"]["id"].as_str().unwrap().to_owned());
    let t0 = jiff::Timestamp::now();
    std::thread::sleep(Duration::from_millis(30));
    let r = env
        .patch(&format!("/collections/reports/items/{a}"))
        .token(&token)
        .json(&json!({"properties": {"count": 900}}))
        .send();
    assert!(r.status.is_success(), "{}", r.text());
    std::thread::sleep(Duration::from_millis(30));
    let t1 = jiff::Timestamp::now();
    assert!(env.delete(&format!("/collections/reports/items/{b}")).token(&token).send().status.is_success());
    let r = env
        .post("/collections/reports/items")
        .token(&token)
        .json(&json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [114.36, 30.50]},
            "properties": {"code": "NEW-1", "count": 3, "kind": "background"}}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    std::thread::sleep(Duration::from_millis(10));
    let t2 = jiff::Timestamp::now();
    // One interval from t0 lands exactly on t1; the next state is `to`.
    let interval = format!("PT{:.6}S", (t1 - t0).total(jiff::Unit::Second).unwrap());
    let run = |filter: Option<&str>| {
        let mut inputs =
            json!({"collection": "reports", "from": t0.to_string(), "to": t2.to_string(), "interval": interval});
        if let Some(f) = filter {
            inputs["filter"] = json!(f);
        }
        let r = execute(&env, "wang", "replay", &json!({"inputs": inputs}));
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert_eq!(r.header("content-type"), "application/json");
        r.json()
    };
    let all = run(None);
    assert_eq!(all["initial"].as_array().unwrap().len(), TOTAL);
    let steps = all["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0]["changed"].as_array().unwrap().len(), 1);
    assert_eq!(steps[0]["changed"][0]["id"], a.as_str());
    assert_eq!(steps[0]["changed"][0]["properties"]["count"], 900);
    assert_eq!(steps[0]["live"], TOTAL);
    assert_eq!(steps[1]["removed"], json!([b]));
    assert_eq!(steps[1]["added"][0]["properties"]["code"], "NEW-1");
    assert_eq!(steps[1]["live"], TOTAL);
    // Through a filter: the edit takes the feature out of it.
    let low = run(Some("count < 500"));
    assert_eq!(low["initial"].as_array().unwrap().len(), TOTAL);
    assert_eq!(low["steps"][0]["removed"], json!([a]));
    assert_eq!(low["steps"][0]["live"], TOTAL - 1);
    // Too fine a step is refused before any work.
    let r = execute(
        &env,
        "wang",
        "replay",
        &json!({"inputs": {"collection": "reports", "from": "2026-01-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00", "interval": "PT1M"}}),
    );
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["input"], "interval");
}

#[test]
fn hdbscan_finds_the_blobs_with_membership_strengths() {
    let env = reports_template().env();
    let r = execute(&env, "wang", "hdbscan", &json!({"inputs": {"collection": "reports", "min_cluster_size": 10}}));
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let fc = r.json();
    let codes = by_code(&fc);
    let mut seen = std::collections::BTreeSet::new();
    for b in 0..BLOBS.len() {
        let labels: std::collections::BTreeSet<i64> = (0..PER_BLOB)
            .map(|n| codes[&format!("B{b}-{n:02}")]["properties"]["cluster"].as_i64().unwrap())
            .filter(|l| *l >= 0)
            .collect();
        assert_eq!(labels.len(), 1, "blob {b}: {labels:?}");
        seen.extend(labels);
    }
    assert_eq!(seen.len(), BLOBS.len());
    for f in fc["features"].as_array().unwrap() {
        let p = f["properties"]["cluster_p"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&p), "{f}");
        if f["properties"]["cluster"] == -1 {
            assert_eq!(p, 0.0);
        }
    }
    let bad = execute(
        &env,
        "wang",
        "hdbscan",
        &json!({"inputs": {"collection": "reports", "min_cluster_size": 10, "cluster_selection_method": "best"}}),
    );
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["input"], "cluster_selection_method");
}

#[test]
fn kernel_density_is_published_as_a_raster_tile_set() {
    let env = reports_template().env();
    let r = execute(
        &env,
        "wang",
        "kernel-density",
        &json!({"inputs": {"collection": "reports", "bandwidth": 300, "min_zoom": 12, "max_zoom": 14, "set": "reports-heat"}}),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert_eq!((d["set"].as_str(), d["bandwidth_rule"].as_str()), (Some("reports-heat"), Some("given")));
    assert_eq!((d["minzoom"].as_u64(), d["maxzoom"].as_u64()), (Some(12), Some(14)));
    assert!(d["tiles"].as_u64().unwrap() > 0, "{d}");
    // The peak is a blob's: 30 reports within ~80 m under a 300 m quartic kernel.
    let peak = d["peak_per_km2"].as_f64().unwrap();
    assert!(peak > 100.0, "{d}");
    let tj = env.get("/tiles/reports-heat.json").token(&env.token("wang")).send();
    assert_eq!(tj.status, StatusCode::OK, "{}", tj.text());
    // The tile over the first blob is coloured; one far away has nothing.
    let (x, y) = grid::xyz(BLOBS[0].0, BLOBS[0].1, 14);
    let tile = env.get(&format!("/tiles/reports-heat/14/{x}/{y}.png")).token(&env.token("wang")).send();
    assert_eq!(tile.status, StatusCode::OK, "{}", tile.text());
    let img = image::load_from_memory(&tile.bytes()).unwrap().to_rgba8();
    let opaque = img.pixels().filter(|p| p[3] > 0).count();
    assert!(opaque > 1000, "{opaque} coloured pixels");
    let (fx, fy) = grid::xyz(114.0, 30.0, 14);
    let far = env.get(&format!("/tiles/reports-heat/14/{fx}/{fy}.png")).token(&env.token("wang")).send();
    assert_ne!(far.status, StatusCode::OK);

    // Silverman's rule when no bandwidth is given; inspectors may not publish raster sets.
    let r = execute(
        &env,
        "wang",
        "kernel-density",
        &json!({"inputs": {"collection": "reports", "min_zoom": 11, "max_zoom": 12}}),
    );
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let d = r.json();
    assert_eq!(d["bandwidth_rule"], "silverman");
    assert_eq!(d["set"], "density-reports");
    assert!(d["bandwidth_m"].as_f64().unwrap() > 100.0, "{d}");
    let r = execute(&env, "li", "kernel-density", &json!({"inputs": {"collection": "reports"}}));
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = execute(
        &env,
        "wang",
        "kernel-density",
        &json!({"inputs": {"collection": "reports", "min_zoom": 5, "max_zoom": 20}}),
    );
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["input"], "max_zoom");
}
