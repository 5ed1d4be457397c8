//! The inspector's 任务 tab: the field tasks the open offline area carries (the core's state,
//! overdue first then by deadline, 超期 and 今日到期 marked in the colours of their map markers),
//! each with 在地图上查看 (the map tab, centred on the task's marker), and a task page — the case's
//! details, 在地图上, and the action form: 处置 or 核查 with a note and evidence photos, recorded
//! offline by the core and sent at the next sync. The page opens from the list or from a tapped
//! task marker on the map (`Shared::open_task`). Below the list, the actions recorded on this
//! device: waiting to be sent, or answered by the server (a rejected one with its reason).

use dioxus::prelude::*;
use serde_json::Value as Json;
use shikong_app_core::i18n::{Lang, tr};
use shikong_app_core::{EvidencePhoto, QueuedTaskAction, TaskActionStatus, TaskItem, Urgency};

use super::shell::js_call;
use super::{Screen, Shared};

#[component]
pub(super) fn TasksPanel() -> Element {
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let mut open = sh.open_task;
    let Some((tasks, actions)) =
        sh.core.state.read().active.as_ref().map(|a| (a.tasks.clone(), a.task_actions.clone()))
    else {
        return rsx! {
            h3 { {tr(l, "tab_tasks")} }
            div { class: "muted", {tr(l, "no_replicas")} }
        };
    };
    if let Some(item) = open().and_then(|id| tasks.iter().find(|t| t.task.case_id == id).cloned()) {
        let mine: Vec<QueuedTaskAction> = actions.iter().filter(|a| a.case_id == item.task.case_id).cloned().collect();
        return rsx! { TaskPage { item, actions: mine, on_back: move |_| open.set(None) } };
    }
    rsx! {
        h3 { {tr(l, "tab_tasks")} }
        if tasks.is_empty() {
            div { class: "muted", "data-testid": "no-tasks", {tr(l, "no_tasks")} }
        }
        for t in tasks {
            div { class: "card", "data-testid": "task",
                div { class: "tap", "data-testid": "task-open", onclick: {
                        let id = t.task.case_id.clone();
                        move |_| open.set(Some(id.clone()))
                    },
                    TaskHead { item: t.clone(), lang: l }
                    if t.pending > 0 {
                        div { class: "muted", "{tr(l, \"queued_actions\")}: {t.pending}" }
                    }
                }
                if let Some((lon, lat)) = t.point() {
                    button { class: "act", "data-testid": "task-show-on-map", onclick: {
                            let id = t.task.case_id.clone();
                            move |_| show_on_map(sh, &id, lon, lat)
                        },
                        {tr(l, "show_on_map")}
                    }
                }
            }
        }
        ActionList { actions, lang: l }
    }
}

/// Switches to the map tab and centres it on task `id` (its marker highlighted; at lon/lat if the
/// map has no marker for it yet).
fn show_on_map(sh: Shared, id: &str, lon: f64, lat: f64) {
    let mut sc = sh.screen;
    sc.set(Screen::Map);
    let id = Json::String(id.to_owned());
    // after the map has its height back (the tab change resizes it)
    js_call(format!("setTimeout(() => window.shikongMap && window.shikongMap.focusTask({id}, {lon}, {lat}), 120)"));
}

/// Case number (with its marker's colour), 超期 or 今日到期, state, class, description, deadline.
#[component]
fn TaskHead(item: TaskItem, lang: Lang) -> Element {
    let t = &item.task;
    let class = t.class.clone().unwrap_or_default();
    rsx! {
        div { class: "row",
            span { class: "dot dot-{item.urgency.as_str()}" }
            b { "data-testid": "task-no", "{t.case_no}" }
            if item.overdue { span { class: "overdue", "data-testid": "overdue", {tr(lang, "overdue")} } }
            if item.urgency == Urgency::DueToday { span { class: "today", "data-testid": "due-today", {tr(lang, "due_today")} } }
            span { class: "muted", "{t.state_label} {class}" }
        }
        if let Some(d) = &t.description { div { "{d}" } }
        div { class: "muted", "data-testid": "task-deadline",
            "{tr(lang, \"deadline\")}: {t.stage_deadline.as_deref().unwrap_or(\"—\")}" }
    }
}

