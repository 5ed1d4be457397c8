//! The processes that read a layer's history rather than one state of it: `replay` (模拟推演),
//! a layer stepped through time at a chosen interval for the map's animation, and `change`
//! (多时相对比), what was added, removed or changed between two dates, per division.
//!
//! A replay sends the first state whole and then, per step, only what changed (the store's
//! diff between the two instants), so a year of daily steps over a layer that changes a little
//! costs about what changed, not 365 copies of the layer. The filter is applied to every state:
//! a feature edited into the filter appears, one edited out of it is removed.

use std::collections::HashSet;

use axum::http::StatusCode;
use jiff::Span;
use jiff::tz::TimeZone;
use shikong_model::EntityId;
use shikong_protocol::api::processes::{ReplayInputs, ReplayResult, ReplayStep};
use shikong_query::Filter;
use shikong_store::{FeatureKey, Query};

use serde_json::{Map, Value as Json};
use shikong_analysis::aggregate::{DivisionIndex, Unit};
use shikong_analysis::change::{self, ChangeKind, Entry, Shape, State};
use shikong_protocol::api::processes::{ChangeInputs, GeoCollection, GeoFeature};
use shikong_protocol::api::{FeatureCollectionType, FeatureType};
use shikong_store::{Layer, StoredFeature};

use super::run::{Ctx, Outcome, Output, analysis_error, bad_input, layer_for_process, parse_filter, representative};
use crate::problem::{ApiError, ApiResult};

/// Most states of one replay.
pub(crate) const MAX_STEPS: usize = 1_000;
/// Entities per page of the store's diff.
const DIFF_PAGE: usize = 5_000;

/// The instants of a replay: `from`, then every `interval` (in Beijing time, so `P1D` steps from
/// midnight to midnight and `P1M` month to month), and `to` as the last.
pub(crate) fn instants(from: jiff::Timestamp, to: jiff::Timestamp, interval: &str) -> ApiResult<Vec<jiff::Timestamp>> {
    let span: Span = interval.parse().map_err(|e| {
        bad_input("interval", format!("`{interval}` is not an ISO 8601 duration such as PT1H or P1D: {e}"))
    })?;
    if span.is_negative() || span.is_zero() {
        return Err(bad_input("interval", "a positive duration"));
    }
    if to <= from {
        return Err(bad_input("to", "after `from`"));
    }
    let beijing = TimeZone::fixed(jiff::tz::offset(8));
    let start = from.to_zoned(beijing);
    let mut out = vec![from];
    for k in 1.. {
        let step = span.checked_mul(k).map_err(|e| bad_input("interval", e))?;
        let t = start.checked_add(step).map_err(|e| bad_input("interval", e))?.timestamp();
        if t >= to {
            break;
        }
        if out.len() >= MAX_STEPS {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-steps",
                format!("more than {MAX_STEPS} states from `from` to `to`; give a longer `interval`"),
            )
            .with("input", "interval")
            .with("max", MAX_STEPS as u64));
        }
        out.push(t);
    }
    out.push(to);
    Ok(out)
}

