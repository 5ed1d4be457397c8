//! Statistics in the desktop app (issue 16): the real `shikong-desktop` window under Xvfb, driven
//! through WebDriver, against the real `shikong serve` with the demo data and a layer of division
//! polygons (街道, imported with `shikong import` beside the running server).
//!
//! `statistics_by_class_and_division_export_and_follow_the_slider`: signed in as office staff, the
//! user opens 统计 on the manholes, grouped by 状态 (a code list) and then by division; each time
//! the chart's numbers (read from the drawn SVG) equal the server's answer and counts made here from
//! `GET …/items` (by the feature's status; by which rectangle holds its point). The table goes to
//! XLSX (read back with calamine) and CSV (UTF-8 with a BOM), the chart to PNG; the choropleth on
//! the map carries the same values per division with a legend. Then three covers are edited and one
//! deleted: counting again shows the change, and moving the time slider to before the edit brings
//! back the earlier counts. Screenshots: `target/screenshots/desktop/stats.png`, `choropleth.png`.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::common::desktop::{shots, signed_in, until};
use crate::common::{ok, s};

/// `(key, value)` of each datum the chart drew.
fn chart(app: &crate::common::webdriver::Session) -> BTreeMap<String, f64> {
    let v = app.execute("return window.shikongDesktop.stats.chart()", json!([]));
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| (d["key"].as_str().unwrap().to_owned(), d["value"].as_f64().unwrap()))
        .collect()
}

