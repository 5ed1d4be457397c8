//! Sync endpoints (docs/sync-protocol.md): replica download, push, pull, and attachments with
//! chunked, resumable, hash-verified upload.

use std::io::Write as _;
use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use sha2::{Digest, Sha256};
use shikong_protocol as wire;
use shikong_protocol::verify::{RepairRequest, VerifyRequest};
use shikong_store::{BlobRecord, ReplicaRecord, TxMeta};

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking, json_ok};
use shikong_sync_engine::sync::{self, SyncCursor, SyncFailure};
use shikong_sync_engine::sync_verify;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/sync/replicas", post(create_replica))
        .route("/sync/replicas/estimate", post(estimate_replica))
        .route("/sync/push", post(push))
        .route("/sync/pull", get(pull))
        .route("/sync/verify", post(verify))
        .route("/sync/repair", post(repair))
        .route("/sync/blobs/{sha}", get(get_blob).head(head_blob).put(put_blob))
}

impl From<SyncFailure> for ApiError {
    fn from(e: SyncFailure) -> Self {
        match e {
            SyncFailure::Refused { code, message } => {
                let status = match code {
                    wire::SyncErrorCode::Forbidden => StatusCode::FORBIDDEN,
                    wire::SyncErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
                    wire::SyncErrorCode::UnknownLayer | wire::SyncErrorCode::UnknownReplica => StatusCode::NOT_FOUND,
                    wire::SyncErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
                    wire::SyncErrorCode::Internal => return ApiError::internal(message),
                    _ => StatusCode::BAD_REQUEST,
                };
                let sync = serde_json::to_value(wire::SyncError { code, message: message.clone() }).unwrap_or_default();
                ApiError::new(status, "sync", message).with("sync", sync)
            }
            SyncFailure::Store(s) => s.into(),
            SyncFailure::Auth(a) => a.into(),
            SyncFailure::Crdt(c) => ApiError::internal(c),
        }
    }
}

fn parse<T: for<'de> serde::Deserialize<'de>>(b: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(b).map_err(|e| ApiError::bad_body(format!("invalid sync message: {e}")))
}

