//! What alert rules say about a datastream on the map (issue 18's live view): the latest-readings
//! layer (`sta/latest.rs`) colours a station `alarm` while an incident of a rule is open for one
//! of its datastreams, `silent` once a silence rule's window passed without a reading (before
//! the tick opens its incident, and while it is open), whatever its thresholds say otherwise.
//!
//! Why here and not in the layer: which incidents are open and since when a silence rule watches
//! is the alerts' storage (`storage.rs`); the layer asks one [`RuleView`] per request (the rules,
//! and the open incidents in one query) and judges each datastream with [`RuleView::judge`],
//! which is pure.

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp};
use shikong_protocol::api::SensorState;
use shikong_sta::alerts::{Condition, DatastreamInfo};
use shikong_store::{FeatureStore, Query};

use super::storage::{self, StoredRule};
use crate::problem::{ApiError, ApiResult};

/// Open incidents one view reads at most (beyond, the rest colour nothing: a city with that
/// many open alerts has the `/alerts` list to go by).
pub const MAX_OPEN: usize = 100_000;

/// The rules and, per datastream, the rules whose incident is open.
#[derive(Debug, Default)]
pub struct RuleView {
    rules: Vec<StoredRule>,
    open: HashMap<i64, Vec<String>>,
}

/// What the rules say of one datastream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// Some rule watches it.
    pub watched: bool,
    /// The state its open incidents put it in (`alarm`; `silent` for silence rules only).
    pub alert: Option<SensorState>,
    /// A silence rule's window passed without a reading.
    pub silent: bool,
}

impl RuleView {
    /// The stored rules and open incidents (blocking; two reads).
    pub fn load(store: &dyn FeatureStore) -> ApiResult<RuleView> {
        let rules = storage::load_rules(store)?;
        let mut open: HashMap<i64, Vec<String>> = HashMap::new();
        if !rules.is_empty()
            && let Ok(layer) = store.layer(storage::INCIDENTS)
        {
            let filter =
                shikong_query::Filter::parse_text("state = 'open'", layer.schema()).map_err(ApiError::internal)?;
            let q = Query {
                layer: storage::INCIDENTS,
                filter: Some(&filter),
                by_id: true,
                limit: Some(MAX_OPEN),
                ..Query::default()
            };
            store.query(&q, &mut |sf| {
                let a = storage::alert_doc(&sf);
                open.entry(a.datastream).or_default().push(a.rule);
                true
            })?;
        }
        Ok(RuleView { rules, open })
    }

    /// A view of the given rules and open incidents `(rule id, datastream)` (tests).
    pub fn new(rules: Vec<StoredRule>, open: &[(String, i64)]) -> RuleView {
        let mut by_ds: HashMap<i64, Vec<String>> = HashMap::new();
        for (r, ds) in open {
            by_ds.entry(*ds).or_default().push(r.clone());
        }
        RuleView { rules, open: by_ds }
    }

    /// Judges a datastream whose newest reading is at `newest`, at `now`.
    pub fn judge(&self, ds: &DatastreamInfo, newest: Option<Timestamp>, now: Timestamp) -> Verdict {
        let mut v = Verdict::default();
        for rule in self.rules.iter().filter(|r| r.rule.scope.matches(ds)) {
            v.watched = true;
            if self.open.get(&ds.id).is_some_and(|o| o.contains(&rule.id)) {
                v.alert = v.alert.max(Some(storage::map_state(&rule.rule)));
            }
            if let Condition::Silence { minutes } = rule.rule.condition {
                // as `shikong_sta::alerts::silence` judges it on the tick
                let from = newest.map_or(rule.created, |n| n.max(rule.created));
                if now.duration_since(from) >= SignedDuration::from_secs(i64::from(minutes) * 60) {
                    v.silent = true;
                }
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_protocol::api::alerts as wire;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    fn rule(id: &str, scope: wire::AlertScope, condition: wire::AlertCondition) -> StoredRule {
        let new =
            wire::NewAlertRule { name: id.into(), scope, condition, min_breach_seconds: 0, min_recover_seconds: 0 };
        let created = t(0);
        StoredRule {
            id: id.into(),
            rule: storage::to_rule(&new),
            wire: wire::AlertRule {
                id: id.into(),
                name: new.name.clone(),
                scope,
                condition,
                min_breach_seconds: 0,
                min_recover_seconds: 0,
                created: shikong_model::time::beijing(created),
            },
            created,
        }
    }

    #[test]
    fn open_incidents_and_passed_silence_decide() {
        let ds = DatastreamInfo { id: 5, sensor: Some(2), observed_property: Some(3) };
        let other = DatastreamInfo { id: 6, sensor: Some(9), observed_property: None };
        let above =
            rule("a", wire::AlertScope::Datastream(5), wire::AlertCondition::Above { threshold: 1.0, clear: None });
        let quiet = rule("q", wire::AlertScope::Sensor(2), wire::AlertCondition::Silence { minutes: 10 });
        let none = RuleView::new(vec![above.clone(), quiet.clone()], &[]);
        // a reading a minute ago: watched, nothing wrong
        assert_eq!(none.judge(&ds, Some(t(540)), t(600)), Verdict { watched: true, alert: None, silent: false });
        // ten minutes without: silent, even before the tick opens the incident
        assert!(none.judge(&ds, Some(t(0)), t(600)).silent);
        // never reported: silent from the rule's creation
        assert!(!none.judge(&ds, None, t(599)).silent && none.judge(&ds, None, t(600)).silent);
        // no rule for this one
        assert_eq!(none.judge(&other, None, t(6000)), Verdict::default());
        // an open threshold incident is an alarm; an open silence incident alone is silent
        let open = RuleView::new(vec![above.clone(), quiet.clone()], &[("a".into(), 5), ("q".into(), 5)]);
        assert_eq!(open.judge(&ds, Some(t(590)), t(600)).alert, Some(SensorState::Alarm));
        let silence = RuleView::new(vec![above, quiet], &[("q".into(), 5)]);
        assert_eq!(silence.judge(&ds, Some(t(590)), t(600)).alert, Some(SensorState::Silent));
    }
}
