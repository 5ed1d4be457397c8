//! Typed attribute values and their JSON form.

use std::cmp::Ordering;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde_json::Value as Json;

use crate::time;

/// One attribute value. Code-list values are `Text` checked against the list.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Integer(i64),
    Real(f64),
    Text(String),
    Date(Date),
    DateTime(Timestamp),
    /// SHA-256 (lowercase hex) of each attached blob, in order.
    Attachments(Vec<String>),
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// JSON for APIs and exports. Date-times are written in Beijing time (+08:00).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Integer(i) => Json::from(*i),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Text(s) => Json::String(s.clone()),
            Value::Date(d) => Json::String(d.to_string()),
            Value::DateTime(t) => Json::String(time::beijing(*t)),
            Value::Attachments(a) => Json::Array(a.iter().map(|h| Json::String(h.clone())).collect()),
        }
    }

    /// The value as a plain string (CSV cells, text search). Null is the empty string.
    pub fn to_text(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Integer(i) => i.to_string(),
            Value::Real(f) => f.to_string(),
            Value::Text(s) => s.clone(),
            Value::Date(d) => d.to_string(),
            Value::DateTime(t) => time::beijing(*t),
            Value::Attachments(a) => a.join(";"),
        }
    }

    /// The natural ordering of comparable values (numbers across integer/real); `None` when the
    /// two values are of kinds that do not compare (CQL2 comparison is then false).
    pub fn compare(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Integer(a), Value::Integer(b)) => Some(a.cmp(b)),
            (Value::Integer(a), Value::Real(b)) => (*a as f64).partial_cmp(b),
            (Value::Real(a), Value::Integer(b)) => a.partial_cmp(&(*b as f64)),
            (Value::Real(a), Value::Real(b)) => a.partial_cmp(b),
            (Value::Text(a), Value::Text(b)) => Some(a.cmp(b)),
            (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::Date(b)) => Some(a.cmp(b)),
            (Value::DateTime(a), Value::DateTime(b)) => Some(a.cmp(b)),
            (Value::Date(a), Value::DateTime(b)) => date_start(*a).map(|a| a.cmp(b)),
            (Value::DateTime(a), Value::Date(b)) => date_start(*b).map(|b| a.cmp(&b)),
            _ => None,
        }
    }
}

fn date_start(d: Date) -> Option<Timestamp> {
    d.to_zoned(jiff::tz::TimeZone::fixed(time::BEIJING)).ok().map(|z| z.timestamp())
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Text(s) => write!(f, "\"{s}\""),
            other => f.write_str(&other.to_text()),
        }
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Text(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Text(s)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Integer(i)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Real(f)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}
