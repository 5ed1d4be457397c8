//! Field tasks (外业任务) and a citizen's case progress in the app (issue 15).
//!
//! An inspector's tasks are the cases dispatched to them, carried by the open offline area's
//! replica (`sk_tasks`, refreshed by every sync) — so the list works without signal. The app
//! shows them overdue first, then by the current stage's deadline ([`sort_tasks`]), and records
//! 处置/核查 (`handle`/`verify`) offline with a note and evidence photos: the photos become
//! attachments of the replica (the same path as a collected feature's) and the action waits in
//! the replica's queue (`sk_task_actions`) until the next sync sends it. The replica judges the
//! action by the flow as far as the device knows the case; the server's answer (applied or
//! rejected with the reason) comes back at sync and is shown beside the task.
//!
//! The map shows the same tasks as markers ([`tasks_geojson`]: a GeoJSON FeatureCollection of the
//! tasks with a location, each with its case number and [`Urgency`] — overdue, due today in Beijing
//! time, later), read from the replica like the list, so it works offline too.
//!
//! A citizen follows each report's case through `/reports/mine` (its public steps) and rates it
//! (评价, `rate`, 1–5) once it is closed — online, through the sync client; before closing the
//! app refuses without asking the server.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};
use serde_json::{Value as Json, json};
use shikong_protocol::api::cases::{CaseActionRequest, CaseProgress};
use shikong_protocol::api::tasks::TaskDoc;
use shikong_replica::{QueuedTaskAction, Replica};

use crate::collect::EvidencePhoto;
use crate::{AppError, Device};

/// The actions an inspector records offline.
pub const FIELD_ACTIONS: [&str; 2] = ["handle", "verify"];

/// Case states a reporter may rate from (the standard flow's 结案, the hotline's 回访).
const RATEABLE: [&str; 2] = ["closed", "visited"];

/// How soon a task is due: the colour of its marker on the map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Urgency {
    /// The stage's deadline has passed.
    Overdue,
    /// Due later today (the calendar day in Beijing time).
    DueToday,
    /// Due on a later day, or no deadline.
    Later,
}

impl Urgency {
    /// The word the map's marker styles use (`overdue`, `today`, `later`).
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Overdue => "overdue",
            Urgency::DueToday => "today",
            Urgency::Later => "later",
        }
    }
}

/// One task as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskItem {
    pub task: TaskDoc,
    /// The stage's deadline has passed (as the server said at the last sync, or by the clock now).
    pub overdue: bool,
    /// Overdue, due today or later (as of the moment the list was read).
    pub urgency: Urgency,
    /// This device's actions on the task not yet answered by the server.
    pub pending: usize,
}

impl TaskItem {
    /// The task's point (lon, lat), when it has one.
    pub fn point(&self) -> Option<(f64, f64)> {
        let c = self.task.location.as_ref()?.get("coordinates")?.as_array()?;
        Some((c.first()?.as_f64()?, c.get(1)?.as_f64()?))
    }
}

fn deadline(t: &TaskDoc) -> Option<Timestamp> {
    t.stage_deadline.as_deref().and_then(|d| d.parse::<Timestamp>().ok())
}

/// Beijing time (UTC+08:00, no DST since 1991): whose calendar day "today" is.
fn beijing() -> TimeZone {
    TimeZone::fixed(Offset::constant(8))
}

fn urgency(overdue: bool, due: Option<Timestamp>, now: Timestamp) -> Urgency {
    let tz = beijing();
    match due {
        _ if overdue => Urgency::Overdue,
        Some(d) if d.to_zoned(tz.clone()).date() == now.to_zoned(tz).date() => Urgency::DueToday,
        _ => Urgency::Later,
    }
}

/// The tasks that have a location as a GeoJSON FeatureCollection of points, in the list's order,
/// for the map's task markers: each feature's `id` and `case_id` is the case's id, with
/// `case_no` (the marker's label), `urgency` ([`Urgency::as_str`]), `state_label` and
/// `deadline`. Tasks without a location are left out (the list still shows them).
pub fn tasks_geojson(items: &[TaskItem]) -> Json {
    let features: Vec<Json> = items
        .iter()
        .filter_map(|t| {
            let (lon, lat) = t.point()?;
            Some(json!({
                "type": "Feature",
                "id": t.task.case_id,
                "geometry": {"type": "Point", "coordinates": [lon, lat]},
                "properties": {
                    "case_id": t.task.case_id,
                    "case_no": t.task.case_no,
                    "urgency": t.urgency.as_str(),
                    "state_label": t.task.state_label,
                    "deadline": t.task.stage_deadline,
                },
            }))
        })
        .collect();
    json!({"type": "FeatureCollection", "features": features})
}

