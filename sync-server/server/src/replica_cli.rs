//! `shikong replica …`: the device side from the command line (scripted devices, tests, field
//! laptops). Everything here is an adapter over `shikong-replica` and `shikong-sync-client`.

use std::path::Path;

use anyhow::{Context, bail};
use shikong_model::{Coord, Geometry, Properties, Value};
use shikong_replica::{EditMeta, FeatureKey, NewFeature, Replica, Resolved};
use shikong_sync_client::SyncClient;

use crate::cli::ReplicaCommand;

fn meta(r: &Replica) -> EditMeta {
    let info = r.info();
    let device = info.device.clone().or_else(|| std::env::var("SHIKONG_DEVICE").ok());
    EditMeta { user: info.user.clone(), device, time: jiff::Timestamp::now() }
}

fn point(s: &str) -> anyhow::Result<Geometry> {
    let (x, y) = s.split_once(',').context("--point takes LON,LAT")?;
    let c = Coord::xy(x.trim().parse().context("--point: longitude")?, y.trim().parse().context("--point: latitude")?);
    Ok(Geometry::Point(c))
}

fn open(file: &Path) -> anyhow::Result<Replica> {
    Replica::open(file).with_context(|| file.display().to_string())
}

/// `FIELD=VALUE` pairs typed by the layer schema; `code=` is returned apart.
fn settings(r: &Replica, layer: &str, set: &[String]) -> anyhow::Result<(Properties, Option<String>)> {
    let l =
        r.layers().iter().find(|l| l.name == layer).with_context(|| format!("the replica has no layer `{layer}`"))?;
    let mut props = Properties::new();
    let mut code = None;
    for s in set {
        let (k, v) = s.split_once('=').with_context(|| format!("--set `{s}`: expected FIELD=VALUE"))?;
        if k == "code" {
            code = Some(v.to_owned());
            continue;
        }
        let f = l.schema.field(k).with_context(|| {
            let names: Vec<_> = l.schema.fields.iter().map(|f| f.name.as_str()).collect();
            format!("--set: `{k}` is not a field of `{layer}` (fields: {})", names.join(", "))
        })?;
        props.insert(k.to_owned(), f.coerce_text(v)?);
    }
    Ok((props, code))
}

/// The address engine of the gazetteer subset a replica carries.
fn offline_geocoder(file: &Path) -> anyhow::Result<shikong_geocoder::Geocoder> {
    let r = open(file)?;
    let g = r.gazetteer()?.with_context(|| {
        format!("{} carries no gazetteer (the server had none built when it was cut)", file.display())
    })?;
    shikong_geocoder::Geocoder::from_snapshot(&g.bytes).with_context(|| format!("{}: gazetteer", file.display()))
}

/// The sync client for `server`, trusting the CA certificate in `ca_cert` (PEM) besides the
/// system's roots.
fn client(server: &str, token: &str, ca_cert: Option<&Path>) -> anyhow::Result<SyncClient> {
    let pem = ca_cert.map(|p| std::fs::read(p).with_context(|| format!("--ca-cert {}", p.display()))).transpose()?;
    SyncClient::with_ca(server, token, pem.as_deref()).with_context(|| match ca_cert {
        Some(p) => format!("--ca-cert {}", p.display()),
        None => server.to_owned(),
    })
}

