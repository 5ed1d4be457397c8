//! The desktop app's time slider, identify and compare (issue 16), as a user drives them: the
//! real `shikong-desktop` window under Xvfb through WebDriver, against `shikong serve` with the
//! demo data.
//!
//! `time_slider_identify_and_compare_follow_transaction_time`: three versions of one manhole
//! are written over the OGC API (the demo import, then two PATCHes by wang, their transaction
//! times read from the feature's history). Moving the slider to an instant between the second
//! and third version makes the map draw the second version (MapLibre's rendered features), and
//! identify read it too — both checked against the server's `items?as-of=`; 现在 brings the
//! third. Comparing an instant before the edits with now lists the feature as modified with the
//! changed fields' old and new values, and its row opens the history timeline (three versions,
//! by wang). Scrubbing is timed from slider input to the map's `idle`. Screenshots:
//! `target/screenshots/desktop/{time,compare,compare-swipe,history}.png`.

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::common::desktop::{shots, signed_in, until};

const NAME2: &str = "时间轴测试井盖（第二版）";
const NAME3: &str = "时间轴测试井盖（第三版）";

fn beijing(t: jiff::Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8))).strftime("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// `t` cut to whole seconds (towards the past).
fn floor_s(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.as_second()).unwrap()
}

fn instant(v: &Json) -> jiff::Timestamp {
    v.as_str().unwrap_or_else(|| panic!("not an instant: {v}")).parse().unwrap()
}

