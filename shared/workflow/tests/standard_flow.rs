//! Every path of the shipped standard flow, every refusal kind, idempotency, overdue, and the
//! hotline flow's main path.
#![allow(clippy::expect_used)] // test code: a failed expect is a failed test

mod support;

use shikong_workflow::{
    Assignee, Case, Field, FlowRef, Outcome, Recipient, Refusal, StageClock, Stamp, TimeLimit, apply, overdue,
};
use support::*;

#[test]
fn happy_path_reported_to_rated() {
    let flow = standard();
    let mut case = new_case(&flow);
    assert_eq!(case.state, "reported");
    let t = ok(&flow, &mut case, req("accept", "a1", office()));
    assert_eq!(t.notifications.iter().map(|n| &n.to).collect::<Vec<_>>(), [&Recipient::User(citizen().user)]);
    ok(&flow, &mut case, req("register", "a2", office()));
    let t = ok(&flow, &mut case, req("dispatch", "a3", office()).to(to_inspector()).at(5000));
    assert_eq!(t.notifications[0].to, Recipient::Assignee(to_inspector()));
    assert_eq!(t.clock, StageClock::Start { limit: Some(TimeLimit::WorkingDays(3)) });
    assert_eq!(case.stage_started, Stamp(5000));
    assert_eq!(case.assignee, Some(to_inspector()));
    let t = ok(&flow, &mut case, req("handle", "a4", inspector()).photo(PHOTO).note("已更换井盖"));
    assert_eq!(t.notifications[0].to, Recipient::Role("office".into()));
    ok(&flow, &mut case, req("verify", "a5", office()));
    let t = ok(&flow, &mut case, req("close", "a6", office()));
    assert_eq!(t.clock, StageClock::Start { limit: None });
    assert_eq!(t.notifications[0].to, Recipient::User(citizen().user));
    assert_eq!(case.state, "closed");
    ok(&flow, &mut case, req("rate", "a7", citizen()).rating(5));
    assert_eq!(case.state, "rated");
    let path: Vec<(&str, &str, &str)> =
        case.history.iter().map(|a| (a.from.as_str(), a.action.as_str(), a.to.as_str())).collect();
    assert_eq!(
        path,
        [
            ("reported", "accept", "accepted"),
            ("accepted", "register", "registered"),
            ("registered", "dispatch", "dispatched"),
            ("dispatched", "handle", "handled"),
            ("handled", "verify", "verified"),
            ("verified", "close", "closed"),
            ("closed", "rate", "rated"),
        ]
    );
    assert_eq!(case.history[3].actor, inspector().user);
    assert_eq!(case.history[3].photos, [PHOTO]);
    assert_eq!(case.history[3].note.as_deref(), Some("已更换井盖"));
}

#[test]
fn dispatch_to_a_department_lets_its_members_handle() {
    let flow = standard();
    let mut case = new_case(&flow);
    ok(&flow, &mut case, req("accept", "a1", office()));
    ok(&flow, &mut case, req("register", "a2", office()));
    ok(&flow, &mut case, req("dispatch", "a3", office()).to(Assignee::Department("municipal-works".into())));
    let outsider = refused(&flow, &mut case, req("handle", "h0", inspector()).photo(PHOTO));
    assert_eq!(outsider.kind(), "wrong_role");
    let mut worker = actor("sun.worker", &[]);
    worker.departments.push("municipal-works".into());
    ok(&flow, &mut case, req("handle", "h1", worker).photo(PHOTO));
    assert_eq!(case.state, "handled");
}

#[test]
fn inspector_verification_needs_a_photo_office_does_not() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    ok(&flow, &mut case, req("handle", "h", inspector()).photo(PHOTO));
    let r = refused(&flow, &mut case, req("verify", "v1", other_inspector()));
    assert_eq!(r, Refusal::MissingPhoto { action: "verify".into(), required: 1, given: 0 });
    ok(&flow, &mut case, req("verify", "v2", other_inspector()).photo(PHOTO2));
    assert_eq!(case.state, "verified");
}

