//! The embedded broker on a loopback port, driven by real MQTT clients (rumqttc) and raw sockets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rumqttc::{Connect, Packet, QoS, SubscribeReasonCode};
use serde_json::json;
use shikong_mqtt::topic::{EntityId, EntitySet, PublishTarget, ResourcePath};
use shikong_mqtt::{Broker, BrokerConfig, Notification, REFUSALS_TOPIC};
use support::{Principal, TestSink, client, hooks};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn broker(config: BrokerConfig) -> (Broker<Principal>, Arc<TestSink>) {
    let sink = Arc::new(TestSink::default());
    let b = Broker::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config, hooks(sink.clone())).await.unwrap();
    (b, sink)
}

async fn suback(c: &mut support::Client) -> Vec<SubscribeReasonCode> {
    c.expect("SUBACK", |p| match p {
        Packet::SubAck(a) => Some(a.return_codes.clone()),
        _ => None,
    })
    .await
}

#[tokio::test]
async fn wrong_token_is_refused() {
    let (b, sink) = broker(BrokerConfig::default()).await;
    for login in [Some(("wang", "tok-li")), Some(("wang", "")), None, Some(("nobody", "tok-wang"))] {
        let mut c = client(b.local_addr(), login);
        let e = c.rx.recv().await.unwrap().expect_err("the login must be refused");
        assert!(e.contains("BadUserNamePassword"), "{login:?}: {e}");
    }
    let mut ok = client(b.local_addr(), Some(("wang", "tok-wang")));
    ok.connected().await;
    assert_eq!(b.stats().auth_refused, 4);
    assert_eq!(sink.count(), 0);
    b.shutdown().await;
}

#[tokio::test]
async fn publish_reaches_the_sink_and_the_subscribers() {
    let (b, sink) = broker(BrokerConfig::default()).await;
    let mut sub = client(b.local_addr(), Some(("wang", "tok-wang")));
    sub.connected().await;
    sub.client.subscribe("v1.1/Datastreams(1)/Observations", QoS::AtLeastOnce).await.unwrap();
    assert_eq!(suback(&mut sub).await, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]);
    sub.client.subscribe("v1.1/Observations?$select=result", QoS::AtMostOnce).await.unwrap();
    assert_eq!(suback(&mut sub).await, vec![SubscribeReasonCode::Success(QoS::AtMostOnce)]);

    let mut publisher = client(b.local_addr(), Some(("wang", "tok-wang")));
    publisher.connected().await;
    publisher
        .client
        .publish(
            "v1.1/Datastreams(1)/Observations",
            QoS::AtLeastOnce,
            false,
            json!({"result": 21.5, "phenomenonTime": "2026-12-07T08:00:00+08:00"}).to_string(),
        )
        .await
        .unwrap();
    publisher.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;

    let created = sink.created.lock().unwrap().clone();
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].0, PublishTarget::Datastream(EntityId::Number(1)));
    assert_eq!(created[0].1["result"], json!(21.5));
    assert_eq!(created[0].2, "wang");

    // one message per subscription, each on the topic text it subscribed with
    let mut got = std::collections::BTreeMap::new();
    for _ in 0..2 {
        let p = sub
            .expect("a publish", |p| match p {
                Packet::Publish(p) => Some(p.clone()),
                _ => None,
            })
            .await;
        got.insert(p.topic.clone(), serde_json::from_slice::<serde_json::Value>(&p.payload).unwrap());
    }
    let full = &got["v1.1/Datastreams(1)/Observations"];
    assert_eq!(full["@iot.id"], json!(1000));
    assert_eq!(full["result"], json!(21.5));
    assert_eq!(got["v1.1/Observations?$select=result"], json!({"result": 21.5}));
    assert_eq!(b.stats().observations_accepted, 1);
    b.shutdown().await;
}

/// A refusal message and the SUBACK/PUBACK of the refused packet, in whichever order they come.
async fn refusal_and_ack(c: &mut support::Client) -> (serde_json::Value, Packet) {
    let (mut refusal, mut ack) = (None, None);
    while refusal.is_none() || ack.is_none() {
        let p = c
            .expect("a refusal and an acknowledgement", |p| match p {
                Packet::Publish(_) | Packet::SubAck(_) | Packet::PubAck(_) => Some(p.clone()),
                _ => None,
            })
            .await;
        match p {
            Packet::Publish(p) if p.topic == REFUSALS_TOPIC => {
                refusal = Some(serde_json::from_slice(&p.payload).unwrap());
            }
            Packet::Publish(p) => panic!("unexpected publish on {}", p.topic),
            other => ack = Some(other),
        }
    }
    (refusal.unwrap(), ack.unwrap())
}

