//! The map tab: offline place search, locate, layer switcher, distance and area measurement,
//! favourites, the legend of the inspector's task markers (drawn by the shell from the core's
//! state: 超期, 今日到期, 未到期; a tapped marker opens its task), and the card of a tapped feature
//! (fields, share QR code, history from the server, edit, delete). The card is read by the core
//! when a tap arrives, never while rendering.

use std::collections::BTreeMap;

use dioxus::prelude::*;
use serde_json::Value as Json;
use shikong_app_core::i18n::tr;
use shikong_app_core::{Device, FeatureCard, Suggestion, Urgency};

use super::collect::FormField;
use super::shell::js_call;
use super::{Shared, Tool};

fn fmt_len(m: f64) -> String {
    if m >= 1000.0 { format!("{:.3} km", m / 1000.0) } else { format!("{m:.2} m") }
}

fn fmt_area(m2: f64) -> String {
    if m2 >= 1_000_000.0 {
        format!("{:.4} km²", m2 / 1e6)
    } else {
        format!("{m2:.1} m² ({:.3} 亩)", m2 / 666.666_666_7)
    }
}

#[component]
pub(super) fn MapPanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let mut q = use_signal(String::new);
    let mut results = use_signal(Vec::<Suggestion>::new);
    let mut layers_open = use_signal(|| false);
    let (layer_list, favourites, markers): (Vec<(String, String)>, _, Vec<Urgency>) = {
        let state = core.state.read();
        let layers = state.active.as_ref().map(|a| a.layers.as_slice()).unwrap_or_default();
        let tasks = state.active.as_ref().map(|a| a.tasks.as_slice()).unwrap_or_default();
        (
            layers.iter().map(|x| (x.name.clone(), x.display_name().to_owned())).collect(),
            state.settings.favourites.clone(),
            // the tasks the map draws: those with a location
            tasks.iter().filter(|t| t.point().is_some()).map(|t| t.urgency).collect(),
        )
    };
    let count = |u: Urgency| markers.iter().filter(|&&m| m == u).count();
    let legend = [(Urgency::Overdue, "overdue"), (Urgency::DueToday, "due_today"), (Urgency::Later, "due_later")]
        .map(|(u, key)| (u.as_str(), tr(l, key), count(u)));
    let mut hidden = use_signal(Vec::<String>::new);
    let tool = (sh.tool)();
    let points = (sh.points)();
    let measurement = match tool {
        Tool::MeasureLine => {
            Device::measure(&points, false).map(|m| format!("{}: {}", tr(l, "measure_distance"), fmt_len(m.length_m)))
        }
        Tool::MeasureArea => Device::measure(&points, true)
            .map(|m| format!("{}: {} · 周长 {}", tr(l, "measure_area"), fmt_area(m.area_m2), fmt_len(m.perimeter_m))),
        _ => None,
    };
    let set_tool = move |t: Tool| {
        let (mut tl, mut pts) = (sh.tool, sh.points);
        tl.set(t);
        pts.set(Vec::new());
        js_call("window.shikongMap && window.shikongMap.setSketch(null)".into());
    };
    // The tapped feature's card, read by the core when a tap arrives (and after edits).
    let mut card = use_signal(|| None::<FeatureCard>);
    use_effect(move || {
        let hit = (sh.tapped)().and_then(|(_, _, hits)| hits.first().cloned());
        let _ = (sh.revision)();
        spawn(async move {
            let Some(h) = hit else {
                card.set(None);
                return;
            };
            let (layer, id) = (h.layer.clone(), h.id.clone());
            let read = core.run(move |d| d.feature_card(&layer, &id)).await;
            // A newer tap wins over a slow answer to an older one.
            let still = sh.tapped.peek().as_ref().and_then(|(_, _, hits)| hits.first().cloned()) == Some(h);
            if still {
                card.set(read.ok().flatten());
            }
        });
    });
    let mut share = use_signal(|| None::<String>);
    let mut history = use_signal(|| None::<Vec<String>>);
    let mut editing = use_signal(|| false);
    let mut edit_form = use_signal(BTreeMap::<String, String>::new);
    let mut edit_problems = use_signal(BTreeMap::<String, String>::new);
    rsx! {
        div { class: "row",
            input { "data-testid": "search", placeholder: tr(l, "search"), value: "{q}", style: "flex: 1; padding: 8px;",
                oninput: move |e| {
                    let text = e.value();
                    q.set(text.clone());
                    spawn(async move {
                        if text.trim().is_empty() { results.set(Vec::new()); return; }
                        match core.run(move |d| d.search_offline(&text)).await {
                            Ok(s) => results.set(s),
                            Err(e) => sh.fail(&e),
                        }
                    });
                }
            }
        }
        if !results().is_empty() {
            div { class: "suggest", "data-testid": "suggestions",
                for s in results() {
                    div {
                        onclick: {
                            let s = s.clone();
                            move |_| {
                                if let Some(p) = &s.point {
                                    js_call(format!("window.shikongMap.flyTo({}, {}, 16, true)", p.lon, p.lat));
                                }
                                results.set(Vec::new());
                            }
                        },
                        b { "{s.name}" } " " span { class: "muted", "{s.standard_address}" }
                    }
                }
            }
        }
        div { class: "row", style: "margin-top: 6px",
            button { class: "act", "data-testid": "locate",
                onclick: move |_| {
                    spawn(async move {
                        match core.run(|d| d.require_position()).await {
                            Ok(f) => js_call(format!("window.shikongMap.setLocation({0}, {1}); window.shikongMap.flyTo({0}, {1}, 17, false)", f.lon, f.lat)),
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "locate")}
            }
            button { class: "act", "data-testid": "layers", onclick: move |_| layers_open.set(!layers_open()), {tr(l, "layers")} }
            button { class: "act", "data-testid": "measure-line", onclick: move |_| set_tool(Tool::MeasureLine), {tr(l, "measure_distance")} }
            button { class: "act", "data-testid": "measure-area", onclick: move |_| set_tool(Tool::MeasureArea), {tr(l, "measure_area")} }
            button { class: "act", "data-testid": "clear", onclick: move |_| set_tool(Tool::Browse), {tr(l, "clear")} }
            button { class: "act", "data-testid": "favourite",
                onclick: move |_| {
                    let (lon, lat, _) = (sh.view)();
                    let name = format!("收藏 {lon:.5},{lat:.5}");
                    spawn(async move {
                        match core.run(move |d| d.add_favourite(&name, lon, lat).map(|_| name)).await {
                            Ok(name) => sh.ok(name),
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "favourite")}
            }
        }
        if !markers.is_empty() {
            div { class: "row muted", "data-testid": "task-legend",
                span { "{tr(l, \"tasks_on_map\")}: {markers.len()}" }
                for (class, label, n) in legend {
                    span { "data-testid": "legend-{class}", span { class: "dot dot-{class}" } " {label} {n}" }
                }
            }
        }
        if let Some(text) = measurement {
            div { class: "card", "data-testid": "measurement", "{text}" }
        }
        if layers_open() {
            div { class: "card", "data-testid": "layer-switcher",
                for (name, title) in layer_list {
                    label { class: "row",
                        input { r#type: "checkbox", checked: !hidden().contains(&name),
                            onchange: {
                                let name = name.clone();
                                move |e: Event<FormData>| {
                                    let on = e.checked();
                                    if on { hidden.write().retain(|h| h != &name); } else { hidden.write().push(name.clone()); }
                                    js_call(format!("window.shikongMap.setVisible({}, {on})", Json::String(name.clone())));
                                }
                            }
                        }
                        "{title}"
                    }
                }
            }
        }
        if !favourites.is_empty() {
            div { class: "muted", {tr(l, "favourites")} }
            div { class: "row",
                for f in favourites {
                    button { class: "act", onclick: move |_| js_call(format!("window.shikongMap.flyTo({}, {}, 17, true)", f.lon, f.lat)), "{f.name}" }
                }
            }
        }
        if let Some(c) = card() {
            div { class: "card", "data-testid": "feature-info",
                b { "{c.layer.display_name()} · {c.code}" }
                for (k, v) in c.fields.iter() {
                    div { span { class: "muted", "{k}: " } "{v}" }
                }
                button { class: "act", "data-testid": "share",
                    onclick: {
                        let link = c.link.clone();
                        move |_| share.set(shikong_app_core::qr::svg(&link).ok())
                    },
                    {tr(l, "share")}
                }
                if let Some(svg) = share() {
                    div { class: "qr", dangerous_inner_html: "{svg}" }
                }
                div { class: "row",
                    button {
                        class: "act",
                        "data-testid": "history",
                        onclick: {
                            let (layer, id) = (c.layer.name.clone(), c.id.clone());
                            move |_| {
                                let (layer, id) = (layer.clone(), id.clone());
                                spawn(async move {
                                    match core.run(move |d| d.history(&layer, &id)).await {
                                        Ok(h) => history.set(Some(h)),
                                        Err(e) => sh.fail(&e),
                                    }
                                });
                            }
                        },
                        {tr(l, "history")}
                    }
                    button {
                        class: "act",
                        "data-testid": "edit",
                        onclick: {
                            let values = c.values.clone();
                            move |_| {
                                edit_form.set(values.clone());
                                edit_problems.set(BTreeMap::new());
                                editing.set(true);
                            }
                        },
                        {tr(l, "edit")}
                    }
                    button {
                        class: "act",
                        "data-testid": "delete-feature",
                        onclick: {
                            let (layer, id) = (c.layer.name.clone(), c.id.clone());
                            move |_| {
                                let (layer, id) = (layer.clone(), id.clone());
                                spawn(async move {
                                    match core.run(move |d| d.delete_in_active(&layer, &id)).await {
                                        Ok(_) => {
                                            sh.ok("已删除，待同步 / deleted; waiting for sync");
                                            let mut t = sh.tapped;
                                            t.set(None);
                                            sh.replica_changed();
                                        }
                                        Err(e) => sh.fail(&e),
                                    }
                                });
                            }
                        },
                        {tr(l, "delete")}
                    }
                }
                if let Some(h) = history() {
                    div { "data-testid": "history-list",
                        for line in h {
                            div { class: "muted", "{line}" }
                        }
                    }
                }
                if editing() {
                    div { "data-testid": "edit-form",
                        for f in c.layer.schema.fields.iter().filter(|f| !f.retired).cloned() {
                            FormField {
                                field: f.clone(),
                                value: edit_form().get(&f.name).cloned().unwrap_or_default(),
                                problem: edit_problems().get(&f.name).cloned(),
                                form: edit_form,
                                lang: l,
                            }
                        }
                        button {
                            class: "primary",
                            "data-testid": "edit-save",
                            onclick: {
                                let c = c.clone();
                                move |_| {
                                    let input = edit_form();
                                    if let Err(list) = Device::form_properties(&c.layer, &input) {
                                        edit_problems.set(list.iter().map(|p| (p.field.clone(), p.message.clone())).collect());
                                        return;
                                    }
                                    let (layer, id) = (c.layer.name.clone(), c.id.clone());
                                    spawn(async move {
                                        match core.run(move |d| d.edit_in_active(&layer, &id, &input)).await {
                                            Ok(_) => {
                                                sh.ok(tr(l, "saved"));
                                                editing.set(false);
                                                sh.replica_changed();
                                            }
                                            Err(e) => sh.fail(&e),
                                        }
                                    });
                                }
                            },
                            {tr(l, "save")}
                        }
                    }
                }
            }
        }
        if let Some(ms) = (sh.map_ms)() {
            div { class: "muted", "data-testid": "map-ready", "地图就绪 / map ready: {ms:.0} ms" }
        }
    }
}
