//! The mobile app (issue 8) against the real server on loopback, with real replica files:
//!
//! - `inspector_and_citizen_flows`: every flow through the app's state layer (`Device`), with the
//!   screens rendered in-process (Dioxus VirtualDom + SSR) and their output asserted.
//! - `app_in_a_browser`: the real app (liveview: the same views) driven in headless Chromium like
//!   a user — sign in, download an area, add a point with a photo, sync — then the new feature is
//!   read back through the server's OGC API. The server speaks HTTPS with a test CA's certificate,
//!   which the app trusts through its CA setting. Two cases the office dispatched to the inspector
//!   come with the area as tasks: the map shows a marker per task, 在地图上查看 centres it, and a
//!   tapped marker opens the task. Screenshots: `target/screenshots/mobile/*.png`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::common::server::{Server, TestCa};
use crate::common::{ok, ok_stdin, root, s, tool};
use dioxus::prelude::*;
use serde_json::{Value as Json, json};
use shikong_mobile::Device;
use shikong_mobile::app_core::platform::{ImageFolder, LocationSource as _, ManualLocation, Switchable};
use shikong_mobile::app_core::{AreaChoice, DownloadStep};
use shikong_mobile::mapserver::{MapServer, MapSources};
use shikong_mobile::views::{App, AppContext, Screen};
use shikong_model::Geometry;

/// The demo store (with its gazetteer), an inspector, an office user and a citizen.
fn demo(dir: &Path) -> String {
    let data = s(&dir.join("data")).to_owned();
    crate::common::demo_data(Path::new(&data));
    ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", "zhang"], "巡查员密码123\n");
    ok_stdin(&["user", "add", "--data", &data, "--role", "office", "wang"], "办公室密码123\n");
    ok_stdin(&["user", "add", "--data", &data, "--role", "citizen", "chen"], "市民的密码123\n");
    data
}

/// A camera folder holding one real JPEG photo.
fn camera(dir: &Path) -> PathBuf {
    let cam = dir.join("camera");
    std::fs::create_dir_all(&cam).unwrap();
    let img = image::RgbImage::from_fn(640, 480, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 120]));
    img.save(cam.join("IMG_0001.jpg")).unwrap();
    cam
}

