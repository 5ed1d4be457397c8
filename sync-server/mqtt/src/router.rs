//! Who is subscribed to what, and delivering a [`Notification`] to them.
//!
//! Why a map keyed by the canonical resource path: STA topics name one collection or entity, so a
//! notification lists the few paths it is visible on and delivery is a handful of hash look-ups,
//! independent of the number of subscriptions. Each subscriber keeps the exact topic text it
//! subscribed with (including `?$select=…`): STA delivers on that text.

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use rumqttc::QoS;
use tokio::sync::mpsc;

use crate::hooks::Notification;
use crate::topic::{ResourcePath, Subscription};

/// A publish a connection's writer sends.
#[derive(Debug)]
pub(crate) enum ToClient {
    Publish { topic: String, payload: Bytes, qos: QoS },
}

#[derive(Debug)]
struct Entry {
    conn: u64,
    filter: String,
    select: Option<Vec<String>>,
    qos: QoS,
    property: bool,
    tx: mpsc::Sender<ToClient>,
}

/// How many messages one notification produced.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Delivered {
    pub sent: u64,
    /// Dropped because the subscriber's outgoing queue was full (a slow reader).
    pub dropped: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Router {
    subs: RwLock<HashMap<String, Vec<Entry>>>,
    property_subs: AtomicUsize,
}

impl Router {
    /// Adds (or replaces, same connection and filter) a subscription; returns its routing key.
    pub fn subscribe(
        &self,
        conn: u64,
        filter: &str,
        sub: &Subscription,
        qos: QoS,
        tx: mpsc::Sender<ToClient>,
    ) -> String {
        let key = sub.path.to_string();
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        let list = subs.entry(key.clone()).or_default();
        let property = matches!(sub.path, ResourcePath::Property { .. });
        let replaced = list.iter().filter(|e| e.conn == conn && e.filter == filter && e.property).count();
        list.retain(|e| !(e.conn == conn && e.filter == filter));
        self.property_subs.fetch_sub(replaced, Ordering::Relaxed);
        if property {
            self.property_subs.fetch_add(1, Ordering::Relaxed);
        }
        list.push(Entry { conn, filter: filter.to_string(), select: sub.select.clone(), qos, property, tx });
        key
    }

    /// Removes one subscription of a connection.
    pub fn unsubscribe(&self, conn: u64, key: &str, filter: &str) {
        self.remove(conn, key, |e| e.filter == filter);
    }

    /// Removes every subscription of a connection under these keys.
    pub fn remove_connection(&self, conn: u64, keys: &[String]) {
        for key in keys {
            self.remove(conn, key, |_| true);
        }
    }

    fn remove(&self, conn: u64, key: &str, also: impl Fn(&Entry) -> bool) {
        let mut subs = self.subs.write().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = subs.get_mut(key) {
            let properties = list.iter().filter(|e| e.conn == conn && also(e) && e.property).count();
            list.retain(|e| !(e.conn == conn && also(e)));
            self.property_subs.fetch_sub(properties, Ordering::Relaxed);
            if list.is_empty() {
                subs.remove(key);
            }
        }
    }

    /// Delivers a notification to every subscriber of its paths (and of its entity's properties).
    pub fn deliver(&self, n: &Notification) -> Delivered {
        let mut out = Delivered::default();
        let subs = self.subs.read().unwrap_or_else(|p| p.into_inner());
        if subs.is_empty() {
            return out;
        }
        let mut full: Option<Bytes> = None;
        for path in &n.paths {
            if let Some(list) = subs.get(&path.to_string()) {
                for e in list {
                    let payload = match &e.select {
                        None => full.get_or_insert_with(|| Bytes::from(n.entity.to_string())).clone(),
                        Some(names) => Bytes::from(select(&n.entity, names).to_string()),
                    };
                    send(e, payload, &mut out);
                }
            }
            if matches!(path, ResourcePath::Entity { .. })
                && self.property_subs.load(Ordering::Relaxed) > 0
                && let Some(object) = n.entity.as_object()
            {
                for (name, value) in object {
                    if let Some(list) = subs.get(&format!("{path}/{name}")) {
                        let mut one = serde_json::Map::new();
                        one.insert(name.clone(), value.clone());
                        let payload = Bytes::from(serde_json::Value::Object(one).to_string());
                        for e in list {
                            send(e, payload.clone(), &mut out);
                        }
                    }
                }
            }
        }
        out
    }
}

fn send(e: &Entry, payload: Bytes, out: &mut Delivered) {
    let msg = ToClient::Publish { topic: e.filter.clone(), payload, qos: e.qos };
    match e.tx.try_send(msg) {
        Ok(()) => out.sent += 1,
        Err(mpsc::error::TrySendError::Full(_)) => out.dropped += 1,
        Err(mpsc::error::TrySendError::Closed(_)) => {}
    }
}

/// `$select`: the entity with only the named properties (`id` is `@iot.id`; a navigation
/// property keeps its `@iot.navigationLink`).
pub fn select(entity: &serde_json::Value, names: &[String]) -> serde_json::Value {
    let Some(object) = entity.as_object() else {
        return entity.clone();
    };
    let mut picked = serde_json::Map::new();
    for name in names {
        let keys: Vec<String> = if name == "id" {
            vec!["@iot.id".to_string()]
        } else if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            vec![format!("{name}@iot.navigationLink"), name.clone()]
        } else {
            vec![name.clone()]
        };
        for key in keys {
            if let Some(v) = object.get(&key) {
                picked.insert(key, v.clone());
            }
        }
    }
    serde_json::Value::Object(picked)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::topic::parse_subscription;
    use serde_json::json;

    #[test]
    fn select_keeps_named_properties() {
        let e = json!({"@iot.id": 5, "result": 3.2, "phenomenonTime": "2026-01-01T00:00:00Z",
                       "Datastream@iot.navigationLink": "x"});
        let names = vec!["result".to_string(), "id".to_string(), "Datastream".to_string()];
        assert_eq!(select(&e, &names), json!({"result": 3.2, "@iot.id": 5, "Datastream@iot.navigationLink": "x"}));
    }

    #[test]
    fn delivers_by_path_and_property() {
        let router = Router::default();
        let (tx, mut rx) = mpsc::channel(8);
        let ds = parse_subscription("v1.1/Datastreams(1)/Observations?$select=result").unwrap();
        router.subscribe(1, "v1.1/Datastreams(1)/Observations?$select=result", &ds, QoS::AtLeastOnce, tx.clone());
        let prop = parse_subscription("v1.1/Observations(9)/result").unwrap();
        let key = router.subscribe(1, "v1.1/Observations(9)/result", &prop, QoS::AtMostOnce, tx);
        let n = Notification::observation(
            crate::topic::EntityId::Number(9),
            &crate::topic::PublishTarget::Datastream(crate::topic::EntityId::Number(1)),
            None,
            json!({"@iot.id": 9, "result": 1.5}),
        );
        assert_eq!(router.deliver(&n), Delivered { sent: 2, dropped: 0 });
        let mut got = Vec::new();
        while let Ok(ToClient::Publish { topic, payload, .. }) = rx.try_recv() {
            got.push((topic, String::from_utf8_lossy(&payload).to_string()));
        }
        assert_eq!(
            got,
            vec![
                ("v1.1/Datastreams(1)/Observations?$select=result".to_string(), r#"{"result":1.5}"#.to_string()),
                ("v1.1/Observations(9)/result".to_string(), r#"{"result":1.5}"#.to_string()),
            ]
        );
        router.unsubscribe(1, &key, "v1.1/Observations(9)/result");
        assert_eq!(router.deliver(&n).sent, 1);
    }
}
