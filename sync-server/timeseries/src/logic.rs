//! Every rule of the time-series store, without I/O: reading validation with reasons, bucket
//! boundaries, roll-up arithmetic, retention cut-offs and the plan of one committed batch (which
//! readings are new, duplicates or corrections; what to insert, update, add to the roll-ups and
//! recompute). Both backends execute the same [`Plan`], so they cannot disagree on a rule.
//!
//! Times are microseconds since the Unix epoch (`i64`): PostgreSQL's `timestamptz` precision, so a
//! key is the same on both backends.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::{Datastream, DatastreamId, Outcome, Reading, TsError};

/// 2000-01-01T00:00:00Z: no sensor of this platform observed anything earlier.
pub const MIN_TIME_US: i64 = 946_684_800_000_000;
/// How far ahead of the store's clock a phenomenon time may be (device clocks drift).
pub const MAX_FUTURE: SignedDuration = SignedDuration::from_mins(10);
/// Beijing time's offset: day buckets and partitions start at 00:00+08:00.
pub const BEIJING_US: i64 = 8 * HOUR_US;
/// `rollup` without a resolution picks the finest giving at most this many buckets.
pub const AUTO_BUCKETS: i64 = 1_500;

const MINUTE_US: i64 = 60_000_000;
const HOUR_US: i64 = 60 * MINUTE_US;
const DAY_US: i64 = 24 * HOUR_US;

/// Why a reading was not stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Refusal {
    #[error("datastream {datastream} is not defined")]
    UnknownDatastream { datastream: DatastreamId },
    #[error("the value is not a finite number ({value})")]
    NotFinite { value: String },
    #[error("{value} is outside the datastream's physical range {min} … {max}")]
    OutOfRange { value: f64, min: f64, max: f64 },
    #[error("the unit is {got:?}, the datastream's is {expected:?}")]
    UnitMismatch { expected: String, got: String },
    #[error("phenomenon time {time} is before 2000-01-01T00:00:00Z")]
    TooOld { time: Timestamp },
    #[error("phenomenon time {time} is more than 10 minutes after the server's clock ({now})")]
    InFuture { time: Timestamp, now: Timestamp },
    #[error("phenomenon time {time} is older than the datastream's retention keeps (from {cutoff})")]
    BeyondRetention { time: Timestamp, cutoff: Timestamp },
}

impl Refusal {
    /// A stable machine code (the serde tag), for counters and clients.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UnknownDatastream { .. } => "unknown_datastream",
            Refusal::NotFinite { .. } => "not_finite",
            Refusal::OutOfRange { .. } => "out_of_range",
            Refusal::UnitMismatch { .. } => "unit_mismatch",
            Refusal::TooOld { .. } => "too_old",
            Refusal::InFuture { .. } => "in_future",
            Refusal::BeyondRetention { .. } => "beyond_retention",
        }
    }
}

/// A roll-up resolution. Minute and hour buckets are the same in UTC and Beijing time; a day
/// bucket is a Beijing civil day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

impl Resolution {
    pub const ALL: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

    /// The number stored in the roll-up tables.
    pub fn code(self) -> i16 {
        self as i16
    }

    pub fn from_code(code: i16) -> Option<Self> {
        Resolution::ALL.get(usize::try_from(code).ok()?).copied()
    }

    pub fn len_us(self) -> i64 {
        match self {
            Resolution::Minute => MINUTE_US,
            Resolution::Hour => HOUR_US,
            Resolution::Day => DAY_US,
        }
    }

    /// The start of the bucket holding `t` (microseconds).
    pub fn bucket(self, t: i64) -> i64 {
        match self {
            Resolution::Day => (t + BEIJING_US).div_euclid(DAY_US) * DAY_US - BEIJING_US,
            r => t.div_euclid(r.len_us()) * r.len_us(),
        }
    }

    /// The next finer resolution whose buckets a bucket of this one is made of.
    pub fn finer(self) -> Option<Resolution> {
        match self {
            Resolution::Minute => None,
            Resolution::Hour => Some(Resolution::Minute),
            Resolution::Day => Some(Resolution::Hour),
        }
    }
}

