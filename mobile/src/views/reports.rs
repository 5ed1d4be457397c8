//! The citizen's tabs: 我要上报 (category, description, address, location by map tap or GPS, a
//! photo; queued on the device and sent when the server can be reached) and 我的上报 (the
//! reports with the handling status the office set, each case's steps, and 评价 once closed).

use dioxus::prelude::*;
use shikong_app_core::i18n::{Lang, tr};
use shikong_app_core::tasks::can_rate;
use shikong_app_core::{EvidencePhoto, ReportForm, ReportLayer, ReportStatus};
use shikong_model::FieldType;

use super::shell::{geojson_sketch, js_call};
use super::{Shared, Tool};

#[component]
pub(super) fn ReportPanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let mut forms = use_signal(Vec::<ReportLayer>::new);
    let mut category = use_signal(String::new);
    let mut description = use_signal(String::new);
    let mut address = use_signal(String::new);
    let mut photo = use_signal(|| None::<EvidencePhoto>);
    use_hook(move || {
        let (mut t, mut p) = (sh.tool, sh.points);
        t.set(Tool::PlaceReport);
        p.set(Vec::new());
    });
    use_drop(move || {
        let mut t = sh.tool;
        t.set(Tool::Browse);
    });
    use_hook(move || {
        spawn(async move {
            if let Ok(f) = core.run(|d| d.report_layers()).await {
                forms.set(f);
            }
        });
    });
    let (queued, sent) = {
        let s = core.state.read();
        let queued = s.reports.iter().filter(|r| r.server_id.is_none()).count();
        (queued, s.reports.len() - queued)
    };
    let layer = forms().first().cloned();
    let codes: Vec<(String, String)> = layer
        .as_ref()
        .and_then(|x| {
            x.fields
                .iter()
                .find(|f| f.ty == FieldType::Code && f.required)
                .or(x.fields.iter().find(|f| f.ty == FieldType::Code))
        })
        .map(|f| f.codes.iter().map(|c| (c.code.clone(), c.label.clone())).collect())
        .unwrap_or_default();
    let points = (sh.points)();
    rsx! {
        h3 { {tr(l, "tab_report")} }
        label { class: "field", span { {tr(l, "category")} " *" }
            select { "data-testid": "report-category", value: "{category}", onchange: move |e| category.set(e.value()),
                option { value: "", "—" }
                for (c, label) in codes { option { value: "{c}", "{label}" } }
            }
        }
        label { class: "field", span { {tr(l, "description")} }
            textarea { "data-testid": "report-description", value: "{description}", oninput: move |e| description.set(e.value()) } }
        label { class: "field", span { {tr(l, "address")} }
            input { "data-testid": "report-address", value: "{address}", oninput: move |e| address.set(e.value()) } }
        div { class: "row",
            span { class: "muted", "data-testid": "report-location",
                match points.first() { Some((x, y)) => format!("📍 {x:.6}, {y:.6}"), None => "点地图或用 GPS 定位 / tap the map or use GPS".to_owned() } }
            button { class: "act", "data-testid": "report-gps", onclick: move |_| {
                spawn(async move {
                    match core.run(|d| d.require_position()).await {
                        Ok(f) => {
                            let mut p = sh.points;
                            p.set(vec![(f.lon, f.lat)]);
                            js_call(format!("window.shikongMap.setSketch({}); window.shikongMap.flyTo({}, {}, 17, false)", geojson_sketch(&[(f.lon, f.lat)], false), f.lon, f.lat));
                        }
                        Err(e) => sh.fail(&e),
                    }
                });
            }, {tr(l, "geometry_gps")} }
            button { class: "act", "data-testid": "report-photo", onclick: move |_| {
                spawn(async move {
                    match core.run(|d| d.take_photo()).await { Ok(p) => photo.set(Some(p)), Err(e) => sh.fail(&e) }
                });
            }, {tr(l, "photo")} }
        }
        if let Some(p) = photo() { div { class: "muted", "📷 {p.photo.name} · SHA256 {p.sha256.get(..12).unwrap_or_default()}…" } }
        button { class: "primary", "data-testid": "report-submit", disabled: layer.is_none(), onclick: move |_| {
            let Some(layer) = layer.clone() else { return };
            let form = ReportForm { layer: layer.name, category: category(), description: description(), address: address() };
            let ph = photo();
            let at = (sh.points)().first().copied();
            spawn(async move {
                match core.run(move |d| d.submit_report(&form, at, ph.as_ref())).await {
                    Ok(sent) => {
                        sh.ok(if sent > 0 { format!("已提交 / submitted ({sent})") } else { tr(l, "queued").to_owned() });
                        category.set(String::new()); description.set(String::new()); photo.set(None);
                    }
                    Err(e) => sh.fail(&e),
                }
            });
        }, {tr(l, "submit")} }
        div { class: "muted", "data-testid": "report-queue", "待提交 / queued: {queued} · 已提交 / sent: {sent}" }
    }
}

