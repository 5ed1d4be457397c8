//! The address engine's REST face (地名地址服务): single geocoding, search-box suggestions,
//! reverse geocoding, batch jobs over uploaded CSV/XLSX tables, user aliases, and the gazetteer
//! subset a device carries offline. The divisions themselves are also the `gazetteer` OGC
//! collection (written by `shikong gazetteer build`), served by [`super::ogc`].
//!
//! Every route needs a logged-in user: addresses of a city are not public data on the networks
//! this runs on. Every answer comes from the records of the layers the caller may read at that
//! moment (the engine filters them before ranking and limits; see
//! `shikong_sync_engine::gazetteer_scope`): a layer a user cannot read gives them no hit, no
//! suggestion, no nearest address, and no records in a device subset. Batch jobs re-check their
//! owner's rights when they run, not when they were submitted. Batch jobs are bounded per user
//! and in total, run one at a time through the server's `blocking` budget, report progress, and
//! are kept (list and result files in `DATA/geocode-jobs/`, across restarts) until they expire
//! (module `jobs`).

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use shikong_auth::Principal;
use shikong_auth::Role;
use shikong_geocoder::{Geocoder, Options, Precision, Scope};
use shikong_model::{Crs, Geometry};
use shikong_protocol::api;
use shikong_protocol::url::encode_component;
use shikong_sync_engine::gazetteer_scope::gazetteer_scope;

use super::access::Caller;
use super::body::Body;
use super::params::Params;
use super::problem::{ApiError, ApiResult};
use super::{AppState, blocking, coords, json_ok};
use shikong_gazetteer as gazetteer;

mod jobs;

pub use jobs::{BatchJob, BatchJobs, BatchLimits};

/// Largest number of rows one batch job accepts (the upload limit every table reader enforces).
pub const MAX_BATCH_ROWS: usize = shikong_formats::limits::MAX_TABLE_ROWS as usize;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/geocode", get(geocode))
        .route("/geocode/suggest", get(suggest))
        .route("/reverse", get(reverse))
        .route("/geocode/batch", axum::routing::post(batch_create))
        .route("/geocode/batch/{job}", get(batch_status).delete(batch_delete))
        .route("/geocode/batch/{job}/result", get(batch_result))
        .route("/geocode/aliases", get(aliases).post(alias_put))
        .route("/geocode/aliases/{alias}", axum::routing::delete(alias_delete))
        .route("/geocode/subset", get(subset))
}

fn no_gazetteer() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "no-gazetteer",
        "no gazetteer has been built on this server (an administrator runs `shikong gazetteer build`)",
    )
}

/// The records `who` may see now: the gazetteer's feeding layers they may read.
fn scope_for(state: &AppState, who: &Principal) -> ApiResult<Scope> {
    Ok(gazetteer_scope(state.store(), state.auth.as_ref(), Some(who), &state.gazetteer)?)
}

/// Runs `f` on the current engine (caught up with the store) off the async threads, with the
/// scope of what `who` may read, checked now.
async fn with_engine<T: Send + 'static>(
    state: &AppState,
    who: &Principal,
    f: impl FnOnce(&Geocoder, Scope) -> ApiResult<T> + Send + 'static,
) -> ApiResult<T> {
    let st = state.clone();
    let who = who.clone();
    blocking(move || {
        let scope = scope_for(&st, &who)?;
        st.gazetteer.with(st.store(), |geo, _| f(geo, scope)).map_err(ApiError::internal)?.ok_or_else(no_gazetteer)?
    })
    .await
}

fn precision(p: &Params) -> ApiResult<Precision> {
    match p.get("precision").unwrap_or("point") {
        "point" => Ok(Precision::Point),
        "road" => Ok(Precision::Road),
        "area" => Ok(Precision::Area),
        other => Err(ApiError::bad_parameter("precision", format!("`{other}`: expected point, road or area"))),
    }
}

