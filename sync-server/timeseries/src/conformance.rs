//! The backend conformance suite: every behaviour of [`TimeSeries`] checked the same way on
//! SQLite (a temporary folder) and PostgreSQL (a fresh database of the shared private cluster),
//! plus what only one backend has (partitions dropped whole; a killed writer process).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::{SignedDuration, Timestamp};
use shikong_model::{Clock, ManualClock};

use crate::logic::{Key, Resolution, rollups_of, us};
use crate::*;

/// Opens the store under test at one place (again: a reopen) with a clock.
pub(crate) trait Place {
    fn open(&self, clock: Arc<dyn Clock>) -> Box<dyn TimeSeries>;
}

pub(crate) fn t(s: &str) -> Timestamp {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

const NOW: &str = "2026-12-07T12:00:00+08:00";

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(t(NOW)))
}

fn gauge(id: DatastreamId) -> Datastream {
    Datastream { id, unit: "m".into(), min: -5.0, max: 30.0, retention: None }
}

fn at(base: &str, secs: i64) -> Timestamp {
    t(base).checked_add(SignedDuration::from_secs(secs)).unwrap()
}

fn all(s: &dyn TimeSeries, id: DatastreamId) -> Vec<Stored> {
    s.range(id, t("2000-01-01T00:00:00Z"), t("2030-01-01T00:00:00Z"), MAX_RANGE_LIMIT, Order::Asc).unwrap()
}

pub(crate) fn refusals_carry_reasons_and_store_nothing(p: &dyn Place) {
    let s = p.open(clock());
    s.define(&gauge(1)).unwrap();
    let ok = Reading::new(1, t("2026-12-07T11:00:00+08:00"), 1.5);
    let batch = vec![
        Reading { value: f64::NAN, ..ok.clone() },
        Reading { value: f64::INFINITY, ..ok.clone() },
        Reading { value: 31.0, ..ok.clone() },
        Reading { unit: Some("cm".into()), ..ok.clone() },
        Reading { time: t("1999-06-01T00:00:00Z"), ..ok.clone() },
        Reading { time: t("2026-12-07T13:00:00+08:00"), ..ok.clone() },
        Reading { datastream: 7, ..ok.clone() },
        ok.clone(),
    ];
    let out = s.append(&batch).unwrap();
    let codes: Vec<&str> = out
        .iter()
        .map(|o| match o {
            Outcome::Refused { reason } => reason.code(),
            Outcome::Accepted => "accepted",
            o => panic!("{o:?}"),
        })
        .collect();
    assert_eq!(
        codes,
        [
            "not_finite",
            "not_finite",
            "out_of_range",
            "unit_mismatch",
            "too_old",
            "in_future",
            "unknown_datastream",
            "accepted"
        ]
    );
    assert_eq!(all(&*s, 1), vec![Stored { datastream: 1, time: ok.time, value: 1.5 }]);
    let c = s.counts().unwrap();
    assert_eq!((c.datastreams, c.readings, c.accepted, c.refused), (1, 1, 1, 7));
    // bounds are errors of the whole call
    let big = vec![ok.clone(); MAX_BATCH + 1];
    assert!(matches!(s.append(&big), Err(TsError::BatchTooLarge { .. })));
    assert!(matches!(
        s.range(1, ok.time, ok.time, MAX_RANGE_LIMIT + 1, Order::Asc),
        Err(TsError::LimitTooLarge { .. })
    ));
    let long = s.rollup(1, Some(Resolution::Minute), t("2026-01-01T00:00:00Z"), t("2026-12-01T00:00:00Z"));
    assert!(matches!(long, Err(TsError::WindowTooLong { .. })), "{long:?}");
    let bad = Datastream { min: 3.0, max: 1.0, ..gauge(2) };
    assert!(matches!(s.define(&bad), Err(TsError::BadDatastream { .. })));
    assert!(matches!(s.set_retention(99, None), Err(TsError::UnknownDatastream(99))));
}

