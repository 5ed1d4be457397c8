//! Merging actions a device made offline into a case that may have moved on meanwhile.
//!
//! Why not last-writer-wins on the state field: a tablet that handled a case at 10:00 while the
//! office returned it at 10:05 would otherwise either overwrite the return (the case jumps to
//! "handled" though nobody handles a returned case) or silently drop the handling (the inspector's
//! photos vanish). Instead every incoming action is judged by the flow's rules against the case
//! *as it is when the action arrives*, in the device's order: applied if valid there, otherwise
//! kept as a [`Rejected`] record in the case (reported back to the device, shown to the office).
//! So every action id ends up either once in the history or once among the rejected records.
//!
//! A rejection is final for its action id: the same action sent again (second sync) is reported as
//! already rejected, not re-judged, so a late duplicate can never apply an action the office was
//! already told had failed.

use serde::{Deserialize, Serialize};

use crate::error::Refusal;
use crate::flow::FlowDef;
use crate::runtime::{ActionRequest, Case, Outcome, Transition, decide};

/// An offline action the flow did not allow when it arrived. Never deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejected {
    pub request: ActionRequest,
    pub reason: Refusal,
    /// The case's state when the action arrived.
    pub state_at_arrival: String,
}

/// What happened to one incoming action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum MergeItem {
    Applied {
        action_id: String,
        transition: Box<Transition>,
    },
    /// Already in the history (`index`): a re-sent action.
    Duplicate {
        action_id: String,
        index: usize,
    },
    /// Newly rejected; recorded at `Case::rejected[index]`.
    Rejected {
        action_id: String,
        index: usize,
        reason: Refusal,
    },
    /// Rejected earlier (`Case::rejected[index]`), re-sent.
    AlreadyRejected {
        action_id: String,
        index: usize,
    },
}

/// The answer to a device: one item per incoming action, in the device's order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeReport {
    pub items: Vec<MergeItem>,
}

impl MergeReport {
    pub fn applied(&self) -> impl Iterator<Item = &Transition> {
        self.items.iter().filter_map(|i| match i {
            MergeItem::Applied { transition, .. } => Some(&**transition),
            _ => None,
        })
    }

    pub fn rejected_ids(&self) -> impl Iterator<Item = &str> {
        self.items.iter().filter_map(|i| match i {
            MergeItem::Rejected { action_id, .. } | MergeItem::AlreadyRejected { action_id, .. } => {
                Some(action_id.as_str())
            }
            _ => None,
        })
    }
}

/// Apply `incoming` (one device's actions, in the order it made them) to `case` by the flow's
/// rules. Fails only when `flow` is not the case's flow version (then nothing changed).
pub fn merge(
    flow: &FlowDef,
    case: &mut Case,
    incoming: impl IntoIterator<Item = ActionRequest>,
) -> Result<MergeReport, Refusal> {
    if case.flow != flow.flow_ref() {
        return Err(Refusal::WrongFlow { case: case.flow.clone(), given: flow.flow_ref() });
    }
    let mut report = MergeReport::default();
    for request in incoming {
        let action_id = request.action_id.clone();
        let item = match decide(flow, case, &request) {
            Ok(Outcome::Applied(transition)) => {
                case.commit(&transition);
                MergeItem::Applied { action_id, transition }
            }
            Ok(Outcome::AlreadyApplied { index }) => MergeItem::Duplicate { action_id, index },
            Ok(Outcome::AlreadyRejected { index }) => MergeItem::AlreadyRejected { action_id, index },
            Err(reason) => {
                let state_at_arrival = case.state.clone();
                case.rejected.push(Rejected { request, reason: reason.clone(), state_at_arrival });
                MergeItem::Rejected { action_id, index: case.rejected.len() - 1, reason }
            }
        };
        report.items.push(item);
    }
    Ok(report)
}
