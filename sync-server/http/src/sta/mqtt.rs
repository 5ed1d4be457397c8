//! MQTT wired to the SensorThings API: the three hooks of `shikong-mqtt` implemented over the
//! server's accounts, per-layer permissions and time-series store, and the start of the embedded
//! broker (`shikong serve --mqtt ADDR`) or of the bridge to an external broker
//! (`--mqtt-broker URL`).
//!
//! Why here and not in `shikong-mqtt`: that crate knows MQTT and STA topics, nothing of users or
//! stores; this module knows the server's rules and reuses exactly the HTTP code paths:
//! - **Authenticator**: the user name and a session or device token as the password, checked by
//!   `AuthStore::verify` like an HTTP bearer token (unknown, expired, revoked tokens, revoked
//!   devices, disabled accounts are refused); the token must belong to that user name. The broker
//!   authenticates each connection again every [`RECHECK_EVERY`] with the same credentials and
//!   closes it when refused, so a revoked token's subscriptions stop receiving (and its publishes
//!   stop being taken) within that bound; the principal (role, groups) is refreshed each time.
//! - **Authorizer**: subscribing needs read permission on the layer governing the delivered
//!   entity set (`entities::governing_layer`). Publishing to `v1.1/Datastreams(ID)/Observations`
//!   needs edit permission on the `sta_datastream` layer (the HTTP rule for Observations),
//!   checked with the reading by the sink, once per user in each batch.
//! - **ObservationSink**: the publish joins the intake queue (`intake.rs`), which stores the
//!   readings waiting in one batch: each payload is parsed with the bounds of every JSON body,
//!   planned by `shikong_sta::body::plan_create` with the topic's Datastream as the parent link
//!   (as `POST /Datastreams(ID)/Observations` does) and checked by `observations::prepare`, the
//!   code the HTTP create uses; the batch is one append, and the sink answers after its durable
//!   commit, so the broker's PUBACK (sent after the sink answered) means stored. The batch is
//!   published on the observation stream (`stream.rs`) with origin `Mqtt` / `MqttBridge`. A
//!   server-side failure (a 5xx answer: database unavailable) is `SinkOutcome::Failed`: never
//!   acknowledged, so the client sends the reading again, rather than a final refusal. A publish
//!   to `v1.1/MultiDatastreams(ID)/Observations` is stored like `POST
//!   /MultiDatastreams(ID)/Observations` (`multi::store_planned`), one blocking call each.
//!
//! Observations stored by other ways (HTTP, dataArray) reach MQTT subscribers through a task
//! following the observation stream (`forward`), which skips batches the broker or bridge already
//! delivered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use shikong_auth::{Client, Principal};
use shikong_mqtt::{
    Access, Authenticator, Authorizer, Bridge, BridgeConfig, Broker, BrokerConfig, Credentials, EntityId, EntitySet,
    HookFuture, Hooks, Notification, ObservationSink, PublishTarget, Refusal, SinkOutcome,
};
use shikong_sta::entity::EntityType;
use shikong_timeseries::Stored;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

use super::super::access::{Action, Caller};
use super::super::problem::ApiError;
use super::super::{AppState, blocking};
use super::intake::IntakeQueue;
use super::stream::ObservationBatch;
use super::{entities, observations};

/// How often the embedded broker authenticates each connection again (revoked tokens, disabled
/// accounts, changed roles take effect within this bound), unless the broker configuration
/// given to `start_mqtt` sets its own `reauthenticate_every`.
pub const RECHECK_EVERY: Duration = Duration::from_secs(30);

/// Which MQTT intake the server runs (one at a time: `--mqtt` and `--mqtt-broker` exclude each
/// other).
#[derive(Debug, Clone)]
pub enum MqttMode {
    /// The embedded broker on this address.
    Embedded { listen: SocketAddr, config: BrokerConfig },
    /// Attached to an external broker: `mqtt://[user[:password]@]host[:port]`.
    External { url: String },
}

/// Who publishes or subscribes.
#[derive(Debug, Clone)]
pub enum MqttPrincipal {
    /// A client of the embedded broker, authenticated by its token.
    User(Principal),
    /// The bridge's service connection to an external broker: that broker authenticated and
    /// authorised its clients (its ACL), the server takes what arrives on the create topics.
    Bridge,
}