fn query_text(p: &Params) -> ApiResult<String> {
    let q = p.get("q").ok_or_else(|| ApiError::bad_parameter("q", "required (the address or place name)"))?;
    if q.trim().is_empty() {
        return Err(ApiError::bad_parameter("q", "empty"));
    }
    if q.chars().count() > 500 {
        return Err(ApiError::bad_parameter("q", "longer than 500 characters"));
    }
    Ok(q.to_owned())
}

/// `GET /geocode?q=&precision=point|road|area&as-of=`: the best place, its score, match level,
/// official division codes and point (CGCS2000 lon/lat), or `nomatch` with the reason.
async fn geocode(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require()?;
    let p = Params::new(q.as_deref())?;
    p.only(&["q", "precision", "as-of"])?;
    // The scope is the caller's, set inside `with_engine` (nothing is visible until then).
    let mut opts =
        Options { precision: precision(&p)?, as_of: p.instant("as-of")?, scope: Scope::Layers(Default::default()) };
    let text = query_text(&p)?;
    let r = with_engine(&state, who, move |geo, scope| {
        opts.scope = scope;
        Ok(geo.geocode(&text, &opts))
    })
    .await?;
    json_ok(&shikong_gazetteer::wire::geocode(r))
}

/// `GET /geocode/suggest?q=&limit=&within=CODE`: places whose name, pinyin or pinyin initials
/// start with `q` ("hs" → 洪山区), for a search box.
async fn suggest(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require()?;
    let p = Params::new(q.as_deref())?;
    p.only(&["q", "limit", "within"])?;
    let limit = p.limit(10, 100)?;
    let text = query_text(&p)?;
    let within = p.get("within").map(str::to_owned);
    let s = with_engine(&state, who, move |geo, scope| Ok(geo.suggest_scoped(&text, limit, within.as_deref(), &scope)))
        .await?;
    json_ok(&api::Suggestions { suggestions: s.into_iter().map(shikong_gazetteer::wire::suggestion).collect() })
}

/// `GET /reverse?lon=&lat=&crs=&as-of=`: containing divisions at every level, the nearest road
/// and the nearest standard address, with distances. `crs` (default CGCS2000 lon/lat) also takes
/// `GCJ02`/`BD09` for points from commercial maps; coordinates are always lon, lat.
async fn reverse(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    let who = caller.require()?;
    let p = Params::new(q.as_deref())?;
    p.only(&["lon", "lat", "crs", "as-of"])?;
    let num = |k: &str| -> ApiResult<f64> {
        let v = p.get(k).ok_or_else(|| ApiError::bad_parameter(k, "required"))?;
        v.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| ApiError::bad_parameter(k, format!("`{v}` is not a number")))
    };
    let (lon, lat) = (num("lon")?, num("lat")?);
    if !(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat) {
        return Err(ApiError::bad_parameter("lon", format!("({lon}, {lat}) is not a longitude/latitude")));
    }
    let crs = p.crs("crs")?.unwrap_or(Crs::Crs84);
    let pt = Geometry::Point(shikong_model::Coord::xy(lon, lat));
    // Longitude first whatever the CRS's authority order: the parameters are named.
    let pt = shikong_crs::transform_geometry(&pt, crs, Crs::CGCS2000).map_err(|e| ApiError::bad_parameter("crs", e))?;
    let Geometry::Point(c) = pt else { return Err(ApiError::internal("a point transformed into another shape")) };
    let as_of = p.instant("as-of")?;
    let r = with_engine(&state, who, move |geo, scope| {
        Ok(geo.reverse_with(c.x, c.y, &Options { precision: Precision::Point, as_of, scope }))
    })
    .await?;
    json_ok(&shikong_gazetteer::wire::reverse(r))
}

fn now_text() -> String {
    shikong_model::time::beijing(jiff::Timestamp::now())
}

