//! The sync tab: what the open area holds unsent (edits, photos, conflicts), "sync now" with its
//! progress and outcome, the photos with their confirmation, and the open conflicts — keep
//! mine, take theirs, or leave it for the office.

use dioxus::prelude::*;
use serde_json::Value as Json;
use shikong_app_core::Progress;
use shikong_app_core::i18n::{Lang, tr};

use super::Shared;

fn progress_text(p: Progress) -> String {
    match p {
        Progress::Uploading { done, total } => format!("📷 {done}/{total}"),
        Progress::Pushing { batches } => format!("↑ {batches}"),
        Progress::Pulling { pages, entities } => format!("↓ {pages} · {entities}"),
        Progress::Verifying => "✓ 核对".to_owned(),
    }
}

#[component]
pub(super) fn SyncPanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let mut progress = use_signal(|| None::<String>);
    let mut running = use_signal(|| false);
    let Some(active) = core.state.read().active.clone() else {
        return rsx! { div { class: "muted", {tr(l, "no_replicas")} } };
    };
    let s = active.summary;
    let area = s.id.clone();
    rsx! {
        div { class: "card", "data-testid": "sync-status",
            b { "{s.name}" }
            div { "{tr(l, \"pending\")}: {s.pending} · 📷 {s.unconfirmed_photos} · {tr(l, \"conflicts\")}: {s.conflicts}" }
        }
        button { class: "primary", "data-testid": "sync-now", disabled: running(),
            onclick: move |_| {
                let id = area.clone();
                spawn(async move {
                    running.set(true);
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
                    let job = core.run_detached(move |d| d.sync(&id, &mut |p| { let _ = tx.send(p); }));
                    let watch = async {
                        while let Some(p) = rx.recv().await {
                            progress.set(Some(progress_text(p)));
                        }
                    };
                    let (r, _) = tokio::join!(job, watch);
                    match r {
                        Ok(rep) => {
                            let mut text = format!("{} {} ({} ✓) · {} {} · {} {} · 📷 {}",
                                tr(l, "pushed"), rep.pushed_entities, rep.accepted, tr(l, "pulled"), rep.pulled_entities,
                                tr(l, "conflicts"), rep.conflicts, rep.attachments_uploaded);
                            for (layer, id, why) in &rep.rejected { text.push_str(&format!(" · ✗ {layer}/{id}: {why}")); }
                            if rep.repaired > 0 { text.push_str(&format!(" · {} {}", tr(l, "repaired"), rep.repaired)); }
                            let t = &rep.tasks;
                            if t.tasks > 0 || t.applied > 0 || !t.rejected.is_empty() {
                                text.push_str(&format!(" · {} {} · {} {}", tr(l, "tab_tasks"), t.tasks, tr(l, "applied"), t.applied));
                            }
                            for (case, action, why) in &t.rejected { text.push_str(&format!(" · ✗ {case} {action}: {why}")); }
                            sh.ok(text);
                        }
                        Err(e) => sh.fail(&e),
                    }
                    running.set(false);
                    progress.set(None);
                    sh.replica_changed();
                });
            },
            {tr(l, "sync_now")}
        }
        if let Some(p) = progress() { div { class: "muted", "data-testid": "sync-progress", "{p}" } }
        h4 { "📷 {active.attachments.len()}" }
        for a in active.attachments.iter() {
            div { class: "muted", "data-testid": "attachment",
                "{a.sha256.get(..12).unwrap_or_default()}… {a.size / 1024} KB · "
                if a.confirmed { {tr(l, "confirmed")} } else { {tr(l, "unconfirmed")} }
            }
        }
        h4 { {tr(l, "conflicts")} }
        if active.conflicts.is_empty() { div { class: "muted", "data-testid": "no-conflicts", {tr(l, "no_conflicts")} } }
        for c in active.conflicts.iter() {
            ConflictCard { conflict: c.clone(), lang: l }
        }
    }
}

#[component]
fn ConflictCard(conflict: shikong_protocol::Conflict, lang: Lang) -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let c = conflict;
    let l = lang;
    let other = c.others.first().map(|o| o.value.clone()).unwrap_or(Json::Null);
    let (k1, k2) = (c.clone(), c.clone());
    let resolve = move |c: shikong_protocol::Conflict, take: Option<Json>| {
        spawn(async move {
            match core.run(move |d| d.resolve_in_active(&c, take.as_ref())).await {
                Ok(_) => sh.ok("已解决，待同步 / resolved; sync to share"),
                Err(e) => sh.fail(&e),
            }
        });
    };
    rsx! {
        div { class: "card", "data-testid": "conflict",
            b { "{c.layer} · {c.code} · {c.field}" }
            div { span { class: "muted", "当前 / now: " } "{c.winner.value} " span { class: "muted", "({c.winner.user.clone().unwrap_or_default()})" } }
            for o in c.others.iter() {
                div { span { class: "muted", "另一方 / other: " } "{o.value} " span { class: "muted", "({o.user.clone().unwrap_or_default()})" } }
            }
            div { class: "row",
                button { class: "act", "data-testid": "keep-mine", onclick: move |_| resolve(k1.clone(), None), {tr(l, "keep_mine")} }
                button { class: "act", "data-testid": "take-theirs", onclick: move |_| resolve(k2.clone(), Some(other.clone())), {tr(l, "take_theirs")} }
                span { class: "muted", {tr(l, "leave_office")} }
            }
        }
    }
}
