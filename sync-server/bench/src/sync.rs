//! Sync benchmark (issue 5): a replica of N point features created through the real server on
//! loopback (seconds, and file size beside a plain `ogr2ogr` GeoPackage of the same features);
//! 10,000 local edits synced up, then 10,000 remote edits synced down to another device (seconds);
//! and the server's merge throughput (edits/s, durably committed), in process — with `--postgres`
//! (a private durable cluster) or `--store postgres://…` also on PostgreSQL, the SQLite store
//! copied into it, printed beside SQLite's.

use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use shikong_auth::{Actor, AuthStore, Role};
use shikong_ingest::import::{self, ImportOptions, ToStoreFrame};
use shikong_model::Value;
use shikong_protocol as wire;
use shikong_replica::{EditMeta, FeatureKey, Replica};
use shikong_store::StoreConfig;
use shikong_sync_client::SyncClient;
use shikong_sync_engine::sync;

use crate::data::write_geojson;

#[derive(clap::Args)]
pub struct Args {
    #[arg(long, default_value_t = 100_000)]
    features: u64,
    #[arg(long, default_value_t = 10_000)]
    edits: u64,
    #[arg(long)]
    dir: Option<std::path::PathBuf>,
    /// Also measure the server merge on this PostgreSQL store (an empty database; the SQLite
    /// store is copied into it first), beside SQLite.
    #[arg(long, value_name = "postgres://…")]
    store: Option<String>,
    /// Also measure the server merge on PostgreSQL, in a private durable cluster (fsync and
    /// synchronous_commit on) started for this run (`shikong-pgtest`).
    #[arg(long)]
    postgres: bool,
    /// Devices pushing at the same time in the concurrent merge figure (shift change: many
    /// tablets sync at once), each its own slice of the edits, beside the one-device figure.
    #[arg(long, default_value_t = 4)]
    devices: usize,
}

fn edit_many(r: &mut Replica, user: &str, edits: u64, value: f64) -> anyhow::Result<f64> {
    edit_range(r, user, 0..edits, value)
}

/// Sets `depth` on the features `JG-{i}` for `i` in `range`, in one local transaction.
fn edit_range(r: &mut Replica, user: &str, range: std::ops::Range<u64>, value: f64) -> anyhow::Result<f64> {
    let m = EditMeta { user: user.into(), device: Some(format!("{user}-pad")), time: jiff::Timestamp::now() };
    let t = Instant::now();
    r.batch(|r| {
        for i in range {
            r.set_fields(
                "manhole",
                &FeatureKey::Code(format!("JG-{i:08}")),
                [("depth".to_string(), Value::Real(value))].into(),
                &m,
            )?;
        }
        Ok(())
    })?;
    Ok(t.elapsed().as_secs_f64())
}

