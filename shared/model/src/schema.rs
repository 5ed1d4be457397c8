//! Layer schemas: typed fields with constraints, and the validation every write goes through.
//!
//! The same code validates on a device (offline, before an edit is queued) and on the server
//! (before a version is stored), so a form never accepts what the store would refuse.
//!
//! Fields have a stable `id` besides their `name`: history and sync refer to fields by id, so a
//! rename is a metadata change and never rewrites or misattributes old versions.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use crate::error::{ModelError, ValidationError};
use crate::time;
use crate::value::Value;

/// The type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Integer,
    Real,
    Bool,
    Date,
    DateTime,
    /// A value from the field's code list (代码表).
    Code,
    /// Photos and documents, by content hash.
    Attachments,
}

impl FieldType {
    /// The GeoPackage column type.
    pub fn sql_type(self) -> &'static str {
        match self {
            FieldType::Text | FieldType::Code | FieldType::Attachments => "TEXT",
            FieldType::Integer => "INTEGER",
            FieldType::Real => "REAL",
            FieldType::Bool => "BOOLEAN",
            FieldType::Date => "DATE",
            FieldType::DateTime => "DATETIME",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Integer => "integer",
            FieldType::Real => "real",
            FieldType::Bool => "bool",
            FieldType::Date => "date",
            FieldType::DateTime => "datetime",
            FieldType::Code => "code",
            FieldType::Attachments => "attachments",
        }
    }
}

/// One entry of a code list: the stored code and its label shown to users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeItem {
    pub code: String,
    pub label: String,
}

/// A field of a layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldDef {
    /// Stable identifier, never reused within a layer (assigned by the store when empty).
    #[serde(default)]
    pub id: String,
    /// Column name, unique in the layer.
    pub name: String,
    /// Label shown in forms (usually Chinese).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(rename = "type")]
    pub ty: FieldType,
    #[serde(default)]
    pub required: bool,
    /// Inclusive lower bound of integer/real values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Inclusive upper bound of integer/real values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Maximum length of text values, in characters (not bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    /// Allowed codes of a `code` field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub codes: Vec<CodeItem>,
    /// A retired field keeps its column and history but accepts no new values.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub retired: bool,
}

impl FieldDef {
    pub fn new(name: impl Into<String>, ty: FieldType) -> Self {
        FieldDef {
            id: String::new(),
            name: name.into(),
            title: None,
            ty,
            required: false,
            min: None,
            max: None,
            max_length: None,
            codes: Vec::new(),
            retired: false,
        }
    }

    fn err(&self, message: impl Into<String>) -> ValidationError {
        ValidationError::new(&self.name, message)
    }

