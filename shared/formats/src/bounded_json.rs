//! JSON parsed into a `serde_json::Value` tree with a cap on the number of values, so a body or
//! a feature of a few megabytes (`[0,0,0,…]`: two bytes per value, ~80 bytes per value in the
//! tree) cannot make the parser allocate gigabytes. Nesting is already capped by `serde_json`
//! (128 levels); strings by the caller's byte limits.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value as Json};

use crate::limits::{Exceeded, Limit};

/// The message a [`BoundedValue`] fails with when the budget is spent.
const OVER: &str = "over the limit of JSON values";

/// A seed that builds a `Value`, taking one unit of `left` per value.
#[derive(Debug, Clone, Copy)]
pub struct BoundedValue<'b> {
    pub left: &'b Cell<u64>,
}

impl BoundedValue<'_> {
    fn take<E: de::Error>(&self) -> Result<(), E> {
        match self.left.get() {
            0 => Err(E::custom(OVER)),
            n => {
                self.left.set(n - 1);
                Ok(())
            }
        }
    }

    /// Whether a parse error came from the spent budget.
    pub fn spent(&self, e: &impl fmt::Display) -> bool {
        self.left.get() == 0 && e.to_string().contains(OVER)
    }
}

impl<'de> DeserializeSeed<'de> for BoundedValue<'_> {
    type Value = Json;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BoundedValue<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        self.take()?;
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        self.take()?;
        Ok(Json::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        self.take()?;
        Ok(Json::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        self.take()?;
        Ok(serde_json::Number::from_f64(v).map_or(Json::Null, Json::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        self.take()?;
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        self.take()?;
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        self.take()?;
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        self.visit_unit()
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        self.take()?;
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(self)? {
            out.push(v);
        }
        Ok(Json::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        self.take()?;
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map.next_value_seed(self)?;
            out.insert(k, v);
        }
        Ok(Json::Object(out))
    }
}

/// Why [`parse_bounded`] failed.
#[derive(Debug, thiserror::Error)]
pub enum BoundedJsonError {
    #[error(transparent)]
    Exceeded(Exceeded),
    #[error(transparent)]
    Syntax(serde_json::Error),
}

/// Parses one JSON document of at most `max_values` values; `what` names it in the refusal
/// (`the request body`).
pub fn parse_bounded(bytes: &[u8], max_values: u64, what: &str) -> Result<Json, BoundedJsonError> {
    let left = Cell::new(max_values);
    let seed = BoundedValue { left: &left };
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let parsed = seed.deserialize(&mut de).and_then(|v| de.end().map(|()| v));
    parsed.map_err(|e| {
        if seed.spent(&e) {
            BoundedJsonError::Exceeded(Exceeded::stopped(Limit::JsonValues, what, max_values + 1, max_values))
        } else {
            BoundedJsonError::Syntax(e)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_counted_and_the_tree_is_the_same() {
        let text = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[114.3,30.5]},"properties":{"名称":"井盖","n":1,"ok":true,"x":null}}"#;
        let v = parse_bounded(text.as_bytes(), 100, "body").unwrap();
        assert_eq!(v, serde_json::from_str::<Json>(text).unwrap());
        // 12 values: 3 objects, 1 array, 8 scalars.
        assert!(parse_bounded(text.as_bytes(), 12, "body").is_ok());
        let Err(BoundedJsonError::Exceeded(x)) = parse_bounded(text.as_bytes(), 11, "the body") else { panic!() };
        assert_eq!(x.to_string(), "the body has more than 11 JSON values; the limit is 11 (json-values)");
        assert!(matches!(parse_bounded(b"{\"a\":", 100, "b"), Err(BoundedJsonError::Syntax(_))));
    }

    #[test]
    fn a_huge_flat_array_stops_early() {
        let mut body = b"[".to_vec();
        body.extend(std::iter::repeat_n(&b"0,"[..], 4_000_000).flatten());
        body.extend_from_slice(b"0]");
        let t = std::time::Instant::now();
        assert!(matches!(parse_bounded(&body, 1000, "b"), Err(BoundedJsonError::Exceeded(_))));
        assert!(t.elapsed() < std::time::Duration::from_millis(500), "{:?}", t.elapsed());
    }
}