/// Where the landing page says MQTT clients connect.
#[derive(Debug, Clone)]
pub(crate) struct MqttEndpoint {
    /// `None`: the broker listens on every address; the request's host name is shown.
    host: Option<String>,
    port: u16,
}

impl MqttEndpoint {
    /// `mqtt://host:port`, with the host of `base` (`http://host:port/...`) when unknown.
    pub(crate) fn url(&self, base: &str) -> String {
        let host = self.host.clone().unwrap_or_else(|| {
            let rest = base.split_once("://").map_or(base, |(_, r)| r);
            let authority = rest.split('/').next().unwrap_or(rest);
            match authority.rsplit_once(':') {
                Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h.to_owned(),
                _ => authority.to_owned(),
            }
        });
        format!("mqtt://{host}:{}", self.port)
    }
}

/// A running MQTT intake; [`MqttService::shutdown`] stops it.
#[derive(Debug)]
pub struct MqttService {
    intake: Arc<Intake>,
    forward: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
enum Intake {
    Broker(Broker<MqttPrincipal>),
    Bridge(Bridge),
}

impl Intake {
    fn notify(&self, n: &Notification) {
        match self {
            Intake::Broker(b) => b.notify(n),
            Intake::Bridge(b) => b.notify(n),
        }
    }
}

impl MqttService {
    /// The embedded broker's bound address (`None` for the bridge).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self.intake.as_ref() {
            Intake::Broker(b) => Some(b.local_addr()),
            Intake::Bridge(_) => None,
        }
    }

    /// The embedded broker's counters.
    pub fn broker_stats(&self) -> Option<shikong_mqtt::BrokerStats> {
        match self.intake.as_ref() {
            Intake::Broker(b) => Some(b.stats()),
            Intake::Bridge(_) => None,
        }
    }

    /// Waits until the bridge is connected and subscribed (the embedded broker: at once).
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        match self.intake.as_ref() {
            Intake::Broker(_) => true,
            Intake::Bridge(b) => b.wait_connected(timeout).await,
        }
    }

    pub async fn shutdown(self) {
        self.forward.abort();
        let _ = self.forward.await;
        match Arc::try_unwrap(self.intake) {
            Ok(Intake::Broker(b)) => b.shutdown().await,
            Ok(Intake::Bridge(b)) => b.shutdown().await,
            Err(_) => {}
        }
    }
}

impl AppState {
    /// Starts the MQTT intake on the current Tokio runtime: the embedded broker (bound before
    /// this returns) or the bridge (connecting in the background). The landing page lists its
    /// endpoint from then on.
    pub async fn start_mqtt(&self, mode: MqttMode) -> Result<MqttService, shikong_mqtt::Error> {
        let hooks = Arc::new(StaMqtt { st: self.clone(), intake: IntakeQueue::start(self.clone()) });
        let (intake, endpoint) = match mode {
            MqttMode::Embedded { listen, config } => {
                let recheck = config.reauthenticate_every.or(Some(RECHECK_EVERY));
                let config = BrokerConfig { reauthenticate_every: recheck, ..config };
                let broker = Broker::bind(
                    listen,
                    config,
                    Hooks { authenticator: hooks.clone(), authorizer: hooks.clone(), sink: hooks.clone() },
                )
                .await?;
                let addr = broker.local_addr();
                let host = (!addr.ip().is_unspecified()).then(|| match addr {
                    SocketAddr::V4(a) => a.ip().to_string(),
                    SocketAddr::V6(a) => format!("[{}]", a.ip()),
                });
                (Intake::Broker(broker), MqttEndpoint { host, port: addr.port() })
            }
            MqttMode::External { url } => {
                let address = shikong_mqtt::parse_url(&url)?;
                let bridge = Bridge::start(BridgeConfig::new(url), MqttPrincipal::Bridge, hooks.clone(), hooks)?;
                (Intake::Bridge(bridge), MqttEndpoint { host: Some(address.host), port: address.port })
            }
        };
        if self.sta.mqtt.set(endpoint).is_err() {
            tracing::warn!("an MQTT intake was already started; the landing page shows the first");
        }
        let intake = Arc::new(intake);
        // subscribed before returning: nothing stored from now on is missed
        let rx = self.observations().subscribe();
        let forward = tokio::spawn(forward(self.clone(), rx, intake.clone()));
        Ok(MqttService { intake, forward })
    }
}

