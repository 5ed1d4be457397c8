//! Stop detection with exactly MovingPandas' rules
//! (`TrajectoryStopDetector.get_stop_segments / get_stop_points(max_diameter, min_duration)`),
//! in linear time for the usual tracks.
//!
//! MovingPandas' algorithm (`_process_traj`), which this reproduces decision for decision, keeps
//! a window of consecutive fixes and, for each new fix appended to it:
//! 1. unless the previous fix left the track "stopped", drops fixes from the window's front while
//!    it has more than two and spans at least `min_duration`;
//! 2. calls the window "stopped" if it has at least two fixes, the geodesic between the corners
//!    (min lon, min lat) and (max lon, max lat) of its bounding box is below 1.5 × `max_diameter`,
//!    and the "diameter" — the geodesic between corners 0 and 2 of GEOS' minimum-area rectangle
//!    of the window's lon/lat points (planar, in degrees; see [`super::hull`]), or between the
//!    two fixes of a two-fix window — is below `max_diameter` (strictly);
//! 3. when the window stops being stopped after it was, and its fixes before the new one span at
//!    least `min_duration`, those fixes are a stop and the window restarts at the new fix;
//! 4. a window still stopped at the end is a stop if it spans at least `min_duration`.
//!
//! So the "diameter" is not the largest distance between two fixes, and a stop's extent can be
//! larger than `max_diameter` in some directions (the rectangle's other diagonal is not measured).
//!
//! MovingPandas redoes the bounding box, the hull and the rectangle of the whole window for every
//! fix (quadratic in a stop's length, in Python). Here the bounding box comes from monotone
//! deques (O(1) per fix), the geodesic comparisons are decided by the chord bounds of
//! [`crate::geodesic`] unless too close to call, and the hull grows with the window: a fix inside
//! the hull changes neither hull nor rectangle nor the decision, which is kept.

use std::collections::VecDeque;
use std::ops::Range;

use super::hull::{Hull, Rect, Xy};
use super::{Fix, Track, check_distance, check_duration};
use crate::error::Result;
use crate::geodesic::{LonLat, SLACK_M, ecef, geodesic_m, geodesic_upper_bound};

/// One stop: fixes `first..=last` of the track.
#[derive(Debug, Clone, PartialEq)]
pub struct Stop {
    pub first: usize,
    pub last: usize,
    pub start_t: f64,
    pub end_t: f64,
    pub duration_s: f64,
    /// The medians of the stop's longitudes and latitudes (MovingPandas' `get_stop_points`).
    pub lon: f64,
    pub lat: f64,
}

/// Whether the geodesic between `a` and `b` is below `limit` (strictly), deciding by the chord
/// when the chord bounds allow it.
fn below(a: LonLat, b: LonLat, limit: f64) -> bool {
    let (p, q) = (ecef(a), ecef(b));
    let c = ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) + (p[2] - q[2]).powi(2)).sqrt();
    if c > limit + SLACK_M {
        return false; // the geodesic is at least the chord
    }
    if geodesic_upper_bound(c) + SLACK_M < limit {
        return true;
    }
    geodesic_m(a, b) < limit
}

/// Sliding-window minimum (or maximum) of one coordinate: indices with increasing (decreasing)
/// values; the front is the window's extreme.
#[derive(Debug)]
struct Extreme {
    idx: VecDeque<usize>,
    max: bool,
}

impl Extreme {
    fn new(max: bool) -> Self {
        Self { idx: VecDeque::new(), max }
    }

    fn push(&mut self, k: usize, v: &[f64]) {
        while let Some(&b) = self.idx.back() {
            let worse = if self.max { v[b] <= v[k] } else { v[b] >= v[k] };
            if !worse {
                break;
            }
            self.idx.pop_back();
        }
        self.idx.push_back(k);
    }

    fn trim(&mut self, start: usize) {
        while self.idx.front().is_some_and(|&f| f < start) {
            self.idx.pop_front();
        }
    }

    fn get(&self, v: &[f64]) -> f64 {
        self.idx.front().map_or(f64::NAN, |&i| v[i])
    }
}

