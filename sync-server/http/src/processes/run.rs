//! Running one process: read its layer (as of an instant, through a CQL2 filter, with the
//! caller's read permission checked where the data is read), hand the numbers to
//! `shikong-analysis`, and turn its answer into the result collection — the input features with
//! the process's columns added and their ids unchanged.
//!
//! Everything here is synchronous: it runs on a job worker thread or, for a synchronous
//! execution, on a blocking thread. [`Ctx::check`] is called between steps and while reading, so a
//! dismissed job or one past its deadline stops early and writes nothing.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};
use shikong_analysis::{self as analysis, LonLat, WeightsSpec};
use shikong_auth::Principal;
use shikong_model::{FieldType, Geometry, Value};
use shikong_protocol::api::processes::{
    DbscanInputs, GeoCollection, HdbscanInputs, HotspotInputs, LocalMoranInputs, ResultCollection, WeightsInput,
};
use shikong_protocol::api::{self, FeatureCollectionType};
use shikong_query::Filter;
use shikong_store::{Layer, Query, StoredFeature};

use crate::AppState;
use crate::access::{Action, Caller};
use crate::problem::{ApiError, ApiResult};

/// What a run needs besides its inputs.
pub(crate) struct Ctx<'a> {
    pub state: &'a AppState,
    /// Who runs it (read again from the accounts for a job, so a demotion since counts).
    pub principal: Option<Principal>,
    pub cancel: &'a AtomicBool,
    pub deadline: Instant,
    pub progress: &'a (dyn Fn(u8, &str) + Sync),
}

impl Ctx<'_> {
    /// Stops a dismissed run or one past its deadline.
    pub fn check(&self) -> ApiResult<()> {
        if self.cancel.load(Ordering::Relaxed) {
            return Err(dismissed());
        }
        if Instant::now() >= self.deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "timeout",
                "the process ran past its time limit; narrow the input with `filter` or run it as a job (`Prefer: respond-async`)",
            ));
        }
        Ok(())
    }

    /// Runs a library call with a control that stops it inside its loops when this run is
    /// dismissed or past its deadline (the library has neither a clock nor the flag); a stopped
    /// call answers what [`Ctx::check`] answers, other refusals are 422s.
    pub fn analyse<T>(&self, f: impl FnOnce(&analysis::Control<'_>) -> analysis::Result<T>) -> ApiResult<T> {
        let stop = || self.cancel.load(Ordering::Relaxed) || Instant::now() >= self.deadline;
        f(&analysis::Control::test(&stop)).map_err(|e| match e {
            analysis::AnalysisError::Cancelled => self.check().err().unwrap_or_else(dismissed),
            e => analysis_error(e),
        })
    }

    fn caller(&self) -> Caller {
        Caller { principal: self.principal.clone(), client: Default::default() }
    }
}

fn dismissed() -> ApiError {
    ApiError::new(StatusCode::CONFLICT, "dismissed", "the job was dismissed")
}

/// What a process answers (`result`), serialised as it is sent.
#[derive(serde::Serialize)]
#[serde(untagged)]
pub(crate) enum Output {
    /// The input features with the process's columns (`application/geo+json`).
    Features(ResultCollection),
    /// GeoJSON of units that are not stored features: cells, divisions, changes
    /// (`application/geo+json`).
    Geo(GeoCollection),
    /// Any other JSON document (`application/json`): a replay.
    Document(Json),
}

impl Output {
    pub fn media_type(&self) -> &'static str {
        match self {
            Output::Features(_) | Output::Geo(_) => "application/geo+json",
            Output::Document(_) => "application/json",
        }
    }
}

/// A process's result, and what `save_as` needs to store it as a layer.
pub(crate) struct Outcome {
    pub output: Output,
    pub saving: Option<Saving>,
}

/// The features and added columns of a result to store as the layer `name`.
pub(crate) struct Saving {
    pub name: String,
    pub layer: Layer,
    pub features: Vec<StoredFeature>,
    pub added: Vec<Added>,
}

/// A column a process adds to every feature.
pub(crate) struct Added {
    pub name: &'static str,
    pub title: &'static str,
    pub ty: FieldType,
    pub values: Vec<Value>,
}

pub(crate) fn inputs<T: DeserializeOwned>(process: &str, inputs: Map<String, Json>) -> ApiResult<T> {
    serde_json::from_value(Json::Object(inputs)).map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-input", format!("inputs of `{process}`: {e}"))
            .with("process", process)
    })
}

