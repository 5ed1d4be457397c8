//! Clipping to a tile's buffered square, in tile pixel space.
//!
//! Why hand-written: the clip region is always an axis-aligned rectangle, for which Liang–Barsky
//! (lines) and Sutherland–Hodgman (rings) are exact, allocation-light and a few dozen lines each,
//! while general polygon boolean operations (`geo`'s `BooleanOps`) are one to two orders of
//! magnitude slower. Sutherland–Hodgman may leave zero-width slivers along the clip border where a
//! concave ring leaves and re-enters the square; they lie in the buffer outside the visible tile,
//! which is why vector tiles carry a buffer (PostGIS's `ST_AsMVTGeom` behaves alike).

/// A point in tile pixel space.
pub type Pt = (f64, f64);

/// An axis-aligned clip rectangle.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipBox {
    pub min: f64,
    pub max: f64,
}

impl ClipBox {
    #[inline]
    pub fn contains(&self, p: Pt) -> bool {
        p.0 >= self.min && p.0 <= self.max && p.1 >= self.min && p.1 <= self.max
    }

    /// Whether the envelope of `pts` meets the box.
    pub fn meets(&self, pts: &[Pt]) -> bool {
        let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
        for &(x, y) in pts {
            x0 = x0.min(x);
            y0 = y0.min(y);
            x1 = x1.max(x);
            y1 = y1.max(y);
        }
        x0 <= self.max && x1 >= self.min && y0 <= self.max && y1 >= self.min
    }

    /// Whether every point of `pts` is inside.
    pub fn holds(&self, pts: &[Pt]) -> bool {
        pts.iter().all(|p| self.contains(*p))
    }
}