pub(crate) fn duplicates_are_no_ops_and_corrections_are_recorded(p: &dyn Place) {
    let c = clock();
    let s = p.open(c.clone());
    s.define(&gauge(1)).unwrap();
    let a = t("2026-12-07T10:00:10+08:00");
    let b = t("2026-12-07T10:00:20+08:00");
    assert_eq!(s.append(&[Reading::new(1, a, 2.0), Reading::new(1, b, 4.0)]).unwrap(), vec![Outcome::Accepted; 2]);
    c.advance(SignedDuration::from_secs(5));
    let out = s.append(&[Reading::new(1, a, 2.0), Reading::new(1, b, 1.0), Reading::new(1, b, 1.0)]).unwrap();
    assert_eq!(out, vec![Outcome::Duplicate, Outcome::Corrected { previous: 4.0 }, Outcome::Duplicate]);
    assert_eq!(all(&*s, 1).iter().map(|r| r.value).collect::<Vec<_>>(), vec![2.0, 1.0]);
    let corr = s.corrections(1, a, t("2026-12-08T00:00:00+08:00"), 10).unwrap();
    assert_eq!(corr, vec![Correction { datastream: 1, time: b, previous: 4.0, value: 1.0, at: c.now() }]);
    // the roll-ups follow the correction at every resolution
    for res in Resolution::ALL {
        let r = s.rollup(1, Some(res), a, b.checked_add(SignedDuration::from_secs(1)).unwrap()).unwrap();
        assert_eq!(r.buckets.len(), 1, "{res:?}");
        let bk = r.buckets[0];
        assert_eq!((bk.count, bk.sum, bk.min, bk.max, bk.avg()), (2, 3.0, 1.0, 2.0, 1.5), "{res:?}");
    }
    let cs = s.counts().unwrap();
    assert_eq!((cs.readings, cs.corrections, cs.duplicates, cs.corrected), (2, 1, 2, 1));
}

/// Readings in random order over three Beijing days, with duplicates and corrections, appended
/// by several threads in random batches: the roll-ups equal roll-ups recomputed from what is
/// stored, the stored value of each key is its last appended, and the day buckets start at
/// 00:00+08:00.
pub(crate) fn out_of_order_readings_keep_rollups_exact(p: &dyn Place) {
    let s: Arc<dyn TimeSeries> = Arc::from(p.open(clock()));
    for id in 1..=4 {
        s.define(&gauge(id)).unwrap();
    }
    let start = us(t("2026-12-03T20:00:00+08:00"));
    let threads: Vec<_> = (1..=4i64)
        .map(|id| {
            let s = s.clone();
            std::thread::spawn(move || {
                let mut rng = fastrand::Rng::with_seed(id as u64);
                let mut last: BTreeMap<Key, f64> = BTreeMap::new();
                let mut batch = Vec::new();
                for _ in 0..3_000 {
                    let time = start + rng.i64(0..3 * 24 * 60) * 60_000_000 + rng.i64(0..3) * 20_000_000;
                    let value = f64::from(rng.i32(-20..120)) / 4.0;
                    batch.push(Reading::new(id, logic::ts(time), value));
                    last.insert((id, time), value);
                    if rng.u8(0..20) == 0 {
                        s.append(&std::mem::take(&mut batch)).unwrap();
                    }
                }
                s.append(&batch).unwrap();
                last
            })
        })
        .collect();
    let mut expected: BTreeMap<Key, f64> = BTreeMap::new();
    for th in threads {
        expected.extend(th.join().unwrap());
    }
    let mut stored: BTreeMap<Key, f64> = BTreeMap::new();
    for id in 1..=4 {
        for r in all(&*s, id) {
            stored.insert((id, us(r.time)), r.value);
        }
    }
    assert_eq!(stored.len(), expected.len());
    assert!(stored == expected, "the stored values differ from the last appended");
    let want = rollups_of(&expected);
    let (from, to) = (t("2026-12-03T00:00:00+08:00"), t("2026-12-07T00:00:00+08:00"));
    let mut got = BTreeMap::new();
    for id in 1..=4 {
        for res in Resolution::ALL {
            let r = s.rollup(id, Some(res), from, to).unwrap();
            assert_eq!(r.resolution, res);
            for b in r.buckets {
                got.insert((id, res, us(b.start)), Agg { count: b.count, sum: b.sum, min: b.min, max: b.max });
            }
        }
    }
    assert_eq!(got.len(), want.len());
    for (k, w) in &want {
        assert_eq!(got.get(k), Some(w), "{k:?}");
    }
    let days = s.rollup(1, Some(Resolution::Day), from, to).unwrap();
    assert_eq!(days.buckets[0].start, t("2026-12-03T00:00:00+08:00"));
    assert_eq!(s.counts().unwrap().readings, expected.len() as u64);
}