/// The actions recorded on this device with the server's answers.
#[component]
fn ActionList(actions: Vec<QueuedTaskAction>, lang: Lang) -> Element {
    if actions.is_empty() {
        return rsx! {};
    }
    rsx! {
        h4 { {tr(lang, "queued_actions")} " / " {tr(lang, "rejected")} }
        for a in actions.iter().rev() {
            div { class: if a.status == TaskActionStatus::Rejected { "card bad" } else { "card" }, "data-testid": "task-action",
                div { class: "row",
                    b { "{a.case_no.as_deref().unwrap_or(&a.case_id)}" }
                    span { {action_label(lang, &a.action)} }
                    span { class: "muted", "data-testid": "task-action-status", {status_label(lang, a.status)} }
                }
                if let Some(r) = &a.reason { div { class: "err", "{r}" } }
                if let Some(n) = &a.note { div { class: "muted", "{n}" } }
            }
        }
    }
}

fn action_label(l: Lang, action: &str) -> String {
    match action {
        "handle" => tr(l, "action_handle").to_owned(),
        "verify" => tr(l, "action_verify").to_owned(),
        other => other.to_owned(),
    }
}

fn status_label(l: Lang, s: TaskActionStatus) -> &'static str {
    match s {
        TaskActionStatus::Pending => tr(l, "queued_actions"),
        TaskActionStatus::Applied => tr(l, "applied"),
        TaskActionStatus::Rejected => tr(l, "rejected"),
    }
}

/// One task: details, 在地图上, and the 处置/核查 form.
#[component]
pub(super) fn TaskPage(item: TaskItem, actions: Vec<QueuedTaskAction>, on_back: EventHandler<()>) -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let default_action = if item.task.state == "handled" { "verify" } else { "handle" };
    let mut action = use_signal(|| default_action.to_owned());
    let mut note = use_signal(String::new);
    let mut photos = use_signal(Vec::<EvidencePhoto>::new);
    let t = item.task.clone();
    let point = item.point();
    let case_id = t.case_id.clone();
    rsx! {
        div { class: "row",
            button { class: "act", "data-testid": "task-back", onclick: move |_| on_back.call(()), "‹ " {tr(l, "back")} }
            if let Some((lon, lat)) = point {
                button { class: "act", "data-testid": "task-on-map", onclick: {
                    let id = t.case_id.clone();
                    move |_| show_on_map(sh, &id, lon, lat)
                }, {tr(l, "on_map")} }
            }
        }
        div { class: "card", "data-testid": "task-page",
            TaskHead { item: item.clone(), lang: l }
            if let Some(a) = &t.asset { div { class: "muted", "资产 / asset: {a}" } }
            if let Some((lon, lat)) = point { div { class: "muted", "📍 {lon:.6}, {lat:.6}" } }
            if !t.photos.is_empty() { div { class: "muted", "📷 {t.photos.len()}" } }
        }
        label { class: "field", span { {tr(l, "action")} }
            select { "data-testid": "task-action-kind", value: "{action}", onchange: move |e| action.set(e.value()),
                option { value: "handle", {tr(l, "action_handle")} }
                option { value: "verify", {tr(l, "action_verify")} }
            }
        }
        label { class: "field", span { {tr(l, "note")} }
            textarea { "data-testid": "task-note", value: "{note}", oninput: move |e| note.set(e.value()) } }
        div { class: "row",
            button { class: "act", "data-testid": "task-photo", onclick: move |_| {
                spawn(async move {
                    match core.run(|d| d.take_photo()).await { Ok(p) => photos.write().push(p), Err(e) => sh.fail(&e) }
                });
            }, {tr(l, "photo")} }
            span { class: "muted", "data-testid": "task-photos", "📷 {photos.read().len()}" }
        }
        button { class: "primary", "data-testid": "task-record", onclick: move |_| {
            let (case, a, n, ph) = (case_id.clone(), action(), note(), photos());
            spawn(async move {
                match core.run(move |d| d.record_task(&case, &a, &n, &ph)).await {
                    Ok(_) => {
                        sh.ok(tr(l, "action_recorded"));
                        note.set(String::new());
                        photos.set(Vec::new());
                    }
                    Err(e) => sh.fail(&e),
                }
            });
        }, {tr(l, "record_action")} }
        ActionList { actions, lang: l }
    }
}
