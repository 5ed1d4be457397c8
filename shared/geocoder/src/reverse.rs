//! Reverse geocoding: a point → the divisions containing it at every level, the nearest road and the
//! nearest standard address, with distances.
//!
//! Where boundaries were loaded, containment is decided by point-in-polygon; elsewhere (the NBS
//! lists carry no geometry, and the reference points are county centres) the nearest centre stands
//! in, and the result says which basis each level used and how far the centre is. Address points
//! and POIs carry their division codes, so a nearby one refines the answer below county level.

use serde::Serialize;

use crate::engine::Geocoder;
use crate::gazetteer::DivId;
use crate::geocode::{Codes, Options};
use crate::records::Record;
use crate::text::Level;

const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// An address or POI this close may refine the divisions below county level.
const REFINE_RADIUS_M: f64 = 300.0;

/// How a level of a reverse answer was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitBasis {
    /// The point lies inside the unit's boundary.
    Polygon,
    /// The unit's centre is the nearest (no boundary loaded).
    Nearest,
    /// Taken from a nearby address point or POI's division code.
    Record,
    /// Implied by a deeper unit.
    Parent,
}

/// One containing unit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReverseUnit {
    pub level: Level,
    pub code: String,
    pub name: String,
    pub basis: UnitBasis,
    /// Distance from the point to the unit's centre, when known (metres).
    pub centre_distance_m: Option<f64>,
}

/// The nearest road.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearRoad {
    pub id: String,
    pub name: String,
    /// Shortest distance to the road line (metres).
    pub distance_m: f64,
    /// The closest point on the line.
    pub lon: f64,
    pub lat: f64,
}

/// The nearest standard address.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearAddress {
    pub id: String,
    pub standard_address: String,
    pub distance_m: f64,
    pub lon: f64,
    pub lat: f64,
}

/// The answer to a reverse query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReverseResult {
    /// From the province down to the deepest unit decided.
    pub units: Vec<ReverseUnit>,
    pub codes: Codes,
    pub standard_address: String,
    pub nearest_road: Option<NearRoad>,
    pub nearest_address: Option<NearAddress>,
}

