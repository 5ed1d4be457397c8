//! The in-process harness: prepared data directories (a store, users and their tokens), built once
//! per kind and copied for every test, and requests sent through `tower::ServiceExt::oneshot` on
//! `shikong_http::app(state)` — no socket, no process.
//!
//! A [`Template`] is built once (imports, demo data and password hashing are the slow part) and
//! kept as the files of its data directory in memory; [`Template::env`] writes them into a fresh
//! temporary directory and opens an [`AppState`] over it, so every test owns its state (writes
//! never leak into another test) and nothing is left on disk when it ends.
//!
//! Requests carry `Host: 127.0.0.1:8080` (links in responses start with [`BASE`]) and the
//! `ConnectInfo` a real listener would add (`serve` uses `into_make_service_with_connect_info`).
#![allow(dead_code)] // each test module uses a part of the harness

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use serde_json::{Value as Json, json};
use shikong_http::{AppState, ServerConfig};
use shikong_ingest::import::{ImportOptions, ToStoreFrame};
use shikong_store::FeatureStore;
use tower::ServiceExt as _;

/// The `Host` every request carries.
pub const HOST: &str = "127.0.0.1:8080";
/// The base URL of links in responses.
pub const BASE: &str = "http://127.0.0.1:8080";
/// Every fixture user's password.
pub const PASSWORD: &str = "城管巡查2025!";

/// One runtime for every test: requests are sent with `block_on`, so tests read like the blocking
/// HTTP clients they were first written with (and poll with `std::thread::sleep`).
static RUNTIME: LazyLock<tokio::runtime::Runtime> =
    LazyLock::new(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime"));

/// The runtime the in-process calls run on (for tests that also run MQTT clients and brokers).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    &RUNTIME
}

/// The server's state over an existing data directory, as `shikong serve --data DIR` opens it
/// (a second process over a test's directory).
pub fn state_in(dir: &Path) -> AppState {
    open_state(dir, ServerConfig { data_dir: dir.to_owned(), ..ServerConfig::default() })
}

/// The repository root (fixtures live in `tests/fixtures`, reference data in `.cache/data`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A file of `tests/fixtures`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures").join(name)
}

/// The reference data folder the demo loads; the test fails (never skips) without it.
pub fn reference() -> PathBuf {
    let d = root().join(".cache/data");
    assert!(
        d.join("china-division/areas.csv").is_file() && d.join("cpca/adcodes.csv").is_file(),
        "reference data missing in {}: run scripts/fetch-data.sh (scripts/test.sh does)",
        d.display()
    );
    d
}

/// Sends one request through the router; returns status, headers and the whole body.
pub async fn call(app: &Router, mut req: Request<Body>) -> (StatusCode, HeaderMap, Bytes) {
    req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000))));
    let Ok(resp) = app.clone().oneshot(req).await;
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.expect("read the response body");
    (parts.status, parts.headers, bytes)
}

// ---------------------------------------------------------------------------------------------
// Prepared data directories

/// A prepared data directory, held in memory: its files and the tokens issued to its users.
#[derive(Debug)]
pub struct Template {
    files: Vec<(PathBuf, Vec<u8>)>,
    tokens: HashMap<String, String>,
}

impl Template {
    /// Creates a store, runs `load` on it (with the data directory), adds `users` (name, role)
    /// with [`PASSWORD`] and issues each a token.
    pub fn build(users: &[(&str, &str)], load: impl FnOnce(&dyn FeatureStore, &Path)) -> Template {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let store = shikong_store::init(&shikong_store::StoreConfig::in_dir(dir.path())).expect("create store");
            load(&*store, dir.path());
        }
        let mut tokens = HashMap::new();
        {
            let auth = shikong_auth::AuthStore::open_in(dir.path()).expect("auth store");
            let local = shikong_auth::Actor::local("test");
            for (name, role) in users {
                let role: shikong_auth::Role = role.parse().expect("role");
                auth.add_user(&local, name, role, PASSWORD).expect("add user");
                let t = auth.issue_token(&local, name, None).expect("issue token");
                tokens.insert((*name).to_owned(), t.secret.expose().to_owned());
            }
        }
        // Every handle is closed: the SQLite files are complete without their WAL.
        let mut files = Vec::new();
        read_tree(dir.path(), dir.path(), &mut files);
        Template { files, tokens }
    }

    /// A state of its own over a copy of the template.
    pub fn env(&self) -> Env {
        self.env_with(|_| {})
    }

    /// Like [`Template::env`], with server settings changed by `config`.
    pub fn env_with(&self, config: impl FnOnce(&mut ServerConfig)) -> Env {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, bytes) in &self.files {
            let p = dir.path().join(rel);
            if let Some(parent) = p.parent() {
                std::fs::create_dir_all(parent).expect("create dir");
            }
            std::fs::write(&p, bytes).expect("copy template file");
        }
        let mut cfg = ServerConfig { data_dir: dir.path().to_owned(), ..ServerConfig::default() };
        config(&mut cfg);
        let state = open_state(dir.path(), cfg);
        Env { app: shikong_http::app(state.clone()), state, dir, tokens: self.tokens.clone() }
    }
}

