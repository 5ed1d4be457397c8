//! The desktop app (issue 16) as a user drives it: the real `shikong-desktop` window under Xvfb,
//! driven through WebDriver (`tauri-driver` in front of Debian's `WebKitWebDriver`), against the
//! real `shikong serve` on loopback with the demo data.
//!
//! `dispatch_board_dispatches_a_case_to_an_inspector`: a scripted start
//! (`--server URL --user NAME`, the password from `SHIKONG_DESKTOP_PASSWORD_FILE` because the
//! driver gives the app no standard input) opens the dispatch board, which lists a case the
//! office opened over the API; the user accepts, registers and dispatches it to an inspector
//! through the case page; the server's API and the inspector's replica (after a sync) then hold
//! it. The map shows the server's layers through the app's `skmap:` scheme. A restart without
//! flags opens on the saved session; a fresh data folder opens on the sign-in screen, which
//! refuses a wrong password and signs in with the right one. Screenshots:
//! `target/screenshots/desktop/*.png`.

use crate::common::desktop::{Driver, desktop_bin, open_case};
use crate::common::{json, ok, root, s};
use serde_json::{Value as Json, json};

/// Where the case is: 珞喻路, 洪山区 (inside the demo's assets).
const AT: (f64, f64) = (114.3437, 30.5043);

