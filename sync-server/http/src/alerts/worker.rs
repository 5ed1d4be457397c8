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

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::Timestamp;
use shikong_sta::alerts::{Condition, Scope, Tracker, Transition, silence};
use shikong_timeseries::MAX_LATEST;
use tokio::sync::broadcast::error::TryRecvError;

use super::storage::{self, Station, StoredRule};
use crate::AppState;
use crate::problem::{ApiError, ApiResult};
use crate::sta::stream::ObservationBatch;

/// How long the thread waits for a control message before looking at the stream again.
const POLL: Duration = Duration::from_millis(100);
/// How long [`settle`] and [`tick`] wait for the thread.
const WAIT: Duration = Duration::from_secs(120);

enum Msg {
    Settle(mpsc::Sender<()>),
    Tick(Timestamp, mpsc::Sender<ApiResult<TickReport>>),
    Reload,
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

/// Starts the evaluator of `state` (subscribed to the observation stream from now on).
pub(crate) fn spawn(state: &AppState) {
    let mut stream = state.observations().subscribe();
    let (tx, rx) = mpsc::channel::<Msg>();
    *state.alerts.ctl.lock().unwrap_or_else(PoisonError::into_inner) = Some(tx);
    // The thread holds the state only while it works: an idle evaluator must not keep a closed
    // server's state (and the drops that flush its audit summary) alive.
    let weak = state.downgrade();
    let spawned = std::thread::Builder::new().name("alerts".into()).spawn(move || {
        let mut memory = Memory { rules: None, trackers: HashMap::new(), stations: HashMap::new() };
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
            ev.drain(&mut stream);
            match msg {
                Some(Msg::Settle(ack)) => {
                    let _ = ack.send(());
                }
                Some(Msg::Tick(now, ack)) => {
                    let _ = ack.send(ev.tick(now));
                }
                Some(Msg::Reload) => ev.m.rules = None,
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
                        "the alert evaluator fell behind the observation stream; those readings were not judged"
                    );
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            }
        }
    }

    fn judge(&mut self, batch: &ObservationBatch) {
        if self.rules().is_empty() {
            return;
        }
        for o in &batch.observations {
            let Some(station) = self.station(o.datastream) else { continue };
            let rules: Vec<StoredRule> =
                self.rules().iter().filter(|r| r.rule.scope.matches(&station.info)).cloned().collect();
            for rule in rules {
                let tr = self.tracker(&rule.id, o.datastream).observe(&rule.rule, o.time, o.value);
                if let Some(tr) = tr {
                    self.apply(&rule, &station, &tr);
                }
            }
        }
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
