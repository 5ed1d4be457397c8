//! `sortby` on OGC API – Features items (Part 8 "Sorting" style: `sortby=-depth,+名称`).
//!
//! Why it is built this way: the store keeps features in entity id order and pages them by a
//! keyset on that id (`items_cursor`), which stays a seek at any depth of a 1M-feature layer.
//! It has no index on arbitrary attributes, so an attribute order cannot be a seek: each page
//! reads every feature the query matches and keeps only the page's `limit + 1` smallest keys after
//! the cursor's key (a bounded top-k, never the whole answer in memory). That cost grows with the
//! matches, so it is bounded: a query matching more than `ServerConfig::max_sorted` features is
//! refused (400 naming `sortby` and the bound) instead of scanned — narrow it with a filter or a
//! bbox, or page it in id order. `sortby=id` (or none) is the id keyset itself.
//!
//! Keys compare by field type (numbers as numbers, text by code point, dates as dates); null
//! sorts first ascending and last descending; the entity id ascending breaks ties, so the order
//! is total and a keyset cursor (the last key and id, `items_cursor::encode_sorted`) names one
//! position exactly.

use std::cmp::Ordering;

use serde_json::{Value as Json, json};
use shikong_model::{EntityId, Feature, FieldType, LayerSchema, Value};
use shikong_store::StoredFeature;

use super::problem::{ApiError, ApiResult};

/// Most keys one `sortby` may name.
pub const MAX_KEYS: usize = 4;

/// What a key reads.
#[derive(Debug, Clone, PartialEq)]
enum Field {
    Id,
    Code,
    /// A field of the layer's schema, by name, with its type.
    Attr(String, FieldType),
}

#[derive(Debug, Clone, PartialEq)]
struct Key {
    field: Field,
    descending: bool,
}

/// A parsed `sortby`, never the plain id order (that is the keyset path).
#[derive(Debug, Clone, PartialEq)]
pub struct SortBy {
    keys: Vec<Key>,
}

/// Where the previous sorted page ended: its last feature's key values and entity id.
#[derive(Debug, Clone, PartialEq)]
pub struct After {
    pub key: Vec<Value>,
    pub id: EntityId,
}

/// `sortby` against the layer's schema: `None` when it asks for the id order (`id`, `+id`).
pub fn parse(text: &str, layer: &str, schema: &LayerSchema) -> ApiResult<Option<SortBy>> {
    let bad = |detail: String| ApiError::bad_parameter("sortby", detail);
    let known = || {
        let mut names = vec!["id".to_owned(), "code".to_owned()];
        names.extend(schema.active().filter(|f| sortable(f.ty)).map(|f| f.name.clone()));
        names.join(", ")
    };
    if text.split(',').count() > MAX_KEYS {
        return Err(bad(format!("at most {MAX_KEYS} keys")).with("max", MAX_KEYS));
    }
    let mut keys: Vec<Key> = Vec::new();
    for (i, item) in text.split(',').enumerate() {
        // `+` decodes to a space in a query string: a leading space is the `+` of the spec.
        let item = item.trim_matches(|c: char| c == ' ' || c == '\t');
        let (descending, name) = match item.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, item.strip_prefix('+').unwrap_or(item)),
        };
        if name.is_empty() {
            return Err(bad(format!("key {} is empty (give `field`, `+field` or `-field`, comma-separated)", i + 1)));
        }
        let field = match name {
            "id" | "entity_id" => Field::Id,
            "code" => Field::Code,
            _ => match schema.field(name) {
                Some(f) if sortable(f.ty) && !f.retired => Field::Attr(f.name.clone(), f.ty),
                Some(f) => {
                    return Err(bad(format!("`{name}` ({}) does not sort; fields that do: {}", f.ty.name(), known())));
                }
                None => {
                    return Err(bad(format!("`{name}` is not a field of `{layer}`; fields that sort: {}", known())));
                }
            },
        };
        if keys.iter().any(|k| k.field == field) {
            return Err(bad(format!("`{name}` is given more than once")));
        }
        keys.push(Key { field, descending });
    }
    if matches!(keys.as_slice(), [Key { field: Field::Id, descending: false }]) {
        return Ok(None);
    }
    Ok(Some(SortBy { keys }))
}

