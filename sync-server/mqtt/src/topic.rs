//! Topics of the SensorThings API 1.1 MQTT extension, parsed into what they mean.
//!
//! Why a parser of our own: the broker decides per topic what a client may do (create an
//! observation in one datastream, follow one thing's datastreams), so a topic is first turned
//! into a typed [`PublishTarget`] or [`Subscription`], and every refusal says which part of the
//! text is wrong. Pure logic, no I/O.
//!
//! Grammar (STA 1.1 §14): `v1.1/` resource path, optionally `?$select=a,b` on subscriptions.
//! - create (publish): `v1.1/Datastreams(ID)/Observations`, `v1.1/MultiDatastreams(ID)/Observations`;
//! - subscribe: an entity set (`v1.1/Observations`), a related set (`v1.1/Datastreams(ID)/Observations`,
//!   `v1.1/Things(ID)/Datastreams`), an entity (`v1.1/Observations(ID)`), a property
//!   (`v1.1/Things(ID)/name`).
//!
//! Ids are numbers (`Datastreams(7)`), quoted text with `''` for a quote (`Datastreams('a''b')`),
//! or bare UUIDs. MQTT wildcards are not STA topics and are refused.

use std::fmt;

/// The STA version prefix every topic starts with.
pub const VERSION: &str = "v1.1";

/// The topic a client subscribes to for the reasons of its own refused publishes (MQTT 3.1.1 has
/// no reason code in PUBACK). Only the refused client receives them.
pub const REFUSALS_TOPIC: &str = "shikong/refused";

/// The nine entity sets of STA 1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntitySet {
    Things,
    Locations,
    HistoricalLocations,
    Sensors,
    ObservedProperties,
    Datastreams,
    MultiDatastreams,
    Observations,
    FeaturesOfInterest,
}

impl EntitySet {
    pub const ALL: [EntitySet; 9] = [
        EntitySet::Things,
        EntitySet::Locations,
        EntitySet::HistoricalLocations,
        EntitySet::Sensors,
        EntitySet::ObservedProperties,
        EntitySet::Datastreams,
        EntitySet::MultiDatastreams,
        EntitySet::Observations,
        EntitySet::FeaturesOfInterest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EntitySet::Things => "Things",
            EntitySet::Locations => "Locations",
            EntitySet::HistoricalLocations => "HistoricalLocations",
            EntitySet::Sensors => "Sensors",
            EntitySet::ObservedProperties => "ObservedProperties",
            EntitySet::Datastreams => "Datastreams",
            EntitySet::MultiDatastreams => "MultiDatastreams",
            EntitySet::Observations => "Observations",
            EntitySet::FeaturesOfInterest => "FeaturesOfInterest",
        }
    }

    pub fn from_name(name: &str) -> Option<EntitySet> {
        EntitySet::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The entity sets reachable from one entity of this set (STA 1.1 data model, set-valued
    /// navigation properties only).
    pub fn related_sets(self) -> &'static [EntitySet] {
        use EntitySet::*;
        match self {
            Things => &[Locations, HistoricalLocations, Datastreams, MultiDatastreams],
            Locations => &[Things, HistoricalLocations],
            HistoricalLocations => &[Locations],
            Sensors => &[Datastreams, MultiDatastreams],
            ObservedProperties => &[Datastreams, MultiDatastreams],
            Datastreams => &[Observations],
            MultiDatastreams => &[Observations, ObservedProperties],
            Observations => &[],
            FeaturesOfInterest => &[Observations],
        }
    }

    /// The properties of an entity of this set (`$select` and property topics).
    pub fn properties(self) -> &'static [&'static str] {
        use EntitySet::*;
        match self {
            Things => &["name", "description", "properties"],
            Locations => &["name", "description", "encodingType", "location", "properties"],
            HistoricalLocations => &["time"],
            Sensors => &["name", "description", "encodingType", "metadata", "properties"],
            ObservedProperties => &["name", "definition", "description", "properties"],
            Datastreams => &[
                "name",
                "description",
                "unitOfMeasurement",
                "observationType",
                "observedArea",
                "phenomenonTime",
                "resultTime",
                "properties",
            ],
            MultiDatastreams => &[
                "name",
                "description",
                "unitOfMeasurements",
                "observationType",
                "multiObservationDataTypes",
                "observedArea",
                "phenomenonTime",
                "resultTime",
                "properties",
            ],
            Observations => &["phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters"],
            FeaturesOfInterest => &["name", "description", "encodingType", "feature", "properties"],
        }
    }

    /// The navigation properties of an entity of this set (may appear in `$select`).
    fn navigation(self) -> &'static [&'static str] {
        use EntitySet::*;
        match self {
            Things => &["Locations", "HistoricalLocations", "Datastreams", "MultiDatastreams"],
            Locations => &["Things", "HistoricalLocations"],
            HistoricalLocations => &["Thing", "Locations"],
            Sensors => &["Datastreams", "MultiDatastreams"],
            ObservedProperties => &["Datastreams", "MultiDatastreams"],
            Datastreams => &["Thing", "Sensor", "ObservedProperty", "Observations"],
            MultiDatastreams => &["Thing", "Sensor", "ObservedProperties", "Observations"],
            Observations => &["Datastream", "MultiDatastream", "FeatureOfInterest"],
            FeaturesOfInterest => &["Observations"],
        }
    }
}