/// Count, sum, min and max of some values: merged exactly (count, min, max) or by addition (sum;
/// the average is `sum / count`, so buckets merge without a weighted average).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Agg {
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Agg {
    pub fn of(v: f64) -> Agg {
        Agg { count: 1, sum: v, min: v, max: v }
    }

    pub fn merge(&mut self, o: &Agg) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

pub fn us(t: Timestamp) -> i64 {
    t.as_microsecond()
}

pub fn ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(if us < 0 { Timestamp::MIN } else { Timestamp::MAX })
}

/// Checks a definition before it is stored.
pub fn check_datastream(d: &Datastream) -> Result<(), TsError> {
    let bad = |why: &str| Err(TsError::BadDatastream { id: d.id, why: why.to_owned() });
    if d.unit.trim().is_empty() || d.unit.chars().count() > 64 {
        return bad("the unit must be 1 to 64 characters");
    }
    if !d.min.is_finite() || !d.max.is_finite() || d.min > d.max {
        return bad("the range needs finite min ≤ max");
    }
    if d.retention.is_some_and(|r| r < SignedDuration::from_hours(1)) {
        return bad("a retention is at least one hour");
    }
    Ok(())
}

/// The oldest phenomenon time a datastream's retention keeps as of `now`: `now − keep`, rounded
/// down to a Beijing day boundary, so hour and day roll-ups at or after it are always whole.
pub fn retention_cutoff(now: i64, keep: SignedDuration) -> i64 {
    let keep = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
    Resolution::Day.bucket(now.saturating_sub(keep))
}

/// The Beijing month holding `t`: its first instant and the next month's (monthly partitions).
pub fn month_of(t: i64) -> (i64, i64) {
    let tz = jiff::tz::TimeZone::fixed(jiff::tz::offset(8));
    let civil = ts(t).to_zoned(tz.clone()).date();
    let first = civil.first_of_month();
    let start = |d: jiff::civil::Date| d.to_zoned(tz.clone()).map(|z| us(z.timestamp())).unwrap_or(t);
    let next = first.checked_add(jiff::Span::new().months(1)).unwrap_or(first);
    (start(first), start(next))
}

/// The resolution `rollup` uses: the one asked (if its bucket count fits), else the finest whose
/// bucket count is at most [`AUTO_BUCKETS`].
pub fn choose_resolution(asked: Option<Resolution>, from: Timestamp, to: Timestamp) -> Result<Resolution, TsError> {
    let span = (us(to) - us(from)).max(0);
    let buckets = |r: Resolution| (span + r.len_us() - 1) / r.len_us() + 1;
    let (resolution, max) = match asked {
        Some(r) => (r, crate::MAX_ROLLUP_BUCKETS),
        None => (
            Resolution::ALL.into_iter().find(|r| buckets(*r) <= AUTO_BUCKETS).unwrap_or(Resolution::Day),
            crate::MAX_ROLLUP_BUCKETS,
        ),
    };
    if buckets(resolution) > max {
        return Err(TsError::WindowTooLong { resolution, buckets: buckets(resolution), from, to, max });
    }
    Ok(resolution)
}

/// A reading's key once valid: datastream and phenomenon time (µs).
pub type Key = (DatastreamId, i64);

/// Validates one reading against its datastream and the store's clock; the key if valid.
pub fn validate(r: &Reading, def: Option<&Datastream>, now: i64) -> Result<Key, Refusal> {
    let def = def.ok_or(Refusal::UnknownDatastream { datastream: r.datastream })?;
    if !r.value.is_finite() {
        return Err(Refusal::NotFinite { value: r.value.to_string() });
    }
    if r.value < def.min || r.value > def.max {
        return Err(Refusal::OutOfRange { value: r.value, min: def.min, max: def.max });
    }
    if let Some(unit) = &r.unit
        && unit != &def.unit
    {
        return Err(Refusal::UnitMismatch { expected: def.unit.clone(), got: unit.clone() });
    }
    let t = us(r.time);
    if t < MIN_TIME_US {
        return Err(Refusal::TooOld { time: r.time });
    }
    let future = i64::try_from(MAX_FUTURE.as_micros()).unwrap_or(i64::MAX);
    if t > now.saturating_add(future) {
        return Err(Refusal::InFuture { time: r.time, now: ts(now) });
    }
    if let Some(keep) = def.retention {
        let cutoff = retention_cutoff(now, keep);
        if t < cutoff {
            return Err(Refusal::BeyondRetention { time: r.time, cutoff: ts(cutoff) });
        }
    }
    Ok((r.datastream, t))
}

