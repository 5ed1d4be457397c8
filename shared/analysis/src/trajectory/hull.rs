//! The "minimum rotated rectangle diagonal" of MovingPandas' stop detector, computed as GEOS
//! 3.12+ computes it, so the stop decisions are MovingPandas' own.
//!
//! MovingPandas (`geometry_utils.mrr_diagonal`) asks shapely for
//! `MultiPoint(window).minimum_rotated_rectangle` (GEOS `MinimumAreaRectangle`, planar, on the
//! raw lon/lat degrees) and measures the geodesic between the rectangle's corners 0 and 2. The
//! degree plane is not isotropic (a degree of longitude is ~14% shorter than one of latitude in
//! Wuhan), so the two diagonals of the same rectangle have different lengths in metres and the
//! corner numbering matters: this module reproduces GEOS' convex hull ring (clockwise, starting
//! at the lowest, then leftmost, vertex, collinear points removed), its rotating calipers (same
//! scan order, same tie rules) and `Rectangle::createFromSidePts` (same corner order).
//!
//! The hull is kept as its vertex set: the hull of a window grown by one fix is the hull of the
//! old vertices and the new fix, and a fix inside the hull leaves ring, rectangle and diagonal
//! unchanged — so a long stop costs O(hull) per fix instead of a new hull of the whole window.

use robust::{Coord, orient2d};

/// A point of the degree plane, `[lon, lat]`.
pub(crate) type Xy = [f64; 2];

/// Orientation of `p` relative to the line `a -> b`: 1 left (counter-clockwise), -1 right, 0
/// collinear, with an exact sign (GEOS' `Orientation::index` is exact in practice, by
/// double-double arithmetic).
fn orient(a: Xy, b: Xy, p: Xy) -> i32 {
    let d = orient2d(Coord { x: a[0], y: a[1] }, Coord { x: b[0], y: b[1] }, Coord { x: p[0], y: p[1] });
    if d > 0.0 {
        1
    } else if d < 0.0 {
        -1
    } else {
        0
    }
}

/// What GEOS' minimum rectangle of a point set is, up to the diagonal MovingPandas measures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Rect {
    /// All points coincide: MovingPandas measures 0.
    Point,
    /// All points collinear: the line between its extreme points (min and max x, or y when
    /// vertical).
    Line(Xy, Xy),
    /// Corners 0 and 2 of the rectangle.
    Diagonal(Xy, Xy),
}

/// The convex hull of a point set as GEOS' `ConvexHull` returns it: strict vertices only,
/// clockwise, starting at the vertex with the lowest y (then lowest x). One vertex for
/// coincident points, two (the extremes) for collinear ones.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hull {
    ring: Vec<Xy>,
}

impl Hull {
    /// The hull of `points` (any order, duplicates allowed); `scratch` is reused storage.
    pub(crate) fn of(points: impl IntoIterator<Item = Xy>, scratch: &mut Vec<Xy>) -> Self {
        scratch.clear();
        scratch.extend(points);
        let mut hull = Self::default();
        hull.rebuild(scratch);
        hull
    }

    /// Whether `p` lies inside the hull or on its boundary: then the hull of the set with `p`
    /// added is the same ring.
    pub(crate) fn covers(&self, p: Xy) -> bool {
        match self.ring.len() {
            0 => false,
            1 => self.ring[0] == p,
            2 => {
                let (a, b) = (self.ring[0], self.ring[1]);
                orient(a, b, p) == 0
                    && a[0].min(b[0]) <= p[0]
                    && p[0] <= a[0].max(b[0])
                    && a[1].min(b[1]) <= p[1]
                    && p[1] <= a[1].max(b[1])
            }
            n => (0..n).all(|i| orient(self.ring[i], self.ring[(i + 1) % n], p) <= 0),
        }
    }

    /// Adds `p` (recomputing the hull from the vertices and `p` unless `p` is covered).
    pub(crate) fn add(&mut self, p: Xy, scratch: &mut Vec<Xy>) -> bool {
        if self.covers(p) {
            return false;
        }
        scratch.clear();
        scratch.extend_from_slice(&self.ring);
        scratch.push(p);
        self.rebuild(scratch);
        true
    }