    /// Converts a JSON value (GeoJSON property, API body) to this field's type.
    pub fn coerce_json(&self, v: &Json) -> Result<Value, ValidationError> {
        let wrong = || self.err(format!("expected {}, got {v}", self.ty.name()));
        Ok(match (self.ty, v) {
            (_, Json::Null) => Value::Null,
            (FieldType::Text | FieldType::Code, Json::String(s)) => Value::Text(s.clone()),
            (FieldType::Text | FieldType::Code, Json::Number(n)) => Value::Text(n.to_string()),
            (FieldType::Integer, Json::Number(n)) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => match n.as_f64() {
                    Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Value::Integer(f as i64),
                    _ => return Err(wrong()),
                },
            },
            (FieldType::Real, Json::Number(n)) => Value::Real(n.as_f64().ok_or_else(wrong)?),
            (FieldType::Bool, Json::Bool(b)) => Value::Bool(*b),
            (FieldType::Attachments, Json::Array(items)) => Value::Attachments(
                items.iter().map(|i| i.as_str().map(str::to_owned).ok_or_else(wrong)).collect::<Result<_, _>>()?,
            ),
            (_, Json::String(s)) => self.coerce_text(s)?,
            _ => return Err(wrong()),
        })
    }

    /// Converts text (a CSV cell, a CLI `--set` value) to this field's type. Empty text is null.
    pub fn coerce_text(&self, s: &str) -> Result<Value, ValidationError> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(Value::Null);
        }
        let wrong = |what: &str| self.err(format!("`{s}` is not {what}"));
        Ok(match self.ty {
            FieldType::Text | FieldType::Code => Value::Text(s.to_owned()),
            FieldType::Integer => Value::Integer(t.parse().map_err(|_| wrong("an integer"))?),
            FieldType::Real => {
                let f: f64 = t.parse().map_err(|_| wrong("a number"))?;
                if !f.is_finite() {
                    return Err(wrong("a finite number"));
                }
                Value::Real(f)
            }
            FieldType::Bool => Value::Bool(match t.to_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "1" | "是" | "真" => true,
                "false" | "f" | "no" | "n" | "0" | "否" | "假" => false,
                _ => return Err(wrong("a boolean (true/false, 是/否)")),
            }),
            FieldType::Date => Value::Date(time::parse_date(t).map_err(|_| wrong("a date YYYY-MM-DD"))?),
            FieldType::DateTime => {
                Value::DateTime(time::parse_instant(t).map_err(|_| wrong("a date-time (RFC 3339)"))?)
            }
            FieldType::Attachments => {
                Value::Attachments(t.split(';').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect())
            }
        })
    }

    /// Checks one (already typed) value against the type and constraints.
    pub fn check(&self, v: &Value) -> Result<(), ValidationError> {
        if v.is_null() {
            return if self.required { Err(self.err("is required")) } else { Ok(()) };
        }
        let type_ok = matches!(
            (self.ty, v),
            (FieldType::Text | FieldType::Code, Value::Text(_))
                | (FieldType::Integer, Value::Integer(_))
                | (FieldType::Real, Value::Real(_) | Value::Integer(_))
                | (FieldType::Bool, Value::Bool(_))
                | (FieldType::Date, Value::Date(_))
                | (FieldType::DateTime, Value::DateTime(_))
                | (FieldType::Attachments, Value::Attachments(_))
        );
        if !type_ok {
            return Err(self.err(format!("expected {}, got {v}", self.ty.name())));
        }
        let num = match v {
            Value::Integer(i) => Some(*i as f64),
            Value::Real(f) => Some(*f),
            _ => None,
        };
        if let Some(n) = num {
            if !n.is_finite() {
                return Err(self.err("must be a finite number"));
            }
            if let Some(min) = self.min.filter(|m| n < *m) {
                return Err(self.err(format!("{n} is below the minimum {min}")));
            }
            if let Some(max) = self.max.filter(|m| n > *m) {
                return Err(self.err(format!("{n} is above the maximum {max}")));
            }
        }
        if let Value::Text(s) = v {
            if let Some(max) = self.max_length {
                let len = s.chars().count();
                if len > max as usize {
                    return Err(self.err(format!("{len} characters, at most {max} allowed")));
                }
            }
            if self.ty == FieldType::Code && !self.codes.iter().any(|c| &c.code == s) {
                let allowed: Vec<_> = self.codes.iter().map(|c| format!("{} ({})", c.code, c.label)).collect();
                return Err(self.err(format!("`{s}` is not in the code list: {}", allowed.join(", "))));
            }
        }
        if let Value::Attachments(hashes) = v
            && let Some(h) = hashes.iter().find(|h| h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(self.err(format!("`{h}` is not a SHA-256 hex digest")));
        }
        Ok(())
    }
}

/// Names with a meaning of their own in every layer; user fields cannot take them.
pub const RESERVED_NAMES: &[&str] =
    &["fid", "geom", "geometry", "entity_id", "code", "valid_from", "valid_to", "version", "tx_time", "author"];

/// Whether `name` is reserved for system columns (case-insensitively, as SQLite compares columns).
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_lowercase();
    RESERVED_NAMES.contains(&lower.as_str()) || lower.starts_with("sk_")
}

/// Theme classification of a layer (domain / industry / theme codes of the platform outline).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Theme {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub industry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub theme: Option<String>,
}

/// The vertical reference of a layer's Z values. Kept as metadata only: converting between
/// datums needs a geoid model (e.g. CQG2000) that shikong does not ship, so none is invented.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HeightDatum {
    /// Heights above the CGCS2000 ellipsoid (GNSS heights).
    Ellipsoidal,
    /// 1985 国家高程基准 (National Vertical Datum 1985, normal heights).
    Nvd1985,
    /// 1956 黄海高程系 (Huanghai 1956).
    Huanghai1956,
    /// Anything else, by name.
    Other(String),
}

impl HeightDatum {
    pub fn parse(s: &str) -> HeightDatum {
        match s.trim().to_lowercase().as_str() {
            "ellipsoidal" | "椭球高" => HeightDatum::Ellipsoidal,
            "nvd1985" | "1985" | "1985国家高程基准" | "1985 国家高程基准" => HeightDatum::Nvd1985,
            "huanghai1956" | "1956" | "1956黄海高程系" | "1956 黄海高程系" => HeightDatum::Huanghai1956,
            _ => HeightDatum::Other(s.trim().to_owned()),
        }
    }

    pub fn label(&self) -> &str {
        match self {
            HeightDatum::Ellipsoidal => "椭球高 (CGCS2000 ellipsoidal)",
            HeightDatum::Nvd1985 => "1985 国家高程基准",
            HeightDatum::Huanghai1956 => "1956 黄海高程系",
            HeightDatum::Other(s) => s,
        }
    }
}

/// Property values by field name.
pub type Properties = BTreeMap<String, Value>;

/// The fields of a layer, in column order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSchema {
    pub fields: Vec<FieldDef>,
}

