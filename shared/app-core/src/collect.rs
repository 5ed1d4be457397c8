//! Collecting and editing features in the field: form text → typed properties with a problem per
//! field, a geometry from tapped or walked points, evidence photos (position, heading, time,
//! watermark), the current position fix, scanning a QR code into a field, and the edits
//! themselves — create, change, delete — written to the replica as the signed-in user.

use std::collections::BTreeMap;

use jiff::Timestamp;
use shikong_model::{Coord, EntityId, FieldType, Geometry, GeometryKind, Properties, Value};
use shikong_replica::{EditMeta, Evidence, FeatureKey, NewFeature, Replica, ReplicaLayer};

use crate::platform::{Fix, Photo};
use crate::{AppError, Device};

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

/// A feature saved from the collect form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Collected {
    pub id: EntityId,
    /// Edits of the area waiting for sync, this one included.
    pub pending: u64,
}

impl Device {
    /// Who edits, from which device, now.
    pub(crate) fn meta(&self) -> EditMeta {
        let s = self.session();
        EditMeta {
            user: s.map(|s| s.username.clone()).unwrap_or_else(|| "device".into()),
            device: s.and_then(|s| s.device.clone()).or_else(|| Some(self.settings.device_name.clone())),
            time: Timestamp::now(),
        }
    }

    /// The current position fix, if there is one.
    pub fn position(&self) -> Option<Fix> {
        self.location.fix()
    }

    /// The current position fix, or [`AppError::NoFix`].
    pub fn require_position(&self) -> Result<Fix, AppError> {
        self.position().ok_or(AppError::NoFix)
    }

    /// Takes a photo with the current position and heading as its evidence, watermarked if set.
    pub fn take_photo(&self) -> Result<EvidencePhoto, AppError> {
        let photo = self.camera.capture()?;
        self.evidence_photo(photo, self.location.fix())
    }

    /// Takes a photo of a QR code (an asset tag) and returns its text.
    pub fn scan_text(&self) -> Result<String, AppError> {
        crate::qr::decode(&self.camera.capture()?.bytes)
    }

