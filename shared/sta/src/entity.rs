//! The SensorThings 1.1 data model (Sensing part with the MultiDatastream extension): the nine
//! entity types, their properties and navigation properties (with inverses, so deep insert and
//! path parsing know who holds the foreign key), identifiers, time values, and serde types with
//! the standard JSON shapes (`@iot.id`, `@iot.selfLink`, `<Nav>@iot.navigationLink`).
//!
//! The tables here are the one place the model is spelled out; paths, query options, deep
//! insert and links all read them, so they cannot disagree.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

/// One of the nine entity types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityType {
    Thing,
    Location,
    HistoricalLocation,
    Sensor,
    ObservedProperty,
    Datastream,
    MultiDatastream,
    Observation,
    FeatureOfInterest,
}

/// How many entities a navigation property leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    One,
    Many,
}

/// A navigation property of an entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Navigation {
    /// The name in JSON and URLs (`Datastreams`, `Thing`).
    pub name: &'static str,
    pub target: EntityType,
    pub cardinality: Cardinality,
    /// The navigation property of `target` leading back.
    pub inverse: &'static str,
}

const fn nav(name: &'static str, target: EntityType, cardinality: Cardinality, inverse: &'static str) -> Navigation {
    Navigation { name, target, cardinality, inverse }
}

use Cardinality::{Many, One};
use EntityType as E;

impl EntityType {
    /// All types, in the order of the service root document.
    pub const ALL: [EntityType; 9] = [
        E::Thing,
        E::Location,
        E::HistoricalLocation,
        E::Sensor,
        E::ObservedProperty,
        E::Datastream,
        E::MultiDatastream,
        E::Observation,
        E::FeatureOfInterest,
    ];

