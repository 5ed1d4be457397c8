//! Layers on the wire: the definition users read and edit and sync sends to replicas
//! ([`LayerDoc`]), and the OGC API – Features collection list (`GET /collections`,
//! `GET /collections/{id}`) the apps read to offer layers for offline use. The server writes the
//! collection documents from these types, so the `shikong:` extension members the apps branch
//! on cannot drift from what they read.

use serde::{Deserialize, Serialize};
use shikong_model::{FieldDef, HeightDatum, Theme};

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

/// An OGC API link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub href: String,
    pub rel: String,
    #[serde(rename = "type")]
    pub media_type: String,
    pub title: String,
}

impl Link {
    pub fn new(href: String, rel: &str, media_type: &str, title: &str) -> Link {
        Link { href, rel: rel.to_owned(), media_type: media_type.to_owned(), title: title.to_owned() }
    }
}

/// `GET /collections` answer: the layers the caller may read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collections {
    pub links: Vec<Link>,
    pub collections: Vec<Collection>,
}

/// One collection (a layer), in `GET /collections` and as `GET /collections/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Collection {
    /// The layer name.
    pub id: String,
    /// The display name (the layer's title, or its name).
    pub title: String,
    pub description: String,
    #[serde(rename = "itemType")]
    pub item_type: String,
    pub extent: Extent,
    /// CRS URIs the items may be requested in.
    pub crs: Vec<String>,
    #[serde(rename = "storageCrs")]
    pub storage_crs: String,
    /// GeoJSON geometry type name (`Point`, `MultiPolygon`, … or `Geometry`).
    #[serde(rename = "geometryType")]
    pub geometry_type: String,
    /// Readable without signing in.
    #[serde(rename = "shikong:public")]
    pub public: bool,
    /// Citizens may report into it (create, not read).
    #[serde(rename = "shikong:citizenReports")]
    pub citizen_reports: bool,
    pub links: Vec<Link>,
    /// The transaction-time range a time slider moves over (absent when unknown).
    #[serde(rename = "shikong:transactions", default, skip_serializing_if = "Option::is_none")]
    pub transactions: Option<TxExtent>,
}

/// The transaction times (RFC 3339, Beijing time) over which a collection can be read `as-of`:
/// `first`, the layer's creation (nothing of it exists before); `last`, its newest write (it
/// reads the same at any later instant, so a map need not re-read it there).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxExtent {
    pub first: String,
    pub last: String,
}

/// A collection's extent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Extent {
    pub spatial: SpatialExtent,
    pub temporal: TemporalExtent,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpatialExtent {
    /// `[min lon, min lat, max lon, max lat]` boxes.
    pub bbox: Vec<[f64; 4]>,
    pub crs: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemporalExtent {
    /// `[start, end]` intervals; `null` is open.
    pub interval: Vec<[Option<String>; 2]>,
    pub trs: String,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use shikong_model::{FieldDef, FieldType};

    #[test]
    fn layer_doc() {
        let mut f = FieldDef::new("名称", FieldType::Text);
        f.id = "f1".into();
        let doc = LayerDoc {
            name: "manhole".into(),
            title: Some("井盖".into()),
            description: None,
            geometry_type: "Point".into(),
            has_z: false,
            theme: Theme::default(),
            height_datum: None,
            public: false,
            citizen_reports: false,
            fields: vec![f],
        };
        golden(
            doc,
            r#"{"name":"manhole","title":"井盖","geometry_type":"Point","has_z":false,"theme":{},"public":false,"citizen_reports":false,
                "fields":[{"id":"f1","name":"名称","type":"text","required":false}]}"#,
        );
    }

    #[test]
    fn collections() {
        let link = |rel: &str| Link {
            href: "http://h/collections/manhole".into(),
            rel: rel.into(),
            media_type: "application/json".into(),
            title: "this collection".into(),
        };
        golden(
            Collections {
                links: vec![link("self")],
                collections: vec![Collection {
                    id: "manhole".into(),
                    title: "井盖".into(),
                    description: String::new(),
                    item_type: "feature".into(),
                    extent: Extent {
                        spatial: SpatialExtent {
                            bbox: vec![[114.2, 30.4, 114.5, 30.6]],
                            crs: "http://www.opengis.net/def/crs/OGC/1.3/CRS84".into(),
                        },
                        temporal: TemporalExtent {
                            interval: vec![[None, None]],
                            trs: "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian".into(),
                        },
                    },
                    crs: vec!["http://www.opengis.net/def/crs/EPSG/0/4490".into()],
                    storage_crs: "http://www.opengis.net/def/crs/EPSG/0/4490".into(),
                    geometry_type: "Point".into(),
                    public: false,
                    citizen_reports: true,
                    links: vec![link("self")],
                    transactions: None,
                }],
            },
            r#"{"links":[{"href":"http://h/collections/manhole","rel":"self","type":"application/json","title":"this collection"}],
                "collections":[{"id":"manhole","title":"井盖","description":"","itemType":"feature",
                "extent":{"spatial":{"bbox":[[114.2,30.4,114.5,30.6]],"crs":"http://www.opengis.net/def/crs/OGC/1.3/CRS84"},
                          "temporal":{"interval":[[null,null]],"trs":"http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"}},
                "crs":["http://www.opengis.net/def/crs/EPSG/0/4490"],"storageCrs":"http://www.opengis.net/def/crs/EPSG/0/4490",
                "geometryType":"Point","shikong:public":false,"shikong:citizenReports":true,
                "links":[{"href":"http://h/collections/manhole","rel":"self","type":"application/json","title":"this collection"}]}]}"#,
        );
    }
}