impl fmt::Display for EntitySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An entity id as written in a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum EntityId {
    /// `Datastreams(7)`
    Number(u64),
    /// `Datastreams('abc')` or a bare UUID `Datastreams(0190…)`
    Text(String),
}

impl fmt::Display for EntityId {
    /// The canonical form: numbers bare, text quoted with `''` for a quote.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntityId::Number(n) => write!(f, "{n}"),
            EntityId::Text(t) => write!(f, "'{}'", t.replace('\'', "''")),
        }
    }
}

/// What a topic names, without `$select`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ResourcePath {
    /// `v1.1/Observations`
    Collection(EntitySet),
    /// `v1.1/Datastreams(7)/Observations`
    Related { parent: EntitySet, id: EntityId, set: EntitySet },
    /// `v1.1/Observations(9)`
    Entity { set: EntitySet, id: EntityId },
    /// `v1.1/Things(1)/name`
    Property { set: EntitySet, id: EntityId, property: String },
}

impl ResourcePath {
    /// The entity set whose members this path delivers (for a property: the entity's set).
    pub fn target_set(&self) -> EntitySet {
        match self {
            ResourcePath::Collection(set) => *set,
            ResourcePath::Related { set, .. } => *set,
            ResourcePath::Entity { set, .. } => *set,
            ResourcePath::Property { set, .. } => *set,
        }
    }

    /// The topic text in canonical form (`v1.1/…`): the routing key of the broker.
    pub fn topic(&self) -> String {
        format!("{VERSION}/{self}")
    }
}

impl fmt::Display for ResourcePath {
    /// Canonical path without the version prefix.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourcePath::Collection(set) => write!(f, "{set}"),
            ResourcePath::Related { parent, id, set } => write!(f, "{parent}({id})/{set}"),
            ResourcePath::Entity { set, id } => write!(f, "{set}({id})"),
            ResourcePath::Property { set, id, property } => write!(f, "{set}({id})/{property}"),
        }
    }
}

/// Where a publish creates an observation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PublishTarget {
    Datastream(EntityId),
    MultiDatastream(EntityId),
}

impl PublishTarget {
    /// The subscription path that names the same collection.
    pub fn path(&self) -> ResourcePath {
        let (parent, id) = match self {
            PublishTarget::Datastream(id) => (EntitySet::Datastreams, id.clone()),
            PublishTarget::MultiDatastream(id) => (EntitySet::MultiDatastreams, id.clone()),
        };
        ResourcePath::Related { parent, id, set: EntitySet::Observations }
    }
}

/// A parsed subscription topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Subscription {
    pub path: ResourcePath,
    /// `$select`: the properties each delivered entity keeps (None: all).
    pub select: Option<Vec<String>>,
}

