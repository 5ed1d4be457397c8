//! Whether a patrol covered its assigned grid: which cells the track passed through or came
//! within a buffer of.
//!
//! The track is its legs — the straight pieces between consecutive fixes of each segment (a
//! gap's two sides are not joined; a one-fix segment is a point) — so a leg crossing a cell
//! covers it even with no fix inside. A cell is covered when the distance between a leg and the
//! cell (its interior and boundary) is at most `buffer_m` (0: the leg touches the cell). All of
//! it is planar geometry in the local plane of [`super::local`] around the track and the cells,
//! which is affine in lon/lat: legs and grid cells are straight and rectangular as in lon/lat.
//!
//! Candidate cells come from an R-tree of the cells' boxes grown by the buffer; each candidate
//! pair costs one exact test, and the pairs visited are bounded by
//! [`crate::limits::MAX_PAIRS_VISITED`].

use std::ops::Range;

use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};

use super::Track;
use super::limits::{MAX_BUFFER_M, MAX_CELL_VERTICES, MAX_CELLS};
use super::local::{Local, point_segment};
use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, check_points};
use crate::limits::MAX_PAIRS_VISITED;

/// A regular lon/lat grid: `nx` columns of `dlon` degrees east of `lon0`, `ny` rows of `dlat`
/// north of `lat0`; cell `row * nx + col`, row 0 the southernmost.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridSpec {
    pub lon0: f64,
    pub lat0: f64,
    pub dlon: f64,
    pub dlat: f64,
    pub nx: usize,
    pub ny: usize,
}

/// The cells to cover.
#[derive(Debug, Clone, PartialEq)]
pub enum Cells {
    /// Polygons without holes, each an outer ring of `[lon, lat]` (at least 3 distinct
    /// vertices; closing it by repeating the first vertex is optional).
    Polygons(Vec<Vec<LonLat>>),
    Grid(GridSpec),
}

/// The answer: per cell whether it was covered, and the summary.
#[derive(Debug, Clone, PartialEq)]
pub struct Coverage {
    pub covered: Vec<bool>,
    pub covered_count: usize,
    /// `covered_count / cells`.
    pub fraction: f64,
    /// Indices of the cells not covered, increasing.
    pub uncovered: Vec<usize>,
}

fn rings(cells: &Cells) -> Result<Vec<Vec<LonLat>>> {
    match cells {
        Cells::Polygons(p) => {
            if p.is_empty() {
                return Err(AnalysisError::Empty { what: "cells" });
            }
            if p.len() > MAX_CELLS {
                return Err(AnalysisError::TooMany { what: "cells", got: p.len(), limit: "MAX_CELLS", max: MAX_CELLS });
            }
            let vertices: usize = p.iter().map(Vec::len).sum();
            if vertices > MAX_CELL_VERTICES {
                let limit = "MAX_CELL_VERTICES";
                return Err(AnalysisError::TooMany {
                    what: "vertices of the cells",
                    got: vertices,
                    limit,
                    max: MAX_CELL_VERTICES,
                });
            }
            for ring in p {
                check_points(ring)?;
                let mut distinct = ring.clone();
                distinct.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
                distinct.dedup();
                if distinct.len() < 3 {
                    return Err(AnalysisError::Degenerate { what: "cell ring", why: "fewer than 3 distinct vertices" });
                }
            }
            Ok(p.clone())
        }
        Cells::Grid(g) => {
            let n = g.nx.saturating_mul(g.ny);
            if n == 0 {
                return Err(AnalysisError::Empty { what: "grid cells (nx * ny)" });
            }
            if n > MAX_CELLS {
                return Err(AnalysisError::TooMany {
                    what: "grid cells (nx * ny)",
                    got: n,
                    limit: "MAX_CELLS",
                    max: MAX_CELLS,
                });
            }
            for (what, v, max) in [("grid dlon", g.dlon, 360.0), ("grid dlat", g.dlat, 180.0)] {
                if !(v.is_finite() && v > 0.0 && v <= max) {
                    return Err(AnalysisError::OutOfRange {
                        what,
                        value: v,
                        range: "0 < step <= 360 (dlon) or 180 (dlat)",
                    });
                }
            }
            let corner = |c: usize, r: usize| [g.lon0 + c as f64 * g.dlon, g.lat0 + r as f64 * g.dlat];
            check_points(&[corner(0, 0), corner(g.nx, g.ny)])?;
            let mut out = Vec::with_capacity(n);
            for r in 0..g.ny {
                for c in 0..g.nx {
                    out.push(vec![corner(c, r), corner(c + 1, r), corner(c + 1, r + 1), corner(c, r + 1)]);
                }
            }
            Ok(out)
        }
    }
}

