//! A case as a feature of the system layer `cases`: the layer's definition, and the one codec
//! between a stored feature and a [`CaseRecord`] (the workflow's [`Case`] plus what the platform
//! adds: number, class, source, asset, location, deadline).
//!
//! Why a feature: every transition is a new version of the case feature written in one store
//! transaction (author = the actor), so a case has full history, as-of reads and diffs like any
//! object, and GIS tools see the layer as it is now. The history (`transitions`) and the kept
//! offline rejections (`rejected`) are the workflow crate's own records as JSON, so reading a case
//! back gives exactly the [`Case`] the rules judged — the state field is only ever written from a
//! transition the flow allowed. `photos` repeats every transition's photos as an attachments field,
//! so the store links them to the layer and the case's readers may download the evidence.

use jiff::Timestamp;
use shikong_model::{EntityId, FieldDef, FieldType, Geometry, GeometryKind, LayerSchema, Properties, Value, geojson};
use shikong_protocol::api::cases as wire;
use shikong_store::{LayerDef, StoredFeature};
use shikong_workflow::{Actor, Applied, Assignee, Case, FlowDef, FlowRef, Rejected, Stamp, TimeLimit};

use crate::problem::{ApiError, ApiResult};

/// The system layer holding every case.
pub const LAYER: &str = "cases";

/// Field names of the `cases` layer.
pub mod field {
    pub const FLOW_ID: &str = "flow_id";
    pub const FLOW_VERSION: &str = "flow_version";
    pub const STATE: &str = "state";
    pub const CLASS_KIND: &str = "class_kind";
    pub const CLASS: &str = "class";
    pub const DESCRIPTION: &str = "description";
    pub const SOURCE: &str = "source";
    pub const SOURCE_REF: &str = "source_ref";
    pub const ASSET: &str = "asset";
    pub const ASSIGNEE: &str = "assignee";
    pub const REPORTER: &str = "reporter";
    pub const STAGE_STARTED: &str = "stage_started";
    pub const STAGE_DEADLINE: &str = "stage_deadline";
    pub const OVERDUE: &str = "overdue";
    pub const CLASS_LIMIT: &str = "class_limit";
    pub const TRANSITIONS: &str = "transitions";
    pub const REJECTED: &str = "rejected";
    pub const PHOTOS: &str = "photos";
}

/// The indexes of the `cases` layer: the overdue scan (`overdue = false AND stage_deadline < now`)
/// reads it every round. No index on `state`: most cases share a few states, and with one the
/// planner read a million rows by state and sorted them for `GET /cases?status=` (p99 1.4 s
/// against 27 ms without it, `shikong-bench cases`).
pub const INDEXES: [&[&str]; 1] = [&[field::OVERDUE, field::STAGE_DEADLINE]];

/// The `cases` layer: points, not public, not open to citizen reports.
pub fn layer_def() -> LayerDef {
    use field::*;
    let text = |name: &str, title: &str| {
        let mut f = FieldDef::new(name, FieldType::Text);
        f.title = Some(title.into());
        f
    };
    let typed = |name: &str, title: &str, ty: FieldType| {
        let mut f = FieldDef::new(name, ty);
        f.title = Some(title.into());
        f
    };
    let fields = vec![
        text(FLOW_ID, "业务流"),
        typed(FLOW_VERSION, "业务流版本", FieldType::Integer),
        text(STATE, "案件状态"),
        text(CLASS_KIND, "部件/事件"),
        text(CLASS, "小类代码"),
        text(DESCRIPTION, "问题描述"),
        text(SOURCE, "案件来源"),
        text(SOURCE_REF, "来源编号"),
        text(ASSET, "相关部件"),
        text(ASSIGNEE, "处置人"),
        text(REPORTER, "上报人"),
        typed(STAGE_STARTED, "本阶段开始", FieldType::DateTime),
        typed(STAGE_DEADLINE, "本阶段时限", FieldType::DateTime),
        typed(OVERDUE, "超期", FieldType::Bool),
        text(CLASS_LIMIT, "处置时限"),
        text(TRANSITIONS, "办理过程"),
        text(REJECTED, "未采纳的离线操作"),
        typed(PHOTOS, "举证照片", FieldType::Attachments),
    ];
    let mut def = LayerDef::new(LAYER, GeometryKind::Point, LayerSchema { fields });
    def.title = Some("案件".into());
    def.description = Some("城市管理案件（业务流引擎）：每次流转是案件要素的一个新版本".into());
    def
}

