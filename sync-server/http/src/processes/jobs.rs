//! Jobs of OGC API – Processes as a bounded, durable, expiring list, and the worker threads
//! that run them. The list machinery is the server's one job store (`crate::jobstore`, shared
//! with batch geocoding); this module says what a process job is and how it is worded.
//!
//! - **Bounded**: unfinished jobs per user and in total, jobs kept per user and in total
//!   ([`ProcessLimits`]); over a bound a new job is a 429 problem+json naming it. At most
//!   [`ProcessLimits::running`] jobs run at once (worker threads); the rest wait in order.
//! - **Durable**: the list is `DATA/processes/jobs.json`, rewritten atomically (temporary file +
//!   rename) at every change of state; results are `DATA/processes/{job}.json`. A job's inputs are
//!   kept with it, so after a restart a job that was waiting or running is run again from the
//!   start (its status says so): nothing a client was promised is lost to a restart.
//! - **Expiring**: a finished job and its result are deleted [`ProcessLimits::keep_for`] after it
//!   finished (24 h by default): hidden at once, its file removed by the next sweep (at start and
//!   whenever a job is created or finishes). Files no kept job owns are removed at start.
//! - **Cancellable**: `DELETE /jobs/{id}` dismisses a waiting job at once and asks a running one
//!   to stop; the run checks between its steps, while it reads, and inside the analysis library's
//!   long loops (a `shikong_analysis::Control` fed by the job's cancel flag and deadline), throws
//!   its work away and writes nothing.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};
use shikong_protocol::api::processes::{JobStatus, ResponseKind};

use crate::access::Caller;
use crate::jobstore::{Budget, Job, JobStore, Over, now_unix};
use crate::problem::{ApiError, ApiResult};

/// Bounds of process jobs (a server setting: `ServerConfig::processes`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessLimits {
    /// Unfinished (waiting or running) jobs one user may have.
    pub per_user: usize,
    /// Unfinished jobs on the server.
    pub total: usize,
    /// Jobs (finished ones with their results included) one user may keep.
    pub kept_per_user: usize,
    /// Jobs kept on the server.
    pub kept_total: usize,
    /// Jobs running at the same time (worker threads; 0: none, jobs wait for a server with some).
    pub running: usize,
    /// How long a finished job and its result are kept.
    pub keep_for: Duration,
    /// The longest one job may run (checked between its steps).
    pub max_run: Duration,
    /// Features one process may read from a layer.
    pub max_features: usize,
}

impl Default for ProcessLimits {
    fn default() -> Self {
        ProcessLimits {
            per_user: 4,
            total: 32,
            kept_per_user: 50,
            kept_total: 1_000,
            running: 1,
            keep_for: Duration::from_secs(24 * 3600),
            max_run: Duration::from_secs(15 * 60),
            max_features: 500_000,
        }
    }
}

/// What went wrong in a failed job: the problem a synchronous execution would have answered.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    pub status: u16,
    pub kind: String,
    pub detail: String,
    #[serde(default)]
    pub extra: Map<String, Json>,
}

impl Failure {
    pub fn of(e: &ApiError) -> Self {
        Failure { status: e.status.as_u16(), kind: e.kind.to_owned(), detail: e.detail.clone(), extra: e.extra.clone() }
    }

    pub fn to_error(&self) -> ApiError {
        let kind: &'static str = match self.kind.as_str() {
            "invalid-parameter" => "invalid-parameter",
            "invalid-body" => "invalid-body",
            "not-found" => "not-found",
            "forbidden" => "forbidden",
            "conflict" => "conflict",
            "too-large" => "too-large",
            "timeout" => "timeout",
            _ => "process-failed",
        };
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        ApiError { status, kind, detail: self.detail.clone(), extra: self.extra.clone() }
    }
}

/// A job as kept in the list (shown as `statusInfo`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: uuid::Uuid,
    pub process: String,
    pub owner: String,
    pub inputs: Map<String, Json>,
    pub response: ResponseKind,
    pub status: JobStatus,
    pub message: Option<String>,
    pub progress: u8,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    pub updated: String,
    /// When it finished (UTC seconds), for expiry.
    pub finished_unix: Option<i64>,
    pub failure: Option<Failure>,
    /// Times the job was started (a restart runs it again).
    #[serde(default)]
    pub attempts: u32,
    /// The media type of its raw result (`application/geo+json` for features).
    #[serde(default = "geojson")]
    pub media_type: String,
}

