//! The server's own resources for the admin console (系统资源, issue 20): `GET /admin/system`
//! (free space of the data folder's file system, the process's resident memory and the
//! machine's, requests per second over the last minute) and `PUT /admin/system/thresholds`
//! (administrators only, both).
//!
//! Why here and not a Prometheus exporter: the console needs one small JSON answer with the
//! thresholds and what is crossed now, and an alert when a threshold is crossed even while no
//! console is open. The thresholds are kept in `DATA/system-thresholds.json` (written atomically,
//! at most [`MAX_FILE`] bytes, re-read at every check so every process on the folder applies the
//! same ones). `serve` checks every [`CHECK_EVERY`] ([`run`]); each answer of `GET /admin/system`
//! and each change of the thresholds also checks. A threshold crossed opens an alert: logged and
//! told to administrators on the live channel (`LiveEvent::SystemAlert` to the role `admin`, as
//! the service health checks do with `LiveEvent::ServiceHealth`); back below it, the alert closes
//! and that is told too. Open alerts live in this process's memory (a restart re-judges them at
//! its first check). Sensor alerts' cases are not used: a full disk is not a city case.
//!
//! Memory and disk are read from Linux (`/proc/self/status`, `/proc/meminfo`) and `statvfs(2)`
//! (rustix, safe); where the system does not tell, the member is absent and never alerts.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, put};
use shikong_protocol::api::LiveEvent;
use shikong_protocol::api::system::{
    DiskUsage, MemoryUsage, RequestRates, SystemAlert, SystemAlertEvent, SystemAlertState, SystemMetric, SystemStatus,
    SystemThresholds,
};

use crate::access::Caller;
use crate::body::Body;
use crate::events::Audience;
use crate::{ApiError, ApiResult, AppState, blocking, json_ok};

/// How often `serve` checks the thresholds.
pub const CHECK_EVERY: Duration = Duration::from_secs(15);
/// The thresholds' file in the data folder.
pub const THRESHOLDS_FILE: &str = "system-thresholds.json";
/// Largest thresholds file (and body) read.
const MAX_FILE: usize = 4 * 1024;
/// The request rate is measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Most request-count samples kept (each check and each answer takes one).
const MAX_SAMPLES: usize = 256;
/// Largest memory threshold, MiB (16 TiB).
const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;
/// Largest request-rate threshold.
const MAX_RATE: f64 = 1_000_000.0;

/// Request counts of this process and the alerts open now (kept in `Metrics`).
#[derive(Debug)]
pub(crate) struct Monitor {
    started: Instant,
    total: AtomicU64,
    server_errors: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// (when, total, server errors).
    samples: VecDeque<(Instant, u64, u64)>,
    open: HashMap<SystemMetric, SystemAlert>,
}

impl Default for Monitor {
    fn default() -> Self {
        Monitor {
            started: Instant::now(),
            total: AtomicU64::new(0),
            server_errors: AtomicU64::new(0),
            inner: Mutex::default(),
        }
    }
}

impl Monitor {
    /// One answered request (the metrics middleware).
    pub(crate) fn count(&self, status: u16) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes a sample now; the rates over the window.
    fn rates(&self, now: Instant) -> RequestRates {
        let total = self.total.load(Ordering::Relaxed);
        let errors = self.server_errors.load(Ordering::Relaxed);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let s = &mut inner.samples;
        s.push_back((now, total, errors));
        while s.len() > MAX_SAMPLES || s.front().is_some_and(|(t, _, _)| now.duration_since(*t) > RATE_WINDOW) {
            s.pop_front();
        }
        let (per_second, errors_per_second) = match s.front() {
            Some(&(t, n, e)) if now.duration_since(t) >= Duration::from_secs(1) => {
                let secs = now.duration_since(t).as_secs_f64();
                (Some(total.saturating_sub(n) as f64 / secs), Some(errors.saturating_sub(e) as f64 / secs))
            }
            _ => (None, None),
        };
        RequestRates { total, server_errors: errors, per_second, errors_per_second }
    }
}

/// The thresholds in `data_dir` (none set when there is no file).
pub fn load_thresholds(data_dir: &Path) -> ApiResult<SystemThresholds> {
    let path = data_dir.join(THRESHOLDS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(SystemThresholds::default()),
        Err(e) => return Err(ApiError::internal(format!("{}: {e}", path.display()))),
    };
    if bytes.len() > MAX_FILE {
        return Err(ApiError::internal(format!("{} is larger than {MAX_FILE} bytes", path.display())));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))
}

