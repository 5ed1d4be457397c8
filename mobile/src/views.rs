//! The app's screens (Dioxus). Views only: every action calls [`Device`] on a blocking thread and
//! shows its outcome; the map is MapLibre in the page, driven through `window.shikongMap`.
//!
//! The map element is mounted once and stays mounted across tabs (it is resized, not rebuilt), so
//! switching tabs never reloads tiles. Each screen shows one message line for the outcome of the
//! last action (`data-testid="message"`): what happened, or the precise error.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use dioxus::prelude::*;
use serde::Deserialize;
use serde_json::Value as Json;
use shikong_model::{FieldType, GeometryKind};
use shikong_sync_client::Progress;

use crate::device::{AreaChoice, Device, DownloadStep, EvidencePhoto, ReplicaSummary};
use crate::i18n::{Lang, tr};
use crate::mapserver::MapServer;
use crate::{Error, mapserver};

/// What every screen reaches: the device (behind a lock: one action at a time) and the map server.
#[derive(Debug, Clone)]
pub struct AppContext {
    pub device: Arc<Mutex<Device>>,
    pub map: MapServer,
    /// The screen shown first after sign-in.
    pub start: Screen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Map,
    Collect,
    Areas,
    Sync,
    Me,
    Report,
    MyReports,
}

