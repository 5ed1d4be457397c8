//! Case workflow rules (业务流引擎的规则核心): flow definitions and classifications as versioned
//! data, the judgement of one action against a case, and the merge of actions a tablet made
//! offline. Pure: no I/O, no clock, no store, no HTTP — the server and the devices call it.
//!
//! Why a separate pure crate: the same rules must give the same answer for an office click, a
//! tablet's queued action arriving a day late, a property test and a benchmark. Anything that
//! depends on the world (the time now, working-day calendars, who belongs to which department, the
//! durable write) is passed in or done by the caller:
//!
//! - [`flow`]: a flow document (states, actions, roles, requirements, stage limits, escalation),
//!   validated on load with errors naming the JSON path; [`FlowRegistry`] keeps every version.
//! - [`classification`]: 部件/事件 major and minor classes with 立案/结案 conditions and 处置时限.
//! - [`runtime`]: [`decide`] an action (transition or typed [`Refusal`]), idempotent by action id;
//!   [`overdue`] checks a stage against the deadline the server computed with the calendar.
//! - [`merge`](mod@merge): offline actions applied in device order by the flow's rules, invalid
//!   ones kept as [`Rejected`] records — never last-writer-wins on the state field.
//! - [`routing`]: dispatch rules by unit grid, street, community and class → department.
//! - [`stats`]: the supervision figures (立案率, 按期处置率, 按期结案率, 返工率, average handling
//!   time) of any group of cases, from their histories and stage deadlines.
//! - [`shipped`]: the standard city-management flow, the 12345 hotline flow and the GB/T 30428.2
//!   classification as JSON in `data/`.
//!
//! Invariants the tests hold: a case only reaches states its flow's rules lead to from the
//! initial state, each `to` in its history is the next `from`; every action id is applied at
//! most once and, in a merge, ends up either in the history or among the rejected records.

pub mod classification;
pub mod error;
pub mod flow;
pub mod merge;
pub mod routing;
pub mod runtime;
pub mod shipped;
pub mod stats;

pub use classification::{ClassKind, Classification, MajorClass, MinorClass, Provenance};
pub use error::{ClassError, FlowError, Refusal};
pub use flow::{
    ActionDef, ActionRule, AssignEffect, Field, FlowDef, FlowRef, FlowRegistry, Label, NotifyTarget, Requirements,
    RoleDef, RoleRule, StateDef, TimeLimit,
};
pub use merge::{MergeItem, MergeReport, Rejected, merge};
pub use routing::{Place, RouteRule, Routing};
pub use runtime::{
    ActionRequest, Actor, Applied, Assignee, Case, Notification, Offered, Outcome, Overdue, Recipient, StageClock,
    Stamp, Transition, apply, decide, holds, offered, overdue, stage_limit,
};
pub use stats::{CaseRecord, KpiStates, Kpis, Rate, kpis};
