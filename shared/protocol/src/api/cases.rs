//! Cases of the city-management workflow (案件, 业务流): opening one (`POST /cases`, a
//! [`NewCase`]), acting on it (`POST /cases/{id}/actions`, a [`CaseActionRequest`], answered by a
//! [`CaseActionResult`]), reading one (`GET /cases/{id}`, a [`CaseDoc`] with its transitions and
//! the deadline of the current stage) and listing them (`GET /cases`, a [`CaseList`]). A citizen
//! sees a report's case only as its public progress ([`CaseProgress`] inside `/reports/mine`):
//! steps and times, never staff notes or staff names.
//!
//! Requests refuse unknown members (a misspelt `photo` must not silently drop the evidence);
//! answers accept them. Times are RFC 3339 in Beijing time (`+08:00`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// `POST /cases` body (office or admin).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    /// The flow id (`city-standard` when absent, or `hotline-12345`); its newest version is used
    /// and kept for the case's whole life.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flow: Option<String>,
    /// The minor class code (`0102` 暴露垃圾); its 处置时限 limits the handling stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// `event` (事件, the default) or `component` (部件): codes repeat between the two trees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_kind: Option<String>,
    /// A GeoJSON Point (CGCS2000 lon/lat).
    pub location: Json,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `hotline` (the default for cases entered by the office), `inspector`, `sensor` or
    /// `citizen_report`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// What the source calls it (a hotline ticket number, `layer/entity` of a report …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ref: Option<String>,
    /// The asset concerned, `layer/entity-or-code` (`manhole/420111-JG-00007`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asset: Option<String>,
}

/// `POST /cases/{id}/actions` body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseActionRequest {
    /// The flow's action word: `accept register dispatch handle verify close return extend
    /// suspend urge rate` in the standard flow.
    pub action: String,
    /// Chosen by the client (a UUID): the same id again is the same action, answered again.
    pub action_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `user:NAME`, `department:GROUP`, or a bare user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// SHA-256 (hex) of photos already uploaded (`PUT /sync/blobs/{sha256}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
    /// 1–5 (评价).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
}

/// One applied action in a case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseTransition {
    pub action_id: String,
    pub action: String,
    /// The user who acted.
    pub actor: String,
    /// When (Beijing time).
    pub at: String,
    pub from: String,
    pub to: String,
    /// The assignee after the action (`user:li`, `department:排水队`).
    pub assignee: Option<String>,
    pub note: Option<String>,
    #[serde(default)]
    pub photos: Vec<String>,
    pub rating: Option<u8>,
}

/// An action the flow did not allow when it arrived from an offline device: kept, never lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRejected {
    pub action_id: String,
    pub action: String,
    pub actor: String,
    pub at: String,
    /// The refusal's kind (`wrong_state`) and its sentence.
    pub kind: String,
    pub reason: String,
    pub state_at_arrival: String,
}

/// The flow a case runs: id and the version it started with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseFlow {
    pub id: String,
    pub version: u32,
}

/// A case (`GET /cases/{id}`, and each entry of `GET /cases`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseDoc {
    /// The case feature's entity id (UUID) in the `cases` layer.
    pub id: String,
    /// The human case number (`2026-000123`), also the feature's code.
    pub case_no: String,
    pub flow: CaseFlow,
    pub state: String,
    /// The state's Chinese label (已派遣（处置中）).
    pub state_label: String,
    /// The state's English label (`Dispatched (being handled)`): the flow's `label.en`, or the
    /// state id made readable when the flow gives none; empty from servers that predate it.
    #[serde(default)]
    pub state_label_en: String,
    pub class_kind: Option<String>,
    pub class: Option<String>,
    pub description: Option<String>,
    pub source: String,
    pub source_ref: Option<String>,
    pub asset: Option<String>,
    /// GeoJSON Point, or `null`.
    pub location: Option<Json>,
    pub assignee: Option<String>,
    /// Where the dispatch rules would send the case now (`department:NAME`), while it waits for
    /// a dispatch; a `dispatch` without an `assignee` goes there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The reporting citizen (staff only; `null` for others).
    pub reporter: Option<String>,
    /// When the current stage started.
    pub stage_started: String,
    /// The current stage's deadline in working time (`null`: no clock runs in this stage).
    pub stage_deadline: Option<String>,
    /// The deadline has passed (computed at the answer's time).
    pub overdue: bool,
    /// The feature's version (one per transition).
    pub version: i64,
    pub transitions: Vec<CaseTransition>,
    #[serde(default)]
    pub rejected: Vec<CaseRejected>,
    /// What the caller may do now (the office's case page offers only these), in the flow's
    /// order; given on one case's answer (`GET /cases/{id}`, an action's answer), empty in lists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actions: Vec<CaseOffer>,
}