fn sortable(ty: FieldType) -> bool {
    !matches!(ty, FieldType::Attachments)
}

/// Ranks of value kinds, so that values of mixed kinds (never within one typed field) still order.
fn rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) => 1,
        Value::Integer(_) | Value::Real(_) => 2,
        Value::Text(_) => 3,
        Value::Date(_) | Value::DateTime(_) => 4,
        Value::Attachments(_) => 5,
    }
}

/// Ascending order of two values of one key: null first, then the natural order.
fn compare(a: &Value, b: &Value) -> Ordering {
    a.compare(b).unwrap_or_else(|| rank(a).cmp(&rank(b)))
}

impl SortBy {
    /// The key values of a feature.
    pub fn key(&self, f: &Feature) -> Vec<Value> {
        self.keys
            .iter()
            .map(|k| match &k.field {
                Field::Id => Value::Text(f.id.to_string()),
                Field::Code => Value::Text(f.code.clone()),
                Field::Attr(name, _) => f.properties.get(name).cloned().unwrap_or(Value::Null),
            })
            .collect()
    }

    /// The order of two (key, id) positions.
    pub fn order(&self, a: (&[Value], EntityId), b: (&[Value], EntityId)) -> Ordering {
        for ((k, x), y) in self.keys.iter().zip(a.0).zip(b.0) {
            let o = compare(x, y);
            let o = if k.descending { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        a.1.cmp(&b.1)
    }

    /// The key values as a cursor carries them (exact: reals by their bits, instants in full).
    pub fn encode_key(key: &[Value]) -> Vec<u8> {
        let items: Vec<Json> = key
            .iter()
            .map(|v| match v {
                Value::Null => json!(["n"]),
                Value::Bool(b) => json!(["b", b]),
                Value::Integer(i) => json!(["i", i.to_string()]),
                Value::Real(r) => json!(["r", r.to_bits().to_string()]),
                Value::Text(s) => json!(["t", s]),
                Value::Date(d) => json!(["d", d.to_string()]),
                Value::DateTime(t) => json!(["T", t.to_string()]),
                Value::Attachments(a) => json!(["a", a]),
            })
            .collect();
        serde_json::to_vec(&items).unwrap_or_default()
    }

    /// [`SortBy::encode_key`] back, checked against this order's number of keys.
    pub fn decode_key(&self, bytes: &[u8]) -> Option<Vec<Value>> {
        let items: Vec<Json> = serde_json::from_slice(bytes).ok()?;
        if items.len() != self.keys.len() {
            return None;
        }
        items
            .iter()
            .map(|it| {
                let tag = it.get(0)?.as_str()?;
                let arg = it.get(1);
                let s = || arg.and_then(Json::as_str);
                Some(match tag {
                    "n" => Value::Null,
                    "b" => Value::Bool(arg?.as_bool()?),
                    "i" => Value::Integer(s()?.parse().ok()?),
                    "r" => Value::Real(f64::from_bits(s()?.parse().ok()?)),
                    "t" => Value::Text(s()?.to_owned()),
                    "d" => Value::Date(s()?.parse().ok()?),
                    "T" => Value::DateTime(s()?.parse().ok()?),
                    "a" => Value::Attachments(
                        arg?.as_array()?.iter().map(|x| x.as_str().map(str::to_owned)).collect::<Option<_>>()?,
                    ),
                    _ => return None,
                })
            })
            .collect()
    }
}

/// The page a sorted query is building: the `limit + 1` first features after the cursor, in order,
/// and how many features the query matches in all.
pub struct TopK<'s> {
    sort: &'s SortBy,
    after: Option<After>,
    limit: usize,
    max: usize,
    kept: Vec<(Vec<Value>, StoredFeature)>,
    /// Every match of the query (before and after the cursor).
    pub matched: usize,
}

impl<'s> TopK<'s> {
    pub fn new(sort: &'s SortBy, after: Option<After>, limit: usize, max: usize) -> Self {
        TopK { sort, after, limit, max, kept: Vec::with_capacity(2 * limit + 2), matched: 0 }
    }

