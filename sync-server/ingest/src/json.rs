//! The GeoJSON shapes of stored features, histories and diffs, as the CLI prints them and the HTTP
//! service sends them (features are written straight into bytes for the items endpoint). The
//! store and model crates have no serde derives on their internal types.

use serde_json::{Map, Value as Json, json};
use shikong_model::feature::{Change, ChangedValue};
use shikong_model::{Geometry, geojson, time};
use shikong_protocol::api;
use shikong_store::{Diff, Layer, StoredFeature, TxRecord, VersionRecord};

/// A stored feature as a GeoJSON Feature ([`api::Feature`]). `id` is the stable entity id;
/// system attributes come first in `properties`, then the layer's fields in schema order.
pub fn feature_doc(layer: &Layer, f: &StoredFeature) -> api::Feature {
    let mut fields = Map::new();
    for field in &layer.schema().fields {
        let v = f.feature.properties.get(&field.name).map_or(Json::Null, shikong_model::Value::to_json);
        fields.insert(field.name.clone(), v);
    }
    api::Feature {
        kind: api::FeatureType::Feature,
        id: f.feature.id.to_string(),
        geometry: f.feature.geometry.as_ref().map(geojson::to_json),
        properties: api::FeatureProperties {
            entity_id: f.feature.id.to_string(),
            code: f.feature.code.clone(),
            valid_from: f.feature.valid.from.map(time::beijing),
            valid_to: f.feature.valid.to.map(time::beijing),
            version: f.version,
            tx_time: time::beijing(f.tx_time),
            fields,
        },
    }
}

/// [`feature_doc`] as a JSON value.
pub fn feature(layer: &Layer, f: &StoredFeature) -> Json {
    serde_json::to_value(feature_doc(layer, f)).unwrap_or(Json::Null)
}

/// Writes the same JSON as [`feature`] straight into `out`, without building a `Value` tree
/// (the items endpoint writes thousands per second; the tree's allocations dominated its profile).
/// `geometry` overrides the stored geometry (a reprojected copy).
pub fn write_feature(out: &mut Vec<u8>, layer: &Layer, f: &StoredFeature, geometry: Option<&Geometry>) {
    let id = f.feature.id.to_string();
    out.extend_from_slice(b"{\"type\":\"Feature\",\"id\":");
    write_str(out, &id);
    out.extend_from_slice(b",\"geometry\":");
    match geometry.or(f.feature.geometry.as_ref()) {
        Some(g) => write_geometry(out, g),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"properties\":{\"entity_id\":");
    write_str(out, &id);
    out.extend_from_slice(b",\"code\":");
    write_str(out, &f.feature.code);
    for (key, t) in [("valid_from", f.feature.valid.from), ("valid_to", f.feature.valid.to)] {
        out.extend_from_slice(b",\"");
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        match t {
            Some(t) => write_str(out, &time::beijing(t)),
            None => out.extend_from_slice(b"null"),
        }
    }
    out.extend_from_slice(b",\"version\":");
    out.extend_from_slice(f.version.to_string().as_bytes());
    out.extend_from_slice(b",\"tx_time\":");
    write_str(out, &time::beijing(f.tx_time));
    for field in &layer.schema().fields {
        out.push(b',');
        write_str(out, &field.name);
        out.push(b':');
        match f.feature.properties.get(&field.name) {
            None => out.extend_from_slice(b"null"),
            Some(v) => write_value(out, v),
        }
    }
    out.extend_from_slice(b"}}");
}

fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing a &str into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_f64(out: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let _ = serde_json::to_writer(&mut *out, &v);
    } else {
        out.extend_from_slice(b"null");
    }
}

fn write_value(out: &mut Vec<u8>, v: &shikong_model::Value) {
    use shikong_model::Value;
    match v {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => out.extend_from_slice(i.to_string().as_bytes()),
        Value::Real(r) => write_f64(out, *r),
        Value::Text(t) => write_str(out, t),
        other => {
            let _ = serde_json::to_writer(&mut *out, &other.to_json());
        }
    }
}

fn write_coord(out: &mut Vec<u8>, c: &shikong_model::Coord) {
    out.push(b'[');
    write_f64(out, c.x);
    out.push(b',');
    write_f64(out, c.y);
    if let Some(z) = c.z {
        out.push(b',');
        write_f64(out, z);
    }
    out.push(b']');
}

fn write_line(out: &mut Vec<u8>, l: &[shikong_model::Coord]) {
    out.push(b'[');
    for (i, c) in l.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_coord(out, c);
    }
    out.push(b']');
}

fn write_lines(out: &mut Vec<u8>, ls: &[Vec<shikong_model::Coord>]) {
    out.push(b'[');
    for (i, l) in ls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_line(out, l);
    }
    out.push(b']');
}

/// A GeoJSON geometry object, written directly.
pub fn write_geometry(out: &mut Vec<u8>, g: &Geometry) {
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(g.kind().geojson_name().as_bytes());
    out.extend_from_slice(b"\",\"coordinates\":");
    match g {
        Geometry::Point(c) => write_coord(out, c),
        Geometry::LineString(l) | Geometry::MultiPoint(l) => write_line(out, l),
        Geometry::Polygon(r) | Geometry::MultiLineString(r) => write_lines(out, r),
        Geometry::MultiPolygon(p) => {
            out.push(b'[');
            for (i, r) in p.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_lines(out, r);
            }
            out.push(b']');
        }
    }
    out.push(b'}');
}