fn read_tree(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let p = entry.expect("dir entry").path();
        if p.is_dir() {
            read_tree(root, &p, out);
        } else {
            let rel = p.strip_prefix(root).expect("inside the template").to_owned();
            out.push((rel, std::fs::read(&p).expect("read template file")));
        }
    }
}

/// The server's state over the data directory `dir`, as `shikong serve` opens it.
fn open_state(dir: &Path, config: ServerConfig) -> AppState {
    let store = shikong_store::open(&shikong_store::StoreConfig::in_dir(dir)).expect("open store");
    let auth = shikong_auth::AuthStore::open_in(dir).expect("open auth store");
    AppState::new(store, auth, config).expect("server state")
}

/// Imports a file into `layer` (with a title for a new layer), as `shikong import` does.
pub fn import(store: &dyn FeatureStore, file: &Path, layer: &str, title: Option<&str>) {
    let opts = ImportOptions {
        layer: layer.to_owned(),
        title: title.map(str::to_owned),
        author: "cli:test".to_owned(),
        ..ImportOptions::default()
    };
    shikong_ingest::import::import(store, file, &opts, &ToStoreFrame, &mut |_, _| {})
        .unwrap_or_else(|e| panic!("import {}: {e}", file.display()));
}

/// Changes a layer's definition in its own transaction, as `shikong layer edit` does.
pub fn edit_layer(store: &dyn FeatureStore, layer: &str, edit: impl FnOnce(&mut shikong_store::LayerDef)) {
    let mut def = store.layer(layer).expect("layer").def;
    edit(&mut def);
    let mut tx = store.begin(shikong_store::TxMeta::by("cli:test").source(format!("layer edit {layer}"))).expect("tx");
    tx.update_layer(layer, def).expect("update layer");
    tx.commit().expect("commit");
}

// ---------------------------------------------------------------------------------------------
// The fixtures

/// The office user `wang` and one user of every other role.
pub const USERS: [(&str, &str); 4] =
    [("admin", "admin"), ("wang", "office"), ("li", "inspector"), ("zhang", "citizen")];

/// `manholes_v1.geojson` as the layer `manhole` (井盖), and [`USERS`].
pub fn manholes() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(&USERS, |store, _| import(store, &fixture("manholes_v1.geojson"), "manhole", Some("井盖")))
    });
    &T
}

/// [`manholes`] with the roads and house numbers of `tests/fixtures`: a point and a line layer, one
/// without a title (for the snapshots of the catalogue documents).
pub fn catalogue() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        Template::build(&USERS, |store, _| {
            import(store, &fixture("manholes_v1.geojson"), "manhole", Some("井盖"));
            import(store, &fixture("roads.geojson"), "road", Some("道路"));
            import(store, &fixture("addresses.geojson"), "address", None);
        })
    });
    &T
}

/// No layers; the office user `wang` and the inspector `张三`.
pub fn empty() -> &'static Template {
    static T: LazyLock<Template> =
        LazyLock::new(|| Template::build(&[("wang", "office"), ("张三", "inspector")], |_, _| {}));
    &T
}

/// The demo data (`shikong demo`: official divisions, generated assets, roads, house numbers,
/// POIs, the citizen report layer) with its gazetteer, and users of every role.
pub fn demo() -> &'static Template {
    static T: LazyLock<Template> = LazyLock::new(|| {
        let refdata = reference();
        let users = [
            ("wang", "office"),
            ("li", "inspector"),
            ("zhang", "citizen"),
            ("citizen_a", "citizen"),
            ("citizen_b", "citizen"),
            ("citizen_c", "citizen"),
        ];
        Template::build(&users, |store, dir| {
            let report = shikong_demo::load(store, &refdata).expect("demo data");
            assert_eq!(report.districts, 13, "Wuhan's districts: {report}");
            let opts = shikong_gazetteer::BuildOptions {
                divisions: refdata.join("china-division"),
                coords: Some((refdata.join("cpca/adcodes.csv"), shikong_model::Crs::Gcj02)),
                sources: shikong_demo::gazetteer_sources(),
                collection: true,
            };
            shikong_gazetteer::build(store, dir, &opts, &mut |_| {}).expect("gazetteer");
        })
    });
    &T
}