pub(crate) fn run(c: ReplicaCommand) -> anyhow::Result<()> {
    match c {
        ReplicaCommand::Create { server, token, layers, area, name, ca_cert, out } => {
            client(&server, &token, ca_cert.as_deref())?.create_replica(
                &layers,
                area.as_deref(),
                name.as_deref(),
                &out,
            )?;
            let r = open(&out)?;
            println!("replica {} of {} written to {}", r.info().id, layers.join(", "), out.display());
        }
        ReplicaCommand::Edit { file, layer, code, create, point: at, set, delete, undo } => {
            let mut r = open(&file)?;
            let m = meta(&r);
            let (props, new_code) = settings(&r, &layer, &set)?;
            if create {
                let geometry = at.as_deref().map(point).transpose()?;
                let id = r.create_feature(
                    &layer,
                    NewFeature { code: new_code, geometry, properties: props, ..NewFeature::default() },
                    &m,
                )?;
                let f = r.get(&layer, &FeatureKey::Id(id))?.context("created feature vanished")?;
                println!("created {} ({id}) in `{layer}`", f.feature.code);
                return Ok(());
            }
            let Some(code) = code else { bail!("--code is required unless --create") };
            let key = FeatureKey::parse(&code);
            let mut changed = false;
            if undo {
                r.undo(&layer, &key, &m)?;
                println!("undid the last change to {code}");
                return Ok(());
            }
            if delete {
                changed |= r.delete(&layer, &key, &m)?;
            }
            if let Some(p) = at.as_deref() {
                changed |= r.set_geometry(&layer, &key, Some(point(p)?), &m)?;
            }
            if let Some(c) = new_code {
                changed |= r.set_code(&layer, &key, &c, &m)?;
            }
            if !props.is_empty() {
                changed |= r.set_fields(&layer, &key, props, &m)?;
            }
            println!(
                "{} {code} in `{layer}` ({} local changes pending)",
                if changed { "changed" } else { "nothing changed for" },
                r.pending()?
            );
        }
        ReplicaCommand::Sync { server, token, ca_cert, file } => {
            let mut r = open(&file)?;
            let server = server.unwrap_or_else(|| r.info().server_url.clone());
            let report = client(&server, &token, ca_cert.as_deref())?.sync(&mut r, &mut |_| {})?;
            println!(
                "pushed {} entities ({} accepted, {} unchanged, {} rejected); pulled {} entities in {} pages; uploaded {} attachments; {} open conflicts",
                report.pushed_entities,
                report.accepted,
                report.unchanged,
                report.rejected.len(),
                report.pulled_entities,
                report.pages,
                report.attachments_uploaded,
                report.conflicts
            );
            for (layer, entity, reason) in &report.rejected {
                println!("rejected {layer} {entity}: {reason}");
            }
            if !report.verified {
                println!("not verified: the server cannot compare replicas (or too many unsent edits)");
            } else if report.repaired > 0 {
                println!("verified: {} entities differed from the server and were repaired", report.repaired);
            } else {
                println!("verified: the replica matches the server");
            }
            crate::replica_tasks_cli::print_sync(&report.tasks);
            match &report.gazetteer {
                shikong_sync_client::GazetteerRefresh::Unchanged => {}
                shikong_sync_client::GazetteerRefresh::Updated(n) => {
                    println!("offline gazetteer updated ({:.1} MB)", *n as f64 / 1e6);
                }
                shikong_sync_client::GazetteerRefresh::Unavailable(why) => println!("no offline gazetteer: {why}"),
            }
        }
        c @ (ReplicaCommand::Tasks { .. } | ReplicaCommand::Task { .. }) => crate::replica_tasks_cli::run(c)?,
        ReplicaCommand::Search { file, suggest, limit, query } => {
            let geo = offline_geocoder(&file)?;
            let v = if suggest {
                let suggestions = geo.suggest(&query, limit).into_iter().map(shikong_gazetteer::wire::suggestion);
                serde_json::to_value(shikong_protocol::api::Suggestions { suggestions: suggestions.collect() })?
            } else {
                let r = geo.geocode(&query, &shikong_geocoder::Options::default());
                serde_json::to_value(shikong_gazetteer::wire::geocode(r))?
            };
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        ReplicaCommand::Reverse { file, lon, lat } => {
            let geo = offline_geocoder(&file)?;
            println!("{}", serde_json::to_string_pretty(&shikong_gazetteer::wire::reverse(geo.reverse(lon, lat)))?);
        }
        ReplicaCommand::Conflicts { file } => {
            let r = open(&file)?;
            let list = r.conflicts()?;
            if list.is_empty() {
                println!("no open conflicts");
            }
            for c in list {
                let others: Vec<String> = c.others.iter().map(|o| o.value.to_string()).collect();
                println!("{}\t{}\t{}\t{}\t{}", c.layer, c.code, c.field, c.winner.value, others.join(" | "));
            }
        }
        ReplicaCommand::Resolve { file, layer, code, field, value, restore, delete } => {
            let mut r = open(&file)?;
            let m = meta(&r);
            let key = FeatureKey::parse(&code);
            let resolved = if restore || delete {
                Resolved::Deleted(delete)
            } else {
                let v = value.context("--value, --restore or --delete is required")?;
                match field.as_str() {
                    "geometry" => Resolved::Geometry(Some(shikong_model::wkt::parse(&v)?)),
                    "code" => Resolved::Value(Value::Text(v)),
                    _ => {
                        let (props, _) = settings(&r, &layer, &[format!("{field}={v}")])?;
                        Resolved::Value(props.into_values().next().unwrap_or(Value::Null))
                    }
                }
            };
            r.resolve(&layer, &key, if restore || delete { "deleted" } else { &field }, resolved, &m)?;
            println!("resolved {field} of {code}; sync to share the resolution");
        }
    }
    Ok(())
}
