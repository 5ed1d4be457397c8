//! The JSON shapes shikong speaks (CLI output now, HTTP responses later): features as GeoJSON,
//! histories, diffs and layer definitions. Architecture invariant: only this crate knows them;
//! the store and model crates have no serde derives on their internal types.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use shikong_model::feature::{Change, ChangedValue};
use shikong_model::{FieldDef, GeometryKind, HeightDatum, LayerSchema, Theme, geojson, time};
use shikong_store::{Diff, Layer, LayerDef, StoredFeature, TxRecord, VersionRecord};

/// A stored feature as a GeoJSON Feature. `id` is the stable entity id; system attributes come
/// first in `properties`, then the layer's fields in schema order.
pub fn feature(layer: &Layer, f: &StoredFeature) -> Json {
    let mut props = Map::new();
    props.insert("entity_id".into(), Json::String(f.feature.id.to_string()));
    props.insert("code".into(), Json::String(f.feature.code.clone()));
    props.insert("valid_from".into(), f.feature.valid.from.map_or(Json::Null, |t| Json::String(time::beijing(t))));
    props.insert("valid_to".into(), f.feature.valid.to.map_or(Json::Null, |t| Json::String(time::beijing(t))));
    props.insert("version".into(), Json::from(f.version));
    props.insert("tx_time".into(), Json::String(time::beijing(f.tx_time)));
    for field in &layer.schema().fields {
        let v = f.feature.properties.get(&field.name).map_or(Json::Null, shikong_model::Value::to_json);
        props.insert(field.name.clone(), v);
    }
    json!({
        "type": "Feature",
        "id": f.feature.id.to_string(),
        "geometry": f.feature.geometry.as_ref().map_or(Json::Null, geojson::to_json),
        "properties": props,
    })
}

fn changed(v: &ChangedValue) -> Json {
    match v {
        ChangedValue::Absent => Json::Null,
        ChangedValue::Value(v) => v.to_json(),
        ChangedValue::Geometry(g) => geojson::to_json(g),
    }
}

pub fn changes(cs: &[Change]) -> Json {
    Json::Array(
        cs.iter().map(|c| json!({"attribute": c.attribute, "old": changed(&c.old), "new": changed(&c.new)})).collect(),
    )
}

pub fn tx(t: &TxRecord) -> Json {
    json!({
        "tx": t.tx.0,
        "time": time::beijing(t.time),
        "author": t.author,
        "device": t.device,
        "device_time": t.device_time,
        "source": t.source,
    })
}

/// `shikong history` output.
pub fn history(layer: &Layer, versions: &[VersionRecord]) -> Json {
    let last = versions.last();
    json!({
        "layer": layer.name(),
        "entity_id": last.and_then(|v| v.state.as_ref()).map(|f| f.id.to_string())
            .or_else(|| versions.iter().rev().find_map(|v| v.state.as_ref().map(|f| f.id.to_string()))),
        "code": versions.iter().rev().find_map(|v| v.state.as_ref().map(|f| f.code.clone())),
        "versions": versions.iter().map(|v| json!({
            "version": v.version,
            "op": v.op.as_str(),
            "tx": tx(&v.tx),
            "changes": changes(&v.changes),
        })).collect::<Vec<_>>(),
    })
}

/// `shikong diff` output.
pub fn diff(layer: &Layer, from: jiff::Timestamp, to: jiff::Timestamp, d: &Diff) -> Json {
    json!({
        "layer": layer.name(),
        "from": time::beijing(from),
        "to": time::beijing(to),
        "summary": {"created": d.created.len(), "modified": d.modified.len(), "deleted": d.deleted.len()},
        "created": d.created.iter().map(|f| feature(layer, f)).collect::<Vec<_>>(),
        "modified": d.modified.iter().map(|m| json!({
            "entity_id": m.id.to_string(),
            "code": m.code,
            "from_version": m.from_version,
            "to_version": m.to_version,
            "changes": changes(&m.changes),
        })).collect::<Vec<_>>(),
        "deleted": d.deleted.iter().map(|f| feature(layer, f)).collect::<Vec<_>>(),
    })
}

/// A layer definition as users read and edit it (`shikong layer show` / `layer edit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerDoc {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub geometry_type: String,
    #[serde(default)]
    pub has_z: bool,
    #[serde(default)]
    pub theme: Theme,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height_datum: Option<HeightDatum>,
    #[serde(default)]
    pub public: bool,
    #[serde(default)]
    pub citizen_reports: bool,
    pub fields: Vec<FieldDef>,
}

impl LayerDoc {
    pub fn from_layer(l: &Layer) -> Self {
        let d = &l.def;
        LayerDoc {
            name: d.name.clone(),
            title: d.title.clone(),
            description: d.description.clone(),
            geometry_type: d.geometry_kind.name().to_owned(),
            has_z: d.has_z,
            theme: d.theme.clone(),
            height_datum: d.height_datum.clone(),
            public: d.public,
            citizen_reports: d.citizen_reports,
            fields: d.schema.fields.clone(),
        }
    }

    pub fn into_def(self) -> Result<LayerDef, shikong_model::ModelError> {
        let kind: GeometryKind = self.geometry_type.parse()?;
        Ok(LayerDef {
            name: self.name,
            title: self.title,
            description: self.description,
            geometry_kind: kind,
            has_z: self.has_z,
            schema: LayerSchema { fields: self.fields },
            theme: self.theme,
            height_datum: self.height_datum,
            public: self.public,
            citizen_reports: self.citizen_reports,
        })
    }
}
