//! Live readings on the live channel (`GET /events`, issue 18's live view): every observation
//! newly stored (the observation stream, `stream.rs`: HTTP, dataArray, MQTT) becomes a
//! `reading` message for the streams allowed to read `sta_datastream` (`Audience::Layer`, so
//! the channel re-checks permissions as for every layer), with the Datastream's Thing and the
//! state the value puts it in (`state_of`).
//!
//! Bounded: at most one message a second per datastream ([`MIN_INTERVAL`]). A station that
//! publishes faster is coalesced to its newest reading, sent when its second is up; a reading
//! older than the one already sent for its datastream (a late or back-filled one) is not sent —
//! the map shows the latest value. The relay is one thread, started when the first `/events`
//! stream opens (nobody listens before), that drains the observation stream every [`TICK`]; it
//! keeps at most [`MAX_TRACKED`] datastreams' last sends and a Datastream's Thing and thresholds
//! for [`META_TTL`]. Falling behind the observation stream (`Lagged`) loses messages, never
//! readings: the channel only hastens what `/collections/sta_latest/items` answers anyway.
//!
//! States (`SensorState`): a Datastream's `properties.thresholds` (`warningAbove`,
//! `warningBelow`, `alarmAbove`, `alarmBelow`: a value at or beyond one is in that state;
//! `silentMinutes`, default [`DEFAULT_SILENT_MINUTES`]: no reading for longer is `silent`). A
//! station is the worst of its datastreams. These are the thresholds' states only: the latest
//! layer (`latest.rs`) adds what alert rules say, and an incident opening or closing reaches the
//! same audience as an `alert` message (`LiveEvent::Alert`, published by `alerts/storage.rs`
//! after its commit), so the map never lowers a station below its open alert.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::{Map, Value as Json};
use shikong_protocol::api::{LiveEvent, SensorState};
use shikong_sta::entity::{EntityType, Id};
use shikong_store::Store;
use tokio::sync::broadcast::error::TryRecvError;

use super::super::events::{Audience, EventBus};
use super::AppState;
use super::entities;
use super::stream::NewObservation;

/// At most one `reading` message per datastream in this time.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// How often the relay drains the observation stream.
pub const TICK: Duration = Duration::from_millis(200);
/// Datastreams whose last send the relay remembers (beyond: the oldest are forgotten).
pub const MAX_TRACKED: usize = 100_000;
/// How long a Datastream's Thing and thresholds are reused before being read again.
pub const META_TTL: Duration = Duration::from_secs(30);
/// Minutes without a reading after which a datastream is `silent`, unless it says otherwise.
pub const DEFAULT_SILENT_MINUTES: f64 = 60.0;

/// A Datastream's thresholds (`properties.thresholds`), pure data.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Thresholds {
    pub warning_above: Option<f64>,
    pub warning_below: Option<f64>,
    pub alarm_above: Option<f64>,
    pub alarm_below: Option<f64>,
    pub silent_minutes: Option<f64>,
}

impl Thresholds {
    /// From a Datastream's STA properties (the entity's `properties` member); anything missing
    /// or not a number is no threshold.
    pub fn of(props: &Map<String, Json>) -> Thresholds {
        let t = props.get("properties").and_then(|p| p.get("thresholds"));
        let n = |k: &str| t.and_then(|t| t.get(k)).and_then(Json::as_f64).filter(|v| v.is_finite());
        Thresholds {
            warning_above: n("warningAbove"),
            warning_below: n("warningBelow"),
            alarm_above: n("alarmAbove"),
            alarm_below: n("alarmBelow"),
            silent_minutes: n("silentMinutes").filter(|m| *m > 0.0),
        }
    }