pub fn run(a: Args) -> anyhow::Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    std::fs::create_dir_all(&dir)?;
    println!("# shikong sync benchmark: {} features, {} edits each way", a.features, a.edits);
    let src = dir.join("points.geojson");
    write_geojson(&src, a.features)?;
    let data = dir.join("data");
    std::fs::create_dir_all(&data)?;
    {
        let store = shikong_store::init(&StoreConfig::in_dir(&data))?;
        let opts = ImportOptions { layer: "manhole".into(), author: "bench".into(), ..ImportOptions::default() };
        import::import(&*store, &src, &opts, &ToStoreFrame, &mut |_, _| {}).map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let auth = AuthStore::open_in(&data)?;
    let local = Actor::local("bench");
    for u in ["li", "wu", "zhao"] {
        auth.add_user(&local, u, Role::Inspector, "bench-password")?;
    }
    let token =
        |u: &str| -> anyhow::Result<String> { Ok(auth.issue_token(&local, u, None)?.secret.expose().to_owned()) };
    let (t_li, t_wu) = (token("li")?, token("wu")?);

    let (server, base) = crate::serve::start_shikong(&data)?;

    let a_path = dir.join("a.gpkg");
    let b_path = dir.join("b.gpkg");
    let t = Instant::now();
    SyncClient::new(&base, &t_li)?.create_replica(&["manhole".into()], None, None, &a_path)?;
    let create_secs = t.elapsed().as_secs_f64();
    SyncClient::new(&base, &t_wu)?.create_replica(&["manhole".into()], None, None, &b_path)?;
    let plain = dir.join("plain.gpkg");
    let _ = std::fs::remove_file(&plain);
    // The same features as stored (entity ids, codes, valid time, fields), exported by GDAL into a
    // plain GeoPackage: what the replica adds on top is then the sync machinery alone.
    let st = Command::new("ogr2ogr")
        .args([
            "-f",
            "GPKG",
            "-nln",
            "manhole",
            "-select",
            "entity_id,code,valid_from,valid_to,name,depth,material,installed,good",
        ])
        .arg(&plain)
        .arg(data.join("store.gpkg"))
        .arg("manhole")
        .status()
        .context("ogr2ogr")?;
    if !st.success() {
        bail!("ogr2ogr failed");
    }
    let (rs, ps) = (std::fs::metadata(&a_path)?.len() as f64, std::fs::metadata(&plain)?.len() as f64);
    println!(
        "replica of {} features: {create_secs:.2} s, {:.1} MB; plain ogr2ogr GeoPackage {:.1} MB; size ratio {:.3}",
        a.features,
        rs / 1e6,
        ps / 1e6,
        rs / ps
    );

    let mut ra = Replica::open(&a_path)?;
    let edit_secs = edit_many(&mut ra, "li", a.edits, 7.5)?;
    println!(
        "{} local edits on the device: {edit_secs:.2} s = {:.0} edits/s (one transaction; goal ≥ 20,000 edits/s)",
        a.edits,
        a.edits as f64 / edit_secs
    );
    let t = Instant::now();
    let mut pushed_at = 0.0;
    let up = SyncClient::new(&base, &t_li)?.sync(&mut ra, &mut |p| {
        if matches!(p, shikong_sync_client::Progress::Pushing { .. }) {
            pushed_at = t.elapsed().as_secs_f64();
        }
    })?;
    let up_secs = t.elapsed().as_secs_f64();
    println!(
        "sync up: {} edits pushed ({} accepted) in {up_secs:.2} s = {:.0} edits/s end to end (push {pushed_at:.2} s = {:.0} edits/s over HTTP, then pulling {} entities back {:.2} s)",
        up.pushed_entities,
        up.accepted,
        up.pushed_entities as f64 / up_secs,
        up.pushed_entities as f64 / pushed_at.max(1e-9),
        up.pulled_entities,
        up_secs - pushed_at
    );
    let mut rb = Replica::open(&b_path)?;
    let t = Instant::now();
    let down = SyncClient::new(&base, &t_wu)?.sync(&mut rb, &mut |_| {})?;
    let down_secs = t.elapsed().as_secs_f64();
    println!(
        "sync down: {} remote edits pulled in {} pages in {down_secs:.2} s = {:.0} edits/s",
        down.pulled_entities,
        down.pages,
        down.pulled_entities as f64 / down_secs
    );
    // The end-of-sync verification alone (part of every sync above): device digest, server scan as
    // of the cursor, comparison.
    let t = Instant::now();
    let repaired = SyncClient::new(&base, &t_wu)?.verify(&mut rb)?;
    println!(
        "verification of a {}-feature replica: {:.3} s, repaired {}",
        a.features,
        t.elapsed().as_secs_f64(),
        repaired.map_or_else(|| "(not verified)".to_owned(), |n| n.to_string())
    );
    drop(server);

    // Merge throughput of the engine alone (no HTTP), durably committed batch by batch.
    let zhao = auth.verify(&token("zhao")?)?;
    let store = shikong_store::open(&StoreConfig::in_dir(&data))?;
    let (merged, merge_secs, cpu) = merge_rate(&*store, &auth, &zhao, &base, &dir.join("c.gpkg"), a.edits, 9.25)?;
    println!(
        "server merge (SQLite): {merged} edits in {merge_secs:.2} s = {:.0} edits/s (batches of {}, each one durable transaction; process CPU {cpu:.2} s; goal ≥ 15,000 edits/s)",
        merged as f64 / merge_secs,
        wire::MAX_PUSH_ENTITIES
    );
    drop(store);
    // The same on PostgreSQL: the SQLite store copied into it (features, history, documents).
    let cluster = if a.postgres && a.store.is_none() {
        Some(shikong_pgtest::Cluster::start(true).map_err(|e| anyhow::anyhow!("{e}"))?)
    } else {
        None
    };
    let url = match (&a.store, &cluster) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(c)) => Some(c.try_fresh_db().map_err(|e| anyhow::anyhow!("{e}"))?),
        (None, None) => None,
    };
    if let Some(url) = url {
        let pg: StoreConfig = url.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let t = Instant::now();
        shikong_store::copy::copy(&StoreConfig::in_dir(&data), &pg, &Default::default(), &mut |_| {})?;
        println!("store copied to PostgreSQL in {:.1} s", t.elapsed().as_secs_f64());
        let store = shikong_store::open(&pg)?;
        let (pg_merged, pg_secs, pg_cpu) =
            merge_rate(&*store, &auth, &zhao, &base, &dir.join("d.gpkg"), a.edits, 11.5)?;
        println!(
            "server merge (PostgreSQL{}): {pg_merged} edits in {pg_secs:.2} s = {:.0} edits/s (process CPU {pg_cpu:.2} s; SQLite {:.0} edits/s; ratio {:.2})",
            if cluster.is_some() { ", private durable cluster" } else { "" },
            pg_merged as f64 / pg_secs,
            merged as f64 / merge_secs,
            (pg_merged as f64 / pg_secs) / (merged as f64 / merge_secs)
        );
        let (cm, csecs, ccpu) =
            merge_concurrent(&*store, &auth, &zhao, &base, &dir, "pg", a.edits, a.devices.max(1), 13.75)?;
        println!(
            "server merge (PostgreSQL, {} devices pushing at once): {cm} edits in {csecs:.2} s = {:.0} edits/s (process CPU {ccpu:.2} s)   [goal ≥ 5,000 edits/s durable]",
            a.devices.max(1),
            cm as f64 / csecs
        );
        drop(store);
        let store = shikong_store::open(&StoreConfig::in_dir(&data))?;
        let (sm, ssecs, scpu) =
            merge_concurrent(&*store, &auth, &zhao, &base, &dir, "sqlite", a.edits, a.devices.max(1), 15.5)?;
        println!(
            "server merge (SQLite, {} devices pushing at once): {sm} edits in {ssecs:.2} s = {:.0} edits/s (process CPU {scpu:.2} s)",
            a.devices.max(1),
            sm as f64 / ssecs
        );
    }
    Ok(())
}

