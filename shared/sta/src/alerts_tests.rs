//! The incident state machine: examples, then properties over random reading sequences.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

use proptest::prelude::*;

use super::*;

fn t(s: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + s).unwrap()
}

fn above(threshold: f64, clear: f64) -> Rule {
    Rule {
        scope: Scope::Datastream(1),
        condition: Condition::Above { threshold, clear },
        min_breach_seconds: 0,
        min_recover_seconds: 0,
    }
}

fn kinds(ts: &[Option<Transition>]) -> String {
    ts.iter()
        .map(|x| match x {
            None => '.',
            Some(Transition::Open { .. }) => 'O',
            Some(Transition::Close { .. }) => 'C',
        })
        .collect()
}

fn run(rule: &Rule, readings: &[(i64, f64)]) -> String {
    let mut tr = Tracker::default();
    let out: Vec<_> = readings.iter().map(|&(s, v)| tr.observe(rule, t(s), v)).collect();
    kinds(&out)
}

#[test]
fn threshold_with_hysteresis_opens_once_and_closes_below_clear() {
    let r = above(3.0, 2.5);
    // breach, still breach, band (stays open), clear, band (stays closed), breach again
    assert_eq!(run(&r, &[(0, 2.0), (10, 3.2), (20, 3.5), (30, 2.8), (40, 2.4), (50, 2.9), (60, 3.1)]), ".O..C.O");
}

#[test]
fn below_mirrors_above() {
    let r = Rule { condition: Condition::Below { threshold: 1.0, clear: 1.5 }, ..above(0.0, 0.0) };
    assert_eq!(run(&r, &[(0, 2.0), (10, 0.9), (20, 1.2), (30, 1.6)]), ".O.C");
}

#[test]
fn late_and_duplicate_readings_are_ignored() {
    let r = above(3.0, 2.5);
    let mut tr = Tracker::default();
    assert!(matches!(tr.observe(&r, t(10), 4.0), Some(Transition::Open { .. })));
    // an older recovering reading and the same instant again change nothing
    assert_eq!(tr.observe(&r, t(5), 1.0), None);
    assert_eq!(tr.observe(&r, t(10), 1.0), None);
    assert!(tr.is_open());
    assert_eq!(tr.ignored, 2);
    assert!(matches!(tr.observe(&r, t(11), 1.0), Some(Transition::Close { .. })));
}