    /// The state of a datastream whose latest reading is `latest` (time, value), at `now`.
    pub fn state_of(&self, latest: Option<(Timestamp, f64)>, now: Timestamp) -> SensorState {
        let Some((t, v)) = latest else { return SensorState::Silent };
        let above = |x: Option<f64>| x.is_some_and(|x| v >= x);
        let below = |x: Option<f64>| x.is_some_and(|x| v <= x);
        if above(self.alarm_above) || below(self.alarm_below) {
            return SensorState::Alarm;
        }
        if above(self.warning_above) || below(self.warning_below) {
            return SensorState::Warning;
        }
        let silent = self.silent_minutes.unwrap_or(DEFAULT_SILENT_MINUTES);
        let age_minutes = now.duration_since(t).as_secs_f64() / 60.0;
        if age_minutes > silent { SensorState::Silent } else { SensorState::Normal }
    }
}

/// What the relay needs of a Datastream.
#[derive(Debug, Clone)]
struct Meta {
    thing: Option<i64>,
    thresholds: Thresholds,
    read: Instant,
}

/// The relay's place in the server state (started once).
#[derive(Debug, Default)]
pub struct LiveReadings {
    started: OnceLock<()>,
}

impl AppState {
    /// Starts relaying new observations to the live channel (once; `GET /events` calls it).
    pub(crate) fn start_live_readings(&self) {
        if self.sta.live.started.set(()).is_err() {
            return;
        }
        let rx = self.observations().subscribe();
        let bus = Arc::downgrade(&self.events);
        let store = self.store.clone();
        let spawned = std::thread::Builder::new().name("live-readings".into()).spawn(move || relay(rx, bus, store));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "live readings: cannot start the relay");
        }
    }
}

type Rx = tokio::sync::broadcast::Receiver<Arc<super::stream::ObservationBatch>>;

fn relay(mut rx: Rx, bus: Weak<EventBus>, store: Arc<dyn Store>) {
    let mut relay = Relay::default();
    loop {
        std::thread::sleep(TICK);
        let Some(bus) = bus.upgrade() else { return };
        if bus.is_stopped() {
            return;
        }
        loop {
            match rx.try_recv() {
                Ok(batch) => relay.take(&batch.observations),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(n)) => tracing::debug!(missed = n, "live readings: fell behind"),
                Err(TryRecvError::Closed) => return,
            }
        }
        for event in relay.due(Instant::now(), Timestamp::now(), &mut |ds| meta(store.as_ref(), ds)) {
            bus.publish(Audience::Layer("sta_datastream".into()), event);
        }
    }
}

fn meta(store: &dyn Store, ds: i64) -> Option<Meta> {
    match entities::get(store, EntityType::Datastream, &Id::Int(ds), None) {
        Ok(Some(rec)) => Some(Meta {
            thing: rec.linked("Thing").into_iter().find_map(|i| if let Id::Int(n) = i { Some(n) } else { None }),
            thresholds: Thresholds::of(&rec.props),
            read: Instant::now(),
        }),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(datastream = ds, error = %e.detail, "live readings: reading the Datastream failed");
            None
        }
    }
}

/// The coalescing state, without I/O (the clock and the Datastream lookup come in).
#[derive(Debug, Default)]
struct Relay {
    /// The newest reading not sent yet, per datastream.
    pending: HashMap<i64, NewObservation>,
    /// When the last message of a datastream went out, and its reading's time.
    sent: HashMap<i64, (Instant, Timestamp)>,
    meta: HashMap<i64, Meta>,
}

impl Relay {
    fn take(&mut self, batch: &[NewObservation]) {
        for o in batch {
            if self.sent.get(&o.datastream).is_some_and(|(_, t)| *t > o.time) {
                continue; // older than what the map shows
            }
            match self.pending.get(&o.datastream) {
                Some(p) if p.time > o.time => {}
                _ if self.pending.len() >= MAX_TRACKED && !self.pending.contains_key(&o.datastream) => {}
                _ => {
                    self.pending.insert(o.datastream, o.clone());
                }
            }
        }
    }