/// The map service grid: `N × N` manholes 0.002° apart from (LON0, LAT0), codes `JG-rr-cc`.
pub mod grid {
    use super::*;

    pub const N: usize = 20;
    pub const LON0: f64 = 114.34;
    pub const LAT0: f64 = 30.50;
    pub const STEP: f64 = 0.002;
    /// The district polygon (about 3.4 km × 3.9 km ≈ 13 km², covering most of the grid).
    pub const DISTRICT: [f64; 4] = [114.338, 30.498, 114.374, 30.533];

    pub fn grid_point(r: usize, c: usize) -> (f64, f64) {
        (LON0 + c as f64 * STEP, LAT0 + r as f64 * STEP)
    }

    /// The Web Mercator tile (x, y) holding lon/lat at zoom z.
    pub fn xyz(lon: f64, lat: f64, z: u8) -> (u32, u32) {
        let t = shikong_tiles::TileMatrixSet::WebMercatorQuad.tile_at(lon, lat, z);
        (t.x, t.y)
    }

    fn build(public: bool) -> Template {
        Template::build(&[("admin", "admin"), ("wang", "office"), ("li", "inspector")], |store, _| {
            let files = tempfile::tempdir().expect("temp dir");
            let mut feats = Vec::new();
            for r in 0..N {
                for c in 0..N {
                    let (x, y) = grid_point(r, c);
                    feats.push(json!({"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]},
                        "properties": {"code": format!("JG-{r:02}-{c:02}"), "名称": format!("{r}排{c}号井盖"), "depth": (r + c) as f64 / 10.0, "material": if (r + c) % 2 == 0 { "铸铁" } else { "复合材料" }}}));
                }
            }
            let points = files.path().join("manholes.geojson");
            std::fs::write(&points, json!({"type": "FeatureCollection", "features": feats}).to_string())
                .expect("write");
            let [x0, y0, x1, y1] = DISTRICT;
            let district = files.path().join("district.geojson");
            let poly = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]},
                "properties": {"code": "洪山-1", "名称": "洪山区示范街道"}}]});
            std::fs::write(&district, poly.to_string()).expect("write");
            import(store, &points, "manhole", Some("井盖"));
            import(store, &district, "district", Some("行政区"));
            if public {
                edit_layer(store, "manhole", |d| d.public = true);
                edit_layer(store, "district", |d| d.public = true);
            }
        })
    }

    /// The grid and the district, readable by their users only.
    pub fn protected() -> &'static Template {
        static T: LazyLock<Template> = LazyLock::new(|| build(false));
        &T
    }

    /// The grid and the district, both public.
    pub fn public() -> &'static Template {
        static T: LazyLock<Template> = LazyLock::new(|| build(true));
        &T
    }
}

// ---------------------------------------------------------------------------------------------
// A test's own server state

/// A server state over a data directory of its own.
#[derive(Debug)]
pub struct Env {
    pub dir: tempfile::TempDir,
    pub state: AppState,
    app: Router,
    tokens: HashMap<String, String>,
}

impl Env {
    /// The token issued to `user` when the template was built.
    #[track_caller]
    pub fn token(&self, user: &str) -> String {
        self.tokens.get(user).unwrap_or_else(|| panic!("no user `{user}` in this fixture")).clone()
    }

    /// Logs `user` in with [`PASSWORD`] through `POST /auth/login`; returns the token.
    #[track_caller]
    pub fn login(&self, user: &str) -> String {
        self.login_with(user, PASSWORD)
    }

    #[track_caller]
    pub fn login_with(&self, user: &str, password: &str) -> String {
        let r = self.post("/auth/login").json(&json!({"username": user, "password": password})).send();
        assert_eq!(r.status, StatusCode::OK, "login {user}: {}", r.text());
        r.json()["token"].as_str().expect("token").to_owned()
    }

