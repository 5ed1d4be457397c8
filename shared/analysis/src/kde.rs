//! Kernel density of points, as QGIS's Heatmap and ArcGIS's Kernel Density compute it: the
//! quartic (biweight) kernel, normalised to integrate to 1 over the disc of radius `h`,
//!
//! `density(q) = Σ_i w_i · 3 / (π h²) · (1 − d_i² / h²)²` over the points with `d_i < h`,
//!
//! with `d_i` the geodesic distance from `q` to point `i` and `w_i` its weight (1 without a
//! weight field). **Units: per square metre** (weights per m²; multiply by 1e6 for per km²), so
//! the integral of the surface is the total weight, whatever the bandwidth.
//!
//! Why its own module: the server renders the surface as raster tiles in EPSG:3857, which it
//! does by evaluating at the tile's cell centres ([`kde_at`], any query points), or at a regular
//! longitude/latitude grid ([`kde_grid`]); both are pure. The bandwidth is given in metres or
//! chosen by [`silverman_bandwidth`], ArcGIS's rule.
//!
//! Distances: the points within reach come from a k-d tree on earth-centred coordinates (the
//! chord is a lower bound of the geodesic, see [`crate::geodesic`]); the distance itself is the
//! chord turned into an arc of the circle whose radius is the ellipsoid's normal radius of
//! curvature in the pair's direction (Euler's formula at the query point). Within 100 km that
//! arc differs from Karney's geodesic by under 1e-9 of the distance (the unit test checks it)
//! at a twentieth of the cost, which matters at millions of point-cell pairs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use rayon::prelude::*;
use shikong_geodesy::measure::{CGCS2000_A, CGCS2000_INV_F};

use crate::control::Control;
use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, check_points, ecef, geodesic_m};
use crate::limits::{MAX_BANDWIDTH_M, MAX_CELLS, MAX_KDE_PAIRS, MIN_DISTANCE_M};
use crate::mreach::KdTree;

/// A regular longitude/latitude grid, rows from north to south (image order): the centre of the
/// cell in row `r`, column `c` is `(west + (c + ½)·dlon, north − (r + ½)·dlat)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LonLatGrid {
    pub west: f64,
    pub north: f64,
    /// Cell width and height in degrees.
    pub dlon: f64,
    pub dlat: f64,
    pub width: usize,
    pub height: usize,
}

impl LonLatGrid {
    /// The cell centres, row by row from the north.
    pub fn centres(&self) -> Result<Vec<LonLat>> {
        for (what, v) in [("grid dlon (degrees)", self.dlon), ("grid dlat (degrees)", self.dlat)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(AnalysisError::OutOfRange { what, value: v, range: "a positive number of degrees" });
            }
        }
        let cells = self.width.saturating_mul(self.height);
        if cells == 0 {
            return Err(AnalysisError::Empty { what: "grid (width × height)" });
        }
        if cells > MAX_CELLS {
            return Err(AnalysisError::TooMany { what: "grid cells", got: cells, limit: "MAX_CELLS", max: MAX_CELLS });
        }
        let mut out = Vec::with_capacity(cells);
        for r in 0..self.height {
            let lat = self.north - (r as f64 + 0.5) * self.dlat;
            for c in 0..self.width {
                out.push([self.west + (c as f64 + 0.5) * self.dlon, lat]);
            }
        }
        // the corners' centres bound all others
        check_centre(out[0])?;
        check_centre(out[cells - 1])?;
        Ok(out)
    }
}

fn check_centre(p: LonLat) -> Result<()> {
    if !(p[0].is_finite() && (-180.0..=180.0).contains(&p[0])) {
        return Err(AnalysisError::OutOfRange {
            what: "query point (grid cell centre) longitude",
            value: p[0],
            range: "[-180, 180]",
        });
    }
    if !(p[1].is_finite() && (-90.0..=90.0).contains(&p[1])) {
        return Err(AnalysisError::OutOfRange {
            what: "query point (grid cell centre) latitude",
            value: p[1],
            range: "[-90, 90]",
        });
    }
    Ok(())
}