    /// Andrew's monotone chain with exact orientation (strict turns only), then turned into
    /// GEOS' ring order: the vertex set of a convex hull is unique, so this equals the ring of
    /// GEOS' Graham scan after its `cleanRing`.
    fn rebuild(&mut self, pts: &mut Vec<Xy>) {
        pts.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
        pts.dedup();
        self.ring.clear();
        if pts.len() <= 2 {
            self.ring.extend_from_slice(pts);
            return;
        }
        // lower chain left to right, then upper chain right to left: counter-clockwise
        let mut h: Vec<Xy> = Vec::with_capacity(pts.len() + 1);
        for &p in pts.iter() {
            while h.len() >= 2 && orient(h[h.len() - 2], h[h.len() - 1], p) <= 0 {
                h.pop();
            }
            h.push(p);
        }
        let lower = h.len() + 1;
        for &p in pts.iter().rev().skip(1) {
            while h.len() >= lower && orient(h[h.len() - 2], h[h.len() - 1], p) <= 0 {
                h.pop();
            }
            h.push(p);
        }
        h.pop(); // the first point again
        if h.len() == 2 {
            // collinear: the two extremes (GEOS' LineString)
            self.ring = h;
            return;
        }
        // clockwise from the lowest-then-leftmost vertex
        h.reverse();
        let start = (0..h.len()).min_by(|&i, &j| h[i][1].total_cmp(&h[j][1]).then(h[i][0].total_cmp(&h[j][0])));
        h.rotate_left(start.unwrap_or(0));
        self.ring = h;
    }

    /// GEOS' `MinimumAreaRectangle` of the hull.
    pub(crate) fn rectangle(&self) -> Rect {
        match self.ring.len() {
            0 | 1 => Rect::Point,
            2 => maximum_line(&self.ring),
            _ => convex_ring_rectangle(&self.ring),
        }
    }
}

/// GEOS' `computeMaximumLine`: the points of minimum and maximum x (first met), or of y when
/// those coincide in x.
fn maximum_line(pts: &[Xy]) -> Rect {
    let (mut min_x, mut max_x, mut min_y, mut max_y) = (pts[0], pts[0], pts[0], pts[0]);
    for &p in &pts[1..] {
        if p[0] < min_x[0] {
            min_x = p;
        }
        if p[0] > max_x[0] {
            max_x = p;
        }
        if p[1] < min_y[1] {
            min_y = p;
        }
        if p[1] > max_y[1] {
            max_y = p;
        }
    }
    if min_x[0] == max_x[0] { Rect::Line(min_y, max_y) } else { Rect::Line(min_x, max_x) }
}

fn dist(a: Xy, b: Xy) -> f64 {
    let (dx, dy) = (a[0] - b[0], a[1] - b[1]);
    (dx * dx + dy * dy).sqrt()
}

/// GEOS' `LineSegment::project`.
fn project(p0: Xy, p1: Xy, q: Xy) -> Xy {
    if q == p0 || q == p1 {
        return q;
    }
    let r = if p0 == p1 {
        0.0
    } else {
        let (dx, dy) = (p1[0] - p0[0], p1[1] - p0[1]);
        ((q[0] - p0[0]) * dx + (q[1] - p0[1]) * dy) / (dx * dx + dy * dy)
    };
    [p0[0] + r * (p1[0] - p0[0]), p0[1] + r * (p1[1] - p0[1])]
}

/// GEOS' `Distance::pointToLinePerpendicular` (or the point distance for a degenerate line).
fn perpendicular(p: Xy, a: Xy, b: Xy) -> f64 {
    if a == b {
        return dist(a, p);
    }
    let len2 = (b[0] - a[0]) * (b[0] - a[0]) + (b[1] - a[1]) * (b[1] - a[1]);
    let s = ((a[1] - p[1]) * (b[0] - a[0]) - (a[0] - p[0]) * (b[1] - a[1])) / len2;
    s.abs() * len2.sqrt()
}

/// GEOS' `MinimumAreaRectangle::orientedDistance` (0: unsigned, 1 / -1: signed).
fn oriented_distance(seg: (Xy, Xy), p: Xy, orient_kind: i32) -> f64 {
    let d = if seg.0 == seg.1 {
        dist(seg.0, p)
    } else {
        let d = perpendicular(p, seg.0, seg.1);
        if orient(seg.0, seg.1, p) < 0 { -d } else { d }
    };
    if orient_kind == 0 { d.abs() } else { d }
}

