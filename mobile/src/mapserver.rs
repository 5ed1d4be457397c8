//! The map's loopback server: MapLibre in the webview asks it for its script, the style, the
//! offline basemap tiles (the replica's MBTiles package) and the replica's own vector tiles,
//! encoded on demand from the replica file with the same encoder as the server (`shikong-tiles`).
//! Tiles of the replica are never cached: an edit shows on the next redraw.
//!
//! Listens on 127.0.0.1 only, on a port the OS picks, and answers only the app's own page: every
//! URL starts with a per-launch random secret (`http://127.0.0.1:PORT/SECRET/style.json`), which
//! only the app knows (any other local page or process gets 404); the `Host` header must be that
//! address (a DNS-rebinding page names its own host: 403); and CORS lets only the app's page
//! origins read the answers (the desktop webview's custom scheme, or the liveview page).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value as Json, json};
use shikong_app_core::AppError;
use shikong_model::{GeometryKind, Value};
use shikong_replica::Replica;
use shikong_tiles::{EncodeOptions, LayerBuilder, TileMatrixSet};

static MAP_JS: &[u8] = include_bytes!("../web/dist/mobile-map.js");
static MAP_CSS: &[u8] = include_bytes!("../web/dist/mobile-map.css");

/// At most this many features per layer and tile below zoom 15 (dense point layers at city
/// zooms): a deterministic stride keeps the map drawable; zoom in for every feature.
const MAX_PER_TILE: usize = 20_000;

/// Layer colours (replica layers in order).
const PALETTE: [&str; 6] = ["#e8590c", "#1971c2", "#2f9e44", "#9c36b5", "#c2255c", "#0c8599"];

#[derive(Debug, Default)]
struct Sources {
    replica: Option<Replica>,
    basemap: Option<rusqlite::Connection>,
}

/// What the map shows; switched when the user opens another offline area.
#[derive(Debug, Clone, Default)]
pub struct MapSources {
    inner: Arc<Mutex<Sources>>,
}

impl MapSources {
    /// Shows `replica` (and its basemap, when the file exists); `None` shows nothing.
    pub fn show(&self, replica: Option<&Path>, basemap: Option<&Path>) -> Result<(), AppError> {
        self.show_area(replica, basemap).map(|_| ())
    }

    /// Like [`MapSources::show`], and returns the replica's extent (lon/lat), where the map
    /// starts. Opens the files: call it off the render path.
    pub fn show_area(&self, replica: Option<&Path>, basemap: Option<&Path>) -> Result<Option<[f64; 4]>, AppError> {
        let r = replica.map(Replica::open).transpose()?;
        let b = match basemap.filter(|p| p.exists()) {
            Some(p) => Some(
                rusqlite::Connection::open_with_flags(p, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .map_err(|e| AppError::Corrupt { path: p.to_owned(), reason: e.to_string() })?,
            ),
            None => None,
        };
        let ext = r.as_ref().and_then(extent);
        let mut s = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.replica = r;
        s.basemap = b;
        Ok(ext)
    }

    /// The MapLibre style of what is shown: basemap layers under the replica's layers.
    pub fn style(&self, base: &str) -> Json {
        let s = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut sources = serde_json::Map::new();
        let mut layers =
            vec![json!({"id": "background", "type": "background", "paint": {"background-color": "#f2efe9"}})];
        if s.basemap.is_some() {
            sources.insert(
                "basemap".into(),
                json!({"type": "vector", "tiles": [format!("{base}/basemap/{{z}}/{{x}}/{{y}}.mvt")], "minzoom": 0, "maxzoom": 16}),
            );
            layers.push(json!({"id": "base-road-casing", "type": "line", "source": "basemap", "source-layer": "road",
                "metadata": {"shikong:layer": "basemap"},
                "paint": {"line-color": "#c9c3b8", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 2, 17, 14]}}));
            layers.push(json!({"id": "base-road", "type": "line", "source": "basemap", "source-layer": "road",
                "metadata": {"shikong:layer": "basemap"},
                "paint": {"line-color": "#ffffff", "line-width": ["interpolate", ["linear"], ["zoom"], 12, 1, 17, 10]}}));
            layers.push(
                json!({"id": "base-poi", "type": "circle", "source": "basemap", "source-layer": "poi", "minzoom": 14,
                "metadata": {"shikong:layer": "basemap"},
                "paint": {"circle-radius": 3, "circle-color": "#868e96"}}),
            );
        }
        if let Some(r) = &s.replica {
            sources.insert(
                "replica".into(),
                json!({"type": "vector", "tiles": [format!("{base}/replica/{{z}}/{{x}}/{{y}}.mvt")], "minzoom": 10, "maxzoom": 18}),
            );
            for (i, l) in r.layers().iter().enumerate() {
                let color = PALETTE[i % PALETTE.len()];
                let meta = json!({"shikong:layer": l.name, "shikong:title": l.display_name()});
                let id = |suffix: &str| format!("replica-{}-{suffix}", l.name);
                let common = |suffix: &str, ty: &str, filter: Json, paint: Json| {
                    json!({"id": id(suffix), "type": ty, "source": "replica", "source-layer": l.name,
                           "metadata": meta, "filter": filter, "paint": paint})
                };
                match l.geometry_kind {
                    GeometryKind::Polygon | GeometryKind::MultiPolygon => {
                        layers.push(common(
                            "fill",
                            "fill",
                            json!(["==", ["geometry-type"], "Polygon"]),
                            json!({"fill-color": color, "fill-opacity": 0.2}),
                        ));
                        layers.push(common(
                            "outline",
                            "line",
                            json!(["==", ["geometry-type"], "Polygon"]),
                            json!({"line-color": color, "line-width": 1.5}),
                        ));
                    }
                    GeometryKind::LineString | GeometryKind::MultiLineString => {
                        layers.push(common(
                            "line",
                            "line",
                            json!(["==", ["geometry-type"], "LineString"]),
                            json!({"line-color": color, "line-width": 3}),
                        ));
                    }
                    _ => {
                        layers.push(common(
                            "point",
                            "circle",
                            json!(["==", ["geometry-type"], "Point"]),
                            json!({"circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 2, 17, 6],
                                   "circle-color": ["case", ["==", ["get", "_local"], "pending"], "#fab005", color],
                                   "circle-stroke-color": "#ffffff", "circle-stroke-width": 1}),
                        ));
                    }
                }
            }
        }
        json!({"version": 8, "name": "shikong offline", "sources": sources, "layers": layers})
    }

