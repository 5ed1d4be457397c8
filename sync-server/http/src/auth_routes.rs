//! Authentication and administration endpoints: login/logout, citizen self-registration and its
//! approval (用户注册审核), device enrolment, users, layer permission rules and the audit log.
//!
//! Password hashing (Argon2, deliberately slow: tens of milliseconds and 19 MiB each) runs under
//! its own small budget ([`hashing`]: one at a time per core, a short wait, then 503), not under
//! the store's: a login flood then queues behind itself while token checks and store work go on.
//! Floods are first cut per client address and per account by `shikong-auth`'s throttles (429
//! with `Retry-After`) before any hashing.

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::{Value as Json, json};
use shikong_auth::{
    AuditEntry, AuditQuery, Credentials, DeviceId, Grants, NewDevice, Registration, Role, Rule, Subject, User,
    UserStatus,
};
use shikong_model::time;
use shikong_protocol::api;
use shikong_protocol::enrolment::EnrolmentLink;

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking, qr};

/// How long a request waits for a hashing slot before it is told to come back.
const HASHING_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Password hashes running at once: one per core (Argon2 with one lane is one core's work).
fn hashing_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Runs work that hashes or verifies a password off the async threads, under the hashing budget
/// (never the store's, so that a login flood cannot starve token checks and store work). When no
/// slot frees within [`HASHING_WAIT`]: 503 with `Retry-After`.
pub(crate) async fn hashing<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    let permit = match tokio::time::timeout(HASHING_WAIT, hashing_permits().acquire()).await {
        Ok(p) => p.map_err(ApiError::internal)?,
        Err(_) => {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "too many password checks at once; try again in a moment",
            )
            .with("retry_after_seconds", 1));
        }
    };
    // The permit goes with the work: a client that leaves does not free the slot while the hash
    // still runs.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        f()
    })
    .await
    .map_err(ApiError::internal)?
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/login", post(login))
        .route("/auth/logout", post(logout))
        .route("/auth/me", get(me))
        .route("/auth/register", post(register))
        .route("/auth/enrol", post(enrol))
        .route("/auth/enrolments", post(create_enrolment))
        .route("/devices", get(devices).post(register_device))
        .route("/admin/users", get(users).post(add_user))
        .route("/admin/users/{name}/approve", post(approve))
        .route("/admin/users/{name}/reject", post(reject))
        .route("/admin/users/{name}/disable", post(disable))
        .route("/admin/users/{name}/enable", post(enable))
        .route("/admin/users/{name}/role", put(set_role))
        .route("/admin/layers/{layer}/rules", get(rules).put(set_rule).delete(remove_rule))
        .route("/admin/audit", get(audit))
}

fn body<T: for<'de> Deserialize<'de>>(b: &axum::body::Bytes) -> ApiResult<T> {
    serde_json::from_slice(b).map_err(|e| ApiError::bad_body(format!("invalid JSON body: {e}")))
}

fn json(status: StatusCode, v: Json) -> Response {
    (status, [(axum::http::header::CONTENT_TYPE, "application/json")], v.to_string()).into_response()
}

/// A typed answer (a [`shikong_protocol::api`] type) with its status.
fn answer<T: serde::Serialize>(status: StatusCode, v: &T) -> ApiResult<Response> {
    let body = serde_json::to_string(v).map_err(ApiError::internal)?;
    Ok((status, [(header::CONTENT_TYPE, "application/json")], body).into_response())
}

fn user_info(u: &User) -> api::UserInfo {
    api::UserInfo {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        role: u.role.as_str().to_owned(),
        status: u.status.as_str().to_owned(),
        status_reason: u.status_reason.clone(),
        groups: u.groups.clone(),
        created_at: time::beijing(u.created_at),
    }
}

async fn login(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let req: api::LoginRequest = body(&b)?;
    let device = req
        .device
        .as_deref()
        .map(|d| {
            d.parse::<uuid::Uuid>()
                .map(DeviceId)
                .map_err(|e| ApiError::bad_body(format!("device: {e}")).with("field", "device"))
        })
        .transpose()?;
    let auth = state.auth.clone();
    let issued = hashing(move || {
        let creds = Credentials { username: &req.username, password: &req.password, device };
        Ok(auth.login(&creds, &caller.client)?)
    })
    .await?;
    answer(
        StatusCode::OK,
        &api::LoginResponse {
            token: issued.secret.expose().to_owned(),
            expires_at: time::beijing(issued.expires_at),
            user: api::TokenUser {
                username: issued.principal.username.clone(),
                role: issued.principal.role.as_str().to_owned(),
            },
        },
    )
}