/// An action the caller may take on a case now, and what it must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOffer {
    pub action: String,
    pub label: String,
    pub label_en: String,
    /// Fields the request must carry: `note`, `assignee`, `rating`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    /// Photos (SHA-256 of uploaded blobs) the request must carry at least.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub min_photos: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// `POST /cases/{id}/actions` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseActionResult {
    /// The action id was already applied: nothing happened again, this is the first answer's
    /// transition.
    pub replayed: bool,
    pub transition: CaseTransition,
    pub case: CaseDoc,
}

/// `GET /cases` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaseList {
    #[serde(rename = "numberReturned")]
    pub number_returned: u64,
    /// More cases match beyond `limit`.
    pub more: bool,
    pub cases: Vec<CaseDoc>,
}

/// What a reporting citizen sees of the case their report opened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseProgress {
    pub case_no: String,
    pub state: String,
    pub state_label: String,
    /// The deadline of the current stage, when a clock runs.
    pub stage_deadline: Option<String>,
    /// Each step: what was done and when — no notes, no staff names.
    pub steps: Vec<ProgressStep>,
}

/// One step of a case's public progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressStep {
    pub action: String,
    /// The action's Chinese label (受理).
    pub label: String,
    pub state: String,
    pub state_label: String,
    pub at: String,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;
    use serde_json::json;

    #[test]
    fn action_request() {
        golden(
            CaseActionRequest {
                action: "dispatch".into(),
                action_id: "a-1".into(),
                note: None,
                assignee: Some("user:li".into()),
                photos: vec![],
                rating: None,
            },
            r#"{"action":"dispatch","action_id":"a-1","assignee":"user:li"}"#,
        );
        assert!(
            serde_json::from_value::<CaseActionRequest>(json!({"action":"handle","action_id":"x","photo":[]})).is_err()
        );
    }

    #[test]
    fn progress() {
        golden(
            CaseProgress {
                case_no: "2026-000001".into(),
                state: "accepted".into(),
                state_label: "已受理".into(),
                stage_deadline: Some("2026-12-07T10:00:00+08:00".into()),
                steps: vec![ProgressStep {
                    action: "accept".into(),
                    label: "受理".into(),
                    state: "accepted".into(),
                    state_label: "已受理".into(),
                    at: "2026-12-07T09:00:00+08:00".into(),
                }],
            },
            r#"{"case_no":"2026-000001","state":"accepted","state_label":"已受理",
                "stage_deadline":"2026-12-07T10:00:00+08:00",
                "steps":[{"action":"accept","label":"受理","state":"accepted","state_label":"已受理",
                          "at":"2026-12-07T09:00:00+08:00"}]}"#,
        );
    }
}

/// One dispatch rule (`GET`/`PUT /cases/routing`): every condition given must match; the most
/// specific matching rule wins (grid over community over street, then the longer class prefix).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// A class code or a prefix of one (`01`: a whole major class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Unit grid code (单元网格编码).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    /// The department (auth group) the case is dispatched to.
    pub department: String,
}

/// The dispatch rules (派遣规则) of a server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingDoc {
    pub rules: Vec<RouteRule>,
}
