//! Many MQTT stations publishing at the same time into the real server state (the batched intake
//! of `sta/intake.rs` and the pipelined connections of the embedded broker): every acknowledged
//! reading is stored once with its value, every bad one — a body the API refuses, a user without
//! edit permission — is refused alone without holding back the good ones of its batch.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;

use crate::sta_mqtt::{datastream, embedded, results};
use crate::support::{manholes, runtime};

const STATIONS: usize = 30;
const READINGS: usize = 60;
/// Every this many readings of a station is a bad body (`result` not a number).
const BAD_EVERY: usize = 15;

/// Publishes `bodies` to `topic` as `user` with up to 20 unacknowledged; the PUBACKs and the
/// refusals received (their count).
async fn station(
    port: u16,
    id: String,
    user: &str,
    token: String,
    topic: String,
    bodies: Vec<String>,
) -> (usize, usize) {
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_credentials(user, token).set_keep_alive(Duration::from_secs(30)).set_inflight(20);
    let (client, mut el) = AsyncClient::new(o, 64);
    let n = bodies.len();
    let publisher = client.clone();
    tokio::spawn(async move {
        publisher.subscribe("shikong/refused", QoS::AtLeastOnce).await.unwrap();
        for b in bodies {
            publisher.publish(&topic, QoS::AtLeastOnce, false, b).await.unwrap();
        }
    });
    let (mut acks, mut refusals) = (0, 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acks < n {
        let e = tokio::time::timeout_at(deadline, el.poll()).await.expect("all PUBACKs within 60 s");
        match e.expect("the connection stays up") {
            Event::Incoming(Packet::PubAck(_)) => acks += 1,
            Event::Incoming(Packet::Publish(p)) if p.topic == "shikong/refused" => refusals += 1,
            _ => {}
        }
    }
    // refusals are sent before the PUBACK of their publish: all have arrived
    while let Ok(Ok(e)) = tokio::time::timeout(Duration::from_millis(200), el.poll()).await {
        if matches!(e, Event::Incoming(Packet::Publish(ref p)) if p.topic == "shikong/refused") {
            refusals += 1;
        }
    }
    let _ = client.disconnect().await;
    (acks, refusals)
}

#[test]
fn tens_of_stations_at_once_every_acknowledged_reading_stored() {
    let env = manholes().env();
    let ids: Vec<i64> = (0..STATIONS).map(|s| datastream(&env, &format!("并发站 {s:02}"))).collect();
    let rt = runtime();
    let svc = rt.block_on(env.state.start_mqtt(embedded(None))).expect("broker");
    let port = svc.local_addr().expect("bound").port();
    let (wang, zhang) = (env.token("wang"), env.token("zhang"));
    let value = |s: usize, i: usize| (s * 1000 + i) as f64 / 4.0;

    let outcomes = rt.block_on(async {
        let mut tasks = Vec::new();
        for (s, ds) in ids.iter().enumerate() {
            let bodies = (0..READINGS)
                .map(|i| {
                    let t = format!("2025-06-01T08:{:02}:{:02}+08:00", i / 60, i % 60);
                    if i % BAD_EVERY == BAD_EVERY - 1 {
                        json!({"phenomenonTime": t, "result": "bad"}).to_string()
                    } else {
                        json!({"phenomenonTime": t, "result": value(s, i)}).to_string()
                    }
                })
                .collect();
            let topic = format!("v1.1/Datastreams({ds})/Observations");
            tasks.push(tokio::spawn(station(port, format!("load-{s}"), "wang", wang.clone(), topic, bodies)));
        }
        // a citizen's readings into the first station's stream, at the same time: each refused
        let citizen: Vec<String> = (0..20).map(|i| json!({"result": 1000.0 + f64::from(i)}).to_string()).collect();
        let topic = format!("v1.1/Datastreams({})/Observations", ids[0]);
        tasks.push(tokio::spawn(station(port, "load-citizen".into(), "zhang", zhang.clone(), topic, citizen)));
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.expect("station task"));
        }
        out
    });

    let bad = READINGS / BAD_EVERY;
    for (s, (acks, refusals)) in outcomes[..STATIONS].iter().enumerate() {
        assert_eq!(*acks, READINGS, "station {s}: every publish acknowledged");
        assert_eq!(*refusals, bad, "station {s}: only the bad bodies refused");
    }
    assert_eq!(outcomes[STATIONS], (20, 20), "the citizen's publishes acknowledged and refused");
    for (s, ds) in ids.iter().enumerate() {
        let want: Vec<f64> = (0..READINGS).filter(|i| i % BAD_EVERY != BAD_EVERY - 1).map(|i| value(s, i)).collect();
        assert_eq!(results(&env, *ds), want, "station {s}: every good reading stored once, nothing else");
    }
    let stats = svc.broker_stats().expect("broker");
    assert_eq!(stats.observations_accepted as usize, STATIONS * (READINGS - bad), "{stats:?}");
    assert_eq!(stats.publishes_refused as usize, STATIONS * bad + 20, "{stats:?}");
    rt.block_on(svc.shutdown());
}