/// What one committed batch does, decided from the readings and the values already stored for
/// their keys.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Plan {
    pub outcomes: Vec<Outcome>,
    /// New keys with their final value.
    pub inserts: Vec<(Key, f64)>,
    /// Stored keys whose value changes.
    pub updates: Vec<(Key, f64)>,
    /// Every correction in append order: key, previous value, new value.
    pub corrections: Vec<(Key, f64, f64)>,
    /// Added to the roll-ups (from `inserts` only): (datastream, resolution, bucket) → aggregate.
    pub adds: BTreeMap<(DatastreamId, Resolution, i64), Agg>,
    /// Minute buckets to recompute from the readings (an update changed one of their values),
    /// then their hours from minutes and their days from hours.
    pub recompute: BTreeSet<(DatastreamId, i64)>,
}

impl Plan {
    /// Readings that were validated: the keys the backend must look up before [`plan`].
    pub fn keys(batch: &[Reading], defs: &HashMap<DatastreamId, Datastream>, now: i64) -> Vec<Result<Key, Refusal>> {
        batch.iter().map(|r| validate(r, defs.get(&r.datastream), now)).collect()
    }
}

/// Decides a batch: `keys` from [`Plan::keys`], `existing` the stored values of those keys.
/// Readings apply in order: an equal value is a duplicate, a different one a correction (also
/// within the batch).
pub fn plan(batch: &[Reading], keys: Vec<Result<Key, Refusal>>, existing: &HashMap<Key, f64>) -> Plan {
    let mut p = Plan::default();
    // key → (current value, value stored before this batch, if any)
    let mut state: HashMap<Key, (f64, Option<f64>)> = HashMap::new();
    let mut order: Vec<Key> = Vec::new();
    for (r, key) in batch.iter().zip(keys) {
        let key = match key {
            Ok(k) => k,
            Err(reason) => {
                p.outcomes.push(Outcome::Refused { reason });
                continue;
            }
        };
        let entry = state.entry(key).or_insert_with(|| {
            order.push(key);
            match existing.get(&key) {
                Some(v) => (*v, Some(*v)),
                None => (f64::NAN, None),
            }
        });
        if entry.0.is_nan() {
            entry.0 = r.value;
            p.outcomes.push(Outcome::Accepted);
        } else if entry.0 == r.value {
            p.outcomes.push(Outcome::Duplicate);
        } else {
            p.corrections.push((key, entry.0, r.value));
            p.outcomes.push(Outcome::Corrected { previous: entry.0 });
            entry.0 = r.value;
        }
    }
    for key in order {
        let (value, before) = state[&key];
        match before {
            None => {
                p.inserts.push((key, value));
                for res in Resolution::ALL {
                    let agg = Agg::of(value);
                    p.adds.entry((key.0, res, res.bucket(key.1))).and_modify(|a| a.merge(&agg)).or_insert(agg);
                }
            }
            Some(old) if old != value => {
                p.updates.push((key, value));
                p.recompute.insert((key.0, Resolution::Minute.bucket(key.1)));
            }
            Some(_) => {}
        }
    }
    p
}

/// The buckets of `res` that the recomputed minute buckets belong to.
pub fn coarser_buckets(minutes: &BTreeSet<(DatastreamId, i64)>, res: Resolution) -> BTreeSet<(DatastreamId, i64)> {
    minutes.iter().map(|(d, m)| (*d, res.bucket(*m))).collect()
}

/// Roll-ups computed from scratch from stored readings (tests and checks).
pub fn rollups_of<'a>(
    readings: impl IntoIterator<Item = (&'a Key, &'a f64)>,
) -> BTreeMap<(DatastreamId, Resolution, i64), Agg> {
    let mut out: BTreeMap<(DatastreamId, Resolution, i64), Agg> = BTreeMap::new();
    for (&(d, t), &v) in readings {
        for res in Resolution::ALL {
            let agg = Agg::of(v);
            out.entry((d, res, res.bucket(t))).and_modify(|a| a.merge(&agg)).or_insert(agg);
        }
    }
    out
}

#[cfg(test)]
#[path = "logic_tests.rs"]
mod tests;
