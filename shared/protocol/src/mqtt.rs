//! The MQTT messages that are not SensorThings entities.

use serde::{Deserialize, Serialize};

/// Why the server refused a publish or a subscription, sent on `shikong/refused` to the client
/// that made it (MQTT 3.1.1 acknowledgements carry no reason).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MqttRefusal {
    /// The topic of the refused publish or subscription.
    pub topic: String,
    /// The packet id of the refused QoS 1/2 publish or of the SUBSCRIBE (none for QoS 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub packet_id: Option<u16>,
    pub reason: String,
}
