//! IoT sensing benchmark (issue 18), against the real release `shikong` binary on loopback:
//! (a) sustained MQTT QoS 1 intake from `shikong sensors simulate` (1,000 stations, one MQTT
//! connection each), with p99 publish → queryable sampled by a probe station (publish one
//! Observation, poll `GET /Observations('DS-MICROS')` until it answers); (b) a `dataArray` bulk
//! load of 250k observations through `POST /sta/v1.1/CreateObservations`; (c) `$top=100&$orderby=
//! phenomenonTime desc` on one datastream holding 10M readings (loaded straight into the
//! time-series store through its batch `append` API, not over the network, to save time); (d) the
//! server's RSS from `/proc/PID/status` sampled while it ingests. SQLite (the default backend).
//!
//! The named peer is FROST-Server; it is not run here: it cannot be built on this machine (its
//! Java dependencies come from Maven Central, which is unreachable from here), so its marks are
//! quoted from its maintainer's published account, never measured.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};
use shikong_store::StoreConfig;
use shikong_timeseries::{Datastream, Reading, TimeSeries};

use crate::serve::{Killed, free_port, shikong_exe, wait_ready};

#[derive(clap::Args)]
pub struct Args {
    /// Simulated stations (one MQTT connection each).
    #[arg(long, default_value_t = 1_000)]
    stations: u32,
    /// Offered load: readings per second in total over all stations.
    #[arg(long, default_value_t = 25_000.0)]
    rate: f64,
    /// Seconds of sustained intake.
    #[arg(long, default_value_t = 30)]
    duration: u64,
    /// Observations in the dataArray bulk load.
    #[arg(long, default_value_t = 250_000)]
    bulk: usize,
    /// Readings in the datastream of the latest-100 query.
    #[arg(long, default_value_t = 10_000_000)]
    big: u64,
    /// Latest-100 queries timed.
    #[arg(long, default_value_t = 200)]
    queries: usize,
    #[arg(long)]
    dir: Option<PathBuf>,
}

const PASSWORD: &str = "bench-password-123";

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().map_or(f64::NAN, ms)
}

/// `shikong serve` with MQTT on a free port; the guard, the base URL and the MQTT port.
fn start(data: &Path, mqtt_port: u16) -> anyhow::Result<(Killed, String)> {
    let mut child = Command::new(shikong_exe()?)
        .args(["serve", "--data"])
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--max-body", &(64u64 << 20).to_string()])
        .args(["--mqtt", &format!("127.0.0.1:{mqtt_port}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut line = String::new();
    BufReader::new(child.stdout.take().context("no stdout")?).read_line(&mut line)?;
    let guard = Killed(child);
    let base = line.trim().rsplit(' ').next().unwrap_or_default().to_owned();
    wait_ready(&format!("{base}/healthz"))?;
    Ok((guard, base))
}

/// VmRSS of a process in MiB.
fn rss_mib(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Samples a process's RSS every 500 ms until stopped; returns (seconds, MiB) pairs.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<Vec<(f64, f64)>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let t = Instant::now();
            let mut out = Vec::new();
            while !s.load(Ordering::Relaxed) {
                if let Some(m) = rss_mib(pid) {
                    out.push((t.elapsed().as_secs_f64(), m));
                }
                std::thread::sleep(Duration::from_millis(500));
            }
            out
        });
        RssSampler { stop, handle }
    }

    /// "start X MiB, after 10 s Y, peak Z, end W".
    fn finish(self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let v = self.handle.join().unwrap_or_default();
        let (Some(first), Some(last)) = (v.first(), v.last()) else { return "no samples".into() };
        let peak = v.iter().map(|x| x.1).fold(0.0, f64::max);
        let mid = v.iter().find(|x| x.0 >= last.0 / 2.0).map_or(f64::NAN, |x| x.1);
        format!(
            "{} samples over {:.0} s: start {:.0} MiB, half-way {:.0} MiB, end {:.0} MiB, peak {:.0} MiB",
            v.len(),
            last.0,
            first.1,
            mid,
            last.1,
            peak
        )
    }
}

