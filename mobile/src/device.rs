//! The device's state and every operation the views trigger: the thin layer between the views and
//! the shared crates. Blocking (file and network I/O); the views run it on a blocking thread.
//!
//! On disk, in the app's data folder: `device.json` (session, language, favourites, settings),
//! `replicas/NAME.gpkg` (the offline replicas — the sync guarantees are the replica's) and
//! `replicas/NAME.mbtiles` (its offline basemap), `reports.json` + `report-photos/` (citizens'
//! reports queued while offline). `device.json` and `reports.json` are replaced atomically (write
//! then rename), so killing the app never leaves half a file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Value as Json, json};
use shikong_geodesy::Measurement;
use shikong_model::{Coord, EntityId, Geometry, GeometryKind, Properties, Value};
use shikong_protocol as wire;
use shikong_replica::{EditMeta, Evidence, FeatureKey, NewFeature, Replica, ReplicaLayer, Resolved};
use shikong_sync_client::{Progress, ReplicaEstimate, Session, SyncClient, SyncReport};

use crate::Error;
use crate::i18n::Lang;
use crate::platform::{Camera, Fix, LocationSource, Network, Photo};

/// A saved place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Favourite {
    pub name: String,
    pub lon: f64,
    pub lat: f64,
}

/// What `device.json` holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub session: Option<Session>,
    pub lang: Lang,
    pub favourites: Vec<Favourite>,
    /// File stem of the replica the map shows.
    pub active: Option<String>,
    /// Draw capture time, position, heading and hash onto evidence photos.
    pub watermark: bool,
    pub auto_sync: bool,
    /// Device name sent at enrolment.
    pub device_name: String,
}

/// A replica on this device, as the list of offline areas shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSummary {
    /// File stem, unique on the device.
    pub id: String,
    pub name: String,
    pub path: PathBuf,
    pub area: Option<String>,
    /// `(layer, title, features)`.
    pub layers: Vec<(String, String, u64)>,
    pub pending: u64,
    pub unconfirmed_photos: usize,
    pub conflicts: usize,
    pub bytes: u64,
    pub basemap_bytes: Option<u64>,
}

/// The area of a new offline replica.
#[derive(Debug, Clone, PartialEq)]
pub enum AreaChoice {
    /// A division by code (`420111`), with its name for the label and its centre (used when
    /// the server holds no boundary polygon for it: see [`AreaChoice::fallback`]).
    Division { code: String, name: String, centre: Option<(f64, f64)> },
    /// A lon/lat rectangle (the map view or a drawn box).
    Rect { min_lon: f64, min_lat: f64, max_lon: f64, max_lat: f64 },
}

impl AreaChoice {
    /// The replica request's `area`.
    pub fn wire(&self) -> String {
        match self {
            AreaChoice::Division { code, .. } => format!("admin:{code}"),
            AreaChoice::Rect { min_lon, min_lat, max_lon, max_lat } => format!(
                "POLYGON(({min_lon} {min_lat},{max_lon} {min_lat},{max_lon} {max_lat},{min_lon} {max_lat},{min_lon} {min_lat}))"
            ),
        }
    }

    /// A division without a boundary on the server becomes a 10 km × 9 km box around its centre
    /// (what a day's inspection round covers); the label says so.
    pub fn fallback(&self) -> Option<AreaChoice> {
        match self {
            AreaChoice::Division { centre: Some((lon, lat)), .. } => Some(AreaChoice::Rect {
                min_lon: lon - 0.052,
                min_lat: lat - 0.04,
                max_lon: lon + 0.052,
                max_lat: lat + 0.04,
            }),
            _ => None,
        }
    }

    /// The tile package's `area`.
    fn package(&self) -> Json {
        match self {
            AreaChoice::Division { code, .. } => json!({"layer": "division", "feature": code}),
            AreaChoice::Rect { min_lon, min_lat, max_lon, max_lat } => json!({"type": "Polygon", "coordinates": [[
                [min_lon, min_lat], [max_lon, min_lat], [max_lon, max_lat], [min_lon, max_lat], [min_lon, min_lat]]]}),
        }
    }

