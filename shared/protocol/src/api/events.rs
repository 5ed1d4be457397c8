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
    /// An alert (`/alerts`) opened or closed, for those who may read `sta_datastream`: the map
    /// recolours the station, the office sees the new case.
    Alert(crate::api::alerts::AlertEvent),
    /// A registered outside service went down or came back (for administrators).
    ServiceHealth(crate::api::services::ServiceHealthEvent),
    /// A system resource threshold (`/admin/system`) was crossed or recovered (for administrators).
    SystemAlert(crate::api::system::SystemAlertEvent),
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
        let a = LiveEvent::Alert(crate::api::alerts::AlertEvent {
            rule: "r1".into(),
            rule_name: "水位超限".into(),
            datastream: 4,
            thing: Some(2),
            state: crate::api::alerts::AlertState::Open,
            map_state: crate::api::SensorState::Alarm,
            value: Some(3.2),
            at: "2026-12-07T08:00:00+08:00".into(),
            case: "c1".into(),
            case_no: Some("2026-000001".into()),
        });
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            r#"{"type":"alert","rule":"r1","rule_name":"水位超限","datastream":4,"thing":2,"state":"open","map_state":"alarm","value":3.2,"at":"2026-12-07T08:00:00+08:00","case":"c1","case_no":"2026-000001"}"#
        );
        assert_eq!(serde_json::from_str::<LiveEvent>(&serde_json::to_string(&a).unwrap()).unwrap(), a);
    }
}
