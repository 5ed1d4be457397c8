//! A transition's notifications onto the live channel (`events.rs`), after its commit: a task for
//! the (new) assignee, the public progress for the reporting citizen, a status change for the
//! roles the flow names. Sent only after the transition is durable; a device that is offline learns
//! the same at its next sync, so a message that finds nobody listening is not lost information.

use shikong_model::time;
use shikong_protocol::api::LiveEvent;
use shikong_workflow::{Assignee, FlowDef, Recipient, Transition};

use super::follow::status_label;
use super::record::{CaseRecord, state_label};
use crate::AppState;
use crate::events::Audience;

/// Publishes `transition`'s notifications for the case as now stored (`rec`).
pub fn publish(state: &AppState, rec: &CaseRecord, flow: &FlowDef, transition: &Transition) {
    let deadline = rec.stage_deadline.map(time::beijing);
    let task = || LiveEvent::Task {
        case: rec.id.to_string(),
        number: Some(rec.case_no.clone()),
        state: rec.case.state.clone(),
        deadline: deadline.clone(),
    };
    let status = |label: String| LiveEvent::CaseStatus {
        case: rec.id.to_string(),
        state: rec.case.state.clone(),
        label,
        report: rec.source_ref.clone(),
    };
    for n in &transition.notifications {
        match &n.to {
            Recipient::Assignee(Assignee::User(u)) => state.events.publish(Audience::User(u.clone()), task()),
            Recipient::Assignee(Assignee::Department(d)) => {
                state.events.publish(Audience::Department(d.clone()), task())
            }
            // The reporting citizen hears the public label only (no notes, no names).
            Recipient::User(u) => {
                state.events.publish(Audience::User(u.clone()), status(status_label(flow, &rec.case.state).into()))
            }
            Recipient::Role(r) => {
                state.events.publish(Audience::Role(r.clone()), status(state_label(Some(flow), &rec.case.state)))
            }
        }
    }
}
