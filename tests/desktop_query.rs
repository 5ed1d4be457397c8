//! The attribute table and the CQL2 query builder of the desktop app (issue 16): the real
//! `shikong-desktop` window under Xvfb, driven through WebDriver, against the real `shikong serve`
//! with the demo data.
//!
//! `table_sorts_pages_queries_selects_exports_and_reads_the_past`: signed in as office staff, the
//! user opens 属性表 on the manholes; the rows are the server's first page; clicking the 埋深 header
//! sorts ascending then descending (the rows are the server's `sortby` answers, the count comes
//! with them), 下一页/上一页 page by cursor. A query is built in the builder (a road, a depth
//! range, an installation date, a rectangle) and the CQL2 text it shows is the one sent: the rows
//! equal `GET …/items?filter=…`; a wrong number is refused with the condition named. Rows selected
//! in the table are highlighted on the map; a shift-drag on the map selects the query's features
//! in that box (what `bbox=&filter=` answers). The query's result goes to GeoJSON (its features
//! equal the server's answer), the selection to CSV (UTF-8 BOM, one row each) and the result to
//! GeoPackage. Finally a feature is renamed on the server: the table as of an instant before the
//! edit shows the old name, and at "now" the new one. Screenshots: `table.png`, `query.png`.
//!
//! `division_query_picks_hongshan_counts_and_exports`: the builder's 行政区 choice (洪山区 from the
//! `district` layer) sends `intersects=district/420111`; the table's count and the export equal
//! the server's answer to that request. Screenshot: `query-division.png`.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value as Json, json};

use crate::common::desktop::{shots, signed_in, until};
use crate::common::s;
use crate::common::webdriver::Session;