/// The window's hull, grown fix by fix while the window's start stays.
#[derive(Debug, Default)]
struct HullCache {
    hull: Hull,
    start: usize,
    /// Fixes `start..end` are in the hull; `end == 0` means none.
    end: usize,
    /// The decision "diameter < max_diameter" for the current hull.
    decision: Option<bool>,
    scratch: Vec<Xy>,
}

impl HullCache {
    fn below(&mut self, pts: &[Xy], s: usize, k: usize, max_diameter: f64) -> bool {
        if self.end == 0 || self.start != s || self.end > k + 1 {
            self.hull = Hull::of(pts[s..=k].iter().copied(), &mut self.scratch);
            self.decision = None;
        } else {
            for &p in &pts[self.end..=k] {
                if self.hull.add(p, &mut self.scratch) {
                    self.decision = None;
                }
            }
        }
        (self.start, self.end) = (s, k + 1);
        *self.decision.get_or_insert_with(|| match self.hull.rectangle() {
            Rect::Point => 0.0 < max_diameter,
            Rect::Line(a, b) | Rect::Diagonal(a, b) => below(a, b, max_diameter),
        })
    }
}

/// MovingPandas' stops of fixes `range` of the track (see the module docs): `max_diameter_m` in
/// `[MIN_DISTANCE_M, MAX_DISTANCE_M]`, `min_duration_s` in `(0, MAX_DURATION_S]`.
pub fn stops(track: &Track, range: Range<usize>, max_diameter_m: f64, min_duration_s: f64) -> Result<Vec<Stop>> {
    check_distance("max_diameter_m", max_diameter_m)?;
    check_duration("min_duration_s", min_duration_s, false)?;
    let f = track.segment(&range)?;
    let offset = range.start;
    let xs: Vec<f64> = f.iter().map(|p| p.lon).collect();
    let ys: Vec<f64> = f.iter().map(|p| p.lat).collect();
    let pts: Vec<Xy> = f.iter().map(Fix::lon_lat).collect();
    let (mut min_x, mut max_x, mut min_y, mut max_y) =
        (Extreme::new(false), Extreme::new(true), Extreme::new(false), Extreme::new(true));
    let mut cache = HullCache::default();
    let bbox_limit = max_diameter_m * 1.5;
    let mut found: Vec<(usize, usize)> = Vec::new();
    let (mut s, mut is_stopped, mut previously_stopped) = (0usize, false, false);
    for k in 0..f.len() {
        min_x.push(k, &xs);
        max_x.push(k, &xs);
        min_y.push(k, &ys);
        max_y.push(k, &ys);
        if !is_stopped {
            while k + 1 - s > 2 && f[k].t - f[s].t >= min_duration_s {
                s += 1;
            }
        }
        for e in [&mut min_x, &mut max_x, &mut min_y, &mut max_y] {
            e.trim(s);
        }
        is_stopped = false;
        if k > s {
            let low = [min_x.get(&xs), min_y.get(&ys)];
            let high = [max_x.get(&xs), max_y.get(&ys)];
            if below(low, high, bbox_limit) {
                is_stopped = if k == s + 1 {
                    // MovingPandas measures a two-point MultiPoint between its points directly
                    below(pts[s], pts[k], max_diameter_m)
                } else {
                    cache.below(&pts, s, k, max_diameter_m)
                };
            }
        }
        if !is_stopped && previously_stopped && k > s && f[k - 1].t - f[s].t >= min_duration_s {
            found.push((s, k - 1));
            s = k;
            for e in [&mut min_x, &mut max_x, &mut min_y, &mut max_y] {
                e.trim(s);
            }
        }
        previously_stopped = is_stopped;
    }
    let last = f.len() - 1;
    if is_stopped && f[last].t - f[s].t >= min_duration_s {
        found.push((s, last));
    }
    Ok(found.into_iter().map(|(a, b)| stop(f, a, b, offset)).collect())
}

fn stop(f: &[Fix], a: usize, b: usize, offset: usize) -> Stop {
    let mut lons: Vec<f64> = f[a..=b].iter().map(|p| p.lon).collect();
    let mut lats: Vec<f64> = f[a..=b].iter().map(|p| p.lat).collect();
    Stop {
        first: a + offset,
        last: b + offset,
        start_t: f[a].t,
        end_t: f[b].t,
        duration_s: f[b].t - f[a].t,
        lon: median(&mut lons),
        lat: median(&mut lats),
    }
}