    /// The singular name (`Thing`).
    pub fn name(self) -> &'static str {
        match self {
            E::Thing => "Thing",
            E::Location => "Location",
            E::HistoricalLocation => "HistoricalLocation",
            E::Sensor => "Sensor",
            E::ObservedProperty => "ObservedProperty",
            E::Datastream => "Datastream",
            E::MultiDatastream => "MultiDatastream",
            E::Observation => "Observation",
            E::FeatureOfInterest => "FeatureOfInterest",
        }
    }

    /// The entity set name in URLs (`Things`).
    pub fn set_name(self) -> &'static str {
        match self {
            E::Thing => "Things",
            E::Location => "Locations",
            E::HistoricalLocation => "HistoricalLocations",
            E::Sensor => "Sensors",
            E::ObservedProperty => "ObservedProperties",
            E::Datastream => "Datastreams",
            E::MultiDatastream => "MultiDatastreams",
            E::Observation => "Observations",
            E::FeatureOfInterest => "FeaturesOfInterest",
        }
    }

    /// The type of an entity set name (exact, case-sensitive as OData is).
    pub fn from_set_name(name: &str) -> Option<EntityType> {
        EntityType::ALL.into_iter().find(|t| t.set_name() == name)
    }

    /// The properties (not navigation) of the type, `id` first.
    pub fn properties(self) -> &'static [&'static str] {
        match self {
            E::Thing => &["id", "name", "description", "properties"],
            E::Location => &["id", "name", "description", "encodingType", "location", "properties"],
            E::HistoricalLocation => &["id", "time"],
            E::Sensor => &["id", "name", "description", "encodingType", "metadata", "properties"],
            E::ObservedProperty => &["id", "name", "definition", "description", "properties"],
            E::Datastream => &[
                "id",
                "name",
                "description",
                "unitOfMeasurement",
                "observationType",
                "observedArea",
                "phenomenonTime",
                "resultTime",
                "properties",
            ],
            E::MultiDatastream => &[
                "id",
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
            E::Observation => {
                &["id", "phenomenonTime", "result", "resultTime", "resultQuality", "validTime", "parameters"]
            }
            E::FeatureOfInterest => &["id", "name", "description", "encodingType", "feature", "properties"],
        }
    }

    /// Properties a create body must carry (navigation requirements are in [`Self::required_navigation`]).
    pub fn required_properties(self) -> &'static [&'static str] {
        match self {
            E::Thing => &["name"],
            E::Location => &["name", "encodingType", "location"],
            E::HistoricalLocation => &["time"],
            E::Sensor => &["name", "encodingType", "metadata"],
            E::ObservedProperty => &["name", "definition"],
            E::Datastream => &["name", "unitOfMeasurement", "observationType"],
            E::MultiDatastream => &["name", "unitOfMeasurements", "observationType", "multiObservationDataTypes"],
            E::Observation => &["result"],
            E::FeatureOfInterest => &["name", "encodingType", "feature"],
        }
    }

    /// To-one navigation a create body must link (an Observation needs a Datastream *or* a
    /// MultiDatastream, checked separately).
    pub fn required_navigation(self) -> &'static [&'static str] {
        match self {
            E::HistoricalLocation => &["Thing"],
            E::Datastream => &["Thing", "Sensor", "ObservedProperty"],
            E::MultiDatastream => &["Thing", "Sensor", "ObservedProperties"],
            _ => &[],
        }
    }

    /// Properties the server computes; a create or update body may not set them.
    pub fn read_only_properties(self) -> &'static [&'static str] {
        match self {
            E::Datastream | E::MultiDatastream => &["observedArea"],
            _ => &[],
        }
    }

    /// The navigation properties of the type.
    pub fn navigations(self) -> &'static [Navigation] {
        const THING: &[Navigation] = &[
            nav("Locations", E::Location, Many, "Things"),
            nav("HistoricalLocations", E::HistoricalLocation, Many, "Thing"),
            nav("Datastreams", E::Datastream, Many, "Thing"),
            nav("MultiDatastreams", E::MultiDatastream, Many, "Thing"),
        ];
        const LOCATION: &[Navigation] = &[
            nav("Things", E::Thing, Many, "Locations"),
            nav("HistoricalLocations", E::HistoricalLocation, Many, "Locations"),
        ];
        const HISTORICAL_LOCATION: &[Navigation] = &[
            nav("Thing", E::Thing, One, "HistoricalLocations"),
            nav("Locations", E::Location, Many, "HistoricalLocations"),
        ];
        const SENSOR: &[Navigation] = &[
            nav("Datastreams", E::Datastream, Many, "Sensor"),
            nav("MultiDatastreams", E::MultiDatastream, Many, "Sensor"),
        ];
        const OBSERVED_PROPERTY: &[Navigation] = &[
            nav("Datastreams", E::Datastream, Many, "ObservedProperty"),
            nav("MultiDatastreams", E::MultiDatastream, Many, "ObservedProperties"),
        ];
        const DATASTREAM: &[Navigation] = &[
            nav("Thing", E::Thing, One, "Datastreams"),
            nav("Sensor", E::Sensor, One, "Datastreams"),
            nav("ObservedProperty", E::ObservedProperty, One, "Datastreams"),
            nav("Observations", E::Observation, Many, "Datastream"),
        ];
        const MULTI_DATASTREAM: &[Navigation] = &[
            nav("Thing", E::Thing, One, "MultiDatastreams"),
            nav("Sensor", E::Sensor, One, "MultiDatastreams"),
            nav("ObservedProperties", E::ObservedProperty, Many, "MultiDatastreams"),
            nav("Observations", E::Observation, Many, "MultiDatastream"),
        ];
        const OBSERVATION: &[Navigation] = &[
            nav("Datastream", E::Datastream, One, "Observations"),
            nav("MultiDatastream", E::MultiDatastream, One, "Observations"),
            nav("FeatureOfInterest", E::FeatureOfInterest, One, "Observations"),
        ];
        const FEATURE: &[Navigation] = &[nav("Observations", E::Observation, Many, "FeatureOfInterest")];
        match self {
            E::Thing => THING,
            E::Location => LOCATION,
            E::HistoricalLocation => HISTORICAL_LOCATION,
            E::Sensor => SENSOR,
            E::ObservedProperty => OBSERVED_PROPERTY,
            E::Datastream => DATASTREAM,
            E::MultiDatastream => MULTI_DATASTREAM,
            E::Observation => OBSERVATION,
            E::FeatureOfInterest => FEATURE,
        }
    }

    /// The navigation property `name` of this type.
    pub fn navigation(self, name: &str) -> Option<&'static Navigation> {
        self.navigations().iter().find(|n| n.name == name)
    }

    /// The property `name` of this type, as the static string of the model.
    pub fn property(self, name: &str) -> Option<&'static str> {
        self.properties().iter().copied().find(|p| *p == name)
    }

    /// Properties whose value is free JSON (members addressable as `properties/…` paths).
    pub fn is_json_property(self, name: &str) -> bool {
        matches!(
            name,
            "properties"
                | "parameters"
                | "resultQuality"
                | "unitOfMeasurement"
                | "unitOfMeasurements"
                | "result"
                | "location"
                | "feature"
                | "observedArea"
                | "metadata"
        )
    }
}

