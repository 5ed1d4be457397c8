//! The case runtime (案件运行时, issue 15): cases of the city-management workflow as features of
//! the system layer `cases`, moved only by actions the flow allows.
//!
//! - `POST /cases` (office, admin): opens a case in the initial state of a flow (`city-standard`
//!   by default) with its class, location, description, source and asset → 201.
//! - `POST /cases/{id}/actions`: one action (`accept`, `dispatch` …) judged by
//!   `shikong_workflow::decide` against the case as stored, under the store's writer lock; a
//!   refusal (wrong role, wrong state, missing field or photo) is problem+json naming what and
//!   changes nothing; photos must be uploaded attachments; the same `action_id` again answers the
//!   first result (`replayed`) without a second transition.
//! - `GET /cases/{id}` (UUID or case number) and `GET /cases?status=&class=&class_kind=&overdue=&bbox=&limit=&filter=`.
//!
//! Deadlines: a stage's limit (working hours or days, or the minor class's 处置时限) is turned into
//! an instant with the server's working-time calendar (`shikong-calendar`, with the
//! administrator's edits) from the moment the stage starts; 延期 adds to the running deadline.
//!
//! Roles: the account's product role is the flow role name it holds (`admin`, `office`,
//! `inspector`, `citizen`); an office user or admin in the auth group `supervisor` also holds
//! `supervisor`; every group of the account is a department it may act for (a case dispatched to
//! `department:排水队` may be handled by any member of the group 排水队).
//!
//! Who sees a case: office and admin every case; an inspector the cases assigned to them (or to a
//! group of theirs) and the cases they acted on; a citizen none here — the reporter follows the
//! case as the public progress in `/reports/mine` ([`follow`]), and may perform the flow's
//! `reporter` actions (评价). The layer itself is readable by the office and by nobody else below
//! admin through the layer routes (rules set when the layer is created), so state is never
//! written around the flow.

mod follow;
mod notify;
mod office;
pub mod overdue;
pub mod record;
pub mod routing;
mod stats;
pub mod tasks;

use std::sync::{Mutex, PoisonError};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use jiff::Timestamp;
use shikong_auth::{Grants, Principal, Role, Rule, Subject};
use shikong_model::{EntityId, Geometry, Value, geojson};
use shikong_protocol::api::cases as wire;
use shikong_query::Filter;
use shikong_store::{FeatureKey, NewFeature, Patch, Query, StoreTx, TxMeta};
use shikong_workflow::{
    ActionRequest, Assignee, Case, ClassKind, Classification, FlowDef, FlowRef, FlowRegistry, Outcome, Refusal,
    StageClock, TimeLimit, decide,
};

pub use follow::{Follower, catch_up};
pub use record::{CaseRecord, LAYER};

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, audit_outbox, blocking, json_ok};

/// The auth group whose office members (and admins) hold the flow role `supervisor` (督办).
pub const SUPERVISOR_GROUP: &str = "supervisor";
/// The flow a case starts in when the request names none.
pub const DEFAULT_FLOW: &str = "city-standard";
/// Longest description, characters.
const MAX_DESCRIPTION: usize = 2_000;
/// Default `limit` of `GET /cases`.
const DEFAULT_LIMIT: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/cases", post(create).get(list))
        .route("/cases/stats", get(stats::stats))
        .route("/cases/routing", get(routing::get_rules).put(routing::put_rules))
        .route("/office", get(|| async { axum::response::Redirect::to("/office/cases") }))
        .route("/office/login", get(office::login_page).post(office::login))
        .route("/office/logout", post(office::logout))
        .route("/office/cases", get(office::cases_page))
        .route("/office/cases/{id}", get(office::case_page))
        .route("/cases/{id}", get(one))
        .route("/cases/{id}/actions", post(act))
}

/// The rules a server runs cases by (the shipped flows and classification), and the follower of
/// the report layers.
#[derive(Debug)]
pub struct Cases {
    flows: FlowRegistry,
    classes: Classification,
    follower: Follower,
    /// The dispatch rules (`DATA/routing.json`).
    routing: routing::LiveRouting,
    /// One creation of the `cases` layer at a time.
    layer: Mutex<()>,
    /// The next case number to try, learnt from the layer's count once (then kept here: counting
    /// a million cases on every opening held the writer lock for tens of milliseconds).
    next_number: Mutex<Option<u64>>,
    /// The layer's indexes were ensured by this process.
    indexed: std::sync::atomic::AtomicBool,
}