/// Checks every member's range; `Err((member, why))`.
pub fn validate(t: &SystemThresholds) -> Result<(), (&'static str, String)> {
    if let Some(p) = t.disk_free_min_percent
        && !(p.is_finite() && (0.0..=100.0).contains(&p))
    {
        return Err(("disk_free_min_percent", format!("{p} is not a percent between 0 and 100")));
    }
    if let Some(m) = t.memory_max_mb
        && !(1..=MAX_MEMORY_MB).contains(&m)
    {
        return Err(("memory_max_mb", format!("{m} is not between 1 and {MAX_MEMORY_MB} MiB")));
    }
    if let Some(r) = t.requests_max_per_second
        && !(r.is_finite() && r > 0.0 && r <= MAX_RATE)
    {
        return Err(("requests_max_per_second", format!("{r} is not above 0 and at most {MAX_RATE}")));
    }
    Ok(())
}

fn disk(dir: &Path) -> Option<DiskUsage> {
    #[cfg(unix)]
    {
        let v = rustix::fs::statvfs(dir).ok()?;
        let total = v.f_blocks.saturating_mul(v.f_frsize);
        let free = v.f_bavail.saturating_mul(v.f_frsize);
        let free_percent = if total == 0 { 0.0 } else { free as f64 * 100.0 / total as f64 };
        Some(DiskUsage { total_bytes: total, free_bytes: free, free_percent })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// `Name:   123 kB` of a `/proc` file, in bytes.
fn proc_kb(text: &str, name: &str) -> Option<u64> {
    let rest = text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))?;
    let kb: u64 = rest.split_whitespace().next()?.parse().ok()?;
    Some(kb.saturating_mul(1024))
}

fn memory() -> MemoryUsage {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let status = read("/proc/self/status");
    let info = read("/proc/meminfo");
    MemoryUsage {
        rss_bytes: status.as_deref().and_then(|s| proc_kb(s, "VmRSS")),
        machine_total_bytes: info.as_deref().and_then(|s| proc_kb(s, "MemTotal")),
        machine_available_bytes: info.as_deref().and_then(|s| proc_kb(s, "MemAvailable")),
    }
}

/// (value, threshold, crossed, message) of each watched metric that has a value.
fn judge(s: &SystemStatus, t: &SystemThresholds) -> Vec<(SystemMetric, f64, f64, bool, String)> {
    let mut out = Vec::new();
    if let (Some(min), Some(d)) = (t.disk_free_min_percent, &s.disk) {
        let v = d.free_percent;
        out.push((SystemMetric::DiskFree, v, min, v < min, format!("数据目录剩余空间 {v:.1}% 低于阈值 {min}%")));
    }
    if let (Some(max), Some(rss)) = (t.memory_max_mb, s.memory.rss_bytes) {
        let v = rss as f64 / (1024.0 * 1024.0);
        let max = max as f64;
        out.push((SystemMetric::Memory, v, max, v > max, format!("服务进程内存 {v:.0} MiB 超过阈值 {max} MiB")));
    }
    if let (Some(max), Some(v)) = (t.requests_max_per_second, s.requests.per_second) {
        out.push((SystemMetric::Requests, v, max, v > max, format!("请求速率 {v:.1} 次/秒 超过阈值 {max} 次/秒")));
    }
    out
}

