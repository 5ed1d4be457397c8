//! The admin console (`/admin`, issue 20) in a real browser: Debian's Chromium, headless, driven
//! by Playwright through `sync-server/http/web/test/admin.mjs`, against a real `shikong serve`
//! whose service health checks run every second (`--service-health-seconds 1`). An office user
//! sees only 需要管理员权限; the administrator approves a citizen who registered through
//! `POST /auth/register`, registers an outside OGC API – Features service (a small HTTP server
//! this test starts, stops and starts again on the same port) and sees it go 在线 → 下线 → 在线
//! as the page polls, creates an API key with a quota, sets and removes a layer rule, creates an enrolment
//! QR code, reads the audit log, and sets a memory threshold that raises an alert. Every outcome
//! is then read back through the API. Screenshots go to `target/screenshots/admin/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value as Json, json};

use crate::common::server::Server;
use crate::common::*;
use crate::tiles_common::{PASSWORD, login, write_fixtures};

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots/admin")
}

/// The outside service: answers `/collections` (OGC API – Features) on a loopback port until
/// stopped; stopping closes the listening socket, so connections are refused.
struct Outside {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const COLLECTIONS: &str = r#"{"collections":[{"id":"roads","title":"道路","links":[]}],"links":[]}"#;

fn answer(mut sock: TcpStream) {
    let _ = sock.set_nonblocking(false);
    let _ = sock.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65_536 {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head);
    let path = text.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) =
        if path.starts_with("/collections") { ("200 OK", COLLECTIONS) } else { ("404 Not Found", "{}") };
    let _ = write!(
        sock,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Outside {
    /// Listens on `port` (0: any free port).
    fn start(port: u16) -> Outside {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((sock, _)) => answer(sock),
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return,
                }
            }
        });
        Outside { port, stop, thread: Some(thread) }
    }

    /// Closes the socket; the port it had.
    fn stop(mut self) -> u16 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
        self.port
    }
}

