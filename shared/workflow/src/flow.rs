//! Flow definitions (业务流定义) as data: states, actions, who may act where, what an action must
//! carry, the time limit of each stage and whom to alert when it runs out.
//!
//! Why data and not code: every city tunes its flow (an extra review step, a different verifier,
//! longer limits), and a case must finish under the rules it started with. So a flow is a JSON
//! document identified by `id` + `version`; a case stores that pair ([`FlowRef`]) and the server
//! keeps every version it ever ran (see [`FlowRegistry`]). A document is validated once, on load
//! ([`FlowDef::from_json`]): every error names the JSON path of the offending value, so an admin
//! editing a flow sees where it is wrong, and the runtime can then trust the definition (no unknown
//! state, no unreachable state, no action nobody may perform, no dead end).
//!
//! Roles are data too ([`RoleDef`]): a flow role is either *held* (the actor carries one of the
//! listed role names — the product's `citizen`/`inspector`/`office`/`admin`, or names an admin
//! grants such as `supervisor`), or a *relation* to the case: the current `assignee` (a user, or a
//! member of the assigned department) or the `reporter` (the citizen who reported it).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::{Deserialize, Serialize};

use crate::error::FlowError;

/// A text in Chinese (shown to users) and English (logs, documentation, foreign staff).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    pub zh: String,
    pub en: String,
}

/// A time limit as the flow states it; the server turns it into a deadline with the working-time
/// calendar (`shikong-calendar`), so weekends, holidays and 调休 days count correctly there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeLimit {
    /// Working hours (only hours inside the calendar's working time count).
    WorkingHours(u32),
    /// Working days (lands at the same time of day on the N-th following working day).
    WorkingDays(u32),
}

/// Which flow, which version: what a case keeps for its whole life.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FlowRef {
    pub id: String,
    pub version: u32,
}

/// One flow definition, validated ([`FlowDef::from_json`] / [`FlowDef::validate`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowDef {
    pub id: String,
    pub version: u32,
    pub label: Label,
    /// Where the flow comes from (standard, local rule), in words.
    #[serde(default)]
    pub source: String,
    /// The state a new case starts in.
    pub initial: String,
    pub roles: Vec<RoleDef>,
    pub states: Vec<StateDef>,
    pub actions: Vec<ActionDef>,
}

/// A role as the flow sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleDef {
    pub id: String,
    pub label: Label,
    pub rule: RoleRule,
}

/// How an actor comes to hold a flow role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoleRule {
    /// The actor carries one of these role names (product roles or granted ones).
    Held(Vec<String>),
    /// The actor is the case's current assignee: that user, or a member of that department.
    Assignee,
    /// The actor is the user who reported the case.
    Reporter,
}

/// One state (stage) of a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateDef {
    pub id: String,
    pub label: Label,
    /// No further work is expected (closed, rated). A terminal state needs no way out.
    #[serde(default)]
    pub terminal: bool,
    /// The stage's time limit; `None`: the clock does not run here (parked, closed).
    #[serde(default)]
    pub limit: Option<TimeLimit>,
    /// Use the case's minor-class handling limit when it has one (处置时限 per class), else `limit`.
    #[serde(default)]
    pub limit_from_class: bool,
    /// Who is alerted when the stage is overdue (flow roles, plus the assignee if `assignee` is one).
    #[serde(default)]
    pub escalate_to: Vec<NotifyTarget>,
}

/// One action of the flow (the exact word clients send).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionDef {
    pub id: String,
    pub label: Label,
    /// What every use of the action must carry (a rule may override it).
    #[serde(default)]
    pub requires: Requirements,
    /// `extend` (延期): how much the running stage's limit grows. Requires `to` = stay.
    #[serde(default)]
    pub extend_by: Option<TimeLimit>,
    /// Who is told when the action is applied.
    #[serde(default)]
    pub notify: Vec<NotifyTarget>,
    /// Where the action may be used, by whom, and where it leads.
    pub rules: Vec<ActionRule>,
}

/// "In these states, these roles may; the case then goes to `to`".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRule {
    pub from: Vec<String>,
    /// `None`: the case stays in its state and its stage clock keeps running (督办, 延期).
    #[serde(default)]
    pub to: Option<String>,
    pub roles: Vec<String>,
    /// Replaces the action's `requires` for this rule (e.g. an inspector's 核查 needs a photo).
    #[serde(default)]
    pub requires: Option<Requirements>,
    #[serde(default)]
    pub assign: AssignEffect,
}

/// What an action must carry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Requirements {
    #[serde(default)]
    pub fields: Vec<Field>,
    /// At least this many photos (SHA-256 of attachments: 举证 evidence).
    #[serde(default)]
    pub min_photos: u32,
}

/// A field of an action request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Note,
    Assignee,
    Rating,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Note => "note",
            Field::Assignee => "assignee",
            Field::Rating => "rating",
        }
    }
}

