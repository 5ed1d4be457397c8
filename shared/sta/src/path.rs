//! Resource paths after the service root (`/Things(1)/Datastreams`, `/Datastreams(5)/Observations`,
//! `/Things(1)/Locations/$ref`, `/Things(1)/name/$value`, `/Things(1)/properties/owner`), parsed
//! to a typed [`ResourcePath`] against the model's navigation table, so the HTTP layer only maps
//! it to storage. Errors name the segment (1-based) and say what may come there.

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str};

use crate::entity::{Cardinality, EntityType, Id};
use crate::error::{Result, StaError};

/// Characters percent-encoded inside an id in links (`Things('a b')` → `Things('a%20b')`).
pub const ID_ENCODE: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'?')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// Longest path accepted (bytes, before decoding).
pub const MAX_PATH_LEN: usize = 4096;

/// A parsed resource path.
#[derive(Debug, Clone, PartialEq)]
pub enum ResourcePath {
    /// `/` — the service root document.
    ServiceRoot,
    /// `/CreateObservations` — the dataArray bulk create.
    CreateObservations,
    Resource(Resource),
}

/// Entity segments and what follows them.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    /// The first is an entity set (`nav` is `None`); each later one follows `nav` from the one
    /// before. `id` is given for `Things(1)`-style segments.
    pub segments: Vec<PathSegment>,
    pub tail: Tail,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PathSegment {
    pub entity_type: EntityType,
    pub nav: Option<&'static str>,
    pub id: Option<Id>,
    /// Whether this segment addresses a collection (an entity set or to-many navigation without
    /// an id).
    pub collection: bool,
}

/// What the path addresses after its entity segments.
#[derive(Debug, Clone, PartialEq)]
pub enum Tail {
    /// The entity or collection itself.
    None,
    /// `$ref`: links (`@iot.selfLink` only).
    Ref,
    /// A property (`name`), optionally members inside a JSON property (`properties/owner/name`),
    /// and `$value` for the raw value.
    Property { name: &'static str, members: Vec<String>, value: bool },
}

impl Resource {
    /// The entity type of the last segment.
    pub fn entity_type(&self) -> EntityType {
        self.segments.last().map_or(EntityType::Thing, |s| s.entity_type)
    }