#[tokio::test]
async fn unauthorised_topics_and_refused_readings_reach_nobody() {
    let (b, sink) = broker(BrokerConfig::default()).await;
    let mut wang = client(b.local_addr(), Some(("wang", "tok-wang")));
    wang.connected().await;
    wang.client.subscribe("v1.1/Datastreams(1)/Observations", QoS::AtLeastOnce).await.unwrap();
    suback(&mut wang).await;

    let mut li = client(b.local_addr(), Some(("li", "tok-li")));
    li.connected().await;
    li.client.subscribe(REFUSALS_TOPIC, QoS::AtLeastOnce).await.unwrap();
    assert_eq!(suback(&mut li).await, vec![SubscribeReasonCode::Success(QoS::AtLeastOnce)]);

    // subscriptions: not li's datastream, an MQTT wildcard, a misspelt set
    for (filter, reason) in [
        ("v1.1/Datastreams(1)/Observations", "li may not use this datastream"),
        ("v1.1/+/Observations", "wildcards"),
        ("v1.1/Datastream(2)/Observations", "'Datastream' at character 5 is not an entity set"),
    ] {
        li.client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let (r, ack) = refusal_and_ack(&mut li).await;
        assert_eq!(r["topic"], json!(filter));
        assert!(r["reason"].as_str().unwrap().contains(reason), "{r}");
        assert!(
            matches!(&ack, Packet::SubAck(a) if a.return_codes == vec![SubscribeReasonCode::Failure]),
            "{filter}: {ack:?}"
        );
    }

    // publishes: not li's datastream, not a create topic, a reading the sink refuses
    for (topic, body, reason) in [
        ("v1.1/Datastreams(1)/Observations", json!({"result": 1}), "li may not use this datastream"),
        ("v1.1/Things(1)/Datastreams", json!({"result": 1}), "publishing creates observations"),
        ("v1.1/Datastreams(2)/Observations", json!({"result": "high"}), "result is not a number"),
    ] {
        li.client.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap();
        let (r, ack) = refusal_and_ack(&mut li).await;
        assert_eq!(r["topic"], json!(topic));
        assert!(r["packetId"].is_u64(), "{r}");
        assert!(r["reason"].as_str().unwrap().contains(reason), "{r}");
        // acknowledged all the same: the answer is final
        assert!(matches!(ack, Packet::PubAck(_)), "{ack:?}");
    }
    assert_eq!(sink.count(), 0);
    assert!(wang.publishes_within(Duration::from_millis(300)).await.is_empty());

    // li's own datastream works
    li.client
        .publish("v1.1/Datastreams(2)/Observations", QoS::AtLeastOnce, false, json!({"result": 3}).to_string())
        .await
        .unwrap();
    li.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
    assert_eq!(sink.count(), 1);
    let s = b.stats();
    assert_eq!((s.publishes_refused, s.subscriptions_refused, s.observations_accepted), (3, 3, 1));
    b.shutdown().await;
}

#[tokio::test]
async fn subscribers_get_observations_created_elsewhere() {
    let (b, _sink) = broker(BrokerConfig::default()).await;
    let mut wang = client(b.local_addr(), Some(("wang", "tok-wang")));
    wang.connected().await;
    wang.client
        .subscribe_many([
            rumqttc::SubscribeFilter::new("v1.1/Datastreams(2)/Observations".into(), QoS::AtLeastOnce),
            rumqttc::SubscribeFilter::new("v1.1/Things(1)/Datastreams".into(), QoS::AtLeastOnce),
        ])
        .await
        .unwrap();
    assert_eq!(suback(&mut wang).await.len(), 2);

    // an observation posted over HTTP
    b.notify(&Notification::observation(
        EntityId::Number(55),
        &PublishTarget::Datastream(EntityId::Number(2)),
        Some(EntityId::Number(4)),
        json!({"@iot.id": 55, "result": 0.8}),
    ));
    let got = wang.publish_on("v1.1/Datastreams(2)/Observations").await;
    assert_eq!(got, json!({"@iot.id": 55, "result": 0.8}));

    // a datastream added to thing 1
    b.notify(&Notification {
        entity: json!({"@iot.id": 3, "name": "水位"}),
        paths: vec![ResourcePath::Related {
            parent: EntitySet::Things,
            id: EntityId::Number(1),
            set: EntitySet::Datastreams,
        }],
    });
    let got = wang.publish_on("v1.1/Things(1)/Datastreams").await;
    assert_eq!(got["name"], json!("水位"));
    b.shutdown().await;
}