    /// The same data directory opened by a new server state, as after a restart, with settings
    /// changed by `config` (this state is dropped first).
    pub fn restarted_with(self, config: impl FnOnce(&mut ServerConfig)) -> Env {
        let Env { dir, state, tokens, .. } = self;
        let mut cfg = (*state.config).clone();
        drop(state);
        config(&mut cfg);
        let state = open_state(dir.path(), cfg);
        Env { app: shikong_http::app(state.clone()), state, dir, tokens }
    }

    /// The store the server writes to (for what the CLI did beside a running server).
    pub fn store(&self) -> &dyn FeatureStore {
        self.state.store()
    }

    /// A request; `url` is a path or an absolute URL under [`BASE`] (links from responses).
    pub fn request(&self, method: Method, url: &str) -> Call<'_> {
        let path = url.strip_prefix(BASE).unwrap_or(url);
        assert!(path.starts_with('/'), "not a path under {BASE}: {url}");
        let uri = encode_uri(path);
        Call {
            app: &self.app,
            req: Request::builder().method(method).uri(uri).header(header::HOST, HOST),
            body: Vec::new(),
        }
    }

    pub fn get(&self, url: &str) -> Call<'_> {
        self.request(Method::GET, url)
    }

    pub fn head(&self, url: &str) -> Call<'_> {
        self.request(Method::HEAD, url)
    }

    pub fn post(&self, url: &str) -> Call<'_> {
        self.request(Method::POST, url)
    }

    pub fn put(&self, url: &str) -> Call<'_> {
        self.request(Method::PUT, url)
    }

    pub fn patch(&self, url: &str) -> Call<'_> {
        self.request(Method::PATCH, url)
    }

    pub fn delete(&self, url: &str) -> Call<'_> {
        self.request(Method::DELETE, url)
    }
}

/// Percent-encodes what a URI may not hold as it is (non-ASCII, spaces, quotes …), as HTTP clients
/// do with the URLs they are given; what is already encoded stays.
fn encode_uri(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b >= 0x80 || b.is_ascii_control() || b" \"'<>`{}|\\^".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(char::from(b));
        }
    }
    out
}

/// A request being built.
#[derive(Debug)]
pub struct Call<'a> {
    app: &'a Router,
    req: axum::http::request::Builder,
    body: Vec<u8>,
}

impl Call<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.req = self.req.header(name, value);
        self
    }

    /// `Authorization: Bearer TOKEN`.
    pub fn token(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// With a token when there is one (`None`: anonymous).
    pub fn maybe_token(self, token: Option<&str>) -> Self {
        match token {
            Some(t) => self.token(t),
            None => self,
        }
    }

    /// A JSON body (`Content-Type: application/json`).
    pub fn json(self, body: &Json) -> Self {
        self.header("content-type", "application/json").body(body.to_string())
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    #[track_caller]
    pub fn send(self) -> Resp {
        let req = self.req.body(Body::from(self.body)).expect("a valid request");
        let (status, headers, body) = RUNTIME.block_on(call(self.app, req));
        Resp { status, headers, body }
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; fails the test with the text when it is not.
    #[track_caller]
    pub fn json(&self) -> Json {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), {}: {}", self.status, self.text()))
    }

    /// The body as JSON, or as a JSON string when it is not JSON.
    pub fn json_or_text(&self) -> Json {
        serde_json::from_slice(&self.body).unwrap_or_else(|_| Json::String(self.text()))
    }

    /// A header's value; fails the test when it is missing.
    #[track_caller]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {:?}", self.headers))
            .to_str()
            .expect("an ASCII header")
    }

    pub fn bytes(&self) -> Vec<u8> {
        self.body.to_vec()
    }
}

/// GET `path` with the office user `wang`'s token, the OGC tests' usual reader: the status and
/// the body as JSON (or text).
pub fn get_as_wang(env: &Env, path: &str) -> (StatusCode, Json) {
    let r = env.get(path).token(&env.token("wang")).send();
    (r.status, r.json_or_text())
}

/// `wang`'s GET that must answer 200; its JSON body.
#[track_caller]
pub fn ok_as_wang(env: &Env, path: &str) -> Json {
    let (status, body) = get_as_wang(env, path);
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    body
}

/// `wang`'s GET that must answer problem+json with `status`; its body.
#[track_caller]
pub fn problem_as_wang(env: &Env, path: &str, status: StatusCode) -> Json {
    let r = env.get(path).token(&env.token("wang")).send();
    assert_eq!(r.status, status, "{path}: {}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json", "{path}");
    r.json()
}

