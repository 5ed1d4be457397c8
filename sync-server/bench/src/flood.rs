//! Hostile-flood benchmark (issue 14): `/healthz` and an ordinary bbox query, each sampled by one
//! client, first on a quiet server (the baseline), then while 8 clients send filters the server
//! must refuse (too long, too deep, too many nodes) and 8 clients flood `POST /auth/login` with
//! wrong passwords. Prints p50/p99/max of both phases and the ratio; the goal is a flooded p99
//! within 2× of the quiet one. The real `shikong` release binary serves over loopback TCP, one
//! connection per request (the flood's clients do not get to reuse connections either).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::data::{boxes, write_geojson};
use crate::serve::{public_point_store, shikong_exe, start_shikong};

#[derive(clap::Args)]
pub struct Args {
    /// Points in the public layer the ordinary query reads.
    #[arg(long, default_value_t = 100_000)]
    features: u64,
    /// Seconds each phase samples for.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Clients sending hostile filters, and clients flooding logins (each).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// The hostile filters: every one is refused with 400 before any store work.
fn hostile_filters() -> Vec<(&'static str, String)> {
    vec![
        ("cql2-text", format!("depth = 1 OR code = '{}'", "a".repeat(20_000))),
        ("cql2-text", format!("{}depth = 1{}", "(".repeat(5_000), ")".repeat(5_000))),
        ("cql2-text", vec!["1"; 8_000].join("=")),
        ("cql2-text", format!("depth = {}", vec!["1"; 4_000].join("*"))),
        ("cql2-json", format!("{}1{}", "[".repeat(5_000), "]".repeat(5_000))),
        (
            "cql2-json",
            format!("{{\"op\":\"in\",\"args\":[{{\"property\":\"depth\"}},[{}]]}}", vec!["1"; 3_000].join(",")),
        ),
    ]
}

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// One HTTP/1.1 request on a fresh connection: the status and how long the answer took.
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> anyhow::Result<(u16, Duration)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    s.set_nodelay(true)?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    let head = String::from_utf8_lossy(&out[..out.len().min(64)]).into_owned();
    let status =
        head.split(' ').nth(1).and_then(|c| c.parse().ok()).with_context(|| format!("no status in {head:?}"))?;
    Ok((status, started.elapsed()))
}

