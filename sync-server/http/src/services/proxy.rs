//! `GET /services/{id}/proxy/{path…}`: a registered service through the platform.
//!
//! Who: an API key (`?key=` — removed before forwarding — or `X-Api-Key`), checked from memory
//! (see the module above): unknown, revoked or expired → 401; not naming the service → 403;
//! outside its daily window → 403; a fenced key asking for an area outside its fence (or a data
//! request whose area cannot be computed) → 403; over its per-second `rate` → 429 with `Retry-After`
//! (seconds until a request would pass; the rate is kept per process, `rate.rs`); over its quota → 429 with `Retry-After` (seconds
//! to the next Beijing midnight). Or the platform's own bearer token of staff (admin, office,
//! inspector: no quota, no fence). Citizens need a key.
//!
//! What: a GET to the service's base URL + path + the query (the registered URL's own
//! parameters first), with a few of the client's headers (`Accept`, `Accept-Language`,
//! conditional and range headers; never its `Authorization` or cookies) and the stored
//! credentials. The answer's status and a few headers come back (their values rewritten);
//! binary bodies are streamed as they arrive; text bodies (XML, JSON, HTML, `text/*`) are read
//! (at most `max_rewrite_bytes`) and every occurrence of the outside base URL and origin replaced
//! by the proxy's own address, so the outside address never reaches a client.
//!
//! Each use by a key or user is queued for the audit log (`service.proxy`: service, key or user,
//! status, bytes, milliseconds).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use shikong_auth::{PendingAudit, Role};
use shikong_protocol::url::decode_form_value;

use super::{
    KeyEntry, ServiceEntry, Services, beijing_day, beijing_minute, fence, key, registry, secs_to_beijing_midnight,
};
use crate::access::Caller;
use crate::{ApiError, ApiResult, AppState};

/// A path below the proxy starting with this carries the key: `~key/KEY/rest`.
const KEY_PREFIX: &str = "~key/";

/// The client headers passed on.
const FORWARDED_REQUEST: [HeaderName; 5] =
    [header::ACCEPT, header::ACCEPT_LANGUAGE, header::IF_NONE_MATCH, header::IF_MODIFIED_SINCE, header::RANGE];

/// The service's headers passed back (values rewritten).
const FORWARDED_RESPONSE: [HeaderName; 12] = [
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::CACHE_CONTROL,
    header::ETAG,
    header::LAST_MODIFIED,
    header::EXPIRES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::CONTENT_LANGUAGE,
    header::LOCATION,
    header::LINK,
];

pub(crate) async fn proxy_root(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    proxy(state, caller, id, String::new(), headers, q.unwrap_or_default()).await
}

pub(crate) async fn proxy_path(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, _)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    proxy(state, caller, id, raw_path(&uri)?, headers, q.unwrap_or_default()).await
}

/// The path below `/services/{id}/proxy/` as the client sent it (still percent-encoded, so an
/// encoded `?` or `#` stays part of a segment); `.` and `..` segments, encoded or not, are
/// refused: a proxied path never climbs above the service's base.
fn raw_path(uri: &Uri) -> ApiResult<String> {
    let rest: Vec<&str> = uri.path().split('/').skip(4).collect();
    for seg in &rest {
        let decoded = decode_form_value(seg).unwrap_or_default();
        if decoded == "." || decoded == ".." || decoded.contains(['/', '\\']) {
            return Err(ApiError::bad_parameter("path", format!("segment `{seg}` is not allowed below the proxy")));
        }
    }
    // `~key`, `~origin`: a client may have encoded the tilde.
    let rest: Vec<String> = rest
        .iter()
        .map(|s| match s.get(..3) {
            Some(p) if p.eq_ignore_ascii_case("%7e") => format!("~{}", &s[3..]),
            _ => (*s).to_owned(),
        })
        .collect();
    Ok(rest.join("/"))
}

/// The query without `key` parameters, and the first key given.
fn split_key(raw: &str) -> (String, Option<String>) {
    let mut key = None;
    let rest: Vec<&str> = raw
        .split('&')
        .filter(|kv| !kv.is_empty())
        .filter(|kv| match kv.split_once('=') {
            Some(("key", v)) => {
                key.get_or_insert_with(|| decode_form_value(v).unwrap_or_default());
                false
            }
            None if *kv == "key" => false,
            _ => true,
        })
        .collect();
    (rest.join("&"), key)
}