/// Cells of `cells` covered by the legs of `segments` of the track, within `buffer_m` (in `[0,
/// MAX_BUFFER_M]`). Refuses a region (track and cells) wider than
/// [`super::limits::MAX_LOCAL_EXTENT_M`].
pub fn coverage(cells: &Cells, track: &Track, segments: &[Range<usize>], buffer_m: f64) -> Result<Coverage> {
    if !(buffer_m.is_finite() && (0.0..=MAX_BUFFER_M).contains(&buffer_m)) {
        return Err(AnalysisError::OutOfRange {
            what: "buffer_m",
            value: buffer_m,
            range: "0 <= m <= MAX_BUFFER_M = 10000",
        });
    }
    if segments.is_empty() {
        return Err(AnalysisError::Empty { what: "track segments" });
    }
    for s in segments {
        track.segment(s)?;
    }
    let rings = rings(cells)?;
    let fixes = track.fixes();
    let used = segments.iter().flat_map(|s| fixes[s.clone()].iter().map(|f| f.lon_lat()));
    let local = Local::around("region of track and cells", used.chain(rings.iter().flatten().copied()))?;
    let polys: Vec<Vec<[f64; 2]>> = rings.iter().map(|r| r.iter().map(|p| local.xy(*p)).collect()).collect();
    let boxes = polys
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (mut lo, mut hi) = ([f64::INFINITY; 2], [f64::NEG_INFINITY; 2]);
            for v in p {
                lo = [lo[0].min(v[0]), lo[1].min(v[1])];
                hi = [hi[0].max(v[0]), hi[1].max(v[1])];
            }
            let grow = buffer_m + 1e-9;
            let rect = Rectangle::from_corners([lo[0] - grow, lo[1] - grow], [hi[0] + grow, hi[1] + grow]);
            GeomWithData::new(rect, i)
        })
        .collect();
    let tree: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>> = RTree::bulk_load(boxes);
    let mut covered = vec![false; polys.len()];
    let mut visited = 0usize;
    for s in segments {
        let xy: Vec<[f64; 2]> = fixes[s.clone()].iter().map(|f| local.xy(f.lon_lat())).collect();
        let legs: Vec<([f64; 2], [f64; 2])> =
            if xy.len() == 1 { vec![(xy[0], xy[0])] } else { xy.windows(2).map(|w| (w[0], w[1])).collect() };
        for (a, b) in legs {
            let env = AABB::from_corners([a[0].min(b[0]), a[1].min(b[1])], [a[0].max(b[0]), a[1].max(b[1])]);
            for cell in tree.locate_in_envelope_intersecting(env) {
                visited += 1;
                let i = cell.data;
                if !covered[i] && leg_near_polygon(a, b, &polys[i], buffer_m) {
                    covered[i] = true;
                }
            }
            if visited > MAX_PAIRS_VISITED {
                let limit = "MAX_PAIRS_VISITED";
                return Err(AnalysisError::TooMany {
                    what: "leg-cell pairs tested",
                    got: visited,
                    limit,
                    max: MAX_PAIRS_VISITED,
                });
            }
        }
    }
    let covered_count = covered.iter().filter(|c| **c).count();
    let uncovered = covered.iter().enumerate().filter(|(_, c)| !**c).map(|(i, _)| i).collect();
    Ok(Coverage { fraction: covered_count as f64 / covered.len() as f64, covered_count, uncovered, covered })
}

/// Whether the segment `a b` comes within `buffer` of the polygon (interior or boundary).
fn leg_near_polygon(a: [f64; 2], b: [f64; 2], poly: &[[f64; 2]], buffer: f64) -> bool {
    if inside(a, poly) {
        return true;
    }
    let n = poly.len();
    (0..n).any(|i| segment_distance(a, b, poly[i], poly[(i + 1) % n]) <= buffer)
}

/// Even-odd rule (boundary points are caught by the edge distances).
fn inside(p: [f64; 2], poly: &[[f64; 2]]) -> bool {
    let mut inside = false;
    let n = poly.len();
    for i in 0..n {
        let (u, v) = (poly[i], poly[(i + 1) % n]);
        if (u[1] > p[1]) != (v[1] > p[1]) && p[0] < u[0] + (p[1] - u[1]) / (v[1] - u[1]) * (v[0] - u[0]) {
            inside = !inside;
        }
    }
    inside
}

fn orient(a: [f64; 2], b: [f64; 2], p: [f64; 2]) -> f64 {
    robust::orient2d(
        robust::Coord { x: a[0], y: a[1] },
        robust::Coord { x: b[0], y: b[1] },
        robust::Coord { x: p[0], y: p[1] },
    )
}

/// The distance between two segments: 0 when they cross or touch.
fn segment_distance(a: [f64; 2], b: [f64; 2], c: [f64; 2], d: [f64; 2]) -> f64 {
    let (o1, o2, o3, o4) = (orient(a, b, c), orient(a, b, d), orient(c, d, a), orient(c, d, b));
    if o1 * o2 < 0.0 && o3 * o4 < 0.0 {
        return 0.0;
    }
    point_segment(a, c, d).min(point_segment(b, c, d)).min(point_segment(c, a, b)).min(point_segment(d, a, b))
}
