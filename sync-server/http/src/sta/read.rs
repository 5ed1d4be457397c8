//! GET: the service root, entity sets, entities, navigation (`/Things(1)/Datastreams`,
//! `/Datastreams(5)/Observations`), `$ref`, properties and `$value`, and the query options.
//!
//! What runs where: entities of the store layers are read whole (bounded by
//! [`entities::MAX_SCAN`]) and `$filter`, `$orderby`, `$skip`, `$top`, `$count` run in memory with
//! `shikong_sta::eval` — the store has no index on SensorThings properties, and the sets are
//! stations, not readings. Observations are the large set: a Datastream's are read from the
//! time-series store by time range, and `phenomenonTime` bounds of the filter (top-level `and`
//! terms) and a `phenomenonTime` order are translated into that read (`observations.rs`).
//! `?as-of=` (RFC 3339) reads the store layers as they were recorded at that instant.

use std::cmp::Ordering;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value as Json, json};
use shikong_sta::entity::{Cardinality, EntityType, Id, add_links};
use shikong_sta::envelope::{Page, next_link};
use shikong_sta::eval::{EvalContext, Val, evaluate, matches};
use shikong_sta::options::QueryOptions;
use shikong_sta::path::{Resource, Tail};
use shikong_sta::response::{apply_select, conformance, data_array_value, service_root as root_doc};

use super::super::access::Action;
use super::super::problem::{ApiError, ApiResult};
use super::entities::{self, Rec};
use super::{AppState, Req, foi, json_response, multi, observations};

/// `$top` when the request gives none.
pub const DEFAULT_TOP: u64 = 100;

/// One entity on its way out: its JSON without links (`@iot.id` and properties).
#[derive(Debug, Clone)]
pub struct Node {
    pub ty: EntityType,
    pub id: Id,
    pub json: Map<String, Json>,
    /// The stored entity (store layers only).
    pub rec: Option<Rec>,
}

impl Node {
    pub fn of(rec: Rec) -> Node {
        Node { ty: rec.ty, id: rec.id.clone(), json: rec.json(), rec: Some(rec) }
    }
}

pub fn service_root(base: &str, mqtt_endpoints: &[String]) -> Json {
    root_doc(
        base,
        &[
            conformance::DATAMODEL,
            conformance::RESOURCE_PATH,
            conformance::REQUEST_DATA,
            conformance::CREATE_UPDATE_DELETE,
            conformance::DATA_ARRAY,
        ],
        mqtt_endpoints,
    )
}

/// `?as-of=` of the request.
pub fn as_of(query: &str) -> ApiResult<Option<jiff::Timestamp>> {
    for pair in query.split('&') {
        if let Some(v) = pair.strip_prefix("as-of=") {
            let v = shikong_sta::options::decode_component(v).unwrap_or_default();
            return shikong_model::parse_instant(&v).map(Some).map_err(|e| ApiError::bad_parameter("as-of", e));
        }
    }
    Ok(None)
}

/// Read permission on the layers governing every type the request touches.
fn check_read(st: &AppState, req: &Req, types: &[EntityType]) -> ApiResult<()> {
    for ty in types {
        let layer = st.store().layer(entities::governing_layer(*ty))?;
        req.caller.allowed(st, &layer, Action::Read)?;
    }
    Ok(())
}

fn expanded_types(opts: &QueryOptions, out: &mut Vec<EntityType>) {
    for e in &opts.expand {
        out.push(e.target);
        expanded_types(&e.options, out);
    }
}

