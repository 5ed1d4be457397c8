//! SensorThings entities as features of the versioned store, so they have history and as-of
//! reads like every other object of the platform (a Thing is a manhole's sensor station; its
//! Location moves, and the move is a new version).
//!
//! One system layer per entity set (`sta_thing`, `sta_location`, `sta_sensor`,
//! `sta_observed_property`, `sta_datastream`, `sta_multi_datastream`,
//! `sta_feature_of_interest`), made on first use, each with three text fields: `name` (for GIS
//! and the attribute table), `body` (the entity's SensorThings properties as JSON) and `links`
//! (the navigation links this side holds, JSON: `{"Thing": 3, "Locations": [1, 2]}`). Locations
//! also carry their GeoJSON `location` as the feature's geometry (layer kind `GEOMETRY`).
//!
//! `@iot.id` is the number of the feature's code, which the store generates as
//! `<layer>-<NNNNNN>` and never reuses: stable, an integer, and a unique-index lookup. A feature
//! whose code has another form (set through OGC API by hand) gets its code as a string id.

use serde_json::{Map, Value as Json, json};
use shikong_model::{EntityId, FieldDef, FieldType, GeometryKind, LayerSchema, Properties, Value};
use shikong_sta::entity::{EntityType, Id};
use shikong_store::{FeatureKey, FeatureStore, LayerDef, Query, StoreTx, StoredFeature, TxMeta};

use super::super::problem::{ApiError, ApiResult};
use super::StaState;

/// Most entities of one set a request reads (filters and ordering run in memory over them).
pub const MAX_SCAN: usize = 100_000;

/// The layer holding an entity type (`None`: Observations are readings, HistoricalLocations are
/// derived from Things' history).
pub fn layer_of(ty: EntityType) -> Option<&'static str> {
    Some(match ty {
        EntityType::Thing => "sta_thing",
        EntityType::Location => "sta_location",
        EntityType::Sensor => "sta_sensor",
        EntityType::ObservedProperty => "sta_observed_property",
        EntityType::Datastream => "sta_datastream",
        EntityType::MultiDatastream => "sta_multi_datastream",
        EntityType::FeatureOfInterest => "sta_feature_of_interest",
        EntityType::Observation | EntityType::HistoricalLocation => return None,
    })
}

/// The layer whose permissions govern an entity type.
pub fn governing_layer(ty: EntityType) -> &'static str {
    match ty {
        EntityType::Observation => "sta_datastream",
        EntityType::HistoricalLocation => "sta_thing",
        t => layer_of(t).unwrap_or("sta_thing"),
    }
}

/// The navigation properties whose links this type stores (the other side finds them by
/// scanning for its own id).
pub fn stored_navs(ty: EntityType) -> &'static [&'static str] {
    match ty {
        EntityType::Thing => &["Locations"],
        EntityType::Datastream => &["Thing", "Sensor", "ObservedProperty"],
        EntityType::MultiDatastream => &["Thing", "Sensor", "ObservedProperties"],
        _ => &[],
    }
}

const TITLES: [(EntityType, &str); 7] = [
    (EntityType::Thing, "物联网设施 (SensorThings Things)"),
    (EntityType::Location, "设施位置 (SensorThings Locations)"),
    (EntityType::Sensor, "传感器 (SensorThings Sensors)"),
    (EntityType::ObservedProperty, "观测量 (SensorThings ObservedProperties)"),
    (EntityType::Datastream, "数据流 (SensorThings Datastreams)"),
    (EntityType::MultiDatastream, "多值数据流 (SensorThings MultiDatastreams)"),
    (EntityType::FeatureOfInterest, "观测对象 (SensorThings FeaturesOfInterest)"),
];

