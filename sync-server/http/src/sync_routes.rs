//! Sync endpoints (docs/sync-protocol.md): replica download, push, pull, and attachments with
//! chunked, resumable, hash-verified upload.
//!
//! Attachments live in `DIR/blobs/<first two hex digits>/<sha256>`; a path segment is a valid
//! SHA-256 (64 lowercase hex digits) before any file is looked up. Unfinished uploads live in
//! `DIR/blobs/partial/<user id>/<sha256>.part`: each user resumes their own, within a quota of
//! files and declared bytes, and parts untouched for `partial_expiry` are removed (the caller's
//! own on each of their uploads, everyone's at most every ten minutes). One chunk per attachment
//! is written at a time (a lock per hash; a second concurrent chunk is told to resume). A finished
//! upload is renamed into place, the directory synced, then recorded in `sk_blobs`; a file found
//! without its record (the server died in between) is verified and recorded by the next upload of
//! it or the next download, never left answering 404. Downloads are for the uploader and readers
//! of a layer that references the attachment (`shikong_sync_engine::blobs::may_read_blob`), with
//! `nosniff`, and documents (anything but common images) as downloads, never rendered inline.

use std::collections::{HashMap, HashSet};
use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path as FsPath, PathBuf};
use std::sync::{LazyLock, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use shikong_protocol as wire;
use shikong_protocol::verify::{RepairRequest, VerifyRequest};
use shikong_store::{BlobRecord, ReplicaRecord, TxMeta};
use shikong_sync_engine::blobs::sha256_file;

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, audit_outbox, blocking, json_ok};
use shikong_sync_engine::blobs::{may_read_blob, valid_blob_id};
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
        // Its gazetteer subset holds the records of the layers its user may read, no others.
        let scope = shikong_sync_engine::gazetteer_scope::gazetteer_scope(
            st.store(),
            st.auth.as_ref(),
            Some(&who),
            &st.gazetteer,
        )?;
        shikong_gazetteer::attach_to_replica(&st.gazetteer, st.store(), &out, &scope).map_err(ApiError::internal)?;
        // An inspector's replica carries their open tasks (offline field tasks).
        super::cases::tasks::attach_to_replica(&st, &who, &out)?;
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
        pushing_replica(&st, &who, req.replica)?;
        let blobs = st.blob_dir();
        let has_blob = |sha: &str| blob_path(&blobs, sha).is_some_and(|p| p.is_file());
        // The audit records commit with the batch (`audit_outbox`) and are appended after it.
        let out = sync::push_then(st.store(), st.auth.as_ref(), &who, &req, &has_blob, &mut |tx, results| {
            for rec in push_audit(&caller, results) {
                audit_outbox::queue(tx, &caller, rec)?;
            }
            Ok(())
        })?;
        st.committed();
        audit_outbox::drain(&st);
        Ok(out)
    })
    .await?;
    json_ok(&resp)
}

/// The audit records of a push: one per layer with accepted entities.
fn push_audit(caller: &Caller, results: &[wire::EntityResult]) -> Vec<shikong_auth::WriteRecord> {
    let mut by_layer: std::collections::BTreeMap<&str, Vec<shikong_model::EntityId>> =
        std::collections::BTreeMap::new();
    for r in results {
        if matches!(r.outcome, wire::Outcome::Accepted { .. }) {
            by_layer.entry(r.layer.as_str()).or_default().push(shikong_model::EntityId(r.entity));
        }
    }
    by_layer.into_iter().map(|(layer, ids)| caller.write_record(layer, "sync", &ids)).collect()
}

