//! The sensor time-series store (issue 18): readings of datastreams (a water level, a manhole
//! cover's tilt, a lamp's current), kept apart from the versioned feature store because a reading
//! is not a feature version — it is never edited as an object, has no history of its own and
//! arrives thousands a second.
//!
//! Why a crate of its own: the feature store's journal (a transaction per write, the previous
//! version moved to history) is the wrong shape and far too slow for this; the series needs an
//! append-only table keyed by `(datastream, phenomenon time)`, group commits, and roll-ups kept up
//! to date as readings arrive. [`logic`] holds every rule without I/O (validation with reasons,
//! the duplicate/correction rule, bucket boundaries, roll-up arithmetic, the batch plan), so the
//! two backends — [`sqlite::SqliteSeries`] (its own file, `DATA/timeseries.sqlite`) and
//! [`postgres::PgSeries`] (monthly partitions) — apply the same plan and cannot drift apart.
//!
//! Rules (see ARCHITECTURE.md, `sync-server/timeseries`):
//! - a reading is refused with a [`Refusal`] (never dropped): value not finite, outside the
//!   datastream's declared range, unit not the datastream's, before 2000-01-01T00:00:00Z, more
//!   than [`logic::MAX_FUTURE`] ahead of the store's clock, older than the datastream's
//!   retention, or of a datastream never defined;
//! - same datastream and phenomenon time (to the microsecond) with an equal value is a
//!   [`Outcome::Duplicate`] (no-op); with a different value it is an [`Outcome::Corrected`]: the
//!   new value replaces the old (last write wins, in append order) and the correction is kept in
//!   the corrections table;
//! - roll-ups (minute, hour, day; day = a Beijing civil day, 00:00+08:00) hold count, sum, min and
//!   max, updated in the same transaction as the readings, whatever the arrival order;
//! - `append` returns only after the readings' transaction has committed durably;
//! - a reading removed ([`TimeSeries::delete`]) or moved to another phenomenon time
//!   ([`TimeSeries::relocate`]) is never lost silently: its value is kept in the deletions table
//!   ([`TimeSeries::deletions`]), and the roll-up buckets it counted in are recomputed from the
//!   readings left (a bucket left empty is removed), so `rollup` and `latest` stay exact;
//! - [`TimeSeries::drop_series`] removes a series whole (definition, readings, roll-ups,
//!   corrections, deletions): its datastream was deleted, and an id defined again starts empty.

pub mod edit;
pub mod logic;
pub mod postgres;
pub mod sqlite;
mod writer;

#[cfg(test)]
mod conformance;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

pub use logic::{Agg, Refusal, Resolution};
pub use writer::WriterOptions;

/// A datastream's id (the SensorThings `Datastream` `@iot.id`).
pub type DatastreamId = i64;

/// Readings in one `append` call at most (bigger calls are refused whole, before any write).
pub const MAX_BATCH: usize = 10_000;
/// Rows one `range` call returns at most.
pub const MAX_RANGE_LIMIT: usize = 10_000;
/// Buckets one `rollup` call returns at most.
pub const MAX_ROLLUP_BUCKETS: i64 = 10_000;
/// Datastreams one `latest` call names at most.
pub const MAX_LATEST: usize = 1_000;

/// What a datastream declares about its readings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Datastream {
    pub id: DatastreamId,
    /// The unit of measurement's symbol (UCUM, e.g. `m`, `A`, `ug/m3`).
    pub unit: String,
    /// The physically possible range, inclusive (a water level gauge: −5 … 30 m).
    pub min: f64,
    pub max: f64,
    /// Readings older than this (counted back from "now", to a Beijing day boundary) are removed
    /// by `enforce_retention` and refused by `append`; `None` keeps them.
    pub retention: Option<SignedDuration>,
}

/// One observation as it arrives.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub datastream: DatastreamId,
    /// When the phenomenon was observed (kept to the microsecond; finer parts are truncated).
    pub time: Timestamp,
    pub value: f64,
    /// The unit the sender states, if any; it must be the datastream's.
    pub unit: Option<String>,
}

