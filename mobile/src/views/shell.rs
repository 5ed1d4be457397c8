//! The signed-in app's frame: header with the network state, the map (mounted once, resized per
//! tab, rebuilt only when another area is opened), the current tab's panel, the tab bar of the
//! user's role, and the automatic sync every 10 s. Also the bridge to MapLibre: its events
//! (`tap`, `view`, `ready`, `task`: a task marker tapped) and the JavaScript calls that draw
//! sketches, the open area's task markers (the core's [`tasks_geojson`]) and move the map.

use dioxus::prelude::*;
use serde::Deserialize;
use serde_json::Value as Json;
use shikong_app_core::i18n::tr;
use shikong_app_core::{AppState, tasks_geojson};

use super::areas::AreasPanel;
use super::collect::CollectPanel;
use super::map::MapPanel;
use super::me::MePanel;
use super::reports::{MyReportsPanel, ReportPanel};
use super::sync::SyncPanel;
use super::tasks::TasksPanel;
use super::{AppContext, Core, MessageLine, Screen, Shared, Tool};

/// What the map reports (`dioxus.send` in `mobile-map.js`).
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub(super) enum MapEvent {
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
    /// A task marker was tapped: its case id, and where.
    Task {
        id: String,
        lon: f64,
        lat: f64,
    },
}

/// A feature under a tap, as the map reports it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub(super) struct TapHit {
    pub layer: String,
    pub id: String,
    pub code: String,
}

/// Runs JavaScript in the page (the map's API); fire and forget.
pub(super) fn js_call(js: String) {
    let _ = document::eval(&js);
}

/// Tapped points as GeoJSON for the map's sketch layer: the points, and the line or polygon
/// through them.
pub(super) fn geojson_sketch(points: &[(f64, f64)], closed: bool) -> String {
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

/// The files the map shows for area `id`, as the core's state lists them.
fn area_files(state: &AppState, id: &str) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    state.areas.iter().find(|a| a.id == id).map(|a| (a.path.clone(), a.basemap_path.clone()))
}

#[component]
pub(super) fn Main(citizen: bool) -> Element {
    let ctx = use_context::<AppContext>();
    let core = use_context::<Core>();
    let start = if citizen { Screen::Report } else { ctx.start };
    let active0 = core.state.peek().settings.active.clone();
    let sh = Shared::use_new(core, start, active0);
    use_context_provider(|| sh);
    let l = (sh.lang)();
    let screen = (sh.screen)();
    let map_height = match screen {
        Screen::Map => "62vh",
        Screen::Collect | Screen::Report => "34vh",
        _ => "0px",
    };
    // The open area follows the core (opened, downloaded first, deleted).
    use_effect(move || {
        let now = sh.core.state.read().settings.active.clone();
        if *sh.active.peek() != now {
            let mut a = sh.active;
            a.set(now);
        }
    });
    // The map: created once per open area; events come back through `dioxus.send`.
    let map = ctx.map.clone();
    use_effect(move || {
        let active = (sh.active)();
        let files = active.as_deref().and_then(|id| area_files(&sh.core.state.peek(), id));
        let map = map.clone();
        spawn(async move {
            let (rp, bp) = files.unzip();
            let sources = map.sources.clone();
            let shown = tokio::task::spawn_blocking(move || sources.show_area(rp.as_deref(), bp.as_deref())).await;
            let ext = match shown {
                Ok(Ok(e)) => e,
                Ok(Err(e)) => {
                    sh.fail(&e);
                    None
                }
                Err(_) => None,
            };
            let (lon, lat, zoom) = match ext {
                Some(b) => ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0, 15.0),
                None => (114.35, 30.52, 12.0),
            };
            let base = map.base();
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
    // The open area's tasks as markers (from the replica, offline), redrawn when the list changes
    // and once the map is ready (the map keeps them when it is re-created for another area).
    let task_features = use_memo(move || {
        let state = sh.core.state.read();
        tasks_geojson(state.active.as_ref().map(|a| a.tasks.as_slice()).unwrap_or_default())
    });
    use_effect(move || {
        let fc = task_features();
        let _ready = (sh.map_ms)();
        js_call(format!("window.shikongMap && window.shikongMap.setTasks({fc})"));
    });
    // Measuring or sketching: taps on a task marker are vertices, not the task.
    use_effect(move || {
        let browse = (sh.tool)() == Tool::Browse;
        let _ready = (sh.map_ms)();
        js_call(format!("window.shikongMap && window.shikongMap.tasksTappable({browse})"));
    });
    // Reload replica tiles after edits and syncs.
    use_effect(move || {
        let rev = (sh.revision)();
        if rev > 0 {
            js_call(format!("window.shikongMap && window.shikongMap.reload({rev})"));
        }
    });
    // Network state every 10 s; automatic sync when online with local changes waiting.
    use_future(move || async move {
        loop {
            if let Ok(a) = sh.core.run_detached(|d| Ok(d.auto_sync())).await {
                let mut o = sh.online;
                o.set(a.online);
                if let Some(Ok(_)) = a.synced {
                    sh.replica_changed();
                }
            }
            tokio::time::sleep(std::time::Duration::from_secs(10)).await;
        }
    });
    let tabs: Vec<(Screen, &'static str)> = if citizen {
        vec![(Screen::Report, "tab_report"), (Screen::MyReports, "tab_my_reports"), (Screen::Me, "tab_me")]
    } else {
        vec![
            (Screen::Map, "tab_map"),
            (Screen::Tasks, "tab_tasks"),
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
                    Screen::Me => rsx! { MePanel {} },
                    Screen::Report => rsx! { ReportPanel {} },
                    Screen::MyReports => rsx! { MyReportsPanel {} },
                    Screen::Tasks => rsx! { TasksPanel {} },
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
                            let (mut m, mut t) = (sh.message, sh.open_task);
                            m.set(None);
                            t.set(None);
                        },
                        {tr(l, key)}
                    }
                }
            }
        }
    }
}

pub(super) fn handle_map_event(sh: Shared, e: MapEvent) {
    let (mut points, mut tapped, mut view, mut map_ms) = (sh.points, sh.tapped, sh.view, sh.map_ms);
    match e {
        MapEvent::Ready { ms } => map_ms.set(Some(ms)),
        // Browsing: the task's page. Measuring or sketching (the marker tapped before the map
        // heard of the tool): a vertex there, like any tap.
        MapEvent::Task { id, lon, lat } => {
            if (sh.tool)() == Tool::Browse {
                let (mut open, mut screen, mut message) = (sh.open_task, sh.screen, sh.message);
                open.set(Some(id));
                screen.set(Screen::Tasks);
                message.set(None);
            } else {
                handle_map_event(sh, MapEvent::Tap { lon, lat, features: Vec::new() });
            }
        }
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
