//! The rules without I/O: validation reasons, bucket boundaries, the duplicate/correction rule,
//! and roll-ups kept incrementally (in any order, with duplicates and corrections) equal to
//! roll-ups recomputed from scratch.

use proptest::prelude::*;

use super::*;

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn gauge() -> Datastream {
    Datastream { id: 1, unit: "m".into(), min: -5.0, max: 30.0, retention: None }
}

fn defs() -> HashMap<DatastreamId, Datastream> {
    let mut d = HashMap::new();
    d.insert(1, gauge());
    d.insert(2, Datastream { id: 2, unit: "A".into(), min: 0.0, max: 100.0, retention: None });
    d
}

const NOW: &str = "2026-12-07T12:00:00+08:00";

#[test]
fn impossible_readings_are_refused_with_their_reason() {
    let now = us(t(NOW));
    let def = gauge();
    let ok = Reading::new(1, t("2026-12-07T11:59:00+08:00"), 3.5);
    assert_eq!(validate(&ok, Some(&def), now), Ok((1, us(ok.time))));
    let code = |r: &Reading, d: Option<&Datastream>| validate(r, d, now).unwrap_err().code();
    assert_eq!(code(&ok, None), "unknown_datastream");
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert_eq!(code(&Reading { value: v, ..ok.clone() }, Some(&def)), "not_finite");
    }
    assert_eq!(code(&Reading { value: 30.01, ..ok.clone() }, Some(&def)), "out_of_range");
    assert_eq!(code(&Reading { value: -5.5, ..ok.clone() }, Some(&def)), "out_of_range");
    // the range is inclusive
    assert!(validate(&Reading { value: 30.0, ..ok.clone() }, Some(&def), now).is_ok());
    let cm = Reading { unit: Some("cm".into()), ..ok.clone() };
    assert_eq!(code(&cm, Some(&def)), "unit_mismatch");
    assert!(validate(&Reading { unit: Some("m".into()), ..ok.clone() }, Some(&def), now).is_ok());
    assert_eq!(code(&Reading { time: t("1999-12-31T23:59:59Z"), ..ok.clone() }, Some(&def)), "too_old");
    assert!(validate(&Reading { time: t("2000-01-01T00:00:00Z"), ..ok.clone() }, Some(&def), now).is_ok());
    assert!(validate(&Reading { time: t("2026-12-07T12:10:00+08:00"), ..ok.clone() }, Some(&def), now).is_ok());
    let ahead = Reading { time: t("2026-12-07T12:10:00.000001+08:00"), ..ok.clone() };
    assert_eq!(code(&ahead, Some(&def)), "in_future");
    // retention of 2 days: kept from the Beijing day boundary two days back
    let kept = Datastream { retention: Some(SignedDuration::from_hours(48)), ..def };
    assert!(validate(&Reading { time: t("2026-12-05T00:00:00+08:00"), ..ok.clone() }, Some(&kept), now).is_ok());
    let old = Reading { time: t("2026-12-04T23:59:59+08:00"), ..ok };
    let e = validate(&old, Some(&kept), now).unwrap_err();
    assert_eq!(e.code(), "beyond_retention");
    assert!(e.to_string().contains("2026-12-04T16:00:00Z"), "{e}");
}

#[test]
fn buckets_are_utc_minutes_and_hours_and_beijing_days() {
    let x = us(t("2026-12-07T07:59:30.5+08:00"));
    assert_eq!(ts(Resolution::Minute.bucket(x)), t("2026-12-07T07:59:00+08:00"));
    assert_eq!(ts(Resolution::Hour.bucket(x)), t("2026-12-07T07:00:00+08:00"));
    assert_eq!(ts(Resolution::Day.bucket(x)), t("2026-12-07T00:00:00+08:00"));
    // 23:30 UTC is the next Beijing day
    assert_eq!(ts(Resolution::Day.bucket(us(t("2026-12-06T23:30:00Z")))), t("2026-12-07T00:00:00+08:00"));
    assert_eq!(ts(Resolution::Day.bucket(us(t("2026-12-06T15:59:59Z")))), t("2026-12-06T00:00:00+08:00"));
    let (a, b) = month_of(us(t("2026-11-30T16:30:00Z")));
    assert_eq!((ts(a), ts(b)), (t("2026-12-01T00:00:00+08:00"), t("2027-01-01T00:00:00+08:00")));
    for r in Resolution::ALL {
        assert_eq!(Resolution::from_code(r.code()), Some(r));
    }
}

#[test]
fn auto_resolution_keeps_charts_small_and_long_windows_are_refused() {
    let from = t("2026-01-01T00:00:00+08:00");
    let at = |h: i64| from.checked_add(SignedDuration::from_hours(h)).unwrap();
    assert_eq!(choose_resolution(None, from, at(6)).unwrap(), Resolution::Minute);
    assert_eq!(choose_resolution(None, from, at(24 * 7)).unwrap(), Resolution::Hour);
    assert_eq!(choose_resolution(None, from, at(24 * 365)).unwrap(), Resolution::Day);
    assert_eq!(choose_resolution(Some(Resolution::Minute), from, at(24)).unwrap(), Resolution::Minute);
    let e = choose_resolution(Some(Resolution::Minute), from, at(24 * 30)).unwrap_err();
    assert!(matches!(e, TsError::WindowTooLong { .. }), "{e}");
}

