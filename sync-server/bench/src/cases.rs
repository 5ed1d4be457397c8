//! Case workflow benchmark (issue 15): durable transitions per second with their p50/p99 (office
//! clients acting on cases over HTTP against the real `shikong` release binary, each action one
//! committed store transaction; first with one disk sync per transaction — the server with
//! `SHIKONG_GROUP_COMMIT=off`, the peer figure — then with group commit), the overdue scan over N open cases, and `GET /cases` p50 with N
//! cases stored. The N cases are seeded straight into the store (the same feature codec the
//! runtime writes), 1 in 1,000 with a stage deadline already past.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use shikong_http::cases::record::{self, CaseRecord, LAYER};
use shikong_model::{Coord, EntityId, Geometry};
use shikong_store::{NewFeature, StoreConfig, TxMeta};
use shikong_workflow::{Assignee, Case};

use crate::serve::start_shikong_with;

#[derive(clap::Args)]
pub struct Args {
    /// Open cases seeded into the store.
    #[arg(long, default_value_t = 1_000_000)]
    cases: u64,
    /// Cases driven through accept → register → dispatch over HTTP (3 transitions each).
    #[arg(long, default_value_t = 1_000)]
    driven: u64,
    /// Concurrent office clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    #[arg(long)]
    dir: Option<PathBuf>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    sorted.get(((sorted.len().max(1) - 1) as f64 * p).round() as usize).copied().map_or(f64::NAN, ms)
}

