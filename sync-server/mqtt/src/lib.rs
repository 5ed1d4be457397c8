//! MQTT for the SensorThings API 1.1 MQTT extension: readings published to
//! `v1.1/Datastreams(ID)/Observations` become observations, and subscribers of an entity's topic
//! receive what is created.
//!
//! Two ways to run, one set of hooks:
//! - [`Broker`]: the embedded broker (`shikong serve --mqtt ADDR`), MQTT 3.1.1 over TCP, which
//!   authenticates each client ([`Authenticator`]: user name + session or device token as the
//!   password), authorises each publish and subscription per topic ([`Authorizer`]), and gives
//!   each authorised publish to the [`ObservationSink`] before any subscriber sees it;
//! - [`Bridge`]: attached to an external broker as a service user (`--mqtt-broker URL`).
//!
//! The server implements the three traits over its users, per-layer permissions and time-series
//! store, and calls `notify` for observations created through HTTP. This crate knows nothing of
//! HTTP or of the store; the Observation JSON is passed through as bytes (the server parses it).
//!
//! A refused publish (MQTT 3.1.1 has no reason code in PUBACK) is still acknowledged — it was
//! answered, redelivering would not change the answer — is delivered to nobody, is logged, and
//! its reason goes as a [`shikong_protocol::mqtt::MqttRefusal`] to the publisher's own
//! [`REFUSALS_TOPIC`] (`shikong/refused`) when it subscribed to it. Refused subscriptions get
//! the SUBACK failure code and the same message.
#![forbid(unsafe_code)]

mod bridge;
mod broker;
mod hooks;
mod router;
pub mod topic;

pub use bridge::{Bridge, BridgeConfig, BridgeStats, BrokerAddress, CREATE_FILTERS, parse_url};
pub use broker::{Broker, BrokerConfig, BrokerStats, Hooks};
pub use hooks::{
    Access, Authenticator, Authorizer, Credentials, HookFuture, Notification, ObservationSink, Refusal, SinkOutcome,
};
pub use router::select;
pub use topic::{EntityId, EntitySet, PublishTarget, REFUSALS_TOPIC, ResourcePath, Subscription, TopicError};

/// Why the broker or the bridge could not start.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen for MQTT on {addr}: {source}")]
    Bind { addr: std::net::SocketAddr, source: std::io::Error },
    #[error("MQTT broker URL '{url}': {reason}")]
    BrokerUrl { url: String, reason: String },
}
