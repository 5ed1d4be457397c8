//! The desktop's own replica (issue 16, "Edit" and "Import/export"), end to end: the office user
//! wang downloads an offline area of 洪山区 in the real `shikong-desktop` window (under Xvfb,
//! through WebDriver), opens the map's edit panel, picks a manhole, changes its name in the form
//! built from the layer schema, moves it — first onto a neighbour (snapped exactly onto its
//! vertex), then to a free spot — saves and syncs with the progress bar; the server's
//! `GET /collections/manhole/items/{code}` and its history show the edit by wang. Then a CSV with
//! lon/lat, an XLSX sheet with 经度/纬度 columns and typed cells, and a CSV with addresses (batch-geocoded by the server, a nonsense address held for
//! review, fixed in the review table) are imported into the replica's layer, synced, and found on
//! the server. Last, with the server stopped, an edit is saved in the replica and the sync says
//! offline; with the server back at the same address, the next sync sends it. Screenshots: `target/screenshots/desktop/replica.png`, `edit.png`, `import.png`.

use crate::common::desktop::{api_get, pick_division, replica_points, shots, signed_in};
use serde_json::json;
use shikong_protocol::url::encode_component;

const NEW_NAME: &str = "王办公室改名的井盖";

#[test]
fn office_edits_imports_and_syncs_through_the_desktop_replica() {
    let dir = tempfile::tempdir().unwrap();
    let (data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let base = server.base.clone();
    let http = reqwest::blocking::Client::new();
    let get = api_get(&base, &wang);
    let (_driver, app) = signed_in(dir.path(), &base, "wang", "办公室密码123");

    // 本地副本: download 洪山区 (manhole layer) as wang, an office user.
    app.click("#tab-replica");
    app.find("#rep-layers input[value=manhole]", 60);
    app.find("[data-testid=rep-empty]", 30);
    pick_division(&app, "洪山区", "420111");
    app.click("#rep-download");
    let area = app.wait_text("[data-testid=rep-area]", 180, "the area downloaded", |t| t.contains("已打开"));
    assert!(area.contains("洪山区") && area.contains("待同步 0"), "{area}");
    let progress = app.text("[data-testid=rep-progress]");
    assert!(progress.contains("下载") && progress.contains("完成"), "{progress}");
    app.screenshot(&shots().join("replica.png"));

    // The replica on disk: a manhole to edit, a neighbour to snap to, a free spot to move to.
    let points = replica_points(dir.path(), "wang", "manhole");
    assert!(points.len() > 10, "the area holds manholes: {}", points.len());
    let near =
        |x: f64, y: f64, skip: &str| points.iter().filter(|p| p.0 != skip).any(|p| (p.1 - x).hypot(p.2 - y) < 0.0006);
    let (code, x0, y0) = points.iter().find(|p| !near(p.1, p.2, &p.0)).cloned().expect("a manhole with room around it");
    let (neighbour, nx, ny) = points.iter().find(|p| p.0 != code).cloned().unwrap();
    let spot = [(0.0004, 0.0003), (-0.0004, 0.0003), (0.0004, -0.0003), (-0.0004, -0.0003)]
        .into_iter()
        .map(|(dx, dy)| (x0 + dx, y0 + dy))
        .find(|&(x, y)| !near(x, y, &code))
        .expect("a free spot near the manhole");

    // 在地图上编辑: the map with the edit panel; pick the manhole by clicking it.
    app.click("#rep-edit-map");
    app.find("[data-testid=rep-edit]", 60);
    let count = |app: &crate::common::webdriver::Session| {
        app.execute("return window.shikongDesktop.replica.state().count || 0", json!([])).as_u64().unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count(&app) == 0 {
        assert!(std::time::Instant::now() < deadline, "the replica's features reach the map");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let click = |x: f64, y: f64| {
        app.execute("window.shikongDesktop.replica.clickAt(arguments[0], arguments[1])", json!([x, y]));
    };
    app.execute("window.shikongDesktop.replica.jumpTo(arguments[0], arguments[1], 17)", json!([x0, y0]));
    std::thread::sleep(std::time::Duration::from_millis(1500));
    click(x0, y0);
    app.wait_text("[data-testid=rep-feature-code]", 30, "the manhole picked", |t| t.contains(&code));
    // The form comes from the schema: the code list of 状态 (required), the range of 埋深.
    let status_options = app.execute(
        "return [...document.querySelectorAll(\"#rep-form [data-field='状态'] option\")].map((o) => o.value)",
        json!([]),
    );
    assert_eq!(status_options, json!(["", "1", "2", "3", "4"]));
    let depth_max = app.execute("return document.querySelector(\"#rep-form [data-field='埋深']\").max", json!([]));
    assert_eq!(depth_max, json!("20"));
    app.type_into("#rep-form [data-field='名称']", NEW_NAME);
    // Move onto the neighbour, 3 px off: snapped exactly onto its vertex.
    app.execute("window.shikongDesktop.replica.jumpTo(arguments[0], arguments[1], 17)", json!([nx, ny]));
    std::thread::sleep(std::time::Duration::from_millis(800));
    app.click("#rep-move");
    app.execute(
        "const m = window.shikongDesktop.state.map; const p = m.project([arguments[0], arguments[1]]);
         const ll = m.unproject([p.x + 3, p.y]); window.shikongDesktop.replica.clickAt(ll.lng, ll.lat);",
        json!([nx, ny]),
    );
    let note = app.wait_text("[data-testid=rep-snap-note]", 30, "snapped", |t| !t.is_empty());
    assert!(note.contains(&neighbour) && note.contains("节点"), "{note}");
    let g = app.execute("return window.shikongDesktop.replica.state().geometry", json!([]));
    assert_eq!(g["coordinates"], json!([nx, ny]), "exactly on the neighbour's vertex");
    // Then to the free spot: nothing within the tolerance, no snap.
    app.execute("window.shikongDesktop.replica.jumpTo(arguments[0], arguments[1], 17)", json!([spot.0, spot.1]));
    std::thread::sleep(std::time::Duration::from_millis(800));
    app.click("#rep-move");
    click(spot.0, spot.1);
    app.wait_text("[data-testid=rep-snap-note]", 30, "no snap", str::is_empty);
    let g = app.execute("return window.shikongDesktop.replica.state().geometry", json!([]));
    let c = g["coordinates"].as_array().unwrap();
    let (mx, my) = (c[0].as_f64().unwrap(), c[1].as_f64().unwrap());
    assert!((mx - spot.0).abs() < 1e-6 && (my - spot.1).abs() < 1e-6, "{g}");
    // An attachment picked as a file.
    let photo = dir.path().join("现场照片.png");
    std::fs::write(&photo, b"\x89PNG\r\n\x1a\n fake photo bytes for the test").unwrap();
    app.type_into("[data-testid=rep-files]", photo.to_str().unwrap());
    app.click("#rep-save");
    let saved = app.wait_text("[data-testid=rep-edit-status]", 30, "saved", |t| t.contains("已保存"));
    assert!(saved.contains(&code) && saved.contains("待同步 2"), "two changes wait (fields, geometry): {saved}");
    let listed = app.text("[data-testid=rep-attachments]");
    assert!(listed.contains("image/png") && listed.contains("待上传"), "{listed}");
    app.screenshot(&shots().join("edit.png"));

    // Sync from the panel: sent, with the progress bar at its end.
    app.click("#rep-edit-sync");
    let synced = app.wait_text("[data-testid=rep-edit-status]", 120, "synced", |t| t.contains("已发送"));
    assert!(synced.contains("已发送 1") && synced.contains("冲突 0") && synced.contains("待同步 0"), "{synced}");
    assert_eq!(app.execute("return document.getElementById('rep-progress').dataset.pct", json!([])), json!("100"));

    // The server: the new name and position, a new version by wang, the photo attached.
    let item = get(&format!("/collections/manhole/items/{code}"));
    assert_eq!(item["properties"]["名称"], NEW_NAME, "{item}");
    let xy = item["geometry"]["coordinates"].as_array().unwrap();
    assert!((xy[0].as_f64().unwrap() - mx).abs() < 1e-7 && (xy[1].as_f64().unwrap() - my).abs() < 1e-7, "{item}");
    assert_eq!(item["properties"]["照片"].as_array().map(Vec::len), Some(1), "{item}");
    let history = get(&format!("/collections/manhole/items/{code}/history"));
    let last = history["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["tx"]["author"], "wang", "{history}");
    assert!(last["changes"].to_string().contains(NEW_NAME), "{last}");

    // Import a CSV with lon/lat into the replica's layer.
    app.click("#tab-replica");
    let csv = dir.path().join("新增井盖.csv");
    std::fs::write(
        &csv,
        format!(
            "名称,状态,埋深,lon,lat,备注\n导入井盖甲,1,1.5,{},{},x\n导入井盖乙,2,2.5,{},{},y\n",
            x0 + 0.001,
            y0,
            x0,
            y0 + 0.001
        ),
    )
    .unwrap();
    app.type_into("#imp-path", csv.to_str().unwrap());
    app.click("#imp-read");
    app.wait_text("[data-testid=imp-keep]", 60, "two rows staged", |t| t == "2");
    assert!(app.text("[data-testid=imp-summary]").contains("备注"), "the unmatched column is named");
    app.click("#imp-commit");
    app.wait_text("[data-testid=imp-done]", 60, "imported", |t| t.contains("已导入 2"));

    // An XLSX sheet (the second of its workbook, named in the form) with 经度/纬度 columns and
    // numbers typed as numbers; then a bad row of it, named by sheet, row and column.
    let xlsx = dir.path().join("井盖表.xlsx");
    {
        let mut wb = rust_xlsxwriter::Workbook::new();
        wb.add_worksheet().set_name("说明").unwrap().write_string(0, 0, "第二页是井盖").unwrap();
        let ws = wb.add_worksheet();
        ws.set_name("井盖").unwrap();
        for (c, h) in ["名称", "状态", "埋深", "经度", "纬度", "备注"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        for (r, (name, status, depth, x, y)) in
            [("表格井盖甲", 1, 1.75, x0 + 0.002, y0), ("表格井盖乙", 2, 3.0, x0, y0 + 0.002)].into_iter().enumerate()
        {
            let r = r as u32 + 1;
            ws.write_string(r, 0, name).unwrap();
            ws.write_number(r, 1, status).unwrap();
            ws.write_number(r, 2, depth).unwrap();
            ws.write_number(r, 3, x).unwrap();
            ws.write_number(r, 4, y).unwrap();
        }
        ws.write_string(3, 0, "坏坐标").unwrap();
        ws.write_number(3, 1, 1).unwrap();
        ws.write_string(3, 3, "东经114度").unwrap();
        ws.write_number(3, 4, y0).unwrap();
        wb.save(&xlsx).unwrap();
    }
    app.type_into("#imp-path", xlsx.to_str().unwrap());
    app.execute("document.querySelector('#imp-form details').open = true", json!([]));
    app.type_into("#imp-src-layer", "井盖");
    app.click("#imp-read");
    let err = app.wait_text("[data-testid=imp-error]", 60, "the bad row refused", |t| !t.is_empty());
    assert!(
        err.contains("井盖表.xlsx, sheet `井盖`, row 4, column D, field `经度`: `东经114度` is not a number"),
        "{err}"
    );
    // Without the bad row (the workbook written again), both rows are staged and imported.
    {
        let mut wb = rust_xlsxwriter::Workbook::new();
        wb.add_worksheet().set_name("说明").unwrap().write_string(0, 0, "第二页是井盖").unwrap();
        let ws = wb.add_worksheet();
        ws.set_name("井盖").unwrap();
        for (c, h) in ["名称", "状态", "埋深", "经度", "纬度", "备注"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_string(1, 0, "表格井盖甲").unwrap();
        ws.write_number(1, 1, 1).unwrap();
        ws.write_number(1, 2, 1.75).unwrap();
        ws.write_number(1, 3, x0 + 0.002).unwrap();
        ws.write_number(1, 4, y0).unwrap();
        ws.write_string(1, 5, "表格").unwrap();
        ws.write_string(2, 0, "表格井盖乙").unwrap();
        ws.write_number(2, 1, 2).unwrap();
        ws.write_number(2, 2, 3).unwrap();
        ws.write_number(2, 3, x0).unwrap();
        ws.write_number(2, 4, y0 + 0.002).unwrap();
        std::fs::remove_file(&xlsx).unwrap();
        wb.save(&xlsx).unwrap();
    }
    app.click("#imp-read");
    app.wait_text("[data-testid=imp-keep]", 60, "two sheet rows staged", |t| t == "2");
    assert!(app.text("[data-testid=imp-summary]").contains("备注"), "the unmatched column is named");
    app.click("#imp-commit");
    app.wait_text("[data-testid=imp-done]", 60, "imported", |t| t.contains("已导入 2"));
    app.execute("document.getElementById('imp-src-layer').value = ''", json!([]));

    // A bad file: the row and field are named, nothing is staged.
    let bad = dir.path().join("坏文件.csv");
    std::fs::write(&bad, format!("名称,状态,lon,lat\n好,1,{x0},{y0}\n坏,9,{x0},{y0}\n")).unwrap();
    app.type_into("#imp-path", bad.to_str().unwrap());
    app.click("#imp-read");
    let err = app.wait_text("[data-testid=imp-error]", 60, "refused", |t| !t.is_empty());
    assert!(err.contains("坏文件.csv, row 3, field `状态`"), "{err}");

    // Addresses geocoded in batch by the server; the nonsense one waits for review.
    let addresses = dir.path().join("地址井盖.csv");
    std::fs::write(&addresses, "名称,状态,地址\n地址井盖甲,1,湖北省武汉市洪山区\n地址井盖乙,1,随便写点什么\n").unwrap();
    app.type_into("#imp-path", addresses.to_str().unwrap());
    app.execute("document.querySelector('#imp-form details').open = true", json!([]));
    app.type_into("#imp-address", "地址");
    app.click("#imp-read");
    app.find("[data-testid=imp-review]", 120);
    let row = "[data-testid=imp-row]";
    let review = app.text("[data-testid=imp-review]");
    assert!(review.contains("row 3") && review.contains("nomatch") && review.contains("待复核"), "{review}");
    let held = app.execute(
        "return [...document.querySelectorAll('[data-testid=imp-row] .imp-addr')].map((i) => i.value)",
        json!([]),
    );
    assert_eq!(held, json!(["随便写点什么"]), "only the unmatched address waits for review");
    assert_eq!(
        app.execute("return document.getElementById('imp-commit').disabled", json!([])),
        json!(true),
        "nothing is imported while a row waits"
    );
    app.screenshot(&shots().join("import.png"));
    // Fix the address of the unmatched row; then keep every row that has a point, drop the rest.
    app.execute(
        "const tr = [...document.querySelectorAll(arguments[0])].find((t) => t.textContent.includes('nomatch'));
         tr.querySelector('.imp-addr').value = '湖北省武汉市洪山区'; tr.querySelector('.imp-fix').click();",
        json!([row]),
    );
    app.wait_text("[data-testid=imp-review]", 60, "geocoded again", |t| !t.contains("nomatch"));
    let decided = app.execute(
        "return [...document.querySelectorAll(arguments[0])].map((t) => [t.dataset.index, t.dataset.decision, !t.querySelector('.imp-keep').disabled])",
        json!([row]),
    );
    for r in decided.as_array().unwrap() {
        if r[1] == "review" {
            let (index, has_point) = (r[0].as_str().unwrap(), r[2].as_bool().unwrap());
            let button = if has_point { "imp-keep" } else { "imp-drop" };
            app.click(&format!("tr[data-index='{index}'] .{button}"));
            app.wait_text(&format!("tr[data-index='{index}'] .imp-state"), 30, "decided", |t| t != "待复核");
        }
    }
    let keep: u64 = app.text("[data-testid=imp-keep]").parse().unwrap();
    app.click("#imp-commit");
    app.wait_text("[data-testid=imp-done]", 60, "imported", |t| t.contains(&format!("已导入 {keep}")));
    assert!(keep >= 1, "the fixed row is imported");

    // Sync; the server has the imported features.
    app.click("#rep-sync");
    let sent = format!("已发送 {}", 4 + keep);
    let r = app.wait_text("[data-testid=rep-sync-result]", 120, "synced", |t| t.contains(&sent));
    assert!(r.contains("冲突 0") && r.contains("待同步 0"), "{r}");
    let found = |name: &str| {
        let fc = get(&format!("/collections/manhole/items?filter={}", encode_component(&format!("名称 = '{name}'"))));
        fc["features"].as_array().unwrap().clone()
    };
    let a = found("导入井盖甲");
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!(a[0]["properties"]["埋深"], json!(1.5));
    assert_eq!(found("导入井盖乙").len(), 1);
    let t = found("表格井盖甲");
    assert_eq!(t.len(), 1, "{t:?}");
    assert_eq!((t[0]["properties"]["埋深"].as_f64(), t[0]["properties"]["状态"].clone()), (Some(1.75), json!("1")));
    let xy = t[0]["geometry"]["coordinates"].as_array().unwrap();
    assert!(
        (xy[0].as_f64().unwrap() - (x0 + 0.002)).abs() < 1e-9 && (xy[1].as_f64().unwrap() - y0).abs() < 1e-9,
        "{t:?}"
    );
    assert_eq!(found("表格井盖乙")[0]["properties"]["埋深"].as_f64(), Some(3.0));
    assert_eq!(found("地址井盖乙").len(), 1, "the fixed row");
    let h = get(&format!("/collections/manhole/items/{}/history", a[0]["id"].as_str().unwrap()));
    assert_eq!(h["versions"][0]["tx"]["author"], "wang", "{h}");

    // Offline: the server goes away; an edit is kept in the replica, the sync says offline and
    // sends nothing; with the server back (same address), the next sync sends it.
    let port = server.port();
    server.kill();
    app.click("#rep-edit-map");
    app.find("[data-testid=rep-edit]", 30);
    app.execute("return window.shikongDesktop.replica.select(arguments[0])", json!([code]));
    app.wait_text("[data-testid=rep-feature-code]", 30, "the manhole picked", |t| t.contains(&code));
    app.type_into("#rep-form [data-field='名称']", "离线时改的名称");
    app.click("#rep-save");
    let saved = app.wait_text("[data-testid=rep-edit-status]", 30, "saved offline", |t| t.contains("已保存"));
    assert!(saved.contains("待同步 1"), "{saved}");
    app.click("#rep-edit-sync");
    let err = app.wait_text("[data-testid=rep-edit-error]", 60, "offline", |t| !t.is_empty());
    assert!(err.contains("离线"), "{err}");
    let mut child = std::process::Command::new(crate::common::shikong_bin())
        .args(["serve", "--data", &data, "--listen", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !http.get(format!("{base}/healthz")).send().is_ok_and(|r| r.status().is_success()) {
        assert!(std::time::Instant::now() < deadline, "the server is back");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    app.click("#rep-edit-sync");
    let synced = app.wait_text("[data-testid=rep-edit-status]", 120, "synced later", |t| t.contains("已发送"));
    assert!(synced.contains("已发送 1") && synced.contains("待同步 0"), "{synced}");
    assert_eq!(get(&format!("/collections/manhole/items/{code}"))["properties"]["名称"], "离线时改的名称");
    app.quit();
    let _ = child.kill();
    let _ = child.wait();

    for shot in ["replica", "edit", "import"] {
        let png = std::fs::metadata(shots().join(format!("{shot}.png"))).unwrap().len();
        assert!(png > 10_000, "{shot}.png is a real screenshot ({png} bytes)");
    }
}
