//! One bounded, durable, expiring job list, shared by the kinds of background jobs the server
//! keeps for its users (OGC API – Processes jobs in `processes::jobs`, batch geocoding jobs in
//! `geocode::jobs`). Each kind says what its record is ([`Job`]) and how its jobs come back after
//! a restart; the list does the rest the same way for all of them:
//!
//! - **Durable**: the list is `DIR/jobs.json`, a JSON array of the records, rewritten atomically
//!   (temporary file, fsync, rename) with the lock held, so writes never interleave and a crash
//!   leaves the old list or the new one. At start every record is handed to [`Job::reopened`] (a
//!   kind that cannot resume marks its interrupted jobs failed; one that can queues them again).
//! - **Expiring**: a finished job and its result file are deleted `keep_for` after it finished:
//!   hidden from `get`/`list` at once, removed by the next [`JobStore::sweep`] (at start, when a
//!   job finishes, and wherever the kind calls it). At start, files in `DIR` that no kept job owns
//!   (a crash's partial result, a dropped job's result, a leftover scratch folder) are removed.
//! - **Bounded**: [`JobStore::admit`] counts unfinished jobs per user and in total, and kept jobs
//!   per user and in total ([`Budget`]); over a bound the kind words the 429 from [`Over`].
//! - **Cancellable**: a job taken by [`JobStore::take_next`] has a cancel flag that
//!   [`JobStore::end`] raises, which the run polls (`shikong_analysis::Control` reads it inside
//!   long computations).
//! - **Owned**: [`JobStore::owned`] answers a job to its owner or an admin, 404 otherwise.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::access::Caller;
use crate::problem::{ApiError, ApiResult};

/// The list file inside the store's folder.
pub const LIST: &str = "jobs.json";

/// A kind of job record as the store keeps it.
pub trait Job: Clone + Serialize + DeserializeOwned {
    /// What the list is, for the error when a list file cannot be read.
    const WHAT: &'static str;
    /// Whether the list file is written indented (kept as each kind always wrote it).
    const PRETTY: bool = false;
    fn id(&self) -> uuid::Uuid;
    fn owner(&self) -> &str;
    /// When it finished (UTC seconds); `None` while waiting or running.
    fn finished_unix(&self) -> Option<i64>;
    /// Waiting or running: counted against the unfinished bounds.
    fn unfinished(&self) -> bool;
    /// The order of the list file and of listings (oldest first).
    fn order_key(&self) -> (&str, uuid::Uuid);
    /// The name of its result file in the store's folder.
    fn result_name(&self) -> String;
    /// Whether a result file it has is kept at start (false: removed as a leftover).
    fn keeps_result(&self) -> bool {
        true
    }
    /// Brings a record back after a restart (`result_exists`: its result file is there).
    fn reopened(&mut self, result_exists: bool);

    fn expired(&self, now: i64, keep_for: Duration) -> bool {
        self.finished_unix().is_some_and(|t| now.saturating_sub(t) >= keep_for.as_secs() as i64)
    }
}

/// The bounds of one store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Unfinished jobs one user may have.
    pub per_user: usize,
    /// Unfinished jobs in the store.
    pub total: usize,
    /// Jobs (finished ones included) one user may keep.
    pub kept_per_user: usize,
    /// Jobs kept in the store.
    pub kept_total: usize,
    /// How long a finished job and its result are kept.
    pub keep_for: Duration,
}

/// The bound a new job would cross, with how many there are now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Over {
    PerUser(usize),
    Total(usize),
    KeptPerUser(usize),
    KeptTotal(usize),
}

pub(crate) fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[derive(Debug)]
struct Inner<J> {
    jobs: HashMap<uuid::Uuid, J>,
    /// Cancel flags of the jobs being run.
    running: HashMap<uuid::Uuid, Arc<AtomicBool>>,
}

/// A job list in one folder (see the module documentation).
#[derive(Debug)]
pub struct JobStore<J> {
    dir: PathBuf,
    budget: Budget,
    inner: Mutex<Inner<J>>,
    /// Rung when a job is admitted (workers of [`JobStore::take_next`] wait on it).
    bell: Condvar,
}