fn login(http: &reqwest::blocking::Client, base: &str) -> anyhow::Result<String> {
    let login: Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "bench", "password": PASSWORD}))
        .send()?
        .error_for_status()?
        .json()?;
    Ok(login["token"].as_str().context("token")?.to_owned())
}

/// A Thing with one Datastream (unit metre); returns the Datastream's id.
fn station(http: &reqwest::blocking::Client, base: &str, token: &str, name: &str) -> anyhow::Result<i64> {
    let thing = json!({
        "name": name,
        "description": "基准测试站点",
        "Locations": [{"name": name, "description": "洪山区", "encodingType": "application/geo+json",
                       "location": {"type": "Point", "coordinates": [114.4, 30.5]}}],
        "Datastreams": [{"name": format!("{name} 水位"), "description": "基准", "observationType":
            "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
            "unitOfMeasurement": {"name": "米", "symbol": "m", "definition": "http://unitsofmeasure.org/ucum.html#m"},
            "Sensor": {"name": "基准传感器", "description": "基准", "encodingType": "text/plain", "metadata": "bench"},
            "ObservedProperty": {"name": "基准水位", "definition": "urn:shikong:property:bench", "description": "基准"}}]
    });
    let t: Value = http
        .post(format!("{base}/sta/v1.1/Things"))
        .bearer_auth(token)
        .json(&thing)
        .send()?
        .error_for_status()?
        .json()?;
    let id = t["@iot.id"].as_i64().context("Thing id")?;
    let ds: Value = http
        .get(format!("{base}/sta/v1.1/Things({id})/Datastreams"))
        .bearer_auth(token)
        .send()?
        .error_for_status()?
        .json()?;
    ds["value"][0]["@iot.id"].as_i64().context("Datastream id")
}

