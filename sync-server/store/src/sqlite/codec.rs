//! How values are stored: in the layer's columns (GeoPackage types) and in history rows (JSON
//! keyed by field id). Both use the binding rules of `shikong-query`, so SQL written by the
//! planner compares like with like.

use jiff::Timestamp;
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::Value as Json;
use shikong_model::{FieldType, Value, time};

/// The SQL value of a field value (also what filter parameters bind as).
pub fn to_sql(v: &Value) -> Sql {
    if let Value::Attachments(list) = v {
        // Stored as a JSON array; filters never compare attachment lists.
        return Sql::Text(serde_json::to_string(list).unwrap_or_default());
    }
    match shikong_query::sql_param(v) {
        shikong_query::SqlParam::Null => Sql::Null,
        shikong_query::SqlParam::Integer(i) => Sql::Integer(i),
        shikong_query::SqlParam::Real(f) => Sql::Real(f),
        shikong_query::SqlParam::Text(s) => Sql::Text(s),
    }
}

/// Reads a column back as a value of `ty`. Lenient where GIS tools write other spellings
/// (QGIS may store a date-time without milliseconds), strict where the meaning would change.
pub fn from_sql(v: ValueRef<'_>, ty: FieldType) -> Result<Value, String> {
    Ok(match (v, ty) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), FieldType::Integer) => Value::Integer(i),
        (ValueRef::Real(f), FieldType::Integer) if f.fract() == 0.0 => Value::Integer(f as i64),
        (ValueRef::Integer(i), FieldType::Real) => Value::Real(i as f64),
        (ValueRef::Real(f), FieldType::Real) => Value::Real(f),
        (ValueRef::Integer(i), FieldType::Bool) => Value::Bool(i != 0),
        (ValueRef::Text(t), _) => {
            let s = std::str::from_utf8(t).map_err(|e| format!("text is not UTF-8: {e}"))?;
            text_value(s, ty)?
        }
        (ValueRef::Integer(i), FieldType::Text | FieldType::Code) => Value::Text(i.to_string()),
        (ValueRef::Real(f), FieldType::Text | FieldType::Code) => Value::Text(f.to_string()),
        (other, ty) => return Err(format!("a {:?} value in a {} column", other.data_type(), ty.name())),
    })
}

fn text_value(s: &str, ty: FieldType) -> Result<Value, String> {
    Ok(match ty {
        FieldType::Text | FieldType::Code => Value::Text(s.to_owned()),
        FieldType::Date => Value::Date(time::parse_date(s).map_err(|e| e.to_string())?),
        FieldType::DateTime => Value::DateTime(time::parse_instant(s).map_err(|e| e.to_string())?),
        FieldType::Attachments => {
            let list: Vec<String> = serde_json::from_str(s).map_err(|e| format!("attachment list: {e}"))?;
            Value::Attachments(list)
        }
        FieldType::Integer => Value::Integer(s.trim().parse().map_err(|_| format!("`{s}` is not an integer"))?),
        FieldType::Real => Value::Real(s.trim().parse().map_err(|_| format!("`{s}` is not a number"))?),
        FieldType::Bool => Value::Bool(matches!(s.trim(), "1" | "true" | "TRUE")),
    })
}

/// A value in a history row's JSON.
pub fn to_json(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        Value::Real(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Text(s) => Json::String(s.clone()),
        Value::Date(d) => Json::String(d.to_string()),
        Value::DateTime(t) => Json::String(time::gpkg_datetime(*t)),
        Value::Attachments(a) => Json::Array(a.iter().cloned().map(Json::String).collect()),
    }
}

/// A value back from a history row's JSON.
pub fn from_json(j: &Json, ty: FieldType) -> Result<Value, String> {
    Ok(match (j, ty) {
        (Json::Null, _) => Value::Null,
        (Json::Bool(b), FieldType::Bool) => Value::Bool(*b),
        (Json::Number(n), FieldType::Integer) => Value::Integer(n.as_i64().ok_or("integer out of range")?),
        (Json::Number(n), FieldType::Real) => Value::Real(n.as_f64().ok_or("bad number")?),
        (Json::String(s), _) => text_value(s, ty)?,
        (Json::Array(items), FieldType::Attachments) => {
            Value::Attachments(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        }
        (other, ty) => return Err(format!("{other} in a {} field", ty.name())),
    })
}

/// A valid-time bound as stored (GeoPackage DATETIME text).
pub fn time_to_sql(t: Option<Timestamp>) -> Sql {
    t.map_or(Sql::Null, |t| Sql::Text(time::gpkg_datetime(t)))
}

pub fn time_from_sql(v: ValueRef<'_>) -> Result<Option<Timestamp>, String> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => {
            let s = std::str::from_utf8(t).map_err(|e| e.to_string())?;
            time::parse_instant(s).map(Some).map_err(|e| e.to_string())
        }
        other => Err(format!("a {:?} value where a date-time was expected", other.data_type())),
    }
}

pub fn micros_to_ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}