impl<J: Job> JobStore<J> {
    /// Opens the list in `dir` (created when the first job is kept): every record is
    /// [`Job::reopened`], expired jobs and files no kept job owns are removed.
    pub fn open(dir: PathBuf, budget: Budget) -> anyhow::Result<Self> {
        let mut jobs = HashMap::new();
        let list = dir.join(LIST);
        if list.is_file() {
            let bytes = std::fs::read(&list)?;
            let stored: Vec<J> = serde_json::from_slice(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: not a {}: {e}", list.display(), J::WHAT))?;
            for mut j in stored {
                let exists = dir.join(j.result_name()).is_file();
                j.reopened(exists);
                jobs.insert(j.id(), j);
            }
        }
        let me =
            JobStore { dir, budget, inner: Mutex::new(Inner { jobs, running: HashMap::new() }), bell: Condvar::new() };
        me.sweep()?;
        if me.dir.is_dir() {
            let inner = me.lock();
            me.save(&inner)?;
            me.sweep_files(&inner)?;
        }
        Ok(me)
    }

    fn lock(&self) -> MutexGuard<'_, Inner<J>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a job's result is kept.
    pub fn result_path(&self, job: &J) -> PathBuf {
        self.dir.join(job.result_name())
    }

    /// Writes the list (temporary file, fsync, rename); called with the lock held.
    fn save(&self, inner: &Inner<J>) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let mut all: Vec<&J> = inner.jobs.values().collect();
        all.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        let bytes = if J::PRETTY { serde_json::to_vec_pretty(&all) } else { serde_json::to_vec(&all) }
            .map_err(std::io::Error::other)?;
        let tmp = self.dir.join(format!("{LIST}.tmp"));
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, self.dir.join(LIST))
    }

    fn save_or_warn(&self, inner: &Inner<J>) {
        if let Err(e) = self.save(inner) {
            tracing::warn!(error = %e, list = J::WHAT, "cannot save the job list");
        }
    }

    /// Adds a job if no bound of the [`Budget`] is crossed (bounds checked in the order of
    /// [`Over`]'s variants); `over` words the error otherwise.
    pub fn admit(&self, job: J, over: impl FnOnce(Over, &Budget) -> ApiError) -> Result<J, ApiError> {
        let mut inner = self.lock();
        let (now, b) = (now_unix(), &self.budget);
        let live: Vec<&J> = inner.jobs.values().filter(|j| !j.expired(now, b.keep_for)).collect();
        let mine = |j: &&&J| j.owner() == job.owner();
        let open_mine = live.iter().filter(mine).filter(|j| j.unfinished()).count();
        let open = live.iter().filter(|j| j.unfinished()).count();
        let kept_mine = live.iter().filter(mine).count();
        let crossed = if open_mine >= b.per_user {
            Some(Over::PerUser(open_mine))
        } else if open >= b.total {
            Some(Over::Total(open))
        } else if kept_mine >= b.kept_per_user {
            Some(Over::KeptPerUser(kept_mine))
        } else if live.len() >= b.kept_total {
            Some(Over::KeptTotal(live.len()))
        } else {
            None
        };
        if let Some(o) = crossed {
            return Err(over(o, b));
        }
        inner.jobs.insert(job.id(), job.clone());
        self.save(&inner).map_err(ApiError::internal)?;
        drop(inner);
        self.bell.notify_all();
        Ok(job)
    }

    /// A job still kept (expired jobs are gone).
    pub fn get(&self, id: uuid::Uuid) -> Option<J> {
        let keep_for = self.budget.keep_for;
        self.lock().jobs.get(&id).filter(|j| !j.expired(now_unix(), keep_for)).cloned()
    }

    /// The job `id` (text from a URL) if the caller owns it or is an admin: `missing()` when
    /// there is no such job kept, 403 when it is someone else's (`what` names it there).
    pub fn owned(&self, caller: &Caller, id: &str, what: &str, missing: impl Fn() -> ApiError) -> ApiResult<J> {
        let uuid: uuid::Uuid = id.parse().map_err(|_| missing())?;
        let job = self.get(uuid).ok_or_else(missing)?;
        caller.require_owner_or_admin(job.owner(), &format!("{what} {uuid}"))?;
        Ok(job)
    }

    /// Every job kept, oldest first (owned by `owner`, or all when `None`).
    pub fn list(&self, owner: Option<&str>) -> Vec<J> {
        let (now, keep_for) = (now_unix(), self.budget.keep_for);
        let inner = self.lock();
        let mut out: Vec<J> = inner
            .jobs
            .values()
            .filter(|j| !j.expired(now, keep_for) && owner.is_none_or(|o| j.owner() == o))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.order_key().cmp(&b.order_key()));
        out
    }

    /// Changes a job; `durable` also writes the list (progress need not be: a restart does not
    /// resume it). `None` when there is no such job.
    pub fn update<R>(&self, id: uuid::Uuid, durable: bool, f: impl FnOnce(&mut J) -> R) -> Option<R> {
        let mut inner = self.lock();
        let out = f(inner.jobs.get_mut(&id)?);
        if durable {
            self.save_or_warn(&inner);
        }
        Some(out)
    }

    /// Waits up to `wait` for the oldest job that `waiting` accepts, `start`s it and gives it with
    /// its (new, lowered) cancel flag.
    pub fn take_next(
        &self,
        wait: Duration,
        waiting: impl Fn(&J) -> bool,
        start: impl FnOnce(&mut J),
    ) -> Option<(J, Arc<AtomicBool>)> {
        let deadline = Instant::now() + wait;
        let mut inner = self.lock();
        loop {
            let first = inner.jobs.values().filter(|j| waiting(j)).min_by(|a, b| a.order_key().cmp(&b.order_key()));
            if let Some(id) = first.map(Job::id) {
                let flag = Arc::new(AtomicBool::new(false));
                inner.running.insert(id, flag.clone());
                let j = inner.jobs.get_mut(&id)?;
                start(j);
                let job = j.clone();
                self.save_or_warn(&inner);
                return Some((job, flag));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            inner = self.bell.wait_timeout(inner, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    /// Records how a run ended: forgets its cancel flag, applies `f` (which returns whether the
    /// result is kept; if not, its file is removed), writes the list and sweeps. `None` when the
    /// job is no longer kept.
    pub fn finish(&self, id: uuid::Uuid, f: impl FnOnce(&mut J) -> bool) -> Option<()> {
        let mut inner = self.lock();
        inner.running.remove(&id);
        let j = inner.jobs.get_mut(&id)?;
        if !f(j) {
            let _ = std::fs::remove_file(self.dir.join(j.result_name()));
        }
        self.save_or_warn(&inner);
        drop(inner);
        if let Err(e) = self.sweep() {
            tracing::warn!(error = %e, list = J::WHAT, "sweeping expired jobs failed");
        }
        Some(())
    }

    /// Ends a job at its owner's request: raises its cancel flag if it is running, applies `f`;
    /// when `f` returns true the job is removed with its result. Returns the job as `f` left it,
    /// `Ok(None)` when there is no such job.
    pub fn end(&self, id: uuid::Uuid, f: impl FnOnce(&mut J) -> bool) -> std::io::Result<Option<J>> {
        let mut inner = self.lock();
        if let Some(flag) = inner.running.get(&id) {
            flag.store(true, Ordering::Relaxed);
        }
        let Some(j) = inner.jobs.get_mut(&id) else { return Ok(None) };
        let remove = f(j);
        let out = j.clone();
        if remove {
            inner.jobs.remove(&id);
            remove_quietly(&self.dir.join(out.result_name()))?;
        }
        self.save(&inner)?;
        Ok(Some(out))
    }

    /// Removes a job and its result; `Ok(None)` when there is no such job.
    pub fn remove(&self, id: uuid::Uuid) -> std::io::Result<Option<J>> {
        self.end(id, |_| true)
    }

    /// Forgets expired jobs and removes their result files; returns how many.
    pub fn sweep(&self) -> std::io::Result<usize> {
        let now = now_unix();
        let mut inner = self.lock();
        let gone: Vec<uuid::Uuid> =
            inner.jobs.values().filter(|j| j.expired(now, self.budget.keep_for)).map(J::id).collect();
        for id in &gone {
            if let Some(j) = inner.jobs.remove(id) {
                remove_quietly(&self.dir.join(j.result_name()))?;
            }
        }
        if !gone.is_empty() {
            self.save(&inner)?;
        }
        Ok(gone.len())
    }

    /// Removes whatever in the folder no kept job owns (results of dropped jobs, partial files,
    /// scratch folders).
    fn sweep_files(&self, inner: &Inner<J>) -> std::io::Result<()> {
        let keep: Vec<String> = inner.jobs.values().filter(|j| j.keeps_result()).map(J::result_name).collect();
        for entry in std::fs::read_dir(&self.dir)?.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == LIST || keep.contains(&name) {
                continue;
            }
            let path = entry.path();
            let _ = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        }
        Ok(())
    }
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
    use serde::Deserialize;

    /// The smallest job: done or not, resumable.
    #[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
    struct T {
        id: uuid::Uuid,
        owner: String,
        created: String,
        finished_unix: Option<i64>,
        note: String,
    }

    impl Job for T {
        const WHAT: &'static str = "test job list";
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
            self.finished_unix.is_none()
        }
        fn order_key(&self) -> (&str, uuid::Uuid) {
            (&self.created, self.id)
        }
        fn result_name(&self) -> String {
            format!("{}.out", self.id)
        }
        fn reopened(&mut self, result_exists: bool) {
            if self.finished_unix.is_none() {
                self.note = "requeued".into();
            } else if !result_exists {
                self.note = "lost".into();
            }
        }
    }

    fn t(owner: &str, created: &str) -> T {
        T {
            id: uuid::Uuid::new_v4(),
            owner: owner.into(),
            created: created.into(),
            finished_unix: None,
            note: String::new(),
        }
    }

    fn budget() -> Budget {
        Budget { per_user: 1, total: 2, kept_per_user: 2, kept_total: 3, keep_for: Duration::from_secs(3600) }
    }

    fn named(o: Over, _: &Budget) -> ApiError {
        ApiError::new(axum::http::StatusCode::TOO_MANY_REQUESTS, "too-many-jobs", format!("{o:?}"))
    }

    #[test]
    fn budget_names_the_bound_crossed_first() {
        let dir = tempfile::tempdir().unwrap();
        let s: JobStore<T> = JobStore::open(dir.path().join("j"), budget()).unwrap();
        let a = s.admit(t("li", "1"), named).unwrap();
        assert_eq!(s.admit(t("li", "2"), named).unwrap_err().detail, "PerUser(1)");
        s.admit(t("wang", "2"), named).unwrap();
        assert_eq!(s.admit(t("zhang", "3"), named).unwrap_err().detail, "Total(2)");
        s.finish(a.id, |j| {
            j.finished_unix = Some(now_unix());
            true
        })
        .unwrap();
        s.admit(t("li", "3"), named).unwrap();
        s.finish(s.list(Some("li"))[1].id, |j| {
            j.finished_unix = Some(now_unix());
            true
        });
        assert_eq!(s.admit(t("li", "4"), named).unwrap_err().detail, "KeptPerUser(2)");
        assert_eq!(s.admit(t("zhao", "4"), named).unwrap_err().detail, "KeptTotal(3)");
        // Removing one frees its place, and its result goes with it.
        std::fs::write(s.result_path(&a), "r").unwrap();
        assert_eq!(s.remove(a.id).unwrap().unwrap().id, a.id);
        assert!(!s.result_path(&a).exists());
        s.admit(t("li", "5"), named).unwrap();
    }

    #[test]
    fn reload_reopens_records_and_expiry_removes_results() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("j");
        let s: JobStore<T> = JobStore::open(folder.clone(), Budget { per_user: 9, ..budget() }).unwrap();
        let waiting = s.admit(t("li", "1"), named).unwrap();
        let done = s.admit(t("li", "2"), named).unwrap();
        std::fs::write(s.result_path(&done), "r").unwrap();
        s.finish(done.id, |j| {
            j.finished_unix = Some(now_unix());
            true
        });
        std::fs::write(folder.join("stray.part"), "x").unwrap();
        std::fs::create_dir(folder.join("kde-scratch")).unwrap();
        drop(s);

        // A restart: every record back, reopened; leftovers removed; the list file written in order.
        let s: JobStore<T> = JobStore::open(folder.clone(), budget()).unwrap();
        assert_eq!(s.get(waiting.id).unwrap().note, "requeued");
        assert_eq!(s.get(done.id).unwrap().note, "", "its result is there");
        assert!(s.result_path(&done).is_file());
        assert!(!folder.join("stray.part").exists() && !folder.join("kde-scratch").exists());
        let ids: Vec<uuid::Uuid> = s.list(None).iter().map(|j| j.id).collect();
        assert_eq!(ids, [waiting.id, done.id]);
        let on_disk: Vec<T> = serde_json::from_slice(&std::fs::read(folder.join(LIST)).unwrap()).unwrap();
        assert_eq!(on_disk.iter().map(|j| j.id).collect::<Vec<_>>(), ids);
        drop(s);

        // Expiry: the finished job and its result go; the unfinished one stays.
        let s: JobStore<T> = JobStore::open(folder.clone(), Budget { keep_for: Duration::ZERO, ..budget() }).unwrap();
        assert!(s.get(done.id).is_none());
        assert!(!s.result_path(&done).exists());
        assert!(s.get(waiting.id).is_some());
        let on_disk: Vec<T> = serde_json::from_slice(&std::fs::read(folder.join(LIST)).unwrap()).unwrap();
        assert_eq!(on_disk.len(), 1);
    }

    #[test]
    fn take_next_is_oldest_first_and_end_raises_the_flag() {
        let dir = tempfile::tempdir().unwrap();
        let s: JobStore<T> = JobStore::open(dir.path().join("j"), Budget { per_user: 9, ..budget() }).unwrap();
        let b = s.admit(t("li", "2"), named).unwrap();
        let a = s.admit(t("li", "1"), named).unwrap();
        let waiting = |j: &T| j.note.is_empty();
        let (first, flag) = s.take_next(Duration::ZERO, waiting, |j| j.note = "running".into()).unwrap();
        assert_eq!(first.id, a.id);
        assert!(!flag.load(Ordering::Relaxed));
        let ended = s.end(a.id, |j| {
            j.note = "dismissed".into();
            false
        });
        assert_eq!(ended.unwrap().unwrap().note, "dismissed");
        assert!(flag.load(Ordering::Relaxed), "the run is asked to stop");
        let start = |j: &mut T| j.note = "running".into();
        assert_eq!(s.take_next(Duration::ZERO, waiting, start).unwrap().0.id, b.id);
        assert!(s.take_next(Duration::ZERO, waiting, start).is_none());
    }
}
