//! The scripted start, as a process: `shikong-desktop --server URL --user NAME` reads the
//! password from standard input and signs in before any window exists, so these run without a
//! display. (The window itself is driven through WebDriver in `tests/desktop_app.rs`.)
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

fn run(args: &[&str], data: &std::path::Path, stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shikong-desktop"))
        .args(args)
        .arg("--data")
        .arg(data)
        .env("SHIKONG_DESKTOP_SECRETS", "file")
        .env_remove("SHIKONG_DESKTOP_PASSWORD_FILE")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run shikong-desktop");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One answer to `POST /auth/login`: a token for wang.
fn login_server(status: u16) -> String {
    let body = if status == 200 {
        r#"{"token": "tok-1", "user": {"username": "wang", "role": "office"}, "expires_at": "2026-12-31T00:00:00+08:00"}"#
    } else {
        r#"{"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": "wrong username or password"}"#
    };
    shikong_app_core::testkit::one_answer_status(status, body)
}

#[test]
fn the_password_comes_from_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("app");
    let server = login_server(200);
    let o = run(&["--server", &server, "--user", "wang"], &data, "办公室密码123\n");
    // Signed in and saved before the window: without a display the window then cannot open.
    let saved = std::fs::read_to_string(data.join("secrets/session")).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)));
    assert!(saved.contains("tok-1") && saved.contains(&server), "{saved}");
    assert!(!std::fs::read_to_string(data.join("device.json")).unwrap().contains("tok-1"));
}

#[test]
fn a_refused_or_missing_password_ends_the_start_with_a_message() {
    let dir = tempfile::tempdir().unwrap();
    let server = login_server(401);
    let o = run(&["--server", &server, "--user", "wang"], &dir.path().join("a"), "wrong\n");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains(&format!("signing in to {server} as wang")) && e.contains("401"), "{e}");
    assert!(!dir.path().join("a/secrets/session").exists());

    let o = run(&["--server", "http://127.0.0.1:9", "--user", "wang"], &dir.path().join("b"), "");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no password given"), "{}", stderr(&o));

    let o = run(&["--user", "wang"], &dir.path().join("c"), "");
    assert_eq!(o.status.code(), Some(2), "--user needs --server: {}", stderr(&o));
}
