//! The shipped sensor alert flow: the platform (role `system`, which no account holds) closes an
//! alert when readings recover, from any open stage; nobody else may; the office may close it
//! by hand, and a recovery after that is refused without changing the case.
#![allow(clippy::expect_used)] // test code: a failed expect is a failed test

mod support;

use shikong_workflow::{Case, Outcome, Refusal, Stamp, apply, shipped};
use support::*;

fn platform() -> shikong_workflow::Actor {
    actor("system:alerts", &["system"])
}

#[test]
fn the_platform_closes_an_alert_from_any_open_stage() {
    let flow = shipped::sensor_alert_flow().expect("shipped sensor alert flow");
    assert!(shikong_workflow::FlowRegistry::shipped().expect("registry").latest("sensor-alert").is_some());
    let mut case = Case::new(&flow, None, None, Stamp(0));
    assert_eq!(case.state, "alerting");
    // an office user cannot use the platform's action, nor can it go without a note
    assert!(matches!(
        apply(&flow, &mut case, &req("recover", "r0", office()).note("x")),
        Err(Refusal::WrongRole { .. })
    ));
    assert!(matches!(apply(&flow, &mut case, &req("recover", "r0", platform())), Err(Refusal::MissingField { .. })));
    apply(&flow, &mut case, &req("acknowledge", "a1", office())).expect("acknowledge");
    apply(&flow, &mut case, &req("dispatch", "a2", office()).to(to_inspector())).expect("dispatch");
    let out = apply(&flow, &mut case, &req("recover", "r1", platform()).note("读数已恢复")).expect("recover");
    assert!(matches!(out, Outcome::Applied(_)));
    assert_eq!(case.state, "recovered");
    // again with the same id: already applied, no second transition
    let again = apply(&flow, &mut case, &req("recover", "r1", platform()).note("读数已恢复")).expect("replay");
    assert!(matches!(again, Outcome::AlreadyApplied { .. }));
    assert_eq!(case.history.len(), 3);
}

#[test]
fn after_the_office_closes_it_a_recovery_is_refused_and_changes_nothing() {
    let flow = shipped::sensor_alert_flow().expect("flow");
    let mut case = Case::new(&flow, None, None, Stamp(0));
    apply(&flow, &mut case, &req("close", "c1", office()).note("误报")).expect("close");
    let before = case.clone();
    let r = apply(&flow, &mut case, &req("recover", "r1", platform()).note("读数已恢复"));
    assert!(matches!(r, Err(Refusal::WrongState { .. })));
    assert_eq!(case, before);
}
