//! The live channel (`GET /events`, Server-Sent Events): new tasks for an inspector, a report's
//! progress for its citizen, overdue alerts for supervisors, and feature changes for open maps.
//! One authenticated channel that later engines publish into through [`EventBus::publish`].
//!
//! It only hastens what sync and the REST reads deliver anyway, so it is allowed to drop: a slow
//! receiver gets `lagged` (re-read what you show), a stream ends after [`EventLimits::max_age`]
//! with `closing` (reconnect). Everything is bounded: streams per user and in total, the bus's
//! backlog, each stream's age. Permissions are re-checked where the data is served: every
//! [`EventLimits::recheck`] the stream verifies its token again and reloads the account (a revoked
//! token or a disabled account ends it), and which layers it may read is recomputed, so a demoted
//! user stops hearing about a layer within that period.
//!
//! Feature changes come from a poller on the store's journal rather than from each write path, so
//! every writer counts — the OGC API, devices' pushes, and `shikong import` run by another process.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, http::StatusCode};
use shikong_auth::{Action, LayerAccess, Principal};
use shikong_protocol::api::LiveEvent;
use shikong_store::{ChangeCursor, Store, TxId};
use tokio::sync::broadcast;

use crate::access::Caller;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, access};

/// Bounds of the live channel.
#[derive(Debug, Clone)]
pub struct EventLimits {
    /// Streams one user may hold open at once (a phone and a desktop, with room for a reload).
    pub per_user: usize,
    /// Streams open on the server.
    pub total: usize,
    /// Messages kept for slow receivers before they get `lagged`.
    pub backlog: usize,
    /// A stream's longest life; it then says `closing` and the client reconnects.
    pub max_age: Duration,
    /// How often a stream re-verifies its token and the caller's rights.
    pub recheck: Duration,
    /// How often the journal is polled for feature changes.
    pub poll: Duration,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits {
            per_user: 4,
            total: 2_000,
            backlog: 1_024,
            max_age: Duration::from_secs(3600),
            recheck: Duration::from_secs(30),
            poll: Duration::from_millis(250),
        }
    }
}

/// Who a message is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// Whoever may read this layer now.
    Layer(String),
    /// One account.
    User(String),
    /// Members of a department (an account group).
    Department(String),
    /// Holders of a role: the account's role, or a group of that name (e.g. `supervisor`).
    Role(String),
}

#[derive(Debug)]
struct Envelope {
    id: u64,
    audience: Audience,
    event: LiveEvent,
}

/// The server's message bus; cheap to publish into from any thread.
#[derive(Debug)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Envelope>>,
    seq: AtomicU64,
    open: Mutex<HashMap<String, usize>>,
    limits: EventLimits,
    stopped: AtomicBool,
}

/// A stream's place in the per-user and total counts, given back on drop.
#[derive(Debug)]
struct Slot {
    bus: Arc<EventBus>,
    user: String,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.bus.open.lock()
            && let Some(n) = open.get_mut(&self.user)
        {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.user);
            }
        }
    }
}

impl EventBus {
    pub fn new(limits: EventLimits) -> Arc<EventBus> {
        let (tx, _) = broadcast::channel(limits.backlog.max(1));
        Arc::new(EventBus {
            tx,
            seq: AtomicU64::new(0),
            open: Mutex::default(),
            limits,
            stopped: AtomicBool::new(false),
        })
    }

    /// Sends `event` to every open stream whose caller belongs to `audience` (and, for layers, may
    /// read it). Never blocks; with nobody listening the message is dropped.
    pub fn publish(&self, audience: Audience, event: LiveEvent) {
        let id = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.tx.send(Arc::new(Envelope { id, audience, event }));
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.lock().map_or(0, |o| o.values().sum())
    }

    fn admit(self: &Arc<Self>, user: &str) -> ApiResult<Slot> {
        let mut open = self.open.lock().map_err(|_| ApiError::internal("event bus lock poisoned"))?;
        let total: usize = open.values().sum();
        let mine = open.get(user).copied().unwrap_or(0);
        if mine >= self.limits.per_user {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_streams",
                format!("`{user}` already has {mine} live streams open; at most {} are allowed", self.limits.per_user),
            )
            .with("limit", "per-user-streams")
            .with("max", self.limits.per_user));
        }
        if total >= self.limits.total {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                format!("the server has {total} live streams open, its limit; try again later"),
            )
            .with("limit", "total-streams")
            .with("max", self.limits.total));
        }
        *open.entry(user.to_owned()).or_default() += 1;
        Ok(Slot { bus: self.clone(), user: user.to_owned() })
    }

    /// Starts the journal poller: a thread that publishes `features_changed` for every layer a
    /// committed transaction touched. It ends when the bus is dropped or [`EventBus::stop`]ped.
    pub fn watch_store(self: &Arc<Self>, store: Arc<dyn Store>) {
        let bus: Weak<EventBus> = Arc::downgrade(self);
        let poll = self.limits.poll;
        let spawned = std::thread::Builder::new().name("event-journal".into()).spawn(move || {
            let mut seen = store.latest_tx().map(|t| t.0).unwrap_or(0);
            loop {
                std::thread::sleep(poll);
                let Some(bus) = bus.upgrade() else { return };
                if bus.stopped.load(Ordering::Relaxed) {
                    return;
                }
                match changed_layers(store.as_ref(), seen) {
                    Ok(Some((latest, time, layers))) => {
                        for layer in layers {
                            bus.publish(
                                Audience::Layer(layer.clone()),
                                LiveEvent::FeaturesChanged { layer, tx: latest, time: time.clone() },
                            );
                        }
                        seen = latest;
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "live channel: reading the journal failed"),
                }
            }
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "live channel: cannot start the journal poller");
        }
    }

    /// Stops the journal poller (the server is shutting down).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// Whether [`EventBus::stop`] was called (threads publishing into the bus end then).
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }
}

