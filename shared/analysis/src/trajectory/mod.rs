//! Trajectories from timed GPS fixes (inspectors' patrols, vehicles): ordering, splitting at
//! gaps, length and speed, stops, generalisation and grid coverage.
//!
//! Why here: the analysis engine answers "where did the patrol stop, how fast did it move, which
//! cells of its grid did it cover" on tracks it has already read; the rules are MovingPandas'
//! (the reference library, `tests/fixtures/analysis/make_trajectory_reference.py`), computed
//! without pandas' per-row overhead.
//!
//! A fix is `(lon, lat, t)`: CGCS2000 degrees and `t` in seconds as `f64` (Unix seconds,
//! fractions allowed: an `f64` near 1.8e9 resolves 0.24 µs). The caller groups fixes by track;
//! [`Track::new`] then
//! - sorts them by time (stable: fixes with equal times keep their input order),
//! - keeps the FIRST of fixes with exactly the same time and drops the others (counted in
//!   [`Track::dropped_duplicates`]): two positions at one instant give no speed, and MovingPandas
//!   would divide by a zero time step.
//!
//! Distances are geodesics on CGCS2000 (Karney, [`crate::geodesic_m`]); MovingPandas measures
//! geographic CRS with geopy's Karney geodesic on WGS84, whose flattening differs by 1.6e-11:
//! lengths agree to about 1e-11 relative.
//!
//! Segments are index ranges into the track's sorted fixes.

use std::ops::Range;

use crate::error::{AnalysisError, Result};
use crate::geodesic::{LonLat, geodesic_m};
use crate::limits::{MAX_DISTANCE_M, MAX_POINTS, MIN_DISTANCE_M};

pub mod coverage;
pub mod generalise;
mod hull;
mod local;
pub mod stops;

pub use coverage::{Cells, Coverage, GridSpec, coverage};
pub use stops::{Stop, stops};

/// Bounds of the trajectory functions' parameters (sizes use [`crate::limits::MAX_POINTS`]).
pub mod limits {
    /// Fix times must lie within ± this many seconds of the Unix epoch (year ~5138): an `f64`
    /// there still resolves a millisecond.
    pub const MAX_ABS_TIME_S: f64 = 1e11;
    /// The longest duration parameter (gap, stop duration, time step), seconds: ~31.7 years.
    pub const MAX_DURATION_S: f64 = 1e9;
    /// Cells of one coverage question.
    pub const MAX_CELLS: usize = 1_000_000;
    /// Vertices of all cells' rings together.
    pub const MAX_CELL_VERTICES: usize = 10_000_000;
    /// The widest buffer around a track for coverage, metres.
    pub const MAX_BUFFER_M: f64 = 10_000.0;
    /// The largest extent (bounding box diagonal) of a track segment to generalise, or of track
    /// and cells for coverage, metres: these work in a local plane whose scale error grows with
    /// the extent (about 0.5% of a distance at 100 km from the centre at 30°N).
    pub const MAX_LOCAL_EXTENT_M: f64 = 200_000.0;
}
use limits::{MAX_ABS_TIME_S, MAX_DURATION_S};

/// One GPS fix: CGCS2000 degrees and seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fix {
    pub lon: f64,
    pub lat: f64,
    /// Unix seconds (fractions allowed).
    pub t: f64,
}

impl Fix {
    pub fn new(lon: f64, lat: f64, t: f64) -> Self {
        Self { lon, lat, t }
    }

    pub fn lon_lat(&self) -> LonLat {
        [self.lon, self.lat]
    }
}

/// A track's fixes, checked, sorted by time and with unique times (see the module docs).
#[derive(Debug, Clone)]
pub struct Track {
    fixes: Vec<Fix>,
    dropped_duplicates: usize,
}

impl Track {
    /// Checks (non-empty, at most [`MAX_POINTS`], finite coordinates in range, finite times
    /// within [`limits::MAX_ABS_TIME_S`]), sorts and drops fixes repeating a time.
    pub fn new(mut fixes: Vec<Fix>) -> Result<Self> {
        if fixes.is_empty() {
            return Err(AnalysisError::Empty { what: "fixes" });
        }
        if fixes.len() > MAX_POINTS {
            return Err(AnalysisError::TooMany {
                what: "fixes",
                got: fixes.len(),
                limit: "MAX_POINTS",
                max: MAX_POINTS,
            });
        }
        for (index, f) in fixes.iter().enumerate() {
            for (what, v) in [("longitude of fix", f.lon), ("latitude of fix", f.lat), ("time of fix", f.t)] {
                if !v.is_finite() {
                    return Err(AnalysisError::NotFinite { what, index, value: v });
                }
            }
            if !(-180.0..=180.0).contains(&f.lon) {
                return Err(AnalysisError::LongitudeOutOfRange { index, lon: f.lon });
            }
            if !(-90.0..=90.0).contains(&f.lat) {
                return Err(AnalysisError::LatitudeOutOfRange { index, lat: f.lat });
            }
            if f.t.abs() > MAX_ABS_TIME_S {
                return Err(AnalysisError::OutOfRange {
                    what: "fix time (Unix seconds)",
                    value: f.t,
                    range: "|t| <= MAX_ABS_TIME_S = 1e11",
                });
            }
        }
        fixes.sort_by(|a, b| a.t.total_cmp(&b.t));
        let before = fixes.len();
        fixes.dedup_by(|later, first| later.t == first.t);
        Ok(Self { dropped_duplicates: before - fixes.len(), fixes })
    }

