//! Analysis in the desktop app (issue 19): the real `shikong-desktop` window under Xvfb, driven
//! through WebDriver, against the real `shikong serve` with the demo data. Signed in as office
//! staff, the user opens 分析 on the map, picks DBSCAN, fills its form (built from the process
//! description: the layer select from the server's collections), and runs it: the job is started
//! and polled through the app (the start through the Rust side, `analysis_execute`), and when it
//! succeeds its result is a layer of the map with a legend. The clusters the legend counts equal
//! those of the same process run synchronously over the API. Screenshot:
//! `target/screenshots/desktop/analysis.png`.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};

use crate::common::desktop::{shots, signed_in, until};

/// Sets a control of the panel as the user does (the form listens for `change`).
fn set(app: &crate::common::webdriver::Session, css: &str, value: &str) {
    let found = app.execute(
        "const e = document.querySelector(arguments[0]); if (!e) return false;
         if (e.tagName === 'SELECT' && ![...e.options].some(o => o.value === arguments[1])) return false;
         e.value = arguments[1]; e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); return true",
        json!([css, value]),
    );
    assert_eq!(found, json!(true), "`{value}` set in {css}");
}

#[test]
fn the_desktop_runs_dbscan_as_a_job_and_maps_its_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-map");
    app.find("[data-testid=analysis-toggle]", 90);
    assert_eq!(app.text("[data-testid=analysis-toggle]"), "分析");
    app.click("[data-testid=analysis-toggle]");
    until(60, "the process list", || {
        let ids = app.execute(
            "return [...document.querySelectorAll('[data-testid=process] option')].map(o => o.value)",
            json!([]),
        );
        ids.as_array().filter(|a| a.iter().any(|v| v == "dbscan")).cloned()
    });
    set(&app, "[data-testid=process]", "dbscan");
    until(60, "the dbscan form with the layers", || {
        let n = app.execute(
            "return document.querySelectorAll('[data-testid=process-form] input[data-input=eps], select[data-input=collection] option[value=manhole]').length",
            json!([]),
        );
        (n == json!(2)).then_some(())
    });
    set(&app, "select[data-input=collection]", "manhole");
    set(&app, "input[data-input=eps]", "60");
    set(&app, "input[data-input=min_samples]", "4");
    app.click("[data-testid=run]");
    let status = until(180, "the job to finish", || {
        let s = app.execute("return document.querySelector('[data-testid=job]').dataset.status || null", json!([]));
        s.as_str().filter(|s| matches!(*s, "successful" | "failed" | "dismissed")).map(str::to_owned)
    });
    assert_eq!(status, "successful", "{}", app.text("[data-testid=job]"));
    assert_eq!(app.execute("return document.querySelector('[data-testid=job-progress]').value", json!([])), json!(100));

    // The result on the map: a GeoJSON source with every manhole, its points drawn.
    let st = until(60, "the result layer", || {
        let st = app.execute("return window.shikongDesktop.analysis(true).then(p => p.state())", json!([]));
        (st["results"].as_array().is_some_and(|r| r.len() == 1) && !st["legend"].as_array().unwrap().is_empty())
            .then_some(st)
    });
    let result = &st["results"][0];
    assert_eq!((result["process"].as_str(), result["column"].as_str()), (Some("dbscan"), Some("cluster")), "{st:#}");
    let source = result["source"].as_str().unwrap().to_owned();
    let drawn = until(60, "the result drawn", || {
        let n = app.execute(
            "const m = window.shikongDesktop.state.map; const l = arguments[0] + '-point';
             return m.getLayer(l) ? m.queryRenderedFeatures({layers: [l]}).length : 0",
            json!([source]),
        );
        n.as_u64().filter(|n| *n > 0)
    });

    // The same process run synchronously over the API: the legend counts its clusters.
    let inputs = json!({"inputs": {"collection": "manhole", "eps": 60, "min_samples": 4}});
    let fc: Json = reqwest::blocking::Client::new()
        .post(server.url("/processes/dbscan/execution"))
        .bearer_auth(&wang)
        .json(&inputs)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let features = fc["features"].as_array().unwrap();
    assert_eq!(result["count"].as_u64(), Some(features.len() as u64), "{st:#}");
    let mut by_cluster: BTreeMap<i64, u64> = BTreeMap::new();
    for f in features {
        *by_cluster.entry(f["properties"]["cluster"].as_i64().unwrap()).or_default() += 1;
    }
    assert!(by_cluster.keys().any(|c| *c >= 0), "the demo's manholes make clusters at 60 m: {by_cluster:?}");
    let legend = st["legend"].as_array().unwrap();
    for row in legend {
        let value = row["value"].as_str().unwrap();
        let Ok(c) = value.parse::<i64>() else { continue }; // the "more clusters" row
        let n = by_cluster[&c];
        assert!(row["text"].as_str().unwrap().ends_with(&format!("({n})")), "cluster {c}: {row} vs {n}");
    }
    if by_cluster.contains_key(&-1) {
        assert!(legend.iter().any(|r| r["value"] == "-1" && r["text"].as_str().unwrap().starts_with("噪声")), "{st:#}");
    }
    println!("desktop dbscan: {} features, {} clusters, {drawn} drawn", features.len(), by_cluster.len());
    // The job is in the list of past jobs.
    let job = st["status"]["jobID"].as_str().unwrap().to_owned();
    until(30, "the past jobs", || {
        let n = app.execute(
            "return document.querySelectorAll(`[data-testid=jobs] li[data-job='${arguments[0]}'][data-status=successful]`).length",
            json!([job]),
        );
        (n == json!(1)).then_some(())
    });
    let png = app.screenshot(&shots().join("analysis.png"));
    assert!(png > 10_000, "analysis screenshot: {png} bytes");
}
