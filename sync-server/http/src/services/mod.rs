//! Outside services (服务注册与代理, issue 20): registration with their capabilities' layers
//! (`registry.rs`), API keys with quotas, fences and time windows (`keys.rs`), the proxy that
//! hides the outside address and credentials behind the platform's keys and tokens (`proxy.rs`),
//! and scheduled health checks that alert administrators (`health.rs`).
//!
//! Storage is `shikong-auth` (tables `services`, `api_keys`, `api_key_usage`, SQLite or the
//! shared PostgreSQL schema), so every server process on one database has the same registry and
//! keys. The proxy path must add little latency (goal: < 2 ms p95), so it never reads the
//! database per request: this process keeps the registry and the keys it has seen in memory for
//! [`ServicesConfig::cache_ttl`] (a revocation or removal through this process applies at once,
//! through another within that time), and counts each key's requests of the (Beijing) day in
//! memory, adding them to the database every [`ServicesConfig::flush_every`] and reading back
//! every process's total then. A key's quota is judged against that total plus what this process
//! counted since: with N processes a key can overshoot by what the others served within one
//! flush interval. Proxy uses are audited through the audit log's `PendingAudit` records
//! (`record_pending_many`, as the store's outbox does), buffered and appended by the same flush.

pub(crate) mod api_doc;
pub(crate) mod capabilities;
pub mod fence;
pub mod health;
mod keys;
mod proxy;
mod rate;
mod registry;
mod upstream;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use shikong_auth::{ApiKeyRow, PendingAudit, ServiceRow};
use shikong_protocol::api::services::{ServiceHealth, ServiceLayer, ServiceType};

use crate::AppState;

pub use registry::{RegisteredService, registered_services};

/// Bounds and schedules of the service registry and proxy.
#[derive(Debug, Clone)]
pub struct ServicesConfig {
    /// The outside service's longest silence during a proxied request (connect: at most 5 s),
    /// and the whole time of a capabilities read or a health probe.
    pub upstream_timeout: Duration,
    /// How long the registry and a key stay cached in this process.
    pub cache_ttl: Duration,
    /// How often usage counts and proxy audit records are written to the database.
    pub flush_every: Duration,
    /// How often every service is probed.
    pub health_every: Duration,
    /// Probes running at once.
    pub health_concurrency: usize,
    /// Largest text answer (capabilities, JSON) the proxy rewrites; larger text is refused (502).
    pub max_rewrite_bytes: usize,
}

impl Default for ServicesConfig {
    fn default() -> Self {
        ServicesConfig {
            upstream_timeout: Duration::from_secs(30),
            cache_ttl: Duration::from_secs(5),
            flush_every: Duration::from_secs(2),
            health_every: Duration::from_secs(60),
            health_concurrency: 8,
            max_rewrite_bytes: 16 << 20,
        }
    }
}

/// Most keys (and unknown secrets) cached; beyond it the cache starts over.
const MAX_CACHED_KEYS: usize = 10_000;
/// Most proxy audit records waiting for the flush; beyond it they are counted and dropped.
const MAX_PENDING_AUDIT: usize = 100_000;
/// Most vertices of a key's fence.
pub const MAX_FENCE_VERTICES: usize = 100_000;

/// A registered service, ready to proxy.
#[derive(Debug)]
pub(crate) struct ServiceEntry {
    pub row: ServiceRow,
    pub kind: ServiceType,
    pub upstream: upstream::Upstream,
}

impl ServiceEntry {
    fn from_row(row: ServiceRow) -> Option<ServiceEntry> {
        let kind = ServiceType::parse(&row.kind)?;
        let creds = row.credentials.as_deref().and_then(|c| serde_json::from_str(c).ok()).unwrap_or_default();
        let upstream = upstream::Upstream::parse(kind, &row.url, creds).ok()?;
        Some(ServiceEntry { row, kind, upstream })
    }

    pub fn layers(&self) -> Vec<ServiceLayer> {
        serde_json::from_str(&self.row.layers).unwrap_or_default()
    }

    pub fn health(&self) -> ServiceHealth {
        health::parse(&self.row.health)
    }
}

/// A key with its fence and window parsed.
#[derive(Debug)]
pub(crate) struct KeyEntry {
    pub row: ApiKeyRow,
    pub fence: Option<geo::Geometry<f64>>,
    pub hours: Option<(u16, u16)>,
}

impl KeyEntry {
    fn from_row(row: ApiKeyRow) -> KeyEntry {
        // Validated when created; a fence that no longer parses fences everything out.
        let fence = row.fence.as_deref().map(|f| {
            fence::parse_fence(f, MAX_FENCE_VERTICES)
                .unwrap_or(geo::Geometry::Polygon(geo::Polygon::new(geo::LineString::new(vec![]), vec![])))
        });
        let hours = row.hours.as_deref().and_then(|h| fence::parse_hours(h).ok());
        KeyEntry { row, fence, hours }
    }
}

