//! The analysis engine's reference numbers are what the anchor libraries compute today.
//!
//! `shared/analysis/tests/*.rs` compare shikong's Gi*, local Moran's I, DBSCAN, HDBSCAN, kernel
//! density, stop detection, aggregation and projection with JSON files in
//! `tests/fixtures/analysis/`, so those tests need no Python. Here every script that writes one of
//! them runs again with the pinned PyPI packages `scripts/deps.sh test` installs (esda, libpysal,
//! scikit-learn, pymannkendall, hdbscan, MovingPandas, shapely, pyproj, geographiclib) and must
//! write the same file (numbers to 1e-9 relative): the numbers the Rust tests trust are the
//! libraries' own, not a copy that drifted.

use std::process::Command;

use serde_json::Value as Json;

use crate::common::*;

/// Where two reference documents differ: numbers beyond 1e-9 relative (a newer numpy may change
/// the last digits of a sum), anything else not equal. `None` when they agree.
fn first_difference(want: &Json, got: &Json, at: &str) -> Option<String> {
    match (want, got) {
        (Json::Number(a), Json::Number(b)) => {
            let (a, b) = (a.as_f64()?, b.as_f64()?);
            let scale = 1f64.max(a.abs()).max(b.abs());
            ((a - b).abs() > 1e-9 * scale).then(|| format!("{at}: checked in {a}, computed {b}"))
        }
        (Json::Array(a), Json::Array(b)) => {
            if a.len() != b.len() {
                return Some(format!("{at}: {} entries checked in, {} computed", a.len(), b.len()));
            }
            a.iter().zip(b).enumerate().find_map(|(i, (x, y))| first_difference(x, y, &format!("{at}[{i}]")))
        }
        (Json::Object(a), Json::Object(b)) => {
            if a.len() != b.len() || a.keys().any(|k| !b.contains_key(k)) {
                return Some(format!(
                    "{at}: members {:?} checked in, {:?} computed",
                    a.keys().collect::<Vec<_>>(),
                    b.keys().collect::<Vec<_>>()
                ));
            }
            a.iter().find_map(|(k, x)| first_difference(x, &b[k], &format!("{at}.{k}")))
        }
        (a, b) => (a != b).then(|| format!("{at}: checked in {a}, computed {b}")),
    }
}

#[test]
fn analysis_reference_files_are_what_the_anchor_libraries_compute() {
    let src = root().join("tests/fixtures/analysis");
    let work = tempfile::tempdir().unwrap();
    let mut scripts = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".py") {
            // The scripts write next to themselves: run copies, so the checked-in files stay.
            std::fs::copy(&path, work.path().join(&name)).unwrap();
            scripts.push(name);
        }
    }
    scripts.sort();
    assert!(scripts.len() >= 5, "{scripts:?}");
    let probe = Command::new("python3")
        .args([
            "-c",
            "import esda, libpysal, sklearn, pymannkendall, hdbscan, movingpandas, shapely, pyproj, geographiclib",
        ])
        .output()
        .expect("python3 runs");
    assert!(
        probe.status.success(),
        "the anchor libraries are not installed (scripts/deps.sh test installs them): {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    // All at once: the slowest (HDBSCAN on a 2,000 × 2,000 geodesic matrix) sets the time.
    let running: Vec<_> = scripts
        .iter()
        .map(|name| {
            let child = Command::new("python3")
                .arg(work.path().join(name))
                .current_dir(work.path())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("python3 starts");
            (name, child)
        })
        .collect();
    for (name, child) in running {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    }
    let mut compared = 0;
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let name = path.file_name().unwrap().to_owned();
        let fresh = work.path().join(&name);
        assert!(fresh.is_file(), "no script wrote {name:?}");
        let read = |p: &std::path::Path| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        };
        if let Some(diff) = first_difference(&read(&path), &read(&fresh), "$") {
            panic!("{name:?}: the anchor libraries now compute something else: {diff}");
        }
        compared += 1;
    }
    assert!(compared >= 5, "{compared} reference files compared");
}