    /// The replica's layers as one vector tile (gzip-free MVT; empty when nothing is there).
    pub fn replica_tile(&self, z: u8, x: u32, y: u32) -> Result<Vec<u8>, AppError> {
        let s = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let Some(r) = &s.replica else { return Ok(Vec::new()) };
        let tms = TileMatrixSet::WebMercatorQuad;
        let tile = tms.tile(z, x, y).map_err(|e| AppError::input("tile", e.to_string()))?;
        let opts = EncodeOptions::for_zoom(z);
        let bbox = tms.tile_bbox(tile, opts.buffer_fraction());
        let proj = tms.projector(tile, opts.extent);
        let mut tile = Vec::new();
        for l in r.layers() {
            let feats = r.query_bbox(&l.name, &bbox)?;
            let stride = if z < 15 && feats.len() > MAX_PER_TILE { feats.len().div_ceil(MAX_PER_TILE) } else { 1 };
            let mut b = LayerBuilder::new(&l.name, opts);
            for f in feats.iter().step_by(stride) {
                let Some(g) = &f.feature.geometry else { continue };
                let local = match f.status {
                    shikong_replica::LocalStatus::Synced => "synced",
                    shikong_replica::LocalStatus::Pending => "pending",
                    shikong_replica::LocalStatus::Rejected { .. } => "rejected",
                };
                let id = Value::Text(f.feature.id.to_string());
                let code = Value::Text(f.feature.code.clone());
                let st = Value::Text(local.to_owned());
                let props = [("id", &id), ("code", &code), ("_local", &st)].into_iter().chain(
                    f.feature
                        .properties
                        .iter()
                        .filter(|(_, v)| !matches!(v, Value::Attachments(_)))
                        .map(|(k, v)| (k.as_str(), v)),
                );
                b.add(g, &proj, None, props);
            }
            // A tile is a repeated `layers` field: one-layer tiles concatenated are one tile.
            tile.extend(b.into_tile_bytes());
        }
        Ok(tile)
    }