/// Percent-encoding of a query value (every byte but unreserved ones).
fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ids(fc: &Json) -> Vec<String> {
    fc["features"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
}

fn js(app: &Session, script: &str) -> Json {
    app.execute(script, json!([]))
}

/// The ids on screen once the table is idle and shows `want` (or any page when `None`).
fn rows_when(app: &Session, what: &str, want: impl Fn(&[String]) -> bool) -> Vec<String> {
    until(60, what, || {
        let busy = js(app, "return window.shikongDesktop.table.busy()");
        if busy != json!(false) {
            return None;
        }
        let v = js(app, "return window.shikongDesktop.table.rowIds()");
        let ids: Vec<String> = v.as_array()?.iter().map(|x| x.as_str().unwrap_or_default().to_owned()).collect();
        want(&ids).then_some(ids)
    })
}

/// Scrolls `css` into view (the builder's side panel scrolls), as the user does before using it.
fn reveal(app: &Session, css: &str) {
    app.execute("document.querySelector(arguments[0]).scrollIntoView({block: 'center'})", json!([css]));
}

/// Picks `value` in the select `css` as the user does (the view listens for `change`).
fn choose(app: &Session, css: &str, value: &str) {
    let found = app.execute(
        "const s = document.querySelector(arguments[0]); if (!s || ![...s.options].some(o => o.value === arguments[1])) return false;
         s.value = arguments[1]; s.dispatchEvent(new Event('change')); return true",
        json!([css, value]),
    );
    assert_eq!(found, json!(true), "`{value}` is a choice of {css}");
}

#[test]
fn table_sorts_pages_queries_selects_exports_and_reads_the_past() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let http = reqwest::blocking::Client::new();
    let get = |path: &str| -> Json { server.get_json(path, &wang) };
    let out = dir.path().join("导出");
    std::fs::create_dir_all(&out).unwrap();
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-table");

    // The first page: the server's first page in id order (50 rows).
    let first = get("/collections/manhole/items?limit=50");
    let want = ids(&first);
    rows_when(&app, "the first page", |r| r == want);
    assert_eq!(js(&app, "return document.getElementById('tb-layer').value"), "manhole");
    let info = app.text("[data-testid=tb-pageinfo]");
    assert!(info.contains("第 1 页") && info.contains("本页 50 条"), "{info}");
    let ms = js(&app, "return window.shikongDesktop.table.page().ms").as_f64().unwrap();
    eprintln!("table page (50 rows of 2000): {ms:.1} ms round trip");
    let shot = app.screenshot(&shots().join("table.png"));
    assert!(shot > 10_000, "table screenshot: {shot} bytes");

    let all_count = ids(&get("/collections/manhole/items?limit=10000")).len();
    // Sorting by a column: ascending, then descending; the count comes with a sorted answer.
    app.click("#tb-table th[data-field='埋深']");
    let asc = get(&format!("/collections/manhole/items?limit=50&sortby={}", enc("+埋深")));
    rows_when(&app, "ascending 埋深", |r| r == ids(&asc));
    let depths = js(&app, "return window.shikongDesktop.table.column('埋深')");
    // Null first (ascending), then the numbers in order.
    let d: Vec<Option<f64>> = depths.as_array().unwrap().iter().map(|v| v.as_str().unwrap().parse().ok()).collect();
    assert!(d.windows(2).all(|w| w[0] <= w[1]), "ascending: {d:?}");
    let total = asc["numberMatched"].as_u64().expect("a sorted answer is counted");
    assert_eq!(total as usize, all_count);
    let info = app.text("[data-testid=tb-pageinfo]");
    assert!(info.contains(&format!("共 {total} 条")), "{info}");
    app.click("#tb-table th[data-field='埋深']");
    let desc = get(&format!("/collections/manhole/items?limit=50&sortby={}", enc("-埋深")));
    rows_when(&app, "descending 埋深", |r| r == ids(&desc));

    // Paging by cursor: the next page is the server's `next` page; back again.
    let next_href = desc["links"].as_array().unwrap().iter().find(|l| l["rel"] == "next").unwrap()["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let page2 = get(next_href.strip_prefix(&server.base).unwrap());
    app.click("[data-testid=tb-next]");
    rows_when(&app, "page 2", |r| r == ids(&page2));
    assert!(app.text("[data-testid=tb-pageinfo]").contains("第 2 页"));
    app.click("[data-testid=tb-prev]");
    rows_when(&app, "page 1 again", |r| r == ids(&desc));
    app.click("#tb-table th[data-field='埋深']");
    rows_when(&app, "the id order again", |r| r == want);

    // A wrong value is refused by the builder, naming the condition.
    app.click("[data-testid=qb-add]");
    choose(&app, "#qb-rows .qb-row:nth-child(1) .qb-field", "埋深");
    choose(&app, "#qb-rows .qb-row:nth-child(1) .qb-op", ">");
    app.type_into("#qb-rows .qb-row:nth-child(1) .qb-value", "深");
    app.click("[data-testid=qb-run]");
    let e = app.wait_text("[data-testid=qb-error]", 30, "builder error", |t| !t.is_empty());
    assert!(e.contains("条件 1 (埋深)") && e.contains("`深` is not a number"), "{e}");

    // A query built in the builder: depth range AND a road AND installed since 2010 AND a rectangle.
    choose(&app, "#qb-rows .qb-row:nth-child(1) .qb-op", "BETWEEN");
    let vals = "#qb-rows .qb-row:nth-child(1) .qb-value";
    app.type_into(&format!("{vals}:nth-of-type(1)"), "1");
    app.type_into(&format!("{vals}:nth-of-type(2)"), "4.5");
    app.click("[data-testid=qb-add]");
    choose(&app, "#qb-rows .qb-row:nth-child(2) .qb-field", "所属道路");
    choose(&app, "#qb-rows .qb-row:nth-child(2) .qb-op", "IN");
    app.type_into("#qb-rows .qb-row:nth-child(2) .qb-value", "珞喻路, 关山大道");
    choose(&app, "[data-testid=qb-time-field]", "安装日期");
    app.type_into("[data-testid=qb-time-from]", "2010-01-01");
    // The rectangle: the middle of the manholes' extent (as a drag on the map sets it).
    let all = get("/collections/manhole/items?limit=10000");
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for f in all["features"].as_array().unwrap() {
        let c = &f["geometry"]["coordinates"];
        let (x, y) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    let (w, h) = (x1 - x0, y1 - y0);
    let rect = [x0 + w * 0.15, y0 + h * 0.15, x1 - w * 0.15, y1 - h * 0.15];
    app.execute("window.shikongDesktop.table.setArea(arguments[0])", json!([rect]));
    assert!(app.text("[data-testid=qb-area]").starts_with("矩形"));
    app.click("[data-testid=qb-run]");
    let cql = app.wait_text("[data-testid=qb-cql]", 30, "the CQL2 text", |t| t.contains("S_INTERSECTS"));
    assert!(
        cql.starts_with("\"埋深\" BETWEEN 1 AND 4.5 AND \"所属道路\" IN ('珞喻路', '关山大道') AND S_INTERSECTS(\"geometry\", POLYGON((")
            && cql.ends_with("AND \"安装日期\" >= DATE('2010-01-01')"),
        "{cql}"
    );
    assert_eq!(app.text("[data-testid=qb-error]"), "");
    let filter = js(&app, "return window.shikongDesktop.table.filter()").as_str().unwrap().to_owned();
    assert_eq!(filter, cql, "the text shown is the text sent");
    let answer = get(&format!("/collections/manhole/items?limit=10000&filter={}", enc(&filter)));
    let matched = ids(&answer);
    assert!(matched.len() > 10 && matched.len() < 400, "a real selection: {}", matched.len());
    let on_screen = rows_when(&app, "the query's rows", |r| r.len() == matched.len().min(50));
    assert_eq!(on_screen, matched[..matched.len().min(50)], "the rows are the server's answer to the filter");
    for f in answer["features"].as_array().unwrap() {
        let p = &f["properties"];
        let depth = p["埋深"].as_f64().unwrap();
        assert!((1.0..=4.5).contains(&depth), "{p}");
        assert!(["珞喻路", "关山大道"].contains(&p["所属道路"].as_str().unwrap()), "{p}");
        assert!(p["安装日期"].as_str().unwrap() >= "2010-01-01", "{p}");
    }

    // Rows selected in the table are highlighted on the map.
    app.click("#tb-table tbody tr:nth-child(1) td.tb-check");
    app.click("#tb-table tbody tr:nth-child(2) td.tb-check");
    let picked: BTreeSet<String> = on_screen[..2].iter().cloned().collect();
    let sel = js(&app, "return window.shikongDesktop.table.selection()");
    assert_eq!(serde_json::from_value::<BTreeSet<String>>(sel).unwrap(), picked);
    assert!(app.text("[data-testid=tb-sel]").contains("已选 2 个"));
    let query_shot = app.screenshot(&shots().join("query.png"));
    assert!(query_shot > 10_000, "query screenshot: {query_shot} bytes");
    app.click("#tb-show-map");
    let lit = until(90, "the highlight on the map", || {
        let v = js(&app, "return window.shikongDesktop.table.highlighted()");
        serde_json::from_value::<BTreeSet<String>>(v).ok().filter(|s| s.len() == 2)
    });
    assert_eq!(lit, picked, "the selected rows are highlighted");

    // A shift-drag on the map selects the query's features in the box: what bbox + filter answers.
    let c = (rect[0] + rect[2]) / 2.0;
    let m = (rect[1] + rect[3]) / 2.0;
    let (bw, bh) = (w * 0.2, h * 0.2);
    js(&app, &format!("window.shikongDesktop.jumpTo({{center: [{c}, {m}], zoom: 13}})"));
    std::thread::sleep(Duration::from_millis(500));
    app.execute(
        "window.shikongDesktop.table.shiftDrag(arguments[0], arguments[1])",
        json!([[c - bw, m - bh], [c + bw, m + bh]]),
    );
    let sel = until(30, "the box selection", || {
        let v = js(&app, "return window.shikongDesktop.table.selection()");
        serde_json::from_value::<BTreeSet<String>>(v).ok().filter(|s| *s != picked)
    });
    // The box as the map unprojected it: read back what was asked, then ask the server the same.
    let boxed = get(&format!(
        "/collections/manhole/items?limit=1000&filter={}&bbox={},{},{},{}",
        enc(&filter),
        c - bw * 1.05,
        m - bh * 1.05,
        c + bw * 1.05,
        m + bh * 1.05
    ));
    let inner = get(&format!(
        "/collections/manhole/items?limit=1000&filter={}&bbox={},{},{},{}",
        enc(&filter),
        c - bw * 0.95,
        m - bh * 0.95,
        c + bw * 0.95,
        m + bh * 0.95
    ));
    let outer: BTreeSet<String> = ids(&boxed).into_iter().collect();
    let inner: BTreeSet<String> = ids(&inner).into_iter().collect();
    assert!(!sel.is_empty() && sel.is_subset(&outer) && inner.is_subset(&sel), "box selection {sel:?}");
    let lit = until(30, "the box selection highlighted", || {
        let v = js(&app, "return window.shikongDesktop.table.highlighted()");
        serde_json::from_value::<BTreeSet<String>>(v).ok().filter(|s| *s == sel)
    });
    assert_eq!(lit.len(), sel.len());
    app.click("#tab-table");

    // Export: the whole query result as GeoJSON — its features are the server's answer.
    let geojson = out.join("井盖查询.geojson");
    reveal(&app, "[data-testid=ex-path]");
    app.type_into("[data-testid=ex-path]", s(&geojson));
    reveal(&app, "[data-testid=ex-run]");
    app.click("[data-testid=ex-run]");
    let status =
        app.wait_text("[data-testid=ex-status]", 90, "export", |t| t.starts_with("已导出") || t.contains("失败"));
    assert!(status.starts_with(&format!("已导出 {} 个要素", matched.len())), "{status}");
    let written: Json = serde_json::from_slice(&std::fs::read(&geojson).unwrap()).unwrap();
    assert_eq!(written["features"], answer["features"], "the exported features are the server's answer");

    // The selection as CSV: a BOM, a header, one row per selected feature.
    choose(&app, "[data-testid=ex-format]", "csv");
    reveal(&app, "[data-testid=ex-scope-sel]");
    app.click("[data-testid=ex-scope-sel]");
    let csv_path = out.join("选中.csv");
    reveal(&app, "[data-testid=ex-path]");
    app.type_into("[data-testid=ex-path]", s(&csv_path));
    reveal(&app, "[data-testid=ex-run]");
    app.click("[data-testid=ex-run]");
    let status = app.wait_text("[data-testid=ex-status]", 90, "CSV export", |t| t.contains("选中.csv"));
    assert!(status.starts_with(&format!("已导出 {} 个要素", sel.len())), "{status}");
    let csv = std::fs::read(&csv_path).unwrap();
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "CSV starts with a UTF-8 BOM");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(header.starts_with("entity_id,code,") && header.ends_with("经度,纬度,wkt"), "{header}");
    let csv_ids: BTreeSet<String> = lines.map(|l| l.split(',').next().unwrap().to_owned()).collect();
    assert_eq!(csv_ids, sel, "one row per selected feature");

    // The query result as GeoPackage.
    choose(&app, "[data-testid=ex-format]", "gpkg");
    reveal(&app, "[data-testid=ex-scope-query]");
    app.click("[data-testid=ex-scope-query]");
    let gpkg = out.join("井盖查询.gpkg");
    reveal(&app, "[data-testid=ex-path]");
    app.type_into("[data-testid=ex-path]", s(&gpkg));
    reveal(&app, "[data-testid=ex-run]");
    app.click("[data-testid=ex-run]");
    app.wait_text("[data-testid=ex-status]", 90, "GeoPackage export", |t| t.contains(".gpkg"));
    let conn = rusqlite::Connection::open(&gpkg).unwrap();
    let (n, nulls): (i64, i64) =
        conn.query_row("SELECT count(*), sum(geom IS NULL) FROM manhole", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
    assert_eq!((n as usize, nulls), (matched.len(), 0));

    // The past: rename one feature on the server; the table as of before the edit shows the old
    // name, at "now" the new one.
    reveal(&app, "#qb-reset");
    app.click("#qb-reset");
    let first_id = want[0].clone();
    rows_when(&app, "the id order after reset", |r| r.first() == Some(&first_id));
    let old = first["features"][0]["properties"]["名称"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1200));
    let before = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::fixed(jiff::tz::offset(8)))
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
        .to_string();
    std::thread::sleep(Duration::from_millis(1200));
    let r = http
        .patch(server.url(&format!("/collections/manhole/items/{first_id}")))
        .bearer_auth(&wang)
        .json(&json!({"properties": {"名称": "改名后的井盖"}}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let name_now = || {
        let ids = js(&app, "return window.shikongDesktop.table.rowIds()");
        let names = js(&app, "return window.shikongDesktop.table.column('名称')");
        let i = ids.as_array().unwrap().iter().position(|x| x == first_id.as_str())?;
        names[i].as_str().map(str::to_owned)
    };
    // The table reads again (the slider set to "now"): the new name.
    app.execute("window.shikongDesktop.setAsOf(null)", json!([]));
    until(60, "the new value", || name_now().filter(|n| n == "改名后的井盖"));
    assert_eq!(app.text("[data-testid=tb-asof]"), "当前数据");
    // The slider before the edit: the old name, without any click in the table.
    app.execute("window.shikongDesktop.setAsOf(arguments[0])", json!([before]));
    let shown = until(60, "the past value", || name_now().filter(|n| *n == old));
    assert_eq!(shown, old);
    let label = app.text("[data-testid=tb-asof]");
    assert!(label.ends_with("时的数据"), "{label}");
    let past = get(&format!("/collections/manhole/items?limit=50&as-of={}", enc(&before)));
    assert_eq!(past["features"][0]["properties"]["名称"], old.as_str(), "the server agrees");
    app.execute("window.shikongDesktop.setAsOf(null)", json!([]));
    until(60, "the current value", || name_now().filter(|n| n == "改名后的井盖"));
}

/// The builder's 行政区 choice: the districts of the `district` layer are offered by name and code;
/// picking 洪山区 sends `intersects=district/420111` (shown in the query line after the CQL2), the
/// table's count is the server's count for that request, and the export pages the same query.
#[test]
fn division_query_picks_hongshan_counts_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let get = |path: &str| -> Json { server.get_json(path, &wang) };
    let (_driver, app) = signed_in(dir.path(), &server.base, "wang", "办公室密码123");
    app.click("#tab-table");
    let first = get("/collections/manhole/items?limit=50");
    rows_when(&app, "the first page", |r| r == ids(&first));

    // The 13 districts, by name and code, read through the app.
    let divisions = until(60, "the districts", || {
        let v = js(&app, "return window.shikongDesktop.table.divisions()");
        v.as_array().filter(|a| !a.is_empty()).cloned()
    });
    assert_eq!(divisions.len(), 13, "{divisions:?}");
    assert!(divisions.iter().any(|d| d["code"] == "420111" && d["name"] == "洪山区"), "{divisions:?}");

    // The server's answer for the division (counted by a sorted request; every feature listed too).
    let all = get("/collections/manhole/items?limit=10000&intersects=district%2F420111");
    let n = all["features"].as_array().unwrap().len();
    let counted =
        get(&format!("/collections/manhole/items?limit=1&sortby={}&intersects=district%2F420111", enc("+埋深")));
    assert_eq!(counted["numberMatched"].as_u64(), Some(n as u64));
    let total = get("/collections/manhole/items?limit=10000")["features"].as_array().unwrap().len();
    assert!(n > 0 && n < total, "洪山区 holds {n} of {total} manholes");

    // A condition and the district: the query line shows both; the rows are the server's.
    app.click("[data-testid=qb-add]");
    let row = "#qb-rows .qb-row:nth-child(1)";
    choose(&app, &format!("{row} .qb-field"), "埋深");
    choose(&app, &format!("{row} .qb-op"), ">=");
    app.type_into(&format!("{row} .qb-value"), "0");
    reveal(&app, "[data-testid=qb-division]");
    choose(&app, "[data-testid=qb-division]", "420111");
    reveal(&app, "[data-testid=qb-run]");
    app.click("[data-testid=qb-run]");
    let sent = until(30, "the query line", || {
        let t = app.text("[data-testid=qb-cql]");
        t.contains("intersects").then_some(t)
    });
    let cql = js(&app, "return window.shikongDesktop.table.filter()");
    let cql = cql.as_str().expect("a CQL2 text").to_owned();
    assert_eq!(sent, format!("{cql} AND intersects=district/420111"));
    let page1 = get(&format!("/collections/manhole/items?limit=50&filter={}&intersects=district%2F420111", enc(&cql)));
    rows_when(&app, "the division's first page", |r| r == ids(&page1));
    let request = js(&app, "return window.shikongDesktop.table.page().request");
    assert!(request.as_str().unwrap().contains("intersects=district%2F420111"), "{request}");

    // The division alone (the condition removed): the query line is just `intersects=…`.
    app.click(&format!("{row} .qb-del"));
    reveal(&app, "[data-testid=qb-run]");
    app.click("[data-testid=qb-run]");
    until(30, "the division-only query line", || {
        (app.text("[data-testid=qb-cql]") == "intersects=district/420111").then_some(())
    });
    let page1 = get("/collections/manhole/items?limit=50&intersects=district%2F420111");
    rows_when(&app, "the division-only first page", |r| r == ids(&page1));

    // Sorted, the table shows the count: the server's numberMatched for the division.
    app.click("#tb-table th[data-field='埋深']");
    let matched = until(60, "the counted page", || {
        let v = js(
            &app,
            "return window.shikongDesktop.table.busy() ? null : (window.shikongDesktop.table.page() || {}).matched",
        );
        v.as_u64()
    });
    assert_eq!(matched as usize, n, "the table's count is the server's for intersects=district/420111");
    let info = app.text("[data-testid=tb-pageinfo]");
    assert!(info.contains(&format!("共 {n} 条")), "{info}");
    app.screenshot(&shots().join("query-division.png"));

    // The export pages the same query: every feature of the division.
    let out = dir.path().join("洪山区井盖.geojson");
    choose(&app, "[data-testid=ex-format]", "geojson");
    reveal(&app, "[data-testid=ex-path]");
    app.type_into("[data-testid=ex-path]", s(&out));
    reveal(&app, "[data-testid=ex-run]");
    app.click("[data-testid=ex-run]");
    let status =
        app.wait_text("[data-testid=ex-status]", 90, "export", |t| t.starts_with("已导出") || t.contains("失败"));
    assert!(status.starts_with(&format!("已导出 {n} 个要素")), "{status}");
    let written: Json = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let got: BTreeSet<String> = ids(&written).into_iter().collect();
    let want: BTreeSet<String> = ids(&all).into_iter().collect();
    assert_eq!(got, want, "the exported features are the division's");
    eprintln!("洪山区: {n} of {total} manholes; table count {matched}");
}