/// A CONNECT as wang, encoded.
fn connect_bytes(id: &str) -> BytesMut {
    let mut c = Connect::new(id);
    c.keep_alive = 30;
    c.set_login("wang", "tok-wang");
    let mut out = BytesMut::new();
    Packet::Connect(c).write(&mut out, usize::MAX).unwrap();
    out
}

#[tokio::test]
async fn a_flood_of_oversized_packets_is_cut_off() {
    let config = BrokerConfig { max_packet_size: 4096, ..BrokerConfig::default() };
    let (b, sink) = broker(config).await;
    let addr = b.local_addr();
    let mut flood = Vec::new();
    for i in 0..16 {
        flood.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&connect_bytes(&format!("flood-{i}"))).await.unwrap();
            let mut ack = [0u8; 4];
            s.read_exact(&mut ack).await.unwrap();
            assert_eq!(ack, [0x20, 2, 0, 0], "CONNACK accepted");
            // PUBLISH QoS 0 announcing 200 MB, then as many bytes as the server takes
            let mut header = vec![0x30];
            let mut len: usize = 200 * 1024 * 1024;
            loop {
                let mut byte = (len % 128) as u8;
                len /= 128;
                if len > 0 {
                    byte |= 0x80;
                }
                header.push(byte);
                if len == 0 {
                    break;
                }
            }
            let chunk = vec![b'x'; 64 * 1024];
            let mut sent = 0usize;
            let cut = async {
                s.write_all(&header).await?;
                loop {
                    s.write_all(&chunk).await?;
                    sent += chunk.len();
                    if sent >= 200 * 1024 * 1024 {
                        return Ok::<(), std::io::Error>(());
                    }
                }
            };
            let result = tokio::time::timeout(Duration::from_secs(20), cut).await;
            assert!(matches!(result, Ok(Err(_))), "the server must close the connection (sent {sent} bytes)");
            sent
        }));
    }
    let mut most = 0;
    for f in flood {
        most = most.max(f.await.unwrap());
    }
    // the server stopped reading at the header: what was sent sits in socket buffers at most
    println!("most bytes written before the cut: {most} (of 200 MB announced)");
    assert!(most < 64 * 1024 * 1024, "{most} bytes accepted");
    assert_eq!(b.stats().oversized_closed, 16);
    assert_eq!(sink.count(), 0);

    // others are still served
    let mut c = client(addr, Some(("wang", "tok-wang")));
    c.connected().await;
    c.client
        .publish("v1.1/Datastreams(1)/Observations", QoS::AtLeastOnce, false, json!({"result": 1}).to_string())
        .await
        .unwrap();
    c.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
    assert_eq!(sink.count(), 1);
    b.shutdown().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed() {
    let config = BrokerConfig { max_connections: 2, ..BrokerConfig::default() };
    let (b, _sink) = broker(config).await;
    let mut a = client(b.local_addr(), Some(("wang", "tok-wang")));
    a.connected().await;
    let mut c = client(b.local_addr(), Some(("li", "tok-li")));
    c.connected().await;
    let mut third = client(b.local_addr(), Some(("wang", "tok-wang")));
    let e = third.rx.recv().await.unwrap().expect_err("over the limit");
    assert!(!e.is_empty());
    assert_eq!(b.stats().connections_over_limit, 1);
    assert_eq!(b.stats().connections_open, 2);
    b.shutdown().await;
}

#[tokio::test]
async fn publishes_beyond_the_rate_wait() {
    let config = BrokerConfig { publish_rate: 20.0, publish_burst: 5.0, ..BrokerConfig::default() };
    let (b, sink) = broker(config).await;
    let mut c = client(b.local_addr(), Some(("wang", "tok-wang")));
    c.connected().await;
    let start = Instant::now();
    for i in 0..25 {
        c.client
            .publish("v1.1/Datastreams(1)/Observations", QoS::AtLeastOnce, false, json!({"result": i}).to_string())
            .await
            .unwrap();
    }
    for _ in 0..25 {
        c.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
    }
    // 5 at once, then 20 at 20/s: at least one second, and none lost
    assert!(start.elapsed() >= Duration::from_millis(900), "{:?}", start.elapsed());
    assert_eq!(sink.count(), 25);
    b.shutdown().await;
}