/// Why a topic is not an STA MQTT topic. Positions are character offsets in the topic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("the topic is empty")]
    Empty,
    #[error(
        "MQTT wildcards ('+', '#') are not SensorThings topics (character {position}): subscribe to each datastream's topic"
    )]
    Wildcard { position: usize },
    #[error("the topic does not start with '{VERSION}/' (found '{found}')")]
    Version { found: String },
    #[error("'{name}' at character {position} is not an entity set; the sets are {}", set_names())]
    UnknownSet { name: String, position: usize },
    #[error(
        "'{text}' at character {position} is not an id: numbers are bare, text is quoted ('…'), a UUID may be bare"
    )]
    BadId { text: String, position: usize },
    #[error("missing ')' after the id that starts at character {position}")]
    UnclosedId { position: usize },
    #[error("empty path segment at character {position}")]
    EmptySegment { position: usize },
    #[error("{parent} has no related set '{name}'; it has {}", list(parent.related_sets().iter().map(|s| s.name())))]
    NotRelated { parent: EntitySet, name: String },
    #[error("{set} has no property '{name}'; its properties are {}", list(set.properties().iter().copied()))]
    UnknownProperty { set: EntitySet, name: String },
    #[error("'{path}' is deeper than a SensorThings MQTT topic (set, entity, related set or property)")]
    TooDeep { path: String },
    #[error("only '$select=…' may follow '?' (found '{found}')")]
    Query { found: String },
    #[error("'$select' is empty")]
    EmptySelect,
    #[error(
        "publishing creates observations: the topic is {VERSION}/Datastreams(ID)/Observations or {VERSION}/MultiDatastreams(ID)/Observations, not '{topic}'"
    )]
    NotCreatable { topic: String },
    #[error("a create topic takes no query ('{topic}')")]
    QueryOnPublish { topic: String },
}

fn set_names() -> String {
    list(EntitySet::ALL.iter().map(|s| s.name()))
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() { "none".to_string() } else { v.join(", ") }
}

/// Parses a topic a client publishes to (creates an observation).
pub fn parse_publish(topic: &str) -> Result<PublishTarget, TopicError> {
    let (path, query) = split(topic)?;
    if query.is_some() {
        return Err(TopicError::QueryOnPublish { topic: topic.to_string() });
    }
    match path {
        ResourcePath::Related { parent: EntitySet::Datastreams, id, set: EntitySet::Observations } => {
            Ok(PublishTarget::Datastream(id))
        }
        ResourcePath::Related { parent: EntitySet::MultiDatastreams, id, set: EntitySet::Observations } => {
            Ok(PublishTarget::MultiDatastream(id))
        }
        _ => Err(TopicError::NotCreatable { topic: topic.to_string() }),
    }
}

/// Parses a topic filter a client subscribes to.
pub fn parse_subscription(topic: &str) -> Result<Subscription, TopicError> {
    let (path, query) = split(topic)?;
    let select = match query {
        None => None,
        Some(q) => Some(parse_select(&path, q)?),
    };
    Ok(Subscription { path, select })
}

fn split(topic: &str) -> Result<(ResourcePath, Option<&str>), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::Empty);
    }
    if let Some(position) = topic.chars().position(|c| c == '+' || c == '#') {
        return Err(TopicError::Wildcard { position });
    }
    let prefix = format!("{VERSION}/");
    let Some(rest) = topic.strip_prefix(&prefix) else {
        let found: String = topic.split('/').next().unwrap_or_default().chars().take(40).collect();
        return Err(TopicError::Version { found });
    };
    let base = VERSION.chars().count() + 1;
    let (path_text, query) = match rest.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (rest, None),
    };
    let path = parse_path(path_text, base)?;
    Ok((path, query))
}

/// One `Name` or `Name(id)` segment with its start position.
struct Segment {
    name: String,
    id: Option<EntityId>,
    position: usize,
}

