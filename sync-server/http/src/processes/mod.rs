//! OGC API – Processes 1.0 (the analysis engine, 知识引擎): `/processes`, `/processes/{id}`,
//! `/processes/{id}/execution`, `/jobs`, `/jobs/{id}`, `/jobs/{id}/results`.
//!
//! An execution runs synchronously within the request (the result in the answer: raw
//! `application/geo+json`, or a `{"result": …}` document when the request says
//! `"response": "document"`) unless the request carries `Prefer: respond-async`: then it is a job
//! (`jobs`), answered at once with `201 Created`, `Location: /jobs/{id}` and its status, and run
//! by a worker thread in order. Jobs are the caller's own (admins see all). The caller's right to
//! read the layer is checked when the process reads it and again when a job's result is served,
//! since a job may finish long after it was granted.
//!
//! `run` adapts layers to `shikong-analysis` and back; `save` writes a result as a versioned
//! layer (`save_as`); `catalog` describes the processes.

pub(crate) mod catalog;
mod density;
mod history;
pub mod jobs;
mod run;
mod save;
mod shapes;
mod spacetime;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use shikong_auth::{Actor, Principal, TokenId};
use shikong_protocol::api::Link;
use shikong_protocol::api::processes::{
    Execute, JobList, JobStatus, ProcessList, ResponseKind, ResultsDocument, StatusInfo, StatusType,
};

pub use jobs::{ProcessJobs, ProcessLimits};

use crate::access::{Action, Caller};
use crate::body::Body;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, WeakAppState, blocking, json_ok};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/processes", get(list))
        .route("/processes/{process_id}", get(describe))
        .route("/processes/{process_id}/execution", post(execute))
        .route("/jobs", get(job_list))
        .route("/jobs/{job_id}", get(job_status).delete(job_dismiss))
        .route("/jobs/{job_id}/results", get(job_results))
}

async fn list(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let base = state.base_url(&headers);
    let processes =
        catalog::PROCESSES.iter().filter_map(|id| catalog::describe(id, &base)).map(|d| d.summary).collect();
    let links = vec![Link::new(format!("{base}/processes"), "self", "application/json", "处理 (processes)")];
    json_ok(&ProcessList { processes, links })
}

async fn describe(State(state): State<AppState>, Path(id): Path<String>, headers: HeaderMap) -> ApiResult<Response> {
    let d = catalog::describe(&id, &state.base_url(&headers)).ok_or_else(|| no_process(&id))?;
    json_ok(&d)
}

fn no_process(id: &str) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no-such-process", format!("no process `{id}`; GET /processes lists them"))
}

fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split([',', ';']).any(|t| t.trim().eq_ignore_ascii_case("respond-async")))
}

/// `POST /processes/{id}/execution`.
async fn execute(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let principal = caller.require()?.clone();
    if !catalog::PROCESSES.contains(&id.as_str()) {
        return Err(no_process(&id));
    }
    let bytes = body.0;
    let request: Execute = blocking(move || {
        serde_json::from_slice(&bytes).map_err(|e| ApiError::bad_body(format!("not an execute request: {e}")))
    })
    .await?;
    if request.subscriber.is_some() {
        return Err(ApiError::bad_body("`subscriber` callbacks are not supported; poll GET /jobs/{id}"));
    }
    let response = request.response.unwrap_or_default();
    let base = state.base_url(&headers);
    if wants_async(&headers) {
        let now = jobs::now_text();
        let job = jobs::JobRecord {
            id: uuid::Uuid::new_v4(),
            process: id,
            owner: principal.username.clone(),
            inputs: request.inputs,
            response,
            status: JobStatus::Accepted,
            message: Some("排队等待 (waiting its turn)".into()),
            progress: 0,
            created: now.clone(),
            started: None,
            finished: None,
            updated: now,
            finished_unix: None,
            failure: None,
            attempts: 0,
            media_type: "application/geo+json".into(),
        };
        let st = state.clone();
        let job = blocking(move || {
            st.processes.sweep().map_err(ApiError::internal)?;
            st.processes.admit(job)
        })
        .await?;
        let status = status_info(&job, &base);
        let mut r = (StatusCode::CREATED, axum::Json(&status)).into_response();
        let location = HeaderValue::from_str(&format!("{base}/jobs/{}", job.id)).map_err(ApiError::internal)?;
        r.headers_mut().insert(header::LOCATION, location);
        r.headers_mut().insert("preference-applied", HeaderValue::from_static("respond-async"));
        return Ok(r);
    }
    let st = state.clone();
    let deadline = Instant::now() + state.config.timeout;
    let output = blocking(move || {
        let cancel = AtomicBool::new(false);
        let progress = |_: u8, _: &str| {};
        let ctx = run::Ctx { state: &st, principal: Some(principal), cancel: &cancel, deadline, progress: &progress };
        let mut out = run::execute(&ctx, &id, request.inputs)?;
        save::save(&ctx, &id, &mut out)?;
        Ok(out.output)
    })
    .await?;
    let body =
        blocking(move || serde_json::to_vec(&output).map_err(ApiError::internal).map(|b| (output.media_type(), b)))
            .await?;
    respond(body.0, body.1, response)
}