impl Cases {
    /// The shipped definitions (compiled in, checked by `shikong-workflow`'s tests) and the
    /// dispatch rules of `data_dir`.
    #[allow(clippy::expect_used)]
    pub fn open(data_dir: &std::path::Path) -> Result<Self, routing::RoutingFileError> {
        Ok(Cases {
            flows: FlowRegistry::shipped().expect("the shipped flows are valid"),
            classes: shikong_workflow::shipped::classification().expect("the shipped classification is valid"),
            follower: Follower::default(),
            routing: routing::LiveRouting::open(data_dir)?,
            layer: Mutex::new(()),
            next_number: Mutex::new(None),
            indexed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    fn default_flow(&self) -> ApiResult<&FlowDef> {
        self.flows.latest(DEFAULT_FLOW).ok_or_else(|| ApiError::internal("the default flow is missing"))
    }

    fn flow(&self, r: &FlowRef) -> Option<&FlowDef> {
        self.flows.get(r)
    }

    /// `limit` counted in working time from `from` on the server's calendar.
    pub(crate) fn deadline(
        &self,
        state: &AppState,
        limit: Option<TimeLimit>,
        from: Timestamp,
    ) -> ApiResult<Option<Timestamp>> {
        let Some(limit) = limit else { return Ok(None) };
        let cal = state.calendar.calendar();
        let d = match limit {
            TimeLimit::WorkingHours(h) => cal.add_working_hours(from, h),
            TimeLimit::WorkingDays(d) => cal.add_working_days(from, d),
        }
        .map_err(ApiError::internal)?;
        Ok(Some(d.at))
    }
}

/// Creates the `cases` layer when it does not exist yet, with its access rules: the office reads
/// it, inspectors and citizens do not see it through the layer routes (cases move by actions).
pub(crate) fn ensure_layer(state: &AppState) -> ApiResult<()> {
    if state.store().layer(LAYER).is_ok() {
        return ensure_indexes(state);
    }
    let _one = state.cases.layer.lock().unwrap_or_else(PoisonError::into_inner);
    if state.store().layer(LAYER).is_ok() {
        return Ok(());
    }
    let mut tx = state.store().begin(TxMeta::by("system:cases").source("create the cases layer"))?;
    tx.create_layer(record::layer_def())?;
    for fields in record::INDEXES {
        tx.ensure_index(LAYER, fields)?;
    }
    tx.commit()?;
    state.cases.indexed.store(true, std::sync::atomic::Ordering::Relaxed);
    let local = shikong_auth::Actor::local("cases");
    for (role, grants) in [(Role::Office, Grants::READ), (Role::Inspector, Grants::NONE)] {
        let rule = Rule { layer: LAYER.into(), subject: Subject::Role(role), grants };
        state.auth.set_rule(&local, &rule)?;
    }
    Ok(())
}

/// Makes sure a `cases` layer made by an earlier version has its [`record::INDEXES`] (once per
/// process; a no-op when they exist).
pub(crate) fn ensure_indexes(state: &AppState) -> ApiResult<()> {
    use std::sync::atomic::Ordering;
    if state.cases.indexed.load(Ordering::Relaxed) || state.store().layer(LAYER).is_err() {
        return Ok(());
    }
    let mut tx = state.store().begin(TxMeta::by("system:cases").source("index the cases layer"))?;
    for fields in record::INDEXES {
        tx.ensure_index(LAYER, fields)?;
    }
    tx.commit()?;
    state.cases.indexed.store(true, Ordering::Relaxed);
    Ok(())
}

/// Inserts a new case in `tx` with the next case number (`YYYY-NNNNNN`: the Beijing year of its
/// opening and a number counting every case, so numbers never repeat).
pub(crate) fn insert_case(
    state: &AppState,
    tx: &mut dyn StoreTx,
    rec: CaseRecord,
    now: Timestamp,
) -> ApiResult<EntityId> {
    let year = now.to_zoned(jiff::tz::TimeZone::fixed(shikong_calendar::BEIJING)).year();
    // Under the writer lock (`tx`), so two openings cannot take the same number; a number found
    // taken (another process, a restored store) is skipped.
    let mut next = state.cases.next_number.lock().unwrap_or_else(PoisonError::into_inner);
    let mut n = match *next {
        Some(n) => n,
        None => state.store().count(LAYER)? + 1,
    };
    let code = loop {
        let code = format!("{year}-{n:06}");
        if tx.find_by_field(LAYER, "code", &Value::Text(code.clone()))?.is_none() {
            break code;
        }
        n += 1;
    };
    // Taken only if the transaction commits; a rolled-back opening leaves a gap, never a repeat.
    *next = Some(n + 1);
    let nf = NewFeature {
        id: Some(rec.id),
        code: Some(code),
        geometry: rec.location.clone(),
        properties: rec.properties(now)?,
        ..NewFeature::default()
    };
    Ok(tx.insert(LAYER, nf)?)
}

/// The workflow's view of an account (see the module docs for the mapping).
fn actor_of(p: &Principal) -> shikong_workflow::Actor {
    let mut roles = vec![p.role.as_str().to_owned()];
    if matches!(p.role, Role::Office | Role::Admin) && p.groups.iter().any(|g| g == SUPERVISOR_GROUP) {
        roles.push("supervisor".into());
    }
    shikong_workflow::Actor { user: p.username.clone(), roles, departments: p.groups.clone() }
}

fn is_staff(p: &Principal) -> bool {
    matches!(p.role, Role::Office | Role::Admin)
}

/// May `p` read `case` through the case routes?
fn may_see(p: &Principal, case: &Case) -> bool {
    match p.role {
        Role::Admin | Role::Office => true,
        Role::Inspector => {
            let assigned = match &case.assignee {
                Some(Assignee::User(u)) => *u == p.username,
                Some(Assignee::Department(d)) => p.groups.contains(d),
                None => false,
            };
            assigned || case.history.iter().any(|a| a.actor == p.username)
        }
        Role::Citizen => false,
    }
}

fn read_case(state: &AppState, id: &str) -> ApiResult<CaseRecord> {
    let missing = || ApiError::not_found(format!("no case `{id}`"));
    if state.store().layer(LAYER).is_err() {
        return Err(missing());
    }
    let sf = state.store().get(LAYER, &FeatureKey::parse(id), None)?.ok_or_else(missing)?;
    CaseRecord::from_feature(&sf)
}

/// A case as the transaction `tx` sees it: what a grouped transaction must read before it writes
/// (`FeatureStore::begin_grouped`).
fn read_case_in(state: &AppState, tx: &mut dyn StoreTx, id: &str) -> ApiResult<CaseRecord> {
    let missing = || ApiError::not_found(format!("no case `{id}`"));
    if state.store().layer(LAYER).is_err() {
        return Err(missing());
    }
    let sf = tx.get(LAYER, &FeatureKey::parse(id))?.ok_or_else(missing)?;
    CaseRecord::from_feature(&sf)
}

fn invalid(field: &str, detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-case", detail).with("field", field)
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_body(format!("the body is not a valid request: {e}")))
}

/// A refused action as problem+json: 403 for a role the actor lacks, 409 for a state that does
/// not allow it (or a reused action id), 422 for what the request lacks; `refusal` carries the
/// workflow's typed reason.
fn refused(r: &Refusal) -> ApiError {
    let status = match r {
        Refusal::WrongRole { .. } => StatusCode::FORBIDDEN,
        Refusal::WrongState { .. } | Refusal::ActionIdReused { .. } => StatusCode::CONFLICT,
        _ => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let mut e = ApiError::new(status, r.kind(), r.to_string())
        .with("refusal", serde_json::to_value(r).unwrap_or(serde_json::Value::Null));
    match r {
        Refusal::MissingField { field, .. } | Refusal::InvalidField { field, .. } => {
            e = e.with("field", field.as_str())
        }
        Refusal::MissingPhoto { .. } => e = e.with("field", "photos"),
        Refusal::InvalidPhoto { index, .. } => e = e.with("field", format!("photos[{index}]")),
        _ => {}
    }
    e
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    caller.require_role(&[Role::Admin, Role::Office], "only office staff and administrators open cases")?;
    let req: wire::NewCase = parse_body(&body)?;
    let st = state.clone();
    let doc = blocking(move || {
        let cases = &st.cases;
        let flow_id = req.flow.as_deref().unwrap_or(DEFAULT_FLOW);
        let flow = cases.flows.latest(flow_id).ok_or_else(|| invalid("flow", format!("no flow `{flow_id}`")))?;
        let kind = match req.class_kind.as_deref() {
            None | Some("event") => ClassKind::Event,
            Some("component") => ClassKind::Component,
            Some(k) => return Err(invalid("class_kind", format!("`{k}` is not `event` or `component`"))),
        };
        let class_limit = match req.class.as_deref() {
            None => None,
            Some(code) => {
                let (_, minor) = cases
                    .classes
                    .minor(kind, code)
                    .ok_or_else(|| invalid("class", format!("no minor class `{code}` among the {kind:?} classes")))?;
                Some(minor.limit)
            }
        };
        let location = geojson::from_json(&req.location).map_err(|e| invalid("location", e.to_string()))?;
        if !matches!(location, Geometry::Point(_)) {
            return Err(invalid("location", "a case's location is a GeoJSON Point"));
        }
        let source = req.source.clone().unwrap_or_else(|| "hotline".into());
        if !["hotline", "inspector", "sensor", "citizen_report"].contains(&source.as_str()) {
            return Err(invalid("source", format!("`{source}` is not hotline, inspector, sensor or citizen_report")));
        }
        if req.description.as_ref().is_some_and(|d| d.chars().count() > MAX_DESCRIPTION) {
            return Err(invalid("description", format!("longer than {MAX_DESCRIPTION} characters")));
        }
        ensure_layer(&st)?;
        let meta = TxMeta::by(caller.author()).source("case open");
        // Grouped: openings and actions arriving together share one disk sync.
        let mut tx = st.store().begin_grouped(meta)?;
        let (_, now) = tx.id();
        let id = EntityId(uuid::Uuid::now_v7());
        let limit =
            flow.state(&flow.initial).and_then(|s| if s.limit_from_class { class_limit.or(s.limit) } else { s.limit });
        let rec = CaseRecord {
            id,
            case_no: String::new(),
            case: Case::new(flow, None, class_limit, record::stamp(now)),
            class_kind: req.class.as_ref().map(|_| if kind == ClassKind::Event { "event" } else { "component" }.into()),
            class: req.class.clone(),
            description: req.description.clone().filter(|d| !d.trim().is_empty()),
            source,
            source_ref: req.source_ref.clone(),
            asset: req.asset.clone(),
            location: Some(location),
            stage_deadline: cases.deadline(&st, limit, now)?,
            version: 0,
        };
        insert_case(&st, tx.as_mut(), rec, now)?;
        audit_outbox::queue(tx.as_mut(), &caller, caller.write_record(LAYER, "create", &[id]))?;
        tx.commit()?;
        crate::after_commit::kick(&st);
        let rec = read_case(&st, &id.to_string())?;
        let actor = caller.require().ok().map(actor_of);
        Ok(match actor {
            Some(a) => rec.to_doc_for(cases.flow(&rec.case.flow), Timestamp::now(), true, &a),
            None => rec.to_doc(cases.flow(&rec.case.flow), Timestamp::now(), true),
        })
    })
    .await?;
    let mut resp = json_ok(&doc)?;
    *resp.status_mut() = StatusCode::CREATED;
    if let Ok(v) = HeaderValue::from_str(&format!("{}/cases/{}", state.base_url(&headers), doc.id)) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn act(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    let p = caller.require()?.clone();
    let req: wire::CaseActionRequest = parse_body(&body)?;
    let assignee = req
        .assignee
        .as_deref()
        .map(|a| if a.contains(':') { a.parse::<Assignee>() } else { Ok(Assignee::User(a.to_owned())) })
        .transpose()
        .map_err(|r| refused(&r))?;
    let st = state.clone();
    let result = blocking(move || {
        catch_up(&st)?;
        // Photos are evidence: each must be an attachment the server holds.
        for (i, sha) in req.photos.iter().enumerate() {
            let well_formed = sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_hexdigit());
            if well_formed && st.store().blob(&sha.to_ascii_lowercase())?.is_none() {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "photo-not-uploaded",
                    format!("photos[{i}]: no uploaded attachment {sha} (upload it first: PUT /sync/blobs/{sha})"),
                )
                .with("field", format!("photos[{i}]")));
            }
        }
        let meta = TxMeta::by(p.username.clone()).source(format!("case action {}", req.action));
        // Grouped: actions arriving together share one disk sync (issue 15's ≥ 1,000/s).
        let mut tx = st.store().begin_grouped(meta)?;
        let (_, now) = tx.id();
        // Read through the transaction, under the writer lock: it sees every action before it
        // (committed or in its group), and none can come between this read and the write.
        let mut rec = read_case_in(&st, tx.as_mut(), &id)?;
        let reporter = rec.case.reporter.as_deref() == Some(p.username.as_str());
        if !may_see(&p, &rec.case) && !reporter {
            return Err(ApiError::forbidden(format!("case {} is not assigned to `{}`", rec.case_no, p.username)));
        }
        let flow = st.cases.flow(&rec.case.flow).ok_or_else(|| ApiError::internal("the case's flow is missing"))?;
        // A dispatch without an assignee goes where the dispatch rules say (when one matches).
        let assignee = match assignee {
            None if routing::assigns(flow, &rec.case.state, &req.action) => routing::route(&st, &rec)?,
            given => given,
        };
        let request = ActionRequest {
            action: req.action.clone(),
            action_id: req.action_id.clone(),
            note: req.note.clone(),
            assignee,
            photos: req.photos.iter().map(|s| s.to_ascii_lowercase()).collect(),
            rating: req.rating,
            actor: actor_of(&p),
            at: record::stamp(now),
        };
        let transition = match decide(flow, &rec.case, &request).map_err(|r| refused(&r))? {
            Outcome::AlreadyApplied { index } => {
                drop(tx);
                let t = record::transition_doc(&rec.case.history[index]);
                return Ok(wire::CaseActionResult {
                    replayed: true,
                    transition: t,
                    case: rec.to_doc_for(Some(flow), now, is_staff(&p), &actor_of(&p)),
                });
            }
            Outcome::AlreadyRejected { index } => {
                let r = &rec.case.rejected[index];
                return Err(ApiError::conflict(format!(
                    "action id {} was already rejected: {}",
                    req.action_id, r.reason
                ))
                .with("refusal", serde_json::to_value(&r.reason).unwrap_or_default()));
            }
            Outcome::Applied(t) => t,
        };
        rec.case.commit(&transition);
        rec.stage_deadline = match &transition.clock {
            StageClock::Start { limit } => st.cases.deadline(&st, *limit, now)?,
            StageClock::Keep => rec.stage_deadline,
            StageClock::Extend { by } => st.cases.deadline(&st, Some(*by), rec.stage_deadline.unwrap_or(now))?,
        };
        let patch = Patch { set: rec.properties(now)?, ..Patch::default() };
        tx.update(LAYER, &FeatureKey::Id(rec.id), patch)?;
        // The answer is the case as stored (times at the store's precision), read through the
        // transaction: the store's readers would wait for the group commit.
        let rec = read_case_in(&st, tx.as_mut(), &rec.id.to_string())?;
        follow::follow_status(&st, tx.as_mut(), &rec, flow)?;
        audit_outbox::queue(tx.as_mut(), &caller, caller.write_record(LAYER, "update", &[rec.id]))?;
        tx.commit()?;
        crate::after_commit::kick(&st);
        notify::publish(&st, &rec, flow, &transition);
        let t = record::transition_doc(&transition.entry);
        let case = rec.to_doc_for(Some(flow), now, is_staff(&p), &actor_of(&p));
        Ok(wire::CaseActionResult { replayed: false, transition: t, case })
    })
    .await?;
    json_ok(&result)
}

async fn one(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    let p = caller.require()?.clone();
    if p.role == Role::Citizen {
        return Err(ApiError::forbidden("citizens follow their reports' cases at /reports/mine"));
    }
    let st = state.clone();
    let doc = blocking(move || {
        catch_up(&st)?;
        let rec = read_case(&st, &id)?;
        if !may_see(&p, &rec.case) {
            return Err(ApiError::forbidden(format!("case {} is not assigned to `{}`", rec.case_no, p.username)));
        }
        let flow = st.cases.flow(&rec.case.flow);
        let mut doc = rec.to_doc_for(flow, Timestamp::now(), is_staff(&p), &actor_of(&p));
        if is_staff(&p) {
            routing::show_route(&st, &rec, flow, &mut doc)?;
        }
        Ok(doc)
    })
    .await?;
    json_ok(&doc)
}

/// A value quoted as a CQL2 string literal.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn id_like(param: &str, v: &str, ok: impl Fn(u8) -> bool) -> ApiResult<String> {
    if v.is_empty() || v.len() > 64 || !v.bytes().all(ok) {
        return Err(ApiError::bad_parameter(param, format!("`{v}` is not a valid value")));
    }
    Ok(quoted(v))
}

