//! Offline field tasks (外业任务): the cases dispatched to the replica's user, and the actions the
//! inspector records on them offline.
//!
//! Why two tables and not a synced `cases` layer: a case's state must move only by the flow's
//! rules, judged on the server against the case as it is when the action arrives. Syncing the
//! state field would make the tablet's edit a last-writer-wins write over whatever the office did
//! meanwhile. So the device holds a read-only copy of its open tasks (`sk_tasks`, replaced whole by
//! each sync's list: a task closed or reassigned in the office disappears), and records actions in
//! an append-only queue (`sk_task_actions`) with a UUID each. The sync client sends the pending
//! ones; the server merges them by the flow (`shikong_workflow::merge`) and answers each: applied,
//! or rejected with the reason (kept in the case and here, shown to both sides). The same action id
//! sent twice is answered, never applied twice.
//!
//! Recording validates locally with the same rules where it can (the shipped flows): the task's
//! state as last synced, with this device's pending actions applied in order. The server's answer
//! is authoritative.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, params};
use shikong_protocol::api::tasks::{TaskAction, TaskActionOutcome, TaskActionResults, TaskDoc, TaskList};
use shikong_workflow::{ActionRequest, Actor, Assignee, Case, FlowRef, FlowRegistry, Stamp};
use uuid::Uuid;

use crate::error::{ReplicaError, Result};
use crate::format::TASKS_DDL;
use crate::replica::Replica;

/// Where a queued action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskActionStatus {
    /// Recorded here, not yet answered by the server.
    Pending,
    /// The server applied it (now or at an earlier send).
    Applied,
    /// The flow did not allow it when it arrived; the server keeps it with the case.
    Rejected,
}

impl TaskActionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskActionStatus::Pending => "pending",
            TaskActionStatus::Applied => "applied",
            TaskActionStatus::Rejected => "rejected",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "pending" => TaskActionStatus::Pending,
            "applied" => TaskActionStatus::Applied,
            "rejected" => TaskActionStatus::Rejected,
            other => return Err(ReplicaError::Corrupt(format!("sk_task_actions: status `{other}`"))),
        })
    }
}

/// An action recorded on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedTaskAction {
    pub action_id: String,
    pub case_id: String,
    pub case_no: Option<String>,
    pub action: String,
    pub note: Option<String>,
    pub photos: Vec<String>,
    /// RFC 3339, device clock.
    pub device_time: String,
    pub status: TaskActionStatus,
    /// For rejected (or refused) actions: the refusal's kind and sentence.
    pub kind: Option<String>,
    pub reason: Option<String>,
    /// The case's state the server answered with.
    pub state: Option<String>,
}

impl Replica {
    fn ensure_task_tables(&self) -> Result<()> {
        self.conn.execute_batch(TASKS_DDL)?;
        Ok(())
    }

