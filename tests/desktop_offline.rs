//! The desktop started while the server is down (issue 16, "a synced desktop works offline too"),
//! end to end with the real `shikong-desktop` window (Xvfb, WebDriver) and a real server process:
//! wang signs in, downloads 洪山区's manholes and syncs once; the app is closed and the server
//! stopped. Started again, the app opens on the saved session (no sign-in screen) within seconds,
//! says the server is unreachable (the board and the 属性表 at once), lists the replica from local data and opens the map over it;
//! a manhole's name (form) and position (geometry) are edited and saved in the replica. Closed
//! and started again, still offline, the edit is there and still pending. With the server back
//! on the same data folder and port, the badge turns online, the map takes the server's style
//! (the replica's layer kept) and the layer tree lists its layers, the sync sends the edit with its progress bar, and the server's OGC API answers the new name and position by wang.
//! On the way, the native file dialogs' buttons (选择…) stand beside the typed paths, and of the
//! dialog plugin only the open and save commands pass the window's permission check (a GTK
//! dialog itself cannot be driven through WebDriver, so none is opened here).
//! Screenshot: `target/screenshots/desktop/offline.png`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::desktop::{api_get, pick_division, reopen, replica_points, shots, signed_in, until};
use crate::common::webdriver::Session;
use serde_json::{Value as Json, json};

const OFFLINE_NAME: &str = "断网时改名的井盖";

/// The server started again by hand on a fixed port; killed when dropped.
struct Restarted(Child);

impl Drop for Restarted {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn js(app: &Session, script: &str) -> Json {
    app.execute(script, json!([]))
}

fn net(app: &Session) -> Json {
    js(app, "const e = document.getElementById('net-status'); return e ? [e.dataset.online, e.textContent] : null")
}

/// The edit panel open on the map with the area's manholes drawn.
fn edit_panel(app: &Session) {
    app.click("#tab-replica");
    app.find("[data-testid=rep-area]", 30);
    app.click("#rep-edit-map");
    app.find("[data-testid=rep-edit]", 60);
    until(60, "the replica's features on the map", || {
        (js(app, "return window.shikongDesktop.replica.state().count || 0").as_u64() > Some(0)).then_some(())
    });
}

#[test]
fn the_desktop_starts_offline_edits_the_replica_and_syncs_when_the_server_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let (data, server, wang, _li) = crate::common::demo_with_office(dir.path());
    let base = server.base.clone();
    let http = reqwest::blocking::Client::new();
    let get = api_get(&base, &wang);

    // Online: sign in, download 洪山区's manholes, sync once.
    let (driver, app) = signed_in(dir.path(), &base, "wang", "办公室密码123");
    until(30, "the badge says online", || (net(&app)[0] == "true").then_some(()));
    app.click("#tab-replica");
    app.find("#rep-layers input[value=manhole]", 60);
    pick_division(&app, "洪山区", "420111");
    app.click("#rep-download");
    app.wait_text("[data-testid=rep-area]", 180, "the area downloaded", |t| t.contains("已打开"));
    app.click("#rep-sync");
    let r = app.wait_text("[data-testid=rep-sync-result]", 120, "the first sync", |t| t.contains("已发送"));
    assert!(r.contains("待同步 0"), "{r}");
    app.quit();

    // A manhole to edit and a free spot to move it to, from the replica on disk.
    let points = replica_points(dir.path(), "wang", "manhole");
    let near =
        |x: f64, y: f64, skip: &str| points.iter().filter(|p| p.0 != skip).any(|p| (p.1 - x).hypot(p.2 - y) < 0.0006);
    let (code, x0, y0) = points.iter().find(|p| !near(p.1, p.2, &p.0)).cloned().expect("a manhole with room around it");
    let spot = [(0.0004, 0.0003), (-0.0004, 0.0003), (0.0004, -0.0003), (-0.0004, -0.0003)]
        .into_iter()
        .map(|(dx, dy)| (x0 + dx, y0 + dy))
        .find(|&(x, y)| !near(x, y, &code))
        .expect("a free spot near the manhole");
    assert!(dir.path().join("desktop-wang/secrets/session").is_file(), "the session is kept (file storage under Xvfb)");