    pub fn label(&self) -> String {
        match self {
            AreaChoice::Division { name, code, .. } => format!("{name} ({code})"),
            AreaChoice::Rect { min_lon, min_lat, max_lon, max_lat } => {
                format!("{min_lon:.4},{min_lat:.4} – {max_lon:.4},{max_lat:.4}")
            }
        }
    }
}

/// Steps of an offline-area download, for the progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownloadStep {
    Replica,
    Basemap,
    Done,
}

/// A form field's problem, for the message under the field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

/// A photo attached to a form before saving, with its evidence.
#[derive(Debug, Clone, PartialEq)]
pub struct EvidencePhoto {
    pub photo: Photo,
    pub evidence: Evidence,
    pub sha256: String,
}

/// A citizen's report as the device keeps it until the server has it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedReport {
    pub local_id: String,
    pub layer: String,
    pub category: String,
    pub description: String,
    pub address: String,
    pub lon: f64,
    pub lat: f64,
    pub photo: Option<String>,
    pub photo_mime: Option<String>,
    pub created: String,
    /// The server's id once submitted.
    pub server_id: Option<String>,
}

/// Basemap layers downloaded with every offline area (vector tiles of the store's base layers).
pub const BASEMAP_SET: &str = "road,poi";
pub const BASEMAP_ZOOMS: (u8, u8) = (12, 16);

/// The device: settings, folders and platform services.
#[derive(Debug, Clone)]
pub struct Device {
    dir: PathBuf,
    pub settings: Settings,
    pub location: Arc<dyn LocationSource>,
    pub camera: Arc<dyn Camera>,
    pub network: Arc<dyn Network>,
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// A file-name-safe stem from a label (keeps Chinese letters; replaces separators).
fn stem(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect::<String>()
        .trim_matches('_')
        .chars()
        .take(40)
        .collect();
    if s.is_empty() { "area".into() } else { s }
}

impl Device {
    /// Opens (creating) the app's data folder.
    pub fn open(
        dir: impl Into<PathBuf>,
        location: Arc<dyn LocationSource>,
        camera: Arc<dyn Camera>,
        network: Arc<dyn Network>,
    ) -> Result<Device, Error> {
        let dir = dir.into();
        std::fs::create_dir_all(dir.join("replicas"))?;
        let path = dir.join("device.json");
        let settings = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Settings {
                device_name: "shikong-mobile".into(),
                watermark: true,
                auto_sync: true,
                ..Settings::default()
            },
            Err(e) => return Err(e.into()),
        };
        Ok(Device { dir, settings, location, camera, network })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn save(&self) -> Result<(), Error> {
        let bytes = serde_json::to_vec_pretty(&self.settings).map_err(|e| Error::Corrupt(e.to_string()))?;
        write_atomic(&self.dir.join("device.json"), &bytes)
    }

    pub fn lang(&self) -> Lang {
        self.settings.lang
    }

    pub fn session(&self) -> Option<&Session> {
        self.settings.session.as_ref()
    }

    fn client(&self) -> Result<SyncClient, Error> {
        let s = self.session().ok_or(Error::NotSignedIn)?;
        Ok(SyncClient::new(&s.server, &s.token)?)
    }

    pub fn online(&self) -> bool {
        self.session().is_some_and(|s| self.network.online(&s.server))
    }

    // ---- onboarding -------------------------------------------------------------------------

    fn check_server(server: &str) -> Result<String, Error> {
        let s = server.trim().trim_end_matches('/');
        if !(s.starts_with("http://") || s.starts_with("https://")) || s.len() < 10 {
            return Err(Error::Input { field: "server".into(), message: format!("`{s}` is not an http(s) URL") });
        }
        Ok(s.to_owned())
    }

    pub fn login(&mut self, server: &str, username: &str, password: &str) -> Result<&Session, Error> {
        let server = Self::check_server(server)?;
        if username.trim().is_empty() {
            return Err(Error::Input { field: "username".into(), message: "required".into() });
        }
        let session = SyncClient::new(&server, "")?.login(username.trim(), password)?;
        self.settings.session = Some(session);
        self.save()?;
        self.settings.session.as_ref().ok_or(Error::NotSignedIn)
    }

