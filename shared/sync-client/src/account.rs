//! The rest of what a device asks the server besides sync: sign-in (password, enrolment code,
//! citizen registration), offline-area preparation (layer list, division search, replica size
//! estimate, basemap package download), feature history and citizens' reports. Kept here so the
//! mobile and desktop apps stay views over one client: the apps never build URLs or parse server
//! JSON themselves.
//!
//! Every answer is parsed into its [`shikong_protocol::api`] type (the types the server writes
//! it from); an answer that does not parse is a [`SyncError::Protocol`] naming the route, never
//! a default that looks like an empty list or an unnamed user.

use std::path::Path;

use reqwest::blocking::{RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use shikong_protocol::url::encode_component;
use shikong_protocol::{self as wire, api};

pub use shikong_protocol::ReplicaEstimate;
pub use shikong_protocol::api::{FeatureHistory, NewFeature, PackageArea, ReportFeature, ReportLayer};

use crate::{Result, SyncClient, SyncError};

const LOGIN: &str = "/auth/login";
const ENROL: &str = "/auth/enrol";
const REGISTER: &str = "/auth/register";
const ME: &str = "/auth/me";
const COLLECTIONS: &str = "/collections";
const SUGGEST: &str = "/geocode/suggest";
const ESTIMATE: &str = "/sync/replicas/estimate";
const PACKAGES: &str = "/tiles/packages";
const REPORT_LAYERS: &str = "/reports/layers";
const MY_REPORTS: &str = "/reports/mine";

/// A signed-in user on this device (kept in the app's settings).
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
#[derive(Debug, Clone, PartialEq)]
pub struct Place {
    pub name: String,
    pub standard_address: String,
    /// Division code (for roads and POIs, the code of their division).
    pub code: Option<String>,
    pub level: api::MatchLevel,
    /// CGCS2000 lon/lat of the place, when the gazetteer has a point for it.
    pub lon: Option<f64>,
    pub lat: Option<f64>,
}

impl From<api::Suggestion> for Place {
    fn from(s: api::Suggestion) -> Self {
        Place {
            name: s.name,
            standard_address: s.standard_address,
            code: s.code,
            level: s.level,
            lon: s.point.map(|p| p.lon),
            lat: s.point.map(|p| p.lat),
        }
    }
}

/// A layer as the server lists it (`/collections`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerEntry {
    pub name: String,
    pub title: String,
    pub citizen_reports: bool,
}

impl From<api::Collection> for LayerEntry {
    fn from(c: api::Collection) -> Self {
        LayerEntry { name: c.id, title: c.title, citizen_reports: c.citizen_reports }
    }
}

/// A basemap package written to disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasemapPackage {
    pub tiles: u64,
    pub bytes: u64,
}

/// Reads a successful answer of `route` as `T`.
fn parse<T: DeserializeOwned>(route: &str, r: Response) -> Result<T> {
    let bytes = r.bytes().map_err(|e| SyncError::Protocol(format!("{route}: {e}")))?;
    decode(route, &bytes)
}

fn decode<T: DeserializeOwned>(route: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
}

fn to_body<B: Serialize>(route: &str, body: &B) -> Result<Vec<u8>> {
    serde_json::to_vec(body).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
}

impl SyncClient {
    /// Sends without a token and without retries (sign-in: a wrong password is not retried).
    fn anonymous(&self, b: RequestBuilder) -> Result<Response> {
        b.send().map_err(|e| self.transport_error(&e))
    }

    fn post_anonymous<B: Serialize, T: DeserializeOwned>(&self, route: &str, body: &B) -> Result<T> {
        let body = to_body(route, body)?;
        let r = self.anonymous(
            self.http.post(self.url(route)).header(reqwest::header::CONTENT_TYPE, "application/json").body(body),
        )?;
        parse(route, Self::check(r)?)
    }

    /// `GET route` (with `query` appended) as the signed-in user, parsed as `T`.
    fn get_as<T: DeserializeOwned>(&self, route: &str, query: &str) -> Result<T> {
        let r = Self::check(self.send(&|| self.http.get(self.url(&format!("{route}{query}"))))?)?;
        parse(route, r)
    }

    /// `POST route` with a JSON body as the signed-in user.
    fn post_as(&self, route: &str, content_type: &str, body: Vec<u8>) -> Result<Response> {
        Self::check(self.send(&|| {
            self.http.post(self.url(route)).header(reqwest::header::CONTENT_TYPE, content_type).body(body.clone())
        })?)
    }