/// `n` dispatched cases, one in 1,000 already past its deadline, inserted in batches.
fn seed(store: &dyn shikong_store::Store, n: u64) -> anyhow::Result<()> {
    let flow = shikong_workflow::shipped::standard_flow()?;
    let now = Timestamp::now();
    {
        let mut tx = store.begin(TxMeta::by("bench"))?;
        tx.create_layer(record::layer_def())?;
        for fields in record::INDEXES {
            tx.ensure_index(LAYER, fields)?;
        }
        tx.commit()?;
    }
    let mut done = 0u64;
    let bar = indicatif::ProgressBar::new(n).with_message("seeding cases");
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    while done < n {
        let mut tx = store.begin(TxMeta::by("bench"))?;
        tx.bulk_load(LAYER)?;
        let batch = (n - done).min(50_000);
        for i in done..done + batch {
            let opened = now - SignedDuration::from_hours(48);
            let mut case = Case::new(&flow, None, None, record::stamp(opened));
            case.state = "dispatched".into();
            case.assignee = Some(Assignee::User(format!("inspector{}", i % 200)));
            let deadline =
                if i % 1000 == 0 { now - SignedDuration::from_hours(1) } else { now + SignedDuration::from_hours(72) };
            let (x, y) = (114.2 + (i % 1000) as f64 * 0.0004, 30.4 + (i / 1000 % 1000) as f64 * 0.0003);
            let rec = CaseRecord {
                id: EntityId::from_uuid(uuid::Uuid::now_v7()),
                case_no: format!("2026-{i:07}"),
                case,
                class_kind: Some("event".into()),
                class: Some(if i % 2 == 0 { "0101" } else { "0102" }.into()),
                description: Some("基准测试案件".into()),
                source: "inspector".into(),
                source_ref: None,
                asset: None,
                location: Some(Geometry::Point(Coord::xy(x, y))),
                stage_deadline: Some(deadline),
                version: 0,
            };
            let mut properties = rec.properties(now).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            // Not yet marked: the scan's work (a stage that ran late since its last transition).
            properties.insert(record::field::OVERDUE.into(), shikong_model::Value::Bool(false));
            tx.insert(
                LAYER,
                NewFeature {
                    id: Some(rec.id),
                    code: Some(rec.case_no.clone()),
                    geometry: rec.location.clone(),
                    valid: Default::default(),
                    properties,
                    device_time: None,
                },
            )?;
        }
        tx.commit()?;
        done += batch;
        bar.set_position(done);
    }
    bar.finish_and_clear();
    Ok(())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    println!("# case workflow: {} open cases seeded; {} cases driven by {} clients", a.cases, a.driven, a.clients);
    let store = shikong_store::init(&StoreConfig::in_dir(&data))?;
    let t = Instant::now();
    seed(store.as_ref(), a.cases)?;
    println!("seeded {} cases in {:.1} s", a.cases, t.elapsed().as_secs_f64());

    // The overdue scan, in process on the same store: finds the 1-in-1,000 late stages among all.
    {
        let auth = shikong_auth::AuthStore::open_in(&data)?;
        let config = shikong_http::ServerConfig { data_dir: data.clone(), ..shikong_http::ServerConfig::default() };
        let state = shikong_http::AppState::new(store.clone(), auth, config)?;
        let t = Instant::now();
        let r = shikong_http::cases::overdue::scan(&state, Timestamp::now())
            .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
        let first = t.elapsed();
        let t = Instant::now();
        let again = shikong_http::cases::overdue::scan(&state, Timestamp::now())
            .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
        let idle = t.elapsed();
        println!(
            "overdue scan over {} open cases: {:.1} ms finding and marking {} (marked {}); a scan with nothing new: {:.1} ms (found {})",
            a.cases,
            ms(first),
            r.found,
            r.marked,
            ms(idle),
            again.found
        );
    }
    store_transitions(store.as_ref(), a.clients)?;
    drop(store);

    // Accounts, then the real server.
    let exe = crate::serve::shikong_exe()?;
    for (name, role) in [("wang", "office"), ("li", "inspector")] {
        let mut add = std::process::Command::new(&exe)
            .args(["user", "add", "--data"])
            .arg(&data)
            .args(["--role", role, name])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()?;
        std::io::Write::write_all(&mut add.stdin.take().context("stdin")?, b"bench-password-123\n")?;
        if !add.wait()?.success() {
            bail!("shikong user add {name} failed");
        }
    }
    let (server, base) = start_shikong_with(&data, &[("SHIKONG_GROUP_COMMIT", "off")])?;
    let http = reqwest::blocking::Client::builder().pool_max_idle_per_host(a.clients * 2).build()?;
    let token = login(&http, &base)?;

    // /cases query p50 over the N stored cases.
    let mut list_times = Vec::new();
    for i in 0..100 {
        let url = match i % 3 {
            0 => format!("{base}/cases?status=dispatched&limit=100"),
            1 => format!("{base}/cases?class=0102&limit=100"),
            _ => {
                let x = 114.2 + (i % 50) as f64 * 0.008;
                format!("{base}/cases?bbox={x},30.4,{},30.5&limit=100", x + 0.01)
            }
        };
        let t = Instant::now();
        http.get(&url).bearer_auth(&token).send()?.error_for_status()?.bytes()?;
        list_times.push(t.elapsed());
    }
    list_times.sort();
    let overdue_t = Instant::now();
    let overdue: serde_json::Value = http
        .get(format!("{base}/cases?overdue=true&limit=100"))
        .bearer_auth(&token)
        .send()?
        .error_for_status()?
        .json()?;
    let overdue_ms = ms(overdue_t.elapsed());

    // Durable transitions: each client opens cases and moves each through three actions; the
    // same load against one disk sync per transaction, then against group commit.
    drive(&a, &http, &base, &token, "one disk sync per transaction (SHIKONG_GROUP_COMMIT=off)")?;
    drop(server);
    let (server, base) = start_shikong_with(&data, &[])?;
    let token = login(&http, &base)?;
    drive(&a, &http, &base, &token, "group commit")?;
    drop(server);
    println!(
        "GET /cases (status, class or bbox; limit 100) with {} cases: p50 {:.1} ms, p99 {:.1} ms; overdue=true: {:.1} ms ({} returned)",
        a.cases,
        pct(&list_times, 0.5),
        pct(&list_times, 0.99),
        overdue_ms,
        overdue["numberReturned"]
    );
    Ok(())
}

fn login(http: &reqwest::blocking::Client, base: &str) -> anyhow::Result<String> {
    let login: serde_json::Value = http
        .post(format!("{base}/auth/login"))
        .json(&json!({"username": "wang", "password": "bench-password-123"}))
        .send()?
        .error_for_status()?
        .json()?;
    Ok(login["token"].as_str().context("token")?.to_owned())
}