/// `POST /geocode/batch?column=NAME&format=csv|geojson|gpkg&precision=&as-of=` with a CSV (UTF-8 or
/// GBK) or XLSX body: starts a job and answers 202 with its status URL. The table is read and its
/// column checked before answering, so a bad upload fails at once with the row or column at fault
/// (413 for a table over the upload limits, 429 when the caller or the server has too many jobs),
/// and a refused upload leaves no job and no file.
async fn batch_create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let p = Params::new(q.as_deref())?;
    p.only(&["column", "format", "precision", "as-of"])?;
    let column =
        p.get("column").ok_or_else(|| ApiError::bad_parameter("column", "required (the address column)"))?.to_owned();
    let format: &'static str = match p.get("format").unwrap_or("csv") {
        "csv" => "csv",
        "geojson" => "geojson",
        "gpkg" => "gpkg",
        other => return Err(ApiError::bad_parameter("format", format!("`{other}`: expected csv, geojson or gpkg"))),
    };
    // The scope is filled in when the job runs, from its owner's rights at that time.
    let opts =
        Options { precision: precision(&p)?, as_of: p.instant("as-of")?, scope: Scope::Layers(Default::default()) };
    if body.is_empty() {
        return Err(ApiError::bad_body("empty upload: send the CSV or XLSX file as the request body"));
    }
    let table = blocking(move || gazetteer::read_table(&body, "upload").map_err(ApiError::from)).await?;
    if !table.headers.iter().any(|h| h == &column) {
        return Err(ApiError::bad_parameter(
            "column",
            format!("no column `{column}` (columns: {})", table.headers.join(", ")),
        ));
    }
    if table.rows.len() > MAX_BATCH_ROWS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("{} rows; one job takes at most {MAX_BATCH_ROWS}", table.rows.len()),
        ));
    }
    if state.gazetteer.with(state.store(), |_, _| ()).map_err(ApiError::internal)?.is_none() {
        return Err(no_gazetteer());
    }
    let job = BatchJob {
        id: uuid::Uuid::now_v7(),
        owner: who.username.clone(),
        state: api::BatchState::Running,
        column: column.clone(),
        format: format.to_owned(),
        total: table.rows.len(),
        done: 0,
        matched: 0,
        ambiguous: 0,
        nomatch: 0,
        error: None,
        created_at: now_text(),
        finished_at: None,
        finished_unix: None,
    };
    let id = job.id;
    let st = state.clone();
    let j2 = job.clone();
    if let Err(e) = blocking(move || st.geocode_jobs.admit(j2)).await {
        if e.status != StatusCode::TOO_MANY_REQUESTS {
            return Err(e);
        }
        let retry = e.extra.get("retry-after").and_then(serde_json::Value::as_u64).unwrap_or(60);
        let mut resp = e.into_response();
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry));
        return Ok(resp);
    }
    let st = state.clone();
    tokio::spawn(async move {
        // One job geocodes at a time; the others wait here, not on a thread.
        let _turn = st.geocode_jobs.turns.acquire().await;
        let st2 = st.clone();
        let ran = blocking(move || {
            let outcome = run_batch(&st2, &job, &who, &table, &column, opts);
            st2.geocode_jobs.finish(job.id, outcome.err().map(|e| format!("{e:#}")));
            Ok(())
        })
        .await;
        if let Err(e) = ran {
            st.geocode_jobs.finish(id, Some(format!("the job stopped: {}", e.detail)));
        }
    });
    let url = format!("{}/geocode/batch/{id}", state.base_url(&headers));
    let mut resp = (
        StatusCode::ACCEPTED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&api::BatchCreated { id, status: url.clone() }).map_err(ApiError::internal)?,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&url) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// Runs a job: geocodes with the records its owner may read now (the account as it stands when
