//! Harvesting other catalogues into the platform's catalog (issue 20): `POST /harvests`,
//! `GET /harvests`, `POST /harvests/{id}/run`, `DELETE /harvests/{id}` (administrators).
//!
//! A source is a CSW 2.0.2 endpoint, an OGC API – Records collection (or its items URL), or a
//! WMS/WMTS/WFS/OGC API Features service whose capabilities give one record per layer. Each run
//! reports what it added, updated, removed and found unchanged, so an administrator sees that a
//! re-run is incremental.

use serde::{Deserialize, Serialize};

/// What a harvest source speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HarvestType {
    #[serde(rename = "csw")]
    Csw,
    #[serde(rename = "ogcapi-records")]
    OgcApiRecords,
    #[serde(rename = "wms")]
    Wms,
    #[serde(rename = "wmts")]
    Wmts,
    #[serde(rename = "wfs")]
    Wfs,
    #[serde(rename = "ogcapi-features")]
    OgcApiFeatures,
}

impl HarvestType {
    pub const ALL: [HarvestType; 6] = [
        HarvestType::Csw,
        HarvestType::OgcApiRecords,
        HarvestType::Wms,
        HarvestType::Wmts,
        HarvestType::Wfs,
        HarvestType::OgcApiFeatures,
    ];

    /// The wire name (`csw`, `ogcapi-records`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            HarvestType::Csw => "csw",
            HarvestType::OgcApiRecords => "ogcapi-records",
            HarvestType::Wms => "wms",
            HarvestType::Wmts => "wmts",
            HarvestType::Wfs => "wfs",
            HarvestType::OgcApiFeatures => "ogcapi-features",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `POST /harvests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHarvest {
    pub url: String,
    #[serde(rename = "type")]
    pub kind: HarvestType,
    pub title: String,
    /// Run every this many minutes (`serve` schedules it); absent: only on demand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_minutes: Option<u32>,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HarvestRun {
    pub started: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    pub added: u64,
    pub updated: u64,
    pub removed: u64,
    pub unchanged: u64,
    /// Why the run stopped early; the records of earlier runs are then kept as they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A harvest source (`POST /harvests` answer, `GET /harvests` items).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarvestSource {
    pub id: String,
    pub url: String,
    #[serde(rename = "type")]
    pub kind: HarvestType,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_minutes: Option<u32>,
    /// Records now held from this source.
    pub records: u64,
    /// The latest run (running or finished), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<HarvestRun>,
    pub created: String,
}

/// `GET /harvests`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarvestList {
    pub harvests: Vec<HarvestSource>,
}

/// `POST /harvests/{id}/run` (202).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HarvestStarted {
    pub id: String,
    /// `false` when a run of this source was already going (it is not started twice).
    pub started: bool,
    /// With `?wait=true`: the finished run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<HarvestRun>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_harvest_json() {
        let h: NewHarvest =
            serde_json::from_str(r#"{"url":"http://x/csw","type":"csw","title":"邻区目录","every_minutes":60}"#)
                .unwrap();
        assert_eq!(h.kind, HarvestType::Csw);
        assert_eq!(h.every_minutes, Some(60));
        assert!(serde_json::from_str::<NewHarvest>(r#"{"url":"u","type":"csw","title":"t","x":1}"#).is_err());
        assert_eq!(HarvestType::parse("ogcapi-records"), Some(HarvestType::OgcApiRecords));
    }
}
