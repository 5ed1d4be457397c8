//! Where alert rules and incidents live, and how an incident opens and closes its case.
//!
//! Why system layers and not a table: the store's layers are durable on both backends (SQLite
//! and PostgreSQL) without a migration, shared by every server process on one database, versioned
//! (a rule's and an incident's history come free: each open and close is a version of the
//! (rule, datastream) feature, with its time and author `system:alerts`) and read under the
//! store's writer lock inside a transaction, which is what makes opening idempotent.
//!
//! - `alert_rules`: one feature per rule (`name`, `body` = the `NewAlertRule` JSON).
//! - `alert_incidents`: one feature per (rule, datastream) whose entity id is derived from the
//!   pair; `state` (`open`/`closed`), `incidents` (how many so far), the latest incident's case,
//!   times and description; geometry = the station's point.
//!
//! **Invariant (no duplicate cases):** an incident is opened in one store transaction that reads
//! the (rule, datastream) feature through the transaction (under the writer lock): already open →
//! nothing is written; else the case is inserted with an id derived from (rule, datastream,
//! incident number) — so even two processes racing on the same incident cannot insert two cases —
//! and the feature becomes `open` in the same commit. Closing reads it the same way and applies
//! the flow's `recover` action (action id derived from the incident: at most once).

use jiff::Timestamp;
use serde_json::{Map, Value as Json};
use sha2::{Digest, Sha256};
use shikong_model::{EntityId, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value};
use shikong_protocol::api::alerts as wire;
use shikong_sta::alerts::{Condition, DatastreamInfo, Rule, Scope, Transition};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, NewFeature, Patch, TxMeta};
use shikong_workflow::{ActionRequest, Actor, Case, Outcome, StageClock};

use crate::AppState;
use crate::cases::record::{self, CaseRecord};
use crate::problem::{ApiError, ApiResult};

pub const RULES: &str = "alert_rules";
pub const INCIDENTS: &str = "alert_incidents";
/// The author of every write of the evaluator.
pub const AUTHOR: &str = "system:alerts";
/// The flow alert cases run in (shipped by `shikong-workflow`).
pub const FLOW: &str = "sensor-alert";

/// A rule as stored.
#[derive(Debug, Clone)]
pub struct StoredRule {
    pub id: String,
    pub rule: Rule,
    pub wire: wire::AlertRule,
    pub created: Timestamp,
}

/// The pure rule of a wire rule (defaults filled in).
pub fn to_rule(r: &wire::NewAlertRule) -> Rule {
    let scope = match r.scope {
        wire::AlertScope::Datastream(d) => Scope::Datastream(d),
        wire::AlertScope::ObservedProperty(p) => Scope::ObservedProperty(p),
        wire::AlertScope::Sensor(s) => Scope::Sensor(s),
    };
    let condition = match r.condition {
        wire::AlertCondition::Above { threshold, clear } => {
            Condition::Above { threshold, clear: clear.unwrap_or(threshold) }
        }
        wire::AlertCondition::Below { threshold, clear } => {
            Condition::Below { threshold, clear: clear.unwrap_or(threshold) }
        }
        wire::AlertCondition::Rate { per_minute, clear_per_minute, window_minutes } => {
            Condition::Rate { per_minute, clear_per_minute: clear_per_minute.unwrap_or(per_minute), window_minutes }
        }
        wire::AlertCondition::Silence { minutes } => Condition::Silence { minutes },
    };
    Rule { scope, condition, min_breach_seconds: r.min_breach_seconds, min_recover_seconds: r.min_recover_seconds }
}

