//! Shutdown is bounded: SIGTERM ends the real `shikong serve` within its grace period (10 s by
//! default) even while clients hold requests open — one trickling its headers (slowloris), one
//! in the middle of sending a large body to a handler — and the exit status is 0.

use std::io::Write as _;
use std::net::TcpStream;
use std::time::Duration;

use crate::common::server::Server;
use crate::common::*;

#[test]
fn sigterm_ends_the_server_within_the_grace_period_despite_open_requests() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    let server = Server::start(&data, &[]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    // Headers that never end.
    let mut slowloris = TcpStream::connect(&addr).unwrap();
    slowloris.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n").unwrap();
    // A sign-in whose body (1 MB announced) arrives a few bytes at a time: the handler waits for it.
    let mut upload = TcpStream::connect(&addr).unwrap();
    upload
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{\"username\": \"",
        )
        .unwrap();
    let trickle = std::thread::spawn(move || {
        for _ in 0..300 {
            if upload.write_all(b"aaaa").is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    // Grace 10 s (the default), then the open connections are closed and the process exits.
    let stopped = server.stop_within(Duration::from_secs(16));
    let _ = trickle.join();
    let (success, after) = stopped.expect("the server must exit within 16 s of SIGTERM (grace 10 s)");
    assert!(success, "exit status 0 after a SIGTERM (took {after:?})");
    drop(slowloris);
}

/// With `--shutdown-grace 1`, an idle server exits at once and a busy one within about a second.
#[test]
fn the_grace_period_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let data = s(&dir.path().join("data")).to_owned();
    ok(&["init", "--data", &data]);
    let server = Server::start(&data, &["--shutdown-grace", "1"]);
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut slowloris = TcpStream::connect(&addr).unwrap();
    slowloris.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let (success, after) = server.stop_within(Duration::from_secs(6)).expect("exits within 6 s (grace 1 s)");
    assert!(success && after < Duration::from_secs(4), "status ok: {success}, after {after:?}");
    drop(slowloris);
}