/// The tasks overdue first, then by deadline (none last), then by case number; `actions` (this
/// device's queue) gives each its count of unanswered actions.
pub fn sort_tasks(tasks: Vec<TaskDoc>, actions: &[QueuedTaskAction], now: Timestamp) -> Vec<TaskItem> {
    let mut items: Vec<(Option<Timestamp>, TaskItem)> = tasks
        .into_iter()
        .map(|task| {
            let due = deadline(&task);
            let overdue = task.overdue || due.is_some_and(|d| d < now);
            let pending = actions
                .iter()
                .filter(|a| a.case_id == task.case_id && a.status == shikong_replica::TaskActionStatus::Pending)
                .count();
            let urgency = urgency(overdue, due, now);
            (due, TaskItem { task, overdue, urgency, pending })
        })
        .collect();
    items.sort_by(|(da, a), (db, b)| {
        (!a.overdue, da.is_none(), da, &a.task.case_no).cmp(&(!b.overdue, db.is_none(), db, &b.task.case_no))
    });
    items.into_iter().map(|(_, t)| t).collect()
}

/// Whether a report's case may be rated now.
pub fn can_rate(progress: &CaseProgress) -> bool {
    RATEABLE.contains(&progress.state.as_str())
}

impl Device {
    /// The open area's tasks and this device's queued actions, read from its replica.
    pub(crate) fn tasks_of(&self, r: &Replica) -> Result<(Vec<TaskItem>, Vec<QueuedTaskAction>), AppError> {
        let actions = r.task_actions()?;
        Ok((sort_tasks(r.tasks()?, &actions, Timestamp::now()), actions))
    }

    /// Records 处置 or 核查 on the open area's task `case` (id or number) offline, with a note and
    /// evidence photos; sent at the next sync. Nothing is written when the flow refuses it as the
    /// device knows the case (a missing photo, a wrong state).
    pub fn record_task(
        &self,
        case: &str,
        action: &str,
        note: &str,
        photos: &[EvidencePhoto],
    ) -> Result<QueuedTaskAction, AppError> {
        if !FIELD_ACTIONS.contains(&action) {
            return Err(AppError::input("action", format!("`{action}`: 只能处置或核查 / only handle or verify")));
        }
        let mut r = self.active_replica()?;
        let queued = r.batch(|r| {
            let mut shas = Vec::new();
            for p in photos {
                shas.push(r.add_attachment(&p.photo.bytes, &p.photo.mime, &p.evidence)?);
            }
            r.record_task_action(case, action, Some(note), &shas, Timestamp::now())
        })?;
        self.refresh_replica(&r);
        Ok(queued)
    }

    /// Rates (评价, 1–5) the case a report opened, once it is closed; answers the case's new
    /// state label. Refused before closing without asking the server.
    pub fn rate_case(&self, progress: &CaseProgress, rating: u8, note: &str) -> Result<String, AppError> {
        if !(1..=5).contains(&rating) {
            return Err(AppError::input("rating", "评分为 1–5 / a rating is 1 to 5"));
        }
        if !can_rate(progress) {
            return Err(AppError::input(
                "rating",
                format!("案件 {} 尚未结案，结案后才能评价 / the case is not closed yet", progress.case_no),
            ));
        }
        if !self.online() {
            return Err(AppError::Offline);
        }
        let note = note.trim();
        let req = CaseActionRequest {
            action: "rate".into(),
            action_id: uuid::Uuid::new_v4().hyphenated().to_string(),
            note: (!note.is_empty()).then(|| note.to_owned()),
            rating: Some(rating),
            ..CaseActionRequest::default()
        };
        let done = self.client()?.case_action(&progress.case_no, &req)?;
        Ok(done.case.state_label)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;
    use shikong_protocol::api::tasks::TaskList;
    use shikong_replica::TaskActionStatus;

    #[test]
    fn overdue_first_then_by_deadline() {
        let now: Timestamp = "2026-12-07T02:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let list = vec![
            testkit::task("c1", "2026-000001", Some("2026-12-09T10:00:00+08:00"), false),
            testkit::task("c2", "2026-000002", None, false),
            testkit::task("c3", "2026-000003", Some("2026-12-08T10:00:00+08:00"), false),
            // passed by the clock though the server had not said so at the last sync
            testkit::task("c4", "2026-000004", Some("2026-12-07T09:00:00+08:00"), false),
            testkit::task("c5", "2026-000005", Some("2026-12-10T10:00:00+08:00"), true),
        ];
        let sorted = sort_tasks(list, &[], now);
        let order: Vec<(&str, bool)> = sorted.iter().map(|t| (t.task.case_id.as_str(), t.overdue)).collect();
        assert_eq!(order, [("c4", true), ("c5", true), ("c3", false), ("c1", false), ("c2", false)]);
        assert_eq!(sorted[0].point(), Some((114.3, 30.5)));
    }

