//! The HTTP service, one module per protocol: OGC API – Features ([`ogc`]), map tiles and styles
//! (`tiles/`: XYZ, TileJSON, OGC API – Tiles, WMTS, styles, packages), sync (`sync_routes`),
//! authentication and administration (`auth_routes`), geocoding (`geocode`), citizens' reports
//! (`reports`), OpenAPI, health and metrics. `app(state)` builds the router (tested in process
//! with `oneshot`); `serve` runs it on a listener, plain or HTTPS (rustls), with a shutdown bounded
//! by a grace period and a header-read timeout (`shikong serve`).
//!
//! Architecture invariant: handlers parse and check input, then run store and engine work through
//! [`blocking`] (off the async threads, bounded); every error leaves through [`ApiError`]
//! (problem+json), the one error-to-HTTP mapping.

#![forbid(unsafe_code)]

mod access;
mod admin_console;
mod after_commit;
pub mod alerts;
mod audit_outbox;
mod auth_routes;
mod body;
mod calendar;
pub mod cases;
pub mod catalog;
mod conflicts;
mod coords;
pub mod events;
mod geocode;
pub mod grid;
pub mod harvest;
mod html;
mod items_cursor;
mod items_sort;
mod jobstore;
mod metrics;
mod ogc;
mod ogc_write;
mod openapi;
mod params;
pub mod problem;
pub mod processes;
mod qr;
mod replica_reads;
mod reports;
pub mod services;
mod sta;
mod stats;
mod sync_routes;
pub mod system;
mod tiles;

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, header};
use axum::routing::get;
use shikong_store::Store;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, Any, CorsLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use calendar::{CalendarFileError, LiveCalendar};
pub use geocode::BatchLimits;
pub use problem::{ApiError, ApiResult};
pub use shikong_mqtt::BrokerConfig as MqttBrokerConfig;
pub use sta::mqtt::{MqttMode, MqttPrincipal, MqttService, RECHECK_EVERY as MQTT_RECHECK_EVERY};
pub use sta::stream::{NewObservation, OBSERVATION_BACKLOG, ObservationBatch, ObservationOrigin, ObservationStream};

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, bytes.
    pub max_body: usize,
    /// Largest `limit` a client may ask for.
    pub max_limit: usize,
    /// Most matching features an items request with `sortby` may sort (each page reads them
    /// all); above it the request is refused, naming the bound.
    pub max_sorted: usize,
    /// Request timeout.
    pub timeout: Duration,
    /// Allowed CORS origins (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// The URL clients reach the server at, for links (default: from the Host header).
    pub public_url: Option<String>,
    /// The server itself speaks HTTPS: links built from the Host header say `https://`.
    pub tls: bool,
    /// Largest attachment accepted, bytes.
    pub max_blob: u64,
    /// Unfinished attachment uploads one user may keep (`DIR/blobs/partial/<user>/`).
    pub max_partial_uploads: usize,
    /// Bytes one user's unfinished uploads may declare in total.
    pub max_partial_bytes: u64,
    /// An unfinished upload untouched this long is removed.
    pub partial_expiry: Duration,
    /// The data directory (attachments live in `DIR/blobs`).
    pub data_dir: std::path::PathBuf,
    /// Reverse proxies whose `X-Forwarded-For` is believed for the client address (logins are
    /// throttled and audited by it). Empty (the default): the connection's peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Bounds of batch geocoding jobs (per user, in total, how long results are kept).
    pub geocode_jobs: geocode::BatchLimits,
    /// Bounds of process jobs (OGC API – Processes): per user, in total, running, kept, features read.
    pub processes: processes::ProcessLimits,
    /// Largest raster upload (`POST /tiles/rasters/{set}`), bytes.
    pub max_raster_upload: u64,
    /// Bytes the vector tile cache (`DIR/tiles/cache.sqlite`) may take on disk; least recently
    /// used tiles are evicted beyond it (`shikong serve --tile-cache-mb`).
    pub tile_cache_bytes: u64,
    /// Bounds of the live channel (`GET /events`): streams per user and in total, backlog, age.
    pub events: events::EventLimits,
    /// Where the alert evaluator's "now" comes from: its first round (silence over a restart) and
    /// `serve`'s ticks. The system clock; tests set another instant.
    pub alert_clock: Arc<dyn shikong_model::clock::Clock>,
    /// Registered outside services and their proxy: timeouts, caches, flush and health schedules.
    pub services: services::ServicesConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body: 16 * 1024 * 1024,
            max_limit: 10_000,
            max_sorted: 100_000,
            timeout: Duration::from_secs(60),
            cors_origins: Vec::new(),
            public_url: None,
            tls: false,
            max_blob: 64 * 1024 * 1024,
            max_partial_uploads: 32,
            max_partial_bytes: 256 * 1024 * 1024,
            partial_expiry: Duration::from_secs(24 * 3600),
            data_dir: std::path::PathBuf::from("."),
            trusted_proxies: Vec::new(),
            geocode_jobs: geocode::BatchLimits::default(),
            processes: processes::ProcessLimits::default(),
            max_raster_upload: 16 << 30,
            tile_cache_bytes: shikong_tileserver::DEFAULT_DISK_BUDGET,
            events: events::EventLimits::default(),
            alert_clock: Arc::new(shikong_model::clock::SystemClock),
            services: services::ServicesConfig::default(),
        }
    }
}