/// A replica of the whole `manhole` layer.
fn manhole_replica() -> wire::ReplicaRequest {
    wire::ReplicaRequest { protocol: wire::PROTOCOL_VERSION, layers: vec!["manhole".into()], area: None, name: None }
}

/// Cuts a replica from `store` into `path`, edits `edits` features on it and pushes them batch by
/// batch through the engine (no HTTP): (accepted edits, seconds spent merging).
fn merge_rate(
    store: &dyn shikong_store::Store,
    auth: &AuthStore,
    who: &shikong_auth::Principal,
    base: &str,
    path: &std::path::Path,
    edits: u64,
    value: f64,
) -> anyhow::Result<(usize, f64, f64)> {
    let req = manhole_replica();
    sync::cut_replica(store, auth, who, base, &req, path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rc = Replica::open(path)?;
    edit_many(&mut rc, &who.username, edits, value)?;
    let mut merged = 0usize;
    let mut merge_secs = 0.0;
    let mut cpu_secs = 0.0;
    while let Some(batch) = rc.push_batch(wire::MAX_PUSH_ENTITIES)? {
        let (t, cpu) = (Instant::now(), process_cpu_secs());
        let resp = sync::push(store, auth, who, &batch, &|_: &str| true).map_err(|e| anyhow::anyhow!("{e}"))?;
        merge_secs += t.elapsed().as_secs_f64();
        cpu_secs += process_cpu_secs() - cpu;
        merged += resp.results.iter().filter(|r| matches!(r.outcome, wire::Outcome::Accepted { .. })).count();
        rc.apply_push_response(&resp)?;
    }
    Ok((merged, merge_secs, cpu_secs))
}

/// `devices` replicas cut from `store`, each editing its own slice of `edits` features, push their
/// batches at the same time from one thread each: (accepted edits, wall seconds of the pushes,
/// process CPU seconds meanwhile).
#[allow(clippy::too_many_arguments)]
fn merge_concurrent(
    store: &dyn shikong_store::Store,
    auth: &AuthStore,
    who: &shikong_auth::Principal,
    base: &str,
    dir: &std::path::Path,
    tag: &str,
    edits: u64,
    devices: usize,
    value: f64,
) -> anyhow::Result<(usize, f64, f64)> {
    let req = manhole_replica();
    let per = edits / devices as u64;
    let mut replicas = Vec::new();
    for d in 0..devices {
        let path = dir.join(format!("concurrent-{tag}-{d}.gpkg"));
        sync::cut_replica(store, auth, who, base, &req, &path).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut rc = Replica::open(&path)?;
        let from = d as u64 * per;
        edit_range(&mut rc, &who.username, from..from + per, value)?;
        replicas.push(rc);
    }
    let (t, cpu) = (Instant::now(), process_cpu_secs());
    let merged = std::thread::scope(|s| {
        let handles: Vec<_> = replicas
            .into_iter()
            .map(|mut rc| {
                s.spawn(move || -> anyhow::Result<usize> {
                    let mut merged = 0;
                    while let Some(batch) = rc.push_batch(wire::MAX_PUSH_ENTITIES)? {
                        let resp = sync::push(store, auth, who, &batch, &|_: &str| true)
                            .map_err(|e| anyhow::anyhow!("{e}"))?;
                        merged +=
                            resp.results.iter().filter(|r| matches!(r.outcome, wire::Outcome::Accepted { .. })).count();
                        rc.apply_push_response(&resp)?;
                    }
                    Ok(merged)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().map_err(|_| anyhow::anyhow!("a pushing thread panicked"))?)
            .sum::<anyhow::Result<usize>>()
    })?;
    Ok((merged, t.elapsed().as_secs_f64(), process_cpu_secs() - cpu))
}

/// CPU time this process has used (user + system, from `/proc/self/stat`; 0 elsewhere): how
/// much of a merge's wall time the server's own work is, the rest being the database's work and
/// the round trips to it.
fn process_cpu_secs() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name (which may hold spaces, so split after its `)`).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}