/// A feature as the office user `wang` reads it through OGC API – Features.
fn office_feature(server: &Server, data: &str, layer: &str, id: &str) -> Json {
    let token = ok(&["user", "token", "--data", data, "wang"]).trim().to_owned();
    server
        .http
        .get(server.url(&format!("/collections/{layer}/items/{id}")))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn render(ctx: &AppContext) -> String {
    let mut dom = VirtualDom::new(App).with_root_context(ctx.clone());
    dom.rebuild_in_place();
    dioxus_ssr::render(&dom)
}

fn slippy(lon: f64, lat: f64, z: u8) -> (u32, u32) {
    crate::tiles_common::xyz(lon, lat, z)
}

#[test]
fn inspector_and_citizen_flows() {
    let dir = tempfile::tempdir().unwrap();
    let data = demo(dir.path());
    let server = Server::start(&data, &[]);
    let location = Arc::new(ManualLocation::default());
    let network = Arc::new(Switchable::default());
    let dev = Device::open(
        dir.path().join("app"),
        location.clone(),
        Arc::new(ImageFolder::new(camera(dir.path()))),
        network.clone(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let map = rt.block_on(MapServer::start(MapSources::default())).unwrap();
    let ctx = AppContext { device: Arc::new(std::sync::Mutex::new(dev)), map: map.clone(), start: Screen::Areas };
    let device = || ctx.device.lock().unwrap();

    // Signed out: the sign-in screen, zh-CN first.
    let html = render(&ctx);
    assert!(html.contains("data-testid=\"login\"") && html.contains("登录") && html.contains("扫码入网"), "{html}");

    // Sign-in: a wrong password is refused with the server's message; a bad URL never leaves.
    let e = device().login(&server.base, "zhang", "wrong").unwrap_err().to_string();
    assert!(e.contains("401"), "{e}");
    let e = device().login("ftp://x", "zhang", "巡查员密码123").unwrap_err().to_string();
    assert!(e.starts_with("server:"), "{e}");
    let role = device().login(&server.base, "zhang", "巡查员密码123").unwrap().role.clone();
    assert_eq!(role, "inspector");
    assert!(device().online());

    // Offline area: find the district, estimate, download data + basemap with progress.
    let places = device().search_divisions("洪山").unwrap();
    let hongshan = places.iter().find(|p| p.code.as_deref() == Some("420111")).expect("洪山区 found");
    let centre = hongshan.lon.zip(hongshan.lat);
    assert!(centre.is_some(), "{hongshan:?}");
    let area = AreaChoice::Division { code: "420111".into(), name: hongshan.name.clone(), centre };
    let layers = vec!["manhole".to_owned(), "street_lamp".to_owned()];
    let est = device().estimate(&layers, &area).unwrap();
    let est_features = est.features;
    assert!(est_features > 100 && est.bytes > 100_000, "{est:?}");
    let mut steps = Vec::new();
    let summary = device().download("洪山区巡查", &layers, &area, &mut |s| steps.push(s)).unwrap();
    assert_eq!(steps, [DownloadStep::Replica, DownloadStep::Basemap, DownloadStep::Done]);
    let features: u64 = summary.layers.iter().map(|l| l.2).sum();
    assert_eq!(features, est_features, "the estimate counts what the replica holds");
    let real = summary.bytes as f64;
    assert!((est.bytes as f64 - real).abs() / real < 0.5, "estimate {} vs {real}", est.bytes);
    assert!(summary.basemap_bytes.unwrap_or(0) > 10_000, "basemap downloaded: {summary:?}");
    assert_eq!(device().settings.active.as_deref(), Some(summary.id.as_str()));

    // The areas screen lists it with its counts.
    let html = render(&ctx);
    assert!(html.contains("洪山区巡查") && html.contains(&format!("{features} 要素")), "{html}");

    // The map: style with basemap and replica layers, replica tiles from the file.
    let (rp, bp) = shikong_mobile::mapserver::paths(device().dir(), &summary.id);
    map.sources.show(Some(&rp), Some(&bp)).unwrap();
    let style: Json = reqwest::blocking::get(format!("{}/style.json", map.base())).unwrap().json().unwrap();
    let ids: Vec<&str> = style["layers"].as_array().unwrap().iter().filter_map(|l| l["id"].as_str()).collect();
    assert!(ids.contains(&"base-road") && ids.contains(&"replica-manhole-point"), "{ids:?}");
    let ext = shikong_mobile::mapserver::extent(&device().active_replica().unwrap()).unwrap();
    let (cx, cy) = ((ext[0] + ext[2]) / 2.0, (ext[1] + ext[3]) / 2.0);
    location.place(cx, cy);
    let js = reqwest::blocking::get(format!("{}/assets/mobile-map.js", map.base())).unwrap();
    assert_eq!(js.status(), 200);

    // Collect: the form refuses a missing required field and a bad number, field by field.
    let layer = device().active_replica().unwrap().layer("manhole").unwrap().clone();
    let mut form = BTreeMap::from([("埋深".to_owned(), "深".to_owned())]);
    let problems = Device::form_properties(&layer, &form).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert_eq!(fields, ["埋深", "状态"], "{problems:?}");
    form.insert("埋深".into(), "25".into());
    form.insert("状态".into(), "2".into());
    let problems = Device::form_properties(&layer, &form).unwrap_err();
    assert_eq!(problems[0].field, "埋深", "out of range 0–20: {problems:?}");
    form.insert("埋深".into(), "1.5".into());
    form.insert("名称".into(), "巡查新增井盖".into());
    let photo = device().take_photo().unwrap();
    assert_eq!(photo.evidence.lon, Some(cx));
    assert!(photo.photo.bytes.starts_with(&[0xFF, 0xD8]), "still a JPEG after the watermark");
    let mut rep = device().active_replica().unwrap();
    let before = rep.count("manhole").unwrap();
    let point = Geometry::Point(shikong_model::Coord::xy(cx, cy));
    let id = device().collect(&mut rep, "manhole", point, &form, std::slice::from_ref(&photo)).unwrap();
    assert_eq!(rep.count("manhole").unwrap(), before + 1);
    assert_eq!(rep.pending().unwrap(), 1);
    assert_eq!(rep.unconfirmed_attachments().unwrap().len(), 1);
    drop(rep);
    // The new point is in the map's tile at once, marked pending.
    let (x, y) = slippy(cx, cy, 17);
    let bytes = map.sources.replica_tile(17, x, y).unwrap();
    let tile = shikong_tiles::decode_tile(&bytes).unwrap();
    let mine = tile
        .iter()
        .flat_map(|l| l.features.iter())
        .find(|f| f.property("id") == Some(&shikong_model::Value::Text(id.to_string())))
        .expect("new feature in its tile");
    assert_eq!(mine.property("_local"), Some(&shikong_model::Value::Text("pending".into())));

    // The sync screen shows what waits, and the photo not yet confirmed.
    let ctx_sync = AppContext { start: Screen::Sync, ..ctx.clone() };
    let html = render(&ctx_sync);
    assert!(html.contains("待上传: 1") && html.contains("等待服务器确认"), "{html}");

    // Offline, sync is refused and nothing changes; online, it pushes, and the server has it.
    network.offline.store(true, Ordering::Relaxed);
    let e = device().sync(&summary.id, &mut |_| {}).unwrap_err().to_string();
    assert!(e.contains("offline"), "{e}");
    network.offline.store(false, Ordering::Relaxed);
    let mut progress = Vec::new();
    let report = device().sync(&summary.id, &mut |p| progress.push(p)).unwrap();
    assert_eq!((report.accepted, report.attachments_uploaded, report.rejected.len()), (1, 1, 0), "{report:?}");
    assert!(!progress.is_empty());
    let token = ok(&["user", "token", "--data", &data, "wang"]).trim().to_owned();
    let http = reqwest::blocking::Client::new();
    let f = office_feature(&server, &data, "manhole", &id.to_string());
    assert_eq!(f["properties"]["名称"], "巡查新增井盖");
    assert_eq!(f["properties"]["照片"][0], photo.sha256.as_str());
    let html = render(&ctx_sync);
    assert!(html.contains("待上传: 0") && html.contains("服务器已确认"), "{html}");

    // Measurement is geodesic on CGCS2000: 0.01° of longitude at 30.5°N ≈ 959.6 m.
    let m = Device::measure(&[(114.0, 30.5), (114.01, 30.5)], false).unwrap();
    assert!((m.length_m - 959.6).abs() < 1.0, "{}", m.length_m);
    let a = Device::measure(&[(114.0, 30.5), (114.001, 30.5), (114.001, 30.501)], true).unwrap();
    assert!(a.area_m2 > 5000.0 && a.area_m2 < 6000.0, "{}", a.area_m2);

    // Offline search in the replica's gazetteer; favourites persist.
    let found = device().search_offline("洪山").unwrap();
    assert!(found.iter().any(|s| s.name.contains("洪山")), "{found:?}");
    device().add_favourite("东门井盖", cx, cy).unwrap();
    let reopened =
        Device::open(device().dir(), location.clone(), Arc::new(ImageFolder::new(dir.path())), network.clone())
            .unwrap();
    assert_eq!(reopened.settings.favourites.len(), 1);

    // A replica with unsent work is not deleted by accident.
    let mut rep = device().active_replica().unwrap();
    let key = shikong_replica::FeatureKey::Id(id);
    device().set_fields(&mut rep, "manhole", &key, &BTreeMap::from([("状态".into(), "3".into())])).unwrap();
    drop(rep);
    let e = device().delete_replica(&summary.id, false).unwrap_err().to_string();
    assert!(e.contains("1 edits"), "{e}");
    // After a sync the feature's history (from the store) shows both versions, newest first.
    device().sync(&summary.id, &mut |_| {}).unwrap();
    let history = device().history("manhole", &id.to_string()).unwrap();
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(
        history[0].starts_with("v2") && history[0].contains("zhang") && history[0].contains("状态: 2 → 3"),
        "{history:?}"
    );
    assert!(history[1].starts_with("v1") && history[1].contains("名称: ∅ → 巡查新增井盖"), "{history:?}");

    // Enrolment by QR code: the admin's PNG, photographed by a new device, signs it in.
    let r = http
        .post(server.url("/auth/enrolments"))
        .bearer_auth(ok(&["user", "token", "--data", &data, "zhang"]).trim())
        .header("accept", "image/png")
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let qr_dir = dir.path().join("qr-camera");
    std::fs::create_dir_all(&qr_dir).unwrap();
    std::fs::write(qr_dir.join("qr.png"), r.bytes().unwrap()).unwrap();
    let mut tablet =
        Device::open(dir.path().join("tablet"), location.clone(), Arc::new(ImageFolder::new(&qr_dir)), network.clone())
            .unwrap();
    let photo = tablet.camera.capture().unwrap();
    let s = tablet.enrol_photo(&photo).unwrap();
    assert_eq!(s.username, "zhang");
    assert!(s.device.is_some(), "a device token");
    let e = tablet.enrol_photo(&photo).unwrap_err().to_string();
    assert!(e.contains("401"), "a code works once: {e}");
    // Sharing a feature: its QR code carries a link the app reads back.
    let link = shikong_protocol::enrolment::FeatureLink {
        server: server.base.clone(),
        collection: "manhole".into(),
        id: id.to_string(),
    }
    .to_uri();
    let back = shikong_mobile::app_core::qr::decode(&shikong_mobile::app_core::qr::png(&link).unwrap()).unwrap();
    assert_eq!(shikong_protocol::enrolment::FeatureLink::parse(&back).unwrap().id, id.to_string());

    // Citizen: registration goes to approval; a report queued offline is sent when online and
    // its handling status follows.
    let msg = device().register(&server.base, "liu", "市民的密码456", "13800000000").unwrap();
    assert!(msg.contains("注册待审核"), "{msg}");
    let citizen_dir = dir.path().join("citizen");
    let mut phone =
        Device::open(&citizen_dir, location.clone(), Arc::new(ImageFolder::new(camera(dir.path()))), network.clone())
            .unwrap();
    phone.login(&server.base, "chen", "市民的密码123").unwrap();
    let ctx_citizen = AppContext { device: Arc::new(std::sync::Mutex::new(phone.clone())), map, start: Screen::Map };
    let html = render(&ctx_citizen);
    assert!(html.contains("我要上报") && html.contains("我的上报") && !html.contains("离线区域"), "{html}");
    let forms = phone.report_layers().unwrap();
    assert_eq!(forms[0].name, "citizen_report");
    let e = phone.queue_report("citizen_report", "", "x", "", (cx, cy), None).unwrap_err().to_string();
    assert!(e.starts_with("category:"), "{e}");
    network.offline.store(true, Ordering::Relaxed);
    let photo = phone.take_photo().unwrap();
    phone.queue_report("citizen_report", "1", "井盖破损，有安全隐患", "洪山区珞喻路", (cx, cy), Some(&photo)).unwrap();
    assert!(matches!(phone.send_reports(), Err(shikong_mobile::AppError::Offline)));
    assert_eq!(phone.queued_reports().unwrap().iter().filter(|r| r.server_id.is_none()).count(), 1);
    network.offline.store(false, Ordering::Relaxed);
    assert_eq!(phone.send_reports().unwrap(), 1);
    assert_eq!(phone.send_reports().unwrap(), 0, "never sent twice");
    let sent = phone.queued_reports().unwrap()[0].server_id.clone().unwrap();
    let r = http
        .patch(server.url(&format!("/collections/citizen_report/items/{sent}")))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"properties": {"办理状态": "2"}}"#)
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().unwrap());
    let mine = phone.my_reports().unwrap();
    assert_eq!(mine.len(), 1);
    let status = mine[0].properties.status.as_ref().and_then(|s| s.label.as_deref());
    assert_eq!(status, Some("处理中"));
    assert_eq!(mine[0].properties.fields["照片"][0], photo.sha256.as_str());
    drop(rt);
}

#[test]
fn app_in_a_browser() {
    let web = root().join("sync-server/http/web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "playwright-core missing: run scripts/deps.sh test (scripts/test.sh does)"
    );
    tool("chromium", "chromium");
    tool("node", "nodejs");
    let dir = tempfile::tempdir().unwrap();
    let data = demo(dir.path());
    // Over HTTPS: the server's certificate is signed by a test CA, which the app trusts through
    // its CA setting (the system's roots do not know it).
    let ca = TestCa::new(dir.path());
    let server = Server::start_tls(&data, &[], &ca);
    // Two cases the office dispatched to zhang before the area is downloaded: the replica carries
    // them as tasks. Close to each other, and away from where the inspector collects below.
    let wang = ok(&["user", "token", "--data", &data, "wang"]).trim().to_owned();
    let post = |path: &str, body: Json| -> Json {
        let r = server.http.post(server.url(path)).bearer_auth(&wang).json(&body).send().unwrap();
        let status = r.status();
        let text = r.text().unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap()
    };
    let mut cases = BTreeMap::new();
    for (n, (lon, lat)) in [(114.3497, 30.5083), (114.3503, 30.5087)].into_iter().enumerate() {
        let point = json!({"type": "Point", "coordinates": [lon, lat]});
        let case = post("/cases", json!({"class": "0102", "description": "暴露垃圾", "location": point}));
        let id = case["id"].as_str().unwrap().to_owned();
        for (k, action) in ["accept", "register", "dispatch"].into_iter().enumerate() {
            let mut body = json!({"action": action, "action_id": format!("map-{n}-{k}")});
            if action == "dispatch" {
                body["assignee"] = json!("user:zhang");
            }
            post(&format!("/cases/{id}/actions"), body);
        }
        cases.insert(id, (case["case_no"].as_str().unwrap().to_owned(), (lon, lat)));
    }
    let location = Arc::new(ManualLocation::at(114.3437, 30.5043));
    let mut dev = Device::open(
        dir.path().join("app"),
        location,
        Arc::new(ImageFolder::new(camera(dir.path()))),
        Arc::new(Switchable::default()),
    )
    .unwrap();
    // The script taps "sync now" and reads what that sync uploaded; the silent 10-second automatic
    // sync would sometimes push the feature first.
    dev.settings.auto_sync = false;
    dev.set_ca_cert(Some(&ca.ca_pem)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rt.spawn(async move {
        let _ = shikong_mobile::launch::liveview(dev, "127.0.0.1:0".parse().unwrap(), move |a, key| {
            let _ = tx.send((a, key.to_owned()));
        })
        .await;
    });
    let (addr, key) = rx.recv().unwrap();
    // The liveview serves only a browser that brings the key printed at start.
    let refused = reqwest::blocking::get(format!("http://{addr}/app")).unwrap();
    assert_eq!(refused.status(), 401);
    let shots = root().join("target/screenshots/mobile");
    let out = std::process::Command::new("node")
        .arg(root().join("mobile/web/test/e2e.mjs"))
        .arg(format!("http://{addr}/app?key={key}"))
        .arg(&server.base)
        .arg(&shots)
        .env("NODE_PATH", web.join("node_modules"))
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "browser run failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let seen: Json = serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap();
    // The id the app showed after saving is on the server, with the form's values and photo.
    let id = seen["saved_id"].as_str().expect("saved id");
    let f = office_feature(&server, &data, "manhole", id);
    assert_eq!(f["properties"]["名称"], "浏览器采集的井盖", "{f}");
    assert_eq!(f["properties"]["状态"], "2");
    assert_eq!(f["properties"]["照片"].as_array().map(Vec::len), Some(1), "{f}");
    assert!(seen["sync_message"].as_str().unwrap_or_default().contains("上传 1"), "{seen}");
    assert!(seen["map_ready_ms"].as_f64().is_some(), "{seen}");
    // Tapping it on the map showed its card, its history from the store, and an edit saved offline.
    assert!(seen["tapped"].as_str().unwrap_or_default().contains("浏览器采集的井盖"), "{seen}");
    assert!(seen["history"].as_str().unwrap_or_default().contains("v1"), "{seen}");
    assert!(seen["edit_message"].as_str().unwrap_or_default().contains("已保存"), "{seen}");
    // The tasks on the map: one marker per case, labelled with its number, coloured by urgency.
    let mut markers: Vec<(String, String)> = seen["task_markers"]
        .as_array()
        .unwrap_or_else(|| panic!("no task markers: {seen}"))
        .iter()
        .map(|m| {
            let urgency = m["urgency"].as_str().unwrap_or_default();
            assert!(["overdue", "today", "later"].contains(&urgency), "{m}");
            assert!(m["cls"].as_str().unwrap_or_default().contains(&format!("sk-task-{urgency}")), "{m}");
            (m["case"].as_str().unwrap_or_default().to_owned(), m["label"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    markers.sort();
    let expected: Vec<(String, String)> = cases.iter().map(|(id, (no, _))| (id.clone(), no.clone())).collect();
    assert_eq!(markers, expected, "{seen}");
    assert!(seen["task_legend"].as_str().unwrap_or_default().contains("任务: 2"), "{seen}");
    // 在地图上查看 on the list's first task centred the map on it, its marker highlighted.
    let first = seen["task_list"][0].as_str().unwrap_or_default();
    let (focus, (_, (lon, lat))) = cases.iter().find(|(_, (no, _))| no == first).expect("the list shows the cases");
    assert_eq!(seen["centred"]["focus"].as_str(), Some(focus.as_str()), "{seen}");
    let (clon, clat) = (seen["centred"]["lon"].as_f64().unwrap_or(0.0), seen["centred"]["lat"].as_f64().unwrap_or(0.0));
    assert!((clon - lon).abs() < 1e-5 && (clat - lat).abs() < 1e-5, "centred at {clon},{clat}, not {lon},{lat}");
    // Tapping the other marker opened that task's page.
    let other = cases.iter().find(|(id, _)| *id != focus).map(|(_, (no, _))| no.as_str()).unwrap_or_default();
    assert!(seen["task_opened"].as_str().unwrap_or_default().contains(other), "{seen}");
    for screen in ["login", "areas", "map", "collect", "sync", "feature", "tasks-map"] {
        let p = shots.join(format!("{screen}.png"));
        assert!(std::fs::metadata(&p).map(|m| m.len() > 5_000).unwrap_or(false), "{} saved", p.display());
    }
    drop(rt);
}

/// The desktop build: the real window (WebKitGTK) under Xvfb, signed in from an earlier session,
/// renders the app and its map asks the loopback map server for MapLibre.
#[test]
fn desktop_window_under_xvfb() {
    tool("xvfb-run", "xvfb");
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("shikong-mobile");
    assert!(bin.is_file(), "{} not built (cargo test --workspace builds it)", bin.display());
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("app");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("device.json"),
        r#"{"session": {"server": "http://127.0.0.1:9", "token": "t", "username": "张三", "role": "inspector", "expires_at": ""}}"#,
    )
    .unwrap();
    let log = dir.path().join("stderr.log");
    let mut child = std::process::Command::new("xvfb-run")
        .args(["-a", "-s", "-screen 0 1024x768x24"])
        .arg(&bin)
        .args(["--data", s(&data), "--camera", s(&dir.path().join("camera")), "--start", "114.3437,30.5043"])
        .env("RUST_LOG", "shikong_mobile=info")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("run xvfb-run");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    let mut served = false;
    while std::time::Instant::now() < deadline {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("map script served") {
            served = true;
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the window exited ({status}): {text}");
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::process::Command::new("pkill").args(["-f", s(&data)]).status();
    let _ = child.kill();
    let _ = child.wait();
    assert!(served, "the window's app never loaded its map: {text}");
    assert!(!text.contains("panicked"), "{text}");
}