#[test]
fn return_goes_back_to_dispatch_and_redispatch_works() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    // the assignee sends it back (wrong department): back at the centre, awaiting dispatch
    let t = ok(&flow, &mut case, req("return", "r1", inspector()).note("不属于本单位职责"));
    assert_eq!(case.state, "registered");
    assert_eq!(case.assignee, None);
    assert!(t.notifications.contains(&shikong_workflow::Notification {
        to: Recipient::Assignee(to_inspector()),
        action: "return".into(),
        state: "registered".into()
    }));
    let new = Assignee::User(other_inspector().user);
    ok(&flow, &mut case, req("dispatch", "d2", office()).to(new.clone()));
    assert_eq!(case.assignee, Some(new));
    // rework: the verifier sends a handled case back to the same assignee
    ok(&flow, &mut case, req("handle", "h", other_inspector()).photo(PHOTO));
    ok(&flow, &mut case, req("return", "r2", office()).note("未处置到位，返工"));
    assert_eq!(case.state, "dispatched");
    assert_eq!(case.assignee, Some(Assignee::User(other_inspector().user)));
}

#[test]
fn extend_extends_the_stage_limit_without_moving() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let started = case.stage_started;
    let t = ok(&flow, &mut case, req("extend", "e1", office()).note("需协调产权单位").at(9000));
    assert_eq!(t.clock, StageClock::Extend { by: TimeLimit::WorkingDays(3) });
    assert_eq!(case.state, "dispatched");
    assert_eq!(case.stage_started, started, "an extension does not restart the stage");
    assert_eq!(t.notifications[0].to, Recipient::Assignee(to_inspector()));
}

#[test]
fn suspend_parks_the_case_without_a_clock() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let t = ok(&flow, &mut case, req("suspend", "s1", supervisor()).note("需专项资金，列入挂账"));
    assert_eq!(case.state, "suspended");
    assert_eq!(t.clock, StageClock::Start { limit: None });
    assert_eq!(case.stage_limit(&flow), None);
    assert!(overdue(&flow, &case, Stamp(i64::MAX), None).is_none());
    let r = refused(&flow, &mut case, req("handle", "h", inspector()).photo(PHOTO));
    assert_eq!(r.kind(), "wrong_state");
    ok(&flow, &mut case, req("dispatch", "d2", office()).to(to_inspector()));
    assert_eq!(case.state, "dispatched");
}

#[test]
fn urge_notifies_without_changing_state() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let before = (case.state.clone(), case.assignee.clone(), case.stage_started);
    let t = ok(&flow, &mut case, req("urge", "u1", supervisor()).note("请尽快处置"));
    assert_eq!(t.clock, StageClock::Keep);
    assert_eq!((t.entry.from.as_str(), t.entry.to.as_str()), ("dispatched", "dispatched"));
    assert_eq!((case.state.clone(), case.assignee.clone(), case.stage_started), before);
    let to: Vec<&Recipient> = t.notifications.iter().map(|n| &n.to).collect();
    assert_eq!(to, [&Recipient::Assignee(to_inspector()), &Recipient::Role("office".into())]);
}

#[test]
fn rate_only_after_close_and_only_by_the_reporter() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let r = refused(&flow, &mut case, req("rate", "x1", citizen()).rating(4));
    assert_eq!(r.kind(), "wrong_state");
    ok(&flow, &mut case, req("handle", "h", inspector()).photo(PHOTO));
    ok(&flow, &mut case, req("verify", "v", office()));
    ok(&flow, &mut case, req("close", "c", office()));
    let r = refused(&flow, &mut case, req("rate", "x2", other_citizen()).rating(4));
    assert_eq!(r, Refusal::WrongRole { action: "rate".into(), state: "closed".into(), roles: vec!["reporter".into()] });
    let r = refused(&flow, &mut case, req("rate", "x3", office()).rating(4));
    assert_eq!(r.kind(), "wrong_role");
    let r = refused(&flow, &mut case, req("rate", "x4", citizen()));
    assert_eq!(r, Refusal::MissingField { action: "rate".into(), field: Field::Rating });
    let r = refused(&flow, &mut case, req("rate", "x5", citizen()).rating(6));
    assert_eq!(r.kind(), "invalid_field");
    ok(&flow, &mut case, req("rate", "x6", citizen()).rating(4));
    assert_eq!(case.history.last().map(|a| a.rating), Some(Some(4)));
}

#[test]
fn dismiss_needs_a_note() {
    let flow = standard();
    let mut case = new_case(&flow);
    ok(&flow, &mut case, req("accept", "a", office()));
    let r = refused(&flow, &mut case, req("close", "c1", office()).note("   "));
    assert_eq!(r, Refusal::MissingField { action: "close".into(), field: Field::Note });
    ok(&flow, &mut case, req("close", "c2", office()).note("不符合立案条件"));
    assert_eq!(case.state, "dismissed");
}

