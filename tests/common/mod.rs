//! Helpers shared by the end-to-end tests: run the real `shikong` binary and real tools.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod desktop;
pub mod server;
pub mod webdriver;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn shikong_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shikong"))
}

/// Runs `shikong ARGS`; returns (status ok, stdout, stderr).
pub fn shikong(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(shikong_bin()).args(args).output().expect("run shikong");
    text(out)
}

fn text(out: Output) -> (bool, String, String) {
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `shikong ARGS` with `input` on standard input; fails the test when it fails.
#[track_caller]
pub fn ok_stdin(args: &[&str], input: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(shikong_bin())
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run shikong");
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let (good, out, err) = text(child.wait_with_output().expect("wait"));
    assert!(good, "shikong {args:?} failed: {err}");
    out
}

/// Runs shikong and fails the test with its stderr when it fails.
#[track_caller]
pub fn ok(args: &[&str]) -> String {
    let (good, out, err) = shikong(args);
    assert!(good, "shikong {args:?} failed: {err}");
    out
}

/// Runs shikong expecting failure; returns stderr after checking it is one clear line.
#[track_caller]
pub fn fails(args: &[&str]) -> String {
    let (good, _, err) = shikong(args);
    assert!(!good, "shikong {args:?} should have failed");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got: {err}");
    assert!(lines[0].starts_with("shikong: "), "{err}");
    assert!(!err.contains("panicked") && !err.contains("RUST_BACKTRACE"), "{err}");
    lines[0].to_owned()
}

/// A tool from the system that a test needs; the test fails (never skips) when it is missing.
#[track_caller]
pub fn tool(name: &str, package: &str) -> Command {
    let found = Command::new("sh").arg("-c").arg(format!("command -v {name}")).output().map(|o| o.status.success());
    assert!(
        found.unwrap_or(false),
        "`{name}` is not installed; this test needs it (apt-get install {package}; scripts/test.sh installs it)"
    );
    Command::new(name)
}

#[track_caller]
pub fn run_tool(mut cmd: Command) -> String {
    let out = cmd.output().expect("run tool");
    let (good, stdout, stderr) = text(out);
    assert!(good, "{cmd:?} failed: {stderr}");
    stdout + &stderr
}

pub fn ogrinfo(args: &[&str]) -> String {
    let mut c = tool("ogrinfo", "gdal-bin");
    c.args(args);
    run_tool(c)
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).expect("write fixture");
    p
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `(code, property)` pairs of a FeatureCollection, sorted by code.
pub fn codes_and(fc: &serde_json::Value, prop: &str) -> Vec<(String, serde_json::Value)> {
    let mut v: Vec<_> = fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| (f["properties"]["code"].as_str().unwrap_or("").to_owned(), f["properties"][prop].clone()))
        .collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

/// The repository's root folder.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> String {
    s(&root().join("tests/fixtures").join(name)).to_owned()
}

/// The reference data the demo loads (`scripts/fetch-data.sh`); the test fails (never skips)
/// without it.
pub fn reference_data() -> PathBuf {
    let p = root().join(".cache/data");
    assert!(
        p.join("china-division/areas.csv").is_file() && p.join("cpca/adcodes.csv").is_file(),
        "reference data missing in {}: run scripts/fetch-data.sh (scripts/test.sh does)",
        p.display()
    );
    p
}

/// The output of `shikong demo` into a fresh data folder, made once per test run and copied for
/// each test that asks (the demo builds a whole-country gazetteer: tens of seconds in a debug
/// build). The copy is a real data folder the test owns: writes do not leak between tests.
pub fn demo_data(data: &Path) -> String {
    static TEMPLATE: std::sync::OnceLock<(tempfile::TempDir, String)> = std::sync::OnceLock::new();
    let (template, output) = TEMPLATE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = ok(&["demo", "--data", s(&dir.path().join("data")), "--source", s(&reference_data())]);
        (dir, out)
    });
    copy_dir(&template.path().join("data"), data);
    output.clone()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create the data folder");
    for entry in std::fs::read_dir(from).expect("read the demo template") {
        let entry = entry.expect("template entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy a demo file");
        }
    }
}

/// The demo city in `dir/data` with the office user `wang` and the inspector `li`, served on
/// loopback: (data folder, server, wang's token, li's token).
pub fn demo_with_office(dir: &Path) -> (String, server::Server, String, String) {
    let data = s(&dir.join("data")).to_owned();
    demo_data(Path::new(&data));
    ok_stdin(&["user", "add", "--data", &data, "--role", "office", "wang"], "办公室密码123\n");
    ok_stdin(&["user", "add", "--data", &data, "--role", "inspector", "li"], "巡查员密码123\n");
    let server = server::Server::start(&data, &[]);
    let wang = ok(&["user", "token", "--data", &data, "wang"]).trim().to_owned();
    let li = ok(&["user", "token", "--data", &data, "li"]).trim().to_owned();
    (data, server, wang, li)
}