/// In the data folder: the conflict index was built from the stored documents.
pub const CONFLICT_INDEX_MARKER: &str = ".conflict-index";

/// What every handler shares: one reference-counted [`StateParts`].
///
/// Why one `Arc` around the parts rather than a struct of `Arc`s: axum clones the state for
/// every request several times (the router, each `from_fn_with_state` middleware, each `State`
/// extractor) and drops the clones after. With a struct of seventeen `Arc`s that was some two
/// hundred atomic operations per request on seventeen cache lines that every worker thread
/// writes, which profiling showed as a fifth of a cached tile's cost; one `Arc` is one cache
/// line and a dozen operations. Fields read through `Deref` (`state.tiles`).
#[derive(Debug, Clone)]
pub struct AppState(Arc<StateParts>);

impl std::ops::Deref for AppState {
    type Target = StateParts;

    fn deref(&self) -> &StateParts {
        &self.0
    }
}

/// The parts of [`AppState`].
#[derive(Debug)]
pub struct StateParts {
    pub store: Arc<dyn Store>,
    pub auth: Arc<shikong_auth::AuthStore>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<metrics::Metrics>,
    /// Vector tile cache, raster sets, styles and offline packages (files in `DATA/tiles`).
    pub tiles: Arc<shikong_tileserver::TileService>,
    /// The address engine, caught up with the store before each answer.
    pub gazetteer: Arc<shikong_gazetteer::LiveGazetteer>,
    pub geocode_jobs: Arc<geocode::BatchJobs>,
    /// OGC API – Processes jobs (`processes/jobs.rs`), run by their worker threads.
    pub processes: Arc<processes::ProcessJobs>,
    /// The working-time calendar: shipped years with the edits of `DATA/calendar.json`.
    pub calendar: Arc<LiveCalendar>,
    /// The case runtime's rules (flows, classification) and its follower of report layers.
    pub cases: Arc<cases::Cases>,
    /// The live channel (`GET /events`): engines publish, open streams filter by audience.
    pub events: Arc<events::EventBus>,
    /// Fault points for crash-window tests (`simulate_crash_before_audit`).
    faults: Arc<Faults>,
    /// Wakes the thread that does what follows commits (tiles, audit records): `after_commit`.
    after_commit: Arc<after_commit::Worker>,
    /// SensorThings API state: its layers made, the time-series store (`sta/`).
    sta: Arc<sta::StaState>,
    /// The alert rules' evaluator (`alerts/`): consumes the observation stream on its own thread.
    pub alerts: Arc<alerts::Alerts>,
    /// The catalog (`catalog/`): sources besides the platform's own (registered services) and
    /// its feature-count cache.
    pub catalog: Arc<catalog::Catalog>,
    /// Registered outside services, API keys and usage as this process knows them (`services/`).
    pub services: Arc<services::Services>,
}

/// A handle on the server state that does not keep it alive: background threads hold this and
/// upgrade it only while they work, so dropping the last [`AppState`] (the server or a test
/// closing) runs the state's drops at once rather than when a thread next wakes.
pub(crate) struct WeakAppState(Weak<StateParts>);

