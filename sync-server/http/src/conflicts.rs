//! Conflict review for office staff (issue 16): `GET /sync/conflicts` lists the open conflicts of
//! every device's edits, `POST /sync/conflicts/resolve` settles them as CRDT changes by the
//! resolving user (audited through the outbox, synced to devices at their next pull). The work is
//! in `shikong_sync_engine::conflicts`; this module parses, checks roles and names bad input.

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value as Json;
use shikong_auth::Role;
use shikong_model::EntityId;
use shikong_protocol::api::conflicts as api;
use shikong_store::ConflictFilter;
use shikong_sync_engine::conflicts::{self, ResolveError};

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, audit_outbox, blocking, json_ok};

const WHO: &str = "only office staff and administrators review conflicts";

pub fn routes() -> Router<AppState> {
    Router::new().route("/sync/conflicts", get(list)).route("/sync/conflicts/resolve", post(resolve))
}

/// A bad member of the body, named by its path (`resolutions[2].field`).
fn bad_member(path: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid-body", format!("`{path}`: {detail}")).with("member", path)
}

impl From<ResolveError> for ApiError {
    fn from(e: ResolveError) -> Self {
        match e {
            ResolveError::Invalid { path, message } => bad_member(&path, message),
            ResolveError::Forbidden { path, message } => {
                ApiError::forbidden(format!("`{path}`: {message}")).with("member", path)
            }
            ResolveError::Changed { path, message } => {
                ApiError::new(StatusCode::CONFLICT, "conflict-changed", format!("`{path}`: {message}"))
                    .with("member", path)
            }
            ResolveError::Sync(s) => s.into(),
        }
    }
}

async fn list(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require_role(&[Role::Admin, Role::Office], WHO)?.clone();
    let p = Params::new(q.as_deref())?;
    p.only(&["layer", "author", "since", "limit", "after"])?;
    let after = match p.get("after") {
        None => None,
        Some(a) => {
            let (layer, id) = a
                .rsplit_once('/')
                .ok_or_else(|| ApiError::bad_parameter("after", "expected `layer/entity` (a page's `next`)"))?;
            let id: EntityId = id.parse().map_err(|e| ApiError::bad_parameter("after", e))?;
            Some((layer.to_owned(), id))
        }
    };
    let filter = ConflictFilter {
        layer: p.get("layer").map(str::to_owned),
        author: p.get("author").map(str::to_owned),
        since: p.instant("since")?,
        after,
        limit: p.limit(100, 1000)?,
    };
    let st = state.clone();
    let page = blocking(move || Ok(conflicts::list(st.store(), st.auth.as_ref(), &who, &filter)?)).await?;
    json_ok(&page)
}

/// The request, or a problem naming the first member that does not parse.
fn parse_request(b: &[u8]) -> ApiResult<api::ResolveRequest> {
    let whole: Json = serde_json::from_slice(b).map_err(|e| ApiError::bad_body(format!("invalid JSON: {e}")))?;
    match serde_json::from_value::<api::ResolveRequest>(whole.clone()) {
        Ok(r) => Ok(r),
        Err(e) => {
            if let Some(list) = whole.get("resolutions").and_then(Json::as_array) {
                for (i, r) in list.iter().enumerate() {
                    if let Err(e) = serde_json::from_value::<api::Resolution>(r.clone()) {
                        return Err(bad_member(&format!("resolutions[{i}]"), e));
                    }
                }
            }
            Err(ApiError::bad_body(format!("invalid resolution request: {e}")))
        }
    }
}

async fn resolve(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let who = caller.require_role(&[Role::Admin, Role::Office], WHO)?.clone();
    let req = parse_request(&b)?;
    let st = state.clone();
    let resp = blocking(move || {
        let out = conflicts::resolve(st.store(), st.auth.as_ref(), &who, &req, &mut |tx, written| {
            // One audit record per layer, committed with the resolution.
            let mut by_layer: std::collections::BTreeMap<&str, Vec<EntityId>> = std::collections::BTreeMap::new();
            for e in written {
                by_layer.entry(e.layer.as_str()).or_default().push(EntityId(e.entity));
            }
            for (layer, ids) in by_layer {
                let mut rec = caller.write_record(layer, "update", &ids);
                rec.detail = Some(format!("conflict resolution {}", req.action_id));
                audit_outbox::queue(tx, &caller, rec)?;
            }
            Ok(())
        })?;
        if !out.replayed {
            st.committed();
            audit_outbox::drain(&st);
        }
        Ok(out)
    })
    .await?;
    json_ok(&resp)
}
