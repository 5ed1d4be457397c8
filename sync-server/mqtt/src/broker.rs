//! The embedded MQTT 3.1.1 broker (`shikong serve --mqtt ADDR`).
//!
//! Why our own connection loop on rumqttc's codec rather than `rumqttd` (see ARCHITECTURE.md):
//! every publish must be authorised per topic and handed to the [`ObservationSink`] *before*
//! anyone receives it, and a refused one must reach no subscriber; every subscription must be
//! authorised per topic. rumqttd's only hook is a yes/no login check. The broker is narrow on
//! purpose: STA topics only, clean sessions, no retained messages, QoS 0 and 1 out (QoS 2 in).
//!
//! Limits: connections (a semaphore; over it a connection is closed at once), packet size
//! (checked on the fixed header, before the body is read: an oversized packet closes the
//! connection), outgoing inflight QoS 1 messages per client, the outgoing queue per client
//! (a slow reader loses messages, counted), publishes per second per client (a token bucket
//! that stops reading the socket: back-pressure, not disconnection), subscriptions per client,
//! the time to send CONNECT and the keep-alive (1.5 × the client's), QoS 0/1 publishes of one
//! client being stored at once (`max_pipelined`: the connection reads on while the sink stores
//! them, and acknowledges them in arrival order, so a gateway on one connection is not limited to
//! one reading per commit).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use rumqttc::{
    ConnAck, ConnectReturnCode, Packet, PubAck, PubComp, PubRec, Publish, QoS, SubAck, SubscribeReasonCode, UnsubAck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::time::Instant;

use crate::Error;
use crate::hooks::{Access, Authenticator, Authorizer, Credentials, Notification, ObservationSink, SinkOutcome};
use crate::router::{Router, ToClient};
use crate::topic::{self, REFUSALS_TOPIC};

/// Limits of the embedded broker.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Open connections at most; more are closed on accept.
    pub max_connections: usize,
    /// Largest packet accepted (remaining length, bytes); larger ones close the connection.
    pub max_packet_size: usize,
    /// Outgoing QoS 1 messages awaiting PUBACK per client.
    pub max_inflight: u16,
    /// Incoming QoS 0/1 publishes of one client handed to the sink and not yet answered: the
    /// connection keeps reading while they are stored, and acknowledges them in the order they
    /// came (MQTT 3.1.1 §4.6). 1: one at a time.
    pub max_pipelined: usize,
    /// Outgoing messages queued per client; beyond it messages to that client are dropped.
    pub outgoing_queue: usize,
    /// Sustained publishes per second per client…
    pub publish_rate: f64,
    /// …and the burst above it.
    pub publish_burst: f64,
    /// Subscriptions per client.
    pub max_subscriptions: usize,
    /// Time from TCP accept to a complete CONNECT.
    pub connect_timeout: Duration,
    /// Authenticate each connection again this often with its CONNECT credentials (the server's
    /// check of revoked tokens and disabled accounts); a refusal closes the connection, so its
    /// subscriptions stop receiving within this bound. The principal is replaced by the new one
    /// (changed roles apply). `None`: only at CONNECT.
    pub reauthenticate_every: Option<Duration>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            max_connections: 10_000,
            max_packet_size: 64 * 1024,
            max_inflight: 100,
            max_pipelined: 16,
            outgoing_queue: 1_000,
            publish_rate: 100.0,
            publish_burst: 200.0,
            max_subscriptions: 100,
            connect_timeout: Duration::from_secs(10),
            reauthenticate_every: None,
        }
    }
}

/// The server's three hooks.
pub struct Hooks<P> {
    pub authenticator: Arc<dyn Authenticator<P>>,
    pub authorizer: Arc<dyn Authorizer<P>>,
    pub sink: Arc<dyn ObservationSink<P>>,
}

impl<P> Clone for Hooks<P> {
    fn clone(&self) -> Self {
        Hooks {
            authenticator: self.authenticator.clone(),
            authorizer: self.authorizer.clone(),
            sink: self.sink.clone(),
        }
    }
}

impl<P> std::fmt::Debug for Hooks<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Hooks")
    }
}

