//! OGC SensorThings API 1.1 under `/sta/v1.1` (issue 18), wired to storage.
//!
//! Why here and split this way: the wire format, paths, query options, deep insert planning and
//! the dataArray reader are pure and live in `shikong-sta`; this module only maps them to the
//! versioned store (Things, Locations, Sensors, ObservedProperties, Datastreams,
//! MultiDatastreams, FeaturesOfInterest: features of system layers `sta_*`, `entities.rs`) and
//! to the time-series store (Observations: readings, `observations.rs`). `read.rs` answers GETs
//! (query options, `$expand`, navigation), `write.rs` creates, updates and deletes.
//!
//! Rules (ARCHITECTURE.md, "SensorThings API"): each entity set is governed by its layer's
//! permissions (Observations by `sta_datastream`'s, HistoricalLocations by `sta_thing`'s); reads
//! need read permission, every write needs edit permission on each layer it writes.

mod entities;
mod foi;
mod intake;
mod latest;
pub mod live;
pub mod mqtt;
mod multi;
mod obs_write;
mod observations;
mod read;
mod series;
pub mod stream;
mod write;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use shikong_sta::{ResourcePath, StaError};
use shikong_timeseries::TimeSeries;

use super::access::Caller;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking};

/// Where the API is mounted.
pub const ROOT: &str = "/sta/v1.1";

/// What the SensorThings routes keep between requests.
#[derive(Debug, Default)]
pub struct StaState {
    /// The `sta_*` layers exist (checked once per process; made on first use).
    layers_ready: OnceLock<()>,
    /// The readings' store: set by `shikong serve` (PostgreSQL: the store's database), else
    /// `DATA/timeseries.sqlite` opened on first use.
    series: OnceLock<Arc<dyn TimeSeries>>,
    /// Every newly stored observation, whichever way it came (`stream.rs`).
    stream: stream::ObservationStream,
    /// The relay of new readings to the live channel (`live.rs`).
    live: live::LiveReadings,
    /// Datastreams checked lately (`observations::DefinedStreams`).
    defined: observations::DefinedStreams,
    /// Held while the SQLite series is opened on first use: concurrent first callers (several
    /// MQTT publishers at start) open it once, not each its own writer.
    opening: std::sync::Mutex<()>,
    /// Where MQTT clients connect, once `start_mqtt` ran (the landing page lists it).
    mqtt: OnceLock<mqtt::MqttEndpoint>,
    /// `scheme://address` the HTTP server is bound to (links in MQTT messages, which have no
    /// Host header), set by `serve`.
    links_base: OnceLock<String>,
}

impl AppState {
    /// Gives the SensorThings API its time-series store (before serving). Without it, the
    /// SQLite file `DATA/timeseries.sqlite` is opened on first use.
    pub fn set_timeseries(&self, series: Arc<dyn TimeSeries>) {
        if self.sta.series.set(series).is_err() {
            tracing::warn!("the time-series store was already set; the new one is ignored");
        }
    }

    /// The observation stream: every observation newly stored (HTTP, dataArray, MQTT) after its
    /// durable commit, one batch per append (`sta/stream.rs`). Subscribe before serving to miss
    /// nothing.
    pub fn observations(&self) -> &stream::ObservationStream {
        &self.sta.stream
    }

    /// The service root for links in MQTT messages: the public URL, else the bound address.
    pub(crate) fn links_base(&self) -> Option<String> {
        let base = match &self.config.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => self.sta.links_base.get()?.clone(),
        };
        Some(format!("{base}{ROOT}"))
    }

    /// Records the address `serve` bound (for links in MQTT messages).
    pub(crate) fn set_bound_address(&self, scheme: &str, addr: std::net::SocketAddr) {
        let _ = self.sta.links_base.set(format!("{scheme}://{addr}"));
    }

    /// The time-series store (opening the data folder's SQLite file the first time).
    pub(crate) fn timeseries(&self) -> ApiResult<Arc<dyn TimeSeries>> {
        if let Some(s) = self.sta.series.get() {
            return Ok(s.clone());
        }
        let _opening = self.sta.opening.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(s) = self.sta.series.get() {
            return Ok(s.clone());
        }
        let opened = shikong_timeseries::sqlite::SqliteSeries::open_in(
            &self.config.data_dir,
            Arc::new(shikong_model::clock::SystemClock),
        )
        .map_err(ApiError::internal)?;
        Ok(self.sta.series.get_or_init(|| Arc::new(opened)).clone())
    }
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(ROOT, any(handle))
        .route(&format!("{ROOT}/{{*rest}}"), any(handle))
        // the live view (`latest.rs`, `series.rs`): a literal segment wins over `{collection_id}`
        .route("/collections/sta_latest", axum::routing::get(latest::collection))
        .route("/collections/sta_latest/items", axum::routing::get(latest::items))
        .route("/sta/series/{datastream}", axum::routing::get(series::series))
}