    pub fn evidence_photo(&self, mut photo: Photo, fix: Option<Fix>) -> Result<EvidencePhoto, AppError> {
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
                if f.required && f.ty != FieldType::Attachments {
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

    /// A geometry of `kind` from tapped or walked points.
    pub fn sketch_geometry(kind: GeometryKind, points: &[(f64, f64)]) -> Result<Geometry, AppError> {
        let coords: Vec<Coord> = points.iter().map(|&(x, y)| Coord::xy(x, y)).collect();
        let need = |n: usize, what: &str| {
            if coords.len() < n {
                Err(AppError::input("geometry", format!("{what} needs at least {n} points")))
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
        g.validate().map_err(|e| AppError::input("geometry", e.to_string()))?;
        Ok(g)
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
    ) -> Result<EntityId, AppError> {
        let l = replica.layer(layer)?.clone();
        let mut props = Self::form_properties(&l, input).map_err(AppError::Form)?;
        let meta = self.meta();
        let id = replica.batch(|r| {
            let mut shas = Vec::new();
            for p in photos {
                shas.push(r.add_attachment(&p.photo.bytes, &p.photo.mime, &p.evidence)?);
            }
            if let Some(f) = l.schema.fields.iter().find(|f| f.ty == FieldType::Attachments && !f.retired)
                && !shas.is_empty()
            {
                props.insert(f.name.clone(), Value::Attachments(shas));
            }
            r.create_feature(
                layer,
                NewFeature { geometry: Some(geometry), properties: props, ..NewFeature::default() },
                &meta,
            )
        })?;
        self.refresh_replica(replica);
        Ok(id)
    }

    /// [`Device::collect`] into the open area.
    pub fn collect_in_active(
        &self,
        layer: &str,
        geometry: Geometry,
        input: &BTreeMap<String, String>,
        photos: &[EvidencePhoto],
    ) -> Result<Collected, AppError> {
        let mut r = self.active_replica()?;
        let id = self.collect(&mut r, layer, geometry, input, photos)?;
        Ok(Collected { id, pending: r.pending()? })
    }

    /// Changes a feature's fields from the edit form; `false` when nothing changed.
    pub fn set_fields(
        &self,
        replica: &mut Replica,
        layer: &str,
        key: &FeatureKey,
        input: &BTreeMap<String, String>,
    ) -> Result<bool, AppError> {
        let l = replica.layer(layer)?.clone();
        let props = Self::form_properties(&l, input).map_err(AppError::Form)?;
        let meta = self.meta();
        let changed = replica.set_fields(layer, key, props, &meta)?;
        self.refresh_replica(replica);
        Ok(changed)
    }

    /// [`Device::set_fields`] of feature `id` (entity id or code) in the open area.
    pub fn edit_in_active(&self, layer: &str, id: &str, input: &BTreeMap<String, String>) -> Result<bool, AppError> {
        let mut r = self.active_replica()?;
        self.set_fields(&mut r, layer, &FeatureKey::parse(id), input)
    }

    pub fn delete_feature(&self, replica: &mut Replica, layer: &str, key: &FeatureKey) -> Result<bool, AppError> {
        let deleted = replica.delete(layer, key, &self.meta())?;
        self.refresh_replica(replica);
        Ok(deleted)
    }

    /// Deletes feature `id` (entity id or code) of the open area.
    pub fn delete_in_active(&self, layer: &str, id: &str) -> Result<bool, AppError> {
        let mut r = self.active_replica()?;
        self.delete_feature(&mut r, layer, &FeatureKey::parse(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_form_names_every_problem() {
        let layer = testkit::manhole();
        let problems = Device::form_properties(&layer, &form(&[("名称", "x")])).err().unwrap_or_default();
        assert_eq!(problems, [FieldProblem { field: "状态".into(), message: "必填 / required".into() }]);
        let problems = Device::form_properties(&layer, &form(&[("状态", "9")])).err().unwrap_or_default();
        assert_eq!(problems.iter().map(|p| p.field.as_str()).collect::<Vec<_>>(), ["状态"], "not in the code list");
        assert!(Device::form_properties(&layer, &form(&[("状态", "2")])).is_ok());
    }

    #[test]
    fn sketches_need_enough_points() {
        let e = Device::sketch_geometry(GeometryKind::Polygon, &[(114.0, 30.0), (114.1, 30.0)]).err();
        assert!(matches!(&e, Some(AppError::Input { field, .. }) if field == "geometry"), "{e:?}");
        let g = Device::sketch_geometry(GeometryKind::Point, &[(114.0, 30.0), (114.1, 30.1)]).ok();
        assert_eq!(g, Some(Geometry::Point(Coord::xy(114.1, 30.1))), "the last tap");
    }

    #[test]
    fn collecting_into_the_open_area_updates_what_the_views_show() {
        let (dir, mut d) = testkit::device();
        let point = Geometry::Point(Coord::xy(114.3, 30.5));
        assert!(matches!(d.collect_in_active("manhole", point.clone(), &form(&[]), &[]), Err(AppError::NoActiveArea)));
        testkit::replica(dir.path(), "洪山区", 1);
        assert!(d.set_active("洪山区").is_ok());
        let e = d.collect_in_active("manhole", point.clone(), &form(&[("名称", "新井盖")]), &[]).err();
        assert!(matches!(&e, Some(AppError::Form(list)) if list[0].field == "状态"), "{e:?}");
        let saved = d.collect_in_active("manhole", point, &form(&[("名称", "新井盖"), ("状态", "2")]), &[]);
        assert_eq!(saved.as_ref().map(|c| c.pending).ok(), Some(1), "{saved:?}");
        let active = d.state().active;
        assert_eq!(active.map(|a| (a.summary.features(), a.summary.pending)), Some((2, 1)));
        let Ok(saved) = saved else { return };
        assert_eq!(d.delete_in_active("manhole", &saved.id.to_string()).ok(), Some(true));
        assert_eq!(d.state().active.map(|a| a.summary.features()), Some(1));
    }

    #[test]
    fn position_and_photos_come_from_the_platform() {
        let (dir, d) = testkit::device();
        assert_eq!(d.require_position().ok().map(|f| (f.lon, f.lat)), Some((114.3437, 30.5043)));
        let e = d.take_photo().err();
        assert!(matches!(e, Some(AppError::Camera { .. })), "{e:?}");
        assert!(std::fs::create_dir_all(dir.path().join("camera")).is_ok());
        let img = image::RgbImage::from_pixel(64, 48, image::Rgb([10, 20, 30]));
        assert!(img.save(dir.path().join("camera/IMG_1.png")).is_ok());
        let p = d.take_photo();
        assert!(p.is_ok(), "{p:?}");
        let Ok(p) = p else { return };
        assert_eq!((p.evidence.lon, p.photo.mime.as_str()), (Some(114.3437), "image/png"));
        assert_eq!(p.sha256, shikong_replica::sha256_hex(&p.photo.bytes));
        assert!(matches!(d.scan_text(), Err(AppError::QrNotFound)));
    }
}