    #[test]
    fn tasks_with_a_location_become_map_features_coloured_by_urgency() {
        // 2026-12-07 10:00 in Beijing
        let now: Timestamp = "2026-12-07T02:00:00Z".parse().unwrap_or(Timestamp::UNIX_EPOCH);
        let mut nowhere = testkit::task("c4", "2026-000004", Some("2026-12-07T16:00:00+08:00"), false);
        nowhere.location = None;
        let mut elsewhere = testkit::task("c3", "2026-000003", Some("2026-12-08T07:59:00+08:00"), false);
        elsewhere.location = Some(serde_json::json!({"type": "Point", "coordinates": [114.35, 30.52]}));
        let list = vec![
            // late tonight in Beijing
            testkit::task("c1", "2026-000001", Some("2026-12-07T23:59:00+08:00"), false),
            // passed an hour ago
            testkit::task("c2", "2026-000002", Some("2026-12-07T09:00:00+08:00"), false),
            // tomorrow morning in Beijing: 7 December 23:59 UTC, still "today" in UTC — not here
            elsewhere,
            nowhere,
            testkit::task("c5", "2026-000005", None, false),
        ];
        let sorted = sort_tasks(list, &[], now);
        let urgency: Vec<(&str, Urgency)> = sorted.iter().map(|t| (t.task.case_id.as_str(), t.urgency)).collect();
        assert_eq!(
            urgency,
            [
                ("c2", Urgency::Overdue),
                ("c4", Urgency::DueToday),
                ("c1", Urgency::DueToday),
                ("c3", Urgency::Later),
                ("c5", Urgency::Later)
            ]
        );
        let fc = tasks_geojson(&sorted);
        assert_eq!(fc["type"], "FeatureCollection");
        let feats = fc["features"].as_array().cloned().unwrap_or_default();
        let shown: Vec<(&str, &str, &str)> = feats
            .iter()
            .map(|f| {
                let p = &f["properties"];
                (
                    p["case_id"].as_str().unwrap_or(""),
                    p["case_no"].as_str().unwrap_or(""),
                    p["urgency"].as_str().unwrap_or(""),
                )
            })
            .collect();
        // c4 has no location: listed, not drawn
        assert_eq!(
            shown,
            [
                ("c2", "2026-000002", "overdue"),
                ("c1", "2026-000001", "today"),
                ("c3", "2026-000003", "later"),
                ("c5", "2026-000005", "later")
            ]
        );
        assert_eq!(feats[0]["id"], "c2");
        assert_eq!(feats[0]["geometry"], serde_json::json!({"type": "Point", "coordinates": [114.3, 30.5]}));
        assert_eq!(feats[2]["geometry"]["coordinates"], serde_json::json!([114.35, 30.52]));
        assert_eq!(feats[0]["properties"]["state_label"], "已派遣（处置中）");
        assert_eq!(feats[0]["properties"]["deadline"], "2026-12-07T09:00:00+08:00");
        assert_eq!(feats[3]["properties"]["deadline"], Json::Null);
        assert_eq!(tasks_geojson(&[])["features"], serde_json::json!([]));
    }