/// What a handler needs of the request.
pub(crate) struct Req {
    pub method: Method,
    /// The service root URL for links (`http://host/sta/v1.1`).
    pub base: String,
    /// The path after the root, percent-encoded as received.
    pub path: String,
    /// The raw query string (without `?`).
    pub query: String,
    pub caller: Caller,
    pub body: Bytes,
}

async fn handle(
    State(st): State<AppState>,
    method: Method,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    caller: Caller,
    body: Bytes,
) -> Response {
    let path = uri.path().strip_prefix(ROOT).unwrap_or("").to_owned();
    let req = Req {
        method,
        base: format!("{}{ROOT}", st.base_url(&headers)),
        path,
        query: uri.query().unwrap_or("").to_owned(),
        caller,
        body,
    };
    match blocking(move || dispatch(&st, req)).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// Runs on a blocking thread: every store and time-series call below is synchronous.
fn dispatch(st: &AppState, req: Req) -> ApiResult<Response> {
    let (path, opts) = shikong_sta::parse_request(&req.path, &req.query).map_err(sta_error)?;
    match (&req.method, path) {
        (&Method::GET, ResourcePath::ServiceRoot) => {
            let mqtt: Vec<String> = st.sta.mqtt.get().map(|e| e.url(&req.base)).into_iter().collect();
            Ok(json_response(StatusCode::OK, &read::service_root(&req.base, &mqtt)))
        }
        (&Method::POST, ResourcePath::CreateObservations) => observations::create_bulk(st, &req),
        (&Method::GET, ResourcePath::Resource(r)) => read::get(st, &req, &r, &opts),
        (&Method::POST, ResourcePath::Resource(r)) => write::post(st, &req, &r),
        (&Method::PATCH, ResourcePath::Resource(r)) => write::patch(st, &req, &r),
        (&Method::PUT, ResourcePath::Resource(r)) => write::put(st, &req, &r),
        (&Method::DELETE, ResourcePath::Resource(r)) => write::delete(st, &req, &r),
        (m, _) => Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!(
                "{m} is not supported here: entities take GET, POST (collections), PATCH, PUT and DELETE (one entity)"
            ),
        )),
    }
}

/// A `shikong-sta` refusal as problem+json naming where: the body member (`field`, a JSON
/// pointer), the path segment, or the query option and character position.
pub(crate) fn sta_error(e: StaError) -> ApiError {
    let detail = e.to_string();
    match e {
        StaError::Body { path, .. } => ApiError::bad_body(detail).with("field", path),
        StaError::Path { segment, text, .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "invalid-path", detail).with("segment", segment).with("text", text)
        }
        StaError::Query { option, position, .. } => ApiError::bad_parameter(&option, detail).with("position", position),
        StaError::TooLarge { what, max, .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too-large", detail).with("limit", what).with("max", max)
        }
        other => ApiError::bad_body(other.to_string()),
    }
}

pub(crate) fn json_response(status: StatusCode, v: &serde_json::Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_default();
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// 201 with `Location` and the entity.
pub(crate) fn created(entity: &serde_json::Value) -> Response {
    let mut r = json_response(StatusCode::CREATED, entity);
    if let Some(link) = entity.get("@iot.selfLink").and_then(|l| l.as_str())
        && let Ok(v) = header::HeaderValue::from_str(link)
    {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}