fn pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode_form_value(k).unwrap_or_default(), decode_form_value(v).unwrap_or_default())
        })
        .collect()
}

/// Who is using the proxy.
enum User {
    Key(Arc<KeyEntry>),
    Staff(shikong_auth::Principal),
}

/// What is known of one use, written to the audit queue when dropped (after the last byte of a
/// streamed answer, or when the client went away).
struct Use {
    services: Arc<Services>,
    who: String,
    user_id: Option<i64>,
    key: Option<String>,
    service: String,
    path: String,
    client: Option<String>,
    request_id: Option<String>,
    status: u16,
    bytes: u64,
    started: Instant,
}

impl Drop for Use {
    fn drop(&mut self) {
        let ms = self.started.elapsed().as_millis();
        let outcome = match self.status {
            s if s < 400 => "ok",
            401 | 403 | 429 => "denied",
            _ => "failed",
        };
        let key = self.key.as_deref().map(|k| format!("key {k} ({}): ", self.who)).unwrap_or_default();
        self.services.audit(PendingAudit {
            id: uuid::Uuid::now_v7(),
            at_ms: jiff::Timestamp::now().as_millisecond(),
            actor_kind: if self.key.is_some() { "anonymous" } else { "user" }.to_owned(),
            actor_id: self.user_id,
            actor: Some(self.who.clone()),
            device: None,
            client: self.client.clone(),
            request_id: self.request_id.clone(),
            action: shikong_auth::AuditAction::ServiceProxy.as_str().to_owned(),
            outcome: outcome.to_owned(),
            layer: Some(format!("service:{}", self.service)),
            entities: Vec::new(),
            count: Some(self.bytes),
            tx: None,
            detail: Some(format!(
                "{key}GET /{} → {}, {} bytes, {ms} ms",
                self.path.chars().take(300).collect::<String>(),
                self.status,
                self.bytes
            )),
        });
    }
}

