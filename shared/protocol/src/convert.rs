//! Features to and from their wire form ([`crate::WireFeature`]): properties keyed by stable field
//! id, geometry as GeoJSON in CGCS2000, instants as GeoPackage DATETIME text (millisecond
//! precision, as the store keeps them). One encoding for the server and every device.

use serde_json::{Map, Value as Json};
use shikong_model::{EntityId, Feature, FieldType, LayerSchema, Properties, ValidTime, Value, geojson, time};

use crate::WireFeature;

fn value_json(v: &Value) -> Json {
    match v {
        Value::DateTime(t) => Json::String(time::gpkg_datetime(*t)),
        other => other.to_json(),
    }
}

/// The wire form of `f` (properties by field id; fields unknown to `schema` are dropped).
pub fn to_wire(schema: &LayerSchema, f: &Feature) -> WireFeature {
    let mut properties = Map::new();
    for (name, v) in &f.properties {
        if let Some(field) = schema.field(name)
            && !v.is_null()
        {
            properties.insert(field.id.clone(), value_json(v));
        }
    }
    WireFeature {
        code: f.code.clone(),
        geometry: f.geometry.as_ref().map_or(Json::Null, geojson::to_json),
        valid_from: f.valid.from.map(time::gpkg_datetime),
        valid_to: f.valid.to.map(time::gpkg_datetime),
        properties,
    }
}

/// A feature back from its wire form. Field ids unknown to `schema` are ignored (a newer schema
/// arrives before entities that use it); values that do not fit their field type are an error
/// naming the field.
pub fn from_wire(schema: &LayerSchema, id: EntityId, w: &WireFeature) -> Result<Feature, String> {
    let geometry = match &w.geometry {
        Json::Null => None,
        g => Some(geojson::from_json(g).map_err(|e| format!("geometry: {e}"))?),
    };
    let when = |s: &Option<String>, what: &str| -> Result<Option<jiff::Timestamp>, String> {
        s.as_deref().map(|t| time::parse_instant(t).map_err(|e| format!("{what}: {e}"))).transpose()
    };
    let mut properties = Properties::new();
    for (fid, j) in &w.properties {
        let Some(field) = schema.field_by_id(fid) else { continue };
        let v = match (field.ty, j) {
            (FieldType::Attachments, Json::Array(items)) => {
                Value::Attachments(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            }
            _ => field.coerce_json(j).map_err(|e| e.to_string())?,
        };
        if !v.is_null() {
            properties.insert(field.name.clone(), v);
        }
    }
    Ok(Feature {
        id,
        code: w.code.clone(),
        geometry,
        valid: ValidTime { from: when(&w.valid_from, "valid_from")?, to: when(&w.valid_to, "valid_to")? },
        properties,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::{Coord, FieldDef, Geometry};

    #[test]
    fn round_trip_every_type() {
        let mut fields = vec![
            FieldDef::new("名称", FieldType::Text),
            FieldDef::new("n", FieldType::Integer),
            FieldDef::new("x", FieldType::Real),
            FieldDef::new("ok", FieldType::Bool),
            FieldDef::new("day", FieldType::Date),
            FieldDef::new("at", FieldType::DateTime),
            FieldDef::new("photos", FieldType::Attachments),
        ];
        for (i, f) in fields.iter_mut().enumerate() {
            f.id = format!("c{}", i + 1);
        }
        let schema = LayerSchema { fields };
        let at = time::parse_instant("2025-06-01T08:30:00.125+08:00").unwrap();
        let f = Feature {
            id: "0192f3c4-0000-7000-8000-000000000001".parse().unwrap(),
            code: "A".into(),
            geometry: Some(Geometry::Point(Coord::xyz(114.3, 30.5, 21.0))),
            valid: ValidTime { from: Some(at), to: None },
            properties: [
                ("名称".to_string(), Value::from("井盖")),
                ("n".to_string(), Value::Integer(3)),
                ("x".to_string(), Value::Real(1.5)),
                ("ok".to_string(), Value::Bool(false)),
                ("day".to_string(), Value::Date(jiff::civil::date(2025, 6, 1))),
                ("at".to_string(), Value::DateTime(at)),
                ("photos".to_string(), Value::Attachments(vec!["ab".repeat(32)])),
            ]
            .into(),
        };
        let w = to_wire(&schema, &f);
        assert!(w.properties.contains_key("c1"));
        assert_eq!(from_wire(&schema, f.id, &w).unwrap(), f);
        let json = serde_json::to_string(&w).unwrap();
        let back: WireFeature = serde_json::from_str(&json).unwrap();
        assert_eq!(from_wire(&schema, f.id, &back).unwrap(), f);
    }
}
