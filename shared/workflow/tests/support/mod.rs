//! Actors and request builders shared by the workflow tests.
#![allow(dead_code, clippy::expect_used)] // test code: a failed expect is a failed test

use shikong_workflow::{ActionRequest, Actor, Assignee, Case, FlowDef, Stamp, shipped};

pub const PHOTO: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
pub const PHOTO2: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

pub fn standard() -> FlowDef {
    shipped::standard_flow().expect("shipped standard flow")
}

pub fn hotline() -> FlowDef {
    shipped::hotline_flow().expect("shipped hotline flow")
}

pub fn actor(user: &str, roles: &[&str]) -> Actor {
    Actor { user: user.into(), roles: roles.iter().map(|r| (*r).into()).collect(), departments: Vec::new() }
}

pub fn office() -> Actor {
    actor("wang.office", &["office"])
}
pub fn supervisor() -> Actor {
    actor("zhao.supervisor", &["supervisor"])
}
pub fn inspector() -> Actor {
    actor("li.inspector", &["inspector"])
}
pub fn other_inspector() -> Actor {
    actor("chen.inspector", &["inspector"])
}
pub fn citizen() -> Actor {
    actor("zhang.citizen", &["citizen"])
}
pub fn other_citizen() -> Actor {
    actor("liu.citizen", &["citizen"])
}

/// A case reported by `citizen()`, started at t=0.
pub fn new_case(flow: &FlowDef) -> Case {
    Case::new(flow, Some(citizen().user), None, Stamp(0))
}

/// A request builder: `req("accept", "a1", office())`, then set fields.
pub fn req(action: &str, id: &str, actor: Actor) -> ActionRequest {
    ActionRequest {
        action: action.into(),
        action_id: id.into(),
        note: None,
        assignee: None,
        photos: Vec::new(),
        rating: None,
        actor,
        at: Stamp(1000),
    }
}

pub trait With {
    fn note(self, note: &str) -> Self;
    fn to(self, assignee: Assignee) -> Self;
    fn photo(self, sha: &str) -> Self;
    fn rating(self, r: u8) -> Self;
    fn at(self, t: i64) -> Self;
}

impl With for ActionRequest {
    fn note(mut self, note: &str) -> Self {
        self.note = Some(note.into());
        self
    }
    fn to(mut self, assignee: Assignee) -> Self {
        self.assignee = Some(assignee);
        self
    }
    fn photo(mut self, sha: &str) -> Self {
        self.photos.push(sha.into());
        self
    }
    fn rating(mut self, r: u8) -> Self {
        self.rating = Some(r);
        self
    }
    fn at(mut self, t: i64) -> Self {
        self.at = Stamp(t);
        self
    }
}

pub fn to_inspector() -> Assignee {
    Assignee::User(inspector().user)
}

/// Apply and expect a transition; returns it.
pub fn ok(flow: &FlowDef, case: &mut Case, request: ActionRequest) -> shikong_workflow::Transition {
    match shikong_workflow::apply(flow, case, &request) {
        Ok(shikong_workflow::Outcome::Applied(t)) => *t,
        other => panic!("{} by {}: expected a transition, got {other:?}", request.action, request.actor.user),
    }
}

/// Apply and expect a refusal, checking the case did not change.
pub fn refused(flow: &FlowDef, case: &mut Case, request: ActionRequest) -> shikong_workflow::Refusal {
    let before = case.clone();
    match shikong_workflow::apply(flow, case, &request) {
        Err(r) => {
            assert_eq!(*case, before, "a refused action changed the case");
            r
        }
        Ok(o) => panic!("{} by {}: expected a refusal, got {o:?}", request.action, request.actor.user),
    }
}

/// Drive a new standard case to `dispatched` (assigned to `inspector()`).
pub fn dispatched_case(flow: &FlowDef) -> Case {
    let mut case = new_case(flow);
    ok(flow, &mut case, req("accept", "p-accept", office()));
    ok(flow, &mut case, req("register", "p-register", office()));
    ok(flow, &mut case, req("dispatch", "p-dispatch", office()).to(to_inspector()));
    case
}
