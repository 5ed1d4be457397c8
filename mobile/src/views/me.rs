//! The "me" tab: who is signed in where, the photo watermark and automatic-sync switches, the
//! location and camera sources, the language, sign-out. Every switch is an intent the core saves.

use dioxus::prelude::*;
use shikong_app_core::i18n::tr;

use super::Shared;

#[component]
pub(super) fn MePanel() -> Element {
    let sh = use_context::<Shared>();
    let core = sh.core;
    let l = (sh.lang)();
    let (session, watermark, auto, loc, cam) = {
        let s = core.state.read();
        (
            s.settings.session.clone(),
            s.settings.watermark,
            s.settings.auto_sync,
            s.location_label.clone(),
            s.camera_label.clone(),
        )
    };
    rsx! {
        if let Some(s) = session {
            div { class: "card", "data-testid": "me",
                b { "{s.username}" } " · {s.role}"
                div { class: "muted", "{s.server}" }
                div { class: "muted", "有效期至 / expires {s.expires_at}" }
            }
        }
        label { class: "row", input { r#type: "checkbox", checked: watermark, onchange: move |e: Event<FormData>| {
            let on = e.checked();
            spawn(async move { if let Err(e) = core.run(move |d| d.set_watermark(on)).await { sh.fail(&e); } });
        } } {tr(l, "watermark")} }
        label { class: "row", input { r#type: "checkbox", checked: auto, onchange: move |e: Event<FormData>| {
            let on = e.checked();
            spawn(async move { if let Err(e) = core.run(move |d| d.set_auto_sync(on)).await { sh.fail(&e); } });
        } } {tr(l, "auto_sync")} }
        div { class: "muted", "{tr(l, \"location_source\")}: {loc}" }
        div { class: "muted", "{tr(l, \"camera_source\")}: {cam}" }
        div { class: "row",
            button { class: "act", "data-testid": "lang", onclick: move |_| {
                let mut lg = sh.lang;
                let next = lg().other();
                lg.set(next);
                spawn(async move { if let Err(e) = core.run(move |d| d.set_lang(next)).await { sh.fail(&e); } });
            }, {tr(l, "language")} }
            // Signing out publishes a state without a session: the root shows the sign-in screen.
            button { class: "act", "data-testid": "logout", onclick: move |_| {
                spawn(async move { if let Err(e) = core.run(|d| d.logout()).await { sh.fail(&e); } });
            }, {tr(l, "logout")} }
        }
    }
}
