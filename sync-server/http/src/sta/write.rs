//! POST (create, with deep insert), PATCH and DELETE of the entities kept in the store.
//!
//! A create body is validated and flattened by `shikong_sta::body::plan_create`; the plan runs in
//! one store transaction (all or nothing) with its audit record, each op a new feature version
//! attributed to the caller. Links are written on the side that stores them
//! (`entities::stored_navs`): a new Location linked to an existing Thing adds itself to that
//! Thing's `Locations` (a new Thing version, so a HistoricalLocation). Observations inside a deep
//! insert (a Datastream with inline Observations) are refused: they are readings, posted to the
//! Datastream after it exists. Every layer written needs the caller's edit permission.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value as Json};
use shikong_sta::body::{BodyLimits, Link, Ref, plan_create, validate_update};
use shikong_sta::entity::{Cardinality, EntityType, Id};
use shikong_sta::path::{Resource, Tail};
use shikong_store::{StoreTx, TxMeta};

use super::super::access::Action;
use super::super::audit_outbox;
use super::super::problem::{ApiError, ApiResult};
use super::entities::{self, Rec};
use super::read::{Cx, Node};
use super::{AppState, Req, created, json_response, multi, observations, sta_error};

fn body_json(req: &Req) -> ApiResult<Json> {
    parse_body(&req.body, "the request body")
}

/// A JSON body (a request's, an MQTT payload's) parsed with the bounds of every JSON input.
pub(crate) fn parse_body(bytes: &[u8], what: &str) -> ApiResult<Json> {
    use shikong_formats::{BoundedJsonError, limits};
    shikong_formats::parse_bounded(bytes, limits::MAX_JSON_VALUES, what).map_err(|e| match e {
        BoundedJsonError::Exceeded(x) => ApiError::from(x),
        BoundedJsonError::Syntax(e) => ApiError::bad_body(format!("{what} is not JSON: {e}")),
    })
}

fn check_edit(st: &AppState, req: &Req, ty: EntityType) -> ApiResult<()> {
    let layer = st.store().layer(entities::governing_layer(ty))?;
    req.caller.allowed(st, &layer, Action::Edit)
}

fn meta(req: &Req, what: &str) -> TxMeta {
    TxMeta {
        author: req.caller.author(),
        device: req.caller.device(),
        source: Some(format!("sensorthings {what}")),
        ..TxMeta::default()
    }
}

/// The link a URL implies: `POST /Things(1)/Datastreams` links the new Datastream to Thing 1.
fn parent_link(st: &AppState, r: &Resource) -> ApiResult<Option<Link>> {
    if r.segments.len() < 2 {
        return Ok(None);
    }
    if r.segments.len() > 2 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-path",
            "create through one navigation at most: POST /Things(1)/Datastreams",
        ));
    }
    let (p, s) = (&r.segments[0], &r.segments[1]);
    let (Some(pid), Some(nav)) = (&p.id, s.nav) else { return Ok(None) };
    let inverse = p.entity_type.navigation(nav).map(|n| n.inverse).unwrap_or_default();
    // The parent must exist (a 404 names it rather than a body error).
    if p.entity_type != EntityType::Observation && entities::get(st.store(), p.entity_type, pid, None)?.is_none() {
        return Err(entities::missing(p.entity_type, pid));
    }
    let target = s.entity_type;
    let Some(back) = target.navigation(inverse) else { return Ok(None) };
    Ok(Some(Link { nav: back.name, target: Ref::Existing(pid.clone()) }))
}