impl LayerSchema {
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn field_by_id(&self, id: &str) -> Option<&FieldDef> {
        self.fields.iter().find(|f| f.id == id)
    }

    /// Fields that accept values.
    pub fn active(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.iter().filter(|f| !f.retired)
    }

    /// Checks the schema itself: names present, unique and not reserved; sane constraints.
    pub fn check(&self) -> Result<(), ModelError> {
        let mut names = HashSet::new();
        let mut ids = HashSet::new();
        for f in &self.fields {
            let bad = |m: String| ModelError::Schema(format!("field `{}`: {m}", f.name));
            if f.name.trim().is_empty() {
                return Err(ModelError::Schema("a field has an empty name".into()));
            }
            if f.name.chars().count() > 63 || f.name.chars().any(char::is_control) {
                return Err(bad("names are at most 63 characters without control characters".into()));
            }
            if is_reserved(&f.name) {
                return Err(bad(format!("the name is reserved (reserved: {}, sk_*)", RESERVED_NAMES.join(", "))));
            }
            if !names.insert(f.name.to_lowercase()) {
                return Err(bad("the name appears twice (names are compared case-insensitively)".into()));
            }
            if !f.id.is_empty() && !ids.insert(f.id.clone()) {
                return Err(bad(format!("id `{}` appears twice", f.id)));
            }
            if let (Some(a), Some(b)) = (f.min, f.max)
                && a > b
            {
                return Err(bad(format!("min {a} is greater than max {b}")));
            }
            if f.ty == FieldType::Code && f.codes.is_empty() {
                return Err(bad("a code field needs a non-empty code list".into()));
            }
        }
        Ok(())
    }

    /// Validates a complete property set: every name known, every value of an active field typed
    /// and within its constraints, every required active field present.
    pub fn validate(&self, props: &Properties) -> Result<(), ValidationError> {
        for (name, v) in props {
            match self.field(name) {
                None => return Err(ValidationError::new(name, "is not a field of this layer")),
                // A retired field keeps the values it had; refusing *new* values is the writer's
                // job, since only it knows the previous state.
                Some(f) if f.retired => {}
                Some(f) => f.check(v)?,
            }
        }
        for f in self.active().filter(|f| f.required) {
            if props.get(&f.name).is_none_or(Value::is_null) {
                return Err(ValidationError::new(&f.name, "is required"));
            }
        }
        Ok(())
    }
}

/// Infers a field type from sample values (the first import into a new layer).
#[derive(Debug, Clone, Default)]
pub struct TypeGuess {
    seen: bool,
    int: bool,
    real: bool,
    bool_: bool,
    date: bool,
    datetime: bool,
    text: bool,
}

impl TypeGuess {
    /// Observes a JSON value (nulls tell nothing).
    pub fn observe_json(&mut self, v: &Json) {
        match v {
            Json::Null => {}
            Json::Bool(_) => self.mark(|g| g.bool_ = true),
            Json::Number(n) if n.is_i64() || n.is_u64() => self.mark(|g| g.int = true),
            Json::Number(_) => self.mark(|g| g.real = true),
            Json::String(s) => self.observe_string(s),
            Json::Array(_) | Json::Object(_) => self.mark(|g| g.text = true),
        }
    }

    /// Observes a JSON string value: dates and date-times are recognised, the rest is text.
    pub fn observe_string(&mut self, s: &str) {
        if s.trim().is_empty() {
            return;
        }
        if looks_like_date(s) {
            self.mark(|g| g.date = true);
        } else if looks_like_datetime(s) {
            self.mark(|g| g.datetime = true);
        } else {
            self.mark(|g| g.text = true);
        }
    }

    /// Observes an untyped cell (CSV): numbers and booleans are recognised too.
    pub fn observe_text(&mut self, s: &str) {
        let t = s.trim();
        if t.is_empty() {
            return;
        }
        // Leading zeros mean a code (邮编, 行政区划代码 prefixes), not a number.
        let zero_padded = t.len() > 1 && t.starts_with('0') && !t.starts_with("0.");
        if !zero_padded && t.parse::<i64>().is_ok() {
            self.mark(|g| g.int = true);
        } else if !zero_padded && t.parse::<f64>().is_ok_and(f64::is_finite) {
            self.mark(|g| g.real = true);
        } else if matches!(t.to_lowercase().as_str(), "true" | "false") {
            self.mark(|g| g.bool_ = true);
        } else {
            self.observe_string(t);
        }
    }

    fn mark(&mut self, f: impl FnOnce(&mut Self)) {
        self.seen = true;
        f(self);
    }

