//! The evaluator: one thread per server state that consumes the observation stream
//! (`sta/stream.rs`: every newly stored reading, HTTP or MQTT), judges each reading with the rules
//! that apply to its datastream (`shikong_sta::alerts::Tracker` per (rule, datastream)) and opens
//! or closes incidents (`storage.rs`). A periodic [`tick`] reloads the rules (other processes'
//! too), re-reads which incidents storage holds open and judges silence rules from the newest
//! stored reading of each datastream in scope.
//!
//! Why a thread of its own: judging is cheap but opening a case is a store transaction; doing it
//! on the thread that appended the readings would lengthen every observation request, and on an
//! async thread would block it. The trackers live on this one thread, so they need no lock.
//! The thread holds the server state only while it works and ends once the state is gone.
//!
//! **Nothing missed when behind.** The stream keeps `OBSERVATION_BACKLOG` batches; an evaluator
//! that falls further behind gets `Lagged` and those batches are gone from the stream, not from
//! the time-series store. So on `Lagged` it catches up from the store ([`CATCH_UP_PAGE`] readings
//! a read, in time order) for every datastream some rule watches, after the newest phenomenon
//! time it took for that datastream (`Memory::seen`; a datastream it took nothing of since it
//! started is read from the instant it subscribed), then goes on with the stream: readings taken
//! twice are not newer than what their tracker judged and change nothing. One datastream's
//! catch-up reads at most [`CATCH_UP_MAX`] readings; beyond that it judges the newest
//! [`CATCH_UP_PAGE`] (an ongoing breach or recovery is still seen) and says so in the log.
//! **At start** (its first round, once the server state is complete), before anything else, it
//! judges silence rules against the store's newest readings, so a station that fell silent while
//! the server was down is caught without waiting for a tick.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use shikong_sta::alerts::{Condition, Scope, Tracker, Transition, silence};
use shikong_timeseries::{MAX_LATEST, MAX_RANGE_LIMIT, Order};
use tokio::sync::broadcast::error::TryRecvError;

use super::storage::{self, Station, StoredRule};
use crate::AppState;
use crate::problem::{ApiError, ApiResult};
use crate::sta::stream::ObservationBatch;

/// How long the thread waits for a control message before looking at the stream again.
const POLL: Duration = Duration::from_millis(100);
/// How long [`settle`] and [`tick`] wait for the thread.
const WAIT: Duration = Duration::from_secs(120);
/// Readings one catch-up read takes (the store's largest `range`).
pub const CATCH_UP_PAGE: usize = MAX_RANGE_LIMIT;
/// Readings of one datastream one catch-up judges at most.
pub const CATCH_UP_MAX: usize = 20 * CATCH_UP_PAGE;

enum Msg {
    Settle(mpsc::Sender<()>),
    Tick(Timestamp, mpsc::Sender<ApiResult<TickReport>>),
    Reload,
    /// Stop taking from the stream until the receiver's sender is dropped; ack once stopped.
    Hold(mpsc::Sender<()>, mpsc::Receiver<()>),
}

/// The evaluator's handle in the server state.
#[derive(Debug, Default)]
pub struct Alerts {
    ctl: Mutex<Option<mpsc::Sender<Msg>>>,
}

/// What a tick did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub opened: usize,
    pub closed: usize,
}

fn send(state: &AppState, msg: Msg) -> ApiResult<()> {
    let ctl = state.alerts.ctl.lock().unwrap_or_else(PoisonError::into_inner);
    let tx = ctl.as_ref().ok_or_else(|| ApiError::internal("the alert evaluator is not running"))?;
    tx.send(msg).map_err(|_| ApiError::internal("the alert evaluator stopped"))
}

/// Waits until every observation stored before the call has been judged (tests, and callers that
/// need the alerts to be current). Blocking.
pub fn settle(state: &AppState) -> ApiResult<()> {
    let (tx, rx) = mpsc::channel();
    send(state, Msg::Settle(tx))?;
    rx.recv_timeout(WAIT).map_err(|_| ApiError::internal("the alert evaluator did not answer"))
}