impl fmt::Display for EntityType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An entity id (`@iot.id`): SensorThings lets servers use numbers or strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Id {
    Int(i64),
    Str(String),
}

impl Id {
    /// The id as written inside a URL's parentheses: `5` or `'a''b'` (quote doubled, OData).
    pub fn url_literal(&self) -> String {
        match self {
            Id::Int(i) => i.to_string(),
            Id::Str(s) => format!("'{}'", s.replace('\'', "''")),
        }
    }

    /// The id from a JSON value (`5` or `"abc"`), `None` for any other JSON.
    pub fn from_json(v: &Value) -> Option<Id> {
        match v {
            Value::Number(n) => n.as_i64().map(Id::Int),
            Value::String(s) => Some(Id::Str(s.clone())),
            _ => None,
        }
    }

    pub fn to_json(&self) -> Value {
        match self {
            Id::Int(i) => Value::from(*i),
            Id::Str(s) => Value::from(s.clone()),
        }
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Int(i) => write!(f, "{i}"),
            Id::Str(s) => f.write_str(s),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Id::Int(i) => s.serialize_i64(*i),
            Id::Str(v) => s.serialize_str(v),
        }
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Id::from_json(&v).ok_or_else(|| serde::de::Error::custom("@iot.id must be an integer or a string"))
    }
}

/// A time as SensorThings writes it: an instant or an ISO 8601 interval `start/end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeValue {
    Instant(Timestamp),
    /// Start and end, `start <= end`.
    Interval(Timestamp, Timestamp),
}

impl TimeValue {
    /// Parses `2016-01-01T01:01:01.000Z`, `…+08:00`, `…-0700` or `start/end`. Instants must
    /// carry an offset.
    pub fn parse(text: &str) -> Result<TimeValue, String> {
        match text.split_once('/') {
            Some((a, b)) => {
                let (a, b) = (parse_instant(a)?, parse_instant(b)?);
                if a > b {
                    return Err(format!("interval `{text}` ends before it starts"));
                }
                Ok(TimeValue::Interval(a, b))
            }
            None => parse_instant(text).map(TimeValue::Instant),
        }
    }

    /// The first instant.
    pub fn start(&self) -> Timestamp {
        match *self {
            TimeValue::Instant(t) | TimeValue::Interval(t, _) => t,
        }
    }

    /// The last instant.
    pub fn end(&self) -> Timestamp {
        match *self {
            TimeValue::Instant(t) | TimeValue::Interval(_, t) => t,
        }
    }
}

/// Parses one instant with an offset (`Z`, `+08:00`, `-0700`).
pub fn parse_instant(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<Timestamp>() {
        return Ok(ts);
    }
    // `-0700`/`+0800` (basic offset, as the conformance tests send): insert the colon.
    let b = t.as_bytes();
    if b.len() > 5 {
        let (head, off) = t.split_at(t.len() - 5);
        if (off.starts_with('+') || off.starts_with('-')) && off[1..].bytes().all(|c| c.is_ascii_digit()) {
            let fixed = format!("{head}{}:{}", &off[..3], &off[3..]);
            if let Ok(ts) = fixed.parse::<Timestamp>() {
                return Ok(ts);
            }
        }
    }
    Err(format!("`{text}` is not an ISO 8601 instant with an offset (e.g. 2016-01-01T01:01:01.000Z)"))
}

impl fmt::Display for TimeValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeValue::Instant(t) => write!(f, "{t}"),
            TimeValue::Interval(a, b) => write!(f, "{a}/{b}"),
        }
    }
}

