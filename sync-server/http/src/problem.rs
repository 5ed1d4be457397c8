//! The one place where errors become HTTP responses: RFC 9457 `application/problem+json`.
//!
//! 4xx responses say exactly what is wrong and where (`parameter`, `field`, `feature`); 5xx
//! responses say nothing internal — the real error is logged with the request's id.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};
use shikong_gazetteer::GazetteerError;
use shikong_store::StoreError;

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// A short, stable, machine-readable kind (the `type` URI's last segment).
    pub kind: &'static str,
    pub detail: String,
    /// Extension members (`parameter`, `field`, …).
    pub extra: Map<String, Json>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Self {
        ApiError { status, kind, detail: detail.into(), extra: Map::new() }
    }

    pub fn bad_parameter(parameter: &str, detail: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-parameter", format!("parameter `{parameter}`: {detail}"))
            .with("parameter", parameter)
    }

    pub fn bad_body(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid-body", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "internal server error (see the server log)")
    }

    pub fn with(mut self, key: &str, value: impl Into<Json>) -> Self {
        self.extra.insert(key.to_owned(), value.into());
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // The typed members `sync` and `received` stay in `extra` (set with `with`): the same JSON.
        let retry_after = self.extra.get("retry_after_seconds").and_then(Json::as_u64);
        let body = shikong_protocol::api::Problem {
            kind: format!("https://shikong.invalid/problems/{}", self.kind),
            title: self.status.canonical_reason().unwrap_or("Error").to_owned(),
            status: self.status.as_u16(),
            detail: self.detail,
            sync: None,
            received: None,
            extra: self.extra,
        };
        let body = serde_json::to_string(&body).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"shikong\""));
        }
        // 429 and 503 answers that know when to come back say so in the header too.
        if let Some(secs) = retry_after {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<shikong_query::QueryError> for ApiError {
    fn from(e: shikong_query::QueryError) -> Self {
        filter_error(e)
    }
}

/// A refused filter: 400 naming the `filter` parameter, and for a filter beyond the parser's
/// bounds which limit (`limit`: length, depth or nodes), the value found and the maximum.
pub(crate) fn filter_error(e: shikong_query::QueryError) -> ApiError {
    match e {
        shikong_query::QueryError::TooComplex { limit, found, max } => {
            ApiError::new(StatusCode::BAD_REQUEST, "filter-too-complex", format!("parameter `filter`: {e}"))
                .with("parameter", "filter")
                .with("limit", limit.name())
                .with("found", found)
                .with("max", max)
        }
        e => ApiError::bad_parameter("filter", e),
    }
}

/// Store work stopped by its cancellation token: past the request's deadline (408, as the
/// server's timeout answers) or abandoned (503; nobody is usually left to read it).
fn cancelled(reason: shikong_store::cancel::CancelReason) -> ApiError {
    match reason {
        shikong_store::cancel::CancelReason::Deadline => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "timeout",
            "the request ran past the server's time limit and was stopped; ask for less \
             (a filter, a bbox, smaller pages)",
        ),
        _ => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "cancelled", "the request was cancelled"),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::NoSuchLayer(name) => {
                ApiError::not_found(format!("no collection named `{name}`")).with("collection", name.as_str())
            }
            StoreError::NotFound { .. } => ApiError::not_found(e.to_string()),
            StoreError::DuplicateCode { .. } | StoreError::DuplicateId { .. } | StoreError::LayerExists(_) => {
                ApiError::conflict(e.to_string())
            }
            StoreError::Invalid { code, source, .. } => {
                let mut err = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-feature", e.to_string())
                    .with("feature", code.as_str());
                if let shikong_model::ModelError::Validation(v) = source {
                    err = err.with("field", v.field.as_str());
                }
                err
            }
            StoreError::Geometry { code, .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-geometry", e.to_string())
                    .with("feature", code.as_str())
                    .with("field", "geometry")
            }
            StoreError::InvalidLayerName { .. } | StoreError::SchemaChange { .. } | StoreError::AmbiguousKey { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
            }
            StoreError::InvalidArgument(m) => ApiError::new(StatusCode::BAD_REQUEST, "invalid-parameter", m.clone()),
            StoreError::Filter(q) => filter_error(q.clone()),
            StoreError::Cancelled(reason) => cancelled(*reason),
            // The database is down or failing over (PostgreSQL): the request may succeed shortly,
            // so a client retries instead of reporting a server fault. The reason (hosts,
            // addresses) stays in the server's log.
            StoreError::Connect { .. } => store_unavailable(&e),
            StoreError::Postgres(_) if e.is_unavailable() => store_unavailable(&e),
            _ => ApiError::internal(e),
        }
    }
}

/// 503 with `Retry-After`: the store's database cannot be reached right now.
fn store_unavailable(e: &StoreError) -> ApiError {
    tracing::warn!(error = %e, "store unavailable");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "store-unavailable",
        "the database is not reachable right now; try again in a few seconds",
    )
    .with("retry_after_seconds", 5)
}

/// An input over one of the upload limits: 413 naming the limit, the value and the maximum.
impl From<shikong_formats::limits::Exceeded> for ApiError {
    fn from(x: shikong_formats::limits::Exceeded) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", x.to_string())
            .with("limit", x.limit.name())
            .with("value", x.value)
            .with("max", x.max)
            .with("declared", x.declared)
    }
}

impl From<GazetteerError> for ApiError {
    fn from(e: GazetteerError) -> Self {
        match e {
            GazetteerError::NotBuilt => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no-gazetteer",
                "no gazetteer has been built on this server (an administrator runs `shikong gazetteer build`)",
            ),
            GazetteerError::Table { ref file, row, ref field, .. } => {
                let mut err = ApiError::bad_body(e.to_string()).with("file", file.as_str());
                if let Some(row) = row {
                    err = err.with("row", row);
                }
                if let Some(field) = field {
                    err = err.with("field", field.as_str());
                }
                err
            }
            GazetteerError::TooLarge { ref file, ref sheet, row, ref field, ref exceeded } => {
                let mut err = ApiError::from((**exceeded).clone()).with("file", file.as_str());
                err.detail = e.to_string();
                if let Some(sheet) = sheet {
                    err = err.with("sheet", sheet.as_str());
                }
                if let Some(row) = row {
                    err = err.with("row", row);
                }
                if let Some(field) = field {
                    err = err.with("field", field.as_str());
                }
                err
            }
            GazetteerError::NoColumn { .. } => ApiError::bad_parameter("column", e),
            GazetteerError::BadAlias { ref alias, .. } => {
                ApiError::bad_body(e.to_string()).with("alias", alias.as_str())
            }
            GazetteerError::Store(s) => s.into(),
            _ => ApiError::internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_a_503_to_retry_that_names_no_host() {
        let e = StoreError::Connect { config: "postgres://sk@10.0.0.7/city".into(), reason: "refused".into() };
        let api = ApiError::from(e);
        assert!(!api.detail.contains("10.0.0.7") && !api.detail.contains("postgres://"), "{}", api.detail);
        let r = api.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers().get("retry-after").map(|v| v.to_str().unwrap()), Some("5"));
    }
}