    /// Whether the path returns a collection (`value` array) rather than one entity.
    pub fn is_collection(&self) -> bool {
        self.segments.last().is_some_and(|s| s.collection) && !matches!(self.tail, Tail::Property { .. })
    }
}

fn err(segment: usize, text: &str, message: impl Into<String>) -> StaError {
    StaError::Path { segment, text: text.to_owned(), message: message.into() }
}

/// Splits at `/` outside single-quoted ids.
fn split_segments(path: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in path.char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '/' if !quoted => {
                out.push(&path[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&path[start..]);
    out
}

/// Parses an id literal: `5`, `-3` or `'text'` (quotes doubled inside).
pub fn parse_id(lit: &str) -> std::result::Result<Id, String> {
    let t = lit.trim();
    if let Some(inner) = t.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        if inner.replace("''", "").contains('\'') {
            return Err(format!("`{t}`: a quote inside a string id is doubled (`''`)"));
        }
        return Ok(Id::Str(inner.replace("''", "'")));
    }
    if !t.is_empty() && t.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit()) {
        return t.parse::<i64>().map(Id::Int).map_err(|_| format!("id `{t}` is out of the 64-bit integer range"));
    }
    Err(format!("`{t}` is not an id: ids are integers (`5`) or quoted strings (`'abc'`)"))
}

/// Parses a resource path (the part of the URL path after the service root, percent-encoded as
/// received; a leading `/` is optional).
pub fn parse_path(raw: &str) -> Result<ResourcePath> {
    if raw.len() > MAX_PATH_LEN {
        return Err(StaError::too_large("resource path length in bytes", raw.len() as u64, MAX_PATH_LEN as u64));
    }
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| err(1, raw, "the path is not UTF-8 after percent-decoding"))?;
    let trimmed = decoded.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Ok(ResourcePath::ServiceRoot);
    }
    if trimmed == "CreateObservations" {
        return Ok(ResourcePath::CreateObservations);
    }
    let parts = split_segments(trimmed);
    let mut segments: Vec<PathSegment> = Vec::new();
    let mut tail = Tail::None;
    let mut i = 0;
    while i < parts.len() {
        let n = i + 1;
        let text = parts[i];
        if text.is_empty() {
            return Err(err(n, text, "empty segment (`//`)"));
        }
        let (name, id) = match text.find('(') {
            Some(p) => {
                let Some(lit) = text[p + 1..].strip_suffix(')') else {
                    return Err(err(n, text, "an id is written `Name(id)` with the closing parenthesis last"));
                };
                (&text[..p], Some(parse_id(lit).map_err(|m| err(n, text, m))?))
            }
            None => (text, None),
        };
        let Some(prev) = segments.last() else {
            let Some(ty) = EntityType::from_set_name(name) else {
                let sets: Vec<&str> = EntityType::ALL.iter().map(|t| t.set_name()).collect();
                return Err(err(n, text, format!("not an entity set; the sets are {}", sets.join(", "))));
            };
            segments.push(PathSegment { entity_type: ty, nav: None, collection: id.is_none(), id });
            i += 1;
            continue;
        };
        if name == "$ref" {
            if id.is_some() || i + 1 != parts.len() {
                return Err(err(n, text, "`$ref` ends the path"));
            }
            tail = Tail::Ref;
            break;
        }
        if prev.collection {
            return Err(err(
                n,
                text,
                format!("`{}` is a collection: address one entity with `(id)` first, or end with `$ref`", parts[i - 1]),
            ));
        }
        let ty = prev.entity_type;
        if let Some(nav) = ty.navigation(name) {
            let many = nav.cardinality == Cardinality::Many;
            if id.is_some() && !many {
                return Err(err(n, text, format!("`{name}` leads to one {}: it takes no id", nav.target)));
            }
            segments.push(PathSegment {
                entity_type: nav.target,
                nav: Some(nav.name),
                collection: many && id.is_none(),
                id,
            });
            i += 1;
            continue;
        }
        let Some(prop) = ty.property(name) else {
            let mut names: Vec<&str> = ty.properties().to_vec();
            names.extend(ty.navigations().iter().map(|n| n.name));
            return Err(err(
                n,
                text,
                format!("{ty} has no property or navigation `{name}`; it has {}", names.join(", ")),
            ));
        };
        if id.is_some() {
            return Err(err(n, text, "a property takes no id"));
        }
        let mut members = Vec::new();
        let mut value = false;
        for (j, m) in parts.iter().enumerate().skip(i + 1) {
            if *m == "$value" {
                if j + 1 != parts.len() {
                    return Err(err(j + 1, m, "`$value` ends the path"));
                }
                value = true;
            } else if !ty.is_json_property(prop) {
                return Err(err(j + 1, m, format!("`{prop}` has no members; only `$value` may follow it")));
            } else if m.is_empty() || m.starts_with('$') {
                return Err(err(j + 1, m, "not a member name"));
            } else {
                members.push((*m).to_owned());
            }
        }
        tail = Tail::Property { name: prop, members, value };
        break;
    }
    Ok(ResourcePath::Resource(Resource { segments, tail }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use EntityType as E;

    fn res(p: &str) -> Resource {
        match parse_path(p) {
            Ok(ResourcePath::Resource(r)) => r,
            other => panic!("{p}: {other:?}"),
        }
    }

    fn seg_err(p: &str) -> (usize, String) {
        match parse_path(p) {
            Err(StaError::Path { segment, message, .. }) => (segment, message),
            other => panic!("{p}: expected a path error, got {other:?}"),
        }
    }

    /// The resource paths of the specification's examples (section 9.2).
    #[test]
    fn spec_examples() {
        assert_eq!(parse_path("/"), Ok(ResourcePath::ServiceRoot));
        assert_eq!(parse_path(""), Ok(ResourcePath::ServiceRoot));
        assert_eq!(parse_path("/CreateObservations"), Ok(ResourcePath::CreateObservations));
        let r = res("/Things");
        assert!(r.is_collection());
        assert_eq!(r.entity_type(), E::Thing);
        let r = res("/Things(1)");
        assert!(!r.is_collection());
        assert_eq!(r.segments[0].id, Some(Id::Int(1)));
        let r = res("/Things(1)/Locations");
        assert!(r.is_collection());
        assert_eq!(r.segments[1].nav, Some("Locations"));
        let r = res("/Datastreams(5)/Observations");
        assert_eq!(r.entity_type(), E::Observation);
        let r = res("/Observations(1)/Datastream/Thing");
        assert!(!r.is_collection());
        assert_eq!(r.entity_type(), E::Thing);
        let r = res("/Things(1)/Locations(2)");
        assert_eq!(r.segments[1].id, Some(Id::Int(2)));
        assert!(!r.is_collection());
        assert_eq!(res("/Things(1)/Locations/$ref").tail, Tail::Ref);
        assert_eq!(res("/Datastreams(1)/Sensor/$ref").tail, Tail::Ref);
        assert_eq!(res("/Things/$ref").tail, Tail::Ref);
        assert_eq!(res("/Things(1)/name").tail, Tail::Property { name: "name", members: vec![], value: false });
        assert_eq!(res("/Things(1)/name/$value").tail, Tail::Property { name: "name", members: vec![], value: true });
        assert_eq!(
            res("/Things(1)/properties/owner/name").tail,
            Tail::Property { name: "properties", members: vec!["owner".into(), "name".into()], value: false }
        );
        let r = res("/MultiDatastreams(3)/ObservedProperties");
        assert_eq!(r.entity_type(), E::ObservedProperty);
        let r = res("/FeaturesOfInterest('f%20one')/Observations/");
        assert_eq!(r.segments[0].id, Some(Id::Str("f one".into())));
        let r = res("/Sensors('a/b''c')");
        assert_eq!(r.segments[0].id, Some(Id::Str("a/b'c".into())));
    }

    #[test]
    fn errors_name_the_segment() {
        assert_eq!(seg_err("/Thingz").0, 1);
        let (n, m) = seg_err("/Things/Datastreams");
        assert_eq!(n, 2);
        assert!(m.contains("collection"), "{m}");
        let (n, m) = seg_err("/Observations(1)/Datastream(2)");
        assert_eq!(n, 2);
        assert!(m.contains("no id"), "{m}");
        let (n, m) = seg_err("/Things(1)/colour");
        assert_eq!(n, 2);
        assert!(m.contains("Locations"), "{m}");
        assert_eq!(seg_err("/Things(1)/name/first").0, 3);
        assert_eq!(seg_err("/Things(1)/name/$value/x").0, 3);
        assert_eq!(seg_err("/Things(1)/$ref/x").0, 2);
        assert_eq!(seg_err("/Things(abc)").0, 1);
        assert_eq!(seg_err("/Things(1").0, 1);
        assert_eq!(seg_err("/Things(99999999999999999999999)").0, 1);
        assert_eq!(seg_err("/Things(1)//Locations").0, 2);
        assert_eq!(seg_err("/Things('a'b')").0, 1);
        assert!(matches!(parse_path(&"/Things".repeat(1000)), Err(StaError::TooLarge { .. })));
        assert!(parse_path("/Things(1)/%FF").is_err());
    }

    #[test]
    fn urls_of_ids_parse_back() {
        for id in [Id::Int(-4), Id::Str("a b/c'd%".into()), Id::Str("井盖".into())] {
            let url = crate::entity::entity_url("", E::Thing, &id);
            assert_eq!(res(&url).segments[0].id.as_ref(), Some(&id), "{url}");
        }
    }
}
