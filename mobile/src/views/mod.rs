//! The app's screens (Dioxus): views over the app core (`shikong-app-core`). A view renders the
//! core's [`AppState`] and sends intents — methods of [`Device`] — which [`Core::run`] executes
//! on a blocking thread, off the render path, before publishing the core's new state; no view
//! opens a file, a replica or a connection. The map is MapLibre in the page, driven through
//! `window.shikongMap` and fed by the loopback [`MapServer`].
//!
//! The map element is mounted once and stays mounted across tabs (it is resized, not rebuilt), so
//! switching tabs never reloads tiles. Each screen shows one message line for the outcome of the
//! last action (`data-testid="message"`): what happened, or the precise error in the user's
//! language ([`error_text`]).
//!
//! One file per screen: [`login`], [`shell`] (header, map, tabs, automatic sync), [`map`],
//! [`collect`], [`areas`], [`sync`], [`me`], [`reports`], [`tasks`]; [`style`] holds the CSS.

mod areas;
mod collect;
mod login;
mod map;
mod me;
mod reports;
mod shell;
mod style;
mod sync;
mod tasks;
#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};

use dioxus::prelude::*;
use shikong_app_core::i18n::{Lang, error_text};
use shikong_app_core::{AppError, AppState, Device};

use crate::mapserver::MapServer;
use login::Login;
use shell::Main;

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
    /// The inspector's field tasks.
    Tasks,
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

/// The message line: `Ok` or `Err` text of the last action.
type Message = Option<Result<String, String>>;

fn lock(device: &Mutex<Device>) -> std::sync::MutexGuard<'_, Device> {
    device.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The views' handle on the core, `Copy` so every event handler can hold one: the device, the
/// core's state as last published, the language.
#[derive(Clone, Copy)]
struct Core {
    device: CopyValue<Arc<Mutex<Device>>>,
    /// Rendered by every screen; replaced after every intent.
    state: Signal<AppState>,
    lang: Signal<Lang>,
}

impl Core {
    /// Runs an intent on the device on a blocking thread (holding it: one action at a time),
    /// then publishes the core's state.
    async fn run<T: Send + 'static>(
        self,
        f: impl FnOnce(&mut Device) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let device = Arc::clone(&self.device.peek());
        let done = tokio::task::spawn_blocking(move || {
            let mut d = lock(&device);
            let r = f(&mut d);
            (r, d.state())
        })
        .await;
        self.publish(done)
    }

    /// Runs a long intent (a sync) on a copy of the device, so other actions need not wait for
    /// it; the copy shares the core's state, which is published afterwards.
    async fn run_detached<T: Send + 'static>(
        self,
        f: impl FnOnce(&Device) -> Result<T, AppError> + Send + 'static,
    ) -> Result<T, AppError> {
        let device = Arc::clone(&self.device.peek());
        let done = tokio::task::spawn_blocking(move || {
            let copy = lock(&device).clone();
            let r = f(&copy);
            (r, lock(&device).state())
        })
        .await;
        self.publish(done)
    }

    fn publish<T>(self, done: Result<(Result<T, AppError>, AppState), tokio::task::JoinError>) -> Result<T, AppError> {
        match done {
            Ok((r, state)) => {
                // Unchanged (the automatic sync's check, mostly): nothing re-renders.
                if *self.state.peek() != state {
                    let mut s = self.state;
                    s.set(state);
                }
                r
            }
            Err(e) => Err(AppError::Interrupted(e.to_string())),
        }
    }

    /// An error in the user's language.
    fn text(self, e: &AppError) -> String {
        error_text(*self.lang.peek(), e)
    }
}

/// State shared by the tabs of a signed-in user.
#[derive(Clone, Copy)]
struct Shared {
    core: Core,
    lang: Signal<Lang>,
    screen: Signal<Screen>,
    tool: Signal<Tool>,
    points: Signal<Vec<(f64, f64)>>,
    /// Bumped after every change to the replica: the map reloads its replica tiles.
    revision: Signal<u64>,
    /// Map centre and zoom, from the map's `view` events.
    view: Signal<(f64, f64, f64)>,
    tapped: Signal<Option<(f64, f64, Vec<shell::TapHit>)>>,
    message: Signal<Message>,
    online: Signal<bool>,
    map_ms: Signal<Option<f64>>,
    /// The open area's id, following the core's settings (the map is rebuilt when it changes).
    active: Signal<Option<String>>,
    /// The task whose page the 任务 tab shows (a tapped task marker opens it too); `None`: the list.
    open_task: Signal<Option<String>>,
}

impl Shared {
    /// The tabs' state over `core`, opening on `screen` with area `active` (a hook: called once
    /// per component, in the same place at every render).
    fn use_new(core: Core, screen: Screen, active: Option<String>) -> Shared {
        Shared {
            core,
            lang: core.lang,
            screen: use_signal(|| screen),
            tool: use_signal(|| Tool::Browse),
            points: use_signal(Vec::new),
            revision: use_signal(|| 0),
            view: use_signal(|| (114.35, 30.52, 13.0)),
            tapped: use_signal(|| None),
            message: use_signal(|| None),
            online: use_signal(|| false),
            map_ms: use_signal(|| None),
            active: use_signal(|| active),
            open_task: use_signal(|| None),
        }
    }

    /// Shows an action's success on the message line.
    fn ok(self, text: impl Into<String>) {
        let mut m = self.message;
        m.set(Some(Ok(text.into())));
    }

    /// Shows an action's error on the message line.
    fn fail(self, e: &AppError) {
        let mut m = self.message;
        m.set(Some(Err(self.core.text(e))));
    }

    /// The replica changed: the map reloads its tiles.
    fn replica_changed(self) {
        let mut rev = self.revision;
        rev += 1;
    }
}

/// The app's root: sign-in when there is no session, else the tabs of the user's role.
#[component]
pub fn App() -> Element {
    let ctx = use_context::<AppContext>();
    let core = use_hook(|| {
        let d = lock(&ctx.device);
        Core { device: CopyValue::new(ctx.device.clone()), state: Signal::new(d.state()), lang: Signal::new(d.lang()) }
    });
    use_context_provider(|| core);
    let session = core.state.read().settings.session.clone();
    let citizen = session.as_ref().is_some_and(|s| s.is_citizen());
    rsx! {
        style { {style::CSS} }
        if session.is_some() {
            Main { citizen }
        } else {
            Login {}
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
