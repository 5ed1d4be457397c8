//! Offline field tasks (外业任务, issue 15): the cases dispatched to an inspector, as their device
//! carries them, and the actions the inspector recorded offline.
//!
//! - `GET /sync/tasks?replica=ID` answers a [`TaskList`]: every open case assigned to the caller
//!   (or to a department of theirs), as [`TaskDoc`]s. The device replaces its task table with it,
//!   so a task closed or reassigned in the office disappears at the next sync. A replica the
//!   server cuts carries the same list.
//! - `POST /sync/tasks/actions` sends a [`TaskActionBatch`] (the device's queued actions, in the
//!   order it made them) and answers [`TaskActionResults`], one [`TaskActionResult`] per action.
//!   Idempotent by each action's `action_id`: a batch sent twice applies nothing twice. An action
//!   the flow does not allow when it arrives is kept in the case as rejected (never
//!   last-writer-wins on the state field) and answered `rejected` with the reason.
//!
//! Times are RFC 3339 (answers in Beijing time, `+08:00`).

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// One open case assigned to the inspector, as the device shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskDoc {
    /// The case's entity id (UUID).
    pub case_id: String,
    /// `2026-000123`.
    pub case_no: String,
    pub flow_id: String,
    pub flow_version: u32,
    pub state: String,
    /// The state's Chinese label.
    pub state_label: String,
    pub class_kind: Option<String>,
    /// Minor class code (`0102`).
    pub class: Option<String>,
    pub description: Option<String>,
    /// `layer/entity-or-code` of the asset concerned.
    pub asset: Option<String>,
    /// GeoJSON Point.
    pub location: Option<Json>,
    /// `user:li` or `department:排水队`.
    pub assignee: Option<String>,
    /// The current stage's deadline (working time), when a clock runs.
    pub stage_deadline: Option<String>,
    pub overdue: bool,
    /// SHA-256 of the photos recorded on the case so far (report, earlier actions).
    #[serde(default)]
    pub photos: Vec<String>,
    /// The case feature's version the task was read from.
    pub version: i64,
}

/// `GET /sync/tasks` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskList {
    /// The user the tasks are for.
    pub user: String,
    /// When the server read them.
    pub as_of: String,
    pub tasks: Vec<TaskDoc>,
}

/// One action recorded offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskAction {
    pub case_id: String,
    /// The flow's action word (`handle`, `verify`).
    pub action: String,
    /// A UUID the device chose when the action was recorded.
    pub action_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// SHA-256 of photos, uploaded first (`PUT /sync/blobs/{sha256}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
    /// When the inspector recorded it, by the device's clock (RFC 3339).
    pub device_time: String,
}

/// `POST /sync/tasks/actions` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskActionBatch {
    /// The replica the actions were recorded in (its owner must send them).
    pub replica: uuid::Uuid,
    pub actions: Vec<TaskAction>,
}

/// What became of one offline action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskActionOutcome {
    /// Applied now: a transition of the case.
    Applied,
    /// Applied by an earlier send of the same action id.
    Duplicate,
    /// Not allowed when it arrived; kept in the case's rejected actions.
    Rejected,
    /// Rejected by an earlier send of the same action id.
    AlreadyRejected,
    /// Not judged and not recorded (no such case, not the sender's case, a photo not uploaded):
    /// the device keeps it and may send it again.
    Refused,
}

/// One answer of [`TaskActionResults`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskActionResult {
    pub action_id: String,
    pub case_id: String,
    pub outcome: TaskActionOutcome,
    /// The refusal's kind (`wrong_state`) for rejected and refused actions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The case's state after the action was judged (`None` when there is no such case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

/// `POST /sync/tasks/actions` answer, in the batch's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskActionResults {
    pub results: Vec<TaskActionResult>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;

    #[test]
    fn action_and_result() {
        golden(
            TaskAction {
                case_id: "c".into(),
                action: "handle".into(),
                action_id: "a-1".into(),
                note: None,
                photos: vec![],
                device_time: "2026-12-07T10:00:00+08:00".into(),
            },
            r#"{"case_id":"c","action":"handle","action_id":"a-1","device_time":"2026-12-07T10:00:00+08:00"}"#,
        );
        golden(
            TaskActionResult {
                action_id: "a-1".into(),
                case_id: "c".into(),
                outcome: TaskActionOutcome::Rejected,
                kind: Some("wrong_state".into()),
                reason: Some("no".into()),
                state: Some("returned".into()),
            },
            r#"{"action_id":"a-1","case_id":"c","outcome":"rejected","kind":"wrong_state","reason":"no",
                "state":"returned"}"#,
        );
    }
}