type Registry = HashMap<String, Arc<ServiceEntry>>;
/// Presented secret → when it was read, and the key (`None`: no such key).
type KeyCache = HashMap<String, (Instant, Option<Arc<KeyEntry>>)>;

#[derive(Debug, Default)]
struct Usage {
    /// Every process's flushed count per key for `day` (read back at the last flush).
    day: String,
    flushed: HashMap<String, u64>,
    /// Counted here, being written now.
    writing: HashMap<(String, String), u64>,
    /// Counted here since.
    pending: HashMap<(String, String), u64>,
}

impl Usage {
    fn used(&self, key: &str, day: &str) -> u64 {
        let id = (day.to_owned(), key.to_owned());
        let flushed = if self.day == day { self.flushed.get(key).copied().unwrap_or(0) } else { 0 };
        flushed + self.writing.get(&id).copied().unwrap_or(0) + self.pending.get(&id).copied().unwrap_or(0)
    }
}

/// The registry, keys and usage as this process knows them.
#[derive(Debug)]
pub struct Services {
    config: ServicesConfig,
    client: reqwest::Client,
    registry: Mutex<Option<(Instant, Arc<Registry>)>>,
    keys: Mutex<KeyCache>,
    usage: Mutex<Usage>,
    rates: Mutex<rate::Rates>,
    audit: Mutex<(Vec<PendingAudit>, u64)>,
    /// Serialises flushes (the thread and explicit calls).
    flushing: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Services {
    pub fn new(config: ServicesConfig) -> Services {
        Services {
            client: upstream::client(config.upstream_timeout),
            config,
            registry: Mutex::new(None),
            keys: Mutex::new(HashMap::new()),
            usage: Mutex::default(),
            rates: Mutex::default(),
            audit: Mutex::default(),
            flushing: Mutex::new(()),
        }
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub(crate) fn config(&self) -> &ServicesConfig {
        &self.config
    }

    /// Forgets the cached registry (after a change through this process).
    pub(crate) fn invalidate_registry(&self) {
        *lock(&self.registry) = None;
    }

    /// Forgets the cached keys (after a revocation through this process).
    pub(crate) fn invalidate_keys(&self) {
        lock(&self.keys).clear();
    }

    /// The cached registry, if fresh.
    fn cached_registry(&self) -> Option<Arc<Registry>> {
        lock(&self.registry).as_ref().filter(|(at, _)| at.elapsed() < self.config.cache_ttl).map(|(_, r)| r.clone())
    }

    /// Takes one request of `key` from its per-second rate (when it has one); `Err(wait)` when
    /// it is over it.
    pub(crate) fn take_rate(&self, key: &KeyEntry) -> Result<(), Duration> {
        match key.row.rate {
            Some(rate) => lock(&self.rates).take(&key.row.id, rate, Instant::now()),
            None => Ok(()),
        }
    }

    /// Counts one request of `key` on `day` if the quota allows; else `false`.
    pub(crate) fn take_quota(&self, key: &KeyEntry, day: &str) -> bool {
        let mut u = lock(&self.usage);
        if u.used(&key.row.id, day) >= key.row.quota {
            return false;
        }
        *u.pending.entry((day.to_owned(), key.row.id.clone())).or_insert(0) += 1;
        true
    }

    /// What this process knows of a key's use today.
    pub(crate) fn used(&self, key: &str, day: &str) -> u64 {
        lock(&self.usage).used(key, day)
    }

    /// Queues a proxy use for the audit log.
    pub(crate) fn audit(&self, record: PendingAudit) {
        let mut a = lock(&self.audit);
        if a.0.len() >= MAX_PENDING_AUDIT {
            a.1 += 1;
        } else {
            a.0.push(record);
        }
    }
}

/// The registry, from the cache or (when stale) the database. Blocking.
pub(crate) fn registry_blocking(state: &AppState) -> crate::ApiResult<Arc<Registry>> {
    if let Some(r) = state.services.cached_registry() {
        return Ok(r);
    }
    let rows = state.auth.services()?;
    let map: Registry =
        rows.into_iter().filter_map(ServiceEntry::from_row).map(|e| (e.row.id.clone(), Arc::new(e))).collect();
    let map = Arc::new(map);
    *lock(&state.services.registry) = Some((Instant::now(), map.clone()));
    Ok(map)
}

/// The registry, without leaving the async thread when the cache is fresh.
pub(crate) async fn registry(state: &AppState) -> crate::ApiResult<Arc<Registry>> {
    if let Some(r) = state.services.cached_registry() {
        return Ok(r);
    }
    let st = state.clone();
    crate::blocking(move || registry_blocking(&st)).await
}

/// The key whose secret is `secret` (`None`: no such key), from the cache or the database.
pub(crate) async fn key(state: &AppState, secret: &str) -> crate::ApiResult<Option<Arc<KeyEntry>>> {
    let ttl = state.services.config.cache_ttl;
    if let Some((at, k)) = lock(&state.services.keys).get(secret)
        && at.elapsed() < ttl
    {
        return Ok(k.clone());
    }
    let st = state.clone();
    let s = secret.to_owned();
    let row = crate::blocking(move || Ok(st.auth.api_key_by_secret(&s)?)).await?;
    let entry = row.map(|r| Arc::new(KeyEntry::from_row(r)));
    let mut cache = lock(&state.services.keys);
    if cache.len() >= MAX_CACHED_KEYS {
        cache.clear();
    }
    cache.insert(secret.to_owned(), (Instant::now(), entry.clone()));
    Ok(entry)
}

/// Writes the usage counted and the proxy audit records queued since the last flush, and reads
/// back every process's usage of today. Blocking; failures are logged and retried next time.
pub fn flush(state: &AppState) {
    let s = &state.services;
    let _one = lock(&s.flushing);
    let today = beijing_day(jiff::Timestamp::now());
    let batch: Vec<(String, String, u64)> = {
        let mut u = lock(&s.usage);
        let pending = std::mem::take(&mut u.pending);
        u.writing = pending;
        u.writing.iter().map(|((d, k), n)| (k.clone(), d.clone(), *n)).collect()
    };
    let written = state.auth.add_api_key_usage(&batch);
    let counts = written.as_ref().ok().and_then(|()| state.auth.api_key_usage(&today).ok());
    {
        let mut u = lock(&s.usage);
        let writing = std::mem::take(&mut u.writing);
        match (&written, counts) {
            (Ok(()), Some(c)) => {
                u.day = today;
                u.flushed = c.into_iter().collect();
            }
            (Ok(()), None) => {
                // Written but not read back: keep them counted until the next read.
                for ((d, k), n) in writing {
                    if d == u.day {
                        *u.flushed.entry(k).or_insert(0) += n;
                    }
                }
            }
            (Err(e), _) => {
                tracing::warn!(error = %e, "writing API key usage failed (kept for the next flush)");
                for (id, n) in writing {
                    *u.pending.entry(id).or_insert(0) += n;
                }
            }
        }
    }
    let (records, dropped) = {
        let mut a = lock(&s.audit);
        (std::mem::take(&mut a.0), std::mem::take(&mut a.1))
    };
    if dropped > 0 {
        tracing::warn!(dropped, "proxy audit records dropped: more than the buffer holds between flushes");
    }
    if !records.is_empty()
        && let Err(e) = state.auth.record_pending_many(&records)
    {
        tracing::warn!(error = %e, records = records.len(), "appending proxy audit records failed");
    }
}

/// The flush thread of a server state: every `flush_every`, while the state lives.
pub(crate) fn spawn_flusher(state: &AppState) {
    let weak = state.downgrade();
    let every = state.services.config.flush_every;
    let spawned = std::thread::Builder::new().name("services-flush".into()).spawn(move || {
        loop {
            std::thread::sleep(every);
            let Some(state) = weak.upgrade() else { return };
            flush(&state);
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the services flush thread");
    }
}

const BEIJING_SECS: i32 = 8 * 3600;

fn beijing(t: jiff::Timestamp) -> jiff::civil::DateTime {
    let tz = jiff::tz::TimeZone::fixed(jiff::tz::Offset::from_seconds(BEIJING_SECS).unwrap_or(jiff::tz::Offset::UTC));
    t.to_zoned(tz).datetime()
}

/// The Beijing date of `t`, `YYYY-MM-DD` (quota days).
pub fn beijing_day(t: jiff::Timestamp) -> String {
    beijing(t).date().to_string()
}

/// Seconds from `t` to the next Beijing midnight (at least 1).
pub fn secs_to_beijing_midnight(t: jiff::Timestamp) -> u64 {
    let d = beijing(t);
    let of_day = i64::from(d.hour()) * 3600 + i64::from(d.minute()) * 60 + i64::from(d.second());
    u64::try_from(86_400 - of_day).unwrap_or(1).max(1)
}

/// Minute of the Beijing day of `t`.
pub fn beijing_minute(t: jiff::Timestamp) -> u16 {
    let d = beijing(t);
    u16::try_from(i32::from(d.hour()) * 60 + i32::from(d.minute())).unwrap_or(0)
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/services", get(registry::list).post(registry::create))
        .route("/services/{id}", get(registry::one).delete(registry::delete))
        .route("/services/{id}/proxy", get(proxy::proxy_root))
        .route("/services/{id}/proxy/", get(proxy::proxy_root))
        .route("/services/{id}/proxy/{*path}", get(proxy::proxy_path))
        .route("/keys", get(keys::list).post(keys::create))
        .route("/keys/{id}", axum::routing::delete(keys::revoke))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beijing_days() {
        let t: jiff::Timestamp = "2026-12-07T15:59:30Z".parse().unwrap();
        assert_eq!(beijing_day(t), "2026-12-07");
        assert_eq!(secs_to_beijing_midnight(t), 30);
        let t: jiff::Timestamp = "2026-12-07T16:00:00Z".parse().unwrap();
        assert_eq!(beijing_day(t), "2026-12-08");
        assert_eq!(secs_to_beijing_midnight(t), 86_400);
        assert_eq!(beijing_minute(t), 0);
    }
}
