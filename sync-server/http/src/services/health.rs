//! Health checks of registered services: every `ServicesConfig::health_every` (`serve` runs
//! [`run`]; tests call [`check_all`]) each service's describing URL (its capabilities, landing
//! collections, `?f=json`, or one tile) is requested, at most `health_concurrency` at once, each
//! bounded by the upstream timeout. A 2xx answer is up (with its latency); anything else is down
//! with the reason in words (never the outside address). The outcome is stored with the service
//! (`GET /services/{id}` shows it; every process sees it).
//!
//! Alerts: a service going down (and coming back) is told to administrators on the live channel
//! (`LiveEvent::ServiceHealth` to the role `admin`, as sensor alerts use `LiveEvent::Alert`),
//! and the open alert is the stored `down_since`. Sensor alerts' cases are not used: a service
//! outage is not a city case with a flow, a station and a place. Each process checks on its own
//! schedule, so with several processes a change may be told once per process.

use futures_util::StreamExt as _;
use shikong_protocol::api::LiveEvent;
use shikong_protocol::api::services::{HealthState, ServiceHealth, ServiceHealthEvent};

use super::{ServiceEntry, capabilities, registry};
use crate::AppState;
use crate::events::Audience;

fn unknown() -> ServiceHealth {
    ServiceHealth {
        state: HealthState::Unknown,
        checked_at: None,
        latency_ms: None,
        last_error: None,
        down_since: None,
        failures: 0,
    }
}

/// A new service's health (registered while answering, but not checked yet).
pub fn initial() -> String {
    serde_json::to_string(&unknown()).unwrap_or_default()
}

/// A stored health document (unknown when unreadable).
pub fn parse(s: &str) -> ServiceHealth {
    serde_json::from_str(s).unwrap_or_else(|_| unknown())
}

/// What one round found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HealthRound {
    pub checked: usize,
    pub up: usize,
    pub down: usize,
    /// Services that changed between up and down.
    pub changed: usize,
}

/// The next health of a service after a check: `Ok(latency)` or `Err(reason)`.
pub fn next(prev: &ServiceHealth, outcome: Result<u64, String>, now: jiff::Timestamp) -> ServiceHealth {
    match outcome {
        Ok(ms) => ServiceHealth {
            state: HealthState::Up,
            checked_at: Some(shikong_model::time::beijing(now)),
            latency_ms: Some(ms),
            last_error: prev.last_error.clone(),
            down_since: None,
            failures: 0,
        },
        Err(reason) => ServiceHealth {
            state: HealthState::Down,
            checked_at: Some(shikong_model::time::beijing(now)),
            latency_ms: None,
            last_error: Some(reason),
            down_since: prev.down_since.clone().or_else(|| Some(shikong_model::time::beijing(now))),
            failures: prev.failures.saturating_add(1),
        },
    }
}

async fn probe(state: &AppState, e: &ServiceEntry) -> Result<u64, String> {
    let url = capabilities::describe_url(&e.upstream);
    let started = std::time::Instant::now();
    let timeout = state.services.config().upstream_timeout;
    let resp = e.upstream.request(state.services.client(), &url).timeout(timeout).send().await;
    let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match resp {
        Ok(r) if r.status().is_success() => Ok(ms),
        Ok(r) => Err(super::upstream::UpstreamError::Status(r.status().as_u16()).to_string()),
        Err(err) => Err(super::upstream::UpstreamError::from(err).to_string()),
    }
}

/// Checks every registered service once; stores the outcomes and tells administrators of changes.
pub async fn check_all(state: &AppState) -> crate::ApiResult<HealthRound> {
    state.services.invalidate_registry();
    let reg = registry(state).await?;
    let limit = state.services.config().health_concurrency.max(1);
    let outcomes: Vec<_> = futures_util::stream::iter(reg.values().cloned())
        .map(|e| async move {
            let outcome = probe(state, &e).await;
            (e, outcome)
        })
        .buffer_unordered(limit)
        .collect()
        .await;
    let now = jiff::Timestamp::now();
    let mut round = HealthRound::default();
    let mut writes = Vec::new();
    for (e, outcome) in outcomes {
        let prev = e.health();
        let h = next(&prev, outcome, now);
        round.checked += 1;
        if h.state == HealthState::Up {
            round.up += 1;
        } else {
            round.down += 1;
        }
        let changed = prev.state != h.state && (prev.state != HealthState::Unknown || h.state == HealthState::Down);
        if changed {
            round.changed += 1;
            if h.state == HealthState::Down {
                tracing::warn!(service = %e.row.id, title = %e.row.title, reason = h.last_error.as_deref().unwrap_or(""), "registered service down");
            } else {
                tracing::info!(service = %e.row.id, title = %e.row.title, "registered service back up");
            }
            state.events.publish(
                Audience::Role("admin".into()),
                LiveEvent::ServiceHealth(ServiceHealthEvent {
                    service: e.row.id.clone(),
                    title: e.row.title.clone(),
                    state: h.state,
                    error: h.last_error.clone().filter(|_| h.state == HealthState::Down),
                    time: shikong_model::time::beijing(now),
                }),
            );
        }
        writes.push((e.row.id.clone(), serde_json::to_string(&h).map_err(crate::ApiError::internal)?));
    }
    let st = state.clone();
    crate::blocking(move || {
        for (id, h) in &writes {
            st.auth.set_service_health(id, h)?;
        }
        Ok(())
    })
    .await?;
    state.services.invalidate_registry();
    Ok(round)
}

/// Checks every `health_every`, for the server's life.
pub(crate) async fn run(state: AppState) {
    let mut tick = tokio::time::interval(state.services.config().health_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match check_all(&state).await {
            Ok(r) if r.changed > 0 => tracing::info!(up = r.up, down = r.down, "service health changed"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e.detail, "service health round failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_keeps_its_start_and_up_clears_it() {
        let t1: jiff::Timestamp = "2026-12-07T01:00:00Z".parse().unwrap();
        let t2: jiff::Timestamp = "2026-12-07T01:01:00Z".parse().unwrap();
        let d1 = next(&unknown(), Err("x".into()), t1);
        let d2 = next(&d1, Err("y".into()), t2);
        assert_eq!(d2.down_since, Some(shikong_model::time::beijing(t1)));
        assert_eq!(d2.failures, 2);
        let up = next(&d2, Ok(5), t2);
        assert_eq!((up.state, up.down_since, up.failures), (HealthState::Up, None, 0));
    }
}
