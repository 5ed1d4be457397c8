//! Sensor alert rules and alerts (`/alerts/rules`, `/alerts`; issue 18): a rule watches one
//! Datastream or a class of sensor (every Datastream of an ObservedProperty or a Sensor) for a
//! threshold, a rate of change or silence; an alert is the current incident of one (rule,
//! datastream), with the case it opened.

use serde::{Deserialize, Serialize};

/// Which datastreams a rule watches (exactly one member): `{"datastream": 5}`,
/// `{"observed_property": 2}` or `{"sensor": 3}` (SensorThings `@iot.id`s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertScope {
    Datastream(i64),
    ObservedProperty(i64),
    Sensor(i64),
}

/// When a datastream is in breach, tagged by `kind`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AlertCondition {
    /// Breach when a value is > `threshold`; recovered when ≤ `clear` (default: `threshold`).
    Above {
        threshold: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear: Option<f64>,
    },
    /// Breach when a value is < `threshold`; recovered when ≥ `clear` (default: `threshold`).
    Below {
        threshold: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear: Option<f64>,
    },
    /// Breach when |change per minute| over the last `window_minutes` is > `per_minute`;
    /// recovered when ≤ `clear_per_minute` (default: `per_minute`).
    Rate {
        per_minute: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clear_per_minute: Option<f64>,
        window_minutes: u32,
    },
    /// No reading for `minutes`.
    Silence { minutes: u32 },
}

/// `POST /alerts/rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAlertRule {
    pub name: String,
    pub scope: AlertScope,
    pub condition: AlertCondition,
    /// A breach must last this long before an alert opens (0: at once).
    #[serde(default)]
    pub min_breach_seconds: u32,
    /// Recovery must last this long before the alert closes (0: at once).
    #[serde(default)]
    pub min_recover_seconds: u32,
}

/// A stored rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRule {
    pub id: String,
    pub name: String,
    pub scope: AlertScope,
    pub condition: AlertCondition,
    pub min_breach_seconds: u32,
    pub min_recover_seconds: u32,
    /// When the rule was created (RFC 3339, Beijing time); a silence rule counts from here for a
    /// datastream that never reported.
    pub created: String,
}

/// `GET /alerts/rules`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertRuleList {
    pub rules: Vec<AlertRule>,
}

/// One (rule, datastream) and its latest incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    pub id: String,
    pub rule: String,
    pub datastream: i64,
    /// `open` or `closed`.
    pub state: String,
    /// Incidents of this (rule, datastream) so far; the latest is described here.
    pub incidents: i64,
    /// The latest incident's start (RFC 3339, Beijing time).
    pub opened: Option<String>,
    pub closed: Option<String>,
    /// Its case (UUID) and case number.
    pub case: Option<String>,
    pub case_no: Option<String>,
    /// In words (zh-CN): what breached, the value, the limit, the time.
    pub description: Option<String>,
}

/// `GET /alerts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertList {
    pub alerts: Vec<Alert>,
    pub more: bool,
}

/// Whether an alert is open or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Closed,
}

/// The live channel's `alert` message ([`crate::api::LiveEvent::Alert`]): an incident of (rule,
/// datastream) opened or closed, with the station (Thing) it concerns and its case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertEvent {
    /// The rule's id and name.
    pub rule: String,
    pub rule_name: String,
    /// The Datastream's `@iot.id` and its Thing's (the station; absent when it has none).
    pub datastream: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thing: Option<i64>,
    pub state: AlertState,
    /// The state the alert puts the datastream in on the map while open (`alarm`, `silent` for a
    /// silence rule); when closed, the map re-reads the station.
    pub map_state: crate::api::SensorState,
    /// The reading that opened or closed it (absent for silence, which no reading decides).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When: the breach's start on open, the recovery's reading on close (RFC 3339, Beijing).
    pub at: String,
    /// The incident's case (UUID) and number.
    pub case: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub case_no: Option<String>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use serde_json::json;

    #[test]
    fn new_rule() {
        golden(
            NewAlertRule {
                name: "水位超限".into(),
                scope: AlertScope::Datastream(5),
                condition: AlertCondition::Above { threshold: 3.0, clear: Some(2.8) },
                min_breach_seconds: 0,
                min_recover_seconds: 60,
            },
            r#"{"name":"水位超限","scope":{"datastream":5},"condition":{"kind":"above","threshold":3.0,"clear":2.8},
                "min_breach_seconds":0,"min_recover_seconds":60}"#,
        );
        let silence: NewAlertRule = serde_json::from_value(json!({
            "name": "断线", "scope": {"sensor": 2}, "condition": {"kind": "silence", "minutes": 30}
        }))
        .unwrap();
        assert_eq!(silence.condition, AlertCondition::Silence { minutes: 30 });
        assert!(
            serde_json::from_value::<NewAlertRule>(json!({
                "name": "x", "scope": {"datastream": 1}, "condition": {"kind": "above", "threshold": 1, "limit": 2}
            }))
            .is_err()
        );
    }

    #[test]
    fn alert() {
        golden(
            Alert {
                id: "r/5".into(),
                rule: "r".into(),
                datastream: 5,
                state: "open".into(),
                incidents: 1,
                opened: Some("2026-12-07T16:00:00+08:00".into()),
                closed: None,
                case: Some("0193".into()),
                case_no: Some("2026-000001".into()),
                description: Some("水位 3.2 超过阈值 3".into()),
            },
            r#"{"id":"r/5","rule":"r","datastream":5,"state":"open","incidents":1,
                "opened":"2026-12-07T16:00:00+08:00","closed":null,"case":"0193","case_no":"2026-000001",
                "description":"水位 3.2 超过阈值 3"}"#,
        );
    }
}
