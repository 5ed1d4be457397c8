//! Bridge mode (`shikong serve --mqtt-broker URL`): the server attaches to an external broker
//! (Debian's `mosquitto`, an operator's EMQX) as one service user instead of embedding one.
//!
//! Why: sites that already run a broker keep its users, TLS and clustering; the server only needs
//! the create topics. The bridge subscribes to `v1.1/+/Observations` (covering
//! `v1.1/Datastreams(ID)/Observations` and `v1.1/MultiDatastreams(ID)/Observations`; QoS 1, acknowledged by hand after the sink answered, so
//! a reading the server has not taken is redelivered by the broker), hands each publish to the
//! [`ObservationSink`] as the service principal, and publishes what was created on the STA
//! topics. What the external broker cannot do, the bridge cannot either: the broker authenticates
//! its own clients, a raw publish reaches that broker's subscribers even when the server refuses
//! it, and `$select` subscriptions get nothing (the bridge publishes whole entities on canonical
//! topics). The bridge's own notifications come back on the create topic (MQTT 3.1.1 has no
//! "no local"); it recognises them by a hash of topic and payload and does not create them again.
//! On a lost connection it reconnects with exponential backoff. Up to 256 publishes are stored at
//! once (the sink batches them) and acknowledged in arrival order.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::BuildHasher;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS};
use tokio::sync::{mpsc, watch};

use crate::Error;
use crate::hooks::{Access, Authorizer, Notification, ObservationSink, SinkOutcome};
use crate::topic::{self, REFUSALS_TOPIC};

/// The filter the bridge subscribes to on the external broker: every `v1.1/X(ID)/Observations`.
/// `v1.1/Datastreams(+)/Observations` is not a valid MQTT filter (a `+` must be a whole level), so
/// the level is matched whole and [`topic::parse_publish`] keeps the Datastreams and
/// MultiDatastreams ones (a publish on `FeaturesOfInterest(ID)/Observations` is refused).
pub const CREATE_FILTERS: [&str; 1] = ["v1.1/+/Observations"];

/// How to reach the external broker.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// `mqtt://[user[:password]@]host[:port]` (port 1883 by default); user and password are
    /// percent-decoded. `mqtts://` is refused for now.
    pub url: String,
    pub client_id: String,
    pub keep_alive: Duration,
    /// First wait after a lost connection; doubles up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    pub max_packet_size: usize,
    /// QoS 0 publishes waiting for the sink at most (QoS 1 ones are bounded by the external
    /// broker's inflight window, since they are acknowledged after the sink).
    pub queue: usize,
}

impl BridgeConfig {
    pub fn new(url: impl Into<String>) -> BridgeConfig {
        BridgeConfig {
            url: url.into(),
            client_id: "shikong-bridge".to_string(),
            keep_alive: Duration::from_secs(30),
            backoff_min: Duration::from_millis(200),
            backoff_max: Duration::from_secs(30),
            max_packet_size: 64 * 1024,
            queue: 10_000,
        }
    }
}

/// Where the external broker is, parsed from [`BridgeConfig::url`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Parses `mqtt://[user[:password]@]host[:port]` (also `tcp://`).
pub fn parse_url(url: &str) -> Result<BrokerAddress, Error> {
    let bad = |reason: &str| Error::BrokerUrl { url: redact(url), reason: reason.to_string() };
    let Some((scheme, rest)) = url.split_once("://") else {
        return Err(bad("no scheme: write mqtt://host:port"));
    };
    match scheme {
        "mqtt" | "tcp" => {}
        "mqtts" | "ssl" | "tls" => return Err(bad("TLS to an external broker is not supported yet; use mqtt://")),
        _ => return Err(bad("the scheme is mqtt://")),
    }
    let rest = rest.trim_end_matches('/');
    if rest.contains('/') || rest.contains('?') {
        return Err(bad("a broker URL has no path or query"));
    }
    let (userinfo, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
    let (username, password) = match userinfo {
        None => (None, None),
        Some(u) => match u.split_once(':') {
            Some((n, p)) => (Some(decode(n)), Some(decode(p))),
            None => (Some(decode(u)), None),
        },
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let Some((h, tail)) = v6.split_once(']') else {
            return Err(bad("unclosed '[' in the host"));
        };
        (h.to_string(), tail.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (hostport.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(bad("no host"));
    }
    let port = match port {
        None => 1883,
        Some(p) => p.parse().map_err(|_| bad("the port is not a number from 1 to 65535"))?,
    };
    if port == 0 {
        return Err(bad("the port is not a number from 1 to 65535"));
    }
    Ok(BrokerAddress { host, port, username, password })
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
            None => url.to_string(),
        },
        _ => url.to_string(),
    }
}

/// Counters since start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeStats {
    /// Successful connections (CONNACK accepted), including reconnects.
    pub connects: u64,
    pub observations_accepted: u64,
    pub publishes_refused: u64,
    /// The bridge's own notifications received back and not created again.
    pub echoes_skipped: u64,
    /// QoS 0 publishes dropped for a full queue, and notifications not sent for a full client queue.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connects: AtomicU64,
    observations_accepted: AtomicU64,
    publishes_refused: AtomicU64,
    echoes_skipped: AtomicU64,
    dropped: AtomicU64,
}