/// Checks the weights: one per point, finite, not negative.
fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<()> {
    let Some(w) = weights else { return Ok(()) };
    if w.len() != n {
        return Err(AnalysisError::LengthMismatch { what: "weights", got: w.len(), expected: n });
    }
    for (index, &v) in w.iter().enumerate() {
        if !v.is_finite() {
            return Err(AnalysisError::NotFinite { what: "weight of point", index, value: v });
        }
        if v < 0.0 {
            return Err(AnalysisError::OutOfRange { what: "a point's weight", value: v, range: "weights >= 0" });
        }
    }
    Ok(())
}

/// The density (per m², see the module docs) at each of `queries`, from `points` with optional
/// `weights` and the bandwidth (search radius) `h` in metres.
pub fn kde_at(points: &[LonLat], weights: Option<&[f64]>, h: f64, queries: &[LonLat]) -> Result<Vec<f64>> {
    kde_at_with(points, weights, h, queries, &Control::NONE)
}

/// [`kde_at`] that stops with [`AnalysisError::Cancelled`] when `ctl` says so (checked every
/// [`crate::control::CHECK_EVERY`] queries).
pub fn kde_at_with(
    points: &[LonLat],
    weights: Option<&[f64]>,
    h: f64,
    queries: &[LonLat],
    ctl: &Control<'_>,
) -> Result<Vec<f64>> {
    check_points(points)?;
    check_weights(weights, points.len())?;
    if !(h.is_finite() && (MIN_DISTANCE_M..=MAX_BANDWIDTH_M).contains(&h)) {
        return Err(AnalysisError::OutOfRange {
            what: "bandwidth (metres)",
            value: h,
            range: "MIN_DISTANCE_M = 0.001 <= bandwidth <= MAX_BANDWIDTH_M = 100000",
        });
    }
    if queries.len() > MAX_CELLS {
        return Err(AnalysisError::TooMany {
            what: "query points (cells)",
            got: queries.len(),
            limit: "MAX_CELLS",
            max: MAX_CELLS,
        });
    }
    for q in queries {
        check_centre(*q)?;
    }
    let tree = KdTree::new(points);
    let scale = 3.0 / (std::f64::consts::PI * h * h);
    let h2 = h * h;
    let visited = AtomicUsize::new(0);
    // set by the first check that finds the control stopped, so the other queries skip too
    let stopped = AtomicBool::new(false);
    let out: Vec<f64> = queries
        .par_iter()
        .enumerate()
        .with_min_len(64)
        .map(|(at, q)| {
            if visited.load(Ordering::Relaxed) > MAX_KDE_PAIRS || stopped.load(Ordering::Relaxed) {
                return 0.0;
            }
            if ctl.every(at).is_err() {
                stopped.store(true, Ordering::Relaxed);
                return 0.0;
            }
            let local = Local::at(*q);
            let mut sum = 0.0;
            let mut pairs = 0usize;
            // the chord is at most the geodesic: every point within h has a chord within h
            tree.within_points(&local.xyz, h2, |j, c2, xyz| {
                pairs += 1;
                let s = local.distance(c2, xyz);
                if s < h {
                    let u = 1.0 - s * s / h2;
                    sum += weights.map_or(1.0, |w| w[j]) * u * u;
                }
            });
            visited.fetch_add(pairs, Ordering::Relaxed);
            sum * scale
        })
        .collect();
    if stopped.into_inner() {
        return Err(AnalysisError::Cancelled);
    }
    let visited = visited.into_inner();
    if visited > MAX_KDE_PAIRS {
        return Err(AnalysisError::TooMany {
            what: "point-cell pairs within the bandwidth",
            got: visited,
            limit: "MAX_KDE_PAIRS",
            max: MAX_KDE_PAIRS,
        });
    }
    Ok(out)
}

/// [`kde_at`] at the centres of `grid`'s cells, row by row from the north.
pub fn kde_grid(points: &[LonLat], weights: Option<&[f64]>, h: f64, grid: &LonLatGrid) -> Result<Vec<f64>> {
    kde_at(points, weights, h, &grid.centres()?)
}

