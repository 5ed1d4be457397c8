//! Offline field tasks at sync (issue 15): the actions the inspector recorded offline go to
//! `POST /sync/tasks/actions` (their photos were uploaded with the other attachments first), the
//! answers are written back into the replica, then the replica's task table is replaced with
//! `GET /sync/tasks`. Sending is idempotent by each action's id, so a sync interrupted after the
//! server applied a batch but before the answer arrived just sends it again.

use shikong_protocol::api::cases::{CaseActionRequest, CaseActionResult};
use shikong_protocol::api::tasks as wire;
use shikong_protocol::url::encode_component;
use shikong_replica::Replica;

use crate::{Result, SyncClient, SyncError};

const TASKS: &str = "/sync/tasks";
const ACTIONS: &str = "/sync/tasks/actions";
/// Actions per request (the server takes up to 500).
const BATCH: usize = 200;

/// What the task step of a sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskSync {
    /// Open tasks on the device after the sync.
    pub tasks: usize,
    /// Offline actions the server applied in this sync (first time or confirmed again).
    pub applied: usize,
    /// `(case, action, reason)` of offline actions the flow did not allow when they arrived: kept
    /// in the case on the server and on the device.
    pub rejected: Vec<(String, String, String)>,
    /// Actions the server could not judge yet (kept pending, sent again next time).
    pub refused: usize,
}

impl SyncClient {
    /// Acts on a case online (`POST /cases/{case}/actions`, `case` its id or number): the
    /// citizen's 评价 of their report's case, an inspector's action when online. Idempotent by the
    /// request's `action_id`; a refusal is the server's problem+json as [`SyncError::Server`].
    pub fn case_action(&self, case: &str, req: &CaseActionRequest) -> Result<CaseActionResult> {
        let route = format!("/cases/{}/actions", encode_component(case));
        let r = Self::check(self.post_json(&route, req)?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{route}: {e}")))
    }

    /// The signed-in user's open tasks.
    pub fn tasks(&self) -> Result<wire::TaskList> {
        let r = Self::check(self.send(&|| self.http.get(self.url(TASKS)))?)?;
        Self::json(r).map_err(|e| SyncError::Protocol(format!("{TASKS}: {e}")))
    }

    /// Sends the replica's pending offline actions, records the answers, and refreshes its tasks.
    pub fn sync_tasks(&self, replica: &mut Replica) -> Result<TaskSync> {
        let mut out = TaskSync::default();
        let pending = replica.pending_task_actions()?;
        for chunk in pending.chunks(BATCH) {
            let batch = wire::TaskActionBatch { replica: replica.info().id, actions: chunk.to_vec() };
            let r = Self::check(self.post_json(ACTIONS, &batch)?)?;
            let answer: wire::TaskActionResults =
                Self::json(r).map_err(|e| SyncError::Protocol(format!("{ACTIONS}: {e}")))?;
            replica.apply_task_results(&answer)?;
            for r in &answer.results {
                match r.outcome {
                    wire::TaskActionOutcome::Applied | wire::TaskActionOutcome::Duplicate => out.applied += 1,
                    wire::TaskActionOutcome::Rejected | wire::TaskActionOutcome::AlreadyRejected => {
                        let action = chunk.iter().find(|a| a.action_id == r.action_id).map(|a| a.action.clone());
                        out.rejected.push((
                            r.case_id.clone(),
                            action.unwrap_or_default(),
                            r.reason.clone().unwrap_or_default(),
                        ));
                    }
                    wire::TaskActionOutcome::Refused => out.refused += 1,
                }
            }
        }
        let r = self.send(&|| self.http.get(self.url(TASKS)))?;
        if r.status() == reqwest::StatusCode::NOT_FOUND && pending.is_empty() {
            // A server without offline tasks (older than them): the data sync stands, tasks as they were.
            out.tasks = replica.tasks()?.len();
            return Ok(out);
        }
        let list: wire::TaskList =
            Self::json(Self::check(r)?).map_err(|e| SyncError::Protocol(format!("{TASKS}: {e}")))?;
        replica.replace_tasks(&list)?;
        out.tasks = list.tasks.len();
        Ok(out)
    }
}