/// Publishes one Observation every 100 ms to `ds` and times how long until a GET returns it.
fn probe(base: &str, token: &str, mqtt_port: u16, ds: i64, until: Instant) -> anyhow::Result<Vec<Duration>> {
    let mut opts = rumqttc::MqttOptions::new("shikong-bench-probe", "127.0.0.1", mqtt_port);
    opts.set_credentials("bench", token).set_keep_alive(Duration::from_secs(30));
    let (client, mut conn) = rumqttc::Client::new(opts, 16);
    std::thread::spawn(move || for _ in conn.iter() {});
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build()?;
    let topic = format!("v1.1/Datastreams({ds})/Observations");
    let mut out = Vec::new();
    let mut i = 0u64;
    while Instant::now() < until {
        let now = Timestamp::from_microsecond(Timestamp::now().as_microsecond())?;
        let url = format!("{base}/sta/v1.1/Observations('{ds}-{}')", now.as_microsecond());
        let body = serde_json::to_vec(&json!({"phenomenonTime": now.to_string(), "result": i as f64}))?;
        let sent = Instant::now();
        client.publish(topic.as_str(), rumqttc::QoS::AtLeastOnce, false, body)?;
        loop {
            if http.get(&url).bearer_auth(token).send().is_ok_and(|r| r.status().is_success()) {
                out.push(sent.elapsed());
                break;
            }
            if sent.elapsed() > Duration::from_secs(10) {
                bail!("probe reading {i} not queryable after 10 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        i += 1;
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = client.disconnect();
    Ok(out)
}

/// Runs `shikong sensors simulate`; returns its summary line.
fn simulate(base: &str, token: &str, stations: u32, rate: f64, secs: f64) -> anyhow::Result<String> {
    let out = Command::new(shikong_exe()?)
        .args(["sensors", "simulate", "--server", base, "--token", token])
        .args(["--stations", &stations.to_string(), "--rate", &rate.to_string(), "--duration", &secs.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if !out.status.success() {
        bail!("shikong sensors simulate failed: {text}");
    }
    Ok(text)
}

/// The figure after `label` in the simulator's summary (`… 12345 stored …`).
fn figure_before(summary: &str, label: &str) -> Option<f64> {
    let i = summary.find(label)?;
    summary[..i].split_whitespace().last()?.trim_start_matches('(').parse().ok()
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let data = dir.join("iot-data");
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    std::fs::create_dir_all(&data)?;
    shikong_store::init(&StoreConfig::in_dir(&data))?;
    shikong_auth::AuthStore::open_in(&data)?.add_user(
        &shikong_auth::Actor::local("bench"),
        "bench",
        "office".parse()?,
        PASSWORD,
    )?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "# shikong-bench iot (issue 18) — release build, SQLite backend, this machine ({cores} cores, shared; load average {})",
        load.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    );
    println!(
        "# peer: FROST-Server — not run: it cannot be built here (its Java dependencies come from Maven Central, which this machine cannot reach); its marks below are its maintainer's published account, not measured here"
    );

    let mqtt_port = free_port()?;
    let (server, base) = start(&data, mqtt_port)?;
    let pid = server.0.id();
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(600)).build()?;
    let token = login(&http, &base)?;

    // (a) Sustained MQTT intake.
    let t = Instant::now();
    simulate(&base, &token, a.stations, f64::from(a.stations), 1.0)?;
    println!(
        "setup: {} stations created as Things (deep insert over HTTP) in {:.1} s",
        a.stations,
        t.elapsed().as_secs_f64()
    );
    let probe_ds = station(&http, &base, &token, "基准探针站")?;
    let rss = RssSampler::start(pid);
    let until = Instant::now() + Duration::from_secs(a.duration);
    let probe_thread = {
        let (base, token) = (base.clone(), token.clone());
        std::thread::spawn(move || probe(&base, &token, mqtt_port, probe_ds, until))
    };
    let summary = simulate(&base, &token, a.stations, a.rate, a.duration as f64)?;
    let mut lat = probe_thread.join().map_err(|_| anyhow::anyhow!("probe panicked"))??;
    let rss_intake = rss.finish();
    lat.sort();
    let stored_rate = figure_before(&summary, "stored/s").unwrap_or(f64::NAN);
    println!("(a) MQTT QoS 1 intake, {} stations, offered {:.0}/s for {} s: {summary}", a.stations, a.rate, a.duration);
    println!(
        "    sustained {stored_rate:.0} observations/s stored (each acknowledged after its durable commit); publish→queryable over {} probes: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   [goal ≥ 20,000/s, p99 < 1 s; FROST-Server ≈ 5,000 inserts/s on SSDs by its maintainer's account]",
        lat.len(),
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        lat.last().map_or(f64::NAN, |d| ms(*d))
    );
    println!("(d) server RSS while ingesting over MQTT: {rss_intake}   [goal: flat]");

    // (b) dataArray bulk load.
    let ds: Value = http
        .get(format!("{base}/sta/v1.1/Datastreams?$select=id&$top=10"))
        .bearer_auth(&token)
        .send()?
        .error_for_status()?
        .json()?;
    let ids: Vec<i64> =
        ds["value"].as_array().context("Datastreams")?.iter().filter_map(|d| d["@iot.id"].as_i64()).collect();
    let per = a.bulk.div_ceil(ids.len().max(1));
    let t0 = Timestamp::now() - SignedDuration::from_hours(24 * 30);
    let mut body = String::with_capacity(a.bulk * 48);
    body.push('[');
    let mut rows = 0;
    for (k, id) in ids.iter().enumerate() {
        let n = per.min(a.bulk - rows);
        if k > 0 {
            body.push(',');
        }
        body.push_str(&format!(
            "{{\"Datastream\":{{\"@iot.id\":{id}}},\"components\":[\"phenomenonTime\",\"result\"],\"dataArray@iot.count\":{n},\"dataArray\":["
        ));
        for i in 0..n {
            if i > 0 {
                body.push(',');
            }
            let t = t0 + SignedDuration::from_secs(i as i64);
            body.push_str(&format!("[\"{t}\",{:.3}]", 19.5 + (i % 100) as f64 / 100.0));
        }
        body.push_str("]}");
        rows += n;
    }
    body.push(']');
    let rss = RssSampler::start(pid);
    let t = Instant::now();
    let r = http
        .post(format!("{base}/sta/v1.1/CreateObservations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()?;
    let status = r.status();
    let answer: Value = r.json()?;
    let bulk_secs = t.elapsed().as_secs_f64();
    let rss_bulk = rss.finish();
    if !status.is_success() {
        bail!("CreateObservations: {status}: {answer}");
    }
    let answered = answer.as_array().map_or(0, Vec::len);
    let errors = answer.as_array().map_or(0, |v| v.iter().filter(|x| *x == "error").count());
    println!(
        "(b) dataArray bulk load: {rows} observations ({:.1} MB body, {} datastreams) through POST /sta/v1.1/CreateObservations in {bulk_secs:.1} s ({:.0}/s; {answered} answered, {errors} errors)   [goal < 10 s; FROST-Server: 250k with its per-row trigger on took hours, a dataArray of 100k took the server down, by its maintainer's account]",
        body.len() as f64 / 1e6,
        ids.len(),
        rows as f64 / bulk_secs
    );
    println!("(d) server RSS during the bulk load: {rss_bulk}");
    drop(body);

    // (c) Latest 100 at 10M: the readings go straight into the series' file (server stopped).
    let big = station(&http, &base, &token, "基准千万站")?;
    drop(server);
    let t = Instant::now();
    {
        let series =
            shikong_timeseries::sqlite::SqliteSeries::open_in(&data, Arc::new(shikong_model::clock::SystemClock))?;
        series.define(&Datastream { id: big, unit: "m".into(), min: -1e9, max: 1e9, retention: None })?;
        let series = Arc::new(series);
        let start = Timestamp::now() - SignedDuration::from_secs(a.big as i64 + 3600);
        let producers = 2u64;
        let per = a.big.div_ceil(producers);
        let handles: Vec<_> = (0..producers)
            .map(|p| {
                let series = series.clone();
                let total = a.big;
                std::thread::spawn(move || -> anyhow::Result<()> {
                    let (from, to) = (p * per, ((p + 1) * per).min(total));
                    let mut i = from;
                    while i < to {
                        let end = (i + shikong_timeseries::MAX_BATCH as u64).min(to);
                        let batch: Vec<Reading> = (i..end)
                            .map(|k| {
                                Reading::new(
                                    big,
                                    start + SignedDuration::from_secs(k as i64),
                                    19.0 + (k % 1000) as f64 / 1000.0,
                                )
                            })
                            .collect();
                        series.append(&batch)?;
                        i = end;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow::anyhow!("loader panicked"))??;
        }
        let c = series.counts()?;
        let secs = t.elapsed().as_secs_f64();
        println!(
            "(c) setup: {} readings loaded into one datastream straight through the time-series store's batch API (SqliteSeries::append, batches of 10,000, 2 threads; not over HTTP/MQTT, to save time) in {secs:.0} s ({:.0}/s); the store now holds {} readings",
            a.big,
            a.big as f64 / secs,
            c.readings
        );
    }
    let (server, base) = start(&data, free_port()?)?;
    let url = format!("{base}/sta/v1.1/Datastreams({big})/Observations?$top=100&$orderby=phenomenonTime%20desc");
    let mut times = Vec::with_capacity(a.queries);
    for q in 0..a.queries + 5 {
        let t = Instant::now();
        let v: Value = http.get(&url).bearer_auth(&token).send()?.error_for_status()?.json()?;
        let d = t.elapsed();
        let n = v["value"].as_array().map_or(0, Vec::len);
        if n != 100 {
            bail!("latest-100 returned {n} observations: {v}");
        }
        if q >= 5 {
            times.push(d);
        }
    }
    times.sort();
    println!(
        "(c) $top=100&$orderby=phenomenonTime desc on the datastream with {} readings: p50 {:.1} ms, p95 {:.1} ms over {} requests (HTTP keep-alive, one client)   [goal < 20 ms at 10M]",
        a.big,
        pct(&times, 0.5),
        pct(&times, 0.95),
        times.len()
    );
    drop(server);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("# load average at the end: {}", load.split_whitespace().take(3).collect::<Vec<_>>().join(" "));
    Ok(())
}
