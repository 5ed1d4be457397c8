//! The address service on the wire (地名地址服务): `/geocode`, `/geocode/suggest`, `/reverse`,
//! user aliases and batch jobs.
//!
//! These are not the geocoder crate's result types: the engine's types may change with its
//! matching (new internal levels, new reasons), while these stay what clients were promised. The
//! server converts at its edge; the device's search box reads [`Suggestions`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The outcome of a query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GeocodeStatus {
    Match,
    Ambiguous,
    #[serde(rename = "nomatch")]
    NoMatch,
}

/// Why a query got no match (or was ambiguous).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoMatchReason {
    /// The input was empty after normalisation.
    Empty,
    /// The input names a place outside the reference area.
    OutsideArea { place: String },
    /// Nothing in the input is a known division, road, POI or alias.
    NoComponent,
    /// Something matched, but too weakly to answer.
    TooWeak { best: String, score: f64 },
    /// Several places in different counties fit equally well.
    Tie { count: u64 },
}

/// How deep an answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchLevel {
    Province,
    City,
    County,
    Town,
    Village,
    Road,
    HouseNumber,
    Poi,
}

/// Administrative level of a division (省 市 县 乡 村).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DivisionLevel {
    Province,
    City,
    County,
    Town,
    Village,
}

/// Official division codes per level (6 digits up to county, 9 for townships, 12 for villages).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DivisionCodes {
    pub province: Option<String>,
    pub city: Option<String>,
    pub county: Option<String>,
    pub town: Option<String>,
    pub village: Option<String>,
}

/// The address split into its parts, as written (after normalisation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddressComponents {
    pub province: Option<String>,
    pub city: Option<String>,
    pub county: Option<String>,
    pub town: Option<String>,
    pub village: Option<String>,
    pub road: Option<String>,
    pub house_number: Option<String>,
    pub building: Option<String>,
    pub unit: Option<String>,
    pub room: Option<String>,
    pub poi: Option<String>,
}

/// What a point is the location of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PointSource {
    /// The centre of a division of this level: `{"centre": "county"}`.
    Centre(DivisionLevel),
    Road,
    Address,
    Poi,
}

/// A point in CGCS2000 longitude/latitude and what it locates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PlacePoint {
    pub lon: f64,
    pub lat: f64,
    pub source: PointSource,
}

/// One candidate place of an ambiguous answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeocodeCandidate {
    pub score: f64,
    pub level: MatchLevel,
    pub codes: DivisionCodes,
    pub standard_address: String,
    pub point: Option<PlacePoint>,
}

/// `GET /geocode?q=` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeocodeResponse {
    pub status: GeocodeStatus,
    pub reason: Option<NoMatchReason>,
    /// Confidence 0..1.
    pub score: f64,
    pub level: Option<MatchLevel>,
    pub codes: DivisionCodes,
    /// Full official names in canonical order (province … village, road, number, building, POI).
    pub standard_address: String,
    pub components: AddressComponents,
    pub point: Option<PlacePoint>,
    /// For ambiguous answers: the tied candidates (the best first).
    pub candidates: Vec<GeocodeCandidate>,
}

/// One place a search box offers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestion {
    /// The name as shown (洪山区, 珞喻路).
    pub name: String,
    /// Its standard address (湖北省武汉市洪山区).
    pub standard_address: String,
    pub level: MatchLevel,
    /// The division code (for roads and POIs, the code of their division).
    pub code: Option<String>,
    pub point: Option<PlacePoint>,
}

/// `GET /geocode/suggest?q=` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suggestions {
    pub suggestions: Vec<Suggestion>,
}

/// How a level of a reverse answer was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitBasis {
    /// The point lies inside the unit's boundary.
    Polygon,
    /// The unit's centre is the nearest (no boundary loaded).
    Nearest,
    /// Taken from a nearby address point or POI's division code.
    Record,
    /// Implied by a deeper unit.
    Parent,
}

/// One division containing the point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReverseUnit {
    pub level: DivisionLevel,
    pub code: String,
    pub name: String,
    pub basis: UnitBasis,
    /// Distance from the point to the unit's centre, when known (metres).
    pub centre_distance_m: Option<f64>,
}

/// The nearest road.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearRoad {
    pub id: String,
    pub name: String,
    /// Shortest distance to the road line (metres).
    pub distance_m: f64,
    /// The closest point on the line.
    pub lon: f64,
    pub lat: f64,
}

/// The nearest standard address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NearAddress {
    pub id: String,
    pub standard_address: String,
    pub distance_m: f64,
    pub lon: f64,
    pub lat: f64,
}

