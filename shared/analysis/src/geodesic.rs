//! Geodesic distances on CGCS2000 and the neighbour search that avoids most of them.
//!
//! Karney's inverse solution costs about a microsecond; a 500 m band over 100k points in a
//! district has tens of millions of candidate pairs. So the search works on earth-centred,
//! earth-fixed (ECEF) coordinates of the points on the ellipsoid, where the straight-line chord
//! `c` between two points bounds the geodesic `s` from both sides:
//!
//! - `c <= s`: a straight segment is the shortest curve between its ends;
//! - `s <= 2r·asin(c / 2r)` with `r = b²/a` (about 6,335 km), the smallest radius of curvature
//!   anywhere on the ellipsoid: a geodesic's curvature in space is the normal curvature of the
//!   surface, at most `1/r`, and by Schur's comparison theorem a curve whose curvature never
//!   exceeds that of a circle of radius `r` has a chord at least as long as the circle's arc of the
//!   same length (for arcs up to half the circle).
//!
//! At 500 m the two bounds differ by about 0.1 µm, so the exact geodesic is almost never needed to
//! decide "within the band"; when it is (and for k-nearest orderings), it is computed. The R-tree
//! over ECEF points works anywhere on earth, across the antimeridian and at the poles, unlike a
//! projection.

use geographiclib_rs::InverseGeodesic;
use std::collections::HashMap;

use rstar::{RTree, primitives::GeomWithData};
use shikong_geodesy::measure::{CGCS2000_A, CGCS2000_INV_F, cgcs2000};

use crate::error::{AnalysisError, Result};
use crate::limits::MAX_POINTS;

/// A point as `[longitude, latitude]` in degrees on CGCS2000.
pub type LonLat = [f64; 2];

/// Rounding allowance (metres) between chord bounds and computed geodesics: ECEF coordinates of
/// 6.4e6 m carry about 1e-9 m of rounding and Karney's solution is good to 15 nm, so 1 µm leaves
/// a wide margin while still deciding all but a handful of pairs without a geodesic.
pub(crate) const SLACK_M: f64 = 1e-6;

/// The geodesic distance in metres between two points on CGCS2000: the same ellipsoid and
/// algorithm as [`shikong_geodesy::distance`], without its per-call checks (points are checked
/// once, by [`check_points`]).
pub fn geodesic_m(a: LonLat, b: LonLat) -> f64 {
    cgcs2000().inverse(a[1], a[0], b[1], b[0])
}

/// Refuses empty input, more than [`MAX_POINTS`], non-finite coordinates and longitudes or
/// latitudes out of range, naming the first point at fault.
pub fn check_points(points: &[LonLat]) -> Result<()> {
    if points.is_empty() {
        return Err(AnalysisError::Empty { what: "points" });
    }
    if points.len() > MAX_POINTS {
        return Err(AnalysisError::TooMany { what: "points", got: points.len(), limit: "MAX_POINTS", max: MAX_POINTS });
    }
    for (index, p) in points.iter().enumerate() {
        for v in p {
            if !v.is_finite() {
                return Err(AnalysisError::NotFinite { what: "point coordinate of point", index, value: *v });
            }
        }
        if !(-180.0..=180.0).contains(&p[0]) {
            return Err(AnalysisError::LongitudeOutOfRange { index, lon: p[0] });
        }
        if !(-90.0..=90.0).contains(&p[1]) {
            return Err(AnalysisError::LatitudeOutOfRange { index, lat: p[1] });
        }
    }
    Ok(())
}

/// Earth-centred coordinates (metres) of a point on the CGCS2000 ellipsoid (height 0).
pub(crate) fn ecef(p: LonLat) -> [f64; 3] {
    let f = 1.0 / CGCS2000_INV_F;
    let e2 = f * (2.0 - f);
    let (sl, cl) = p[0].to_radians().sin_cos();
    let (sp, cp) = p[1].to_radians().sin_cos();
    let n = CGCS2000_A / (1.0 - e2 * sp * sp).sqrt();
    [n * cp * cl, n * cp * sl, n * (1.0 - e2) * sp]
}

/// The smallest radius of curvature on the ellipsoid, `b²/a` (meridian at the equator).
fn min_radius() -> f64 {
    let b = CGCS2000_A * (1.0 - 1.0 / CGCS2000_INV_F);
    b * b / CGCS2000_A
}

/// An upper bound of the geodesic distance between two points whose chord is `c` metres.
pub(crate) fn geodesic_upper_bound(c: f64) -> f64 {
    let r = min_radius();
    2.0 * r * (c / (2.0 * r)).min(1.0).asin()
}

