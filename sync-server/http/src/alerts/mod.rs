//! Sensor alerts (物联网告警, issue 18): rules on SensorThings datastreams that open a case in the
//! workflow engine when readings breach them and close it when they recover.
//!
//! Routes (not under `/sta/v1.1`, which is the standard's alone):
//! - `POST /alerts/rules` (office, admin): a `NewAlertRule` → 201 `AlertRule`; the scope's
//!   Datastream, ObservedProperty or Sensor must exist (404 naming `scope`), bounds are checked by
//!   `shikong_sta::alerts::validate` (422 naming the member).
//! - `GET /alerts/rules` (office, admin) and `DELETE /alerts/rules/{id}` (office, admin; the
//!   rule's open alerts are closed with their cases).
//! - `GET /alerts?state=open|closed&rule=&limit=`: one entry per (rule, datastream) with its
//!   latest incident; needs read permission on `sta_datastream` (as the readings do).
//!
//! The rules are pure (`shikong_sta::alerts`); storage and the case they open are in
//! [`storage`]; the evaluator thread consuming the observation stream and the periodic tick for
//! silence are in [`worker`]. An alert case runs in the shipped flow `sensor-alert`, source
//! `sensor`, asset = the station (`sta_thing/<code>`), located at the station's Location; the
//! flow's `recover` action (role `system`, which only the server holds) closes it.

pub mod state;
pub mod storage;
pub mod worker;

use std::sync::OnceLock;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use shikong_auth::Role;
use shikong_model::EntityId;
use shikong_protocol::api::alerts as wire;
use shikong_query::Filter;
use shikong_store::{FeatureKey, NewFeature, Query, TxMeta};
use shikong_workflow::FlowRegistry;

pub use worker::{Alerts, Held, TickReport, hold, settle, tick};

use crate::access::{Action, Caller};
use crate::body::Body;
use crate::params::Params;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, blocking, json_ok};

/// How often `serve` runs [`tick`] (silence rules are judged to this resolution).
pub const TICK_EVERY: Duration = Duration::from_secs(30);
/// Most rules a server keeps.
pub const MAX_RULES: usize = 1_000;
/// Default and largest `limit` of `GET /alerts`.
const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// The shipped flows (the same definitions the case routes run).
pub(crate) fn flows() -> &'static FlowRegistry {
    static FLOWS: OnceLock<FlowRegistry> = OnceLock::new();
    #[allow(clippy::expect_used)]
    FLOWS.get_or_init(|| FlowRegistry::shipped().expect("the shipped flows are valid"))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/alerts", get(list_alerts))
        .route("/alerts/rules", get(list_rules).post(create_rule))
        .route("/alerts/rules/{id}", delete(delete_rule))
}

const MANAGERS: [Role; 2] = [Role::Admin, Role::Office];

async fn create_rule(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    caller.require_role(&MANAGERS, "only office staff and administrators manage alert rules")?;
    let new: wire::NewAlertRule =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(format!("the body is not an alert rule: {e}")))?;
    let rule = storage::to_rule(&new);
    shikong_sta::alerts::validate(&new.name, &rule).map_err(|e| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-rule", e.to_string()).with("field", e.field)
    })?;
    let st = state.clone();
    let doc = blocking(move || {
        check_scope(&st, &new.scope)?;
        storage::ensure_layers(&st)?;
        if storage::load_rules(st.store())?.len() >= MAX_RULES {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "too-many-rules",
                format!("at most {MAX_RULES} alert rules"),
            )
            .with("max", MAX_RULES));
        }
        let mut props = shikong_model::Properties::new();
        props.insert("name".into(), shikong_model::Value::Text(new.name.clone()));
        let body = serde_json::to_string(&new).map_err(ApiError::internal)?;
        props.insert("body".into(), shikong_model::Value::Text(body));
        let id = EntityId(uuid::Uuid::now_v7());
        let mut tx = st.store().begin(TxMeta::by(caller.author()).source("alert rule create"))?;
        tx.insert(storage::RULES, NewFeature { id: Some(id), properties: props, ..NewFeature::default() })?;
        crate::audit_outbox::queue(tx.as_mut(), &caller, caller.write_record(storage::RULES, "create", &[id]))?;
        tx.commit()?;
        crate::after_commit::kick(&st);
        worker::reload(&st);
        let sf = st
            .store()
            .get(storage::RULES, &FeatureKey::Id(id), None)?
            .ok_or_else(|| ApiError::internal("the new rule is gone"))?;
        Ok(storage::rule_of(&sf)?.wire)
    })
    .await?;
    let mut r = json_ok(&doc)?;
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