/// Clips a polyline; each maximal inside stretch becomes one part.
pub fn clip_line(line: &[Pt], b: ClipBox) -> Vec<Vec<Pt>> {
    if b.holds(line) {
        return vec![line.to_vec()];
    }
    let mut parts = Vec::new();
    let mut cur: Vec<Pt> = Vec::new();
    for w in line.windows(2) {
        let (p, q) = (w[0], w[1]);
        match clip_segment(p, q, b) {
            None => {
                if cur.len() > 1 {
                    parts.push(std::mem::take(&mut cur));
                } else {
                    cur.clear();
                }
            }
            Some((a, c, entered, left)) => {
                if entered || cur.is_empty() {
                    if cur.len() > 1 {
                        parts.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                    cur.push(a);
                }
                cur.push(c);
                if left {
                    if cur.len() > 1 {
                        parts.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                }
            }
        }
    }
    if cur.len() > 1 {
        parts.push(cur);
    }
    parts
}

/// Liang–Barsky: the part of segment p→q inside the box, and whether it was cut at its start
/// (entered) or end (left).
fn clip_segment(p: Pt, q: Pt, b: ClipBox) -> Option<(Pt, Pt, bool, bool)> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let mut t0 = 0.0f64;
    let mut t1 = 1.0f64;
    for (pk, qk) in [(-dx, p.0 - b.min), (dx, b.max - p.0), (-dy, p.1 - b.min), (dy, b.max - p.1)] {
        if pk == 0.0 {
            if qk < 0.0 {
                return None;
            }
        } else {
            let r = qk / pk;
            if pk < 0.0 {
                if r > t1 {
                    return None;
                }
                t0 = t0.max(r);
            } else {
                if r < t0 {
                    return None;
                }
                t1 = t1.min(r);
            }
        }
    }
    let at = |t: f64| (p.0 + t * dx, p.1 + t * dy);
    let a = if t0 > 0.0 { at(t0) } else { p };
    let c = if t1 < 1.0 { at(t1) } else { q };
    Some((a, c, t0 > 0.0, t1 < 1.0))
}

/// Clips a ring given without its closing point (Sutherland–Hodgman); the result is also open.
pub fn clip_ring(ring: &[Pt], b: ClipBox) -> Vec<Pt> {
    if b.holds(ring) {
        return ring.to_vec();
    }
    let mut out = ring.to_vec();
    // Each edge: (is p inside, intersection of p→q with the edge line).
    type Edge = (fn(Pt, f64) -> bool, fn(Pt, Pt, f64) -> Pt, f64);
    let edges: [Edge; 4] = [
        (|p, v| p.0 >= v, |p, q, v| (v, p.1 + (q.1 - p.1) * (v - p.0) / (q.0 - p.0)), b.min),
        (|p, v| p.0 <= v, |p, q, v| (v, p.1 + (q.1 - p.1) * (v - p.0) / (q.0 - p.0)), b.max),
        (|p, v| p.1 >= v, |p, q, v| (p.0 + (q.0 - p.0) * (v - p.1) / (q.1 - p.1), v), b.min),
        (|p, v| p.1 <= v, |p, q, v| (p.0 + (q.0 - p.0) * (v - p.1) / (q.1 - p.1), v), b.max),
    ];
    for (inside, cross, v) in edges {
        if out.is_empty() {
            break;
        }
        let input = std::mem::take(&mut out);
        let mut prev = input[input.len() - 1];
        for &cur in &input {
            match (inside(cur, v), inside(prev, v)) {
                (true, true) => out.push(cur),
                (true, false) => {
                    out.push(cross(prev, cur, v));
                    out.push(cur);
                }
                (false, true) => out.push(cross(prev, cur, v)),
                (false, false) => {}
            }
            prev = cur;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: ClipBox = ClipBox { min: 0.0, max: 10.0 };

    fn check_line(line: &[Pt], expected: &[&[Pt]]) {
        let got = clip_line(line, B);
        assert_eq!(got, expected.iter().map(|p| p.to_vec()).collect::<Vec<_>>(), "{line:?}");
    }

    #[test]
    fn lines() {
        check_line(&[(1.0, 1.0), (9.0, 9.0)], &[&[(1.0, 1.0), (9.0, 9.0)]]);
        check_line(&[(-5.0, 5.0), (15.0, 5.0)], &[&[(0.0, 5.0), (10.0, 5.0)]]);
        check_line(&[(-5.0, -5.0), (-1.0, 20.0)], &[]);
        // In, out, in again: two parts.
        check_line(
            &[(5.0, 5.0), (15.0, 5.0), (15.0, 8.0), (5.0, 8.0)],
            &[&[(5.0, 5.0), (10.0, 5.0)], &[(10.0, 8.0), (5.0, 8.0)]],
        );
        // Starts outside, ends inside.
        check_line(&[(-10.0, 2.0), (2.0, 2.0), (4.0, 4.0)], &[&[(0.0, 2.0), (2.0, 2.0), (4.0, 4.0)]]);
    }

    fn area(r: &[Pt]) -> f64 {
        let mut a = 0.0;
        for i in 0..r.len() {
            let (p, q) = (r[i], r[(i + 1) % r.len()]);
            a += p.0 * q.1 - q.0 * p.1;
        }
        a / 2.0
    }

    #[test]
    fn rings() {
        // Inside: untouched.
        let sq = [(1.0, 1.0), (2.0, 1.0), (2.0, 2.0), (1.0, 2.0)];
        assert_eq!(clip_ring(&sq, B), sq.to_vec());
        // Covering the box: the box.
        let big = [(-5.0, -5.0), (15.0, -5.0), (15.0, 15.0), (-5.0, 15.0)];
        assert_eq!(area(&clip_ring(&big, B)).abs(), 100.0);
        // Half in.
        let half = [(5.0, -5.0), (15.0, -5.0), (15.0, 15.0), (5.0, 15.0)];
        assert_eq!(area(&clip_ring(&half, B)).abs(), 50.0);
        // Outside.
        assert!(clip_ring(&[(20.0, 20.0), (30.0, 20.0), (30.0, 30.0)], B).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn clipped_points_stay_in_the_box(pts in proptest::collection::vec((-30.0f64..40.0, -30.0f64..40.0), 3..20)) {
            for part in clip_line(&pts, B) {
                proptest::prop_assert!(part.len() >= 2);
                for p in part {
                    proptest::prop_assert!(p.0 >= -1e-9 && p.0 <= 10.0 + 1e-9 && p.1 >= -1e-9 && p.1 <= 10.0 + 1e-9, "{p:?}");
                }
            }
            let ring = clip_ring(&pts, B);
            for p in &ring {
                proptest::prop_assert!(p.0 >= -1e-9 && p.0 <= 10.0 + 1e-9 && p.1 >= -1e-9 && p.1 <= 10.0 + 1e-9, "{p:?}");
            }
        }

        #[test]
        fn a_clipped_rectangle_is_the_intersection(x0 in -20.0f64..30.0, y0 in -20.0f64..30.0, w in 0.1f64..30.0, h in 0.1f64..30.0) {
            let r = [(x0, y0), (x0 + w, y0), (x0 + w, y0 + h), (x0, y0 + h)];
            let ix = ((x0 + w).min(10.0) - x0.max(0.0)).max(0.0);
            let iy = ((y0 + h).min(10.0) - y0.max(0.0)).max(0.0);
            let got = clip_ring(&r, B);
            proptest::prop_assert!((area(&got).abs() - ix * iy).abs() < 1e-6, "{got:?}");
        }
    }
}
