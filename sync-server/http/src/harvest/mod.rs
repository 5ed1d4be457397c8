//! Harvesting other catalogues into the platform's catalog (采集, issue 20): `POST /harvests`,
//! `GET /harvests`, `POST /harvests/{id}/run`, `DELETE /harvests/{id}` (administrators; bodies
//! `shikong_protocol::api::harvest`), runs, and the schedule `serve` keeps.
//!
//! A run streams the source page by page — CSW 2.0.2 GetRecords by `startPosition`/`nextRecord`,
//! OGC API – Records items by their `next` links, capabilities as one page — and writes each page
//! in its own transaction before reading the next, so memory holds one page (≤
//! [`MAX_PAGE_BYTES`]) whatever the source's size, and there is no record ceiling. Storage is
//! `shikong-auth` (`harvest_sources`, `harvested_records`; SQLite or the shared PostgreSQL
//! schema): records carry a content hash (unchanged ones are only marked with the run's id), and
//! a run that read the whole source sweeps the records it did not see. A run that fails keeps the
//! earlier records and reports the error. Runs are claimed in the database (compare-and-set of
//! `last_run`), so two processes never run one source at once; inside a process one run goes at a
//! time, each within [`HarvestConfig::run_timeout`], each request within the services' upstream
//! timeout.

pub(crate) mod parse;

use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use shikong_auth::{Actor, HarvestSourceRow, HarvestedRecord, NewHarvestSource, Role};
use shikong_protocol::api::harvest::{HarvestList, HarvestRun, HarvestSource, HarvestStarted, HarvestType, NewHarvest};
use shikong_protocol::api::services::ServiceType;

use crate::access::Caller;
use crate::body::Body;
use crate::params::Params;
use crate::{ApiError, ApiResult, AppState, blocking, json_ok};
use parse::Harvested;

/// Largest page (or capabilities document) read from a source, bytes.
pub const MAX_PAGE_BYTES: usize = 16 << 20;
/// Records asked for per CSW / Records page.
pub const PAGE_SIZE: u64 = 100;
/// Longest source URL, characters.
const MAX_URL: usize = 2000;
/// Longest schedule, minutes (a year).
const MAX_EVERY_MINUTES: u32 = 525_600;

/// Bounds of harvesting (constants today; one place to change them).
#[derive(Debug, Clone)]
pub struct HarvestConfig {
    /// A whole run's longest time; past it the run stops as failed (records kept).
    pub run_timeout: Duration,
    /// How often `serve` looks for sources that are due.
    pub schedule_every: Duration,
}

impl Default for HarvestConfig {
    fn default() -> Self {
        HarvestConfig { run_timeout: Duration::from_secs(3600), schedule_every: Duration::from_secs(30) }
    }
}

/// One run at a time in this process (runs write many pages; two at once would only compete).
static ONE_RUN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const ADMINS: [Role; 1] = [Role::Admin];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/harvests", get(list).post(create))
        .route("/harvests/{id}", delete(remove))
        .route("/harvests/{id}/run", post(run_now))
}

fn now_text() -> String {
    shikong_model::time::beijing(jiff::Timestamp::now())
}

fn parse_run(s: Option<&str>) -> Option<HarvestRun> {
    s.and_then(|s| serde_json::from_str(s).ok())
}

fn info(row: &HarvestSourceRow, records: u64) -> Option<HarvestSource> {
    Some(HarvestSource {
        id: row.id.clone(),
        url: row.url.clone(),
        kind: HarvestType::parse(&row.kind)?,
        title: row.title.clone(),
        every_minutes: row.every_minutes,
        records,
        last_run: parse_run(row.last_run.as_deref()),
        created: shikong_model::time::beijing(row.created_at),
    })
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Body(body): Body,
) -> ApiResult<Response> {
    let actor = caller.admin_only(q.as_deref(), "only administrators add harvest sources")?;
    let new: NewHarvest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_body(format!("the body is not a harvest source: {e}")))?;
    let row = add_source(&state, actor, new).await?;
    let body = info(&row, 0).ok_or_else(|| ApiError::internal("a stored harvest source does not parse"))?;
    let mut resp = json_ok(&body)?;
    *resp.status_mut() = StatusCode::CREATED;
    if let Ok(v) = format!("{}/harvests/{}", state.base_url(&headers), row.id).parse() {
        resp.headers_mut().insert(axum::http::header::LOCATION, v);
    }
    Ok(resp)
}

