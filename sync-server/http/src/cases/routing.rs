//! Dispatch rules at run time (派遣规则): a case waiting for a dispatch is routed by its unit grid
//! (from its location, `grid.rs`) and its class to a department, by the pure rules of
//! `shikong_workflow::Routing`.
//!
//! - The rules are data an administrator edits: `GET /cases/routing` (office, admin) and
//!   `PUT /cases/routing` (admin; validated, kept in `DATA/routing.json` written atomically, used
//!   at once). A server whose file cannot be read refuses to start, as with the calendar.
//! - An action that assigns from the request (`dispatch` 派遣, the hotline's 派单) sent without an
//!   `assignee` goes where the rules say; with one, the office's choice wins. No matching rule:
//!   the action is refused as missing its assignee, as before (the office dispatches by hand).
//! - A case document shows the route (`route`) while the case waits for such an action, so the
//!   dispatch board can show where it would go.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use shikong_auth::Role;
use shikong_model::Geometry;
use shikong_protocol::api::cases as wire;
use shikong_workflow::{AssignEffect, Assignee, FlowDef, Place, RouteRule, Routing};

use super::record::CaseRecord;
use crate::access::Caller;
use crate::body::Body;
use crate::params::Params;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, blocking, grid, json_ok};

/// The file of the rules in the data folder.
pub const ROUTING_FILE: &str = "routing.json";
/// Rules at most.
const MAX_RULES: usize = 10_000;
/// Longest code or department name, characters.
const MAX_TEXT: usize = 64;

/// The rules a server routes by, replaced whole when an administrator edits them.
#[derive(Debug)]
pub struct LiveRouting {
    file: PathBuf,
    current: RwLock<Arc<Routing>>,
    /// One edit at a time.
    writer: Mutex<()>,
}

/// Why the routing file of a data folder cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", file.display())]
pub struct RoutingFileError {
    pub file: PathBuf,
    pub reason: String,
}

impl LiveRouting {
    /// The rules in `data_dir` (none when the file does not exist).
    pub fn open(data_dir: &Path) -> Result<Self, RoutingFileError> {
        let file = data_dir.join(ROUTING_FILE);
        let bad = |reason: String| RoutingFileError { file: file.clone(), reason };
        let routing = match std::fs::read_to_string(&file) {
            Ok(text) => {
                let doc: wire::RoutingDoc = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
                from_wire(doc).map_err(|e| bad(e.detail))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Routing::default(),
            Err(e) => return Err(bad(e.to_string())),
        };
        Ok(LiveRouting { file, current: RwLock::new(Arc::new(routing)), writer: Mutex::new(()) })
    }

    pub fn routing(&self) -> Arc<Routing> {
        self.current.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Validates, writes the file atomically, then uses the rules. Blocking.
    fn replace(&self, doc: wire::RoutingDoc) -> ApiResult<()> {
        let _one = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        let routing = from_wire(doc.clone())?;
        let json = serde_json::to_vec_pretty(&doc).map_err(ApiError::internal)?;
        crate::calendar::write_atomic(&self.file, &json).map_err(ApiError::internal)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(routing);
        Ok(())
    }
}

fn invalid(field: String, detail: String) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-routing", detail).with("field", field)
}

fn from_wire(doc: wire::RoutingDoc) -> ApiResult<Routing> {
    if doc.rules.len() > MAX_RULES {
        return Err(invalid("rules".into(), format!("{} rules; at most {MAX_RULES}", doc.rules.len())));
    }
    let mut rules = Vec::with_capacity(doc.rules.len());
    for (i, r) in doc.rules.into_iter().enumerate() {
        let dept = r.department.trim();
        if dept.is_empty() || dept.chars().count() > MAX_TEXT || dept.contains(':') {
            return Err(invalid(
                format!("rules[{i}].department"),
                format!("rules[{i}].department: a department name of 1 to {MAX_TEXT} characters without `:`"),
            ));
        }
        for (name, v) in [("class", &r.class), ("grid", &r.grid), ("street", &r.street), ("community", &r.community)] {
            if let Some(v) = v
                && (v.is_empty() || v.len() > MAX_TEXT || !v.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return Err(invalid(
                    format!("rules[{i}].{name}"),
                    format!("rules[{i}].{name}: `{v}` is not a code (letters and digits, at most {MAX_TEXT})"),
                ));
            }
        }
        rules.push(RouteRule {
            class: r.class,
            grid: r.grid,
            street: r.street,
            community: r.community,
            department: dept.to_owned(),
        });
    }
    Ok(Routing { rules })
}

fn to_wire(r: &Routing) -> wire::RoutingDoc {
    wire::RoutingDoc {
        rules: r
            .rules
            .iter()
            .map(|r| wire::RouteRule {
                class: r.class.clone(),
                grid: r.grid.clone(),
                street: r.street.clone(),
                community: r.community.clone(),
                department: r.department.clone(),
            })
            .collect(),
    }
}

/// Does `action` in `state` take its assignee from the request (派遣, 派单)?
pub fn assigns(flow: &FlowDef, state: &str, action: &str) -> bool {
    flow.action(action).is_some_and(|a| {
        a.rules.iter().any(|r| r.from.iter().any(|f| f == state) && r.assign == AssignEffect::FromRequest)
    })
}

/// Some action of the flow would assign the case from its current state.
fn waits_for_dispatch(flow: &FlowDef, state: &str) -> bool {
    flow.actions.iter().any(|a| assigns(flow, state, &a.id))
}

/// Where the rules send `rec` now. Blocking (the grid lookup reads the store).
pub fn route(state: &AppState, rec: &CaseRecord) -> ApiResult<Option<Assignee>> {
    let routing = state.cases.routing.routing();
    if routing.rules.is_empty() {
        return Ok(None);
    }
    let place = match &rec.location {
        Some(Geometry::Point(c)) => grid::place_of(state.store(), c.x, c.y)?.unwrap_or_default(),
        _ => Place::default(),
    };
    let class = rec.class.as_deref().unwrap_or("");
    Ok(routing.route(class, &place).map(|d| Assignee::Department(d.to_owned())))
}

/// Sets `doc.route` when the case waits for a dispatch. Blocking.
pub fn show_route(
    state: &AppState,
    rec: &CaseRecord,
    flow: Option<&FlowDef>,
    doc: &mut wire::CaseDoc,
) -> ApiResult<()> {
    if flow.is_some_and(|f| waits_for_dispatch(f, &rec.case.state)) {
        doc.route = route(state, rec)?.map(|a| a.to_string());
    }
    Ok(())
}

/// `GET /cases/routing`.
pub async fn get_rules(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    caller
        .require_role(&[Role::Admin, Role::Office], "only office staff and administrators read the dispatch rules")?;
    json_ok(&to_wire(&state.cases.routing.routing()))
}

/// `PUT /cases/routing`.
pub async fn put_rules(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    caller.require_role(&[Role::Admin], "only administrators change the dispatch rules")?;
    let doc: wire::RoutingDoc = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_body(format!("the body is not a set of dispatch rules: {e}")))?;
    let st = state.clone();
    blocking(move || st.cases.routing.replace(doc)).await?;
    json_ok(&to_wire(&state.cases.routing.routing()))
}
