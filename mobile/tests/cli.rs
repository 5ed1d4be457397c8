//! The `shikong-mobile` binary's command line: help in one piece, bad arguments refused with a
//! precise message before any window opens. (Also makes Cargo build the binary for the desktop
//! window test in `tests/mobile_app.rs`.)
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_shikong-mobile")).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_options() {
    let (ok, out, _) = run(&["--help"]);
    assert!(ok);
    for opt in ["--data", "--location", "--start", "--camera", "--serve"] {
        assert!(out.contains(opt), "{opt} missing in: {out}");
    }
}

#[test]
fn bad_arguments_are_refused_precisely() {
    let (ok, _, err) = run(&["--start", "114.3,95"]);
    assert!(!ok);
    assert!(err.contains("(114.3, 95) is not a longitude/latitude"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none.nmea");
    let (ok, _, err) = run(&["--data", dir.path().to_str().unwrap(), "--location", missing.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("none.nmea"), "{err}");
}