/// Measures now, opens and closes alerts (telling administrators), and answers the status.
/// Blocking (reads files).
pub fn check(state: &AppState) -> ApiResult<SystemStatus> {
    let monitor = &state.metrics.system;
    let thresholds = load_thresholds(&state.config.data_dir)?;
    let now = jiff::Timestamp::now().to_string();
    let mut status = SystemStatus {
        checked_at: now.clone(),
        uptime_seconds: monitor.started.elapsed().as_secs(),
        disk: disk(&state.config.data_dir),
        memory: memory(),
        requests: monitor.rates(Instant::now()),
        thresholds: thresholds.clone(),
        alerts: Vec::new(),
    };
    let judged = judge(&status, &thresholds);
    let mut events = Vec::new();
    {
        let mut inner = monitor.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let watched: Vec<SystemMetric> = judged.iter().map(|j| j.0).collect();
        // A threshold removed (or a value no longer known) closes its alert quietly.
        inner.open.retain(|m, _| watched.contains(m));
        for (metric, value, threshold, crossed, message) in judged {
            match (crossed, inner.open.get_mut(&metric)) {
                (true, Some(open)) => {
                    open.value = value;
                    open.threshold = threshold;
                    open.message = message;
                }
                (true, None) => {
                    tracing::warn!(metric = ?metric, value, threshold, "{message}");
                    let alert = SystemAlert { metric, value, threshold, since: now.clone(), message: message.clone() };
                    inner.open.insert(metric, alert);
                    events.push((metric, SystemAlertState::Open, value, threshold, message));
                }
                (false, Some(_)) => {
                    inner.open.remove(&metric);
                    tracing::info!(metric = ?metric, value, threshold, "system threshold recovered");
                    events.push((metric, SystemAlertState::Closed, value, threshold, message));
                }
                (false, None) => {}
            }
        }
        status.alerts = inner.open.values().cloned().collect();
    }
    status.alerts.sort_by_key(|a| a.metric as u8);
    for (metric, st, value, threshold, message) in events {
        state.events.publish(
            Audience::Role("admin".into()),
            LiveEvent::SystemAlert(SystemAlertEvent {
                metric,
                state: st,
                value,
                threshold,
                message,
                time: now.clone(),
            }),
        );
    }
    Ok(status)
}

async fn status(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    caller.admin_only(q.as_deref(), "only administrators see the system's resources")?;
    let st = state.clone();
    json_ok(&blocking(move || check(&st)).await?)
}

async fn set_thresholds(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    caller.admin_only(q.as_deref(), "only administrators set alert thresholds")?;
    if body.len() > MAX_FILE {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("thresholds are at most {MAX_FILE} bytes"),
        ));
    }
    let t: SystemThresholds = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_body(format!("the body is not a set of thresholds: {e}")))?;
    validate(&t).map_err(|(field, why)| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-threshold", format!("`{field}`: {why}"))
            .with("field", field)
    })?;
    let bytes = serde_json::to_vec_pretty(&t).map_err(ApiError::internal)?;
    let st = state.clone();
    let answer = blocking(move || {
        let path = st.config.data_dir.join(THRESHOLDS_FILE);
        crate::calendar::write_atomic(&path, &bytes)
            .map_err(|e| ApiError::internal(format!("{}: {e}", path.display())))?;
        tracing::info!(by = %caller.author(), "system alert thresholds changed");
        check(&st)
    })
    .await?;
    json_ok(&answer)
}

/// Checks every [`CHECK_EVERY`], for the server's life.
pub(crate) async fn run(state: AppState) {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.clone();
        match tokio::task::spawn_blocking(move || check(&st)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e.detail, "system check failed"),
            Err(e) => tracing::warn!(error = %e, "system check panicked"),
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/admin/system", get(status)).route("/admin/system/thresholds", put(set_thresholds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_lines_are_read_in_bytes() {
        let s = "Name:\tshikong\nVmRSS:\t   2048 kB\nVmSwap:\t0 kB\n";
        assert_eq!(proc_kb(s, "VmRSS"), Some(2048 * 1024));
        assert_eq!(proc_kb(s, "VmHWM"), None);
    }

    #[test]
    fn thresholds_out_of_range_name_their_member() {
        let t = SystemThresholds { disk_free_min_percent: Some(120.0), ..Default::default() };
        assert_eq!(validate(&t).unwrap_err().0, "disk_free_min_percent");
        let t = SystemThresholds { memory_max_mb: Some(0), ..Default::default() };
        assert_eq!(validate(&t).unwrap_err().0, "memory_max_mb");
        let t = SystemThresholds { requests_max_per_second: Some(f64::NAN), ..Default::default() };
        assert_eq!(validate(&t).unwrap_err().0, "requests_max_per_second");
        assert!(validate(&SystemThresholds::default()).is_ok());
    }

    #[test]
    fn the_rate_needs_a_second_of_samples() {
        let m = Monitor::default();
        let t0 = Instant::now();
        for _ in 0..30 {
            m.count(200);
        }
        assert_eq!(m.rates(t0).per_second, None);
        m.count(503);
        let r = m.rates(t0 + Duration::from_secs(2));
        assert_eq!((r.total, r.server_errors), (31, 1));
        assert_eq!(r.per_second, Some(0.5));
    }
}