    /// The narrowest type holding every observed value; text when nothing fits or nothing was seen.
    pub fn finish(&self) -> FieldType {
        let kinds = [self.int || self.real, self.bool_, self.date || self.datetime, self.text];
        if !self.seen || self.text || kinds.iter().filter(|k| **k).count() > 1 {
            return FieldType::Text;
        }
        if self.real {
            FieldType::Real
        } else if self.int {
            FieldType::Integer
        } else if self.bool_ {
            FieldType::Bool
        } else if self.datetime {
            FieldType::DateTime
        } else if self.date {
            FieldType::Date
        } else {
            FieldType::Text
        }
    }
}

fn looks_like_date(s: &str) -> bool {
    s.len() == 10 && s.as_bytes()[4] == b'-' && time::parse_date(s).is_ok()
}

fn looks_like_datetime(s: &str) -> bool {
    s.len() >= 16
        && s.as_bytes().get(4) == Some(&b'-')
        && s.as_bytes().get(10).is_some_and(|b| *b == b'T' || *b == b' ')
        && time::parse_instant(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> LayerSchema {
        let mut name = FieldDef::new("名称", FieldType::Text);
        name.required = true;
        name.max_length = Some(4);
        let mut depth = FieldDef::new("depth", FieldType::Real);
        depth.min = Some(0.0);
        depth.max = Some(20.0);
        let mut status = FieldDef::new("status", FieldType::Code);
        status.codes = vec![
            CodeItem { code: "1".into(), label: "完好".into() },
            CodeItem { code: "2".into(), label: "破损".into() },
        ];
        LayerSchema { fields: vec![name, depth, status] }
    }

    #[track_caller]
    fn check(props: &[(&str, Value)], expected_error: Option<&str>) {
        let props: Properties = props.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        match (schema().validate(&props), expected_error) {
            (Ok(()), None) => {}
            (Err(e), Some(want)) => assert!(e.to_string().contains(want), "{e} does not contain {want}"),
            (got, want) => panic!("got {got:?}, wanted error {want:?}"),
        }
    }

    #[test]
    fn validation() {
        check(&[("名称", "井盖".into()), ("depth", 1.5.into())], None);
        check(&[("depth", 1.5.into())], Some("field `名称`: is required"));
        check(&[("名称", "五个汉字啊".into())], Some("5 characters, at most 4"));
        check(&[("名称", "井".into()), ("depth", 25.0.into())], Some("above the maximum 20"));
        check(&[("名称", "井".into()), ("depth", "x".into())], Some("expected real"));
        check(&[("名称", "井".into()), ("status", "9".into())], Some("not in the code list: 1 (完好), 2 (破损)"));
        check(&[("名称", "井".into()), ("colour", "red".into())], Some("`colour`: is not a field"));
        check(&[("名称", "井".into()), ("depth", Value::Integer(3))], None);
    }

    #[test]
    fn schema_check_refuses_reserved_and_duplicate_names() {
        let mut s = schema();
        s.fields.push(FieldDef::new("code", FieldType::Text));
        assert!(s.check().unwrap_err().to_string().contains("reserved"));
        let mut s = schema();
        s.fields.push(FieldDef::new("Depth", FieldType::Text));
        assert!(s.check().unwrap_err().to_string().contains("twice"));
        assert!(schema().check().is_ok());
    }

    #[test]
    fn coercion() {
        let f = FieldDef::new("n", FieldType::Integer);
        assert_eq!(f.coerce_text(" 42 ").unwrap(), Value::Integer(42));
        assert_eq!(f.coerce_json(&serde_json::json!(3.0)).unwrap(), Value::Integer(3));
        assert!(f.coerce_json(&serde_json::json!(3.5)).is_err());
        assert_eq!(f.coerce_text("").unwrap(), Value::Null);
        let b = FieldDef::new("b", FieldType::Bool);
        assert_eq!(b.coerce_text("是").unwrap(), Value::Bool(true));
        let d = FieldDef::new("d", FieldType::DateTime);
        assert!(matches!(d.coerce_text("2025-06-01T08:00:00+08:00").unwrap(), Value::DateTime(_)));
    }

    #[test]
    fn type_inference() {
        let guess = |cells: &[&str]| {
            let mut g = TypeGuess::default();
            cells.iter().for_each(|c| g.observe_text(c));
            g.finish()
        };
        assert_eq!(guess(&["1", "2", ""]), FieldType::Integer);
        assert_eq!(guess(&["1", "2.5"]), FieldType::Real);
        assert_eq!(guess(&["420111", "0420"]), FieldType::Text);
        assert_eq!(guess(&["2025-01-01", "2024-12-31"]), FieldType::Date);
        assert_eq!(guess(&["2025-01-01T08:00:00+08:00"]), FieldType::DateTime);
        assert_eq!(guess(&["true", "false"]), FieldType::Bool);
        assert_eq!(guess(&["洪山区", "1"]), FieldType::Text);
        assert_eq!(guess(&[]), FieldType::Text);
    }
}
