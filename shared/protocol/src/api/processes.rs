//! OGC API – Processes 1.0 (the analysis engine, 知识引擎): the process list and descriptions,
//! the execute request with each process's typed inputs, the job status (`statusInfo`), the job
//! list and the results. Member names that the standard spells in camelCase (`jobID`,
//! `processID`, `jobControlOptions`) keep its spelling; our own inputs are snake_case.
//!
//! The exact words of issue 19 live here: process `hotspot` with inputs `collection`, `field`,
//! `weights` (`{"type": "distance", "distance": METRES}` or `{"type": "knn", "k": K}`) and `star`;
//! process `dbscan` with `collection`, `eps` (metres) and `min_samples`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

use super::{Feature, FeatureCollectionType, Link};

/// How a process may be run (`jobControlOptions`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobControl {
    SyncExecute,
    AsyncExecute,
    Dismiss,
}

/// One entry of `GET /processes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSummary {
    pub id: String,
    pub title: String,
    pub description: String,
    pub version: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(rename = "jobControlOptions")]
    pub job_control_options: Vec<JobControl>,
    #[serde(rename = "outputTransmission")]
    pub output_transmission: Vec<String>,
    pub links: Vec<Link>,
}

/// `GET /processes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessList {
    pub processes: Vec<ProcessSummary>,
    pub links: Vec<Link>,
}

/// One input of a process description: a JSON Schema of its value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputDescription {
    pub title: String,
    pub description: String,
    pub schema: Json,
    #[serde(rename = "minOccurs")]
    pub min_occurs: u32,
    #[serde(rename = "maxOccurs")]
    pub max_occurs: u32,
}

/// One output of a process description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputDescription {
    pub title: String,
    pub description: String,
    pub schema: Json,
}

/// `GET /processes/{id}`: the summary with its inputs and outputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessDescription {
    #[serde(flatten)]
    pub summary: ProcessSummary,
    pub inputs: BTreeMap<String, InputDescription>,
    pub outputs: BTreeMap<String, OutputDescription>,
}

/// How the results of an execution are answered: the output itself (`raw`, the default) or a
/// JSON document naming each output (`document`, what OWSLib asks for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseKind {
    #[default]
    Raw,
    Document,
}

/// `POST /processes/{id}/execution` body. `inputs` is read by the process's own input type
/// ([`HotspotInputs`], …), which names a wrong or missing member precisely.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Execute {
    #[serde(default)]
    pub inputs: serde_json::Map<String, Json>,
    /// Which outputs to return (each process has one, `result`; accepted and otherwise ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<ResponseKind>,
    /// Callback URLs (OGC's optional `subscriber`): not supported; refused when given, since a
    /// client relying on them would wait forever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscriber: Option<Json>,
}

/// Spatial weights of `hotspot` and `local-moran`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WeightsInput {
    /// Every feature within this many metres (geodesic, CGCS2000) is a neighbour.
    Distance { distance: f64 },
    /// The k nearest features.
    Knn { k: u32 },
    /// Polygons sharing a boundary point (queen contiguity).
    Queen,
}

fn yes() -> bool {
    true
}

/// Inputs of process `hotspot` (Getis-Ord Gi* / Gi).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HotspotInputs {
    pub collection: String,
    /// The numeric field analysed.
    pub field: String,
    pub weights: WeightsInput,
    /// Gi* (the feature counts in its own neighbourhood, the default) or Gi.
    #[serde(default = "yes")]
    pub star: bool,
    /// Conditional permutations for a pseudo p-value (`gi_p_sim`); 0: none.
    #[serde(default)]
    pub permutations: u32,
    /// Seed of the permutations (the same seed gives the same answer).
    #[serde(default)]
    pub seed: u64,
    /// Adds `gi_fdr` (true where the Benjamini–Hochberg false discovery rate at `alpha` keeps
    /// the feature significant).
    #[serde(default)]
    pub fdr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    /// Also store the result as this new layer (or a new version of each feature in it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

/// Inputs of process `local-moran` (local Moran's I, LISA).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalMoranInputs {
    pub collection: String,
    pub field: String,
    pub weights: WeightsInput,
    #[serde(default)]
    pub permutations: u32,
    #[serde(default)]
    pub seed: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

/// Inputs of process `dbscan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbscanInputs {
    pub collection: String,
    /// Neighbourhood radius, metres (geodesic).
    pub eps: f64,
    /// Features (the point itself included) within `eps` that make a core point.
    pub min_samples: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

/// Inputs of process `hdbscan`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HdbscanInputs {
    pub collection: String,
    /// The fewest features a cluster may have (at least 2).
    pub min_cluster_size: u32,
    /// Neighbours defining a feature's core distance (default: `min_cluster_size`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_samples: Option<u32>,
    /// `eom` (excess of mass, the default) or `leaf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster_selection_method: Option<String>,
    #[serde(default)]
    pub allow_single_cluster: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub save_as: Option<String>,
}

