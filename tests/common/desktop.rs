//! The desktop app under WebDriver: its binary (built by cargo for the test), `tauri-driver` on
//! a virtual display, and a signed-in start on the demo server — shared by the desktop tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use super::webdriver::Session;
use super::{root, s, tool};

/// The desktop binary, built (or found fresh) by cargo in this test's target folder.
pub fn desktop_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile = exe.parent().and_then(Path::parent).unwrap().to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The test binary's own build is over, so cargo's lock is free: this is quick when the app is
    // up to date and keeps the test from driving a stale window.
    // `cargo test --workspace` has built this very binary already (the desktop's own `cli` test
    // needs it), with the features of the whole workspace's test build. Asking for it the same way
    // (workspace, test mode, only the `cli` tests) finds it fresh; `cargo build -p
    // shikong-desktop` would resolve other features and rebuild most of the app's dependencies
    // (minutes of a cold CI run).
    let release = profile.file_name().is_some_and(|n| n == "release");
    let out = Command::new(cargo)
        .args(["test", "--workspace", "--no-run", "--test", "cli"])
        .args(release.then_some("--release"))
        .current_dir(root())
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .output()
        .expect("run cargo test --workspace --no-run --test cli");
    assert!(
        out.status.success(),
        "building shikong-desktop (cargo test --workspace --no-run --test cli) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile.join("shikong-desktop");
    assert!(bin.is_file(), "{} not built", bin.display());
    bin
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `tauri-driver` (and the `WebKitWebDriver` it starts) on a virtual display; the whole process
/// group is ended when dropped.
pub struct Driver {
    child: Child,
    base: String,
}

impl Driver {
    pub fn start(env: &[(&str, &str)], log: &Path) -> Driver {
        use std::os::unix::process::CommandExt as _;
        tool("xvfb-run", "xvfb");
        tool("WebKitWebDriver", "webkit2gtk-driver");
        tool("tauri-driver", "tauri-driver (cargo install tauri-driver --locked)");
        let (port, native) = (free_port(), free_port());
        let mut cmd = Command::new("xvfb-run");
        cmd.args(["-a", "-s", "-screen 0 1280x900x24", "tauri-driver"])
            .args(["--port", &port.to_string(), "--native-port", &native.to_string()])
            .args(["--native-driver", "/usr/bin/WebKitWebDriver"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .process_group(0);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("run xvfb-run tauri-driver");
        let base = format!("http://127.0.0.1:{port}");
        // tauri-driver listens at once; the WebKitWebDriver it starts a little later.
        let deadline = Instant::now() + Duration::from_secs(30);
        for p in [port, native] {
            while std::net::TcpStream::connect(("127.0.0.1", p)).is_err() {
                let log = std::fs::read_to_string(log).unwrap();
                assert!(Instant::now() < deadline, "tauri-driver or WebKitWebDriver did not listen on {p}: {log}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Driver { child, base }
    }

    /// A session with the app started with `args`.
    pub fn open(&self, bin: &Path, args: &[&str]) -> Session {
        Session::new(&self.base, json!({"browserName": "wry", "tauri:options": {"application": bin, "args": args}}))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pgid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-s", "TERM", "--", &format!("-{pgid}")]).status();
        let _ = self.child.wait();
    }
}

/// The app started by script (`--server URL --user NAME`, the password through
/// `SHIKONG_DESKTOP_PASSWORD_FILE`) in a fresh data folder under `dir`, waited for until the
/// header names the user. Keep the driver alive as long as the session.
pub fn signed_in(dir: &Path, server: &str, user: &str, password: &str) -> (Driver, Session) {
    let bin = desktop_bin();
    let password_file = dir.join(format!("password-{user}"));
    std::fs::write(&password_file, format!("{password}\n")).unwrap();
    let log = dir.join(format!("driver-{user}.log"));
    let driver = Driver::start(&[("SHIKONG_DESKTOP_PASSWORD_FILE", s(&password_file)), ("RUST_LOG", "info")], &log);
    let data = dir.join(format!("desktop-{user}"));
    let app = driver.open(&bin, &["--server", server, "--user", user, "--data", s(&data)]);
    app.wait_text("[data-testid=who]", 60, "signed in", |t| t.contains(user));
    (driver, app)
}

/// The app started again on `user`'s data folder of [`signed_in`] (`DIR/desktop-USER`), without
/// a scripted sign-in: it opens on the session saved in the secret storage, waited for until the
/// header names the user. Answers how long that took from the session's request (the binary
/// found or built before).
pub fn reopen(driver: &Driver, dir: &Path, user: &str) -> (Session, Duration) {
    let bin = desktop_bin();
    let started = Instant::now();
    let data = dir.join(format!("desktop-{user}"));
    let app = driver.open(&bin, &["--data", s(&data)]);
    app.wait_text("[data-testid=who]", 60, "the saved session", |t| t.contains(user));
    (app, started.elapsed())
}

/// Where the desktop tests save their screenshots.
pub fn shots() -> PathBuf {
    root().join("target/screenshots/desktop")
}

/// Polls `f` every 250 ms until it gives `Some`, for up to `secs`; fails the test naming `what`.
#[track_caller]
pub fn until<T>(secs: u64, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A case opened over the API as the holder of `token` (`POST /cases` with `body`): its JSON.
pub fn open_case(base: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
    let r =
        reqwest::blocking::Client::new().post(format!("{base}/cases")).bearer_auth(token).json(&body).send().unwrap();
    assert_eq!(r.status(), 201, "POST /cases {body}");
    super::json(&r.text().unwrap())
}

/// In the 本地副本 view: searches the divisions for `name` and picks the one whose code is `code`
/// (the area to download).
pub fn pick_division(app: &Session, name: &str, code: &str) {
    app.type_into("#rep-div-q", name);
    app.click("#rep-div-search");
    app.wait_text("#rep-div", 30, "divisions found", |t| t.contains(name));
    app.execute(
        "const s = document.getElementById('rep-div');
         s.value = [...s.options].find((o) => o.textContent.includes(arguments[0])).value;",
        json!([code]),
    );
}

/// A GET of the server's API at `base` as the holder of `token`, which must answer 200; its JSON.
/// Owns what it needs (not the `Server`), so a test can stop and restart the server meanwhile.
pub fn api_get(base: &str, token: &str) -> impl Fn(&str) -> serde_json::Value {
    let (base, token, http) = (base.to_owned(), token.to_owned(), reqwest::blocking::Client::new());
    move |path: &str| {
        let r = http.get(format!("{base}{path}")).bearer_auth(&token).send().unwrap();
        assert_eq!(r.status(), 200, "GET {path}");
        super::json(&r.text().unwrap())
    }
}

/// The codes and positions of `layer`'s points in the desktop's downloaded replica of `user`
/// under the test folder `dir` (`desktop-USER/replicas`).
pub fn replica_points(dir: &Path, user: &str, layer: &str) -> Vec<(String, f64, f64)> {
    use shikong_model::{Bbox, Geometry};
    let file = std::fs::read_dir(dir.join(format!("desktop-{user}/replicas")))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "gpkg"))
        .expect("the downloaded replica");
    let r = shikong_replica::Replica::open(&file).unwrap();
    let all = r.query_bbox(layer, &Bbox { min_x: -180.0, min_y: -90.0, max_x: 180.0, max_y: 90.0 }).unwrap();
    all.into_iter()
        .filter_map(|f| match f.feature.geometry {
            Some(Geometry::Point(c)) => Some((f.feature.code, c.x, c.y)),
            _ => None,
        })
        .collect()
}