impl WeakAppState {
    /// The state, while any other holder keeps it.
    pub(crate) fn upgrade(&self) -> Option<AppState> {
        self.0.upgrade().map(AppState)
    }
}

impl AppState {
    pub(crate) fn downgrade(&self) -> WeakAppState {
        WeakAppState(Arc::downgrade(&self.0))
    }
}

/// Fault points: steps a test can make the server skip, as if it stopped right before them.
#[derive(Debug, Default)]
struct Faults {
    /// Skip everything after a write's commit that records it in the audit log.
    crash_before_audit: std::sync::atomic::AtomicBool,
}

impl AppState {
    /// Fails when the data directory holds a gazetteer that cannot be read.
    pub fn new(store: Arc<dyn Store>, auth: shikong_auth::AuthStore, config: ServerConfig) -> anyhow::Result<Self> {
        let gazetteer = Arc::new(shikong_gazetteer::LiveGazetteer::open(&config.data_dir)?);
        let geocode_jobs = Arc::new(geocode::BatchJobs::open(&config.data_dir, config.geocode_jobs.clone())?);
        let processes = Arc::new(processes::ProcessJobs::open(&config.data_dir, config.processes.clone())?);
        let tiles = Arc::new(shikong_tileserver::TileService::new(
            shikong_tileserver::TileConfig::new(config.data_dir.join("tiles"))
                .with_disk_budget(config.tile_cache_bytes),
        ));
        let calendar = Arc::new(LiveCalendar::open(&config.data_dir)?);
        let cases = Arc::new(cases::Cases::open(&config.data_dir)?);
        let events = events::EventBus::new(config.events.clone());
        let services = Arc::new(services::Services::new(config.services.clone()));
        let state = AppState(Arc::new(StateParts {
            store,
            auth: Arc::new(auth),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            tiles,
            gazetteer,
            geocode_jobs,
            processes,
            calendar,
            cases,
            events,
            faults: Arc::default(),
            after_commit: Arc::default(),
            sta: Arc::default(),
            alerts: Arc::default(),
            catalog: Arc::default(),
            services,
        }));
        state.catalog.add_source(Arc::new(catalog::services_source::ServicesSource));
        state.catalog.add_source(Arc::new(catalog::harvested_source::HarvestedSource::default()));
        // What a crash left between a write's commit and its audit row, and between an
        // attachment's rename into place and its record.
        state.index_conflicts_once();
        let appended = audit_outbox::drain(&state);
        if appended > 0 {
            tracing::warn!(appended, "audit rows of writes committed before a crash appended at start");
        }
        after_commit::spawn(&state);
        alerts::worker::spawn(&state);
        processes::spawn_workers(&state);
        services::spawn_flusher(&state);
        state.scan_blobs_in_background();
        state.events.watch_store(state.store.clone());
        Ok(state)
    }

    /// Builds the conflict index (`GET /sync/conflicts`) from every stored document, once per
    /// data folder (the marker file says it was done): a store whose documents were merged before
    /// the index existed (store schema 7) would otherwise list none of its older conflicts.
    /// Every merge keeps the index up to date after that. A failure is logged, not fatal: the
    /// data is intact and the next start tries again.
    fn index_conflicts_once(&self) {
        let marker = self.config.data_dir.join(CONFLICT_INDEX_MARKER);
        if marker.exists() {
            return;
        }
        match shikong_sync_engine::conflicts::reindex(self.store(), "system:conflicts") {
            Ok(open) => {
                if open > 0 {
                    tracing::info!(open, "conflict index built from the stored documents");
                }
                if let Err(e) = std::fs::write(&marker, b"conflict index built\n") {
                    tracing::warn!(error = %e, file = %marker.display(), "cannot record that the conflict index is built");
                }
            }
            Err(e) => tracing::error!(error = %e, "building the conflict index failed (tried again at the next start)"),
        }
    }

