//! Batch geocoding jobs as a bounded, durable, expiring list: any logged-in user (citizens too)
//! can start one, so their number, their disk and their lifetime are all capped. The list
//! machinery is the server's one job store (`crate::jobstore`, shared with the process jobs);
//! this module says what a batch job is, how it comes back after a restart and how a bound
//! crossed is worded.
//!
//! - **Bounded**: at most [`BatchLimits::per_user`] unfinished jobs per user and
//!   [`BatchLimits::total`] on the server, and at most [`BatchLimits::kept_per_user`] /
//!   [`BatchLimits::kept_total`] jobs kept with their results; over that a new job is a 429
//!   problem+json saying which bound and when to retry. Jobs run one at a time
//!   ([`BatchLimits::running`]) through the server's `blocking` budget, the rest wait.
//! - **Durable**: the list is `DATA/geocode-jobs/jobs.json`, rewritten atomically (temporary
//!   file + rename) when a job is added, finishes or is removed. After a restart finished jobs
//!   are found with their results; a job that was running is marked failed ("interrupted by a
//!   server restart"): its upload was only in memory, so it is not resumed.
//! - **Expiring**: a finished job and its result file are deleted [`BatchLimits::keep_for`]
//!   after it finished (24 h by default) — hidden from the API at once, its files removed by the
//!   next sweep (at start, and whenever a job is created or a result read). Files in the folder
//!   that no kept job owns (a crash's `.part`) are removed at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shikong_protocol::api::{self, BatchState};

use crate::access::Caller;
use crate::jobstore::{Budget, Job, JobStore, Over, now_unix};
use crate::problem::{ApiError, ApiResult};

/// Bounds of batch jobs (a server setting: `ServerConfig::geocode_jobs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLimits {
    /// Unfinished (waiting or running) jobs one user may have.
    pub per_user: usize,
    /// Unfinished jobs on the server.
    pub total: usize,
    /// Jobs (finished ones with their results included) one user may keep.
    pub kept_per_user: usize,
    /// Jobs kept on the server.
    pub kept_total: usize,
    /// Jobs geocoding at the same time (the rest wait their turn).
    pub running: usize,
    /// How long a finished job and its result are kept.
    pub keep_for: Duration,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            per_user: 2,
            total: 8,
            kept_per_user: 20,
            kept_total: 500,
            running: 1,
            keep_for: Duration::from_secs(24 * 3600),
        }
    }
}

/// A batch job as kept in the list (shown as [`api::BatchJob`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchJob {
    pub id: uuid::Uuid,
    pub owner: String,
    pub state: BatchState,
    pub column: String,
    pub format: String,
    pub total: usize,
    pub done: usize,
    pub matched: usize,
    pub ambiguous: usize,
    pub nomatch: usize,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    /// When it finished (UTC seconds), for expiry.
    pub finished_unix: Option<i64>,
}

impl BatchJob {
    /// The job as `GET /geocode/batch/{job}` shows it, with its result URL once done.
    pub fn to_wire(&self, base: &str) -> api::BatchJob {
        api::BatchJob {
            id: self.id,
            owner: self.owner.clone(),
            state: self.state,
            column: self.column.clone(),
            format: self.format.clone(),
            total: self.total as u64,
            done: self.done as u64,
            matched: self.matched as u64,
            ambiguous: self.ambiguous as u64,
            nomatch: self.nomatch as u64,
            error: self.error.clone(),
            created_at: self.created_at.clone(),
            finished_at: self.finished_at.clone(),
            result: (self.state == BatchState::Done).then(|| format!("{base}/geocode/batch/{}/result", self.id)),
        }
    }
}

impl Job for BatchJob {
    const WHAT: &'static str = "batch job list";
    const PRETTY: bool = true;
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
        self.state == BatchState::Running
    }
    /// Ids are UUIDv7: by id is by time.
    fn order_key(&self) -> (&str, uuid::Uuid) {
        ("", self.id)
    }
    fn result_name(&self) -> String {
        format!("{}.{}", self.id, self.format)
    }
    /// The upload was only in memory: a job that was running cannot resume.
    fn reopened(&mut self, result_exists: bool) {
        if self.state == BatchState::Running {
            self.state = BatchState::Failed;
            self.error = Some("interrupted by a server restart; upload the table again".to_owned());
            self.finished_at = Some(shikong_model::time::beijing(jiff::Timestamp::now()));
            self.finished_unix = Some(now_unix());
        }
        if self.state == BatchState::Done && !result_exists {
            self.state = BatchState::Failed;
            self.error = Some("the result file is missing".to_owned());
        }
    }
}

/// The batch jobs of a server (see the module documentation).
#[derive(Debug)]
pub struct BatchJobs {
    store: JobStore<BatchJob>,
    /// Turns to geocode ([`BatchLimits::running`]).
    pub(crate) turns: tokio::sync::Semaphore,
}

impl BatchJobs {
    /// Opens the list in `DATA/geocode-jobs/`: running jobs of the previous process are marked
    /// failed, expired jobs and files no job owns are removed.
    pub fn open(data_dir: &Path, limits: BatchLimits) -> anyhow::Result<Self> {
        let budget = Budget {
            per_user: limits.per_user,
            total: limits.total,
            kept_per_user: limits.kept_per_user,
            kept_total: limits.kept_total,
            keep_for: limits.keep_for,
        };
        let store = JobStore::open(data_dir.join("geocode-jobs"), budget)?;
        Ok(BatchJobs { store, turns: tokio::sync::Semaphore::new(limits.running.max(1)) })
    }

