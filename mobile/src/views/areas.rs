//! The offline-areas tab: the areas on the device (open, update, delete) and a new download —
//! a division found in the server's gazetteer or the current map view, the layers to take, the
//! size estimate, the download with its progress.

use dioxus::prelude::*;
use shikong_app_core::i18n::{Lang, tr};
use shikong_app_core::{AreaChoice, DownloadStep, LayerEntry, Place, ReplicaSummary};

use super::Shared;

#[component]
pub(super) fn AreasPanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let list = core.state.read().areas.clone();
    let mut server_layers = use_signal(Vec::<LayerEntry>::new);
    let mut chosen_layers = use_signal(Vec::<String>::new);
    let mut q = use_signal(String::new);
    let mut places = use_signal(Vec::<Place>::new);
    let mut area = use_signal(|| None::<AreaChoice>);
    let mut estimate = use_signal(|| None::<String>);
    let mut step = use_signal(|| None::<DownloadStep>);
    use_hook(move || {
        spawn(async move {
            if let Ok(v) = core.run(|d| d.server_layers()).await {
                chosen_layers.set(v.iter().filter(|x| !x.citizen_reports).map(|x| x.name.clone()).take(2).collect());
                server_layers.set(v);
            }
        });
    });
    let active = (sh.active)();
    rsx! {
        h3 { {tr(l, "tab_areas")} }
        if list.is_empty() { div { class: "muted", {tr(l, "no_replicas")} } }
        for s in list {
            ReplicaCard { active: active.as_deref() == Some(s.id.as_str()), summary: s.clone(), lang: l }
        }
        h3 { {tr(l, "download")} }
        input { "data-testid": "area-search", placeholder: tr(l, "area_search"), value: "{q}", style: "width: 100%; padding: 8px",
            oninput: move |e| {
                let text = e.value();
                q.set(text.clone());
                spawn(async move {
                    if text.trim().is_empty() { places.set(Vec::new()); return; }
                    match core.run(move |d| d.search_divisions(&text)).await {
                        Ok(p) => places.set(p),
                        Err(e) => sh.fail(&e),
                    }
                });
            }
        }
        if !places().is_empty() {
            div { class: "suggest", "data-testid": "area-suggestions",
                for p in places() {
                    div { onclick: { let p = p.clone(); move |_| {
                            area.set(Some(AreaChoice::from_place(&p)));
                            places.set(Vec::new());
                            estimate.set(None);
                        } },
                        b { "{p.name}" } " " span { class: "muted", "{p.standard_address} {p.code.clone().unwrap_or_default()}" }
                    }
                }
            }
        }
        button { class: "act", "data-testid": "area-view",
            onclick: move |_| {
                let (lon, lat, zoom) = (sh.view)();
                area.set(Some(AreaChoice::map_view(lon, lat, zoom)));
                estimate.set(None);
            },
            {tr(l, "area_rect")}
        }
        if let Some(a) = area() { div { class: "card", "data-testid": "area-chosen", "{a.label()}" } }
        div { class: "muted", {tr(l, "pick_layers")} }
        for x in server_layers() {
            label { class: "row",
                input { r#type: "checkbox", "data-testid": "layer-{x.name}", checked: chosen_layers().contains(&x.name),
                    onchange: { let n = x.name.clone(); move |e: Event<FormData>| {
                        if e.checked() { if !chosen_layers().contains(&n) { chosen_layers.write().push(n.clone()); } } else { chosen_layers.write().retain(|c| c != &n); }
                        estimate.set(None);
                    } }
                }
                "{x.title}"
            }
        }
        div { class: "row",
            button { class: "act", "data-testid": "estimate", disabled: area().is_none(),
                onclick: move |_| {
                    let (layers, a) = (chosen_layers(), area());
                    spawn(async move {
                        let Some(a) = a else { return };
                        match core.run(move |d| d.estimate(&layers, &a)).await {
                            Ok(e) => {
                                let n = e.features;
                                estimate.set(Some(format!("{n} {} · ≈ {:.1} MB", tr(l, "features"), e.bytes as f64 / 1_048_576.0)));
                            }
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "estimate")}
            }
            button { class: "primary", "data-testid": "download", disabled: area().is_none() || step().is_some_and(|s| s != DownloadStep::Done),
                onclick: move |_| {
                    let (layers, a) = (chosen_layers(), area());
                    spawn(async move {
                        let Some(a) = a else { return };
                        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                        let name = a.default_name();
                        let job = core.run(move |d| d.download(&name, &layers, &a, &mut |s| { let _ = tx.send(s); }));
                        let watch = async { while let Some(s) = rx.recv().await { step.set(Some(s)); } };
                        let (r, _) = tokio::join!(job, watch);
                        match r {
                            Ok(s) => sh.ok(format!("{} · {} {}", s.name, s.features(), tr(l, "features"))),
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "download")}
            }
        }
        if let Some(e) = estimate() { div { class: "card", "data-testid": "estimate-result", "{tr(l, \"size\")}: {e}" } }
        if let Some(s) = step() {
            div { "data-testid": "download-progress",
                progress { max: "3", value: match s { DownloadStep::Replica => "1", DownloadStep::Basemap => "2", DownloadStep::Done => "3" } }
                span { class: "muted", match s { DownloadStep::Replica => "数据 / data…", DownloadStep::Basemap => "底图 / basemap…", DownloadStep::Done => "完成 / done" } }
            }
        }
    }
}

/// An area on the device: counts, size, and its actions.
#[component]
fn ReplicaCard(summary: ReplicaSummary, active: bool, lang: Lang) -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = lang;
    let s = summary;
    let layers = s.layers.iter().map(|x| format!("{} {}", x.1, x.2)).collect::<Vec<_>>().join(" · ");
    let basemap =
        s.basemap_bytes.map(|b| format!("{} {:.1} MB", tr(l, "basemap"), b as f64 / 1_048_576.0)).unwrap_or_default();
    let (id1, id2, id3) = (s.id.clone(), s.id.clone(), s.id.clone());
    rsx! {
        div { class: "card", "data-testid": "replica-{s.id}",
            b { "{s.name}" } if active { span { class: "muted", " ✓" } }
            div { class: "muted", "{s.features()} {tr(l, \"features\")} · {s.bytes as f64 / 1_048_576.0:.1} MB {basemap}" }
            div { class: "muted", "{layers}" }
            div { class: "muted", "{tr(l, \"pending\")} {s.pending} · {tr(l, \"conflicts\")} {s.conflicts}" }
            div { class: "row",
                button { class: "act", "data-testid": "open-{s.id}", onclick: move |_| {
                    let id = id1.clone();
                    spawn(async move {
                        if let Err(e) = core.run(move |d| d.set_active(&id)).await { sh.fail(&e); }
                    });
                }, {tr(l, "open")} }
                button { class: "act", "data-testid": "update-{s.id}", onclick: move |_| {
                    let id = id2.clone();
                    spawn(async move {
                        match core.run_detached(move |d| d.sync(&id, &mut |_| {})).await {
                            Ok(rep) => sh.ok(format!("{} {} · {} {}", tr(l, "pushed"), rep.pushed_entities, tr(l, "pulled"), rep.pulled_entities)),
                            Err(e) => sh.fail(&e),
                        }
                        sh.replica_changed();
                    });
                }, {tr(l, "update")} }
                button { class: "act", "data-testid": "delete-{s.id}", onclick: move |_| {
                    let id = id3.clone();
                    spawn(async move {
                        match core.run(move |d| d.delete_replica(&id, false)).await {
                            Ok(()) => sh.ok("已删除 / deleted"),
                            Err(e) => sh.fail(&e),
                        }
                    });
                }, {tr(l, "delete")} }
            }
        }
    }
}
