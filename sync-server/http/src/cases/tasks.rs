//! Offline field tasks (外业任务): the cases dispatched to an inspector, carried by their replicas,
//! and the actions they recorded offline, merged by the flow's rules.
//!
//! - `GET /sync/tasks`: the caller's open tasks (cases assigned to them or to a group of theirs,
//!   in a state that is not terminal), as `api::tasks::TaskList`. The sync client asks at every
//!   sync and replaces the replica's task table with the answer, so a task closed or reassigned in
//!   the office disappears at the next sync. [`attach_to_replica`] writes the same list into every
//!   replica the server cuts.
//! - `POST /sync/tasks/actions`: the device's queued actions (`TaskActionBatch`, sent by the
//!   replica's owner). Each is merged with `shikong_workflow::merge` against the case as stored,
//!   read under the store's writer lock: applied (a transition, one new version of the case,
//!   author = the inspector, time = the device's time of the action, not later than now and not
//!   earlier than the start of the stage it acts on), or kept
//!   as a `Rejected` record in the case (one new version; shown to the office in `GET /cases/{id}`)
//!   — never last-writer-wins on the state field. The same action id again changes nothing and is
//!   answered `duplicate`/`already_rejected`. An action that cannot be judged (no such case, a case
//!   that was never the sender's, a photo not uploaded) is answered `refused` and not recorded.
//!
//! Why not the sync push: a push carries feature edits merged attribute by attribute (CRDT); a
//! case's state is not an attribute anyone may set, only the outcome of an action the flow allows.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::Timestamp;
use shikong_auth::{Principal, Role};
use shikong_model::EntityId;
use shikong_protocol::api::tasks as wire;
use shikong_query::Filter;
use shikong_store::{FeatureKey, Patch, Query, TxMeta};
use shikong_workflow::{ActionRequest, Assignee, Case, MergeItem, StageClock};

use super::record::{self, CaseRecord, LAYER};
use super::{actor_of, catch_up, follow, quoted};
use crate::access::Caller;
use crate::body::Body;
use crate::params::Params;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, audit_outbox, blocking, json_ok};

/// Most tasks one list carries (an inspector has tens).
const MAX_TASKS: usize = 2_000;
/// Most actions one batch carries.
pub const MAX_ACTIONS: usize = 500;

pub fn routes() -> Router<AppState> {
    Router::new().route("/sync/tasks", get(list)).route("/sync/tasks/actions", post(actions))
}

async fn list(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    let p = caller.require()?.clone();
    let st = state.clone();
    let list = blocking(move || task_list(&st, &p)).await?;
    json_ok(&list)
}

/// Is `case` assigned to `p` (as a user, or to a group of theirs)?
fn assigned_to(p: &Principal, assignee: Option<&Assignee>) -> bool {
    match assignee {
        Some(Assignee::User(u)) => *u == p.username,
        Some(Assignee::Department(d)) => p.groups.contains(d),
        None => false,
    }
}

/// May `p` send an offline action on `case`: it is theirs now, or was theirs at some point
/// (dispatched to them, or they acted on it) — so an action recorded before a reassignment is
/// judged and kept, while a case that was never theirs is none of their business.
fn may_act_offline(p: &Principal, case: &Case) -> bool {
    assigned_to(p, case.assignee.as_ref())
        || case.history.iter().any(|a| a.actor == p.username || assigned_to(p, a.assignee.as_ref()))
}

/// The open tasks of `p`. Blocking.
pub fn task_list(st: &AppState, p: &Principal) -> ApiResult<wire::TaskList> {
    let now = Timestamp::now();
    let mut out = wire::TaskList { user: p.username.clone(), as_of: shikong_calendar::beijing(now), tasks: Vec::new() };
    if p.role == Role::Citizen {
        return Ok(out);
    }
    catch_up(st)?;
    let Ok(layer) = st.store().layer(LAYER) else { return Ok(out) };
    let mut mine = vec![quoted(&Assignee::User(p.username.clone()).to_string())];
    mine.extend(p.groups.iter().map(|g| quoted(&Assignee::Department(g.clone()).to_string())));
    let text = format!("assignee IN ({})", mine.join(", "));
    let filter = Filter::parse_text(&text, layer.schema()).map_err(ApiError::internal)?;
    let q = Query { layer: LAYER, filter: Some(&filter), by_id: true, limit: Some(MAX_TASKS), ..Query::default() };
    let mut found = Vec::new();
    st.store().query(&q, &mut |sf| {
        found.push(sf);
        true
    })?;
    for sf in &found {
        let rec = CaseRecord::from_feature(sf)?;
        let flow = st.cases.flow(&rec.case.flow);
        if flow.and_then(|f| f.state(&rec.case.state)).is_none_or(|s| s.terminal) {
            continue;
        }
        out.tasks.push(task_doc(&rec, flow, now));
    }
    Ok(out)
}

