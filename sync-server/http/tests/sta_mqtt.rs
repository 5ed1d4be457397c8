//! MQTT wired to the SensorThings API (issue 18), with real rumqttc clients on loopback ports:
//! the embedded broker started by `AppState::start_mqtt` (what `shikong serve --mqtt` runs) —
//! user name + token logins, QoS 1 creates readable through `GET …/Observations`, subscribers
//! receiving observations created over MQTT and over HTTP, refusals on `shikong/refused`, a
//! revoked token's connection closed; the bridge to a real Debian `mosquitto`
//! (`--mqtt-broker`); and a server process killed by SIGKILL in the middle of a QoS 1 stream,
//! after which every acknowledged reading is stored.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use axum::http::StatusCode;
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS, SubscribeReasonCode};
use serde_json::{Value as Json, json};
use shikong_http::{MqttBrokerConfig, MqttMode, ObservationOrigin};
use tokio::sync::mpsc;

use crate::support::{Env, manholes, runtime, state_in};

#[path = "../../mqtt/tests/support/mosquitto.rs"]
mod mosquitto;

const MQTT_CREATE: &str =
    "http://www.opengis.net/spec/iot_sensing/1.1/req/create-observations-via-mqtt/observations-creation";
const MQTT_RECEIVE: &str = "http://www.opengis.net/spec/iot_sensing/1.1/req/receive-updates-via-mqtt/receive-updates";
/// How long a test waits for an expected event before failing (not a performance bound).
const WAIT: Duration = Duration::from_secs(20);

/// A Datastream (with its Thing, Sensor, ObservedProperty) made over HTTP; its id.
pub(crate) fn datastream(env: &Env, name: &str) -> i64 {
    let r = env
        .post("/sta/v1.1/Things")
        .token(&env.token("wang"))
        .json(&json!({
            "name": name,
            "description": "洪山区 水位站",
            "Datastreams": [{
                "name": format!("{name} 水位"),
                "description": "water level",
                "unitOfMeasurement": {"name": "metre", "symbol": "m", "definition": "http://unitsofmeasure.org/ucum#m"},
                "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                "Sensor": {"name": "水位计", "description": "level", "encodingType": "application/pdf", "metadata": "http://example.org/l.pdf"},
                "ObservedProperty": {"name": "水位", "definition": "http://example.org/level", "description": "water level"}
            }]
        }))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let thing = r.json()["@iot.id"].as_i64().expect("thing id");
    let r = env.get(&format!("/sta/v1.1/Things({thing})/Datastreams")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["value"][0]["@iot.id"].as_i64().expect("datastream id")
}

/// The results of a Datastream's Observations, oldest first.
pub(crate) fn results(env: &Env, ds: i64) -> Vec<f64> {
    let r = env.get(&format!("/sta/v1.1/Datastreams({ds})/Observations?$top=10000")).token(&env.token("wang")).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    r.json()["value"].as_array().expect("value").iter().map(|o| o["result"].as_f64().expect("result")).collect()
}

pub(crate) fn embedded(recheck: Option<Duration>) -> MqttMode {
    MqttMode::Embedded {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        config: MqttBrokerConfig { reauthenticate_every: recheck, ..MqttBrokerConfig::default() },
    }
}

/// A rumqttc client whose events (or its end) arrive on a channel.
struct Mqtt {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Event, String>>,
}

/// Connects (from within the runtime) as `login` (user, password).
fn connect(host: &str, port: u16, id: &str, login: Option<(&str, &str)>, inflight: u16) -> Mqtt {
    let mut o = MqttOptions::new(id, host, port);
    o.set_keep_alive(Duration::from_secs(30)).set_clean_session(true).set_inflight(inflight);
    if let Some((u, p)) = login {
        o.set_credentials(u, p);
    }
    let (client, mut el) = AsyncClient::new(o, 16);
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(e) => {
                    if tx.send(Ok(e)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    Mqtt { client, events }
}

impl Mqtt {
    /// The first incoming packet `want` maps to something (others are skipped).
    async fn expect<T>(&mut self, what: &str, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let e = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"));
            match e {
                Some(Ok(Event::Incoming(p))) => {
                    if let Some(t) = want(&p) {
                        return t;
                    }
                }
                Some(Ok(Event::Outgoing(_))) => {}
                Some(Err(e)) => panic!("connection ended while waiting for {what}: {e}"),
                None => panic!("event loop gone while waiting for {what}"),
            }
        }
    }

    async fn connected(&mut self) {
        self.expect("CONNACK", |p| matches!(p, Packet::ConnAck(_)).then_some(())).await;
    }

    /// The connection's end (an error), skipping other events.
    async fn ended(&mut self, what: &str) -> String {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Err(_) => panic!("{what}: the connection was not closed within {WAIT:?}"),
                Ok(Some(Err(e))) => return e,
                Ok(None) => return "event loop gone".into(),
                Ok(Some(Ok(_))) => {}
            }
        }
    }

    async fn subscribe(&mut self, topic: &str) {
        self.client.subscribe(topic, QoS::AtLeastOnce).await.unwrap();
        let codes = self
            .expect("SUBACK", |p| if let Packet::SubAck(a) = p { Some(a.return_codes.clone()) } else { None })
            .await;
        assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtLeastOnce)], "subscribing to {topic}");
    }

    /// The JSON of the next publish received on `topic`.
    async fn received(&mut self, topic: &str) -> Json {
        self.expect(&format!("a message on {topic}"), |p| match p {
            Packet::Publish(m) if m.topic == topic => Some(serde_json::from_slice(&m.payload).expect("JSON payload")),
            _ => None,
        })
        .await
    }
}