pub fn post(st: &AppState, req: &Req, r: &Resource) -> ApiResult<Response> {
    entities::ensure_layers(st.store(), &st.sta)?;
    let last = r.segments.last().ok_or_else(|| ApiError::not_found("empty path"))?;
    if !last.collection || r.tail != Tail::None {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "POST creates in a collection (/Things, /Things(1)/Datastreams)",
        ));
    }
    let ty = last.entity_type;
    let body = body_json(req)?;
    let plan = plan_create(ty, &body, parent_link(st, r)?, BodyLimits::default()).map_err(sta_error)?;
    if ty == EntityType::Observation {
        if let Some(m) = multi::linked(&plan) {
            return multi::create(st, req, &plan, &m.clone());
        }
        return observations::create(st, req, &plan);
    }
    if ty == EntityType::HistoricalLocation {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            "HistoricalLocations are derived from Things' Location history: PATCH the Thing's Locations",
        ));
    }
    let mut layers: Vec<EntityType> = Vec::new();
    for op in &plan.ops {
        if matches!(op.entity_type, EntityType::Observation | EntityType::HistoricalLocation) {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not-supported",
                format!(
                    "{} cannot be created inside a deep insert: post them to the new entity afterwards",
                    op.entity_type.set_name()
                ),
            )
            .with("field", op.path.clone()));
        }
        if !layers.contains(&op.entity_type) {
            layers.push(op.entity_type);
        }
    }
    for t in &layers {
        check_edit(st, req, *t)?;
    }
    let mut tx = st.store().begin(meta(req, "create"))?;
    let mut made: Vec<Id> = Vec::with_capacity(plan.ops.len());
    let mut entity_ids = Vec::with_capacity(plan.ops.len());
    for op in &plan.ops {
        let mut links: Map<String, Json> = Map::new();
        let mut reverse: Vec<(&'static str, Id, EntityType)> = Vec::new();
        for l in &op.links {
            let nav = op.entity_type.navigation(l.nav).ok_or_else(|| ApiError::internal("unknown navigation"))?;
            let id = match &l.target {
                Ref::New(i) => made[*i].clone(),
                Ref::Existing(id) => {
                    if entities::get_tx(tx.as_mut(), nav.target, id)?.is_none() {
                        return Err(entities::missing(nav.target, id).with("field", format!("{}/{}", op.path, l.nav)));
                    }
                    id.clone()
                }
            };
            if entities::stored_navs(op.entity_type).contains(&l.nav) {
                let many = nav.cardinality == Cardinality::Many;
                match links.get_mut(l.nav) {
                    Some(Json::Array(a)) => a.push(id.to_json()),
                    _ => {
                        links.insert(l.nav.to_owned(), entities::link_json(&[id], many));
                    }
                }
            } else if entities::stored_navs(nav.target).contains(&nav.inverse) {
                reverse.push((nav.inverse, id, nav.target));
            }
        }
        let (id, entity) = entities::insert(tx.as_mut(), op.entity_type, &op.properties, &links)?;
        for (inverse, target_id, target_ty) in reverse {
            add_link(tx.as_mut(), target_ty, &target_id, inverse, &id)?;
        }
        made.push(id);
        entity_ids.push(entity);
    }
    let root_layer = entities::layer_of(ty).unwrap_or_default();
    audit_outbox::queue(tx.as_mut(), &req.caller, req.caller.write_record(root_layer, "create", &entity_ids))?;
    tx.commit()?;
    after_commit(st);
    let cx = Cx { st, base: &req.base, as_of: None, max_top: st.config.max_limit as u64 };
    let node = cx.one(ty, &made[plan.root])?.ok_or_else(|| ApiError::internal("the created entity vanished"))?;
    Ok(created(&cx.render(node, &Default::default())?))
}

fn after_commit(st: &AppState) {
    st.committed();
    audit_outbox::drain(st);
}

/// Adds `id` to `target`'s stored link `nav` (a new version of `target`).
fn add_link(tx: &mut dyn StoreTx, ty: EntityType, target: &Id, nav: &str, id: &Id) -> ApiResult<()> {
    let mut rec = entities::get_tx(tx, ty, target)?.ok_or_else(|| entities::missing(ty, target))?;
    let many = ty.navigation(nav).is_some_and(|n| n.cardinality == Cardinality::Many);
    let mut ids = if many { rec.linked(nav) } else { Vec::new() };
    if !ids.contains(id) {
        ids.push(id.clone());
    }
    rec.links.insert(nav.to_owned(), entities::link_json(&ids, many));
    entities::update(tx, &rec)
}

