//! The rest of what a device asks the server besides sync: sign-in (password, enrolment code,
//! citizen registration), offline-area preparation (division search, replica size estimate,
//! basemap package download) and citizens' reports. Kept here so the mobile and desktop apps stay
//! views over one client: the apps never build URLs or parse server JSON themselves.

use std::path::Path;

use reqwest::blocking::RequestBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use shikong_protocol as wire;

use crate::{Result, SyncClient, SyncError, encode};

/// A signed-in user on this device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub server: String,
    pub token: String,
    pub username: String,
    /// `admin`, `office`, `inspector` or `citizen`.
    pub role: String,
    /// Beijing time, as the server wrote it.
    pub expires_at: String,
    /// The device id when the token is a device token (enrolment).
    #[serde(default)]
    pub device: Option<String>,
}

impl Session {
    pub fn is_citizen(&self) -> bool {
        self.role == "citizen"
    }
}

/// A place the search box offers (division, road, POI, address), from the server's gazetteer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub name: String,
    #[serde(default)]
    pub standard_address: String,
    /// Division code (for roads and POIs, the code of their division).
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub level: Json,
    #[serde(default)]
    pub lon: Option<f64>,
    #[serde(default)]
    pub lat: Option<f64>,
}

/// What a replica of some layers in an area would hold, before it is cut.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ReplicaEstimate {
    /// `(layer, features)`.
    pub layers: Vec<(String, u64)>,
    pub bytes: u64,
}

/// A layer as the server lists it (`/collections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub name: String,
    pub title: String,
    pub citizen_reports: bool,
}

/// A layer citizens report into, with the fields of its form (`/reports/layers`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportLayer {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    pub fields: Vec<shikong_model::FieldDef>,
}

/// A basemap package written to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasemapPackage {
    pub tiles: u64,
    pub bytes: u64,
}

impl SyncClient {
    fn anonymous(&self, b: RequestBuilder) -> Result<reqwest::blocking::Response> {
        b.send().map_err(|e| SyncError::Network { url: self.base.clone(), message: e.to_string() })
    }

    fn post_json_anonymous(&self, path: &str, body: &Json) -> Result<Json> {
        let r = self.anonymous(self.http.post(self.url(path)).json(body))?;
        Self::json(Self::check(r)?)
    }

    fn get_json(&self, path: &str) -> Result<Json> {
        let r = Self::check(self.send(&|| self.http.get(self.url(path)))?)?;
        Self::json(r)
    }

    fn session_from(&self, j: &Json) -> Result<Session> {
        let s = |p: &str| j.pointer(p).and_then(Json::as_str).map(str::to_owned);
        Ok(Session {
            server: self.base.clone(),
            token: s("/token").ok_or_else(|| SyncError::Protocol("no token in the sign-in answer".into()))?,
            username: s("/user/username").unwrap_or_default(),
            role: s("/user/role").unwrap_or_default(),
            expires_at: s("/expires_at").unwrap_or_default(),
            device: s("/device"),
        })
    }

    /// Signs in with a password (a client for `base` with no token yet is enough).
    pub fn login(&self, username: &str, password: &str) -> Result<Session> {
        let j = self.post_json_anonymous("/auth/login", &json!({"username": username, "password": password}))?;
        self.session_from(&j)
    }

    /// Redeems a one-time enrolment code (from the admin's QR code) for a device token.
    pub fn enrol(&self, code: &str, device_name: &str, platform: &str) -> Result<Session> {
        let j = self.post_json_anonymous(
            "/auth/enrol",
            &json!({"code": code, "device": {"name": device_name, "platform": platform}}),
        )?;
        self.session_from(&j)
    }

    /// A citizen's self-registration; the account is usable once an administrator approves it.
    /// Returns the server's message.
    pub fn register(
        &self,
        username: &str,
        password: &str,
        display_name: Option<&str>,
        contact: Option<&str>,
    ) -> Result<String> {
        let j = self.post_json_anonymous(
            "/auth/register",
            &json!({"username": username, "password": password, "display_name": display_name, "contact": contact}),
        )?;
        Ok(j["message"].as_str().unwrap_or("registration received").to_owned())
    }

    /// Whether the token is still valid (`/auth/me`).
    pub fn check_session(&self) -> Result<bool> {
        let r = self.send(&|| self.http.get(self.url("/auth/me")))?;
        Ok(r.status().is_success())
    }

