//! The gazetteer a device carries offline: the subset of the counties its replica's area touches,
//! tagged with the state of the server's gazetteer so a sync refreshes it only when it changed.

use std::collections::BTreeSet;
use std::path::Path;

use shikong_geocoder::{Geocoder, Scope};
use shikong_model::Bbox;
use shikong_replica::{GazetteerSnapshot, Replica};
use shikong_store::FeatureStore;

use crate::error::{GazetteerError, Result};
use crate::live::LiveGazetteer;

/// The gazetteer subset a replica of `area` (or of these layers' extent) carries: the counties the
/// area touches, sampled at its vertices, its centre and a grid over its envelope, with the
/// records of the layers `scope` sees (the device's user's readable layers) and no others.
pub fn device_subset(geo: &Geocoder, envelope: Bbox, scope: &Scope) -> Result<Vec<u8>> {
    let mut codes = BTreeSet::new();
    let steps = 8;
    for i in 0..=steps {
        for j in 0..=steps {
            let x = envelope.min_x + envelope.width() * f64::from(i) / f64::from(steps);
            let y = envelope.min_y + envelope.height() * f64::from(j) / f64::from(steps);
            if let Some(c) = geo.reverse(x, y).codes.county {
                codes.insert(c);
            }
        }
    }
    let codes: Vec<&str> = codes.iter().map(String::as_str).collect();
    if codes.is_empty() {
        return Err(GazetteerError::NoCounty);
    }
    Ok(geo.subset_scoped(&codes, scope)?.to_snapshot()?)
}

/// The area a replica's gazetteer covers: its area, else the extent of its layers.
pub fn replica_envelope(store: &dyn FeatureStore, area: Option<&str>, layers: &[String]) -> Result<Option<Bbox>> {
    if let Some(wkt) = area {
        return Ok(shikong_model::wkt::parse(wkt).map_err(GazetteerError::Area)?.bbox());
    }
    let mut env: Option<Bbox> = None;
    for name in layers {
        if let Some(e) = store.layer(name)?.extent {
            env = Some(env.map_or(e, |a| a.union(&e)));
        }
    }
    Ok(env)
}

/// The gazetteer subset of `envelope` seen through `scope`, as a device stores it, tagged with
/// the state of the server's gazetteer and the scope. `Ok(None)`: no gazetteer built, or the
/// area touches no county.
pub fn tagged_subset(
    live: &LiveGazetteer,
    store: &dyn FeatureStore,
    envelope: Bbox,
    scope: &Scope,
) -> Result<Option<GazetteerSnapshot>> {
    let subset = live.with(store, |geo, m| device_subset(geo, envelope, scope).map(|b| (m.edition.clone(), b)))?;
    Ok(match subset {
        Some(Ok((edition, bytes))) => Some(GazetteerSnapshot { tag: live.tag(&envelope, scope), edition, bytes }),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "no gazetteer subset for this area");
            None
        }
        None => None,
    })
}

/// Stores the gazetteer subset of a freshly cut replica's area, seen through its user's `scope`,
/// in the replica, so the device geocodes offline. Returns whether it did (no gazetteer built:
/// nothing to do).
pub fn attach_to_replica(live: &LiveGazetteer, store: &dyn FeatureStore, path: &Path, scope: &Scope) -> Result<bool> {
    let replica = Replica::open(path)?;
    let info = replica.info().clone();
    let layers: Vec<String> = replica.layers().iter().map(|l| l.name.clone()).collect();
    let Some(env) = replica_envelope(store, info.area.as_deref(), &layers)? else { return Ok(false) };
    match tagged_subset(live, store, env, scope)? {
        Some(g) => {
            replica.set_gazetteer(&g)?;
            Ok(true)
        }
        None => Ok(false),
    }
}