/// The one entity a PATCH or DELETE path names (`/Things(1)`, or through navigation).
fn target(st: &AppState, req: &Req, r: &Resource) -> ApiResult<Rec> {
    let last = r.segments.last().ok_or_else(|| ApiError::not_found("empty path"))?;
    if last.collection || r.tail != Tail::None {
        return Err(ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "PATCH and DELETE address one entity (/Things(1))",
        ));
    }
    if entities::layer_of(last.entity_type).is_none() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not-supported",
            format!(
                "{} are not changed through the API: they are derived from Things' Location history",
                last.entity_type.set_name()
            ),
        ));
    }
    let cx = Cx { st, base: &req.base, as_of: None, max_top: st.config.max_limit as u64 };
    let mut node: Option<Node> = None;
    for seg in &r.segments {
        node = match (node, seg.nav) {
            (None, _) => cx.one(seg.entity_type, seg.id.as_ref().unwrap_or(&Id::Int(0)))?,
            (Some(p), Some(nav)) => {
                let items = cx.related(&p, nav, &Default::default(), true)?.0;
                match &seg.id {
                    Some(id) => items.into_iter().find(|n| &n.id == id),
                    None => items.into_iter().next(),
                }
            }
            (Some(_), None) => None,
        };
        if node.is_none() {
            return Err(match &seg.id {
                Some(id) => entities::missing(seg.entity_type, id),
                None => ApiError::not_found(format!("no {} here", seg.entity_type)),
            });
        }
    }
    node.and_then(|n| n.rec).ok_or_else(|| ApiError::not_found("nothing here"))
}

/// PATCH: a JSON merge of the body into the entity (`null` removes a member), or, when the body
/// is an array, a JSON Patch (RFC 6902; `application/json-patch+json`, 18-088 §10.3.2).
pub fn patch(st: &AppState, req: &Req, r: &Resource) -> ApiResult<Response> {
    if r.entity_type() == EntityType::Observation {
        return super::obs_write::update(st, req, r, false);
    }
    update(st, req, r, false)
}

/// PUT: the body replaces the entity (optional members it leaves out are cleared).
pub fn put(st: &AppState, req: &Req, r: &Resource) -> ApiResult<Response> {
    if r.entity_type() == EntityType::Observation {
        return super::obs_write::update(st, req, r, true);
    }
    update(st, req, r, true)
}

fn update(st: &AppState, req: &Req, r: &Resource, replace: bool) -> ApiResult<Response> {
    entities::ensure_layers(st.store(), &st.sta)?;
    let rec = target(st, req, r)?;
    let ty = rec.ty;
    check_edit(st, req, ty)?;
    let body = body_json(req)?;
    let mut tx = st.store().begin(meta(req, "update"))?;
    let mut rec = entities::get_tx(tx.as_mut(), ty, &rec.id)?.ok_or_else(|| entities::missing(ty, &rec.id))?;
    let up = match &body {
        _ if replace => shikong_sta::update::validate_replace(ty, &body, &rec.props),
        Json::Array(_) => shikong_sta::update::json_patch_update(ty, &rec.props, &body),
        _ => validate_update(ty, &body),
    }
    .map_err(sta_error)?;
    for (k, v) in up.properties {
        if v.is_null() {
            rec.props.remove(&k);
        } else {
            rec.props.insert(k, v);
        }
    }
    let mut replaced: Vec<&str> = Vec::new();
    for (nav, id) in &up.links {
        let n = ty.navigation(nav).ok_or_else(|| ApiError::internal("unknown navigation"))?;
        if entities::get_tx(tx.as_mut(), n.target, id)?.is_none() {
            return Err(entities::missing(n.target, id).with("field", format!("/{nav}")));
        }
        if entities::stored_navs(ty).contains(nav) {
            let many = n.cardinality == Cardinality::Many;
            // The body's list replaces the stored one.
            let mut ids = if many && replaced.contains(nav) { rec.linked(nav) } else { Vec::new() };
            replaced.push(nav);
            ids.push(id.clone());
            rec.links.insert((*nav).to_owned(), entities::link_json(&ids, many));
        } else if entities::stored_navs(n.target).contains(&n.inverse) {
            add_link(tx.as_mut(), n.target, id, n.inverse, &rec.id)?;
        }
    }
    entities::update(tx.as_mut(), &rec)?;
    let layer = entities::layer_of(ty).unwrap_or_default();
    audit_outbox::queue(tx.as_mut(), &req.caller, req.caller.write_record(layer, "update", &[rec.entity]))?;
    tx.commit()?;
    after_commit(st);
    let cx = Cx { st, base: &req.base, as_of: None, max_top: st.config.max_limit as u64 };
    let node = cx.one(ty, &rec.id)?.ok_or_else(|| entities::missing(ty, &rec.id))?;
    Ok(json_response(StatusCode::OK, &cx.render(node, &Default::default())?))
}