/// the job gets its turn, which may be long after it was submitted).
fn run_batch(
    st: &AppState,
    job: &BatchJob,
    owner: &Principal,
    table: &gazetteer::Table,
    column: &str,
    mut opts: Options,
) -> anyhow::Result<()> {
    let problem = |e: ApiError| anyhow::anyhow!("{}", e.detail);
    let owner = super::access::current_principal(st, owner).map_err(problem)?;
    opts.scope = scope_for(st, &owner).map_err(problem)?;
    let results = st
        .gazetteer
        .with(st.store(), |geo, _| {
            gazetteer::geocode_table(geo, table, column, &opts, &mut |done, _| {
                st.geocode_jobs.update(job.id, |j| j.done = done)
            })
        })?
        .ok_or_else(|| anyhow::anyhow!("the gazetteer went away"))??;
    let count = |s: &str| results.iter().filter(|r| r.status.as_str() == s).count();
    let (m, a, n) = (count("match"), count("ambiguous"), count("nomatch"));
    std::fs::create_dir_all(st.geocode_jobs.dir())?;
    let out = st.geocode_jobs.result_path(job);
    let tmp = out.with_extension("part");
    match job.format.as_str() {
        "geojson" => std::fs::write(&tmp, gazetteer::table_geojson(table, &results))?,
        "gpkg" => {
            let _ = std::fs::remove_file(&tmp);
            gazetteer::table_gpkg(table, &results, &tmp)?;
        }
        _ => std::fs::write(&tmp, gazetteer::table_csv(table, &results)?)?,
    }
    std::fs::rename(&tmp, &out)?;
    st.geocode_jobs.update(job.id, |j| {
        j.matched = m;
        j.ambiguous = a;
        j.nomatch = n;
    });
    Ok(())
}

fn owned_job(state: &AppState, caller: &Caller, id: &str) -> ApiResult<BatchJob> {
    state.geocode_jobs.owned(caller, id)
}

/// `GET /geocode/batch/{job}`: state (running | done | failed), rows done of total, counts.
async fn batch_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let job = owned_job(&state, &caller, &id)?;
    json_ok(&job.to_wire(&state.base_url(&headers)))
}