    // The server goes down; the app starts on its saved session, not on the sign-in screen.
    let port = server.port();
    assert!(server.stop(), "the server stops cleanly");
    let (app, took) = reopen(&driver, dir.path(), "wang");
    assert!(took < Duration::from_secs(10), "the window is usable without the server: {took:?}");
    assert_eq!(js(&app, "return document.getElementById('login').hidden"), json!(true), "no sign-in wall");
    let badge = until(30, "the badge says unreachable", || {
        let n = net(&app);
        (n[0] == "false").then(|| n[1].as_str().unwrap_or_default().to_owned())
    });
    assert!(badge.contains("服务器不可达"), "{badge}");
    let board = app.wait_text("#main-error", 60, "the board says offline", |t| !t.is_empty());
    assert!(board.contains("离线"), "{board}");
    println!("offline start: window signed in after {} ms (WebDriver session included)", took.as_millis());
    // The other views that ask the server say so at once too (not after the client's retries).
    let asked = Instant::now();
    app.click("#tab-table");
    let table = app.wait_text("#tb-error", 30, "the table says offline", |t| !t.is_empty());
    assert!(table.contains("离线"), "{table}");
    let table_took = asked.elapsed();
    println!("offline start: the table said offline after {} ms", table_took.as_millis());
    assert!(table_took < Duration::from_secs(5), "the table's error took {table_took:?}");

    // The file dialogs' buttons beside the typed paths; only open and save pass the ACL.
    app.click("#tab-replica");
    app.find("#imp-path-pick", 30);
    app.find("#exp-path-pick", 30);
    js(
        &app,
        "window.__dlg = {};
         const call = (k, cmd, args) => window.__TAURI__.core.invoke(cmd, args)
           .then((v) => (window.__dlg[k] = 'ok:' + JSON.stringify(v)), (e) => (window.__dlg[k] = 'err:' + String(e)));
         // a malformed `options` is refused by the command itself (after the permission check): no dialog opens
         call('open', 'plugin:dialog|open', { options: 5 });
         call('save', 'plugin:dialog|save', { options: 5 });
         call('message', 'plugin:dialog|message', { message: 'x' });",
    );
    let dlg = until(30, "the dialog commands answered", || {
        let d = js(&app, "return window.__dlg");
        (d["open"].is_string() && d["save"].is_string() && d["message"].is_string()).then_some(d)
    });
    for k in ["open", "save"] {
        let a = dlg[k].as_str().unwrap();
        assert!(a.contains("invalid args") && !a.contains("not allowed"), "{k} is permitted: {a}");
    }
    assert!(dlg["message"].as_str().unwrap().contains("not allowed"), "{dlg}");

    // The replica from local data; the map over it; an edit of the form and the geometry.
    let area = app.wait_text("[data-testid=rep-area]", 30, "the area listed offline", |t| t.contains("已打开"));
    assert!(area.contains("待同步 0"), "{area}");
    edit_panel(&app);
    assert_eq!(js(&app, "return !!window.shikongDesktop.state.mapOffline"), json!(true), "the offline map");
    js(&app, &format!("return window.shikongDesktop.replica.select({})", json!(code)));
    app.wait_text("[data-testid=rep-feature-code]", 30, "the manhole picked", |t| t.contains(&code));
    app.type_into("#rep-form [data-field='名称']", OFFLINE_NAME);
    app.execute("window.shikongDesktop.replica.jumpTo(arguments[0], arguments[1], 17)", json!([spot.0, spot.1]));
    until(10, "the map at the spot", || {
        let c = js(&app, "const c = window.shikongDesktop.state.map.getCenter(); return [c.lng, c.lat]");
        ((c[0].as_f64()? - spot.0).abs() < 1e-6).then_some(())
    });
    app.click("#rep-move");
    app.execute("window.shikongDesktop.replica.clickAt(arguments[0], arguments[1])", json!([spot.0, spot.1]));
    let g = until(30, "the manhole moved", || {
        let g = js(&app, "return window.shikongDesktop.replica.state().geometry");
        let c = g["coordinates"].as_array()?.clone();
        ((c[0].as_f64()? - spot.0).abs() < 1e-6).then_some(c)
    });
    let (mx, my) = (g[0].as_f64().unwrap(), g[1].as_f64().unwrap());
    assert!((my - spot.1).abs() < 1e-6, "{g:?}");
    app.click("#rep-save");
    let saved = app.wait_text("[data-testid=rep-edit-status]", 30, "saved offline", |t| t.contains("已保存"));
    assert!(saved.contains(&code) && saved.contains("待同步 2"), "fields and geometry wait: {saved}");
    app.screenshot(&shots().join("offline.png"));
    app.quit();

