//! Offline merge: a scenario test, and property tests over random interleavings of office and
//! device batches.
//!
//! What the properties promise (the merge's contract), for any set of batches — one batch is one
//! sync of one device (or one burst of office actions), its actions in the order they were made —
//! delivered to a server in any order, any number of times, whole or cut short:
//!
//! 1. **Only allowed states.** Every state the case passes through is reachable from the flow's
//!    initial state, and the history is a chain of transitions the flow permits
//!    (`history[0].from` is the initial state, each `to` is the next `from`, the last `to` is the
//!    current state, and `FlowDef::permits(from, action, to)` for each entry).
//! 2. **No lost action.** Every action id that reached the server is exactly once in the history
//!    or exactly once among the rejected records, never both, never neither; every delivered
//!    action gets exactly one report item.
//! 3. **Convergence.** The final case (state, assignee, history, rejected records) depends only on
//!    the order in which action ids *first* reached the server: two servers whose deliveries have
//!    the same first-arrival order end in identical cases, however many duplicates, re-sends and
//!    partial re-sends either received. (Two servers that see *different* first-arrival orders may
//!    legitimately differ — the office's 回退 before or after a tablet's 处置 are different
//!    histories — but both satisfy 1 and 2.)
#![allow(clippy::expect_used)] // test code: a failed expect is a failed test

mod support;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use shikong_workflow::{ActionRequest, Assignee, Case, FlowDef, MergeItem, Refusal, merge};
use support::*;

#[test]
fn office_return_while_tablet_offline_keeps_the_tablet_action_as_rejected() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    // the tablet handles offline; meanwhile the office returns the case to the centre
    let offline = vec![req("handle", "tab-1", inspector()).photo(PHOTO).note("已修复").at(2000)];
    ok(&flow, &mut case, req("return", "office-1", office()).note("派错单位").at(2100));
    let report = merge(&flow, &mut case, offline.clone()).expect("same flow");
    assert_eq!(case.state, "registered", "the state field is not overwritten by the late action");
    let MergeItem::Rejected { action_id, index, reason } = &report.items[0] else {
        panic!("expected a rejection, got {report:?}")
    };
    assert_eq!((action_id.as_str(), *index), ("tab-1", 0));
    assert_eq!(reason.kind(), "wrong_state");
    assert_eq!(case.rejected[0].state_at_arrival, "registered");
    assert_eq!(case.rejected[0].request, offline[0], "the action is kept whole (photos, note, time)");
    // the tablet syncs again: reported as already rejected, nothing changes
    let before = case.clone();
    let again = merge(&flow, &mut case, offline).expect("same flow");
    assert_eq!(again.items, [MergeItem::AlreadyRejected { action_id: "tab-1".into(), index: 0 }]);
    assert_eq!(case, before);
}

#[test]
fn offline_batch_applies_in_device_order_and_duplicates_are_reported() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let batch = vec![
        req("handle", "t1", inspector()).photo(PHOTO),
        req("verify", "t2", other_inspector()).photo(PHOTO2),
        req("handle", "t1", inspector()).photo(PHOTO),
    ];
    let report = merge(&flow, &mut case, batch).expect("same flow");
    assert_eq!(report.applied().count(), 2);
    assert_eq!(report.items[2], MergeItem::Duplicate { action_id: "t1".into(), index: 3 });
    assert_eq!(case.state, "verified");
    let mut wrong = case.clone();
    wrong.flow.version = 7;
    assert_eq!(merge(&flow, &mut wrong, Vec::new()).map(|r| r.items.len()).map_err(|e| e.kind()), Err("wrong_flow"));
}

/// Who sends a batch.
#[derive(Debug, Clone, Copy)]
enum Source {
    Office,
    Supervisor,
    Tablet1,
    Tablet2,
    Citizen,
}