pub(crate) fn replay(ctx: &Ctx<'_>, i: ReplayInputs) -> ApiResult<Outcome> {
    let layer = layer_for_process(ctx, &i.collection)?;
    let from = shikong_model::parse_instant(&i.from).map_err(|e| bad_input("from", e))?;
    let to = shikong_model::parse_instant(&i.to).map_err(|e| bad_input("to", e))?;
    let at = instants(from, to, &i.interval)?;
    let filter: Option<Filter> = parse_filter(i.filter.as_ref(), &layer)?;
    let budget = ctx.state.processes.limits.max_features;
    let over = || {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-many-features",
            format!("the replay would send more than {budget} feature states; narrow it with `filter`, a shorter span or a longer `interval`"),
        )
        .with("max", budget as u64)
    };
    let store = ctx.state.store();
    let doc = |f: &shikong_store::StoredFeature| shikong_ingest::json::feature_doc(&layer, f);
    let mut sent = 0usize;
    let mut live: HashSet<EntityId> = HashSet::new();
    let mut initial = Vec::new();
    let q = Query { filter: filter.as_ref(), as_of: Some(from), limit: Some(budget + 1), ..Query::layer(layer.name()) };
    store.query(&q, &mut |f| {
        live.insert(f.feature.id);
        initial.push(doc(&f));
        true
    })?;
    if initial.len() > budget {
        return Err(over());
    }
    sent += initial.len();
    let matches =
        |f: &shikong_store::StoredFeature| filter.as_ref().is_none_or(|q| q.matches(&f.feature, Some(f.version)));
    let mut steps = Vec::with_capacity(at.len() - 1);
    for (n, w) in at.windows(2).enumerate() {
        ctx.check()?;
        (ctx.progress)((10 + 85 * n / at.len().max(1)) as u8, "回放历史 (stepping through history)");
        let (a, b) = (w[0], w[1]);
        let mut step = ReplayStep {
            at: shikong_model::time::beijing(b),
            live: 0,
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
        };
        let mut after = None;
        loop {
            let page = store.diff_page(layer.name(), a, b, after, DIFF_PAGE)?;
            for f in page.diff.created.iter().filter(|f| matches(f)) {
                live.insert(f.feature.id);
                step.added.push(doc(f));
            }
            for m in &page.diff.modified {
                let Some(now) = store.get(layer.name(), &FeatureKey::Id(m.id), Some(b))? else { continue };
                let was = live.contains(&m.id);
                match (was, matches(&now)) {
                    (true, true) => step.changed.push(doc(&now)),
                    (false, true) => {
                        live.insert(m.id);
                        step.added.push(doc(&now));
                    }
                    (true, false) => {
                        live.remove(&m.id);
                        step.removed.push(m.id.to_string());
                    }
                    (false, false) => {}
                }
            }
            for f in &page.diff.deleted {
                if live.remove(&f.feature.id) {
                    step.removed.push(f.feature.id.to_string());
                }
            }
            sent += page.diff.created.len() + page.diff.modified.len();
            if sent > budget {
                return Err(over());
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        step.live = live.len() as u64;
        steps.push(step);
    }
    let result = ReplayResult {
        collection: layer.name().to_owned(),
        from: shikong_model::time::beijing(from),
        to: shikong_model::time::beijing(to),
        interval: i.interval,
        initial,
        steps,
    };
    Ok(Outcome { output: Output::Document(serde_json::to_value(result).map_err(ApiError::internal)?), saving: None })
}

/// A feature's state as change detection compares it: its fields (in layer order) and shape.
fn state_of(layer: &Layer, f: &StoredFeature) -> State {
    let mut properties = Map::new();
    for field in &layer.schema().fields {
        if let Some(v) = f.feature.properties.get(&field.name) {
            properties.insert(field.name.clone(), v.to_json());
        }
    }
    let shape = f.feature.geometry.as_ref().and_then(|g| {
        let at = representative(g)?;
        let bbox = g.bbox().map(|b| [b.min_x, b.min_y, b.max_x, b.max_y]);
        let digest = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            shikong_model::wkb::to_vec(g).hash(&mut h);
            h.finish()
        };
        Some(Shape { at, bbox, digest: Some(digest) })
    });
    State { properties, shape }
}