/// pandas' median: the middle value, or the mean of the two middle values.
fn median(v: &mut [f64]) -> f64 {
    let n = v.len();
    let (_, &mut hi, _) = v.select_nth_unstable_by(n / 2, f64::total_cmp);
    if n % 2 == 1 {
        return hi;
    }
    let lo = v[..n / 2].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo + hi) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MovingPandas' `_process_traj` transcribed without any of the shortcuts: the window as a
    /// list, its box by scanning, a new hull for every fix, every geodesic computed.
    fn plain(f: &[Fix], max_d: f64, min_s: f64) -> Vec<(usize, usize)> {
        let (mut w, mut out): (Vec<usize>, Vec<(usize, usize)>) = (Vec::new(), Vec::new());
        let (mut is_stopped, mut prev) = (false, false);
        for k in 0..f.len() {
            w.push(k);
            if !is_stopped {
                while w.len() > 2 && f[k].t - f[w[0]].t >= min_s {
                    w.remove(0);
                }
            }
            is_stopped = false;
            if w.len() > 1 {
                let xs = w.iter().map(|&i| f[i].lon);
                let ys = w.iter().map(|&i| f[i].lat);
                let low = [xs.clone().fold(f64::INFINITY, f64::min), ys.clone().fold(f64::INFINITY, f64::min)];
                let high = [xs.fold(f64::NEG_INFINITY, f64::max), ys.fold(f64::NEG_INFINITY, f64::max)];
                if geodesic_m(low, high) < max_d * 1.5 {
                    let d = if w.len() == 2 {
                        geodesic_m(f[w[0]].lon_lat(), f[w[1]].lon_lat())
                    } else {
                        match Hull::of(w.iter().map(|&i| f[i].lon_lat()), &mut Vec::new()).rectangle() {
                            Rect::Point => 0.0,
                            Rect::Line(a, b) | Rect::Diagonal(a, b) => geodesic_m(a, b),
                        }
                    };
                    is_stopped = d < max_d;
                }
            }
            if !is_stopped && prev && w.len() > 1 && f[k - 1].t - f[w[0]].t >= min_s {
                out.push((w[0], k - 1));
                w = vec![k];
            }
            prev = is_stopped;
        }
        if is_stopped && f[f.len() - 1].t - f[w[0]].t >= min_s {
            out.push((w[0], f.len() - 1));
        }
        out
    }

    #[test]
    fn the_fast_detector_decides_as_the_plain_transcription() {
        let mut rng = fastrand::Rng::with_seed(19);
        let mut found = 0;
        for case in 0..30 {
            let (mut x, mut y, mut t) = (114.37, 30.52, 1.78e9);
            let mut fixes = Vec::new();
            // walks and stops on a coarse grid of coordinates, so ties and collinear windows occur
            let grid = if case % 3 == 0 { 1e-5 } else { 1e-7 };
            for _ in 0..40 {
                let moving = rng.bool();
                for _ in 0..rng.usize(5..80) {
                    t += rng.usize(1..8) as f64;
                    if moving {
                        x += (rng.f64() - 0.3) * 2e-5;
                        y += (rng.f64() - 0.3) * 2e-5;
                    }
                    let j = |r: &mut fastrand::Rng| (r.f64() - 0.5) * 8e-5;
                    let (px, py) = (x + j(&mut rng), y + j(&mut rng));
                    fixes.push(Fix::new((px / grid).round() * grid, (py / grid).round() * grid, t));
                }
            }
            let track = Track::new(fixes).unwrap_or_else(|e| panic!("{e}"));
            for (d, m) in [(5.0, 30.0), (10.0, 60.0), (20.0, 120.0)] {
                let fast: Vec<(usize, usize)> = stops(&track, track.all(), d, m)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .iter()
                    .map(|s| (s.first, s.last))
                    .collect();
                assert_eq!(fast, plain(track.fixes(), d, m), "case {case}, {d} m, {m} s");
                found += fast.len();
            }
        }
        assert!(found > 300, "the cases have stops ({found})");
    }

    #[test]
    fn median_is_pandas_median() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&mut [7.0]), 7.0);
    }
}