/// [`kde_grid`] that stops with [`AnalysisError::Cancelled`] when `ctl` says so.
pub fn kde_grid_with(
    points: &[LonLat],
    weights: Option<&[f64]>,
    h: f64,
    grid: &LonLatGrid,
    ctl: &Control<'_>,
) -> Result<Vec<f64>> {
    kde_at_with(points, weights, h, &grid.centres()?, ctl)
}

/// A query point's frame: its earth-centred coordinates, local north and east, and the
/// ellipsoid's principal radii of curvature there.
struct Local {
    xyz: [f64; 3],
    north: [f64; 3],
    east: [f64; 3],
    /// 1/M (meridian) and 1/N (prime vertical).
    inv_m: f64,
    inv_n: f64,
}

impl Local {
    fn at(q: LonLat) -> Self {
        let f = 1.0 / CGCS2000_INV_F;
        let e2 = f * (2.0 - f);
        let (sl, cl) = q[0].to_radians().sin_cos();
        let (sp, cp) = q[1].to_radians().sin_cos();
        let w2 = 1.0 - e2 * sp * sp;
        let n = CGCS2000_A / w2.sqrt();
        let m = CGCS2000_A * (1.0 - e2) / (w2 * w2.sqrt());
        Self { xyz: ecef(q), north: [-sp * cl, -sp * sl, cp], east: [-sl, cl, 0.0], inv_m: 1.0 / m, inv_n: 1.0 / n }
    }

    /// The distance to a point at `p` whose squared chord from here is `c2`: the chord as an arc
    /// of the normal section's osculating circle (radius by Euler's formula for the direction).
    fn distance(&self, c2: f64, p: &[f64; 3]) -> f64 {
        if c2 == 0.0 {
            return 0.0;
        }
        let d = [p[0] - self.xyz[0], p[1] - self.xyz[1], p[2] - self.xyz[2]];
        let dn = d[0] * self.north[0] + d[1] * self.north[1] + d[2] * self.north[2];
        let de = d[0] * self.east[0] + d[1] * self.east[1];
        let horizontal = dn * dn + de * de;
        let curvature =
            if horizontal > 0.0 { (dn * dn * self.inv_m + de * de * self.inv_n) / horizontal } else { self.inv_m };
        let c = c2.sqrt();
        // 2R·asin(c / 2R), with R = 1 / curvature, by its series: x = c / 2R is below 0.008
        // within MAX_BANDWIDTH_M, so the terms after x⁶ are below 1e-17 of the distance
        let x2 = (0.5 * c * curvature).powi(2);
        c * (1.0 + x2 * (1.0 / 6.0 + x2 * (3.0 / 40.0 + x2 * (5.0 / 112.0 + x2 * 35.0 / 1152.0))))
    }
}