/// p50, p99 and max of one sampled series, in ms.
#[derive(Clone, Copy)]
struct Latency {
    n: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

impl Latency {
    fn of(mut v: Vec<Duration>) -> Self {
        v.sort();
        let at = |p: f64| v.get(((v.len().max(1) - 1) as f64 * p).round() as usize).map_or(f64::NAN, ms);
        Self { n: v.len(), p50: at(0.5), p99: at(0.99), max: v.last().map_or(f64::NAN, ms) }
    }
}

fn ms(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// What one phase measured.
struct Phase {
    healthz: Latency,
    query: Latency,
    refused_filters: usize,
    refused_logins: usize,
}

/// Samples `/healthz` (every 10 ms) and the ordinary query (back to back) for `secs`, with or
/// without the flood running.
fn phase(addr: SocketAddr, queries: &[String], secs: u64, flood_clients: usize) -> anyhow::Result<Phase> {
    let filters: Vec<String> = hostile_filters()
        .into_iter()
        .map(|(lang, f)| format!("/collections/manhole/items?filter-lang={lang}&filter={}", enc(&f)))
        .collect();
    let stop = AtomicBool::new(false);
    let (refused_filters, refused_logins) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let failure: Mutex<Option<String>> = Mutex::new(None);
    let (mut health, mut query) = (Vec::new(), Vec::new());
    std::thread::scope(|s| -> anyhow::Result<()> {
        for i in 0..flood_clients {
            let (stop1, filters, refused, failure1) = (&stop, &filters, &refused_filters, &failure);
            s.spawn(move || {
                let mut k = i;
                while !stop1.load(Ordering::Relaxed) {
                    match http(addr, "GET", &filters[k % filters.len()], "") {
                        Ok((400, _)) => _ = refused.fetch_add(1, Ordering::Relaxed),
                        other => _ = failure1.lock().map(|mut f| *f = Some(format!("hostile filter: {other:?}"))),
                    }
                    k += 1;
                }
            });
            let (stop2, refused, failure2) = (&stop, &refused_logins, &failure);
            s.spawn(move || {
                let user = if i % 2 == 0 { "wang" } else { "nobody" };
                let body = format!("{{\"username\":\"{user}\",\"password\":\"wrong\"}}");
                while !stop2.load(Ordering::Relaxed) {
                    match http(addr, "POST", "/auth/login", &body) {
                        Ok((401 | 403 | 429, _)) => _ = refused.fetch_add(1, Ordering::Relaxed),
                        other => _ = failure2.lock().map(|mut f| *f = Some(format!("login: {other:?}"))),
                    }
                }
            });
        }
        let sampler = s.spawn(|| -> anyhow::Result<Vec<Duration>> {
            let mut out = Vec::new();
            let until = Instant::now() + Duration::from_millis(500) + Duration::from_secs(secs);
            std::thread::sleep(Duration::from_millis(500));
            let mut i = 0;
            while Instant::now() < until {
                let (status, took) = http(addr, "GET", &queries[i % queries.len()], "")?;
                if status != 200 {
                    bail!("ordinary query answered {status}");
                }
                out.push(took);
                i += 1;
            }
            Ok(out)
        });
        // Let the flood build up, then sample.
        std::thread::sleep(Duration::from_millis(500));
        let until = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < until {
            let (status, took) = http(addr, "GET", "/healthz", "")?;
            if status != 200 {
                bail!("/healthz answered {status}");
            }
            health.push(took);
            std::thread::sleep(Duration::from_millis(10));
        }
        query = sampler.join().map_err(|_| anyhow::anyhow!("sampler panicked"))??;
        stop.store(true, Ordering::Relaxed);
        Ok(())
    })?;
    if let Some(f) = failure.into_inner().ok().flatten() {
        bail!("a flood request got an unexpected answer: {f}");
    }
    Ok(Phase {
        healthz: Latency::of(health),
        query: Latency::of(query),
        refused_filters: refused_filters.into_inner(),
        refused_logins: refused_logins.into_inner(),
    })
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    println!(
        "# hostile flood: {} points; {} hostile-filter + {} login-flood clients; {} s per phase",
        a.features, a.clients, a.clients, a.duration
    );
    let src = dir.join("points.geojson");
    write_geojson(&src, a.features)?;
    let data = dir.join("data");
    public_point_store(&data, &src)?;
    // A real account, so half the login flood hits Argon2 and the per-account throttle.
    let mut add = Command::new(shikong_exe()?)
        .args(["user", "add", "--data"])
        .arg(&data)
        .args(["--role", "office", "wang"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()?;
    add.stdin.take().context("stdin")?.write_all(b"correct horse battery staple\n")?;
    if !add.wait()?.success() {
        bail!("shikong user add failed");
    }
    let (server, base) = start_shikong(&data)?;
    let addr: SocketAddr = base.trim_start_matches("http://").parse().with_context(|| format!("address in {base}"))?;
    let queries: Vec<String> = boxes(a.features, 100.0, 500, 7).iter().map(crate::wrk::bbox_items_path).collect();

    let quiet = phase(addr, &queries, a.duration, 0)?;
    let flood = phase(addr, &queries, a.duration, a.clients)?;
    drop(server);

    let row = |name: &str, l: Latency| {
        println!("{name:<28} n={:>6}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms", l.n, l.p50, l.p99, l.max);
    };
    row("/healthz, quiet", quiet.healthz);
    row("/healthz, under the flood", flood.healthz);
    row("bbox query, quiet", quiet.query);
    row("bbox query, under the flood", flood.query);
    println!(
        "flood: {} hostile filters refused, {} logins refused in {} s",
        flood.refused_filters, flood.refused_logins, a.duration
    );
    println!(
        "p99 ratio flood/quiet: /healthz {:.2}×, bbox query {:.2}× (goal ≤ 2×)",
        flood.healthz.p99 / quiet.healthz.p99,
        flood.query.p99 / quiet.query.p99
    );
    Ok(())
}