async fn pull(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let p = Params::new(q.as_deref())?;
    p.only(&["replica", "cursor", "limit", "seen"])?;
    let id: uuid::Uuid = p
        .get("replica")
        .ok_or_else(|| ApiError::bad_parameter("replica", "required"))?
        .parse()
        .map_err(|e| ApiError::bad_parameter("replica", e))?;
    let cursor: SyncCursor =
        p.get("cursor").unwrap_or("0").parse().map_err(|e: String| ApiError::bad_parameter("cursor", e))?;
    let limit = p.limit(1000, wire::MAX_PULL_ENTITIES)?;
    // The device's newest server mark (devices since marks): checked against the store, which may
    // have been restored from an older backup.
    let seen = p.get("seen").map(str::to_owned);
    let st = state.clone();
    let page = blocking(move || {
        let r = owned_replica(&st, &who, id)?;
        Ok(sync::pull_seen(st.store(), st.auth.as_ref(), &who, &r, &cursor, seen.as_deref(), limit)?)
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

/// The replica a push names, when the caller is its owner. A replica's outbox holds its owner's
/// edits: pushed under another account (an administrator syncing a colleague's file) they could
/// only be refused one by one for attribution while that account's own edits in the same batch
/// went in — half a batch, and the owner's edits marked refused on the device. So the whole push
/// is refused first, naming the owner who must push it; nothing is written.
fn pushing_replica(st: &AppState, who: &shikong_auth::Principal, id: uuid::Uuid) -> ApiResult<ReplicaRecord> {
    let r = owned_replica(st, who, id)?;
    if r.author != who.username {
        let message = format!(
            "replica {id} belongs to `{owner}`: its changes are `{owner}`'s edits and must be pushed by `{owner}` \
             (signed in as `{owner}`, or from `{owner}`'s enrolled device), not by `{me}`; nothing was applied",
            owner = r.author,
            me = who.username,
        );
        let sync = wire::SyncError { code: wire::SyncErrorCode::Forbidden, message: message.clone() };
        return Err(ApiError::new(StatusCode::FORBIDDEN, "sync", message)
            .with("sync", serde_json::to_value(sync).unwrap_or_default())
            .with("owner", r.author.clone()));
    }
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

/// The `{sha}` segment: refused (400) unless it names an attachment, before any file lookup.
fn check_sha(sha: &str) -> ApiResult<()> {
    if valid_blob_id(sha) {
        return Ok(());
    }
    let shown: String = sha.chars().take(80).collect();
    Err(ApiError::bad_parameter("sha", format!("`{shown}` is not a SHA-256 in lowercase hex (64 digits)")))
}

/// Where attachment `sha` lives; `None` unless `sha` is a valid id (so no client value can
/// name another file).
fn blob_path(dir: &FsPath, sha: &str) -> Option<PathBuf> {
    valid_blob_id(sha).then(|| dir.join(&sha[..2]).join(sha))
}

/// The caller's unfinished uploads.
fn partial_dir(dir: &FsPath, who: &shikong_auth::Principal) -> PathBuf {
    dir.join("partial").join(who.user_id.0.to_string())
}

fn partial_path(dir: &FsPath, who: &shikong_auth::Principal, sha: &str) -> PathBuf {
    partial_dir(dir, who).join(format!("{sha}.part"))
}

fn file_len(p: &FsPath) -> u64 {
    std::fs::metadata(p).map(|m| m.len()).unwrap_or(0)
}

/// Makes a rename durable: syncs the directory entry (a no-op where directories cannot be opened).
fn sync_dir(dir: &FsPath) -> std::io::Result<()> {
    match std::fs::File::open(dir) {
        Ok(d) => d.sync_all().or_else(|e| if cfg!(windows) { Ok(()) } else { Err(e) }),
        Err(_) if cfg!(windows) => Ok(()),
        Err(e) => Err(e),
    }
}

/// A file renamed into place but never recorded (the server stopped in between): verified and
/// recorded now. `Ok(None)`: no such file, or a damaged one, which is removed so that the next
/// upload writes it again.
fn recover_blob(
    st: &AppState,
    full: &FsPath,
    sha: &str,
    mime: &str,
    evidence: serde_json::Value,
    uploaded_by: &str,
) -> ApiResult<Option<BlobRecord>> {
    let size = match std::fs::metadata(full) {
        Ok(m) => m.len(),
        Err(_) => return Ok(None),
    };
    if sha256_file(full).map_err(ApiError::internal)? != sha {
        tracing::warn!(sha, "attachment file does not match its hash; removed for a new upload");
        std::fs::remove_file(full).map_err(ApiError::internal)?;
        return Ok(None);
    }
    let rec = BlobRecord {
        sha256: sha.to_owned(),
        size,
        mime: mime.to_owned(),
        evidence,
        uploaded_by: uploaded_by.to_owned(),
    };
    let author = if uploaded_by.is_empty() { "server:recovery" } else { uploaded_by };
    let mut tx = st.store().begin(TxMeta::by(author.to_owned()).source("attachment (recovered)"))?;
    tx.put_blob(&rec)?;
    tx.commit()?;
    tracing::info!(sha, "recorded an attachment found without its record");
    // Another request may have recorded it first; the stored record wins.
    Ok(st.store().blob(sha)?.or(Some(rec)))
}

async fn head_blob(State(state): State<AppState>, caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    check_sha(&sha)?;
    let st = state.clone();
    blocking(move || {
        let dir = st.blob_dir();
        let full = blob_path(&dir, &sha).ok_or_else(|| ApiError::internal("unchecked attachment id"))?;
        if let Ok(m) = std::fs::metadata(&full) {
            let uploader = st.store().blob(&sha)?.map(|r| r.uploaded_by);
            if may_read_blob(st.store(), st.auth.as_ref(), &who, &sha, uploader.as_deref())? {
                return Ok((StatusCode::OK, [(header::CONTENT_LENGTH, m.len().to_string())]).into_response());
            }
        }
        // Not here, or not for this caller: what they may resume from.
        let received = file_len(&partial_path(&dir, &who, &sha));
        Ok((StatusCode::NOT_FOUND, [("x-shikong-received", received.to_string())]).into_response())
    })
    .await
}

/// Images shown inline; anything else is served as a download.
const INLINE_TYPES: [&str; 8] =
    ["image/jpeg", "image/png", "image/gif", "image/webp", "image/heic", "image/heif", "image/avif", "image/bmp"];

/// The declared type when it is a plain `type/subtype` that a browser will not run as a page;
/// `application/octet-stream` otherwise.
fn download_type(mime: &str) -> &str {
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let plain = essence.split_once('/').is_some_and(|(t, s)| {
        let token =
            |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b));
        token(t) && token(s)
    });
    let scriptable = essence.starts_with("text/")
        || essence.contains("html")
        || essence.contains("xml")
        || essence.contains("javascript")
        || essence.contains("ecmascript");
    if plain && !scriptable { mime.split(';').next().unwrap_or("").trim() } else { "application/octet-stream" }
}

async fn get_blob(State(state): State<AppState>, caller: Caller, Path(sha): Path<String>) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    check_sha(&sha)?;
    let st = state.clone();
    let (bytes, mime, name) = blocking(move || {
        let full = blob_path(&st.blob_dir(), &sha).ok_or_else(|| ApiError::internal("unchecked attachment id"))?;
        let rec = match st.store().blob(&sha)? {
            Some(r) => Some(r),
            // Renamed into place but not recorded before a crash: recorded now.
            None => recover_blob(&st, &full, &sha, "application/octet-stream", json!({}), "")?,
        };
        let rec = rec.ok_or_else(|| ApiError::not_found(format!("no attachment {sha}")))?;
        if !may_read_blob(st.store(), st.auth.as_ref(), &who, &sha, Some(&rec.uploaded_by))? {
            return Err(ApiError::forbidden(format!(
                "attachment {sha}: no layer you may read refers to it, and you did not upload it"
            )));
        }
        let bytes = std::fs::read(&full).map_err(ApiError::internal)?;
        Ok((bytes, rec.mime, sha))
    })
    .await?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (ty, disposition) = if INLINE_TYPES.contains(&essence.as_str()) {
        (essence.clone(), format!("inline; filename=\"{name}\""))
    } else {
        (download_type(&mime).to_owned(), format!("attachment; filename=\"{name}\""))
    };
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&ty).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    if let Ok(v) = HeaderValue::from_str(&disposition) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
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

/// Attachments with a chunk being written (their final paths): one writer per hash.
static WRITING: LazyLock<Mutex<HashSet<PathBuf>>> = LazyLock::new(Mutex::default);

/// Holds [`WRITING`] for one attachment until dropped.
struct Writing(PathBuf);

impl Writing {
    fn take(full: &FsPath) -> Option<Writing> {
        WRITING.lock().unwrap_or_else(PoisonError::into_inner).insert(full.to_owned()).then(|| Writing(full.to_owned()))
    }
}

impl Drop for Writing {
    fn drop(&mut self) {
        WRITING.lock().unwrap_or_else(PoisonError::into_inner).remove(&self.0);
    }
}

fn expired(meta: &std::fs::Metadata, expiry: Duration) -> bool {
    meta.modified().ok().and_then(|m| SystemTime::now().duration_since(m).ok()).is_some_and(|age| age > expiry)
}

/// Removes the expired parts in `dir` (not recursive); returns the remaining parts and sizes.
fn sweep(dir: &FsPath, expiry: Duration) -> Vec<(PathBuf, u64)> {
    let mut kept = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return kept };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(m) = e.metadata() else { continue };
        if !m.is_file() {
            continue;
        }
        if expired(&m, expiry) {
            if let Err(err) = std::fs::remove_file(&p) {
                tracing::warn!(path = %p.display(), error = %err, "cannot remove an expired partial upload");
            }
        } else {
            kept.push((p, m.len()));
        }
    }
    kept
}

