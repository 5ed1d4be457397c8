//! Registered outside services, API keys and the service proxy (issue 20): `POST /services`,
//! `GET /services[/{id}]`, `DELETE /services/{id}`, `POST /keys`, `GET /keys`,
//! `DELETE /keys/{id}`, and the service-health message of the live channel.
//!
//! Outside credentials go in (`headers`, `username`, `password` of [`NewService`]) and never come
//! out: [`ServiceInfo`] has no member for them, and its `url` is the platform's proxy address,
//! never the outside one. A key's secret is in [`KeyCreated`] once and nowhere else.

use serde::{Deserialize, Serialize};

/// The kinds of service the platform registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceType {
    #[serde(rename = "wms")]
    Wms,
    #[serde(rename = "wmts")]
    Wmts,
    #[serde(rename = "wfs")]
    Wfs,
    #[serde(rename = "ogcapi-features")]
    OgcApiFeatures,
    #[serde(rename = "ogcapi-tiles")]
    OgcApiTiles,
    #[serde(rename = "arcgis-rest")]
    ArcgisRest,
    /// A tile template URL with `{z}`, `{x}`, `{y}`.
    #[serde(rename = "xyz")]
    Xyz,
}

impl ServiceType {
    pub const ALL: [ServiceType; 7] = [
        ServiceType::Wms,
        ServiceType::Wmts,
        ServiceType::Wfs,
        ServiceType::OgcApiFeatures,
        ServiceType::OgcApiTiles,
        ServiceType::ArcgisRest,
        ServiceType::Xyz,
    ];

    /// The wire name (`wms`, `ogcapi-features`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::Wms => "wms",
            ServiceType::Wmts => "wmts",
            ServiceType::Wfs => "wfs",
            ServiceType::OgcApiFeatures => "ogcapi-features",
            ServiceType::OgcApiTiles => "ogcapi-tiles",
            ServiceType::ArcgisRest => "arcgis-rest",
            ServiceType::Xyz => "xyz",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// `POST /services` (administrators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewService {
    /// The outside service's address (for `xyz`: the tile template).
    pub url: String,
    #[serde(rename = "type")]
    pub kind: ServiceType,
    pub title: String,
    /// Headers sent to the outside service with every request (an API key of theirs); kept on
    /// the server, never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderPair>,
    /// HTTP Basic credentials for the outside service; kept on the server, never shown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// One header of [`NewService::headers`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderPair {
    pub name: String,
    pub value: String,
}

/// A layer found in a service's capabilities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceLayer {
    /// The identifier to ask the service for (WMS `Name`, WMTS `Identifier`, collection id …).
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `[min lon, min lat, max lon, max lat]` where the capabilities give one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
}

/// `up`, `down` or `unknown` (never checked yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    Unknown,
    Up,
    Down,
}

/// The latest health check of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealth {
    pub state: HealthState,
    /// When it was last checked (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checked_at: Option<String>,
    /// How long the check's answer took, milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Why the last failed check failed (never the outside address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Since when it is down (RFC 3339): the open alert.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub down_since: Option<String>,
    /// Consecutive failed checks.
    #[serde(default)]
    pub failures: u32,
}

/// A registered service as shown (`201` of `POST /services`, `GET /services/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfo {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: ServiceType,
    pub title: String,
    /// The platform's proxy address of the service (`…/services/{id}/proxy/`).
    pub url: String,
    pub layers: Vec<ServiceLayer>,
    pub health: ServiceHealth,
    /// Whether outside credentials are stored (never what they are).
    pub credentials: bool,
    pub created_at: String,
    pub created_by: String,
}

/// `GET /services`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceList {
    pub services: Vec<ServiceInfo>,
}

/// `POST /keys` (administrators).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKey {
    pub name: String,
    /// Requests per day (Beijing time); at least 1.
    pub quota: u64,
    /// Ids of the services the key may use.
    pub services: Vec<String>,
    /// A WKT polygon or multipolygon in CGCS2000 lon/lat: only requests whose area touches it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<String>,
    /// The key stops working at this instant (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// Daily window in Beijing time, `"08:00-20:00"`: outside it requests are refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
    /// Requests per second (1–10,000): a burst of up to this many, then this many a second;
    /// beyond it 429 with `Retry-After`. Absent: only the daily quota limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
}

/// A key as listed (no secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyInfo {
    pub id: String,
    pub name: String,
    pub quota: u64,
    pub services: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hours: Option<String>,
    /// Requests per second ([`NewKey::rate`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<u64>,
    /// Requests counted today (Beijing time), as far as this server knows.
    pub used_today: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

/// `201` of `POST /keys`: the secret, shown this once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyCreated {
    pub key: String,
    #[serde(flatten)]
    pub info: KeyInfo,
}

/// `GET /keys`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyList {
    pub keys: Vec<KeyInfo>,
}

/// Live channel message for administrators: a service went down or came back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceHealthEvent {
    pub service: String,
    pub title: String,
    pub state: HealthState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub time: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::golden;

    #[test]
    fn shapes() {
        golden(
            NewService {
                url: "https://example.org/wmts".into(),
                kind: ServiceType::OgcApiFeatures,
                title: "底图".into(),
                headers: vec![],
                username: None,
                password: None,
            },
            r#"{"url":"https://example.org/wmts","type":"ogcapi-features","title":"底图"}"#,
        );
        golden(
            NewKey {
                name: "app".into(),
                quota: 100,
                services: vec!["s1".into()],
                fence: Some("POLYGON((0 0,1 0,1 1,0 0))".into()),
                expires: None,
                hours: None,
                rate: Some(5),
            },
            r#"{"name":"app","quota":100,"services":["s1"],"fence":"POLYGON((0 0,1 0,1 1,0 0))","rate":5}"#,
        );
        assert!(serde_json::from_str::<NewService>(r#"{"url":"u","type":"tms","title":"t"}"#).is_err());
        for t in ServiceType::ALL {
            assert_eq!(ServiceType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.as_str()));
        }
    }
}
