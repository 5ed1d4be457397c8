//! How a field value sits in a GeoPackage attribute column: the one codec the central store, the
//! device replicas and GeoPackage import/export share.
//!
//! Written: bool as INTEGER 0/1, integer as INTEGER, real as REAL, text and codes as TEXT, date as
//! TEXT `YYYY-MM-DD`, date-time as GeoPackage DATETIME TEXT (UTC, milliseconds, `Z`: fixed width,
//! so text order is time order), attachments as a JSON array of hashes in TEXT. These are also the
//! binding rules of `shikong-query`'s SQL plans, so planned SQL compares like with like.
//!
//! Read back leniently where GIS tools write other spellings (QGIS may store a date-time without
//! milliseconds or with an offset, a boolean as `true`, an integer as `3.0`), strictly where the
//! meaning would change (`3.5` is not an integer, `maybe` is not a boolean). A value written and
//! read back is the same value, which matters for sync: the store and a replica derive an unedited
//! entity's document from the feature they read, and must derive the same bytes.

use jiff::Timestamp;
use rusqlite::types::{Type, Value as Sql, ValueRef};
use shikong_model::{FieldType, ModelError, Value, time};

/// A column value that cannot be read as a value of its field's type. The caller adds the layer,
/// row and column.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The column holds a storage class that cannot mean a value of this type (a BLOB in a date
    /// column, a REAL with a fraction in an integer column).
    #[error("a {storage} value in a {} column", .ty.name())]
    WrongStorage { storage: Type, ty: FieldType },
    /// A TEXT value that is not UTF-8.
    #[error("text is not UTF-8: {0}")]
    NotUtf8(#[from] std::str::Utf8Error),
    /// Text that does not spell a value of the type.
    #[error("`{text}` is not {expected}")]
    BadText { text: String, expected: &'static str },
    /// A date or date-time that does not parse.
    #[error(transparent)]
    Time(#[from] ModelError),
    /// An attachment column that is not a JSON array of strings.
    #[error("attachment list: {0}")]
    Attachments(String),
    /// A valid-time bound that is neither NULL nor text.
    #[error("a {storage} value where a date-time was expected")]
    NotATime { storage: Type },
}

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
        Value::Attachments(list) => Sql::Text(attachments_json(list)),
    }
}

fn attachments_json(list: &[String]) -> String {
    let items: Vec<serde_json::Value> = list.iter().cloned().map(serde_json::Value::String).collect();
    serde_json::Value::Array(items).to_string()
}

/// Reads a column back as a value of `ty` (NULL is [`Value::Null`] whatever the type).
pub fn from_sql(v: ValueRef<'_>, ty: FieldType) -> Result<Value, ValueError> {
    Ok(match (v, ty) {
        (ValueRef::Null, _) => Value::Null,
        (ValueRef::Integer(i), FieldType::Integer) => Value::Integer(i),
        (ValueRef::Real(f), FieldType::Integer) if f.fract() == 0.0 => Value::Integer(f as i64),
        (ValueRef::Integer(i), FieldType::Real) => Value::Real(i as f64),
        (ValueRef::Real(f), FieldType::Real) => Value::Real(f),
        (ValueRef::Integer(i), FieldType::Bool) => Value::Bool(i != 0),
        (ValueRef::Text(t), _) => from_text(std::str::from_utf8(t)?, ty)?,
        (ValueRef::Integer(i), FieldType::Text | FieldType::Code) => Value::Text(i.to_string()),
        (ValueRef::Real(f), FieldType::Text | FieldType::Code) => Value::Text(f.to_string()),
        (other, ty) => return Err(ValueError::WrongStorage { storage: other.data_type(), ty }),
    })
}

/// Reads text (a TEXT column, or a string in another encoding of a row) as a value of `ty`.
pub fn from_text(s: &str, ty: FieldType) -> Result<Value, ValueError> {
    let bad = |expected| ValueError::BadText { text: s.to_owned(), expected };
    Ok(match ty {
        FieldType::Text | FieldType::Code => Value::Text(s.to_owned()),
        FieldType::Date => Value::Date(time::parse_date(s)?),
        FieldType::DateTime => Value::DateTime(time::parse_instant(s)?),
        FieldType::Attachments => {
            Value::Attachments(serde_json::from_str(s).map_err(|e| ValueError::Attachments(e.to_string()))?)
        }
        FieldType::Integer => Value::Integer(s.trim().parse().map_err(|_| bad("an integer"))?),
        FieldType::Real => Value::Real(s.trim().parse().map_err(|_| bad("a number"))?),
        FieldType::Bool => match s.trim() {
            "1" | "true" | "TRUE" | "True" => Value::Bool(true),
            "0" | "false" | "FALSE" | "False" => Value::Bool(false),
            _ => return Err(bad("a boolean")),
        },
    })
}

/// A valid-time bound as stored (GeoPackage DATETIME text; NULL for an open end).
pub fn time_to_sql(t: Option<Timestamp>) -> Sql {
    t.map_or(Sql::Null, |t| Sql::Text(time::gpkg_datetime(t)))
}

/// A valid-time bound read back.
pub fn time_from_sql(v: ValueRef<'_>) -> Result<Option<Timestamp>, ValueError> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Text(t) => Ok(Some(time::parse_instant(std::str::from_utf8(t)?)?)),
        other => Err(ValueError::NotATime { storage: other.data_type() }),
    }
}

#[cfg(test)]
mod tests {
    use jiff::civil::date;

    use super::*;

    #[track_caller]
    fn round_trip(v: Value, ty: FieldType) {
        let sql = to_sql(&v);
        let back = from_sql(ValueRef::from(&sql), ty).unwrap();
        assert_eq!(back, v, "{ty:?} via {sql:?}");
    }