/// An entity id derived from a text (stable across processes and restarts).
pub fn derived_id(text: &str) -> EntityId {
    let digest = Sha256::digest(text.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    EntityId(uuid::Builder::from_random_bytes(bytes).into_uuid())
}

pub fn track_id(rule: &str, ds: i64) -> EntityId {
    derived_id(&format!("alert-track/{rule}/{ds}"))
}

fn case_id(rule: &str, ds: i64, n: i64) -> EntityId {
    derived_id(&format!("alert-case/{rule}/{ds}/{n}"))
}

fn text_field(name: &str, title: &str, ty: FieldType) -> FieldDef {
    let mut f = FieldDef::new(name, ty);
    f.title = Some(title.into());
    f
}

/// Makes the two layers (and the `cases` layer) when missing; office staff read them, inspectors
/// not (they change only through `/alerts`).
pub fn ensure_layers(st: &AppState) -> ApiResult<()> {
    crate::cases::ensure_layer(st)?;
    let store = st.store();
    let defs = [
        (
            RULES,
            "告警规则 (sensor alert rules)",
            vec![text_field("name", "规则名称", FieldType::Text), text_field("body", "规则定义", FieldType::Text)],
        ),
        (
            INCIDENTS,
            "告警事件 (sensor alerts)",
            vec![
                text_field("rule", "告警规则", FieldType::Text),
                text_field("datastream", "数据流", FieldType::Integer),
                text_field("state", "状态", FieldType::Text),
                text_field("incidents", "告警次数", FieldType::Integer),
                text_field("case_id", "案件", FieldType::Text),
                text_field("case_no", "案件编号", FieldType::Text),
                text_field("opened", "告警开始", FieldType::DateTime),
                text_field("closed", "恢复时间", FieldType::DateTime),
                text_field("description", "告警描述", FieldType::Text),
            ],
        ),
    ];
    for (name, title, fields) in defs {
        if store.layer(name).is_ok() {
            continue;
        }
        let mut def = LayerDef::new(name, GeometryKind::Geometry, LayerSchema { fields });
        def.title = Some(title.into());
        let mut tx = store.begin(TxMeta::by(AUTHOR).source(format!("create the {name} layer")))?;
        match tx.create_layer(def) {
            Ok(_) => {
                tx.commit()?;
            }
            Err(shikong_store::StoreError::LayerExists(_)) => continue,
            Err(e) => return Err(e.into()),
        }
        let local = shikong_auth::Actor::local("alerts");
        for (role, grants) in [
            (shikong_auth::Role::Office, shikong_auth::Grants::READ),
            (shikong_auth::Role::Inspector, shikong_auth::Grants::NONE),
        ] {
            let rule = shikong_auth::Rule { layer: name.into(), subject: shikong_auth::Subject::Role(role), grants };
            st.auth.set_rule(&local, &rule)?;
        }
    }
    Ok(())
}

/// Every stored rule.
pub fn load_rules(store: &dyn FeatureStore) -> ApiResult<Vec<StoredRule>> {
    if store.layer(RULES).is_err() {
        return Ok(Vec::new());
    }
    let q =
        shikong_store::Query { by_id: true, limit: Some(super::MAX_RULES + 1), ..shikong_store::Query::layer(RULES) };
    let mut out = Vec::new();
    let mut bad = None;
    store.query(&q, &mut |sf| {
        match rule_of(&sf) {
            Ok(r) => out.push(r),
            Err(e) => bad = Some(e),
        }
        true
    })?;
    if let Some(e) = bad {
        tracing::warn!(error = %e.detail, "an alert rule cannot be read and is skipped");
    }
    Ok(out)
}

pub fn rule_of(sf: &shikong_store::StoredFeature) -> ApiResult<StoredRule> {
    let id = sf.feature.id.to_string();
    let body = match sf.feature.properties.get("body") {
        Some(Value::Text(t)) => t.clone(),
        _ => return Err(ApiError::internal(format!("alert rule {id} has no body"))),
    };
    let new: wire::NewAlertRule =
        serde_json::from_str(&body).map_err(|e| ApiError::internal(format!("alert rule {id}: {e}")))?;
    // Rules are never updated, so the current version is the creation.
    let created = sf.tx_time;
    let wire = wire::AlertRule {
        id: id.clone(),
        name: new.name.clone(),
        scope: new.scope,
        condition: new.condition,
        min_breach_seconds: new.min_breach_seconds,
        min_recover_seconds: new.min_recover_seconds,
        created: shikong_model::time::beijing(created),
    };
    Ok(StoredRule { id, rule: to_rule(&new), wire, created })
}

/// What the evaluator knows of a datastream and its station (Thing).
#[derive(Debug, Clone)]
pub struct Station {
    pub info: DatastreamInfo,
    pub ds_name: String,
    pub unit: String,
    /// The Thing's feature code (`sta_thing-000001`) and name.
    pub thing_code: Option<String>,
    pub thing_name: String,
    /// The asset the Thing is tied to (its `properties.asset`, `layer/entity-or-code`).
    pub linked_asset: Option<String>,
    pub point: Option<Geometry>,
}

fn json_text(p: &Properties, k: &str) -> Map<String, Json> {
    match p.get(k) {
        Some(Value::Text(s)) => serde_json::from_str(s).unwrap_or_default(),
        _ => Map::new(),
    }
}

fn name_of(p: &Properties) -> String {
    match p.get("name") {
        Some(Value::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

/// A datastream's station, read from the `sta_*` layers (`None`: no such datastream).
pub fn station(store: &dyn FeatureStore, ds: i64) -> ApiResult<Option<Station>> {
    if store.layer("sta_datastream").is_err() {
        return Ok(None);
    }
    let Some(f) = store.get("sta_datastream", &FeatureKey::Code(format!("sta_datastream-{ds:06}")), None)? else {
        return Ok(None);
    };
    let p = &f.feature.properties;
    let links = json_text(p, "links");
    let body = json_text(p, "body");
    let link = |k: &str| links.get(k).and_then(Json::as_i64);
    let unit = body
        .get("unitOfMeasurement")
        .and_then(|u| u.get("symbol"))
        .and_then(Json::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut s = Station {
        info: DatastreamInfo { id: ds, sensor: link("Sensor"), observed_property: link("ObservedProperty") },
        ds_name: name_of(p),
        unit,
        thing_code: None,
        thing_name: String::new(),
        linked_asset: None,
        point: None,
    };
    if let Some(thing) = link("Thing") {
        let code = format!("sta_thing-{thing:06}");
        if let Some(tf) = store.get("sta_thing", &FeatureKey::Code(code.clone()), None)? {
            let tp = &tf.feature.properties;
            s.thing_name = name_of(tp);
            let tbody = json_text(tp, "body");
            s.linked_asset =
                tbody.get("properties").and_then(|p| p.get("asset")).and_then(Json::as_str).map(str::to_owned);
            let tlinks = json_text(tp, "links");
            let loc = tlinks.get("Locations").and_then(|l| l.as_array()).and_then(|a| a.first()).and_then(Json::as_i64);
            if let Some(loc) = loc
                && let Some(lf) =
                    store.get("sta_location", &FeatureKey::Code(format!("sta_location-{loc:06}")), None)?
            {
                s.point = lf.feature.geometry.filter(|g| matches!(g, Geometry::Point(_)));
            }
            s.thing_code = Some(code);
        }
    }
    Ok(Some(s))
}

/// Is the (rule, datastream) incident open in storage?
pub fn is_open(store: &dyn FeatureStore, rule: &str, ds: i64) -> ApiResult<bool> {
    if store.layer(INCIDENTS).is_err() {
        return Ok(false);
    }
    let f = store.get(INCIDENTS, &FeatureKey::Id(track_id(rule, ds)), None)?;
    Ok(f.is_some_and(|f| text(&f.feature.properties, "state") == "open"))
}

fn text(p: &Properties, k: &str) -> String {
    match p.get(k) {
        Some(Value::Text(s)) => s.clone(),
        _ => String::new(),
    }
}

fn int(p: &Properties, k: &str) -> i64 {
    match p.get(k) {
        Some(Value::Integer(i)) => *i,
        _ => 0,
    }
}

/// A time as Chinese readers expect it: Beijing time, to the second.
pub fn beijing_text(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::fixed(shikong_calendar::BEIJING)).strftime("%Y-%m-%d %H:%M:%S").to_string()
}

fn num(v: f64) -> String {
    let r = (v * 1000.0).round() / 1000.0;
    format!("{r}")
}

/// The case's description (zh-CN): what breached, the value, the limit, the time.
pub fn describe(rule: &StoredRule, s: &Station, since: Timestamp, value: f64, measured: f64, limit: f64) -> String {
    let station = if s.thing_name.is_empty() { "未命名站点".to_owned() } else { s.thing_name.clone() };
    let ds = if s.ds_name.is_empty() { format!("数据流 {}", s.info.id) } else { s.ds_name.clone() };
    let u = &s.unit;
    let what = match rule.rule.condition {
        Condition::Above { .. } => format!("读数 {}{u} 超过阈值 {}{u}", num(value), num(limit)),
        Condition::Below { .. } => format!("读数 {}{u} 低于阈值 {}{u}", num(value), num(limit)),
        Condition::Rate { window_minutes, .. } => format!(
            "{window_minutes} 分钟内变化速率 {}{u}/分钟 超过 {}{u}/分钟（当前读数 {}{u}）",
            num(measured),
            num(limit),
            num(value)
        ),
        Condition::Silence { minutes } => format!("已 {minutes} 分钟无读数"),
    };
    let mut d = format!(
        "【传感器告警】{station}（{ds}）{what}，北京时间 {} 起。规则：{}。",
        beijing_text(since),
        rule.wire.name
    );
    if let Some(a) = &s.linked_asset {
        d.push_str(&format!("关联部件：{a}。"));
    }
    d
}

/// Opens the incident of `tr` (a [`Transition::Open`]) with its case, unless one is open. Returns
/// whether a case was opened. Blocking.
pub fn open(st: &AppState, rule: &StoredRule, s: &Station, tr: &Transition) -> ApiResult<bool> {
    let Transition::Open { since, value, measured, limit, .. } = *tr else { return Ok(false) };
    ensure_layers(st)?;
    let flows = &super::flows();
    let flow = flows.latest(FLOW).ok_or_else(|| ApiError::internal("the sensor alert flow is missing"))?;
    let ds = s.info.id;
    let track = track_id(&rule.id, ds);
    let mut tx =
        st.store().begin(TxMeta::by(AUTHOR).source(format!("alert open: rule {} datastream {ds}", rule.id)))?;
    let (_, now) = tx.id();
    let current = tx.get(INCIDENTS, &FeatureKey::Id(track))?;
    if current.as_ref().is_some_and(|f| text(&f.feature.properties, "state") == "open") {
        return Ok(false); // another process (or an earlier run) opened it
    }
    let n = current.as_ref().map_or(0, |f| int(&f.feature.properties, "incidents")) + 1;
    let id = case_id(&rule.id, ds, n);
    let description = describe(rule, s, since, value, measured, limit);
    if tx.get(record::LAYER, &FeatureKey::Id(id))?.is_some() {
        return Err(ApiError::internal(format!("the case of alert {track} #{n} exists while the alert is closed")));
    }
    let limit0 = flow.state(&flow.initial).and_then(|x| x.limit);
    let rec = CaseRecord {
        id,
        case_no: String::new(),
        case: Case::new(flow, None, None, record::stamp(now)),
        class_kind: None,
        class: None,
        description: Some(description.clone()),
        source: "sensor".into(),
        source_ref: Some(format!("{INCIDENTS}/{track}#{n}")),
        asset: s.thing_code.as_ref().map(|c| format!("sta_thing/{c}")),
        location: s.point.clone(),
        stage_deadline: st.cases.deadline(st, limit0, now)?,
        version: 0,
    };
    crate::cases::insert_case(st, tx.as_mut(), rec, now)?;
    let case_no = tx.get(record::LAYER, &FeatureKey::Id(id))?.map(|f| f.feature.code).unwrap_or_default();
    let mut props = Properties::new();
    props.insert("rule".into(), Value::Text(rule.id.clone()));
    props.insert("datastream".into(), Value::Integer(ds));
    props.insert("state".into(), Value::Text("open".into()));
    props.insert("incidents".into(), Value::Integer(n));
    props.insert("case_id".into(), Value::Text(id.to_string()));
    props.insert("case_no".into(), Value::Text(case_no.clone()));
    props.insert("opened".into(), Value::DateTime(since));
    props.insert("closed".into(), Value::Null);
    props.insert("description".into(), Value::Text(description));
    if current.is_some() {
        let patch = Patch { geometry: Some(s.point.clone()), set: props, ..Patch::default() };
        tx.update(INCIDENTS, &FeatureKey::Id(track), patch)?;
    } else {
        props.remove("closed");
        let nf = NewFeature { id: Some(track), geometry: s.point.clone(), properties: props, ..NewFeature::default() };
        tx.insert(INCIDENTS, nf)?;
    }
    tx.commit()?;
    st.committed();
    crate::after_commit::kick(st);
    announce(st, rule, s, wire::AlertState::Open, since, value, id.to_string(), Some(case_no));
    Ok(true)
}

/// The Thing's `@iot.id` of a station (`sta_thing-000007` → 7).
fn thing_id(s: &Station) -> Option<i64> {
    s.thing_code.as_deref()?.strip_prefix("sta_thing-")?.parse().ok()
}

/// The state an open incident of `rule` puts its datastream in on the map.
pub fn map_state(rule: &Rule) -> shikong_protocol::api::SensorState {
    match rule.condition {
        Condition::Silence { .. } => shikong_protocol::api::SensorState::Silent,
        _ => shikong_protocol::api::SensorState::Alarm,
    }
}

/// Tells the live channel (`/events`) an incident opened or closed, after its commit: whoever may
/// read the readings (`sta_datastream`, as `GET /alerts`) hears it.
#[allow(clippy::too_many_arguments)]
fn announce(
    st: &AppState,
    rule: &StoredRule,
    s: &Station,
    state: wire::AlertState,
    at: Timestamp,
    value: f64,
    case: String,
    case_no: Option<String>,
) {
    let event = wire::AlertEvent {
        rule: rule.id.clone(),
        rule_name: rule.wire.name.clone(),
        datastream: s.info.id,
        thing: thing_id(s),
        state,
        map_state: map_state(&rule.rule),
        value: value.is_finite().then_some(value),
        at: shikong_model::time::beijing(at),
        case,
        case_no: case_no.filter(|c| !c.is_empty()),
    };
    st.events.publish(
        crate::events::Audience::Layer("sta_datastream".into()),
        shikong_protocol::api::LiveEvent::Alert(event),
    );
}

/// Closes the open incident of (rule, datastream): its case takes the flow's `recover` action with
/// a note (a case the office closed meanwhile stays as it is). Returns whether it was open.
/// Blocking.
pub fn close(st: &AppState, rule: &StoredRule, s: &Station, at: Timestamp, value: f64) -> ApiResult<bool> {
    let ds = s.info.id;
    let track = track_id(&rule.id, ds);
    if st.store().layer(INCIDENTS).is_err() {
        return Ok(false);
    }
    let mut tx =
        st.store().begin(TxMeta::by(AUTHOR).source(format!("alert recovered: rule {} datastream {ds}", rule.id)))?;
    let (_, now) = tx.id();
    let Some(current) = tx.get(INCIDENTS, &FeatureKey::Id(track))? else { return Ok(false) };
    let p = &current.feature.properties;
    if text(p, "state") != "open" {
        return Ok(false);
    }
    let n = int(p, "incidents");
    let (case, case_no) = (text(p, "case_id"), text(p, "case_no"));
    let note = if value.is_finite() {
        format!("读数已恢复：{}{}（北京时间 {}），平台自动关闭告警。", num(value), s.unit, beijing_text(at))
    } else {
        format!("已恢复上报读数（北京时间 {}），平台自动关闭告警。", beijing_text(at))
    };
    if let Ok(case_uuid) = text(p, "case_id").parse::<EntityId>()
        && let Some(sf) = tx.get(record::LAYER, &FeatureKey::Id(case_uuid))?
    {
        let mut rec = CaseRecord::from_feature(&sf)?;
        let flows = super::flows();
        if let Some(flow) = flows.get(&rec.case.flow) {
            let request = ActionRequest {
                action: "recover".into(),
                action_id: format!("alert-recover-{track}-{n}"),
                note: Some(note),
                assignee: None,
                photos: Vec::new(),
                rating: None,
                actor: Actor { user: AUTHOR.into(), roles: vec!["system".into()], departments: Vec::new() },
                at: record::stamp(now),
            };
            match shikong_workflow::decide(flow, &rec.case, &request) {
                Ok(Outcome::Applied(t)) => {
                    rec.case.commit(&t);
                    rec.stage_deadline = match &t.clock {
                        StageClock::Start { limit } => st.cases.deadline(st, *limit, now)?,
                        StageClock::Keep => rec.stage_deadline,
                        StageClock::Extend { by } => {
                            st.cases.deadline(st, Some(*by), rec.stage_deadline.unwrap_or(now))?
                        }
                    };
                    let patch = Patch { set: rec.properties(now)?, ..Patch::default() };
                    tx.update(record::LAYER, &FeatureKey::Id(rec.id), patch)?;
                }
                Ok(_) => {}
                // Closed by hand (结案) before the readings recovered: the case stays as it is.
                Err(r) => {
                    tracing::info!(case = %rec.case_no, refusal = %r, "an alert recovered after its case was closed")
                }
            }
        }
    }
    let mut set = Properties::new();
    set.insert("state".into(), Value::Text("closed".into()));
    set.insert("closed".into(), Value::DateTime(at));
    tx.update(INCIDENTS, &FeatureKey::Id(track), Patch { set, ..Patch::default() })?;
    tx.commit()?;
    st.committed();
    crate::after_commit::kick(st);
    announce(st, rule, s, wire::AlertState::Closed, at, value, case, Some(case_no));
    Ok(true)
}

/// An incident feature as the wire's [`wire::Alert`].
pub fn alert_doc(sf: &shikong_store::StoredFeature) -> wire::Alert {
    let p = &sf.feature.properties;
    let opt = |k: &str| Some(text(p, k)).filter(|s| !s.is_empty());
    let time = |k: &str| match p.get(k) {
        Some(Value::DateTime(t)) => Some(shikong_model::time::beijing(*t)),
        _ => None,
    };
    let rule = text(p, "rule");
    let ds = int(p, "datastream");
    wire::Alert {
        id: format!("{rule}/{ds}"),
        rule,
        datastream: ds,
        state: text(p, "state"),
        incidents: int(p, "incidents"),
        opened: time("opened"),
        closed: time("closed"),
        case: opt("case_id"),
        case_no: opt("case_no"),
        description: opt("description"),
    }
}
