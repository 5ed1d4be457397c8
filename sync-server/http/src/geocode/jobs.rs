//! Batch geocoding jobs as a bounded, durable, expiring list: any logged-in user (citizens too)
//! can start one, so their number, their disk and their lifetime are all capped.
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

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use shikong_protocol::api::{self, BatchState};

use crate::problem::ApiError;

/// The list file inside `DATA/geocode-jobs/`.
const LIST: &str = "jobs.json";

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

    fn expired(&self, now: i64, keep_for: Duration) -> bool {
        self.finished_unix.is_some_and(|t| now.saturating_sub(t) >= keep_for.as_secs() as i64)
    }
}

fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// The batch jobs of a server (see the module documentation).
#[derive(Debug)]
pub struct BatchJobs {
    dir: PathBuf,
    limits: BatchLimits,
    jobs: Mutex<HashMap<uuid::Uuid, BatchJob>>,
    /// Turns to geocode ([`BatchLimits::running`]).
    pub(crate) turns: tokio::sync::Semaphore,
}

impl BatchJobs {
    /// Opens the list in `DATA/geocode-jobs/`: running jobs of the previous process are marked
    /// failed, expired jobs and files no job owns are removed.
    pub fn open(data_dir: &Path, limits: BatchLimits) -> anyhow::Result<Self> {
        let dir = data_dir.join("geocode-jobs");
        let mut jobs: HashMap<uuid::Uuid, BatchJob> = HashMap::new();
        let list = dir.join(LIST);
        if list.is_file() {
            let bytes = std::fs::read(&list)?;
            let stored: Vec<BatchJob> = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: not a batch job list: {e}", list.display()))?;
            let now = now_unix();
            for mut j in stored {
                if j.state == BatchState::Running {
                    j.state = BatchState::Failed;
                    j.error = Some("interrupted by a server restart; upload the table again".to_owned());
                    j.finished_at = Some(shikong_model::time::beijing(jiff::Timestamp::now()));
                    j.finished_unix = Some(now);
                }
                if j.state == BatchState::Done && !dir.join(result_name(&j)).is_file() {
                    j.state = BatchState::Failed;
                    j.error = Some("the result file is missing".to_owned());
                }
                jobs.insert(j.id, j);
            }
        }
        let turns = tokio::sync::Semaphore::new(limits.running.max(1));
        let me = BatchJobs { dir, limits, jobs: Mutex::new(jobs), turns };
        me.sweep()?;
        // Files no kept job owns: results of jobs dropped from the list, a crash's `.part`.
        if me.dir.is_dir() {
            let keep: Vec<String> = me.lock().values().map(result_name).collect();
            for entry in std::fs::read_dir(&me.dir)?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                if name != LIST && !keep.contains(&name) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        Ok(me)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<uuid::Uuid, BatchJob>> {
        self.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Where a job's result is (its file name is the job id and format).
    pub fn result_path(&self, job: &BatchJob) -> PathBuf {
        self.dir.join(result_name(job))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the list (temporary file, fsync, rename): called with the lock held, so writes
    /// never interleave.
    fn persist(&self, jobs: &HashMap<uuid::Uuid, BatchJob>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut list: Vec<&BatchJob> = jobs.values().collect();
        list.sort_by_key(|j| j.id);
        let bytes = serde_json::to_vec_pretty(&list).map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{LIST}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(LIST))
    }

    /// Adds a job if the bounds allow it (after removing expired ones); 429 otherwise. File I/O:
    /// call off the async threads.
    pub fn admit(&self, job: BatchJob) -> Result<(), ApiError> {
        self.sweep().map_err(ApiError::internal)?;
        let mut jobs = self.lock();
        let l = &self.limits;
        let unfinished = |j: &&BatchJob| j.state == BatchState::Running;
        let mine = |j: &&BatchJob| j.owner == job.owner;
        let over = |what: String, retry: u64| {
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too-many-jobs", what).with("retry-after", retry)
        };
        let running_mine = jobs.values().filter(mine).filter(unfinished).count();
        if running_mine >= l.per_user {
            return Err(over(
                format!("you have {running_mine} batch jobs unfinished; at most {} at a time", l.per_user),
                60,
            )
            .with("limit", "per-user"));
        }
        let running = jobs.values().filter(unfinished).count();
        if running >= l.total {
            return Err(over(
                format!("the server has {running} batch jobs unfinished; at most {} at a time", l.total),
                60,
            )
            .with("limit", "total"));
        }
        let keep = l.keep_for.as_secs();
        let kept_mine = jobs.values().filter(mine).count();
        if kept_mine >= l.kept_per_user {
            return Err(over(
                format!(
                    "you keep {kept_mine} batch jobs; at most {} (delete one with DELETE /geocode/batch/{{job}}, or wait: results are kept {keep} s)",
                    l.kept_per_user
                ),
                keep,
            )
            .with("limit", "kept-per-user"));
        }
        if jobs.len() >= l.kept_total {
            return Err(over(format!("the server keeps {} batch jobs; at most {}", jobs.len(), l.kept_total), keep)
                .with("limit", "kept-total"));
        }
        jobs.insert(job.id, job);
        self.persist(&jobs).map_err(ApiError::internal)
    }

    /// Changes a job in memory (progress).
    pub fn update(&self, id: uuid::Uuid, f: impl FnOnce(&mut BatchJob)) {
        if let Some(j) = self.lock().get_mut(&id) {
            f(j);
        }
    }

    /// Ends a job: done or failed with `error`, kept until [`BatchLimits::keep_for`] from now.
    pub fn finish(&self, id: uuid::Uuid, error: Option<String>) {
        let mut jobs = self.lock();
        if let Some(j) = jobs.get_mut(&id) {
            j.state = if error.is_some() { BatchState::Failed } else { BatchState::Done };
            j.error = error;
            j.finished_at = Some(shikong_model::time::beijing(jiff::Timestamp::now()));
            j.finished_unix = Some(now_unix());
        }
        if let Err(e) = self.persist(&jobs) {
            tracing::error!(error = %e, "writing the batch job list failed");
        }
    }

    /// A job that has not expired.
    pub fn get(&self, id: uuid::Uuid) -> Option<BatchJob> {
        let now = now_unix();
        self.lock().get(&id).filter(|j| !j.expired(now, self.limits.keep_for)).cloned()
    }

    /// Removes a finished job and its result; `None` when there is no such job.
    pub fn remove(&self, id: uuid::Uuid) -> std::io::Result<Option<BatchJob>> {
        let mut jobs = self.lock();
        let Some(job) = jobs.remove(&id) else { return Ok(None) };
        remove_quietly(&self.result_path(&job))?;
        self.persist(&jobs)?;
        Ok(Some(job))
    }

    /// Deletes expired jobs and their results. File I/O: call off the async threads.
    pub fn sweep(&self) -> std::io::Result<usize> {
        let now = now_unix();
        let mut jobs = self.lock();
        let expired: Vec<uuid::Uuid> =
            jobs.values().filter(|j| j.expired(now, self.limits.keep_for)).map(|j| j.id).collect();
        for id in &expired {
            if let Some(j) = jobs.remove(id) {
                remove_quietly(&self.result_path(&j))?;
            }
        }
        if !expired.is_empty() {
            self.persist(&jobs)?;
        }
        Ok(expired.len())
    }
}

fn result_name(job: &BatchJob) -> String {
    format!("{}.{}", job.id, job.format)
}

fn remove_quietly(p: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
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