    #[test]
    fn every_field_type_round_trips() {
        round_trip(Value::Bool(true), FieldType::Bool);
        round_trip(Value::Bool(false), FieldType::Bool);
        round_trip(Value::Integer(-7), FieldType::Integer);
        round_trip(Value::Integer(i64::MAX), FieldType::Integer);
        round_trip(Value::Real(1.25), FieldType::Real);
        round_trip(Value::Real(0.1 + 0.2), FieldType::Real);
        round_trip(Value::from("manhole"), FieldType::Text);
        round_trip(Value::from("2"), FieldType::Code);
        round_trip(Value::Date(date(2025, 6, 1)), FieldType::Date);
        round_trip(Value::DateTime("2025-06-01T00:00:00.123Z".parse().unwrap()), FieldType::DateTime);
        round_trip(Value::Attachments(vec!["ab".repeat(32), "cd".repeat(32)]), FieldType::Attachments);
        round_trip(Value::Attachments(vec![]), FieldType::Attachments);
    }

    #[test]
    fn null_round_trips_in_every_type() {
        for ty in [
            FieldType::Text,
            FieldType::Integer,
            FieldType::Real,
            FieldType::Bool,
            FieldType::Date,
            FieldType::DateTime,
            FieldType::Code,
            FieldType::Attachments,
        ] {
            assert_eq!(to_sql(&Value::Null), Sql::Null);
            round_trip(Value::Null, ty);
        }
        assert_eq!(time_to_sql(None), Sql::Null);
        assert_eq!(time_from_sql(ValueRef::Null), Ok(None));
    }

    #[test]
    fn chinese_text_round_trips_unchanged() {
        round_trip(Value::from("井盖 \"引号\" 武汉市洪山区珞喻路1037号"), FieldType::Text);
        round_trip(Value::from("华中科技大学（主校区）"), FieldType::Code);
        assert_eq!(to_sql(&Value::from("洪山区")), Sql::Text("洪山区".into()));
    }

    #[test]
    fn date_times_are_stored_as_fixed_width_utc() {
        let v = Value::DateTime(shikong_model::parse_instant("2025-06-01T08:00:00+08:00").unwrap());
        assert_eq!(to_sql(&v), Sql::Text("2025-06-01T00:00:00.000Z".into()));
        let t = "2025-06-01T08:00:00+08:00".parse().unwrap();
        assert_eq!(time_to_sql(Some(t)), Sql::Text("2025-06-01T00:00:00.000Z".into()));
        assert_eq!(time_from_sql(ValueRef::Text(b"2025-06-01T00:00:00.000Z")), Ok(Some(t)));
    }

    #[test]
    fn attachments_are_a_json_array() {
        let v = Value::Attachments(vec!["ab".into(), "cd".into()]);
        assert_eq!(to_sql(&v), Sql::Text(r#"["ab","cd"]"#.into()));
    }

    #[track_caller]
    fn read(v: Sql, ty: FieldType, expected: Result<Value, &str>) {
        match (from_sql(ValueRef::from(&v), ty), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want),
            (Err(e), Err(want)) => assert!(e.to_string().contains(want), "{e} lacks {want}"),
            (got, want) => panic!("{v:?} as {ty:?}: got {got:?}, wanted {want:?}"),
        }
    }

    #[test]
    fn lenient_reads_of_what_gis_tools_write() {
        let instant = |s: &str| Value::DateTime(s.parse().unwrap());
        read(Sql::Text("2025-06-01T08:00:00+08:00".into()), FieldType::DateTime, Ok(instant("2025-06-01T00:00:00Z")));
        read(Sql::Text("2025-06-01T00:00:00Z".into()), FieldType::DateTime, Ok(instant("2025-06-01T00:00:00Z")));
        read(Sql::Text("true".into()), FieldType::Bool, Ok(Value::Bool(true)));
        read(Sql::Text("False".into()), FieldType::Bool, Ok(Value::Bool(false)));
        read(Sql::Integer(2), FieldType::Bool, Ok(Value::Bool(true)));
        read(Sql::Real(3.0), FieldType::Integer, Ok(Value::Integer(3)));
        read(Sql::Integer(3), FieldType::Real, Ok(Value::Real(3.0)));
        read(Sql::Text(" 12 ".into()), FieldType::Integer, Ok(Value::Integer(12)));
        read(Sql::Text("2.5".into()), FieldType::Real, Ok(Value::Real(2.5)));
        read(Sql::Integer(42), FieldType::Text, Ok(Value::from("42")));
        read(Sql::Real(1.5), FieldType::Code, Ok(Value::from("1.5")));
    }

    #[test]
    fn strict_where_the_meaning_would_change() {
        read(Sql::Text("maybe".into()), FieldType::Bool, Err("`maybe` is not a boolean"));
        read(Sql::Real(3.5), FieldType::Integer, Err("a Real value in a integer column"));
        read(Sql::Text("abc".into()), FieldType::Integer, Err("`abc` is not an integer"));
        read(Sql::Text("[1]".into()), FieldType::Attachments, Err("attachment list"));
        read(Sql::Blob(vec![1]), FieldType::Date, Err("a Blob value in a date column"));
        read(Sql::Text("2025-13-01".into()), FieldType::Date, Err("2025-13-01"));
        read(Sql::Blob(vec![0xff]), FieldType::Text, Err("a Blob value in a text column"));
        assert!(matches!(from_sql(ValueRef::Text(&[0xff, 0xfe]), FieldType::Text), Err(ValueError::NotUtf8(_))));
        assert_eq!(time_from_sql(ValueRef::Integer(1)), Err(ValueError::NotATime { storage: Type::Integer }));
    }
}
