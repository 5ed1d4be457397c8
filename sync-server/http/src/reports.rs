//! A user's own citizen reports (我的上报): `GET /reports/mine[?id=…&id=…]`.
//!
//! Citizens may create features in layers marked `citizen_reports` but not read those layers;
//! this route shows them exactly what they created there — decided by the store's history (the
//! author of version 1), never by a property a client could write — with the current state the
//! office gave it (status, fields), when it was created and last changed, and how many versions
//! it has, and the public progress of the case the report opened (`cases`: steps and times, not
//! staff notes). Nobody sees another user's reports here, whatever their role.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value as Json};
use shikong_model::{EntityId, FieldDef, FieldType, geojson, time};
use shikong_protocol::api;
use shikong_store::{FeatureKey, Layer, VersionRecord};

use super::access::Caller;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking};

pub fn routes() -> Router<AppState> {
    Router::new().route("/reports/mine", get(mine)).route("/reports/layers", get(report_layers))
}

/// The field that carries a report's handling status: the first code-list field named `status`
/// or whose name or title mentions 状态 (the demo's `办理状态`).
pub fn status_field(l: &Layer) -> Option<&FieldDef> {
    l.schema().fields.iter().filter(|f| !f.retired && f.ty == FieldType::Code).find(|f| {
        f.name.eq_ignore_ascii_case("status")
            || f.name.contains("状态")
            || f.title.as_deref().is_some_and(|t| t.contains("状态"))
    })
}

/// One report as a GeoJSON feature: the last live state (a deleted report keeps its last state
/// and says `deleted: true`).
fn report_feature(l: &Layer, id: EntityId, history: &[VersionRecord]) -> Option<api::ReportFeature> {
    let (first, last) = (history.first()?, history.last()?);
    let state = history.iter().rev().find_map(|v| v.state.as_ref())?;
    let mut fields = Map::new();
    for f in &l.schema().fields {
        fields.insert(f.name.clone(), state.properties.get(&f.name).map_or(Json::Null, shikong_model::Value::to_json));
    }
    let status = status_field(l).map(|f| {
        let code = state.properties.get(&f.name).map(shikong_model::Value::to_text);
        let label = code.as_deref().and_then(|c| f.codes.iter().find(|i| i.code == c)).map(|i| i.label.clone());
        api::ReportStatus { field: f.name.clone(), code, label }
    });
    Some(api::ReportFeature {
        kind: api::FeatureType::Feature,
        id: id.to_string(),
        geometry: state.geometry.as_ref().map(geojson::to_json),
        properties: api::ReportProperties {
            layer: l.name().to_owned(),
            layer_title: l.def.title.clone(),
            code: state.code.clone(),
            status,
            created_at: time::beijing(first.tx.time),
            updated_at: time::beijing(last.tx.time),
            versions: history.len() as u64,
            deleted: last.state.is_none(),
            fields,
            case: None,
        },
    })
}

async fn mine(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let p = Params::new(q.as_deref())?;
    p.only_repeating(&["id"], &["id"])?;
    let only: Vec<EntityId> = p
        .all("id")
        .into_iter()
        .map(|s| s.parse::<EntityId>().map_err(|_| ApiError::bad_parameter("id", format!("`{s}` is not a UUID"))))
        .collect::<ApiResult<_>>()?;
    let st = state.clone();
    let features = blocking(move || {
        // Reports that arrived since the last look open their cases first (`cases::follow`).
        super::cases::catch_up(&st)?;
        let mut out: Vec<(jiff::Timestamp, api::ReportFeature)> = Vec::new();
        for l in st.store().layers()?.into_iter().filter(|l| l.def.citizen_reports) {
            for id in st.store().entities_created_by(l.name(), &who.username)? {
                if !only.is_empty() && !only.contains(&id) {
                    continue;
                }
                let history = st.store().history(l.name(), &FeatureKey::Id(id))?;
                if let (Some(first), Some(mut j)) = (history.first(), report_feature(&l, id, &history)) {
                    // The case's public progress: steps and times, no staff notes or names.
                    j.properties.case = super::cases::progress_of(&st, id)?;
                    out.push((first.tx.time, j));
                }
            }
        }
        // Newest first.
        out.sort_by_key(|r| std::cmp::Reverse(r.0));
        Ok(out.into_iter().map(|(_, j)| j).collect::<Vec<_>>())
    })
    .await?;
    let body = api::MyReports {
        kind: api::FeatureCollectionType::FeatureCollection,
        number_returned: features.len() as u64,
        time_stamp: time::beijing(jiff::Timestamp::now()),
        features,
    };
    let body = serde_json::to_string(&body).map_err(ApiError::internal)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/geo+json")], body).into_response())
}

/// `GET /reports/layers`: the layers the caller may report into, with the fields of their forms
/// (code lists with labels). Citizens cannot read these layers, so the app's report form comes
/// from here rather than from the OGC collection.
async fn report_layers(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require()?;
    let st = state.clone();
    let layers = blocking(move || {
        let mut out = Vec::new();
        for l in st.store().layers()?.into_iter().filter(|l| l.def.citizen_reports) {
            let fields = l.schema().fields.iter().filter(|f| !f.retired).cloned().collect();
            out.push(api::ReportLayer { name: l.name().to_owned(), title: l.display_name().to_owned(), fields });
        }
        Ok(out)
    })
    .await?;
    let body = serde_json::to_string(&api::ReportLayers { layers }).map_err(ApiError::internal)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}