fn parse_path(text: &str, base: usize) -> Result<ResourcePath, TopicError> {
    let chars: Vec<char> = text.chars().collect();
    let mut segments = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        while i < chars.len() && chars[i] != '/' && chars[i] != '(' {
            i += 1;
        }
        let name: String = chars[start..i].iter().collect();
        if name.is_empty() {
            return Err(TopicError::EmptySegment { position: base + start });
        }
        let mut id = None;
        if i < chars.len() && chars[i] == '(' {
            let (parsed, next) = parse_id(&chars, i + 1, base)?;
            id = Some(parsed);
            i = next;
        }
        segments.push(Segment { name, id, position: base + start });
        if i >= chars.len() {
            break;
        }
        if chars[i] != '/' {
            return Err(TopicError::BadId { text: chars[i..].iter().collect(), position: base + i });
        }
        i += 1;
        if i >= chars.len() {
            return Err(TopicError::EmptySegment { position: base + i });
        }
    }
    let set_of = |s: &Segment| {
        EntitySet::from_name(&s.name)
            .ok_or_else(|| TopicError::UnknownSet { name: s.name.clone(), position: s.position })
    };
    match segments.as_slice() {
        [one] => {
            let set = set_of(one)?;
            Ok(match &one.id {
                None => ResourcePath::Collection(set),
                Some(id) => ResourcePath::Entity { set, id: id.clone() },
            })
        }
        [first, second] => {
            let parent = set_of(first)?;
            let Some(id) = first.id.clone() else {
                return Err(TopicError::TooDeep { path: text.to_string() });
            };
            if second.id.is_some() {
                return Err(TopicError::TooDeep { path: text.to_string() });
            }
            if let Some(set) = EntitySet::from_name(&second.name) {
                if parent.related_sets().contains(&set) {
                    return Ok(ResourcePath::Related { parent, id, set });
                }
                return Err(TopicError::NotRelated { parent, name: second.name.clone() });
            }
            if parent.properties().contains(&second.name.as_str()) {
                return Ok(ResourcePath::Property { set: parent, id, property: second.name.clone() });
            }
            if second.name.starts_with(|c: char| c.is_ascii_uppercase()) {
                return Err(TopicError::NotRelated { parent, name: second.name.clone() });
            }
            Err(TopicError::UnknownProperty { set: parent, name: second.name.clone() })
        }
        _ => Err(TopicError::TooDeep { path: text.to_string() }),
    }
}

/// Parses the id after `(`; returns it and the index after `)`.
fn parse_id(chars: &[char], start: usize, base: usize) -> Result<(EntityId, usize), TopicError> {
    if chars.get(start) == Some(&'\'') {
        let mut text = String::new();
        let mut i = start + 1;
        loop {
            match chars.get(i) {
                None => return Err(TopicError::UnclosedId { position: base + start }),
                Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                    text.push('\'');
                    i += 2;
                }
                Some('\'') => {
                    i += 1;
                    break;
                }
                Some(c) => {
                    text.push(*c);
                    i += 1;
                }
            }
        }
        if chars.get(i) != Some(&')') {
            return Err(TopicError::UnclosedId { position: base + start });
        }
        return Ok((EntityId::Text(text), i + 1));
    }
    let Some(len) = chars[start..].iter().position(|c| *c == ')') else {
        return Err(TopicError::UnclosedId { position: base + start });
    };
    let raw: String = chars[start..start + len].iter().collect();
    let bad = || TopicError::BadId { text: raw.clone(), position: base + start };
    let id = if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit()) {
        EntityId::Number(raw.parse().map_err(|_| bad())?)
    } else if is_uuid(&raw) {
        EntityId::Text(raw.to_ascii_lowercase())
    } else {
        return Err(bad());
    };
    Ok((id, start + len + 1))
}

fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

