//! The web map's analysis panel (issue 19) in a real browser: Debian's Chromium, headless,
//! driven by Playwright through `sync-server/http/web/test/analysis.mjs`, against the real server
//! with the grid layer of `tiles_common` (400 manholes whose `depth` grows from the south-west
//! corner to the north-east one). Signed in as the office user through the page's form, the panel
//! lists the processes, builds the hotspot form from its schemas (the layer select from
//! /collections, the numeric fields from the layer's queryables, the weights' alternatives),
//! runs hotspot and DBSCAN as jobs, shows their progress, and adds each result to the map as a
//! layer coloured by its column with a legend; a replay of the last hour steps from nothing to
//! the grid; a long job is cancelled; a refused one shows why it failed; the past jobs are
//! listed. Screenshots go to `target/screenshots/analysis/` (analysis-hotspot.png,
//! analysis-dbscan.png, analysis-replay.png).

use std::path::PathBuf;

use serde_json::Value as Json;

use crate::tiles_browser::drive;
use crate::tiles_common::*;

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots/analysis")
}

fn ids(v: &Json) -> Vec<String> {
    v.as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_owned()).collect()
}

#[test]
fn the_web_map_runs_processes_as_jobs_and_shows_their_results() {
    let env = start(true);
    let out = screenshots();
    let r = drive("analysis.mjs", &[&env.server.base, crate::common::s(&out), "wang", PASSWORD]);
    println!(
        "hotspot: {} rendered, bins {}; dbscan: {} rendered, clusters {}; replay {} steps; statuses seen {}",
        r["hotspot"]["rendered"],
        r["hotspot"]["bins"],
        r["dbscan"]["rendered"],
        r["dbscan"]["clusters"],
        r["replay"]["steps"],
        r["hotspotSeen"]
    );
    // Before signing in: the panel says to sign in and cannot run.
    assert_eq!(r["anonymous"]["note"], "请先登录后再运行分析", "{r:#}");
    assert_eq!(r["anonymous"]["runDisabled"], true, "{r:#}");
    // The processes of GET /processes, by their Chinese titles.
    let processes: Vec<&str> = r["processes"].as_array().unwrap().iter().filter_map(|p| p["id"].as_str()).collect();
    for id in ["hotspot", "local-moran", "dbscan", "replay"] {
        assert!(processes.contains(&id), "{id} missing: {r:#}");
    }
    let hot_title = r["processes"].as_array().unwrap().iter().find(|p| p["id"] == "hotspot").unwrap()["title"].clone();
    assert_eq!(hot_title, "热点分析 (Getis-Ord Gi*)", "{r:#}");
    // The form from the schemas: the layer's numeric fields only, the weights' alternatives.
    let form = &r["form"];
    let fields = ids(&form["fields"]);
    assert_eq!(fields, ["depth"], "only the numeric field of the layer: {r:#}");
    assert_eq!(ids(&form["weights"]), ["distance", "knn", "queen"], "{r:#}");
    let inputs = ids(&form["inputs"]);
    for i in
        ["collection", "field", "weights", "weights.distance", "weights.k", "star", "permutations", "as_of", "filter"]
    {
        assert!(inputs.iter().any(|x| x == i), "no control for {i}: {r:#}");
    }
    assert_eq!((form["star"].as_str(), form["starChecked"].as_bool()), (Some("checkbox"), Some(true)), "{r:#}");
    assert_eq!(form["asOf"], "datetime-local", "{r:#}");

    // Hotspot ran as a job: the panel showed it successful at 100 %, having polled its status.
    let hot = &r["hotspot"];
    assert_eq!(hot["status"], "successful", "{r:#}");
    let seen = r["hotspotSeen"].as_array().unwrap();
    assert!(seen.iter().any(|s| s["status"] == "successful" && s["progress"] == 100), "{r:#}");
    assert_eq!(hot["result"]["count"], (N * N) as u64, "{r:#}");
    assert_eq!(hot["result"]["column"], "gi_bin", "{r:#}");
    assert_eq!((hot["source"].as_bool(), hot["sourceType"].as_str()), (Some(true), Some("geojson")), "{r:#}");
    // On the map: the result layer's points render with their columns; the depth gradient gives
    // hot spots at one corner and cold spots at the other.
    let rendered = hot["rendered"].as_u64().unwrap();
    assert!(rendered >= 100, "{r:#}");
    assert_eq!(hot["withZ"], hot["rendered"], "{r:#}");
    let bins: Vec<i64> = hot["bins"].as_array().unwrap().iter().map(|b| b.as_i64().unwrap()).collect();
    assert!(bins.contains(&3) && bins.contains(&-3), "hot and cold spots: {bins:?} {r:#}");
    // The legend: seven confidence bins, the counts summing to the features.
    assert_eq!(hot["legendShown"], true, "{r:#}");
    let legend = hot["legend"].as_array().unwrap();
    assert_eq!(legend.len(), 7, "{r:#}");
    assert!(legend[0]["text"].as_str().unwrap().starts_with("热点 99% 置信"), "{r:#}");

    // DBSCAN: a second layer, clusters as categories.
    let db = &r["dbscan"];
    assert_eq!(db["status"], "successful", "{r:#}");
    assert_eq!(db["results"].as_array().unwrap().len(), 2, "both results on the map: {r:#}");
    assert_eq!(db["results"][1]["column"], "cluster", "{r:#}");
    assert!(db["rendered"].as_u64().unwrap() >= 100, "{r:#}");
    assert!(db["legend"].as_array().unwrap().iter().any(|l| l["text"].as_str().unwrap().starts_with("簇 0")), "{r:#}");

    // Replay: nothing an hour ago, the whole grid (as rendered) at the last step.
    let rp = &r["replay"];
    assert!(rp["steps"].as_u64().unwrap() >= 6, "{r:#}");
    assert_eq!(rp["first"]["step"], 0, "{r:#}");
    assert!(rp["last"]["step"].as_u64().unwrap() >= 100, "{r:#}");
    assert!(rp["last"]["text"].as_str().unwrap().contains(&format!("{} 个要素", N * N)), "{r:#}");
    assert_eq!(rp["playing"], true, "{r:#}");

    // The long job was cancelled from the panel.
    assert_eq!(r["cancelled"]["status"], "dismissed", "{r:#}");
    assert_eq!(r["cancelled"]["cancelShown"], false, "{r:#}");
    // A failed job shows why, not only that it failed: the problem's detail.
    let why = format!("k = 1000 must be less than the number of points ({})", N * N);
    assert!(r["failed"]["message"].as_str().unwrap().contains(&why), "{r:#}");
    // The past jobs: the five runs, the cancelled and the failed one among them; the failed
    // one's row says why.
    let jobs = r["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 5, "{r:#}");
    assert_eq!(jobs.iter().filter(|j| j["status"] == "successful").count(), 3, "{r:#}");
    assert_eq!(
        (jobs[0]["status"].as_str(), jobs[1]["status"].as_str()),
        (Some("failed"), Some("dismissed")),
        "newest first: {r:#}"
    );
    assert!(jobs[0]["text"].as_str().unwrap().contains(&why), "{r:#}");
    for f in ["analysis-hotspot.png", "analysis-dbscan.png", "analysis-replay.png"] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 10_000, "{f} is suspiciously small");
    }
}
