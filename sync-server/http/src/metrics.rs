//! Prometheus metrics: request counts and latencies per route (the matched route template, so
//! `/collections/{collectionId}/items` is one series however many collections exist).
//!
//! Every label value comes from a closed set, so clients cannot grow the series without bound:
//! methods are the nine standard ones or `other` (HTTP allows any token as a method), routes are
//! the router's templates or `unmatched`, statuses are three digits.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

use super::AppState;

#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    verifications: IntCounterVec,
    repairs: IntCounter,
    /// Request counts and samples, thresholds' open alerts (`GET /admin/system`, `system.rs`).
    pub(crate) system: crate::system::Monitor,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new("shikong_http_requests_total", "HTTP requests by method, route and status"),
            &["method", "route", "status"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let latency = HistogramVec::new(
            HistogramOpts::new("shikong_http_request_duration_seconds", "HTTP request latency by method and route")
                .buckets(vec![0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0]),
            &["method", "route"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let verifications = IntCounterVec::new(
            Opts::new(
                "shikong_sync_verifications_total",
                "End-of-sync verifications by outcome (agreed: the replica matched the store; differed: it needed repair)",
            ),
            &["outcome"],
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        let repairs = IntCounter::new(
            "shikong_sync_repaired_entities_total",
            "Entities sent to devices to repair a replica that verification found different (0 while sync is healthy)",
        )
        .unwrap_or_else(|e| unreachable!("static metric definition: {e}"));
        // Both outcomes exist from the start, so a dashboard sees 0 rather than no series.
        for outcome in ["agreed", "differed"] {
            verifications.with_label_values(&[outcome]);
        }
        // Registration only fails for duplicate names, which a fresh registry cannot have.
        let _ = registry.register(Box::new(requests.clone()));
        let _ = registry.register(Box::new(latency.clone()));
        let _ = registry.register(Box::new(verifications.clone()));
        let _ = registry.register(Box::new(repairs.clone()));
        Metrics { registry, requests, latency, verifications, repairs, system: crate::system::Monitor::default() }
    }

    /// One end-of-sync verification.
    pub fn verified(&self, agreed: bool) {
        self.verifications.with_label_values(&[if agreed { "agreed" } else { "differed" }]).inc();
    }

    /// Entities sent to repair a replica.
    pub fn repaired(&self, entities: usize) {
        self.repairs.inc_by(u64::try_from(entities).unwrap_or(u64::MAX));
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Middleware recording one request.
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(req.method());
    let start = Instant::now();
    let resp = next.run(req).await;
    let m = &state.metrics;
    m.latency.with_label_values(&[method, route.as_str()]).observe(start.elapsed().as_secs_f64());
    m.requests.with_label_values(&[method, route.as_str(), resp.status().as_str()]).inc();
    m.system.count(resp.status().as_u16());
    resp
}

/// The method's label: a standard method's name, else `other`.
fn method_label(m: &Method) -> &'static str {
    const KNOWN: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
        Method::TRACE,
        Method::CONNECT,
    ];
    const NAMES: [&str; 9] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"];
    KNOWN.iter().position(|k| k == m).map_or("other", |i| NAMES[i])
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render(State(state): State<AppState>) -> Response {
    let mut buf = Vec::new();
    if TextEncoder::new().encode(&state.metrics.registry.gather(), &mut buf).is_err() {
        return super::ApiError::internal("metrics encoding failed").into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], buf).into_response()
}