#[tokio::test]
async fn mqtt5_and_silent_clients_are_answered() {
    let (b, _sink) =
        broker(BrokerConfig { connect_timeout: Duration::from_millis(300), ..BrokerConfig::default() }).await;
    // MQTT 5 CONNECT (protocol level 5): CONNACK "unacceptable protocol version"
    let mut s = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut bytes = connect_bytes("v5");
    assert_eq!(&bytes[2..8], b"\0\x04MQTT");
    bytes[8] = 5;
    s.write_all(&bytes).await.unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.unwrap();
    assert_eq!(ack[3], 1, "return code 1: unacceptable protocol version");
    // no CONNECT at all: closed after the connect timeout
    let mut silent = TcpStream::connect(b.local_addr()).await.unwrap();
    let mut buf = [0u8; 1];
    let n =
        tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf)).await.expect("closed in time").unwrap_or(0);
    assert_eq!(n, 0);
    b.shutdown().await;
}

/// A sink that takes longer for earlier readings (so later ones finish first), recording the order
/// readings reach it and how many it stores at once.
#[derive(Default)]
struct SlowSink {
    arrived: std::sync::Mutex<Vec<i64>>,
    busy: std::sync::atomic::AtomicUsize,
    most_busy: std::sync::atomic::AtomicUsize,
}

impl shikong_mqtt::ObservationSink<Principal> for SlowSink {
    fn create<'a>(
        &'a self,
        target: &'a PublishTarget,
        payload: bytes::Bytes,
        _p: &'a Principal,
    ) -> shikong_mqtt::HookFuture<'a, shikong_mqtt::SinkOutcome> {
        use std::sync::atomic::Ordering::SeqCst;
        Box::pin(async move {
            let body: serde_json::Value = serde_json::from_slice(&payload).unwrap();
            let i = body["result"].as_i64().unwrap();
            self.arrived.lock().unwrap().push(i);
            let now = self.busy.fetch_add(1, SeqCst) + 1;
            self.most_busy.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(40u64.saturating_sub(i as u64 % 40))).await;
            self.busy.fetch_sub(1, SeqCst);
            shikong_mqtt::SinkOutcome::Accepted(Notification::observation(
                EntityId::Number(i as u64),
                target,
                None,
                json!({"@iot.id": i, "result": i}),
            ))
        })
    }
}

#[tokio::test]
async fn one_connections_publishes_are_stored_together_and_acknowledged_in_order() {
    let sink = Arc::new(SlowSink::default());
    let hooks = shikong_mqtt::Hooks {
        authenticator: Arc::new(support::TestAuth),
        authorizer: Arc::new(support::TestAuthz),
        sink: sink.clone(),
    };
    let config = BrokerConfig { max_pipelined: 16, ..BrokerConfig::default() };
    let b = Broker::bind(SocketAddr::from(([127, 0, 0, 1], 0)), config, hooks).await.unwrap();
    let mut c = client(b.local_addr(), Some(("wang", "tok-wang")));
    c.connected().await;
    let n = 60;
    for i in 0..n {
        c.client
            .publish("v1.1/Datastreams(1)/Observations", QoS::AtLeastOnce, false, json!({"result": i}).to_string())
            .await
            .unwrap();
    }
    let mut acked = Vec::new();
    while acked.len() < n {
        acked.push(c.expect("PUBACK", |p| if let Packet::PubAck(a) = p { Some(a.pkid) } else { None }).await);
    }
    // rumqttc numbers packets 1, 2, 3, … in publish order: the acknowledgements keep that order
    assert_eq!(acked, (1..=n as u16).collect::<Vec<_>>());
    assert_eq!(*sink.arrived.lock().unwrap(), (0..n as i64).collect::<Vec<_>>(), "the sink saw them in order");
    let most = sink.most_busy.load(std::sync::atomic::Ordering::SeqCst);
    assert!(most > 1 && most <= 16, "stored {most} at once (pipelined, bounded by max_pipelined)");
    assert_eq!(b.stats().observations_accepted, n as u64);
    b.shutdown().await;
}