    /// The messages whose second is up, at `now` (`wall`: for the state's silence).
    fn due(&mut self, now: Instant, wall: Timestamp, lookup: &mut dyn FnMut(i64) -> Option<Meta>) -> Vec<LiveEvent> {
        let ready: Vec<i64> = self
            .pending
            .keys()
            .copied()
            .filter(|ds| self.sent.get(ds).is_none_or(|(at, _)| now.duration_since(*at) >= MIN_INTERVAL))
            .collect();
        let mut out = Vec::with_capacity(ready.len());
        for ds in ready {
            let Some(o) = self.pending.remove(&ds) else { continue };
            let fresh = self.meta.get(&ds).filter(|m| now.duration_since(m.read) < META_TTL).cloned();
            let Some(m) = fresh.or_else(|| lookup(ds)) else {
                self.meta.remove(&ds);
                continue; // the Datastream is gone
            };
            self.meta.insert(ds, m.clone());
            self.sent.insert(ds, (now, o.time));
            out.push(LiveEvent::Reading {
                datastream: ds,
                thing: m.thing,
                result: o.value,
                phenomenon_time: shikong_model::time::beijing(o.time),
                state: m.thresholds.state_of(Some((o.time, o.value)), wall),
            });
        }
        if self.sent.len() > MAX_TRACKED {
            let mut by_age: Vec<(Instant, i64)> = self.sent.iter().map(|(d, (at, _))| (*at, *d)).collect();
            by_age.sort_unstable();
            for (_, d) in by_age.into_iter().take(self.sent.len() - MAX_TRACKED / 2) {
                self.sent.remove(&d);
                self.meta.remove(&d);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn thresholds_decide_the_state() {
        let props = json!({"properties": {"thresholds": {"warningAbove": 5, "alarmAbove": 10, "alarmBelow": -1, "silentMinutes": 5}}});
        let th = Thresholds::of(props.as_object().unwrap());
        assert_eq!(th.state_of(None, t(0)), SensorState::Silent);
        assert_eq!(th.state_of(Some((t(0), 1.0)), t(60)), SensorState::Normal);
        assert_eq!(th.state_of(Some((t(0), 5.0)), t(60)), SensorState::Warning);
        assert_eq!(th.state_of(Some((t(0), 12.0)), t(60)), SensorState::Alarm);
        assert_eq!(th.state_of(Some((t(0), -3.0)), t(60)), SensorState::Alarm);
        assert_eq!(th.state_of(Some((t(0), 1.0)), t(301)), SensorState::Silent);
        // no thresholds: only silence (an hour by default)
        let none = Thresholds::of(&Map::new());
        assert_eq!(none.state_of(Some((t(0), 1e9)), t(3599)), SensorState::Normal);
        assert_eq!(none.state_of(Some((t(0), 1e9)), t(3601)), SensorState::Silent);
    }

    #[test]
    fn a_fast_datastream_is_coalesced_to_its_newest_reading() {
        let obs = |ds: i64, s: i64, v: f64| NewObservation { datastream: ds, time: t(s), value: v, previous: None };
        let mut r = Relay::default();
        let mut lookups = 0;
        let mut lookup = |_ds: i64| {
            lookups += 1;
            Some(Meta { thing: Some(7), thresholds: Thresholds::default(), read: Instant::now() })
        };
        let start = Instant::now();
        r.take(&[obs(1, 0, 1.0)]);
        let first = r.due(start, t(0), &mut lookup);
        assert_eq!(first.len(), 1);
        // three more within the second: one message, the newest, when the second is up
        r.take(&[obs(1, 1, 2.0), obs(1, 3, 4.0), obs(1, 2, 3.0)]);
        assert!(r.due(start + Duration::from_millis(500), t(3), &mut lookup).is_empty());
        let next = r.due(start + MIN_INTERVAL, t(3), &mut lookup);
        assert_eq!(next.len(), 1);
        let LiveEvent::Reading { result, thing, state, .. } = &next[0] else { panic!("{next:?}") };
        assert_eq!((*result, *thing, *state), (4.0, Some(7), SensorState::Normal));
        // an older reading than the one shown is not sent
        r.take(&[obs(1, 2, 9.0)]);
        assert!(r.due(start + MIN_INTERVAL * 3, t(3), &mut lookup).is_empty());
        // the Datastream read once (cached)
        assert_eq!(lookups, 1);
    }
}
