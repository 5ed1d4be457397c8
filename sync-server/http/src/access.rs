//! Who is calling, and whether they may do what they ask.
//!
//! `Authorization: Bearer <token>` becomes a [`Caller`] with the token's principal; a missing
//! header is an anonymous caller; a bad, expired or revoked token is a 401 naming the reason (never
//! silently anonymous). Layer decisions and the audit log belong to `shikong-auth`; this module
//! only adapts them to HTTP.
//!
//! The client address (what logins, registrations and enrolments are throttled by, and what the
//! audit log records) is the peer of the connection; `X-Forwarded-For` is believed only when that
//! peer is a configured trusted proxy (`shikong serve --trusted-proxy`), since anyone can send
//! the header. `X-Request-Id` is kept when it is printable ASCII of at most 64 characters, else
//! replaced by a generated id.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use shikong_auth::{Actor, AuditAction, AuthError, Client, ErrorKind, LayerAccess, Principal, Role, WriteRecord};
use shikong_model::EntityId;
use shikong_store::Layer;

pub use shikong_auth::Action;

use super::AppState;
use super::problem::{ApiError, ApiResult};

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let (status, kind) = match e.kind() {
            ErrorKind::BadRequest => (StatusCode::BAD_REQUEST, "invalid"),
            ErrorKind::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ErrorKind::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "not-found"),
            ErrorKind::Conflict => (StatusCode::CONFLICT, "conflict"),
            ErrorKind::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "too-many-requests"),
            // The accounts' PostgreSQL database is down or failing over, like the store's: a
            // client retries. The reason (hosts, addresses) stays in the server's log.
            ErrorKind::Unavailable => {
                tracing::warn!(error = %e, "accounts database unavailable");
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "the database is not reachable right now; try again in a few seconds",
                )
                .with("retry_after_seconds", 5);
            }
            _ => return ApiError::internal(e),
        };
        let mut err = ApiError::new(status, kind, e.to_string()).with("code", e.code());
        if let Some(until) = e.retry_at() {
            let secs = jiff::Timestamp::now().duration_until(until).as_secs().max(1);
            err = err.with("retry_after", shikong_model::time::utc(until)).with("retry_after_seconds", secs);
        }
        err
    }
}

/// `Ok` when `p` owns `what` (owned by `owner`) or is an administrator; 403 naming the owner.
pub fn owner_or_admin(p: &Principal, owner: &str, what: &str) -> ApiResult<()> {
    if p.username == owner || p.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("{what} belongs to `{owner}`")))
    }
}

/// `p` as it stands now: the role and groups of the account today, for work that runs after the
/// request that started it (a batch job waiting its turn), so a demotion or a group change in
/// between counts. An account no longer active (disabled, rejected) is a 403 naming its state.
pub fn current_principal(state: &AppState, p: &Principal) -> ApiResult<Principal> {
    let user = state.auth.user(&Actor::user(p.clone()), &p.username)?;
    if user.status != shikong_auth::UserStatus::Active {
        return Err(ApiError::forbidden(format!("the account `{}` is {}", p.username, user.status.as_str())));
    }
    Ok(Principal { role: user.role, groups: user.groups, ..p.clone() })
}

/// The caller of a request.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub principal: Option<Principal>,
    pub client: Client,
}

impl Caller {
    pub fn actor(&self) -> Actor {
        let a = match &self.principal {
            Some(p) => Actor::user(p.clone()),
            None => Actor::anonymous(),
        };
        a.with_client(self.client.clone())
    }

    /// 401 for anonymous callers (so clients know to log in), otherwise the principal.
    pub fn require(&self) -> ApiResult<&Principal> {
        self.principal.as_ref().ok_or_else(|| {
            ApiError::unauthorized(
                "this needs a logged-in user: POST /auth/login, then send `Authorization: Bearer <token>`",
            )
        })
    }

    /// The principal when its role is one of `roles`: 401 for anonymous callers, else 403 saying
    /// `why` (who may do it).
    pub fn require_role(&self, roles: &[Role], why: &str) -> ApiResult<&Principal> {
        let p = self.require()?;
        if roles.contains(&p.role) { Ok(p) } else { Err(ApiError::forbidden(why)) }
    }

    /// An administrators' route that takes no query parameters (the administration API: services,
    /// keys, harvest sources, system thresholds): both checked, 403 saying `why` otherwise; the
    /// caller as the audit log's actor.
    pub fn admin_only(&self, query: Option<&str>, why: &str) -> ApiResult<Actor> {
        crate::params::Params::new(query)?.only(&[])?;
        self.require_role(&[Role::Admin], why)?;
        Ok(self.actor())
    }

    /// The principal when it owns `what` (owned by `owner`) or is an administrator; 403 naming the
    /// owner otherwise.
    pub fn require_owner_or_admin(&self, owner: &str, what: &str) -> ApiResult<&Principal> {
        let p = self.require()?;
        owner_or_admin(p, owner, what)?;
        Ok(p)
    }

    /// Whether the caller may do `action` on `layer` (401 when logging in could help, else 403).
    pub fn allowed(&self, state: &AppState, layer: &Layer, action: Action) -> ApiResult<()> {
        let access =
            LayerAccess { name: layer.name(), public: layer.def.public, citizen_reports: layer.def.citizen_reports };
        state.auth.authorize(self.principal.as_ref(), &access, action)?.into_result()?;
        Ok(())
    }

    /// Who new versions are attributed to.
    pub fn author(&self) -> String {
        self.principal.as_ref().map_or_else(|| "anonymous".to_owned(), |p| p.username.clone())
    }

