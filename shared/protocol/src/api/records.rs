//! OGC API – Records Part 1: the catalog of every layer, tile set, style, process and registered
//! service (`/collections/catalog`, its items and one record). A record is a GeoJSON feature whose
//! geometry is the resource's extent; `properties` follow the Records record schema (`type`,
//! `title`, `description`, `keywords`, `themes`, `language`, `created`, `updated`, `externalIds`),
//! plus the live facts of a layer the platform adds under `shikong:` names (feature count, fields).

use serde::{Deserialize, Serialize};

use super::layers::{Extent, Link};

/// `GET /collections/catalog`: the catalog collection (`itemType` `record`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogCollection {
    pub id: String,
    /// Always `Catalog`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub description: String,
    /// Always `record`.
    #[serde(rename = "itemType")]
    pub item_type: String,
    pub extent: Extent,
    pub links: Vec<Link>,
}

/// `GET /collections/catalog/items`: a page of records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordPage {
    /// Always `FeatureCollection`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(rename = "numberMatched")]
    pub number_matched: usize,
    #[serde(rename = "numberReturned")]
    pub number_returned: usize,
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    pub links: Vec<Link>,
    pub features: Vec<Record>,
}

/// One record (`GET /collections/catalog/items/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    /// Always `Feature`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The extent as a GeoJSON polygon (CRS84); `null` for what has no place (a process).
    pub geometry: Option<serde_json::Value>,
    /// The time the resource covers (for a layer: its creation to its newest write).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<RecordTime>,
    #[serde(rename = "conformsTo", default, skip_serializing_if = "Vec::is_empty")]
    pub conforms_to: Vec<String>,
    pub properties: RecordProperties,
    pub links: Vec<Link>,
}

/// A record's `time`: `[start, end]`, RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordTime {
    pub interval: [Option<String>; 2],
}

/// The Records core properties of a record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordProperties {
    /// `dataset`, `tileset`, `style`, `process` or `service`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub description: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub themes: Vec<Theme>,
    pub language: Language,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    #[serde(rename = "externalIds", default)]
    pub external_ids: Vec<ExternalId>,
    /// The spatial and temporal extent again, as a collection states it (what CSW clients read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extent: Option<Extent>,
    /// A layer's live features now.
    #[serde(rename = "shikong:featureCount", default, skip_serializing_if = "Option::is_none")]
    pub feature_count: Option<u64>,
    /// A layer's fields (its schema), in column order.
    #[serde(rename = "shikong:fields", default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<RecordField>,
}

/// A theme: concepts of one scheme.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Theme {
    pub concepts: Vec<Concept>,
    pub scheme: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concept {
    pub id: String,
}

/// A language tag (`zh-CN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    pub code: String,
}

/// An identifier of the resource in another scheme (`externalIds` selects by `value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExternalId {
    pub scheme: String,
    pub value: String,
}

/// A field of a layer's schema as the catalog shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordField {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(rename = "type")]
    pub ty: String,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;

    #[test]
    fn record() {
        let r = Record {
            id: "layer:manhole".into(),
            kind: "Feature".into(),
            geometry: None,
            time: Some(RecordTime { interval: [Some("2026-01-01T00:00:00+08:00".into()), None] }),
            conforms_to: vec![],
            properties: RecordProperties {
                kind: "dataset".into(),
                title: "井盖".into(),
                description: String::new(),
                keywords: vec!["manhole".into()],
                themes: vec![Theme {
                    concepts: vec![Concept { id: "point".into() }],
                    scheme: "shikong:geometry".into(),
                }],
                language: Language { code: "zh-CN".into() },
                created: None,
                updated: None,
                external_ids: vec![ExternalId { scheme: "shikong:layer".into(), value: "manhole".into() }],
                extent: None,
                feature_count: Some(3),
                fields: vec![RecordField { name: "depth".into(), title: Some("埋深".into()), ty: "real".into() }],
            },
            links: vec![],
        };
        golden(
            r,
            r#"{"id":"layer:manhole","type":"Feature","geometry":null,
                "time":{"interval":["2026-01-01T00:00:00+08:00",null]},
                "properties":{"type":"dataset","title":"井盖","description":"","keywords":["manhole"],
                  "themes":[{"concepts":[{"id":"point"}],"scheme":"shikong:geometry"}],"language":{"code":"zh-CN"},
                  "externalIds":[{"scheme":"shikong:layer","value":"manhole"}],
                  "shikong:featureCount":3,"shikong:fields":[{"name":"depth","title":"埋深","type":"real"}]},
                "links":[]}"#,
        );
    }
}