/// One action template per (source, kind); some deliberately incomplete.
fn template(source: Source, kind: u8) -> ActionRequest {
    let t1 = Assignee::User(inspector().user);
    let t2 = Assignee::User(other_inspector().user);
    match source {
        Source::Office => match kind % 9 {
            0 => req("accept", "", office()),
            1 => req("register", "", office()),
            2 => req("dispatch", "", office()).to(t1),
            3 => req("dispatch", "", office()).to(t2),
            4 => req("verify", "", office()),
            5 => req("close", "", office()),
            6 => req("return", "", office()).note("返工"),
            7 => req("close", "", office()).note("不予立案 / 挂账结案"),
            _ => req("dispatch", "", office()),
        },
        Source::Supervisor => match kind % 4 {
            0 => req("urge", "", supervisor()),
            1 => req("extend", "", supervisor()).note("延期"),
            2 => req("suspend", "", supervisor()).note("挂账"),
            _ => req("suspend", "", supervisor()),
        },
        Source::Tablet1 | Source::Tablet2 => {
            let me = if let Source::Tablet1 = source { inspector() } else { other_inspector() };
            match kind % 5 {
                0 | 1 => req("handle", "", me).photo(PHOTO),
                2 => req("handle", "", me),
                3 => req("verify", "", me).photo(PHOTO2),
                _ => req("return", "", me).note("非本人职责"),
            }
        }
        Source::Citizen => req("rate", "", citizen()).rating(1 + kind % 5),
    }
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![
        4 => Just(Source::Office),
        1 => Just(Source::Supervisor),
        2 => Just(Source::Tablet1),
        2 => Just(Source::Tablet2),
        1 => Just(Source::Citizen),
    ]
}

/// Batches with globally unique action ids.
fn batches() -> impl Strategy<Value = Vec<Vec<ActionRequest>>> {
    prop::collection::vec((source(), prop::collection::vec(any::<u8>(), 1..6)), 1..9).prop_map(|raw| {
        let mut n = 0;
        raw.into_iter()
            .enumerate()
            .map(|(b, (src, kinds))| {
                kinds
                    .into_iter()
                    .map(|k| {
                        n += 1;
                        let mut r = template(src, k);
                        r.action_id = format!("b{b}-a{n}");
                        r.at = shikong_workflow::Stamp(n);
                        r
                    })
                    .collect()
            })
            .collect()
    })
}

/// A delivery: batch index and how many of its actions arrive (a cut-short sync sends a prefix).
type Delivery = (usize, usize);

/// Every batch once in a shuffled order, plus re-sends (whole or prefixes) anywhere.
fn schedule(n: usize) -> impl Strategy<Value = Vec<Delivery>> {
    let order = Just((0..n).collect::<Vec<_>>()).prop_shuffle();
    let extras = prop::collection::vec((0..n, 0..6usize, any::<prop::sample::Index>()), 0..6);
    (order, extras).prop_map(|(order, extras)| {
        let mut out: Vec<Delivery> = order.into_iter().map(|b| (b, usize::MAX)).collect();
        for (b, len, at) in extras {
            let pos = at.index(out.len() + 1);
            out.insert(pos, (b, len));
        }
        out
    })
}

fn deliver(flow: &FlowDef, batches: &[Vec<ActionRequest>], schedule: &[Delivery]) -> (Case, Vec<String>) {
    let mut case = new_case(flow);
    let mut arrived = Vec::new();
    for &(b, len) in schedule {
        let sent: Vec<ActionRequest> = batches[b].iter().take(len).cloned().collect();
        let ids: Vec<String> = sent.iter().map(|r| r.action_id.clone()).collect();
        let report = merge(flow, &mut case, sent).expect("same flow");
        assert_eq!(report.items.len(), ids.len(), "one report item per delivered action");
        for (item, id) in report.items.iter().zip(&ids) {
            let item_id = match item {
                MergeItem::Applied { action_id, .. }
                | MergeItem::Duplicate { action_id, .. }
                | MergeItem::Rejected { action_id, .. }
                | MergeItem::AlreadyRejected { action_id, .. } => action_id,
            };
            assert_eq!(item_id, id, "report items follow the device order");
        }
        arrived.extend(ids);
    }
    (case, arrived)
}

