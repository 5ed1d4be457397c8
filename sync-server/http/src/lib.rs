//! The HTTP service, one module per protocol: OGC API – Features ([`ogc`]), map tiles and styles
//! (`tiles/`: XYZ, TileJSON, OGC API – Tiles, WMTS, styles, packages), sync (`sync_routes`),
//! authentication and administration (`auth_routes`), geocoding (`geocode`), citizens' reports
//! (`reports`), OpenAPI, health and metrics. `app(state)` builds the router (tested in process
//! with `oneshot`); `serve` runs it on a listener with graceful shutdown (`shikong serve`).
//!
//! Architecture invariant: handlers parse and check input, then run store and engine work through
//! [`blocking`] (off the async threads, bounded); every error leaves through [`ApiError`]
//! (problem+json), the one error-to-HTTP mapping.

#![forbid(unsafe_code)]

mod access;
mod auth_routes;
mod body;
mod coords;
mod geocode;
mod html;
mod metrics;
mod ogc;
mod openapi;
mod params;
pub mod problem;
mod qr;
mod reports;
mod sync_routes;
mod tiles;

use std::net::SocketAddr;
use std::sync::Arc;
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

pub use problem::{ApiError, ApiResult};

/// Settings of a running server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest accepted request body, bytes.
    pub max_body: usize,
    /// Largest `limit` a client may ask for.
    pub max_limit: usize,
    /// Request timeout.
    pub timeout: Duration,
    /// Allowed CORS origins (`*` for any); empty: no CORS headers.
    pub cors_origins: Vec<String>,
    /// The URL clients reach the server at, for links (default: from the Host header).
    pub public_url: Option<String>,
    /// Largest attachment accepted, bytes.
    pub max_blob: u64,
    /// The data directory (attachments live in `DIR/blobs`).
    pub data_dir: std::path::PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_body: 16 * 1024 * 1024,
            max_limit: 10_000,
            timeout: Duration::from_secs(60),
            cors_origins: Vec::new(),
            public_url: None,
            max_blob: 64 * 1024 * 1024,
            data_dir: std::path::PathBuf::from("."),
        }
    }
}

/// What every handler shares.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub auth: Arc<shikong_auth::AuthStore>,
    pub config: Arc<ServerConfig>,
    pub metrics: Arc<metrics::Metrics>,
    /// Vector tile cache, raster sets, styles and offline packages (files in `DATA/tiles`).
    pub tiles: Arc<shikong_tileserver::TileService>,
    /// The address engine, caught up with the store before each answer.
    pub gazetteer: Arc<shikong_gazetteer::LiveGazetteer>,
    pub geocode_jobs: Arc<geocode::BatchJobs>,
}

impl AppState {
    /// Fails when the data directory holds a gazetteer that cannot be read.
    pub fn new(store: Arc<dyn Store>, auth: shikong_auth::AuthStore, config: ServerConfig) -> anyhow::Result<Self> {
        let gazetteer = Arc::new(shikong_gazetteer::LiveGazetteer::open(&config.data_dir)?);
        let tiles = Arc::new(shikong_tileserver::TileService::new(shikong_tileserver::TileConfig::new(
            config.data_dir.join("tiles"),
        )));
        Ok(AppState {
            store,
            auth: Arc::new(auth),
            config: Arc::new(config),
            metrics: Arc::new(metrics::Metrics::new()),
            tiles,
            gazetteer,
            geocode_jobs: Arc::default(),
        })
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
        let proto = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
        format!("{proto}://{host}")
    }
}

/// At most this many store calls run at once (two per core): more threads than cores only add
/// context switches and stretch tail latency, while queued requests wait cheaply in async land.
fn store_permits() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| tokio::sync::Semaphore::new(std::thread::available_parallelism().map_or(4, |n| n.get() * 2)))
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    let _permit = store_permits().acquire().await.map_err(ApiError::internal)?;
    tokio::task::spawn_blocking(f).await.map_err(ApiError::internal)?
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
        .merge(tiles::routes())
        .merge(geocode::routes())
        .merge(reports::routes())
        .fallback(|| async { ApiError::not_found("no such resource") })
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

/// Serves until SIGINT/SIGTERM, then finishes in-flight requests. `on_bound` receives the bound
/// address (port 0 picks a free port).
pub async fn serve(state: AppState, listen: SocketAddr, on_bound: impl FnOnce(SocketAddr)) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    on_bound(listener.local_addr()?);
    axum::serve(listener, app(state).into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown_signal())
        .await?;
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
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