/// The layers with changes after transaction `seen`, the newest transaction and its time.
fn changed_layers(store: &dyn Store, seen: i64) -> shikong_store::Result<Option<(i64, String, Vec<String>)>> {
    let latest = store.latest_tx()?.0;
    if latest <= seen {
        return Ok(None);
    }
    let mut layers = Vec::new();
    for layer in store.layers()? {
        if !store.changes_since(layer.name(), ChangeCursor::after_tx(TxId(seen)), 1)?.changes.is_empty() {
            layers.push(layer.def.name);
        }
    }
    let time = store.tx_time(TxId(latest))?.map(shikong_model::time::beijing).unwrap_or_default();
    Ok(Some((latest, time, layers)))
}

pub fn routes() -> Router<AppState> {
    Router::new().route("/events", get(stream))
}

/// `GET /events`: the caller's live stream (`Authorization: Bearer …`; native clients and the
/// apps' cores read it, so no token ever goes in a URL).
async fn stream(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    let principal = caller.require()?.clone();
    let token = headers
        .get(header::AUTHORIZATION)
        .map(access::bearer)
        .transpose()?
        .ok_or_else(|| ApiError::unauthorized("sign in to open the live channel"))?;
    let slot = state.events.admit(&principal.username)?;
    // someone listens now: new sensor readings are relayed from here on (`sta/live.rs`)
    state.start_live_readings();
    let now = Instant::now();
    let conn = Conn {
        rx: state.events.tx.subscribe(),
        state,
        principal,
        token,
        readable: HashMap::new(),
        checked: now,
        started: now,
        done: false,
        _slot: slot,
    };
    let events = futures_util::stream::unfold(conn, |mut c| async move {
        let event = c.next().await?;
        Some((Ok::<_, Infallible>(event), c))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// One open stream.
struct Conn {
    rx: broadcast::Receiver<Arc<Envelope>>,
    state: AppState,
    principal: Principal,
    token: String,
    /// Layers checked since the last re-check: may the caller read them?
    readable: HashMap<String, bool>,
    checked: Instant,
    started: Instant,
    done: bool,
    _slot: Slot,
}

fn sse(id: Option<u64>, event: &LiveEvent) -> Event {
    let e = Event::default().json_data(event).unwrap_or_else(|_| Event::default().data("{}"));
    match id {
        Some(id) => e.id(id.to_string()),
        None => e,
    }
}

impl Conn {
    /// The next message for this caller, or `None` when the stream is over.
    async fn next(&mut self) -> Option<Event> {
        let limits = self.state.events.limits.clone();
        loop {
            if self.done {
                return None;
            }
            if self.started.elapsed() >= limits.max_age {
                return Some(self.close("the stream's time is up; reconnect"));
            }
            if self.checked.elapsed() >= limits.recheck
                && let Err(reason) = self.recheck().await
            {
                return Some(self.close(&reason));
            }
            let wait = limits
                .recheck
                .saturating_sub(self.checked.elapsed())
                .min(limits.max_age.saturating_sub(self.started.elapsed()))
                .max(Duration::from_millis(10));
            match tokio::time::timeout(wait, self.rx.recv()).await {
                Err(_) => continue,
                Ok(Err(broadcast::error::RecvError::Lagged(missed))) => {
                    return Some(sse(None, &LiveEvent::Lagged { missed }));
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return None,
                Ok(Ok(env)) => {
                    if self.visible(&env.audience).await {
                        return Some(sse(Some(env.id), &env.event));
                    }
                }
            }
        }
    }

    fn close(&mut self, reason: &str) -> Event {
        self.done = true;
        sse(None, &LiveEvent::Closing { reason: reason.to_owned() })
    }

    /// Verifies the token again and reloads the account; forgets which layers were readable.
    async fn recheck(&mut self) -> Result<(), String> {
        let (state, token, p) = (self.state.clone(), self.token.clone(), self.principal.clone());
        let fresh = tokio::task::spawn_blocking(move || -> Result<Principal, String> {
            state.auth.verify(&token).map_err(|e| format!("the token is no longer valid: {e}"))?;
            access::current_principal(&state, &p).map_err(|e| e.detail)
        })
        .await
        .map_err(|e| format!("re-check failed: {e}"))??;
        self.principal = fresh;
        self.readable.clear();
        self.checked = Instant::now();
        Ok(())
    }

    async fn visible(&mut self, audience: &Audience) -> bool {
        let p = &self.principal;
        match audience {
            Audience::User(u) => &p.username == u,
            Audience::Department(d) => p.groups.iter().any(|g| g == d),
            Audience::Role(r) => p.role.as_str() == r || p.groups.iter().any(|g| g == r),
            Audience::Layer(name) => {
                if let Some(ok) = self.readable.get(name) {
                    return *ok;
                }
                let (state, p, layer) = (self.state.clone(), p.clone(), name.clone());
                let ok = tokio::task::spawn_blocking(move || {
                    let Ok(l) = state.store.layer(&layer) else { return false };
                    let access =
                        LayerAccess { name: l.name(), public: l.def.public, citizen_reports: l.def.citizen_reports };
                    state.auth.authorize(Some(&p), &access, Action::Read).is_ok_and(|d| d.into_result().is_ok())
                })
                .await
                .unwrap_or(false);
                self.readable.insert(name.clone(), ok);
                ok
            }
        }
    }
}
