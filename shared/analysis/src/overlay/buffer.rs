//! Buffers in metres around lon/lat geometries: points by geodesic circles, lines and polygons
//! in a transverse Mercator plane centred on each feature.
//!
//! Why two ways: a point's buffer is the geodesic circle, and Karney's direct solution puts every
//! vertex at exactly the distance (to nanometres), with no projection at all. Lines and polygons
//! need a plane where offsets are in metres: each feature is projected with [`super::tm`] on a
//! central meridian through the middle of its own longitude span, buffered there by `geo`'s
//! `Buffer` (`i_overlay`'s offsetting, round joins and caps), and projected back. Centring on the
//! feature rather than on its 3° Gauss-Krüger zone keeps the projection's scale error at
//! `k − 1 ≈ x² / 2R²`, with `x` the east-west distance from the feature's middle: for a 10 km
//! feature with a 1 km buffer, about 1e-6 (1 mm per km of buffer); with the zone's own meridian it
//! would reach 3e-4 at the zone edge (30 cm on a 1 km buffer). [`limits::MAX_BUFFER_SPAN_DEG`]
//! and [`limits::MAX_BUFFER_M`] bound the worst case (about 1e-3).
//!
//! Round parts are polygons inscribed in the circle, `quadrant_segments` segments per quarter
//! (PostGIS' `quad_segs`, default 8 as there), so a buffer's area falls short of the exact one by
//! at most `1 − sin(2θ)/(2θ)` of the round parts' area, `θ = 90° / quadrant_segments` (0.64 % at 8).
//!
//! Negative distances shrink polygons (a polygon narrower than twice the distance vanishes);
//! points and lines have no inside, so their negative buffer is empty, as in PostGIS.

use std::f64::consts::FRAC_PI_2;

use geo::algorithm::buffer::{Buffer, BufferStyle, LineCap, LineJoin};
use geo::orient::{Direction, Orient};
use geo::{LineString, MapCoords, MultiPolygon, Polygon};
use geographiclib_rs::DirectGeodesic;
use rayon::prelude::*;
use shikong_geodesy::measure::cgcs2000;
use shikong_model::{Coord, Geometry};

use super::tm::TransverseMercator;
use super::{Areal, areal, check_layer, limits};
use crate::error::{AnalysisError, Result};

/// How far and how round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BufferOptions {
    /// Metres; negative shrinks polygons. `MIN_BUFFER_M ≤ |d| ≤ MAX_BUFFER_M`.
    pub distance_m: f64,
    /// Segments per quarter circle, 1 to [`limits::MAX_QUADRANT_SEGMENTS`].
    pub quadrant_segments: u32,
}

impl BufferOptions {
    /// `distance_m` with PostGIS' default roundness (8 segments per quarter circle).
    pub fn new(distance_m: f64) -> Self {
        Self { distance_m, quadrant_segments: 8 }
    }

    fn check(&self) -> Result<()> {
        let d = self.distance_m;
        if !d.is_finite() || !(limits::MIN_BUFFER_M..=limits::MAX_BUFFER_M).contains(&d.abs()) {
            return Err(AnalysisError::OutOfRange {
                what: "buffer distance_m",
                value: d,
                range: "MIN_BUFFER_M = 0.001 ≤ |d| ≤ MAX_BUFFER_M = 100000",
            });
        }
        if !(1..=limits::MAX_QUADRANT_SEGMENTS).contains(&self.quadrant_segments) {
            return Err(AnalysisError::OutOfRange {
                what: "buffer quadrant_segments",
                value: f64::from(self.quadrant_segments),
                range: "1 ≤ segments ≤ MAX_QUADRANT_SEGMENTS = 90",
            });
        }
        Ok(())
    }
}

/// The buffer of one geometry: see the module docs. `None` when it is empty (a negative
/// distance that erases the polygon, or any negative distance on points and lines).
pub fn buffer(geometry: &Geometry, options: &BufferOptions) -> Result<Option<Areal>> {
    Ok(buffer_layer(std::slice::from_ref(geometry), options)?.pop().flatten())
}

/// The buffer of each feature of a layer (in parallel), in the layer's order. To merge them,
/// pass the results' geometries to [`super::union_all`].
pub fn buffer_layer(layer: &[Geometry], options: &BufferOptions) -> Result<Vec<Option<Areal>>> {
    options.check()?;
    let mut vertices = 0;
    check_layer("feature", layer, &mut vertices)?;
    let per_vertex = 2 * options.quadrant_segments as usize + 2;
    if vertices.saturating_mul(per_vertex) > limits::MAX_BUFFER_VERTICES {
        return Err(AnalysisError::TooMany {
            what: "buffer vertices (input vertices × (2 × quadrant_segments + 2))",
            got: vertices.saturating_mul(per_vertex),
            limit: "overlay::limits::MAX_BUFFER_VERTICES",
            max: limits::MAX_BUFFER_VERTICES,
        });
    }
    for (index, g) in layer.iter().enumerate() {
        check_extent(index, g)?;
    }
    Ok(layer.par_iter().map(|g| buffer_one(g, options)).collect())
}