/// ArcGIS's default search radius ("a spatial variant of Silverman's rule of thumb"):
/// `0.9 · min(SD, √(1/ln 2) · Dm) · n^(−0.2)` metres, where, from the (weighted) mean centre,
/// `SD` is the (weighted) standard distance `√(Σ w·d² / Σ w)` and `Dm` the median distance, and
/// `n` the number of points or, with weights, their sum.
///
/// The mean centre is the (weighted) mean of longitudes and latitudes (a city-sized extent is
/// flat to well below the rule's own precision) and `d` the geodesic distance to it. The median
/// is the usual one without weights (the mean of the two middle distances for an even count) and
/// the lower weighted median with them: the smallest distance at which the cumulative weight
/// reaches half the total.
pub fn silverman_bandwidth(points: &[LonLat], weights: Option<&[f64]>) -> Result<f64> {
    check_points(points)?;
    check_weights(weights, points.len())?;
    let w = |i: usize| weights.map_or(1.0, |w| w[i]);
    let total: f64 = (0..points.len()).map(w).sum();
    if total <= 0.0 {
        return Err(AnalysisError::Degenerate { what: "Silverman bandwidth", why: "the weights sum to zero" });
    }
    let mut centre = [0.0, 0.0];
    for (i, p) in points.iter().enumerate() {
        centre[0] += w(i) * p[0];
        centre[1] += w(i) * p[1];
    }
    let centre = [centre[0] / total, centre[1] / total];
    let mut d: Vec<(f64, f64)> = points.par_iter().enumerate().map(|(i, p)| (geodesic_m(centre, *p), w(i))).collect();
    let sd = (d.iter().map(|(d, w)| w * d * d).sum::<f64>() / total).sqrt();
    d.sort_by(|a, b| a.0.total_cmp(&b.0));
    let median = if weights.is_none() {
        let m = d.len() / 2;
        if d.len() % 2 == 1 { d[m].0 } else { 0.5 * (d[m - 1].0 + d[m].0) }
    } else {
        let mut cumulative = 0.0;
        d.iter()
            .find(|(_, w)| {
                cumulative += w;
                cumulative >= 0.5 * total
            })
            .map_or(0.0, |x| x.0)
    };
    let radius = 0.9 * sd.min((1.0 / std::f64::consts::LN_2).sqrt() * median) * total.powf(-0.2);
    if radius.is_finite() && radius > 0.0 {
        Ok(radius)
    } else {
        Err(AnalysisError::Degenerate {
            what: "Silverman bandwidth",
            why: "the points (half of them, by weight) coincide with their mean centre",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_arc_equals_karney_within_1e9_up_to_the_largest_bandwidth() {
        let mut rng = fastrand::Rng::with_seed(11);
        let mut worst = 0.0f64;
        for _ in 0..20_000 {
            let q = [rng.f64() * 340.0 - 170.0, rng.f64() * 170.0 - 85.0];
            let scale = 10f64.powf(rng.f64() * 3.0 - 3.5); // about 30 m .. 100 km
            let p = [q[0] + (rng.f64() - 0.5) * scale, (q[1] + (rng.f64() - 0.5) * scale).clamp(-89.9, 89.9)];
            let local = Local::at(q);
            let xyz = ecef(p);
            let c2 = (0..3).map(|k| (xyz[k] - local.xyz[k]).powi(2)).sum::<f64>();
            let s = geodesic_m(q, p);
            if !(1.0..=MAX_BANDWIDTH_M).contains(&s) {
                continue;
            }
            let rel = (local.distance(c2, &xyz) - s).abs() / s;
            worst = worst.max(rel);
        }
        assert!(worst < 1e-9, "largest relative difference {worst:e}");
    }

    #[test]
    fn the_surface_integrates_to_the_total_weight() {
        // one point, a 500 m kernel, a grid of 10 m cells around it (about 0.00009° of latitude)
        let p = [114.4, 30.5];
        let (dlat, dlon) = (10.0 / 110_850.0, 10.0 / 95_980.0);
        let grid =
            LonLatGrid { west: p[0] - 60.0 * dlon, north: p[1] + 60.0 * dlat, dlon, dlat, width: 120, height: 120 };
        let d = kde_grid(&[p], Some(&[3.0]), 500.0, &grid).unwrap_or_else(|e| panic!("{e}"));
        let integral: f64 = d.iter().sum::<f64>() * 100.0;
        assert!((integral - 3.0).abs() < 0.02, "integral {integral}");
    }

    #[test]
    fn bounds_are_named() {
        let pts = [[114.4, 30.5]];
        assert!(matches!(kde_at(&pts, None, 0.0, &pts), Err(AnalysisError::OutOfRange { .. })));
        assert!(matches!(kde_at(&pts, Some(&[1.0, 2.0]), 10.0, &pts), Err(AnalysisError::LengthMismatch { .. })));
        assert!(matches!(kde_at(&pts, Some(&[-1.0]), 10.0, &pts), Err(AnalysisError::OutOfRange { .. })));
        let grid = LonLatGrid { west: 114.0, north: 31.0, dlon: 1e-5, dlat: 1e-5, width: 5000, height: 5000 };
        assert!(matches!(kde_grid(&pts, None, 10.0, &grid), Err(AnalysisError::TooMany { limit: "MAX_CELLS", .. })));
        assert!(matches!(
            silverman_bandwidth(&[[114.4, 30.5], [114.4, 30.5]], None),
            Err(AnalysisError::Degenerate { .. })
        ));
    }
}
