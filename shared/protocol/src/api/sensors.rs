//! The live view of sensing stations (issue 18) on the wire: the layer of each station's latest
//! readings (`GET /collections/sta_latest/items`, GeoJSON), the chart series of a datastream
//! (`GET /sta/series/{id}`) and the state a reading puts its station in (also in the live
//! channel's `reading` message, [`crate::api::LiveEvent::Reading`]).

use serde::{Deserialize, Serialize};

/// How a datastream (and a station, the worst of its datastreams) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SensorState {
    /// Nothing to judge by: no reading yet and no alert rule saying it is silent.
    Unknown,
    /// The latest reading is recent and inside its thresholds, no alert open.
    Normal,
    /// No reading for longer than the datastream allows (or none at all).
    Silent,
    /// The latest reading crossed a warning threshold.
    Warning,
    /// The latest reading crossed an alarm threshold, or an alert rule's incident is open.
    Alarm,
}

impl SensorState {
    /// The Chinese name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            SensorState::Unknown => "未知",
            SensorState::Normal => "正常",
            SensorState::Silent => "静默",
            SensorState::Warning => "预警",
            SensorState::Alarm => "报警",
        }
    }
}

/// One datastream of a station with its latest reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationReading {
    /// The Datastream's `@iot.id`.
    pub datastream: i64,
    pub name: String,
    /// `unitOfMeasurement.symbol` (empty when none).
    pub unit: String,
    /// The latest value (absent: no reading yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<f64>,
    /// Its phenomenon time, RFC 3339 in Beijing time.
    #[serde(rename = "phenomenonTime", default, skip_serializing_if = "Option::is_none")]
    pub phenomenon_time: Option<String>,
    pub state: SensorState,
    /// The state open alerts (`/alerts`) put this datastream in — `alarm`, or `silent` for a
    /// silence rule's — absent when none is open: a live `reading` (judged by thresholds only)
    /// does not lower the datastream below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alert: Option<SensorState>,
}

/// A station's properties in the latest-readings layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationProperties {
    /// The Thing's `@iot.id`.
    pub thing: i64,
    pub name: String,
    /// The worst state of its datastreams (alarm > warning > silent > normal > unknown).
    pub state: SensorState,
    /// [`SensorState::label`] of `state`, for labels and legends.
    pub state_label: String,
    /// The newest phenomenon time among its datastreams (Beijing time).
    #[serde(rename = "phenomenonTime", default, skip_serializing_if = "Option::is_none")]
    pub phenomenon_time: Option<String>,
    pub datastreams: Vec<StationReading>,
}

/// One station: a Thing at its (first) Location.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationFeature {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: i64,
    /// The Location's GeoJSON geometry (CRS84).
    pub geometry: serde_json::Value,
    pub properties: StationProperties,
}

/// `GET /collections/sta_latest/items`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StationCollection {
    #[serde(rename = "type")]
    pub kind: String,
    pub features: Vec<StationFeature>,
    #[serde(rename = "numberReturned")]
    pub number_returned: usize,
    /// When the answer was read (Beijing time).
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
}

/// Where a chart's points come from: the readings themselves, or roll-up buckets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesSource {
    Raw,
    Minute,
    Hour,
    Day,
}

/// One point of a chart: a reading (`count` 1, min = max = avg) or a roll-up bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesPoint {
    /// The reading's time or the bucket's start, RFC 3339 in Beijing time.
    pub t: String,
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub avg: f64,
}

/// `GET /sta/series/{datastream}?from=&to=`: a datastream over a window, at most `max_points`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    pub datastream: i64,
    pub name: String,
    pub unit: String,
    /// The window `[from, to)`, Beijing time.
    pub from: String,
    pub to: String,
    pub source: SeriesSource,
    pub max_points: usize,
    pub points: Vec<SeriesPoint>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;

    #[test]
    fn shapes() {
        golden(
            Series {
                datastream: 3,
                name: "倾角".into(),
                unit: "deg".into(),
                from: "2026-12-07T00:00:00+08:00".into(),
                to: "2026-12-08T00:00:00+08:00".into(),
                source: SeriesSource::Minute,
                max_points: 2000,
                points: vec![SeriesPoint {
                    t: "2026-12-07T08:01:00+08:00".into(),
                    count: 2,
                    min: 1.0,
                    max: 3.0,
                    avg: 2.0,
                }],
            },
            r#"{"datastream":3,"name":"倾角","unit":"deg","from":"2026-12-07T00:00:00+08:00","to":"2026-12-08T00:00:00+08:00",
                "source":"minute","max_points":2000,"points":[{"t":"2026-12-07T08:01:00+08:00","count":2,"min":1.0,"max":3.0,"avg":2.0}]}"#,
        );
        golden(
            StationReading {
                datastream: 3,
                name: "倾角".into(),
                unit: "deg".into(),
                result: None,
                phenomenon_time: None,
                state: SensorState::Silent,
                alert: None,
            },
            r#"{"datastream":3,"name":"倾角","unit":"deg","state":"silent"}"#,
        );
        golden(
            StationReading {
                datastream: 3,
                name: "倾角".into(),
                unit: "deg".into(),
                result: Some(12.5),
                phenomenon_time: Some("2026-12-07T08:01:00+08:00".into()),
                state: SensorState::Alarm,
                alert: Some(SensorState::Alarm),
            },
            r#"{"datastream":3,"name":"倾角","unit":"deg","result":12.5,"phenomenonTime":"2026-12-07T08:01:00+08:00",
                "state":"alarm","alert":"alarm"}"#,
        );
        assert!(SensorState::Alarm > SensorState::Warning && SensorState::Warning > SensorState::Silent);
        assert!(SensorState::Silent > SensorState::Normal && SensorState::Normal > SensorState::Unknown);
        assert_eq!(serde_json::to_string(&SensorState::Unknown).unwrap(), r#""unknown""#);
    }
}
