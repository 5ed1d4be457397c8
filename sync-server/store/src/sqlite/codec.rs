//! How values are stored: in the layer's columns (the GeoPackage value codec shared with the
//! replicas and GeoPackage export, [`shikong_gpkg::value`]) and in history rows (JSON keyed by
//! field id, the store's own). Columns follow the binding rules of `shikong-query`, so SQL
//! written by the planner compares like with like; filter parameters bind through [`to_sql`] too.

use jiff::Timestamp;
use serde_json::Value as Json;
pub use shikong_gpkg::value::{from_sql, time_from_sql, time_to_sql, to_sql};
use shikong_model::{FieldType, Value, time};

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
        (Json::String(s), _) => shikong_gpkg::value::from_text(s, ty).map_err(|e| e.to_string())?,
        (Json::Array(items), FieldType::Attachments) => {
            Value::Attachments(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
        }
        (other, ty) => return Err(format!("{other} in a {} field", ty.name())),
    })
}

pub fn micros_to_ts(us: i64) -> Timestamp {
    Timestamp::from_microsecond(us).unwrap_or(Timestamp::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use rusqlite::types::Value as Sql;

    use super::*;

    fn samples() -> Vec<(Value, FieldType)> {
        vec![
            (Value::Null, FieldType::Text),
            (Value::Bool(true), FieldType::Bool),
            (Value::Integer(-7), FieldType::Integer),
            (Value::Real(1.25), FieldType::Real),
            (Value::from("井盖"), FieldType::Text),
            (Value::from("2"), FieldType::Code),
            (Value::Date(jiff::civil::date(2025, 6, 1)), FieldType::Date),
            (Value::DateTime("2025-06-01T00:00:00.123Z".parse().unwrap()), FieldType::DateTime),
            (Value::Attachments(vec!["ab".repeat(32)]), FieldType::Attachments),
        ]
    }

    #[test]
    fn columns_bind_as_the_query_planner_binds_parameters() {
        for (v, _) in samples().into_iter().filter(|(v, _)| !matches!(v, Value::Attachments(_))) {
            let want = match shikong_query::sql_param(&v) {
                shikong_query::SqlParam::Null => Sql::Null,
                shikong_query::SqlParam::Integer(i) => Sql::Integer(i),
                shikong_query::SqlParam::Real(f) => Sql::Real(f),
                shikong_query::SqlParam::Text(s) => Sql::Text(s),
            };
            assert_eq!(to_sql(&v), want, "{v:?}");
        }
    }

    #[test]
    fn history_json_round_trips() {
        for (v, ty) in samples() {
            assert_eq!(from_json(&to_json(&v), ty), Ok(v.clone()), "{ty:?}");
        }
        assert!(from_json(&Json::Bool(true), FieldType::Integer).unwrap_err().contains("in a integer field"));
    }
}
