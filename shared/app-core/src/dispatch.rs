//! The office's dispatch board (调度台, issue 16) over the case workflow: every open case from
//! `GET /cases`, grouped by the stage it is in (in the standard flow's order) and, inside a
//! stage, by the stage's deadline (overdue first, no deadline last); one case with its
//! transitions; and the office's actions on a case (受理 accept, 立案 register, 派遣 dispatch,
//! 核查 verify, 结案 close, 催办 urge, 延期 extend), each sent once with a fresh action id.
//!
//! Online only: the office works against the server (a desktop replica is later work). The
//! grouping is pure ([`board`]), so the views and the tests share it without a server.

use jiff::Timestamp;
use shikong_protocol::api::cases::{CaseActionRequest, CaseActionResult, CaseDoc};
pub use shikong_sync_client::{CaseQuery, RawAnswer, SyncClient};

use crate::{AppError, Device};

/// Stages in the order the board shows them (the standard flow's, then the hotline's extras);
/// a state not listed comes after these, by name.
pub const STAGE_ORDER: [&str; 9] =
    ["reported", "accepted", "registered", "dispatched", "handled", "verified", "suspended", "visited", "returned"];

/// States that end a case: not on the board.
pub const FINAL_STATES: [&str; 3] = ["closed", "dismissed", "rated"];

/// The actions the board offers and their zh-CN labels.
pub const OFFICE_ACTIONS: [(&str, &str); 7] = [
    ("accept", "受理"),
    ("register", "立案"),
    ("dispatch", "派遣"),
    ("verify", "核查"),
    ("close", "结案"),
    ("urge", "催办"),
    ("extend", "延期"),
];

/// Cases fetched for the board at most (the server's `limit`).
pub const BOARD_LIMIT: u32 = 500;

/// An assignee's current tasks fetched at most.
pub const TASKS_LIMIT: u32 = 50;

/// One stage of the board.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BoardColumn {
    pub state: String,
    /// The server's Chinese label of the state (已派遣（处置中）).
    pub label: String,
    /// Overdue first, then by deadline, then by case number.
    pub cases: Vec<CaseDoc>,
}

/// The dispatch board.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DispatchBoard {
    pub columns: Vec<BoardColumn>,
    /// Open cases on the board that are overdue.
    pub overdue: usize,
    /// More cases exist than were fetched.
    pub more: bool,
}

fn stage_rank(state: &str) -> usize {
    STAGE_ORDER.iter().position(|s| *s == state).unwrap_or(STAGE_ORDER.len())
}

fn deadline(c: &CaseDoc) -> Option<Timestamp> {
    c.stage_deadline.as_deref().and_then(|d| d.parse().ok())
}

/// Groups open cases by stage and sorts each stage: overdue first, then by deadline (none last),
/// then by case number. Final states are left out.
pub fn board(cases: Vec<CaseDoc>, more: bool) -> DispatchBoard {
    let mut columns: Vec<BoardColumn> = Vec::new();
    for c in cases.into_iter().filter(|c| !FINAL_STATES.contains(&c.state.as_str())) {
        match columns.iter_mut().find(|col| col.state == c.state) {
            Some(col) => col.cases.push(c),
            None => columns.push(BoardColumn { state: c.state.clone(), label: c.state_label.clone(), cases: vec![c] }),
        }
    }
    columns.sort_by(|a, b| stage_rank(&a.state).cmp(&stage_rank(&b.state)).then_with(|| a.state.cmp(&b.state)));
    for col in &mut columns {
        col.cases.sort_by(|a, b| {
            b.overdue
                .cmp(&a.overdue)
                .then_with(|| match (deadline(a), deadline(b)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                })
                .then_with(|| a.case_no.cmp(&b.case_no))
        });
    }
    let overdue = columns.iter().flat_map(|c| &c.cases).filter(|c| c.overdue).count();
    DispatchBoard { columns, overdue, more }
}

/// `user:NAME` or `department:NAME` from what the dispatcher typed: a bare name is a user.
pub fn assignee(text: &str) -> Result<String, AppError> {
    let t = text.trim();
    let (kind, name) = t.split_once(':').map_or(("user", t), |(k, n)| (k.trim(), n.trim()));
    if name.is_empty() {
        return Err(AppError::input("assignee", "required: a user name or department:NAME"));
    }
    match kind {
        "user" | "department" => Ok(format!("{kind}:{name}")),
        _ => Err(AppError::input("assignee", format!("`{kind}` is neither user nor department"))),
    }
}

impl Device {
    /// The dispatch board: the open cases the signed-in user may see, grouped and sorted.
    pub fn dispatch_board(&self) -> Result<DispatchBoard, AppError> {
        let list = self.client()?.cases(&CaseQuery { limit: Some(BOARD_LIMIT), ..CaseQuery::default() })?;
        Ok(board(list.cases, list.more))
    }

    /// What `assignee_text` (a user name or `department:NAME`) holds now: their open cases,
    /// overdue first — shown while the office picks whom to dispatch to.
    pub fn assignee_tasks(&self, assignee_text: &str) -> Result<Vec<CaseDoc>, AppError> {
        let who = assignee(assignee_text)?;
        let q = CaseQuery { assignee: Some(who), limit: Some(TASKS_LIMIT), ..CaseQuery::default() };
        let list = self.client()?.cases(&q)?;
        Ok(board(list.cases, list.more).columns.into_iter().flat_map(|c| c.cases).collect())
    }