async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require()?;
    let auth = state.auth.clone();
    blocking(move || Ok(auth.logout(&caller.actor())?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn me(caller: Caller) -> ApiResult<Response> {
    let p = caller.require()?;
    answer(
        StatusCode::OK,
        &api::MeResponse {
            username: p.username.clone(),
            role: p.role.as_str().to_owned(),
            groups: p.groups.clone(),
            device: p.device.map(|d| d.to_string()),
        },
    )
}

/// A citizen's self-registration: 202 "received, pending review" whether or not the name was
/// free (see `AuthStore::register_citizen`); 403 `registration_closed` when the server was started
/// with `--no-registration`.
async fn register(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let req: api::RegisterRequest = body(&b)?;
    let auth = state.auth.clone();
    let username = req.username.clone();
    let run = move || {
        let reg = Registration {
            username: req.username,
            password: req.password,
            display_name: req.display_name,
            contact: req.contact,
        };
        Ok(auth.register_citizen(&reg, &caller.client)?)
    };
    if state.auth.config().citizen_registration {
        hashing(run).await?;
    } else {
        // Refused (and audited) before any hashing: no hashing slot needed.
        blocking(run).await?;
    }
    answer(
        StatusCode::ACCEPTED,
        &api::RegisterResponse {
            username,
            status: "pending".into(),
            message: "registration received; an administrator will review it (注册待审核)".into(),
        },
    )
}

async fn enrol(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let req: api::EnrolRequest = body(&b)?;
    let auth = state.auth.clone();
    let e = blocking(move || {
        let d = NewDevice { name: req.device.name, platform: req.device.platform, hardware_id: req.device.hardware_id };
        Ok(auth.redeem_enrolment(&req.code, &d, &caller.client)?)
    })
    .await?;
    answer(
        StatusCode::OK,
        &api::EnrolResponse {
            token: e.token.secret.expose().to_owned(),
            expires_at: time::beijing(e.token.expires_at),
            device: e.device.id.to_string(),
            user: api::TokenUser {
                username: e.token.principal.username.clone(),
                role: e.token.principal.role.as_str().to_owned(),
            },
        },
    )
}

/// A one-time enrolment code, with the `shikong://enrol?…` link a device scans (its QR code as
/// SVG in the JSON answer), or, on `Accept: image/png`, the QR code itself as a PNG with the code
/// and its expiry in `X-Shikong-Enrolment-Code` / `X-Shikong-Enrolment-Expires`. Never cached:
/// the answer holds a secret.
async fn create_enrolment(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Body(b): Body,
) -> ApiResult<Response> {
    let p = caller.require()?.clone();
    let req: api::EnrolmentRequest = if b.is_empty() { api::EnrolmentRequest::default() } else { body(&b)? };
    let username = req.username.unwrap_or(p.username);
    let png = qr::wants_png(&headers);
    let auth = state.auth.clone();
    let e = blocking(move || Ok(auth.create_enrolment(&caller.actor(), &username, None)?)).await?;
    let link = EnrolmentLink {
        server: state.base_url(&headers),
        code: e.secret.expose().to_owned(),
        user: Some(e.username.clone()),
    };
    let payload = link.to_uri();
    let expires = time::beijing(e.expires_at);
    let mut resp = if png {
        let mut r = (StatusCode::CREATED, [(header::CONTENT_TYPE, "image/png")], qr::png(&payload)?).into_response();
        for (name, value) in [("x-shikong-enrolment-code", &link.code), ("x-shikong-enrolment-expires", &expires)] {
            r.headers_mut().insert(name, HeaderValue::from_str(value).map_err(ApiError::internal)?);
        }
        r
    } else {
        let svg = qr::svg(&payload)?;
        answer(
            StatusCode::CREATED,
            &api::EnrolmentCreated {
                code: link.code,
                username: e.username,
                expires_at: expires,
                qr: api::QrCode { payload, svg },
            },
        )?
    };
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Registers a device for the caller and mints its long-lived token. The body carries the
/// caller's password (`api::RegisterDeviceRequest`): a token alone does not mint a device token.
/// The password is checked before the device is recorded, so a wrong one leaves nothing behind.
async fn register_device(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    let p = caller.require()?.clone();
    let req: api::RegisterDeviceRequest = body(&b)?;
    let auth = state.auth.clone();
    let (device, token) = hashing(move || {
        let device = NewDevice { name: req.name, platform: req.platform, hardware_id: req.hardware_id };
        Ok(auth.register_own_device(&caller.actor(), &p.username, &device, &req.password)?)
    })
    .await?;
    answer(
        StatusCode::CREATED,
        &api::DeviceRegistered {
            device: device.id.to_string(),
            name: device.name,
            token: token.secret.expose().to_owned(),
            expires_at: time::beijing(token.expires_at),
        },
    )
}

async fn devices(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    let p = caller.require()?.clone();
    let auth = state.auth.clone();
    let list = blocking(move || {
        let who = if p.is_admin() { None } else { Some(p.username.clone()) };
        Ok(auth.devices(&caller.actor(), who.as_deref())?)
    })
    .await?;
    let devices = list
        .into_iter()
        .map(|d| api::DeviceEntry {
            device: d.id.to_string(),
            username: d.username,
            name: d.name,
            platform: d.platform,
            created_at: time::beijing(d.created_at),
            revoked: d.revoked_at.is_some(),
        })
        .collect();
    answer(StatusCode::OK, &api::DeviceList { devices })
}

async fn users(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    caller.require()?;
    let p = Params::new(q.as_deref())?;
    p.only(&["status"])?;
    let status = match p.get("status") {
        None => None,
        Some("active") => Some(UserStatus::Active),
        Some("pending") => Some(UserStatus::Pending),
        Some("rejected") => Some(UserStatus::Rejected),
        Some("disabled") => Some(UserStatus::Disabled),
        Some(o) => {
            return Err(ApiError::bad_parameter(
                "status",
                format!("`{o}` is not active, pending, rejected or disabled"),
            ));
        }
    };
    let auth = state.auth.clone();
    let list = blocking(move || Ok(auth.list_users(&caller.actor(), status)?)).await?;
    answer(StatusCode::OK, &api::UserList { users: list.iter().map(user_info).collect() })
}

fn role(s: &str) -> ApiResult<Role> {
    s.parse::<Role>().map_err(|_| {
        ApiError::bad_body(format!("role `{s}` is not admin, office, inspector or citizen")).with("field", "role")
    })
}

async fn add_user(State(state): State<AppState>, caller: Caller, Body(b): Body) -> ApiResult<Response> {
    caller.require()?;
    let req: api::NewUserRequest = body(&b)?;
    let r = role(&req.role)?;
    let auth = state.auth.clone();
    let u = hashing(move || Ok(auth.add_user(&caller.actor(), &req.username, r, &req.password)?)).await?;
    answer(StatusCode::CREATED, &api::UserChanged { user: user_info(&u) })
}

async fn user_action(
    state: AppState,
    caller: Caller,
    name: String,
    b: axum::body::Bytes,
    what: &'static str,
) -> ApiResult<Response> {
    caller.require()?;
    let req: api::ReasonRequest = if b.is_empty() { api::ReasonRequest::default() } else { body(&b)? };
    let auth = state.auth.clone();
    let u = blocking(move || {
        let a = caller.actor();
        Ok(match what {
            "approve" => auth.approve_user(&a, &name)?,
            "reject" => auth.reject_user(&a, &name, req.reason.as_deref().unwrap_or("rejected by an administrator"))?,
            "disable" => auth.disable_user(&a, &name, req.reason.as_deref())?,
            _ => auth.enable_user(&a, &name)?,
        })
    })
    .await?;
    answer(StatusCode::OK, &api::UserChanged { user: user_info(&u) })
}

async fn approve(State(s): State<AppState>, c: Caller, Path(n): Path<String>, Body(b): Body) -> ApiResult<Response> {
    user_action(s, c, n, b, "approve").await
}

async fn reject(State(s): State<AppState>, c: Caller, Path(n): Path<String>, Body(b): Body) -> ApiResult<Response> {
    user_action(s, c, n, b, "reject").await
}

async fn disable(State(s): State<AppState>, c: Caller, Path(n): Path<String>, Body(b): Body) -> ApiResult<Response> {
    user_action(s, c, n, b, "disable").await
}

async fn enable(State(s): State<AppState>, c: Caller, Path(n): Path<String>, Body(b): Body) -> ApiResult<Response> {
    user_action(s, c, n, b, "enable").await
}

async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    Body(b): Body,
) -> ApiResult<Response> {
    caller.require()?;
    let r = role(&body::<api::RoleRequest>(&b)?.role)?;
    let auth = state.auth.clone();
    let u = blocking(move || Ok(auth.set_role(&caller.actor(), &name, r)?)).await?;
    answer(StatusCode::OK, &api::UserChanged { user: user_info(&u) })
}

fn rule_info(r: &Rule) -> api::RuleInfo {
    api::RuleInfo { layer: r.layer.clone(), subject: r.subject.to_string(), grants: r.grants.to_string() }
}

async fn rules(State(state): State<AppState>, caller: Caller, Path(layer): Path<String>) -> ApiResult<Response> {
    caller.require()?;
    let auth = state.auth.clone();
    let list = blocking(move || Ok(auth.list_rules(&caller.actor(), Some(&layer))?)).await?;
    answer(StatusCode::OK, &api::RuleList { rules: list.iter().map(rule_info).collect() })
}

async fn set_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(layer): Path<String>,
    Body(b): Body,
) -> ApiResult<Response> {
    caller.require()?;
    let req: api::RuleRequest = body(&b)?;
    let subject: Subject = req
        .subject
        .parse()
        .map_err(|e: shikong_auth::AuthError| ApiError::bad_body(e.to_string()).with("field", "subject"))?;
    let grants: Grants = req
        .grants
        .parse()
        .map_err(|e: shikong_auth::AuthError| ApiError::bad_body(e.to_string()).with("field", "grants"))?;
    let st = state.clone();
    let rule = Rule { layer: layer.clone(), subject, grants };
    let r2 = rule.clone();
    blocking(move || {
        st.store().layer(&layer)?;
        Ok(st.auth.set_rule(&caller.actor(), &r2)?)
    })
    .await?;
    answer(StatusCode::OK, &api::RuleChanged { rule: rule_info(&rule) })
}

async fn remove_rule(
    State(state): State<AppState>,
    caller: Caller,
    Path(layer): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    caller.require()?;
    let p = Params::new(q.as_deref())?;
    p.only(&["subject"])?;
    let subject: Subject = p
        .get("subject")
        .ok_or_else(|| ApiError::bad_parameter("subject", "required, e.g. role:citizen"))?
        .parse()
        .map_err(|e: shikong_auth::AuthError| ApiError::bad_parameter("subject", e))?;
    let auth = state.auth.clone();
    blocking(move || Ok(auth.remove_rule(&caller.actor(), &layer, &subject)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn audit_json(e: &AuditEntry) -> Json {
    let actor = match &e.actor {
        shikong_auth::ActorRef::User { username, .. } => json!({"user": username}),
        shikong_auth::ActorRef::Local(n) => json!({"local": n}),
        _ => json!(null),
    };
    json!({
        "id": e.id.0,
        "at": time::beijing(e.at),
        "action": e.action.to_string(),
        "outcome": e.outcome.to_string(),
        "actor": actor,
        "device": e.device.map(|d| d.to_string()),
        "client": e.client,
        "request_id": e.request_id,
        "user": e.user,
        "target": e.target,
        "layer": e.layer,
        "entities": e.entities,
        "count": e.entity_count,
        "tx": e.tx,
        "detail": e.detail,
    })
}

async fn audit(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    caller.require()?;
    let p = Params::new(q.as_deref())?;
    p.only(&["from", "to", "user", "action", "outcome", "layer", "after", "limit"])?;
    let mut query = AuditQuery { from: p.instant("from")?, to: p.instant("to")?, ..AuditQuery::default() };
    query.user = p.get("user").map(str::to_owned);
    query.layer = p.get("layer").map(str::to_owned);
    if let Some(a) = p.get("action") {
        query.actions = a
            .split(',')
            .map(|x| x.trim().parse().map_err(|_| ApiError::bad_parameter("action", format!("unknown action `{x}`"))))
            .collect::<ApiResult<_>>()?;
    }
    if let Some(o) = p.get("outcome") {
        query.outcome = Some(
            o.parse().map_err(|_| ApiError::bad_parameter("outcome", format!("`{o}` is not ok, failed or denied")))?,
        );
    }
    if let Some(a) = p.get("after") {
        query.after =
            Some(shikong_auth::AuditId(a.parse().map_err(|_| ApiError::bad_parameter("after", "not an audit id"))?));
    }
    query.limit = p.limit(100, 1000)?;
    let st = state.clone();
    let page = blocking(move || {
        // Records still in the store's outbox first: the log read is complete up to now.
        crate::audit_outbox::drain(&st);
        Ok(st.auth.query_audit(&caller.actor(), &query)?)
    })
    .await?;
    Ok(json(
        StatusCode::OK,
        json!({"entries": page.entries.iter().map(audit_json).collect::<Vec<_>>(), "next": page.next.map(|n| n.0)}),
    ))
}