/// Counters since start (the server exports them as metrics).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerStats {
    pub connections_open: u64,
    /// Closed on accept: over `max_connections`.
    pub connections_over_limit: u64,
    pub auth_refused: u64,
    /// Connections closed for a packet over `max_packet_size`.
    pub oversized_closed: u64,
    /// Connections closed for a malformed or unexpected packet, or a missing CONNECT.
    pub protocol_closed: u64,
    pub observations_accepted: u64,
    pub publishes_refused: u64,
    pub subscriptions_refused: u64,
    pub messages_delivered: u64,
    /// Dropped for a full outgoing queue (slow subscriber).
    pub messages_dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    connections_open: AtomicU64,
    connections_over_limit: AtomicU64,
    auth_refused: AtomicU64,
    oversized_closed: AtomicU64,
    protocol_closed: AtomicU64,
    observations_accepted: AtomicU64,
    publishes_refused: AtomicU64,
    subscriptions_refused: AtomicU64,
    messages_delivered: AtomicU64,
    messages_dropped: AtomicU64,
}

fn bump(c: &AtomicU64, n: u64) {
    c.fetch_add(n, Ordering::Relaxed);
}

type Sessions = Mutex<HashMap<(String, String), (u64, oneshot::Sender<()>)>>;

struct Shared<P> {
    config: BrokerConfig,
    hooks: Hooks<P>,
    router: Router,
    counters: Counters,
    sessions: Sessions,
    next_conn: AtomicU64,
}

/// A running embedded broker. Dropping it stops accepting and closes the connections;
/// [`Broker::shutdown`] does the same and waits for the accept loop to end.
pub struct Broker<P> {
    shared: Arc<Shared<P>>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl<P> std::fmt::Debug for Broker<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl<P: Clone + Send + Sync + 'static> Broker<P> {
    /// Binds `addr` and starts accepting clients on the current Tokio runtime.
    pub async fn bind(addr: SocketAddr, config: BrokerConfig, hooks: Hooks<P>) -> Result<Broker<P>, Error> {
        let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind { addr, source })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind { addr, source })?;
        let shared = Arc::new(Shared {
            config,
            hooks,
            router: Router::default(),
            counters: Counters::default(),
            sessions: Mutex::new(HashMap::new()),
            next_conn: AtomicU64::new(1),
        });
        let (stop, stop_rx) = watch::channel(false);
        let accept = tokio::spawn(accept_loop(listener, shared.clone(), stop_rx));
        tracing::info!(%addr, "MQTT broker listening");
        Ok(Broker { shared, addr, stop, accept })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Delivers an entity created elsewhere (an observation posted over HTTP) to its subscribers.
    /// Observations accepted by the sink are delivered by the broker itself.
    pub fn notify(&self, notification: &Notification) {
        let d = self.shared.router.deliver(notification);
        bump(&self.shared.counters.messages_delivered, d.sent);
        bump(&self.shared.counters.messages_dropped, d.dropped);
    }

    pub fn stats(&self) -> BrokerStats {
        let c = &self.shared.counters;
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        BrokerStats {
            connections_open: g(&c.connections_open),
            connections_over_limit: g(&c.connections_over_limit),
            auth_refused: g(&c.auth_refused),
            oversized_closed: g(&c.oversized_closed),
            protocol_closed: g(&c.protocol_closed),
            observations_accepted: g(&c.observations_accepted),
            publishes_refused: g(&c.publishes_refused),
            subscriptions_refused: g(&c.subscriptions_refused),
            messages_delivered: g(&c.messages_delivered),
            messages_dropped: g(&c.messages_dropped),
        }
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.accept.await;
    }
}

