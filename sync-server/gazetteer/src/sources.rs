//! Which store layers feed the gazetteer (`gazetteer.json`), and how their features become engine
//! records: a road's line, an address point's road and number, a POI's name and aliases, each
//! filed under the division containing it, live state and superseded states both indexed.

use serde::{Deserialize, Serialize};
use shikong_geocoder::{AddressPoint, Geocoder, Poi, Record, Road};
use shikong_model::{EntityId, Feature, Geometry, Value};
use shikong_store::{FeatureKey, FeatureStore, StoreError};

use crate::error::Result;

/// One store layer feeding the gazetteer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    pub layer: String,
    /// Field with the road or POI name (for addresses: the road name).
    pub name: String,
    /// Addresses: the house-number field (门牌号).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// Addresses: building/unit detail; POIs and roads: `;`-separated aliases (e.g. a signature dish).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<String>,
}

/// Which layers feed the gazetteer (`gazetteer.json`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roads: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addresses: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pois: Option<Source>,
}

impl Sources {
    /// The sources given, with the kind of record each feeds (`road`, `address`, `poi`).
    pub(crate) fn all(&self) -> impl Iterator<Item = (&'static str, &Source)> {
        [("road", &self.roads), ("address", &self.addresses), ("poi", &self.pois)]
            .into_iter()
            .filter_map(|(k, s)| s.as_ref().map(|s| (k, s)))
    }

    /// Whether `layer` feeds the gazetteer.
    pub fn feeds(&self, layer: &str) -> bool {
        self.all().any(|(_, s)| s.layer == layer)
    }

    /// The feeding layers' names (every record comes from one of them: `layer/entity`).
    pub fn layers(&self) -> std::collections::BTreeSet<String> {
        self.all().map(|(_, s)| s.layer.clone()).collect()
    }
}

/// What `gazetteer.json` records beside the snapshot: the feeding layers and the store
/// transaction the snapshot covers (later writes are caught up from the store's change feed).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub sources: Sources,
    pub built_tx: i64,
    pub edition: String,
}

fn text(f: &Feature, field: &str) -> Option<String> {
    f.properties.get(field).map(Value::to_text).filter(|s| !s.trim().is_empty())
}

fn point_of(g: &Geometry) -> Option<[f64; 2]> {
    let b = g.bbox()?;
    Some([(b.min_x + b.max_x) / 2.0, (b.min_y + b.max_y) / 2.0])
}

/// The division (township, else county) containing a point, for a record's admin code.
fn admin_code(geo: &Geocoder, p: [f64; 2]) -> String {
    let r = geo.reverse(p[0], p[1]);
    r.codes.town.or(r.codes.county).or(r.codes.city).or(r.codes.province).unwrap_or_default()
}

/// The record one feature of a source layer gives (None when it lacks a name or geometry).
fn record(geo: &Geocoder, kind: &str, src: &Source, f: &Feature, id: String) -> Option<Record> {
    let g = f.geometry.as_ref()?;
    let p = point_of(g)?;
    let code = admin_code(geo, p);
    let aliases = |s: &Source| {
        s.extra
            .as_ref()
            .and_then(|x| text(f, x))
            .map(|v| v.split(';').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect())
            .unwrap_or_default()
    };
    Some(match kind {
        "road" => {
            let mut line = Vec::new();
            g.for_each_coord(|c| line.push([c.x, c.y]));
            Record::Road(Road {
                id,
                name: text(f, &src.name)?,
                aliases: aliases(src),
                admin_code: code,
                line,
                valid: f.valid,
            })
        }
        "address" => Record::Address(AddressPoint {
            id,
            admin_code: code,
            road: text(f, &src.name)?,
            number: src.number.as_ref().and_then(|n| text(f, n))?,
            detail: src.extra.as_ref().and_then(|x| text(f, x)).unwrap_or_default(),
            point: p,
            valid: f.valid,
        }),
        _ => Record::Poi(Poi {
            id,
            name: text(f, &src.name)?,
            aliases: aliases(src),
            admin_code: code,
            point: p,
            address: String::new(),
            valid: f.valid,
        }),
    })
}

/// Puts one entity's records (its live state, and superseded states as history: valid until the
/// transaction that replaced them unless they ended earlier) into the engine, replacing old ones.
pub(crate) fn index_entity(
    store: &dyn FeatureStore,
    geo: &mut Geocoder,
    kind: &str,
    src: &Source,
    id: EntityId,
) -> Result<usize> {
    let base = format!("{}/{id}", src.layer);
    geo.remove(&base);
    let versions = match store.history(&src.layer, &FeatureKey::Id(id)) {
        Ok(v) => v,
        Err(StoreError::NotFound { .. }) => return Ok(0),
        Err(e) => return Err(e.into()),
    };
    let mut n = 0;
    for (i, v) in versions.iter().enumerate() {
        geo.remove(&format!("{base}/v{}", v.version));
        let Some(state) = &v.state else { continue };
        let live = i + 1 == versions.len();
        let mut f = state.clone();
        let rid = if live { base.clone() } else { format!("{base}/v{}", v.version) };
        if !live && f.valid.to.is_none() {
            f.valid.to = versions.get(i + 1).map(|next| next.tx.time);
        }
        if let Some(r) = record(geo, kind, src, &f, rid) {
            geo.upsert(r)?;
            n += 1;
        }
    }
    Ok(n)
}

/// Re-indexes entities of `layer` after writes (a new version of an address is searchable at once).
pub fn refresh(
    store: &dyn FeatureStore,
    geo: &mut Geocoder,
    sources: &Sources,
    layer: &str,
    ids: &[EntityId],
) -> Result<()> {
    for (kind, src) in sources.all().filter(|(_, s)| s.layer == layer) {
        for id in ids {
            index_entity(store, geo, kind, src, *id)?;
        }
    }
    Ok(())
}
