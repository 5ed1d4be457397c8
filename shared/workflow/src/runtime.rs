//! The runtime rules: given a case and an action request, the transition the flow allows or a
//! precise [`Refusal`] — and nothing else. No store, no clock, no HTTP: the server loads the case,
//! calls [`decide`], writes the transition durably, turns [`StageClock`] into a deadline with the
//! working-time calendar and sends the [`Notification`]s. Keeping the rules pure is what lets the
//! same code judge an online request, an offline batch ([`crate::merge`]) and a property test.
//!
//! Idempotency is by the client's `action_id`: a tablet that sends the same action twice (lost
//! answer, second sync) gets [`Outcome::AlreadyApplied`] pointing at the first application, never a
//! second transition. Times are opaque [`Stamp`]s the caller passes in and the engine only copies
//! and compares.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::flow::{ActionDef, ActionRule, AssignEffect, Field, FlowDef, FlowRef, NotifyTarget, RoleRule, TimeLimit};
use crate::merge::Rejected;

/// An instant on whatever ordered scale the caller uses (the server: milliseconds since the Unix
/// epoch). The engine never reads a clock; it copies stamps into history and compares them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Stamp(pub i64);

/// Who holds a case: one user, or a department (any of its members may act for it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Assignee {
    User(String),
    Department(String),
}

impl Assignee {
    /// The assignee's id (user or department).
    pub fn id(&self) -> &str {
        let (Assignee::User(id) | Assignee::Department(id)) = self;
        id
    }
}

/// `user:ID` or `department:ID` (the text form in URLs, CLI arguments and logs).
impl std::fmt::Display for Assignee {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Assignee::User(id) => write!(f, "user:{id}"),
            Assignee::Department(id) => write!(f, "department:{id}"),
        }
    }
}

impl std::str::FromStr for Assignee {
    type Err = Refusal;

    /// Parses the [`Display`](std::fmt::Display) form; anything else is `InvalidField { assignee }`.
    fn from_str(text: &str) -> Result<Assignee, Refusal> {
        let invalid = || Refusal::InvalidField {
            field: Field::Assignee,
            reason: format!("{text:?} is not user:ID or department:ID"),
        };
        let (kind, id) = text.split_once(':').ok_or_else(invalid)?;
        if id.trim().is_empty() {
            return Err(invalid());
        }
        match kind {
            "user" => Ok(Assignee::User(id.to_owned())),
            "department" => Ok(Assignee::Department(id.to_owned())),
            _ => Err(invalid()),
        }
    }
}

/// The one performing an action, as the server authenticated them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// User id (account name).
    pub user: String,
    /// Role names the account carries: product roles (`citizen`, `inspector`, `office`, `admin`)
    /// and granted ones (`supervisor`, `operator`, …).
    #[serde(default)]
    pub roles: Vec<String>,
    /// Departments the user belongs to (handles cases assigned to the department).
    #[serde(default)]
    pub departments: Vec<String>,
}

/// One action as a client sends it (`POST /cases/{id}/actions`, or queued offline on a tablet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRequest {
    pub action: String,
    /// Chosen by the client (a UUID); the same id again is the same action.
    pub action_id: String,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub assignee: Option<Assignee>,
    /// SHA-256 (hex) of attached photos.
    #[serde(default)]
    pub photos: Vec<String>,
    /// 1–5 (评价).
    #[serde(default)]
    pub rating: Option<u8>,
    pub actor: Actor,
    /// When the actor performed it (device time for offline actions).
    pub at: Stamp,
}

/// A case as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The flow version the case started with, kept for its whole life.
    pub flow: FlowRef,
    pub state: String,
    pub assignee: Option<Assignee>,
    /// The citizen who reported it, if a citizen did.
    pub reporter: Option<String>,
    /// The minor class's handling limit (处置时限), for stages limited by class.
    pub class_limit: Option<TimeLimit>,
    /// When the current stage started.
    pub stage_started: Stamp,
    /// Applied actions, in order; each `to` is the next entry's `from`.
    pub history: Vec<Applied>,
    /// Offline actions that arrived when the flow did not allow them (kept, never lost).
    pub rejected: Vec<Rejected>,
}

