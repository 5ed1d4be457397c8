//! The FeatureOfInterest of Observations (18-088 §8.2.8 and §10.2: an Observation created
//! without one gets one generated from its Thing's Location, reused for later Observations).
//!
//! Why per stream and not per reading: an Observation is a reading of the time-series store,
//! which keeps a number per (series, instant) and nothing else, so the link lives on the
//! (Multi)Datastream, as a hidden member `FeatureOfInterest` of its stored `links`: every
//! Observation of the stream answers that FeatureOfInterest. The first Observation of a stream
//! sets it: the one the Observation links (`{"@iot.id": …}`; a later Observation linking another
//! one moves the stream to it, for all its Observations — the limit of this storage, written in
//! ARCHITECTURE.md), else the one generated from the first Location of the stream's Thing (name,
//! description, encodingType and GeoJSON of the Location; reused by every stream of a Thing at
//! that Location: the generated FeatureOfInterest stores the Location it came from). A Thing
//! without a Location leaves its Observations without a FeatureOfInterest.
//!
//! Cost: the stream's entity is read for every Observation anyway (its series definition);
//! only the first Observation of a stream writes (one transaction, author `system:sta`).

use serde_json::Map;
use shikong_sta::entity::{EntityType, Id};
use shikong_sta::options::QueryOptions;
use shikong_store::TxMeta;

use super::super::problem::ApiResult;
use super::entities::{self, Rec};
use super::read::{Cx, Node};
use super::{AppState, multi, observations};

/// The hidden member of a (Multi)Datastream's stored links naming its Observations' FeatureOfInterest.
pub const LINK: &str = "FeatureOfInterest";
/// The hidden member of a generated FeatureOfInterest's stored links naming its Location.
const FROM_LOCATION: &str = "Location";

fn linked(stream: &Rec) -> Option<Id> {
    stream.links.get(LINK).and_then(Id::from_json)
}

fn meta() -> TxMeta {
    TxMeta { source: Some("sensorthings feature of interest".into()), ..TxMeta::by("system:sta") }
}

/// Links `stream`'s Observations to `foi` (checked to exist by the caller) unless it already is.
pub fn link(st: &AppState, stream: &Rec, foi: &Id) -> ApiResult<()> {
    if linked(stream).as_ref() == Some(foi) {
        return Ok(());
    }
    let mut tx = st.store().begin(meta())?;
    if let Some(mut s) = entities::get_tx(tx.as_mut(), stream.ty, &stream.id)? {
        s.links.insert(LINK.into(), foi.to_json());
        entities::update(tx.as_mut(), &s)?;
    }
    tx.commit()?;
    st.committed();
    Ok(())
}

/// An Observation of stream `ty`/`id` links the FeatureOfInterest `foi`: 404 naming
/// `/FeatureOfInterest` when it does not exist; the stream's Observations now answer it.
pub fn link_explicit(st: &AppState, ty: EntityType, id: &Id, foi: &Id) -> ApiResult<()> {
    if entities::get(st.store(), EntityType::FeatureOfInterest, foi, None)?.is_none() {
        return Err(entities::missing(EntityType::FeatureOfInterest, foi).with("field", "/FeatureOfInterest"));
    }
    match entities::get(st.store(), ty, id, None)? {
        Some(stream) => link(st, &stream, foi),
        None => Err(entities::missing(ty, id)),
    }
}

/// Gives `stream` the FeatureOfInterest generated from its Thing's first Location when it has
/// none yet (nothing when the Thing has no Location).
pub fn ensure_generated(st: &AppState, stream: &Rec) -> ApiResult<()> {
    if linked(stream).is_some() {
        return Ok(());
    }
    let store = st.store();
    let Some(thing) = stream.linked("Thing").into_iter().next() else { return Ok(()) };
    let Some(thing) = entities::get(store, EntityType::Thing, &thing, None)? else { return Ok(()) };
    let Some(loc) = thing.linked("Locations").into_iter().next() else { return Ok(()) };
    let Some(loc) = entities::get(store, EntityType::Location, &loc, None)? else { return Ok(()) };
    let existing = entities::list(store, EntityType::FeatureOfInterest, None)?
        .into_iter()
        .find(|f| f.links.get(FROM_LOCATION) == Some(&loc.id.to_json()));
    let foi = match existing {
        Some(f) => f.id,
        None => {
            let mut props = Map::new();
            for (from, to) in [
                ("name", "name"),
                ("description", "description"),
                ("encodingType", "encodingType"),
                ("location", "feature"),
            ] {
                if let Some(v) = loc.props.get(from) {
                    props.insert(to.into(), v.clone());
                }
            }
            let mut links = Map::new();
            links.insert(FROM_LOCATION.into(), loc.id.to_json());
            let mut tx = st.store().begin(meta())?;
            let (id, _) = entities::insert(tx.as_mut(), EntityType::FeatureOfInterest, &props, &links)?;
            tx.commit()?;
            id
        }
    };
    link(st, stream, &foi)
}

/// The stream (Datastream or MultiDatastream) an Observation id belongs to.
fn stream_of(cx: &Cx<'_>, obs: &Id) -> ApiResult<Option<Rec>> {
    let (ty, id) = match (observations::parse_id(obs), multi::parse_id(obs)) {
        (Some((d, _)), _) => (EntityType::Datastream, d),
        (None, Some((m, _))) => (EntityType::MultiDatastream, m),
        _ => return Ok(None),
    };
    entities::get(cx.st.store(), ty, &Id::Int(id), cx.as_of)
}

/// `Observations(id)/FeatureOfInterest`.
pub fn of_observation(cx: &Cx<'_>, obs: &Id) -> ApiResult<Vec<Node>> {
    let Some(foi) = stream_of(cx, obs)?.as_ref().and_then(linked) else { return Ok(Vec::new()) };
    Ok(entities::get(cx.st.store(), EntityType::FeatureOfInterest, &foi, cx.as_of)?.map(Node::of).into_iter().collect())
}

/// `FeaturesOfInterest(id)/Observations`: the Observations of every stream linked to it,
/// merged and bounded as `/Observations` is.
pub fn observations(cx: &Cx<'_>, foi: &Node, opts: &QueryOptions) -> ApiResult<(Vec<Node>, Option<u64>)> {
    let me = foi.id.to_json();
    let mut nodes = Vec::new();
    let (inner, big) = observations::merged_reads(cx, opts);
    for ty in [EntityType::Datastream, EntityType::MultiDatastream] {
        for s in entities::list(cx.st.store(), ty, cx.as_of)? {
            if s.links.get(LINK) != Some(&me) {
                continue;
            }
            let node = Node::of(s);
            nodes.extend(big.related(&node, "Observations", &inner, false)?.0);
            if nodes.len() > shikong_timeseries::MAX_RANGE_LIMIT {
                return Err(super::super::problem::ApiError::new(
                    axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    "more observations than one answer evaluates: read them per Datastream or filter on phenomenonTime",
                ));
            }
        }
    }
    let rest = QueryOptions { filter: None, ..opts.clone() };
    cx.page(nodes, &rest)
}

/// A deleted FeatureOfInterest is unlinked from the streams that named it (their next
/// Observation generates or links another).
pub fn unlink_all(tx: &mut dyn shikong_store::StoreTx, st: &AppState, foi: &Id) -> ApiResult<()> {
    let me = foi.to_json();
    for ty in [EntityType::Datastream, EntityType::MultiDatastream] {
        for mut s in entities::list(st.store(), ty, None)? {
            if s.links.get(LINK) == Some(&me) {
                s.links.remove(LINK);
                entities::update(tx, &s)?;
            }
        }
    }
    Ok(())
}
