//! Bridge mode against Debian's mosquitto, started privately on a free loopback port.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed unwrap is a failed test

mod support;

use std::sync::Arc;
use std::time::Duration;

use rumqttc::{Packet, QoS};
use serde_json::json;
use shikong_mqtt::topic::{EntityId, PublishTarget};
use shikong_mqtt::{Bridge, BridgeConfig, Notification, REFUSALS_TOPIC};
use support::{Mosquitto, TestAuthz, TestSink, client};

fn bridge(m: &Mosquitto, sink: Arc<TestSink>) -> Bridge {
    let mut config = BridgeConfig::new(m.url());
    config.backoff_min = Duration::from_millis(100);
    config.backoff_max = Duration::from_millis(800);
    Bridge::start(config, "bridge".to_string(), Arc::new(TestAuthz), sink).unwrap()
}

async fn subscribed(c: &mut support::Client, filters: &[&str]) {
    for f in filters {
        c.client.subscribe(*f, QoS::AtLeastOnce).await.unwrap();
        c.expect("SUBACK", |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
    }
}

#[tokio::test]
async fn bridge_creates_observations_and_publishes_them() {
    let m = Mosquitto::start().await;
    let sink = Arc::new(TestSink::default());
    let b = bridge(&m, sink.clone());
    assert!(b.wait_connected(Duration::from_secs(10)).await, "bridge connected");

    let mut device = client(m.addr(), None);
    device.connected().await;
    subscribed(&mut device, &["v1.1/Datastreams(1)/Observations", REFUSALS_TOPIC]).await;

    device
        .client
        .publish("v1.1/Datastreams(1)/Observations", QoS::AtLeastOnce, false, json!({"result": 7.25}).to_string())
        .await
        .unwrap();
    // mosquitto delivers the raw reading, then the bridge's created observation
    let raw = device.publish_on("v1.1/Datastreams(1)/Observations").await;
    assert_eq!(raw, json!({"result": 7.25}));
    let created = device.publish_on("v1.1/Datastreams(1)/Observations").await;
    assert_eq!(created["@iot.id"], json!(1000));
    assert_eq!(created["result"], json!(7.25));
    {
        let c = sink.created.lock().unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, PublishTarget::Datastream(EntityId::Number(1)));
        assert_eq!(c[0].2, "bridge");
    }

    // refused by the sink and by the authorizer: the reasons on the refusal topic
    for (topic, body, reason) in [
        ("v1.1/Datastreams(1)/Observations", json!({"result": "n/a"}), "result is not a number"),
        ("v1.1/Datastreams(9)/Observations", json!({"result": 1}), "bridge may not use this datastream"),
    ] {
        device.client.publish(topic, QoS::AtLeastOnce, false, body.to_string()).await.unwrap();
        let r = device.publish_on(REFUSALS_TOPIC).await;
        assert_eq!(r["topic"], json!(topic));
        assert!(r["reason"].as_str().unwrap().contains(reason), "{r}");
    }

    // an observation posted over HTTP reaches the external broker's subscribers, once, and the
    // bridge does not create it again when it comes back on the create topic
    b.notify(&Notification::observation(
        EntityId::Number(77),
        &PublishTarget::Datastream(EntityId::Number(1)),
        None,
        json!({"@iot.id": 77, "result": 1.0}),
    ));
    let got = device.publish_on("v1.1/Datastreams(1)/Observations").await;
    assert_eq!(got["@iot.id"], json!(77));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.count(), 1, "echoes are not created again");
    let s = b.stats();
    assert_eq!((s.observations_accepted, s.publishes_refused, s.echoes_skipped), (1, 2, 2));
    b.shutdown().await;
}

#[tokio::test]
async fn bridge_reconnects_after_the_broker_restarts() {
    let mut m = Mosquitto::start().await;
    let sink = Arc::new(TestSink::default());
    let b = bridge(&m, sink.clone());
    assert!(b.wait_connected(Duration::from_secs(10)).await, "bridge connected");

    m.stop();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while b.is_connected() {
        assert!(tokio::time::Instant::now() < deadline, "the bridge did not notice the broker stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // a few failed attempts with growing waits, then the broker is back
    tokio::time::sleep(Duration::from_millis(1500)).await;
    m.restart().await;
    assert!(b.wait_connected(Duration::from_secs(15)).await, "bridge reconnected");
    assert_eq!(b.stats().connects, 2);

    let mut device = client(m.addr(), None);
    device.connected().await;
    subscribed(&mut device, &["v1.1/Datastreams(2)/Observations"]).await;
    device
        .client
        .publish("v1.1/Datastreams(2)/Observations", QoS::AtLeastOnce, false, json!({"result": 2}).to_string())
        .await
        .unwrap();
    device.publish_on("v1.1/Datastreams(2)/Observations").await;
    let created = device.publish_on("v1.1/Datastreams(2)/Observations").await;
    assert_eq!(created["result"], json!(2));
    assert_eq!(sink.count(), 1);
    b.shutdown().await;
}
