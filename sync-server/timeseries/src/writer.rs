//! The one writer thread of a time-series store, with group commit: appends from many callers
//! wait in a bounded queue; the writer takes the first, gathers more until the group holds
//! [`WriterOptions::group_max`] readings or [`WriterOptions::flush_deadline`] has passed, commits
//! them in one transaction (one fsync) and only then answers each caller. A full queue blocks
//! callers (back-pressure), so memory stays flat however fast readings arrive.
//!
//! Why a thread rather than a lock: a commit costs a disk flush (SQLite `synchronous = FULL`) or
//! round trips (PostgreSQL), nearly independent of how many readings it carries; one writer
//! gathering many callers' readings is what turns ~400 commits/s into tens of thousands of
//! readings/s. Other writes (definitions, retention) run on the same thread between groups, so
//! they are ordered with the appends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{Outcome, Reading, Result, TsError};

/// How the writer groups appends.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// Append calls waiting at most (then callers block).
    pub queue: usize,
    /// Readings per commit at most.
    pub group_max: usize,
    /// How long the writer waits for more appends after the first of a group.
    pub flush_deadline: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions { queue: 256, group_max: 50_000, flush_deadline: Duration::from_millis(2) }
    }
}

/// What a backend's writer connection does.
pub(crate) trait Sink: Send + 'static {
    /// Commits the readings of a group durably; one outcome per reading.
    fn commit(&mut self, readings: &[Reading]) -> Result<Vec<Outcome>>;
}

type Task<S> = Box<dyn FnOnce(&mut S) + Send>;

enum Job<S> {
    Append(Vec<Reading>, SyncSender<Result<Vec<Outcome>>>),
    Run(Task<S>),
}

/// Counters shared with the store handle.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub accepted: AtomicU64,
    pub duplicates: AtomicU64,
    pub corrected: AtomicU64,
    pub refused: AtomicU64,
    pub commits: AtomicU64,
    pub queued: AtomicU64,
}

/// The handle callers hold.
pub(crate) struct Writer<S> {
    tx: Mutex<Option<SyncSender<Job<S>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    pub stats: Arc<Stats>,
}

impl<S> std::fmt::Debug for Writer<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").field("stats", &self.stats).finish_non_exhaustive()
    }
}

fn gone() -> TsError {
    TsError::WriterGone("the writer thread ended".into())
}

impl<S: Sink> Writer<S> {
    pub fn start(name: &str, sink: S, options: WriterOptions) -> Result<Self> {
        let (tx, rx) = sync_channel(options.queue.max(1));
        let stats = Arc::new(Stats::default());
        let st = stats.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || run(sink, rx, options, &st))
            .map_err(|e| TsError::WriterGone(e.to_string()))?;
        Ok(Writer { tx: Mutex::new(Some(tx)), thread: Mutex::new(Some(thread)), stats })
    }

    fn sender(&self) -> Result<SyncSender<Job<S>>> {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).clone().ok_or_else(gone)
    }

    /// Checks a batch's size, queues it and waits for its commit (both backends' `append`).
    pub fn append_checked(&self, batch: &[Reading]) -> Result<Vec<Outcome>> {
        if batch.len() > crate::MAX_BATCH {
            return Err(TsError::BatchTooLarge { len: batch.len(), max: crate::MAX_BATCH });
        }
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.append(batch.to_vec())
    }

    /// Queues a batch and waits for its commit.
    pub fn append(&self, batch: Vec<Reading>) -> Result<Vec<Outcome>> {
        let (reply, answer) = sync_channel(1);
        let n = batch.len() as u64;
        self.stats.queued.fetch_add(n, Ordering::Relaxed);
        if self.sender()?.send(Job::Append(batch, reply)).is_err() {
            self.stats.queued.fetch_sub(n, Ordering::Relaxed);
            return Err(gone());
        }
        answer.recv().map_err(|_| gone())?
    }

    /// Runs `f` on the writer's connection, between groups.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce(&mut S) -> Result<T> + Send + 'static) -> Result<T> {
        let (reply, answer) = sync_channel(1);
        let task: Task<S> = Box::new(move |s: &mut S| {
            let _ = reply.send(f(s));
        });
        self.sender()?.send(Job::Run(task)).map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }
}

impl<S> Drop for Writer<S> {
    fn drop(&mut self) {
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take() {
            let _ = t.join();
        }
    }
}

fn run<S: Sink>(mut sink: S, rx: Receiver<Job<S>>, options: WriterOptions, stats: &Stats) {
    let mut pending: Option<Job<S>> = None;
    loop {
        let job = match pending.take() {
            Some(j) => j,
            None => match rx.recv() {
                Ok(j) => j,
                Err(_) => return,
            },
        };
        let (first, reply) = match job {
            Job::Run(f) => {
                f(&mut sink);
                continue;
            }
            Job::Append(b, r) => (b, r),
        };
        let mut group = vec![(first.len(), reply)];
        let mut readings = first;
        let deadline = Instant::now() + options.flush_deadline;
        while readings.len() < options.group_max {
            let wait = deadline.saturating_duration_since(Instant::now());
            let next = if wait.is_zero() {
                rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                rx.recv_timeout(wait)
            };
            match next {
                Ok(Job::Append(b, r)) => {
                    group.push((b.len(), r));
                    readings.extend(b);
                }
                Ok(run) => {
                    pending = Some(run);
                    break;
                }
                Err(_) => break,
            }
        }
        stats.queued.fetch_sub(readings.len() as u64, Ordering::Relaxed);
        let result = sink.commit(&readings);
        match result {
            Ok(outcomes) => {
                stats.commits.fetch_add(1, Ordering::Relaxed);
                for o in &outcomes {
                    let c = match o {
                        Outcome::Accepted => &stats.accepted,
                        Outcome::Duplicate => &stats.duplicates,
                        Outcome::Corrected { .. } => &stats.corrected,
                        Outcome::Refused { .. } => &stats.refused,
                    };
                    c.fetch_add(1, Ordering::Relaxed);
                }
                let mut rest = outcomes.into_iter();
                for (n, reply) in group {
                    let _ = reply.send(Ok(rest.by_ref().take(n).collect()));
                }
            }
            Err(e) => {
                for (_, reply) in group {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// The monitoring figures: the store's own plus this handle's counters.
pub(crate) fn counts(s: &Stats, datastreams: u64, readings: u64, corrections: u64, partitions: u64) -> crate::Counts {
    let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
    crate::Counts {
        datastreams,
        readings,
        corrections,
        accepted: get(&s.accepted),
        duplicates: get(&s.duplicates),
        corrected: get(&s.corrected),
        refused: get(&s.refused),
        commits: get(&s.commits),
        queued: get(&s.queued),
        partitions,
    }
}