    /// One case with its transitions.
    pub fn case_page(&self, case: &str) -> Result<CaseDoc, AppError> {
        Ok(self.client()?.case(case)?)
    }

    /// Acts on a case as the signed-in user, with a fresh action id; `assignee` is required by
    /// `dispatch` (a user name or `department:NAME`) and passed on for the others when given.
    pub fn act_on_case(
        &self,
        case: &str,
        action: &str,
        assignee_text: Option<&str>,
        note: Option<&str>,
    ) -> Result<CaseActionResult, AppError> {
        // The case page offers what the server says the user may do now (`CaseDoc::actions`);
        // the server decides again when the action arrives.
        if action.is_empty() || action.len() > 64 || !action.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return Err(AppError::input("action", format!("`{action}` is not an action id")));
        }
        let assignee = match assignee_text.filter(|a| !a.trim().is_empty()) {
            Some(a) => Some(assignee(a)?),
            None if action == "dispatch" => return Err(AppError::input("assignee", "dispatch needs an assignee")),
            None => None,
        };
        let req = CaseActionRequest {
            action: action.to_owned(),
            action_id: uuid::Uuid::now_v7().to_string(),
            note: note.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned),
            assignee,
            photos: Vec::new(),
            rating: None,
        };
        Ok(self.client()?.case_action(case, &req)?)
    }

    /// The signed-in user's client (session token, the device's CA setting), for a shell that
    /// sends many requests through one connection pool: the desktop map's styles and tiles
    /// ([`SyncClient::get_raw`]). Signing in or out makes it stale: take a new one then.
    pub fn server_client(&self) -> Result<SyncClient, AppError> {
        self.client()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_protocol::api::cases::CaseFlow;

    fn case(no: &str, state: &str, deadline: Option<&str>, overdue: bool) -> CaseDoc {
        CaseDoc {
            id: format!("id-{no}"),
            case_no: no.into(),
            flow: CaseFlow { id: "city-standard".into(), version: 1 },
            state: state.into(),
            state_label: format!("label-{state}"),
            state_label_en: format!("label-en-{state}"),
            class_kind: None,
            class: None,
            description: None,
            source: "hotline".into(),
            source_ref: None,
            asset: None,
            location: None,
            assignee: None,
            route: None,
            reporter: None,
            stage_started: "2026-12-01T09:00:00+08:00".into(),
            stage_deadline: deadline.map(str::to_owned),
            overdue,
            version: 1,
            transitions: vec![],
            rejected: vec![],
            actions: vec![],
        }
    }

    #[test]
    fn stages_in_flow_order_overdue_first_then_by_deadline() {
        let b = board(
            vec![
                case("4", "dispatched", Some("2026-12-05T10:00:00+08:00"), false),
                case("1", "reported", None, false),
                case("2", "reported", Some("2026-12-03T10:00:00+08:00"), false),
                case("3", "reported", Some("2026-12-04T10:00:00+08:00"), true),
                case("5", "closed", None, false),
                case("6", "zzz", None, false),
                case("7", "reported", Some("2026-12-03T09:00:00+08:00"), false),
            ],
            false,
        );
        let shape: Vec<(&str, Vec<&str>)> = b
            .columns
            .iter()
            .map(|c| (c.state.as_str(), c.cases.iter().map(|c| c.case_no.as_str()).collect()))
            .collect();
        assert_eq!(
            shape,
            [("reported", vec!["3", "7", "2", "1"]), ("dispatched", vec!["4"]), ("zzz", vec!["6"])],
            "closed is not on the board"
        );
        assert_eq!(b.overdue, 1);
        assert_eq!(b.columns[0].label, "label-reported");
    }

    #[test]
    fn assignees_are_users_or_departments() {
        assert_eq!(assignee(" li ").ok().as_deref(), Some("user:li"));
        assert_eq!(assignee("department: 排水队").ok().as_deref(), Some("department:排水队"));
        assert_eq!(assignee("user:zhang").ok().as_deref(), Some("user:zhang"));
        assert!(matches!(assignee("team:x"), Err(AppError::Input { .. })));
        assert!(matches!(assignee("department:"), Err(AppError::Input { .. })));
    }

    #[test]
    fn actions_are_checked_before_the_server() {
        let (_dir, d) = crate::testkit::device();
        // Any action id the case offers goes to the server (it decides); malformed ids do not.
        for bad in ["", "Handle", "accept; drop", "处置"] {
            assert!(matches!(d.act_on_case("x", bad, None, None), Err(AppError::Input { .. })), "{bad:?}");
        }
        assert!(matches!(d.act_on_case("x", "dispatch", None, None), Err(AppError::Input { .. })));
        assert!(matches!(d.act_on_case("x", "handle", None, None), Err(AppError::NotSignedIn)));
        assert!(matches!(d.act_on_case("x", "accept", None, None), Err(AppError::NotSignedIn)));
    }
}
