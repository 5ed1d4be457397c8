//! Driving `wrk` (the HTTP load generator the server benchmarks compare with): the command, its
//! figures, and the Lua scripts that cycle over request paths.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::Context;
use shikong_model::Bbox;

/// wrk's figures: requests/s, p50 and p99 in ms, and its non-2xx / socket error lines.
pub(crate) struct Load {
    pub rps: f64,
    pub p50: f64,
    pub p99: f64,
    pub errors: String,
}

/// `wrk -tT -cC -dDs --latency -s SCRIPT BASE`, output captured.
pub(crate) fn command(base: &str, script: &Path, threads: u32, connections: u32, secs: u64) -> Command {
    let mut c = Command::new("wrk");
    c.args([&format!("-t{threads}"), &format!("-c{connections}"), &format!("-d{secs}s"), "--latency", "-s"])
        .arg(script)
        .arg(base)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs a wrk command to the end and reads its figures.
pub(crate) fn run(mut c: Command) -> anyhow::Result<Load> {
    parse(c.output().context("running wrk (apt-get install wrk)")?)
}

/// The figures of a finished wrk run.
pub(crate) fn parse(out: Output) -> anyhow::Result<Load> {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let field =
        |prefix: &str| text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(str::trim).map(str::to_owned));
    let rps = field("Requests/sec:")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no Requests/sec in wrk output:\n{text}"))?;
    let errors =
        text.lines().filter(|l| l.contains("Non-2xx") || l.contains("Socket errors")).collect::<Vec<_>>().join("; ");
    Ok(Load {
        rps,
        p50: field("50%").map_or(f64::NAN, |v| to_ms(&v)),
        p99: field("99%").map_or(f64::NAN, |v| to_ms(&v)),
        errors,
    })
}

/// A wrk duration (`512.00us`, `1.20ms`, `2.01s`) in milliseconds.
fn to_ms(s: &str) -> f64 {
    let s = s.trim();
    let (num, factor) = if let Some(v) = s.strip_suffix("us") {
        (v, 0.001)
    } else if let Some(v) = s.strip_suffix("ms") {
        (v, 1.0)
    } else if let Some(v) = s.strip_suffix('s') {
        (v, 1000.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().unwrap_or(f64::NAN) * factor
}

/// Writes a wrk script cycling over `paths` (optionally asking for gzip).
pub(crate) fn paths_script(script: &Path, paths: &[String], gzip: bool) -> anyhow::Result<()> {
    let mut lua = String::from("local paths = {\n");
    for p in paths {
        lua.push_str(&format!("  \"{p}\",\n"));
    }
    lua.push_str("}\nlocal i = 0\n");
    if gzip {
        lua.push_str("wrk.headers[\"Accept-Encoding\"] = \"gzip\"\n");
    }
    lua.push_str("request = function()\n  i = i + 1\n  return wrk.format(\"GET\", paths[(i % #paths) + 1])\nend\n");
    std::fs::write(script, lua)?;
    Ok(())
}

/// Writes a wrk script asking `/collections/manhole/items` (100 per page) for each of `boxes`.
pub(crate) fn bbox_items_script(script: &Path, boxes: &[Bbox]) -> anyhow::Result<()> {
    let paths: Vec<String> = boxes.iter().map(bbox_items_path).collect();
    paths_script(script, &paths, false)
}

/// `/collections/manhole/items` (100 per page) inside `b`.
pub(crate) fn bbox_items_path(b: &Bbox) -> String {
    format!(
        "/collections/manhole/items?f=json&limit=100&bbox={:.6},{:.6},{:.6},{:.6}",
        b.min_x, b.min_y, b.max_x, b.max_y
    )
}