#[test]
fn mqtt_creates_delivers_and_refuses() {
    // messages carry links from the public URL (no HTTP server is bound in process)
    let env = manholes().env_with(|c| c.public_url = Some(crate::support::BASE.to_owned()));
    let ds = datastream(&env, "MQTT 站 1");
    let rt = runtime();
    let mut stream = env.state.observations().subscribe();
    let svc = rt.block_on(env.state.start_mqtt(embedded(None))).expect("broker");
    let port = svc.local_addr().expect("bound").port();

    // The landing page announces the MQTT classes and the endpoint.
    let root = env.get("/sta/v1.1").send().json();
    let conf = root["serverSettings"]["conformance"].as_array().expect("conformance");
    assert!(conf.contains(&json!(MQTT_CREATE)) && conf.contains(&json!(MQTT_RECEIVE)), "{conf:?}");
    assert_eq!(root["serverSettings"][MQTT_CREATE]["endpoints"], json!([format!("mqtt://127.0.0.1:{port}")]));

    let topic = format!("v1.1/Datastreams({ds})/Observations");
    let (wang, li, zhang) = (env.token("wang"), env.token("li"), env.token("zhang"));
    let mut all = rt.block_on(async {
        let mut c = connect("127.0.0.1", port, "office-all", Some(("wang", wang.as_str())), 10);
        c.connected().await;
        c.subscribe("v1.1/Observations").await;
        c
    });
    let (mut sub, mut publ) = rt.block_on(async {
        let mut sub = connect("127.0.0.1", port, "office-1", Some(("wang", wang.as_str())), 10);
        sub.connected().await;
        sub.subscribe(&topic).await;
        let mut publ = connect("127.0.0.1", port, "station-1", Some(("li", li.as_str())), 10);
        publ.connected().await;
        publ.subscribe("shikong/refused").await;
        (sub, publ)
    });

    // Three QoS 1 readings: each PUBACKed, delivered to the subscriber, readable over HTTP.
    rt.block_on(async {
        for i in 0..3 {
            let body = json!({"phenomenonTime": format!("2025-06-01T08:00:0{i}+08:00"), "result": 1.5 + f64::from(i)});
            publ.client.publish(&topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap();
        }
        for _ in 0..3 {
            publ.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
        }
        for i in 0..3 {
            let o = sub.received(&topic).await;
            assert_eq!(o["result"], json!(1.5 + f64::from(i)), "{o}");
            let at = jiff::Timestamp::from_second(1_748_736_000 + i64::from(i)).unwrap();
            assert_eq!(o["@iot.id"], json!(format!("{ds}-{}", at.as_microsecond())), "{o}");
            assert!(
                o["@iot.selfLink"]
                    .as_str()
                    .is_some_and(|l| l.ends_with(&format!("/Observations('{ds}-{}')", at.as_microsecond()))),
                "{o}"
            );
        }
        // the collection topic too
        for i in 0..3 {
            assert_eq!(all.received("v1.1/Observations").await["result"], json!(1.5 + f64::from(i)));
        }
    });
    assert_eq!(results(&env, ds), [1.5, 2.5, 3.5]);

    // An observation created over HTTP reaches the MQTT subscriber.
    let r = env
        .post(&format!("/sta/v1.1/Datastreams({ds})/Observations"))
        .token(&wang)
        .json(&json!({"phenomenonTime": "2025-06-01T08:00:10+08:00", "result": 9.5}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let o = rt.block_on(sub.received(&topic));
    assert_eq!(o["result"], json!(9.5));

    // The observation stream saw every new reading once, with its origin.
    let mut seen = Vec::new();
    while let Ok(b) = stream.try_recv() {
        seen.extend(b.observations.iter().map(|o| (b.origin, o.value)));
    }
    assert_eq!(
        seen,
        [
            (ObservationOrigin::Mqtt, 1.5),
            (ObservationOrigin::Mqtt, 2.5),
            (ObservationOrigin::Mqtt, 3.5),
            (ObservationOrigin::Http, 9.5)
        ]
    );

    // A body the HTTP API refuses is refused the same way, with its reason on shikong/refused.
    rt.block_on(async {
        publ.client.publish(&topic, QoS::AtLeastOnce, false, r#"{"result": "high"}"#).await.unwrap();
        let refusal = publ.received("shikong/refused").await;
        assert_eq!(refusal["topic"], json!(topic));
        assert!(refusal["reason"].as_str().unwrap().contains("/result"), "{refusal}");
        publ.client.publish(&topic, QoS::AtLeastOnce, false, "not json").await.unwrap();
        let refusal = publ.received("shikong/refused").await;
        assert!(refusal["reason"].as_str().unwrap().contains("not JSON"), "{refusal}");
        let unknown = "v1.1/Datastreams(999999)/Observations";
        publ.client.publish(unknown, QoS::AtLeastOnce, false, r#"{"result": 1}"#).await.unwrap();
        let refusal = publ.received("shikong/refused").await;
        assert!(refusal["reason"].as_str().unwrap().contains("999999"), "{refusal}");
    });

    // A citizen may not create readings (no edit permission on sta_datastream) nor subscribe.
    rt.block_on(async {
        let mut c = connect("127.0.0.1", port, "citizen-1", Some(("zhang", zhang.as_str())), 10);
        c.connected().await;
        c.subscribe("shikong/refused").await;
        c.client.publish(&topic, QoS::AtLeastOnce, false, r#"{"result": 42}"#).await.unwrap();
        let refusal = c.received("shikong/refused").await;
        assert_eq!(refusal["topic"], json!(topic), "{refusal}");
        c.client.subscribe(&topic, QoS::AtLeastOnce).await.unwrap();
        let codes =
            c.expect("SUBACK", |p| if let Packet::SubAck(a) = p { Some(a.return_codes.clone()) } else { None }).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure]);
    });
    assert_eq!(results(&env, ds), [1.5, 2.5, 3.5, 9.5], "nothing refused was stored");

    // Logins: a wrong token, another user's token, no password.
    rt.block_on(async {
        for (user, pass) in [("wang", "not-a-token"), ("wang", li.as_str()), ("wang", "")] {
            let mut c = connect("127.0.0.1", port, "intruder", Some((user, pass)), 10);
            let end = c.ended("a refused login").await;
            assert!(end.contains("BadUserNamePassword"), "{user}/{pass}: {end}");
        }
    });
    let stats = svc.broker_stats().expect("broker");
    assert_eq!(stats.auth_refused, 3, "{stats:?}");
    assert_eq!(stats.observations_accepted, 3, "{stats:?}");
    rt.block_on(svc.shutdown());
}

#[test]
fn revoked_token_loses_its_subscriptions() {
    let env = manholes().env();
    let ds = datastream(&env, "MQTT 站 2");
    let rt = runtime();
    let svc = rt.block_on(env.state.start_mqtt(embedded(Some(Duration::from_millis(200))))).expect("broker");
    let port = svc.local_addr().unwrap().port();
    let token = env.login("wang");
    let topic = format!("v1.1/Datastreams({ds})/Observations");
    let mut sub = rt.block_on(async {
        let mut sub = connect("127.0.0.1", port, "office-2", Some(("wang", token.as_str())), 10);
        sub.connected().await;
        sub.subscribe(&topic).await;
        sub
    });
    let r = env.post("/auth/logout").token(&token).send();
    assert!(r.status.is_success(), "{}", r.text());
    let end = rt.block_on(sub.ended("after the token was revoked"));
    assert!(!end.is_empty());
    // and it cannot come back
    rt.block_on(async {
        let mut again = connect("127.0.0.1", port, "office-2", Some(("wang", token.as_str())), 10);
        let end = again.ended("a revoked token's login").await;
        assert!(end.contains("BadUserNamePassword"), "{end}");
    });
    rt.block_on(svc.shutdown());
}

/// A MultiDatastream (PM2.5 and an "over the limit" flag) on a new Thing, made over HTTP; its id.
fn multi_datastream(env: &Env) -> i64 {
    let w = env.token("wang");
    let r = env
        .post("/sta/v1.1/Things")
        .token(&w)
        .json(&json!({"name": "MQTT 空气站", "description": "洪山区 空气质量"}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let thing = r.json()["@iot.id"].as_i64().expect("thing id");
    let r = env
        .post(&format!("/sta/v1.1/Things({thing})/MultiDatastreams"))
        .token(&w)
        .json(&json!({
            "name": "空气质量", "description": "PM2.5 与超标",
            "observationType": "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation",
            "multiObservationDataTypes": ["http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
                                          "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation"],
            "unitOfMeasurements": [{"name": "µg/m³", "symbol": "ug/m3", "definition": "http://unitsofmeasure.org/ucum#ug/m3"},
                                   {"name": "flag", "symbol": null, "definition": null}],
            "Sensor": {"name": "颗粒物传感器", "description": "pm", "encodingType": "application/pdf", "metadata": "http://example.org/pm.pdf"},
            "ObservedProperties": [{"name": "PM2.5", "definition": "http://example.org/pm25", "description": "fine particles"},
                                   {"name": "超标", "definition": "http://example.org/exceeds", "description": "over the limit"}]
        }))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    r.json()["@iot.id"].as_i64().expect("multidatastream id")
}

/// A publish to a MultiDatastream's Observations topic stores the Observation as
/// `POST /MultiDatastreams(ID)/Observations` does (acknowledged, delivered, readable over HTTP)
/// and refuses what that POST refuses, naming the component.
#[test]
fn mqtt_creates_multi_datastream_observations() {
    let env = manholes().env_with(|c| c.public_url = Some(crate::support::BASE.to_owned()));
    let m = multi_datastream(&env);
    let rt = runtime();
    let svc = rt.block_on(env.state.start_mqtt(embedded(None))).expect("broker");
    let port = svc.local_addr().expect("bound").port();
    let topic = format!("v1.1/MultiDatastreams({m})/Observations");
    let (wang, li, zhang) = (env.token("wang"), env.token("li"), env.token("zhang"));
    rt.block_on(async {
        let mut sub = connect("127.0.0.1", port, "office-m", Some(("wang", wang.as_str())), 10);
        sub.connected().await;
        sub.subscribe(&topic).await;
        let mut publ = connect("127.0.0.1", port, "station-m", Some(("li", li.as_str())), 10);
        publ.connected().await;
        publ.subscribe("shikong/refused").await;
        let body = json!({"phenomenonTime": "2025-06-01T08:00:00+08:00", "result": [35.5, true]});
        publ.client.publish(&topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap();
        publ.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
        let o = sub.received(&topic).await;
        let id = format!("M{m}-1748736000000000");
        assert_eq!((&o["@iot.id"], &o["result"]), (&json!(id), &json!([35.5, true])), "{o}");
        assert!(o["@iot.selfLink"].as_str().is_some_and(|l| l.ends_with(&format!("/Observations('{id}')"))), "{o}");
        for (bad, field) in [(r#"{"result": [1.0]}"#, "/result"), (r#"{"result": [1.0, "yes"]}"#, "/result/1")] {
            publ.client.publish(&topic, QoS::AtLeastOnce, false, bad).await.unwrap();
            let refusal = publ.received("shikong/refused").await;
            assert!(refusal["reason"].as_str().unwrap().contains(&format!("(field {field})")), "{refusal}");
        }
        let unknown = "v1.1/MultiDatastreams(999999)/Observations";
        publ.client.publish(unknown, QoS::AtLeastOnce, false, r#"{"result": [1.0, true]}"#).await.unwrap();
        let refusal = publ.received("shikong/refused").await;
        assert!(refusal["reason"].as_str().unwrap().contains("999999"), "{refusal}");
        // a citizen has no edit permission on sta_datastream
        let mut c = connect("127.0.0.1", port, "citizen-m", Some(("zhang", zhang.as_str())), 10);
        c.connected().await;
        c.subscribe("shikong/refused").await;
        c.client.publish(&topic, QoS::AtLeastOnce, false, r#"{"result": [2.0, false]}"#).await.unwrap();
        assert_eq!(c.received("shikong/refused").await["topic"], json!(topic));
    });
    let r = env.get(&format!("/sta/v1.1/MultiDatastreams({m})/Observations?$count=true")).token(&wang).send();
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let page = r.json();
    assert_eq!((&page["@iot.count"], &page["value"][0]["result"]), (&json!(1), &json!([35.5, true])), "{page}");
    rt.block_on(svc.shutdown());
}

#[test]
fn bridge_to_mosquitto_creates_and_publishes() {
    let env = manholes().env();
    let ds = datastream(&env, "MQTT 站 3");
    let rt = runtime();
    let broker = rt.block_on(mosquitto::Mosquitto::start());
    let svc = rt.block_on(env.state.start_mqtt(MqttMode::External { url: broker.url() })).expect("bridge");
    assert!(rt.block_on(svc.wait_connected(WAIT)), "the bridge did not connect to mosquitto");
    let root = env.get("/sta/v1.1").send().json();
    assert_eq!(root["serverSettings"][MQTT_CREATE]["endpoints"], json!([broker.url()]));

    let topic = format!("v1.1/Datastreams({ds})/Observations");
    let mut device = rt.block_on(async {
        let mut d = connect("127.0.0.1", broker.port, "device-3", None, 10);
        d.connected().await;
        d.subscribe(&topic).await;
        d.client
            .publish(
                &topic,
                QoS::AtLeastOnce,
                false,
                json!({"phenomenonTime": "2025-06-01T09:00:00Z", "result": 3.25}).to_string(),
            )
            .await
            .unwrap();
        d
    });
    // The publish reached the server through mosquitto and was stored.
    let deadline = std::time::Instant::now() + WAIT;
    while results(&env, ds).is_empty() {
        assert!(std::time::Instant::now() < deadline, "no observation created through mosquitto");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(results(&env, ds), [3.25]);

    // An observation posted over HTTP is published on mosquitto.
    let r = env
        .post(&format!("/sta/v1.1/Datastreams({ds})/Observations"))
        .token(&env.token("wang"))
        .json(&json!({"phenomenonTime": "2025-06-01T09:00:05Z", "result": 4.5}))
        .send();
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    rt.block_on(async {
        loop {
            // the device's own raw publish comes first (mosquitto delivers it), then the server's
            let o = device.received(&topic).await;
            if o["result"] == json!(4.5) {
                assert!(o["@iot.id"].is_string(), "{o}");
                break;
            }
        }
    });
    rt.block_on(svc.shutdown());
    drop(broker);
}

/// Environment variable naming the data directory of [`server_process_for_the_kill_test`].
const CHILD_DIR: &str = "SHIKONG_STA_MQTT_CHILD_DIR";
const CHILD_READY: &str = "sta-mqtt-child listening on ";

/// Not a test of its own: the server process of `acknowledged_readings_survive_sigkill`, which
/// runs this test binary again with only this test.
#[test]
#[ignore = "the server process of acknowledged_readings_survive_sigkill (it runs this itself)"]
fn server_process_for_the_kill_test() {
    let dir = std::env::var(CHILD_DIR).expect("run by acknowledged_readings_survive_sigkill");
    let state = state_in(std::path::Path::new(&dir));
    let rt = runtime();
    let svc = rt.block_on(state.start_mqtt(embedded(None))).expect("broker");
    println!("{CHILD_READY}{}", svc.local_addr().expect("bound"));
    rt.block_on(std::future::pending::<()>());
}

struct ChildServer {
    child: Child,
    port: u16,
}

impl ChildServer {
    fn start(dir: &std::path::Path) -> ChildServer {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["sta_mqtt::server_process_for_the_kill_test", "--exact", "--ignored", "--nocapture"])
            .env(CHILD_DIR, dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the server process");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = loop {
            let line = lines.next().expect("the server process ended before listening").unwrap();
            if let Some(addr) = line.strip_prefix(CHILD_READY) {
                break addr.parse::<SocketAddr>().unwrap().port();
            }
        };
        // keep reading its stdout so it never blocks on a full pipe
        std::thread::spawn(move || for _ in lines {});
        ChildServer { child, port }
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn acknowledged_readings_survive_sigkill() {
    let env = manholes().env();
    let ds = datastream(&env, "MQTT 站 4");
    let token = env.token("li");
    let rt = runtime();
    let mut server = ChildServer::start(env.dir.path());
    let topic = format!("v1.1/Datastreams({ds})/Observations");
    const CLIENTS: u64 = 4;
    const KILL_AFTER: usize = 150;
    let base = 1_748_736_000_i64; // 2025-06-01T00:00:00Z
    // Each client streams QoS 1 readings; an acknowledged one is recorded by (client, n).
    let refusals: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let acked: Vec<u64> = rt.block_on(async {
        let (ack_tx, mut ack_rx) = mpsc::unbounded_channel::<u64>();
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let mut m = connect("127.0.0.1", server.port, &format!("station-k{c}"), Some(("li", token.as_str())), 20);
            m.connected().await;
            m.subscribe("shikong/refused").await;
            let (client, topic, ack_tx) = (m.client.clone(), topic.clone(), ack_tx.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..5_000_u64 {
                    let key = c * 100_000 + n;
                    let body = json!({"phenomenonTime": jiff::Timestamp::from_second(base + key as i64).unwrap().to_string(), "result": key as f64});
                    if client.publish(&topic, QoS::AtLeastOnce, false, body.to_string()).await.is_err() {
                        return;
                    }
                }
            }));
            // Outgoing publishes are numbered in order; a PUBACK names the packet id in flight.
            let refusals = refusals.clone();
            tasks.push(tokio::spawn(async move {
                let mut in_flight: HashMap<u16, u64> = HashMap::new();
                let mut sent = 0_u64;
                while let Some(Ok(e)) = m.events.recv().await {
                    match e {
                        Event::Outgoing(Outgoing::Publish(pkid)) => {
                            in_flight.insert(pkid, c * 100_000 + sent);
                            sent += 1;
                        }
                        Event::Incoming(Packet::Publish(p)) if p.topic == "shikong/refused" => {
                            refusals.lock().unwrap().push(String::from_utf8_lossy(&p.payload).into_owned());
                        }
                        Event::Incoming(Packet::PubAck(a)) => {
                            let key = in_flight.remove(&a.pkid).expect("a PUBACK for a publish in flight");
                            let _ = ack_tx.send(key);
                        }
                        _ => {}
                    }
                }
            }));
        }
        drop(ack_tx);
        let mut acked = Vec::new();
        while acked.len() < KILL_AFTER {
            acked.push(tokio::time::timeout(WAIT, ack_rx.recv()).await.expect("acknowledgements").expect("open"));
        }
        // SIGKILL in the middle of the stream: no shutdown, whatever is in flight is lost.
        let _ = server.child.kill();
        let _ = server.child.wait();
        for t in tasks {
            let _ = t.await;
        }
        while let Ok(k) = ack_rx.try_recv() {
            acked.push(k);
        }
        acked
    });
    assert!(acked.len() >= KILL_AFTER);

    // Restart over the same data directory: every acknowledged reading is there.
    drop(server);
    let restarted = ChildServer::start(env.dir.path());
    let stored: std::collections::HashSet<String> = {
        let r =
            env.get(&format!("/sta/v1.1/Datastreams({ds})/Observations?$top=10000")).token(&env.token("wang")).send();
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        r.json()["value"].as_array().unwrap().iter().map(|o| o["@iot.id"].as_str().unwrap().to_owned()).collect()
    };
    let missing: Vec<u64> = acked
        .iter()
        .copied()
        .filter(|k| {
            let t = jiff::Timestamp::from_second(base + *k as i64).unwrap();
            !stored.contains(&format!("{ds}-{}", t.as_microsecond()))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{} acknowledged readings lost after SIGKILL: {missing:?}; refusals: {:?}",
        missing.len(),
        refusals.lock().unwrap()
    );
    assert!(refusals.lock().unwrap().is_empty(), "{:?}", refusals.lock().unwrap());
    println!("SIGKILL after {} acknowledged readings ({} stored in all): none lost", acked.len(), stored.len());

    // The restarted server takes readings again.
    rt.block_on(async {
        let mut m = connect("127.0.0.1", restarted.port, "station-after", Some(("li", token.as_str())), 10);
        m.connected().await;
        m.client
            .publish(&topic, QoS::AtLeastOnce, false, r#"{"phenomenonTime": "2025-05-01T00:00:00Z", "result": -1}"#)
            .await
            .unwrap();
        m.expect("PUBACK", |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
    });
    assert_eq!(results(&env, ds).first(), Some(&-1.0));
}