    /// A basemap tile as stored (gzip MVT), if the package has it.
    pub fn basemap_tile(&self, z: u8, x: u32, y: u32) -> Option<Vec<u8>> {
        let s = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let db = s.basemap.as_ref()?;
        let row = (1u64 << z).saturating_sub(1).saturating_sub(u64::from(y));
        db.query_row(
            "SELECT tile_data FROM tiles WHERE zoom_level = ?1 AND tile_column = ?2 AND tile_row = ?3",
            rusqlite::params![z, x, row],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .ok()
    }
}

/// A running map server.
#[derive(Debug, Clone)]
pub struct MapServer {
    pub addr: SocketAddr,
    /// The per-launch secret every URL of this server starts with.
    pub secret: String,
    pub sources: MapSources,
}

/// Origins of the desktop webview's page (dioxus-desktop's custom protocol: `dioxus://` on
/// Linux and macOS, `http(s)://dioxus.index.html` on Windows and Android).
const WEBVIEW_ORIGINS: [&str; 3] = ["dioxus://index.html", "http://dioxus.index.html", "https://dioxus.index.html"];

/// 128 random bits as hex: the map server's path secret, the liveview's sign-in key.
pub fn random_secret() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl MapServer {
    /// The URL prefix of everything this server serves (address and secret).
    pub fn base(&self) -> String {
        format!("http://{}/{}", self.addr, self.secret)
    }

    /// Binds 127.0.0.1:0 and serves the desktop webview until the runtime ends.
    pub async fn start(sources: MapSources) -> std::io::Result<MapServer> {
        Self::start_for(sources, &[]).await
    }

    /// Like [`MapServer::start`], also letting pages of `origins` (e.g. the liveview's
    /// `http://127.0.0.1:PORT`) read the map.
    pub async fn start_for(sources: MapSources, origins: &[String]) -> std::io::Result<MapServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let server = MapServer { addr, secret: random_secret()?, sources };
        let app = router(&server, origins);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!("map server: {e}");
            }
        });
        Ok(server)
    }

    /// Starts on a thread of its own (for callers without a Tokio runtime, e.g. the desktop
    /// launcher before the window exists).
    pub fn start_blocking(sources: MapSources) -> std::io::Result<MapServer> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("map-server".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            };
            rt.block_on(async move {
                let s = MapServer::start(sources).await;
                let _ = tx.send(s);
                std::future::pending::<()>().await;
            });
        })?;
        rx.recv().map_err(|e| std::io::Error::other(e.to_string()))?
    }
}

#[derive(Clone)]
struct Ctx {
    sources: MapSources,
    base: String,
}

/// The routes under `/SECRET`, the Host check and the CORS allow-list of `server`.
fn router(server: &MapServer, origins: &[String]) -> Router {
    let allowed: Vec<header::HeaderValue> = WEBVIEW_ORIGINS
        .iter()
        .copied()
        .chain(origins.iter().map(String::as_str))
        .filter_map(|o| o.parse().ok())
        .collect();
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::AllowOrigin::list(allowed))
        .allow_methods([axum::http::Method::GET]);
    let map = Router::new()
        .route(
            "/assets/mobile-map.js",
            get(|| async {
                // Logged: the desktop smoke test reads it as "the webview ran the app's map".
                tracing::info!("map script served");
                ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], MAP_JS)
            }),
        )
        .route(
            "/assets/mobile-map.css",
            get(|| async { ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], MAP_CSS) }),
        )
        .route("/style.json", get(style))
        .route("/replica/{z}/{x}/{y}", get(replica_tile))
        .route("/basemap/{z}/{x}/{y}", get(basemap_tile))
        .with_state(Ctx { sources: server.sources.clone(), base: server.base() });
    let host = server.addr.to_string();
    Router::new().nest(&format!("/{}", server.secret), map).layer(cors).layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let ours = req.headers().get(header::HOST).is_some_and(|h| h.as_bytes() == host.as_bytes());
            async move { if ours { next.run(req).await } else { StatusCode::FORBIDDEN.into_response() } }
        },
    ))
}