pub(crate) fn change(ctx: &Ctx<'_>, i: ChangeInputs) -> ApiResult<Outcome> {
    let layer = layer_for_process(ctx, &i.collection)?;
    let from = shikong_model::parse_instant(&i.from).map_err(|e| bad_input("from", e))?;
    let to = shikong_model::parse_instant(&i.to).map_err(|e| bad_input("to", e))?;
    if to <= from {
        return Err(bad_input("to", "after `from`"));
    }
    let top = i.top.unwrap_or(5) as usize;
    let budget = ctx.state.processes.limits.max_features;
    let store = ctx.state.store();
    let mut entries = Vec::new();
    // The shape shown for each changed feature: as it is at `to`, or its last state if removed.
    let mut shown: std::collections::HashMap<String, Option<Json>> = std::collections::HashMap::new();
    let geometry = |f: &StoredFeature| f.feature.geometry.as_ref().map(shikong_model::geojson::to_json);
    let mut after = None;
    loop {
        ctx.check()?;
        (ctx.progress)(20, "比较两个时点 (comparing the two dates)");
        let page = store.diff_page(layer.name(), from, to, after, DIFF_PAGE)?;
        for f in &page.diff.created {
            let id = f.feature.id.to_string();
            shown.insert(id.clone(), geometry(f));
            entries.push(Entry { id, before: None, after: Some(state_of(&layer, f)) });
        }
        for f in &page.diff.deleted {
            let id = f.feature.id.to_string();
            shown.insert(id.clone(), geometry(f));
            entries.push(Entry { id, before: Some(state_of(&layer, f)), after: None });
        }
        for m in &page.diff.modified {
            let key = FeatureKey::Id(m.id);
            let before = store.get(layer.name(), &key, Some(from))?;
            let now = store.get(layer.name(), &key, Some(to))?;
            let id = m.id.to_string();
            shown.insert(id.clone(), now.as_ref().or(before.as_ref()).and_then(geometry));
            entries.push(Entry {
                id,
                before: before.as_ref().map(|f| state_of(&layer, f)),
                after: now.as_ref().map(|f| state_of(&layer, f)),
            });
        }
        if entries.len() > budget {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "too-many-features",
                format!("more than {budget} features changed; compare a shorter span"),
            )
            .with("max", budget as u64));
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    let set = change::net_changes(&entries).map_err(analysis_error)?;
    ctx.check()?;
    (ctx.progress)(70, "按区划汇总 (summarising by division)");
    let divisions = match &i.divisions {
        Some(d) => Some(super::spacetime::divisions(
            ctx,
            d,
            i.division_name_field.as_deref(),
            None,
            Some(&shikong_model::time::beijing(to)),
        )?),
        None => None,
    };
    let index = divisions.as_ref().map(|(d, _)| DivisionIndex::new(d)).transpose().map_err(analysis_error)?;
    let features: Vec<GeoFeature> = set
        .changes
        .iter()
        .filter(|c| c.kind != ChangeKind::Unchanged)
        .map(|c| {
            let mut p = Map::new();
            p.insert("change".into(), c.kind.as_str().into());
            p.insert("change_zh".into(), c.kind.label_zh().into());
            p.insert("fields".into(), c.fields.clone().into());
            if let (Some(index), Some((divs, _))) = (&index, &divisions) {
                let at = c.after_at.or(c.before_at);
                let names: Vec<String> =
                    at.map(|p| index.locate(p)).unwrap_or_default().into_iter().map(|d| divs[d].id.clone()).collect();
                p.insert("division".into(), names.first().cloned().map_or(Json::Null, Json::from));
            }
            GeoFeature {
                kind: FeatureType::Feature,
                id: c.id.clone(),
                geometry: shown.get(&c.id).cloned().flatten(),
                properties: p,
            }
        })
        .collect();
    let mut summary = std::collections::BTreeMap::new();
    summary.insert("from".into(), Json::from(shikong_model::time::beijing(from)));
    summary.insert("to".into(), Json::from(shikong_model::time::beijing(to)));
    for kind in [ChangeKind::Added, ChangeKind::Removed, ChangeKind::Changed] {
        summary.insert(kind.as_str().into(), Json::from(set.count(kind)));
    }
    summary.insert("transient".into(), Json::from(set.transient));
    if let Some((divs, _)) = &divisions {
        let rows = change::summarise_by_division(&set, divs, top).map_err(analysis_error)?;
        let rows: Vec<Json> = rows
            .iter()
            .map(|r| {
                let name = match r.unit {
                    Unit::Division(d) => Json::from(divs[d].id.clone()),
                    _ => Json::from("区域外 (outside)"),
                };
                serde_json::json!({"division": name, "added": r.added, "removed": r.removed, "changed": r.changed,
                    "moved_in": r.moved_in, "moved_out": r.moved_out,
                    "top_fields": r.top_fields.iter().map(|(f, n)| serde_json::json!({"field": f, "count": n})).collect::<Vec<_>>()})
            })
            .collect();
        summary.insert("by_division".into(), Json::from(rows));
    }
    let c = GeoCollection {
        kind: FeatureCollectionType::FeatureCollection,
        number_returned: features.len() as u64,
        time_stamp: super::jobs::now_text(),
        summary,
        features,
    };
    Ok(Outcome { output: Output::Geo(c), saving: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> jiff::Timestamp {
        shikong_model::parse_instant(s).unwrap()
    }

    #[test]
    fn steps_follow_beijing_calendar_days_and_end_at_to() {
        let at = instants(t("2026-03-01T00:00:00+08:00"), t("2026-03-03T12:00:00+08:00"), "P1D").unwrap();
        let text: Vec<String> = at.iter().map(|x| shikong_model::time::beijing(*x)).collect();
        assert_eq!(
            text,
            [
                "2026-03-01T00:00:00+08:00",
                "2026-03-02T00:00:00+08:00",
                "2026-03-03T00:00:00+08:00",
                "2026-03-03T12:00:00+08:00"
            ]
        );
        // Months step by the calendar.
        let at = instants(t("2026-01-31T00:00:00+08:00"), t("2026-04-01T00:00:00+08:00"), "P1M").unwrap();
        assert_eq!(shikong_model::time::beijing(at[1]), "2026-02-28T00:00:00+08:00");
        assert_eq!(at.len(), 4);
    }

    #[test]
    fn bad_intervals_and_too_many_steps_are_refused() {
        let (a, b) = (t("2026-03-01T00:00:00+08:00"), t("2026-03-02T00:00:00+08:00"));
        assert!(instants(a, b, "an hour").unwrap_err().detail.contains("ISO 8601"));
        assert!(instants(a, b, "PT0S").is_err());
        assert!(instants(b, a, "PT1H").is_err());
        let e = instants(a, b, "PT1M").unwrap_err();
        assert_eq!(e.kind, "too-many-steps");
        assert_eq!(instants(a, b, "PT1H").unwrap().len(), 25);
    }
}