/// Units × permutations one run may draw: a permutation test cannot be interrupted once it
/// started (the library call runs to its end), so its length is bounded instead (999
/// permutations of 100,000 features).
pub(crate) const MAX_PERMUTATION_DRAWS: u64 = 100_000_000;

fn check_permutations(permutations: u32, units: usize) -> ApiResult<()> {
    if permutations as usize > analysis::limits::MAX_PERMUTATIONS {
        return Err(bad_input("permutations", format!("at most {}", analysis::limits::MAX_PERMUTATIONS)));
    }
    if u64::from(permutations) * units as u64 > MAX_PERMUTATION_DRAWS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-much-work",
            format!(
                "{permutations} permutations of {units} features is more than {MAX_PERMUTATION_DRAWS} draws; use fewer permutations or narrow the features with `filter`"
            ),
        )
        .with("input", "permutations")
        .with("max", MAX_PERMUTATION_DRAWS));
    }
    Ok(())
}

pub(crate) fn bad_input(input: &str, detail: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid-input", format!("input `{input}`: {detail}")).with("input", input)
}

pub(crate) fn analysis_error(e: analysis::AnalysisError) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "analysis-refused", e.to_string())
}

/// Runs `process` on `inputs` (already known to be a process id of the catalog).
pub(crate) fn execute(ctx: &Ctx<'_>, process: &str, raw: Map<String, Json>) -> ApiResult<Outcome> {
    match process {
        "hotspot" => hotspot(ctx, inputs(process, raw)?),
        "local-moran" => local_moran(ctx, inputs(process, raw)?),
        "dbscan" => dbscan(ctx, inputs(process, raw)?),
        "hdbscan" => hdbscan(ctx, inputs(process, raw)?),
        "emerging-hotspot" => super::spacetime::emerging(ctx, inputs(process, raw)?),
        "statistics" => super::spacetime::statistics(ctx, inputs(process, raw)?),
        "change" => super::history::change(ctx, inputs(process, raw)?),
        "trajectory" => super::shapes::trajectory(ctx, inputs(process, raw)?),
        "overlay" => super::shapes::overlay(ctx, inputs(process, raw)?),
        "kernel-density" => super::density::kernel_density(ctx, inputs(process, raw)?),
        "replay" => super::history::replay(ctx, inputs(process, raw)?),
        other => Err(ApiError::not_found(format!("no process `{other}`"))),
    }
}

/// The features of a layer as the inputs select them.
pub(crate) struct Read {
    pub layer: Layer,
    pub features: Vec<StoredFeature>,
}

/// Reads `collection` as of `as_of` through `filter`, bounded by the server's feature limit.
pub(crate) fn read_layer(
    ctx: &Ctx<'_>,
    collection: &str,
    as_of: Option<&str>,
    filter: Option<&Json>,
) -> ApiResult<Read> {
    ctx.check()?;
    (ctx.progress)(5, "读取图层 (reading the layer)");
    let store = ctx.state.store();
    let layer = layer_for_process(ctx, collection)?;
    let as_of = as_of.map(|t| shikong_model::parse_instant(t).map_err(|e| bad_input("as_of", e))).transpose()?;
    let filter = parse_filter(filter, &layer)?;
    let max = ctx.state.processes.limits.max_features;
    let mut features = Vec::new();
    let mut stopped: Option<ApiError> = None;
    let q = Query { filter: filter.as_ref(), as_of, limit: Some(max + 1), ..Query::layer(layer.name()) };
    store.query(&q, &mut |f| {
        features.push(f);
        if features.len() % 4096 == 0
            && let Err(e) = ctx.check()
        {
            stopped = Some(e);
            return false;
        }
        true
    })?;
    if let Some(e) = stopped {
        return Err(e);
    }
    if features.len() > max {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-many-features",
            format!("`{collection}` has more than {max} features matching; narrow them with `filter`"),
        )
        .with("input", "collection")
        .with("max", max as u64));
    }
    if features.is_empty() {
        return Err(bad_input("collection", format!("no features of `{collection}` match")));
    }
    Ok(Read { layer, features })
}

/// The layer a process reads, when the caller may read it (checked where the data is read).
pub(crate) fn layer_for_process(ctx: &Ctx<'_>, collection: &str) -> ApiResult<Layer> {
    let layer = ctx.state.store().layer(collection).map_err(|e| match e {
        shikong_store::StoreError::NoSuchLayer(_) => bad_input("collection", format!("no layer `{collection}`")),
        e => e.into(),
    })?;
    ctx.caller().allowed(ctx.state, &layer, Action::Read)?;
    Ok(layer)
}