/// Everyone's expired parts, at most every ten minutes per data directory.
fn sweep_all(partial: &FsPath, expiry: Duration) {
    static LAST: LazyLock<Mutex<HashMap<PathBuf, Instant>>> = LazyLock::new(Mutex::default);
    {
        let mut last = LAST.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(partial).is_some_and(|t| t.elapsed() < Duration::from_secs(600)) {
            return;
        }
        last.insert(partial.to_owned(), Instant::now());
    }
    sweep(partial, expiry); // parts of servers before per-user folders
    let Ok(entries) = std::fs::read_dir(partial) else { return };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) && sweep(&e.path(), expiry).is_empty() {
            let _ = std::fs::remove_dir(e.path()); // empty now (fails harmlessly if not)
        }
    }
}

fn too_large(detail: String) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", detail)
}

/// Whether `chunk` is what the finished file holds at `start` (the caller has those bytes).
fn same_bytes(full: &FsPath, start: u64, chunk: &[u8]) -> std::io::Result<bool> {
    let mut f = std::fs::File::open(full)?;
    if f.metadata()?.len() < start + chunk.len() as u64 {
        return Ok(false);
    }
    f.seek(std::io::SeekFrom::Start(start))?;
    let mut buf = vec![0u8; chunk.len()];
    f.read_exact(&mut buf)?;
    Ok(buf == chunk)
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
        return Err(too_large(format!("attachment of {total} bytes; at most {} are accepted", state.config.max_blob)));
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
        let full = blob_path(&dir, &sha).ok_or_else(|| ApiError::internal("unchecked attachment id"))?;
        let part = partial_path(&dir, &who, &sha);
        let Some(_writing) = Writing::take(&full) else {
            return Err(ApiError::conflict(
                "another chunk of this attachment is being written; resume from the size received",
            )
            .with("received", file_len(&part)));
        };
        if full.is_file() {
            // Already here (deduplicated): the chunk must be the attachment's bytes.
            if !same_bytes(&full, start, &b).map_err(ApiError::internal)? {
                return Err(ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "hash-mismatch",
                    format!("these bytes are not those of attachment {sha}"),
                ));
            }
            if st.store().blob(&sha)?.is_some()
                || recover_blob(&st, &full, &sha, &mime, evidence.clone(), &who.username)?.is_some()
            {
                return Ok(StatusCode::CREATED);
            }
            // Damaged, and removed: this upload writes it again.
        }
        let expiry = st.config.partial_expiry;
        sweep_all(&dir.join("partial"), expiry);
        let mine = partial_dir(&dir, &who);
        let others: Vec<(PathBuf, u64)> = sweep(&mine, expiry).into_iter().filter(|(p, _)| *p != part).collect();
        let have = file_len(&part);
        if start != have {
            return Err(ApiError::conflict(format!(
                "the server holds {have} bytes of this attachment; resume from there"
            ))
            .with("received", have));
        }
        if have == 0 && others.len() >= st.config.max_partial_uploads {
            return Err(too_large(format!(
                "{} unfinished uploads already; at most {} per user (finish them, or they expire after {} h)",
                others.len(),
                st.config.max_partial_uploads,
                expiry.as_secs() / 3600
            )));
        }
        let held: u64 = others.iter().map(|(_, n)| n).sum();
        if held + total > st.config.max_partial_bytes {
            return Err(too_large(format!(
                "unfinished uploads of {held} bytes plus this one of {total} exceed the {} bytes allowed per user",
                st.config.max_partial_bytes
            )));
        }
        std::fs::create_dir_all(&mine).map_err(ApiError::internal)?;
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&part).map_err(ApiError::internal)?;
        f.write_all(&b).and_then(|()| f.sync_all()).map_err(ApiError::internal)?;
        drop(f);
        if end + 1 < total {
            return Ok(StatusCode::ACCEPTED);
        }
        let got = sha256_file(&part).map_err(ApiError::internal)?;
        if got != sha {
            let _ = std::fs::remove_file(&part);
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hash-mismatch",
                format!("the bytes hash to {got}, not {sha}; upload again"),
            ));
        }
        let parent = full.parent().unwrap_or(&dir).to_owned();
        std::fs::create_dir_all(&parent).map_err(ApiError::internal)?;
        std::fs::rename(&part, &full).map_err(ApiError::internal)?;
        sync_dir(&parent).map_err(ApiError::internal)?;
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