fn task_doc(rec: &CaseRecord, flow: Option<&shikong_workflow::FlowDef>, now: Timestamp) -> wire::TaskDoc {
    let c = &rec.case;
    let mut photos: Vec<String> = Vec::new();
    for p in c.history.iter().flat_map(|a| a.photos.iter()) {
        if !photos.contains(p) {
            photos.push(p.clone());
        }
    }
    wire::TaskDoc {
        case_id: rec.id.to_string(),
        case_no: rec.case_no.clone(),
        flow_id: c.flow.id.clone(),
        flow_version: c.flow.version,
        state: c.state.clone(),
        state_label: record::state_label(flow, &c.state),
        class_kind: rec.class_kind.clone(),
        class: rec.class.clone(),
        description: rec.description.clone(),
        asset: rec.asset.clone(),
        location: rec.location.as_ref().map(shikong_model::geojson::to_json),
        assignee: c.assignee.as_ref().map(ToString::to_string),
        stage_deadline: rec.stage_deadline.map(shikong_calendar::beijing),
        overdue: rec.overdue(now),
        photos,
        version: rec.version,
    }
}

/// Writes `who`'s open tasks into a replica file the server just cut. Blocking.
pub fn attach_to_replica(st: &AppState, who: &Principal, path: &std::path::Path) -> ApiResult<()> {
    let list = task_list(st, who)?;
    let mut replica = shikong_replica::Replica::open(path).map_err(ApiError::internal)?;
    replica.replace_tasks(&list).map_err(ApiError::internal)
}

async fn actions(State(state): State<AppState>, caller: Caller, Body(body): Body) -> ApiResult<Response> {
    let p = caller.require()?.clone();
    let batch: wire::TaskActionBatch = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_body(format!("the body is not a task action batch: {e}")))?;
    if batch.actions.len() > MAX_ACTIONS {
        return Err(ApiError::bad_body(format!("{} actions in one batch; at most {MAX_ACTIONS}", batch.actions.len()))
            .with("field", "actions"));
    }
    let st = state.clone();
    let answer = blocking(move || {
        let r = st
            .store()
            .replica(batch.replica)?
            .ok_or_else(|| ApiError::not_found(format!("unknown replica {}", batch.replica)))?;
        if r.author != p.username {
            return Err(ApiError::forbidden(format!(
                "replica {} belongs to `{}`: its offline actions are `{}`'s and must be sent by them, not by `{}`",
                batch.replica, r.author, r.author, p.username
            )));
        }
        catch_up(&st)?;
        let mut results = Vec::with_capacity(batch.actions.len());
        for a in &batch.actions {
            results.push(one_action(&st, &caller, &p, a)?);
        }
        Ok(wire::TaskActionResults { results })
    })
    .await?;
    json_ok(&answer)
}

fn refused(a: &wire::TaskAction, kind: &str, reason: String, state: Option<String>) -> wire::TaskActionResult {
    wire::TaskActionResult {
        action_id: a.action_id.clone(),
        case_id: a.case_id.clone(),
        outcome: wire::TaskActionOutcome::Refused,
        kind: Some(kind.to_owned()),
        reason: Some(reason),
        state,
    }
}