/// Reloads the rules, re-reads the open incidents and judges silence rules at `now` (`serve`
/// every [`super::TICK_EVERY`]; tests with the time they want). Blocking.
pub fn tick(state: &AppState, now: Timestamp) -> ApiResult<TickReport> {
    let (tx, rx) = mpsc::channel();
    send(state, Msg::Tick(now, tx))?;
    rx.recv_timeout(WAIT).map_err(|_| ApiError::internal("the alert evaluator did not answer"))?
}

/// Tells the evaluator the rules changed.
pub fn reload(state: &AppState) {
    let _ = send(state, Msg::Reload);
}

/// The evaluator held by [`hold`]: it takes nothing from the observation stream until this is
/// dropped.
#[derive(Debug)]
pub struct Held {
    _release: mpsc::Sender<()>,
}

/// Holds the evaluator once it has judged everything stored before the call (blocking), so that
/// it falls behind the observation stream as a slow one would: tests force a `Lagged` with it.
pub fn hold(state: &AppState) -> ApiResult<Held> {
    let (ack, acked) = mpsc::channel();
    let (release, held) = mpsc::channel();
    send(state, Msg::Hold(ack, held))?;
    acked.recv_timeout(WAIT).map_err(|_| ApiError::internal("the alert evaluator did not answer"))?;
    Ok(Held { _release: release })
}