pub(crate) fn range_latest_and_auto_resolution(p: &dyn Place) {
    let s = p.open(clock());
    s.define(&gauge(1)).unwrap();
    s.define(&gauge(2)).unwrap();
    let base = "2026-12-07T08:00:00+08:00";
    let batch: Vec<Reading> = (0..100).rev().map(|i| Reading::new(1, at(base, i * 30), i as f64 / 10.0)).collect();
    assert!(s.append(&batch).unwrap().iter().all(|o| *o == Outcome::Accepted));
    let desc = s.range(1, at(base, 0), at(base, 3000), 5, Order::Desc).unwrap();
    assert_eq!(desc.iter().map(|r| r.value).collect::<Vec<_>>(), vec![9.9, 9.8, 9.7, 9.6, 9.5]);
    let asc = s.range(1, at(base, 60), at(base, 150), 100, Order::Asc).unwrap();
    // [from, to): 60, 90, 120
    assert_eq!(asc.iter().map(|r| r.value).collect::<Vec<_>>(), vec![0.2, 0.3, 0.4]);
    s.append(&[Reading::new(2, at(base, 10), 7.0)]).unwrap();
    let latest = s.latest(&[2, 3, 1]).unwrap();
    assert_eq!(
        latest,
        vec![
            Stored { datastream: 2, time: at(base, 10), value: 7.0 },
            Stored { datastream: 1, time: at(base, 2970), value: 9.9 }
        ]
    );
    // a week's chart comes from hourly buckets, an hour's from minutes
    let week = s.rollup(1, None, at(base, -6 * 86400), at(base, 86400)).unwrap();
    assert_eq!(week.resolution, Resolution::Hour);
    assert_eq!(week.buckets.iter().map(|b| b.count).sum::<u64>(), 100);
    let hour = s.rollup(1, None, at(base, 0), at(base, 3600)).unwrap();
    assert_eq!((hour.resolution, hour.buckets.len()), (Resolution::Minute, 50));
    assert_eq!(hour.buckets[0].count, 2);
    assert_eq!(s.datastream(1).unwrap(), Some(gauge(1)));
    assert_eq!(s.datastream(5).unwrap(), None);
}

/// Retention: readings older than the cut-off (a Beijing day boundary) go with their minute
/// roll-ups; hour and day roll-ups stay; appends older than it are refused with the reason.
/// Returns the report (PostgreSQL drops whole partitions).
pub(crate) fn retention_removes_old_readings(p: &dyn Place) -> RetentionReport {
    let c = clock();
    let s = p.open(c.clone());
    s.define(&gauge(1)).unwrap();
    s.define(&gauge(2)).unwrap();
    // 1: a reading every 6 hours for 90 days back; 2: the same but kept forever
    let now = t(NOW);
    for id in [1, 2] {
        let batch: Vec<Reading> = (0..360)
            .map(|i| Reading::new(id, now.checked_sub(SignedDuration::from_hours(6 * i)).unwrap(), 1.0))
            .collect();
        s.append(&batch).unwrap();
    }
    s.set_retention(1, Some(SignedDuration::from_hours(24 * 30))).unwrap();
    assert_eq!(s.datastream(1).unwrap().unwrap().retention, Some(SignedDuration::from_hours(720)));
    let report = s.enforce_retention(now).unwrap();
    let cutoff = t("2026-11-07T00:00:00+08:00");
    let left = all(&*s, 1);
    assert!(left.iter().all(|r| r.time >= cutoff), "{:?}", left.first());
    assert_eq!(left.len(), (us(now) - us(cutoff)) as usize / (6 * 3_600_000_000) + 1);
    assert_eq!(report.readings_deleted + report.readings_dropped, 360 - left.len() as u64);
    assert_eq!(all(&*s, 2).len(), 360);
    let c2 = s.counts().unwrap();
    assert_eq!(c2.readings, 360 + left.len() as u64);
    let old = (t("2026-09-10T00:00:00+08:00"), t("2026-09-11T00:00:00+08:00"));
    assert!(s.rollup(1, Some(Resolution::Minute), old.0, old.1).unwrap().buckets.is_empty());
    assert_eq!(s.rollup(1, Some(Resolution::Hour), old.0, old.1).unwrap().buckets.len(), 4);
    assert_eq!(s.rollup(1, Some(Resolution::Day), old.0, old.1).unwrap().buckets[0].count, 4);
    let late = s.append(&[Reading::new(1, t("2026-11-06T23:00:00+08:00"), 2.0)]).unwrap();
    assert!(matches!(&late[0], Outcome::Refused { reason: Refusal::BeyondRetention { .. } }), "{late:?}");
    // enforcing again removes nothing more; readings still arrive afterwards
    assert_eq!(s.enforce_retention(now).unwrap(), RetentionReport::default());
    assert_eq!(s.append(&[Reading::new(1, now, 3.0)]).unwrap(), vec![Outcome::Corrected { previous: 1.0 }]);
    report
}