fn refused(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> ApiError {
    ApiError::new(status, kind, detail)
}

/// Checks a key against the service and the request; counts it against the quota.
fn judge_key(
    state: &AppState,
    k: &KeyEntry,
    svc: &ServiceEntry,
    path: &str,
    query: &str,
    now: jiff::Timestamp,
) -> ApiResult<()> {
    if k.row.revoked_at.is_some() {
        return Err(refused(StatusCode::UNAUTHORIZED, "key-revoked", "this API key was revoked"));
    }
    if k.row.expires_at.is_some_and(|e| e <= now) {
        return Err(refused(StatusCode::UNAUTHORIZED, "key-expired", "this API key has expired"));
    }
    if !k.row.services.contains(&svc.row.id) {
        return Err(refused(StatusCode::FORBIDDEN, "key-not-for-service", "this API key may not use this service")
            .with("service", svc.row.id.as_str()));
    }
    if let Some(w) = k.hours
        && !fence::in_hours(w, beijing_minute(now))
    {
        return Err(refused(
            StatusCode::FORBIDDEN,
            "outside-hours",
            format!("this API key works only {} (Beijing time)", k.row.hours.as_deref().unwrap_or("")),
        ));
    }
    if let Some(f) = &k.fence {
        let area = fence::request_area(svc.kind, path, &pairs(query));
        if !fence::allowed(f, area) {
            let why = match area {
                fence::Area::Unknown => {
                    "this key is fenced and the request's area cannot be told (send a BBOX in lon/lat or EPSG:3857, or a tile of WebMercatorQuad/CGCS2000Quad)"
                }
                _ => "the requested area is outside this key's fence",
            };
            return Err(refused(StatusCode::FORBIDDEN, "outside-fence", why));
        }
    }
    // Before the quota: a request refused for its rate is not counted against the day.
    if let Err(wait) = state.services.take_rate(k) {
        let rate = k.row.rate.unwrap_or(0);
        return Err(refused(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("this API key allows {rate} requests a second; try again shortly"),
        )
        .with("rate", rate)
        .with("retry_after_seconds", wait.as_secs_f64().ceil().max(1.0) as u64));
    }
    if !state.services.take_quota(k, &beijing_day(now)) {
        let secs = secs_to_beijing_midnight(now);
        return Err(refused(
            StatusCode::TOO_MANY_REQUESTS,
            "quota-exhausted",
            format!(
                "this API key's {} requests of today are used; the quota renews at midnight Beijing time",
                k.row.quota
            ),
        )
        .with("quota", k.row.quota)
        .with("retry_after_seconds", secs));
    }
    Ok(())
}

fn is_text(content_type: Option<&HeaderValue>) -> bool {
    let Some(ct) = content_type.and_then(|v| v.to_str().ok()) else { return false };
    let ct = ct.to_ascii_lowercase();
    ct.starts_with("text/") || ct.contains("xml") || ct.contains("json") || ct.contains("javascript")
}

async fn proxy(
    state: AppState,
    caller: Caller,
    id: String,
    path: String,
    headers: HeaderMap,
    raw_query: String,
) -> ApiResult<Response> {
    let started = Instant::now();
    let (query, mut key_text) = split_key(&raw_query);
    // A key sent in the query is carried by every address the rewritten answer holds (as
    // `~key/KEY/…` below the proxy): clients such as GDAL's WMTS driver follow a capabilities
    // document's tile templates without adding the capabilities URL's query.
    let mut path = path;
    let mut key_in_url = key_text.is_some();
    if key_text.is_none()
        && let Some(rest) = path.strip_prefix(KEY_PREFIX)
    {
        let (k, rest) = rest.split_once('/').unwrap_or((rest, ""));
        key_text = Some(k.to_owned());
        path = rest.to_owned();
        key_in_url = true;
    }
    if key_text.is_none() {
        key_text = headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::to_owned);
    }
    let reg = registry(&state).await?;
    let svc = reg
        .get(&id)
        .cloned()
        .ok_or_else(|| ApiError::not_found(format!("no registered service `{id}`")).with("service", id.as_str()))?;
    let now = jiff::Timestamp::now();
    let usage_key_text = key_text.clone();
    let user = match (key_text, &caller.principal) {
        (Some(k), _) => {
            let entry = key(&state, &k).await?.ok_or_else(|| {
                refused(StatusCode::UNAUTHORIZED, "key-unknown", "unknown API key (send `?key=` or `X-Api-Key`)")
            })?;
            User::Key(entry)
        }
        (None, Some(p)) if matches!(p.role, Role::Admin | Role::Office | Role::Inspector) => User::Staff(p.clone()),
        (None, Some(_)) => {
            return Err(ApiError::forbidden("citizens use registered services with an API key (`?key=`)"));
        }
        (None, None) => {
            return Err(ApiError::unauthorized(
                "send an API key (`?key=` or `X-Api-Key`) or `Authorization: Bearer <token>`",
            ));
        }
    };
    let mut usage = Use {
        services: state.services.clone(),
        who: match &user {
            User::Key(k) => format!("key:{}", k.row.name),
            User::Staff(p) => p.username.clone(),
        },
        user_id: match &user {
            User::Key(_) => None,
            User::Staff(p) => Some(p.user_id.0),
        },
        key: match &user {
            User::Key(k) => Some(k.row.id.clone()),
            User::Staff(_) => None,
        },
        service: svc.row.id.clone(),
        path: path.clone(),
        client: caller.client.address.clone(),
        request_id: caller.client.request_id.clone(),
        status: 0,
        bytes: 0,
        started,
    };
    if let User::Key(k) = &user
        && let Err(e) = judge_key(&state, k, &svc, &path, &query, now)
    {
        usage.status = e.status.as_u16();
        return Err(e);
    }
    let Some(url) = svc.upstream.target(&path, &query) else {
        usage.status = 400;
        return Err(ApiError::bad_parameter("path", "an xyz service's tiles are `{z}/{x}/{y}` below the proxy"));
    };
    // The stored credentials go with requests below the service's base only: an address the
    // answer named elsewhere on its host (`~origin/…`) is fetched without them.
    let credentials = !path.starts_with(super::upstream::ORIGIN_PREFIX);
    let mut req = svc.upstream.request_as(state.services.client(), &url, credentials);
    for name in &FORWARDED_REQUEST {
        if let Some(v) = headers.get(name) {
            req = req.header(name.as_str(), v.as_bytes());
        }
    }
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            let e = super::upstream::UpstreamError::from(e);
            let status = if matches!(e, super::upstream::UpstreamError::Timeout) {
                StatusCode::GATEWAY_TIMEOUT
            } else {
                StatusCode::BAD_GATEWAY
            };
            usage.status = status.as_u16();
            return Err(ApiError::new(status, "upstream-failed", e.to_string()).with("service", svc.row.id.as_str()));
        }
    };
    let mut proxy_base = format!("{}/services/{}/proxy", state.base_url(&headers), svc.row.id);
    if let (true, User::Key(_), Some(k)) = (key_in_url, &user, &usage_key_text) {
        // A key that was found is base64url (the lookup trims nothing else): safe in any text.
        proxy_base = format!("{proxy_base}/{KEY_PREFIX}{}", k.trim());
    }
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    usage.status = status.as_u16();
    let text = is_text(resp.headers().get(header::CONTENT_TYPE));
    let mut out = Response::builder().status(status);
    for name in &FORWARDED_RESPONSE {
        if text && *name == header::CONTENT_LENGTH {
            continue;
        }
        for v in resp.headers().get_all(name.as_str()) {
            let v = svc.upstream.rewrite(v.as_bytes(), &proxy_base);
            if let Ok(v) = HeaderValue::from_bytes(&v) {
                out = out.header(name, v);
            }
        }
    }
    if text {
        let max = state.services.config().max_rewrite_bytes;
        let body = match read_bounded(resp, max).await {
            Ok(b) => b,
            Err(e) => {
                usage.status = 502;
                return Err(ApiError::new(StatusCode::BAD_GATEWAY, "upstream-failed", e.to_string())
                    .with("service", svc.row.id.as_str()));
            }
        };
        let body = svc.upstream.rewrite(&body, &proxy_base);
        usage.bytes = body.len() as u64;
        return out.body(axum::body::Body::from(body)).map_err(ApiError::internal);
    }
    let stream = futures_util::stream::unfold(Some((resp, usage)), |st| async move {
        let (mut resp, mut usage) = st?;
        match resp.chunk().await {
            Ok(Some(c)) => {
                usage.bytes += c.len() as u64;
                Some((Ok(c), Some((resp, usage))))
            }
            Ok(None) => None,
            Err(_) => Some((Err(std::io::Error::other("the service's answer broke off")), None)),
        }
    });
    out.body(axum::body::Body::from_stream(stream)).map_err(ApiError::internal)
}

