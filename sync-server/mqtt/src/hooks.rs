//! What the server plugs into the broker and the bridge: who a client is, what it may do, and
//! where a published observation goes.
//!
//! Why traits: this crate speaks MQTT and knows STA topics, nothing else. The server owns users,
//! tokens, per-layer permissions and the time-series store; it implements these three traits
//! over them. The principal type `P` is the server's own (e.g. its authenticated user), so no
//! conversion happens here. Futures are boxed (`HookFuture`) so the hooks can be trait objects;
//! an implementation that does blocking store work moves it to a blocking thread itself.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use bytes::Bytes;

use crate::topic::{EntityId, EntitySet, PublishTarget, ResourcePath, Subscription};

/// The future a hook returns.
pub type HookFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What a client presented in its CONNECT.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub client_id: &'a str,
    /// The user name (empty when the client sent none).
    pub username: &'a str,
    /// The password: a session or device token, compared exactly (empty when none was sent).
    pub password: &'a str,
    pub peer: SocketAddr,
}

/// A refusal with the reason shown to the client (refusal topic) and written to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub reason: String,
}

impl Refusal {
    pub fn new(reason: impl Into<String>) -> Refusal {
        Refusal { reason: reason.into() }
    }
}

/// Turns CONNECT credentials into a principal, or refuses (CONNACK "bad user name or password").
pub trait Authenticator<P>: Send + Sync + 'static {
    fn authenticate<'a>(&'a self, credentials: Credentials<'a>) -> HookFuture<'a, Result<P, Refusal>>;
}

/// What a principal asks to do with a topic.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// Publish = create an observation in this datastream.
    Create(&'a PublishTarget),
    /// Subscribe to this path (the delivered entities are the path's).
    Subscribe(&'a Subscription),
}

/// Decides whether a principal may publish to / subscribe to a topic (per datastream, derived
/// from per-layer permissions by the server).
pub trait Authorizer<P>: Send + Sync + 'static {
    fn authorize<'a>(&'a self, principal: &'a P, access: Access<'a>) -> HookFuture<'a, Result<(), Refusal>>;
}

/// An observation (or other entity) that subscribers should receive.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The entity as the STA API shows it (with `@iot.id`).
    pub entity: serde_json::Value,
    /// Every path it is delivered on: collections it belongs to and its own entity path.
    /// Subscribers of a property of an entity path in this list receive that property.
    pub paths: Vec<ResourcePath>,
}

impl Notification {
    /// A new observation in a datastream (or multi-datastream), with its feature of interest when
    /// known: delivered on `Observations`, `Datastreams(D)/Observations`, `Observations(O)` and
    /// `FeaturesOfInterest(F)/Observations`.
    pub fn observation(
        id: EntityId,
        datastream: &PublishTarget,
        feature_of_interest: Option<EntityId>,
        entity: serde_json::Value,
    ) -> Notification {
        let mut paths = vec![
            ResourcePath::Collection(EntitySet::Observations),
            datastream.path(),
            ResourcePath::Entity { set: EntitySet::Observations, id },
        ];
        if let Some(foi) = feature_of_interest {
            paths.push(ResourcePath::Related {
                parent: EntitySet::FeaturesOfInterest,
                id: foi,
                set: EntitySet::Observations,
            });
        }
        Notification { entity, paths }
    }
}

/// The answer of the sink to one published observation.
#[derive(Debug, Clone, PartialEq)]
pub enum SinkOutcome {
    /// Stored; the notification goes to the subscribers (the server must not publish the same
    /// observation again through `notify`).
    Accepted(Notification),
    /// Not stored and not delivered to anyone; the reason goes to the publisher's refusal topic.
    /// Final: the publish is acknowledged (sending it again gets the same answer).
    Refused(Refusal),
    /// Not stored because of a failure on the server's side (database unavailable, I/O): not
    /// final, so never acknowledged. The embedded broker closes the connection without PUBACK
    /// (the client sends it again after reconnecting); the bridge leaves it unacknowledged (the
    /// external broker redelivers it when the bridge reconnects).
    Failed(Refusal),
}

/// Receives each authorised publish on a create topic: the payload is the Observation JSON as the
/// client sent it (parsed and checked by the server).
pub trait ObservationSink<P>: Send + Sync + 'static {
    fn create<'a>(&'a self, target: &'a PublishTarget, payload: Bytes, principal: &'a P)
    -> HookFuture<'a, SinkOutcome>;
}