#[test]
fn minimum_durations_bound_flapping() {
    let r = Rule { min_breach_seconds: 60, min_recover_seconds: 60, ..above(3.0, 2.5) };
    // a short spike opens nothing; a breach lasting 60 s opens with `since` at its start
    assert_eq!(run(&r, &[(0, 4.0), (30, 4.0), (40, 1.0), (100, 4.0), (130, 4.0), (160, 4.0)]), ".....O");
    let mut tr = Tracker::default();
    for s in [100, 160] {
        tr.observe(&r, t(s), 4.0);
    }
    assert!(tr.is_open());
    // a short dip does not close; a breach during recovery resets it
    assert_eq!(tr.observe(&r, t(170), 1.0), None);
    assert_eq!(tr.observe(&r, t(200), 4.0), None);
    assert_eq!(tr.observe(&r, t(210), 1.0), None);
    assert!(matches!(tr.observe(&r, t(270), 1.0), Some(Transition::Close { .. })));
    let mut tr = Tracker::default();
    tr.observe(&r, t(0), 4.0);
    match tr.observe(&r, t(60), 5.0) {
        Some(Transition::Open { since, at, value, .. }) => {
            assert_eq!((since, at, value), (t(0), t(60), 5.0));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn rate_of_change_over_a_window() {
    let r = Rule {
        condition: Condition::Rate { per_minute: 0.5, clear_per_minute: 0.2, window_minutes: 10 },
        ..above(0.0, 0.0)
    };
    // under a minute of span: undecided; +2 over 2 min = 1/min: breach; +2 over 5 min = 0.4/min:
    // the band (stays open); once the window holds only flat readings: 0/min, recovered
    assert_eq!(run(&r, &[(0, 1.0), (30, 1.5), (120, 3.0), (300, 3.0), (900, 3.0), (1000, 3.0)]), "..O.C.");
}

#[test]
fn silence_opens_after_the_quiet_time_and_a_reading_ends_it() {
    let r = Rule { condition: Condition::Silence { minutes: 10 }, ..above(0.0, 0.0) };
    let mut tr = Tracker::default();
    assert_eq!(silence(&mut tr, &r, Some(t(0)), t(-100), t(599)), None);
    match silence(&mut tr, &r, Some(t(0)), t(-100), t(600)) {
        Some(Transition::Open { since, limit, .. }) => assert_eq!((since, limit), (t(600), 10.0)),
        other => panic!("{other:?}"),
    }
    // still silent: no second incident
    assert_eq!(silence(&mut tr, &r, Some(t(0)), t(-100), t(6000)), None);
    // a reading closes it (through the reading path or the next tick)
    let mut by_tick = tr.clone();
    assert!(matches!(tr.observe(&r, t(6001), 1.0), Some(Transition::Close { .. })));
    assert!(matches!(silence(&mut by_tick, &r, Some(t(6001)), t(-100), t(6002)), Some(Transition::Close { .. })));
    // never reported: silent from when the rule began watching
    let mut fresh = Tracker::default();
    assert!(silence(&mut fresh, &r, None, t(0), t(600)).is_some());
}

#[test]
fn validation_names_the_member() {
    let e = validate("x", &above(3.0, 3.5)).unwrap_err();
    assert_eq!(e.field, "condition.clear");
    assert_eq!(validate("", &above(3.0, 2.0)).unwrap_err().field, "name");
    assert_eq!(validate(&"水".repeat(MAX_NAME + 1), &above(3.0, 2.0)).unwrap_err().field, "name");
    assert!(validate(&"水".repeat(MAX_NAME), &above(3.0, 2.0)).is_ok());
    assert_eq!(validate("x", &above(f64::NAN, 2.0)).unwrap_err().field, "condition.threshold");
    let silent = Rule { condition: Condition::Silence { minutes: 0 }, ..above(0.0, 0.0) };
    assert_eq!(validate("x", &silent).unwrap_err().field, "condition.minutes");
    let hold = Rule { min_breach_seconds: MAX_HOLD_SECONDS + 1, ..above(3.0, 2.0) };
    assert_eq!(validate("x", &hold).unwrap_err().field, "min_breach_seconds");
}

#[test]
fn scope_matches_a_class_of_sensor() {
    let ds = DatastreamInfo { id: 7, sensor: Some(2), observed_property: Some(3) };
    assert!(Scope::Datastream(7).matches(&ds) && !Scope::Datastream(8).matches(&ds));
    assert!(Scope::Sensor(2).matches(&ds) && Scope::ObservedProperty(3).matches(&ds));
    assert!(!Scope::Sensor(3).matches(&ds));
}

fn rules() -> impl Strategy<Value = Rule> {
    let cond = prop_oneof![
        (0.0..10.0f64, 0.0..3.0f64).prop_map(|(th, gap)| Condition::Above { threshold: th, clear: th - gap }),
        (0.0..10.0f64, 0.0..3.0f64).prop_map(|(th, gap)| Condition::Below { threshold: th, clear: th + gap }),
        (0.1..2.0f64, 0.0..1.0f64, 1..20u32).prop_map(|(p, c, w)| Condition::Rate {
            per_minute: p,
            clear_per_minute: p * c,
            window_minutes: w
        }),
    ];
    (cond, 0..300u32, 0..300u32).prop_map(|(condition, b, r)| Rule {
        scope: Scope::Datastream(1),
        condition,
        min_breach_seconds: b,
        min_recover_seconds: r,
    })
}

/// Readings at random (often repeated, often out-of-order) seconds.
fn readings() -> impl Strategy<Value = Vec<(i64, f64)>> {
    prop::collection::vec((0..2_000i64, -2.0..14.0f64), 0..120)
}

proptest! {
    /// One ongoing breach is one incident: transitions alternate Open, Close, Open …
    #[test]
    fn transitions_alternate(rule in rules(), rs in readings()) {
        let mut tr = Tracker::default();
        let mut open = false;
        for (s, v) in rs {
            match tr.observe(&rule, t(s), v) {
                Some(Transition::Open { since, at, .. }) => {
                    prop_assert!(!open, "a second incident opened during one breach");
                    prop_assert!(since <= at);
                    open = true;
                }
                Some(Transition::Close { .. }) => {
                    prop_assert!(open, "closed without an open incident");
                    open = false;
                }
                None => {}
            }
            prop_assert_eq!(open, tr.is_open());
        }
    }

    /// Deterministic: the same arrival order gives the same transitions; re-sending every reading
    /// afterwards (duplicates, late) changes nothing.
    #[test]
    fn deterministic_and_duplicates_change_nothing(rule in rules(), rs in readings()) {
        let mut a = Tracker::default();
        let mut b = Tracker::default();
        let ta: Vec<_> = rs.iter().map(|&(s, v)| a.observe(&rule, t(s), v)).collect();
        let tb: Vec<_> = rs.iter().map(|&(s, v)| b.observe(&rule, t(s), v)).collect();
        prop_assert_eq!(kinds(&ta), kinds(&tb));
        let open = a.is_open();
        for &(s, v) in &rs {
            prop_assert_eq!(a.observe(&rule, t(s), v), None);
        }
        prop_assert_eq!(a.is_open(), open);
    }

    /// An incident of a threshold rule opens only after every judged reading since its `since`
    /// breached, for at least `min_breach_seconds`.
    #[test]
    fn opens_only_after_the_minimum_breach(rule in rules(), rs in readings()) {
        let mut tr = Tracker::default();
        let mut judged: Vec<(Timestamp, f64)> = Vec::new();
        for (s, v) in rs {
            let before = tr.newest();
            let out = tr.observe(&rule, t(s), v);
            if tr.newest() != before {
                judged.push((t(s), v));
            }
            if let (Some(Transition::Open { since, at, .. }), Condition::Above { threshold, .. }) = (out, rule.condition) {
                prop_assert!(at.duration_since(since).as_secs() >= i64::from(rule.min_breach_seconds));
                for &(jt, jv) in judged.iter().filter(|(jt, _)| *jt >= since) {
                    prop_assert!(jv > threshold, "reading at {jt} ({jv}) did not breach");
                }
            }
        }
    }
}