fn further_or_equal(d1: f64, d2: f64, orient_kind: i32) -> bool {
    match orient_kind {
        0 => d1.abs() >= d2.abs(),
        1 => d1 >= d2,
        _ => d1 <= d2,
    }
}

/// GEOS' `findFurthestVertex` on a ring of `n` distinct vertices (GEOS' closed ring has n + 1).
fn furthest_vertex(ring: &[Xy], seg: (Xy, Xy), start: usize, orient_kind: i32) -> usize {
    let n = ring.len();
    let mut max_d = oriented_distance(seg, ring[start], orient_kind);
    let mut next_d = max_d;
    let (mut max_i, mut next_i) = (start, start);
    while further_or_equal(next_d, max_d, orient_kind) {
        max_d = next_d;
        max_i = next_i;
        next_i = if max_i + 1 >= n { 0 } else { max_i + 1 };
        if next_i == start {
            break;
        }
        next_d = oriented_distance(seg, ring[next_i], orient_kind);
    }
    max_i
}

/// GEOS' `computeConvexRing` followed by `Rectangle::createFromSidePts`, returning corners 0
/// and 2.
fn convex_ring_rectangle(ring: &[Xy]) -> Rect {
    let n = ring.len();
    let mut best = (f64::MAX, 0usize, 0usize, 0usize, 0usize);
    let (mut diam_i, mut left_i, mut right_i) = (1usize, 1usize, 0usize);
    for i in 0..n {
        let base = (ring[i], ring[(i + 1) % n]);
        diam_i = furthest_vertex(ring, base, diam_i, 0);
        let diam_pt = ring[diam_i];
        let seg_diam = (project(base.0, base.1, diam_pt), diam_pt);
        left_i = furthest_vertex(ring, seg_diam, left_i, 1);
        if i == 0 {
            right_i = diam_i;
        }
        right_i = furthest_vertex(ring, seg_diam, right_i, -1);
        let width =
            perpendicular(ring[left_i], seg_diam.0, seg_diam.1) + perpendicular(ring[right_i], seg_diam.0, seg_diam.1);
        let area = dist(seg_diam.0, seg_diam.1) * width;
        if area < best.0 {
            best = (area, i, diam_i, left_i, right_i);
        }
    }
    let (_, b, d, l, r) = best;
    let (base_right, base_left, opposite, left_pt, right_pt) = (ring[b], ring[(b + 1) % n], ring[d], ring[l], ring[r]);
    let (dx, dy) = (base_left[0] - base_right[0], base_left[1] - base_right[1]);
    let c = |a: f64, b: f64, p: Xy| a * p[1] - b * p[0];
    let (base_c, opp_c) = (c(dx, dy, base_right), c(dx, dy, opposite));
    let (left_c, right_c) = (c(-dy, dx, left_pt), c(-dy, dx, right_pt));
    let base_line = standard_line(-dy, dx, base_c);
    let opp_line = standard_line(-dy, dx, opp_c);
    let left_line = standard_line(-dx, -dy, left_c);
    let right_line = standard_line(-dx, -dy, right_c);
    let p0 = if right_pt == base_right { base_right } else { line_intersection(base_line, right_line) };
    let p2 = if left_pt == opposite { opposite } else { line_intersection(opp_line, left_line) };
    Rect::Diagonal(p0, p2)
}

/// GEOS' `Rectangle::createLineForStandardEquation`: two points of the line `ax + by = c`.
fn standard_line(a: f64, b: f64, c: f64) -> (Xy, Xy) {
    if b.abs() > a.abs() { ([0.0, c / b], [1.0, c / b - a / b]) } else { ([c / a, 0.0], [c / a - b / a, 1.0]) }
}

