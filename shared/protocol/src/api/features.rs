//! Features as OGC API – Features carries them: the GeoJSON a device sends to create one (a
//! citizen's report) and the stored feature the server answers with (`201 Created`, and
//! `GET …/items/{id}`). Properties are the layer's fields by name, so they stay a JSON object;
//! the system attributes the server adds (entity id, code, valid time, version) are typed.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

/// The `type` member of a GeoJSON Feature (only `"Feature"` parses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureType {
    #[default]
    Feature,
}

/// The `type` member of a GeoJSON FeatureCollection (only `"FeatureCollection"` parses).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureCollectionType {
    #[default]
    FeatureCollection,
}

/// `POST /collections/{layer}/items` body as the apps send it: a GeoJSON Feature whose
/// properties are the layer's fields by name (the server checks them against the schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewFeature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// A GeoJSON geometry in CGCS2000 lon/lat (CRS84 axis order), or `null`.
    pub geometry: Option<Json>,
    pub properties: Map<String, Json>,
}

/// A stored feature as GeoJSON: the answer to `POST /collections/{layer}/items` (201, with its
/// URL in `Location`) and the body of `GET …/items/{id}` (which adds `links`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feature {
    #[serde(rename = "type")]
    pub kind: FeatureType,
    /// The entity id (UUID).
    pub id: String,
    /// A GeoJSON geometry, or `null`.
    pub geometry: Option<Json>,
    pub properties: FeatureProperties,
}

/// A stored feature's properties: system attributes first, then the layer's fields.
// No deny_unknown_fields: serde cannot combine it with the flattened fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureProperties {
    pub entity_id: String,
    /// The entity code (地理实体编码).
    pub code: String,
    /// Beijing time, or `null` when open.
    pub valid_from: Option<String>,
    pub valid_to: Option<String>,
    pub version: i64,
    /// When the store recorded this version (Beijing time).
    pub tx_time: String,
    /// The layer's fields by name, in schema order (`null` when unset).
    #[serde(flatten)]
    pub fields: Map<String, Json>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use serde_json::json;

    fn object(v: Json) -> Map<String, Json> {
        match v {
            Json::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn new_feature() {
        golden(
            NewFeature {
                kind: FeatureType::Feature,
                geometry: Some(json!({"type": "Point", "coordinates": [114.36, 30.51]})),
                properties: object(json!({"类别": "1", "描述": "井盖破损", "照片": ["ab12"]})),
            },
            r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[114.36,30.51]},
                "properties":{"类别":"1","描述":"井盖破损","照片":["ab12"]}}"#,
        );
        assert!(serde_json::from_str::<NewFeature>(r#"{"type":"Point","geometry":null,"properties":{}}"#).is_err());
    }

    #[test]
    fn stored_feature() {
        golden(
            Feature {
                kind: FeatureType::Feature,
                id: "0192f3c4-0000-7000-8000-000000000001".into(),
                geometry: None,
                properties: FeatureProperties {
                    entity_id: "0192f3c4-0000-7000-8000-000000000001".into(),
                    code: "HS-JG-0001".into(),
                    valid_from: Some("2025-06-01T10:00:00+08:00".into()),
                    valid_to: None,
                    version: 1,
                    tx_time: "2025-06-01T10:00:00+08:00".into(),
                    fields: object(json!({"名称": "井盖", "depth": 1.5, "状态": null})),
                },
            },
            r#"{"type":"Feature","id":"0192f3c4-0000-7000-8000-000000000001","geometry":null,
                "properties":{"entity_id":"0192f3c4-0000-7000-8000-000000000001","code":"HS-JG-0001",
                "valid_from":"2025-06-01T10:00:00+08:00","valid_to":null,"version":1,"tx_time":"2025-06-01T10:00:00+08:00",
                "名称":"井盖","depth":1.5,"状态":null}}"#,
        );
    }
}
