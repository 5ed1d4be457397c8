//! Offline tile packages: the body of `POST /tiles/packages` (an MBTiles download) and
//! `POST /tiles/packages/estimate`, and the estimate's answer. A device asks for the basemap of
//! its offline area with it; the area is either a polygon or a feature of a layer (a district),
//! so the app never has to hold a division's boundary to ask for its tiles.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// Default lowest zoom of a package.
pub const DEFAULT_MINZOOM: u8 = 12;
/// Default highest zoom of a package.
pub const DEFAULT_MAXZOOM: u8 = 18;

fn default_minzoom() -> u8 {
    DEFAULT_MINZOOM
}

fn default_maxzoom() -> u8 {
    DEFAULT_MAXZOOM
}

/// `POST /tiles/packages[/estimate]` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageRequest {
    /// A vector layer, layers `a,b`, or a raster set.
    pub set: String,
    pub area: PackageArea,
    #[serde(default = "default_minzoom")]
    pub minzoom: u8,
    #[serde(default = "default_maxzoom")]
    pub maxzoom: u8,
    /// A raster set's imagery as of this instant.
    #[serde(rename = "as-of", default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    /// An update package: the transaction number of an earlier package (its `shikong:tx`) for
    /// vector sets, an acquisition date for raster sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

/// The area of a package.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PackageArea {
    /// The geometry of a feature: `{"layer": "division", "feature": "420111"}`.
    Feature(FeatureArea),
    /// A GeoJSON Polygon or MultiPolygon in lon/lat.
    Geometry(Json),
}

/// A feature whose geometry is the area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureArea {
    pub layer: String,
    /// The feature's id or entity code.
    pub feature: String,
}

/// `POST /tiles/packages/estimate` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageEstimate {
    pub tiles: u64,
    pub bytes: u64,
    /// `bytes` in MiB, two decimals.
    pub megabytes: f64,
    /// Counted, not extrapolated from a sample.
    pub exact: bool,
    /// Tiles rendered to estimate (vector sets).
    #[serde(rename = "sampledTiles")]
    pub sampled_tiles: u64,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use serde_json::json;

    #[test]
    fn package_requests() {
        golden(
            PackageRequest {
                set: "manhole,street_lamp".into(),
                area: PackageArea::Feature(FeatureArea { layer: "division".into(), feature: "420111".into() }),
                minzoom: 12,
                maxzoom: 16,
                as_of: None,
                since: None,
            },
            r#"{"set":"manhole,street_lamp","area":{"layer":"division","feature":"420111"},"minzoom":12,"maxzoom":16}"#,
        );
        golden(
            PackageRequest {
                set: "manhole".into(),
                area: PackageArea::Geometry(
                    json!({"type": "Polygon", "coordinates": [[[114.3, 30.5], [114.4, 30.5], [114.4, 30.6], [114.3, 30.5]]]}),
                ),
                minzoom: 12,
                maxzoom: 18,
                as_of: None,
                since: Some("42".into()),
            },
            r#"{"set":"manhole","area":{"type":"Polygon","coordinates":[[[114.3,30.5],[114.4,30.5],[114.4,30.6],[114.3,30.5]]]},
                "minzoom":12,"maxzoom":18,"since":"42"}"#,
        );
        let defaults: PackageRequest = serde_json::from_str(
            r#"{"set":"imagery","area":{"layer":"division","feature":"420111"},"as-of":"2024-01-01"}"#,
        )
        .unwrap();
        assert_eq!((defaults.minzoom, defaults.maxzoom, defaults.as_of.as_deref()), (12, 18, Some("2024-01-01")));
        assert!(serde_json::from_str::<PackageRequest>(r#"{"set":"a","area":{},"zoom":3}"#).is_err());
    }

    #[test]
    fn estimate() {
        golden(
            PackageEstimate { tiles: 1365, bytes: 5_242_880, megabytes: 5.0, exact: false, sampled_tiles: 64 },
            r#"{"tiles":1365,"bytes":5242880,"megabytes":5.0,"exact":false,"sampledTiles":64}"#,
        );
    }
}