/// Hashes of notifications the bridge published on topics it also subscribes to.
#[derive(Debug)]
struct Echoes {
    hasher: RandomState,
    order: VecDeque<u64>,
    counts: HashMap<u64, u32>,
}

const ECHO_CAPACITY: usize = 8192;

impl Echoes {
    fn key(&self, topic: &str, payload: &[u8]) -> u64 {
        self.hasher.hash_one((topic, payload))
    }

    fn remember(&mut self, topic: &str, payload: &[u8]) {
        let k = self.key(topic, payload);
        if self.order.len() >= ECHO_CAPACITY
            && let Some(old) = self.order.pop_front()
        {
            self.forget(old);
        }
        self.order.push_back(k);
        *self.counts.entry(k).or_default() += 1;
    }

    /// True (and forgotten) when this publish is one of ours coming back.
    fn take(&mut self, topic: &str, payload: &[u8]) -> bool {
        let k = self.key(topic, payload);
        if !self.counts.contains_key(&k) {
            return false;
        }
        self.forget(k);
        if let Some(i) = self.order.iter().position(|x| *x == k) {
            self.order.remove(i);
        }
        true
    }

    fn forget(&mut self, k: u64) {
        if let Some(c) = self.counts.get_mut(&k) {
            *c -= 1;
            if *c == 0 {
                self.counts.remove(&k);
            }
        }
    }
}

struct Shared {
    client: AsyncClient,
    counters: Counters,
    echoes: Mutex<Echoes>,
    queued: AtomicUsize,
}

impl Shared {
    /// Publishes a notification on each of its paths (QoS 1, not retained).
    fn publish(&self, n: &Notification) {
        let payload = n.entity.to_string();
        for path in &n.paths {
            let topic = path.topic();
            let ours = CREATE_FILTERS.iter().any(|f| rumqttc::matches(&topic, f));
            if ours {
                self.echoes.lock().unwrap_or_else(|p| p.into_inner()).remember(&topic, payload.as_bytes());
            }
            if self.client.try_publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone()).is_err() {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if ours {
                    self.echoes.lock().unwrap_or_else(|p| p.into_inner()).take(&topic, payload.as_bytes());
                }
            }
        }
    }
}