fn changed(v: &ChangedValue) -> Json {
    match v {
        ChangedValue::Absent => Json::Null,
        ChangedValue::Value(v) => v.to_json(),
        ChangedValue::Geometry(g) => geojson::to_json(g),
    }
}

/// Field-level changes as the wire carries them.
pub fn field_changes(cs: &[Change]) -> Vec<api::FieldChange> {
    cs.iter()
        .map(|c| api::FieldChange { attribute: c.attribute.clone(), old: changed(&c.old), new: changed(&c.new) })
        .collect()
}

pub fn changes(cs: &[Change]) -> Json {
    serde_json::to_value(field_changes(cs)).unwrap_or(Json::Null)
}

pub fn tx(t: &TxRecord) -> api::TxInfo {
    api::TxInfo {
        tx: t.tx.0,
        time: time::beijing(t.time),
        author: t.author.clone(),
        device: t.device.clone(),
        device_time: t.device_time.clone(),
        source: t.source.clone(),
    }
}

/// One device edit of the entity's sync log.
pub fn edit(e: &shikong_crdt::EditRecord) -> api::DeviceEdit {
    api::DeviceEdit {
        change: e.hash.to_string(),
        user: e.user.clone(),
        device: e.device.clone(),
        device_time: e.time.map(time::beijing),
        op: e.op.clone(),
        attributes: e.attributes.clone(),
        lost_to_delete: e.lost_to_delete,
    }
}

/// A feature's history (`shikong history`, `GET …/items/{id}/history`): store versions, then the
/// device edits that built them (sync log).
pub fn history_doc(
    layer: &Layer,
    versions: &[VersionRecord],
    edits: &[shikong_crdt::EditRecord],
) -> api::FeatureHistory {
    let last = versions.last();
    api::FeatureHistory {
        edits: edits.iter().map(edit).collect(),
        layer: layer.name().to_owned(),
        entity_id: last
            .and_then(|v| v.state.as_ref())
            .map(|f| f.id.to_string())
            .or_else(|| versions.iter().rev().find_map(|v| v.state.as_ref().map(|f| f.id.to_string()))),
        code: versions.iter().rev().find_map(|v| v.state.as_ref().map(|f| f.code.clone())),
        versions: versions
            .iter()
            .map(|v| api::HistoryVersion {
                version: v.version,
                op: match v.op {
                    shikong_store::Op::Insert => api::VersionOp::Insert,
                    shikong_store::Op::Update => api::VersionOp::Update,
                    shikong_store::Op::Delete => api::VersionOp::Delete,
                },
                tx: tx(&v.tx),
                device_time: v.device_time.map(time::beijing),
                changes: field_changes(&v.changes),
            })
            .collect(),
    }
}

/// [`history_doc`] as a JSON value.
pub fn history(layer: &Layer, versions: &[VersionRecord], edits: &[shikong_crdt::EditRecord]) -> Json {
    serde_json::to_value(history_doc(layer, versions, edits)).unwrap_or(Json::Null)
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

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::{
        Coord, EntityId, Feature, FieldDef, FieldType, GeometryKind, LayerSchema, Properties, ValidTime, Value,
    };
    use shikong_store::{LayerDef, TxId};

    #[test]
    fn the_streaming_writer_matches_the_value_builder() {
        let schema = LayerSchema {
            fields: vec![
                FieldDef::new("名称", FieldType::Text),
                FieldDef::new("depth", FieldType::Real),
                FieldDef::new("n", FieldType::Integer),
                FieldDef::new("ok", FieldType::Bool),
                FieldDef::new("day", FieldType::Date),
                FieldDef::new("missing", FieldType::Text),
            ],
        };
        let layer = Layer {
            def: LayerDef::new("t", GeometryKind::Geometry, schema),
            srs_id: 4490,
            created_tx: TxId(1),
            extent: None,
            schema_tx: TxId(1),
        };
        let props: Properties = [
            ("名称".to_string(), Value::from("井盖 \"引号\" \n换行")),
            ("depth".to_string(), Value::Real(1.5)),
            ("n".to_string(), Value::Integer(-3)),
            ("ok".to_string(), Value::Bool(true)),
            ("day".to_string(), Value::Date(jiff::civil::date(2025, 6, 1))),
        ]
        .into();
        let t = shikong_model::parse_instant("2025-06-01T08:00:00+08:00").unwrap();
        for g in [
            None,
            Some(Geometry::Point(Coord::xyz(114.3, 30.5, 21.0))),
            Some(Geometry::MultiPolygon(vec![vec![vec![
                Coord::xy(0.0, 0.0),
                Coord::xy(1.0, 0.0),
                Coord::xy(1.0, 1.0),
                Coord::xy(0.0, 0.0),
            ]]])),
        ] {
            let f = StoredFeature {
                feature: Feature {
                    id: "0192f3c4-0000-7000-8000-000000000001".parse::<EntityId>().unwrap(),
                    code: "A-1".into(),
                    geometry: g,
                    valid: ValidTime { from: Some(t), to: None },
                    properties: props.clone(),
                },
                version: 3,
                tx: TxId(7),
                tx_time: t,
                device_time: None,
            };
            let mut buf = Vec::new();
            write_feature(&mut buf, &layer, &f, None);
            let parsed: Json = serde_json::from_slice(&buf).unwrap();
            assert_eq!(parsed, feature(&layer, &f));
        }
    }
}