fn geojson() -> String {
    "application/geo+json".into()
}

impl JobRecord {
    /// A finished job whose result is still wanted.
    fn successful(&self) -> bool {
        self.status == JobStatus::Successful
    }
}

impl Job for JobRecord {
    const WHAT: &'static str = "process job list";
    fn id(&self) -> uuid::Uuid {
        self.id
    }
    fn owner(&self) -> &str {
        &self.owner
    }
    fn finished_unix(&self) -> Option<i64> {
        self.finished_unix
    }
    fn unfinished(&self) -> bool {
        !self.status.is_final()
    }
    fn order_key(&self) -> (&str, uuid::Uuid) {
        (&self.created, self.id)
    }
    fn result_name(&self) -> String {
        format!("{}.json", self.id)
    }
    fn keeps_result(&self) -> bool {
        self.successful()
    }
    /// Jobs keep their inputs, so one that was waiting or running is queued again.
    fn reopened(&mut self, _result_exists: bool) {
        if !self.status.is_final() {
            self.status = JobStatus::Accepted;
            self.progress = 0;
            self.message = Some("服务器重启，任务重新排队 (queued again after a server restart)".into());
            self.updated = now_text();
        }
    }
}

pub(crate) fn now_text() -> String {
    shikong_model::time::beijing(jiff::Timestamp::now())
}

/// The jobs of a server (see the module documentation).
#[derive(Debug)]
pub struct ProcessJobs {
    store: JobStore<JobRecord>,
    pub(crate) limits: ProcessLimits,
}

impl ProcessJobs {
    /// Opens the list in `DATA/processes/`: jobs the previous process left waiting or running are
    /// queued again, expired jobs and files no job owns are removed.
    pub fn open(data_dir: &Path, limits: ProcessLimits) -> anyhow::Result<Self> {
        let budget = Budget {
            per_user: limits.per_user,
            total: limits.total,
            kept_per_user: limits.kept_per_user,
            kept_total: limits.kept_total,
            keep_for: limits.keep_for,
        };
        Ok(ProcessJobs { store: JobStore::open(data_dir.join("processes"), budget)?, limits })
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Where a job's result is kept.
    pub fn result_path(&self, id: uuid::Uuid) -> PathBuf {
        self.dir().join(format!("{id}.json"))
    }

    /// Adds a job waiting its turn, or a 429 naming the bound it would cross.
    pub fn admit(&self, job: JobRecord) -> Result<JobRecord, ApiError> {
        self.store.admit(job, |over, b| {
            let (name, max, what) = match over {
                Over::PerUser(_) => ("per_user", b.per_user, "unfinished jobs of one user"),
                Over::Total(_) => ("total", b.total, "unfinished jobs on the server"),
                Over::KeptPerUser(_) => {
                    ("kept_per_user", b.kept_per_user, "jobs kept for one user (dismiss finished ones)")
                }
                Over::KeptTotal(_) => ("kept_total", b.kept_total, "jobs kept on the server"),
            };
            ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-jobs",
                format!("at most {max} {what}; wait for a job to finish or DELETE /jobs/{{id}}"),
            )
            .with("limit", name)
            .with("max", max as u64)
        })
    }

    /// A job still kept (expired jobs are gone).
    pub fn get(&self, id: uuid::Uuid) -> Option<JobRecord> {
        self.store.get(id)
    }