/// `(key, count)` of each group of an answer (`""` for features without a value, as the chart).
fn answer_counts(a: &Json) -> BTreeMap<String, f64> {
    a["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["key"][0].as_str().unwrap_or("").to_owned(), g["count"].as_f64().unwrap()))
        .collect()
}

/// Picks `value` in the select `id` as the user does (the view listens for `change`).
fn choose(app: &crate::common::webdriver::Session, id: &str, value: &str) {
    let found = app.execute(
        "const s = document.getElementById(arguments[0]); if (![...s.options].some(o => o.value === arguments[1])) return false;
         s.value = arguments[1]; s.dispatchEvent(new Event('change')); return true",
        json!([id, value]),
    );
    assert_eq!(found, json!(true), "`{value}` is a choice of #{id}");
}

/// Waits for the view's answer to be grouped by `group` as of `as_of`; returns it.
fn answer_for(app: &crate::common::webdriver::Session, group: &str, as_of: Option<&str>) -> Json {
    until(60, &format!("statistics by {group}"), || {
        let a = app.execute("return window.shikongDesktop.stats.answer()", json!([]));
        let grouped = a["group_by"] == json!([group]);
        let at = a["as_of"].as_str().map(|t| t.parse::<jiff::Timestamp>().unwrap());
        let at_ok = at == as_of.map(|t| t.parse::<jiff::Timestamp>().unwrap());
        (grouped && at_ok).then_some(a)
    })
}

#[test]
fn statistics_by_class_and_division_export_and_follow_the_slider() {
    let dir = tempfile::tempdir().unwrap();
    let (data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| -> Json { server.get_json(path, &wang) };
    // Every manhole, counted here: (code, x, y, 状态).
    let manholes = || {
        let fc = get("/collections/manhole/items?limit=10000");
        assert!(fc["links"].as_array().unwrap().iter().all(|l| l["rel"] != "next"), "one page holds them all");
        fc["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                let c = &f["geometry"]["coordinates"];
                let status = f["properties"]["状态"].as_str().unwrap_or("").to_owned();
                (
                    f["properties"]["code"].as_str().unwrap().to_owned(),
                    c[0].as_f64().unwrap(),
                    c[1].as_f64().unwrap(),
                    status,
                )
            })
            .collect::<Vec<_>>()
    };
    let rows = manholes();
    assert!(rows.len() > 1900, "{}", rows.len());

    // Division polygons: the manholes' extent cut into a west and an east street.
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for r in &rows {
        (x0, y0, x1, y1) = (x0.min(r.1), y0.min(r.2), x1.max(r.1), y1.max(r.2));
    }
    let mid = (x0 + x1) / 2.0;
    let rect = |code: &str, name: &str, a: f64, c: f64| {
        json!({"type": "Feature", "properties": {"code": code, "名称": name},
            "geometry": {"type": "Polygon", "coordinates": [[[a, y0 - 0.01], [c, y0 - 0.01], [c, y1 + 0.01], [a, y1 + 0.01], [a, y0 - 0.01]]]}})
    };
    let streets = dir.path().join("streets.geojson");
    let fc = json!({"type": "FeatureCollection", "features": [
        rect("420111-JD-01", "珞南街道", x0 - 0.01, mid),
        rect("420111-JD-02", "关山街道", mid, x1 + 0.01),
    ]});
    std::fs::write(&streets, fc.to_string()).unwrap();
    ok(&["import", "--data", &data, "--layer", "street_area", "--title", "街道", s(&streets)]);
    assert_eq!(get("/collections/street_area")["id"], "street_area", "the running server sees the new layer");

    let out = dir.path().join("统计导出");
    std::fs::create_dir_all(&out).unwrap();
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-stats");
    app.wait_text("[data-testid=stats-status]", 90, "first count", |t| t.starts_with("共 "));

    // By 状态 (the first field with a code list is the default; picked explicitly anyway).
    let layer = app.execute("return document.getElementById('stats-layer').value", json!([]));
    assert_eq!(layer, "manhole", "the manholes are counted first");
    choose(&app, "stats-group", "状态");
    let a = answer_for(&app, "状态", None);
    let server_answer = get("/collections/manhole/stats?group-by=%E7%8A%B6%E6%80%81");
    assert_eq!(answer_counts(&a), answer_counts(&server_answer), "the view shows the server's answer");
    let mut mine: BTreeMap<String, f64> = BTreeMap::new();
    for r in &rows {
        *mine.entry(r.3.clone()).or_default() += 1.0;
    }
    assert_eq!(chart(&app), mine, "the bar chart's numbers are the counts of the items");
    let before = mine.clone();
    let total = app.text("[data-testid=stats-total]");
    assert_eq!(total, rows.len().to_string());

    // By division.
    choose(&app, "stats-divisions", "street_area");
    choose(&app, "stats-group", "division");
    let a = answer_for(&app, "division", None);
    let server_answer = get("/collections/manhole/stats?group-by=division&divisions=street_area");
    assert_eq!(answer_counts(&a), answer_counts(&server_answer));
    let west = rows.iter().filter(|r| r.1 <= mid).count() as f64;
    let east = rows.iter().filter(|r| r.1 >= mid).count() as f64 - rows.iter().filter(|r| r.1 == mid).count() as f64;
    let by_division: BTreeMap<String, f64> =
        [("420111-JD-01".to_owned(), west), ("420111-JD-02".to_owned(), east)].into_iter().collect();
    assert_eq!(chart(&app), by_division, "each manhole counted in the street holding it");
    let labels = app.execute("return window.shikongDesktop.stats.chart().map(d => d.label)", json!([]));
    assert_eq!(labels, json!(["珞南街道", "关山街道"]));
    // The pie and line charts draw the same numbers.
    for kind in ["pie", "line", "bar"] {
        choose(&app, "stats-chart-kind", kind);
        assert_eq!(chart(&app), by_division, "{kind} chart");
    }
    let png_shot = app.screenshot(&shots().join("stats.png"));
    assert!(png_shot > 10_000, "stats screenshot: {png_shot} bytes");

    // Exports: XLSX and CSV of the table, PNG of the chart.
    let stem = out.join("井盖按街道");
    app.type_into("[data-testid=stats-path]", s(&stem));
    for (button, ext) in [("#stats-xlsx", "xlsx"), ("#stats-csv", "csv"), ("#stats-png", "png")] {
        app.click(button);
        let status = app.wait_text("[data-testid=stats-status]", 60, "saved", |t| t.contains(&format!(".{ext}")));
        assert!(status.starts_with("已保存："), "{status}");
        assert_eq!(app.text("[data-testid=stats-error]"), "");
    }
    let csv = std::fs::read(stem.with_extension("csv")).unwrap();
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "CSV starts with a UTF-8 BOM");
    let csv = String::from_utf8(csv[3..].to_vec()).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "行政区划代码,行政区划,数量");
    assert_eq!(lines[1], format!("420111-JD-01,珞南街道,{west}"));
    assert_eq!(lines[2], format!("420111-JD-02,关山街道,{east}"));
    assert_eq!(lines[3], format!("合计,,{}", rows.len()));
    use calamine::Reader as _;
    let mut book: calamine::Xlsx<_> = calamine::open_workbook(stem.with_extension("xlsx")).unwrap();
    let sheet = book.worksheet_range("统计").unwrap();
    let cell = |r: u32, c: u32| sheet.get_value((r, c)).map(|v| v.to_string()).unwrap_or_default();
    assert_eq!((cell(0, 0), cell(0, 1), cell(0, 2)), ("行政区划代码".into(), "行政区划".into(), "数量".into()));
    assert_eq!((cell(1, 1), cell(1, 2)), ("珞南街道".into(), west.to_string()));
    assert_eq!((cell(2, 1), cell(2, 2)), ("关山街道".into(), east.to_string()));
    assert_eq!((cell(3, 0), cell(3, 2)), ("合计".into(), rows.len().to_string()));
    let png = std::fs::read(stem.with_extension("png")).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 5_000, "chart PNG: {} bytes", png.len());
    let be = |i: usize| u32::from_be_bytes([png[i], png[i + 1], png[i + 2], png[i + 3]]);
    assert_eq!((be(16), be(20)), (1520, 840), "the chart at twice its size");

    // The choropleth: the same value per street, coloured, with a legend.
    app.click("[data-testid=stats-map]");
    app.wait_text("[data-testid=stats-legend]", 90, "legend", |t| t.contains("数量"));
    let fills = until(60, "choropleth source", || {
        let v = app.execute("return window.shikongDesktop.stats.choropleth()", json!([]));
        v.as_array().filter(|a| a.len() == 2).cloned()
    });
    let on_map: BTreeMap<String, f64> =
        fills.iter().map(|p| (p["key"].as_str().unwrap().to_owned(), p["value"].as_f64().unwrap())).collect();
    assert_eq!(on_map, by_division);
    assert_ne!(fills[0]["fill"], fills[1]["fill"], "different values, different colours: {fills:?}");
    until(60, "choropleth drawn", || {
        let n = app.execute(
            "const m = window.shikongDesktop.state.map; return m.getLayer('stats-choropleth-fill') ? m.queryRenderedFeatures({layers: ['stats-choropleth-fill']}).length : 0",
            json!([]),
        );
        (n.as_u64().unwrap_or(0) > 0).then_some(())
    });
    let png_shot = app.screenshot(&shots().join("choropleth.png"));
    assert!(png_shot > 10_000, "choropleth screenshot: {png_shot} bytes");

    // An edit, then the slider before it.
    std::thread::sleep(Duration::from_millis(1200));
    let edit_at = jiff::Timestamp::now();
    let edit_at_s = edit_at
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string();
    std::thread::sleep(Duration::from_millis(1200));
    let mut edited = Vec::new();
    for r in rows.iter().filter(|r| r.3 == "1").take(3) {
        let item = format!("/collections/manhole/items/{}", r.0);
        let resp = http
            .patch(server.url(&item))
            .bearer_auth(&wang)
            .json(&json!({"properties": {"状态": "4"}}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 200, "PATCH {item}");
        edited.push(r.0.clone());
    }
    let gone = rows.iter().find(|r| r.3 == "1" && !edited.contains(&r.0)).unwrap();
    let resp =
        http.delete(server.url(&format!("/collections/manhole/items/{}", gone.0))).bearer_auth(&wang).send().unwrap();
    assert_eq!(resp.status(), 204, "DELETE {}", gone.0);

    app.click("#tab-stats");
    choose(&app, "stats-group", "状态");
    let a = answer_for(&app, "状态", None);
    let now_counts = answer_counts(&a);
    let mut expected = before.clone();
    *expected.get_mut("1").unwrap() -= 4.0;
    *expected.entry("4".into()).or_default() += 3.0;
    assert_eq!(now_counts, expected, "three covers now 沉降, one deleted");
    let mut mine: BTreeMap<String, f64> = BTreeMap::new();
    for r in manholes() {
        *mine.entry(r.3).or_default() += 1.0;
    }
    assert_eq!(chart(&app), mine, "the chart agrees with the items after the edit");

    // The slider before the edit: the statistics follow (no click).
    app.execute("window.shikongDesktop.setAsOf(arguments[0])", json!([edit_at_s]));
    let a = answer_for(&app, "状态", Some(&edit_at_s));
    assert_eq!(answer_counts(&a), before, "as of before the edit: the counts from before");
    until(30, "chart redrawn as of", || (chart(&app) == before).then_some(()));
    let shown = app.text("[data-testid=stats-asof]");
    assert!(shown.starts_with("数据时点：") && !shown.contains("当前"), "{shown}");
    let asof_answer = get(&format!(
        "/collections/manhole/stats?group-by=%E7%8A%B6%E6%80%81&as-of={}",
        shikong_protocol_free_encode(&edit_at_s)
    ));
    assert_eq!(answer_counts(&asof_answer), before, "the server agrees");
    app.quit();
}

/// Percent-encodes what a query value may not hold as it is (`+`, `:`).
fn shikong_protocol_free_encode(v: &str) -> String {
    v.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}
