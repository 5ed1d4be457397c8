//! Editing an offline area's features from the desktop (issue 16, "edit as office staff through
//! the desktop's own replica"): the form of a layer as its schema defines it (types, required,
//! ranges, code lists), a feature's current values for that form, its geometry as GeoJSON, saving
//! a new or changed feature with attachments picked as files (stored as blobs in the replica, as
//! the mobile app stores photos), and snapping a placed or dragged vertex to the replica's
//! vertices and edges within a number of screen pixels.
//!
//! Everything writes through the replica, so it works offline and goes to the server at the next
//! sync. The snapping maths is pure ([`snap`]); the map passes its scale as degrees of longitude
//! per pixel at the pointer, and distances are measured in pixels of the (Web Mercator) screen.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value as Json, json};
use shikong_model::{Bbox, Coord, EntityId, FieldType, Geometry, Value, geojson};
use shikong_replica::{Evidence, FeatureKey, LocalStatus, MAX_ATTACHMENT_BYTES, NewFeature, Replica, ReplicaLayer};

use crate::{AppError, Device};

/// Most features one layer's map source carries (beyond that the list says it is cut).
pub const MAX_MAP_FEATURES: usize = 50_000;

/// A form field as the schema defines it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormField {
    pub name: String,
    pub title: String,
    /// `text`, `integer`, `real`, `boolean`, `date`, `datetime`, `code`, `attachments`…
    #[serde(rename = "type")]
    pub ty: String,
    pub required: bool,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub max_length: Option<u32>,
    /// `(code, label)` of a code list.
    pub codes: Vec<(String, String)>,
}

/// A layer's form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerForm {
    pub layer: String,
    pub title: String,
    /// GeoJSON type name of the layer's geometry (`Point`, `LineString`, `Polygon`, `Geometry`…).
    pub geometry: String,
    pub fields: Vec<FormField>,
}

/// An attachment of a feature, as the form lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachmentView {
    pub sha256: String,
    pub mime: String,
    pub size: u64,
    /// Whether the server has confirmed it holds the bytes.
    pub confirmed: bool,
}

/// A feature as the edit form starts from it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureForm {
    pub id: String,
    pub code: String,
    pub geometry: Option<Json>,
    /// Field values as form text (attachments and empty values left out).
    pub values: BTreeMap<String, String>,
    pub attachments: Vec<AttachmentView>,
    /// `synced`, `pending` or `rejected: reason`.
    pub status: String,
}

/// What saving the form did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Saved {
    pub id: String,
    pub code: String,
    /// Whether anything changed (an unchanged form writes nothing).
    pub changed: bool,
    /// Edits of the area waiting for sync.
    pub pending: u64,
}

/// A snapped position: where, and what it snapped to.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapped {
    pub lon: f64,
    pub lat: f64,
    /// `vertex` or `edge`.
    pub kind: &'static str,
    /// The feature snapped to (its code) and its layer.
    pub layer: String,
    pub feature: String,
    /// Distance from the pointer in screen pixels.
    pub pixels: f64,
}

/// The map's scale at the pointer: degrees of longitude per screen pixel, and the latitude (a
/// degree of latitude spans `1 / cos(lat)` times the pixels of a degree of longitude on a Web
/// Mercator map, near that latitude).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub deg_per_px: f64,
    pub lat: f64,
}

impl Scale {
    /// `(Δx, Δy)` in pixels between two lon/lat positions near the pointer.
    fn pixels(self, a: (f64, f64), b: (f64, f64)) -> (f64, f64) {
        let ky = self.deg_per_px * self.lat.to_radians().cos().max(1e-6);
        ((b.0 - a.0) / self.deg_per_px, (b.1 - a.1) / ky)
    }

    /// A lon/lat box of `px` pixels each way around `p`.
    pub fn around(self, p: (f64, f64), px: f64) -> Bbox {
        let dx = px * self.deg_per_px;
        let dy = dx * self.lat.to_radians().cos().max(1e-6);
        Bbox { min_x: p.0 - dx, min_y: p.1 - dy, max_x: p.0 + dx, max_y: p.1 + dy }
    }
}