/// The scope's entity must exist.
fn check_scope(st: &AppState, scope: &wire::AlertScope) -> ApiResult<()> {
    let (layer, n, member) = match *scope {
        wire::AlertScope::Datastream(n) => ("sta_datastream", n, "Datastreams"),
        wire::AlertScope::ObservedProperty(n) => ("sta_observed_property", n, "ObservedProperties"),
        wire::AlertScope::Sensor(n) => ("sta_sensor", n, "Sensors"),
    };
    let found = st.store().layer(layer).is_ok()
        && st.store().get(layer, &FeatureKey::Code(format!("{layer}-{n:06}")), None)?.is_some();
    if found { Ok(()) } else { Err(ApiError::not_found(format!("no {member}({n})")).with("field", "scope")) }
}

async fn list_rules(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    Params::new(q.as_deref())?.only(&[])?;
    caller.require_role(&MANAGERS, "only office staff and administrators manage alert rules")?;
    let st = state.clone();
    let rules = blocking(move || Ok(storage::load_rules(st.store())?.into_iter().map(|r| r.wire).collect())).await?;
    json_ok(&wire::AlertRuleList { rules })
}

async fn delete_rule(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require_role(&MANAGERS, "only office staff and administrators manage alert rules")?;
    let entity: EntityId = id.parse().map_err(|_| ApiError::not_found(format!("no alert rule `{id}`")))?;
    let st = state.clone();
    blocking(move || {
        let missing = || ApiError::not_found(format!("no alert rule `{id}`"));
        if st.store().layer(storage::RULES).is_err() {
            return Err(missing());
        }
        let sf = st.store().get(storage::RULES, &FeatureKey::Id(entity), None)?.ok_or_else(missing)?;
        let rule = storage::rule_of(&sf)?;
        let mut tx = st.store().begin(TxMeta::by(caller.author()).source("alert rule delete"))?;
        tx.delete(storage::RULES, &FeatureKey::Id(entity))?;
        crate::audit_outbox::queue(tx.as_mut(), &caller, caller.write_record(storage::RULES, "delete", &[entity]))?;
        tx.commit()?;
        crate::after_commit::kick(&st);
        // Its open alerts end with it (their cases are closed by the platform with a note).
        for a in open_alerts_of(&st, &rule.id)? {
            if let Some(s) = storage::station(st.store(), a.datastream)? {
                storage::close(&st, &rule, &s, jiff::Timestamp::now(), f64::NAN)?;
            }
        }
        worker::reload(&st);
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn open_alerts_of(st: &AppState, rule: &str) -> ApiResult<Vec<wire::Alert>> {
    query_alerts(st, Some("open"), Some(rule), MAX_LIMIT).map(|(a, _)| a)
}

fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn query_alerts(
    st: &AppState,
    state: Option<&str>,
    rule: Option<&str>,
    limit: usize,
) -> ApiResult<(Vec<wire::Alert>, bool)> {
    let Ok(layer) = st.store().layer(storage::INCIDENTS) else { return Ok((Vec::new(), false)) };
    let mut terms = Vec::new();
    if let Some(s) = state {
        terms.push(format!("state = {}", quoted(s)));
    }
    if let Some(r) = rule {
        terms.push(format!("rule = {}", quoted(r)));
    }
    let filter = if terms.is_empty() {
        None
    } else {
        Some(Filter::parse_text(&terms.join(" AND "), layer.schema()).map_err(ApiError::internal)?)
    };
    let q = Query {
        layer: storage::INCIDENTS,
        filter: filter.as_ref(),
        by_id: true,
        limit: Some(limit),
        ..Query::default()
    };
    let mut out = Vec::new();
    let stats = st.store().query(&q, &mut |sf| {
        out.push(storage::alert_doc(&sf));
        true
    })?;
    Ok((out, stats.more))
}

async fn list_alerts(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let params = Params::new(q.as_deref())?;
    params.only(&["state", "rule", "limit"])?;
    let want = match params.get("state") {
        None => None,
        Some(s @ ("open" | "closed")) => Some(s.to_owned()),
        Some(s) => return Err(ApiError::bad_parameter("state", format!("`{s}` is not open or closed"))),
    };
    let rule = params.get("rule").map(str::to_owned);
    if rule.as_ref().is_some_and(|r| r.parse::<EntityId>().is_err()) {
        return Err(ApiError::bad_parameter("rule", "not a rule id"));
    }
    let limit = params.limit(DEFAULT_LIMIT, MAX_LIMIT)?;
    let st = state.clone();
    let list = blocking(move || {
        // Alerts say what readings did: whoever may read the readings may read them.
        match st.store().layer("sta_datastream") {
            Ok(layer) => caller.allowed(&st, &layer, Action::Read)?,
            Err(_) => return Ok(wire::AlertList { alerts: Vec::new(), more: false }),
        }
        let (alerts, more) = query_alerts(&st, want.as_deref(), rule.as_deref(), limit)?;
        Ok(wire::AlertList { alerts, more })
    })
    .await?;
    json_ok(&list)
}