/// `a.clients` office clients at once, each opening `a.driven / a.clients` cases and moving each
/// through accept → register → dispatch; prints the transitions' rate and latency.
fn drive(a: &Args, http: &reqwest::blocking::Client, base: &str, token: &str, label: &str) -> anyhow::Result<()> {
    let per_client = a.driven / a.clients as u64;
    let run = uuid::Uuid::now_v7();
    let (lat, wall) = on_threads(a.clients, |c, record| {
        for k in 0..per_client {
            let body = json!({"class": "0102", "location": {"type": "Point", "coordinates": [114.3, 30.5]},
                              "description": "基准", "source": "hotline"});
            let created: serde_json::Value =
                http.post(format!("{base}/cases")).bearer_auth(token).json(&body).send()?.error_for_status()?.json()?;
            let id = created["id"].as_str().context("case id")?.to_owned();
            for (j, action) in ["accept", "register", "dispatch"].into_iter().enumerate() {
                let b = json!({"action": action, "action_id": format!("{run}-{c}-{k}-{j}"), "assignee": "li"});
                let started = Instant::now();
                http.post(format!("{base}/cases/{id}/actions"))
                    .bearer_auth(token)
                    .json(&b)
                    .send()?
                    .error_for_status()?;
                record(started.elapsed());
            }
        }
        Ok(())
    })?;
    println!(
        "durable transitions, {label}: {} in {:.1} s = {:.0}/s (plus {} case openings); per action p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        wall.as_secs_f64(),
        lat.len() as f64 / wall.as_secs_f64(),
        per_client * a.clients as u64,
        pct(&lat, 0.5),
        pct(&lat, 0.99)
    );
    Ok(())
}

/// The store layer alone, in process: `clients` threads each write 300 small versions of their
/// own case features (read through the transaction, one field changed, committed durably), one
/// transaction each — plain transactions (one disk sync each) beside grouped ones.
fn store_transitions(store: &dyn shikong_store::Store, clients: usize) -> anyhow::Result<()> {
    use shikong_model::Value;
    use shikong_store::{FeatureKey, Patch, Query};
    const EACH: usize = 300;
    let mut ids = Vec::new();
    store.query(&Query { limit: Some(clients), ..Query::layer(LAYER) }, &mut |sf| {
        ids.push(sf.feature.id);
        true
    })?;
    for grouped in [false, true] {
        let (lat, wall) = on_threads(ids.len(), |c, record| {
            let key = FeatureKey::Id(ids[c]);
            for k in 0..EACH {
                let started = Instant::now();
                let meta = TxMeta::by(format!("bench{c}"));
                let mut tx = if grouped { store.begin_grouped(meta)? } else { store.begin(meta)? };
                tx.get(LAYER, &key)?.context("case")?;
                let mut patch = Patch::default();
                patch.set.insert(record::field::DESCRIPTION.into(), Value::Text(format!("第{k}次")));
                tx.update(LAYER, &key, patch)?;
                tx.commit()?;
                record(started.elapsed());
            }
            Ok(())
        })?;
        println!(
            "store alone, {} threads, {}: {:.0} durable transactions/s; p50 {:.2} ms, p99 {:.2} ms",
            ids.len(),
            if grouped { "grouped (one disk sync per group)" } else { "plain (one disk sync each)" },
            lat.len() as f64 / wall.as_secs_f64(),
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
    }
    Ok(())
}

/// Runs `work(i, record)` on `n` threads at once (i = 0..n); returns the latencies they recorded,
/// sorted, and the wall time of the whole run.
fn on_threads(
    n: usize,
    work: impl Fn(usize, &dyn Fn(Duration)) -> anyhow::Result<()> + Sync,
) -> anyhow::Result<(Vec<Duration>, Duration)> {
    let latencies = Mutex::new(Vec::new());
    let record = |d: Duration| latencies.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(d);
    let t = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let (work, record) = (&work, &record);
        let joins: Vec<_> = (0..n).map(|i| s.spawn(move || work(i, record))).collect();
        for j in joins {
            j.join().map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
        }
        Ok(())
    })?;
    let wall = t.elapsed();
    let mut lat = latencies.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    lat.sort();
    Ok((lat, wall))
}