/// Properties 1 and 2 for one server's final case.
fn check_invariants(flow: &FlowDef, case: &Case, arrived: &[String]) {
    let reachable = flow.reachable_states();
    let mut state = flow.initial.as_str();
    for entry in &case.history {
        assert_eq!(entry.from, state, "history is a chain");
        assert!(flow.permits(&entry.from, &entry.action, &entry.to), "{entry:?} is not a flow transition");
        assert!(reachable.contains(entry.to.as_str()), "{} is not reachable", entry.to);
        state = &entry.to;
    }
    assert_eq!(case.state, state);
    for r in &case.rejected {
        assert!(reachable.contains(r.state_at_arrival.as_str()));
        assert!(!matches!(r.reason, Refusal::ActionIdReused { .. } | Refusal::WrongFlow { .. }));
    }
    let applied: Vec<&str> = case.history.iter().map(|a| a.action_id.as_str()).collect();
    let rejected: Vec<&str> = case.rejected.iter().map(|r| r.request.action_id.as_str()).collect();
    let applied_set: BTreeSet<&str> = applied.iter().copied().collect();
    let rejected_set: BTreeSet<&str> = rejected.iter().copied().collect();
    assert_eq!(applied_set.len(), applied.len(), "an action applied twice");
    assert_eq!(rejected_set.len(), rejected.len(), "an action rejected twice");
    assert!(applied_set.is_disjoint(&rejected_set), "an action both applied and rejected");
    let arrived: BTreeSet<&str> = arrived.iter().map(String::as_str).collect();
    let accounted: BTreeSet<&str> = applied_set.union(&rejected_set).copied().collect();
    assert_eq!(accounted, arrived, "every arrived action is applied or rejected, nothing else");
}

fn first_arrivals(batches: &[Vec<ActionRequest>], schedule: &[Delivery]) -> Vec<ActionRequest> {
    let mut seen = BTreeMap::new();
    let mut out = Vec::new();
    for &(b, len) in schedule {
        for r in batches[b].iter().take(len) {
            if seen.insert(r.action_id.clone(), ()).is_none() {
                out.push(r.clone());
            }
        }
    }
    out
}

fn batches_and_schedules() -> impl Strategy<Value = (Vec<Vec<ActionRequest>>, Vec<Delivery>, Vec<Delivery>)> {
    batches().prop_flat_map(|b| {
        let n = b.len();
        (Just(b), schedule(n), schedule(n))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Properties 1 and 2 on two servers with independent delivery orders, and property 3: each
    /// server's case equals the case built from its first-arrival order alone, delivered once.
    #[test]
    fn interleavings_stay_in_the_flow_lose_nothing_and_converge((batches, a, b) in batches_and_schedules()) {
        let flow = standard();
        for schedule in [&a, &b] {
            let (case, arrived) = deliver(&flow, &batches, schedule);
            check_invariants(&flow, &case, &arrived);
            let once = first_arrivals(&batches, schedule);
            let mut clean = new_case(&flow);
            merge(&flow, &mut clean, once).expect("same flow");
            prop_assert_eq!(&case, &clean, "duplicates and re-sends changed the outcome");
        }
    }

    /// Property 3 directly: the same batches, same first-arrival order, different duplicates.
    #[test]
    fn same_first_arrival_order_same_case((batches, a, _b) in batches_and_schedules(), extra in prop::collection::vec((any::<prop::sample::Index>(), 0..6usize), 0..8)) {
        let flow = standard();
        // B: A with re-sends of already delivered batches (or their prefixes) appended anywhere later
        let mut b: Vec<Delivery> = a.clone();
        for (i, len) in extra {
            let pos = i.index(b.len());
            let (batch, _) = b[pos];
            // no longer than what of that batch had already arrived by then
            let delivered = b[..=pos].iter().filter(|d| d.0 == batch).map(|d| d.1).max().unwrap_or(0);
            b.insert(pos + 1, (batch, len.min(delivered)));
        }
        prop_assert_eq!(first_arrivals(&batches, &a), first_arrivals(&batches, &b));
        let (case_a, _) = deliver(&flow, &batches, &a);
        let (case_b, arrived_b) = deliver(&flow, &batches, &b);
        check_invariants(&flow, &case_b, &arrived_b);
        prop_assert_eq!(case_a, case_b);
    }
}

/// The generators reach deep states, so the properties are not only exercised on fresh cases.
#[test]
fn generated_histories_reach_closing_states() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let flow = standard();
    let mut runner = TestRunner::deterministic();
    let mut reached = BTreeSet::new();
    for _ in 0..2000 {
        let (batches, a, _) = batches_and_schedules().new_tree(&mut runner).expect("tree").current();
        let (case, _) = deliver(&flow, &batches, &a);
        reached.extend(case.history.iter().map(|h| h.to.clone()));
        reached.extend(case.rejected.iter().map(|r| r.reason.kind().to_owned()));
    }
    for want in
        ["dispatched", "handled", "verified", "closed", "suspended", "wrong_state", "wrong_role", "missing_photo"]
    {
        assert!(reached.contains(want), "{want} never reached: {reached:?}");
    }
}