async fn style(State(c): State<Ctx>) -> Response {
    let s = tokio::task::spawn_blocking(move || c.sources.style(&c.base)).await.unwrap_or(Json::Null);
    ([(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], s.to_string()).into_response()
}

fn tile_address(z: u8, x: u32, y: &str) -> Option<(u8, u32, u32)> {
    let (y, _) = shikong_tiles::split_extension(y).ok()?;
    (z <= shikong_tiles::MAX_ZOOM).then_some((z, x, y))
}

async fn replica_tile(State(c): State<Ctx>, UrlPath((z, x, y)): UrlPath<(u8, u32, String)>) -> Response {
    let Some((z, x, y)) = tile_address(z, x, &y) else { return StatusCode::BAD_REQUEST.into_response() };
    match tokio::task::spawn_blocking(move || c.sources.replica_tile(z, x, y)).await {
        Ok(Ok(bytes)) if bytes.is_empty() => StatusCode::NO_CONTENT.into_response(),
        Ok(Ok(bytes)) => {
            ([(header::CONTENT_TYPE, "application/vnd.mapbox-vector-tile"), (header::CACHE_CONTROL, "no-store")], bytes)
                .into_response()
        }
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn basemap_tile(State(c): State<Ctx>, UrlPath((z, x, y)): UrlPath<(u8, u32, String)>) -> Response {
    let Some((z, x, y)) = tile_address(z, x, &y) else { return StatusCode::BAD_REQUEST.into_response() };
    match tokio::task::spawn_blocking(move || c.sources.basemap_tile(z, x, y)).await {
        Ok(Some(bytes)) if bytes.starts_with(&[0x1f, 0x8b]) => {
            ([(header::CONTENT_TYPE, "application/vnd.mapbox-vector-tile"), (header::CONTENT_ENCODING, "gzip")], bytes)
                .into_response()
        }
        Ok(Some(bytes)) => ([(header::CONTENT_TYPE, "application/vnd.mapbox-vector-tile")], bytes).into_response(),
        _ => StatusCode::NO_CONTENT.into_response(),
    }
}

/// The replica's extent (lon/lat) from its layers' R-tree bounds, for the first map view.
pub fn extent(replica: &Replica) -> Option<[f64; 4]> {
    let mut out: Option<[f64; 4]> = None;
    for l in replica.layers() {
        if let Ok(Some(b)) = replica.extent(&l.name) {
            out = Some(match out {
                None => [b.min_x, b.min_y, b.max_x, b.max_y],
                Some(o) => [o[0].min(b.min_x), o[1].min(b.min_y), o[2].max(b.max_x), o[3].max(b.max_y)],
            });
        }
    }
    out
}

/// Paths of what `id`'s map shows (the core's `Device::replica_path` and `basemap_path`, for
/// callers that have only the data folder).
pub fn paths(dir: &Path, id: &str) -> (PathBuf, PathBuf) {
    (dir.join("replicas").join(format!("{id}.gpkg")), dir.join("replicas").join(format!("{id}.mbtiles")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tower::ServiceExt as _;

    fn server() -> MapServer {
        MapServer {
            addr: "127.0.0.1:4321".parse().unwrap(),
            secret: random_secret().unwrap(),
            sources: MapSources::default(),
        }
    }

    async fn get(app: &Router, path: &str, host: &str, origin: Option<&str>) -> Response {
        let mut req = axum::http::Request::get(path).header(header::HOST, host);
        if let Some(o) = origin {
            req = req.header(header::ORIGIN, o);
        }
        app.clone().oneshot(req.body(axum::body::Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn only_the_apps_own_page_is_answered() {
        let s = server();
        let app = router(&s, &["http://127.0.0.1:5555".to_owned()]);
        let style = format!("/{}/style.json", s.secret);
        // With the secret and the server's own Host: the style.
        let r = get(&app, &style, "127.0.0.1:4321", None).await;
        assert_eq!(r.status(), StatusCode::OK);
        // Without the secret (or with another): nothing.
        for path in ["/style.json", "/assets/mobile-map.js", "/replica/15/1/1.mvt", "/0123/style.json"] {
            assert_eq!(get(&app, path, "127.0.0.1:4321", None).await.status(), StatusCode::NOT_FOUND, "{path}");
        }
        // A DNS-rebinding page names its own host.
        assert_eq!(get(&app, &style, "evil.example:4321", None).await.status(), StatusCode::FORBIDDEN);
        assert_eq!(get(&app, &style, "localhost:4321", None).await.status(), StatusCode::FORBIDDEN);
        // CORS: the webview's and the liveview page's origins may read; any other page may not.
        let allow = |r: &Response| r.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN).cloned();
        for origin in ["dioxus://index.html", "http://dioxus.index.html", "http://127.0.0.1:5555"] {
            let r = get(&app, &style, "127.0.0.1:4321", Some(origin)).await;
            assert_eq!(allow(&r).as_ref().map(|v| v.as_bytes()), Some(origin.as_bytes()), "{origin}");
        }
        let r = get(&app, &style, "127.0.0.1:4321", Some("http://evil.example")).await;
        assert_eq!(allow(&r), None, "no CORS grant for another origin");
        // Two launches have different secrets; the URLs the map gets carry it.
        assert_ne!(s.secret, server().secret);
        assert_eq!(s.secret.len(), 32);
        assert!(s.base().ends_with(&format!("/{}", s.secret)));
    }
}
