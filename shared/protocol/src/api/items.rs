//! A page of features as OGC API – Features answers `GET /collections/{layer}/items` (with
//! `filter`, `sortby`, `as-of`, `cursor` …), and a layer's queryables
//! (`GET /collections/{layer}/queryables`, a JSON Schema): what the desktop's attribute table and
//! query builder read. The server writes the page straight into bytes for speed; these types pin
//! what it writes for clients.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use super::{Feature, FeatureCollectionType, Link};

/// `GET …/items`: one page of features; its `next` link (if any) continues the query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeaturePage {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    #[serde(rename = "numberReturned")]
    pub number_returned: u64,
    /// Every feature the query matches: given when counting was free (a `sortby` answer).
    #[serde(rename = "numberMatched", default, skip_serializing_if = "Option::is_none")]
    pub number_matched: Option<u64>,
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    pub links: Vec<Link>,
    pub features: Vec<Feature>,
}

impl FeaturePage {
    /// The `next` link's URL, when more pages follow.
    pub fn next(&self) -> Option<&str> {
        self.links.iter().find(|l| l.rel == "next").map(|l| l.href.as_str())
    }
}

/// `GET …/queryables`: the properties a filter may name, in the layer's order (system
/// attributes first), each a small JSON Schema (read them with [`Queryables::fields`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Queryables {
    #[serde(rename = "$schema")]
    pub schema: String,
    #[serde(rename = "$id")]
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub properties: Map<String, Json>,
    #[serde(rename = "additionalProperties")]
    pub additional_properties: bool,
}

/// One queryable property.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Queryable {
    #[serde(default)]
    pub title: String,
    /// JSON Schema type: `string`, `integer`, `number`, `boolean`; none for the geometry.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub ty: Option<String>,
    /// `date`, `date-time`, `geometry-any` …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
    /// A code list's codes.
    #[serde(rename = "enum", default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<String>,
}

impl Queryables {
    /// The properties by name, in order; a property that is no valid schema is left out.
    pub fn fields(&self) -> Vec<(String, Queryable)> {
        self.properties
            .iter()
            .filter_map(|(k, v)| serde_json::from_value::<Queryable>(v.clone()).ok().map(|q| (k.clone(), q)))
            .collect()
    }
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use crate::api::{FeatureProperties, FeatureType};

    #[test]
    fn feature_page() {
        golden(
            FeaturePage {
                kind: FeatureCollectionType::FeatureCollection,
                number_returned: 1,
                number_matched: Some(2000),
                time_stamp: "2026-12-06T12:00:00Z".into(),
                links: vec![Link::new(
                    "http://h/collections/manhole/items?cursor=AQ".into(),
                    "next",
                    "application/geo+json",
                    "next page",
                )],
                features: vec![Feature {
                    kind: FeatureType::Feature,
                    id: "0192f3c4-0000-7000-8000-000000000001".into(),
                    geometry: None,
                    properties: FeatureProperties {
                        entity_id: "0192f3c4-0000-7000-8000-000000000001".into(),
                        code: "JG-1".into(),
                        valid_from: None,
                        valid_to: None,
                        version: 2,
                        tx_time: "2026-12-06T20:00:00+08:00".into(),
                        fields: Map::new(),
                    },
                }],
            },
            r#"{"type":"FeatureCollection","numberReturned":1,"numberMatched":2000,"timeStamp":"2026-12-06T12:00:00Z",
                "links":[{"href":"http://h/collections/manhole/items?cursor=AQ","rel":"next","type":"application/geo+json","title":"next page"}],
                "features":[{"type":"Feature","id":"0192f3c4-0000-7000-8000-000000000001","geometry":null,
                "properties":{"entity_id":"0192f3c4-0000-7000-8000-000000000001","code":"JG-1","valid_from":null,"valid_to":null,
                "version":2,"tx_time":"2026-12-06T20:00:00+08:00"}}]}"#,
        );
    }

    #[test]
    fn queryables() {
        let q: Queryables = serde_json::from_str(
            r#"{"$schema":"https://json-schema.org/draft/2020-12/schema","$id":"http://h/collections/m/queryables",
                "type":"object","title":"井盖","properties":{"geometry":{"title":"几何","format":"geometry-any"},
                "状态":{"title":"状态","type":"string","enum":["1","2"]},"埋深":{"title":"埋深（米）","type":"number"}},
                "additionalProperties":false}"#,
        )
        .unwrap();
        let f = q.fields();
        assert_eq!(f.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(), ["geometry", "状态", "埋深"]);
        assert_eq!(f[1].1.codes, ["1", "2"]);
        assert_eq!(f[0].1.ty, None);
        assert_eq!(f[2].1.ty.as_deref(), Some("number"));
    }
}
