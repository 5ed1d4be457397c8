//! The document layout of docs/sync-protocol.md: which root key holds which attribute, and how each
//! value is written as an automerge scalar. Every attribute is one scalar, so a concurrent write
//! replaces it as a whole (a geometry is never merged vertex by vertex).
//!
//! Decoding always goes through the layer schema's field types: the document stores no types of
//! its own, and a stored scalar of the wrong kind is an error, never a silent guess.

use std::collections::BTreeMap;

use automerge::ScalarValue;
use jiff::Timestamp;
use shikong_model::time::{gpkg_datetime, parse_date, parse_instant};
use shikong_model::{Feature, FieldDef, FieldType, Geometry, LayerSchema, Value, wkb};

use crate::error::{Error, Result};

pub(crate) const ID: &str = "id";
pub(crate) const GEOMETRY: &str = "g";
pub(crate) const CODE: &str = "code";
pub(crate) const VALID_FROM: &str = "vf";
pub(crate) const VALID_TO: &str = "vt";
pub(crate) const DELETED: &str = "del";
pub(crate) const PROPERTY_PREFIX: &str = "p.";

/// Puts of one change, by key: a `BTreeMap` so that changes list their puts in key order, which
/// the deterministic base and server changes depend on.
pub(crate) type Puts = BTreeMap<String, ScalarValue>;

/// An attribute as users and conflict records name it, with the document key holding it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attribute<'a> {
    Geometry,
    Code,
    ValidFrom,
    ValidTo,
    Deleted,
    Field(&'a FieldDef),
}

impl<'a> Attribute<'a> {
    /// The attribute called `name`: `geometry`, `code`, `valid_from`, `valid_to`, `deleted` or a
    /// field name of `schema` (reserved names cannot be field names, so there is no ambiguity).
    pub(crate) fn parse(schema: &'a LayerSchema, name: &str) -> Result<Self> {
        Ok(match name {
            "geometry" => Attribute::Geometry,
            "code" => Attribute::Code,
            "valid_from" => Attribute::ValidFrom,
            "valid_to" => Attribute::ValidTo,
            "deleted" => Attribute::Deleted,
            _ => {
                Attribute::Field(schema.field(name).ok_or_else(|| Error::schema(name, "is not a field of this layer"))?)
            }
        })
    }