    #[test]
    fn a_task_is_handled_offline_with_a_photo_and_queued() {
        let (dir, mut d) = testkit::device();
        testkit::replica(dir.path(), "洪山区", 1);
        testkit::tasks(
            dir.path(),
            "洪山区",
            &TaskList {
                user: "张三".into(),
                as_of: "2026-12-07T09:00:00+08:00".into(),
                tasks: vec![
                    testkit::task("c1", "2026-000001", Some("2099-01-01T10:00:00+08:00"), false),
                    testkit::task("c2", "2026-000002", Some("2000-01-01T10:00:00+08:00"), false),
                ],
            },
        );
        assert!(matches!(d.record_task("c1", "handle", "", &[]), Err(AppError::NoActiveArea)));
        assert!(d.set_active("洪山区").is_ok());
        let shown = d.state().active.map(|a| a.tasks.iter().map(|t| (t.task.case_no.clone(), t.overdue)).collect());
        assert_eq!(shown, Some(vec![("2026-000002".to_owned(), true), ("2026-000001".to_owned(), false)]));

        // 处置 needs a photo (the flow's rule, judged on the device): nothing is queued.
        let e = d.record_task("c1", "handle", "已清理", &[]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("2026-000001") && e.contains("photo"), "{e}");
        assert!(
            matches!(d.record_task("c1", "close", "", &[]), Err(AppError::Input { field, .. }) if field == "action")
        );
        assert_eq!(d.state().active.map(|a| a.task_actions.len()), Some(0));

        let photo = testkit::photo(&d);
        let queued = d.record_task("2026-000001", "handle", " 已清理 ", std::slice::from_ref(&photo));
        let queued = queued.unwrap();
        assert_eq!((queued.case_id.as_str(), queued.note.as_deref()), ("c1", Some("已清理")));
        assert_eq!(queued.photos, std::slice::from_ref(&photo.sha256));
        let active = d.state().active.unwrap();
        assert_eq!(active.task_actions.iter().map(|a| a.status).collect::<Vec<_>>(), [TaskActionStatus::Pending]);
        assert_eq!(active.tasks.iter().find(|t| t.task.case_id == "c1").map(|t| t.pending), Some(1));
        assert!(active.attachments.iter().any(|a| a.sha256 == photo.sha256), "the photo waits for upload");
        // Handled already (as the device knows it): a second 处置 is refused.
        assert!(d.record_task("c1", "handle", "", std::slice::from_ref(&photo)).is_err());
        // Kept across a restart.
        let again = testkit::reopen(dir.path());
        assert_eq!(again.state().active.map(|a| a.task_actions.len()), Some(1));
    }

    #[test]
    fn rating_waits_for_the_case_to_close() {
        let (_dir, mut d) = testkit::device();
        d.settings.session = Some(testkit::session("http://127.0.0.1:9"));
        let mut p = CaseProgress {
            case_no: "2026-000001".into(),
            state: "dispatched".into(),
            state_label: "已派遣（处置中）".into(),
            stage_deadline: None,
            steps: Vec::new(),
        };
        assert!(!can_rate(&p));
        let e = d.rate_case(&p, 5, "").err();
        assert!(
            matches!(&e, Some(AppError::Input { field, message }) if field == "rating" && message.contains("尚未结案"))
        );
        assert!(matches!(d.rate_case(&p, 0, ""), Err(AppError::Input { .. })));
        p.state = "closed".into();
        assert!(can_rate(&p));
        // closed, but no network here: refused as offline, not as not closed
        assert!(matches!(d.rate_case(&p, 4, "很快"), Err(AppError::Offline)));
    }

    #[test]
    fn a_closed_case_is_rated_online_and_the_server_has_the_last_word() {
        let p = CaseProgress {
            case_no: "2026-000001".into(),
            state: "closed".into(),
            state_label: "已结案".into(),
            stage_deadline: None,
            steps: Vec::new(),
        };
        let server = testkit::one_answer_server(
            r#"{"replayed": false,
                "transition": {"action_id": "a", "action": "rate", "actor": "liu", "at": "2026-12-07T10:00:00+08:00",
                    "from": "closed", "to": "rated", "assignee": null, "note": null, "photos": [], "rating": 5},
                "case": {"id": "0192f3c4-0000-7000-8000-000000000001", "case_no": "2026-000001",
                    "flow": {"id": "city-standard", "version": 1}, "state": "rated", "state_label": "已评价",
                    "class_kind": null, "class": null, "description": null, "source": "citizen_report",
                    "source_ref": null, "asset": null, "location": null, "assignee": null, "reporter": null,
                    "stage_started": "2026-12-07T10:00:00+08:00", "stage_deadline": null, "overdue": false,
                    "version": 9, "transitions": []}}"#,
        );
        let (_dir, mut d) = testkit::online_device();
        d.settings.session = Some(testkit::session(&server));
        assert_eq!(d.rate_case(&p, 5, "").ok().as_deref(), Some("已评价"));
        // Rated from another phone meanwhile: the server refuses, and the app says so.
        let server = testkit::one_answer_status(
            409,
            r#"{"type": "about:blank", "title": "wrong_state", "status": 409, "detail": "rate is not allowed in state rated"}"#,
        );
        d.settings.session = Some(testkit::session(&server));
        let e = d.rate_case(&p, 5, "").err().map(|e| e.to_string()).unwrap_or_default();
        assert!(e.contains("409") && e.contains("not allowed in state rated"), "{e}");
    }
}