/// Starts the evaluator of `state` (subscribed to the observation stream from now on).
pub(crate) fn spawn(state: &AppState) {
    let mut stream = state.observations().subscribe();
    let subscribed = Timestamp::now();
    let (tx, rx) = mpsc::channel::<Msg>();
    *state.alerts.ctl.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    // The thread holds the state only while it works: an idle evaluator must not keep a closed
    // server's state (and the drops that flush its audit summary) alive.
    let weak = state.downgrade();
    let spawned = std::thread::Builder::new().name("alerts".into()).spawn(move || {
        let mut memory = Memory {
            rules: None,
            trackers: HashMap::new(),
            stations: HashMap::new(),
            seen: HashMap::new(),
            subscribed,
            started: false,
        };
        loop {
            let msg = match rx.recv_timeout(POLL) {
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                // The state (which holds the sender) is gone: the server closed.
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if msg.is_none() && stream.is_empty() {
                continue;
            }
            let Some(st) = weak.upgrade() else { return };
            let mut ev = Evaluator { st, m: &mut memory };
            // The first round runs once the state is complete (`serve` gives the time-series
            // store after `AppState::new`, which spawns this thread): silence over the downtime.
            if !ev.m.started {
                ev.m.started = true;
                if !matches!(msg, Some(Msg::Tick(..))) {
                    let now = ev.st.config.alert_clock.now();
                    match ev.tick(now) {
                        Ok(r) if r.opened + r.closed > 0 => {
                            tracing::info!(opened = r.opened, closed = r.closed, "silence alerts at start")
                        }
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e.detail, "the alert evaluator's first round failed"),
                    }
                }
            }
            ev.drain(&mut stream);
            match msg {
                Some(Msg::Settle(ack)) => {
                    let _ = ack.send(());
                }
                Some(Msg::Tick(now, ack)) => {
                    let _ = ack.send(ev.tick(now));
                }
                Some(Msg::Reload) => ev.m.rules = None,
                Some(Msg::Hold(ack, held)) => {
                    // Not holding the server state while waiting: a test may drop it.
                    drop(ev);
                    let _ = ack.send(());
                    let _ = held.recv();
                }
                None => {}
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "the alert evaluator did not start");
    }
}

/// What the evaluator remembers between readings.
struct Memory {
    /// `None`: to be (re)loaded from storage.
    rules: Option<Vec<StoredRule>>,
    trackers: HashMap<(String, i64), Tracker>,
    /// Datastreams' stations (`None`: no such datastream), forgotten at every tick.
    stations: HashMap<i64, Option<Station>>,
    /// Per datastream, the newest phenomenon time taken from the stream or a catch-up: a
    /// catch-up reads the store after it. At most one entry per datastream that exists.
    seen: HashMap<i64, Timestamp>,
    /// When the thread subscribed to the stream: a catch-up reads a datastream absent from
    /// `seen` from here (readings stamped earlier were stored before it listened).
    subscribed: Timestamp,
    /// The first round ran.
    started: bool,
}

/// The evaluator at work: the server state, held for one round.
struct Evaluator<'m> {
    st: AppState,
    m: &'m mut Memory,
}

impl Evaluator<'_> {
    fn rules(&mut self) -> &[StoredRule] {
        if self.m.rules.is_none() {
            match storage::load_rules(self.st.store()) {
                Ok(r) => {
                    let ids: std::collections::HashSet<&str> = r.iter().map(|x| x.id.as_str()).collect();
                    self.m.trackers.retain(|(rule, _), _| ids.contains(rule.as_str()));
                    self.m.rules = Some(r);
                }
                Err(e) => tracing::warn!(error = %e.detail, "alert rules could not be read"),
            }
        }
        self.m.rules.as_deref().unwrap_or(&[])
    }

    fn station(&mut self, ds: i64) -> Option<Station> {
        if let Some(s) = self.m.stations.get(&ds) {
            return s.clone();
        }
        match storage::station(self.st.store(), ds) {
            Ok(s) => {
                self.m.stations.insert(ds, s.clone());
                s
            }
            Err(e) => {
                tracing::warn!(error = %e.detail, datastream = ds, "a datastream could not be read for alerts");
                None
            }
        }
    }

    /// The tracker of (rule, datastream), made with the open state storage holds.
    fn tracker(&mut self, rule: &str, ds: i64) -> &mut Tracker {
        let st = &self.st;
        self.m.trackers.entry((rule.to_owned(), ds)).or_insert_with(|| {
            let open = storage::is_open(st.store(), rule, ds).unwrap_or_else(|e| {
                tracing::warn!(error = %e.detail, "an alert's state could not be read");
                false
            });
            Tracker::new(open)
        })
    }

    fn drain(&mut self, stream: &mut tokio::sync::broadcast::Receiver<Arc<ObservationBatch>>) {
        loop {
            match stream.try_recv() {
                Ok(batch) => self.judge(&batch),
                Err(TryRecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "the alert evaluator fell behind the observation stream; catching up from the store"
                    );
                    if let Err(e) = self.catch_up() {
                        tracing::warn!(error = %e.detail, "the alert evaluator could not catch up; the next lag or tick tries again");
                    }
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    fn judge(&mut self, batch: &ObservationBatch) {
        for o in &batch.observations {
            self.take(o.datastream, o.time, o.value);
        }
    }

    /// Judges one reading with every rule watching its datastream.
    fn take(&mut self, ds: i64, time: Timestamp, value: f64) {
        let seen = self.m.seen.entry(ds).or_insert(time);
        *seen = (*seen).max(time);
        if self.rules().is_empty() {
            return;
        }
        let Some(station) = self.station(ds) else { return };
        let rules: Vec<StoredRule> =
            self.rules().iter().filter(|r| r.rule.scope.matches(&station.info)).cloned().collect();
        for rule in rules {
            let tr = self.tracker(&rule.id, ds).observe(&rule.rule, time, value);
            if let Some(tr) = tr {
                self.apply(&rule, &station, &tr);
            }
        }
    }

    /// After a lag: judges, in time order, what the store holds of every watched datastream after
    /// the newest reading taken of it (module docs).
    fn catch_up(&mut self) -> ApiResult<()> {
        let rules = self.rules().to_vec();
        if rules.is_empty() {
            return Ok(());
        }
        let ids = self.watched(&rules)?;
        let ts = self.st.timeseries()?;
        let tick = SignedDuration::from_micros(1);
        // Nothing is stored later than the store's clock allows; a day is far beyond.
        let to = Timestamp::now() + SignedDuration::from_hours(24);
        for ds in ids {
            let mut from = match self.m.seen.get(&ds) {
                Some(t) => *t + tick,
                None => self.m.subscribed,
            };
            let mut taken = 0;
            loop {
                if taken >= CATCH_UP_MAX {
                    // Too far behind to judge every reading: judge the newest ones.
                    let mut newest = ts.range(ds, from, to, CATCH_UP_PAGE, Order::Desc).map_err(ApiError::internal)?;
                    newest.reverse();
                    tracing::warn!(datastream = ds, skipped_after = %from, "alert catch-up: only the newest readings are judged");
                    for r in &newest {
                        self.take(ds, r.time, r.value);
                    }
                    break;
                }
                let page = ts.range(ds, from, to, CATCH_UP_PAGE, Order::Asc).map_err(ApiError::internal)?;
                for r in &page {
                    self.take(ds, r.time, r.value);
                }
                taken += page.len();
                match page.last() {
                    Some(last) if page.len() == CATCH_UP_PAGE => from = last.time + tick,
                    _ => break,
                }
            }
        }
        Ok(())
    }

    /// The datastreams some rule watches.
    fn watched(&mut self, rules: &[StoredRule]) -> ApiResult<Vec<i64>> {
        let mut ids: Vec<i64> =
            rules.iter().filter_map(|r| if let Scope::Datastream(d) = r.rule.scope { Some(d) } else { None }).collect();
        if rules.iter().any(|r| !matches!(r.rule.scope, Scope::Datastream(_))) {
            for ds in self.all_datastreams()? {
                if self.station(ds).is_some_and(|s| rules.iter().any(|r| r.rule.scope.matches(&s.info))) {
                    ids.push(ds);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    fn apply(&mut self, rule: &StoredRule, station: &Station, tr: &Transition) -> bool {
        let done = match tr {
            Transition::Open { .. } => storage::open(&self.st, rule, station, tr),
            Transition::Close { at, value } => storage::close(&self.st, rule, station, *at, *value),
        };
        match done {
            Ok(changed) => changed,
            Err(e) => {
                // The next tick re-reads storage's state into the tracker, so the next reading
                // (or silence check) tries again.
                tracing::warn!(error = %e.detail, rule = %rule.id, datastream = station.info.id, "an alert could not be recorded");
                false
            }
        }
    }

    fn tick(&mut self, now: Timestamp) -> ApiResult<TickReport> {
        self.m.rules = None;
        self.m.stations.clear();
        let rules = self.rules().to_vec();
        // What other processes (or failed writes) changed.
        let keys: Vec<(String, i64)> = self.m.trackers.keys().cloned().collect();
        for (rule, ds) in keys {
            let open = storage::is_open(self.st.store(), &rule, ds)?;
            if let Some(t) = self.m.trackers.get_mut(&(rule, ds)) {
                t.sync_open(open);
            }
        }
        let mut report = TickReport::default();
        let silent: Vec<&StoredRule> =
            rules.iter().filter(|r| matches!(r.rule.condition, Condition::Silence { .. })).collect();
        if silent.is_empty() {
            return Ok(report);
        }
        let every = self.all_datastreams()?;
        for rule in silent {
            let ids: Vec<i64> = match rule.rule.scope {
                Scope::Datastream(d) => vec![d],
                _ => every
                    .iter()
                    .copied()
                    .filter(|d| self.station(*d).is_some_and(|s| rule.rule.scope.matches(&s.info)))
                    .collect(),
            };
            let ts = self.st.timeseries()?;
            for chunk in ids.chunks(MAX_LATEST) {
                let latest = ts.latest(chunk).map_err(ApiError::internal)?;
                for &ds in chunk {
                    let Some(station) = self.station(ds) else { continue };
                    let newest = latest.iter().find(|s| s.datastream == ds).map(|s| s.time);
                    let tracker = self.tracker(&rule.id, ds);
                    if let Some(tr) = silence(tracker, &rule.rule, newest, rule.created, now) {
                        let opening = matches!(tr, Transition::Open { .. });
                        if self.apply(rule, &station, &tr) {
                            if opening { report.opened += 1 } else { report.closed += 1 }
                        }
                    }
                }
            }
        }
        Ok(report)
    }

    /// Every Datastream's `@iot.id` (for class-scoped silence rules).
    fn all_datastreams(&self) -> ApiResult<Vec<i64>> {
        let store = self.st.store();
        if store.layer("sta_datastream").is_err() {
            return Ok(Vec::new());
        }
        let q =
            shikong_store::Query { by_id: true, limit: Some(100_000), ..shikong_store::Query::layer("sta_datastream") };
        let mut out = Vec::new();
        store.query(&q, &mut |sf| {
            if let Some(n) = sf.feature.code.strip_prefix("sta_datastream-").and_then(|n| n.parse().ok()) {
                out.push(n);
            }
            true
        })?;
        Ok(out)
    }
}