    /// Enrols with the link an admin's QR code carries (`shikong://enrol?server=…&code=…`).
    pub fn enrol_link(&mut self, link: &str) -> Result<&Session, Error> {
        let l = wire::enrolment::EnrolmentLink::parse(link).map_err(|e| Error::Qr(e.to_string()))?;
        let server = Self::check_server(&l.server)?;
        let session = SyncClient::new(&server, "")?.enrol(&l.code, &self.settings.device_name, std::env::consts::OS)?;
        self.settings.session = Some(session);
        self.save()?;
        self.settings.session.as_ref().ok_or(Error::NotSignedIn)
    }

    /// Enrols from a photo of the admin's QR code.
    pub fn enrol_photo(&mut self, photo: &Photo) -> Result<&Session, Error> {
        let text = crate::qr::decode(&photo.bytes)?;
        self.enrol_link(&text)
    }

    pub fn register(&self, server: &str, username: &str, password: &str, contact: &str) -> Result<String, Error> {
        let server = Self::check_server(server)?;
        let contact = Some(contact).filter(|c| !c.trim().is_empty());
        Ok(SyncClient::new(&server, "")?.register(username.trim(), password, None, contact)?)
    }

    pub fn logout(&mut self) -> Result<(), Error> {
        self.settings.session = None;
        self.save()
    }

    // ---- offline areas ----------------------------------------------------------------------

    pub fn replica_path(&self, id: &str) -> PathBuf {
        self.dir.join("replicas").join(format!("{id}.gpkg"))
    }

    pub fn basemap_path(&self, id: &str) -> PathBuf {
        self.dir.join("replicas").join(format!("{id}.mbtiles"))
    }

    pub fn replicas(&self) -> Result<Vec<ReplicaSummary>, Error> {
        let mut out = Vec::new();
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.join("replicas"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "gpkg"))
            .collect();
        paths.sort();
        for p in paths {
            let id = p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            out.push(self.summary(&id)?);
        }
        Ok(out)
    }

    pub fn summary(&self, id: &str) -> Result<ReplicaSummary, Error> {
        let path = self.replica_path(id);
        let r = Replica::open(&path)?;
        let mut layers = Vec::new();
        for l in r.layers() {
            layers.push((l.name.clone(), l.display_name().to_owned(), r.count(&l.name)?));
        }
        let basemap = self.basemap_path(id);
        Ok(ReplicaSummary {
            id: id.to_owned(),
            name: r.info().name.clone().unwrap_or_else(|| id.to_owned()),
            area: r.info().area.clone(),
            layers,
            pending: r.pending()?,
            unconfirmed_photos: r.unconfirmed_attachments()?.len(),
            conflicts: r.conflicts()?.len(),
            bytes: std::fs::metadata(&path)?.len(),
            basemap_bytes: std::fs::metadata(&basemap).ok().map(|m| m.len()),
            path,
        })
    }

    /// Layers the user may take offline.
    pub fn server_layers(&self) -> Result<Vec<shikong_sync_client::LayerEntry>, Error> {
        Ok(self.client()?.layers()?)
    }

    /// Divisions (and other places) matching `q`, from the server's gazetteer.
    pub fn search_divisions(&self, q: &str) -> Result<Vec<shikong_sync_client::Place>, Error> {
        Ok(self.client()?.suggest(q, 8)?.into_iter().filter(|p| p.code.is_some()).collect())
    }

