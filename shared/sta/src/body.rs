//! Create and update bodies: validation with the JSON path of the offending member, and deep
//! insert flattened into an ordered list of creates.
//!
//! A deep insert (a Thing with inline Locations and Datastreams, each with an inline Sensor and
//! ObservedProperty, Observations with an inline FeatureOfInterest) becomes a [`CreatePlan`]: one
//! [`CreateOp`] per new entity, in an order where every entity an op refers to is created before it
//! ([`Ref::New`] is the index of an earlier op). The rule comes from who holds the foreign key:
//! an inline entity reached through a to-one navigation property (a Datastream's `Sensor`) or a
//! many-to-many one (a Thing's `Locations`) is created first and linked from its parent; one
//! whose way back is to-one (a Thing's `Datastreams`, a Datastream's `Observations`) is created
//! after its parent and links to it. An inline object holding only `@iot.id` is a reference to an
//! existing entity ([`Ref::Existing`]; other members beside it are ignored); the store checks
//! that it exists.
//!
//! The plan is what the storage layer executes in one transaction; nothing here does I/O.

use serde_json::{Map, Value};

use crate::entity::{
    COMPLEX_OBSERVATION, Cardinality, EntityType, GEOJSON_ENCODINGS, Id, OBSERVATION_TYPES, TimeValue, parse_instant,
};
use crate::error::{Result, StaError};

/// Bounds of one create body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// Most entities one deep insert may create.
    pub max_entities: usize,
    /// Deepest nesting of inline entities.
    pub max_depth: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits { max_entities: 10_000, max_depth: 8 }
    }
}

/// What a link points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    /// An entity that already exists.
    Existing(Id),
    /// The entity created by `ops[index]` of the same plan (always an earlier op).
    New(usize),
}

/// A navigation link set on a new entity: `nav` is the navigation property of the op's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub nav: &'static str,
    pub target: Ref,
}

/// One entity to create.
#[derive(Debug, Clone, PartialEq)]
pub struct CreateOp {
    pub entity_type: EntityType,
    /// JSON pointer of the entity in the body (`""`, `/Datastreams/0/Sensor`).
    pub path: String,
    /// Validated properties (times normalised to RFC 3339 UTC).
    pub properties: Map<String, Value>,
    pub links: Vec<Link>,
}

/// The flattened deep insert. The entity the request created is `ops[root]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CreatePlan {
    pub ops: Vec<CreateOp>,
    pub root: usize,
}

/// A validated update (PATCH): properties to set (`null` clears an optional one) and to-one /
/// many-to-many links to existing entities.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Update {
    pub properties: Map<String, Value>,
    pub links: Vec<(&'static str, Id)>,
}

/// Validates a create body of type `ty` and flattens its deep insert. `parent` is the link the
/// URL implies (a POST to `/Datastreams(5)/Observations` passes `Link { nav: "Datastream", … }`).
pub fn plan_create(ty: EntityType, body: &Value, parent: Option<Link>, limits: BodyLimits) -> Result<CreatePlan> {
    let mut p = Planner { ops: Vec::new(), limits };
    if let Some(o) = body.as_object()
        && o.contains_key("@iot.id")
    {
        return Err(StaError::body("/@iot.id", "`@iot.id` is assigned by the server"));
    }
    let root = p.visit(ty, body, String::new(), parent, 0)?;
    Ok(CreatePlan { ops: p.ops, root })
}

struct Planner {
    ops: Vec<CreateOp>,
    limits: BodyLimits,
}

/// An inline object holding `@iot.id` links the existing entity with that id. Its other members
/// are ignored, as FROST-Server does: standard clients (frost-sta-client) send the whole entity
/// they hold, `{"@iot.id": 5, "name": …}`, when they link it.
fn is_reference(v: &Value) -> Option<Result<Id, ()>> {
    let id = v.as_object()?.get("@iot.id")?;
    Some(Id::from_json(id).ok_or(()))
}

fn ptr(path: &str, key: &str) -> String {
    format!("{path}/{}", key.replace('~', "~0").replace('/', "~1"))
}