/// Snaps `target` to the nearest vertex of `candidates` within `tolerance_px` pixels, else to the
/// nearest point on one of their edges within it; `None` when nothing is that close. A vertex
/// wins over an edge even when the edge is nearer (corners are what people aim for).
/// `candidates`: `(layer, feature label, geometry)`.
pub fn snap(
    target: (f64, f64),
    scale: Scale,
    tolerance_px: f64,
    candidates: &[(String, String, Geometry)],
) -> Option<Snapped> {
    let dist = |p: (f64, f64)| {
        let (dx, dy) = scale.pixels(target, p);
        dx.hypot(dy)
    };
    let mut vertex: Option<(f64, (f64, f64), usize)> = None;
    let mut edge: Option<(f64, (f64, f64), usize)> = None;
    for (i, (_, _, g)) in candidates.iter().enumerate() {
        g.for_each_coord(|c| {
            let d = dist((c.x, c.y));
            if d <= tolerance_px && vertex.is_none_or(|v| d < v.0) {
                vertex = Some((d, (c.x, c.y), i));
            }
        });
        for (a, b) in segments(g) {
            let p = nearest_on_segment(target, a, b, scale);
            let d = dist(p);
            if d <= tolerance_px && edge.is_none_or(|e| d < e.0) {
                edge = Some((d, p, i));
            }
        }
    }
    let (kind, (d, p, i)) = match (vertex, edge) {
        (Some(v), _) => ("vertex", v),
        (None, Some(e)) => ("edge", e),
        (None, None) => return None,
    };
    let (layer, feature, _) = &candidates[i];
    Some(Snapped { lon: p.0, lat: p.1, kind, layer: layer.clone(), feature: feature.clone(), pixels: d })
}

/// The straight segments of a geometry's lines and rings.
fn segments(g: &Geometry) -> Vec<((f64, f64), (f64, f64))> {
    let mut out = Vec::new();
    let mut line = |l: &[Coord]| {
        for w in l.windows(2) {
            out.push(((w[0].x, w[0].y), (w[1].x, w[1].y)));
        }
    };
    match g {
        Geometry::Point(_) | Geometry::MultiPoint(_) => {}
        Geometry::LineString(l) => line(l),
        Geometry::Polygon(rings) | Geometry::MultiLineString(rings) => rings.iter().for_each(|r| line(r)),
        Geometry::MultiPolygon(polys) => polys.iter().flatten().for_each(|r| line(r)),
    }
    out
}

/// The point of segment `a`–`b` nearest to `p`, measured in screen pixels.
fn nearest_on_segment(p: (f64, f64), a: (f64, f64), b: (f64, f64), scale: Scale) -> (f64, f64) {
    let (bx, by) = scale.pixels(a, b);
    let (px, py) = scale.pixels(a, p);
    let len2 = bx * bx + by * by;
    let t = if len2 == 0.0 { 0.0 } else { ((px * bx + py * by) / len2).clamp(0.0, 1.0) };
    (a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1))
}

/// The MIME type of a picked file, by its extension.
pub fn mime_of(path: &Path) -> &'static str {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("pdf") => "application/pdf",
        Some("txt") => "text/plain",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => "application/octet-stream",
    }
}

fn layer_form(l: &ReplicaLayer) -> LayerForm {
    let fields = l
        .schema
        .fields
        .iter()
        .filter(|f| !f.retired)
        .map(|f| FormField {
            name: f.name.clone(),
            title: f.title.clone().unwrap_or_else(|| f.name.clone()),
            ty: f.ty.name().to_owned(),
            required: f.required,
            min: f.min,
            max: f.max,
            max_length: f.max_length,
            codes: f.codes.iter().map(|c| (c.code.clone(), c.label.clone())).collect(),
        })
        .collect();
    LayerForm {
        layer: l.name.clone(),
        title: l.display_name().to_owned(),
        geometry: l.geometry_kind.geojson_name().to_owned(),
        fields,
    }
}

