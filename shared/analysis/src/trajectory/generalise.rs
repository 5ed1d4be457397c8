//! Generalisation of a track segment: Douglas-Peucker with a tolerance in metres, and
//! MovingPandas' `MinTimeDeltaGeneralizer`. Both return the indices of the fixes kept (with
//! their times), never new points.

use std::ops::Range;

use super::local::{Local, point_segment};
use super::{Track, check_distance, check_duration};
use crate::error::Result;

/// Douglas-Peucker on fixes `range` of the track, `tolerance_m` in `[MIN_DISTANCE_M,
/// MAX_DISTANCE_M]`: the fixes (absolute indices, increasing) whose removal would move the line
/// more than the tolerance; the first and the last are always kept.
///
/// Distances are GEOS' point-to-segment distances (shapely's `simplify(tolerance,
/// preserve_topology=False)`, the algorithm behind MovingPandas' `DouglasPeuckerGeneralizer`)
/// measured in the local plane of [`super::local`] around the segment's bounding box: so a
/// tolerance is metres on the ground (MovingPandas' is in CRS units, degrees for EPSG:4490). A
/// fix is dropped when its distance is at most the tolerance, as in GEOS. Refuses a segment
/// wider than [`super::limits::MAX_LOCAL_EXTENT_M`].
pub fn douglas_peucker(track: &Track, range: Range<usize>, tolerance_m: f64) -> Result<Vec<usize>> {
    check_distance("tolerance_m", tolerance_m)?;
    let f = track.segment(&range)?;
    let local = Local::around("segment to generalise", f.iter().map(|p| p.lon_lat()))?;
    let xy: Vec<[f64; 2]> = f.iter().map(|p| local.xy(p.lon_lat())).collect();
    let mut keep = vec![true; xy.len()];
    // GEOS recurses; a stack keeps a million-fix segment off the call stack.
    let mut sections = vec![(0usize, xy.len() - 1)];
    while let Some((i, j)) = sections.pop() {
        if i + 1 >= j {
            continue;
        }
        let (mut max_d, mut max_k) = (-1.0, i);
        for (k, p) in xy.iter().enumerate().take(j).skip(i + 1) {
            let d = point_segment(*p, xy[i], xy[j]);
            if d > max_d {
                (max_d, max_k) = (d, k);
            }
        }
        if max_d <= tolerance_m {
            keep[i + 1..j].iter_mut().for_each(|k| *k = false);
        } else {
            sections.push((max_k, j));
            sections.push((i, max_k));
        }
    }
    Ok(keep.iter().enumerate().filter(|(_, k)| **k).map(|(i, _)| i + range.start).collect())
}

/// MovingPandas' `MinTimeDeltaGeneralizer(tolerance)` on fixes `range`: the first fix, then
/// each fix at least `min_dt_s` (in `[0, MAX_DURATION_S]`) after the last one kept, and the
/// last fix (MovingPandas lists the last fix twice when it was kept anyway; here it is once).
pub fn min_time_delta(track: &Track, range: Range<usize>, min_dt_s: f64) -> Result<Vec<usize>> {
    check_duration("min_dt_s", min_dt_s, true)?;
    let f = track.segment(&range)?;
    let mut kept = vec![0usize];
    let mut prev = f[0].t;
    for (i, p) in f.iter().enumerate().skip(1) {
        if p.t - prev >= min_dt_s {
            kept.push(i);
            prev = p.t;
        }
    }
    if kept.last() != Some(&(f.len() - 1)) {
        kept.push(f.len() - 1);
    }
    Ok(kept.into_iter().map(|i| i + range.start).collect())
}