/// The `filter` input: CQL2 text, or a CQL2 JSON object, resolved against the layer.
pub(crate) fn parse_filter(filter: Option<&Json>, layer: &Layer) -> ApiResult<Option<Filter>> {
    match filter {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(text)) => {
            Ok(Some(Filter::parse_text(text, layer.schema()).map_err(|e| bad_input("filter", e))?))
        }
        Some(j @ Json::Object(_)) => {
            Ok(Some(Filter::parse_json(&j.to_string(), layer.schema()).map_err(|e| bad_input("filter", e))?))
        }
        Some(_) => Err(bad_input("filter", "a CQL2 text string or a CQL2 JSON object")),
    }
}

/// The point a feature stands at in a point analysis: the point itself, the area centroid of a
/// polygon's outer rings (planar in lon/lat: at city scale the difference from the ellipsoidal
/// centroid is far below GPS accuracy), the vertex mean of a line.
pub(crate) fn representative(g: &Geometry) -> Option<LonLat> {
    fn ring_centroid(r: &[shikong_model::geometry::Coord]) -> Option<(f64, [f64; 2])> {
        let (mut a, mut cx, mut cy) = (0.0, 0.0, 0.0);
        for w in r.windows(2) {
            let cross = w[0].x * w[1].y - w[1].x * w[0].y;
            a += cross;
            cx += (w[0].x + w[1].x) * cross;
            cy += (w[0].y + w[1].y) * cross;
        }
        (a.abs() > 0.0).then(|| (a / 2.0, [cx / (3.0 * a), cy / (3.0 * a)]))
    }
    fn mean(cs: &[shikong_model::geometry::Coord]) -> Option<LonLat> {
        (!cs.is_empty()).then(|| {
            let n = cs.len() as f64;
            [cs.iter().map(|c| c.x).sum::<f64>() / n, cs.iter().map(|c| c.y).sum::<f64>() / n]
        })
    }
    match g {
        Geometry::Point(c) => Some([c.x, c.y]),
        Geometry::MultiPoint(cs) | Geometry::LineString(cs) => mean(cs),
        Geometry::MultiLineString(ls) => mean(&ls.concat()),
        Geometry::Polygon(rings) => ring_centroid(&rings[0]).map(|(_, c)| c).or_else(|| mean(&rings[0])),
        Geometry::MultiPolygon(ps) => {
            let parts: Vec<(f64, [f64; 2])> = ps.iter().filter_map(|p| ring_centroid(&p[0])).collect();
            let total: f64 = parts.iter().map(|(a, _)| a.abs()).sum();
            if total > 0.0 {
                let x = parts.iter().map(|(a, c)| a.abs() * c[0]).sum::<f64>() / total;
                let y = parts.iter().map(|(a, c)| a.abs() * c[1]).sum::<f64>() / total;
                Some([x, y])
            } else {
                mean(&ps.concat().concat())
            }
        }
    }
}

/// The features that take part (a point and, when `field` is given, a numeric value) and, per
/// input feature, its index among them.
struct Units {
    points: Vec<LonLat>,
    values: Vec<f64>,
    /// `slot[i]`: the unit of input feature `i`, or `None` (no geometry, or a null value).
    slot: Vec<Option<usize>>,
}

fn units(read: &Read, field: Option<&str>) -> ApiResult<Units> {
    if let Some(field) = field {
        match read.layer.schema().field(field) {
            None => return Err(bad_input("field", format!("`{}` has no field `{field}`", read.layer.name()))),
            Some(def) if !matches!(def.ty, FieldType::Integer | FieldType::Real) => {
                return Err(bad_input(
                    "field",
                    format!("`{field}` is {}, not a number (integer or real)", def.ty.name()),
                ));
            }
            Some(_) => {}
        }
    }
    let mut u = Units { points: Vec::new(), values: Vec::new(), slot: Vec::with_capacity(read.features.len()) };
    for f in &read.features {
        let p = f.feature.geometry.as_ref().and_then(representative);
        let v = match field {
            None => Some(0.0),
            Some(name) => match f.feature.properties.get(name) {
                Some(Value::Integer(i)) => Some(*i as f64),
                Some(Value::Real(r)) if r.is_finite() => Some(*r),
                _ => None,
            },
        };
        match (p, v) {
            (Some(p), Some(v)) => {
                u.slot.push(Some(u.points.len()));
                u.points.push(p);
                u.values.push(v);
            }
            _ => u.slot.push(None),
        }
    }
    if u.points.len() < 3 {
        return Err(bad_input(
            "collection",
            format!("{} features have a geometry and a value; at least 3 are needed", u.points.len()),
        ));
    }
    Ok(u)
}