pub(crate) fn reopening_keeps_everything(p: &dyn Place) {
    let s = p.open(clock());
    s.define(&Datastream { retention: Some(SignedDuration::from_hours(48)), ..gauge(1) }).unwrap();
    s.append(&[Reading::new(1, t("2026-12-07T11:00:00+08:00"), 5.0)]).unwrap();
    drop(s);
    let s = p.open(clock());
    assert_eq!(s.datastream(1).unwrap().unwrap().retention, Some(SignedDuration::from_hours(48)));
    assert_eq!(all(&*s, 1).len(), 1);
    assert_eq!(s.append(&[Reading::new(1, t("2026-12-07T11:00:00+08:00"), 5.0)]).unwrap(), vec![Outcome::Duplicate]);
    assert_eq!(s.counts().unwrap().readings, 1);
}

/// Every roll-up bucket of the datastreams over `[from, to)` equals what the stored readings give.
fn assert_rollups_exact(s: &dyn TimeSeries, ids: &[DatastreamId], from: Timestamp, to: Timestamp) {
    let mut readings: BTreeMap<Key, f64> = BTreeMap::new();
    let mut got = BTreeMap::new();
    for &id in ids {
        for r in s.range(id, from, to, MAX_RANGE_LIMIT, Order::Asc).unwrap() {
            readings.insert((id, us(r.time)), r.value);
        }
        for res in Resolution::ALL {
            for b in s.rollup(id, Some(res), from, to).unwrap().buckets {
                got.insert((id, res, us(b.start)), Agg { count: b.count, sum: b.sum, min: b.min, max: b.max });
            }
        }
    }
    assert_eq!(got, rollups_of(&readings));
}