async fn list(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let p = caller.require()?.clone();
    if p.role == Role::Citizen {
        return Err(ApiError::forbidden("citizens follow their reports' cases at /reports/mine"));
    }
    let params = Params::new(q.as_deref())?;
    params.only(&["status", "class", "class_kind", "overdue", "assignee", "bbox", "limit", "filter"])?;
    let limit = params.limit(DEFAULT_LIMIT, state.config.max_limit)?;
    let bbox = params.bbox()?.map(|b| super::coords::bbox_from_input(b, shikong_model::Crs::Crs84)).transpose()?;
    let mut terms = Vec::new();
    if let Some(s) = params.get("status") {
        terms.push(format!("state = {}", id_like("status", s, |b| b.is_ascii_lowercase() || b"_-".contains(&b))?));
    }
    if let Some(c) = params.get("class") {
        terms.push(format!("class = {}", id_like("class", c, |b| b.is_ascii_digit())?));
    }
    if let Some(k) = params.get("class_kind") {
        terms.push(format!("class_kind = {}", id_like("class_kind", k, |b| b.is_ascii_lowercase())?));
    }
    if let Some(a) = params.get("assignee") {
        // `user:NAME` or `department:NAME` (what a dispatch wrote): an inspector's current tasks.
        let parsed: Assignee = a.parse().map_err(|e| ApiError::bad_parameter("assignee", format!("`{a}`: {e}")))?;
        if a.chars().count() > 128 {
            return Err(ApiError::bad_parameter("assignee", "longer than 128 characters"));
        }
        terms.push(format!("assignee = {}", quoted(&parsed.to_string())));
    }
    let now = Timestamp::now();
    let at = quoted(&shikong_model::time::utc(now));
    match params.get("overdue") {
        None => {}
        Some("true") => terms.push(format!("stage_deadline < TIMESTAMP({at})")),
        Some("false") => terms.push(format!("(stage_deadline IS NULL OR stage_deadline >= TIMESTAMP({at}))")),
        Some(v) => return Err(ApiError::bad_parameter("overdue", format!("`{v}` is not true or false"))),
    }
    if p.role == Role::Inspector {
        // Only what is theirs: assigned to them or to one of their groups.
        let mut mine = vec![quoted(&Assignee::User(p.username.clone()).to_string())];
        mine.extend(p.groups.iter().map(|g| quoted(&Assignee::Department(g.clone()).to_string())));
        terms.push(format!("assignee IN ({})", mine.join(", ")));
    }
    let user_filter = params.get("filter").map(str::to_owned);
    let st = state.clone();
    let list = blocking(move || {
        catch_up(&st)?;
        let Ok(layer) = st.store().layer(LAYER) else {
            return Ok(wire::CaseList { number_returned: 0, more: false, cases: Vec::new() });
        };
        let mut filter = None::<Filter>;
        if !terms.is_empty() {
            let f = Filter::parse_text(&terms.join(" AND "), layer.schema()).map_err(ApiError::internal)?;
            filter = Some(f);
        }
        if let Some(text) = &user_filter {
            let f = Filter::parse_text(text, layer.schema()).map_err(|e| ApiError::bad_parameter("filter", e))?;
            filter = Some(match filter {
                Some(g) => g.and(f),
                None => f,
            });
        }
        let q =
            Query { layer: LAYER, bbox, filter: filter.as_ref(), by_id: true, limit: Some(limit), ..Query::default() };
        let mut found = Vec::new();
        let stats = st.store().query(&q, &mut |sf| {
            found.push(sf);
            true
        })?;
        let mut cases = Vec::with_capacity(found.len());
        for sf in &found {
            let rec = CaseRecord::from_feature(sf)?;
            let flow = st.cases.flow(&rec.case.flow);
            let mut doc = rec.to_doc(flow, now, is_staff(&p));
            if is_staff(&p) {
                routing::show_route(&st, &rec, flow, &mut doc)?;
            }
            cases.push(doc);
        }
        Ok(wire::CaseList { number_returned: cases.len() as u64, more: stats.more, cases })
    })
    .await?;
    json_ok(&list)
}

/// The public progress of the case a report opened (the case has the report's id), for
/// `/reports/mine`. Blocking.
pub fn progress_of(state: &AppState, report: EntityId) -> ApiResult<Option<wire::CaseProgress>> {
    if state.store().layer(LAYER).is_err() {
        return Ok(None);
    }
    let Some(sf) = state.store().get(LAYER, &FeatureKey::Id(report), None)? else { return Ok(None) };
    let rec = CaseRecord::from_feature(&sf)?;
    if rec.source != "citizen_report" {
        return Ok(None);
    }
    Ok(Some(rec.progress(state.cases.flow(&rec.case.flow))))
}