/// One applied action, as recorded in the case's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub action_id: String,
    pub action: String,
    pub actor: String,
    pub at: Stamp,
    pub from: String,
    pub to: String,
    /// The assignee after the action.
    pub assignee: Option<Assignee>,
    pub note: Option<String>,
    pub photos: Vec<String>,
    pub rating: Option<u8>,
}

/// What the server must do with the stage clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageClock {
    /// A new stage starts at the action's time with this limit (`None`: no clock, e.g. 挂账, 结案).
    Start { limit: Option<TimeLimit> },
    /// The stage goes on; its deadline is unchanged (督办).
    Keep,
    /// The stage goes on; its deadline moves later by this much (延期).
    Extend { by: TimeLimit },
}

/// Someone to tell.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    Assignee(Assignee),
    /// A user (the reporting citizen).
    User(String),
    /// Everyone holding this flow role.
    Role(String),
}

/// A notification to emit after the transition is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub to: Recipient,
    pub action: String,
    /// The case's state after the action.
    pub state: String,
}

/// An allowed action: everything the caller must persist and emit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub entry: Applied,
    pub clock: StageClock,
    pub notifications: Vec<Notification>,
}

/// The answer to a request that was not refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Applied(Box<Transition>),
    /// The action id is already in the history at `index`; nothing happens again.
    AlreadyApplied {
        index: usize,
    },
    /// The action id was already rejected during a merge (`Case::rejected[index]`).
    AlreadyRejected {
        index: usize,
    },
}

/// A stage past its deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Overdue {
    pub state: String,
    /// `now - deadline`, in the stamps' unit.
    pub late_by: i64,
    pub escalate_to: Vec<Recipient>,
}

impl Case {
    /// A new case in the flow's initial state.
    pub fn new(flow: &FlowDef, reporter: Option<String>, class_limit: Option<TimeLimit>, at: Stamp) -> Case {
        Case {
            flow: flow.flow_ref(),
            state: flow.initial.clone(),
            assignee: None,
            reporter,
            class_limit,
            stage_started: at,
            history: Vec::new(),
            rejected: Vec::new(),
        }
    }

    /// Record a transition [`decide`] returned for this case.
    pub fn commit(&mut self, transition: &Transition) {
        let entry = &transition.entry;
        self.state.clone_from(&entry.to);
        self.assignee.clone_from(&entry.assignee);
        if let StageClock::Start { .. } = transition.clock {
            self.stage_started = entry.at;
        }
        self.history.push(entry.clone());
    }

    /// The limit the current stage runs under (`None`: no clock).
    pub fn stage_limit(&self, flow: &FlowDef) -> Option<TimeLimit> {
        stage_limit(flow, self, &self.state)
    }
}

