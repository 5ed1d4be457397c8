//! Sync benchmark (issue 5): a replica of N point features created through the real server on
//! loopback (seconds, and file size beside a plain `ogr2ogr` GeoPackage of the same features);
//! 10,000 local edits synced up, then 10,000 remote edits synced down to another device (seconds);
//! and the server's merge throughput (edits/s, durably committed), in process.

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
}

fn edit_many(r: &mut Replica, user: &str, edits: u64, value: f64) -> anyhow::Result<f64> {
    let m = EditMeta { user: user.into(), device: Some(format!("{user}-pad")), time: jiff::Timestamp::now() };
    let t = Instant::now();
    r.batch(|r| {
        for i in 0..edits {
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
        "{} local edits on the device: {edit_secs:.2} s ({:.0} edits/s, one transaction)",
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
        "sync up: {} edits pushed ({} accepted) in {up_secs:.2} s (push {pushed_at:.2} s, then pulling {} entities back {:.2} s)",
        up.pushed_entities,
        up.accepted,
        up.pulled_entities,
        up_secs - pushed_at
    );
    let mut rb = Replica::open(&b_path)?;
    let t = Instant::now();
    let down = SyncClient::new(&base, &t_wu)?.sync(&mut rb, &mut |_| {})?;
    let down_secs = t.elapsed().as_secs_f64();
    println!("sync down: {} remote edits pulled in {} pages in {down_secs:.2} s", down.pulled_entities, down.pages);
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
    let store = shikong_store::open(&StoreConfig::in_dir(&data))?;
    let zhao = auth.verify(&token("zhao")?)?;
    let c_path = dir.join("c.gpkg");
    let req = wire::ReplicaRequest {
        protocol: wire::PROTOCOL_VERSION,
        layers: vec!["manhole".into()],
        area: None,
        name: None,
    };
    sync::cut_replica(&*store, &auth, &zhao, &base, &req, &c_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut rc = Replica::open(&c_path)?;
    edit_many(&mut rc, "zhao", a.edits, 9.25)?;
    let mut merged = 0usize;
    let mut merge_secs = 0.0;
    while let Some(batch) = rc.push_batch(wire::MAX_PUSH_ENTITIES)? {
        let t = Instant::now();
        let resp = sync::push(&*store, &auth, &zhao, &batch, &|_: &str| true).map_err(|e| anyhow::anyhow!("{e}"))?;
        merge_secs += t.elapsed().as_secs_f64();
        merged += resp.results.iter().filter(|r| matches!(r.outcome, wire::Outcome::Accepted { .. })).count();
        rc.apply_push_response(&resp)?;
    }
    println!(
        "server merge: {merged} edits in {merge_secs:.2} s = {:.0} edits/s (batches of {}, each one durable transaction)",
        merged as f64 / merge_secs,
        wire::MAX_PUSH_ENTITIES
    );
    Ok(())
}