/// Inputs of process `emerging-hotspot` (ArcGIS-style Emerging Hot Spot Analysis).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergingInputs {
    pub collection: String,
    /// When each feature happened: a date or date-time field, or `valid_from`.
    pub time_field: String,
    /// Sum this numeric field per bin; absent: count features.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_field: Option<String>,
    /// Side of a space-time bin, metres.
    pub cell_size: f64,
    /// Length of a time step: an ISO 8601 duration of fixed length (`PT6H`, `P1D`, `P7D`).
    pub interval: String,
    /// Neighbourhood distance, metres.
    pub neighbourhood: f64,
    /// Earlier time steps in the neighbourhood (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood_steps: Option<u32>,
    /// When a step starts (default: midnight Beijing time of the earliest feature's day).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpha: Option<f64>,
    #[serde(default)]
    pub fdr: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// Inputs of process `statistics`: counts, sums, means and rates by division or grid cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticsInputs {
    pub collection: String,
    /// A polygon layer of divisions; or give `cell_size` for a grid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisions: Option<String>,
    /// The divisions' name field (default: their entity code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_name_field: Option<String>,
    /// The divisions' population field, for rates per 10,000 people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_field: Option<String>,
    /// Square grid cells of this many metres (instead of divisions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cell_size: Option<f64>,
    /// Group by this field's values.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_field: Option<String>,
    /// Sum and average this numeric field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_field: Option<String>,
    /// Group by period of this date or date-time field (or `valid_from`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_field: Option<String>,
    /// `day`, `week` (ISO), `month` or `year`, in Beijing time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// Inputs of process `change`: what changed in a layer between two dates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeInputs {
    pub collection: String,
    pub from: String,
    pub to: String,
    /// Summarise per division of this polygon layer (as of `to`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divisions: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub division_name_field: Option<String>,
    /// The most changed fields listed per division (default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top: Option<u32>,
}

/// A GeoJSON feature of a result that is not a stored feature (a grid cell, a division's
/// statistics, a change).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoFeature {
    #[serde(rename = "type")]
    pub kind: super::FeatureType,
    pub id: String,
    pub geometry: Option<Json>,
    pub properties: serde_json::Map<String, Json>,
}

/// The output of `emerging-hotspot`, `statistics` and `change` (`application/geo+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeoCollection {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    #[serde(rename = "numberReturned")]
    pub number_returned: u64,
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub summary: BTreeMap<String, Json>,
    pub features: Vec<GeoFeature>,
}

/// Inputs of process `trajectory`: tracks from timed points (inspectors' GPS, vehicles).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrajectoryInputs {
    /// A point layer of fixes.
    pub collection: String,
    /// The fix time: a date-time field (or `valid_from`).
    pub time_field: String,
    /// One track per value of this field (an inspector, a vehicle); absent: one track.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track_field: Option<String>,
    /// A new segment after a gap longer than this many seconds (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_gap: Option<f64>,
    /// … or a jump longer than this many metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_jump: Option<f64>,
    /// A stop stays within this diameter, metres (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_diameter: Option<f64>,
    /// … for at least this many seconds (default 180).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_duration: Option<f64>,
    /// Douglas–Peucker tolerance of the drawn tracks, metres (absent: every fix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simplify: Option<f64>,
    /// Whether the tracks covered an assigned grid: the polygons of this layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cells: Option<String>,
    /// A cell counts as covered when a track passes within this many metres (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cover_distance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// Inputs of process `overlay`: buffer and overlay with areas on the ellipsoid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverlayInputs {
    /// `buffer`, `intersection`, `union`, `difference`, `clip` or `dissolve`.
    pub operation: String,
    pub collection: String,
    /// The second layer of `intersection`, `difference` and `clip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay: Option<String>,
    /// Buffer distance, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<f64>,
    /// `dissolve` groups by this field (absent: all into one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dissolve_field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// Inputs of process `kernel-density`: a heat map published as a raster tile set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelDensityInputs {
    pub collection: String,
    /// Search radius, metres; absent: ArcGIS's spatial variant of Silverman's rule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<f64>,
    /// Weight each feature by this numeric field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight_field: Option<String>,
    /// The raster set to add the surface to (default `density-<collection>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_zoom: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_zoom: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub as_of: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// The output of `kernel-density`: where the rendered surface is served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DensityResult {
    /// The raster set and the date of this surface's slice in it.
    pub set: String,
    pub date: String,
    pub bandwidth_m: f64,
    /// `given` or `silverman`.
    pub bandwidth_rule: String,
    /// The surface's peak, features (or weight) per km².
    pub peak_per_km2: f64,
    pub points: u64,
    pub tiles: u64,
    pub minzoom: u8,
    pub maxzoom: u8,
    /// `[west, south, east, north]`.
    pub bounds: [f64; 4],
    /// TileJSON and XYZ paths of the set.
    pub tilejson: String,
    pub xyz: String,
}

/// Inputs of process `replay` (模拟推演): a layer stepped through its history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayInputs {
    pub collection: String,
    /// The first state (RFC 3339, or Beijing time without an offset).
    pub from: String,
    /// The last state.
    pub to: String,
    /// The step, an ISO 8601 duration (`PT1H`, `P1D`, `P1M`); calendar units step in Beijing
    /// time.
    pub interval: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Json>,
}