impl Serialize for TimeValue {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TimeValue::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The observation types of O&M 2.0 a Datastream may declare.
pub const OBSERVATION_TYPES: [&str; 5] = [
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CategoryObservation",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_CountObservation",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Measurement",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_Observation",
    "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_TruthObservation",
];

/// The observation type every MultiDatastream has.
pub const COMPLEX_OBSERVATION: &str = "http://www.opengis.net/def/observationType/OGC-OM/2.0/OM_ComplexObservation";

/// Encoding types of GeoJSON locations and features (the second is the 1.0 spelling, still sent).
pub const GEOJSON_ENCODINGS: [&str; 2] = ["application/geo+json", "application/vnd.geo+json"];

/// `unitOfMeasurement`: all three members may be null (a unitless count).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UnitOfMeasurement {
    pub name: Option<String>,
    pub symbol: Option<String>,
    pub definition: Option<String>,
}

macro_rules! entity_struct {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            #[serde(rename = "@iot.id", default, skip_serializing_if = "Option::is_none")]
            pub id: Option<Id>,
            #[serde(rename = "@iot.selfLink", default, skip_serializing_if = "Option::is_none")]
            pub self_link: Option<String>,
            $($(#[$fm])* #[serde(default, skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
            /// `<Nav>@iot.navigationLink` members (and anything else not in the model).
            #[serde(flatten)]
            pub links: Map<String, Value>,
        }
    };
}

entity_struct!(
    /// A Thing: the object of the real world (a manhole, a lamp) that carries sensors.
    Thing { name: String, description: String, properties: Map<String, Value> }
);
entity_struct!(
    /// Where a Thing is: `location` is GeoJSON when `encodingType` is `application/geo+json`.
    Location {
        name: String,
        description: String,
        encoding_type: String,
        location: Value,
        properties: Map<String, Value>,
    }
);
entity_struct!(
    /// A Thing was at these Locations from `time` on.
    HistoricalLocation { time: TimeValue }
);
entity_struct!(
    /// The instrument; `metadata` describes it in `encodingType` (a PDF link, SensorML).
    Sensor {
        name: String,
        description: String,
        encoding_type: String,
        metadata: Value,
        properties: Map<String, Value>,
    }
);
entity_struct!(
    /// What is observed (`definition` is a URI).
    ObservedProperty { name: String, definition: String, description: String, properties: Map<String, Value> }
);
entity_struct!(
    /// Observations of one ObservedProperty by one Sensor on one Thing.
    Datastream {
        name: String,
        description: String,
        unit_of_measurement: UnitOfMeasurement,
        observation_type: String,
        observed_area: Value,
        phenomenon_time: TimeValue,
        result_time: TimeValue,
        properties: Map<String, Value>,
    }
);
entity_struct!(
    /// Observations whose result is an array, one member per ObservedProperty.
    MultiDatastream {
        name: String,
        description: String,
        unit_of_measurements: Vec<UnitOfMeasurement>,
        observation_type: String,
        multi_observation_data_types: Vec<String>,
        observed_area: Value,
        phenomenon_time: TimeValue,
        result_time: TimeValue,
        properties: Map<String, Value>,
    }
);
entity_struct!(
    /// One reading.
    Observation {
        phenomenon_time: TimeValue,
        result: Value,
        #[serde(with = "nullable_time")]
        result_time: Option<TimeValue>,
        result_quality: Value,
        valid_time: TimeValue,
        parameters: Map<String, Value>,
    }
);
entity_struct!(
    /// What an Observation is about (GeoJSON `feature` under `application/geo+json`).
    FeatureOfInterest {
        name: String,
        description: String,
        encoding_type: String,
        feature: Value,
        properties: Map<String, Value>,
    }
);

/// `resultTime` is written as `null` when unknown (the spec shows `"resultTime": null`), so the
/// outer `Option` is "member absent" and the inner one "member null".
mod nullable_time {
    use super::TimeValue;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Option<TimeValue>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(Some(t)) => s.collect_str(t),
            _ => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<TimeValue>>, D::Error> {
        Ok(Some(Option::<TimeValue>::deserialize(d)?))
    }
}