async fn create_replica(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req: wire::ReplicaRequest = parse(&b)?;
    let base = state.base_url(&headers);
    let st = state.clone();
    let (record, bytes) = blocking(move || {
        let dir = tempfile::tempdir().map_err(ApiError::internal)?;
        let out = dir.path().join("replica.gpkg");
        let rec = sync::cut_replica(st.store(), st.auth.as_ref(), &who, &base, &req, &out)?;
        shikong_gazetteer::attach_to_replica(&st.gazetteer, st.store(), &out).map_err(ApiError::internal)?;
        let bytes = std::fs::read(&out).map_err(ApiError::internal)?;
        Ok((rec, bytes))
    })
    .await?;
    let mut resp =
        (StatusCode::CREATED, [(header::CONTENT_TYPE, "application/geopackage+sqlite3")], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&record.id.to_string()) {
        resp.headers_mut().insert("x-shikong-replica", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"replica-{}.gpkg\"", record.id)) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// What `POST /sync/replicas` would answer to the same body, without cutting the file: features
/// per layer (exact) and the file size (estimated; see `replica_estimate`).
async fn estimate_replica(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req: wire::ReplicaRequest = parse(&b)?;
    let st = state.clone();
    let estimate = blocking(move || {
        Ok(shikong_sync_engine::replica_estimate::estimate(st.store(), st.auth.as_ref(), &st.gazetteer, &who, &req)?)
    })
    .await?;
    json_ok(&estimate)
}

async fn push(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req: wire::PushRequest = parse(&b)?;
    let st = state.clone();
    let resp = blocking(move || {
        owned_replica(&st, &who, req.replica)?;
        let blobs = st.blob_dir();
        let out = sync::push(st.store(), st.auth.as_ref(), &who, &req, &|sha: &str| blob_path(&blobs, sha).is_file())?;
        st.committed();
        record_push_audit(&st, &caller, &out);
        Ok(out)
    })
    .await?;
    json_ok(&resp)
}

fn record_push_audit(state: &AppState, caller: &Caller, resp: &wire::PushResponse) {
    let mut by_layer: std::collections::BTreeMap<&str, Vec<shikong_model::EntityId>> =
        std::collections::BTreeMap::new();
    for r in &resp.results {
        if matches!(r.outcome, wire::Outcome::Accepted { .. }) {
            by_layer.entry(r.layer.as_str()).or_default().push(shikong_model::EntityId(r.entity));
        }
    }
    for (layer, ids) in by_layer {
        caller.audit_write(state, layer, "sync", &ids);
    }
}

async fn pull(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let p = Params::new(q.as_deref())?;
    p.only(&["replica", "cursor", "limit"])?;
    let id: uuid::Uuid = p
        .get("replica")
        .ok_or_else(|| ApiError::bad_parameter("replica", "required"))?
        .parse()
        .map_err(|e| ApiError::bad_parameter("replica", e))?;
    let cursor: SyncCursor =
        p.get("cursor").unwrap_or("0").parse().map_err(|e: String| ApiError::bad_parameter("cursor", e))?;
    let limit = p.limit(1000, wire::MAX_PULL_ENTITIES)?;
    let st = state.clone();
    let page = blocking(move || {
        let r = owned_replica(&st, &who, id)?;
        Ok(sync::pull(st.store(), &r, &cursor, limit)?)
    })
    .await?;
    json_ok(&page)
}

/// A registered replica the caller may sync (its owner, or an admin).
fn owned_replica(st: &AppState, who: &shikong_auth::Principal, id: uuid::Uuid) -> ApiResult<ReplicaRecord> {
    let r = st.store().replica(id)?.ok_or_else(|| {
        ApiError::from(SyncFailure::Refused {
            code: wire::SyncErrorCode::UnknownReplica,
            message: format!("unknown replica {id}"),
        })
    })?;
    super::access::owner_or_admin(who, &r.author, &format!("replica {id}"))?;
    Ok(r)
}

/// End-of-sync verification: the device's digest against the store as of its cursor.
async fn verify(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req: VerifyRequest = parse(&b)?;
    let st = state.clone();
    let out = blocking(move || {
        let r = owned_replica(&st, &who, req.replica)?;
        let out = sync_verify::verify(st.store(), st.auth.as_ref(), &who, &r, &req)?;
        st.metrics.verified(out.agrees());
        if !out.agrees() {
            let buckets: usize = out.layers.iter().map(|l| l.differing.len()).sum();
            tracing::warn!(replica = %r.id, user = %who.username, buckets, "sync verification: the replica differs from the store");
        }
        Ok(out)
    })
    .await?;
    json_ok(&out)
}

/// The entities a device found different, as a pull would send them now; counted as repairs.
async fn repair(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let req: RepairRequest = parse(&b)?;
    let st = state.clone();
    let out = blocking(move || {
        let r = owned_replica(&st, &who, req.replica)?;
        let out = sync_verify::repair(st.store(), st.auth.as_ref(), &who, &r, &req)?;
        st.metrics.repaired(out.entities.len());
        tracing::warn!(replica = %r.id, user = %who.username, entities = out.entities.len(), "sync repair");
        Ok(out)
    })
    .await?;
    json_ok(&out)
}

fn check_sha(sha: &str) -> ApiResult<()> {
    if sha.len() == 64 && sha.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("`{sha}` is not a lowercase hex SHA-256")))
    }
}

fn blob_path(dir: &std::path::Path, sha: &str) -> PathBuf {
    dir.join(&sha[..2]).join(sha)
}

fn partial_path(dir: &std::path::Path, sha: &str) -> PathBuf {
    dir.join("partial").join(format!("{sha}.part"))
}

async fn head_blob(State(state): State<AppState>, caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    caller.require()?;
    check_sha(&sha)?;
    let dir = state.blob_dir();
    let full = blob_path(&dir, &sha);
    if let Ok(m) = std::fs::metadata(&full) {
        return Ok((StatusCode::OK, [(header::CONTENT_LENGTH, m.len().to_string())]).into_response());
    }
    let received = std::fs::metadata(partial_path(&dir, &sha)).map(|m| m.len()).unwrap_or(0);
    Ok((StatusCode::NOT_FOUND, [("x-shikong-received", received.to_string())]).into_response())
}