    pub fn device(&self) -> Option<String> {
        self.principal.as_ref().and_then(|p| p.device).map(|d| d.to_string())
    }

    /// The audit record of a write of `ids` in `layer` (`what`: create, update, delete, sync).
    pub fn write_record(&self, layer: &str, what: &str, ids: &[EntityId]) -> WriteRecord {
        let action = match what {
            "create" => AuditAction::FeatureCreate,
            "delete" => AuditAction::FeatureDelete,
            _ => AuditAction::FeatureUpdate,
        };
        let mut rec = WriteRecord::new(action, layer);
        rec.entities = ids.iter().map(ToString::to_string).collect();
        rec.count = Some(ids.len() as u64);
        rec.detail = Some(format!("api {what}"));
        rec
    }

    /// Records in the audit log a write request that wrote nothing (its transaction was empty,
    /// so there was no outbox to carry the record: see `audit_outbox`). A failure here is
    /// logged, not reported as a failed request.
    pub fn audit_write(&self, state: &AppState, layer: &str, what: &str, ids: &[EntityId]) {
        if state.crashed_before_audit() {
            return;
        }
        if let Err(e) = state.auth.record_write(&self.actor(), &self.write_record(layer, what, ids)) {
            tracing::error!(error = %e, layer, "audit record failed");
        }
    }
}

/// Longest `X-Request-Id` kept as sent.
pub const MAX_REQUEST_ID: usize = 64;

/// The request id to record: the client's when it is 1–64 printable ASCII characters, else a
/// generated one (so hostile ids never reach the audit log or the logs).
pub fn request_id(sent: Option<&[u8]>) -> Option<String> {
    let sent = sent?;
    let ok = !sent.is_empty() && sent.len() <= MAX_REQUEST_ID && sent.iter().all(|b| (0x21..0x7f).contains(b));
    Some(if ok { String::from_utf8_lossy(sent).into_owned() } else { format!("gen-{}", uuid::Uuid::new_v4()) })
}

/// The client's address: the connection's peer, or, when the peer is one of `trusted` proxies,
/// the last address of `X-Forwarded-For` that is not a trusted proxy itself.
pub fn client_address(peer: Option<IpAddr>, forwarded: Option<&str>, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = peer?;
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let Some(list) = forwarded else { return Some(peer) };
    let mut client = peer;
    for hop in list.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !trusted.contains(&ip) {
                    break;
                }
            }
            // Garbage in the header: stop at the last address we could trust.
            Err(_) => break,
        }
    }
    Some(client)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut client = Client::default();
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|ConnectInfo(a)| a.ip());
        let forwarded = parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        client.address = client_address(peer, forwarded, &state.config.trusted_proxies).map(|ip| ip.to_string());
        client.request_id = request_id(parts.headers.get("x-request-id").map(HeaderValue::as_bytes));
        let (token, from_cookie) = match parts.headers.get(header::AUTHORIZATION) {
            Some(value) => (bearer(value)?, false),
            // The office web view's session cookie, for reads only: no route that changes
            // anything trusts a cookie, so a forged cross-site request can change nothing.
            None if parts.method == Method::GET || parts.method == Method::HEAD => {
                match session_cookie(&parts.headers) {
                    Some(t) => (t, true),
                    None => return Ok(Caller { principal: None, client }),
                }
            }
            None => return Ok(Caller { principal: None, client }),
        };
        let auth = state.auth.clone();
        match super::blocking(move || Ok(auth.verify(&token)?)).await {
            Ok(principal) => Ok(Caller { principal: Some(principal), client }),
            // A stale cookie (signed out, expired) is no sign-in: the page asks to sign in again.
            Err(e) if from_cookie && e.status == StatusCode::UNAUTHORIZED => Ok(Caller { principal: None, client }),
            Err(e) => Err(e),
        }
    }
}

/// Hides who made a feature's versions and edits from callers other than office staff and
/// administrators (anonymous readers of a public layer, citizens, inspectors): usernames and
/// device ids are personal data. A caller still sees their own name on their own edits.
pub fn redact_history(caller: &Caller, doc: &mut shikong_protocol::api::FeatureHistory) {
    let me = caller.principal.as_ref();
    if me.is_some_and(|p| matches!(p.role, Role::Admin | Role::Office)) {
        return;
    }
    let mine = |name: &str| me.is_some_and(|p| p.username == name);
    for v in &mut doc.versions {
        if !mine(&v.tx.author) {
            v.tx.author = REDACTED.to_owned();
            v.tx.device = None;
        }
    }
    for e in &mut doc.edits {
        if !e.user.as_deref().is_some_and(mine) {
            e.user = e.user.as_ref().map(|_| REDACTED.to_owned());
            e.device = None;
        }
    }
}

/// The office web view's session cookie (`HttpOnly; SameSite=Strict`), set by `/office/login`.
pub const SESSION_COOKIE: &str = "sk_session";

/// The session token in the request's `Cookie` header, if any.
pub fn session_cookie(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, v)| *k == SESSION_COOKIE && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// What stands for a hidden author.
pub const REDACTED: &str = "(hidden)";

pub(crate) fn bearer(v: &HeaderValue) -> ApiResult<String> {
    let s = v.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not ASCII"))?;
    match s.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => {
            Ok(token.trim().to_owned())
        }
        _ => Err(ApiError::unauthorized("the Authorization header must be `Bearer <token>`")),
    }
}