/// Judge `request` against `case` under `flow`; changes nothing.
pub fn decide(flow: &FlowDef, case: &Case, request: &ActionRequest) -> Result<Outcome, Refusal> {
    if request.action_id.trim().is_empty() {
        return Err(Refusal::EmptyActionId);
    }
    if case.flow != flow.flow_ref() {
        return Err(Refusal::WrongFlow { case: case.flow.clone(), given: flow.flow_ref() });
    }
    if let Some(index) = case.history.iter().position(|a| a.action_id == request.action_id) {
        let recorded = &case.history[index].action;
        return if *recorded == request.action {
            Ok(Outcome::AlreadyApplied { index })
        } else {
            Err(reused(request, recorded))
        };
    }
    if let Some(index) = case.rejected.iter().position(|r| r.request.action_id == request.action_id) {
        let recorded = &case.rejected[index].request.action;
        return if *recorded == request.action {
            Ok(Outcome::AlreadyRejected { index })
        } else {
            Err(reused(request, recorded))
        };
    }
    if flow.state(&case.state).is_none() {
        return Err(Refusal::CorruptCase { state: case.state.clone() });
    }
    let action =
        flow.action(&request.action).ok_or_else(|| Refusal::UnknownAction { action: request.action.clone() })?;
    let in_state: Vec<&ActionRule> = action.rules.iter().filter(|r| r.from.contains(&case.state)).collect();
    if in_state.is_empty() {
        let mut allowed_in: Vec<String> = action.rules.iter().flat_map(|r| r.from.iter().cloned()).collect();
        allowed_in.sort();
        allowed_in.dedup();
        return Err(Refusal::WrongState { action: action.id.clone(), state: case.state.clone(), allowed_in });
    }
    let Some(rule) = in_state.iter().find(|r| r.roles.iter().any(|role| holds(flow, case, &request.actor, role)))
    else {
        let mut roles: Vec<String> = in_state.iter().flat_map(|r| r.roles.iter().cloned()).collect();
        roles.sort();
        roles.dedup();
        return Err(Refusal::WrongRole { action: action.id.clone(), state: case.state.clone(), roles });
    };
    let requires = rule.requires.as_ref().unwrap_or(&action.requires);
    let needs = |field: Field| {
        requires.fields.contains(&field) || (field == Field::Assignee && rule.assign == AssignEffect::FromRequest)
    };
    let missing = |field: Field| Refusal::MissingField { action: action.id.clone(), field };
    let note = request.note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if needs(Field::Note) && note.is_none() {
        return Err(missing(Field::Note));
    }
    if let Some(assignee) = &request.assignee {
        if assignee.id().trim().is_empty() {
            return Err(Refusal::InvalidField { field: Field::Assignee, reason: "the assignee's id is empty".into() });
        }
    } else if needs(Field::Assignee) {
        return Err(missing(Field::Assignee));
    }
    match request.rating {
        Some(r) if !(1..=5).contains(&r) => {
            return Err(Refusal::InvalidField { field: Field::Rating, reason: format!("{r} is not from 1 to 5") });
        }
        None if needs(Field::Rating) => return Err(missing(Field::Rating)),
        _ => {}
    }
    for (index, photo) in request.photos.iter().enumerate() {
        if photo.len() != 64 || !photo.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Refusal::InvalidPhoto { index, value: photo.clone() });
        }
    }
    let mut distinct: Vec<String> = request.photos.iter().map(|p| p.to_ascii_lowercase()).collect();
    distinct.sort();
    distinct.dedup();
    let given = u32::try_from(distinct.len()).unwrap_or(u32::MAX);
    if given < requires.min_photos {
        return Err(Refusal::MissingPhoto { action: action.id.clone(), required: requires.min_photos, given });
    }

    let to = rule.to.clone().unwrap_or_else(|| case.state.clone());
    let assignee = match rule.assign {
        AssignEffect::Keep => case.assignee.clone(),
        AssignEffect::FromRequest => request.assignee.clone(),
        AssignEffect::Clear => None,
    };
    let clock = match (&rule.to, action.extend_by) {
        (Some(_), _) => StageClock::Start { limit: stage_limit(flow, case, &to) },
        (None, Some(by)) => StageClock::Extend { by },
        (None, None) => StageClock::Keep,
    };
    let state = to.clone();
    let notifications = resolve(&action.notify, case, assignee.as_ref())
        .into_iter()
        .map(|to| Notification { to, action: action.id.clone(), state: state.clone() })
        .collect();
    let entry = Applied {
        action_id: request.action_id.clone(),
        action: action.id.clone(),
        actor: request.actor.user.clone(),
        at: request.at,
        from: case.state.clone(),
        to,
        assignee,
        note: note.map(str::to_owned),
        photos: distinct,
        rating: request.rating,
    };
    Ok(Outcome::Applied(Box::new(Transition { entry, clock, notifications })))
}

/// [`decide`], then record an applied transition in `case`.
pub fn apply(flow: &FlowDef, case: &mut Case, request: &ActionRequest) -> Result<Outcome, Refusal> {
    let outcome = decide(flow, case, request)?;
    if let Outcome::Applied(transition) = &outcome {
        case.commit(transition);
    }
    Ok(outcome)
}