    /// Where a job's result is (its file name is the job id and format).
    pub fn result_path(&self, job: &BatchJob) -> PathBuf {
        self.store.result_path(job)
    }

    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Adds a job if the bounds allow it (after removing expired ones); 429 otherwise. File I/O:
    /// call off the async threads.
    pub fn admit(&self, job: BatchJob) -> Result<(), ApiError> {
        self.store.sweep().map_err(ApiError::internal)?;
        self.store
            .admit(job, |over, l| {
                let keep = l.keep_for.as_secs();
                let (what, retry, limit) = match over {
                    Over::PerUser(n) => {
                        (format!("you have {n} batch jobs unfinished; at most {} at a time", l.per_user), 60, "per-user")
                    }
                    Over::Total(n) => (
                        format!("the server has {n} batch jobs unfinished; at most {} at a time", l.total),
                        60,
                        "total",
                    ),
                    Over::KeptPerUser(n) => (
                        format!(
                            "you keep {n} batch jobs; at most {} (delete one with DELETE /geocode/batch/{{job}}, or wait: results are kept {keep} s)",
                            l.kept_per_user
                        ),
                        keep,
                        "kept-per-user",
                    ),
                    Over::KeptTotal(n) => {
                        (format!("the server keeps {n} batch jobs; at most {}", l.kept_total), keep, "kept-total")
                    }
                };
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many-jobs", what)
                    .with("retry-after", retry)
                    .with("limit", limit)
            })
            .map(drop)
    }

    /// Changes a job in memory (progress).
    pub fn update(&self, id: uuid::Uuid, f: impl FnOnce(&mut BatchJob)) {
        self.store.update(id, false, f);
    }

    /// Ends a job: done or failed with `error`, kept until [`BatchLimits::keep_for`] from now.
    pub fn finish(&self, id: uuid::Uuid, error: Option<String>) {
        self.store.finish(id, |j| {
            j.state = if error.is_some() { BatchState::Failed } else { BatchState::Done };
            j.error = error;
            j.finished_at = Some(shikong_model::time::beijing(jiff::Timestamp::now()));
            j.finished_unix = Some(now_unix());
            true
        });
    }

    /// A job that has not expired.
    pub fn get(&self, id: uuid::Uuid) -> Option<BatchJob> {
        self.store.get(id)
    }

    /// The job `id` if the caller owns it or is an admin.
    pub(crate) fn owned(&self, caller: &Caller, id: &str) -> ApiResult<BatchJob> {
        self.store.owned(caller, id, "batch job", || {
            ApiError::not_found(format!("no batch job `{id}` (results are kept for a limited time)"))
        })
    }

    /// Removes a finished job and its result; `None` when there is no such job.
    pub fn remove(&self, id: uuid::Uuid) -> std::io::Result<Option<BatchJob>> {
        self.store.remove(id)
    }

    /// Deletes expired jobs and their results. File I/O: call off the async threads.
    pub fn sweep(&self) -> std::io::Result<usize> {
        self.store.sweep()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(owner: &str) -> BatchJob {
        BatchJob {
            id: uuid::Uuid::now_v7(),
            owner: owner.to_owned(),
            state: BatchState::Running,
            column: "地址".into(),
            format: "csv".into(),
            total: 1,
            done: 0,
            matched: 0,
            ambiguous: 0,
            nomatch: 0,
            error: None,
            created_at: String::new(),
            finished_at: None,
            finished_unix: None,
        }
    }

    #[test]
    fn bounded_durable_and_expiring() {
        let dir = tempfile::tempdir().unwrap();
        let limits = BatchLimits { per_user: 1, total: 2, kept_per_user: 3, kept_total: 10, ..BatchLimits::default() };
        let jobs = BatchJobs::open(dir.path(), limits.clone()).unwrap();
        let a = job("li");
        jobs.admit(a.clone()).unwrap();
        let e = jobs.admit(job("li")).unwrap_err();
        assert_eq!((e.status, e.extra["limit"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("per-user")));
        let b = job("wang");
        jobs.admit(b.clone()).unwrap();
        let e = jobs.admit(job("zhang")).unwrap_err();
        assert_eq!(e.extra["limit"], "total");
        std::fs::write(jobs.result_path(&a), "done").unwrap();
        jobs.finish(a.id, None);
        std::fs::write(dir.path().join("geocode-jobs/stray.part"), "x").unwrap();

        // A restart: the finished job is there with its result, the running one failed.
        drop(jobs);
        let jobs = BatchJobs::open(dir.path(), limits.clone()).unwrap();
        assert_eq!(jobs.get(a.id).unwrap().state, BatchState::Done);
        let b2 = jobs.get(b.id).unwrap();
        assert_eq!(b2.state, BatchState::Failed);
        assert!(b2.error.unwrap().contains("interrupted by a server restart"));
        assert!(!dir.path().join("geocode-jobs/stray.part").exists(), "files no job owns are removed");
        assert!(jobs.result_path(&a).is_file());

        // Expiry: hidden at once, removed by the sweep.
        drop(jobs);
        let jobs = BatchJobs::open(dir.path(), BatchLimits { keep_for: Duration::ZERO, ..limits }).unwrap();
        assert!(jobs.get(a.id).is_none());
        assert!(!jobs.result_path(&a).exists());
        let list: Vec<BatchJob> =
            serde_json::from_slice(&std::fs::read(dir.path().join("geocode-jobs/jobs.json")).unwrap()).unwrap();
        assert!(list.is_empty(), "{list:?}");
    }
}