    /// The start-up scan of `DIR/blobs` for files renamed into place but never recorded
    /// (`shikong_sync_engine::blobs::scan_unrecorded`), on a thread of its own: it hashes files,
    /// and the server answers meanwhile (a download or upload of such a file recovers it too).
    fn scan_blobs_in_background(&self) {
        let dir = self.blob_dir();
        if !dir.is_dir() {
            return;
        }
        let store = self.store.clone();
        let started = std::time::SystemTime::now();
        let spawned = std::thread::Builder::new().name("blob-scan".into()).spawn(move || {
            let limits = shikong_sync_engine::blobs::ScanLimits::default();
            match shikong_sync_engine::blobs::scan_unrecorded(store.as_ref(), &dir, started, limits) {
                Ok(s) => {
                    for e in &s.errors {
                        tracing::warn!(error = %e, "attachment scan");
                    }
                    tracing::info!(
                        files = s.files,
                        recorded = s.recorded,
                        removed = s.removed,
                        deferred = s.deferred,
                        hashed_bytes = s.hashed_bytes,
                        "attachment scan at start: files without their record recorded, damaged ones removed"
                    );
                }
                Err(e) => tracing::error!(error = %e, "attachment scan at start failed"),
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the attachment scan");
        }
    }

    /// Fault point for tests: while on, the server behaves as if it stopped right after each
    /// write's commit, before the audit log recorded it (the crash window of issue 14).
    #[doc(hidden)]
    pub fn simulate_crash_before_audit(&self, on: bool) {
        self.faults.crash_before_audit.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    fn crashed_before_audit(&self) -> bool {
        self.faults.crash_before_audit.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }

    /// After a commit through the server: drops the cached map tiles the new versions touch (read
    /// from the store's history). The gazetteer catches up by itself before its next answer.
    /// The write already happened, so a failure here is logged (tile requests also catch up
    /// within the freshness interval).
    pub fn committed(&self) {
        if let Err(e) = self.tiles.catch_up(self.store()) {
            tracing::warn!(error = %e, "tile invalidation after a commit failed");
        }
    }

    /// Where attachment bytes live.
    pub fn blob_dir(&self) -> std::path::PathBuf {
        self.config.data_dir.join("blobs")
    }

    /// The base URL for links in responses.
    pub fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(u) = &self.config.public_url {
            return u.trim_end_matches('/').to_owned();
        }
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
        let proto = if self.config.tls {
            "https"
        } else {
            headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http")
        };
        format!("{proto}://{host}")
    }
}

/// At most this many store calls run at once (two per core): more threads than cores only add
/// context switches and stretch tail latency, while queued requests wait cheaply in async land.
fn store_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(store_permit_count()))
}

fn store_permit_count() -> usize {
    std::thread::available_parallelism().map_or(4, |n| n.get() * 2)
}

/// Store calls running now (permits taken): what the tests watch to see cancelled work end.
pub fn store_work_in_flight() -> usize {
    store_permit_count().saturating_sub(store_permits().available_permits())
}

tokio::task_local! {
    /// When the current request's time is up (set by the router for every request).
    static DEADLINE: std::time::Instant;
    /// The current request may be served from a read replica (`replica_reads.rs`).
    static REPLICA_READABLE: bool;
}

/// Runs blocking store work off the async threads, within the concurrency budget.
///
/// The permit travels with the work and is released when the work really ends, not when the
/// request gives up: a timed-out request's work still counts against the budget until it stops.
/// And it stops: the work runs under a [`shikong_store::cancel`] token that is cancelled when
/// this future is dropped (timeout, client gone) or when the request's deadline passes; store
/// statements are then interrupted and long loops return `StoreError::Cancelled`.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    use shikong_store::cancel::{self, CancelToken};
    let permit = store_permits().acquire().await.map_err(ApiError::internal)?;
    let token = CancelToken::new(DEADLINE.try_with(|d| *d).ok());
    let replica = REPLICA_READABLE.try_with(|r| *r).unwrap_or(false);
    let guard = token.drop_guard();
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        cancel::scope(&token, || {
            // Queued past its deadline, or abandoned while waiting for a thread: never started.
            cancel::check()?;
            if replica { shikong_store::read_route::replica_allowed(f) } else { f() }
        })
    });
    let result = work.await.map_err(ApiError::internal)?;
    guard.disarm();
    result
}

/// Sets the request's deadline (the timeout from now) for [`blocking`] to hand to the store, and
/// whether a read replica may serve its reads.
async fn with_deadline(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let deadline = std::time::Instant::now() + state.config.timeout;
    let replica = replica_reads::replica_readable(req.method(), req.uri().path());
    DEADLINE.scope(deadline, REPLICA_READABLE.scope(replica, next.run(req))).await
}

