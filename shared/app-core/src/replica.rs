//! Reading the offline replicas: opening an area's replica, a tapped feature as its card shows it
//! (fields with their titles, the share link, the values the edit form starts from), a feature's
//! history from the server, offline place search in the area's gazetteer, and geodesic
//! measurement on CGCS2000 (`shikong-geodesy`).

use std::collections::BTreeMap;

use serde_json::Value as Json;
use shikong_geodesy::Measurement;
use shikong_model::{Coord, Geometry, Value};
use shikong_protocol as wire;
use shikong_replica::{FeatureKey, Replica, ReplicaLayer};

use crate::{AppError, Device};

/// A tapped feature as its card shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureCard {
    pub layer: ReplicaLayer,
    /// The entity id or code the map gave.
    pub id: String,
    pub code: String,
    /// `(field title, value as text)`, in schema order.
    pub fields: Vec<(String, String)>,
    /// `shikong://feature?…`, for the share QR code.
    pub link: String,
    /// Current values as form text (photos and empty values left out): the edit form's start.
    pub values: BTreeMap<String, String>,
}

impl Device {
    pub fn open_replica(&self, id: &str) -> Result<Replica, AppError> {
        let path = self.replica_path(id);
        if !path.exists() {
            return Err(AppError::NoArea { id: id.to_owned() });
        }
        Ok(Replica::open(path)?)
    }

    /// The replica of the open area.
    pub fn active_replica(&self) -> Result<Replica, AppError> {
        let id = self.settings.active.as_deref().ok_or(AppError::NoActiveArea)?;
        self.open_replica(id)
    }

    /// Feature `id` (entity id or code) of `layer` in the open area, for its card; `None` when
    /// the feature is not there (deleted since the map drew it).
    pub fn feature_card(&self, layer: &str, id: &str) -> Result<Option<FeatureCard>, AppError> {
        let r = self.active_replica()?;
        let l = r.layer(layer)?.clone();
        let Some(f) = r.get(layer, &FeatureKey::parse(id))? else { return Ok(None) };
        let fields = l
            .schema
            .fields
            .iter()
            .map(|fd| {
                (
                    fd.title.clone().unwrap_or(fd.name.clone()),
                    f.feature.properties.get(&fd.name).map(|v| v.to_text()).unwrap_or_default(),
                )
            })
            .collect();
        let link = wire::enrolment::FeatureLink {
            server: self.session().map(|s| s.server.clone()).unwrap_or_default(),
            collection: layer.to_owned(),
            id: id.to_owned(),
        }
        .to_uri();
        let values = f
            .feature
            .properties
            .iter()
            .filter(|(_, v)| !matches!(v, Value::Attachments(_) | Value::Null))
            .map(|(k, v)| (k.clone(), v.to_text()))
            .collect();
        Ok(Some(FeatureCard { layer: l, id: id.to_owned(), code: f.feature.code.clone(), fields, link, values }))
    }

    /// A feature's versions, newest first, as lines "v3 · 2025-06-01 10:00 · 张三 · 状态: 1 → 2"
    /// (from the server: the store keeps the history; the device only its own pending edits).
    pub fn history(&self, layer: &str, id: &str) -> Result<Vec<String>, AppError> {
        if !self.online() {
            return Err(AppError::Offline);
        }
        let history = self.client()?.feature_history(layer, id)?;
        let text = |v: &Json| match v {
            Json::Null => "∅".to_owned(),
            Json::String(s) => s.clone(),
            o => o.to_string(),
        };
        let mut out: Vec<String> = history
            .versions
            .iter()
            .map(|v| {
                let changes: Vec<String> = v
                    .changes
                    .iter()
                    .filter(|c| c.attribute != "geometry")
                    .map(|c| format!("{}: {} → {}", c.attribute, text(&c.old), text(&c.new)))
                    .collect();
                format!(
                    "v{} · {} · {} · {}{}",
                    v.version,
                    v.op.as_str(),
                    v.tx.time,
                    v.tx.author,
                    if changes.is_empty() { String::new() } else { format!(" · {}", changes.join("; ")) }
                )
            })
            .collect();
        out.reverse();
        Ok(out)
    }

    /// Offline place search in the open area's gazetteer.
    pub fn search_offline(&self, q: &str) -> Result<Vec<shikong_geocoder::Suggestion>, AppError> {
        let r = self.active_replica()?;
        let area = r.info().name.clone().unwrap_or_default();
        let g = r.gazetteer()?.ok_or(AppError::NoGazetteer { area })?;
        let geo = shikong_geocoder::Geocoder::from_snapshot(&g.bytes)
            .map_err(|e| AppError::Corrupt { path: r.path().to_owned(), reason: e.to_string() })?;
        Ok(geo.suggest(q.trim(), 8))
    }

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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn a_tapped_feature_reads_as_its_card() {
        let (dir, mut d) = testkit::device();
        assert!(matches!(d.feature_card("manhole", "x"), Err(AppError::NoActiveArea)));
        testkit::replica(dir.path(), "洪山区", 2);
        assert!(d.set_active("洪山区").is_ok());
        d.settings.session = Some(testkit::session("http://127.0.0.1:9"));
        let card = d.feature_card("manhole", "420111-JG-000001").ok().flatten();
        let Some(card) = card else { panic!("no card") };
        assert_eq!(card.code, "420111-JG-000001");
        assert_eq!(card.fields[0], ("名称".to_owned(), "井盖1".to_owned()));
        assert_eq!(card.values.get("状态").map(String::as_str), Some("1"));
        let link = wire::enrolment::FeatureLink::parse(&card.link).ok();
        assert_eq!(link.map(|l| (l.server, l.id)), Some(("http://127.0.0.1:9".into(), "420111-JG-000001".into())));
        assert_eq!(d.feature_card("manhole", "420111-JG-999999").ok(), Some(None));
        assert!(matches!(d.search_offline("洪山"), Err(AppError::NoGazetteer { .. })));
        assert!(matches!(d.history("manhole", "x"), Err(AppError::Offline)));
    }

    #[test]
    fn measurement_is_geodesic() {
        let m = Device::measure(&[(114.0, 30.5), (114.01, 30.5)], false).map(|m| m.length_m).unwrap_or_default();
        assert!((m - 959.6).abs() < 1.0, "{m}");
        assert!(Device::measure(&[(114.0, 30.5), (114.01, 30.5)], true).is_none());
    }
}