impl Planner {
    fn visit(&mut self, ty: EntityType, v: &Value, path: String, back: Option<Link>, depth: usize) -> Result<usize> {
        if depth > self.limits.max_depth {
            return Err(StaError::too_large(
                format!("deep insert nesting at `{path}`"),
                depth as u64,
                self.limits.max_depth as u64,
            ));
        }
        let Some(obj) = v.as_object() else {
            return Err(StaError::body(path, format!("expected a {ty} object")));
        };
        let mut props = Map::new();
        let mut links: Vec<Link> = Vec::new();
        let mut after: Vec<(EntityType, &Value, String, &'static str)> = Vec::new();
        for (k, val) in obj {
            let here = ptr(&path, k);
            if let Some(n) = ty.navigation(k) {
                match n.cardinality {
                    Cardinality::One => match is_reference(val) {
                        Some(Ok(id)) => links.push(Link { nav: n.name, target: Ref::Existing(id) }),
                        Some(Err(())) => {
                            return Err(StaError::body(ptr(&here, "@iot.id"), "an id is an integer or a string"));
                        }
                        None => {
                            let idx = self.visit(n.target, val, here, None, depth + 1)?;
                            links.push(Link { nav: n.name, target: Ref::New(idx) });
                        }
                    },
                    Cardinality::Many => {
                        let Some(items) = val.as_array() else {
                            return Err(StaError::body(here, format!("`{}` is an array of {}", n.name, n.target)));
                        };
                        let inverse_one =
                            n.target.navigation(n.inverse).is_some_and(|b| b.cardinality == Cardinality::One);
                        for (i, item) in items.iter().enumerate() {
                            let at = format!("{here}/{i}");
                            match is_reference(item) {
                                Some(Ok(id)) => links.push(Link { nav: n.name, target: Ref::Existing(id) }),
                                Some(Err(())) => {
                                    return Err(StaError::body(ptr(&at, "@iot.id"), "an id is an integer or a string"));
                                }
                                None if inverse_one => after.push((n.target, item, at, n.inverse)),
                                None => {
                                    let idx = self.visit(n.target, item, at, None, depth + 1)?;
                                    links.push(Link { nav: n.name, target: Ref::New(idx) });
                                }
                            }
                        }
                    }
                }
            } else if k == "@iot.selfLink" || k.ends_with("@iot.navigationLink") {
                // Clients echo links of entities they read; they carry nothing to store.
            } else if let Some(name) = ty.property(k) {
                if name == "id" {
                    return Err(StaError::body(here, "`id` is assigned by the server"));
                }
                if ty.read_only_properties().contains(&name) {
                    return Err(StaError::body(here, format!("`{name}` is computed by the server")));
                }
                props.insert(name.to_owned(), check_property(ty, name, val, &here)?);
            } else {
                return Err(unknown_member(ty, k, here));
            }
        }
        if let Some(b) = &back {
            links.push(b.clone());
        }
        check_complete(ty, &props, &links, &path)?;
        if self.ops.len() >= self.limits.max_entities {
            return Err(StaError::too_large(
                "entities in one deep insert",
                self.ops.len() as u64 + 1,
                self.limits.max_entities as u64,
            ));
        }
        let idx = self.ops.len();
        self.ops.push(CreateOp { entity_type: ty, path, properties: props, links });
        for (cty, item, at, inverse) in after {
            self.visit(cty, item, at, Some(Link { nav: inverse, target: Ref::New(idx) }), depth + 1)?;
        }
        Ok(idx)
    }
}

fn unknown_member(ty: EntityType, k: &str, here: String) -> StaError {
    let mut known: Vec<&str> = ty.properties().iter().copied().filter(|p| *p != "id").collect();
    known.extend(ty.navigations().iter().map(|n| n.name));
    StaError::body(here, format!("{ty} has no member `{k}`; its members are {}", known.join(", ")))
}

/// Required properties and links of a new entity, the Observation's one-stream rule and the
/// MultiDatastream's equal lengths.
fn check_complete(ty: EntityType, props: &Map<String, Value>, links: &[Link], path: &str) -> Result<()> {
    for req in ty.required_properties() {
        if !props.contains_key(*req) {
            return Err(StaError::body(path.to_owned(), format!("{ty} needs `{req}`")));
        }
        if props[*req].is_null() && *req != "result" {
            return Err(StaError::body(ptr(path, req), format!("{ty} needs `{req}`, not null")));
        }
    }
    let has = |nav: &str| links.iter().any(|l| l.nav == nav);
    for req in ty.required_navigation() {
        if !has(req) {
            return Err(StaError::body(
                path.to_owned(),
                format!("{ty} needs `{req}` (inline or as {{\"@iot.id\": …}})"),
            ));
        }
    }
    for nav in ty.navigations().iter().filter(|n| n.cardinality == Cardinality::One) {
        if links.iter().filter(|l| l.nav == nav.name).count() > 1 {
            return Err(StaError::body(ptr(path, nav.name), format!("{ty} links one `{}`", nav.name)));
        }
    }
    if ty == EntityType::Observation && has("Datastream") == has("MultiDatastream") {
        return Err(StaError::body(
            path.to_owned(),
            "an Observation belongs to exactly one Datastream or MultiDatastream",
        ));
    }
    if ty == EntityType::MultiDatastream {
        let units = props.get("unitOfMeasurements").and_then(Value::as_array).map_or(0, Vec::len);
        let types = props.get("multiObservationDataTypes").and_then(Value::as_array).map_or(0, Vec::len);
        let ops = links.iter().filter(|l| l.nav == "ObservedProperties").count();
        if units != types || types != ops {
            return Err(StaError::body(
                path.to_owned(),
                format!(
                    "a MultiDatastream has as many unitOfMeasurements ({units}) as multiObservationDataTypes ({types}) and ObservedProperties ({ops})"
                ),
            ));
        }
    }
    if let Some(enc) = props.get("encodingType").and_then(Value::as_str)
        && GEOJSON_ENCODINGS.contains(&enc)
    {
        for key in ["location", "feature"] {
            if let Some(g) = props.get(key)
                && !g.is_null()
            {
                crate::geometry::from_geojson(g).map_err(|e| StaError::body(ptr(path, key), e))?;
            }
        }
    }
    Ok(())
}

/// Validates an update (PATCH) body of type `ty`.
pub fn validate_update(ty: EntityType, body: &Value) -> Result<Update> {
    let Some(obj) = body.as_object() else {
        return Err(StaError::body("", format!("expected a {ty} object")));
    };
    let mut up = Update::default();
    for (k, val) in obj {
        let here = ptr("", k);
        if let Some(n) = ty.navigation(k) {
            let items: Vec<&Value> = match (n.cardinality, val) {
                (Cardinality::One, v) => vec![v],
                (Cardinality::Many, Value::Array(a)) => a.iter().collect(),
                (Cardinality::Many, _) => {
                    return Err(StaError::body(here, format!("`{}` is an array of references", n.name)));
                }
            };
            for (i, item) in items.into_iter().enumerate() {
                let at = if n.cardinality == Cardinality::Many { format!("{here}/{i}") } else { here.clone() };
                match is_reference(item) {
                    Some(Ok(id)) => up.links.push((n.name, id)),
                    _ => return Err(StaError::body(at, "an update links existing entities only: {\"@iot.id\": …}")),
                }
            }
        } else if k == "@iot.id" {
            // "The service ignores the entity id in the payload when applying the update"
            // (18-088 §10.3.1); clients send back the entity they read.
        } else if k == "id" {
            return Err(StaError::body(here, "the id of an entity cannot change"));
        } else if k == "@iot.selfLink" || k.ends_with("@iot.navigationLink") {
        } else if let Some(name) = ty.property(k) {
            if ty.read_only_properties().contains(&name) {
                return Err(StaError::body(here, format!("`{name}` is computed by the server")));
            }
            if val.is_null() && ty.required_properties().contains(&name) && name != "result" {
                return Err(StaError::body(here, format!("`{name}` is required and cannot be null")));
            }
            let v = if val.is_null() { Value::Null } else { check_property(ty, name, val, &here)? };
            up.properties.insert(name.to_owned(), v);
        } else {
            return Err(unknown_member(ty, k, here));
        }
    }
    if let Some(enc) = up.properties.get("encodingType").and_then(Value::as_str)
        && GEOJSON_ENCODINGS.contains(&enc)
    {
        for key in ["location", "feature"] {
            if let Some(g) = up.properties.get(key).filter(|g| !g.is_null()) {
                crate::geometry::from_geojson(g).map_err(|e| StaError::body(ptr("", key), e))?;
            }
        }
    }
    Ok(up)
}

fn string(v: &Value, here: &str, what: &str) -> Result<Value> {
    match v {
        Value::String(_) => Ok(v.clone()),
        _ => Err(StaError::body(here.to_owned(), format!("`{what}` is a string"))),
    }
}

fn time(v: &Value, here: &str, instant_only: bool, interval_only: bool) -> Result<Value> {
    let Some(s) = v.as_str() else {
        return Err(StaError::body(here.to_owned(), "a time is an ISO 8601 string"));
    };
    let t = TimeValue::parse(s).map_err(|e| StaError::body(here.to_owned(), e))?;
    match t {
        TimeValue::Interval(..) if instant_only => {
            Err(StaError::body(here.to_owned(), "expected an instant, not an interval"))
        }
        TimeValue::Instant(_) if interval_only => {
            Err(StaError::body(here.to_owned(), "expected an interval `start/end`"))
        }
        _ => Ok(Value::String(t.to_string())),
    }
}

fn unit(v: &Value, here: &str) -> Result<Value> {
    let Some(o) = v.as_object() else {
        return Err(StaError::body(here.to_owned(), "a unitOfMeasurement is an object {name, symbol, definition}"));
    };
    for (k, m) in o {
        if !matches!(k.as_str(), "name" | "symbol" | "definition") {
            return Err(StaError::body(ptr(here, k), "a unitOfMeasurement has only name, symbol and definition"));
        }
        if !(m.is_string() || m.is_null()) {
            return Err(StaError::body(ptr(here, k), format!("`{k}` is a string or null")));
        }
    }
    Ok(v.clone())
}

/// Checks one property value of a create or update body; returns it normalised.
pub fn check_property(ty: EntityType, name: &str, v: &Value, here: &str) -> Result<Value> {
    use EntityType as E;
    match name {
        "name" | "encodingType" | "definition" => string(v, here, name),
        "description" if v.is_null() => Ok(Value::Null),
        "description" => string(v, here, name),
        "properties" | "parameters" if v.is_null() || v.is_object() => Ok(v.clone()),
        "properties" | "parameters" => Err(StaError::body(here.to_owned(), format!("`{name}` is a JSON object"))),
        "metadata" | "location" | "feature" if v.is_null() => {
            Err(StaError::body(here.to_owned(), format!("`{name}` cannot be null")))
        }
        "result" | "resultQuality" | "metadata" | "location" | "feature" => Ok(v.clone()),
        "unitOfMeasurement" => unit(v, here),
        "unitOfMeasurements" => {
            let Some(a) = v.as_array() else {
                return Err(StaError::body(here.to_owned(), "`unitOfMeasurements` is an array"));
            };
            for (i, u) in a.iter().enumerate() {
                unit(u, &format!("{here}/{i}"))?;
            }
            Ok(v.clone())
        }
        "observationType" => {
            let s = v.as_str().unwrap_or_default();
            let ok = if ty == E::MultiDatastream { s == COMPLEX_OBSERVATION } else { OBSERVATION_TYPES.contains(&s) };
            if ok {
                Ok(v.clone())
            } else if ty == E::MultiDatastream {
                Err(StaError::body(
                    here.to_owned(),
                    format!("a MultiDatastream's observationType is {COMPLEX_OBSERVATION}"),
                ))
            } else {
                Err(StaError::body(
                    here.to_owned(),
                    format!("observationType is one of {}", OBSERVATION_TYPES.join(", ")),
                ))
            }
        }
        "multiObservationDataTypes" => {
            let Some(a) = v.as_array() else {
                return Err(StaError::body(
                    here.to_owned(),
                    "`multiObservationDataTypes` is an array of observation type URIs",
                ));
            };
            for (i, t) in a.iter().enumerate() {
                if !t.as_str().is_some_and(|s| OBSERVATION_TYPES.contains(&s)) {
                    return Err(StaError::body(
                        format!("{here}/{i}"),
                        format!("observation types are {}", OBSERVATION_TYPES.join(", ")),
                    ));
                }
            }
            Ok(v.clone())
        }
        "time" => time(v, here, true, false),
        "phenomenonTime" if ty == E::Observation => time(v, here, false, false),
        "resultTime" if ty == E::Observation && v.is_null() => Ok(Value::Null),
        "resultTime" if ty == E::Observation => time(v, here, true, false),
        "validTime" if v.is_null() => Ok(Value::Null),
        "validTime" => time(v, here, false, true),
        "phenomenonTime" | "resultTime" if v.is_null() => Ok(Value::Null),
        "phenomenonTime" | "resultTime" => time(v, here, false, false),
        _ => Ok(v.clone()),
    }
}

/// Checks a MultiDatastream Observation's result against the stream's number of data types.
pub fn check_multi_result(result: &Value, data_types: usize) -> Result<()> {
    match result.as_array() {
        Some(a) if a.len() == data_types => Ok(()),
        Some(a) => Err(StaError::body(
            "/result",
            format!("the MultiDatastream has {data_types} observed properties; the result has {}", a.len()),
        )),
        None => Err(StaError::body("/result", "a MultiDatastream Observation's result is an array")),
    }
}

/// Parses one instant member (used by the dataArray reader).
pub(crate) fn instant_value(v: &Value) -> std::result::Result<Value, String> {
    let s = v.as_str().ok_or("a time is an ISO 8601 string")?;
    parse_instant(s).map(|t| Value::String(t.to_string()))
}

#[cfg(test)]
#[path = "body_tests.rs"]
mod tests;
