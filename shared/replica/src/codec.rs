//! How values sit in a replica's feature-table columns. Exactly the central store's encoding
//! (`sync-server/store/src/sqlite/codec.rs`): bool 0/1, date `YYYY-MM-DD`, date-time GeoPackage
//! DATETIME text (UTC, milliseconds, `Z`), attachments a JSON array of hashes. A feature read from
//! a replica row is therefore the feature the server read from its own row, which matters: the
//! implicit document of an unedited entity is derived from that feature on both sides and must
//! come out byte-identical.

use jiff::Timestamp;
use rusqlite::types::{Value as Sql, ValueRef};
use serde_json::Value as Json;
use shikong_model::{FieldType, Geometry, Value, time};

/// The SQL value of a field value.
pub fn to_sql(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Integer(i) => Sql::Integer(*i),
        Value::Real(f) => Sql::Real(*f),
        Value::Text(s) => Sql::Text(s.clone()),
        Value::Date(d) => Sql::Text(d.to_string()),
        Value::DateTime(t) => Sql::Text(time::gpkg_datetime(*t)),
        Value::Attachments(list) => {
            Sql::Text(Json::Array(list.iter().cloned().map(Json::String).collect()).to_string())
        }
    }
}

/// Reads a column back as a value of `ty`. Lenient where GIS tools write other spellings (QGIS
/// may store a date-time without milliseconds, a boolean as text), strict where the meaning would
/// change.
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
        FieldType::Bool => match s.trim() {
            "1" | "true" | "TRUE" | "True" => Value::Bool(true),
            "0" | "false" | "FALSE" | "False" => Value::Bool(false),
            _ => return Err(format!("`{s}` is not a boolean")),
        },
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

/// The geometry column value (GeoPackage binary in CGCS2000).
pub fn geometry_to_sql(g: Option<&Geometry>) -> Sql {
    g.map_or(Sql::Null, |g| Sql::Blob(shikong_model::gpkg_blob::encode(g, crate::SRS_ID)))
}

pub fn geometry_from_sql(v: ValueRef<'_>) -> Result<Option<Geometry>, String> {
    match v {
        ValueRef::Blob(b) => shikong_model::gpkg_blob::decode(b).map(|(_, g)| g).map_err(|e| e.to_string()),
        ValueRef::Null => Ok(None),
        other => Err(format!("a {:?} value where a geometry was expected", other.data_type())),
    }
}

/// A value as JSON in conflict records (the wire form of the protocol's `ConflictValue`).
pub fn value_json(v: &Value) -> Json {
    v.to_json()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn round_trip(v: Value, ty: FieldType) {
        let sql = to_sql(&v);
        let back = from_sql(ValueRef::from(&sql), ty).unwrap();
        assert_eq!(back, v, "{ty:?} via {sql:?}");
    }

    #[test]
    fn values_round_trip() {
        round_trip(Value::Null, FieldType::Text);
        round_trip(Value::Bool(true), FieldType::Bool);
        round_trip(Value::Bool(false), FieldType::Bool);
        round_trip(Value::Integer(-7), FieldType::Integer);
        round_trip(Value::Real(1.25), FieldType::Real);
        round_trip(Value::from("井盖 \"引号\""), FieldType::Text);
        round_trip(Value::from("2"), FieldType::Code);
        round_trip(Value::Date(jiff::civil::date(2025, 6, 1)), FieldType::Date);
        round_trip(Value::DateTime("2025-06-01T00:00:00.123Z".parse().unwrap()), FieldType::DateTime);
        round_trip(Value::Attachments(vec!["ab".repeat(32)]), FieldType::Attachments);
    }

    #[track_caller]
    fn read(v: Sql, ty: FieldType, expected: Result<Value, &str>) {
        match (from_sql(ValueRef::from(&v), ty), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err(want)) => assert!(e.contains(want), "{e} lacks {want}"),
            (got, want) => panic!("{v:?} as {ty:?}: got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn lenient_reads_of_what_gis_tools_write() {
        read(
            Sql::Text("2025-06-01T08:00:00+08:00".into()),
            FieldType::DateTime,
            Ok(Value::DateTime("2025-06-01T00:00:00Z".parse().unwrap())),
        );
        read(Sql::Text("true".into()), FieldType::Bool, Ok(Value::Bool(true)));
        read(Sql::Text("maybe".into()), FieldType::Bool, Err("not a boolean"));
        read(Sql::Real(3.0), FieldType::Integer, Ok(Value::Integer(3)));
        read(Sql::Real(3.5), FieldType::Integer, Err("Real value in a integer column"));
        read(Sql::Integer(42), FieldType::Text, Ok(Value::from("42")));
        read(Sql::Text("[1]".into()), FieldType::Attachments, Err("attachment list"));
        read(Sql::Blob(vec![1]), FieldType::Date, Err("Blob value in a date column"));
    }

    #[test]
    fn date_times_are_stored_as_fixed_width_utc() {
        let v = Value::DateTime(shikong_model::parse_instant("2025-06-01T08:00:00+08:00").unwrap());
        assert_eq!(to_sql(&v), Sql::Text("2025-06-01T00:00:00.000Z".into()));
        assert_eq!(time_to_sql(None), Sql::Null);
    }
}