/// The `next` link of a page of items, if any.
pub fn next_link(page: &Json) -> Option<String> {
    page["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["rel"] == "next")
        .map(|l| l["href"].as_str().unwrap().to_owned())
}

/// Every feature of a query as `wang` reads it, following `next` links from `first`; and the
/// number of pages.
#[track_caller]
pub fn all_pages_as_wang(env: &Env, first: &str) -> (Vec<Json>, usize) {
    let mut out = Vec::new();
    let mut url = Some(first.to_owned());
    let mut pages = 0;
    while let Some(u) = url {
        let page = ok_as_wang(env, &u);
        out.extend(page["features"].as_array().unwrap().iter().cloned());
        url = next_link(&page);
        pages += 1;
        assert!(pages < 500, "paging does not end");
    }
    (out, pages)
}

/// Uploads a raster file as the administrator (`POST /tiles/rasters/{set}?{query}`); the
/// import's answer, which must be 201.
#[track_caller]
pub fn upload_raster(env: &Env, set: &str, query: &str, file: &Path) -> Json {
    let r = env
        .post(&format!("/tiles/rasters/{set}?{query}"))
        .token(&env.token("admin"))
        .body(std::fs::read(file).expect("raster file"))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()
}

/// Checks an error answer is problem+json with this status; returns its body.
#[track_caller]
pub fn problem(r: &Resp, status: StatusCode) -> Json {
    assert_eq!(r.status, status, "{}", r.text());
    assert_eq!(r.header("content-type"), "application/problem+json");
    let p = r.json();
    assert_eq!(p["status"], status.as_u16(), "{p}");
    p
}

/// Entity codes of a FeatureCollection, sorted.
pub fn codes(fc: &Json) -> Vec<String> {
    let mut v: Vec<String> = fc["features"]
        .as_array()
        .expect("features")
        .iter()
        .map(|f| f["properties"]["code"].as_str().expect("code").to_owned())
        .collect();
    v.sort();
    v
}

/// The `rel`s of a document's links.
pub fn rels(doc: &Json) -> Vec<String> {
    doc["links"].as_array().expect("links").iter().map(|l| l["rel"].as_str().expect("rel").to_owned()).collect()
}

/// Percent-encodes everything but ASCII letters, digits and `-_.`.
pub fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") }
        })
        .collect()
}

/// Uploads every attachment `replica` has not had confirmed yet, as `user`, and confirms each
/// (what a device does before it sends the changes that refer to them).
pub fn upload_attachments(env: &Env, user: &str, replica: &mut shikong_replica::Replica) {
    let token = env.token(user);
    for a in replica.unconfirmed_attachments().unwrap() {
        let bytes = replica.attachment(&a.sha256).unwrap();
        let r = env
            .put(&format!("/sync/blobs/{}", a.sha256))
            .token(&token)
            .header("content-type", &a.mime)
            .header("content-range", &format!("bytes 0-{}/{}", bytes.len() - 1, bytes.len()))
            .body(bytes)
            .send();
        assert!(r.status.is_success(), "{}", r.text());
        replica.confirm_attachment(&a.sha256).unwrap();
    }
}

// ---------------------------------------------------------------------------------------------
// Made-up data and processes (the OGC API – Processes tests)

/// A small deterministic generator of numbers in [0, 1) (xorshift): made-up data that is the same
/// in every run.
pub fn xorshift(mut seed: u64) -> impl FnMut() -> f64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Writes `features` (GeoJSON Features) to a file and imports them as `layer`, as `shikong import`.
pub fn import_features(store: &dyn FeatureStore, layer: &str, title: &str, features: Vec<Json>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join(format!("{layer}.geojson"));
    std::fs::write(&file, json!({"type": "FeatureCollection", "features": features}).to_string()).expect("write");
    import(store, &file, layer, Some(title));
}

/// Runs `process` on `inputs` synchronously as `user`; the answer, which must be a 200.
#[track_caller]
pub fn run_process(env: &Env, user: &str, process: &str, inputs: Json) -> Resp {
    let r = env
        .post(&format!("/processes/{process}/execution"))
        .token(&env.token(user))
        .json(&json!({"inputs": inputs}))
        .send();
    assert_eq!(r.status, StatusCode::OK, "{process}: {}", r.text());
    r
}