impl Drop for Outside {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Runs `web/test/admin.mjs`: each `{"step": …}` line it prints is done by `on_step` and
/// answered on its stdin; its last line is the result, asserted to say `ok`.
fn drive_admin(args: &[&str], mut on_step: impl FnMut(&str)) -> Json {
    let web = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../http/web");
    assert!(
        web.join("node_modules/playwright-core").exists(),
        "playwright-core is not installed: run `npm ci --prefix {}` (scripts/deps.sh test does)",
        web.display()
    );
    tool("chromium", "chromium");
    tool("node", "nodejs");
    let mut child = Command::new("node")
        .arg(web.join("test/admin.mjs"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node");
    let mut stdin = child.stdin.take().unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut last = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        if let Ok(v) = serde_json::from_str::<Json>(&line)
            && let Some(step) = v["step"].as_str()
        {
            on_step(step);
            writeln!(stdin, "done").unwrap();
            stdin.flush().unwrap();
            continue;
        }
        last = line;
    }
    drop(stdin);
    child.wait().unwrap();
    let r = json(&last);
    assert_eq!(r["ok"], true, "browser run failed: {r:#}");
    r
}

#[test]
fn the_admin_console_approves_users_makes_keys_and_watches_services() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    let (points, _) = write_fixtures(dir.path());
    ok(&["init", "--data", &data]);
    ok(&["import", "--data", &data, "--layer", "manhole", "--title", "井盖", &points]);
    for (name, role) in [("admin", "admin"), ("wang", "office")] {
        ok_stdin(&["user", "add", "--data", &data, "--role", role, name], &format!("{PASSWORD}\n"));
    }
    let server = Server::start(&data, &["--service-health-seconds", "1"]);
    let http = reqwest::blocking::Client::new();
    // A citizen registers through the product's registration API: pending review.
    let r = http
        .post(server.url("/auth/register"))
        .json(&json!({"username": "zhao", "password": "市民注册2025!", "display_name": "赵市民"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let admin = login(&http, &server, "admin");
    let pending = server.get_json("/admin/users?status=pending", &admin);
    assert_eq!(pending["users"][0]["username"], "zhao", "{pending}");

    let mut outside = Some(Outside::start(0));
    let port = outside.as_ref().unwrap().port;
    let out = screenshots();
    let service_url = format!("http://127.0.0.1:{port}");
    let r = drive_admin(&[&server.base, s(&out), "admin", "wang", PASSWORD, "zhao", &service_url], |step| match step {
        "stop" => {
            outside.take().unwrap().stop();
        }
        "start" => outside = Some(Outside::start(port)),
        other => panic!("unknown step {other}"),
    });
    println!(
        "states {}; key {}; enrolment {}; system {}",
        r["states"], r["keyRow"], r["enrolment"]["link"], r["system"]["alert"]
    );

    // Before signing in, and an office user: the refusal, and no admin API called.
    assert_eq!((r["anonymous"]["view"].as_str(), r["anonymous"]["lang"].as_str()), (Some("signin"), Some("zh-CN")));
    assert_eq!(r["office"]["view"], "forbidden", "{r:#}");
    assert_eq!(r["office"]["heading"], "需要管理员权限", "{r:#}");
    assert_eq!((r["office"]["consoleHidden"].as_bool(), r["office"]["tables"].as_u64()), (Some(true), Some(0)));
    assert_eq!(r["office"]["adminCalls"], json!([]), "{r:#}");

    // The approval, as the page showed it and as the API tells it afterwards.
    assert_eq!((r["pendingBefore"].as_str(), r["pendingAfter"].as_str()), (Some("待审核"), Some("正常")), "{r:#}");
    let users = server.get_json("/admin/users", &admin);
    let zhao = users["users"].as_array().unwrap().iter().find(|u| u["username"] == "zhao").unwrap();
    assert_eq!(zhao["status"], "active", "{users}");
    let r2 =
        http.post(server.url("/auth/login")).json(&json!({"username": "zhao", "password": "市民注册2025!"})).send();
    assert_eq!(r2.unwrap().status(), StatusCode::OK, "the approved citizen signs in");

    // The service's health as the page saw it: up, down while stopped, up again.
    let states: Vec<(&str, &str)> = r["states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["state"].as_str().unwrap(), s["text"].as_str().unwrap()))
        .collect();
    assert_eq!(states, [("up", "在线"), ("down", "下线"), ("up", "在线")], "{r:#}");
    assert!(!r["downError"].as_str().unwrap().is_empty(), "the last error is shown: {r:#}");
    assert!(!r["downError"].as_str().unwrap().contains(&port.to_string()), "never the outside address: {r:#}");
    let id = r["serviceId"].as_str().unwrap();
    let svc = server.get_json(&format!("/services/{id}"), &admin);
    assert_eq!(svc["title"], "测试服务", "{svc}");

    // The key: created with its quota; its secret works through the proxy.
    let secret = r["keySecret"].as_str().unwrap_or_else(|| panic!("no key secret: {r:#}"));
    let keys = server.get_json("/keys", &admin);
    let key = keys["keys"].as_array().unwrap().iter().find(|k| k["name"] == "测试应用").unwrap();
    assert_eq!((key["quota"].as_u64(), key["services"].clone()), (Some(100), json!([id])), "{keys}");
    assert!(r["keyRow"].as_array().unwrap().iter().any(|c| c == "0 / 100"), "{r:#}");
    let proxied = http.get(server.url(&format!("/services/{id}/proxy/collections?key={secret}"))).send().unwrap();
    assert_eq!(proxied.status(), StatusCode::OK);

    // The server's own CSW harvested through the page: records counted, the run's summary shown.
    let harvested = r["harvest"]["records"].as_u64().unwrap_or(0);
    assert!(harvested > 0, "{r:#}");
    assert!(r["harvest"]["run"].as_str().unwrap().starts_with(&format!("新增 {harvested} ")), "{r:#}");

    // The layer's schema and the rule set through the page.
    let fields: Vec<&str> = r["layer"]["fields"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    for f in ["code", "名称", "depth", "material"] {
        assert!(fields.contains(&f), "{f} missing: {r:#}");
    }
    assert!(r["layer"]["rules"].as_str().unwrap().contains("role:citizen"), "{r:#}");
    assert_eq!(r["layer"]["rulesAfterDelete"], "没有图层规则（按默认权限）。", "{r:#}");
    let rules = server.get_json("/admin/layers/manhole/rules", &admin);
    assert_eq!(rules["rules"], json!([]), "set, then removed through the page: {rules}");

    // The enrolment code: a shikong://enrol link for the approved user, drawn as a QR image.
    let link = r["enrolment"]["link"].as_str().unwrap();
    assert!(link.starts_with("shikong://enrol?") && link.contains("zhao"), "{r:#}");
    assert!(link.contains(r["enrolment"]["code"].as_str().unwrap()), "{r:#}");
    assert!(r["enrolment"]["qrWidth"].as_u64().unwrap() > 0, "{r:#}");

    // The audit log filtered to approvals: the page's approval of zhao.
    let audit = r["audit"].as_array().unwrap();
    assert!(!audit.is_empty() && audit.iter().all(|e| e["action"] == "user.approve"), "{r:#}");
    assert!(audit[0]["cells"].as_array().unwrap().iter().any(|c| c.as_str().unwrap().contains("zhao")), "{r:#}");
    assert!(r["usageRoutes"].as_array().unwrap().iter().any(|x| x == "/admin/users"), "{r:#}");

    // The memory threshold: kept by the server, alerting, shown.
    assert!(r["system"]["alert"].as_str().unwrap().starts_with("服务进程内存"), "{r:#}");
    assert_eq!(r["system"]["memoryAlerting"], true, "{r:#}");
    let sys = server.get_json("/admin/system", &admin);
    assert_eq!(sys["thresholds"], json!({"memory_max_mb": 1}), "{sys}");
    assert_eq!(sys["alerts"][0]["metric"], "memory", "{sys}");

    // English.
    assert_eq!(r["english"]["lang"], "en", "{r:#}");
    assert_eq!(r["english"]["tabs"][0], "Users & approvals", "{r:#}");

    for f in [
        "admin-forbidden.png",
        "admin-users.png",
        "admin-services-up.png",
        "admin-services-down.png",
        "admin-keys.png",
        "admin-harvest.png",
        "admin-layers.png",
        "admin-devices.png",
        "admin-audit.png",
        "admin-system.png",
    ] {
        let meta = std::fs::metadata(out.join(f)).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(meta.len() > 5_000, "{f} is suspiciously small");
    }
}