/// `DELETE /geocode/batch/{job}`: removes a finished job and its result (a running one is a 409).
async fn batch_delete(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let job = owned_job(&state, &caller, &id)?;
    if job.state == api::BatchState::Running {
        return Err(ApiError::conflict(format!("batch job {} is still running", job.id)));
    }
    let st = state.clone();
    blocking(move || st.geocode_jobs.remove(job.id).map_err(ApiError::internal)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /geocode/batch/{job}/result`: the input columns plus status, score, level, division
/// codes, standard address and point of every row.
async fn batch_result(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let job = owned_job(&state, &caller, &id)?;
    match job.state {
        api::BatchState::Done => {}
        api::BatchState::Failed => {
            return Err(ApiError::conflict(format!("batch job {} failed: {}", job.id, job.error.unwrap_or_default())));
        }
        api::BatchState::Running => {
            return Err(ApiError::conflict(format!(
                "batch job {} is still running ({} of {} rows)",
                job.id, job.done, job.total
            )));
        }
    }
    let st = state.clone();
    let path = state.geocode_jobs.result_path(&job);
    let bytes = blocking(move || {
        st.geocode_jobs.sweep().map_err(ApiError::internal)?;
        std::fs::read(&path).map_err(ApiError::internal)
    })
    .await?;
    let ty = match job.format.as_str() {
        "geojson" => "application/geo+json",
        "gpkg" => "application/geopackage+sqlite3",
        _ => "text/csv; charset=utf-8",
    };
    let mut resp = ([(header::CONTENT_TYPE, ty)], bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"geocoded-{}.{}\"", job.id, job.format)) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// `GET /geocode/aliases`: the user aliases (the shipped table is part of the gazetteer).
async fn aliases(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require()?;
    let dir = state.config.data_dir.clone();
    let list = blocking(move || gazetteer::read_user_aliases(&dir).map_err(ApiError::internal)).await?;
    json_ok(&api::AliasList { aliases: list.into_iter().map(shikong_gazetteer::wire::alias).collect() })
}

fn may_edit_aliases(caller: &Caller) -> ApiResult<()> {
    caller.require_role(&[Role::Admin, Role::Office], "editing aliases needs the admin or office role").map(drop)
}

/// `POST /geocode/aliases` `{"alias": "华科", "name": "华中科技大学", "code": "420111"}`: adds or
/// replaces a user alias, searchable at once.
async fn alias_put(State(state): State<AppState>, caller: Caller, Body(body): Body) -> ApiResult<Response> {
    may_edit_aliases(&caller)?;
    let a: api::AliasDoc =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_body(format!("invalid alias: {e}")))?;
    if a.alias.trim().is_empty() || a.name.trim().is_empty() {
        return Err(ApiError::bad_body("`alias` and `name` must not be empty"));
    }
    let st = state.clone();
    let a2 = shikong_geocoder::Alias { alias: a.alias.clone(), name: a.name.clone(), code: a.code.clone() };
    blocking(move || st.gazetteer.put_alias(a2).map_err(ApiError::from)).await?;
    Ok((
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_string(&a).map_err(ApiError::internal)?,
    )
        .into_response())
}

/// `DELETE /geocode/aliases/{alias}`.
async fn alias_delete(State(state): State<AppState>, caller: Caller, Path(alias): Path<String>) -> ApiResult<Response> {
    may_edit_aliases(&caller)?;
    let st = state.clone();
    let a2 = alias.clone();
    let found = blocking(move || st.gazetteer.delete_alias(&a2).map_err(ApiError::internal)).await?;
    if !found {
        return Err(ApiError::not_found(format!("no user alias `{alias}`")));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /geocode/subset?replica=ID` or `?bbox=minlon,minlat,maxlon,maxlat`: the gazetteer of the
/// counties the area touches, with the records of the layers the caller may read, as an engine
/// snapshot a device loads offline. Replicas carry one from the start; each sync refreshes it,
/// sending its tag as `If-None-Match` (304: unchanged). The tag names those layers: after a
/// revocation the next refresh is a new, smaller subset, not a 304.
async fn subset(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let who = caller.require()?.clone();
    let p = Params::new(q.as_deref())?;
    p.only(&["bbox", "bbox-crs", "replica"])?;
    let bbox = match p.bbox()? {
        Some(b) => Some(coords::bbox_from_input(b, p.crs("bbox-crs")?.unwrap_or(Crs::Crs84))?),
        None => None,
    };
    let replica: Option<uuid::Uuid> =
        p.get("replica").map(|r| r.parse().map_err(|e| ApiError::bad_parameter("replica", e))).transpose()?;
    if bbox.is_none() && replica.is_none() {
        return Err(ApiError::bad_parameter("bbox", "give `bbox` or `replica`"));
    }
    let wanted =
        headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(|v| v.trim_matches('"').to_owned());
    let st = state.clone();
    let answer = blocking(move || {
        let env = match (bbox, replica) {
            (Some(b), _) => b,
            (None, Some(id)) => {
                let r = st.store().replica(id)?.ok_or_else(|| ApiError::not_found(format!("unknown replica {id}")))?;
                super::access::owner_or_admin(&who, &r.author, &format!("replica {id}"))?;
                gazetteer::replica_envelope(st.store(), r.area.as_deref(), &r.layers)
                    .map_err(ApiError::internal)?
                    .ok_or_else(|| ApiError::bad_parameter("replica", "the replica's layers are empty: no area"))?
            }
            (None, None) => return Err(ApiError::internal("unreachable: no area")),
        };
        // Caught up by the scope's look-up; the subset holds what the caller may read now.
        let scope = scope_for(&st, &who)?;
        let tag = st.gazetteer.tag(&env, &scope);
        if wanted.as_deref() == Some(tag.as_str()) {
            return Ok(None);
        }
        let g = gazetteer::tagged_subset(&st.gazetteer, st.store(), env, &scope).map_err(ApiError::internal)?;
        g.map(Some).ok_or_else(|| {
            ApiError::bad_parameter("bbox", "the area touches no county of the gazetteer (or none is built)")
        })
    })
    .await?;
    let Some(g) = answer else { return Ok(StatusCode::NOT_MODIFIED.into_response()) };
    let mut resp = ([(header::CONTENT_TYPE, "application/octet-stream")], g.bytes).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", g.tag)) {
        resp.headers_mut().insert(header::ETAG, v);
    }
    // The edition is Chinese text: percent-encoded (RFC 8187 style) to stay a valid header.
    if let Ok(v) = HeaderValue::from_str(&encode_component(&g.edition)) {
        resp.headers_mut().insert("x-shikong-gazetteer-edition", v);
    }
    Ok(resp)
}