    /// Offers one matching feature; false once the query matches more than the bound (the scan
    /// stops there: see [`TopK::refusal`]).
    pub fn offer(&mut self, f: StoredFeature) -> bool {
        self.matched += 1;
        if self.matched > self.max {
            return false;
        }
        let key = self.sort.key(&f.feature);
        if let Some(a) = &self.after
            && self.sort.order((&key, f.feature.id), (&a.key, a.id)) != Ordering::Greater
        {
            return true;
        }
        self.kept.push((key, f));
        if self.kept.len() >= 2 * (self.limit + 1) {
            self.trim();
        }
        true
    }

    fn trim(&mut self) {
        let sort = self.sort;
        self.kept.sort_by(|a, b| sort.order((&a.0, a.1.feature.id), (&b.0, b.1.feature.id)));
        self.kept.truncate(self.limit + 1);
    }

    /// The error when the query matched more than the bound.
    pub fn refusal(&self) -> Option<ApiError> {
        (self.matched > self.max).then(|| {
            ApiError::bad_parameter(
                "sortby",
                format!(
                    "this query matches more than {} features, more than this server sorts (every page of a \
                     sorted answer reads all its matches); narrow it with a filter, bbox or datetime, or page \
                     it without sortby (in id order, any size)",
                    self.max
                ),
            )
            .with("max", self.max)
        })
    }

    /// The page in order, whether more follow, and the last feature's position (for `next`).
    pub fn finish(mut self) -> (Vec<StoredFeature>, bool, Option<After>) {
        self.trim();
        let more = self.kept.len() > self.limit;
        self.kept.truncate(self.limit);
        let last = self.kept.last().map(|(k, f)| After { key: k.clone(), id: f.feature.id });
        (self.kept.into_iter().map(|(_, f)| f).collect(), more, last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shikong_model::FieldDef;

    fn schema() -> LayerSchema {
        LayerSchema {
            fields: vec![
                FieldDef::new("名称", FieldType::Text),
                FieldDef::new("depth", FieldType::Real),
                FieldDef::new("照片", FieldType::Attachments),
            ],
        }
    }

    #[test]
    fn parses_keys_and_refuses_what_does_not_sort() {
        let s = schema();
        assert_eq!(parse("id", "m", &s).unwrap(), None);
        assert_eq!(parse(" id", "m", &s).unwrap(), None);
        let p = parse("-depth, 名称,+code", "m", &s).unwrap().unwrap();
        assert_eq!(p.keys.len(), 3);
        assert!(p.keys[0].descending && !p.keys[1].descending && !p.keys[2].descending);
        assert!(parse("照片", "m", &s).unwrap_err().detail.contains("does not sort"));
        assert!(parse("x", "m", &s).unwrap_err().detail.contains("`x` is not a field of `m`"));
    }

    #[test]
    fn keys_round_trip_exactly_and_order_totally() {
        let s = parse("-depth,名称", "m", &schema()).unwrap().unwrap();
        let key = vec![Value::Real(0.1 + 0.2), Value::Text("井盖".into())];
        assert_eq!(s.decode_key(&SortBy::encode_key(&key)).unwrap(), key);
        assert!(s.decode_key(b"[]").is_none());
        let id = |n: u128| EntityId(uuid::Uuid::from_u128(n));
        let a = vec![Value::Real(2.0), Value::Text("a".into())];
        let b = vec![Value::Real(1.0), Value::Text("a".into())];
        let n = vec![Value::Null, Value::Text("a".into())];
        assert_eq!(s.order((&a, id(1)), (&b, id(0))), Ordering::Less, "descending depth");
        assert_eq!(s.order((&n, id(1)), (&b, id(0))), Ordering::Greater, "null last descending");
        assert_eq!(s.order((&a, id(1)), (&a, id(2))), Ordering::Less, "ties by id");
    }
}