/// Judges and records one offline action (its own store transaction). Blocking.
fn one_action(
    st: &AppState,
    caller: &Caller,
    p: &Principal,
    a: &wire::TaskAction,
) -> ApiResult<wire::TaskActionResult> {
    let Ok(device_time) = a.device_time.parse::<Timestamp>() else {
        return Ok(refused(a, "invalid_device_time", format!("`{}` is not an RFC 3339 instant", a.device_time), None));
    };
    for (i, sha) in a.photos.iter().enumerate() {
        let well_formed = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
        if well_formed && st.store().blob(&sha.to_ascii_lowercase())?.is_none() {
            let reason = format!("photos[{i}]: no uploaded attachment {sha} (upload it first: PUT /sync/blobs/{sha})");
            return Ok(refused(a, "photo_not_uploaded", reason, None));
        }
    }
    let no_case = || refused(a, "no_case", format!("no case `{}`", a.case_id), None);
    let Ok(id) = uuid::Uuid::parse_str(&a.case_id) else { return Ok(no_case()) };
    if st.store().layer(LAYER).is_err() {
        return Ok(no_case());
    }
    let meta = TxMeta::by(p.username.clone()).source(format!("offline case action {}", a.action));
    // Grouped with other actions arriving together (one disk sync); so read through it.
    let mut tx = st.store().begin_grouped(meta)?;
    let (_, now) = tx.id();
    // Read under the writer lock: no other action commits between this read and the write.
    let Some(sf) = tx.get(LAYER, &FeatureKey::Id(EntityId(id)))? else { return Ok(no_case()) };
    let mut rec = CaseRecord::from_feature(&sf)?;
    if !may_act_offline(p, &rec.case) {
        let reason = format!("case {} was never assigned to `{}`", rec.case_no, p.username);
        return Ok(refused(a, "forbidden", reason, None));
    }
    let flow = st.cases.flow(&rec.case.flow).ok_or_else(|| ApiError::internal("the case's flow is missing"))?;
    // The device's time of the action, never later than its arrival; applied, never earlier than
    // the stage it acts on began (a tablet whose clock runs behind, or an action recorded before
    // the office took the case back and dispatched it again): the history stays in time order
    // and no stage ends before it started. A rejection keeps the device's time as it was.
    let device_at = record::stamp(device_time.min(now));
    let request = ActionRequest {
        action: a.action.clone(),
        action_id: a.action_id.clone(),
        note: a.note.clone(),
        assignee: None,
        photos: a.photos.iter().map(|s| s.to_ascii_lowercase()).collect(),
        rating: None,
        actor: actor_of(p),
        at: device_at.max(rec.case.stage_started),
    };
    let report = shikong_workflow::merge(flow, &mut rec.case, [request]).map_err(ApiError::internal)?;
    let item = report.items.into_iter().next().ok_or_else(|| ApiError::internal("merge answered nothing"))?;
    let result = |outcome, kind: Option<String>, reason: Option<String>, state: &str| wire::TaskActionResult {
        action_id: a.action_id.clone(),
        case_id: a.case_id.clone(),
        outcome,
        kind,
        reason,
        state: Some(state.to_owned()),
    };
    let answer = match &item {
        MergeItem::Duplicate { .. } => {
            return Ok(result(wire::TaskActionOutcome::Duplicate, None, None, &rec.case.state));
        }
        MergeItem::AlreadyRejected { index, .. } => {
            let r = &rec.case.rejected[*index].reason;
            let (k, s) = (Some(r.kind().to_owned()), Some(r.to_string()));
            return Ok(result(wire::TaskActionOutcome::AlreadyRejected, k, s, &rec.case.state));
        }
        MergeItem::Applied { transition, .. } => {
            rec.stage_deadline = match &transition.clock {
                StageClock::Start { limit } => st.cases.deadline(st, *limit, now)?,
                StageClock::Keep => rec.stage_deadline,
                StageClock::Extend { by } => st.cases.deadline(st, Some(*by), rec.stage_deadline.unwrap_or(now))?,
            };
            result(wire::TaskActionOutcome::Applied, None, None, &rec.case.state)
        }
        MergeItem::Rejected { reason, index, .. } => {
            rec.case.rejected[*index].request.at = device_at;
            result(
                wire::TaskActionOutcome::Rejected,
                Some(reason.kind().to_owned()),
                Some(reason.to_string()),
                &rec.case.state,
            )
        }
    };
    let patch = Patch { set: rec.properties(now)?, ..Patch::default() };
    tx.update(LAYER, &FeatureKey::Id(rec.id), patch)?;
    if matches!(item, MergeItem::Applied { .. }) {
        follow::follow_status(st, tx.as_mut(), &rec, flow)?;
    }
    audit_outbox::queue(tx.as_mut(), caller, caller.write_record(LAYER, "update", &[rec.id]))?;
    tx.commit()?;
    crate::after_commit::kick(st);
    Ok(answer)
}
