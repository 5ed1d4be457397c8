//! The MQTT intake's batcher: publishes from every connection wait in one bounded queue; a task
//! takes all that are waiting (up to [`MAX_BATCH`]) and stores them in one blocking call — one
//! permission check per user, one check per Datastream, one append (one group commit) — then
//! answers each publish, whose PUBACK the broker sends only then.
//!
//! Why: a publish handled alone costs a blocking-pool hop and a store permit (two per core, held
//! while its append waits for the writer's group commit), so at most a handful of readings shared
//! a commit and intake stalled near a thousand readings/s with the CPU idle. Batched, a commit
//! carries every reading that arrived while the previous batch was stored, so the batch grows
//! with the load. [`IN_FLIGHT`] batches run at once: one is parsed while another waits for its
//! commit; their appends run in the order the batches were taken ([`AppendOrder`]), so readings
//! are stored, streamed and delivered in the order they arrived. The queue ([`QUEUE`] publishes) is the back-pressure: when it is full, a connection's
//! publish waits, the connection stops reading, and TCP slows the publisher.
//!
//! Nothing changes for the publisher: each reading is checked exactly as `POST
//! …/Datastreams(ID)/Observations` checks it (`observations::prepare`), refused with its own
//! reason, and acknowledged after its durable commit. Permissions are checked in every batch
//! (never cached across batches), so a revoked role stops publishes from the next batch on.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use bytes::Bytes;
use shikong_auth::Client;
use shikong_sta::body::{BodyLimits, Link, Ref, plan_create};
use shikong_sta::entity::{EntityType, Id};
use shikong_timeseries::{Reading, Stored};
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::super::access::{Action, Caller};
use super::super::problem::{ApiError, ApiResult};
use super::super::{AppState, blocking};
use super::mqtt::MqttPrincipal;
use super::stream::ObservationOrigin;
use super::{entities, observations};

/// Publishes stored in one blocking call at most.
pub const MAX_BATCH: usize = 2_000;
/// Batches being stored at once.
pub const IN_FLIGHT: usize = 2;
/// Publishes waiting at most (then publishers wait).
pub const QUEUE: usize = 4_096;

/// One publish to `v1.1/Datastreams(ID)/Observations`, waiting for its answer.
struct Pending {
    datastream: i64,
    payload: Bytes,
    principal: MqttPrincipal,
    answer: oneshot::Sender<ApiResult<Stored>>,
}

/// The queue's handle (held by the MQTT hooks); the task ends when it is dropped.
#[derive(Debug, Clone)]
pub(crate) struct IntakeQueue {
    tx: mpsc::Sender<Pending>,
}

impl IntakeQueue {
    /// Starts the batching task on the current runtime.
    pub fn start(st: AppState) -> IntakeQueue {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(st, rx));
        IntakeQueue { tx }
    }

    /// Stores one publish; its answer comes after the batch's durable commit. `Err` is the server's
    /// failure (the task is gone or the batch failed before answering): never acknowledge it.
    pub async fn store(&self, datastream: i64, payload: Bytes, principal: MqttPrincipal) -> ApiResult<Stored> {
        let (answer, rx) = oneshot::channel();
        let pending = Pending { datastream, payload, principal, answer };
        self.tx.send(pending).await.map_err(|_| ApiError::internal("the MQTT intake stopped"))?;
        rx.await.map_err(|_| ApiError::internal("the MQTT intake dropped the reading before storing it"))?
    }
}

/// Batches append in the order they were taken: batch `n` waits until batch `n - 1` appended (or
/// ended without appending).
#[derive(Debug, Default)]
struct AppendOrder {
    state: Mutex<OrderState>,
    turn: Condvar,
}

#[derive(Debug, Default)]
struct OrderState {
    /// The batch whose turn it is.
    next: u64,
    /// Batches that ended early (before their turn came), skipped when it does.
    ended: BTreeSet<u64>,
}

impl AppendOrder {
    /// Blocks until it is batch `seq`'s turn.
    fn wait_turn(&self, seq: u64) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while s.next != seq {
            s = self.turn.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
    }

    /// Batch `seq` is done (appended, or ended without): the next one's turn. Never blocks.
    fn done(&self, seq: u64) {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if s.next == seq {
            s.next += 1;
            loop {
                let n = s.next;
                if !s.ended.remove(&n) {
                    break;
                }
                s.next += 1;
            }
            self.turn.notify_all();
        } else if s.next < seq {
            s.ended.insert(seq);
        }
    }
}

/// A batch's place in the append order, given back however the batch ends (also when its blocking
/// call never runs or panics).
struct Ticket {
    order: Arc<AppendOrder>,
    seq: u64,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.order.done(self.seq);
    }
}