fn status_text(s: &LocalStatus) -> String {
    match s {
        LocalStatus::Synced => "synced".into(),
        LocalStatus::Pending => "pending".into(),
        LocalStatus::Rejected { reason } => format!("rejected: {reason}"),
    }
}

/// A geometry the map sent (GeoJSON), checked.
pub fn geometry_from_json(v: &Json) -> Result<Geometry, AppError> {
    let g = geojson::from_json(v).map_err(|e| AppError::input("geometry", e.to_string()))?;
    g.validate().map_err(|e| AppError::input("geometry", e.to_string()))?;
    g.validate_geographic().map_err(|e| AppError::input("geometry", e.to_string()))?;
    Ok(g)
}

impl Device {
    /// The forms of an area's layers.
    pub fn layer_forms(&self, id: &str) -> Result<Vec<LayerForm>, AppError> {
        Ok(self.open_replica(id)?.layers().iter().map(layer_form).collect())
    }

    /// A layer's features as a GeoJSON FeatureCollection for the map (properties: `id`, `code`,
    /// `status`, `label` — the first text field's value), at most [`MAX_MAP_FEATURES`]; the
    /// collection's `truncated` says when there were more.
    pub fn features_geojson(&self, id: &str, layer: &str) -> Result<Json, AppError> {
        let r = self.open_replica(id)?;
        let l = r.layer(layer)?.clone();
        let label_field =
            l.schema.fields.iter().find(|f| f.ty == FieldType::Text && !f.retired).map(|f| f.name.clone());
        let world = Bbox { min_x: -180.0, min_y: -90.0, max_x: 180.0, max_y: 90.0 };
        let all = r.query_bbox(layer, &world)?;
        let truncated = all.len() > MAX_MAP_FEATURES;
        let features: Vec<Json> = all
            .into_iter()
            .take(MAX_MAP_FEATURES)
            .map(|f| {
                let label = label_field
                    .as_ref()
                    .and_then(|n| f.feature.properties.get(n))
                    .map(Value::to_text)
                    .unwrap_or_default();
                json!({
                    "type": "Feature",
                    "geometry": f.feature.geometry.as_ref().map(geojson::to_json),
                    "properties": {
                        "id": f.feature.id.to_string(),
                        "code": f.feature.code,
                        "status": status_text(&f.status),
                        "label": label,
                    }
                })
            })
            .collect();
        Ok(json!({"type": "FeatureCollection", "features": features, "truncated": truncated}))
    }

