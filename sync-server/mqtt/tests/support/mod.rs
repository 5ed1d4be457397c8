//! Test hooks (users, permissions, a recording sink), MQTT clients and a private mosquitto.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, Publish};
use serde_json::{Value, json};
use shikong_mqtt::topic::{EntityId, EntitySet, PublishTarget, ResourcePath};
use shikong_mqtt::{
    Access, Authenticator, Authorizer, Credentials, HookFuture, Hooks, Notification, ObservationSink, Refusal,
    SinkOutcome,
};
use tokio::sync::mpsc;

/// The principal of the tests: the user name.
pub type Principal = String;

/// wang (token `tok-wang`) may use datastreams 1 and 2, Things(1) and the Observations
/// collection; li (token `tok-li`) only datastream 2; the bridge's service user creates anywhere
/// but in datastream 9.
#[derive(Debug)]
pub struct TestAuth;

impl Authenticator<Principal> for TestAuth {
    fn authenticate<'a>(&'a self, c: Credentials<'a>) -> HookFuture<'a, Result<Principal, Refusal>> {
        Box::pin(async move {
            let tokens = HashMap::from([("wang", "tok-wang"), ("li", "tok-li")]);
            match tokens.get(c.username) {
                Some(t) if *t == c.password => Ok(c.username.to_string()),
                _ => Err(Refusal::new("unknown user or token")),
            }
        })
    }
}

#[derive(Debug)]
pub struct TestAuthz;

fn datastream_allowed(user: &str, id: &EntityId) -> bool {
    match (user, id) {
        ("wang", EntityId::Number(1 | 2)) => true,
        ("li", EntityId::Number(2)) => true,
        ("bridge", EntityId::Number(n)) => *n != 9,
        _ => false,
    }
}

impl Authorizer<Principal> for TestAuthz {
    fn authorize<'a>(&'a self, p: &'a Principal, access: Access<'a>) -> HookFuture<'a, Result<(), Refusal>> {
        Box::pin(async move {
            let ok = match access {
                Access::Create(PublishTarget::Datastream(id) | PublishTarget::MultiDatastream(id)) => {
                    datastream_allowed(p, id)
                }
                Access::Subscribe(s) => match &s.path {
                    ResourcePath::Related { parent: EntitySet::Datastreams, id, .. } => datastream_allowed(p, id),
                    ResourcePath::Related { parent: EntitySet::Things, id: EntityId::Number(1), .. } => p == "wang",
                    ResourcePath::Collection(EntitySet::Observations) => p == "wang",
                    ResourcePath::Entity { set: EntitySet::Observations, .. } => p == "wang",
                    _ => false,
                },
            };
            if ok { Ok(()) } else { Err(Refusal::new(format!("{p} may not use this datastream"))) }
        })
    }
}

/// Records every create; refuses a `result` that is not a number.
#[derive(Debug, Default)]
pub struct TestSink {
    pub created: Mutex<Vec<(PublishTarget, Value, Principal)>>,
    next: AtomicU64,
}

impl TestSink {
    pub fn count(&self) -> usize {
        self.created.lock().unwrap().len()
    }
}

impl ObservationSink<Principal> for TestSink {
    fn create<'a>(
        &'a self,
        target: &'a PublishTarget,
        payload: Bytes,
        p: &'a Principal,
    ) -> HookFuture<'a, SinkOutcome> {
        Box::pin(async move {
            let Ok(body) = serde_json::from_slice::<Value>(&payload) else {
                return SinkOutcome::Refused(Refusal::new("the payload is not JSON"));
            };
            if !body["result"].is_number() {
                return SinkOutcome::Refused(Refusal::new("result is not a number"));
            }
            let id = 1000 + self.next.fetch_add(1, Ordering::Relaxed);
            self.created.lock().unwrap().push((target.clone(), body.clone(), p.clone()));
            let mut entity = json!({"@iot.id": id, "result": body["result"],
                                    "phenomenonTime": body.get("phenomenonTime").cloned().unwrap_or(json!("2026-12-07T00:00:00Z"))});
            entity["@iot.selfLink"] = json!(format!("http://localhost/sta/v1.1/Observations({id})"));
            SinkOutcome::Accepted(Notification::observation(EntityId::Number(id), target, None, entity))
        })
    }
}

pub fn hooks(sink: Arc<TestSink>) -> Hooks<Principal> {
    Hooks { authenticator: Arc::new(TestAuth), authorizer: Arc::new(TestAuthz), sink }
}

/// A real MQTT client (rumqttc) whose incoming packets arrive on a channel; an `Err` ends it.
pub struct Client {
    pub client: AsyncClient,
    pub rx: mpsc::UnboundedReceiver<Result<Packet, String>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

static IDS: AtomicU64 = AtomicU64::new(1);

pub fn client(addr: SocketAddr, login: Option<(&str, &str)>) -> Client {
    let id = format!("test-{}", IDS.fetch_add(1, Ordering::Relaxed));
    let mut o = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    o.set_keep_alive(Duration::from_secs(30));
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(o, 100);
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ok(p)).is_err() {
                        return;
                    }
                }
                Ok(Event::Outgoing(_)) => {}
                Err(e) => {
                    let _ = tx.send(Err(describe(&e)));
                    return;
                }
            }
        }
    });
    Client { client, rx, task }
}

fn describe(e: &ConnectionError) -> String {
    format!("{e:?}")
}

impl Client {
    /// The next packet matching `want`, within 5 s (panics otherwise or when the connection ends).
    pub async fn expect<T>(&mut self, what: &str, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            let next = tokio::time::timeout_at(deadline, self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"));
            match next {
                Some(Ok(p)) => {
                    if let Some(t) = want(&p) {
                        return t;
                    }
                }
                Some(Err(e)) => panic!("connection ended while waiting for {what}: {e}"),
                None => panic!("client stopped while waiting for {what}"),
            }
        }
    }

    pub async fn connected(&mut self) {
        self.expect("CONNACK", |p| matches!(p, Packet::ConnAck(_)).then_some(())).await;
    }

    /// The next publish on `topic`, as JSON.
    pub async fn publish_on(&mut self, topic: &str) -> Value {
        let p: Publish = self
            .expect(&format!("a publish on {topic}"), |p| match p {
                Packet::Publish(p) if p.topic == topic => Some(p.clone()),
                _ => None,
            })
            .await;
        serde_json::from_slice(&p.payload).unwrap()
    }

    /// Publishes received within `wait` (nothing else is expected to fail meanwhile).
    pub async fn publishes_within(&mut self, wait: Duration) -> Vec<Publish> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Some(Ok(p))) = tokio::time::timeout_at(deadline, self.rx.recv()).await {
            if let Packet::Publish(p) = p {
                out.push(p);
            }
        }
        out
    }
}

mod mosquitto;
#[allow(unused_imports)] // each test binary uses a part of the support module
pub use mosquitto::{Mosquitto, free_port};