/// The longest chord whose geodesic is surely at most `d` (with the slack): the inverse of
/// [`geodesic_upper_bound`].
pub(crate) fn chord_surely_within(d: f64) -> f64 {
    let r = min_radius();
    let s = (d - SLACK_M).max(0.0);
    2.0 * r * (s / (2.0 * r)).min(std::f64::consts::FRAC_PI_2).sin()
}

#[cfg(test)]
pub(crate) fn chord(a: &[f64; 3], b: &[f64; 3]) -> f64 {
    ((a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2) + (a[2] - b[2]).powi(2)).sqrt()
}

/// Points bucketed in cubes of ECEF space whose side is the search reach, for "every point
/// within `d`" queries: a point's neighbours are in its own cube or the 26 around it. Faster than
/// an R-tree walk for a fixed radius (the band is known before the index is built), and each
/// cube's points are stored together, in ascending index, so a row comes out in a few sorted runs.
#[derive(Debug)]
pub(crate) struct BandGrid<'a> {
    points: &'a [LonLat],
    d: f64,
    /// Squared chord below which the geodesic is surely within `d`, and beyond which surely not.
    inside2: f64,
    reach2: f64,
    /// Per point, its cube.
    cube_of: Vec<[i64; 3]>,
    /// Cube -> range in `order`/`xyz`.
    cubes: HashMap<[i64; 3], (u32, u32)>,
    /// Point indices grouped by cube, ascending within a cube, and their ECEF coordinates.
    order: Vec<u32>,
    xyz: Vec<[f64; 3]>,
}

impl<'a> BandGrid<'a> {
    /// Points must have passed [`check_points`]; `d` is at least [`crate::limits::MIN_DISTANCE_M`].
    pub(crate) fn new(points: &'a [LonLat], d: f64) -> Self {
        let reach = d + SLACK_M;
        let inside = chord_surely_within(d);
        let all: Vec<[f64; 3]> = points.iter().map(|p| ecef(*p)).collect();
        // `as` saturates, and the side is at least a millimetre, so cube numbers stay in range.
        let cube_of: Vec<[i64; 3]> = all.iter().map(|p| p.map(|v| (v / reach).floor() as i64)).collect();
        let mut order: Vec<u32> = (0..points.len() as u32).collect();
        order.sort_by_key(|&i| (cube_of[i as usize], i));
        let mut cubes = HashMap::new();
        let mut start = 0usize;
        while start < order.len() {
            let key = cube_of[order[start] as usize];
            let len = order[start..].iter().take_while(|&&i| cube_of[i as usize] == key).count();
            cubes.insert(key, (start as u32, (start + len) as u32));
            start += len;
        }
        let xyz = order.iter().map(|&i| all[i as usize]).collect();
        Self { points, d, inside2: inside * inside, reach2: reach * reach, cube_of, cubes, order, xyz }
    }

    /// The point indices cube by cube: queries made in this order reuse the same few cubes from
    /// cache instead of fetching 27 scattered ones from memory for each point.
    pub(crate) fn spatial_order(&self) -> &[u32] {
        &self.order
    }

    /// Calls `f(j)` for every point `j != i` whose geodesic distance from point `i` is at most
    /// `d` metres, cube by cube, until `f` returns `false`, reusing the 27 cubes' ranges in
    /// `near` when point `i` is in the same cube as the previous query's (queries in
    /// [`Self::spatial_order`] mostly are).
    pub(crate) fn for_each_within_near(&self, i: usize, near: &mut Near, mut f: impl FnMut(usize) -> bool) {
        let c = self.cube_of[i];
        if near.cube != Some(c) {
            near.cube = Some(c);
            near.ranges.clear();
            for dx in -1..=1 {
                for dy in -1..=1 {
                    for dz in -1..=1 {
                        if let Some(&(a, b)) = self.cubes.get(&[c[0] + dx, c[1] + dy, c[2] + dz]) {
                            near.ranges.push((a as usize, b as usize));
                        }
                    }
                }
            }
        }
        let p = ecef(self.points[i]);
        for &(a, b) in &near.ranges {
            for (q, &j) in self.xyz[a..b].iter().zip(&self.order[a..b]) {
                let c2 = (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2);
                if c2 > self.reach2 {
                    continue;
                }
                let j = j as usize;
                // Below `inside2` the geodesic is surely within `d` (the inverse of the upper
                // bound, so no asin per pair); between the two, it is computed.
                let within = c2 < self.inside2 || geodesic_m(self.points[i], self.points[j]) <= self.d;
                if within && j != i && !f(j) {
                    return;
                }
            }
        }
    }
}

/// The cubes around the last queried point's cube, as ranges of [`BandGrid`]'s arrays.
#[derive(Debug, Default)]
pub(crate) struct Near {
    cube: Option<[i64; 3]>,
    ranges: Vec<(usize, usize)>,
}