fn parse_select(path: &ResourcePath, query: &str) -> Result<Vec<String>, TopicError> {
    let Some(list) = query.strip_prefix("$select=") else {
        return Err(TopicError::Query { found: query.chars().take(40).collect() });
    };
    if matches!(path, ResourcePath::Property { .. }) {
        return Err(TopicError::Query { found: query.to_string() });
    }
    let set = path.target_set();
    let mut names = Vec::new();
    for name in list.split(',') {
        let name = name.trim();
        if name.is_empty() {
            if list.trim().is_empty() {
                return Err(TopicError::EmptySelect);
            }
            continue;
        }
        let known =
            name == "id" || name == "@iot.id" || set.properties().contains(&name) || set.navigation().contains(&name);
        if !known {
            return Err(TopicError::UnknownProperty { set, name: name.to_string() });
        }
        let name = if name == "@iot.id" { "id" } else { name };
        if !names.iter().any(|n| n == name) {
            names.push(name.to_string());
        }
    }
    if names.is_empty() {
        return Err(TopicError::EmptySelect);
    }
    Ok(names)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn create_topics() {
        assert_eq!(
            parse_publish("v1.1/Datastreams(7)/Observations"),
            Ok(PublishTarget::Datastream(EntityId::Number(7)))
        );
        assert_eq!(
            parse_publish("v1.1/MultiDatastreams('井盖''A')/Observations"),
            Ok(PublishTarget::MultiDatastream(EntityId::Text("井盖'A".into())))
        );
        assert_eq!(
            parse_publish("v1.1/Datastreams(0190A5B4-7C3D-7E2F-8A1B-2C3D4E5F6A7B)/Observations"),
            Ok(PublishTarget::Datastream(EntityId::Text("0190a5b4-7c3d-7e2f-8a1b-2c3d4e5f6a7b".into())))
        );
        assert!(matches!(parse_publish("v1.1/Things(1)/Datastreams"), Err(TopicError::NotCreatable { .. })));
        assert!(matches!(
            parse_publish("v1.1/Datastreams(1)/Observations?$select=result"),
            Err(TopicError::QueryOnPublish { .. })
        ));
    }

    #[test]
    fn subscription_topics() {
        let s = parse_subscription("v1.1/Things(3)/Datastreams").unwrap();
        assert_eq!(
            s.path,
            ResourcePath::Related { parent: EntitySet::Things, id: EntityId::Number(3), set: EntitySet::Datastreams }
        );
        let s = parse_subscription("v1.1/Observations(9)?$select=result,phenomenonTime,@iot.id").unwrap();
        assert_eq!(s.path.topic(), "v1.1/Observations(9)");
        assert_eq!(s.select, Some(vec!["result".into(), "phenomenonTime".into(), "id".into()]));
        let s = parse_subscription("v1.1/Things('a')/name").unwrap();
        assert_eq!(s.path.topic(), "v1.1/Things('a')/name");
        assert_eq!(
            parse_subscription("v1.1/Observations").unwrap().path,
            ResourcePath::Collection(EntitySet::Observations)
        );
    }

    #[test]
    fn precise_errors() {
        let e = parse_subscription("v1.1/Datastreams(+)/Observations").unwrap_err();
        assert_eq!(e, TopicError::Wildcard { position: 17 });
        let e = parse_subscription("v1.0/Things").unwrap_err();
        assert_eq!(e, TopicError::Version { found: "v1.0".into() });
        let e = parse_subscription("v1.1/Datastream(1)/Observations").unwrap_err();
        assert_eq!(e, TopicError::UnknownSet { name: "Datastream".into(), position: 5 });
        assert!(e.to_string().contains("Datastreams"), "{e}");
        let e = parse_subscription("v1.1/Datastreams(abc)/Observations").unwrap_err();
        assert_eq!(e, TopicError::BadId { text: "abc".into(), position: 17 });
        let e = parse_subscription("v1.1/Datastreams('abc/Observations").unwrap_err();
        assert_eq!(e, TopicError::UnclosedId { position: 17 });
        let e = parse_subscription("v1.1/Datastreams(1)/Things").unwrap_err();
        assert!(e.to_string().contains("Datastreams has no related set 'Things'"), "{e}");
        let e = parse_subscription("v1.1/Things(1)/nme").unwrap_err();
        assert!(e.to_string().contains("Things has no property 'nme'"), "{e}");
        let e = parse_subscription("v1.1/Observations?$select=reslt").unwrap_err();
        assert!(e.to_string().contains("no property 'reslt'"), "{e}");
        let e = parse_subscription("v1.1/Observations?$filter=result gt 3").unwrap_err();
        assert!(matches!(e, TopicError::Query { .. }), "{e}");
        let e = parse_subscription("v1.1/Observations?$select=").unwrap_err();
        assert_eq!(e, TopicError::EmptySelect);
        let e = parse_subscription("v1.1/Things(1)/Datastreams(2)/Observations").unwrap_err();
        assert!(matches!(e, TopicError::TooDeep { .. }), "{e}");
        let e = parse_subscription("v1.1/Things//x").unwrap_err();
        assert_eq!(e, TopicError::EmptySegment { position: 12 });
        assert_eq!(parse_subscription(""), Err(TopicError::Empty));
    }

    #[test]
    fn canonical_ids_round_trip() {
        for topic in
            ["v1.1/Datastreams(7)/Observations", "v1.1/Things('洪山''站')/Datastreams", "v1.1/Observations(12)"]
        {
            assert_eq!(parse_subscription(topic).unwrap().path.topic(), topic);
        }
    }
}