/// Makes the `sta_*` layers that do not exist yet (once per process).
pub fn ensure_layers(store: &dyn FeatureStore, sta: &StaState) -> ApiResult<()> {
    if sta.layers_ready.get().is_some() {
        return Ok(());
    }
    let have: Vec<String> = store.layers()?.into_iter().map(|l| l.def.name).collect();
    let missing: Vec<_> =
        TITLES.iter().filter(|(t, _)| !have.iter().any(|h| Some(h.as_str()) == layer_of(*t))).collect();
    if !missing.is_empty() {
        let mut tx = store.begin(TxMeta::by("system:sta").source("sensorthings layers"))?;
        for (ty, title) in missing {
            let schema = LayerSchema {
                fields: vec![
                    FieldDef::new("name", FieldType::Text),
                    FieldDef::new("body", FieldType::Text),
                    FieldDef::new("links", FieldType::Text),
                ],
            };
            let mut def = LayerDef::new(layer_of(*ty).unwrap_or_default(), GeometryKind::Geometry, schema);
            def.title = Some((*title).to_owned());
            def.description = Some(format!("SensorThings API {} entities (/sta/v1.1/{})", ty.name(), ty.set_name()));
            match tx.create_layer(def) {
                Ok(_) => {}
                // Another process made it meanwhile.
                Err(shikong_store::StoreError::LayerExists(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        tx.commit()?;
    }
    let _ = sta.layers_ready.set(());
    Ok(())
}

/// One stored entity.
#[derive(Debug, Clone)]
pub struct Rec {
    pub ty: EntityType,
    pub id: Id,
    pub entity: EntityId,
    /// The SensorThings properties (without `@iot.id`).
    pub props: Map<String, Json>,
    /// Navigation links this side stores: an id, or an array of ids.
    pub links: Map<String, Json>,
}

impl Rec {
    /// The ids linked through `nav` (stored on this side).
    pub fn linked(&self, nav: &str) -> Vec<Id> {
        match self.links.get(nav) {
            Some(Json::Array(a)) => a.iter().filter_map(Id::from_json).collect(),
            Some(v) => Id::from_json(v).into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// The entity's JSON without links (`@iot.id` and properties), what filters read.
    pub fn json(&self) -> Map<String, Json> {
        let mut m = Map::with_capacity(self.props.len() + 1);
        m.insert("@iot.id".into(), self.id.to_json());
        for p in self.ty.properties() {
            if *p != "id"
                && let Some(v) = self.props.get(*p)
            {
                m.insert((*p).to_owned(), v.clone());
            }
        }
        m
    }
}

/// The `@iot.id` of a feature code.
pub fn id_of_code(layer: &str, code: &str) -> Id {
    code.strip_prefix(layer)
        .and_then(|r| r.strip_prefix('-'))
        .filter(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|n| n.parse::<i64>().ok())
        .map_or_else(|| Id::Str(code.to_owned()), Id::Int)
}

/// The feature code of an `@iot.id` (the store's own format, `{layer}-{n:06}`).
pub fn code_of(layer: &str, id: &Id) -> String {
    match id {
        Id::Int(n) => format!("{layer}-{n:06}"),
        Id::Str(s) => s.clone(),
    }
}

fn text(p: &Properties, k: &str) -> Map<String, Json> {
    match p.get(k) {
        Some(Value::Text(s)) => serde_json::from_str(s).unwrap_or_default(),
        _ => Map::new(),
    }
}

pub fn from_feature(ty: EntityType, layer: &str, f: StoredFeature) -> Rec {
    Rec {
        ty,
        id: id_of_code(layer, &f.feature.code),
        entity: f.feature.id,
        props: text(&f.feature.properties, "body"),
        links: text(&f.feature.properties, "links"),
    }
}

fn layer(ty: EntityType) -> ApiResult<&'static str> {
    layer_of(ty).ok_or_else(|| ApiError::internal(format!("{ty} has no layer")))
}

/// Every entity of a type (as of an instant), at most [`MAX_SCAN`].
pub fn list(store: &dyn FeatureStore, ty: EntityType, as_of: Option<jiff::Timestamp>) -> ApiResult<Vec<Rec>> {
    let layer = layer(ty)?;
    let q = Query { as_of, by_id: true, limit: Some(MAX_SCAN + 1), ..Query::layer(layer) };
    let mut out = Vec::new();
    store.query(&q, &mut |f| {
        out.push(from_feature(ty, layer, f));
        true
    })?;
    if out.len() > MAX_SCAN {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!("{} holds more than {MAX_SCAN} entities; filters run in memory up to that", ty.set_name()),
        )
        .with("limit", "entities scanned")
        .with("max", MAX_SCAN));
    }
    // Integer ids in number order (the store orders by entity id).
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

/// One entity by id (as of an instant).
pub fn get(
    store: &dyn FeatureStore,
    ty: EntityType,
    id: &Id,
    as_of: Option<jiff::Timestamp>,
) -> ApiResult<Option<Rec>> {
    let layer = layer(ty)?;
    Ok(store.get(layer, &FeatureKey::Code(code_of(layer, id)), as_of)?.map(|f| from_feature(ty, layer, f)))
}

/// One entity by id, read through a write transaction.
pub fn get_tx(tx: &mut dyn StoreTx, ty: EntityType, id: &Id) -> ApiResult<Option<Rec>> {
    let layer = layer(ty)?;
    Ok(tx.get(layer, &FeatureKey::Code(code_of(layer, id)))?.map(|f| from_feature(ty, layer, f)))
}

/// 404 naming the entity.
pub fn missing(ty: EntityType, id: &Id) -> ApiError {
    ApiError::not_found(format!("no {ty} with @iot.id {}", id.url_literal()))
        .with("entity", format!("{}({})", ty.set_name(), id.url_literal()))
}

/// The feature's stored properties and geometry for an entity's JSON.
pub fn feature_values(
    ty: EntityType,
    props: &Map<String, Json>,
    links: &Map<String, Json>,
) -> (Properties, Option<shikong_model::Geometry>) {
    let mut p = Properties::new();
    let name = props.get("name").and_then(Json::as_str).unwrap_or_default();
    p.insert("name".into(), Value::Text(name.to_owned()));
    p.insert("body".into(), Value::Text(Json::Object(props.clone()).to_string()));
    p.insert("links".into(), Value::Text(Json::Object(links.clone()).to_string()));
    let geometry = match ty {
        EntityType::Location => geometry_of(props.get("location")),
        EntityType::FeatureOfInterest => geometry_of(props.get("feature")),
        _ => None,
    };
    (p, geometry)
}

/// A GeoJSON geometry (or Feature) as the store's geometry, when it is a valid one.
fn geometry_of(v: Option<&Json>) -> Option<shikong_model::Geometry> {
    let v = v?;
    let g = if v.get("type").and_then(Json::as_str) == Some("Feature") { v.get("geometry")? } else { v };
    let geom = shikong_model::geojson::from_json(g).ok()?;
    geom.validate().ok()?;
    Some(geom)
}

/// Inserts a new entity; returns its id.
pub fn insert(
    tx: &mut dyn StoreTx,
    ty: EntityType,
    props: &Map<String, Json>,
    links: &Map<String, Json>,
) -> ApiResult<(Id, EntityId)> {
    let layer = layer(ty)?;
    let (properties, geometry) = feature_values(ty, props, links);
    let entity =
        tx.insert(layer, shikong_store::NewFeature { geometry, properties, ..shikong_store::NewFeature::default() })?;
    let f = tx.get(layer, &FeatureKey::Id(entity))?.ok_or_else(|| ApiError::internal("the new entity vanished"))?;
    Ok((id_of_code(layer, &f.feature.code), entity))
}

/// Writes a changed entity as a new version.
pub fn update(tx: &mut dyn StoreTx, rec: &Rec) -> ApiResult<()> {
    let layer = layer(rec.ty)?;
    let (set, geometry) = feature_values(rec.ty, &rec.props, &rec.links);
    let geometry = matches!(rec.ty, EntityType::Location | EntityType::FeatureOfInterest).then_some(geometry);
    tx.update(layer, &FeatureKey::Id(rec.entity), shikong_store::Patch { set, geometry, ..Default::default() })?;
    Ok(())
}

/// Deletes an entity.
pub fn delete(tx: &mut dyn StoreTx, rec: &Rec) -> ApiResult<()> {
    tx.delete(layer(rec.ty)?, &FeatureKey::Id(rec.entity))?;
    Ok(())
}

/// A link value for the `links` map: one id, or an array.
pub fn link_json(ids: &[Id], many: bool) -> Json {
    if many { Json::Array(ids.iter().map(Id::to_json).collect()) } else { ids.first().map_or(json!(null), Id::to_json) }
}
