//! Features (the state of one entity at one time), identity, and field-level changes.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::error::ModelError;
use crate::geometry::Geometry;
pub use crate::schema::Properties;
use crate::time::ValidTime;
use crate::value::Value;

/// The stable identity of an entity: a UUID minted where the entity is created (a device, an
/// import), never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntityId(pub Uuid);

impl EntityId {
    pub fn from_uuid(u: Uuid) -> Self {
        EntityId(u)
    }
}

impl fmt::Display for EntityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl FromStr for EntityId {
    type Err = ModelError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s.trim()).map(EntityId).map_err(|e| ModelError::Invalid {
            what: "entity id",
            input: s.to_owned(),
            message: e.to_string(),
        })
    }
}

/// A transaction of the store: a monotonically increasing number; each has one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub i64);

/// Checks an entity code (地理实体编码): 1–64 characters, no control characters or surrounding space.
pub fn check_code(code: &str) -> Result<(), ModelError> {
    let bad = |m: &str| ModelError::Invalid { what: "entity code", input: code.to_owned(), message: m.to_owned() };
    if code.is_empty() {
        return Err(bad("must not be empty"));
    }
    if code.chars().count() > 64 {
        return Err(bad("at most 64 characters"));
    }
    if code.trim() != code || code.chars().any(char::is_control) {
        return Err(bad("no surrounding spaces or control characters"));
    }
    Ok(())
}

/// The state of one entity: identity, space, valid time and attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub id: EntityId,
    pub code: String,
    pub geometry: Option<Geometry>,
    pub valid: ValidTime,
    pub properties: Properties,
}

/// Checks a complete feature for a layer of shape (`kind`, `has_z`, `schema`) and returns it with
/// its geometry conformed (single parts promoted into multi-part layers). The one validation every
/// write passes, on devices (offline, before an edit is queued) and on the server (before a version
/// is stored). `previous` is the state being replaced, for the rule that retired fields keep their
/// values but accept no new ones. Geometry problems come back as [`ModelError::Geometry`].
pub fn conform(
    kind: crate::GeometryKind,
    has_z: bool,
    schema: &crate::LayerSchema,
    mut f: Feature,
    previous: Option<&Feature>,
) -> Result<Feature, ModelError> {
    check_code(&f.code)?;
    if let (Some(a), Some(b)) = (f.valid.from, f.valid.to)
        && a >= b
    {
        return Err(ModelError::Time {
            input: format!("{a}/{b}"),
            message: "valid_from must be before valid_to".into(),
        });
    }
    if let Some(g) = f.geometry.take() {
        g.validate()?;
        g.validate_geographic()?;
        if g.has_z() && !has_z {
            return Err(crate::GeometryError::Unsupported(
                "Z coordinates in a 2-D layer (redefine the layer with has_z to keep heights)".into(),
            )
            .into());
        }
        f.geometry = Some(g.conform_to(kind)?);
    }
    schema.validate(&f.properties)?;
    for field in schema.fields.iter().filter(|x| x.retired) {
        let new = f.properties.get(&field.name).filter(|v| !v.is_null());
        let old = previous.and_then(|p| p.properties.get(&field.name)).filter(|v| !v.is_null());
        if new.is_some() && new != old {
            return Err(crate::ValidationError::new(&field.name, "is retired and accepts no new values").into());
        }
    }
    Ok(f)
}

/// A value as it appears in a change: an attribute value or a geometry.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangedValue {
    Absent,
    Value(Value),
    Geometry(Geometry),
}

/// One attribute changed between two versions. `attribute` is a field name, or one of
/// `geometry`, `code`, `valid_from`, `valid_to` (reserved, so never a field name).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub attribute: String,
    pub old: ChangedValue,
    pub new: ChangedValue,
}

fn valid_value(t: Option<jiff::Timestamp>) -> ChangedValue {
    t.map_or(ChangedValue::Absent, |t| ChangedValue::Value(Value::DateTime(t)))
}

