//! Citizen reports open cases, and a report's `办理状态` follows its case.
//!
//! Why a catch-up over the change feed instead of a hook in each write path: a report reaches the
//! store through OGC API – Features, a device's sync push or an import, and every one of them must
//! open a case. So before the case and report routes answer, [`catch_up`] reads the changes of
//! each `citizen_reports` layer since the last position it saw and opens a case for every live
//! report that has none. The case takes the report's entity id (ids are unique within a layer, so
//! a report opens at most one case, and `/reports/mine` finds it without a query); its source is
//! `citizen_report`, `source_ref` is `layer/entity`, the reporter is the author of the report's
//! first version (from the store's history, never from a field a client wrote).
//!
//! The status mapping (`办理状态` is matched by label within the layer's code list; a layer without
//! the label keeps its value): the initial state → 待受理 (not written when the case opens: an
//! empty status already reads as 待受理), a state whose id is `dismissed` → 不予受理, `closed`,
//! `concluded`, `visited`, `rated` → 已办结, every other state → 处理中.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use shikong_model::{EntityId, Value};
use shikong_store::{ChangeCursor, FeatureKey, Patch, StoreTx};
use shikong_workflow::{Case, FlowDef};

use super::record::{self, CaseRecord};
use super::{Cases, ensure_layer, insert_case};
use crate::AppState;
use crate::problem::{ApiError, ApiResult};

/// Changes read per page of the feed.
const PAGE: usize = 256;

/// Where the catch-up stands in each report layer's change feed (in memory: after a restart it
/// reads the feeds from the start, and finds the cases already open).
#[derive(Debug, Default)]
pub struct Follower {
    cursors: Mutex<HashMap<String, ChangeCursor>>,
}

/// Opens a case for every report created since the last catch-up. Blocking.
pub fn catch_up(state: &AppState) -> ApiResult<()> {
    let cases: &Cases = &state.cases;
    // One catch-up at a time: the cursors move only forward and a report opens one case.
    let mut cursors = cases.follower.cursors.lock().unwrap_or_else(PoisonError::into_inner);
    for layer in state.store().layers()?.into_iter().filter(|l| l.def.citizen_reports) {
        let name = layer.name().to_owned();
        let mut cursor = cursors.get(&name).copied().unwrap_or_default();
        loop {
            let page = state.store().changes_since(&name, cursor, PAGE)?;
            let fresh: Vec<_> = page.changes.into_iter().filter_map(|c| c.state).collect();
            if !fresh.is_empty() {
                open_for_reports(state, &name, &fresh)?;
            }
            cursor = page.next;
            if !page.more {
                break;
            }
        }
        cursors.insert(name, cursor);
    }
    Ok(())
}

fn open_for_reports(state: &AppState, layer: &str, reports: &[shikong_store::StoredFeature]) -> ApiResult<()> {
    let store = state.store();
    // Cheap check before taking the writer: most changes are of reports that have their case.
    let exists = |id: EntityId| -> ApiResult<bool> {
        Ok(store.layer(record::LAYER).is_ok() && store.get(record::LAYER, &FeatureKey::Id(id), None)?.is_some())
    };
    let mut new = Vec::new();
    for r in reports {
        if !exists(r.feature.id)? {
            new.push(r);
        }
    }
    if new.is_empty() {
        return Ok(());
    }
    ensure_layer(state)?;
    let flow = state.cases.default_flow()?;
    let meta = shikong_store::TxMeta::by("system:cases").source(format!("cases opened for reports in {layer}"));
    let mut tx = store.begin(meta)?;
    let (_, now) = tx.id();
    for r in new {
        // Checked again under the writer: another catch-up cannot have opened it meanwhile.
        if store.get(record::LAYER, &FeatureKey::Id(r.feature.id), None)?.is_some() {
            continue;
        }
        let reporter = store.history(layer, &FeatureKey::Id(r.feature.id))?.first().map(|v| v.tx.author.clone());
        let description = ["描述", "description", "问题描述"].iter().find_map(|f| match r.feature.properties.get(*f) {
            Some(Value::Text(t)) if !t.is_empty() => Some(t.clone()),
            _ => None,
        });
        let location = r.feature.geometry.clone().filter(|g| matches!(g, shikong_model::Geometry::Point(_)));
        let rec = CaseRecord {
            id: r.feature.id,
            case_no: String::new(),
            case: Case::new(flow, reporter, None, record::stamp(now)),
            class_kind: None,
            class: None,
            description,
            source: "citizen_report".into(),
            source_ref: Some(format!("{layer}/{}", r.feature.id)),
            asset: None,
            location,
            stage_deadline: state.cases.deadline(state, flow.state(&flow.initial).and_then(|s| s.limit), now)?,
            version: 0,
        };
        insert_case(state, tx.as_mut(), rec, now)?;
    }
    tx.commit()?;
    state.committed();
    Ok(())
}

/// The report label a case state maps to (see the module docs).
pub fn status_label(flow: &FlowDef, state: &str) -> &'static str {
    match state {
        s if s == flow.initial => "待受理",
        "dismissed" => "不予受理",
        "closed" | "concluded" | "visited" | "rated" => "已办结",
        _ => "处理中",
    }
}

/// Within `tx`: sets the `办理状态` of the report a case came from to the label of the case's
/// new state, when the case has a report and the report's layer has the label.
pub fn follow_status(state: &AppState, tx: &mut dyn StoreTx, rec: &CaseRecord, flow: &FlowDef) -> ApiResult<()> {
    if rec.source != "citizen_report" {
        return Ok(());
    }
    let Some((layer, id)) = rec.source_ref.as_deref().and_then(|s| s.split_once('/')) else { return Ok(()) };
    let Ok(id) = id.parse::<EntityId>() else { return Ok(()) };
    let Ok(l) = state.store().layer(layer) else { return Ok(()) };
    let Some(field) = crate::reports::status_field(&l) else { return Ok(()) };
    let label = status_label(flow, &rec.case.state);
    let Some(code) = field.codes.iter().find(|c| c.label == label) else { return Ok(()) };
    // Through the transaction: it may be grouped (an earlier action's status is in its group).
    let Some(current) = tx.get(layer, &FeatureKey::Id(id))? else { return Ok(()) };
    if current.feature.properties.get(&field.name) == Some(&Value::Text(code.code.clone())) {
        return Ok(());
    }
    let mut patch = Patch::default();
    patch.set.insert(field.name.clone(), Value::Text(code.code.clone()));
    tx.update(layer, &FeatureKey::Id(id), patch).map_err(ApiError::from)?;
    Ok(())
}