    /// The layers this user may read.
    pub fn layers(&self) -> Result<Vec<LayerEntry>> {
        let j = self.get_json("/collections?f=json")?;
        let list = j["collections"].as_array().cloned().unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|c| {
                let name = c["id"].as_str()?.to_owned();
                Some(LayerEntry {
                    title: c["title"].as_str().unwrap_or(&name).to_owned(),
                    citizen_reports: c["shikong:citizenReports"].as_bool().unwrap_or(false),
                    name,
                })
            })
            .filter(|l| l.name != "gazetteer")
            .collect())
    }

    /// Places whose name or pinyin starts with `q` (the server's gazetteer).
    pub fn suggest(&self, q: &str, limit: usize) -> Result<Vec<Place>> {
        let j = self.get_json(&format!("/geocode/suggest?q={}&limit={limit}", encode(q)))?;
        let list = j["suggestions"].as_array().cloned().unwrap_or_default();
        Ok(list
            .iter()
            .filter_map(|s| {
                let mut p: Place = serde_json::from_value(s.clone()).ok()?;
                p.lon = s.pointer("/point/lon").or_else(|| s.pointer("/point/x")).and_then(Json::as_f64);
                p.lat = s.pointer("/point/lat").or_else(|| s.pointer("/point/y")).and_then(Json::as_f64);
                Some(p)
            })
            .collect())
    }

    /// Features per layer and bytes of the replica `layers` × `area` would be.
    pub fn estimate_replica(&self, layers: &[String], area: Option<&str>) -> Result<ReplicaEstimate> {
        let req = wire::ReplicaRequest {
            protocol: wire::PROTOCOL_VERSION,
            layers: layers.to_vec(),
            area: area.map(str::to_owned),
            name: None,
        };
        let body = serde_json::to_vec(&req).map_err(|e| SyncError::Protocol(e.to_string()))?;
        let r = Self::check(self.send(&|| {
            self.http
                .post(self.url("/sync/replicas/estimate"))
                .header("content-type", "application/json")
                .body(body.clone())
        })?)?;
        let j: Json = Self::json(r)?;
        let mut est = ReplicaEstimate { bytes: j["bytes"].as_u64().unwrap_or(0), layers: Vec::new() };
        match &j["layers"] {
            Json::Array(a) => {
                for l in a {
                    let name = l["layer"].as_str().or_else(|| l["name"].as_str()).unwrap_or_default().to_owned();
                    est.layers.push((name, l["features"].as_u64().unwrap_or(0)));
                }
            }
            Json::Object(o) => {
                for (k, v) in o {
                    let n = v.as_u64().or_else(|| v["features"].as_u64()).unwrap_or(0);
                    est.layers.push((k.clone(), n));
                }
            }
            _ => {}
        }
        Ok(est)
    }

    /// Downloads the vector-tile package (MBTiles) of `set` (layers, `a,b`) for `area` (a GeoJSON
    /// polygon or `{"layer":…, "feature":…}`), zooms `minzoom..=maxzoom`, to `out`.
    pub fn download_basemap(
        &self,
        set: &str,
        area: &Json,
        minzoom: u8,
        maxzoom: u8,
        out: &Path,
    ) -> Result<BasemapPackage> {
        let body = json!({"set": set, "area": area, "minzoom": minzoom, "maxzoom": maxzoom}).to_string();
        let r = Self::check(self.send(&|| {
            self.http.post(self.url("/tiles/packages")).header("content-type", "application/json").body(body.clone())
        })?)?;
        let tiles = r.headers().get("x-tiles").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
        let bytes = r.bytes().map_err(|e| SyncError::Protocol(e.to_string()))?;
        let tmp = out.with_extension("mbtiles.part");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, out)?;
        Ok(BasemapPackage { tiles, bytes: bytes.len() as u64 })
    }

    /// Submits a citizen's report (a GeoJSON feature) to a citizen-report layer; returns its id.
    pub fn submit_report(&self, layer: &str, feature: &Json) -> Result<String> {
        let body = feature.to_string();
        let r = Self::check(self.send(&|| {
            self.http
                .post(self.url(&format!("/collections/{}/items", encode(layer))))
                .header("content-type", "application/geo+json")
                .body(body.clone())
        })?)?;
        let from_location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| l.rsplit('/').next())
            .map(str::to_owned);
        let j: Json = Self::json(r).unwrap_or(Json::Null);
        j["id"]
            .as_str()
            .map(str::to_owned)
            .or(from_location)
            .ok_or_else(|| SyncError::Protocol("no id for the new report".into()))
    }

    /// Every stored version of one feature with its changes (`…/items/{id}/history`).
    pub fn feature_history(&self, layer: &str, id: &str) -> Result<Json> {
        self.get_json(&format!("/collections/{}/items/{}/history", encode(layer), encode(id)))
    }

    /// The layers the caller may report into, with their forms.
    pub fn report_layers(&self) -> Result<Vec<ReportLayer>> {
        let j = self.get_json("/reports/layers")?;
        serde_json::from_value(j["layers"].clone()).map_err(|e| SyncError::Protocol(format!("/reports/layers: {e}")))
    }

    /// The caller's own reports with their handling status (`/reports/mine`, a GeoJSON
    /// FeatureCollection).
    pub fn my_reports(&self) -> Result<Vec<Json>> {
        let j = self.get_json("/reports/mine")?;
        Ok(j["features"].as_array().cloned().unwrap_or_default())
    }
}