    /// The area the server can cut: the division itself, or its fallback box when the server
    /// has no boundary polygon for it.
    pub fn usable_area(&self, layers: &[String], area: &AreaChoice) -> Result<(AreaChoice, ReplicaEstimate), Error> {
        let client = self.client()?;
        match client.estimate_replica(layers, Some(&area.wire())) {
            Ok(e) => Ok((area.clone(), e)),
            Err(shikong_sync_client::SyncError::Server { status: 400, message, .. })
                if message.contains("no boundary") && area.fallback().is_some() =>
            {
                let rect = area.fallback().ok_or(Error::NoReplica(message))?;
                let e = client.estimate_replica(layers, Some(&rect.wire()))?;
                Ok((rect, e))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn estimate(&self, layers: &[String], area: &AreaChoice) -> Result<ReplicaEstimate, Error> {
        Ok(self.usable_area(layers, area)?.1)
    }

    /// Downloads a replica of `layers` in `area` and its basemap; returns its summary.
    pub fn download(
        &mut self,
        name: &str,
        layers: &[String],
        area: &AreaChoice,
        progress: &mut dyn FnMut(DownloadStep),
    ) -> Result<ReplicaSummary, Error> {
        if layers.is_empty() {
            return Err(Error::Input { field: "layers".into(), message: "pick at least one layer".into() });
        }
        let client = self.client()?;
        let mut id = stem(name);
        let mut n = 2;
        while self.replica_path(&id).exists() {
            id = format!("{}-{n}", stem(name));
            n += 1;
        }
        progress(DownloadStep::Replica);
        let (area, _) = self.usable_area(layers, area)?;
        let area = &area;
        client.create_replica(layers, Some(&area.wire()), Some(name), &self.replica_path(&id))?;
        progress(DownloadStep::Basemap);
        let (lo, hi) = BASEMAP_ZOOMS;
        if let Err(e) = client.download_basemap(BASEMAP_SET, &area.package(), lo, hi, &self.basemap_path(&id)) {
            // The data is what the inspector needs; a missing basemap is shown, not fatal.
            tracing::warn!("basemap of {id}: {e}");
        }
        if self.settings.active.is_none() {
            self.settings.active = Some(id.clone());
            self.save()?;
        }
        progress(DownloadStep::Done);
        self.summary(&id)
    }

    /// Deletes a replica; refuses while it holds unsent edits unless `force`.
    pub fn delete_replica(&mut self, id: &str, force: bool) -> Result<(), Error> {
        let s = self.summary(id)?;
        if !force && (s.pending > 0 || s.unconfirmed_photos > 0) {
            return Err(Error::Unsent { pending: s.pending, photos: s.unconfirmed_photos });
        }
        std::fs::remove_file(self.replica_path(id))?;
        let _ = std::fs::remove_file(self.basemap_path(id));
        if self.settings.active.as_deref() == Some(id) {
            self.settings.active = None;
            self.save()?;
        }
        Ok(())
    }

    pub fn set_active(&mut self, id: &str) -> Result<(), Error> {
        if !self.replica_path(id).exists() {
            return Err(Error::NoReplica(id.to_owned()));
        }
        self.settings.active = Some(id.to_owned());
        self.save()
    }

    pub fn open_replica(&self, id: &str) -> Result<Replica, Error> {
        Ok(Replica::open(self.replica_path(id))?)
    }

    pub fn active_replica(&self) -> Result<Replica, Error> {
        let id = self.settings.active.as_deref().ok_or_else(|| Error::NoReplica("(none)".into()))?;
        self.open_replica(id)
    }

    /// One sync of a replica (push, pull, gazetteer), if the server can be reached.
    pub fn sync(&self, id: &str, progress: &mut dyn FnMut(Progress)) -> Result<SyncReport, Error> {
        if !self.online() {
            return Err(Error::Offline);
        }
        let mut r = self.open_replica(id)?;
        Ok(self.client()?.sync(&mut r, progress)?)
    }

    // ---- collect and edit -------------------------------------------------------------------

    fn meta(&self) -> EditMeta {
        let s = self.session();
        EditMeta {
            user: s.map(|s| s.username.clone()).unwrap_or_else(|| "device".into()),
            device: s.and_then(|s| s.device.clone()).or_else(|| Some(self.settings.device_name.clone())),
            time: Timestamp::now(),
        }
    }

    /// Takes a photo with the current position and heading as its evidence, watermarked if set.
    pub fn take_photo(&self) -> Result<EvidencePhoto, Error> {
        let photo = self.camera.capture()?;
        self.evidence_photo(photo, self.location.fix())
    }

    pub fn evidence_photo(&self, mut photo: Photo, fix: Option<Fix>) -> Result<EvidencePhoto, Error> {
        let evidence = Evidence {
            capture_time: Timestamp::now(),
            lon: fix.map(|f| f.lon),
            lat: fix.map(|f| f.lat),
            heading: fix.and_then(|f| f.heading),
            device: Some(self.settings.device_name.clone()),
        };
        if self.settings.watermark {
            photo = crate::watermark::stamp(&photo, &evidence)?;
        }
        let sha256 = shikong_replica::sha256_hex(&photo.bytes);
        Ok(EvidencePhoto { photo, evidence, sha256 })
    }

    /// Turns form text into typed properties with per-field messages (all problems at once).
    pub fn form_properties(
        layer: &ReplicaLayer,
        input: &BTreeMap<String, String>,
    ) -> Result<Properties, Vec<FieldProblem>> {
        let mut props = Properties::new();
        let mut problems = Vec::new();
        for f in layer.schema.fields.iter().filter(|f| !f.retired) {
            let text = input.get(&f.name).map(String::as_str).unwrap_or_default();
            if text.trim().is_empty() {
                if f.required && f.ty != shikong_model::FieldType::Attachments {
                    problems.push(FieldProblem { field: f.name.clone(), message: "必填 / required".into() });
                }
                continue;
            }
            match f.coerce_text(text) {
                Ok(v) => {
                    props.insert(f.name.clone(), v);
                }
                Err(e) => problems.push(FieldProblem { field: f.name.clone(), message: e.to_string() }),
            }
        }
        if problems.is_empty() {
            // The schema's own rules (ranges, code lists, lengths), as the server will check them.
            if let Err(e) = layer.schema.validate(&props) {
                problems.push(FieldProblem { field: e.field.clone(), message: e.to_string() });
            }
        }
        if problems.is_empty() { Ok(props) } else { Err(problems) }
    }

    /// Saves a new feature from the form: geometry, form values, photos (in the layer's first
    /// attachments field). Nothing is written when anything is invalid.
    pub fn collect(
        &self,
        replica: &mut Replica,
        layer: &str,
        geometry: Geometry,
        input: &BTreeMap<String, String>,
        photos: &[EvidencePhoto],
    ) -> Result<EntityId, Error> {
        let l = replica.layer(layer)?.clone();
        let mut props = Self::form_properties(&l, input).map_err(Error::Form)?;
        let meta = self.meta();
        replica
            .batch(|r| {
                let mut shas = Vec::new();
                for p in photos {
                    shas.push(r.add_attachment(&p.photo.bytes, &p.photo.mime, &p.evidence)?);
                }
                if let Some(f) =
                    l.schema.fields.iter().find(|f| f.ty == shikong_model::FieldType::Attachments && !f.retired)
                    && !shas.is_empty()
                {
                    props.insert(f.name.clone(), Value::Attachments(shas));
                }
                r.create_feature(
                    layer,
                    NewFeature { geometry: Some(geometry), properties: props, ..NewFeature::default() },
                    &meta,
                )
            })
            .map_err(Error::from)
    }

    pub fn set_fields(
        &self,
        replica: &mut Replica,
        layer: &str,
        key: &FeatureKey,
        input: &BTreeMap<String, String>,
    ) -> Result<bool, Error> {
        let l = replica.layer(layer)?.clone();
        let props = Self::form_properties(&l, input).map_err(Error::Form)?;
        let meta = self.meta();
        Ok(replica.set_fields(layer, key, props, &meta)?)
    }

    /// A feature's versions, newest first, as lines "v3 · 2025-06-01 10:00 · 张三 · 状态: 1 → 2"
    /// (from the server: the store keeps the history; the device only its own pending edits).
    pub fn history(&self, layer: &str, id: &str) -> Result<Vec<String>, Error> {
        if !self.online() {
            return Err(Error::Offline);
        }
        let j = self.client()?.feature_history(layer, id)?;
        let text = |v: &Json| match v {
            Json::Null => "∅".to_owned(),
            Json::String(s) => s.clone(),
            o => o.to_string(),
        };
        let mut out: Vec<String> = j["versions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|v| {
                let changes: Vec<String> = v["changes"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                    .iter()
                    .filter(|c| c["attribute"] != "geometry")
                    .map(|c| format!("{}: {} → {}", text(&c["attribute"]), text(&c["old"]), text(&c["new"])))
                    .collect();
                format!(
                    "v{} · {} · {} · {}{}",
                    v["version"],
                    text(&v["op"]),
                    text(&v["tx"]["time"]),
                    text(&v["tx"]["author"]),
                    if changes.is_empty() { String::new() } else { format!(" · {}", changes.join("; ")) }
                )
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    pub fn delete_feature(&self, replica: &mut Replica, layer: &str, key: &FeatureKey) -> Result<bool, Error> {
        Ok(replica.delete(layer, key, &self.meta())?)
    }

    /// Resolves a conflict: `keep` the current winner, or take another side's `value`.
    pub fn resolve(&self, replica: &mut Replica, c: &wire::Conflict, take: Option<&Json>) -> Result<bool, Error> {
        let key = FeatureKey::Id(EntityId::from_uuid(c.entity));
        let chosen = take.unwrap_or(&c.winner.value);
        let value = if c.field == "deleted" {
            Resolved::Deleted(chosen.as_bool().unwrap_or(true))
        } else if c.field == "geometry" {
            let g = if chosen.is_null() {
                None
            } else {
                Some(shikong_model::geojson::from_json(chosen).map_err(|e| Error::Corrupt(e.to_string()))?)
            };
            Resolved::Geometry(g)
        } else if c.field == "code" {
            Resolved::Value(Value::Text(chosen.as_str().unwrap_or_default().to_owned()))
        } else {
            let l = replica.layer(&c.layer)?;
            let f = l.schema.field(&c.field).ok_or_else(|| Error::Corrupt(format!("no field {}", c.field)))?;
            Resolved::Value(f.coerce_json(chosen).map_err(|e| Error::Corrupt(e.to_string()))?)
        };
        let attribute = if c.field == "deleted" { "deleted" } else { c.field.as_str() };
        Ok(replica.resolve(&c.layer, &key, attribute, value, &self.meta())?)
    }

    // ---- map tools --------------------------------------------------------------------------

    /// Geodesic length (open) or area and perimeter (closed) of tapped points, on CGCS2000.
    pub fn measure(points: &[(f64, f64)], closed: bool) -> Option<Measurement> {
        let coords: Vec<Coord> = points.iter().map(|&(x, y)| Coord::xy(x, y)).collect();
        let g = if closed {
            if coords.len() < 3 {
                return None;
            }
            let mut ring = coords;
            ring.push(ring[0]);
            Geometry::Polygon(vec![ring])
        } else {
            if coords.len() < 2 {
                return None;
            }
            Geometry::LineString(coords)
        };
        shikong_geodesy::measure_geodesic(&g).ok()
    }

    /// A geometry of `kind` from tapped or walked points.
    pub fn sketch_geometry(kind: GeometryKind, points: &[(f64, f64)]) -> Result<Geometry, Error> {
        let coords: Vec<Coord> = points.iter().map(|&(x, y)| Coord::xy(x, y)).collect();
        let need = |n: usize, what: &str| {
            if coords.len() < n {
                Err(Error::Input { field: "geometry".into(), message: format!("{what} needs at least {n} points") })
            } else {
                Ok(())
            }
        };
        let g = match kind {
            GeometryKind::Point | GeometryKind::MultiPoint | GeometryKind::Geometry => {
                need(1, "a point")?;
                Geometry::Point(coords[coords.len() - 1])
            }
            GeometryKind::LineString | GeometryKind::MultiLineString => {
                need(2, "a line")?;
                Geometry::LineString(coords)
            }
            GeometryKind::Polygon | GeometryKind::MultiPolygon => {
                need(3, "a polygon")?;
                let mut ring = coords;
                ring.push(ring[0]);
                Geometry::Polygon(vec![ring])
            }
        };
        g.validate().map_err(|e| Error::Input { field: "geometry".into(), message: e.to_string() })?;
        Ok(g)
    }

    /// Offline place search in the active replica's gazetteer.
    pub fn search_offline(&self, q: &str) -> Result<Vec<shikong_geocoder::Suggestion>, Error> {
        let r = self.active_replica()?;
        let g = r.gazetteer()?.ok_or(Error::NoGazetteer)?;
        let geo = shikong_geocoder::Geocoder::from_snapshot(&g.bytes).map_err(|e| Error::Corrupt(e.to_string()))?;
        Ok(geo.suggest(q.trim(), 8))
    }

    pub fn add_favourite(&mut self, name: &str, lon: f64, lat: f64) -> Result<(), Error> {
        self.settings.favourites.retain(|f| f.name != name);
        self.settings.favourites.push(Favourite { name: name.to_owned(), lon, lat });
        self.save()
    }

    // ---- citizen reports --------------------------------------------------------------------

    fn reports_path(&self) -> PathBuf {
        self.dir.join("reports.json")
    }

    pub fn queued_reports(&self) -> Result<Vec<QueuedReport>, Error> {
        match std::fs::read(self.reports_path()) {
            Ok(b) => serde_json::from_slice(&b).map_err(|e| Error::Corrupt(format!("reports.json: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(e.into()),
        }
    }

    fn save_reports(&self, list: &[QueuedReport]) -> Result<(), Error> {
        let b = serde_json::to_vec_pretty(list).map_err(|e| Error::Corrupt(e.to_string()))?;
        write_atomic(&self.reports_path(), &b)
    }

    /// Queues a report (kept on the device until the server has it).
    #[allow(clippy::too_many_arguments)]
    pub fn queue_report(
        &self,
        layer: &str,
        category: &str,
        description: &str,
        address: &str,
        at: (f64, f64),
        photo: Option<&EvidencePhoto>,
    ) -> Result<QueuedReport, Error> {
        if category.trim().is_empty() {
            return Err(Error::Input {
                field: "category".into(), message: "请选择问题类别 / pick a category".into()
            });
        }
        if description.chars().count() > 500 {
            return Err(Error::Input {
                field: "description".into(),
                message: "最多 500 字 / at most 500 characters".into(),
            });
        }
        let mut list = self.queued_reports()?;
        let photo_sha = match photo {
            Some(p) => {
                let dir = self.dir.join("report-photos");
                std::fs::create_dir_all(&dir)?;
                write_atomic(&dir.join(&p.sha256), &p.photo.bytes)?;
                Some(p.sha256.clone())
            }
            None => None,
        };
        let r = QueuedReport {
            local_id: uuid::Uuid::new_v4().to_string(),
            layer: layer.to_owned(),
            category: category.to_owned(),
            description: description.to_owned(),
            address: address.to_owned(),
            lon: at.0,
            lat: at.1,
            photo: photo_sha,
            photo_mime: photo.map(|p| p.photo.mime.clone()),
            created: shikong_model::time::beijing(Timestamp::now()),
            server_id: None,
        };
        list.push(r.clone());
        self.save_reports(&list)?;
        Ok(r)
    }

    /// Sends queued reports (photo first, then the feature); returns how many were sent. Each is
    /// marked sent as soon as the server answers, so a crash never sends one twice... except in
    /// the window between the answer and the write, where the office sees a duplicate rather than
    /// the citizen losing a report.
    pub fn send_reports(&self) -> Result<usize, Error> {
        if !self.online() {
            return Err(Error::Offline);
        }
        let client = self.client()?;
        let user = self.session().map(|s| s.username.clone()).unwrap_or_default();
        let mut list = self.queued_reports()?;
        let mut sent = 0;
        for i in 0..list.len() {
            if list[i].server_id.is_some() {
                continue;
            }
            let r = list[i].clone();
            let mut props = json!({"类别": r.category, "描述": r.description, "地址": r.address, "上报人": user});
            if let Some(sha) = &r.photo {
                let bytes = std::fs::read(self.dir.join("report-photos").join(sha))?;
                let ev = json!({"capture_time": r.created, "lon": r.lon, "lat": r.lat});
                client.upload(sha, &bytes, r.photo_mime.as_deref().unwrap_or("image/jpeg"), &ev)?;
                props["照片"] = json!([sha]);
            }
            let feature = json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]}, "properties": props});
            let id = client.submit_report(&r.layer, &feature)?;
            list[i].server_id = Some(id);
            self.save_reports(&list)?;
            sent += 1;
        }
        Ok(sent)
    }

    /// The layers citizens report into, with their forms (from the server; citizens cannot
    /// replicate them).
    pub fn report_layers(&self) -> Result<Vec<shikong_sync_client::ReportLayer>, Error> {
        Ok(self.client()?.report_layers()?)
    }

    /// The citizen's reports with their handling status, from the server.
    pub fn my_reports(&self) -> Result<Vec<Json>, Error> {
        Ok(self.client()?.my_reports()?)
    }
}