    /// Feature `key` (id or code) of an area's layer, as the edit form starts from it.
    pub fn feature_form(&self, id: &str, layer: &str, key: &str) -> Result<Option<FeatureForm>, AppError> {
        let r = self.open_replica(id)?;
        let Some(f) = r.get(layer, &FeatureKey::parse(key))? else { return Ok(None) };
        let infos = r.attachments()?;
        let mut attachments = Vec::new();
        for v in f.feature.properties.values() {
            if let Value::Attachments(shas) = v {
                for sha in shas {
                    let info = infos.iter().find(|i| &i.sha256 == sha);
                    attachments.push(AttachmentView {
                        sha256: sha.clone(),
                        mime: info.map(|i| i.mime.clone()).unwrap_or_default(),
                        size: info.map_or(0, |i| i.size),
                        confirmed: info.is_none_or(|i| i.confirmed),
                    });
                }
            }
        }
        let values = f
            .feature
            .properties
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Attachments(_) | Value::Null))
            .map(|(k, v)| (k.clone(), v.to_text()))
            .collect();
        Ok(Some(FeatureForm {
            id: f.feature.id.to_string(),
            code: f.feature.code.clone(),
            geometry: f.feature.geometry.as_ref().map(geojson::to_json),
            values,
            attachments,
            status: status_text(&f.status),
        }))
    }

    /// Reads picked files as attachments (each at most [`MAX_ATTACHMENT_BYTES`]).
    fn read_attachments(
        &self,
        files: &[PathBuf],
        at: Option<&Geometry>,
    ) -> Result<Vec<(Vec<u8>, String, Evidence)>, AppError> {
        let (lon, lat) = match at {
            Some(Geometry::Point(c)) => (Some(c.x), Some(c.y)),
            _ => (None, None),
        };
        files
            .iter()
            .map(|p| {
                let size = std::fs::metadata(p).map_err(AppError::io(p))?.len();
                if size > MAX_ATTACHMENT_BYTES {
                    return Err(AppError::input(
                        "attachment",
                        format!("{}: {size} bytes; an attachment may have at most {MAX_ATTACHMENT_BYTES}", p.display()),
                    ));
                }
                let bytes = std::fs::read(p).map_err(AppError::io(p))?;
                let evidence = Evidence {
                    capture_time: Timestamp::now(),
                    lon,
                    lat,
                    heading: None,
                    device: Some(self.settings.device_name.clone()),
                };
                Ok((bytes, mime_of(p).to_owned(), evidence))
            })
            .collect()
    }

    /// Saves the form: a new feature (`key` `None`) or changes to feature `key` — fields from the
    /// form text (a field emptied in the form is cleared), the geometry when given, and picked
    /// files added to the layer's first attachments field. One replica transaction: all or
    /// nothing; the form's problems come back per field ([`AppError::Form`]).
    pub fn save_feature(
        &self,
        id: &str,
        layer: &str,
        key: Option<&str>,
        geometry: Option<Geometry>,
        input: &BTreeMap<String, String>,
        files: &[PathBuf],
    ) -> Result<Saved, AppError> {
        let mut r = self.open_replica(id)?;
        let l = r.layer(layer)?.clone();
        let mut props = Self::form_properties(&l, input).map_err(AppError::Form)?;
        let files = self.read_attachments(files, geometry.as_ref())?;
        let attach_field =
            l.schema.fields.iter().find(|f| f.ty == FieldType::Attachments && !f.retired).map(|f| f.name.clone());
        if !files.is_empty() && attach_field.is_none() {
            return Err(AppError::input("attachment", format!("layer `{layer}` has no attachments field")));
        }
        let meta = self.meta();
        let (eid, changed): (EntityId, bool) = r.batch(|r| {
            let mut shas = Vec::new();
            for (bytes, mime, ev) in &files {
                shas.push(r.add_attachment(bytes, mime, ev)?);
            }
            match key {
                None => {
                    if let Some(f) = &attach_field
                        && !shas.is_empty()
                    {
                        props.insert(f.clone(), Value::Attachments(shas));
                    }
                    let new = NewFeature { geometry, properties: props, ..NewFeature::default() };
                    Ok((r.create_feature(layer, new, &meta)?, true))
                }
                Some(k) => {
                    let fk = FeatureKey::parse(k);
                    let current = r.get(layer, &fk)?.ok_or_else(|| shikong_replica::ReplicaError::NotFound {
                        layer: layer.to_owned(),
                        key: fk.to_string(),
                    })?;
                    // A field the form shows empty that holds a value is cleared.
                    for f in l.schema.fields.iter().filter(|f| !f.retired && f.ty != FieldType::Attachments) {
                        let shown_empty = input.get(&f.name).is_some_and(|t| t.trim().is_empty());
                        if shown_empty && current.feature.properties.get(&f.name).is_some_and(|v| !v.is_null()) {
                            props.insert(f.name.clone(), Value::Null);
                        }
                    }
                    if let Some(f) = &attach_field
                        && !shas.is_empty()
                    {
                        let mut all = match current.feature.properties.get(f) {
                            Some(Value::Attachments(old)) => old.clone(),
                            _ => Vec::new(),
                        };
                        all.extend(shas.into_iter().filter(|s| !all.contains(s)).collect::<Vec<_>>());
                        props.insert(f.clone(), Value::Attachments(all));
                    }
                    let mut changed = r.set_fields(layer, &fk, props, &meta)?;
                    if let Some(g) = geometry {
                        changed |= r.set_geometry(layer, &fk, Some(g), &meta)?;
                    }
                    Ok((current.feature.id, changed))
                }
            }
        })?;
        self.refresh_replica(&r);
        let code = r.get(layer, &FeatureKey::Id(eid))?.map(|f| f.feature.code).unwrap_or_default();
        Ok(Saved { id: eid.to_string(), code, changed, pending: r.pending()? })
    }

    /// Deletes feature `key` of an area's layer; `false` when it was not there.
    pub fn delete_in(&self, id: &str, layer: &str, key: &str) -> Result<bool, AppError> {
        let mut r = self.open_replica(id)?;
        self.delete_feature(&mut r, layer, &FeatureKey::parse(key))
    }

    /// An attachment's bytes and type, for showing it.
    pub fn attachment_bytes(&self, id: &str, sha256: &str) -> Result<(Vec<u8>, String), AppError> {
        let r = self.open_replica(id)?;
        let mime = r.attachments()?.into_iter().find(|a| a.sha256 == sha256).map(|a| a.mime).unwrap_or_default();
        Ok((r.attachment(sha256)?, mime))
    }

    /// Snaps `(lon, lat)` to the area's features of every layer within `tolerance_px` pixels
    /// (the feature being edited, `exclude`, left out).
    pub fn snap_in(
        &self,
        id: &str,
        target: (f64, f64),
        scale: Scale,
        tolerance_px: f64,
        exclude: Option<&str>,
    ) -> Result<Option<Snapped>, AppError> {
        let r = self.open_replica(id)?;
        Ok(snap(target, scale, tolerance_px, &snap_candidates(&r, target, scale, tolerance_px, exclude)?))
    }
}