/// A JSON body (`application/json`) from any serialisable value.
pub(crate) fn json_ok<T: serde::Serialize>(v: &T) -> ApiResult<axum::response::Response> {
    let body = serde_json::to_vec(v).map_err(ApiError::internal)?;
    Ok(axum::response::IntoResponse::into_response(([(header::CONTENT_TYPE, "application/json")], body)))
}

/// The router with every route and layer.
pub fn app(state: AppState) -> Router {
    let cors = if state.config.cors_origins.is_empty() {
        None
    } else if state.config.cors_origins.iter().any(|o| o == "*") {
        Some(CorsLayer::new().allow_origin(Any).allow_headers(Any).allow_methods(Any))
    } else {
        let origins = state.config.cors_origins.iter().filter_map(|o| o.parse().ok()).collect::<Vec<_>>();
        Some(CorsLayer::new().allow_origin(AllowOrigin::list(origins)).allow_headers(Any).allow_methods(Any))
    };
    let router = Router::new()
        .route("/healthz", get(health))
        .route("/metrics", get(metrics::render))
        .merge(ogc::routes())
        .merge(auth_routes::routes())
        .merge(sync_routes::routes())
        .merge(conflicts::routes())
        .merge(tiles::routes())
        .merge(geocode::routes())
        .merge(reports::routes())
        .merge(stats::routes())
        .merge(calendar::routes())
        .merge(cases::routes())
        .merge(cases::tasks::routes())
        .merge(events::routes())
        .merge(sta::routes())
        .merge(alerts::routes())
        .merge(processes::routes())
        .merge(catalog::routes())
        .merge(services::routes())
        .merge(harvest::routes())
        .merge(system::routes())
        .merge(admin_console::routes())
        .fallback(|| async { ApiError::not_found("no such resource") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), with_deadline))
        .layer(axum::middleware::from_fn_with_state(state.clone(), metrics::track))
        .layer(DefaultBodyLimit::max(state.config.max_body))
        .layer(CompressionLayer::new())
        // Devices gzip push bodies (weak links); the body limit applies to the decompressed size.
        .layer(tower_http::decompression::RequestDecompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::REQUEST_TIMEOUT, state.config.timeout))
        .layer(TraceLayer::new_for_http())
        .layer(CatchPanicLayer::custom(|_| ApiError::internal("handler panicked").into_response_parts()))
        .with_state(state);
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

trait IntoResponseParts {
    fn into_response_parts(self) -> axum::response::Response;
}

impl IntoResponseParts for ApiError {
    fn into_response_parts(self) -> axum::response::Response {
        axum::response::IntoResponse::into_response(self)
    }
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// The certificate chain and private key (PEM files) of an HTTPS server.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

/// How [`serve`] listens and how it stops.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// HTTPS (rustls) with this certificate instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// After SIGTERM/SIGINT, requests in flight get this long to finish; then every connection is
    /// closed and `serve` returns, whatever still runs.
    pub shutdown_grace: Duration,
    /// A client must send a request's headers (and finish the TLS handshake) within this time,
    /// so idle or trickling connections (slowloris) cannot pile up.
    pub header_timeout: Duration,
}

impl ServeOptions {
    pub fn new(listen: SocketAddr) -> Self {
        ServeOptions {
            listen,
            tls: None,
            shutdown_grace: Duration::from_secs(10),
            header_timeout: Duration::from_secs(30),
        }
    }
}

/// Errors of [`serve`] before it listens: the address, or the certificate files.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: SocketAddr, source: std::io::Error },
    #[error("{path}: {reason}")]
    Tls { path: std::path::PathBuf, reason: String },
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