    /// Every attribute in the order conflicts are listed: system attributes, fields in column
    /// order, then the deletion flag.
    pub(crate) fn all(schema: &'a LayerSchema) -> impl Iterator<Item = Attribute<'a>> {
        [Attribute::Geometry, Attribute::Code, Attribute::ValidFrom, Attribute::ValidTo]
            .into_iter()
            .chain(schema.fields.iter().filter(|f| !f.id.is_empty()).map(Attribute::Field))
            .chain([Attribute::Deleted])
    }

    pub(crate) fn name(self) -> String {
        match self {
            Attribute::Geometry => "geometry".into(),
            Attribute::Code => "code".into(),
            Attribute::ValidFrom => "valid_from".into(),
            Attribute::ValidTo => "valid_to".into(),
            Attribute::Deleted => "deleted".into(),
            Attribute::Field(f) => f.name.clone(),
        }
    }

    pub(crate) fn key(self) -> Result<String> {
        Ok(match self {
            Attribute::Geometry => GEOMETRY.into(),
            Attribute::Code => CODE.into(),
            Attribute::ValidFrom => VALID_FROM.into(),
            Attribute::ValidTo => VALID_TO.into(),
            Attribute::Deleted => DELETED.into(),
            Attribute::Field(f) => property_key(f)?,
        })
    }
}

/// `p.<field id>`. Documents key properties by the stable id so renames never touch them; a field
/// without an id (not yet assigned by the store) cannot be written.
pub(crate) fn property_key(field: &FieldDef) -> Result<String> {
    if field.id.is_empty() {
        return Err(Error::schema(&field.name, "has no stable id yet (the store assigns one when the layer is saved)"));
    }
    Ok(format!("{PROPERTY_PREFIX}{}", field.id))
}

/// The scalar of a property value; `Null` clears the field.
pub(crate) fn encode_value(field: &FieldDef, v: &Value) -> Result<ScalarValue> {
    Ok(match (field.ty, v) {
        (_, Value::Null) => ScalarValue::Null,
        (FieldType::Text | FieldType::Code, Value::Text(s)) => ScalarValue::Str(s.as_str().into()),
        (FieldType::Integer, Value::Integer(i)) => ScalarValue::Int(*i),
        (FieldType::Real, Value::Real(f)) => ScalarValue::F64(*f),
        // A real field accepts integers (the model's check does too); stored as the real it means.
        (FieldType::Real, Value::Integer(i)) => ScalarValue::F64(*i as f64),
        (FieldType::Bool, Value::Bool(b)) => ScalarValue::Boolean(*b),
        (FieldType::Date, Value::Date(d)) => ScalarValue::Str(d.to_string().into()),
        (FieldType::DateTime, Value::DateTime(t)) => ScalarValue::Str(gpkg_datetime(*t).into()),
        (FieldType::Attachments, Value::Attachments(hashes)) => ScalarValue::Str(
            serde_json::to_string(hashes).map_err(|e| Error::schema(&field.name, e.to_string()))?.into(),
        ),
        _ => return Err(Error::schema(&field.name, format!("expected {}, got {v}", field.ty.name()))),
    })
}

/// The property value a stored scalar means for `field`.
pub(crate) fn decode_value(field: &FieldDef, s: &ScalarValue) -> Result<Value> {
    let wrong = || Error::schema(&field.name, format!("stored value {} is not {}", describe(s), field.ty.name()));
    Ok(match (field.ty, s) {
        (_, ScalarValue::Null) => Value::Null,
        (FieldType::Text | FieldType::Code, ScalarValue::Str(t)) => Value::Text(t.to_string()),
        (FieldType::Integer, ScalarValue::Int(i)) => Value::Integer(*i),
        (FieldType::Real, ScalarValue::F64(f)) => Value::Real(*f),
        // Written by a layer whose field was an integer before it was widened to real.
        (FieldType::Real, ScalarValue::Int(i)) => Value::Real(*i as f64),
        (FieldType::Bool, ScalarValue::Boolean(b)) => Value::Bool(*b),
        (FieldType::Date, ScalarValue::Str(t)) => Value::Date(parse_date(t).map_err(|_| wrong())?),
        (FieldType::DateTime, ScalarValue::Str(t)) => Value::DateTime(parse_instant(t).map_err(|_| wrong())?),
        (FieldType::Attachments, ScalarValue::Str(t)) => {
            Value::Attachments(serde_json::from_str(t).map_err(|_| wrong())?)
        }
        _ => return Err(wrong()),
    })
}

pub(crate) fn encode_geometry(g: Option<&Geometry>) -> ScalarValue {
    g.map_or(ScalarValue::Null, |g| ScalarValue::Bytes(wkb::to_vec(g)))
}

pub(crate) fn decode_geometry(s: &ScalarValue) -> Result<Option<Geometry>> {
    match s {
        ScalarValue::Null => Ok(None),
        ScalarValue::Bytes(b) => wkb::read(b).map(Some).map_err(|e| Error::document(GEOMETRY, e.to_string())),
        other => Err(Error::document(GEOMETRY, format!("stored value {} is not WKB bytes", describe(other)))),
    }
}

pub(crate) fn encode_time(t: Option<Timestamp>) -> ScalarValue {
    t.map_or(ScalarValue::Null, |t| ScalarValue::Str(gpkg_datetime(t).into()))
}

pub(crate) fn decode_time(key: &str, s: &ScalarValue) -> Result<Option<Timestamp>> {
    match s {
        ScalarValue::Null => Ok(None),
        ScalarValue::Str(t) => parse_instant(t).map(Some).map_err(|e| Error::document(key, e.to_string())),
        other => Err(Error::document(key, format!("stored value {} is not a date-time", describe(other)))),
    }
}

pub(crate) fn decode_code(s: &ScalarValue) -> Result<String> {
    match s {
        ScalarValue::Str(t) => Ok(t.to_string()),
        other => Err(Error::document(CODE, format!("stored value {} is not text", describe(other)))),
    }
}

pub(crate) fn decode_deleted(s: &ScalarValue) -> Result<bool> {
    match s {
        ScalarValue::Null => Ok(false),
        ScalarValue::Boolean(b) => Ok(*b),
        other => Err(Error::document(DELETED, format!("stored value {} is not a boolean", describe(other)))),
    }
}

/// Every key of `feature` as a full state: system keys always (null when empty), properties only
/// when not null. Leaving null properties out makes the base independent of whether a reader lists
/// empty fields and of fields added to the layer later (absent and null mean the same).
pub(crate) fn feature_puts(schema: &LayerSchema, feature: &Feature) -> Result<Puts> {
    let mut puts = Puts::new();
    puts.insert(ID.into(), ScalarValue::Str(feature.id.to_string().into()));
    puts.insert(CODE.into(), ScalarValue::Str(feature.code.as_str().into()));
    puts.insert(GEOMETRY.into(), encode_geometry(feature.geometry.as_ref()));
    puts.insert(VALID_FROM.into(), encode_time(feature.valid.from));
    puts.insert(VALID_TO.into(), encode_time(feature.valid.to));
    puts.extend(
        property_puts(schema, &feature.properties)?.into_iter().filter(|(_, v)| !matches!(v, ScalarValue::Null)),
    );
    Ok(puts)
}

/// The puts of properties given by field name.
pub(crate) fn property_puts(schema: &LayerSchema, properties: &shikong_model::Properties) -> Result<Puts> {
    properties
        .iter()
        .map(|(name, v)| {
            let field = schema.field(name).ok_or_else(|| Error::schema(name, "is not a field of this layer"))?;
            Ok((property_key(field)?, encode_value(field, v)?))
        })
        .collect()
}

/// A short description of a stored scalar for error messages (automerge's own Display prints
/// reals with 324 decimals).
pub(crate) fn describe(s: &ScalarValue) -> String {
    match s {
        ScalarValue::Bytes(b) => format!("bytes ({} B)", b.len()),
        ScalarValue::Str(t) => format!("text \"{t}\""),
        ScalarValue::Int(i) => format!("integer {i}"),
        ScalarValue::Uint(u) => format!("unsigned integer {u}"),
        ScalarValue::F64(f) => format!("real {f}"),
        ScalarValue::Counter(_) => "a counter".into(),
        ScalarValue::Timestamp(t) => format!("timestamp {t}"),
        ScalarValue::Boolean(b) => format!("boolean {b}"),
        ScalarValue::Null => "null".into(),
        ScalarValue::Unknown { type_code, .. } => format!("a value of unknown type {type_code}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::FieldType as T;

    fn field(ty: FieldType) -> FieldDef {
        let mut f = FieldDef::new("字段", ty);
        f.id = "f1".into();
        f
    }

    #[track_caller]
    fn check(ty: FieldType, v: Value, stored: ScalarValue) {
        let f = field(ty);
        assert_eq!(encode_value(&f, &v).unwrap(), stored);
        assert_eq!(decode_value(&f, &stored).unwrap(), v);
    }

    #[track_caller]
    fn check_refused(ty: FieldType, stored: ScalarValue, message: &str) {
        let e = decode_value(&field(ty), &stored).unwrap_err().to_string();
        assert!(e.contains(message), "{e} does not contain {message}");
    }

    #[test]
    fn value_encodings() {
        let t = parse_instant("2025-06-01T08:00:00+08:00").unwrap();
        check(T::Text, "井盖 🚧".into(), ScalarValue::Str("井盖 🚧".into()));
        check(T::Code, "1".into(), ScalarValue::Str("1".into()));
        check(T::Integer, Value::Integer(-7), ScalarValue::Int(-7));
        check(T::Real, Value::Real(1.25), ScalarValue::F64(1.25));
        check(T::Bool, Value::Bool(true), ScalarValue::Boolean(true));
        check(T::Date, Value::Date(parse_date("2025-06-01").unwrap()), ScalarValue::Str("2025-06-01".into()));
        check(T::DateTime, Value::DateTime(t), ScalarValue::Str("2025-06-01T00:00:00.000Z".into()));
        check(
            T::Attachments,
            Value::Attachments(vec!["ab".into(), "cd".into()]),
            ScalarValue::Str(r#"["ab","cd"]"#.into()),
        );
        check(T::Attachments, Value::Attachments(vec![]), ScalarValue::Str("[]".into()));
        check(T::Real, Value::Null, ScalarValue::Null);
        assert_eq!(encode_value(&field(T::Real), &Value::Integer(3)).unwrap(), ScalarValue::F64(3.0));
        assert_eq!(decode_value(&field(T::Real), &ScalarValue::Int(3)).unwrap(), Value::Real(3.0));
    }

    #[test]
    fn wrong_kinds_are_refused() {
        check_refused(T::Integer, ScalarValue::Str("3".into()), "field `字段`: stored value text \"3\" is not integer");
        check_refused(T::Integer, ScalarValue::F64(3.5), "stored value real 3.5 is not integer");
        check_refused(T::Bool, ScalarValue::Int(1), "is not bool");
        check_refused(T::Date, ScalarValue::Str("昨天".into()), "stored value text \"昨天\" is not date");
        check_refused(T::DateTime, ScalarValue::Str("x".into()), "is not datetime");
        check_refused(T::Attachments, ScalarValue::Str("[1]".into()), "is not attachments");
        check_refused(T::Text, ScalarValue::Bytes(vec![1]), "bytes (1 B) is not text");
        let e = encode_value(&field(T::Integer), &"七".into()).unwrap_err();
        assert_eq!(e.to_string(), "field `字段`: expected integer, got \"七\"");
        let mut unnamed = field(T::Text);
        unnamed.id.clear();
        assert!(property_key(&unnamed).unwrap_err().to_string().contains("no stable id"));
    }

    #[test]
    fn system_values() {
        assert!(decode_geometry(&ScalarValue::Str("POINT(1 2)".into())).unwrap_err().to_string().contains("`g`"));
        assert!(decode_geometry(&ScalarValue::Bytes(vec![1, 2])).is_err());
        assert_eq!(decode_geometry(&ScalarValue::Null).unwrap(), None);
        assert!(decode_deleted(&ScalarValue::Int(1)).is_err());
        assert!(!decode_deleted(&ScalarValue::Null).unwrap());
        assert!(decode_time(VALID_FROM, &ScalarValue::Int(1)).unwrap_err().to_string().contains("`vf`"));
        assert!(decode_code(&ScalarValue::Null).is_err());
    }
}