/// Delivers observations stored by other ways than this intake to its subscribers.
async fn forward(st: AppState, mut rx: Receiver<Arc<ObservationBatch>>, intake: Arc<Intake>) {
    loop {
        match rx.recv().await {
            Ok(batch) => {
                if batch.origin.delivered_over_mqtt() {
                    continue;
                }
                let base = st.links_base();
                for o in &batch.observations {
                    let s = Stored { datastream: o.datastream, time: o.time, value: o.value };
                    intake.notify(&notification(&s, base.as_deref()));
                }
            }
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(batches = n, "MQTT subscribers missed observation batches (the stream ran ahead)");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

/// The notification of a stored observation: its JSON on the Observations topics.
fn notification(s: &Stored, base: Option<&str>) -> Notification {
    let id = EntityId::Text(format!("{}-{}", s.datastream, s.time.as_microsecond()));
    let ds = PublishTarget::Datastream(EntityId::Number(s.datastream.max(0) as u64));
    Notification::observation(id, &ds, None, observations::entity(s, base))
}

/// A problem as the reason an MQTT client reads on `shikong/refused`: the detail, and the
/// member and reason code when the HTTP answer names them.
fn refusal(e: &ApiError) -> Refusal {
    let mut reason = e.detail.clone();
    for key in ["field", "reason"] {
        if let Some(v) = e.extra.get(key).and_then(|v| v.as_str()) {
            reason.push_str(&format!(" ({key} {v})"));
        }
    }
    Refusal::new(reason)
}

/// The hooks, over the server's state.
struct StaMqtt {
    st: AppState,
    intake: IntakeQueue,
}

impl Authenticator<MqttPrincipal> for StaMqtt {
    fn authenticate<'a>(&'a self, c: Credentials<'a>) -> HookFuture<'a, Result<MqttPrincipal, Refusal>> {
        Box::pin(async move {
            if c.username.is_empty() || c.password.is_empty() {
                return Err(Refusal::new("log in with your user name and a session or device token as the password"));
            }
            let auth = self.st.auth.clone();
            let token = c.password.to_owned();
            let verified = blocking(move || Ok(auth.verify(&token)?)).await;
            match verified {
                Ok(p) if p.username == c.username => Ok(MqttPrincipal::User(p)),
                Ok(_) => Err(Refusal::new("the token belongs to another user")),
                Err(e) => Err(Refusal::new(e.detail)),
            }
        })
    }
}

/// The entity type a subscription delivers (its set's members; a property: its entity's).
fn delivered_type(set: EntitySet) -> EntityType {
    EntityType::from_set_name(set.name()).unwrap_or(EntityType::Observation)
}

impl Authorizer<MqttPrincipal> for StaMqtt {
    fn authorize<'a>(&'a self, p: &'a MqttPrincipal, access: Access<'a>) -> HookFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            let (ty, action) = match access {
                // checked with the reading, once per user in each batch (`intake.rs`)
                Access::Create(_) => return Ok(()),
                Access::Subscribe(s) => (delivered_type(s.path.target_set()), Action::Read),
            };
            let principal = match p {
                MqttPrincipal::User(u) => u.clone(),
                // the external broker's ACL decided; the bridge only takes creates
                MqttPrincipal::Bridge => return Ok(()),
            };
            let st = self.st.clone();
            let caller = Caller { principal: Some(principal), client: Client::default() };
            blocking(move || {
                entities::ensure_layers(st.store(), &st.sta)?;
                let layer = st.store().layer(entities::governing_layer(ty))?;
                caller.allowed(&st, &layer, action)
            })
            .await
            .map_err(|e| refusal(&e))
        })
    }
}