/// Deleting readings (one, several at once, one named twice, one never stored) and moving them
/// (all or nothing): roll-ups recomputed (an emptied bucket removed), `latest` the newest left,
/// counts, and each removed value recorded with the time it moved to.
pub(crate) fn deletes_and_moves_keep_rollups_latest_and_a_record(p: &dyn Place) {
    let c = clock();
    let s = p.open(c.clone());
    s.define(&gauge(1)).unwrap();
    s.define(&gauge(2)).unwrap();
    let base = "2026-12-07T08:00:00+08:00";
    let day = (t("2026-12-06T00:00:00+08:00"), t("2026-12-08T00:00:00+08:00"));
    let batch: Vec<Reading> = [(0, 0.0), (30, 1.0), (60, 2.0), (90, 3.0), (5400, 18.0)]
        .iter()
        .map(|&(i, v)| Reading::new(1, at(base, i), v))
        .collect();
    s.append(&batch).unwrap();
    s.append(&[Reading::new(2, at(base, 10), 7.0)]).unwrap();
    c.advance(SignedDuration::from_secs(60));
    let out = s.delete(&[(1, at(base, 30)), (1, at(base, -3600)), (1, at(base, 30)), (2, at(base, 10))]).unwrap();
    assert_eq!(out, vec![Some(1.0), None, None, Some(7.0)]);
    assert_eq!(all(&*s, 1).iter().map(|r| r.value).collect::<Vec<_>>(), vec![0.0, 2.0, 3.0, 18.0]);
    assert!(all(&*s, 2).is_empty());
    assert_rollups_exact(&*s, &[1, 2], day.0, day.1);
    // datastream 2's only reading was its only minute, hour and day: no bucket is left
    assert!(Resolution::ALL.iter().all(|r| s.rollup(2, Some(*r), day.0, day.1).unwrap().buckets.is_empty()));
    assert_eq!(s.latest(&[1, 2]).unwrap(), vec![Stored { datastream: 1, time: at(base, 5400), value: 18.0 }]);
    // the newest deleted: `latest` answers the one before
    assert_eq!(s.delete(&[(1, at(base, 5400))]).unwrap(), vec![Some(18.0)]);
    assert_eq!(s.latest(&[1]).unwrap(), vec![Stored { datastream: 1, time: at(base, 90), value: 3.0 }]);
    assert_rollups_exact(&*s, &[1], day.0, day.1);
    let hours = s.rollup(1, Some(Resolution::Hour), day.0, day.1).unwrap().buckets;
    assert_eq!(hours.iter().map(|b| (b.count, b.sum)).collect::<Vec<_>>(), vec![(3, 5.0)]);
    let gone = s.deletions(1, day.0, day.1, 10).unwrap();
    let removed_at = c.now();
    assert_eq!(
        gone,
        vec![
            Deletion { datastream: 1, time: at(base, 30), value: 1.0, moved_to: None, at: removed_at },
            Deletion { datastream: 1, time: at(base, 5400), value: 18.0, moved_to: None, at: removed_at },
        ]
    );
    assert_eq!(s.deletions(2, day.0, day.1, 10).unwrap().len(), 1);
    assert_eq!(s.counts().unwrap().readings, 3);

    // a move: removed at its old time (recorded with the new one), stored at the new one
    let mv = |d, from: Timestamp, to: Timestamp, value| Move { datastream: d, from, to, value };
    assert_eq!(s.relocate(&[mv(1, at(base, 0), at(base, 7200), None)]).unwrap(), Relocated::Moved);
    assert_eq!(all(&*s, 1).iter().map(|r| (r.time, r.value)).collect::<Vec<_>>()[2], (at(base, 7200), 0.0));
    let moved = s.deletions(1, at(base, 0), at(base, 1), 10).unwrap();
    assert_eq!(moved.iter().map(|d| (d.value, d.moved_to)).collect::<Vec<_>>(), vec![(0.0, Some(at(base, 7200)))]);
    assert_rollups_exact(&*s, &[1], day.0, day.1);
    // a move with a new value, and two series moved together (a MultiDatastream's components)
    s.append(&[Reading::new(2, at(base, 60), 4.0)]).unwrap();
    let both = [mv(1, at(base, 60), at(base, 61), Some(9.5)), mv(2, at(base, 60), at(base, 61), None)];
    assert_eq!(s.relocate(&both).unwrap(), Relocated::Moved);
    assert_eq!(s.latest(&[2]).unwrap(), vec![Stored { datastream: 2, time: at(base, 61), value: 4.0 }]);
    assert_eq!(all(&*s, 1).iter().map(|r| r.value).collect::<Vec<_>>(), vec![9.5, 3.0, 0.0]);
    assert_rollups_exact(&*s, &[1, 2], day.0, day.1);
    assert_eq!(s.counts().unwrap().readings, 4);

    // all or nothing: onto a stored reading, a reading not stored, a refused time (after a move
    // into a month never written, whose partition goes with the rollback)
    let before = (all(&*s, 1), all(&*s, 2), s.deletions(1, day.0, day.1, 100).unwrap().len());
    let onto = [mv(2, at(base, 61), at(base, 62), None), mv(1, at(base, 61), at(base, 90), None)];
    assert_eq!(s.relocate(&onto).unwrap(), Relocated::Occupied { index: 1 });
    assert_eq!(s.relocate(&[mv(1, at(base, 33), at(base, 34), None)]).unwrap(), Relocated::Missing { index: 0 });
    let twice = [mv(1, at(base, 61), at(base, 62), None), mv(1, at(base, 61), at(base, 63), None)];
    assert_eq!(s.relocate(&twice).unwrap(), Relocated::Missing { index: 1 });
    let far = [mv(1, at(base, 61), t("2026-09-15T00:00:00+08:00"), None), mv(2, at(base, 61), at(NOW, 3600), None)];
    match s.relocate(&far).unwrap() {
        Relocated::Refused { index: 1, reason: Refusal::InFuture { .. } } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!((all(&*s, 1), all(&*s, 2), s.deletions(1, day.0, day.1, 100).unwrap().len()), before);
    assert_rollups_exact(&*s, &[1, 2], day.0, day.1);
    // the store writes on: into the month of the rolled-back move, and a delete after it
    let sep = t("2026-09-15T00:00:00+08:00");
    assert_eq!(s.append(&[Reading::new(1, sep, 1.0)]).unwrap(), vec![Outcome::Accepted]);
    assert_eq!(s.counts().unwrap().readings, 5);
    assert!(matches!(s.delete(&vec![(1, sep); MAX_BATCH + 1]), Err(TsError::BatchTooLarge { .. })));
    drop(s);
    let s = p.open(clock());
    assert_eq!(s.deletions(1, day.0, day.1, 100).unwrap().len(), before.2, "kept across a reopen");
}

/// Dropping series (a Datastream's; a MultiDatastream's components, a range of ids) removes
/// their definitions, readings, roll-ups, corrections and deletions; others are untouched; an id
/// defined again starts empty.
pub(crate) fn dropping_series_removes_everything_and_ids_start_empty(p: &dyn Place) {
    let s = p.open(clock());
    let base = "2026-12-07T08:00:00+08:00";
    let day = (t("2026-12-06T00:00:00+08:00"), t("2026-12-08T00:00:00+08:00"));
    let ids = [1, 2, -1001, -1002, -1003];
    for id in ids {
        s.define(&gauge(id)).unwrap();
        let batch: Vec<Reading> = (0..5).map(|i| Reading::new(id, at(base, i * 60), i as f64)).collect();
        s.append(&batch).unwrap();
        // a correction and a deletion of each
        s.append(&[Reading::new(id, at(base, 0), 9.0)]).unwrap();
        s.delete(&[(id, at(base, 60))]).unwrap();
    }
    assert_eq!(s.counts().unwrap().readings, 20);
    assert_eq!(s.drop_series(1..=1).unwrap(), 4);
    assert_eq!(s.drop_series(-1002..=-1001).unwrap(), 8);
    assert_eq!(s.drop_series(7..=9).unwrap(), 0);
    for id in [1, -1001, -1002] {
        assert_eq!(s.datastream(id).unwrap(), None);
        assert!(all(&*s, id).is_empty());
        assert!(s.latest(&[id]).unwrap().is_empty());
        assert!(s.corrections(id, day.0, day.1, 10).unwrap().is_empty());
        assert!(s.deletions(id, day.0, day.1, 10).unwrap().is_empty());
        for res in Resolution::ALL {
            assert!(s.rollup(id, Some(res), day.0, day.1).unwrap().buckets.is_empty());
        }
        let out = s.append(&[Reading::new(id, at(base, 0), 1.0)]).unwrap();
        assert!(matches!(&out[0], Outcome::Refused { reason: Refusal::UnknownDatastream { .. } }), "{out:?}");
    }
    for id in [2, -1003] {
        assert_eq!(all(&*s, id).len(), 4);
        assert_eq!(s.corrections(id, day.0, day.1, 10).unwrap().len(), 1);
        assert_eq!(s.deletions(id, day.0, day.1, 10).unwrap().len(), 1);
        assert_rollups_exact(&*s, &[id], day.0, day.1);
    }
    let c = s.counts().unwrap();
    assert_eq!((c.datastreams, c.readings), (2, 8));
    // the id again: nothing of the old series comes back
    s.define(&gauge(1)).unwrap();
    assert_eq!(s.append(&[Reading::new(1, at(base, 0), 5.0)]).unwrap(), vec![Outcome::Accepted]);
    assert_eq!(all(&*s, 1), vec![Stored { datastream: 1, time: at(base, 0), value: 5.0 }]);
    assert_rollups_exact(&*s, &[1], day.0, day.1);
    drop(s);
    let s = p.open(clock());
    assert_eq!(s.datastream(-1001).unwrap(), None);
    assert_eq!(s.counts().unwrap().readings, 9);
}

/// One `#[test]` per behaviour for a backend: `$place` is an expression giving a fresh [`Place`].
macro_rules! conformance_tests {
    ($place:expr) => {
        #[test]
        fn refusals_carry_reasons_and_store_nothing() {
            $crate::conformance::refusals_carry_reasons_and_store_nothing(&$place);
        }
        #[test]
        fn duplicates_are_no_ops_and_corrections_are_recorded() {
            $crate::conformance::duplicates_are_no_ops_and_corrections_are_recorded(&$place);
        }
        #[test]
        fn out_of_order_readings_keep_rollups_exact() {
            $crate::conformance::out_of_order_readings_keep_rollups_exact(&$place);
        }
        #[test]
        fn range_latest_and_auto_resolution() {
            $crate::conformance::range_latest_and_auto_resolution(&$place);
        }
        #[test]
        fn deletes_and_moves_keep_rollups_latest_and_a_record() {
            $crate::conformance::deletes_and_moves_keep_rollups_latest_and_a_record(&$place);
        }
        #[test]
        fn dropping_series_removes_everything_and_ids_start_empty() {
            $crate::conformance::dropping_series_removes_everything_and_ids_start_empty(&$place);
        }
        #[test]
        fn reopening_keeps_everything() {
            $crate::conformance::reopening_keeps_everything(&$place);
        }
    };
}

mod sqlite_backend {
    use super::*;
    use crate::sqlite::SqliteSeries;

    pub(crate) struct Dir(pub tempfile::TempDir);

    impl Place for Dir {
        fn open(&self, clock: Arc<dyn Clock>) -> Box<dyn TimeSeries> {
            Box::new(SqliteSeries::open_in(self.0.path(), clock).unwrap())
        }
    }

    fn fresh() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    conformance_tests!(fresh());

    #[test]
    fn retention_removes_old_readings_row_by_row() {
        let r = retention_removes_old_readings(&fresh());
        assert_eq!((r.partitions_dropped, r.readings_dropped), (0, 0));
        assert!(r.readings_deleted > 200, "{r:?}");
    }

    const CRASH_CHILD: &str = "SK_TS_CRASH_CHILD";

    /// A writer process killed (SIGKILL) in the middle of appending: every reading it was told
    /// was stored is there after reopening.
    #[test]
    fn acknowledged_readings_survive_a_killed_process() {
        use std::io::BufRead;
        let base = at(NOW, -2_000_000);
        if let Some(dir) = std::env::var_os(CRASH_CHILD) {
            let s = SqliteSeries::open_in(std::path::Path::new(&dir), clock()).unwrap();
            s.define(&Datastream { max: 1e9, ..gauge(1) }).unwrap();
            for b in 0..2_000i64 {
                let batch: Vec<Reading> =
                    (b * 500..(b + 1) * 500).map(|i| Reading::new(1, at(NOW, -2_000_000 + i), i as f64)).collect();
                s.append(&batch).unwrap();
                println!("ack {}", (b + 1) * 500);
            }
            return;
        }
        let d = fresh();
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "conformance::sqlite_backend::acknowledged_readings_survive_a_killed_process",
                "--nocapture",
            ])
            .env(CRASH_CHILD, d.0.path())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut acked = 0i64;
        for line in out.lines() {
            if let Some(n) = line.unwrap().strip_prefix("ack ") {
                acked = n.parse().unwrap();
                if acked >= 50_000 {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(acked >= 50_000, "the child stopped early at {acked}");
        let s = d.open(clock());
        let stored = s.range(1, base, at(NOW, 0), MAX_RANGE_LIMIT, Order::Asc).unwrap();
        assert_eq!(stored.len(), MAX_RANGE_LIMIT);
        let n = s.counts().unwrap().readings as i64;
        assert!(n >= acked, "{n} stored, {acked} acknowledged");
        // the last acknowledged ones, exactly
        let tail = s.range(1, base, at(NOW, -2_000_000 + acked), 1_000, Order::Desc).unwrap();
        let want: Vec<f64> = (acked - 1_000..acked).rev().map(|i| i as f64).collect();
        assert_eq!(tail.iter().map(|r| r.value).collect::<Vec<_>>(), want);
        let day = s.rollup(1, Some(Resolution::Day), base, at(NOW, 0)).unwrap();
        assert_eq!(day.buckets.iter().map(|b| b.count as i64).sum::<i64>(), n);
    }

    #[test]
    fn the_file_is_wal_with_full_sync() {
        let d = fresh();
        drop(d.open(clock()));
        let c = rusqlite::Connection::open(d.0.path().join(crate::sqlite::FILE)).unwrap();
        let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
        assert_eq!(mode, "wal");
        c.execute_batch("PRAGMA user_version = 9").unwrap();
        drop(c);
        let e = SqliteSeries::open_in(d.0.path(), clock()).unwrap_err();
        assert!(matches!(e, TsError::NewerSchema(_, 9)), "{e}");
    }
}

mod pg_backend {
    use super::*;
    use crate::postgres::PgSeries;
    use shikong_pgtest::Cluster;

    pub(crate) struct Db(pub String);

    impl Place for Db {
        fn open(&self, clock: Arc<dyn Clock>) -> Box<dyn TimeSeries> {
            Box::new(PgSeries::open(&self.0, clock, WriterOptions::default()).unwrap())
        }
    }

    fn fresh() -> Db {
        Db(Cluster::shared().fresh_db())
    }

    conformance_tests!(fresh());

    /// A month whose datastreams have all passed their retention is dropped whole; one holding a
    /// datastream kept forever is deleted from row by row. Another handle (another server
    /// process) that knew the dropped partition writes into that month again afterwards.
    #[test]
    fn retention_drops_whole_partitions_when_every_stream_in_them_expired() {
        let db = fresh();
        let r = retention_removes_old_readings(&db);
        assert_eq!(r.partitions_dropped, 0, "{r:?}");
        let s = db.open(clock());
        s.define(&gauge(3)).unwrap();
        s.define(&gauge(4)).unwrap();
        // datastream 3 alone in 2026-05 and 2026-06
        let batch: Vec<Reading> =
            (0..40).map(|i| Reading::new(3, at("2026-05-20T00:00:00+08:00", i * 86400), 1.0)).collect();
        assert!(s.append(&batch).unwrap().iter().all(|o| *o == Outcome::Accepted));
        let other = db.open(clock());
        assert_eq!(
            other.append(&[Reading::new(4, t("2026-12-07T11:00:00+08:00"), 1.0)]).unwrap(),
            vec![Outcome::Accepted]
        );
        let parts = s.counts().unwrap().partitions;
        s.set_retention(3, Some(SignedDuration::from_hours(24 * 30))).unwrap();
        let r = s.enforce_retention(t(NOW)).unwrap();
        assert_eq!((r.partitions_dropped, r.readings_dropped, r.readings_deleted), (2, 40, 0), "{r:?}");
        assert_eq!(s.counts().unwrap().partitions, parts - 2);
        assert!(all(&*s, 3).is_empty());
        let out = other.append(&[Reading::new(4, t("2026-05-25T00:00:00+08:00"), 4.0)]).unwrap();
        assert_eq!(out, vec![Outcome::Accepted]);
        assert_eq!(all(&*s, 4).len(), 2);
        assert_eq!(s.counts().unwrap().readings, 360 + 123 + 2);
    }

    #[test]
    fn readings_are_partitioned_by_beijing_month() {
        let db = fresh();
        let s = db.open(clock());
        s.define(&gauge(1)).unwrap();
        s.append(&[
            Reading::new(1, t("2026-11-30T16:30:00Z"), 1.0), // 2026-12-01 00:30 in Beijing
            Reading::new(1, t("2026-11-30T15:30:00Z"), 1.0),
        ])
        .unwrap();
        let mut c = ::postgres::Client::connect(&db.0, ::postgres::NoTls).unwrap();
        let rows = c
            .query("SELECT tableoid::regclass::text, count(*) FROM sk_ts_readings GROUP BY 1 ORDER BY 1", &[])
            .unwrap();
        let got: Vec<(String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, vec![("sk_ts_readings_p202611".into(), 1), ("sk_ts_readings_p202612".into(), 1)]);
        let kind: String =
            c.query_one("SELECT relkind::text FROM pg_class WHERE relname = 'sk_ts_readings'", &[]).unwrap().get(0);
        assert_eq!(kind, "p");
    }
}
