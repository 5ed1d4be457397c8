//! The live channel's messages (`GET /events`, Server-Sent Events, one JSON object per `data:`
//! line). The channel only hastens what sync and the REST reads deliver anyway: a device that was
//! offline learns the same at its next sync, so nothing depends on it for correctness. A client
//! that sees `lagged` or `closing` re-reads what it shows and reconnects.

use serde::{Deserialize, Serialize};

/// One message on the live channel; `type` names the kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// Features of a layer the receiver may read changed (any writer: the OGC API, a device's
    /// push, an import); `tx` is the newest transaction, `time` its RFC 3339 time (Beijing).
    FeaturesChanged { layer: String, tx: i64, time: String },
    /// A case was dispatched to the receiver or their department (an inspector's new task).
    Task {
        case: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        number: Option<String>,
        state: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        deadline: Option<String>,
    },
    /// A case the receiver follows changed state: for the reporting citizen, the public progress
    /// of their report (never staff notes).
    CaseStatus {
        case: String,
        state: String,
        label: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        report: Option<String>,
    },
    /// A case's stage ran past its deadline (for the assignee and the supervisors).
    Overdue { case: String, state: String, deadline: String },
    /// A new reading of a datastream the receiver may read (`sta_datastream`), at most one a
    /// second per datastream (a faster station's readings are coalesced to the newest): the
    /// value, its phenomenon time (RFC 3339, Beijing time), the Thing it belongs to and the
    /// state it puts the datastream in.
    Reading {
        datastream: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        thing: Option<i64>,
        result: f64,
        #[serde(rename = "phenomenonTime")]
        phenomenon_time: String,
        state: crate::api::SensorState,
    },
    /// The receiver was too slow and `missed` messages were dropped: re-read what is shown.
    Lagged { missed: u64 },
    /// The server ends the stream (its time is up, the server stops, or the caller's token or
    /// account changed); `reason` says which. Reconnect (with a valid token) to go on.
    Closing { reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = LiveEvent::FeaturesChanged { layer: "manhole".into(), tx: 7, time: "2026-12-06T08:00:00+08:00".into() };
        assert_eq!(
            serde_json::to_string(&e).unwrap(),
            r#"{"type":"features_changed","layer":"manhole","tx":7,"time":"2026-12-06T08:00:00+08:00"}"#
        );
        let t: LiveEvent = serde_json::from_str(r#"{"type":"task","case":"c1","state":"dispatched"}"#).unwrap();
        assert_eq!(t, LiveEvent::Task { case: "c1".into(), number: None, state: "dispatched".into(), deadline: None });
        assert_eq!(serde_json::to_string(&LiveEvent::Lagged { missed: 3 }).unwrap(), r#"{"type":"lagged","missed":3}"#);
        let r = LiveEvent::Reading {
            datastream: 4,
            thing: Some(2),
            result: 1.5,
            phenomenon_time: "2026-12-07T08:00:00+08:00".into(),
            state: crate::api::SensorState::Warning,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"type":"reading","datastream":4,"thing":2,"result":1.5,"phenomenonTime":"2026-12-07T08:00:00+08:00","state":"warning"}"#
        );
    }
}