/// The intersection of two lines. GEOS computes it in double-double; here in doubles, with the
/// points first moved next to the origin (the lines' defining points are at x = 0 and 1, far
/// from lon 114), which keeps the error to about 1e-12 degree, 0.1 µm on the ground: the
/// diagonal could only decide a stop differently at that distance from `max_diameter`.
fn line_intersection(p: (Xy, Xy), q: (Xy, Xy)) -> Xy {
    let mx = (p.0[0] + p.1[0] + q.0[0] + q.1[0]) / 4.0;
    let my = (p.0[1] + p.1[1] + q.0[1] + q.1[1]) / 4.0;
    let (p1, p2, q1, q2) = (
        [p.0[0] - mx, p.0[1] - my],
        [p.1[0] - mx, p.1[1] - my],
        [q.0[0] - mx, q.0[1] - my],
        [q.1[0] - mx, q.1[1] - my],
    );
    let (px, py, pw) = (p1[1] - p2[1], p2[0] - p1[0], p1[0] * p2[1] - p2[0] * p1[1]);
    let (qx, qy, qw) = (q1[1] - q2[1], q2[0] - q1[0], q1[0] * q2[1] - q2[0] * q1[1]);
    let (x, y, w) = (py * qw - qy * pw, qx * pw - px * qw, px * qy - qx * py);
    [x / w + mx, y / w + my]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hull_ring_is_clockwise_from_the_lowest_vertex_without_collinear_points() {
        let pts = [[0.0, 0.0], [2.0, 0.0], [1.0, 0.0], [2.0, 2.0], [0.0, 2.0], [1.0, 1.0], [0.0, 1.0]];
        let h = Hull::of(pts, &mut Vec::new());
        assert_eq!(h.ring, vec![[0.0, 0.0], [0.0, 2.0], [2.0, 2.0], [2.0, 0.0]]);
        assert!(h.covers([1.0, 0.0]) && h.covers([1.5, 1.5]) && !h.covers([2.1, 1.0]));
    }

    #[test]
    fn degenerate_sets_give_a_point_or_the_extreme_line() {
        let mut s = Vec::new();
        assert_eq!(Hull::of([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]], &mut s).rectangle(), Rect::Point);
        let line = Hull::of([[1.0, 1.0], [3.0, 3.0], [2.0, 2.0]], &mut s).rectangle();
        assert_eq!(line, Rect::Line([1.0, 1.0], [3.0, 3.0]));
    }

    #[test]
    fn an_axis_aligned_rectangle_is_its_own_minimum_rectangle() {
        // GEOS: base edge 0 -> 1 of the clockwise ring (0,0) (0,1) (2,1) (2,0)
        let h = Hull::of([[0.0, 0.0], [2.0, 0.0], [2.0, 1.0], [0.0, 1.0], [1.0, 0.5]], &mut Vec::new());
        match h.rectangle() {
            Rect::Diagonal(a, b) => {
                assert!(dist(a, b) - 5f64.sqrt() < 1e-12, "{a:?} {b:?}");
            }
            other => panic!("{other:?}"),
        }
    }
    /// Corners 0 and 2 of shapely's `minimum_rotated_rectangle` (GEOS 3.14) of point clouds
    /// shaped like stop windows, from `make_trajectory_reference.py`.
    #[test]
    fn rectangles_equal_shapelys_minimum_rotated_rectangle() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/analysis/trajectory.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let f: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        let xy = |v: &serde_json::Value| [v[0].as_f64().unwrap_or(f64::NAN), v[1].as_f64().unwrap_or(f64::NAN)];
        let cases = f["rectangles"].as_array().map_or(&[][..], |v| v.as_slice());
        assert!(cases.len() > 50);
        for (i, case) in cases.iter().enumerate() {
            let pts: Vec<Xy> = case["points"].as_array().map_or(vec![], |v| v.iter().map(xy).collect());
            let got = Hull::of(pts.iter().copied(), &mut Vec::new()).rectangle();
            let (p0, p2) = (xy(&case["p0"]), xy(&case["p2"]));
            match (case["kind"].as_str(), got) {
                (Some("point"), Rect::Point) => {}
                (Some("line"), Rect::Line(a, b)) => assert_eq!((a, b), (p0, p2), "cloud {i}"),
                (Some("rect"), Rect::Diagonal(a, b)) => {
                    let off = dist(a, p0).max(dist(b, p2));
                    assert!(off < 1e-12, "cloud {i}: corners {a:?} {b:?}, shapely {p0:?} {p2:?}");
                }
                (kind, got) => panic!("cloud {i}: {got:?}, shapely {kind:?}"),
            }
        }
    }
}