fn weights_of(read: &Read, u: &Units, w: &WeightsInput) -> ApiResult<analysis::Weights> {
    match *w {
        WeightsInput::Distance { distance } => {
            analysis::Weights::distance_band(&u.points, distance).map_err(analysis_error)
        }
        WeightsInput::Knn { k } => analysis::Weights::knn(&u.points, k as usize).map_err(analysis_error),
        WeightsInput::Queen => {
            let mut polys = Vec::with_capacity(u.points.len());
            for (f, slot) in read.features.iter().zip(&u.slot) {
                if slot.is_none() {
                    continue;
                }
                let rings: Vec<Vec<LonLat>> = match &f.feature.geometry {
                    Some(Geometry::Polygon(rings)) => {
                        rings.iter().map(|r| r.iter().map(|c| [c.x, c.y]).collect()).collect()
                    }
                    Some(Geometry::MultiPolygon(ps)) => {
                        ps.iter().flatten().map(|r| r.iter().map(|c| [c.x, c.y]).collect()).collect()
                    }
                    _ => {
                        return Err(bad_input(
                            "weights",
                            format!("queen contiguity needs polygons; feature `{}` is not one", f.feature.id),
                        ));
                    }
                };
                polys.push(rings);
            }
            analysis::Weights::queen(&polys).map_err(analysis_error)
        }
    }
}

fn spec_of(w: &WeightsInput) -> Option<WeightsSpec> {
    match *w {
        WeightsInput::Distance { distance } => Some(WeightsSpec::DistanceBand { metres: distance }),
        WeightsInput::Knn { k } => Some(WeightsSpec::Knn { k: k as usize }),
        WeightsInput::Queen => None,
    }
}

fn real(v: Option<f64>) -> Value {
    v.filter(|x| x.is_finite()).map_or(Value::Null, Value::Real)
}

/// Spreads per-unit values back over the input features (`Null` where a feature took no part).
fn spread<T: Copy>(slot: &[Option<usize>], per_unit: &[T], f: impl Fn(T) -> Value) -> Vec<Value> {
    slot.iter().map(|s| s.map_or(Value::Null, |i| f(per_unit[i]))).collect()
}

/// ArcGIS's confidence bins: ±3 at 99%, ±2 at 95%, ±1 at 90%, 0 not significant; `keep` false
/// (dropped by the FDR) is 0.
fn confidence_bin(z: Option<f64>, p: Option<f64>, keep: bool) -> i64 {
    match (z, p) {
        (Some(z), Some(p)) if keep => {
            let level = if p <= 0.01 {
                3
            } else if p <= 0.05 {
                2
            } else if p <= 0.10 {
                1
            } else {
                0
            };
            if z > 0.0 { level } else { -level }
        }
        _ => 0,
    }
}