/// A case as stored.
#[derive(Debug, Clone)]
pub struct CaseRecord {
    pub id: EntityId,
    /// The feature's code: `2026-000123`.
    pub case_no: String,
    /// What the workflow rules judge.
    pub case: Case,
    pub class_kind: Option<String>,
    pub class: Option<String>,
    pub description: Option<String>,
    pub source: String,
    pub source_ref: Option<String>,
    pub asset: Option<String>,
    pub location: Option<Geometry>,
    pub stage_deadline: Option<Timestamp>,
    /// The feature version read (0 for a case not yet stored).
    pub version: i64,
}

/// Milliseconds since the epoch: the server's [`Stamp`] scale.
pub fn stamp(t: Timestamp) -> Stamp {
    Stamp(t.as_millisecond())
}

pub fn instant(s: Stamp) -> Timestamp {
    Timestamp::from_millisecond(s.0).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn corrupt(id: EntityId, what: impl std::fmt::Display) -> ApiError {
    ApiError::internal(format!("case {id} in layer `{LAYER}` cannot be read: {what}"))
}

impl CaseRecord {
    /// Reads a stored case feature back.
    pub fn from_feature(sf: &StoredFeature) -> ApiResult<CaseRecord> {
        let f = &sf.feature;
        let p = &f.properties;
        let text = |name: &str| match p.get(name) {
            Some(Value::Text(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let time = |name: &str| match p.get(name) {
            Some(Value::DateTime(t)) => Some(*t),
            _ => None,
        };
        let json = |name: &str| text(name).unwrap_or_else(|| "[]".to_owned());
        let version = match p.get(field::FLOW_VERSION) {
            Some(Value::Integer(v)) => u32::try_from(*v).map_err(|e| corrupt(f.id, e))?,
            _ => return Err(corrupt(f.id, "no flow version")),
        };
        let flow = FlowRef { id: text(field::FLOW_ID).ok_or_else(|| corrupt(f.id, "no flow id"))?, version };
        let assignee =
            text(field::ASSIGNEE).map(|a| a.parse::<Assignee>().map_err(|e| corrupt(f.id, e))).transpose()?;
        let class_limit: Option<TimeLimit> = match text(field::CLASS_LIMIT) {
            Some(j) => serde_json::from_str(&j).map_err(|e| corrupt(f.id, e))?,
            None => None,
        };
        let history: Vec<Applied> = serde_json::from_str(&json(field::TRANSITIONS)).map_err(|e| corrupt(f.id, e))?;
        let rejected: Vec<Rejected> = serde_json::from_str(&json(field::REJECTED)).map_err(|e| corrupt(f.id, e))?;
        let case = Case {
            flow,
            state: text(field::STATE).ok_or_else(|| corrupt(f.id, "no state"))?,
            assignee,
            reporter: text(field::REPORTER),
            class_limit,
            stage_started: stamp(time(field::STAGE_STARTED).unwrap_or(sf.tx_time)),
            history,
            rejected,
        };
        Ok(CaseRecord {
            id: f.id,
            case_no: f.code.clone(),
            case,
            class_kind: text(field::CLASS_KIND),
            class: text(field::CLASS),
            description: text(field::DESCRIPTION),
            source: text(field::SOURCE).unwrap_or_else(|| "hotline".to_owned()),
            source_ref: text(field::SOURCE_REF),
            asset: text(field::ASSET),
            location: f.geometry.clone(),
            stage_deadline: time(field::STAGE_DEADLINE),
            version: sf.version,
        })
    }

    /// The feature's fields for a write (every field, so a write never leaves a stale value).
    pub fn properties(&self, now: Timestamp) -> ApiResult<Properties> {
        use field::*;
        let opt = |v: &Option<String>| v.clone().map_or(Value::Null, Value::Text);
        let c = &self.case;
        let mut p = Properties::new();
        p.insert(FLOW_ID.into(), Value::Text(c.flow.id.clone()));
        p.insert(FLOW_VERSION.into(), Value::Integer(i64::from(c.flow.version)));
        p.insert(STATE.into(), Value::Text(c.state.clone()));
        p.insert(CLASS_KIND.into(), opt(&self.class_kind));
        p.insert(CLASS.into(), opt(&self.class));
        p.insert(DESCRIPTION.into(), opt(&self.description));
        p.insert(SOURCE.into(), Value::Text(self.source.clone()));
        p.insert(SOURCE_REF.into(), opt(&self.source_ref));
        p.insert(ASSET.into(), opt(&self.asset));
        p.insert(ASSIGNEE.into(), opt(&c.assignee.as_ref().map(ToString::to_string)));
        p.insert(REPORTER.into(), opt(&c.reporter));
        p.insert(STAGE_STARTED.into(), Value::DateTime(instant(c.stage_started)));
        p.insert(STAGE_DEADLINE.into(), self.stage_deadline.map_or(Value::Null, Value::DateTime));
        p.insert(OVERDUE.into(), Value::Bool(self.overdue(now)));
        let limit = c.class_limit.map(|l| serde_json::to_string(&l)).transpose().map_err(ApiError::internal)?;
        p.insert(CLASS_LIMIT.into(), opt(&limit));
        p.insert(TRANSITIONS.into(), Value::Text(serde_json::to_string(&c.history).map_err(ApiError::internal)?));
        p.insert(REJECTED.into(), Value::Text(serde_json::to_string(&c.rejected).map_err(ApiError::internal)?));
        // Every photo of every transition, so the store records that the case refers to them and
        // the case's readers may download the evidence.
        let mut photos: Vec<String> = Vec::new();
        for sha in c.history.iter().flat_map(|a| &a.photos) {
            if !photos.contains(sha) {
                photos.push(sha.clone());
            }
        }
        p.insert(PHOTOS.into(), if photos.is_empty() { Value::Null } else { Value::Attachments(photos) });
        Ok(p)
    }

    /// The current stage's deadline has passed at `now`.
    pub fn overdue(&self, now: Timestamp) -> bool {
        self.stage_deadline.is_some_and(|d| d < now)
    }

    /// The answer's form of the case. `staff`: the reporter's name is shown.
    pub fn to_doc(&self, flow: Option<&FlowDef>, now: Timestamp, staff: bool) -> wire::CaseDoc {
        let c = &self.case;
        wire::CaseDoc {
            id: self.id.to_string(),
            case_no: self.case_no.clone(),
            flow: wire::CaseFlow { id: c.flow.id.clone(), version: c.flow.version },
            state: c.state.clone(),
            state_label: state_label(flow, &c.state),
            state_label_en: state_label_en(flow, &c.state),
            class_kind: self.class_kind.clone(),
            class: self.class.clone(),
            description: self.description.clone(),
            source: self.source.clone(),
            source_ref: self.source_ref.clone(),
            asset: self.asset.clone(),
            location: self.location.as_ref().map(geojson::to_json),
            assignee: c.assignee.as_ref().map(ToString::to_string),
            route: None,
            reporter: if staff { c.reporter.clone() } else { None },
            stage_started: shikong_calendar::beijing(instant(c.stage_started)),
            stage_deadline: self.stage_deadline.map(shikong_calendar::beijing),
            overdue: self.overdue(now),
            version: self.version,
            transitions: c.history.iter().map(transition_doc).collect(),
            rejected: c.rejected.iter().map(rejected_doc).collect(),
            actions: Vec::new(),
        }
    }

    /// [`CaseRecord::to_doc`] with the actions `actor` may take now (one case's answer).
    pub fn to_doc_for(&self, flow: Option<&FlowDef>, now: Timestamp, staff: bool, actor: &Actor) -> wire::CaseDoc {
        let mut doc = self.to_doc(flow, now, staff);
        if let Some(flow) = flow {
            doc.actions = shikong_workflow::offered(flow, &self.case, actor)
                .into_iter()
                .map(|o| wire::CaseOffer {
                    action: o.action.id.clone(),
                    label: o.action.label.zh.clone(),
                    label_en: o.action.label.en.clone(),
                    fields: o.fields.iter().map(|f| f.as_str().to_owned()).collect(),
                    min_photos: o.min_photos,
                })
                .collect();
        }
        doc
    }

    /// What the reporting citizen sees: steps and times, no notes, no names.
    pub fn progress(&self, flow: Option<&FlowDef>) -> wire::CaseProgress {
        let c = &self.case;
        wire::CaseProgress {
            case_no: self.case_no.clone(),
            state: c.state.clone(),
            state_label: state_label(flow, &c.state),
            stage_deadline: self.stage_deadline.map(shikong_calendar::beijing),
            steps: c
                .history
                .iter()
                .map(|a| wire::ProgressStep {
                    action: a.action.clone(),
                    label: flow
                        .and_then(|f| f.action(&a.action))
                        .map_or_else(|| a.action.clone(), |d| d.label.zh.clone()),
                    state: a.to.clone(),
                    state_label: state_label(flow, &a.to),
                    at: shikong_calendar::beijing(instant(a.at)),
                })
                .collect(),
        }
    }
}

/// A state's Chinese label (its id when the flow is unknown).
pub fn state_label(flow: Option<&FlowDef>, state: &str) -> String {
    flow.and_then(|f| f.state(state)).map_or_else(|| state.to_owned(), |s| s.label.zh.clone())
}

/// A state's English label: the flow's `label.en`, else (an unknown flow, a blank label) the id
/// made readable (`being_handled` → `Being handled`), never Chinese.
pub fn state_label_en(flow: Option<&FlowDef>, state: &str) -> String {
    match flow.and_then(|f| f.state(state)).map(|s| s.label.en.trim()) {
        Some(en) if !en.is_empty() => en.to_owned(),
        _ => humanise(state),
    }
}

/// `being_handled` / `being-handled` → `Being handled`.
fn humanise(id: &str) -> String {
    let words = id.replace(['_', '-'], " ");
    let mut chars = words.trim().chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

pub fn transition_doc(a: &Applied) -> wire::CaseTransition {
    wire::CaseTransition {
        action_id: a.action_id.clone(),
        action: a.action.clone(),
        actor: a.actor.clone(),
        at: shikong_calendar::beijing(instant(a.at)),
        from: a.from.clone(),
        to: a.to.clone(),
        assignee: a.assignee.as_ref().map(ToString::to_string),
        note: a.note.clone(),
        photos: a.photos.clone(),
        rating: a.rating,
    }
}

fn rejected_doc(r: &Rejected) -> wire::CaseRejected {
    wire::CaseRejected {
        action_id: r.request.action_id.clone(),
        action: r.request.action.clone(),
        actor: r.request.actor.user.clone(),
        at: shikong_calendar::beijing(instant(r.request.at)),
        kind: r.reason.kind().to_owned(),
        reason: r.reason.to_string(),
        state_at_arrival: r.state_at_arrival.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_state_labels_never_fall_back_to_chinese() {
        let flows = shikong_workflow::FlowRegistry::shipped().unwrap();
        let hotline = flows.latest("hotline-12345");
        assert_eq!(state_label_en(hotline, "received"), "Received (to dispatch)");
        assert_eq!(state_label_en(None, "being_handled"), "Being handled");
        assert_eq!(state_label_en(hotline, "on-hold"), "On hold");
        assert_eq!(state_label_en(None, ""), "");
    }
}