/// What happens to the case's assignee.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignEffect {
    #[default]
    Keep,
    /// The request's `assignee` becomes the case's (派遣, 派单); implies the field is required.
    FromRequest,
    /// Nobody holds the case any more (back at the centre).
    Clear,
}

/// Who is notified: resolved against the case by the runtime.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyTarget {
    /// The assignee after the action.
    Assignee,
    /// The assignee before the action (told the case was taken back).
    PreviousAssignee,
    /// The citizen who reported the case.
    Reporter,
    /// Everyone holding a flow role (e.g. `supervisor`, `office`).
    Role(String),
}

impl FlowDef {
    /// Parse and validate a flow document.
    pub fn from_json(text: &str) -> Result<FlowDef, FlowError> {
        let flow: FlowDef = serde_json::from_str(text).map_err(|e| FlowError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        flow.validate()?;
        Ok(flow)
    }

    pub fn flow_ref(&self) -> FlowRef {
        FlowRef { id: self.id.clone(), version: self.version }
    }

    pub fn state(&self, id: &str) -> Option<&StateDef> {
        self.states.iter().find(|s| s.id == id)
    }

    pub fn action(&self, id: &str) -> Option<&ActionDef> {
        self.actions.iter().find(|a| a.id == id)
    }

    pub fn role(&self, id: &str) -> Option<&RoleDef> {
        self.roles.iter().find(|r| r.id == id)
    }

    /// Is `from --action--> to` a transition some rule allows (`to == from` for staying rules)?
    pub fn permits(&self, from: &str, action: &str, to: &str) -> bool {
        self.action(action).is_some_and(|a| {
            a.rules.iter().any(|r| r.from.iter().any(|f| f == from) && r.to.as_deref().unwrap_or(from) == to)
        })
    }

    /// States reachable from `initial` through the rules (ignoring roles and requirements).
    pub fn reachable_states(&self) -> BTreeSet<&str> {
        let mut seen = BTreeSet::from([self.initial.as_str()]);
        let mut queue = VecDeque::from([self.initial.as_str()]);
        while let Some(state) = queue.pop_front() {
            for rule in self.actions.iter().flat_map(|a| &a.rules) {
                if let Some(to) = rule.to.as_deref()
                    && rule.from.iter().any(|f| f == state)
                    && seen.insert(to)
                {
                    queue.push_back(to);
                }
            }
        }
        seen
    }

    /// Check the definition; the first problem found is returned with its JSON path.
    pub fn validate(&self) -> Result<(), FlowError> {
        check_id("id", &self.id)?;
        if self.version == 0 {
            return Err(FlowError::InvalidVersion { path: "version".into() });
        }
        check_label("label", &self.label)?;
        let roles = unique_ids(self.roles.iter().map(|r| r.id.as_str()), "roles")?;
        let states = unique_ids(self.states.iter().map(|s| s.id.as_str()), "states")?;
        unique_ids(self.actions.iter().map(|a| a.id.as_str()), "actions")?;
        let known_state = |path: String, id: &str| {
            if states.contains_key(id) { Ok(()) } else { Err(FlowError::UnknownState { path, state: id.into() }) }
        };
        let known_role = |path: String, id: &str| {
            if roles.contains_key(id) { Ok(()) } else { Err(FlowError::UnknownRole { path, role: id.into() }) }
        };
        let check_targets = |path: &str, targets: &[NotifyTarget]| {
            targets.iter().enumerate().try_for_each(|(i, t)| match t {
                NotifyTarget::Role(r) => known_role(format!("{path}[{i}].role"), r),
                _ => Ok(()),
            })
        };
        for (i, role) in self.roles.iter().enumerate() {
            check_label(&format!("roles[{i}].label"), &role.label)?;
            if let RoleRule::Held(names) = &role.rule
                && names.is_empty()
            {
                return Err(FlowError::EmptyRoleRule { path: format!("roles[{i}].rule.held") });
            }
        }
        for (i, state) in self.states.iter().enumerate() {
            check_label(&format!("states[{i}].label"), &state.label)?;
            check_limit(&format!("states[{i}].limit"), state.limit)?;
            if state.limit_from_class && state.limit.is_none() {
                // a case whose class has no limit still needs one
                return Err(FlowError::MissingLimit { path: format!("states[{i}].limit") });
            }
            check_targets(&format!("states[{i}].escalate_to"), &state.escalate_to)?;
        }
        known_state("initial".into(), &self.initial)?;
        for (a, action) in self.actions.iter().enumerate() {
            let path = format!("actions[{a}]");
            check_label(&format!("{path}.label"), &action.label)?;
            check_limit(&format!("{path}.extend_by"), action.extend_by)?;
            check_targets(&format!("{path}.notify"), &action.notify)?;
            if action.rules.is_empty() {
                return Err(FlowError::ActionWithoutRoles { path: format!("{path}.rules"), action: action.id.clone() });
            }
            for (r, rule) in action.rules.iter().enumerate() {
                let rpath = format!("{path}.rules[{r}]");
                if rule.from.is_empty() {
                    return Err(FlowError::EmptyFrom { path: format!("{rpath}.from") });
                }
                for (f, from) in rule.from.iter().enumerate() {
                    known_state(format!("{rpath}.from[{f}]"), from)?;
                }
                if let Some(to) = &rule.to {
                    known_state(format!("{rpath}.to"), to)?;
                }
                if rule.roles.is_empty() {
                    return Err(FlowError::ActionWithoutRoles {
                        path: format!("{rpath}.roles"),
                        action: action.id.clone(),
                    });
                }
                for (k, role) in rule.roles.iter().enumerate() {
                    known_role(format!("{rpath}.roles[{k}]"), role)?;
                }
                if action.extend_by.is_some() && rule.to.is_some() {
                    return Err(FlowError::ExtendMovesState { path: format!("{rpath}.to") });
                }
            }
        }
        let reachable = self.reachable_states();
        for (i, state) in self.states.iter().enumerate() {
            if !reachable.contains(state.id.as_str()) {
                return Err(FlowError::UnreachableState { path: format!("states[{i}]"), state: state.id.clone() });
            }
            let leaves = self
                .actions
                .iter()
                .flat_map(|a| &a.rules)
                .any(|r| r.from.contains(&state.id) && r.to.as_ref().is_some_and(|to| *to != state.id));
            if !state.terminal && !leaves {
                return Err(FlowError::DeadEnd { path: format!("states[{i}]"), state: state.id.clone() });
            }
        }
        Ok(())
    }
}

fn check_id(path: &str, id: &str) -> Result<(), FlowError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok { Ok(()) } else { Err(FlowError::InvalidId { path: path.into(), id: id.into() }) }
}