/// DELETE: the entity, and what cannot exist without it — a Thing's, Sensor's or
/// ObservedProperty's Datastreams and MultiDatastreams, with their series in the time-series
/// store (`drop_readings`). Links other entities hold to it are removed. An Observation is a
/// reading: `obs_write.rs`.
pub fn delete(st: &AppState, req: &Req, r: &Resource) -> ApiResult<Response> {
    if r.entity_type() == EntityType::Observation {
        return super::obs_write::delete(st, req, r);
    }
    entities::ensure_layers(st.store(), &st.sta)?;
    let rec = target(st, req, r)?;
    check_edit(st, req, rec.ty)?;
    let mut doomed: Vec<Rec> = vec![rec.clone()];
    if matches!(rec.ty, EntityType::Thing | EntityType::Sensor | EntityType::ObservedProperty) {
        for t in [EntityType::Datastream, EntityType::MultiDatastream] {
            check_edit(st, req, t)?;
            let back = rec.ty.navigations().iter().find(|n| n.target == t).map(|n| n.inverse).unwrap_or_default();
            doomed
                .extend(entities::list(st.store(), t, None)?.into_iter().filter(|d| d.linked(back).contains(&rec.id)));
        }
    }
    let mut tx = st.store().begin(meta(req, "delete"))?;
    if rec.ty == EntityType::Location {
        for mut thing in entities::list(st.store(), EntityType::Thing, None)? {
            let ids = thing.linked("Locations");
            if ids.contains(&rec.id) {
                let kept: Vec<Id> = ids.into_iter().filter(|i| i != &rec.id).collect();
                thing.links.insert("Locations".into(), entities::link_json(&kept, true));
                entities::update(tx.as_mut(), &thing)?;
            }
        }
    }
    if rec.ty == EntityType::FeatureOfInterest {
        super::foi::unlink_all(tx.as_mut(), st, &rec.id)?;
    }
    for d in &doomed {
        entities::delete(tx.as_mut(), d)?;
    }
    let layer = entities::layer_of(rec.ty).unwrap_or_default();
    let ids: Vec<_> = doomed.iter().map(|d| d.entity).collect();
    audit_outbox::queue(tx.as_mut(), &req.caller, req.caller.write_record(layer, "delete", &ids))?;
    tx.commit()?;
    // a deleted Datastream (or one under a deleted Thing) takes no more readings
    st.sta.defined.forget_all();
    after_commit(st);
    drop_readings(st, &doomed)?;
    Ok(axum::response::IntoResponse::into_response(StatusCode::OK))
}

/// Removes the series of deleted Datastreams and MultiDatastreams from the time-series store —
/// readings, roll-ups, corrections, deletions and the definition — so their Observations answer
/// 404 and an id defined again starts empty. A MultiDatastream's are the ids of every component
/// it could have had (`multi::MAX_COMPONENTS`), whatever it declared last. After the store's
/// commit: should this fail, the entity is gone and its readings are unreachable (never shown
/// under another stream), and the failure is answered.
fn drop_readings(st: &AppState, doomed: &[Rec]) -> ApiResult<()> {
    let series: Vec<(&Rec, std::ops::RangeInclusive<i64>)> = doomed
        .iter()
        .filter_map(|d| match (d.ty, &d.id) {
            (EntityType::Datastream, Id::Int(i)) => Some((d, *i..=*i)),
            (EntityType::MultiDatastream, Id::Int(m)) => {
                Some((d, multi::series(*m, multi::MAX_COMPONENTS - 1)..=multi::series(*m, 0)))
            }
            _ => None,
        })
        .collect();
    if series.is_empty() {
        return Ok(());
    }
    let ts = st.timeseries()?;
    for (d, ids) in series {
        let n = ts.drop_series(ids).map_err(ApiError::internal)?;
        tracing::info!(entity = %format!("{}({})", d.ty.set_name(), d.id.url_literal()), readings = n, "deleted with its readings");
    }
    Ok(())
}