/// Great-circle distance in metres (spherical, mean radius: metre-level for the short distances
/// reported here).
pub(crate) fn haversine(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (la1, la2) = (a[1].to_radians(), b[1].to_radians());
    let dla = la2 - la1;
    let dlo = (b[0] - a[0]).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Closest point of segment `a–b` to `p`, in a local equirectangular plane around `p`.
fn closest_on_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> [f64; 2] {
    let k = p[1].to_radians().cos();
    let (ax, ay) = ((a[0] - p[0]) * k, a[1] - p[1]);
    let (bx, by) = ((b[0] - p[0]) * k, b[1] - p[1]);
    let (dx, dy) = (bx - ax, by - ay);
    let len2 = dx * dx + dy * dy;
    let t = if len2 == 0.0 { 0.0 } else { (-(ax * dx + ay * dy) / len2).clamp(0.0, 1.0) };
    [a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t]
}

/// Even-odd point-in-polygon over an outer ring and holes.
fn in_rings(p: [f64; 2], rings: &[Vec<[f64; 2]>]) -> bool {
    let mut inside = false;
    for ring in rings {
        let n = ring.len();
        let mut j = n - 1;
        for i in 0..n {
            let (a, b) = (ring[i], ring[j]);
            if (a[1] > p[1]) != (b[1] > p[1]) && p[0] < (b[0] - a[0]) * (p[1] - a[1]) / (b[1] - a[1]) + a[0] {
                inside = !inside;
            }
            j = i;
        }
    }
    inside
}

impl Geocoder {
    /// Reverse-geocodes a CGCS2000 longitude/latitude against the current records.
    pub fn reverse(&self, lon: f64, lat: f64) -> ReverseResult {
        self.reverse_with(lon, lat, &Options::default())
    }

    /// Reverse-geocodes against the records valid as `opts.as_of` says, of the layers `opts.scope`
    /// sees (hidden records are skipped before the nearest ones are taken).
    pub fn reverse_with(&self, lon: f64, lat: f64, opts: &Options) -> ReverseResult {
        let p = [lon, lat];
        let live = |r: &Record| opts.scope.sees(r) && r.valid_at(opts.as_of);
        // 1. Boundaries: the deepest unit whose polygon holds the point.
        let mut polygon: Option<DivId> = None;
        if p[0].is_finite() && p[1].is_finite() {
            for (id, rings) in &self.gaz.boundaries {
                if in_rings(p, rings) && polygon.is_none_or(|q| self.div(*id).level > self.div(q).level) {
                    polygon = Some(*id);
                }
            }
        }
        // 2. Nearest centre, inside the polygon's unit when there is one.
        let nearest = self
            .centres
            .nearest_neighbor_iter(p)
            .take(64)
            .filter(|c| polygon.is_none_or(|q| self.contains(q, c.data) && c.data != q))
            .map(|c| (haversine(p, *c.geom()), c.data))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let mut deepest = match (polygon, nearest) {
            (_, Some((_, id))) => Some(id),
            (Some(q), None) => Some(q),
            (None, None) => None,
        };
        // 3. Nearest address and road.
        let nearest_address = self
            .live
            .points
            .nearest_neighbor_iter(p)
            .filter_map(|it| self.live.get(it.data).map(|r| (it, r)))
            .filter(|(_, r)| matches!(r, Record::Address(_)) && live(r))
            .take(8)
            .map(|(it, r)| (haversine(p, *it.geom()), r))
            .min_by(|a, b| a.0.total_cmp(&b.0));
        let nearest_road = self
            .live
            .lines
            .nearest_neighbor_iter(p)
            .filter_map(|it| self.live.get(it.data).map(|r| (it, r)))
            .filter(|(_, r)| live(r))
            .take(16)
            .map(|(it, r)| {
                let c = closest_on_segment(p, it.geom().from, it.geom().to);
                (haversine(p, c), c, r)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0));
        // 4. A close address or POI refines the divisions below the county.
        let refine = self
            .live
            .points
            .nearest_neighbor_iter(p)
            .filter_map(|it| self.live.get(it.data).map(|r| (it, r)))
            .filter(|(_, r)| live(r))
            .take(4)
            .find(|(it, _)| haversine(p, *it.geom()) <= REFINE_RADIUS_M)
            .and_then(|(_, r)| self.resolve_code(r.admin_code()));
        let mut record_based = None;
        if let Some(r) = refine {
            let county = deepest.and_then(|d| self.at_level(d, Level::County));
            let fits = county.is_none_or(|c| self.contains(c, r));
            if fits && deepest.is_none_or(|d| self.contains(d, r)) {
                deepest = Some(r);
                record_based = Some(r);
            }
        }
        let mut units = Vec::new();
        if let Some(d) = deepest {
            for id in self.chain(d) {
                let div = self.div(id);
                let basis = if polygon.is_some_and(|q| self.contains(id, q)) {
                    UnitBasis::Polygon
                } else if record_based.is_some_and(|r| self.contains(id, r))
                    && nearest.is_none_or(|(_, n)| !self.contains(id, n))
                {
                    UnitBasis::Record
                } else if nearest.is_some_and(|(_, n)| n == id) {
                    UnitBasis::Nearest
                } else {
                    UnitBasis::Parent
                };
                let centre_distance_m =
                    self.centre[id as usize].map(|c| (haversine(p, [c.lon, c.lat]) * 10.0).round() / 10.0);
                units.push(ReverseUnit {
                    level: div.level,
                    code: div.code_str(),
                    name: div.name.clone(),
                    basis,
                    centre_distance_m,
                });
            }
        }
        let round = |m: f64| (m * 10.0).round() / 10.0;
        ReverseResult {
            codes: deepest.map(|d| self.codes(d)).unwrap_or_default(),
            standard_address: deepest.map(|d| self.standard_admin(d)).unwrap_or_default(),
            units,
            nearest_road: nearest_road.and_then(|(d, c, r)| match r {
                Record::Road(x) => Some(NearRoad {
                    id: x.id.clone(),
                    name: x.name.clone(),
                    distance_m: round(d),
                    lon: c[0],
                    lat: c[1],
                }),
                _ => None,
            }),
            nearest_address: nearest_address.and_then(|(d, r)| match r {
                Record::Address(a) => {
                    let admin = self.resolve_code(&a.admin_code).map(|x| self.standard_admin(x)).unwrap_or_default();
                    Some(NearAddress {
                        id: a.id.clone(),
                        standard_address: format!("{admin}{}{}号{}", a.road, a.number, a.detail),
                        distance_m: round(d),
                        lon: a.point[0],
                        lat: a.point[1],
                    })
                }
                _ => None,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distance() {
        // One degree of latitude is about 111.2 km on the mean sphere.
        let d = haversine([114.0, 30.0], [114.0, 31.0]);
        assert!((d - 111_195.0).abs() < 10.0, "{d}");
        assert_eq!(haversine([1.0, 1.0], [1.0, 1.0]), 0.0);
    }

    #[test]
    fn point_in_polygon_with_hole() {
        let outer = vec![[0.0, 0.0], [10.0, 0.0], [10.0, 10.0], [0.0, 10.0]];
        let hole = vec![[4.0, 4.0], [6.0, 4.0], [6.0, 6.0], [4.0, 6.0]];
        let rings = vec![outer, hole];
        assert!(in_rings([1.0, 1.0], &rings));
        assert!(!in_rings([5.0, 5.0], &rings));
        assert!(!in_rings([11.0, 5.0], &rings));
    }

    #[test]
    fn closest_point_clamps_to_the_segment() {
        assert_eq!(closest_on_segment([5.0, 1.0], [0.0, 0.0], [10.0, 0.0]), [5.0, 0.0]);
        assert_eq!(closest_on_segment([-5.0, 1.0], [0.0, 0.0], [10.0, 0.0]), [0.0, 0.0]);
    }
}