    /// The open tasks of the replica's user as of the last sync, by deadline (none last).
    pub fn tasks(&self) -> Result<Vec<TaskDoc>> {
        self.ensure_task_tables()?;
        let mut stmt = self
            .conn
            .prepare("SELECT case_id, doc FROM sk_tasks ORDER BY stage_deadline IS NULL, stage_deadline, case_no")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, doc) = row?;
            out.push(
                serde_json::from_str(&doc).map_err(|e| ReplicaError::Corrupt(format!("sk_tasks, case {id}: {e}")))?,
            );
        }
        Ok(out)
    }

    /// One task by case id or case number.
    pub fn task(&self, case: &str) -> Result<Option<TaskDoc>> {
        Ok(self.tasks()?.into_iter().find(|t| t.case_id == case || t.case_no == case))
    }

    /// Replaces the task table with the server's list (one transaction): tasks no longer listed
    /// (closed, reassigned) go.
    pub fn replace_tasks(&mut self, list: &TaskList) -> Result<()> {
        self.ensure_task_tables()?;
        let tx = self.conn.unchecked_transaction()?;
        tx.execute("DELETE FROM sk_tasks", [])?;
        for t in &list.tasks {
            let doc = serde_json::to_string(t).map_err(|e| ReplicaError::Corrupt(e.to_string()))?;
            tx.execute(
                "INSERT OR REPLACE INTO sk_tasks (case_id, case_no, state, stage_deadline, doc) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![t.case_id, t.case_no, t.state, sortable(t.stage_deadline.as_deref()), doc],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Records `action` on the task `case` (id or number) offline: validated against the task as
    /// last synced plus this device's pending actions, then queued with a new action id. Photos
    /// must be attachments of this replica ([`Replica::add_attachment`]). Nothing is queued when
    /// refused.
    pub fn record_task_action(
        &mut self,
        case: &str,
        action: &str,
        note: Option<&str>,
        photos: &[String],
        at: Timestamp,
    ) -> Result<QueuedTaskAction> {
        let task = self.task(case)?.ok_or_else(|| ReplicaError::NoSuchTask(case.to_owned()))?;
        let photos: Vec<String> = photos.iter().map(|p| p.to_ascii_lowercase()).collect();
        for p in &photos {
            let held: Option<i64> =
                self.conn.query_row("SELECT 1 FROM sk_blobs WHERE sha256 = ?1", [p], |r| r.get(0)).optional()?;
            if held.is_none() {
                return Err(ReplicaError::NoSuchAttachment(p.clone()));
            }
        }
        let note = note.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned);
        let queued = QueuedTaskAction {
            action_id: Uuid::new_v4().hyphenated().to_string(),
            case_id: task.case_id.clone(),
            case_no: Some(task.case_no.clone()),
            action: action.to_owned(),
            note,
            photos,
            device_time: at.to_string(),
            status: TaskActionStatus::Pending,
            kind: None,
            reason: None,
            state: None,
        };
        let pending: Vec<QueuedTaskAction> = self
            .task_actions()?
            .into_iter()
            .filter(|a| a.case_id == task.case_id && a.status == TaskActionStatus::Pending)
            .collect();
        self.check_locally(&task, &pending, &queued)?;
        self.conn.execute(
            "INSERT INTO sk_task_actions (action_id, case_id, case_no, action, note, photos, device_time) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                queued.action_id,
                queued.case_id,
                queued.case_no,
                queued.action,
                queued.note,
                serde_json::to_string(&queued.photos).map_err(|e| ReplicaError::Corrupt(e.to_string()))?,
                queued.device_time,
            ],
        )?;
        Ok(queued)
    }

    /// The flow's judgement of `next` on the task as this device knows it (the shipped flows
    /// only: a flow this build does not know is left to the server).
    fn check_locally(&self, task: &TaskDoc, pending: &[QueuedTaskAction], next: &QueuedTaskAction) -> Result<()> {
        let Ok(flows) = FlowRegistry::shipped() else { return Ok(()) };
        let Some(flow) = flows.get(&FlowRef { id: task.flow_id.clone(), version: task.flow_version }) else {
            return Ok(());
        };
        let assignee = task.assignee.as_deref().and_then(|a| a.parse::<Assignee>().ok());
        let departments = match &assignee {
            Some(Assignee::Department(d)) => vec![d.clone()],
            _ => Vec::new(),
        };
        let actor = Actor { user: self.info.user.clone(), roles: vec!["inspector".into()], departments };
        let mut case = Case {
            flow: flow.flow_ref(),
            state: task.state.clone(),
            assignee,
            reporter: None,
            class_limit: None,
            stage_started: Stamp(0),
            history: Vec::new(),
            rejected: Vec::new(),
        };
        let request = |a: &QueuedTaskAction| ActionRequest {
            action: a.action.clone(),
            action_id: a.action_id.clone(),
            note: a.note.clone(),
            assignee: None,
            photos: a.photos.clone(),
            rating: None,
            actor: actor.clone(),
            at: Stamp(0),
        };
        for p in pending {
            // Earlier pending actions move the local picture on; one the flow refuses is the
            // server's to judge and changes nothing here.
            let _ = shikong_workflow::apply(flow, &mut case, &request(p));
        }
        match shikong_workflow::decide(flow, &case, &request(next)) {
            // Applied, or already known by its id: the server answers that.
            Ok(_) => Ok(()),
            Err(r) => Err(ReplicaError::TaskRefused {
                case: task.case_no.clone(),
                kind: r.kind().to_owned(),
                reason: r.to_string(),
            }),
        }
    }

    /// Every recorded action, oldest first.
    pub fn task_actions(&self) -> Result<Vec<QueuedTaskAction>> {
        self.ensure_task_tables()?;
        let mut stmt = self.conn.prepare(
            "SELECT action_id, case_id, case_no, action, note, photos, device_time, status, kind, reason, state \
             FROM sk_task_actions ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, String>(7)?,
                r.get::<_, Option<String>>(8)?,
                r.get::<_, Option<String>>(9)?,
                r.get::<_, Option<String>>(10)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (action_id, case_id, case_no, action, note, photos, device_time, status, kind, reason, state) = row?;
            let photos = serde_json::from_str(&photos)
                .map_err(|e| ReplicaError::Corrupt(format!("sk_task_actions {action_id}: photos: {e}")))?;
            out.push(QueuedTaskAction {
                action_id,
                case_id,
                case_no,
                action,
                note,
                photos,
                device_time,
                status: TaskActionStatus::parse(&status)?,
                kind,
                reason,
                state,
            });
        }
        Ok(out)
    }

    /// The actions to send, in the order they were recorded.
    pub fn pending_task_actions(&self) -> Result<Vec<TaskAction>> {
        Ok(self
            .task_actions()?
            .into_iter()
            .filter(|a| a.status == TaskActionStatus::Pending)
            .map(|a| TaskAction {
                case_id: a.case_id,
                action: a.action,
                action_id: a.action_id,
                note: a.note,
                photos: a.photos,
                device_time: a.device_time,
            })
            .collect())
    }

    /// Writes the server's answers back (one transaction). A `refused` answer (not judged: the
    /// case is gone or no longer the user's to act on, a photo not uploaded) keeps the action
    /// pending with the reason, so it is shown and sent again.
    pub fn apply_task_results(&mut self, answer: &TaskActionResults) -> Result<()> {
        self.ensure_task_tables()?;
        let tx = self.conn.unchecked_transaction()?;
        for r in &answer.results {
            let status = match r.outcome {
                TaskActionOutcome::Applied | TaskActionOutcome::Duplicate => TaskActionStatus::Applied,
                TaskActionOutcome::Rejected | TaskActionOutcome::AlreadyRejected => TaskActionStatus::Rejected,
                TaskActionOutcome::Refused => TaskActionStatus::Pending,
            };
            tx.execute(
                "UPDATE sk_task_actions SET status = ?2, kind = coalesce(?3, kind), reason = coalesce(?4, reason), \
                 state = coalesce(?5, state) WHERE action_id = ?1 AND status = 'pending'",
                params![r.action_id, status.as_str(), r.kind, r.reason, r.state],
            )?;
        }
        tx.commit()?;
        Ok(())
    }
}

/// Deadlines sort as instants, whatever offset the text carries.
fn sortable(t: Option<&str>) -> Option<String> {
    let t = t?;
    Some(t.parse::<Timestamp>().map_or_else(|_| t.to_owned(), |ts| ts.to_string()))
}