/// A running bridge. Call [`Bridge::shutdown`] to stop it.
pub struct Bridge {
    shared: Arc<Shared>,
    connected: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

impl Bridge {
    /// Starts connecting (in the background, on the current Tokio runtime) as `principal`.
    pub fn start<P: Clone + Send + Sync + 'static>(
        config: BridgeConfig,
        principal: P,
        authorizer: Arc<dyn Authorizer<P>>,
        sink: Arc<dyn ObservationSink<P>>,
    ) -> Result<Bridge, Error> {
        let address = parse_url(&config.url)?;
        let mut options = MqttOptions::new(config.client_id.clone(), address.host, address.port);
        options
            .set_keep_alive(config.keep_alive)
            .set_clean_session(true)
            .set_manual_acks(true)
            .set_max_packet_size(config.max_packet_size, config.max_packet_size);
        if let Some(user) = address.username {
            options.set_credentials(user, address.password.unwrap_or_default());
        }
        let (client, eventloop) = AsyncClient::new(options, 1024);
        let shared = Arc::new(Shared {
            client,
            counters: Counters::default(),
            echoes: Mutex::new(Echoes { hasher: RandomState::new(), order: VecDeque::new(), counts: HashMap::new() }),
            queued: AtomicUsize::new(0),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (connected_tx, connected) = watch::channel(false);
        let (work_tx, work_rx) = mpsc::unbounded_channel();
        let poll = tokio::spawn(poll_loop(eventloop, shared.clone(), config, work_tx, connected_tx, stop_rx.clone()));
        let work = tokio::spawn(work_loop(work_rx, shared.clone(), principal, authorizer, sink, stop_rx));
        Ok(Bridge { shared, connected, stop, tasks: vec![poll, work] })
    }

    /// Publishes an entity created elsewhere (an observation posted over HTTP) on the external
    /// broker. Observations accepted by the sink are published by the bridge itself.
    pub fn notify(&self, notification: &Notification) {
        self.shared.publish(notification);
    }

    /// Waits until the bridge is connected and subscribed, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut rx = self.connected.clone();
        tokio::time::timeout(timeout, rx.wait_for(|c| *c)).await.is_ok_and(|r| r.is_ok())
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    pub fn stats(&self) -> BridgeStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BridgeStats {
            connects: g(&c.connects),
            observations_accepted: g(&c.observations_accepted),
            publishes_refused: g(&c.publishes_refused),
            echoes_skipped: g(&c.echoes_skipped),
            dropped: g(&c.dropped),
        }
    }

    /// Disconnects and stops.
    pub async fn shutdown(self) {
        let _ = self.shared.client.try_disconnect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

async fn poll_loop(
    mut eventloop: EventLoop,
    shared: Arc<Shared>,
    config: BridgeConfig,
    work: mpsc::UnboundedSender<Publish>,
    connected: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = config.backoff_min;
    loop {
        let event = tokio::select! {
            e = eventloop.poll() => e,
            _ = stop.changed() => return,
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = config.backoff_min;
                shared.counters.connects.fetch_add(1, Ordering::Relaxed);
                for filter in CREATE_FILTERS {
                    if let Err(e) = shared.client.try_subscribe(filter, QoS::AtLeastOnce) {
                        tracing::warn!(error = %e, filter, "MQTT bridge could not subscribe");
                    }
                }
                tracing::info!("MQTT bridge connected");
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let ok = ack.return_codes.iter().all(|c| matches!(c, rumqttc::SubscribeReasonCode::Success(_)));
                if !ok {
                    tracing::error!(codes = ?ack.return_codes, "MQTT bridge: the external broker refused a subscription");
                }
                // connected = the create filter granted
                let _ = connected.send(ok);
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if p.qos == QoS::AtMostOnce && shared.queued.load(Ordering::Relaxed) >= config.queue {
                    shared.counters.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                shared.queued.fetch_add(1, Ordering::Relaxed);
                if work.send(p).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let _ = connected.send(false);
                tracing::warn!(error = %e, retry_in = ?backoff, "MQTT bridge lost the external broker");
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(config.backoff_max);
            }
        }
    }
}

/// Publishes of the external broker being stored at once (acknowledged in arrival order).
const PIPELINED: usize = 256;

/// A publish and what became of it (`None`: the bridge's own notification coming back).
type Storing = Pin<Box<dyn Future<Output = (Publish, Option<Result<Notification, Processed>>)> + Send>>;

async fn work_loop<P: Clone + Send + Sync + 'static>(
    mut rx: mpsc::UnboundedReceiver<Publish>,
    shared: Arc<Shared>,
    principal: P,
    authorizer: Arc<dyn Authorizer<P>>,
    sink: Arc<dyn ObservationSink<P>>,
    mut stop: watch::Receiver<bool>,
) {
    // stored concurrently (the sink batches them), first polled and finished in arrival order
    let mut storing: FuturesOrdered<Storing> = FuturesOrdered::new();
    loop {
        tokio::select! {
            Some((publish, outcome)) = storing.next(), if !storing.is_empty() => {
                finish(&shared, publish, outcome).await;
            }
            p = rx.recv(), if storing.len() < PIPELINED => {
                let Some(publish) = p else { return };
                shared.queued.fetch_sub(1, Ordering::Relaxed);
                let echo =
                    shared.echoes.lock().unwrap_or_else(|p| p.into_inner()).take(&publish.topic, &publish.payload);
                if echo {
                    shared.counters.echoes_skipped.fetch_add(1, Ordering::Relaxed);
                    storing.push_back(Box::pin(async move { (publish, None) }));
                    continue;
                }
                let (principal, authorizer, sink) = (principal.clone(), authorizer.clone(), sink.clone());
                storing.push_back(Box::pin(async move {
                    let outcome = process(&publish, &principal, authorizer.as_ref(), sink.as_ref()).await;
                    (publish, Some(outcome))
                }));
            }
            _ = stop.changed() => return,
        }
    }
}

/// Acts on what became of a publish, then acknowledges it (unless the server failed to store it).
async fn finish(shared: &Shared, publish: Publish, outcome: Option<Result<Notification, Processed>>) {
    match outcome {
        None => {}
        Some(Err(Processed::Failed(reason))) => {
            // not stored, not final: left unacknowledged, redelivered after a reconnect
            tracing::warn!(topic = %publish.topic, %reason, "MQTT publish not stored (bridge, server failure)");
            return;
        }
        Some(Ok(n)) => {
            shared.counters.observations_accepted.fetch_add(1, Ordering::Relaxed);
            shared.publish(&n);
        }
        Some(Err(Processed::Refused(reason))) => {
            shared.counters.publishes_refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(topic = %publish.topic, %reason, "MQTT publish refused (bridge)");
            let body = shikong_protocol::mqtt::MqttRefusal { topic: publish.topic.clone(), packet_id: None, reason };
            let payload = serde_json::to_vec(&body).unwrap_or_default();
            let _ = shared.client.try_publish(REFUSALS_TOPIC, QoS::AtMostOnce, false, payload);
        }
    }
    // acknowledged after the sink's answer: an unanswered reading is redelivered
    if let Err(e) = shared.client.ack(&publish).await {
        tracing::warn!(error = %e, "MQTT bridge could not acknowledge");
    }
}

async fn process<P: Send + Sync + 'static>(
    publish: &Publish,
    principal: &P,
    authorizer: &dyn Authorizer<P>,
    sink: &dyn ObservationSink<P>,
) -> Result<Notification, Processed> {
    let target = topic::parse_publish(&publish.topic).map_err(|e| Processed::Refused(e.to_string()))?;
    authorizer.authorize(principal, Access::Create(&target)).await.map_err(|r| Processed::Refused(r.reason))?;
    match sink.create(&target, publish.payload.clone(), principal).await {
        SinkOutcome::Accepted(n) => Ok(n),
        SinkOutcome::Refused(r) => Err(Processed::Refused(r.reason)),
        SinkOutcome::Failed(r) => Err(Processed::Failed(r.reason)),
    }
}

/// Why a bridged publish created nothing: refused (final, acknowledged) or failed (not final).
enum Processed {
    Refused(String),
    Failed(String),
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        assert_eq!(
            parse_url("mqtt://svc:p%40ss@broker.local:1884").unwrap(),
            BrokerAddress {
                host: "broker.local".into(),
                port: 1884,
                username: Some("svc".into()),
                password: Some("p@ss".into())
            }
        );
        assert_eq!(parse_url("tcp://[::1]").unwrap().port, 1883);
        assert_eq!(parse_url("tcp://[::1]").unwrap().host, "::1");
        let e = parse_url("mqtts://u:secret@h:8883").unwrap_err().to_string();
        assert!(e.contains("TLS") && !e.contains("secret"), "{e}");
        assert!(parse_url("mqtt://h:99999").unwrap_err().to_string().contains("port"));
        assert!(parse_url("h:1883").unwrap_err().to_string().contains("scheme"));
        assert!(parse_url("mqtt://h/x").unwrap_err().to_string().contains("path"));
    }

    #[test]
    fn echoes_are_taken_once() {
        let mut e = Echoes { hasher: RandomState::new(), order: VecDeque::new(), counts: HashMap::new() };
        e.remember("t", b"x");
        assert!(e.take("t", b"x"));
        assert!(!e.take("t", b"x"));
        for i in 0..ECHO_CAPACITY + 10 {
            e.remember("t", i.to_string().as_bytes());
        }
        assert_eq!(e.order.len(), ECHO_CAPACITY);
        assert!(!e.take("t", b"0"));
    }
}
