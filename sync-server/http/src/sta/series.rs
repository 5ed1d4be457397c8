//! A datastream's chart (`GET /sta/series/{datastream}?from=&to=`, issue 18's live view): the
//! series over any window in at most [`MAX_POINTS`] points, each with count, min, max and avg.
//!
//! Why its own route and not `/Datastreams(id)/Observations`: a chart of a month of one-second
//! readings is 2.6 million Observations, far beyond what one STA answer may hold, while the
//! time-series store keeps minute, hour and day roll-ups exactly for this. The choice: the
//! readings themselves when the window holds at most [`MAX_POINTS`] (one bounded range read of
//! `MAX_POINTS + 1` rows tells), else the finest roll-up whose buckets over the window number at
//! most [`MAX_POINTS`] (minute up to 33 hours, hour up to 83 days, day up to 5.4 years); a longer
//! window is a 400 naming `from`. Default window: the 24 hours before now. Day buckets are
//! Beijing civil days; times are answered in Beijing time.
//!
//! Permissions: as Observations — read permission on `sta_datastream` (401/403 as every layer),
//! and the Datastream must exist (404).

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use jiff::{SignedDuration, Timestamp};
use shikong_model::time::beijing;
use shikong_protocol::api::{Series, SeriesPoint, SeriesSource};
use shikong_sta::entity::{EntityType, Id};
use shikong_timeseries::{Order, Resolution};

use super::super::access::{Action, Caller};
use super::super::params::Params;
use super::super::problem::{ApiError, ApiResult};
use super::{AppState, entities};
use crate::blocking;

/// Most points one answer holds.
pub const MAX_POINTS: usize = 2_000;
/// The window when none is given.
pub const DEFAULT_WINDOW: SignedDuration = SignedDuration::from_hours(24);

/// The finest source giving at most `max` points over `[from, to)` holding more than `max`
/// readings (pure: the number of buckets is the span over the bucket length, plus one for a
/// window not starting on a bucket boundary).
pub fn choose(from: Timestamp, to: Timestamp, max: usize) -> Option<Resolution> {
    let span = to.as_microsecond().saturating_sub(from.as_microsecond()).max(0);
    Resolution::ALL.into_iter().find(|r| {
        let len = r.len_us();
        let buckets = (span + len - 1) / len + 1;
        buckets <= max as i64
    })
}

fn source(r: Resolution) -> SeriesSource {
    match r {
        Resolution::Minute => SeriesSource::Minute,
        Resolution::Hour => SeriesSource::Hour,
        Resolution::Day => SeriesSource::Day,
    }
}

/// `GET /sta/series/{datastream}`.
pub async fn series(
    State(st): State<AppState>,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    caller: Caller,
) -> ApiResult<Json<Series>> {
    let p = Params::new(q.as_deref())?;
    p.only(&["from", "to"])?;
    let to = p.instant("to")?.unwrap_or_else(Timestamp::now);
    let from = match p.instant("from")? {
        Some(f) => f,
        None => to.checked_sub(DEFAULT_WINDOW).map_err(|e| ApiError::bad_parameter("to", e))?,
    };
    if from >= to {
        return Err(ApiError::bad_parameter("from", format!("`from` ({from}) must be before `to` ({to})")));
    }
    let ds: i64 = id
        .parse()
        .map_err(|_| ApiError::not_found(format!("no Datastream `{id}`: ids are integers")).with("datastream", id))?;
    blocking(move || {
        entities::ensure_layers(st.store(), &st.sta)?;
        let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
        caller.allowed(&st, &layer, Action::Read)?;
        let rec = entities::get(st.store(), EntityType::Datastream, &Id::Int(ds), None)?
            .ok_or_else(|| entities::missing(EntityType::Datastream, &Id::Int(ds)))?;
        let name = rec.props.get("name").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        let unit = rec
            .props
            .get("unitOfMeasurement")
            .and_then(|u| u.get("symbol"))
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned();
        let ts = st.timeseries()?;
        let raw = ts.range(ds, from, to, MAX_POINTS + 1, Order::Asc).map_err(ApiError::internal)?;
        let (source, points) = if raw.len() <= MAX_POINTS {
            let points = raw
                .iter()
                .map(|s| SeriesPoint { t: beijing(s.time), count: 1, min: s.value, max: s.value, avg: s.value })
                .collect();
            (SeriesSource::Raw, points)
        } else {
            let res = choose(from, to, MAX_POINTS).ok_or_else(|| {
                ApiError::bad_parameter(
                    "from",
                    format!("the window {from} – {to} is longer than {MAX_POINTS} days: shorten it"),
                )
                .with("max", MAX_POINTS)
            })?;
            let roll = ts.rollup(ds, Some(res), from, to).map_err(ApiError::internal)?;
            let points = roll
                .buckets
                .iter()
                .map(|b| SeriesPoint { t: beijing(b.start), count: b.count, min: b.min, max: b.max, avg: b.avg() })
                .collect();
            (source(res), points)
        };
        Ok(Json(Series {
            datastream: ds,
            name,
            unit,
            from: beijing(from),
            to: beijing(to),
            source,
            max_points: MAX_POINTS,
            points,
        }))
    })
    .await
    .map_err(|e| if e.status == StatusCode::NOT_FOUND { e.with("datastream", ds) } else { e })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_finest_resolution_that_fits() {
        let t0 = Timestamp::from_second(1_800_000_000).unwrap();
        let after = |h: i64| t0.checked_add(SignedDuration::from_hours(h)).unwrap();
        assert_eq!(choose(t0, after(24), MAX_POINTS), Some(Resolution::Minute));
        assert_eq!(choose(t0, after(34), MAX_POINTS), Some(Resolution::Hour));
        assert_eq!(choose(t0, after(24 * 30), MAX_POINTS), Some(Resolution::Hour));
        assert_eq!(choose(t0, after(24 * 365), MAX_POINTS), Some(Resolution::Day));
        assert_eq!(choose(t0, after(24 * 365 * 6), MAX_POINTS), None);
    }
}