fn geom_value(g: &Option<Geometry>) -> ChangedValue {
    g.clone().map_or(ChangedValue::Absent, ChangedValue::Geometry)
}

fn prop_value(v: Option<&Value>) -> ChangedValue {
    match v {
        None | Some(Value::Null) => ChangedValue::Absent,
        Some(v) => ChangedValue::Value(v.clone()),
    }
}

/// The field-level differences from `old` to `new` (geometry first, then system attributes, then
/// fields by name). A null property and an absent one are the same.
pub fn diff(old: &Feature, new: &Feature) -> Vec<Change> {
    let mut out = Vec::new();
    let mut push = |attribute: &str, o: ChangedValue, n: ChangedValue| {
        if o != n {
            out.push(Change { attribute: attribute.to_owned(), old: o, new: n });
        }
    };
    push("geometry", geom_value(&old.geometry), geom_value(&new.geometry));
    push("code", ChangedValue::Value(old.code.as_str().into()), ChangedValue::Value(new.code.as_str().into()));
    push("valid_from", valid_value(old.valid.from), valid_value(new.valid.from));
    push("valid_to", valid_value(old.valid.to), valid_value(new.valid.to));
    let names: std::collections::BTreeSet<&String> = old.properties.keys().chain(new.properties.keys()).collect();
    for name in names {
        push(name, prop_value(old.properties.get(name)), prop_value(new.properties.get(name)));
    }
    out
}

/// Every attribute of `f` as a change from nothing (a creation) or to nothing (a deletion).
pub fn as_changes(f: &Feature, created: bool) -> Vec<Change> {
    let empty = Feature {
        id: f.id,
        code: f.code.clone(),
        geometry: None,
        valid: ValidTime::ALWAYS,
        properties: Properties::new(),
    };
    let mut changes = if created { diff(&empty, f) } else { diff(f, &empty) };
    let code = ChangedValue::Value(f.code.as_str().into());
    let (old, new) = if created { (ChangedValue::Absent, code) } else { (code, ChangedValue::Absent) };
    changes.insert(usize::from(f.geometry.is_some()), Change { attribute: "code".into(), old, new });
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::Coord;

    fn feature() -> Feature {
        Feature {
            id: "0192f3c4-0000-7000-8000-000000000001".parse().unwrap(),
            code: "420111-JG-0001".into(),
            geometry: Some(Geometry::Point(Coord::xy(114.3, 30.5))),
            valid: ValidTime::ALWAYS,
            properties: [("名称".to_string(), Value::from("井盖")), ("depth".to_string(), Value::Real(1.0))].into(),
        }
    }

    #[test]
    fn diff_lists_only_changed_attributes() {
        let a = feature();
        let mut b = feature();
        b.properties.insert("depth".into(), Value::Real(2.0));
        b.properties.insert("备注".into(), Value::Null);
        let d = diff(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].attribute, "depth");
        assert_eq!(d[0].new, ChangedValue::Value(Value::Real(2.0)));
        b.geometry = Some(Geometry::Point(Coord::xy(114.4, 30.5)));
        assert_eq!(diff(&a, &b)[0].attribute, "geometry");
    }

    #[test]
    fn creation_lists_everything() {
        let c = as_changes(&feature(), true);
        let names: Vec<_> = c.iter().map(|c| c.attribute.as_str()).collect();
        assert_eq!(names, ["geometry", "code", "depth", "名称"]);
        assert!(c.iter().all(|c| c.old == ChangedValue::Absent));
    }

    #[test]
    fn codes() {
        assert!(check_code("420111-JG-0001").is_ok());
        assert!(check_code("").is_err());
        assert!(check_code(" x").is_err());
        assert!(check_code(&"码".repeat(65)).is_err());
        assert!(check_code(&"码".repeat(64)).is_ok());
    }
}