fn hotspot(ctx: &Ctx<'_>, i: HotspotInputs) -> ApiResult<Outcome> {
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let u = units(&read, Some(&i.field))?;
    check_permutations(i.permutations, u.points.len())?;
    let alpha = i.alpha.unwrap_or(0.05);
    if !(alpha > 0.0 && alpha < 1.0) {
        return Err(bad_input("alpha", "a probability between 0 and 1 (exclusive)"));
    }
    ctx.check()?;
    (ctx.progress)(40, "计算 Gi* (computing Gi*)");
    let results = match (spec_of(&i.weights), i.permutations) {
        (Some(spec), 0) => analysis::hotspot(&u.points, &u.values, spec, i.star).map_err(analysis_error)?,
        _ => {
            let w = weights_of(&read, &u, &i.weights)?;
            ctx.check()?;
            let opts = analysis::GiOptions {
                star: i.star,
                permutations: i.permutations as usize,
                seed: i.seed,
                ..Default::default()
            };
            ctx.analyse(|ctl| analysis::getis::getis_ord_with(&u.values, &w, &opts, ctl))?
        }
    };
    ctx.check()?;
    (ctx.progress)(80, "整理结果 (writing the result)");
    let p: Vec<Option<f64>> = results.iter().map(|r| r.p_two_sided).collect();
    let keep: Vec<bool> = if i.fdr {
        let known: Vec<f64> = p.iter().map(|p| p.unwrap_or(1.0)).collect();
        let cut = analysis::fdr_cutoff(&known, alpha).map_err(analysis_error)?;
        known.iter().map(|p| *p <= cut).collect()
    } else {
        vec![true; p.len()]
    };
    let bins: Vec<i64> = results.iter().zip(&keep).map(|(r, k)| confidence_bin(r.z, r.p_two_sided, *k)).collect();
    let mut added = vec![
        Added {
            name: "gi_z",
            title: "Gi* z 得分",
            ty: FieldType::Real,
            values: spread(&u.slot, &results, |r| real(r.z)),
        },
        Added {
            name: "gi_p",
            title: "Gi* p 值（双侧）",
            ty: FieldType::Real,
            values: spread(&u.slot, &results, |r| real(r.p_two_sided)),
        },
        Added {
            name: "gi_bin",
            title: "热点置信区间",
            ty: FieldType::Integer,
            values: spread(&u.slot, &bins, Value::Integer),
        },
    ];
    if i.permutations > 0 {
        added.push(Added {
            name: "gi_p_sim",
            title: "Gi* 伪 p 值（置换检验）",
            ty: FieldType::Real,
            values: spread(&u.slot, &results, |r| real(r.p_sim)),
        });
    }
    if i.fdr {
        added.push(Added {
            name: "gi_fdr",
            title: "FDR 校正后显著",
            ty: FieldType::Bool,
            values: spread(&u.slot, &keep, Value::Bool),
        });
    }
    let mut summary = BTreeMap::new();
    summary.insert("units".into(), Json::from(u.points.len()));
    summary.insert("skipped".into(), Json::from(read.features.len() - u.points.len()));
    summary.insert("hot".into(), Json::from(bins.iter().filter(|b| **b > 0).count()));
    summary.insert("cold".into(), Json::from(bins.iter().filter(|b| **b < 0).count()));
    summary.insert("gi_p".into(), Json::from("two-sided, normal approximation"));
    Ok(finish(read, added, summary, i.save_as))
}

fn local_moran(ctx: &Ctx<'_>, i: LocalMoranInputs) -> ApiResult<Outcome> {
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let u = units(&read, Some(&i.field))?;
    check_permutations(i.permutations, u.points.len())?;
    ctx.check()?;
    (ctx.progress)(30, "构建空间权重 (building the weights)");
    let w = weights_of(&read, &u, &i.weights)?;
    ctx.check()?;
    (ctx.progress)(50, "计算局部 Moran's I (computing local Moran's I)");
    let opts = analysis::MoranOptions { permutations: i.permutations as usize, seed: i.seed, ..Default::default() };
    let results = ctx.analyse(|ctl| analysis::moran::local_moran_with(&u.values, &w, &opts, ctl))?;
    ctx.check()?;
    let p = |r: &analysis::LocalMoranResult| if i.permutations > 0 { r.p_sim } else { r.p_norm.map(|p| 2.0 * p) };
    let quadrant = |q: analysis::Quadrant| match q {
        analysis::Quadrant::HighHigh => "HH",
        analysis::Quadrant::LowHigh => "LH",
        analysis::Quadrant::LowLow => "LL",
        analysis::Quadrant::HighLow => "HL",
    };
    let ps: Vec<Option<f64>> = results.iter().map(p).collect();
    let cluster: Vec<&'static str> =
        results.iter().map(|r| if p(r).is_some_and(|p| p <= 0.05) { quadrant(r.quadrant) } else { "NS" }).collect();
    let added = vec![
        Added {
            name: "lisa_i",
            title: "局部 Moran's I",
            ty: FieldType::Real,
            values: spread(&u.slot, &results, |r| real(Some(r.i))),
        },
        Added {
            name: "lisa_z",
            title: "局部 Moran's I z 得分",
            ty: FieldType::Real,
            values: spread(&u.slot, &results, |r| real(r.z)),
        },
        Added {
            name: "lisa_p", title: "局部 Moran's I p 值", ty: FieldType::Real, values: spread(&u.slot, &ps, real)
        },
        Added {
            name: "lisa_cluster",
            title: "聚类/异常类型",
            ty: FieldType::Text,
            values: spread(&u.slot, &cluster, |c| Value::Text(c.to_owned())),
        },
    ];
    let mut summary = BTreeMap::new();
    for class in ["HH", "LL", "HL", "LH", "NS"] {
        summary.insert(class.into(), Json::from(cluster.iter().filter(|c| **c == class).count()));
    }
    summary.insert(
        "lisa_p".into(),
        Json::from(if i.permutations > 0 {
            "pseudo p of conditional permutations"
        } else {
            "two-sided, normal approximation"
        }),
    );
    Ok(finish(read, added, summary, i.save_as))
}