impl Reading {
    pub fn new(datastream: DatastreamId, time: Timestamp, value: f64) -> Self {
        Reading { datastream, time, value, unit: None }
    }
}

/// What happened to one reading of an `append`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Stored (a new datastream + time).
    Accepted,
    /// The same value was already stored for this datastream and time: nothing changed.
    Duplicate,
    /// A different value was stored for this datastream and time: replaced, and recorded.
    Corrected { previous: f64 },
    /// Not stored, and why.
    Refused { reason: Refusal },
}

/// A stored reading.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stored {
    pub datastream: DatastreamId,
    pub time: Timestamp,
    pub value: f64,
}

/// A value replaced by a later reading of the same datastream and time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Correction {
    pub datastream: DatastreamId,
    pub time: Timestamp,
    pub previous: f64,
    pub value: f64,
    /// The store's clock when the correction was committed.
    pub at: Timestamp,
}

/// A reading removed by [`TimeSeries::delete`] or moved away by [`TimeSeries::relocate`]: kept
/// (a table apart from the corrections, whose rows always have a new value) so that no value
/// leaves the store without a trace.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Deletion {
    pub datastream: DatastreamId,
    pub time: Timestamp,
    /// The value the reading held.
    pub value: f64,
    /// The phenomenon time it was moved to; `None` when it was deleted.
    pub moved_to: Option<Timestamp>,
    /// The store's clock when the removal was committed.
    pub at: Timestamp,
}

/// One reading to move to another phenomenon time ([`TimeSeries::relocate`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Move {
    pub datastream: DatastreamId,
    pub from: Timestamp,
    pub to: Timestamp,
    /// The value at its new time; `None` keeps the stored one.
    pub value: Option<f64>,
}

/// What [`TimeSeries::relocate`] did: every move, or none (and why, naming the move).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Relocated {
    /// Every reading was moved.
    Moved,
    /// Move `index` names a reading that is not stored (or one named twice).
    Missing { index: usize },
    /// A reading is already stored at move `index`'s new time (another move's, or one there
    /// before): moving onto it would replace another observation.
    Occupied { index: usize },
    /// The store refuses move `index`'s reading at its new time (too far ahead, out of range…).
    Refused { index: usize, reason: Refusal },
}

/// Newest or oldest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Order {
    Asc,
    Desc,
}

/// One roll-up bucket.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    pub start: Timestamp,
    pub count: u64,
    pub sum: f64,
    pub min: f64,
    pub max: f64,
}

impl Bucket {
    pub fn avg(&self) -> f64 {
        self.sum / self.count as f64
    }
}

/// The answer of `rollup`: the resolution used (chosen when none was asked) and the non-empty
/// buckets starting in the window, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rollup {
    pub resolution: Resolution,
    pub buckets: Vec<Bucket>,
}

/// What one `enforce_retention` removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Readings removed row by row.
    pub readings_deleted: u64,
    /// Readings removed with whole partitions (PostgreSQL only).
    pub readings_dropped: u64,
    /// Partitions dropped whole (PostgreSQL only).
    pub partitions_dropped: u64,
}

/// Figures for monitoring.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub datastreams: u64,
    /// Readings stored now.
    pub readings: u64,
    pub corrections: u64,
    /// Since this handle was opened.
    pub accepted: u64,
    pub duplicates: u64,
    pub corrected: u64,
    pub refused: u64,
    /// Commits (groups) since open, and readings waiting in the writer's queue now.
    pub commits: u64,
    pub queued: u64,
    /// Monthly partitions (PostgreSQL; 0 on SQLite).
    pub partitions: u64,
}