pub fn get(st: &AppState, req: &Req, r: &Resource, opts: &QueryOptions) -> ApiResult<Response> {
    entities::ensure_layers(st.store(), &st.sta)?;
    let mut types: Vec<EntityType> = r.segments.iter().map(|s| s.entity_type).collect();
    expanded_types(opts, &mut types);
    check_read(st, req, &types)?;
    let cx = Cx { st, base: &req.base, as_of: as_of(&req.query)?, max_top: st.config.max_limit as u64 };
    // Walk to the last segment: `parent` is the entity the last navigation starts from.
    let first = &r.segments[0];
    let mut current: Option<Node> = None;
    for (i, seg) in r.segments.iter().enumerate() {
        let last = i + 1 == r.segments.len();
        if last && seg.collection {
            break;
        }
        let node = match (&current, seg.nav) {
            (None, _) => cx.one(seg.entity_type, seg.id.as_ref().unwrap_or(&Id::Int(0)))?,
            (Some(p), Some(nav)) => {
                let items = cx.related(p, nav, &QueryOptions::default(), true)?.0;
                match &seg.id {
                    Some(id) => items.into_iter().find(|n| &n.id == id),
                    None => items.into_iter().next(),
                }
            }
            (Some(_), None) => None,
        };
        current = Some(node.ok_or_else(|| match &seg.id {
            Some(id) => entities::missing(seg.entity_type, id),
            None => ApiError::not_found(format!("no {} here", seg.entity_type)),
        })?);
    }
    let url = format!("{}{}", req.base, req.path.trim_end_matches('/'));
    let Some(last) = r.segments.last() else { return Err(ApiError::not_found("empty path")) };
    if last.collection {
        let (items, count) = match (&current, last.nav) {
            (Some(p), Some(nav)) => cx.related(p, nav, opts, false)?,
            _ => cx.set(first.entity_type, opts)?,
        };
        let returned = items.len() as u64;
        let value: Vec<Json> = if opts.result_format.is_some() {
            // `$resultFormat=dataArray`: rows grouped by Datastream (Observations only, checked by the parser).
            let objs: Vec<Map<String, Json>> = items
                .into_iter()
                .map(|n| {
                    let mut m = n.json;
                    add_links(&mut m, &req.base, n.ty, &n.id);
                    if let Some((ds, _)) = observations::parse_id(&n.id) {
                        let link = shikong_sta::entity::entity_url(&req.base, EntityType::Datastream, &Id::Int(ds));
                        m.insert("Datastream@iot.navigationLink".into(), Json::String(link));
                    } else if let Some((md, _)) = multi::parse_id(&n.id) {
                        let link =
                            shikong_sta::entity::entity_url(&req.base, EntityType::MultiDatastream, &Id::Int(md));
                        m.remove("Datastream@iot.navigationLink");
                        m.insert("MultiDatastream@iot.navigationLink".into(), Json::String(link));
                    }
                    m
                })
                .collect();
            data_array_value(&objs, &opts.select)
        } else if r.tail == Tail::Ref {
            items
                .iter()
                .map(|n| json!({"@iot.selfLink": shikong_sta::entity::entity_url(&req.base, n.ty, &n.id)}))
                .collect()
        } else {
            items.into_iter().map(|n| cx.render(n, opts)).collect::<ApiResult<_>>()?
        };
        let top = opts.top.unwrap_or(DEFAULT_TOP).min(cx.max_top);
        let page = Page {
            count: if opts.count == Some(true) { count } else { None },
            next_link: next_link(&url, &req.query, top, opts.skip.unwrap_or(0), returned, count),
            value,
        };
        return Ok(json_response(StatusCode::OK, &serde_json::to_value(page).map_err(ApiError::internal)?));
    }
    let node = current.ok_or_else(|| ApiError::not_found("nothing here"))?;
    match &r.tail {
        Tail::None => Ok(json_response(StatusCode::OK, &cx.render(node, opts)?)),
        Tail::Ref => Ok(json_response(
            StatusCode::OK,
            &json!({"@iot.selfLink": shikong_sta::entity::entity_url(&req.base, node.ty, &node.id)}),
        )),
        Tail::Property { name, members, value } => {
            let key = if *name == "id" { "@iot.id" } else { name };
            let mut v = node.json.get(key).cloned().unwrap_or(Json::Null);
            for m in members {
                v = v.get(m).cloned().unwrap_or(Json::Null);
            }
            if *value {
                let text = match &v {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                };
                return Ok(axum::response::IntoResponse::into_response((
                    [(axum::http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                    text,
                )));
            }
            let name = members.last().map_or(*name, String::as_str);
            let mut m = Map::new();
            m.insert(name.to_owned(), v);
            Ok(json_response(StatusCode::OK, &Json::Object(m)))
        }
    }
}

/// What reading needs: the store, links' base, the instant and the page bound.
pub struct Cx<'a> {
    pub st: &'a AppState,
    pub base: &'a str,
    pub as_of: Option<jiff::Timestamp>,
    pub max_top: u64,
}

impl Cx<'_> {
    /// One entity by id.
    pub fn one(&self, ty: EntityType, id: &Id) -> ApiResult<Option<Node>> {
        match ty {
            EntityType::Observation if multi::parse_id(id).is_some() => multi::one(self.st, id),
            EntityType::Observation => observations::one(self.st, id),
            EntityType::HistoricalLocation => Ok(self.historical_locations(None)?.into_iter().find(|n| &n.id == id)),
            _ => Ok(entities::get(self.st.store(), ty, id, self.as_of)?.map(Node::of)),
        }
    }

    /// An entity set with the query options applied: the page and the count of all matches.
    pub fn set(&self, ty: EntityType, opts: &QueryOptions) -> ApiResult<(Vec<Node>, Option<u64>)> {
        match ty {
            EntityType::Observation => observations::all(self, opts),
            EntityType::HistoricalLocation => self.page(self.historical_locations(None)?, opts),
            _ => self.page(entities::list(self.st.store(), ty, self.as_of)?.into_iter().map(Node::of).collect(), opts),
        }
    }

    /// The entities `nav` leads to from `from`, with `opts` applied unless `raw`.
    pub fn related(
        &self,
        from: &Node,
        nav: &str,
        opts: &QueryOptions,
        raw: bool,
    ) -> ApiResult<(Vec<Node>, Option<u64>)> {
        let Some(n) = from.ty.navigation(nav) else { return Ok((Vec::new(), Some(0))) };
        let items: Vec<Node> = match (from.ty, n.target) {
            (EntityType::Datastream, EntityType::Observation) => {
                let Id::Int(ds) = from.id else { return Ok((Vec::new(), Some(0))) };
                return observations::of_datastream(self, ds, opts);
            }
            (EntityType::MultiDatastream, EntityType::Observation) => return multi::of_multi(self, from, opts),
            (EntityType::FeatureOfInterest, EntityType::Observation) => return foi::observations(self, from, opts),
            (_, EntityType::Observation) => Vec::new(),
            (EntityType::Observation, EntityType::MultiDatastream) => multi::of_observation(self, &from.id)?,
            (EntityType::Observation, EntityType::FeatureOfInterest) => foi::of_observation(self, &from.id)?,
            (EntityType::Observation, EntityType::Datastream) => {
                let ds = observations::parse_id(&from.id).map(|(d, _)| d);
                match ds {
                    Some(d) => entities::get(self.st.store(), EntityType::Datastream, &Id::Int(d), self.as_of)?
                        .map(Node::of)
                        .into_iter()
                        .collect(),
                    None => Vec::new(),
                }
            }
            (EntityType::Observation, _) => Vec::new(),
            (EntityType::Thing, EntityType::HistoricalLocation) => self.historical_locations(Some(&from.id))?,
            (EntityType::Location, EntityType::HistoricalLocation) => self
                .historical_locations(None)?
                .into_iter()
                .filter(|h| {
                    h.json.get("locations").and_then(Json::as_array).is_some_and(|a| a.contains(&from.id.to_json()))
                })
                .collect(),
            (EntityType::HistoricalLocation, EntityType::Thing) => {
                let thing = from.json.get("thing").and_then(Id::from_json);
                match thing {
                    Some(t) => self.one(EntityType::Thing, &t)?.into_iter().collect(),
                    None => Vec::new(),
                }
            }
            (EntityType::HistoricalLocation, EntityType::Location) => {
                let ids: Vec<Id> = from
                    .json
                    .get("locations")
                    .and_then(Json::as_array)
                    .map(|a| a.iter().filter_map(Id::from_json).collect())
                    .unwrap_or_default();
                let mut out = Vec::new();
                for id in ids {
                    out.extend(self.one(EntityType::Location, &id)?);
                }
                out
            }
            (_, target) => {
                let Some(rec) = &from.rec else { return Ok((Vec::new(), Some(0))) };
                if entities::stored_navs(from.ty).contains(&nav) {
                    let mut out = Vec::new();
                    for id in rec.linked(nav) {
                        out.extend(entities::get(self.st.store(), target, &id, self.as_of)?.map(Node::of));
                    }
                    out
                } else {
                    entities::list(self.st.store(), target, self.as_of)?
                        .into_iter()
                        .filter(|r| r.linked(n.inverse).contains(&from.id))
                        .map(Node::of)
                        .collect()
                }
            }
        };
        if raw { Ok((items, None)) } else { self.page(items, opts) }
    }

    /// HistoricalLocations, derived from the history of Things' `Locations` links: every
    /// version whose Locations differ from the version before is one, at its transaction time,
    /// with the id `'THING-VERSION'`.
    fn historical_locations(&self, thing: Option<&Id>) -> ApiResult<Vec<Node>> {
        let things = match thing {
            Some(id) => entities::get(self.st.store(), EntityType::Thing, id, self.as_of)?.into_iter().collect(),
            None => entities::list(self.st.store(), EntityType::Thing, self.as_of)?,
        };
        let mut out = Vec::new();
        for t in things {
            let history = self.st.store().history("sta_thing", &shikong_store::FeatureKey::Id(t.entity))?;
            let mut before: Option<Json> = None;
            for v in history {
                let Some(state) = v.state else { continue };
                if self.as_of.is_some_and(|a| v.tx.time > a) {
                    continue;
                }
                let links = match state.properties.get("links") {
                    Some(shikong_model::Value::Text(s)) => serde_json::from_str::<Json>(s).unwrap_or(Json::Null),
                    _ => Json::Null,
                };
                let locs = links.get("Locations").cloned().unwrap_or(json!([]));
                if locs.as_array().is_some_and(|a| !a.is_empty()) && before.as_ref() != Some(&locs) {
                    let id = Id::Str(format!("{}-{}", t.id, v.version));
                    let mut m = Map::new();
                    m.insert("@iot.id".into(), id.to_json());
                    m.insert("time".into(), json!(v.tx.time.to_string()));
                    // kept for navigation, removed before rendering
                    m.insert("thing".into(), t.id.to_json());
                    m.insert("locations".into(), locs.clone());
                    out.push(Node { ty: EntityType::HistoricalLocation, id, json: m, rec: None });
                }
                before = Some(locs);
            }
        }
        Ok(out)
    }

    /// `$filter`, `$count`, `$orderby`, `$skip`, `$top` in memory.
    pub fn page(&self, items: Vec<Node>, opts: &QueryOptions) -> ApiResult<(Vec<Node>, Option<u64>)> {
        let cx = EvalContext { now: jiff::Timestamp::now() };
        let mut kept = Vec::with_capacity(items.len());
        for n in items {
            let keep = match &opts.filter {
                None => true,
                Some(f) => {
                    matches(f, &Json::Object(n.json.clone()), &cx).map_err(|e| ApiError::bad_parameter("$filter", e))?
                }
            };
            if keep {
                kept.push(n);
            }
        }
        let count = kept.len() as u64;
        if !opts.orderby.is_empty() {
            let mut keyed: Vec<(Vec<Val>, Node)> = Vec::with_capacity(kept.len());
            for n in kept {
                let v = Json::Object(n.json.clone());
                let keys = opts
                    .orderby
                    .iter()
                    .map(|o| evaluate(&o.expr, &v, &cx))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| ApiError::bad_parameter("$orderby", e))?;
                keyed.push((keys, n));
            }
            keyed.sort_by(|(a, _), (b, _)| {
                for (i, o) in opts.orderby.iter().enumerate() {
                    let c = cmp_val(&a[i], &b[i]);
                    let c = if o.descending { c.reverse() } else { c };
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                Ordering::Equal
            });
            kept = keyed.into_iter().map(|(_, n)| n).collect();
        }
        let top = opts.top.unwrap_or(DEFAULT_TOP).min(self.max_top) as usize;
        let skip = opts.skip.unwrap_or(0) as usize;
        Ok((kept.into_iter().skip(skip).take(top).collect(), Some(count)))
    }

    /// An entity's JSON with links, `$expand` and `$select`.
    pub fn render(&self, node: Node, opts: &QueryOptions) -> ApiResult<Json> {
        let mut obj = node.json.clone();
        obj.remove("thing");
        obj.remove("locations");
        add_links(&mut obj, self.base, node.ty, &node.id);
        let mut expanded: Vec<&str> = Vec::new();
        let mut counts: Vec<(String, u64)> = Vec::new();
        for e in &opts.expand {
            let Some(n) = node.ty.navigation(e.nav) else { continue };
            let (items, count) = self.related(&node, e.nav, &e.options, false)?;
            let rendered = items.into_iter().map(|i| self.render(i, &e.options)).collect::<ApiResult<Vec<_>>>()?;
            let v = match n.cardinality {
                Cardinality::Many => {
                    if e.options.count == Some(true)
                        && let Some(c) = count
                    {
                        counts.push((format!("{}@iot.count", e.nav), c));
                    }
                    Json::Array(rendered)
                }
                Cardinality::One => rendered.into_iter().next().unwrap_or(Json::Null),
            };
            obj.insert(e.nav.to_owned(), v);
            expanded.push(e.nav);
        }
        apply_select(&mut obj, node.ty, &opts.select, &expanded);
        for (k, c) in counts {
            obj.insert(k, json!(c));
        }
        Ok(Json::Object(obj))
    }
}

/// Order of `$orderby` keys: null first, numbers by value, text, times (intervals by start).
pub fn cmp_val(a: &Val, b: &Val) -> Ordering {
    fn rank(v: &Val) -> u8 {
        match v {
            Val::Null => 0,
            Val::Bool(_) => 1,
            Val::Int(_) | Val::Float(_) => 2,
            Val::Str(_) => 3,
            Val::Time(_) | Val::Interval(..) => 4,
            _ => 5,
        }
    }
    let num = |v: &Val| match v {
        Val::Int(i) => *i as f64,
        Val::Float(x) => *x,
        _ => 0.0,
    };
    let time = |v: &Val| match v {
        Val::Time(t) | Val::Interval(t, _) => Some(*t),
        _ => None,
    };
    match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Int(x), Val::Int(y)) => x.cmp(y),
        (Val::Int(_) | Val::Float(_), Val::Int(_) | Val::Float(_)) => num(a).total_cmp(&num(b)),
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        (Val::Time(_) | Val::Interval(..), Val::Time(_) | Val::Interval(..)) => time(a).cmp(&time(b)),
        _ => rank(a).cmp(&rank(b)),
    }
}