/// An R-tree over the points' ECEF coordinates, for k-nearest queries; the data of each entry
/// is the point's index.
#[derive(Debug)]
pub(crate) struct PointIndex<'a> {
    points: &'a [LonLat],
    xyz: Vec<[f64; 3]>,
    tree: RTree<GeomWithData<[f64; 3], u32>>,
}

impl<'a> PointIndex<'a> {
    /// Points must have passed [`check_points`] (so there are at most `MAX_POINTS`, which fit
    /// `u32`).
    pub(crate) fn new(points: &'a [LonLat]) -> Self {
        let xyz: Vec<[f64; 3]> = points.iter().map(|p| ecef(*p)).collect();
        let entries = xyz.iter().enumerate().map(|(i, p)| GeomWithData::new(*p, i as u32)).collect();
        Self { points, xyz, tree: RTree::bulk_load(entries) }
    }

    /// The `k` points nearest to point `i` by geodesic distance (itself excluded), ties broken by
    /// the lower index, as `(index, metres)` in no particular order; the metres are the chord for
    /// points that are surely among the k without their geodesic, else the geodesic. `k` must be below the number of
    /// points. Fails when more than [`crate::limits::MAX_KNN_CANDIDATES`] points are within the
    /// chord bounds of the k-th distance (many coincident points).
    pub(crate) fn k_nearest(&self, i: usize, k: usize) -> Result<Vec<(usize, f64)>> {
        use crate::limits::MAX_KNN_CANDIDATES;
        let p = self.xyz[i];
        let mut candidates: Vec<(usize, f64)> = Vec::with_capacity(k + 4);
        let mut limit = f64::INFINITY;
        for (e, c2) in self.tree.nearest_neighbor_iter_with_distance_2(p) {
            let j = e.data as usize;
            if j == i {
                continue;
            }
            let c = c2.sqrt();
            if c > limit {
                break;
            }
            candidates.push((j, c));
            if candidates.len() == k {
                // Every one of the true k nearest has a chord no longer than the k-th geodesic,
                // which is at most the upper bound of the k-th chord.
                limit = geodesic_upper_bound(c) + SLACK_M;
            }
            if candidates.len() > MAX_KNN_CANDIDATES {
                return Err(AnalysisError::TooMany {
                    what: "points tied near the k-th distance in the k-nearest search",
                    got: candidates.len(),
                    limit: "MAX_KNN_CANDIDATES",
                    max: MAX_KNN_CANDIDATES,
                });
            }
        }
        // Candidates come in chord order. Those whose geodesic is surely shorter than the chord
        // (a lower bound of the geodesic) of the first candidate past the k-th are in, with no
        // geodesic computed; only the ones around the k-th distance are ordered exactly.
        let boundary = candidates.get(k).map_or(f64::INFINITY, |c| c.1);
        let sure = candidates[..k].iter().take_while(|c| geodesic_upper_bound(c.1) + 2.0 * SLACK_M < boundary).count();
        let mut exact: Vec<(usize, f64)> =
            candidates[sure..].iter().map(|&(j, _)| (j, geodesic_m(self.points[i], self.points[j]))).collect();
        exact.sort_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
        exact.truncate(k - sure);
        let mut chosen: Vec<(usize, f64)> = candidates[..sure].to_vec();
        chosen.extend(exact);
        Ok(chosen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chord_bounds_hold_for_pairs_from_metres_to_hundreds_of_kilometres() {
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..20_000 {
            let a = [rng.f64() * 360.0 - 180.0, rng.f64() * 178.0 - 89.0];
            let scale = 10f64.powf(rng.f64() * 4.0 - 4.0); // 1e-4 .. 1 degree
            let b = [
                (a[0] + (rng.f64() - 0.5) * scale * 2.0).clamp(-180.0, 180.0),
                (a[1] + (rng.f64() - 0.5) * scale).clamp(-90.0, 90.0),
            ];
            let c = chord(&ecef(a), &ecef(b));
            let s = geodesic_m(a, b);
            assert!(c <= s + SLACK_M, "chord {c} > geodesic {s} for {a:?} {b:?}");
            assert!(s <= geodesic_upper_bound(c) + SLACK_M, "geodesic {s} > bound for {a:?} {b:?}");
            // the inverse bound used by the band search: a chord below it has a geodesic within
            let d = s * (1.0 + rng.f64() * 1e-6);
            if c < chord_surely_within(d) {
                assert!(s <= d, "chord {c} below the inside chord of {d} but geodesic {s}");
            }
        }
    }

    #[test]
    fn geodesic_is_the_geodesy_crates_distance() {
        use shikong_model::Coord;
        let (a, b) = ([114.35, 30.5], [114.41, 30.52]);
        let expected = shikong_geodesy::distance(&Coord::xy(a[0], a[1]), &Coord::xy(b[0], b[1]));
        assert_eq!(expected.ok(), Some(geodesic_m(a, b)));
    }
}