fn snap_candidates(
    r: &Replica,
    target: (f64, f64),
    scale: Scale,
    tolerance_px: f64,
    exclude: Option<&str>,
) -> Result<Vec<(String, String, Geometry)>, AppError> {
    let area = scale.around(target, tolerance_px);
    let mut out = Vec::new();
    for l in r.layers() {
        for f in r.query_bbox(&l.name, &area)? {
            let skip = exclude.is_some_and(|x| x == f.feature.code || x == f.feature.id.to_string());
            if let (false, Some(g)) = (skip, f.feature.geometry) {
                out.push((l.name.clone(), f.feature.code, g));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    const SCALE: Scale = Scale { deg_per_px: 1e-5, lat: 0.0 };

    fn cand(g: Geometry) -> Vec<(String, String, Geometry)> {
        vec![("l".into(), "f1".into(), g)]
    }

    #[test]
    fn snapping_prefers_vertices_then_edges_within_the_tolerance() {
        let line = Geometry::LineString(vec![Coord::xy(0.0, 0.0), Coord::xy(0.001, 0.0)]);
        // 5 px from the start vertex: snaps to it.
        let s = snap((0.00005, 0.0), SCALE, 8.0, &cand(line.clone())).unwrap();
        assert_eq!((s.kind, s.lon, s.lat), ("vertex", 0.0, 0.0));
        assert!((s.pixels - 5.0).abs() < 1e-9, "{}", s.pixels);
        // In the middle, 3 px off the line: onto the edge, at the foot of the perpendicular.
        let s = snap((0.0005, 0.00003), SCALE, 8.0, &cand(line.clone())).unwrap();
        assert_eq!(s.kind, "edge");
        assert!((s.lon - 0.0005).abs() < 1e-12 && s.lat.abs() < 1e-12, "{s:?}");
        // 9 px away: nothing.
        assert!(snap((0.0005, 0.00009), SCALE, 8.0, &cand(line)).is_none());
    }

    #[test]
    fn latitude_stretches_the_vertical_pixels() {
        // At 60°N a degree of latitude spans twice the pixels of a degree of longitude.
        let scale = Scale { deg_per_px: 1e-5, lat: 60.0 };
        let p = Geometry::Point(Coord::xy(0.0, 60.0));
        let s = snap((0.0, 60.0 + 3e-5), scale, 8.0, &cand(p.clone())).unwrap();
        assert!((s.pixels - 6.0).abs() < 1e-6, "{}", s.pixels);
        assert!(snap((0.0, 60.0 + 5e-5), scale, 8.0, &cand(p)).is_none(), "10 px");
    }

    #[test]
    fn a_nearer_vertex_wins_and_polygon_rings_are_edges() {
        let square = Geometry::Polygon(vec![vec![
            Coord::xy(0.0, 0.0),
            Coord::xy(0.001, 0.0),
            Coord::xy(0.001, 0.001),
            Coord::xy(0.0, 0.001),
            Coord::xy(0.0, 0.0),
        ]]);
        let mut c = cand(square);
        c.push(("l".into(), "f2".into(), Geometry::Point(Coord::xy(0.00103, 0.00101))));
        let s = snap((0.00101, 0.00101), SCALE, 8.0, &c).unwrap();
        assert_eq!((s.kind, s.feature.as_str()), ("vertex", "f1"), "{s:?}");
        let s = snap((0.00104, 0.0005), SCALE, 8.0, &c).unwrap();
        assert_eq!((s.kind, s.lon), ("edge", 0.001));
    }

    #[test]
    fn the_form_edits_moves_and_attaches_through_the_replica() {
        let (dir, d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 2);
        let forms = d.layer_forms("洪山区").unwrap();
        let f = forms.iter().find(|f| f.layer == "manhole").unwrap();
        assert_eq!(f.geometry, "Point");
        assert!(f.fields.iter().any(|x| x.name == "状态" && x.required && !x.codes.is_empty()), "{f:?}");
        let fc = d.features_geojson("洪山区", "manhole").unwrap();
        assert_eq!(fc["features"].as_array().map(Vec::len), Some(2));
        let before = d.feature_form("洪山区", "manhole", "420111-JG-000001").unwrap().unwrap();
        let mut input = before.values.clone();
        input.insert("名称".into(), "改名的井盖".into());
        let photo = dir.path().join("现场.png");
        std::fs::write(&photo, b"\x89PNG fake").unwrap();
        let moved = Geometry::Point(Coord::xy(114.35, 30.51));
        let saved = d
            .save_feature("洪山区", "manhole", Some("420111-JG-000001"), Some(moved.clone()), &input, &[photo])
            .unwrap();
        assert!(saved.changed && saved.pending >= 1, "{saved:?}");
        let after = d.feature_form("洪山区", "manhole", "420111-JG-000001").unwrap().unwrap();
        assert_eq!(after.values.get("名称").map(String::as_str), Some("改名的井盖"));
        assert_eq!(after.geometry, Some(geojson::to_json(&moved)));
        assert_eq!(after.attachments.len(), 1);
        assert_eq!(after.attachments[0].mime, "image/png");
        assert_eq!(after.status, "pending");
        // A problem in the form writes nothing.
        input.insert("状态".into(), "9".into());
        let e = d.save_feature("洪山区", "manhole", Some("420111-JG-000001"), None, &input, &[]).err();
        assert!(matches!(&e, Some(AppError::Form(p)) if p[0].field == "状态"), "{e:?}");
        // Snapping finds the moved feature's vertex.
        let s = d.snap_in("洪山区", (114.35002, 30.51), Scale { deg_per_px: 1e-5, lat: 30.5 }, 8.0, None).unwrap();
        assert_eq!(s.map(|s| (s.kind, s.feature)), Some(("vertex", "420111-JG-000001".to_owned())));
        let none = d.snap_in(
            "洪山区",
            (114.35002, 30.51),
            Scale { deg_per_px: 1e-5, lat: 30.5 },
            8.0,
            Some("420111-JG-000001"),
        );
        assert_eq!(none.unwrap(), None, "the edited feature is left out");
        assert_eq!(d.delete_in("洪山区", "manhole", "420111-JG-000001").ok(), Some(true));
    }
}