/// Checks and stores a new source (the caller is known to be an administrator): 422 naming the
/// field that does not fit. Used by `POST /harvests` and CSW `Harvest`.
pub(crate) async fn add_source(state: &AppState, actor: Actor, new: NewHarvest) -> ApiResult<HarvestSourceRow> {
    let unfit = |field: &str, detail: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-harvest", format!("`{field}`: {detail}"))
            .with("field", field)
    };
    if new.url.chars().count() > MAX_URL {
        return Err(unfit("url", format!("longer than {MAX_URL} characters")));
    }
    let u = reqwest::Url::parse(&new.url).map_err(|e| unfit("url", format!("not a URL: {e}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.fragment().is_some() {
        return Err(unfit("url", "must be an http or https URL without a fragment".into()));
    }
    if let Some(m) = new.every_minutes
        && !(1..=MAX_EVERY_MINUTES).contains(&m)
    {
        return Err(unfit("every_minutes", format!("{m}: from 1 to {MAX_EVERY_MINUTES}")));
    }
    let row = NewHarvestSource {
        kind: new.kind.as_str().to_owned(),
        title: new.title.clone(),
        url: new.url.clone(),
        every_minutes: new.every_minutes,
    };
    let st = state.clone();
    blocking(move || Ok(st.auth.add_harvest_source(&actor, &row)?)).await
}

/// Runs `row` now and waits for the end: `None` when a run of it is already going (here or in
/// another process). The run is spawned, so a caller that stops waiting does not stop it.
pub(crate) async fn run_and_wait(state: &AppState, row: HarvestSourceRow) -> ApiResult<Option<HarvestRun>> {
    let Some(claim) = claim(state, &row, true).await? else { return Ok(None) };
    let run = tokio::spawn(execute(state.clone(), row, claim)).await.map_err(ApiError::internal)?;
    Ok(Some(run))
}

async fn list(State(state): State<AppState>, caller: Caller, RawQuery(q): RawQuery) -> ApiResult<Response> {
    caller.admin_only(q.as_deref(), "only administrators list harvest sources")?;
    let st = state.clone();
    let (rows, counts) = blocking(move || Ok((st.auth.harvest_sources()?, st.auth.harvested_counts()?))).await?;
    let counts: std::collections::HashMap<String, u64> = counts.into_iter().collect();
    let harvests = rows.iter().filter_map(|r| info(r, counts.get(&r.id).copied().unwrap_or(0))).collect::<Vec<_>>();
    json_ok(&HarvestList { harvests })
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let actor = caller.admin_only(q.as_deref(), "only administrators remove harvest sources")?;
    let st = state.clone();
    blocking(move || Ok(st.auth.delete_harvest_source(&actor, &id)?)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /harvests/{id}/run[?wait=true]`: 202 and the run goes on in the background; with
/// `wait=true`, 200 when it has finished, with what it did.
async fn run_now(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let params = Params::new(q.as_deref())?;
    params.only(&["wait"])?;
    let wait = match params.get("wait") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(ApiError::bad_parameter("wait", format!("`{v}` is neither true nor false")));
        }
    };
    caller.require_role(&ADMINS, "only administrators run harvests")?;
    let st = state.clone();
    let i = id.clone();
    let row = blocking(move || Ok(st.auth.harvest_source(&i)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no harvest source `{id}`")).with("harvest", id.as_str()))?;
    let Some(claim) = claim(&state, &row, true).await? else {
        return json_ok(&HarvestStarted { id, started: false, run: None }).map(|mut r| {
            *r.status_mut() = StatusCode::ACCEPTED;
            r
        });
    };
    // Spawned even when waiting: a request cut short (its timeout, the client leaving) must not
    // stop the run half-way and leave it claimed.
    let task = tokio::spawn(execute(state, row, claim));
    if wait {
        let run = task.await.map_err(ApiError::internal)?;
        return json_ok(&HarvestStarted { id, started: true, run: Some(run) });
    }
    let mut resp = json_ok(&HarvestStarted { id, started: true, run: None })?;
    *resp.status_mut() = StatusCode::ACCEPTED;
    Ok(resp)
}

/// A claimed run: its id and the state written when it started.
struct Claim {
    run_id: String,
    run: HarvestRun,
}

/// Whether a stored latest run is still going (not finished, started within the run timeout).
fn running(run: &HarvestRun, timeout: Duration) -> bool {
    if run.finished.is_some() {
        return false;
    }
    let Ok(started) = run.started.parse::<jiff::Timestamp>() else { return false };
    let age = jiff::Timestamp::now().duration_since(started);
    age < jiff::SignedDuration::try_from(timeout).unwrap_or(jiff::SignedDuration::MAX)
}

/// Claims a run of `row` in the database unless one is going (or, `forced` false, it is not
/// due). `None`: nothing to do now.
async fn claim(state: &AppState, row: &HarvestSourceRow, forced: bool) -> ApiResult<Option<Claim>> {
    let last = parse_run(row.last_run.as_deref());
    let timeout = HarvestConfig::default().run_timeout;
    if last.as_ref().is_some_and(|r| running(r, timeout)) {
        return Ok(None);
    }
    if !forced {
        let Some(every) = row.every_minutes else { return Ok(None) };
        if let Some(started) = last.as_ref().and_then(|r| r.started.parse::<jiff::Timestamp>().ok()) {
            let due = started.checked_add(jiff::SignedDuration::from_mins(i64::from(every)));
            if due.is_ok_and(|d| d > jiff::Timestamp::now()) {
                return Ok(None);
            }
        }
    }
    let run = HarvestRun { started: now_text(), ..HarvestRun::default() };
    let text = serde_json::to_string(&run).map_err(ApiError::internal)?;
    let (st, id, old) = (state.clone(), row.id.clone(), row.last_run.clone());
    let won = blocking(move || Ok(st.auth.claim_harvest_run(&id, old.as_deref(), &text)?)).await?;
    Ok(won.then(|| Claim { run_id: uuid::Uuid::now_v7().to_string(), run }))
}

/// Runs a claimed harvest to its end (one at a time in this process, within the run timeout)
/// and stores what it did.
async fn execute(state: AppState, row: HarvestSourceRow, claim: Claim) -> HarvestRun {
    let _one = ONE_RUN.lock().await;
    let Claim { run_id, mut run } = claim;
    let timeout = HarvestConfig::default().run_timeout;
    let outcome = tokio::time::timeout(timeout, harvest(&state, &row, &run_id, &mut run)).await;
    let error = match outcome {
        Ok(Ok(())) => {
            let (st, id, rid) = (state.clone(), row.id.clone(), run_id.clone());
            match blocking(move || Ok(st.auth.sweep_harvested(&id, &rid)?)).await {
                Ok(n) => {
                    run.removed = n;
                    None
                }
                Err(e) => Some(format!("removing records gone at the source failed: {}", e.detail)),
            }
        }
        Ok(Err(e)) => Some(e),
        Err(_) => Some(format!("the run took longer than {} s and was stopped", timeout.as_secs())),
    };
    run.error = error;
    run.finished = Some(now_text());
    if let Some(e) = &run.error {
        tracing::warn!(source = %row.id, error = %e, "harvest failed (earlier records kept)");
    } else {
        tracing::info!(source = %row.id, added = run.added, updated = run.updated, removed = run.removed, unchanged = run.unchanged, "harvest done");
    }
    store_run(&state, &row.id, &run).await;
    run
}

async fn store_run(state: &AppState, id: &str, run: &HarvestRun) {
    let Ok(text) = serde_json::to_string(run) else { return };
    let (st, id) = (state.clone(), id.to_owned());
    if let Err(e) = blocking(move || Ok(st.auth.set_harvest_run(&id, &text)?)).await {
        tracing::warn!(error = %e.detail, "storing a harvest run failed");
    }
}

/// Reads `url` whole, at most [`MAX_PAGE_BYTES`]; errors are worded for the run's report.
async fn get_bounded(state: &AppState, url: &str) -> Result<Vec<u8>, String> {
    let timeout = state.services.config().upstream_timeout;
    let mut resp = state
        .services
        .client()
        .get(url)
        // Plain bodies: pycsw 2.6 labels a gzip stream that the client's decoder refuses.
        .header(reqwest::header::ACCEPT_ENCODING, "identity")
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| format!("the source did not answer: {}", without_url(&e)))?;
    if !resp.status().is_success() {
        return Err(format!("the source answered HTTP {}", resp.status().as_u16()));
    }
    if resp.content_length().is_some_and(|n| n > MAX_PAGE_BYTES as u64) {
        return Err(format!("a page is larger than {MAX_PAGE_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| format!("reading the source failed: {}", without_url(&e)))? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(format!("a page is larger than {MAX_PAGE_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn without_url(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    if let Some(u) = e.url() {
        s = s.replace(u.as_str(), "…");
    }
    s
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// Writes one page and adds its counts to `run` (stored as progress).
async fn write_page(
    state: &AppState,
    row: &HarvestSourceRow,
    run_id: &str,
    run: &mut HarvestRun,
    page: Vec<Harvested>,
) -> Result<(), String> {
    let records: Vec<HarvestedRecord> = page
        .into_iter()
        .map(|h| HarvestedRecord {
            source_id: row.id.clone(),
            hash: h.hash(),
            raw: h.raw().to_string(),
            keywords: serde_json::to_string(&h.keywords).unwrap_or_else(|_| "[]".into()),
            bbox: h.bbox.map(|b| format!("[{},{},{},{}]", b[0], b[1], b[2], b[3])),
            remote_id: h.remote_id,
            title: h.title,
            abstract_text: h.abstract_text,
            kind: h.kind,
            modified: h.modified,
        })
        .collect();
    let (st, id, rid) = (state.clone(), row.id.clone(), run_id.to_owned());
    let c = blocking(move || Ok(st.auth.upsert_harvested(&id, &rid, &records)?))
        .await
        .map_err(|e| format!("storing records failed: {}", e.detail))?;
    run.added += c.added;
    run.updated += c.updated;
    run.unchanged += c.unchanged;
    store_run(state, &row.id, run).await;
    Ok(())
}

/// Reads the whole source page by page, writing each page before reading the next.
async fn harvest(state: &AppState, row: &HarvestSourceRow, run_id: &str, run: &mut HarvestRun) -> Result<(), String> {
    let kind = HarvestType::parse(&row.kind).ok_or_else(|| format!("unknown source type `{}`", row.kind))?;
    match kind {
        HarvestType::Csw => {
            let mut start = 1u64;
            loop {
                let url = with_query(
                    &row.url,
                    &format!(
                        "service=CSW&version=2.0.2&request=GetRecords&typeNames=csw:Record&resultType=results\
                         &ElementSetName=full&outputSchema=http://www.opengis.net/cat/csw/2.0.2\
                         &maxRecords={PAGE_SIZE}&startPosition={start}"
                    ),
                );
                let body = get_bounded(state, &url).await?;
                let page = parse::csw_page(&body).map_err(|e| format!("page at record {start}: {e}"))?;
                drop(body);
                let next = page.next;
                write_page(state, row, run_id, run, page.records).await?;
                match next {
                    None => return Ok(()),
                    // A source that does not move forward would loop for ever.
                    Some(n) if n <= start => return Err(format!("nextRecord {n} after page at {start}: no progress")),
                    Some(n) => start = n,
                }
            }
        }
        HarvestType::OgcApiRecords => {
            let base = row.url.split('?').next().unwrap_or(&row.url).trim_end_matches('/');
            let mut url = if base.ends_with("/items") {
                with_query(&row.url, &format!("limit={PAGE_SIZE}"))
            } else {
                let query = row.url.split_once('?').map(|(_, q)| format!("{q}&")).unwrap_or_default();
                format!("{base}/items?{query}limit={PAGE_SIZE}&f=json")
            };
            let mut seen = std::collections::HashSet::new();
            loop {
                if !seen.insert(url.clone()) {
                    return Err("the `next` links go round in a circle".into());
                }
                let body = get_bounded(state, &url).await?;
                let (records, next) = parse::records_page(&body)?;
                drop(body);
                write_page(state, row, run_id, run, records).await?;
                match next {
                    Some(n) => url = n,
                    None => return Ok(()),
                }
            }
        }
        HarvestType::Wms | HarvestType::Wmts | HarvestType::Wfs | HarvestType::OgcApiFeatures => {
            let service = match kind {
                HarvestType::Wms => ServiceType::Wms,
                HarvestType::Wmts => ServiceType::Wmts,
                HarvestType::Wfs => ServiceType::Wfs,
                _ => ServiceType::OgcApiFeatures,
            };
            let url = match service {
                ServiceType::OgcApiFeatures => {
                    let base = row.url.split('?').next().unwrap_or(&row.url).trim_end_matches('/');
                    let base =
                        if base.ends_with("/collections") { base.to_owned() } else { format!("{base}/collections") };
                    format!("{base}?f=json")
                }
                _ if row.url.split('?').next().is_some_and(|p| p.ends_with(".xml")) => row.url.clone(),
                _ => with_query(
                    &row.url,
                    &format!("SERVICE={}&REQUEST=GetCapabilities", service.as_str().to_ascii_uppercase()),
                ),
            };
            let body = get_bounded(state, &url).await?;
            let layers = crate::services::capabilities::parse(service, &body, &row.title)?;
            drop(body);
            let records = parse::layer_records(layers, kind.as_str(), &url);
            for chunk in records.chunks(PAGE_SIZE as usize) {
                write_page(state, row, run_id, run, chunk.to_vec()).await?;
            }
            Ok(())
        }
    }
}

/// `serve`'s schedule: every [`HarvestConfig::schedule_every`], each source whose
/// `every_minutes` have passed since its last run starts (one after another).
pub(crate) async fn schedule(state: AppState) {
    let mut tick = tokio::time::interval(HarvestConfig::default().schedule_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let st = state.clone();
        let rows = match blocking(move || Ok(st.auth.harvest_sources()?)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e.detail, "reading harvest sources failed");
                continue;
            }
        };
        for row in rows.into_iter().filter(|r| r.every_minutes.is_some()) {
            match claim(&state, &row, false).await {
                Ok(Some(c)) => {
                    execute(state.clone(), row, c).await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e.detail, "claiming a harvest run failed"),
            }
        }
    }
}
