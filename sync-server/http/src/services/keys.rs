//! `POST /keys`, `GET /keys`, `DELETE /keys/{id}` (administrators): API keys for applications.
//! A key has a daily quota (requests per Beijing day), the services it may use, an optional fence
//! (a WKT polygon in CGCS2000 lon/lat, see `fence.rs`), an optional expiry and daily window. Its
//! secret is in the 201 answer only; the server keeps its SHA-256 (`shikong-auth`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shikong_auth::{ApiKeyRow, NewApiKey};
use shikong_protocol::api::services::{KeyCreated, KeyInfo, KeyList, NewKey};

use super::{MAX_FENCE_VERTICES, beijing_day, fence, registry_blocking};
use crate::access::Caller;
use crate::body::Body;
use crate::{ApiError, ApiResult, AppState, blocking, json_ok};

fn info(state: &AppState, row: &ApiKeyRow, day: &str) -> KeyInfo {
    KeyInfo {
        id: row.id.clone(),
        name: row.name.clone(),
        quota: row.quota,
        services: row.services.clone(),
        fence: row.fence.clone(),
        expires: row.expires_at.map(shikong_model::time::beijing),
        hours: row.hours.clone(),
        rate: row.rate,
        used_today: state.services.used(&row.id, day),
        revoked_at: row.revoked_at.map(shikong_model::time::beijing),
        created_at: shikong_model::time::beijing(row.created_at),
        created_by: row.created_by.clone(),
    }
}

pub(crate) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    let actor = caller.admin_only(q.as_deref(), "only administrators create API keys")?;
    let new: NewKey =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(format!("the body is not an API key: {e}")))?;
    let unfit = |field: &str, detail: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-key", format!("`{field}`: {detail}"))
            .with("field", field)
    };
    if let Some(f) = &new.fence {
        fence::parse_fence(f, MAX_FENCE_VERTICES).map_err(|e| unfit("fence", e))?;
    }
    if let Some(h) = &new.hours {
        fence::parse_hours(h).map_err(|e| unfit("hours", e))?;
    }
    let expires_at = new
        .expires
        .as_deref()
        .map(|e| {
            e.parse::<jiff::Timestamp>().map_err(|err| unfit("expires", format!("not an RFC 3339 instant: {err}")))
        })
        .transpose()?;
    if new.quota == 0 {
        return Err(unfit("quota", "must be 1 or more requests a day".into()));
    }
    if new.rate.is_some_and(|r| r == 0 || r > shikong_auth::MAX_KEY_RATE) {
        return Err(unfit("rate", format!("must be 1 to {} requests a second", shikong_auth::MAX_KEY_RATE)));
    }
    let st = state.clone();
    let (row, secret) = blocking(move || {
        let reg = registry_blocking(&st)?;
        if let Some((i, missing)) = new.services.iter().enumerate().find(|(_, s)| !reg.contains_key(*s)) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid-key",
                format!("`services[{i}]`: no registered service `{missing}`"),
            )
            .with("field", format!("services[{i}]")));
        }
        let row = NewApiKey {
            name: new.name,
            quota: new.quota,
            services: new.services,
            fence: new.fence,
            expires_at,
            hours: new.hours,
            rate: new.rate,
        };
        Ok(st.auth.add_api_key(&actor, &row)?)
    })
    .await?;
    let day = beijing_day(jiff::Timestamp::now());
    let mut resp = json_ok(&KeyCreated { key: secret.expose().to_owned(), info: info(&state, &row, &day) })?;
    *resp.status_mut() = StatusCode::CREATED;
    Ok(resp)
}

pub(crate) async fn list(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    caller.admin_only(q.as_deref(), "only administrators list API keys")?;
    let st = state.clone();
    let rows = blocking(move || Ok(st.auth.api_keys()?)).await?;
    let day = beijing_day(jiff::Timestamp::now());
    json_ok(&KeyList { keys: rows.iter().map(|r| info(&state, r, &day)).collect() })
}

pub(crate) async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let actor = caller.admin_only(q.as_deref(), "only administrators revoke API keys")?;
    let st = state.clone();
    blocking(move || Ok(st.auth.revoke_api_key(&actor, &id)?)).await?;
    state.services.invalidate_keys();
    Ok(StatusCode::NO_CONTENT.into_response())
}