#[test]
fn dispatch_board_dispatches_a_case_to_an_inspector() {
    let dir = tempfile::tempdir().unwrap();
    let (_data, server, wang, li) = crate::common::demo_with_office(dir.path());
    let http = reqwest::blocking::Client::new();
    let case_doc = |id: &str| -> Json {
        let r = http.get(server.url(&format!("/cases/{id}"))).bearer_auth(&wang).send().unwrap();
        assert_eq!(r.status(), 200, "GET /cases/{id}");
        r.json().unwrap()
    };

    // The office opens a case (a hotline call) over the API; the inspector's tablet has no task yet.
    let at = json!({"type": "Point", "coordinates": [AT.0, AT.1]});
    let case = open_case(&server.base, &wang, json!({"location": at, "description": "珞喻路井盖破损"}));
    let (id, case_no) = (case["id"].as_str().unwrap().to_owned(), case["case_no"].as_str().unwrap().to_owned());
    assert_eq!(case["state"], "reported");
    let tablet = dir.path().join("li.gpkg");
    ok(&["replica", "create", "--server", &server.base, "--token", &li, "--layers", "manhole", s(&tablet)]);
    assert_eq!(ok(&["replica", "tasks", s(&tablet)]).trim(), "no open tasks");

    let bin = desktop_bin();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, "办公室密码123\n").unwrap();
    let app_data = dir.path().join("desktop");
    let shots = root().join("target/screenshots/desktop");
    let log = dir.path().join("driver.log");
    let driver = Driver::start(&[("SHIKONG_DESKTOP_PASSWORD_FILE", s(&password_file)), ("RUST_LOG", "info")], &log);

    // Scripted start: signed in, the board lists the case among the new ones.
    let app = driver.open(&bin, &["--server", &server.base, "--user", "wang", "--data", s(&app_data)]);
    let who = app.wait_text("[data-testid=who]", 60, "signed in", |t| t.contains("wang"));
    assert!(who.contains("wang（内业）") && who.contains(&server.base), "{who}");
    let card = format!("[data-testid=case-card][data-case-no='{case_no}']");
    app.find(&card, 30);
    let column = app.text("section.column[data-state=reported]");
    assert!(column.contains(&case_no) && column.contains("珞喻路井盖破损"), "{column}");
    app.screenshot(&shots.join("board.png"));

    // The case page: accept (受理), register (立案), dispatch (派遣) to the inspector li.
    app.click(&card);
    app.wait_text("[data-testid=case-no]", 30, "case page", |t| t.contains(&case_no));
    for (action, state) in [("accept", "accepted"), ("register", "registered")] {
        app.click(&format!("button[data-action={action}]"));
        app.find(&format!("[data-testid=case-state][data-state={state}]"), 30);
    }
    app.click("button[data-action=dispatch]");
    let err = app.wait_text("#case-error", 30, "dispatch without an assignee", |t| !t.is_empty());
    assert!(err.contains("assignee"), "checked before the server: {err}");
    assert_eq!(case_doc(&id)["state"], "registered", "nothing sent");
    app.type_into("[data-testid=assignee]", "li");
    // The inspector's current load shows before the office sends more.
    let load = app.wait_text("[data-testid=assignee-load]", 30, "li's tasks", |t| t.contains("当前在办"));
    assert!(load.starts_with("user:li 当前在办 0 件") || load.starts_with("li 当前在办 0 件"), "{load}");
    app.type_into("[data-testid=note]", "请今日处置");
    app.click("button[data-action=dispatch]");
    app.find("[data-testid=case-state][data-state=dispatched]", 30);
    assert_eq!(app.text("[data-testid=case-assignee]"), "user:li");
    let transitions = app.text("[data-testid=transitions]");
    assert!(transitions.contains("dispatch") && transitions.contains("请今日处置"), "{transitions}");
    app.find("section.column[data-state=dispatched] [data-case-no]", 30);
    // Only what the office may do now: 处置 is the inspector's, 受理 is over.
    let absent = app.execute(
        "return ['handle', 'accept'].every((a) => !document.querySelector(`button[data-action=${a}]`))",
        json!([]),
    );
    assert_eq!(absent, json!(true), "{}", app.text("[data-testid=case-actions]"));
    app.screenshot(&shots.join("case.png"));

    // The server holds it, by wang, with fresh action ids; the inspector's tablet receives it.
    let doc = case_doc(&id);
    assert_eq!((doc["state"].as_str(), doc["assignee"].as_str()), (Some("dispatched"), Some("user:li")), "{doc}");
    let steps: Vec<(&str, &str)> = doc["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["action"].as_str().unwrap(), t["actor"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("accept", "wang"), ("register", "wang"), ("dispatch", "wang")]);
    let ids: std::collections::BTreeSet<&str> =
        doc["transitions"].as_array().unwrap().iter().map(|t| t["action_id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 3, "one fresh action id per action");
    let out = ok(&["replica", "sync", "--token", &li, s(&tablet)]);
    assert!(out.contains("tasks: 1 open"), "{out}");
    let out = ok(&["replica", "tasks", s(&tablet)]);
    assert!(out.lines().any(|l| l.starts_with(&id) && l.contains("state dispatched")), "{out}");

    // The map: the server's layers (through skmap:) around the case, and the case marker.
    app.click("#tab-map");
    let status = app.wait_text("[data-testid=map-status]", 60, "map drawn", |t| t.starts_with("已显示"));
    let layers = app.execute("return window.shikongDesktop.rendered()", json!([]));
    let layers: Vec<&str> = layers.as_array().unwrap().iter().filter_map(Json::as_str).collect();
    assert!(layers.contains(&"desk-cases"), "the case marker: {layers:?} ({status})");
    assert!(
        layers.iter().any(|l| l.starts_with("manhole")),
        "the server's vector tiles came through skmap: {layers:?}"
    );
    app.screenshot(&shots.join("map.png"));
    app.quit();

    // The session survives a restart: no flags, straight to the board.
    let secrets = app_data.join("secrets/session");
    assert!(secrets.is_file(), "no secret service under Xvfb: the session is in a file");
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(std::fs::metadata(&secrets).unwrap().permissions().mode() & 0o777, 0o600);
    }
    let settings = std::fs::read_to_string(app_data.join("device.json")).unwrap();
    let token = json(&std::fs::read_to_string(&secrets).unwrap());
    let token = token["token"].as_str().map(str::to_owned).unwrap_or_default();
    assert!(!token.is_empty() && !settings.contains(&token), "the token is not in device.json");
    let app = driver.open(&bin, &["--data", s(&app_data)]);
    app.wait_text("[data-testid=who]", 60, "the saved session", |t| t.contains("wang"));
    app.find(&format!("section.column[data-state=dispatched] [data-case-no='{case_no}']"), 30);
    app.quit();

    // A fresh data folder: the sign-in screen (zh-CN), a refused password, then a sign-in.
    let app = driver.open(&bin, &["--data", s(&dir.path().join("desktop-2"))]);
    app.find("#login-form", 60);
    assert!(app.text("[data-testid=login]").contains("登录"));
    app.type_into("#login-server", &server.base);
    app.type_into("#login-user", "wang");
    app.type_into("#login-password", "错误的密码");
    app.click("#login-submit");
    let err = app.wait_text("#login-error", 30, "a refused sign-in", |t| !t.is_empty());
    assert!(err.starts_with("登录失败") && err.contains("401"), "{err}");
    app.screenshot(&shots.join("login.png"));
    app.type_into("#login-password", "办公室密码123");
    app.click("#login-submit");
    app.wait_text("[data-testid=who]", 30, "signed in through the form", |t| t.contains("wang"));
    app.quit();

    for shot in ["board", "case", "map", "login"] {
        let p = shots.join(format!("{shot}.png"));
        assert!(std::fs::metadata(&p).map(|m| m.len() > 5_000).unwrap_or(false), "{} saved", p.display());
    }
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!log.contains("panicked"), "{log}");
}