async fn run(st: AppState, mut rx: mpsc::Receiver<Pending>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    let order = Arc::new(AppendOrder::default());
    let mut seq = 0u64;
    while let Some(first) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        // everything that arrived meanwhile (while the slots were busy) joins this batch
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let st = st.clone();
        let ticket = Ticket { order: order.clone(), seq };
        seq += 1;
        tokio::spawn(async move {
            let _slot = slot;
            // `Err`: the blocking call never ran or panicked; the answers' senders were dropped
            // with it, so every publish of the batch hears a server failure
            let _ = blocking(move || {
                store_batch(&st, batch, &ticket);
                Ok(())
            })
            .await;
        });
    }
}

/// Checks, appends and answers one batch (on a blocking thread).
fn store_batch(st: &AppState, batch: Vec<Pending>, ticket: &Ticket) {
    let answers = check_and_append(st, &batch, ticket);
    for (p, a) in batch.into_iter().zip(answers) {
        // the publisher may have gone meanwhile: nothing to answer
        let _ = p.answer.send(a);
    }
}

/// One answer per publish, in order.
fn check_and_append(st: &AppState, batch: &[Pending], ticket: &Ticket) -> Vec<ApiResult<Stored>> {
    let shared = (|| {
        entities::ensure_layers(st.store(), &st.sta)?;
        let layer = st.store().layer(entities::governing_layer(EntityType::Observation))?;
        Ok::<_, ApiError>((layer, st.timeseries()?))
    })();
    let (layer, ts) = match shared {
        Ok(s) => s,
        Err(e) => return batch.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut allowed: HashMap<String, ApiResult<()>> = HashMap::new();
    let mut known: HashMap<i64, bool> = HashMap::new();
    let mut answers: Vec<Option<ApiResult<Stored>>> = Vec::with_capacity(batch.len());
    let mut readings: Vec<Reading> = Vec::new();
    // (index in the batch, origin, author) of each reading
    let mut whose: Vec<(usize, ObservationOrigin, Option<&str>)> = Vec::new();
    for (i, p) in batch.iter().enumerate() {
        let (origin, author) = match &p.principal {
            MqttPrincipal::User(u) => (ObservationOrigin::Mqtt, Some(u.username.as_str())),
            // the external broker's ACL decided what reaches the create topics
            MqttPrincipal::Bridge => (ObservationOrigin::MqttBridge, None),
        };
        let checked = (|| {
            if let MqttPrincipal::User(u) = &p.principal {
                allowed
                    .entry(u.username.clone())
                    .or_insert_with(|| {
                        let caller = Caller { principal: Some(u.clone()), client: Client::default() };
                        caller.allowed(st, &layer, Action::Edit)
                    })
                    .clone()?;
            }
            let body = super::write::parse_body(&p.payload, "the MQTT payload")?;
            let parent = Link { nav: "Datastream", target: Ref::Existing(Id::Int(p.datastream)) };
            let plan = plan_create(EntityType::Observation, &body, Some(parent), BodyLimits::default())
                .map_err(super::sta_error)?;
            observations::prepare(st, &ts, &plan, &mut known)
        })();
        match checked {
            Ok(r) => {
                readings.push(r);
                whose.push((i, origin, author));
                answers.push(None);
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    if !readings.is_empty() {
        ticket.order.wait_turn(ticket.seq);
        let appended = ts.append(&readings);
        if let Ok(outcomes) = &appended {
            publish(st, &readings, outcomes, &whose);
        }
        // the next batch may append (the ticket's drop would say so again: harmless)
        ticket.order.done(ticket.seq);
        match appended {
            Ok(outcomes) => {
                for (k, (i, _, _)) in whose.iter().enumerate() {
                    answers[*i] = Some(observations::answer(&readings[k], outcomes.get(k)));
                }
            }
            Err(e) => {
                let e = ApiError::internal(e);
                for (i, _, _) in &whose {
                    answers[*i] = Some(Err(e.clone()));
                }
            }
        }
    }
    answers.into_iter().map(|a| a.unwrap_or_else(|| Err(ApiError::internal("no answer for the reading")))).collect()
}

/// Publishes the stored readings on the observation stream, one batch per (origin, author) in
/// the order they first appear.
fn publish(
    st: &AppState,
    readings: &[Reading],
    outcomes: &[shikong_timeseries::Outcome],
    whose: &[(usize, ObservationOrigin, Option<&str>)],
) {
    type Sender<'a> = (ObservationOrigin, Option<&'a str>);
    let mut groups: Vec<(Sender<'_>, Vec<usize>)> = Vec::new();
    let mut group_of: HashMap<Sender<'_>, usize> = HashMap::new();
    for (k, (_, origin, author)) in whose.iter().enumerate() {
        let g = *group_of.entry((*origin, *author)).or_insert_with(|| {
            groups.push(((*origin, *author), Vec::new()));
            groups.len() - 1
        });
        groups[g].1.push(k);
    }
    for ((origin, author), ks) in groups {
        let rs: Vec<Reading> = ks.iter().map(|&k| readings[k].clone()).collect();
        let os: Vec<_> = ks.iter().filter_map(|&k| outcomes.get(k).cloned()).collect();
        st.observations().stored(origin, author, &rs, &os);
    }
}