    /// The job `id` if the caller owns it or is an admin.
    pub(crate) fn owned(&self, caller: &Caller, id: &str) -> ApiResult<JobRecord> {
        self.store.owned(caller, id, "job", || {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no-such-job",
                format!("no job `{id}` (finished jobs are kept for a limited time)"),
            )
        })
    }

    /// Every job kept, oldest first (owned by `owner`, or all when `None`).
    pub fn list(&self, owner: Option<&str>) -> Vec<JobRecord> {
        self.store.list(owner)
    }

    /// Changes a job and keeps the list (progress is kept in memory only, since a restart runs
    /// the job again from the start anyway).
    pub fn update(&self, id: uuid::Uuid, durable: bool, f: impl FnOnce(&mut JobRecord)) {
        self.store.update(id, durable, |j| {
            f(j);
            j.updated = now_text();
        });
    }

    /// Waits for the oldest waiting job and marks it running (with its cancel flag), or `None`
    /// after `wait` without one.
    pub(crate) fn next(&self, wait: Duration) -> Option<(JobRecord, Arc<AtomicBool>)> {
        self.store.take_next(
            wait,
            |j| j.status == JobStatus::Accepted,
            |j| {
                j.status = JobStatus::Running;
                j.started = Some(now_text());
                j.updated = now_text();
                j.progress = 0;
                j.attempts += 1;
            },
        )
    }

    /// Records how a run ended, unless the job was dismissed meanwhile (then its result file, if
    /// written, is removed). A run stopped by its cancel flag counts as dismissed.
    pub(crate) fn finish(&self, id: uuid::Uuid, outcome: Result<(), ApiError>) {
        let recorded = self.store.finish(id, |j| {
            if j.status != JobStatus::Dismissed {
                match outcome {
                    Ok(()) => {
                        j.status = JobStatus::Successful;
                        j.progress = 100;
                        j.message = Some("完成 (done)".into());
                    }
                    Err(e) => {
                        j.status = JobStatus::Failed;
                        j.message = Some(e.detail.clone());
                        j.failure = Some(Failure::of(&e));
                    }
                }
            }
            j.finished = Some(now_text());
            j.finished_unix = Some(now_unix());
            j.updated = now_text();
            j.successful()
        });
        if recorded.is_none() {
            let _ = std::fs::remove_file(self.result_path(id));
        }
    }

    /// `DELETE /jobs/{id}`: a waiting or running job becomes dismissed (a running one is asked to
    /// stop); a finished job is removed with its result. Returns the job as it ends up.
    pub fn dismiss(&self, id: uuid::Uuid) -> Result<JobRecord, ApiError> {
        let ended = self.store.end(id, |j| {
            let finished = j.status.is_final();
            if !finished {
                j.message = Some("已取消 (dismissed)".into());
                j.finished = Some(now_text());
                j.finished_unix = Some(now_unix());
                j.updated = now_text();
            }
            j.status = JobStatus::Dismissed;
            finished
        });
        ended.map_err(ApiError::internal)?.ok_or_else(|| ApiError::not_found(format!("no job `{id}`")))
    }

    /// Forgets expired jobs and removes their files.
    pub fn sweep(&self) -> std::io::Result<()> {
        self.store.sweep().map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A list as the store before the shared job store wrote it (compact, without the fields
    /// added later): it loads, the running job is queued again, the finished one keeps its result.
    #[test]
    fn a_list_written_before_loads_and_requeues_the_running_job() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("processes");
        std::fs::create_dir_all(&folder).unwrap();
        let (run, done) = ("0190f0f0-0000-4000-8000-000000000001", "0190f0f0-0000-4000-8000-000000000002");
        let record = |id: &str, status: &str, finished: &str| {
            format!(
                r#"{{"id":"{id}","process":"hotspot","owner":"wang","inputs":{{"collection":"reports"}},"response":"raw","status":"{status}","message":null,"progress":40,"created":"2026-12-07T10:00:00+08:00","started":null,"finished":null,"updated":"2026-12-07T10:00:00+08:00","finished_unix":{finished},"failure":null}}"#
            )
        };
        let now = jiff::Timestamp::now().as_second().to_string();
        let list = format!("[{},{}]", record(run, "running", "null"), record(done, "successful", &now));
        std::fs::write(folder.join("jobs.json"), list).unwrap();
        std::fs::write(folder.join(format!("{done}.json")), "{}").unwrap();

        let jobs = ProcessJobs::open(dir.path(), ProcessLimits::default()).unwrap();
        let r = jobs.get(run.parse().unwrap()).unwrap();
        assert_eq!((r.status, r.progress, r.attempts), (JobStatus::Accepted, 0, 0));
        assert!(r.message.unwrap().contains("queued again"));
        let d = jobs.get(done.parse().unwrap()).unwrap();
        assert_eq!((d.status, d.media_type.as_str()), (JobStatus::Successful, "application/geo+json"));
        assert!(jobs.result_path(d.id).is_file());
        assert_eq!(jobs.list(Some("wang")).len(), 2);
    }
}