/// The answer of an execution or `/jobs/{id}/results`: the output as it is (`raw`) or inside a
/// results document.
fn respond(media_type: &'static str, body: Vec<u8>, response: ResponseKind) -> ApiResult<Response> {
    match response {
        ResponseKind::Raw => Ok(([(header::CONTENT_TYPE, media_type)], body).into_response()),
        ResponseKind::Document => {
            let raw = serde_json::value::RawValue::from_string(String::from_utf8(body).map_err(ApiError::internal)?)
                .map_err(ApiError::internal)?;
            json_ok(&ResultsDocument { result: raw })
        }
    }
}

fn status_info(j: &jobs::JobRecord, base: &str) -> StatusInfo {
    let mut links = vec![
        Link::new(format!("{base}/jobs/{}", j.id), "self", "application/json", "任务状态 (job status)"),
        Link::new(format!("{base}/jobs"), "up", "application/json", "任务列表 (jobs)"),
    ];
    if j.status == JobStatus::Successful {
        links.push(Link::new(
            format!("{base}/jobs/{}/results", j.id),
            "http://www.opengis.net/def/rel/ogc/1.0/results",
            if j.response == ResponseKind::Raw { &j.media_type } else { "application/json" },
            "结果 (results)",
        ));
    }
    StatusInfo {
        process_id: j.process.clone(),
        kind: StatusType::Process,
        job_id: j.id.to_string(),
        status: j.status,
        message: j.message.clone(),
        created: j.created.clone(),
        started: j.started.clone(),
        finished: j.finished.clone(),
        updated: j.updated.clone(),
        progress: j.progress,
        links,
    }
}

fn owned_job(state: &AppState, caller: &Caller, id: &str) -> ApiResult<jobs::JobRecord> {
    state.processes.owned(caller, id)
}

/// `GET /jobs`: the caller's jobs (an admin's: everyone's), oldest first.
async fn job_list(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let p = caller.require()?;
    let base = state.base_url(&headers);
    let owner = (!p.is_admin()).then(|| p.username.clone());
    let jobs = state.processes.list(owner.as_deref()).iter().map(|j| status_info(j, &base)).collect();
    let links = vec![Link::new(format!("{base}/jobs"), "self", "application/json", "任务列表 (jobs)")];
    json_ok(&JobList { jobs, links })
}

async fn job_status(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let job = owned_job(&state, &caller, &id)?;
    json_ok(&status_info(&job, &state.base_url(&headers)))
}

/// `DELETE /jobs/{id}`: dismisses a waiting or running job; removes a finished one and its result.
async fn job_dismiss(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let job = owned_job(&state, &caller, &id)?;
    let st = state.clone();
    let job = blocking(move || st.processes.dismiss(job.id)).await?;
    json_ok(&status_info(&job, &state.base_url(&headers)))
}

