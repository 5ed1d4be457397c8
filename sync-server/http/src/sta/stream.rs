//! The observation stream: every observation newly stored — `POST …/Observations`,
//! `POST /CreateObservations` (dataArray), an MQTT publish to the embedded broker or through the
//! bridge — goes through here once, after its durable commit, as one [`ObservationBatch`] per
//! append.
//!
//! Why one in-process hook: several consumers need the same readings (MQTT subscribers of
//! observations created over HTTP, the live channel, alert rules), and the readings arrive by
//! several ways. Each consumer calls [`ObservationStream::subscribe`] and receives every batch
//! stored after that call. It is a Tokio `broadcast` channel of [`OBSERVATION_BACKLOG`]
//! batches: publishing never blocks the writers, and a consumer that falls behind by more than
//! the backlog gets `RecvError::Lagged(n)` (n batches missed) and should catch up from the
//! time-series store (`range` of the datastreams concerned) — nothing is lost from the store,
//! only from the stream. Duplicates (the same value re-sent) and refused readings are not
//! published: nothing new was stored; a correction is, with the value it replaced.

use std::sync::Arc;

use jiff::Timestamp;
use shikong_timeseries::{Outcome, Reading};
use tokio::sync::broadcast;

/// Batches a consumer may fall behind before it misses some (`RecvError::Lagged`).
pub const OBSERVATION_BACKLOG: usize = 4096;

/// How an observation reached the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObservationOrigin {
    /// `POST /sta/v1.1/Observations` or `…/Datastreams(ID)/Observations`.
    Http,
    /// `POST /sta/v1.1/CreateObservations` (dataArray).
    HttpDataArray,
    /// A publish to the embedded broker (`--mqtt`): its subscribers already received it.
    Mqtt,
    /// A publish on the external broker (`--mqtt-broker`): the bridge already published it.
    MqttBridge,
}

impl ObservationOrigin {
    /// Whether MQTT subscribers already received the batch (the broker or the bridge delivered
    /// it itself), so it must not be sent to them again.
    pub fn delivered_over_mqtt(self) -> bool {
        matches!(self, ObservationOrigin::Mqtt | ObservationOrigin::MqttBridge)
    }
}

/// One newly stored reading.
#[derive(Debug, Clone, PartialEq)]
pub struct NewObservation {
    /// The Datastream's `@iot.id` (the number of its feature code in `sta_datastream`).
    pub datastream: i64,
    /// Phenomenon time (microsecond precision, as stored).
    pub time: Timestamp,
    pub value: f64,
    /// The value this reading replaced when it is a correction (same datastream and time).
    pub previous: Option<f64>,
}

impl NewObservation {
    /// The Observation's `@iot.id` (`'DS-MICROS'`).
    pub fn iot_id(&self) -> String {
        format!("{}-{}", self.datastream, self.time.as_microsecond())
    }
}

/// The readings one append stored, in append order.
#[derive(Debug, Clone, PartialEq)]
pub struct ObservationBatch {
    pub origin: ObservationOrigin,
    /// Who sent them (user name), `None` for anonymous callers.
    pub author: Option<String>,
    pub observations: Vec<NewObservation>,
}

/// The hook (see the module docs). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ObservationStream {
    tx: broadcast::Sender<Arc<ObservationBatch>>,
}

impl Default for ObservationStream {
    fn default() -> Self {
        ObservationStream { tx: broadcast::channel(OBSERVATION_BACKLOG).0 }
    }
}

impl ObservationStream {
    /// Every batch stored from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<ObservationBatch>> {
        self.tx.subscribe()
    }

    /// Publishes what an append stored: the readings whose outcome is `Accepted` or `Corrected`
    /// (`readings` and `outcomes` in the same order, as `TimeSeries::append` returns them).
    /// Returns the batch published, if any reading was new.
    pub fn stored(
        &self,
        origin: ObservationOrigin,
        author: Option<&str>,
        readings: &[Reading],
        outcomes: &[Outcome],
    ) -> Option<Arc<ObservationBatch>> {
        let observations: Vec<NewObservation> = readings
            .iter()
            .zip(outcomes)
            .filter_map(|(r, o)| {
                let previous = match o {
                    Outcome::Accepted => None,
                    Outcome::Corrected { previous } => Some(*previous),
                    Outcome::Duplicate | Outcome::Refused { .. } => return None,
                };
                Some(NewObservation { datastream: r.datastream, time: r.time, value: r.value, previous })
            })
            .collect();
        if observations.is_empty() {
            return None;
        }
        let batch = Arc::new(ObservationBatch { origin, author: author.map(str::to_owned), observations });
        // no receiver is not an error: nobody listens yet
        let _ = self.tx.send(batch.clone());
        Some(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_new_readings_are_published_in_order() {
        let s = ObservationStream::default();
        let mut rx = s.subscribe();
        let t = |us: i64| Timestamp::from_microsecond(us).unwrap();
        let readings = vec![
            Reading::new(1, t(1), 1.0),
            Reading::new(1, t(2), 2.0),
            Reading::new(2, t(3), 3.0),
            Reading::new(2, t(4), 4.0),
        ];
        let outcomes = vec![
            Outcome::Accepted,
            Outcome::Duplicate,
            Outcome::Corrected { previous: 9.0 },
            Outcome::Refused { reason: shikong_timeseries::Refusal::UnknownDatastream { datastream: 2 } },
        ];
        s.stored(ObservationOrigin::Http, Some("wang"), &readings, &outcomes);
        let got = rx.try_recv().unwrap();
        assert_eq!(got.origin, ObservationOrigin::Http);
        assert_eq!(got.author.as_deref(), Some("wang"));
        assert_eq!(
            got.observations,
            vec![
                NewObservation { datastream: 1, time: t(1), value: 1.0, previous: None },
                NewObservation { datastream: 2, time: t(3), value: 3.0, previous: Some(9.0) },
            ]
        );
        assert_eq!(got.observations[1].iot_id(), "2-3");
        // nothing new: nothing published
        assert!(s.stored(ObservationOrigin::Mqtt, None, &readings[1..2], &outcomes[1..2]).is_none());
        assert!(rx.try_recv().is_err());
    }
}