#[test]
fn duplicates_are_no_ops_and_different_values_are_corrections_in_append_order() {
    let now = us(t(NOW));
    let a = t("2026-12-07T10:00:00+08:00");
    let b = t("2026-12-07T10:00:01+08:00");
    let mut existing = HashMap::new();
    existing.insert((1, us(a)), 2.0);
    let batch = vec![
        Reading::new(1, a, 2.0),      // same as stored
        Reading::new(1, a, 2.5),      // correction of the stored value
        Reading::new(1, b, 1.0),      // new
        Reading::new(1, b, 1.0),      // duplicate within the batch
        Reading::new(1, b, 1.25),     // correction within the batch
        Reading::new(1, a, f64::NAN), // refused
        Reading::new(9, a, 1.0),      // unknown
    ];
    let p = plan(&batch, Plan::keys(&batch, &defs(), now), &existing);
    assert_eq!(
        p.outcomes,
        vec![
            Outcome::Duplicate,
            Outcome::Corrected { previous: 2.0 },
            Outcome::Accepted,
            Outcome::Duplicate,
            Outcome::Corrected { previous: 1.0 },
            Outcome::Refused { reason: Refusal::NotFinite { value: "NaN".into() } },
            Outcome::Refused { reason: Refusal::UnknownDatastream { datastream: 9 } },
        ]
    );
    assert_eq!(p.inserts, vec![((1, us(b)), 1.25)]);
    assert_eq!(p.updates, vec![((1, us(a)), 2.5)]);
    assert_eq!(p.corrections, vec![((1, us(a)), 2.0, 2.5), ((1, us(b)), 1.0, 1.25)]);
    assert_eq!(p.recompute.len(), 1);
    assert_eq!(p.adds[&(1, Resolution::Minute, Resolution::Minute.bucket(us(b)))], Agg::of(1.25));
}

/// An in-memory backend that does what the real ones do with a plan: insert, update, add to the
/// roll-ups, recompute corrected minutes from readings and their hours and days from the finer
/// buckets.
#[derive(Default)]
struct Memory {
    rows: BTreeMap<Key, f64>,
    rollups: BTreeMap<(DatastreamId, Resolution, i64), Agg>,
}

impl Memory {
    fn append(&mut self, batch: &[Reading], now: i64) -> Vec<Outcome> {
        let keys = Plan::keys(batch, &defs(), now);
        let existing: HashMap<Key, f64> =
            keys.iter().flatten().filter_map(|k| self.rows.get(k).map(|v| (*k, *v))).collect();
        let p = plan(batch, keys, &existing);
        for (k, v) in p.inserts.iter().chain(&p.updates) {
            self.rows.insert(*k, *v);
        }
        for (k, a) in &p.adds {
            self.rollups.entry(*k).and_modify(|x| x.merge(a)).or_insert(*a);
        }
        for (d, m) in &p.recompute {
            let agg = rollups_of(self.rows.range((*d, *m)..(*d, m + Resolution::Minute.len_us())));
            self.rollups.insert((*d, Resolution::Minute, *m), agg[&(*d, Resolution::Minute, *m)]);
        }
        for res in [Resolution::Hour, Resolution::Day] {
            let finer = res.finer().unwrap();
            for (d, b) in coarser_buckets(&p.recompute, res) {
                let mut acc: Option<Agg> = None;
                for (_, a) in self.rollups.range((d, finer, b)..(d, finer, b + res.len_us())) {
                    acc = Some(acc.map_or(*a, |mut x| {
                        x.merge(a);
                        x
                    }));
                }
                self.rollups.insert((d, res, b), acc.unwrap());
            }
        }
        p.outcomes
    }
}

fn reading_strategy() -> impl Strategy<Value = Reading> {
    // two datastreams, times over ~3 Beijing days around a day boundary, values in quarters so that
    // sums are exact whatever the order
    (1i64..=2, 0i64..(3 * 24 * 60), 0u32..60, -20i32..120).prop_map(|(d, minute, sec, q)| {
        let start = us("2026-12-05T20:00:00+08:00".parse::<Timestamp>().unwrap());
        let t = start + minute * MINUTE_US + i64::from(sec % 3) * 20_000_000;
        Reading::new(d, ts(t), f64::from(q) / 4.0)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn incremental_rollups_equal_rollups_from_scratch(
        readings in proptest::collection::vec(reading_strategy(), 1..300),
        cuts in proptest::collection::vec(1usize..40, 1..20),
    ) {
        let now = us(t(NOW));
        let mut m = Memory::default();
        let mut i = 0;
        let mut c = cuts.iter().cycle();
        while i < readings.len() {
            let n = (*c.next().unwrap()).min(readings.len() - i);
            let outcomes = m.append(&readings[i..i + n], now);
            prop_assert_eq!(outcomes.len(), n);
            i += n;
        }
        // the stored value of each key is the last one appended
        let mut last: BTreeMap<Key, f64> = BTreeMap::new();
        for r in &readings {
            if validate(r, defs().get(&r.datastream), now).is_ok() {
                last.insert((r.datastream, us(r.time)), r.value);
            }
        }
        prop_assert_eq!(&m.rows, &last);
        prop_assert_eq!(&m.rollups, &rollups_of(&last));
        // replaying everything again changes nothing: all duplicates
        let again = m.append(&readings.iter().filter(|r| last.get(&(r.datastream, us(r.time))) == Some(&r.value)).cloned().collect::<Vec<_>>(), now);
        let all_duplicates = again.iter().all(|o| *o == Outcome::Duplicate || matches!(o, Outcome::Refused { .. }));
        prop_assert!(all_duplicates);
        prop_assert_eq!(&m.rollups, &rollups_of(&last));
    }
}