fn check_label(path: &str, label: &Label) -> Result<(), FlowError> {
    if label.zh.trim().is_empty() {
        return Err(FlowError::EmptyLabel { path: format!("{path}.zh") });
    }
    if label.en.trim().is_empty() {
        return Err(FlowError::EmptyLabel { path: format!("{path}.en") });
    }
    Ok(())
}

fn check_limit(path: &str, limit: Option<TimeLimit>) -> Result<(), FlowError> {
    match limit {
        Some(TimeLimit::WorkingHours(0) | TimeLimit::WorkingDays(0)) => Err(FlowError::ZeroLimit { path: path.into() }),
        _ => Ok(()),
    }
}

/// Ids are valid and unique within `list`; returns id → index.
fn unique_ids<'a>(ids: impl Iterator<Item = &'a str>, list: &str) -> Result<BTreeMap<&'a str, usize>, FlowError> {
    let mut seen = BTreeMap::new();
    for (i, id) in ids.enumerate() {
        check_id(&format!("{list}[{i}].id"), id)?;
        if let Some(first) = seen.insert(id, i) {
            return Err(FlowError::DuplicateId {
                path: format!("{list}[{i}].id"),
                id: id.into(),
                first: format!("{list}[{first}].id"),
            });
        }
    }
    Ok(seen)
}

/// Every flow version the server has run: a case is always judged by the version it started with.
#[derive(Debug, Clone, Default)]
pub struct FlowRegistry {
    flows: BTreeMap<FlowRef, FlowDef>,
}

impl FlowRegistry {
    /// The two shipped flows ([`crate::shipped`]).
    pub fn shipped() -> Result<FlowRegistry, FlowError> {
        let mut registry = FlowRegistry::default();
        registry.add(crate::shipped::standard_flow()?)?;
        registry.add(crate::shipped::hotline_flow()?)?;
        registry.add(crate::shipped::sensor_alert_flow()?)?;
        Ok(registry)
    }

    /// Add a validated version. Re-adding the identical document is a no-op; a different document
    /// under an existing id + version is refused (a running case's rules never change under it).
    pub fn add(&mut self, flow: FlowDef) -> Result<(), FlowError> {
        flow.validate()?;
        let key = flow.flow_ref();
        match self.flows.get(&key) {
            Some(existing) if *existing == flow => Ok(()),
            Some(_) => Err(FlowError::VersionExists { id: key.id, version: key.version }),
            None => {
                self.flows.insert(key, flow);
                Ok(())
            }
        }
    }

    pub fn get(&self, flow: &FlowRef) -> Option<&FlowDef> {
        self.flows.get(flow)
    }

    /// The newest version of a flow: what a new case starts with.
    pub fn latest(&self, id: &str) -> Option<&FlowDef> {
        self.flows
            .range(FlowRef { id: id.into(), version: 0 }..=FlowRef { id: id.into(), version: u32::MAX })
            .last()
            .map(|(_, f)| f)
    }
}