/// Reads the PEM certificate chain and key into a rustls server configuration (aws-lc-rs
/// provider, TLS 1.2 and 1.3, ALPN h2 and http/1.1).
pub fn tls_config(files: &TlsFiles) -> Result<rustls::ServerConfig, ServeError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let bad = |path: &std::path::Path, reason: String| ServeError::Tls { path: path.to_owned(), reason };
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| bad(&files.cert, format!("not a PEM certificate chain: {e}")))?;
    if certs.is_empty() {
        return Err(bad(&files.cert, "no certificate (PEM `BEGIN CERTIFICATE`) in the file".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(&files.key).map_err(|e| bad(&files.key, format!("not a PEM private key: {e}")))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(&files.cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| bad(&files.key, format!("does not match the certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The overdue scan of the case runtime, every `cases::overdue::SCAN_EVERY`, for the server's life.
async fn scan_overdue_cases(state: AppState) {
    let mut tick = tokio::time::interval(cases::overdue::SCAN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.clone();
        match tokio::task::spawn_blocking(move || cases::overdue::scan(&st, jiff::Timestamp::now())).await {
            Ok(Ok(r)) if r.marked > 0 => tracing::info!(marked = r.marked, "cases marked overdue"),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e.detail, "overdue scan failed"),
            Err(e) => tracing::warn!(error = %e, "overdue scan panicked"),
        }
    }
}

/// The alert rules' tick (silence, other processes' changes), every `alerts::TICK_EVERY`.
async fn tick_alerts(state: AppState) {
    let mut tick = tokio::time::interval(alerts::TICK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.clone();
        match tokio::task::spawn_blocking(move || alerts::tick(&st, st.config.alert_clock.now())).await {
            Ok(Ok(r)) if r.opened + r.closed > 0 => {
                tracing::info!(opened = r.opened, closed = r.closed, "silence alerts")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = %e.detail, "alert tick failed"),
            Err(e) => tracing::warn!(error = %e, "alert tick panicked"),
        }
    }
}

/// Serves until SIGINT/SIGTERM: then stops accepting, gives requests in flight
/// `shutdown_grace`, closes what remains and returns. `on_bound` receives the bound address.
/// Blocking work a closed request left running is not waited for here: the caller's runtime
/// must be shut down with a timeout (`Runtime::shutdown_timeout`).
pub async fn serve(state: AppState, opts: ServeOptions, on_bound: impl FnOnce(SocketAddr)) -> Result<(), ServeError> {
    let tls = opts.tls.as_ref().map(tls_config).transpose()?;
    let listener =
        std::net::TcpListener::bind(opts.listen).map_err(|source| ServeError::Listen { addr: opts.listen, source })?;
    let bound = listener.local_addr()?;
    state.set_bound_address(if tls.is_some() { "https" } else { "http" }, bound);
    on_bound(bound);
    let handle = axum_server::Handle::new();
    let signal = handle.clone();
    let grace = opts.shutdown_grace;
    tokio::spawn(async move {
        shutdown_signal().await;
        signal.graceful_shutdown(Some(grace));
    });
    tokio::spawn(scan_overdue_cases(state.clone()));
    tokio::spawn(tick_alerts(state.clone()));
    tokio::spawn(services::health::run(state.clone()));
    tokio::spawn(harvest::schedule(state.clone()));
    tokio::spawn(system::run(state.clone()));
    let make = app(state).into_make_service_with_connect_info::<SocketAddr>();
    // TCP_NODELAY on every accepted connection: an answer written in several pieces (a streamed
    // tile through the service proxy, a chunked page) otherwise waits for the client's delayed
    // ACK under Nagle's algorithm — a 40 ms stall on a few percent of requests.
    let nodelay = axum_server::accept::NoDelayAcceptor::new();
    match tls {
        Some(config) => {
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(
                axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(config)),
            )
            .handshake_timeout(opts.header_timeout)
            .acceptor(nodelay);
            let mut server = axum_server::from_tcp(listener)?.acceptor(acceptor).handle(handle);
            // HTTP/1 keep-alive requests after the first (hyper's timer is installed by axum-server).
            server.http_builder().http1().header_read_timeout(Some(opts.header_timeout));
            server.first_request_timeout(opts.header_timeout).serve(make).await?;
        }
        None => {
            let mut server = axum_server::from_tcp(listener)?.acceptor(nodelay).handle(handle);
            // HTTP/1 keep-alive requests after the first (hyper's timer is installed by axum-server).
            server.http_builder().http1().header_read_timeout(Some(opts.header_timeout));
            server.first_request_timeout(opts.header_timeout).serve(make).await?;
        }
    }
    tracing::info!("server stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests (bounded by the grace period)");
}