impl ObservationSink<MqttPrincipal> for StaMqtt {
    fn create<'a>(
        &'a self,
        target: &'a PublishTarget,
        payload: bytes::Bytes,
        principal: &'a MqttPrincipal,
    ) -> HookFuture<'a, SinkOutcome> {
        Box::pin(async move {
            let ds = match target {
                PublishTarget::Datastream(EntityId::Number(n)) => i64::try_from(*n).ok(),
                PublishTarget::Datastream(EntityId::Text(_)) => None,
                PublishTarget::MultiDatastream(id) => {
                    let EntityId::Number(m) = id else {
                        return SinkOutcome::Refused(Refusal::new(format!("no MultiDatastream with @iot.id {id}")));
                    };
                    let (st, principal, m) = (self.st.clone(), principal.clone(), *m);
                    let stored = blocking(move || store_multi(&st, m, &payload, &principal)).await;
                    return match stored {
                        Ok(n) => SinkOutcome::Accepted(n),
                        Err(e) if e.status.is_server_error() => SinkOutcome::Failed(refusal(&e)),
                        Err(e) => SinkOutcome::Refused(refusal(&e)),
                    };
                }
            };
            let Some(ds) = ds else {
                let PublishTarget::Datastream(id) = target else { unreachable!("matched above") };
                return SinkOutcome::Refused(Refusal::new(format!("no Datastream with @iot.id {id}")));
            };
            let stored = self.intake.store(ds, payload, principal.clone()).await;
            match stored {
                Ok(s) => SinkOutcome::Accepted(notification(&s, self.st.links_base().as_deref())),
                // the server's failure, not the reading's: not acknowledged, sent again
                Err(e) if e.status.is_server_error() => SinkOutcome::Failed(refusal(&e)),
                Err(e) => SinkOutcome::Refused(refusal(&e)),
            }
        })
    }
}

/// A publish to `v1.1/MultiDatastreams(m)/Observations`: stored exactly as
/// `POST /MultiDatastreams(m)/Observations` stores it (`multi::store_planned`: the payload
/// planned with the topic's MultiDatastream as the parent link, every component in one append),
/// the publisher's edit permission checked as for a Datastream's (the bridge's publishes were
/// authorised by the external broker). One blocking call per publish: MultiDatastream
/// Observations are few (an air-quality station a minute), not worth the intake's batching.
fn store_multi(st: &AppState, m: u64, payload: &[u8], principal: &MqttPrincipal) -> Result<Notification, ApiError> {
    use shikong_sta::body::{BodyLimits, Link, Ref, plan_create};
    use shikong_sta::entity::Id;
    entities::ensure_layers(st.store(), &st.sta)?;
    if let MqttPrincipal::User(u) = principal {
        let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
        Caller { principal: Some(u.clone()), client: Client::default() }.allowed(st, &layer, Action::Edit)?;
    }
    let m = i64::try_from(m).map_err(|_| ApiError::not_found(format!("no MultiDatastream with @iot.id {m}")))?;
    let body = super::write::parse_body(payload, "the MQTT payload")?;
    let target = Ref::Existing(Id::Int(m));
    let parent = Link { nav: "MultiDatastream", target: target.clone() };
    let plan =
        plan_create(EntityType::Observation, &body, Some(parent), BodyLimits::default()).map_err(super::sta_error)?;
    let (id, mut obj) = super::multi::store_planned(st, &plan, &target)?;
    if let Some(base) = st.links_base() {
        shikong_sta::entity::add_links(&mut obj, &base, EntityType::Observation, &id);
    }
    let text = match &id {
        Id::Str(s) => s.clone(),
        other => other.url_literal(),
    };
    let topic = PublishTarget::MultiDatastream(EntityId::Number(m as u64));
    Ok(Notification::observation(EntityId::Text(text), &topic, None, serde_json::Value::Object(obj)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        let any = MqttEndpoint { host: None, port: 1883 };
        assert_eq!(any.url("http://sk.example:8080/sta/v1.1"), "mqtt://sk.example:1883");
        assert_eq!(any.url("https://sk.example/sta/v1.1"), "mqtt://sk.example:1883");
        let fixed = MqttEndpoint { host: Some("127.0.0.1".into()), port: 41883 };
        assert_eq!(fixed.url("http://localhost:8080/sta/v1.1"), "mqtt://127.0.0.1:41883");
    }
}