#[test]
fn each_refusal_kind() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let r = refused(&flow, &mut case, req("teleport", "k1", office()));
    assert_eq!(r, Refusal::UnknownAction { action: "teleport".into() });
    let r = refused(&flow, &mut case, req("accept", "k2", office()));
    assert_eq!(
        r,
        Refusal::WrongState {
            action: "accept".into(),
            state: "dispatched".into(),
            allowed_in: vec!["reported".into()]
        }
    );
    let r = refused(&flow, &mut case, req("handle", "k3", other_inspector()).photo(PHOTO));
    assert_eq!(
        r,
        Refusal::WrongRole { action: "handle".into(), state: "dispatched".into(), roles: vec!["assignee".into()] }
    );
    let r = refused(&flow, &mut case, req("handle", "k4", inspector()));
    assert_eq!(r, Refusal::MissingPhoto { action: "handle".into(), required: 1, given: 0 });
    let r = refused(&flow, &mut case, req("handle", "k5", inspector()).photo("not-a-hash"));
    assert_eq!(r, Refusal::InvalidPhoto { index: 0, value: "not-a-hash".into() });
    let r = refused(&flow, &mut case, req("suspend", "k6", office()));
    assert_eq!(r, Refusal::MissingField { action: "suspend".into(), field: Field::Note });
    let r = refused(&flow, &mut case, req("dispatch", "k7", office()));
    assert_eq!(r, Refusal::MissingField { action: "dispatch".into(), field: Field::Assignee });
    let r = refused(&flow, &mut case, req("dispatch", "k8", office()).to(Assignee::User(" ".into())));
    assert_eq!(r.kind(), "invalid_field");
    let r = refused(&flow, &mut case, req("urge", "", office()));
    assert_eq!(r, Refusal::EmptyActionId);
    // an action id already used for another action
    let r = refused(&flow, &mut case, req("urge", "p-dispatch", office()));
    assert_eq!(r.kind(), "action_id_reused");
    // the same photo twice is one photo (case-insensitive hex)
    let t = ok(&flow, &mut case.clone(), req("handle", "k9", inspector()).photo(PHOTO).photo(&PHOTO.to_uppercase()));
    assert_eq!(t.entry.photos, [PHOTO]);
    // wrong flow version
    let mut other = case.clone();
    other.flow = FlowRef { id: "city-standard".into(), version: 99 };
    let r = refused(&flow, &mut other, req("urge", "k10", office()));
    assert_eq!(r.kind(), "wrong_flow");
    let mut corrupt = case.clone();
    corrupt.state = "limbo".into();
    let r = refused(&flow, &mut corrupt, req("urge", "k11", office()));
    assert_eq!(r, Refusal::CorruptCase { state: "limbo".into() });
}

#[test]
fn same_action_id_twice_is_already_applied() {
    let flow = standard();
    let mut case = dispatched_case(&flow);
    let handle = req("handle", "tablet-1", inspector()).photo(PHOTO);
    ok(&flow, &mut case, handle.clone());
    let after = case.clone();
    let again = apply(&flow, &mut case, &handle).expect("a resend is not a refusal");
    assert_eq!(again, Outcome::AlreadyApplied { index: 3 });
    assert_eq!(case, after);
}

#[test]
fn class_limit_sets_the_handling_stage() {
    let flow = standard();
    let classes = shikong_workflow::shipped::classification().expect("classes");
    let (_, minor) = classes.minor(shikong_workflow::ClassKind::Event, "0102").expect("暴露垃圾");
    let mut case = Case::new(&flow, None, Some(minor.limit), Stamp(0));
    ok(&flow, &mut case, req("accept", "a", office()));
    ok(&flow, &mut case, req("register", "b", office()));
    let t = ok(&flow, &mut case, req("dispatch", "c", office()).to(to_inspector()));
    assert_eq!(t.clock, StageClock::Start { limit: Some(TimeLimit::WorkingHours(4)) });
}

#[test]
fn overdue_names_the_escalation_targets() {
    let flow = standard();
    let case = dispatched_case(&flow);
    assert!(overdue(&flow, &case, Stamp(100), Some(Stamp(100))).is_none(), "at the deadline is not late");
    let o = overdue(&flow, &case, Stamp(150), Some(Stamp(100))).expect("late");
    assert_eq!(o.late_by, 50);
    assert_eq!(o.state, "dispatched");
    assert_eq!(o.escalate_to, [Recipient::Assignee(to_inspector()), Recipient::Role("supervisor".into())]);
    let mut closed = case.clone();
    closed.state = "closed".into();
    assert!(overdue(&flow, &closed, Stamp(150), Some(Stamp(100))).is_none(), "terminal states are never late");
}