async fn read_bounded(mut resp: reqwest::Response, max: usize) -> Result<Vec<u8>, super::upstream::UpstreamError> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(super::upstream::UpstreamError::TooLarge(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(super::upstream::UpstreamError::TooLarge(max));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_below_the_base() {
        let ok: Uri = "/services/s/proxy/tile/a%3Fb/1.png".parse().unwrap();
        assert_eq!(raw_path(&ok).unwrap(), "tile/a%3Fb/1.png");
        assert_eq!(raw_path(&"/services/s/proxy/%7Eorigin/x".parse().unwrap()).unwrap(), "~origin/x");
        for bad in ["/services/s/proxy/../admin", "/services/s/proxy/a/%2e%2E/b", "/services/s/proxy/a%2Fb"] {
            assert!(raw_path(&bad.parse().unwrap()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_key_is_taken_out_of_the_query() {
        assert_eq!(split_key("key=abc&SERVICE=WMS"), ("SERVICE=WMS".to_owned(), Some("abc".to_owned())));
        assert_eq!(split_key("a=1&key=x%2By&b=2"), ("a=1&b=2".to_owned(), Some("x+y".to_owned())));
        assert_eq!(split_key("keys=1"), ("keys=1".to_owned(), None));
        assert_eq!(pairs("BBOX=1%2C2&x"), vec![("BBOX".into(), "1,2".into()), ("x".into(), String::new())]);
    }
}