fn dbscan(ctx: &Ctx<'_>, i: DbscanInputs) -> ApiResult<Outcome> {
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let u = units(&read, None)?;
    ctx.check()?;
    (ctx.progress)(40, "DBSCAN 聚类 (clustering)");
    let labels = analysis::dbscan(&u.points, i.eps, i.min_samples as usize).map_err(analysis_error)?;
    ctx.check()?;
    let clusters = labels.iter().copied().max().map_or(0, |m| (m + 1).max(0));
    let noise = labels.iter().filter(|l| **l == analysis::NOISE).count();
    let added = vec![Added {
        name: "cluster",
        title: "聚类编号（-1 为噪声）",
        ty: FieldType::Integer,
        values: spread(&u.slot, &labels, |l| Value::Integer(l.into())),
    }];
    let mut summary = BTreeMap::new();
    summary.insert("clusters".into(), Json::from(clusters));
    summary.insert("noise".into(), Json::from(noise));
    Ok(finish(read, added, summary, i.save_as))
}

fn hdbscan(ctx: &Ctx<'_>, i: HdbscanInputs) -> ApiResult<Outcome> {
    let selection = match i.cluster_selection_method.as_deref() {
        None | Some("eom") => analysis::ClusterSelection::Eom,
        Some("leaf") => analysis::ClusterSelection::Leaf,
        Some(other) => return Err(bad_input("cluster_selection_method", format!("`{other}` is not `eom` or `leaf`"))),
    };
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let u = units(&read, None)?;
    ctx.check()?;
    (ctx.progress)(40, "HDBSCAN 聚类 (clustering)");
    let opts = analysis::HdbscanOptions {
        min_cluster_size: i.min_cluster_size as usize,
        min_samples: i.min_samples.map(|m| m as usize),
        selection,
        allow_single_cluster: i.allow_single_cluster,
    };
    let r = ctx.analyse(|ctl| analysis::hdbscan::hdbscan_with(&u.points, &opts, ctl))?;
    ctx.check()?;
    let clusters = r.labels.iter().copied().max().map_or(0, |m| (m + 1).max(0));
    let noise = r.labels.iter().filter(|l| **l == analysis::NOISE).count();
    let added = vec![
        Added {
            name: "cluster",
            title: "聚类编号（-1 为噪声）",
            ty: FieldType::Integer,
            values: spread(&u.slot, &r.labels, |l| Value::Integer(l.into())),
        },
        Added {
            name: "cluster_p",
            title: "归属强度",
            ty: FieldType::Real,
            values: spread(&u.slot, &r.probabilities, |p| real(Some(p))),
        },
    ];
    let mut summary = BTreeMap::new();
    summary.insert("clusters".into(), Json::from(clusters));
    summary.insert("noise".into(), Json::from(noise));
    Ok(finish(read, added, summary, i.save_as))
}

/// The result collection: each input feature as the items endpoint shows it, with the added
/// columns (which replace same-named fields: a process run again on its own saved result).
fn finish(read: Read, added: Vec<Added>, summary: BTreeMap<String, Json>, save_as: Option<String>) -> Outcome {
    let features = read
        .features
        .iter()
        .enumerate()
        .map(|(n, f)| {
            let mut doc: api::Feature = shikong_ingest::json::feature_doc(&read.layer, f);
            for a in &added {
                doc.properties.fields.insert(a.name.to_owned(), a.values[n].to_json());
            }
            doc
        })
        .collect::<Vec<_>>();
    let collection = ResultCollection {
        kind: FeatureCollectionType::FeatureCollection,
        number_returned: features.len() as u64,
        time_stamp: crate::processes::jobs::now_text(),
        summary,
        saved_as: None,
        features,
    };
    let saving = save_as.map(|name| Saving { name, layer: read.layer, features: read.features, added });
    Outcome { output: Output::Features(collection), saving }
}