/// Errors of the whole call (a refused *reading* is an [`Outcome`], not an error).
#[derive(Debug, Clone, thiserror::Error)]
pub enum TsError {
    #[error("a batch holds at most {max} readings; this one holds {len}: split it")]
    BatchTooLarge { len: usize, max: usize },
    #[error("at most {max} {what} per call; {asked} asked")]
    LimitTooLarge { what: &'static str, asked: usize, max: usize },
    #[error(
        "{buckets} {resolution:?} buckets from {from} to {to} is more than {max}: ask a coarser resolution or a shorter window"
    )]
    WindowTooLong { resolution: Resolution, buckets: i64, from: Timestamp, to: Timestamp, max: i64 },
    #[error("datastream {id}: {why}")]
    BadDatastream { id: DatastreamId, why: String },
    #[error("datastream {0} is not defined")]
    UnknownDatastream(DatastreamId),
    #[error("time-series database {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("time-series PostgreSQL {url}: {message}")]
    Postgres { url: String, message: String },
    #[error("time-series database {0} was written by a newer shikong (schema version {1})")]
    NewerSchema(String, i64),
    #[error("the time-series writer has stopped: {0}")]
    WriterGone(String),
}

pub type Result<T, E = TsError> = std::result::Result<T, E>;

/// The time-series store, whichever backend holds it. Calls block (PostgreSQL: the synchronous
/// client): from async code run them under `spawn_blocking`, never on a runtime thread.
pub trait TimeSeries: Send + Sync + std::fmt::Debug {
    /// Creates or redefines a datastream (readings already stored are kept as they are).
    fn define(&self, datastream: &Datastream) -> Result<()>;
    fn datastream(&self, id: DatastreamId) -> Result<Option<Datastream>>;
    /// Stores a batch; one outcome per reading, in order. Returns after the durable commit.
    fn append(&self, batch: &[Reading]) -> Result<Vec<Outcome>>;
    /// Readings of `[from, to)`, at most `limit`, in `order` of time.
    fn range(
        &self,
        id: DatastreamId,
        from: Timestamp,
        to: Timestamp,
        limit: usize,
        order: Order,
    ) -> Result<Vec<Stored>>;
    /// Roll-up buckets starting in `[bucket start of from, to)`; `None` picks the finest
    /// resolution giving at most [`logic::AUTO_BUCKETS`] buckets.
    fn rollup(
        &self,
        id: DatastreamId,
        resolution: Option<Resolution>,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Rollup>;
    /// The newest reading of each datastream named that has one, in the order named.
    fn latest(&self, ids: &[DatastreamId]) -> Result<Vec<Stored>>;
    /// Corrections of `[from, to)` phenomenon times, oldest first, at most `limit`.
    fn corrections(&self, id: DatastreamId, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Correction>>;
    /// Removes the readings at `keys` (at most [`MAX_BATCH`]) in one transaction: the value each
    /// held, in order (`None`: nothing was stored there). Each removed value is recorded
    /// ([`TimeSeries::deletions`]); the roll-up buckets it counted in are recomputed.
    fn delete(&self, keys: &[(DatastreamId, Timestamp)]) -> Result<Vec<Option<f64>>>;
    /// Moves readings to other phenomenon times (at most [`MAX_BATCH`]), all or none, in one
    /// transaction: each is removed from its old time (recorded as a deletion with the time it
    /// moved to) and stored at its new one, validated like an append; roll-ups follow.
    fn relocate(&self, moves: &[Move]) -> Result<Relocated>;
    /// Removals of `[from, to)` phenomenon times, oldest first, at most `limit`.
    fn deletions(&self, id: DatastreamId, from: Timestamp, to: Timestamp, limit: usize) -> Result<Vec<Deletion>>;
    /// Removes the series whose ids are in `ids` whole, in one transaction: definitions,
    /// readings, roll-ups, corrections and deletions (their datastream is gone; an id defined
    /// again starts empty). Returns the readings removed.
    fn drop_series(&self, ids: std::ops::RangeInclusive<DatastreamId>) -> Result<u64>;
    fn set_retention(&self, id: DatastreamId, keep: Option<SignedDuration>) -> Result<()>;
    /// Removes what each datastream's retention no longer keeps, as of `now`.
    fn enforce_retention(&self, now: Timestamp) -> Result<RetentionReport>;
    fn counts(&self) -> Result<Counts>;
}

fn check_limit(what: &'static str, asked: usize, max: usize) -> Result<()> {
    if asked > max {
        return Err(TsError::LimitTooLarge { what, asked, max });
    }
    Ok(())
}
