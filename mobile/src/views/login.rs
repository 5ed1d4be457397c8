//! The sign-in screen: server, user name and password (and, optionally, the PEM certificate of an
//! on-premises CA that signed the server's HTTPS certificate); device enrolment by photographing
//! the admin's QR code; citizens' self-registration. Signing in publishes a session in the core's
//! state, and the root switches to the tabs.

use dioxus::prelude::*;
use shikong_app_core::i18n::tr;

use super::{Core, Message, MessageLine};

#[component]
pub(super) fn Login() -> Element {
    let core = use_context::<Core>();
    let mut lang = core.lang;
    let l = lang();
    let mut server = use_signal(|| "http://127.0.0.1:8080".to_owned());
    let mut username = use_signal(String::new);
    let mut password = use_signal(String::new);
    let mut contact = use_signal(String::new);
    let mut ca_cert = use_signal(String::new);
    let mut register_mode = use_signal(|| false);
    let mut busy = use_signal(|| false);
    let mut message: Signal<Message> = use_signal(|| None);
    // Outcomes of the intents; a success that signs in needs no message (the tabs replace this).
    let mut show = move |r: Result<Option<String>, shikong_app_core::AppError>| match r {
        Ok(Some(text)) => message.set(Some(Ok(text))),
        Ok(None) => {}
        Err(e) => message.set(Some(Err(core.text(&e)))),
    };
    rsx! {
        div { class: "app",
            header { h1 { {tr(l, "app")} }
                button { class: "act", "data-testid": "lang", onclick: move |_| lang.set(lang().other()), {tr(l, "language")} }
            }
            div { class: "panel",
                label { class: "field", span { {tr(l, "server")} }
                    input { "data-testid": "server", value: "{server}", oninput: move |e| server.set(e.value()) } }
                label { class: "field", span { {tr(l, "username")} }
                    input { "data-testid": "username", value: "{username}", oninput: move |e| username.set(e.value()) } }
                label { class: "field", span { {tr(l, "password")} }
                    input { "data-testid": "password", r#type: "password", value: "{password}", oninput: move |e| password.set(e.value()) } }
                label { class: "field", span { "CA 证书（PEM，可选）/ CA certificate (PEM, optional)" }
                    textarea { "data-testid": "ca-cert", rows: 2, value: "{ca_cert}", oninput: move |e| ca_cert.set(e.value()) } }
                if register_mode() {
                    label { class: "field", span { "联系方式 / Contact" }
                        input { "data-testid": "contact", value: "{contact}", oninput: move |e| contact.set(e.value()) } }
                    button { class: "primary", "data-testid": "register-submit", disabled: busy(),
                        onclick: move |_| {
                            let (s, u, p, c, ca) = (server(), username(), password(), contact(), ca_cert());
                            spawn(async move {
                                busy.set(true);
                                let r = core.run(move |d| with_ca(d, &ca)?.register(&s, &u, &p, &c)).await;
                                show(r.map(Some));
                                busy.set(false);
                            });
                        },
                        {tr(l, "register")}
                    }
                } else {
                    div { class: "row",
                        button { class: "primary", "data-testid": "login", disabled: busy(),
                            onclick: move |_| {
                                let (s, u, p, ca) = (server(), username(), password(), ca_cert());
                                spawn(async move {
                                    busy.set(true);
                                    let r = core.run(move |d| with_ca(d, &ca)?.login(&s, &u, &p).map(|_| None)).await;
                                    busy.set(false);
                                    show(r);
                                });
                            },
                            {tr(l, "login")}
                        }
                        button { class: "act", "data-testid": "scan-enrol", disabled: busy(),
                            onclick: move |_| {
                                let ca = ca_cert();
                                spawn(async move {
                                    busy.set(true);
                                    let r = core.run(move |d| with_ca(d, &ca)?.enrol_with_camera().map(|_| None)).await;
                                    busy.set(false);
                                    show(r);
                                });
                            },
                            {tr(l, "scan_enrol")}
                        }
                    }
                }
                button { class: "act", "data-testid": "register-mode", onclick: move |_| register_mode.set(!register_mode()),
                    if register_mode() { {tr(l, "login")} } else { {tr(l, "register")} } }
                MessageLine { message }
            }
        }
    }
}

/// The device, after trusting the CA certificate typed on the screen (blank: the saved setting
/// stays as it is).
fn with_ca<'d>(
    d: &'d mut shikong_app_core::Device,
    pem: &str,
) -> Result<&'d mut shikong_app_core::Device, shikong_app_core::AppError> {
    if !pem.trim().is_empty() {
        d.set_ca_cert(Some(pem))?;
    }
    Ok(d)
}
