//! How values are stored on PostgreSQL: typed columns in the live layer table (text, bigint,
//! double precision, boolean, date, timestamptz, jsonb for attachment lists), geometries as
//! PostGIS `geometry` sent and read as WKB, history properties as `jsonb` keyed by field id (the
//! same JSON the SQLite backend keeps, `sqlite::codec::{to_json, from_json}`).

use jiff::Timestamp;
use postgres::Row;
use postgres::types::ToSql;
use serde_json::Value as Json;
use shikong_model::{FieldType, Geometry, Value};

pub(crate) use crate::sqlite::codec::{from_json, micros_to_ts, to_json};

/// An owned statement parameter.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// Parameters collected while SQL is written: [`Args::add`] returns the placeholder (`$n`).
#[derive(Default)]
pub(crate) struct Args(Vec<Param>);

impl Args {
    pub(crate) fn add(&mut self, v: impl ToSql + Sync + Send + 'static) -> String {
        self.0.push(Box::new(v));
        format!("${}", self.0.len())
    }

    pub(crate) fn add_boxed(&mut self, v: Param) -> String {
        self.0.push(v);
        format!("${}", self.0.len())
    }

    /// How many parameters are bound so far.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.0.iter().map(|b| b.as_ref() as &(dyn ToSql + Sync)).collect()
    }
}

/// The PostgreSQL column type of a field.
pub(crate) fn column_type(ty: FieldType) -> &'static str {
    match ty {
        FieldType::Text | FieldType::Code => "text",
        FieldType::Integer => "bigint",
        FieldType::Real => "double precision",
        FieldType::Bool => "boolean",
        FieldType::Date => "date",
        FieldType::DateTime => "timestamptz",
        FieldType::Attachments => "jsonb",
    }
}

/// A value bound to a column of type `ty` (a null typed as the column, so the client accepts it).
pub(crate) fn param(v: &Value, ty: FieldType) -> Param {
    match ty {
        FieldType::Text | FieldType::Code => Box::new(match shikong_query::sql_param(v) {
            shikong_query::SqlParam::Null => None,
            shikong_query::SqlParam::Text(s) => Some(s),
            shikong_query::SqlParam::Integer(i) => Some(i.to_string()),
            shikong_query::SqlParam::Real(f) => Some(f.to_string()),
        }),
        FieldType::Integer => Box::new(match v {
            Value::Integer(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }),
        FieldType::Real => Box::new(match v {
            Value::Real(f) => Some(*f),
            #[allow(clippy::cast_precision_loss)]
            Value::Integer(i) => Some(*i as f64),
            _ => None,
        }),
        FieldType::Bool => Box::new(match v {
            Value::Bool(b) => Some(*b),
            Value::Integer(i) => Some(*i != 0),
            _ => None,
        }),
        FieldType::Date => Box::new(match v {
            Value::Date(d) => Some(*d),
            _ => None,
        }),
        FieldType::DateTime => Box::new(match v {
            Value::DateTime(t) => Some(*t),
            _ => None,
        }),
        FieldType::Attachments => Box::new(match v {
            Value::Attachments(a) => Some(Json::Array(a.iter().cloned().map(Json::String).collect())),
            _ => None,
        }),
    }
}

/// The value of column `i` of `row`, a column of type `ty`.
pub(crate) fn value(row: &Row, i: usize, ty: FieldType) -> Result<Value, postgres::Error> {
    Ok(match ty {
        FieldType::Text | FieldType::Code => row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
        FieldType::Integer => row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Integer),
        FieldType::Real => row.try_get::<_, Option<f64>>(i)?.map_or(Value::Null, Value::Real),
        FieldType::Bool => row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool),
        FieldType::Date => row.try_get::<_, Option<jiff::civil::Date>>(i)?.map_or(Value::Null, Value::Date),
        FieldType::DateTime => row.try_get::<_, Option<Timestamp>>(i)?.map_or(Value::Null, Value::DateTime),
        FieldType::Attachments => match row.try_get::<_, Option<Json>>(i)? {
            Some(Json::Array(items)) => {
                Value::Attachments(items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect())
            }
            _ => Value::Null,
        },
    })
}

/// A geometry as a statement parameter: WKB, turned into a PostGIS geometry by the SQL around
/// it ([`GEOM_IN`]).
pub(crate) fn geom_param(g: Option<&Geometry>) -> Param {
    Box::new(g.map(shikong_model::wkb::to_vec))
}

/// The SQL that turns a WKB parameter into a CGCS2000 geometry: `format!` it with the placeholder.
pub(crate) fn geom_in(placeholder: &str) -> String {
    format!("ST_GeomFromWKB({placeholder}, 4490)")
}

/// A geometry read back (the column selected as `ST_AsBinary(geom)`).
pub(crate) fn geometry(row: &Row, i: usize) -> Result<Option<Geometry>, String> {
    let wkb: Option<Vec<u8>> = row.try_get(i).map_err(|e| e.to_string())?;
    wkb.map(|b| shikong_model::wkb::read(&b).map_err(|e| e.to_string())).transpose()
}

/// An envelope for `geom && …` (GiST).
pub(crate) fn envelope(args: &mut Args, b: &shikong_model::Bbox) -> String {
    format!(
        "ST_MakeEnvelope({}, {}, {}, {}, 4490)",
        args.add(b.min_x),
        args.add(b.min_y),
        args.add(b.max_x),
        args.add(b.max_y)
    )
}

/// A parameter of a planned filter (`shikong_query::PgPlan`), bound as the plan's casts say.
pub(crate) fn plan_param(p: shikong_query::PgParam) -> Param {
    use shikong_query::PgParam as P;
    match p {
        P::Bool(b) => Box::new(b),
        P::Int(i) => Box::new(i),
        P::Real(f) => Box::new(f),
        P::Text(s) => Box::new(s),
        P::Date(d) => Box::new(d),
        P::Timestamp(t) => Box::new(t),
        P::Geometry(wkb) => Box::new(wkb),
        // A parameter kind added later: NULL makes its comparison unknown, and the residual
        // check in Rust still decides.
        #[allow(unreachable_patterns)]
        _ => Box::new(Option::<String>::None),
    }
}