/// `GET /reverse?lon=&lat=` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReverseResponse {
    /// From the province down to the deepest unit decided.
    pub units: Vec<ReverseUnit>,
    pub codes: DivisionCodes,
    pub standard_address: String,
    pub nearest_road: Option<NearRoad>,
    pub nearest_address: Option<NearAddress>,
}

/// A user alias (华科 → 华中科技大学): the body of `POST /geocode/aliases` and its answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasDoc {
    pub alias: String,
    pub name: String,
    /// The deepest division code the aliased place lies in, if known.
    #[serde(default)]
    pub code: Option<String>,
}

/// `GET /geocode/aliases` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasList {
    pub aliases: Vec<AliasDoc>,
}

/// `POST /geocode/batch` answer (202).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCreated {
    pub id: Uuid,
    /// The job's status URL (also in `Location`).
    pub status: String,
}

/// Where a batch job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    Running,
    Done,
    Failed,
}

/// `GET /geocode/batch/{job}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchJob {
    pub id: Uuid,
    pub owner: String,
    pub state: BatchState,
    /// The address column.
    pub column: String,
    /// The result's format: `csv`, `geojson` or `gpkg`.
    pub format: String,
    /// Rows in the table; rows geocoded so far.
    pub total: u64,
    pub done: u64,
    pub matched: u64,
    pub ambiguous: u64,
    pub nomatch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Beijing time.
    pub created_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// The result's URL, once done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<String>,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;

    fn codes() -> DivisionCodes {
        DivisionCodes {
            province: Some("420000".into()),
            city: Some("420100".into()),
            county: Some("420111".into()),
            town: None,
            village: None,
        }
    }

    #[test]
    fn geocode() {
        golden(
            GeocodeResponse {
                status: GeocodeStatus::Match,
                reason: None,
                score: 0.95,
                level: Some(MatchLevel::HouseNumber),
                codes: codes(),
                standard_address: "湖北省武汉市洪山区珞喻路1037号".into(),
                components: AddressComponents {
                    county: Some("洪山".into()),
                    road: Some("珞喻路".into()),
                    house_number: Some("1037".into()),
                    ..AddressComponents::default()
                },
                point: Some(PlacePoint { lon: 114.36, lat: 30.51, source: PointSource::Address }),
                candidates: vec![],
            },
            r#"{"status":"match","reason":null,"score":0.95,"level":"house_number",
                "codes":{"province":"420000","city":"420100","county":"420111","town":null,"village":null},
                "standard_address":"湖北省武汉市洪山区珞喻路1037号",
                "components":{"province":null,"city":null,"county":"洪山","town":null,"village":null,"road":"珞喻路",
                    "house_number":"1037","building":null,"unit":null,"room":null,"poi":null},
                "point":{"lon":114.36,"lat":30.51,"source":"address"},"candidates":[]}"#,
        );
        golden(
            GeocodeResponse {
                status: GeocodeStatus::Ambiguous,
                reason: Some(NoMatchReason::Tie { count: 2 }),
                score: 0.5,
                level: None,
                codes: DivisionCodes::default(),
                standard_address: String::new(),
                components: AddressComponents::default(),
                point: None,
                candidates: vec![GeocodeCandidate {
                    score: 0.5,
                    level: MatchLevel::County,
                    codes: codes(),
                    standard_address: "湖北省武汉市洪山区".into(),
                    point: Some(PlacePoint {
                        lon: 114.34,
                        lat: 30.5,
                        source: PointSource::Centre(DivisionLevel::County),
                    }),
                }],
            },
            r#"{"status":"ambiguous","reason":{"kind":"tie","count":2},"score":0.5,"level":null,
                "codes":{"province":null,"city":null,"county":null,"town":null,"village":null},"standard_address":"",
                "components":{"province":null,"city":null,"county":null,"town":null,"village":null,"road":null,
                    "house_number":null,"building":null,"unit":null,"room":null,"poi":null},
                "point":null,
                "candidates":[{"score":0.5,"level":"county",
                    "codes":{"province":"420000","city":"420100","county":"420111","town":null,"village":null},
                    "standard_address":"湖北省武汉市洪山区","point":{"lon":114.34,"lat":30.5,"source":{"centre":"county"}}}]}"#,
        );
        for (reason, json) in [
            (NoMatchReason::Empty, r#"{"kind":"empty"}"#),
            (NoMatchReason::OutsideArea { place: "纽约".into() }, r#"{"kind":"outside_area","place":"纽约"}"#),
            (NoMatchReason::NoComponent, r#"{"kind":"no_component"}"#),
            (
                NoMatchReason::TooWeak { best: "洪山".into(), score: 0.25 },
                r#"{"kind":"too_weak","best":"洪山","score":0.25}"#,
            ),
        ] {
            golden(reason, json);
        }
    }

    #[test]
    fn suggest() {
        golden(
            Suggestions {
                suggestions: vec![Suggestion {
                    name: "洪山区".into(),
                    standard_address: "湖北省武汉市洪山区".into(),
                    level: MatchLevel::County,
                    code: Some("420111".into()),
                    point: Some(PlacePoint {
                        lon: 114.34,
                        lat: 30.5,
                        source: PointSource::Centre(DivisionLevel::County),
                    }),
                }],
            },
            r#"{"suggestions":[{"name":"洪山区","standard_address":"湖北省武汉市洪山区","level":"county","code":"420111",
                "point":{"lon":114.34,"lat":30.5,"source":{"centre":"county"}}}]}"#,
        );
    }

    #[test]
    fn reverse() {
        golden(
            ReverseResponse {
                units: vec![ReverseUnit {
                    level: DivisionLevel::County,
                    code: "420111".into(),
                    name: "洪山区".into(),
                    basis: UnitBasis::Polygon,
                    centre_distance_m: Some(1520.5),
                }],
                codes: codes(),
                standard_address: "湖北省武汉市洪山区鲁磨路10号".into(),
                nearest_road: Some(NearRoad {
                    id: "r1".into(),
                    name: "鲁磨路".into(),
                    distance_m: 12.5,
                    lon: 114.4,
                    lat: 30.5,
                }),
                nearest_address: None,
            },
            r#"{"units":[{"level":"county","code":"420111","name":"洪山区","basis":"polygon","centre_distance_m":1520.5}],
                "codes":{"province":"420000","city":"420100","county":"420111","town":null,"village":null},
                "standard_address":"湖北省武汉市洪山区鲁磨路10号",
                "nearest_road":{"id":"r1","name":"鲁磨路","distance_m":12.5,"lon":114.4,"lat":30.5},"nearest_address":null}"#,
        );
        golden(
            NearAddress {
                id: "a1".into(),
                standard_address: "湖北省武汉市洪山区鲁磨路10号".into(),
                distance_m: 0.5,
                lon: 114.4,
                lat: 30.5,
            },
            r#"{"id":"a1","standard_address":"湖北省武汉市洪山区鲁磨路10号","distance_m":0.5,"lon":114.4,"lat":30.5}"#,
        );
    }

    #[test]
    fn aliases_and_batches() {
        let alias = AliasDoc { alias: "华科".into(), name: "华中科技大学".into(), code: Some("420111".into()) };
        golden(alias.clone(), r#"{"alias":"华科","name":"华中科技大学","code":"420111"}"#);
        golden(
            AliasList { aliases: vec![alias] },
            r#"{"aliases":[{"alias":"华科","name":"华中科技大学","code":"420111"}]}"#,
        );
        let id: Uuid = "0192f3c4-0000-7000-8000-000000000001".parse().unwrap();
        golden(
            BatchCreated { id, status: "http://h/geocode/batch/0192f3c4-0000-7000-8000-000000000001".into() },
            r#"{"id":"0192f3c4-0000-7000-8000-000000000001","status":"http://h/geocode/batch/0192f3c4-0000-7000-8000-000000000001"}"#,
        );
        golden(
            BatchJob {
                id,
                owner: "li".into(),
                state: BatchState::Done,
                column: "地址".into(),
                format: "csv".into(),
                total: 3,
                done: 3,
                matched: 2,
                ambiguous: 0,
                nomatch: 1,
                error: None,
                created_at: "2025-06-01T10:00:00+08:00".into(),
                finished_at: Some("2025-06-01T10:00:01+08:00".into()),
                result: Some("http://h/geocode/batch/0192f3c4-0000-7000-8000-000000000001/result".into()),
            },
            r#"{"id":"0192f3c4-0000-7000-8000-000000000001","owner":"li","state":"done","column":"地址","format":"csv",
                "total":3,"done":3,"matched":2,"ambiguous":0,"nomatch":1,"created_at":"2025-06-01T10:00:00+08:00",
                "finished_at":"2025-06-01T10:00:01+08:00","result":"http://h/geocode/batch/0192f3c4-0000-7000-8000-000000000001/result"}"#,
        );
    }
}