    // Started again, still offline: the edit is kept and still pending.
    let (app, _) = reopen(&driver, dir.path(), "wang");
    until(30, "the badge says unreachable", || (net(&app)[0] == "false").then_some(()));
    app.click("#tab-replica");
    app.wait_text("[data-testid=rep-pending]", 30, "two changes pending", |t| t == "2");
    edit_panel(&app);
    js(&app, &format!("return window.shikongDesktop.replica.select({})", json!(code)));
    let picked = app.wait_text("[data-testid=rep-feature-code]", 30, "the manhole picked", |t| t.contains(&code));
    assert!(picked.contains("待同步"), "{picked}");
    let name = js(&app, "return document.querySelector(\"#rep-form [data-field='名称']\").value");
    assert_eq!(name, json!(OFFLINE_NAME));
    let tree = "return window.shikongDesktop.layerTree().groups.length";
    let offline_groups = js(&app, tree).as_u64().unwrap();

    // The server is back on the same data folder and port: the badge turns online, the sync sends
    // the edit with its progress bar.
    let _server = Restarted(
        Command::new(crate::common::shikong_bin())
            .args(["serve", "--data", &data, "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    until(30, "the server is back", || {
        http.get(format!("{base}/healthz")).send().is_ok_and(|r| r.status().is_success()).then_some(())
    });
    let back = Instant::now();
    until(60, "the badge says online", || (net(&app)[0] == "true").then_some(()));
    println!("back online: the badge turned after {} ms", back.elapsed().as_millis());
    // The map takes the server's style, the replica's own layer kept on it.
    until(60, "the server's style replaces the offline map", || {
        (js(&app, "return window.shikongDesktop.state.mapOffline") == json!(false)).then_some(())
    });
    until(30, "the replica's layer on the server's style", || {
        let m =
            "const m = window.shikongDesktop.state.map; return !!(m.getLayer('rep-point') && m.getSource('rep-feat'))";
        (js(&app, m) == json!(true)).then_some(())
    });
    // The layer tree lists the server's layers again.
    until(30, "the layer tree over the server's style", || (js(&app, tree).as_u64()? > offline_groups).then_some(()));
    app.click("#rep-edit-sync");
    let synced = app.wait_text("[data-testid=rep-edit-status]", 120, "synced", |t| t.contains("已发送"));
    assert!(synced.contains("已发送 1") && synced.contains("冲突 0") && synced.contains("待同步 0"), "{synced}");
    let progress = js(&app, "const p = document.getElementById('rep-progress').dataset; return [p.task, p.pct]");
    assert_eq!(progress, json!(["sync", "100"]));
    app.quit();

    // The server has it, by wang.
    let item = get(&format!("/collections/manhole/items/{code}"));
    assert_eq!(item["properties"]["名称"], OFFLINE_NAME, "{item}");
    let xy = item["geometry"]["coordinates"].as_array().unwrap();
    assert!((xy[0].as_f64().unwrap() - mx).abs() < 1e-7 && (xy[1].as_f64().unwrap() - my).abs() < 1e-7, "{item}");
    let history = get(&format!("/collections/manhole/items/{code}/history"));
    let last = history["versions"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["tx"]["author"], "wang", "{history}");
    assert!(last["changes"].to_string().contains(OFFLINE_NAME), "{last}");
    let png = std::fs::metadata(shots().join("offline.png")).unwrap().len();
    assert!(png > 10_000, "offline.png is a real screenshot ({png} bytes)");
}
