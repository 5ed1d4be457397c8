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
    let release = profile.file_name().is_some_and(|n| n == "release");
    let out = Command::new(cargo)
        .args(["build", "-p", "shikong-desktop", "--bin", "shikong-desktop"])
        .args(release.then_some("--release"))
        .current_dir(root())
        .env("CARGO_TARGET_DIR", profile.parent().unwrap())
        .output()
        .expect("run cargo build -p shikong-desktop");
    assert!(out.status.success(), "cargo build -p shikong-desktop failed: {}", String::from_utf8_lossy(&out.stderr));
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
