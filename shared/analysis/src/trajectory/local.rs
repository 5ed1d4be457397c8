//! A local plane in metres around a small region: the equirectangular projection with the
//! ellipsoid's radii of curvature at the region's centre latitude (`x = N cos φ0 · Δλ`,
//! `y = M · Δφ`).
//!
//! Douglas-Peucker and coverage need distances from points to segments and segment crossings,
//! which are planar questions; in this plane they are exact at the centre and off by the
//! change of the scales across the region: the east-west scale changes by `tan φ0 · Δy / N`
//! (5e-5 per kilometre north or south at 30°N), so a distance measured 10 km from the centre
//! is within 0.05% of the geodesic. [`super::limits::MAX_LOCAL_EXTENT_M`] bounds the region.
//! Longitudes are not wrapped: a region across the antimeridian is refused as too wide.

use shikong_geodesy::measure::{CGCS2000_A, CGCS2000_INV_F};

use super::limits::MAX_LOCAL_EXTENT_M;
use crate::error::{AnalysisError, Result};
use crate::geodesic::LonLat;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Local {
    lon0: f64,
    lat0: f64,
    kx: f64,
    ky: f64,
}

impl Local {
    /// The plane around the centre of the bounding box of `points` (at least one), refusing a
    /// box wider than `MAX_LOCAL_EXTENT_M` (`what` names the input).
    pub(crate) fn around(what: &'static str, points: impl Iterator<Item = LonLat>) -> Result<Self> {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for p in points {
            (x0, y0, x1, y1) = (x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1]));
        }
        let local = Self::at([(x0 + x1) / 2.0, (y0 + y1) / 2.0]);
        let extent = ((x1 - x0) * local.kx).hypot((y1 - y0) * local.ky);
        if extent.is_nan() || extent > MAX_LOCAL_EXTENT_M {
            return Err(AnalysisError::OutOfRange {
                what,
                value: extent,
                range: "bounding box diagonal (metres) <= MAX_LOCAL_EXTENT_M = 200000",
            });
        }
        Ok(local)
    }

    /// The plane at `centre` (`lon0`, `lat0`).
    pub(crate) fn at(centre: LonLat) -> Self {
        let f = 1.0 / CGCS2000_INV_F;
        let e2 = f * (2.0 - f);
        let (s, c) = centre[1].to_radians().sin_cos();
        let w2 = 1.0 - e2 * s * s;
        let n = CGCS2000_A / w2.sqrt();
        let m = CGCS2000_A * (1.0 - e2) / (w2 * w2.sqrt());
        let rad = std::f64::consts::PI / 180.0;
        Self { lon0: centre[0], lat0: centre[1], kx: n * c * rad, ky: m * rad }
    }

    pub(crate) fn xy(&self, p: LonLat) -> [f64; 2] {
        [(p[0] - self.lon0) * self.kx, (p[1] - self.lat0) * self.ky]
    }
}

/// GEOS' `Distance::pointToSegment` (so Douglas-Peucker ties fall as in GEOS).
pub(crate) fn point_segment(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let d = |u: [f64; 2], v: [f64; 2]| ((u[0] - v[0]) * (u[0] - v[0]) + (u[1] - v[1]) * (u[1] - v[1])).sqrt();
    if a == b {
        return d(p, a);
    }
    let len2 = (b[0] - a[0]) * (b[0] - a[0]) + (b[1] - a[1]) * (b[1] - a[1]);
    let r = ((p[0] - a[0]) * (b[0] - a[0]) + (p[1] - a[1]) * (b[1] - a[1])) / len2;
    if r <= 0.0 {
        return d(p, a);
    }
    if r >= 1.0 {
        return d(p, b);
    }
    let s = ((a[1] - p[1]) * (b[0] - a[0]) - (a[0] - p[0]) * (b[1] - a[1])) / len2;
    s.abs() * len2.sqrt()
}