    fn session(&self, token: String, expires_at: String, user: api::TokenUser, device: Option<String>) -> Session {
        Session { server: self.base.clone(), token, username: user.username, role: user.role, expires_at, device }
    }

    /// Signs in with a password (a client for `base` with no token yet is enough).
    pub fn login(&self, username: &str, password: &str) -> Result<Session> {
        let req = api::LoginRequest { username: username.to_owned(), password: password.to_owned(), device: None };
        let a: api::LoginResponse = self.post_anonymous(LOGIN, &req)?;
        Ok(self.session(a.token, a.expires_at, a.user, None))
    }

    /// Redeems a one-time enrolment code (from the admin's QR code) for a device token.
    pub fn enrol(&self, code: &str, device_name: &str, platform: &str) -> Result<Session> {
        let req = api::EnrolRequest {
            code: code.to_owned(),
            device: api::DeviceInfo { name: device_name.to_owned(), platform: platform.to_owned(), hardware_id: None },
        };
        let a: api::EnrolResponse = self.post_anonymous(ENROL, &req)?;
        Ok(self.session(a.token, a.expires_at, a.user, Some(a.device)))
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
        let req = api::RegisterRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            display_name: display_name.map(str::to_owned),
            contact: contact.map(str::to_owned),
        };
        let a: api::RegisterResponse = self.post_anonymous(REGISTER, &req)?;
        Ok(a.message)
    }

    /// Who the token belongs to (`/auth/me`).
    pub fn me(&self) -> Result<api::MeResponse> {
        self.get_as(ME, "")
    }

    /// Whether the token is still valid: `false` when the server refuses it (401), an error when
    /// the server cannot be asked or answers something else.
    pub fn check_session(&self) -> Result<bool> {
        match self.me() {
            Ok(_) => Ok(true),
            Err(SyncError::Server { status: 401, .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The layers this user may read (the gazetteer's divisions are not a layer to take offline).
    pub fn layers(&self) -> Result<Vec<LayerEntry>> {
        let list: api::Collections = self.get_as(COLLECTIONS, "?f=json")?;
        // The catalog (`itemType` record, OGC API – Records) is listed too but is not a layer.
        Ok(list
            .collections
            .into_iter()
            .filter(|c| c.id != "gazetteer" && c.item_type == "feature")
            .map(LayerEntry::from)
            .collect())
    }

    /// Places whose name or pinyin starts with `q` (the server's gazetteer).
    pub fn suggest(&self, q: &str, limit: usize) -> Result<Vec<Place>> {
        let a: api::Suggestions = self.get_as(SUGGEST, &format!("?q={}&limit={limit}", encode_component(q)))?;
        Ok(a.suggestions.into_iter().map(Place::from).collect())
    }

    /// What the replica `layers` × `area` would hold (features per layer) and its size.
    pub fn estimate_replica(&self, layers: &[String], area: Option<&str>) -> Result<ReplicaEstimate> {
        let req = wire::ReplicaRequest {
            protocol: wire::PROTOCOL_VERSION,
            layers: layers.to_vec(),
            area: area.map(str::to_owned),
            name: None,
        };
        let e: ReplicaEstimate =
            parse(ESTIMATE, self.post_as(ESTIMATE, "application/json", to_body(ESTIMATE, &req)?)?)?;
        if e.protocol != wire::PROTOCOL_VERSION {
            return Err(SyncError::Protocol(format!("{ESTIMATE}: the server speaks protocol {}", e.protocol)));
        }
        Ok(e)
    }

    /// Downloads the vector-tile package (MBTiles) of `set` (layers, `a,b`) for `area`, zooms
    /// `minzoom..=maxzoom`, to `out` (written under a temporary name first).
    pub fn download_basemap(
        &self,
        set: &str,
        area: &PackageArea,
        minzoom: u8,
        maxzoom: u8,
        out: &Path,
    ) -> Result<BasemapPackage> {
        let req =
            api::PackageRequest { set: set.to_owned(), area: area.clone(), minzoom, maxzoom, as_of: None, since: None };
        let r = self.post_as(PACKAGES, "application/json", to_body(PACKAGES, &req)?)?;
        let tiles = r
            .headers()
            .get("x-tiles")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .ok_or_else(|| SyncError::Protocol(format!("{PACKAGES}: no tile count (X-Tiles) in the answer")))?;
        let bytes = r.bytes().map_err(|e| SyncError::Protocol(format!("{PACKAGES}: {e}")))?;
        let tmp = out.with_extension("mbtiles.part");
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, out)?;
        Ok(BasemapPackage { tiles, bytes: bytes.len() as u64 })
    }

    /// Submits a citizen's report (a GeoJSON feature) to a citizen-report layer; returns the id
    /// the server gave it.
    pub fn submit_report(&self, layer: &str, feature: &NewFeature) -> Result<String> {
        let route = format!("/collections/{}/items", encode_component(layer));
        let r = self.post_as(&route, "application/geo+json", to_body(&route, feature)?)?;
        let created: api::Feature = parse(&route, r)?;
        Ok(created.id)
    }

    /// Every stored version of one feature with its changes (`…/items/{id}/history`).
    pub fn feature_history(&self, layer: &str, id: &str) -> Result<FeatureHistory> {
        let route = format!("/collections/{}/items/{}/history", encode_component(layer), encode_component(id));
        self.get_as(&route, "")
    }

    /// The layers the caller may report into, with their forms.
    pub fn report_layers(&self) -> Result<Vec<ReportLayer>> {
        let a: api::ReportLayers = self.get_as(REPORT_LAYERS, "")?;
        Ok(a.layers)
    }

    /// The caller's own reports with their handling status, newest first (`/reports/mine`).
    pub fn my_reports(&self) -> Result<Vec<ReportFeature>> {
        let a: api::MyReports = self.get_as(MY_REPORTS, "")?;
        Ok(a.features)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_answers_are_protocol_errors_naming_the_route() {
        let e = decode::<api::LoginResponse>(
            LOGIN,
            br#"{"expires_at":"t","user":{"username":"zhang","role":"inspector"}}"#,
        )
        .unwrap_err();
        assert!(matches!(&e, SyncError::Protocol(m) if m.starts_with("/auth/login: missing field `token`")), "{e}");
        let e =
            decode::<api::Collections>(COLLECTIONS, br#"{"links":[],"collections":[{"id":"manhole"}]}"#).unwrap_err();
        assert!(e.to_string().contains("/collections: missing field `title`"), "{e}");
        let e = decode::<api::MyReports>(
            MY_REPORTS,
            br#"{"type":"Feature","numberReturned":0,"timeStamp":"t","features":[]}"#,
        )
        .unwrap_err();
        assert!(e.to_string().contains("/reports/mine: unknown variant `Feature`"), "{e}");
        assert!(decode::<api::Suggestions>(SUGGEST, b"<html>502</html>").is_err());
    }

    #[test]
    fn places_and_layers_come_from_the_wire_types() {
        let s: api::Suggestions = decode(
            SUGGEST,
            r#"{"suggestions":[{"name":"洪山区","standard_address":"湖北省武汉市洪山区","level":"county","code":"420111",
                "point":{"lon":114.34,"lat":30.5,"source":{"centre":"county"}}},
              {"name":"珞喻路","standard_address":"湖北省武汉市洪山区珞喻路","level":"road","code":null,"point":null}]}"#
                .as_bytes(),
        )
        .unwrap();
        let places: Vec<Place> = s.suggestions.into_iter().map(Place::from).collect();
        assert_eq!(places[0].code.as_deref(), Some("420111"));
        assert_eq!(
            (places[0].lon, places[0].lat, places[0].level),
            (Some(114.34), Some(30.5), api::MatchLevel::County)
        );
        assert_eq!((places[1].lon, places[1].code.as_deref()), (None, None));
        let c: api::Collection = serde_json::from_value(serde_json::json!({
            "id": "citizen_report", "title": "群众上报", "description": "", "itemType": "feature",
            "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]], "crs": "CRS84"},
                       "temporal": {"interval": [[null, null]], "trs": "Gregorian"}},
            "crs": [], "storageCrs": "EPSG:4490", "geometryType": "Point",
            "shikong:public": false, "shikong:citizenReports": true, "links": []
        }))
        .unwrap();
        assert_eq!(
            LayerEntry::from(c),
            LayerEntry { name: "citizen_report".into(), title: "群众上报".into(), citizen_reports: true }
        );
    }
}