fn check_extent(index: usize, g: &Geometry) -> Result<()> {
    let bad = |why: String| AnalysisError::BadGeometry { what: "feature", index, why };
    let Some(b) = g.bbox() else { return Ok(()) };
    let lat = b.max_y.abs().max(b.min_y.abs());
    if lat > limits::MAX_BUFFER_LATITUDE {
        return Err(bad(format!("latitude {lat}° is beyond MAX_BUFFER_LATITUDE = 84° (no buffer near the poles)")));
    }
    if b.max_x - b.min_x > limits::MAX_BUFFER_SPAN_DEG {
        return Err(bad(format!(
            "spans {}° of longitude, more than MAX_BUFFER_SPAN_DEG = 3° (split it to buffer it)",
            b.max_x - b.min_x
        )));
    }
    Ok(())
}

fn buffer_one(g: &Geometry, o: &BufferOptions) -> Option<Areal> {
    let d = o.distance_m;
    match g {
        Geometry::Point(c) if d > 0.0 => areal(MultiPolygon(vec![geodesic_circle(c, o)])),
        Geometry::MultiPoint(cs) if d > 0.0 => {
            let circles: Vec<Polygon<f64>> = cs.iter().map(|c| geodesic_circle(c, o)).collect();
            areal(super::ops::union_of(&[MultiPolygon(circles)]))
        }
        Geometry::Point(_) | Geometry::MultiPoint(_) => None,
        Geometry::LineString(_) | Geometry::MultiLineString(_) if d < 0.0 => None,
        _ => {
            let b = g.bbox()?;
            let tm = TransverseMercator::centred((b.min_x + b.max_x) / 2.0);
            let plane = g.to_geo().map_coords(|c| {
                let [x, y] = tm.forward([c.x, c.y]);
                geo::coord! { x: x, y: y }
            });
            let step = FRAC_PI_2 / f64::from(o.quadrant_segments);
            // A hair over the step, so that a quarter turn gets exactly `quadrant_segments`
            // segments despite rounding (i_overlay takes floor(turn / step)).
            let style = BufferStyle::new(d)
                .line_join(LineJoin::Round(step * (1.0 - 1e-9)))
                .line_cap(LineCap::Round(step * (1.0 - 1e-9)));
            let out = plane.buffer_with_style(style).orient(Direction::Default);
            areal(out.map_coords(|c| {
                let [lon, lat] = tm.inverse([c.x, c.y]);
                geo::coord! { x: lon, y: lat }
            }))
        }
    }
}

/// The polygon whose vertices lie at geodesic distance `d` from `c`, at azimuths `k × θ` from
/// north, counter-clockwise in lon/lat.
fn geodesic_circle(c: &Coord, o: &BufferOptions) -> Polygon<f64> {
    let n = 4 * o.quadrant_segments as usize;
    let mut ring: Vec<geo::Coord<f64>> = (0..n)
        .rev()
        .map(|k| {
            let azi = 360.0 * k as f64 / n as f64;
            let (lat, lon): (f64, f64) = cgcs2000().direct(c.y, c.x, azi, o.distance_m);
            geo::coord! { x: lon, y: lat }
        })
        .collect();
    ring.push(ring[0]);
    Polygon::new(LineString(ring), vec![])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_bound() {
        let p = Geometry::Point(Coord::xy(114.3, 30.5));
        let e = buffer(&p, &BufferOptions::new(2e5)).unwrap_err().to_string();
        assert!(e.contains("MAX_BUFFER_M"), "{e}");
        let e = buffer(&p, &BufferOptions { distance_m: 10.0, quadrant_segments: 0 }).unwrap_err().to_string();
        assert!(e.contains("quadrant_segments"), "{e}");
        let wide = Geometry::LineString(vec![Coord::xy(110.0, 30.0), Coord::xy(114.0, 30.0)]);
        let e = buffer(&wide, &BufferOptions::new(10.0)).unwrap_err().to_string();
        assert!(e.contains("MAX_BUFFER_SPAN_DEG"), "{e}");
        let polar = Geometry::Point(Coord::xy(114.0, 85.0));
        let e = buffer(&polar, &BufferOptions::new(10.0)).unwrap_err().to_string();
        assert!(e.contains("MAX_BUFFER_LATITUDE"), "{e}");
    }

    #[test]
    fn negative_buffers_of_points_and_lines_are_empty() {
        let o = BufferOptions::new(-5.0);
        assert_eq!(buffer(&Geometry::Point(Coord::xy(114.3, 30.5)), &o).unwrap(), None);
        let l = Geometry::LineString(vec![Coord::xy(114.0, 30.0), Coord::xy(114.01, 30.0)]);
        assert_eq!(buffer(&l, &o).unwrap(), None);
    }
}