async fn get_blob(State(state): State<AppState>, caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    caller.require()?;
    check_sha(&sha)?;
    let st = state.clone();
    let (bytes, mime) = blocking(move || {
        let rec = st.store().blob(&sha)?.ok_or_else(|| ApiError::not_found(format!("no attachment {sha}")))?;
        let bytes = std::fs::read(blob_path(&st.blob_dir(), &sha)).map_err(ApiError::internal)?;
        Ok((bytes, rec.mime))
    })
    .await?;
    Ok(([(header::CONTENT_TYPE, mime)], bytes).into_response())
}

/// `Content-Range: bytes START-END/TOTAL`.
fn content_range(h: &HeaderMap) -> ApiResult<(u64, u64, u64)> {
    let v = h.get(header::CONTENT_RANGE).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiError::bad_body("a `Content-Range: bytes START-END/TOTAL` header is required")
            .with("header", "Content-Range")
    })?;
    let bad = || ApiError::bad_body(format!("invalid Content-Range `{v}`")).with("header", "Content-Range");
    let rest = v.strip_prefix("bytes ").ok_or_else(bad)?;
    let (range, total) = rest.split_once('/').ok_or_else(bad)?;
    let (a, b) = range.split_once('-').ok_or_else(bad)?;
    let (a, b, total): (u64, u64, u64) =
        (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?, total.parse().map_err(|_| bad())?);
    if a > b || b >= total {
        return Err(bad());
    }
    Ok((a, b, total))
}

/// One chunk of an upload. The server appends chunks in order (a chunk that does not start where
/// the stored part ends is refused with the received size, so the client resumes exactly), and on
/// the last one verifies the hash before the attachment exists.
async fn put_blob(
    State(state): State<AppState>,
    caller: Caller,
    Path(sha): Path<String>,
    headers: HeaderMap,
    Body(b): Body,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    check_sha(&sha)?;
    let (start, end, total) = content_range(&headers)?;
    if total > state.config.max_blob {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("attachment of {total} bytes; at most {} are accepted", state.config.max_blob),
        ));
    }
    if b.len() as u64 != end - start + 1 {
        return Err(ApiError::bad_body(format!(
            "the chunk has {} bytes but Content-Range says {}",
            b.len(),
            end - start + 1
        )));
    }
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let evidence: serde_json::Value = match headers.get("x-shikong-evidence").and_then(|v| v.to_str().ok()) {
        Some(s) => {
            use base64ct::Encoding;
            let raw =
                base64ct::Base64::decode_vec(s).map_err(|_| ApiError::bad_body("X-Shikong-Evidence is not base64"))?;
            serde_json::from_slice(&raw).map_err(|e| ApiError::bad_body(format!("X-Shikong-Evidence: {e}")))?
        }
        None => json!({}),
    };
    let st = state.clone();
    blocking(move || {
        let dir = st.blob_dir();
        let full = blob_path(&dir, &sha);
        if full.is_file() {
            return Ok(StatusCode::CREATED); // deduplicated: already here
        }
        std::fs::create_dir_all(dir.join("partial")).map_err(ApiError::internal)?;
        let part = partial_path(&dir, &sha);
        let have = std::fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if start != have {
            return Err(ApiError::conflict(format!(
                "the server holds {have} bytes of this attachment; resume from there"
            ))
            .with("received", have));
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&part).map_err(ApiError::internal)?;
        f.write_all(&b).and_then(|()| f.sync_all()).map_err(ApiError::internal)?;
        if end + 1 < total {
            return Ok(StatusCode::ACCEPTED);
        }
        let bytes = std::fs::read(&part).map_err(ApiError::internal)?;
        let got = hex(&Sha256::digest(&bytes));
        if got != sha {
            let _ = std::fs::remove_file(&part);
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash-mismatch",
                format!("the bytes hash to {got}, not {sha}; upload again"),
            ));
        }
        std::fs::create_dir_all(full.parent().unwrap_or(&dir)).map_err(ApiError::internal)?;
        std::fs::rename(&part, &full).map_err(ApiError::internal)?;
        let mut tx = st.store().begin(TxMeta::by(who.username.clone()).source("attachment"))?;
        tx.put_blob(&BlobRecord {
            sha256: sha.clone(),
            size: total,
            mime,
            evidence,
            uploaded_by: who.username.clone(),
        })?;
        tx.commit()?;
        Ok(StatusCode::CREATED)
    })
    .await
    .map(IntoResponse::into_response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