/// Is the current stage overdue at `now`, given the deadline the server computed for it?
/// Returns whom to alert (the state's `escalate_to`, resolved against the case).
pub fn overdue(flow: &FlowDef, case: &Case, now: Stamp, deadline: Option<Stamp>) -> Option<Overdue> {
    let deadline = deadline?;
    let state = flow.state(&case.state)?;
    if state.terminal || now <= deadline {
        return None;
    }
    Some(Overdue {
        state: case.state.clone(),
        late_by: now.0.saturating_sub(deadline.0),
        escalate_to: resolve(&state.escalate_to, case, case.assignee.as_ref()),
    })
}

/// An action `actor` may take on `case` now, with what it must carry: what a client offers
/// (the office's case page shows only these buttons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offered<'f> {
    pub action: &'f ActionDef,
    pub fields: Vec<Field>,
    pub min_photos: u32,
}

/// The actions `actor` may take on `case` in its current state (the first rule whose roles the
/// actor holds, as [`decide`] picks it), in the flow's order. A terminal state may still offer
/// some (评价 after 结案); an unknown state offers none.
pub fn offered<'f>(flow: &'f FlowDef, case: &Case, actor: &Actor) -> Vec<Offered<'f>> {
    if flow.state(&case.state).is_none() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for action in &flow.actions {
        let rule = action
            .rules
            .iter()
            .filter(|r| r.from.contains(&case.state))
            .find(|r| r.roles.iter().any(|role| holds(flow, case, actor, role)));
        let Some(rule) = rule else { continue };
        let requires = rule.requires.as_ref().unwrap_or(&action.requires);
        let mut fields = requires.fields.clone();
        if rule.assign == AssignEffect::FromRequest && !fields.contains(&Field::Assignee) {
            fields.push(Field::Assignee);
        }
        out.push(Offered { action, fields, min_photos: requires.min_photos });
    }
    out
}

/// Does `actor` hold the flow role `role` on `case`?
pub fn holds(flow: &FlowDef, case: &Case, actor: &Actor, role: &str) -> bool {
    let Some(def) = flow.role(role) else { return false };
    match &def.rule {
        RoleRule::Held(names) => actor.roles.iter().any(|r| names.contains(r)),
        RoleRule::Assignee => match &case.assignee {
            Some(Assignee::User(user)) => *user == actor.user,
            Some(Assignee::Department(dept)) => actor.departments.contains(dept),
            None => false,
        },
        RoleRule::Reporter => case.reporter.as_deref() == Some(actor.user.as_str()),
    }
}

/// The limit a stage in `state` runs under for `case` (the state's own, or the case's minor-class
/// limit where the state takes it from the class); `None`: no clock.
pub fn stage_limit(flow: &FlowDef, case: &Case, state: &str) -> Option<TimeLimit> {
    let def = flow.state(state)?;
    if def.limit_from_class { case.class_limit.or(def.limit) } else { def.limit }
}

fn resolve(targets: &[NotifyTarget], case: &Case, assignee_after: Option<&Assignee>) -> Vec<Recipient> {
    let mut out = Vec::new();
    for target in targets {
        let recipient = match target {
            NotifyTarget::Assignee => assignee_after.cloned().map(Recipient::Assignee),
            NotifyTarget::PreviousAssignee => {
                case.assignee.clone().filter(|a| Some(a) != assignee_after).map(Recipient::Assignee)
            }
            NotifyTarget::Reporter => case.reporter.clone().map(Recipient::User),
            NotifyTarget::Role(role) => Some(Recipient::Role(role.clone())),
        };
        if let Some(r) = recipient
            && !out.contains(&r)
        {
            out.push(r);
        }
    }
    out
}

fn reused(request: &ActionRequest, recorded: &str) -> Refusal {
    Refusal::ActionIdReused {
        action_id: request.action_id.clone(),
        recorded: recorded.to_owned(),
        action: request.action.clone(),
    }
}