#[component]
pub(super) fn MyReportsPanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let mut reports = use_signal(Vec::<ReportStatus>::new);
    let reload = move || {
        spawn(async move {
            match core.run(|d| d.follow_reports()).await {
                Ok(v) => reports.set(v),
                Err(e) => sh.fail(&e),
            }
        });
    };
    use_hook(reload);
    rsx! {
        h3 { {tr(l, "tab_my_reports")} }
        for r in reports() {
            ReportCard { report: r.clone(), lang: l, on_rate: move |(rating, note): (u8, String)| {
                let Some(case) = r.case.clone() else { return };
                spawn(async move {
                    match core.run(move |d| d.rate_case(&case, rating, &note)).await {
                        Ok(state) => {
                            sh.ok(format!("{}（{state}）", tr(l, "rated")));
                            reload();
                        }
                        Err(e) => sh.fail(&e),
                    }
                });
            } }
        }
    }
}

/// One report: its status, its case's steps (受理, 立案 … with times) and, once the case is
/// closed, the 评价 control (1–5 stars and a note).
#[component]
pub(super) fn ReportCard(report: ReportStatus, lang: Lang, on_rate: EventHandler<(u8, String)>) -> Element {
    let l = lang;
    let mut stars = use_signal(|| 0u8);
    let mut note = use_signal(String::new);
    let r = &report;
    let status = match (&r.case, r.status.is_empty()) {
        (Some(c), _) => c.state_label.clone(),
        (None, true) => "待受理 / received".to_owned(),
        (None, false) => r.status.clone(),
    };
    rsx! {
        div { class: "card", "data-testid": "my-report",
            b { "data-testid": "report-status", "{status}" }
            div { "{r.description}" }
            div { class: "muted", "{r.created_at} · v{r.versions}" }
            if let Some(c) = &r.case {
                div { class: "muted", "{c.case_no}" }
                if !c.steps.is_empty() {
                    div { class: "muted", {tr(l, "progress")} }
                    ol { class: "steps", "data-testid": "report-steps",
                        for s in c.steps.iter() { li { "{s.label} · {s.at}" } }
                    }
                }
                if can_rate(c) {
                    div { class: "rate", "data-testid": "report-rate",
                        div { class: "row stars",
                            span { {tr(l, "rate")} }
                            for n in 1..=5u8 {
                                button { class: if stars() >= n { "on" } else { "" }, "data-testid": "rate-{n}",
                                    onclick: move |_| stars.set(n), "★" }
                            }
                        }
                        input { "data-testid": "rate-note", value: "{note}", oninput: move |e| note.set(e.value()) }
                        button { class: "primary", "data-testid": "rate-submit", disabled: stars() == 0,
                            onclick: move |_| on_rate.call((stars(), note())), {tr(l, "rate")} }
                    }
                }
            }
        }
    }
}