/// What map taps do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Browse,
    MeasureLine,
    MeasureArea,
    /// Taps add vertices of the geometry being collected.
    Sketch,
    /// Taps set the citizen report's location.
    PlaceReport,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum MapEvent {
    Tap {
        lon: f64,
        lat: f64,
        #[serde(default)]
        features: Vec<TapHit>,
    },
    View {
        lon: f64,
        lat: f64,
        zoom: f64,
    },
    Ready {
        ms: f64,
    },
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
struct TapHit {
    layer: String,
    id: String,
    code: String,
}

/// A tapped feature as its card shows it: layer title, code, `(field title, value)`, share link.
type TappedFeature = (String, String, Vec<(String, String)>, String, FeatureRef);

/// A feature of the active replica: layer name, id, current values as form text.
#[derive(Debug, Clone, PartialEq)]
struct FeatureRef {
    layer: shikong_replica::ReplicaLayer,
    id: String,
    values: BTreeMap<String, String>,
}

/// The message line: `Ok` or `Err` text of the last action.
type Message = Option<Result<String, String>>;

fn lock(ctx: &AppContext) -> std::sync::MutexGuard<'_, Device> {
    ctx.device.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Shows an action's error on the message line.
fn fail(sh: Shared, e: String) {
    let mut m = sh.message;
    m.set(Some(Err(e)));
}

/// Runs `f` on the device on a blocking thread.
async fn on_device<T: Send + 'static>(
    ctx: &AppContext,
    f: impl FnOnce(&mut Device) -> Result<T, Error> + Send + 'static,
) -> Result<T, String> {
    let dev = ctx.device.clone();
    tokio::task::spawn_blocking(move || {
        let mut d = dev.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut d)
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

fn js_call(js: String) {
    let _ = document::eval(&js);
}

fn geojson_sketch(points: &[(f64, f64)], closed: bool) -> String {
    let mut feats: Vec<Json> = points
        .iter()
        .map(|(x, y)| serde_json::json!({"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [x, y]}}))
        .collect();
    if points.len() >= 2 {
        let mut line: Vec<[f64; 2]> = points.iter().map(|&(x, y)| [x, y]).collect();
        let geom = if closed && points.len() >= 3 {
            line.push(line[0]);
            serde_json::json!({"type": "Polygon", "coordinates": [line]})
        } else {
            serde_json::json!({"type": "LineString", "coordinates": line})
        };
        feats.push(serde_json::json!({"type": "Feature", "properties": {}, "geometry": geom}));
    }
    serde_json::json!({"type": "FeatureCollection", "features": feats}).to_string()
}

const CSS: &str = r#"
* { box-sizing: border-box; }
body { margin: 0; font-family: "Noto Sans CJK SC", "WenQuanYi Micro Hei", "PingFang SC", sans-serif; font-size: 16px; color: #1f2329; background: #f5f6f7; }
.app { display: flex; flex-direction: column; height: 100vh; max-width: 900px; margin: 0 auto; background: #fff; }
header { display: flex; align-items: center; justify-content: space-between; padding: 8px 12px; background: #1d4ed8; color: #fff; }
header h1 { font-size: 18px; margin: 0; }
.net { font-size: 13px; padding: 2px 8px; border-radius: 10px; background: rgba(255,255,255,.2); }
#map { width: 100%; flex: none; }
.panel { flex: 1; overflow-y: auto; padding: 10px 12px; }
nav.tabs { display: flex; border-top: 1px solid #e5e6eb; }
nav.tabs button { flex: 1; padding: 12px 4px; border: 0; background: #fff; font-size: 14px; }
nav.tabs button.on { color: #1d4ed8; font-weight: 600; border-top: 3px solid #1d4ed8; }
button, select, input, textarea { font: inherit; }
button.primary { background: #1d4ed8; color: #fff; border: 0; border-radius: 6px; padding: 10px 16px; }
button.act { border: 1px solid #c9cdd4; background: #fff; border-radius: 6px; padding: 8px 10px; margin: 2px; }
label.field { display: block; margin: 8px 0; }
label.field span { display: block; font-size: 14px; color: #4e5969; margin-bottom: 2px; }
label.field input, label.field select, label.field textarea { width: 100%; padding: 8px; border: 1px solid #c9cdd4; border-radius: 6px; }
.err { color: #cb2634; font-size: 13px; }
.msg { padding: 8px 10px; margin: 6px 0; border-radius: 6px; }
.msg.ok { background: #e8ffea; color: #00692e; }
.msg.bad { background: #ffece8; color: #cb2634; }
.card { border: 1px solid #e5e6eb; border-radius: 8px; padding: 10px; margin: 8px 0; overflow-wrap: anywhere; }
.muted { color: #86909c; font-size: 13px; }
.row { display: flex; gap: 6px; flex-wrap: wrap; align-items: center; }
.suggest { border: 1px solid #e5e6eb; border-radius: 6px; margin-top: 4px; }
.suggest div { padding: 8px; border-bottom: 1px solid #f2f3f5; cursor: pointer; }
.qr svg { width: 200px; height: 200px; }
progress { width: 100%; }
"#;

/// The app's root: sign-in when there is no session, else the tabs of the user's role.
#[component]
pub fn App() -> Element {
    let ctx = use_context::<AppContext>();
    let (session, lang0) = {
        let d = lock(&ctx);
        (d.session().cloned(), d.lang())
    };
    let lang = use_signal(|| lang0);
    let signed_in = use_signal(|| session.is_some());
    let citizen = session.as_ref().is_some_and(|s| s.is_citizen());
    rsx! {
        style { {CSS} }
        if signed_in() {
            Main { lang, signed_in, citizen }
        } else {
            Login { lang, signed_in }
        }
    }
}

#[component]
fn Login(lang: Signal<Lang>, signed_in: Signal<bool>) -> Element {
    let ctx = use_context::<AppContext>();
    let l = lang();
    let mut server = use_signal(|| "http://127.0.0.1:8080".to_owned());
    let mut username = use_signal(String::new);
    let mut password = use_signal(String::new);
    let mut contact = use_signal(String::new);
    let mut register_mode = use_signal(|| false);
    let mut busy = use_signal(|| false);
    let mut message: Signal<Message> = use_signal(|| None);
    let c1 = ctx.clone();
    let c2 = ctx.clone();
    let c3 = ctx.clone();
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
                if register_mode() {
                    label { class: "field", span { "联系方式 / Contact" }
                        input { "data-testid": "contact", value: "{contact}", oninput: move |e| contact.set(e.value()) } }
                    button { class: "primary", "data-testid": "register-submit", disabled: busy(),
                        onclick: move |_| {
                            let ctx = c3.clone();
                            let (s, u, p, c) = (server(), username(), password(), contact());
                            spawn(async move {
                                busy.set(true);
                                let r = on_device(&ctx, move |d| d.register(&s, &u, &p, &c)).await;
                                message.set(Some(r));
                                busy.set(false);
                            });
                        },
                        {tr(l, "register")}
                    }
                } else {
                    div { class: "row",
                        button { class: "primary", "data-testid": "login", disabled: busy(),
                            onclick: move |_| {
                                let ctx = c1.clone();
                                let (s, u, p) = (server(), username(), password());
                                spawn(async move {
                                    busy.set(true);
                                    let r = on_device(&ctx, move |d| d.login(&s, &u, &p).map(|s| s.username.clone())).await;
                                    busy.set(false);
                                    match r {
                                        Ok(_) => signed_in.set(true),
                                        Err(e) => message.set(Some(Err(e))),
                                    }
                                });
                            },
                            {tr(l, "login")}
                        }
                        button { class: "act", "data-testid": "scan-enrol", disabled: busy(),
                            onclick: move |_| {
                                let ctx = c2.clone();
                                spawn(async move {
                                    busy.set(true);
                                    let r = on_device(&ctx, |d| {
                                        let p = d.camera.capture()?;
                                        d.enrol_photo(&p).map(|s| s.username.clone())
                                    }).await;
                                    busy.set(false);
                                    match r {
                                        Ok(_) => signed_in.set(true),
                                        Err(e) => message.set(Some(Err(e))),
                                    }
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

#[component]
fn MessageLine(message: Signal<Message>) -> Element {
    match message() {
        None => rsx! {},
        Some(Ok(m)) => rsx! { div { class: "msg ok", "data-testid": "message", "{m}" } },
        Some(Err(m)) => rsx! { div { class: "msg bad", "data-testid": "message", "{m}" } },
    }
}

/// State shared by the tabs of a signed-in user.
#[derive(Clone, Copy)]
struct Shared {
    lang: Signal<Lang>,
    screen: Signal<Screen>,
    tool: Signal<Tool>,
    points: Signal<Vec<(f64, f64)>>,
    /// Bumped after every change to the replica: the map reloads its replica tiles.
    revision: Signal<u64>,
    /// Map centre and zoom, from the map's `view` events.
    view: Signal<(f64, f64, f64)>,
    tapped: Signal<Option<(f64, f64, Vec<TapHit>)>>,
    message: Signal<Message>,
    online: Signal<bool>,
    map_ms: Signal<Option<f64>>,
    active: Signal<Option<String>>,
}

#[component]
fn Main(lang: Signal<Lang>, signed_in: Signal<bool>, citizen: bool) -> Element {
    let ctx = use_context::<AppContext>();
    let start = if citizen { Screen::Report } else { ctx.start };
    let (active0, online0) = {
        let d = lock(&ctx);
        (d.settings.active.clone(), false)
    };
    let sh = Shared {
        lang,
        screen: use_signal(|| start),
        tool: use_signal(|| Tool::Browse),
        points: use_signal(Vec::new),
        revision: use_signal(|| 0),
        view: use_signal(|| (114.35, 30.52, 13.0)),
        tapped: use_signal(|| None),
        message: use_signal(|| None),
        online: use_signal(|| online0),
        map_ms: use_signal(|| None),
        active: use_signal(|| active0),
    };
    use_context_provider(|| sh);
    let l = lang();
    let screen = (sh.screen)();
    let map_height = match screen {
        Screen::Map => "62vh",
        Screen::Collect | Screen::Report => "34vh",
        _ => "0px",
    };
    // The map: created once per active replica; events come back through `dioxus.send`.
    let cmap = ctx.clone();
    use_effect(move || {
        let active = (sh.active)();
        let ctx = cmap.clone();
        spawn(async move {
            let (rp, bp) = match &active {
                Some(id) => {
                    let (r, b) = mapserver::paths(lock(&ctx).dir(), id);
                    (Some(r), Some(b))
                }
                None => (None, None),
            };
            let sources = ctx.map.sources.clone();
            let shown = tokio::task::spawn_blocking(move || {
                sources.show(rp.as_deref(), bp.as_deref())?;
                Ok::<_, Error>(
                    rp.as_deref()
                        .and_then(|p| shikong_replica::Replica::open(p).ok())
                        .and_then(|r| mapserver::extent(&r)),
                )
            })
            .await;
            let ext = match shown {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => {
                    let mut m = sh.message;
                    m.set(Some(Err(e.to_string())));
                    None
                }
                Err(_) => None,
            };
            let (lon, lat, zoom) = match ext {
                Some(b) => ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, 15.0),
                None => (114.35, 30.52, 12.0),
            };
            let base = ctx.map.base();
            let js = format!(
                r#"
                if (!window.shikongMap) {{
                  await new Promise((ok, bad) => {{ const s = document.createElement('script'); s.src = '{base}/assets/mobile-map.js'; s.onload = ok; s.onerror = bad; document.head.appendChild(s); }});
                  const c = document.createElement('link'); c.rel = 'stylesheet'; c.href = '{base}/assets/mobile-map.css'; document.head.appendChild(c);
                }}
                window.shikongMap.listen((e) => dioxus.send(e));
                const ms = await window.shikongMap.init('map', '{base}/style.json', {{ center: [{lon}, {lat}], zoom: {zoom} }});
                dioxus.send({{ kind: 'ready', ms }});
                await new Promise(() => {{}});
                "#
            );
            let mut ev = document::eval(&js);
            loop {
                let Ok(e) = ev.recv::<MapEvent>().await else { break };
                handle_map_event(sh, e);
            }
        });
    });
    // Resize the map when its height changes with the tab.
    use_effect(move || {
        let _ = (sh.screen)();
        js_call(
            "setTimeout(() => window.shikongMap && window.shikongMap.map && window.shikongMap.map.resize(), 50)".into(),
        );
    });
    // Reload replica tiles after edits and syncs.
    use_effect(move || {
        let rev = (sh.revision)();
        if rev > 0 {
            js_call(format!("window.shikongMap && window.shikongMap.reload({rev})"));
        }
    });
    // Network state every 10 s; automatic sync when online with local changes waiting.
    let cnet = ctx.clone();
    use_future(move || {
        let ctx = cnet.clone();
        async move {
            loop {
                let state = on_device(&ctx, |d| {
                    let online = d.online();
                    let waiting = match &d.settings.active {
                        Some(id) if d.settings.auto_sync && online => {
                            d.summary(id).map(|s| s.pending > 0 || s.unconfirmed_photos > 0).unwrap_or(false)
                        }
                        _ => false,
                    };
                    Ok((online, waiting, d.settings.active.clone()))
                })
                .await;
                if let Ok((online, waiting, active)) = state {
                    let mut o = sh.online;
                    o.set(online);
                    if let (true, Some(id)) = (waiting, active) {
                        let dev = lock(&ctx).clone();
                        let r = tokio::task::spawn_blocking(move || dev.sync(&id, &mut |_| {})).await;
                        if let Ok(Ok(_)) = r {
                            let mut rev = sh.revision;
                            rev += 1;
                        }
                    }
                }
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
            }
        }
    });
    let tabs: Vec<(Screen, &'static str)> = if citizen {
        vec![(Screen::Report, "tab_report"), (Screen::MyReports, "tab_my_reports"), (Screen::Me, "tab_me")]
    } else {
        vec![
            (Screen::Map, "tab_map"),
            (Screen::Collect, "tab_collect"),
            (Screen::Areas, "tab_areas"),
            (Screen::Sync, "tab_sync"),
            (Screen::Me, "tab_me"),
        ]
    };
    let online = (sh.online)();
    rsx! {
        div { class: "app",
            header {
                h1 { {tr(l, "app")} }
                span { class: "net", "data-testid": "net", if online { {tr(l, "online")} } else { {tr(l, "offline")} } }
            }
            div { id: "map", "data-testid": "map", style: "height: {map_height}" }
            div { class: "panel",
                match screen {
                    Screen::Map => rsx! { MapPanel {} },
                    Screen::Collect => rsx! { CollectPanel {} },
                    Screen::Areas => rsx! { AreasPanel {} },
                    Screen::Sync => rsx! { SyncPanel {} },
                    Screen::Me => rsx! { MePanel { signed_in } },
                    Screen::Report => rsx! { ReportPanel {} },
                    Screen::MyReports => rsx! { MyReportsPanel {} },
                }
                MessageLine { message: sh.message }
            }
            nav { class: "tabs",
                for (s, key) in tabs {
                    button {
                        class: if s == screen { "on" } else { "" },
                        "data-testid": "tab-{key}",
                        onclick: move |_| {
                            let mut sc = sh.screen;
                            sc.set(s);
                            let mut m = sh.message;
                            m.set(None);
                        },
                        {tr(l, key)}
                    }
                }
            }
        }
    }
}

fn handle_map_event(sh: Shared, e: MapEvent) {
    let (mut points, mut tapped, mut view, mut map_ms) = (sh.points, sh.tapped, sh.view, sh.map_ms);
    match e {
        MapEvent::Ready { ms } => map_ms.set(Some(ms)),
        MapEvent::View { lon, lat, zoom } => view.set((lon, lat, zoom)),
        MapEvent::Tap { lon, lat, features } => match (sh.tool)() {
            Tool::Browse => tapped.set(Some((lon, lat, features))),
            Tool::PlaceReport => {
                points.set(vec![(lon, lat)]);
                js_call(format!("window.shikongMap.setSketch({})", geojson_sketch(&[(lon, lat)], false)));
            }
            tool => {
                points.write().push((lon, lat));
                let closed = tool == Tool::MeasureArea || tool == Tool::Sketch;
                js_call(format!("window.shikongMap.setSketch({})", geojson_sketch(&points(), closed)));
            }
        },
    }
}

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
fn MapPanel() -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let mut q = use_signal(String::new);
    let mut results = use_signal(Vec::<shikong_geocoder::Suggestion>::new);
    let mut layers_open = use_signal(|| false);
    let layer_list: Vec<(String, String)> = {
        let d = lock(&ctx);
        d.active_replica()
            .map(|r| r.layers().iter().map(|x| (x.name.clone(), x.display_name().to_owned())).collect())
            .unwrap_or_default()
    };
    let mut hidden = use_signal(Vec::<String>::new);
    let favourites = lock(&ctx).settings.favourites.clone();
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
    let csearch = ctx.clone();
    let cloc = ctx.clone();
    let cfav = ctx.clone();
    let ctap = ctx.clone();
    let set_tool = move |t: Tool| {
        let (mut tl, mut pts) = (sh.tool, sh.points);
        tl.set(t);
        pts.set(Vec::new());
        js_call("window.shikongMap && window.shikongMap.setSketch(null)".into());
    };
    // The tapped feature, read from the replica.
    let tapped_info: Option<TappedFeature> = (sh.tapped)().and_then(|(_, _, hits)| {
        let h = hits.first()?.clone();
        let d = lock(&ctap);
        let r = d.active_replica().ok()?;
        let layer = r.layer(&h.layer).ok()?.clone();
        let key = shikong_replica::FeatureKey::parse(&h.id);
        let f = r.get(&h.layer, &key).ok()??;
        let fields = layer
            .schema
            .fields
            .iter()
            .map(|fd| {
                (
                    fd.title.clone().unwrap_or(fd.name.clone()),
                    f.feature.properties.get(&fd.name).map(|v| v.to_text()).unwrap_or_default(),
                )
            })
            .collect();
        let link = shikong_protocol::enrolment::FeatureLink {
            server: d.session().map(|s| s.server.clone()).unwrap_or_default(),
            collection: h.layer.clone(),
            id: h.id.clone(),
        }
        .to_uri();
        let values = f
            .feature
            .properties
            .iter()
            .filter(|(_, v)| !matches!(v, shikong_model::Value::Attachments(_) | shikong_model::Value::Null))
            .map(|(k, v)| (k.clone(), v.to_text()))
            .collect();
        let fref = FeatureRef { layer: layer.clone(), id: h.id.clone(), values };
        Some((layer.display_name().to_owned(), f.feature.code.clone(), fields, link, fref))
    });
    let mut share = use_signal(|| None::<String>);
    let mut history = use_signal(|| None::<Vec<String>>);
    let mut editing = use_signal(|| false);
    let mut edit_form = use_signal(BTreeMap::<String, String>::new);
    let mut edit_problems = use_signal(BTreeMap::<String, String>::new);
    let (chist, cedit, cdel) = (ctx.clone(), ctx.clone(), ctx.clone());
    rsx! {
        div { class: "row",
            input { "data-testid": "search", placeholder: tr(l, "search"), value: "{q}", style: "flex: 1; padding: 8px;",
                oninput: move |e| {
                    let text = e.value();
                    q.set(text.clone());
                    let ctx = csearch.clone();
                    spawn(async move {
                        if text.trim().is_empty() { results.set(Vec::new()); return; }
                        match on_device(&ctx, move |d| d.search_offline(&text)).await {
                            Ok(s) => results.set(s),
                            Err(e) => fail(sh, e)
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
                    let ctx = cloc.clone();
                    spawn(async move {
                        match on_device(&ctx, |d| Ok(d.location.fix())).await {
                            Ok(Some(f)) => js_call(format!("window.shikongMap.setLocation({0}, {1}); window.shikongMap.flyTo({0}, {1}, 17, false)", f.lon, f.lat)),
                            Ok(None) => { let mut m = sh.message; m.set(Some(Err("暂无定位 / no position fix yet".into()))); }
                            Err(e) => fail(sh, e)
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
                    let ctx = cfav.clone();
                    let (lon, lat, _) = (sh.view)();
                    let name = format!("收藏 {lon:.5},{lat:.5}");
                    spawn(async move {
                        let r = on_device(&ctx, move |d| d.add_favourite(&name, lon, lat).map(|_| name)).await;
                        let mut m = sh.message;
                        m.set(Some(r));
                    });
                },
                {tr(l, "favourite")}
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
        if let Some((layer, code, fields, link, fref)) = tapped_info {
            div { class: "card", "data-testid": "feature-info",
                b { "{layer} · {code}" }
                for (k, v) in fields {
                    div { span { class: "muted", "{k}: " } "{v}" }
                }
                button { class: "act", "data-testid": "share",
                    onclick: move |_| share.set(crate::qr::svg(&link).ok()),
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
                            let f = fref.clone();
                            move |_| {
                                let ctx = chist.clone();
                                let f = f.clone();
                                spawn(async move {
                                    match on_device(&ctx, move |d| d.history(&f.layer.name, &f.id)).await {
                                        Ok(h) => history.set(Some(h)),
                                        Err(e) => fail(sh, e)
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
                            let f = fref.clone();
                            move |_| {
                                edit_form.set(f.values.clone());
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
                            let f = fref.clone();
                            move |_| {
                                let ctx = cdel.clone();
                                let f = f.clone();
                                spawn(async move {
                                    let r = on_device(&ctx, move |d| {
                                        let mut rep = d.active_replica()?;
                                        let key = shikong_replica::FeatureKey::parse(&f.id);
                                        d.delete_feature(&mut rep, &f.layer.name, &key)
                                    })
                                    .await;
                                    let mut m = sh.message;
                                    match r {
                                        Ok(_) => {
                                            m.set(Some(Ok("已删除，待同步 / deleted; waiting for sync".into())));
                                            let mut t = sh.tapped;
                                            t.set(None);
                                            let mut rev = sh.revision;
                                            rev += 1;
                                        }
                                        Err(e) => m.set(Some(Err(e))),
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
                        for f in fref.layer.schema.fields.iter().filter(|f| !f.retired).cloned() {
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
                                let f = fref.clone();
                                move |_| {
                                    let ctx = cedit.clone();
                                    let f = f.clone();
                                    let input = edit_form();
                                    if let Err(list) = Device::form_properties(&f.layer, &input) {
                                        edit_problems.set(list.iter().map(|p| (p.field.clone(), p.message.clone())).collect());
                                        return;
                                    }
                                    spawn(async move {
                                        let r = on_device(&ctx, move |d| {
                                            let mut rep = d.active_replica()?;
                                            let key = shikong_replica::FeatureKey::parse(&f.id);
                                            d.set_fields(&mut rep, &f.layer.name, &key, &input)
                                        })
                                        .await;
                                        let mut m = sh.message;
                                        match r {
                                            Ok(_) => {
                                                m.set(Some(Ok(tr(l, "saved").to_owned())));
                                                editing.set(false);
                                                let mut rev = sh.revision;
                                                rev += 1;
                                            }
                                            Err(e) => m.set(Some(Err(e))),
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

#[component]
fn CollectPanel() -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let layers: Vec<shikong_replica::ReplicaLayer> = lock(&ctx)
        .active_replica()
        .map(|r| r.layers().iter().filter(|x| !x.citizen_reports).cloned().collect())
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
    let Some(def) = layers.iter().find(|x| x.name == layer()).cloned() else {
        return rsx! { div { class: "muted", {tr(l, "no_replicas")} } };
    };
    let kind = def.geometry_kind;
    let points = (sh.points)();
    let cgps = ctx.clone();
    let cphoto = ctx.clone();
    let csave = ctx.clone();
    let def_save = def.clone();
    rsx! {
        label { class: "field", span { {tr(l, "layer")} }
            select { "data-testid": "collect-layer", value: "{layer}",
                onchange: move |e| { layer.set(e.value()); form.set(BTreeMap::new()); problems.set(BTreeMap::new()); },
                for x in layers.iter() { option { value: "{x.name}", "{x.display_name()}" } }
            }
        }
        div { class: "row",
            span { class: "muted", "data-testid": "vertices", "{kind.name()} · {points.len()} 点 / points" }
            button { class: "act", "data-testid": "gps-point",
                onclick: move |_| {
                    let ctx = cgps.clone();
                    spawn(async move {
                        match on_device(&ctx, |d| Ok(d.location.fix())).await {
                            Ok(Some(f)) => {
                                let mut p = sh.points;
                                if matches!(kind, GeometryKind::Point | GeometryKind::MultiPoint) { p.set(vec![(f.lon, f.lat)]); } else { p.write().push((f.lon, f.lat)); }
                                js_call(format!("window.shikongMap.setSketch({}); window.shikongMap.flyTo({}, {}, 17, false)", geojson_sketch(&p(), true), f.lon, f.lat));
                            }
                            _ => { let mut m = sh.message; m.set(Some(Err("暂无定位 / no position fix yet".into()))); }
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
                    let ctx = cphoto.clone();
                    spawn(async move {
                        match on_device(&ctx, |d| d.take_photo()).await {
                            Ok(p) => photos.write().push(p),
                            Err(e) => fail(sh, e)
                        }
                    });
                },
                {tr(l, "photo")}
            }
            button { class: "primary", "data-testid": "save",
                onclick: move |_| {
                    let ctx = csave.clone();
                    let def = def_save.clone();
                    let pts = (sh.points)();
                    let input = form();
                    let ph = photos();
                    spawn(async move {
                        let mut m = sh.message;
                        let geom = match Device::sketch_geometry(def.geometry_kind, &pts) {
                            Ok(g) => g,
                            Err(e) => { m.set(Some(Err(e.to_string()))); return; }
                        };
                        if let Err(list) = Device::form_properties(&def, &input) {
                            problems.set(list.iter().map(|p| (p.field.clone(), p.message.clone())).collect());
                            m.set(Some(Err(Error::Form(list).to_string())));
                            return;
                        }
                        let name = def.name.clone();
                        let r = on_device(&ctx, move |d| {
                            let mut rep = d.active_replica()?;
                            let id = d.collect(&mut rep, &name, geom, &input, &ph)?;
                            Ok((id, rep.pending()?))
                        }).await;
                        match r {
                            Ok((id, pending)) => {
                                m.set(Some(Ok(format!("{} ({id}) · {} {pending}", tr(l, "saved"), tr(l, "pending")))));
                                form.set(BTreeMap::new());
                                photos.set(Vec::new());
                                problems.set(BTreeMap::new());
                                let mut p = sh.points;
                                p.set(Vec::new());
                                js_call("window.shikongMap.setSketch(null)".into());
                                let mut rev = sh.revision;
                                rev += 1;
                            }
                            Err(e) => m.set(Some(Err(e))),
                        }
                    });
                },
                {tr(l, "save")}
            }
        }
    }
}

#[component]
fn FormField(
    field: shikong_model::FieldDef,
    value: String,
    problem: Option<String>,
    form: Signal<BTreeMap<String, String>>,
    lang: Lang,
) -> Element {
    let ctx = use_context::<AppContext>();
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
                                let ctx = ctx.clone();
                                let n = n2.clone();
                                spawn(async move {
                                    match on_device(&ctx, |d| crate::qr::decode(&d.camera.capture()?.bytes)).await {
                                        Ok(text) => { form.write().insert(n, text); }
                                        Err(e) => fail(sh, e)
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

#[component]
fn AreasPanel() -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let mut list = use_signal(|| lock(&ctx).replicas().unwrap_or_default());
    let mut server_layers = use_signal(Vec::<shikong_sync_client::LayerEntry>::new);
    let mut chosen_layers = use_signal(Vec::<String>::new);
    let mut q = use_signal(String::new);
    let mut places = use_signal(Vec::<shikong_sync_client::Place>::new);
    let mut area = use_signal(|| None::<AreaChoice>);
    let mut estimate = use_signal(|| None::<String>);
    let mut step = use_signal(|| None::<DownloadStep>);
    let cl = ctx.clone();
    use_hook(move || {
        let ctx = cl.clone();
        spawn(async move {
            if let Ok(v) = on_device(&ctx, |d| d.server_layers()).await {
                chosen_layers.set(v.iter().filter(|x| !x.citizen_reports).map(|x| x.name.clone()).take(2).collect());
                server_layers.set(v);
            }
        });
    });
    let csearch = ctx.clone();
    let cest = ctx.clone();
    let cdl = ctx.clone();
    rsx! {
        h3 { {tr(l, "tab_areas")} }
        if list().is_empty() { div { class: "muted", {tr(l, "no_replicas")} } }
        for s in list() {
            ReplicaCard { summary: s.clone(), active: (sh.active)().as_deref() == Some(s.id.as_str()), list, lang: l }
        }
        h3 { {tr(l, "download")} }
        input { "data-testid": "area-search", placeholder: tr(l, "area_search"), value: "{q}", style: "width: 100%; padding: 8px",
            oninput: move |e| {
                let text = e.value();
                q.set(text.clone());
                let ctx = csearch.clone();
                spawn(async move {
                    if text.trim().is_empty() { places.set(Vec::new()); return; }
                    match on_device(&ctx, move |d| d.search_divisions(&text)).await {
                        Ok(p) => places.set(p),
                        Err(e) => fail(sh, e)
                    }
                });
            }
        }
        if !places().is_empty() {
            div { class: "suggest", "data-testid": "area-suggestions",
                for p in places() {
                    div { onclick: { let p = p.clone(); move |_| {
                            area.set(Some(AreaChoice::Division { code: p.code.clone().unwrap_or_default(), name: p.name.clone(), centre: p.lon.zip(p.lat) }));
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
                // Half the visible span at this zoom on a ~400 px wide phone screen.
                let half = 360.0 / 2f64.powf(zoom) * 400.0 / 256.0 / 2.0;
                area.set(Some(AreaChoice::Rect { min_lon: lon - half, min_lat: lat - half * 0.8, max_lon: lon + half, max_lat: lat + half * 0.8 }));
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
                    let ctx = cest.clone();
                    let (layers, a) = (chosen_layers(), area());
                    spawn(async move {
                        let Some(a) = a else { return };
                        match on_device(&ctx, move |d| d.estimate(&layers, &a)).await {
                            Ok(e) => {
                                let n: u64 = e.layers.iter().map(|x| x.1).sum();
                                estimate.set(Some(format!("{n} {} · ≈ {:.1} MB", tr(l, "features"), e.bytes as f64 / 1_048_576.0)));
                            }
                            Err(e) => fail(sh, e)
                        }
                    });
                },
                {tr(l, "estimate")}
            }
            button { class: "primary", "data-testid": "download", disabled: area().is_none() || step().is_some_and(|s| s != DownloadStep::Done),
                onclick: move |_| {
                    let ctx = cdl.clone();
                    let (layers, a) = (chosen_layers(), area());
                    spawn(async move {
                        let Some(a) = a else { return };
                        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                        let name = match &a { AreaChoice::Division { name, .. } => name.clone(), AreaChoice::Rect { .. } => "地图范围".to_owned() };
                        let job = on_device(&ctx, move |d| d.download(&name, &layers, &a, &mut |s| { let _ = tx.send(s); }));
                        let watch = async { while let Some(s) = rx.recv().await { step.set(Some(s)); } };
                        let (r, _) = tokio::join!(job, watch);
                        let mut m = sh.message;
                        match r {
                            Ok(s) => {
                                m.set(Some(Ok(format!("{} · {} {}", s.name, s.layers.iter().map(|x| x.2).sum::<u64>(), tr(l, "features")))));
                                list.set(lock(&ctx).replicas().unwrap_or_default());
                                let mut act = sh.active;
                                if act().is_none() { act.set(Some(s.id)); }
                            }
                            Err(e) => m.set(Some(Err(e))),
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

#[component]
fn ReplicaCard(summary: ReplicaSummary, active: bool, list: Signal<Vec<ReplicaSummary>>, lang: Lang) -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = lang;
    let s = summary;
    let features: u64 = s.layers.iter().map(|x| x.2).sum();
    let layers = s.layers.iter().map(|x| format!("{} {}", x.1, x.2)).collect::<Vec<_>>().join(" · ");
    let basemap =
        s.basemap_bytes.map(|b| format!("{} {:.1} MB", tr(l, "basemap"), b as f64 / 1_048_576.0)).unwrap_or_default();
    let (id1, id2, id3) = (s.id.clone(), s.id.clone(), s.id.clone());
    let (c1, c2, c3) = (ctx.clone(), ctx.clone(), ctx.clone());
    rsx! {
        div { class: "card", "data-testid": "replica-{s.id}",
            b { "{s.name}" } if active { span { class: "muted", " ✓" } }
            div { class: "muted", "{features} {tr(l, \"features\")} · {s.bytes as f64 / 1_048_576.0:.1} MB {basemap}" }
            div { class: "muted", "{layers}" }
            div { class: "muted", "{tr(l, \"pending\")} {s.pending} · {tr(l, \"conflicts\")} {s.conflicts}" }
            div { class: "row",
                button { class: "act", "data-testid": "open-{s.id}", onclick: move |_| {
                    let ctx = c1.clone(); let id = id1.clone();
                    spawn(async move {
                        let i2 = id.clone();
                        if on_device(&ctx, move |d| d.set_active(&i2)).await.is_ok() { let mut a = sh.active; a.set(Some(id)); }
                    });
                }, {tr(l, "open")} }
                button { class: "act", "data-testid": "update-{s.id}", onclick: move |_| {
                    let ctx = c2.clone(); let id = id2.clone();
                    spawn(async move {
                        let dev = lock(&ctx).clone();
                        let r = tokio::task::spawn_blocking(move || dev.sync(&id, &mut |_| {})).await;
                        let mut m = sh.message;
                        m.set(Some(match r { Ok(Ok(rep)) => Ok(format!("{} {} · {} {}", tr(l, "pushed"), rep.pushed_entities, tr(l, "pulled"), rep.pulled_entities)), Ok(Err(e)) => Err(e.to_string()), Err(e) => Err(e.to_string()) }));
                        list.set(lock(&ctx).replicas().unwrap_or_default());
                        let mut rev = sh.revision; rev += 1;
                    });
                }, {tr(l, "update")} }
                button { class: "act", "data-testid": "delete-{s.id}", onclick: move |_| {
                    let ctx = c3.clone(); let id = id3.clone();
                    spawn(async move {
                        let r = on_device(&ctx, move |d| d.delete_replica(&id, false)).await;
                        let mut m = sh.message;
                        match r { Ok(()) => { list.set(lock(&ctx).replicas().unwrap_or_default()); m.set(Some(Ok("已删除 / deleted".into()))); } Err(e) => m.set(Some(Err(e))) }
                    });
                }, {tr(l, "delete")} }
            }
        }
    }
}

#[component]
fn SyncPanel() -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let active = (sh.active)();
    let summary = active.as_ref().and_then(|id| lock(&ctx).summary(id).ok());
    let mut conflicts = use_signal(|| {
        let d = lock(&ctx);
        d.active_replica().and_then(|r| Ok(r.conflicts()?)).unwrap_or_default()
    });
    let attachments = {
        let d = lock(&ctx);
        d.active_replica().and_then(|r| Ok(r.attachments()?)).unwrap_or_default()
    };
    let mut progress = use_signal(|| None::<String>);
    let mut running = use_signal(|| false);
    let mut tick = use_signal(|| 0u32);
    let _ = tick();
    let csync = ctx.clone();
    let Some(s) = summary else {
        return rsx! { div { class: "muted", {tr(l, "no_replicas")} } };
    };
    rsx! {
        div { class: "card", "data-testid": "sync-status",
            b { "{s.name}" }
            div { "{tr(l, \"pending\")}: {s.pending} · 📷 {s.unconfirmed_photos} · {tr(l, \"conflicts\")}: {s.conflicts}" }
        }
        button { class: "primary", "data-testid": "sync-now", disabled: running(),
            onclick: move |_| {
                let ctx = csync.clone();
                let id = s.id.clone();
                spawn(async move {
                    running.set(true);
                    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Progress>();
                    let dev = lock(&ctx).clone();
                    let job = tokio::task::spawn_blocking(move || dev.sync(&id, &mut |p| { let _ = tx.send(p); }));
                    let watch = async {
                        while let Some(p) = rx.recv().await {
                            progress.set(Some(match p {
                                Progress::Uploading { done, total } => format!("📷 {done}/{total}"),
                                Progress::Pushing { batches } => format!("↑ {batches}"),
                                Progress::Pulling { pages, entities } => format!("↓ {pages} · {entities}"),
                                Progress::Verifying => "✓ 核对".to_owned(),
                            }));
                        }
                    };
                    let (r, _) = tokio::join!(job, watch);
                    let mut m = sh.message;
                    match r {
                        Ok(Ok(rep)) => {
                            let mut text = format!("{} {} ({} ✓) · {} {} · {} {} · 📷 {}",
                                tr(l, "pushed"), rep.pushed_entities, rep.accepted, tr(l, "pulled"), rep.pulled_entities,
                                tr(l, "conflicts"), rep.conflicts, rep.attachments_uploaded);
                            for (layer, id, why) in &rep.rejected { text.push_str(&format!(" · ✗ {layer}/{id}: {why}")); }
                            if rep.repaired > 0 { text.push_str(&format!(" · {} {}", tr(l, "repaired"), rep.repaired)); }
                            m.set(Some(Ok(text)));
                        }
                        Ok(Err(e)) => m.set(Some(Err(e.to_string()))),
                        Err(e) => m.set(Some(Err(e.to_string()))),
                    }
                    conflicts.set(lock(&ctx).active_replica().and_then(|r| Ok(r.conflicts()?)).unwrap_or_default());
                    running.set(false);
                    progress.set(None);
                    let mut rev = sh.revision; rev += 1;
                    tick += 1;
                });
            },
            {tr(l, "sync_now")}
        }
        if let Some(p) = progress() { div { class: "muted", "data-testid": "sync-progress", "{p}" } }
        h4 { "📷 {attachments.len()}" }
        for a in attachments.iter() {
            div { class: "muted", "data-testid": "attachment",
                "{a.sha256.get(..12).unwrap_or_default()}… {a.size / 1024} KB · "
                if a.confirmed { {tr(l, "confirmed")} } else { {tr(l, "unconfirmed")} }
            }
        }
        h4 { {tr(l, "conflicts")} }
        if conflicts().is_empty() { div { class: "muted", "data-testid": "no-conflicts", {tr(l, "no_conflicts")} } }
        for c in conflicts() {
            ConflictCard { conflict: c.clone(), conflicts, lang: l }
        }
    }
}

#[component]
fn ConflictCard(
    conflict: shikong_protocol::Conflict,
    conflicts: Signal<Vec<shikong_protocol::Conflict>>,
    lang: Lang,
) -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let c = conflict;
    let l = lang;
    let other = c.others.first().map(|o| o.value.clone()).unwrap_or(Json::Null);
    let (ca, cb) = (ctx.clone(), ctx.clone());
    let (k1, k2) = (c.clone(), c.clone());
    let resolve = move |ctx: AppContext, c: shikong_protocol::Conflict, take: Option<Json>| {
        spawn(async move {
            let r = on_device(&ctx, move |d| {
                let mut rep = d.active_replica()?;
                d.resolve(&mut rep, &c, take.as_ref())?;
                Ok(rep.conflicts()?)
            })
            .await;
            let mut m = sh.message;
            match r {
                Ok(list) => {
                    conflicts.set(list);
                    m.set(Some(Ok("已解决，待同步 / resolved; sync to share".into())));
                }
                Err(e) => m.set(Some(Err(e))),
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
                button { class: "act", "data-testid": "keep-mine", onclick: move |_| resolve(ca.clone(), k1.clone(), None), {tr(l, "keep_mine")} }
                button { class: "act", "data-testid": "take-theirs", onclick: move |_| resolve(cb.clone(), k2.clone(), Some(other.clone())), {tr(l, "take_theirs")} }
                span { class: "muted", {tr(l, "leave_office")} }
            }
        }
    }
}

#[component]
fn MePanel(signed_in: Signal<bool>) -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let (session, settings, loc, cam) = {
        let d = lock(&ctx);
        (d.session().cloned(), d.settings.clone(), d.location.describe(), d.camera.describe())
    };
    let mut watermark = use_signal(|| settings.watermark);
    let mut auto = use_signal(|| settings.auto_sync);
    let (c1, c2, c3, c4) = (ctx.clone(), ctx.clone(), ctx.clone(), ctx.clone());
    rsx! {
        if let Some(s) = session {
            div { class: "card", "data-testid": "me",
                b { "{s.username}" } " · {s.role}"
                div { class: "muted", "{s.server}" }
                div { class: "muted", "有效期至 / expires {s.expires_at}" }
            }
        }
        label { class: "row", input { r#type: "checkbox", checked: watermark(), onchange: move |e: Event<FormData>| {
            let on = e.checked(); watermark.set(on);
            let mut d = lock(&c1); d.settings.watermark = on; let _ = d.save();
        } } {tr(l, "watermark")} }
        label { class: "row", input { r#type: "checkbox", checked: auto(), onchange: move |e: Event<FormData>| {
            let on = e.checked(); auto.set(on);
            let mut d = lock(&c2); d.settings.auto_sync = on; let _ = d.save();
        } } {tr(l, "auto_sync")} }
        div { class: "muted", "{tr(l, \"location_source\")}: {loc}" }
        div { class: "muted", "{tr(l, \"camera_source\")}: {cam}" }
        div { class: "row",
            button { class: "act", "data-testid": "lang", onclick: move |_| {
                let mut lg = sh.lang; let next = lg().other(); lg.set(next);
                let mut d = lock(&c3); d.settings.lang = next; let _ = d.save();
            }, {tr(l, "language")} }
            button { class: "act", "data-testid": "logout", onclick: move |_| {
                let _ = lock(&c4).logout(); signed_in.set(false);
            }, {tr(l, "logout")} }
        }
    }
}

#[component]
fn ReportPanel() -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let mut forms = use_signal(Vec::<shikong_sync_client::ReportLayer>::new);
    let mut category = use_signal(String::new);
    let mut description = use_signal(String::new);
    let mut address = use_signal(String::new);
    let mut photo = use_signal(|| None::<EvidencePhoto>);
    let mut queue = use_signal(|| lock(&ctx).queued_reports().unwrap_or_default());
    use_hook(move || {
        let (mut t, mut p) = (sh.tool, sh.points);
        t.set(Tool::PlaceReport);
        p.set(Vec::new());
    });
    use_drop(move || {
        let mut t = sh.tool;
        t.set(Tool::Browse);
    });
    let cf = ctx.clone();
    use_hook(move || {
        let ctx = cf.clone();
        spawn(async move {
            if let Ok(f) = on_device(&ctx, |d| d.report_layers()).await {
                forms.set(f);
            }
        });
    });
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
    let (cgps, cphoto, csend) = (ctx.clone(), ctx.clone(), ctx.clone());
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
                let ctx = cgps.clone();
                spawn(async move {
                    if let Ok(Some(f)) = on_device(&ctx, |d| Ok(d.location.fix())).await {
                        let mut p = sh.points; p.set(vec![(f.lon, f.lat)]);
                        js_call(format!("window.shikongMap.setSketch({}); window.shikongMap.flyTo({}, {}, 17, false)", geojson_sketch(&[(f.lon, f.lat)], false), f.lon, f.lat));
                    }
                });
            }, {tr(l, "geometry_gps")} }
            button { class: "act", "data-testid": "report-photo", onclick: move |_| {
                let ctx = cphoto.clone();
                spawn(async move {
                    match on_device(&ctx, |d| d.take_photo()).await { Ok(p) => photo.set(Some(p)), Err(e) => fail(sh, e) }
                });
            }, {tr(l, "photo")} }
        }
        if let Some(p) = photo() { div { class: "muted", "📷 {p.photo.name} · SHA256 {p.sha256.get(..12).unwrap_or_default()}…" } }
        button { class: "primary", "data-testid": "report-submit", disabled: layer.is_none(), onclick: move |_| {
            let ctx = csend.clone();
            let Some(layer) = layer.clone() else { return };
            let (c, d, a, ph) = (category(), description(), address(), photo());
            let at = (sh.points)().first().copied();
            spawn(async move {
                let mut m = sh.message;
                let Some(at) = at else { m.set(Some(Err("位置必填 / the location is required".into()))); return; };
                let r = on_device(&ctx, move |dev| {
                    dev.queue_report(&layer.name, &c, &d, &a, at, ph.as_ref())?;
                    // Sent now when online; otherwise kept and sent by the next attempt.
                    let sent = if dev.online() { dev.send_reports().unwrap_or(0) } else { 0 };
                    Ok((sent, dev.queued_reports()?))
                }).await;
                match r {
                    Ok((sent, q)) => {
                        m.set(Some(Ok(if sent > 0 { format!("已提交 / submitted ({sent})") } else { tr(l, "queued").to_owned() })));
                        queue.set(q); category.set(String::new()); description.set(String::new()); photo.set(None);
                    }
                    Err(e) => m.set(Some(Err(e))),
                }
            });
        }, {tr(l, "submit")} }
        div { class: "muted", "data-testid": "report-queue",
            "待提交 / queued: {queue().iter().filter(|r| r.server_id.is_none()).count()} · 已提交 / sent: {queue().iter().filter(|r| r.server_id.is_some()).count()}" }
    }
}

#[component]
fn MyReportsPanel() -> Element {
    let ctx = use_context::<AppContext>();
    let sh = use_context::<Shared>();
    let l = (sh.lang)();
    let mut reports = use_signal(Vec::<Json>::new);
    let c = ctx.clone();
    use_hook(move || {
        let ctx = c.clone();
        spawn(async move {
            let r = on_device(&ctx, |d| {
                if d.online() {
                    let _ = d.send_reports();
                }
                d.my_reports()
            })
            .await;
            match r {
                Ok(v) => reports.set(v),
                Err(e) => fail(sh, e),
            }
        });
    });
    rsx! {
        h3 { {tr(l, "tab_my_reports")} }
        for r in reports() {
            div { class: "card", "data-testid": "my-report",
                b { "data-testid": "report-status", {r.pointer("/properties/status/label").map(json_text).filter(|s| !s.is_empty()).unwrap_or_else(|| "待受理 / received".into())} }
                div { {r.pointer("/properties/fields/描述").map(json_text).unwrap_or_default()} }
                div { class: "muted", "{r.pointer(\"/properties/created_at\").map(json_text).unwrap_or_default()} · v{r.pointer(\"/properties/versions\").map(json_text).unwrap_or_default()}" }
            }
        }
    }
}

fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}