#[test]
fn hotline_happy_path_and_return() {
    let flow = hotline();
    let operator = actor("hotline.op", &["operator"]);
    let dept = Assignee::Department("water-company".into());
    let mut member = actor("water.staff", &[]);
    member.departments.push("water-company".into());
    let mut case = Case::new(&flow, Some(citizen().user), None, Stamp(0));
    assert_eq!(case.state, "received");
    ok(&flow, &mut case, req("dispatch", "1", operator.clone()).to(dept.clone()));
    ok(&flow, &mut case, req("return", "2", member.clone()).note("非本单位管辖"));
    assert_eq!((case.state.as_str(), &case.assignee), ("received", &None));
    ok(&flow, &mut case, req("dispatch", "3", operator.clone()).to(dept));
    let r = refused(&flow, &mut case, req("handle", "4", member.clone()));
    assert_eq!(r, Refusal::MissingField { action: "handle".into(), field: Field::Note });
    ok(&flow, &mut case, req("handle", "5", member.clone()).note("已抢修"));
    ok(&flow, &mut case, req("reply", "6", member).note("已于当日恢复供水"));
    let t = ok(&flow, &mut case, req("conclude", "7", operator.clone()));
    assert_eq!(t.notifications[0].to, Recipient::User(citizen().user));
    ok(&flow, &mut case, req("visit", "8", operator.clone()).note("来电人表示满意"));
    ok(&flow, &mut case, req("rate", "9", operator).rating(5));
    assert_eq!(case.state, "rated");
}

#[test]
fn assignee_text_form_round_trips() {
    for a in [Assignee::User("li.inspector".into()), Assignee::Department("市政养护中心".into())] {
        assert_eq!(a.to_string().parse::<Assignee>(), Ok(a.clone()));
    }
    assert_eq!("department:环卫处".parse::<Assignee>().map(|a| a.id().to_owned()), Ok("环卫处".into()));
    for bad in ["li", "team:x", "user:", "user: "] {
        assert_eq!(bad.parse::<Assignee>().map_err(|e| e.kind()), Err("invalid_field"), "{bad}");
    }
}

/// What the case page offers is exactly what the runtime would not refuse for state or role, at
/// every step of the main path and for every kind of user.
#[test]
fn offered_actions_agree_with_decide() {
    use shikong_workflow::{decide, offered};
    let flow = standard();
    let mut case = new_case(&flow);
    let steps = [
        req("accept", "a1", office()),
        req("register", "a2", office()),
        req("dispatch", "a3", office()).to(to_inspector()),
        req("handle", "a4", inspector()).photo(PHOTO).note("已更换井盖"),
        req("verify", "a5", office()),
        req("close", "a6", office()),
        req("rate", "a7", citizen()).rating(5),
    ];
    let mut seen_office = Vec::new();
    for step in steps {
        for actor in [office(), inspector(), citizen()] {
            let offers: Vec<&str> = offered(&flow, &case, &actor).iter().map(|o| o.action.id.as_str()).collect();
            for action in &flow.actions {
                let probe = req(&action.id, "probe", actor.clone());
                let allowed = !matches!(
                    decide(&flow, &case, &probe),
                    Err(Refusal::WrongState { .. } | Refusal::WrongRole { .. })
                );
                assert_eq!(
                    offers.contains(&action.id.as_str()),
                    allowed,
                    "{} by {} in {}",
                    action.id,
                    actor.user,
                    case.state
                );
            }
            if actor.user == office().user {
                seen_office.push((case.state.clone(), offers.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
            }
        }
        ok(&flow, &mut case, step);
    }
    // The dispatch offer says it needs an assignee.
    let registered = &seen_office[2];
    assert_eq!(registered.0, "registered");
    assert!(registered.1.contains(&"dispatch".to_owned()), "{registered:?}");
    let mut c2 = new_case(&flow);
    ok(&flow, &mut c2, req("accept", "b1", office()));
    ok(&flow, &mut c2, req("register", "b2", office()));
    let dispatch = offered(&flow, &c2, &office()).into_iter().find(|o| o.action.id == "dispatch").expect("dispatch");
    assert!(dispatch.fields.contains(&Field::Assignee));
    assert_eq!(case.state, "rated");
    assert!(offered(&flow, &case, &citizen()).iter().all(|o| o.action.id != "rate"), "rated once");
}