async fn accept_loop<P: Clone + Send + Sync + 'static>(
    listener: TcpListener,
    shared: Arc<Shared<P>>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections));
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // EMFILE and the like: wait instead of spinning
                tracing::warn!(error = %e, "MQTT accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            bump(&shared.counters.connections_over_limit, 1);
            drop(stream);
            continue;
        };
        let shared = shared.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            bump(&shared.counters.connections_open, 1);
            let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
            if let Err(end) = serve(stream, peer, conn, &shared, stop).await {
                let counter = match &end {
                    End::Oversized(_) => Some(&shared.counters.oversized_closed),
                    End::Protocol(_) | End::Version => Some(&shared.counters.protocol_closed),
                    End::Io(_) | End::Unstored(_) => None,
                };
                if let Some(c) = counter {
                    bump(c, 1);
                }
                tracing::info!(%peer, conn, reason = %end, "MQTT connection closed");
            }
            shared.counters.connections_open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Why a connection ended early.
#[derive(Debug, thiserror::Error)]
enum End {
    #[error("packet of {0} bytes is over the limit")]
    Oversized(usize),
    #[error("{0}")]
    Protocol(String),
    #[error("unsupported protocol version (only MQTT 3.1.1)")]
    Version,
    #[error("a publish could not be stored ({0}); closed without acknowledging it")]
    Unstored(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl From<rumqttc::mqttbytes::Error> for End {
    fn from(e: rumqttc::mqttbytes::Error) -> Self {
        match e {
            rumqttc::mqttbytes::Error::PayloadSizeLimitExceeded(n) => End::Oversized(n),
            rumqttc::mqttbytes::Error::Io(io) => End::Io(io),
            rumqttc::mqttbytes::Error::InvalidProtocolLevel(_) | rumqttc::mqttbytes::Error::InvalidProtocol => {
                End::Version
            }
            other => End::Protocol(format!("malformed packet: {other}")),
        }
    }
}

async fn read_packet(rd: &mut OwnedReadHalf, buf: &mut BytesMut, max: usize) -> Result<Packet, End> {
    loop {
        match Packet::read(buf, max) {
            Ok(p) => return Ok(p),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(e.into()),
        }
        if rd.read_buf(buf).await? == 0 {
            return Err(End::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
    }
}

async fn write_now(wr: &mut OwnedWriteHalf, packet: Packet) -> Result<(), End> {
    let mut out = BytesMut::new();
    packet.write(&mut out, usize::MAX)?;
    wr.write_all(&out).await?;
    Ok(())
}

/// The storing of a publish handed to the sink (`Err`: not stored and not final).
type Storing = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// What a publish's task needs of its connection to send a refusal.
#[derive(Clone)]
struct Replier {
    id: u64,
    tx: mpsc::Sender<ToClient>,
    refusals: Option<QoS>,
}

/// Per-connection state the reader keeps.
struct Conn {
    id: u64,
    /// publishes to the client (deliveries, refusals)
    tx: mpsc::Sender<ToClient>,
    /// acknowledgements and ping answers
    ctrl: mpsc::Sender<Packet>,
    /// routing key and filter of each subscription
    subscriptions: Vec<(String, String)>,
    refusals: Option<QoS>,
    pending_qos2: HashSet<u16>,
    /// QoS 0/1 publishes being stored, oldest first: their QoS and packet id…
    in_process: VecDeque<(QoS, u16)>,
    /// …and their storing, polled by the connection's task and finished in the same order. Being
    /// first polled in arrival order, they reach the sink (and its queue) in arrival order.
    storing: FuturesOrdered<Storing>,
    tokens: f64,
    refilled: Instant,
}

impl Conn {
    fn replier(&self) -> Replier {
        Replier { id: self.id, tx: self.tx.clone(), refusals: self.refusals }
    }
}

async fn serve<P: Clone + Send + Sync + 'static>(
    stream: TcpStream,
    peer: SocketAddr,
    conn_id: u64,
    shared: &Arc<Shared<P>>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), End> {
    let _ = stream.set_nodelay(true);
    let config = &shared.config;
    let (mut rd, mut wr) = stream.into_split();
    let mut buf = BytesMut::with_capacity(4096);
    let first = tokio::time::timeout(config.connect_timeout, read_packet(&mut rd, &mut buf, config.max_packet_size))
        .await
        .map_err(|_| End::Protocol("no CONNECT in time".into()))?;
    let connect = match first {
        Ok(Packet::Connect(c)) if c.protocol == rumqttc::Protocol::V4 => c,
        Ok(Packet::Connect(_)) | Err(End::Version) => {
            // MQTT 5 (or 3.1) CONNECT: the 3.1.1 answer is "unacceptable protocol version"
            write_now(&mut wr, Packet::ConnAck(ConnAck::new(ConnectReturnCode::RefusedProtocolVersion, false))).await?;
            return Err(End::Version);
        }
        Ok(other) => return Err(End::Protocol(format!("first packet is not CONNECT: {other:?}"))),
        Err(e) => return Err(e),
    };
    let (username, password) =
        connect.login.as_ref().map(|l| (l.username.clone(), l.password.clone())).unwrap_or_default();
    let client_id =
        if connect.client_id.is_empty() { format!("shikong-auto-{conn_id}") } else { connect.client_id.clone() };
    let mut principal = match shared
        .hooks
        .authenticator
        .authenticate(Credentials { client_id: &client_id, username: &username, password: &password, peer })
        .await
    {
        Ok(p) => p,
        Err(refusal) => {
            bump(&shared.counters.auth_refused, 1);
            tracing::info!(%peer, user = %username, reason = %refusal.reason, "MQTT login refused");
            write_now(&mut wr, Packet::ConnAck(ConnAck::new(ConnectReturnCode::BadUserNamePassword, false))).await?;
            return Ok(());
        }
    };
    if connect.last_will.is_some() {
        tracing::debug!(%peer, user = %username, "MQTT last will ignored (no will messages)");
    }

    // one session per (user, client id): a new connection takes over the old one
    let (kicked_tx, mut kicked) = oneshot::channel();
    let key = (username.clone(), client_id.clone());
    {
        let mut sessions = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, old)) = sessions.insert(key.clone(), (conn_id, kicked_tx)) {
            let _ = old.send(());
        }
    }

    let (tx, rx) = mpsc::channel(config.outgoing_queue.max(1));
    // acknowledgements have their own queue: they never wait behind publishes held by inflight
    let (ctrl, ctrl_rx) = mpsc::channel(64);
    let inflight = Arc::new(Semaphore::new(usize::from(config.max_inflight.max(1))));
    let unacked: Arc<Mutex<HashMap<u16, OwnedSemaphorePermit>>> = Arc::default();
    write_now(&mut wr, Packet::ConnAck(ConnAck::new(ConnectReturnCode::Success, false))).await?;
    let writer = tokio::spawn(write_loop(wr, ctrl_rx, rx, inflight, unacked.clone()));

    let keep_alive = match connect.keep_alive {
        0 => None,
        s => Some(Duration::from_millis(u64::from(s) * 1500)),
    };
    let mut conn = Conn {
        id: conn_id,
        tx,
        ctrl,
        subscriptions: Vec::new(),
        refusals: None,
        pending_qos2: HashSet::new(),
        in_process: VecDeque::new(),
        storing: FuturesOrdered::new(),
        tokens: config.publish_burst,
        refilled: Instant::now(),
    };
    // the keep-alive counts from the last packet, whatever else wakes the loop
    let mut last_packet = Instant::now();
    let mut next_check = config.reauthenticate_every.map(|d| Instant::now() + d);
    let result = loop {
        let read = async {
            match keep_alive {
                Some(limit) => {
                    tokio::time::timeout_at(last_packet + limit, read_packet(&mut rd, &mut buf, config.max_packet_size))
                        .await
                        .unwrap_or_else(|_| Err(End::Protocol("keep-alive expired".into())))
                }
                None => read_packet(&mut rd, &mut buf, config.max_packet_size).await,
            }
        };
        let check_at = next_check;
        let recheck = async move {
            match check_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let packet = tokio::select! {
            // the oldest publish stored: acknowledged (in arrival order)
            Some(done) = conn.storing.next(), if !conn.storing.is_empty() => {
                if let Err(e) = settled(&mut conn, done).await {
                    break Err(e);
                }
                continue;
            }
            p = read => p,
            _ = &mut kicked => break Ok(()),
            _ = stop.changed() => break Ok(()),
            () = recheck => {
                let credentials = Credentials { client_id: &client_id, username: &username, password: &password, peer };
                match shared.hooks.authenticator.authenticate(credentials).await {
                    Ok(p) => principal = p,
                    Err(refusal) => {
                        bump(&shared.counters.auth_refused, 1);
                        tracing::info!(%peer, user = %username, reason = %refusal.reason, "MQTT connection closed: its login is no longer accepted");
                        break Ok(());
                    }
                }
                next_check = config.reauthenticate_every.map(|d| Instant::now() + d);
                continue;
            }
        };
        let packet = match packet {
            Ok(p) => p,
            Err(e) => break Err(e),
        };
        last_packet = Instant::now();
        match handle(packet, &mut conn, &principal, shared, &unacked).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    shared.router.remove_connection(conn.id, &conn.subscriptions.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>());
    {
        let mut sessions = shared.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if sessions.get(&key).is_some_and(|(id, _)| *id == conn_id) {
            sessions.remove(&key);
        }
    }
    drop(conn);
    writer.abort();
    result
}

/// Handles one packet; `Ok(false)` ends the connection cleanly.
async fn handle<P: Clone + Send + Sync + 'static>(
    packet: Packet,
    conn: &mut Conn,
    principal: &P,
    shared: &Arc<Shared<P>>,
    unacked: &Mutex<HashMap<u16, OwnedSemaphorePermit>>,
) -> Result<bool, End> {
    let config = &shared.config;
    match packet {
        Packet::Publish(publish) => {
            throttle(conn, config).await;
            if publish.qos == QoS::ExactlyOnce && !conn.pending_qos2.insert(publish.pkid) {
                // a redelivered QoS 2 publish already handled: only acknowledge again
                reply(conn, Packet::PubRec(PubRec::new(publish.pkid))).await;
                return Ok(true);
            }
            let (qos, pkid) = (publish.qos, publish.pkid);
            if qos != QoS::ExactlyOnce {
                // room first: at most `max_pipelined` waiting, the oldest settled before reading on
                while conn.in_process.len() >= config.max_pipelined.max(1) {
                    settle_oldest(conn).await?;
                }
                let (replier, principal, shared) = (conn.replier(), principal.clone(), shared.clone());
                conn.storing.push_back(Box::pin(async move { create(publish, &replier, &principal, &shared).await }));
                conn.in_process.push_back((qos, pkid));
                return Ok(true);
            }
            // QoS 2: after every earlier publish is acknowledged, on its own
            while !conn.in_process.is_empty() {
                settle_oldest(conn).await?;
            }
            if let Err(reason) = create(publish, &conn.replier(), principal, shared).await {
                // not stored and not final: no acknowledgement, the client sends it again
                conn.pending_qos2.remove(&pkid);
                return Err(End::Unstored(reason));
            }
            reply(conn, Packet::PubRec(PubRec::new(pkid))).await;
        }
        Packet::PubRel(rel) => {
            conn.pending_qos2.remove(&rel.pkid);
            reply(conn, Packet::PubComp(PubComp::new(rel.pkid))).await;
        }
        Packet::PubAck(ack) => {
            unacked.lock().unwrap_or_else(|p| p.into_inner()).remove(&ack.pkid);
        }
        Packet::Subscribe(sub) => {
            let mut codes = Vec::with_capacity(sub.filters.len());
            for filter in sub.filters {
                let granted = if filter.qos == QoS::AtMostOnce { QoS::AtMostOnce } else { QoS::AtLeastOnce };
                if filter.path == REFUSALS_TOPIC {
                    conn.refusals = Some(granted);
                    codes.push(SubscribeReasonCode::Success(granted));
                    continue;
                }
                let outcome = match topic::parse_subscription(&filter.path) {
                    Err(e) => Err(e.to_string()),
                    Ok(_) if conn.subscriptions.len() >= config.max_subscriptions => {
                        Err(format!("at most {} subscriptions per client", config.max_subscriptions))
                    }
                    Ok(parsed) => {
                        match shared.hooks.authorizer.authorize(principal, Access::Subscribe(&parsed)).await {
                            Err(r) => Err(r.reason),
                            Ok(()) => Ok(parsed),
                        }
                    }
                };
                match outcome {
                    Ok(parsed) => {
                        let key = shared.router.subscribe(conn.id, &filter.path, &parsed, granted, conn.tx.clone());
                        conn.subscriptions.retain(|(_, f)| *f != filter.path);
                        conn.subscriptions.push((key, filter.path));
                        codes.push(SubscribeReasonCode::Success(granted));
                    }
                    Err(reason) => {
                        bump(&shared.counters.subscriptions_refused, 1);
                        tracing::info!(conn = conn.id, topic = %filter.path, %reason, "MQTT subscription refused");
                        refuse(&conn.replier(), &filter.path, Some(sub.pkid), &reason);
                        codes.push(SubscribeReasonCode::Failure);
                    }
                }
            }
            reply(conn, Packet::SubAck(SubAck::new(sub.pkid, codes))).await;
        }
        Packet::Unsubscribe(unsub) => {
            for filter in &unsub.topics {
                if filter == REFUSALS_TOPIC {
                    conn.refusals = None;
                }
                if let Some(i) = conn.subscriptions.iter().position(|(_, f)| f == filter) {
                    let (key, f) = conn.subscriptions.remove(i);
                    shared.router.unsubscribe(conn.id, &key, &f);
                }
            }
            reply(conn, Packet::UnsubAck(UnsubAck::new(unsub.pkid))).await;
        }
        Packet::PingReq => reply(conn, Packet::PingResp).await,
        Packet::Disconnect => return Ok(false),
        other => return Err(End::Protocol(format!("unexpected packet from a client: {other:?}"))),
    }
    Ok(true)
}

/// Waits for the oldest publish being stored and acknowledges it.
async fn settle_oldest(conn: &mut Conn) -> Result<(), End> {
    match conn.storing.next().await {
        Some(done) => settled(conn, done).await,
        None => Ok(()),
    }
}

/// Acknowledges the oldest QoS 0/1 publish, whose storing ended (`Err`: it was not stored and is
/// not final: the connection ends without acknowledging it or anything after it; the client sends
/// them again).
async fn settled(conn: &mut Conn, done: Result<(), String>) -> Result<(), End> {
    let Some((qos, pkid)) = conn.in_process.pop_front() else { return Ok(()) };
    match done {
        Ok(()) => {
            if qos == QoS::AtLeastOnce {
                reply(conn, Packet::PubAck(PubAck::new(pkid))).await;
            }
            Ok(())
        }
        Err(reason) => Err(End::Unstored(reason)),
    }
}

/// Authorises a publish and hands it to the sink; delivers what the sink accepted. `Err`: the
/// sink failed (not stored, not final): the publish must not be acknowledged.
async fn create<P: Clone + Send + Sync + 'static>(
    publish: Publish,
    conn: &Replier,
    principal: &P,
    shared: &Arc<Shared<P>>,
) -> Result<(), String> {
    let target = match topic::parse_publish(&publish.topic) {
        Ok(t) => t,
        Err(e) => {
            refused_publish(conn, &publish, &e.to_string(), shared);
            return Ok(());
        }
    };
    if let Err(r) = shared.hooks.authorizer.authorize(principal, Access::Create(&target)).await {
        refused_publish(conn, &publish, &r.reason, shared);
        return Ok(());
    }
    match shared.hooks.sink.create(&target, publish.payload.clone(), principal).await {
        SinkOutcome::Accepted(n) => {
            bump(&shared.counters.observations_accepted, 1);
            let d = shared.router.deliver(&n);
            bump(&shared.counters.messages_delivered, d.sent);
            bump(&shared.counters.messages_dropped, d.dropped);
        }
        SinkOutcome::Refused(r) => refused_publish(conn, &publish, &r.reason, shared),
        SinkOutcome::Failed(r) => {
            tracing::warn!(conn = conn.id, topic = %publish.topic, reason = %r.reason, "MQTT publish not stored (server failure): connection closed without acknowledgement");
            return Err(r.reason);
        }
    }
    Ok(())
}

fn refused_publish<P>(conn: &Replier, publish: &Publish, reason: &str, shared: &Shared<P>) {
    bump(&shared.counters.publishes_refused, 1);
    tracing::info!(conn = conn.id, topic = %publish.topic, %reason, "MQTT publish refused");
    let pkid = (publish.qos != QoS::AtMostOnce).then_some(publish.pkid);
    refuse(conn, &publish.topic, pkid, reason);
}

/// Sends a refusal to the client's refusal topic, when it subscribed to it.
fn refuse(conn: &Replier, topic: &str, packet_id: Option<u16>, reason: &str) {
    let Some(qos) = conn.refusals else { return };
    let body = shikong_protocol::mqtt::MqttRefusal { topic: topic.to_string(), packet_id, reason: reason.to_string() };
    let payload = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let _ = conn.tx.try_send(ToClient::Publish { topic: REFUSALS_TOPIC.to_string(), payload, qos });
}

async fn reply(conn: &mut Conn, packet: Packet) {
    // acknowledgements wait for room: they are owed to the client
    let _ = conn.ctrl.send(packet).await;
}

/// The per-client publish rate: waits for a token (stops reading the socket meanwhile).
async fn throttle(conn: &mut Conn, config: &BrokerConfig) {
    let now = Instant::now();
    let elapsed = now.duration_since(conn.refilled).as_secs_f64();
    conn.tokens = (conn.tokens + elapsed * config.publish_rate).min(config.publish_burst.max(1.0));
    conn.refilled = now;
    if conn.tokens < 1.0 && config.publish_rate > 0.0 {
        let wait = (1.0 - conn.tokens) / config.publish_rate;
        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        conn.tokens = 1.0;
        conn.refilled = Instant::now();
    }
    conn.tokens -= 1.0;
}

/// Writes the client's outgoing messages: acknowledgements first, then publishes; a QoS 1
/// publish takes an inflight slot until its PUBACK (every publish waits for a free slot, so the
/// order of deliveries is kept; a QoS 0 one gives it back at once).
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut ctrl: mpsc::Receiver<Packet>,
    mut publishes: mpsc::Receiver<ToClient>,
    inflight: Arc<Semaphore>,
    unacked: Arc<Mutex<HashMap<u16, OwnedSemaphorePermit>>>,
) {
    let mut out = BytesMut::with_capacity(4096);
    let mut next_pkid: u16 = 0;
    let mut encode = |m: ToClient, permit: OwnedSemaphorePermit, out: &mut BytesMut| {
        let packet = match m {
            ToClient::Publish { topic, payload, qos } => {
                let mut publish = Publish::from_bytes(topic, qos, payload);
                if qos != QoS::AtMostOnce {
                    let mut map = unacked.lock().unwrap_or_else(|p| p.into_inner());
                    loop {
                        next_pkid = next_pkid.wrapping_add(1).max(1);
                        if !map.contains_key(&next_pkid) {
                            break;
                        }
                    }
                    map.insert(next_pkid, permit);
                    publish.pkid = next_pkid;
                }
                Packet::Publish(publish)
            }
        };
        packet.write(out, usize::MAX).is_ok()
    };
    loop {
        tokio::select! {
            biased;
            p = ctrl.recv() => match p {
                Some(p) => {
                    if p.write(&mut out, usize::MAX).is_err() {
                        return;
                    }
                }
                None => return,
            },
            next = async {
                // the slot first: recv is cancel-safe, a slot dropped unused goes back
                let permit = inflight.clone().acquire_owned().await.ok()?;
                publishes.recv().await.map(|m| (m, permit))
            } => match next {
                Some((m, permit)) => {
                    if !encode(m, permit, &mut out) {
                        return;
                    }
                }
                None => return,
            },
        }
        // batch what is already queued into one write
        while out.len() < 64 * 1024 {
            if let Ok(p) = ctrl.try_recv() {
                if p.write(&mut out, usize::MAX).is_err() {
                    return;
                }
                continue;
            }
            let Ok(permit) = inflight.clone().try_acquire_owned() else { break };
            let Ok(m) = publishes.try_recv() else { break };
            if !encode(m, permit, &mut out) {
                return;
            }
        }
        if wr.write_all(&out).await.is_err() {
            return;
        }
        out.clear();
    }
}