/// `GET /jobs/{id}/results`: the result of a successful job, as the execution asked (raw or
/// document); a failed job's problem; 404 `result-not-ready` before it finished.
async fn job_results(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    let job = owned_job(&state, &caller, &id)?;
    match job.status {
        JobStatus::Successful => {}
        JobStatus::Failed => {
            return Err(job
                .failure
                .as_ref()
                .map_or_else(|| ApiError::internal("a failed job without its failure"), |f| f.to_error()));
        }
        JobStatus::Dismissed => return Err(ApiError::new(StatusCode::GONE, "dismissed", "the job was dismissed")),
        JobStatus::Accepted | JobStatus::Running => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "result-not-ready",
                format!(
                    "job {} is {}; poll GET /jobs/{}",
                    job.id,
                    if job.status == JobStatus::Running { "running" } else { "waiting" },
                    job.id
                ),
            ));
        }
    }
    // The owner's right to read the layer is checked again now, not only when the job ran.
    let st = state.clone();
    let layer = job.inputs.get("collection").and_then(|c| c.as_str()).map(str::to_owned);
    let caller2 = caller.clone();
    let path = state.processes.result_path(job.id);
    let bytes = blocking(move || {
        if let Some(name) = layer
            && let Ok(l) = st.store().layer(&name)
        {
            caller2.allowed(&st, &l, Action::Read)?;
        }
        std::fs::read(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ApiError::new(StatusCode::GONE, "expired", "the result has expired"),
            _ => ApiError::internal(e),
        })
    })
    .await?;
    let media_type = if job.media_type == "application/json" { "application/json" } else { "application/geo+json" };
    respond(media_type, bytes, job.response)
}

/// The job owner's account as it stands now (a demotion or a disabled account since the job
/// was accepted counts).
fn principal_now(state: &AppState, username: &str) -> ApiResult<Principal> {
    let user = state.auth.user(&Actor::local("processes"), username)?;
    if user.status != shikong_auth::UserStatus::Active {
        return Err(ApiError::forbidden(format!("the account `{username}` is {}", user.status.as_str())));
    }
    Ok(Principal {
        user_id: user.id,
        username: user.username,
        role: user.role,
        groups: user.groups,
        device: None,
        token: TokenId(0),
    })
}

/// Runs one job to its end and records how it ended.
fn run_job(state: &AppState, job: jobs::JobRecord, cancel: Arc<AtomicBool>) {
    let id = job.id;
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> ApiResult<()> {
        let principal = principal_now(state, &job.owner)?;
        let progress = |pct: u8, msg: &str| {
            state.processes.update(id, false, |j| {
                if j.status == JobStatus::Running {
                    j.progress = pct;
                    j.message = Some(msg.to_owned());
                }
            })
        };
        let deadline = Instant::now() + state.processes.limits.max_run;
        let ctx = run::Ctx { state, principal: Some(principal), cancel: &cancel, deadline, progress: &progress };
        let mut out = run::execute(&ctx, &job.process, job.inputs.clone())?;
        save::save(&ctx, &job.process, &mut out)?;
        ctx.check()?;
        progress(95, "写出结果 (writing the result)");
        let path = state.processes.result_path(id);
        let part = path.with_extension("json.part");
        let bytes = serde_json::to_vec(&out.output).map_err(ApiError::internal)?;
        state.processes.update(id, true, |j| j.media_type = out.output.media_type().to_owned());
        std::fs::create_dir_all(state.processes.dir()).map_err(ApiError::internal)?;
        std::fs::write(&part, bytes).map_err(ApiError::internal)?;
        std::fs::rename(&part, &path).map_err(ApiError::internal)?;
        Ok(())
    }))
    .unwrap_or_else(|_| Err(ApiError::internal(format!("process job {id} panicked"))));
    state.processes.finish(id, outcome);
}

/// Starts the worker threads ([`ProcessLimits::running`]; 0 starts none, and jobs wait for a
/// server that has them); each ends when the state is dropped.
pub(crate) fn spawn_workers(state: &AppState) {
    for n in 0..state.processes.limits.running {
        let weak: WeakAppState = state.downgrade();
        let jobs = state.processes.clone();
        let spawned = std::thread::Builder::new().name(format!("process-jobs-{n}")).spawn(move || {
            loop {
                let Some((job, cancel)) = jobs.next(Duration::from_secs(1)) else {
                    if weak.upgrade().is_none() {
                        return;
                    }
                    continue;
                };
                match weak.upgrade() {
                    Some(state) => run_job(&state, job, cancel),
                    None => return,
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a process job worker");
        }
    }
}