#[test]
fn time_slider_identify_and_compare_follow_transaction_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| -> Json { server.get_json(path, &wang) };

    // One manhole and its versions: v1 the demo's, v2 and v3 by wang, at least a second apart.
    let page = get("/collections/manhole/items?limit=1");
    let f = &page["features"][0];
    let id = f["id"].as_str().unwrap().to_owned();
    let at = [f["geometry"]["coordinates"][0].as_f64().unwrap(), f["geometry"]["coordinates"][1].as_f64().unwrap()];
    let name1 = f["properties"]["名称"].as_str().unwrap().to_owned();
    let item = format!("/collections/manhole/items/{id}");
    let patch = |body: Json| {
        std::thread::sleep(Duration::from_millis(2500));
        let r = http.patch(server.url(&item)).bearer_auth(&wang).json(&body).send().unwrap();
        assert_eq!(r.status(), 200, "PATCH {item}: {}", r.text().unwrap_or_default());
    };
    patch(json!({"properties": {"名称": NAME2}}));
    patch(json!({"properties": {"名称": NAME3, "埋深": 3.75}}));
    let history = get(&format!("{item}/history"));
    let times: Vec<jiff::Timestamp> =
        history["versions"].as_array().unwrap().iter().map(|v| instant(&v["tx"]["time"])).collect();
    assert_eq!(times.len(), 3, "{history}");
    let depth1 = history["versions"][2]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["attribute"] == "埋深")
        .map(|c| c["old"].clone())
        .unwrap_or_else(|| panic!("v3 changed 埋深: {history}"));
    // An instant between v2 and v3 (whole seconds: the slider's resolution), one between v1 and v2.
    let mid = floor_s(times[1]) + jiff::SignedDuration::from_secs(1);
    assert!(times[1] < mid && mid < times[2], "{times:?}");
    let before = floor_s(times[1]) - jiff::SignedDuration::from_secs(1);
    assert!(times[0] < before, "{times:?}");
    let (mid_s, before_s) = (beijing(mid), beijing(before));
    let q = |t: &str| t.replace('+', "%2B");
    // The server's answer at `mid`: the second version.
    let server_mid = get(&format!("{item}?as-of={}", q(&mid_s)));
    assert_eq!(server_mid["properties"]["名称"], NAME2, "{server_mid}");
    assert_eq!(server_mid["properties"]["version"], 2, "{server_mid}");
    let bbox = format!("{},{},{},{}", at[0] - 1e-4, at[1] - 1e-4, at[0] + 1e-4, at[1] + 1e-4);
    let around = get(&format!("/collections/manhole/items?bbox={bbox}&as-of={}", q(&mid_s)));
    let listed = around["features"].as_array().unwrap().iter().find(|x| x["id"] == id.as_str());
    assert_eq!(listed.map(|x| x["properties"]["名称"].clone()), Some(json!(NAME2)), "{around}");

    // The app: the map, at the feature.
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-map");
    app.wait_text("[data-testid=map-status]", 60, "map drawn", |t| t.starts_with("已显示"));
    app.find("input[type=range][data-testid=time-slider]", 30);
    assert_eq!(app.text("[data-testid=time-value]"), "现在");
    app.execute("window.shikongDesktop.state.map.jumpTo({center: arguments[0], zoom: 18})", json!([at]));
    // The slider spans the data's transaction time (whole seconds).
    let span = until(30, "the slider's range", || {
        let v = app.execute(
            "const s = document.querySelector('input[type=range][data-testid=time-slider]'); return [Number(s.min), Number(s.max)]",
            json!([]),
        );
        let (lo, hi) = (v[0].as_i64().unwrap(), v[1].as_i64().unwrap());
        (hi >= times[2].as_second()).then_some((lo, hi))
    });
    assert!(span.0 <= times[0].as_second(), "slider {span:?} vs versions {times:?}");

    // Reads the rendered manhole (the map's own tiles) once the map has drawn `want`.
    let rendered = |want: &str| -> Json {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let fs = app.execute("return window.shikongDesktop.renderedFeatures()", json!([]));
            let mine: Vec<&Json> =
                fs.as_array().unwrap().iter().filter(|x| x["layer"] == "manhole" && x["id"] == id.as_str()).collect();
            if let Some(f) = mine.iter().find(|x| x["properties"]["名称"] == want) {
                return (*f).clone();
            }
            // What the map holds, for the failure message.
            let held = app.execute(
                "const m = window.shikongDesktop.state.map; const tm = m.style.tileManagers.manhole;
                 return {tiles: window.shikongDesktop.tileUrls('manhole'), loaded: m.loaded(), asOf: m.skAsOf,
                   states: tm._inViewTiles.getAllIds().map((k) => tm._inViewTiles.getTileById(k).state)}",
                json!([]),
            );
            assert!(
                Instant::now() < deadline,
                "the map did not draw {want}: the manhole drawn as {mine:?}; the map holds {held}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    rendered(NAME3);

    // Move the slider, as a drag does (input events), to the instant between v2 and v3.
    app.execute(
        "const s = document.querySelector('input[type=range][data-testid=time-slider]');
         s.value = String(arguments[0]); s.dispatchEvent(new Event('input', {bubbles: true}));",
        json!([mid.as_second()]),
    );
    app.wait_text("[data-testid=time-value]", 10, "the slider's instant", |t| t == mid_s);
    until(10, "the app's instant (set on the next frame)", || {
        (app.execute("return window.shikongDesktop.asOf()", json!([])) == json!(mid_s)).then_some(())
    });
    let want = format!("as-of={}", mid_s.replace(':', "%3A").replace('+', "%2B"));
    until(20, "the manhole tiles at the slider's instant", || {
        let tiles = app.execute("return window.shikongDesktop.tileUrls('manhole')", json!([]));
        tiles[0].as_str().is_some_and(|t| t.contains(&want)).then_some(())
    });
    let drawn = rendered(NAME2);
    assert_eq!(drawn["properties"]["名称"], listed.unwrap()["properties"]["名称"], "the map agrees with items?as-of");
    assert_eq!(drawn["properties"]["code"], server_mid["properties"]["code"]);

    // Identify follows the slider: v2, read from the server at that instant.
    app.execute("window.shikongDesktop.identifyAt(arguments[0])", json!([at]));
    let shown =
        app.wait_text("[data-testid=identify] tr[data-field='名称'] td", 30, "identify at mid", |t| !t.is_empty());
    assert_eq!(shown, NAME2);
    let box_ = app.execute(
        "const b = document.querySelector('[data-testid=identify]'); return [b.dataset.version, b.dataset.asOf, b.dataset.id]",
        json!([]),
    );
    assert_eq!(box_, json!(["2", mid_s, id]), "identify read version 2 at the slider's instant");
    app.screenshot(&shots().join("time.png"));

    // 现在: the third version again (map and identify).
    app.click("[data-testid=time-now]");
    app.wait_text("[data-testid=time-value]", 10, "now", |t| t == "现在");
    rendered(NAME3);
    app.execute("window.shikongDesktop.identifyAt(arguments[0])", json!([at]));
    app.wait_text("[data-testid=identify] tr[data-field='名称'] td", 30, "identify now", |t| t == NAME3);

    // Scrubbing: slider input to the map's idle, over instants across the versions.
    app.execute(
        "const s = document.querySelector('input[type=range][data-testid=time-slider]');
         const m = window.shikongDesktop.state.map; const out = []; window.skScrub = null;
         (async () => { for (let i = 0; i < 20; i++) {
             const t0 = performance.now();
             s.value = String(arguments[0] + (i % 4)); s.dispatchEvent(new Event('input', {bubbles: true}));
             await new Promise((r) => requestAnimationFrame(() => r()));
             await window.shikongDesktop.mapIdle();
             out.push(performance.now() - t0); }
           window.skScrub = out; })();",
        json!([times[1].as_second() - 1]),
    );
    let mut scrub: Vec<f64> = until(120, "the scrub timings", || {
        let v = app.execute("return window.skScrub", json!([]));
        v.as_array().map(|a| a.iter().filter_map(Json::as_f64).collect())
    });
    scrub.sort_by(f64::total_cmp);
    let p95 = scrub[(scrub.len() * 95).div_ceil(100) - 1];
    println!(
        "time slider scrub over the demo data: median {:.0} ms, p95 {p95:.0} ms ({} moves)",
        scrub[scrub.len() / 2],
        scrub.len()
    );
    app.click("[data-testid=time-now]");

    // Compare: before the edits against now — the manhole modified, its fields old → new.
    app.click("#tab-compare");
    app.execute("window.shikongDesktop.compare({a: arguments[0], b: null, mode: 'side'})", json!([before_s]));
    let row = format!("[data-testid=changes] li.sk-change[data-layer=manhole][data-id='{id}']");
    app.find(&row, 60);
    let fields = app.execute(
        "return [...document.querySelectorAll(arguments[0] + ' [data-field]')].map((e) => [e.dataset.field, e.dataset.old, e.dataset.new])",
        json!([row]),
    );
    let fields: Vec<(String, String, String)> = fields
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f[0].as_str().unwrap().into(), f[1].as_str().unwrap().into(), f[2].as_str().unwrap().into()))
        .collect();
    assert!(fields.contains(&("名称".into(), name1.clone(), NAME3.into())), "{fields:?}");
    let d1 = depth1.as_f64().map_or_else(|| "—".to_owned(), |d| d.to_string());
    assert!(fields.iter().any(|(f, o, n)| f == "埋深" && *o == d1 && n == "3.75"), "{fields:?} (old {d1})");
    assert_eq!(app.execute("return document.querySelector(arguments[0]).dataset.kind", json!([row])), "modified");
    let rows = app.execute("return window.shikongDesktop.compareRows()", json!([]));
    let manholes: Vec<&Json> = rows.as_array().unwrap().iter().filter(|r| r["layer"] == "manhole").collect();
    assert_eq!(manholes.len(), 1, "only the edited manhole changed: {rows}");
    // Both maps drew (A before the edits, B now), side by side.
    until(60, "both compare maps drawn", || {
        let n = app.execute(
            "return window.shikongDesktop.compareMaps().map((m) => m.loaded() ? m.queryRenderedFeatures().length : 0)",
            json!([]),
        );
        let n: Vec<u64> = n.as_array().unwrap().iter().filter_map(Json::as_u64).collect();
        (n.len() == 2 && n.iter().all(|&c| c > 0)).then_some(())
    });
    app.screenshot(&shots().join("compare.png"));
    app.execute(
        "const s = document.querySelector('[data-testid=compare-mode]'); s.value = 'swipe'; s.dispatchEvent(new Event('change'));",
        json!([]),
    );
    let clip = app.execute("return getComputedStyle(document.querySelector('.sk-map-b')).clipPath", json!([]));
    assert!(clip.as_str().unwrap_or_default().starts_with("inset"), "swipe cuts map B: {clip}");
    app.screenshot(&shots().join("compare-swipe.png"));

    // The row opens the feature's history timeline: three versions, the last two by wang.
    app.click(&row);
    app.find("[data-testid=history] li[data-version='3']", 30);
    let versions = app.execute(
        "return [...document.querySelectorAll('[data-testid=history] li[data-version]')].map((l) => [l.dataset.version, l.dataset.op, l.querySelector('.sk-who').textContent, l.querySelector('[data-testid=history-time]').textContent])",
        json!([]),
    );
    let v = versions.as_array().unwrap();
    assert_eq!(v.len(), 3, "{versions}");
    assert_eq!((v[0][0].as_str(), v[0][1].as_str()), (Some("3"), Some("update")), "newest first: {versions}");
    assert!(
        v[0][2].as_str().unwrap().starts_with("wang") && v[1][2].as_str().unwrap().starts_with("wang"),
        "{versions}"
    );
    assert_eq!(instant(&v[0][3]), times[2], "{versions}");
    let v3 = app.text("[data-testid=history] li[data-version='3'] [data-field='名称']");
    assert!(v3.contains(NAME2) && v3.contains(NAME3), "{v3}");
    app.screenshot(&shots().join("history.png"));
    app.quit();

    for shot in ["time", "compare", "compare-swipe", "history"] {
        let len = std::fs::metadata(shots().join(format!("{shot}.png"))).map(|m| m.len()).unwrap_or(0);
        assert!(len > 10_000, "{shot}.png is suspiciously small ({len} bytes)");
    }
}