/// Adds `@iot.selfLink` and every `<Nav>@iot.navigationLink` to an entity's JSON object, after
/// `@iot.id` (the order the specification's examples show). `base` is the service root without a
/// trailing slash (`https://host/sta/v1.1`).
pub fn add_links(obj: &mut Map<String, Value>, base: &str, ty: EntityType, id: &Id) {
    let self_link = entity_url(base, ty, id);
    let mut out = Map::with_capacity(obj.len() + 1 + ty.navigations().len());
    if let Some(v) = obj.remove("@iot.id") {
        out.insert("@iot.id".into(), v);
    } else {
        out.insert("@iot.id".into(), id.to_json());
    }
    out.insert("@iot.selfLink".into(), Value::String(self_link.clone()));
    for (k, v) in std::mem::take(obj) {
        out.insert(k, v);
    }
    for n in ty.navigations() {
        out.insert(format!("{}@iot.navigationLink", n.name), Value::String(format!("{self_link}/{}", n.name)));
    }
    *obj = out;
}

/// The URL of one entity: `{base}/Things(1)`, `{base}/Things('a%20b')`.
pub fn entity_url(base: &str, ty: EntityType, id: &Id) -> String {
    let lit = id.url_literal();
    let enc = percent_encoding::utf8_percent_encode(&lit, crate::path::ID_ENCODE);
    format!("{}/{}({enc})", base.trim_end_matches('/'), ty.set_name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn inverses_are_consistent() {
        for ty in EntityType::ALL {
            for n in ty.navigations() {
                let back = n.target.navigation(n.inverse).unwrap_or_else(|| panic!("{ty}.{}", n.name));
                assert_eq!(back.target, ty, "{ty}.{}", n.name);
                assert_eq!(back.inverse, n.name);
            }
        }
    }

    #[test]
    fn observation_json_shape() {
        let o: Observation = serde_json::from_value(json!({
            "@iot.id": 1595550,
            "@iot.selfLink": "http://x/v1.0/Observations(1595550)",
            "phenomenonTime": "2017-02-16T21:55:12.841Z",
            "result": "7",
            "resultTime": null,
            "Datastream@iot.navigationLink": "http://x/v1.0/Observations(1595550)/Datastream"
        }))
        .unwrap_or_default();
        assert_eq!(o.id, Some(Id::Int(1595550)));
        assert_eq!(o.result_time, Some(None));
        assert!(o.links.contains_key("Datastream@iot.navigationLink"));
        let back = serde_json::to_value(&o).unwrap_or_default();
        assert_eq!(back["resultTime"], Value::Null);
        assert_eq!(back["phenomenonTime"], "2017-02-16T21:55:12.841Z");
    }

    #[test]
    fn times_parse_instants_intervals_and_basic_offsets() {
        assert!(matches!(TimeValue::parse("2016-01-01T01:01:01.000Z"), Ok(TimeValue::Instant(_))));
        let t = TimeValue::parse("2010-12-23T10:20:00-0700").map(|t| t.to_string());
        assert_eq!(t.as_deref(), Ok("2010-12-23T17:20:00Z"));
        let i = TimeValue::parse("2016-01-01T00:00:00Z/2016-01-02T00:00:00+08:00");
        assert!(matches!(i, Ok(TimeValue::Interval(..))), "{i:?}");
        assert!(TimeValue::parse("2016-01-02T00:00:00Z/2016-01-01T00:00:00Z").is_err());
        assert!(TimeValue::parse("2016-01-01T00:00:00").is_err(), "no offset");
    }

    #[test]
    fn links_follow_the_id() {
        let mut m = Map::new();
        m.insert("name".into(), json!("井盖 1"));
        add_links(&mut m, "http://h/sta/v1.1/", EntityType::Thing, &Id::Int(1));
        let keys: Vec<&str> = m.keys().map(String::as_str).collect();
        assert_eq!(&keys[..3], ["@iot.id", "@iot.selfLink", "name"]);
        assert_eq!(m["@iot.selfLink"], "http://h/sta/v1.1/Things(1)");
        assert_eq!(m["Datastreams@iot.navigationLink"], "http://h/sta/v1.1/Things(1)/Datastreams");
        assert_eq!(
            entity_url("http://h", EntityType::Sensor, &Id::Str("a b'c".into())),
            "http://h/Sensors('a%20b''c')"
        );
    }
}