    /// The fixes, by increasing time.
    pub fn fixes(&self) -> &[Fix] {
        &self.fixes
    }

    pub fn len(&self) -> usize {
        self.fixes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fixes.is_empty()
    }

    /// Fixes dropped because an earlier fix (in input order) had exactly the same time.
    pub fn dropped_duplicates(&self) -> usize {
        self.dropped_duplicates
    }

    /// The whole track as one segment.
    pub fn all(&self) -> Range<usize> {
        0..self.fixes.len()
    }

    pub(crate) fn segment(&self, range: &Range<usize>) -> Result<&[Fix]> {
        if range.start >= range.end || range.end > self.fixes.len() {
            return Err(AnalysisError::OutOfRange {
                what: "segment end",
                value: range.end as f64,
                range: "a non-empty range of the track's fixes",
            });
        }
        Ok(&self.fixes[range.clone()])
    }
}

/// When [`split`] starts a new segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GapRule {
    /// A time step longer than this (strictly) starts a new segment, seconds — MovingPandas'
    /// `ObservationGapSplitter(gap)`.
    pub max_gap_s: f64,
    /// And, if set, a jump longer than this (strictly) between consecutive fixes, metres.
    pub max_jump_m: Option<f64>,
}

/// Refuses a duration outside `(0, MAX_DURATION_S]` (`zero_ok`: `[0, MAX_DURATION_S]`).
pub(crate) fn check_duration(what: &'static str, v: f64, zero_ok: bool) -> Result<()> {
    let low_ok = if zero_ok { v >= 0.0 } else { v > 0.0 };
    if v.is_finite() && low_ok && v <= MAX_DURATION_S {
        return Ok(());
    }
    let range = if zero_ok { "0 <= s <= MAX_DURATION_S = 1e9" } else { "0 < s <= MAX_DURATION_S = 1e9" };
    Err(AnalysisError::OutOfRange { what, value: v, range })
}

/// Refuses a distance outside `[MIN_DISTANCE_M, MAX_DISTANCE_M]`.
pub(crate) fn check_distance(what: &'static str, v: f64) -> Result<()> {
    if v.is_finite() && (MIN_DISTANCE_M..=MAX_DISTANCE_M).contains(&v) {
        return Ok(());
    }
    Err(AnalysisError::OutOfRange { what, value: v, range: "MIN_DISTANCE_M = 0.001 <= m <= MAX_DISTANCE_M = 500000" })
}

/// The track cut at every gap: consecutive, covering ranges (concatenated they are
/// [`Track::all`]). Single-fix segments are kept (MovingPandas drops them).
pub fn split(track: &Track, rule: &GapRule) -> Result<Vec<Range<usize>>> {
    check_duration("max_gap_s", rule.max_gap_s, false)?;
    if let Some(m) = rule.max_jump_m {
        check_distance("max_jump_m", m)?;
    }
    let f = &track.fixes;
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..f.len() {
        let gap = f[i].t - f[i - 1].t > rule.max_gap_s
            || rule.max_jump_m.is_some_and(|m| geodesic_m(f[i - 1].lon_lat(), f[i].lon_lat()) > m);
        if gap {
            out.push(start..i);
            start = i;
        }
    }
    out.push(start..f.len());
    Ok(out)
}

/// Length, duration and speeds of one segment.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentStats {
    /// Sum of the geodesics between consecutive fixes, metres (MovingPandas' `get_length`).
    pub length_m: f64,
    /// Last time minus first, seconds.
    pub duration_s: f64,
    /// Per fix, the speed of the step arriving at it (m/s); the first fix gets the second's
    /// (MovingPandas' `add_speed`). A one-fix segment has speed 0.
    pub speeds: Vec<f64>,
    /// `length_m / duration_s` (0 for a one-fix segment).
    pub mean_speed: f64,
    /// The largest of `speeds`.
    pub max_speed: f64,
}

/// [`SegmentStats`] of `range` of the track.
pub fn segment_stats(track: &Track, range: Range<usize>) -> Result<SegmentStats> {
    let f = track.segment(&range)?;
    let mut speeds = Vec::with_capacity(f.len());
    let mut length_m = 0.0;
    speeds.push(0.0);
    for w in f.windows(2) {
        let d = geodesic_m(w[0].lon_lat(), w[1].lon_lat());
        length_m += d;
        speeds.push(d / (w[1].t - w[0].t));
    }
    if speeds.len() > 1 {
        speeds[0] = speeds[1];
    }
    let duration_s = f[f.len() - 1].t - f[0].t;
    let mean_speed = if duration_s > 0.0 { length_m / duration_s } else { 0.0 };
    let max_speed = speeds.iter().copied().fold(0.0, f64::max);
    Ok(SegmentStats { length_m, duration_s, speeds, mean_speed, max_speed })
}
