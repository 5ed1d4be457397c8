//! `POST /services`, `GET /services`, `GET /services/{id}`, `DELETE /services/{id}`
//! (administrators): registering an outside service reads its capabilities first (bounded: 8 MiB,
//! the upstream timeout) and keeps the layers found; a service that does not answer them is not
//! registered (422 naming `url`, without the address). Answers show the proxy's address, never
//! the outside one, and whether credentials are stored, never what they are.
//!
//! [`registered_services`] is the read the catalog uses: every service with its layers.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use shikong_auth::NewServiceRow;
use shikong_protocol::api::services::{NewService, ServiceInfo, ServiceLayer, ServiceList, ServiceType};

use super::{ServiceEntry, capabilities, health, registry_blocking, upstream};
use crate::access::Caller;
use crate::body::Body;
use crate::{ApiError, ApiResult, AppState, blocking, json_ok};

/// A registered service as the catalog lists it (no outside address, no credentials).
#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredService {
    pub id: String,
    pub kind: ServiceType,
    pub title: String,
    /// Path of its proxy below the server's base URL: `/services/{id}/proxy/`.
    pub proxy_path: String,
    pub layers: Vec<ServiceLayer>,
    pub up: Option<bool>,
    pub created_at: jiff::Timestamp,
}

/// Every registered service with the layers its capabilities listed (for the catalog). Blocking.
pub fn registered_services(state: &AppState) -> ApiResult<Vec<RegisteredService>> {
    let reg = registry_blocking(state)?;
    let mut out: Vec<RegisteredService> = reg
        .values()
        .map(|e| RegisteredService {
            id: e.row.id.clone(),
            kind: e.kind,
            title: e.row.title.clone(),
            proxy_path: format!("/services/{}/proxy/", e.row.id),
            layers: e.layers(),
            up: match e.health().state {
                shikong_protocol::api::services::HealthState::Up => Some(true),
                shikong_protocol::api::services::HealthState::Down => Some(false),
                shikong_protocol::api::services::HealthState::Unknown => None,
            },
            created_at: e.row.created_at,
        })
        .collect();
    out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    Ok(out)
}

/// The proxy address clients use for a service (XYZ: the tile template under the proxy).
fn proxy_url(base: &str, e: &ServiceEntry) -> String {
    let root = format!("{base}/services/{}/proxy/", e.row.id);
    match e.kind {
        ServiceType::Xyz => {
            let ext = e.upstream.base.rsplit_once("{y}").map_or("", |(_, rest)| rest.split('?').next().unwrap_or(""));
            format!("{root}{{z}}/{{x}}/{{y}}{ext}")
        }
        _ => root,
    }
}

pub(crate) fn info(base: &str, e: &ServiceEntry) -> ServiceInfo {
    ServiceInfo {
        id: e.row.id.clone(),
        kind: e.kind,
        title: e.row.title.clone(),
        url: proxy_url(base, e),
        layers: e.layers(),
        health: e.health(),
        credentials: !e.upstream.credentials.is_empty(),
        created_at: shikong_model::time::beijing(e.row.created_at),
        created_by: e.row.created_by.clone(),
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    let actor = caller.admin_only(q.as_deref(), "only administrators register services")?;
    let new: NewService =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(format!("the body is not a service: {e}")))?;
    let unfit = |field: &str, detail: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-service", format!("`{field}`: {detail}"))
            .with("field", field)
    };
    let up = upstream::Upstream::from_new(&new).map_err(|e| unfit("url", e))?;
    let layers =
        capabilities::fetch(state.services.client(), &up, &new.title, state.services.config().upstream_timeout)
            .await
            .map_err(|e| unfit("url", format!("the service's capabilities could not be read: {e}")))?;
    let credentials = (!up.credentials.is_empty())
        .then(|| serde_json::to_string(&up.credentials))
        .transpose()
        .map_err(ApiError::internal)?;
    let row = NewServiceRow {
        kind: new.kind.as_str().to_owned(),
        title: new.title.clone(),
        url: new.url.clone(),
        credentials,
        layers: serde_json::to_string(&layers).map_err(ApiError::internal)?,
        health: health::initial(),
    };
    let st = state.clone();
    let row = blocking(move || Ok(st.auth.add_service(&actor, &row)?)).await?;
    state.services.invalidate_registry();
    let entry = ServiceEntry::from_row(row).ok_or_else(|| ApiError::internal("a stored service does not parse"))?;
    let base = state.base_url(&headers);
    let mut resp = json_ok(&info(&base, &entry))?;
    *resp.status_mut() = StatusCode::CREATED;
    if let Ok(v) = format!("{base}/services/{}", entry.row.id).parse() {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

pub(crate) async fn list(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    caller.admin_only(q.as_deref(), "only administrators list registered services")?;
    let st = state.clone();
    let reg = blocking(move || {
        st.services.invalidate_registry();
        registry_blocking(&st)
    })
    .await?;
    let base = state.base_url(&headers);
    let mut services: Vec<ServiceInfo> = reg.values().map(|e| info(&base, e)).collect();
    services.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    json_ok(&ServiceList { services })
}

pub(crate) async fn one(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    caller.admin_only(q.as_deref(), "only administrators read registered services")?;
    let st = state.clone();
    let i = id.clone();
    let row = blocking(move || Ok(st.auth.service(&i)?)).await?;
    let entry = row
        .and_then(ServiceEntry::from_row)
        .ok_or_else(|| ApiError::not_found(format!("no registered service `{id}`")).with("service", id.as_str()))?;
    json_ok(&info(&state.base_url(&headers), &entry))
}

pub(crate) async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let actor = caller.admin_only(q.as_deref(), "only administrators remove services")?;
    let st = state.clone();
    blocking(move || Ok(st.auth.delete_service(&actor, &id)?)).await?;
    state.services.invalidate_registry();
    Ok(StatusCode::NO_CONTENT.into_response())
}