/// One step of a replay: what changed since the previous state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayStep {
    /// The instant of this state (Beijing time).
    pub at: String,
    /// Features live (and matching the filter) at this instant.
    pub live: u64,
    /// Features that appear (created, or changed into the filter), as they are at `at`.
    pub added: Vec<Feature>,
    /// Features that changed and stay, as they are at `at`.
    pub changed: Vec<Feature>,
    /// Ids of features that are gone (deleted, or changed out of the filter).
    pub removed: Vec<String>,
}

/// The output of `replay`: the first state, then each step's changes — what a map animates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplayResult {
    pub collection: String,
    pub from: String,
    pub to: String,
    pub interval: String,
    pub initial: Vec<Feature>,
    pub steps: Vec<ReplayStep>,
}

/// A job's state (`statusCode` of OGC API – Processes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Accepted,
    Running,
    Successful,
    Failed,
    Dismissed,
}

impl JobStatus {
    /// Finished one way or another: nothing more will happen to it.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Successful | JobStatus::Failed | JobStatus::Dismissed)
    }
}

/// The `type` member of a status (only `"process"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StatusType {
    #[default]
    Process,
}

/// `statusInfo`: `GET /jobs/{id}`, the 201 answer of an asynchronous execution, an entry of
/// `GET /jobs`. Times are RFC 3339 in Beijing time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusInfo {
    #[serde(rename = "processID")]
    pub process_id: String,
    #[serde(rename = "type")]
    pub kind: StatusType,
    #[serde(rename = "jobID")]
    pub job_id: String,
    pub status: JobStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    pub updated: String,
    /// Percent done, 0–100.
    pub progress: u8,
    pub links: Vec<Link>,
}

/// `GET /jobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobList {
    pub jobs: Vec<StatusInfo>,
    pub links: Vec<Link>,
}

/// The output `result` of a process: the features it read with its columns added, ids
/// unchanged (`application/geo+json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultCollection {
    #[serde(rename = "type")]
    pub kind: FeatureCollectionType,
    #[serde(rename = "numberReturned")]
    pub number_returned: u64,
    #[serde(rename = "timeStamp")]
    pub time_stamp: String,
    /// What the process found overall (cluster counts, significant features, …).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub summary: BTreeMap<String, Json>,
    /// The layer the result was also stored as (`save_as`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_as: Option<String>,
    pub features: Vec<Feature>,
}

/// The results as a document (`"response": "document"`): each output by its id. `T` is the
/// process's output type ([`ResultCollection`] for the feature processes, [`ReplayResult`] for
/// `replay`, …).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsDocument<T> {
    pub result: T,
}

#[cfg(test)]
mod golden {
    use super::*;
    use crate::api::golden;

    #[test]
    fn hotspot_inputs_in_the_issue_words() {
        golden(
            HotspotInputs {
                collection: "manholes".into(),
                field: "reports".into(),
                weights: WeightsInput::Distance { distance: 500.0 },
                star: true,
                permutations: 0,
                seed: 0,
                fdr: false,
                alpha: None,
                as_of: None,
                filter: None,
                save_as: None,
            },
            r#"{"collection":"manholes","field":"reports","weights":{"type":"distance","distance":500.0},
                "star":true,"permutations":0,"seed":0,"fdr":false}"#,
        );
        let knn: HotspotInputs =
            serde_json::from_str(r#"{"collection":"m","field":"f","weights":{"type":"knn","k":8},"star":false}"#)
                .unwrap();
        assert_eq!((knn.weights, knn.star), (WeightsInput::Knn { k: 8 }, false));
        let d: DbscanInputs = serde_json::from_str(r#"{"collection":"m","eps":250,"min_samples":5}"#).unwrap();
        assert_eq!((d.eps, d.min_samples), (250.0, 5));
        assert!(serde_json::from_str::<DbscanInputs>(r#"{"collection":"m","eps":1,"min_samples":5,"x":1}"#).is_err());
    }

    #[test]
    fn status_info() {
        golden(
            StatusInfo {
                process_id: "hotspot".into(),
                kind: StatusType::Process,
                job_id: "6c1f".into(),
                status: JobStatus::Running,
                message: Some("读取要素".into()),
                created: "2026-12-07T10:00:00+08:00".into(),
                started: Some("2026-12-07T10:00:01+08:00".into()),
                finished: None,
                updated: "2026-12-07T10:00:02+08:00".into(),
                progress: 40,
                links: vec![],
            },
            r#"{"processID":"hotspot","type":"process","jobID":"6c1f","status":"running","message":"读取要素",
                "created":"2026-12-07T10:00:00+08:00","started":"2026-12-07T10:00:01+08:00",
                "updated":"2026-12-07T10:00:02+08:00","progress":40,"links":[]}"#,
        );
    }

    #[test]
    fn execute_request() {
        golden(
            Execute {
                inputs: serde_json::from_str(r#"{"collection":"m"}"#).unwrap(),
                outputs: None,
                response: Some(ResponseKind::Document),
                subscriber: None,
            },
            r#"{"inputs":{"collection":"m"},"response":"document"}"#,
        );
    }
}
