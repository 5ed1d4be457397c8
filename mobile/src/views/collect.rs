//! The collect tab: pick a layer of the open area, place the geometry (map taps or GPS fixes),
//! fill the layer's form (a field per schema field, code lists as selects, QR scan into text
//! fields), take evidence photos, save — the core checks and writes; problems show per field.

use std::collections::BTreeMap;

use dioxus::prelude::*;
use shikong_app_core::i18n::{Lang, tr};
use shikong_app_core::{AppError, Device, EvidencePhoto};
use shikong_model::{FieldType, GeometryKind};
use shikong_replica::ReplicaLayer;

use super::shell::{geojson_sketch, js_call};
use super::{Shared, Tool};

#[component]
pub(super) fn CollectPanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let layers: Vec<ReplicaLayer> = core
        .state
        .read()
        .active
        .as_ref()
        .map(|a| a.layers.iter().filter(|x| !x.citizen_reports).cloned().collect())
        .unwrap_or_default();
    let mut layer = use_signal(|| layers.first().map(|x| x.name.clone()).unwrap_or_default());
    let mut form = use_signal(BTreeMap::<String, String>::new);
    let mut photos = use_signal(Vec::<EvidencePhoto>::new);
    let mut problems = use_signal(BTreeMap::<String, String>::new);
    // Taps on the map add vertices while this tab is open.
    use_hook(move || {
        let (mut t, mut p) = (sh.tool, sh.points);
        t.set(Tool::Sketch);
        p.set(Vec::new());
    });
    use_drop(move || {
        let mut t = sh.tool;
        t.set(Tool::Browse);
        js_call("window.shikongMap && window.shikongMap.setSketch(null)".into());
    });
    let Some(def) = layers.iter().find(|x| x.name == layer()).or(layers.first()).cloned() else {
        return rsx! { div { class: "muted", {tr(l, "no_replicas")} } };
    };
    let kind = def.geometry_kind;
    let points = (sh.points)();
    let def_save = def.clone();
    rsx! {
        label { class: "field", span { {tr(l, "layer")} }
            select { "data-testid": "collect-layer", value: "{def.name}",
                onchange: move |e| { layer.set(e.value()); form.set(BTreeMap::new()); problems.set(BTreeMap::new()); },
                for x in layers.iter() { option { value: "{x.name}", "{x.display_name()}" } }
            }
        }
        div { class: "row",
            span { class: "muted", "data-testid": "vertices", "{kind.name()} · {points.len()} 点 / points" }
            button { class: "act", "data-testid": "gps-point",
                onclick: move |_| {
                    spawn(async move {
                        match core.run(|d| d.require_position()).await {
                            Ok(f) => {
                                let mut p = sh.points;
                                if matches!(kind, GeometryKind::Point | GeometryKind::MultiPoint) { p.set(vec![(f.lon, f.lat)]); } else { p.write().push((f.lon, f.lat)); }
                                js_call(format!("window.shikongMap.setSketch({}); window.shikongMap.flyTo({}, {}, 17, false)", geojson_sketch(&p(), true), f.lon, f.lat));
                            }
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "geometry_gps")}
            }
            button { class: "act", "data-testid": "clear-vertices", onclick: move |_| { let mut p = sh.points; p.set(Vec::new()); js_call("window.shikongMap.setSketch(null)".into()); }, {tr(l, "clear")} }
        }
        for f in def.schema.fields.iter().filter(|f| !f.retired).cloned() {
            FormField { field: f.clone(), value: form().get(&f.name).cloned().unwrap_or_default(), problem: problems().get(&f.name).cloned(), form, lang: l }
        }
        if !photos().is_empty() {
            div { class: "card", "data-testid": "photos",
                for p in photos() {
                    div { class: "muted", "📷 {p.photo.name} · {p.photo.bytes.len() / 1024} KB · SHA256 {p.sha256.get(..12).unwrap_or_default()}… · {p.evidence.lon.unwrap_or_default():.6},{p.evidence.lat.unwrap_or_default():.6}" }
                }
            }
        }
        div { class: "row",
            button { class: "act", "data-testid": "take-photo",
                onclick: move |_| {
                    spawn(async move {
                        match core.run(|d| d.take_photo()).await {
                            Ok(p) => photos.write().push(p),
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "photo")}
            }
            button { class: "primary", "data-testid": "save",
                onclick: move |_| {
                    let def = def_save.clone();
                    let pts = (sh.points)();
                    let input = form();
                    let ph = photos();
                    spawn(async move {
                        let geom = match Device::sketch_geometry(def.geometry_kind, &pts) {
                            Ok(g) => g,
                            Err(e) => { sh.fail(&e); return; }
                        };
                        if let Err(list) = Device::form_properties(&def, &input) {
                            problems.set(list.iter().map(|p| (p.field.clone(), p.message.clone())).collect());
                            sh.fail(&AppError::Form(list));
                            return;
                        }
                        let name = def.name.clone();
                        match core.run(move |d| d.collect_in_active(&name, geom, &input, &ph)).await {
                            Ok(saved) => {
                                sh.ok(format!("{} ({}) · {} {}", tr(l, "saved"), saved.id, tr(l, "pending"), saved.pending));
                                form.set(BTreeMap::new());
                                photos.set(Vec::new());
                                problems.set(BTreeMap::new());
                                let mut p = sh.points;
                                p.set(Vec::new());
                                js_call("window.shikongMap.setSketch(null)".into());
                                sh.replica_changed();
                            }
                            Err(e) => sh.fail(&e),
                        }
                    });
                },
                {tr(l, "save")}
            }
        }
    }
}

/// One form field: a select for code lists and yes/no, an input otherwise (with a QR scan
/// button for text fields); the field's problem under it.
#[component]
pub(super) fn FormField(
    field: shikong_model::FieldDef,
    value: String,
    problem: Option<String>,
    form: Signal<BTreeMap<String, String>>,
    lang: Lang,
) -> Element {
    let sh = use_context::<Shared>();
    let name = field.name.clone();
    let title = field.title.clone().unwrap_or_else(|| field.name.clone());
    let req = if field.required { format!(" *{}", tr(lang, "required")) } else { String::new() };
    let n1 = name.clone();
    let mut set = move |v: String| {
        form.write().insert(n1.clone(), v);
    };
    let input = match field.ty {
        FieldType::Attachments => return rsx! {},
        FieldType::Code => rsx! {
            select { "data-testid": "field-{name}", value: "{value}", onchange: move |e| set(e.value()),
                option { value: "", "—" }
                for c in field.codes.iter() { option { value: "{c.code}", selected: c.code == value, "{c.label}" } }
            }
        },
        FieldType::Bool => rsx! {
            select { "data-testid": "field-{name}", value: "{value}", onchange: move |e| set(e.value()),
                option { value: "", "—" } option { value: "是", "是 / yes" } option { value: "否", "否 / no" }
            }
        },
        ty => {
            let html_type = match ty {
                FieldType::Integer | FieldType::Real => "number",
                FieldType::Date => "date",
                _ => "text",
            };
            let n2 = name.clone();
            rsx! {
                div { class: "row",
                    input { "data-testid": "field-{name}", r#type: html_type, value: "{value}", style: "flex: 1", oninput: move |e| set(e.value()) }
                    if ty == FieldType::Text {
                        button { class: "act", "data-testid": "scan-{name}",
                            onclick: move |_| {
                                let n = n2.clone();
                                spawn(async move {
                                    match sh.core.run(|d| d.scan_text()).await {
                                        Ok(text) => { form.write().insert(n, text); }
                                        Err(e) => sh.fail(&e),
                                    }
                                });
                            },
                            {tr(lang, "scan_field")}
                        }
                    }
                }
            }
        }
    };
    rsx! {
        label { class: "field",
            span { "{title}{req}" }
            {input}
            if let Some(p) = problem { div { class: "err", "data-testid": "problem-{name}", "{p}" } }
        }
    }
}
