//! The processes this server offers and their descriptions (`GET /processes`,
//! `GET /processes/{id}`): inputs as JSON Schemas a client (the web map, the desktop app,
//! OWSLib) builds its form from. The schemas say the same as the input types of
//! `shikong_protocol::api::processes`, which are what the server actually parses.

use std::collections::BTreeMap;

use serde_json::{Value as Json, json};
use shikong_protocol::api::Link;
use shikong_protocol::api::processes::{
    InputDescription, JobControl, OutputDescription, ProcessDescription, ProcessSummary,
};

/// Every process id, in the order of the list.
pub(crate) const PROCESSES: [&str; 11] = [
    "hotspot",
    "local-moran",
    "emerging-hotspot",
    "dbscan",
    "hdbscan",
    "kernel-density",
    "statistics",
    "overlay",
    "trajectory",
    "change",
    "replay",
];

fn input(title: &str, description: &str, schema: Json, required: bool) -> InputDescription {
    InputDescription {
        title: title.into(),
        description: description.into(),
        schema,
        min_occurs: u32::from(required),
        max_occurs: 1,
    }
}

/// The inputs of a process that reads a layer and answers units of its own (no `save_as`).
fn read_inputs(out: &mut BTreeMap<String, InputDescription>) {
    layer_inputs(out);
    out.remove("save_as");
}

fn geo_output(description: &str) -> BTreeMap<String, OutputDescription> {
    let mut out = BTreeMap::new();
    out.insert(
        "result".into(),
        OutputDescription {
            title: "结果 (result)".into(),
            description: description.into(),
            schema: json!({"type": "object", "contentMediaType": "application/geo+json"}),
        },
    );
    out
}

/// The inputs every process that reads a layer takes.
fn layer_inputs(out: &mut BTreeMap<String, InputDescription>) {
    out.insert(
        "collection".into(),
        input(
            "图层 (collection)",
            "The layer analysed (a collection id of /collections).",
            json!({"type": "string"}),
            true,
        ),
    );
    out.insert(
        "as_of".into(),
        input(
            "数据时点 (as of)",
            "Read the layer as recorded at this instant (RFC 3339, or Beijing time without an offset); absent: now.",
            json!({"type": "string", "format": "date-time"}),
            false,
        ),
    );
    out.insert(
        "filter".into(),
        input(
            "筛选 (CQL2 filter)",
            "Only the features matching this CQL2 filter: text, or a CQL2 JSON object.",
            json!({"oneOf": [{"type": "string"}, {"type": "object"}]}),
            false,
        ),
    );
    out.insert(
        "save_as".into(),
        input(
            "保存为图层 (save as layer)",
            "Also store the result as this layer (created on the first run, a new version per feature on later runs). Office or admin accounts.",
            json!({"type": "string", "pattern": "^[a-z][a-z0-9_]{0,62}$"}),
            false,
        ),
    );
}

fn weights_schema() -> Json {
    json!({"oneOf": [
        {"type": "object", "required": ["type", "distance"], "additionalProperties": false,
         "properties": {"type": {"const": "distance"}, "distance": {"type": "number", "exclusiveMinimum": 0, "maximum": 500000, "description": "metres, geodesic on CGCS2000"}}},
        {"type": "object", "required": ["type", "k"], "additionalProperties": false,
         "properties": {"type": {"const": "knn"}, "k": {"type": "integer", "minimum": 1, "maximum": 1000}}},
        {"type": "object", "required": ["type"], "additionalProperties": false,
         "properties": {"type": {"const": "queen"}}}
    ]})
}

fn field_input(out: &mut BTreeMap<String, InputDescription>) {
    out.insert(
        "field".into(),
        input("分析字段 (field)", "A numeric field (integer or real) of the layer.", json!({"type": "string"}), true),
    );
    out.insert(
        "weights".into(),
        input(
            "空间权重 (spatial weights)",
            "Neighbours within a distance (metres), the k nearest, or polygons sharing a boundary point (queen).",
            weights_schema(),
            true,
        ),
    );
}

fn result_output(columns: &str) -> BTreeMap<String, OutputDescription> {
    let mut out = BTreeMap::new();
    out.insert(
        "result".into(),
        OutputDescription {
            title: "结果要素 (result features)".into(),
            description: format!("The input features, ids unchanged, with {columns} added to their properties."),
            schema: json!({"type": "object", "contentMediaType": "application/geo+json"}),
        },
    );
    out
}

/// The description of `id`, or `None` for an unknown id.
pub(crate) fn describe(id: &str, base: &str) -> Option<ProcessDescription> {
    let mut inputs = BTreeMap::new();
    let (title, description, keywords, outputs) = match id {
        "hotspot" => {
            layer_inputs(&mut inputs);
            field_input(&mut inputs);
            inputs.insert(
                "star".into(),
                input(
                    "Gi* (含自身)",
                    "Gi* (the feature in its own neighbourhood, default) or Gi.",
                    json!({"type": "boolean", "default": true}),
                    false,
                ),
            );
            inputs.insert(
                "permutations".into(),
                input(
                    "置换次数 (permutations)",
                    "Conditional permutations for a pseudo p-value (`gi_p_sim`); 0: none.",
                    json!({"type": "integer", "minimum": 0, "maximum": 99999, "default": 0}),
                    false,
                ),
            );
            inputs.insert(
                "seed".into(),
                input(
                    "随机种子 (seed)",
                    "Seed of the permutations.",
                    json!({"type": "integer", "minimum": 0, "default": 0}),
                    false,
                ),
            );
            inputs.insert(
                "fdr".into(),
                input("FDR 校正", "Benjamini–Hochberg false discovery rate at `alpha`: adds `gi_fdr`, and `gi_bin` counts only what it keeps.", json!({"type": "boolean", "default": false}), false),
            );
            inputs.insert(
                "alpha".into(),
                input(
                    "显著性水平 (alpha)",
                    "Of the FDR correction.",
                    json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.05}),
                    false,
                ),
            );
            (
                "热点分析 (Getis-Ord Gi*)",
                "Hot and cold spots of a numeric field: Getis-Ord Gi* or Gi with binary weights on geodesic distances; gi_z is the z-score, gi_p its two-sided p-value (normal approximation), gi_bin ArcGIS's confidence bin (±3 at 99%, ±2 at 95%, ±1 at 90%).",
                vec!["hot spot", "Getis-Ord", "热点"],
                result_output("`gi_z`, `gi_p`, `gi_bin` (and `gi_p_sim`, `gi_fdr` when asked)"),
            )
        }
        "local-moran" => {
            layer_inputs(&mut inputs);
            field_input(&mut inputs);
            inputs.insert(
                "permutations".into(),
                input(
                    "置换次数 (permutations)",
                    "Conditional permutations; with them `lisa_p` is the pseudo p-value.",
                    json!({"type": "integer", "minimum": 0, "maximum": 99999, "default": 0}),
                    false,
                ),
            );
            inputs.insert(
                "seed".into(),
                input(
                    "随机种子 (seed)",
                    "Seed of the permutations.",
                    json!({"type": "integer", "minimum": 0, "default": 0}),
                    false,
                ),
            );
            (
                "聚类与异常值分析 (local Moran's I)",
                "Local Moran's I (LISA) with row-standardised weights: lisa_cluster is HH/LL (clusters), HL/LH (outliers) or NS at p ≤ 0.05.",
                vec!["LISA", "Moran", "聚类", "异常值"],
                result_output("`lisa_i`, `lisa_z`, `lisa_p`, `lisa_cluster`"),
            )
        }
        "dbscan" => {
            layer_inputs(&mut inputs);
            inputs.insert(
                "eps".into(),
                input(
                    "邻域半径 (eps)",
                    "Neighbourhood radius in metres (geodesic on CGCS2000).",
                    json!({"type": "number", "exclusiveMinimum": 0, "maximum": 500000}),
                    true,
                ),
            );
            inputs.insert(
                "min_samples".into(),
                input(
                    "核心点最少邻居 (min_samples)",
                    "Features within eps, the point itself included, that make a core point.",
                    json!({"type": "integer", "minimum": 1, "maximum": 100000}),
                    true,
                ),
            );
            (
                "密度聚类 (DBSCAN)",
                "DBSCAN on geodesic distances; `cluster` numbers the clusters from 0, -1 is noise (labels equal scikit-learn's).",
                vec!["DBSCAN", "cluster", "聚类"],
                result_output("`cluster` (-1 for noise)"),
            )
        }
        "hdbscan" => {
            layer_inputs(&mut inputs);
            inputs.insert(
                "min_cluster_size".into(),
                input(
                    "最小簇大小 (min_cluster_size)",
                    "The fewest features a cluster may have.",
                    json!({"type": "integer", "minimum": 2}),
                    true,
                ),
            );
            inputs.insert(
                "min_samples".into(),
                input(
                    "核心距离邻居数 (min_samples)",
                    "Neighbours defining a feature's core distance (default: min_cluster_size).",
                    json!({"type": "integer", "minimum": 1}),
                    false,
                ),
            );
            inputs.insert(
                "cluster_selection_method".into(),
                input(
                    "簇选择方法",
                    "`eom` (excess of mass) or `leaf`.",
                    json!({"type": "string", "enum": ["eom", "leaf"], "default": "eom"}),
                    false,
                ),
            );
            inputs.insert(
                "allow_single_cluster".into(),
                input(
                    "允许单一簇",
                    "Whether all features may form one cluster.",
                    json!({"type": "boolean", "default": false}),
                    false,
                ),
            );
            (
                "层次密度聚类 (HDBSCAN)",
                "HDBSCAN on geodesic distances (mutual reachability, excess-of-mass or leaf selection, as the hdbscan package): `cluster` (-1 noise) and `cluster_p`, the strength of membership.",
                vec!["HDBSCAN", "cluster", "聚类"],
                result_output("`cluster` (-1 for noise) and `cluster_p`"),
            )
        }
        "emerging-hotspot" => {
            read_inputs(&mut inputs);
            inputs.insert(
                "time_field".into(),
                input(
                    "时间字段 (time field)",
                    "A date or date-time field of the layer, or `valid_from`.",
                    json!({"type": "string"}),
                    true,
                ),
            );
            inputs.insert(
                "value_field".into(),
                input(
                    "求和字段 (value field)",
                    "Sum this numeric field per bin; absent: count features.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "cell_size".into(),
                input(
                    "格网大小 (cell size)",
                    "Side of a bin, metres (an equal-area grid).",
                    json!({"type": "number", "exclusiveMinimum": 0}),
                    true,
                ),
            );
            inputs.insert(
                "interval".into(),
                input(
                    "时间步长 (time step)",
                    "A fixed ISO 8601 duration: PT6H, P1D, P7D.",
                    json!({"type": "string", "examples": ["P1D", "P7D"]}),
                    true,
                ),
            );
            inputs.insert(
                "neighbourhood".into(),
                input(
                    "邻域距离 (neighbourhood)",
                    "Bins whose centres are within this many metres are neighbours.",
                    json!({"type": "number", "exclusiveMinimum": 0}),
                    true,
                ),
            );
            inputs.insert(
                "neighbourhood_steps".into(),
                input(
                    "邻域时间步 (neighbourhood steps)",
                    "Earlier time steps in the neighbourhood.",
                    json!({"type": "integer", "minimum": 0, "default": 1}),
                    false,
                ),
            );
            inputs.insert(
                "origin".into(),
                input(
                    "起始时刻 (origin)",
                    "When a step starts (default: midnight, Beijing time, of the first day).",
                    json!({"type": "string", "format": "date-time"}),
                    false,
                ),
            );
            inputs.insert(
                "alpha".into(),
                input(
                    "显著性水平 (alpha)",
                    "Of the bins and trends.",
                    json!({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1, "default": 0.05}),
                    false,
                ),
            );
            inputs.insert(
                "fdr".into(),
                input(
                    "FDR 校正",
                    "Benjamini–Hochberg over all bins.",
                    json!({"type": "boolean", "default": false}),
                    false,
                ),
            );
            (
                "时空热点分析 (emerging hot spots)",
                "A space-time cube of equal-area bins and fixed time steps; Gi* per bin with space-time neighbours, the Mann–Kendall trend of each location's z-scores, and ArcGIS's categories (new, consecutive, intensifying, persistent, diminishing, sporadic, oscillating, historical hot or cold spots).",
                vec!["emerging hot spot", "space-time", "时空热点"],
                geo_output(
                    "Bins with data: `category`, `category_zh`, `trend_z`, `trend_p`, and per step `values`, `z`, `states` (1 hot, -1 cold, 0 not significant).",
                ),
            )
        }
        "statistics" => {
            read_inputs(&mut inputs);
            inputs.insert(
                "divisions".into(),
                input(
                    "区划图层 (divisions)",
                    "A polygon layer to count in; or give `cell_size`.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "division_name_field".into(),
                input(
                    "区划名称字段",
                    "Names the divisions (default: their entity code).",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "population_field".into(),
                input("人口字段 (population)", "For rates per 10,000 people.", json!({"type": "string"}), false),
            );
            inputs.insert(
                "cell_size".into(),
                input(
                    "格网大小 (cell size)",
                    "Square cells of this many metres instead of divisions.",
                    json!({"type": "number", "exclusiveMinimum": 0}),
                    false,
                ),
            );
            inputs.insert(
                "class_field".into(),
                input("分类字段 (class)", "Group by this field's values.", json!({"type": "string"}), false),
            );
            inputs.insert(
                "value_field".into(),
                input("数值字段 (value)", "Sum and average this numeric field.", json!({"type": "string"}), false),
            );
            inputs.insert(
                "time_field".into(),
                input(
                    "时间字段 (time field)",
                    "Group by period of this date or date-time field (or `valid_from`).",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "period".into(),
                input(
                    "统计周期 (period)",
                    "In Beijing time.",
                    json!({"type": "string", "enum": ["day", "week", "month", "year"]}),
                    false,
                ),
            );
            (
                "分区统计 (statistics by division or grid)",
                "Count, sum and mean by division (or grid cell) × class × period, with rates per km² of the ellipsoidal area and per 10,000 people.",
                vec!["statistics", "zonal", "分区统计"],
                geo_output(
                    "One feature per unit × class × period: `name`, `class`, `period`, `count`, `sum`, `mean`, `count_per_km2`, `count_per_10k_people`, …",
                ),
            )
        }
        "change" => {
            inputs.insert(
                "collection".into(),
                input("图层 (collection)", "The layer compared.", json!({"type": "string"}), true),
            );
            inputs.insert(
                "from".into(),
                input("前时点 (from)", "The earlier date.", json!({"type": "string", "format": "date-time"}), true),
            );
            inputs.insert(
                "to".into(),
                input("后时点 (to)", "The later date.", json!({"type": "string", "format": "date-time"}), true),
            );
            inputs.insert(
                "divisions".into(),
                input(
                    "区划图层 (divisions)",
                    "Summarise per division of this polygon layer.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "division_name_field".into(),
                input(
                    "区划名称字段",
                    "Names the divisions (default: their entity code).",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "top".into(),
                input(
                    "字段排行数 (top fields)",
                    "The most changed fields listed per division.",
                    json!({"type": "integer", "minimum": 0, "maximum": 100, "default": 5}),
                    false,
                ),
            );
            (
                "变化检测 (change detection)",
                "What was added, removed or changed in a layer between two dates, with the changed fields, and per division.",
                vec!["change detection", "多时相对比", "变化检测"],
                geo_output(
                    "The changed features (at `to`; removed ones at `from`): `change` (added/removed/changed), `change_zh`, `fields`, `division`; the summary has `by_division`.",
                ),
            )
        }
        "trajectory" => {
            read_inputs(&mut inputs);
            inputs.insert(
                "time_field".into(),
                input(
                    "时间字段 (time field)",
                    "The fix time: a date-time field, or `valid_from`.",
                    json!({"type": "string"}),
                    true,
                ),
            );
            inputs.insert(
                "track_field".into(),
                input(
                    "轨迹字段 (track field)",
                    "One track per value (an inspector, a vehicle); absent: one track.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "max_gap".into(),
                input(
                    "最大间隔 (max gap, s)",
                    "A new segment after a longer gap between fixes.",
                    json!({"type": "number", "exclusiveMinimum": 0, "default": 300}),
                    false,
                ),
            );
            inputs.insert(
                "max_jump".into(),
                input(
                    "最大跳跃 (max jump, m)",
                    "… or a longer jump.",
                    json!({"type": "number", "exclusiveMinimum": 0}),
                    false,
                ),
            );
            inputs.insert(
                "stop_diameter".into(),
                input(
                    "停留直径 (stop diameter, m)",
                    "A stop stays within this diameter (MovingPandas' rule).",
                    json!({"type": "number", "exclusiveMinimum": 0, "default": 30}),
                    false,
                ),
            );
            inputs.insert(
                "stop_duration".into(),
                input(
                    "最短停留 (min stop, s)",
                    "… for at least this long.",
                    json!({"type": "number", "exclusiveMinimum": 0, "default": 180}),
                    false,
                ),
            );
            inputs.insert(
                "simplify".into(),
                input(
                    "抽稀容差 (simplify, m)",
                    "Douglas–Peucker tolerance of the drawn tracks.",
                    json!({"type": "number", "exclusiveMinimum": 0}),
                    false,
                ),
            );
            inputs.insert(
                "cells".into(),
                input(
                    "责任网格 (assigned cells)",
                    "A polygon layer: which cells the tracks covered.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "cover_distance".into(),
                input(
                    "覆盖距离 (cover distance, m)",
                    "A cell counts as covered when a track passes within this distance.",
                    json!({"type": "number", "minimum": 0, "default": 0}),
                    false,
                ),
            );
            (
                "轨迹分析 (trajectories)",
                "Tracks from timed points: segments split at gaps, geodesic length, duration and speeds, stops (equal to MovingPandas' stop detector), generalised lines, and the coverage of an assigned grid.",
                vec!["trajectory", "stop detection", "轨迹", "巡查覆盖"],
                geo_output(
                    "Segments (`kind` segment: lines with length_m, duration_s, mean_speed, max_speed), stops (`kind` stop: points with start, end, duration_s) and cells (`kind` cell, `covered`); the summary has per-track coverage.",
                ),
            )
        }
        "overlay" => {
            read_inputs(&mut inputs);
            inputs.insert("operation".into(), input("操作 (operation)", "The overlay.", json!({"type": "string", "enum": ["buffer", "intersection", "union", "difference", "clip", "dissolve"]}), true));
            inputs.insert(
                "overlay".into(),
                input(
                    "叠加图层 (overlay layer)",
                    "The second layer of intersection, difference and clip.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert("distance".into(), input("缓冲距离 (distance, m)", "Of a buffer (geodesic for points; a transverse Mercator plane centred on each feature for lines and polygons).", json!({"type": "number"}), false));
            inputs.insert(
                "dissolve_field".into(),
                input(
                    "融合字段 (dissolve field)",
                    "Dissolve groups by this field (absent: into one).",
                    json!({"type": "string"}),
                    false,
                ),
            );
            (
                "缓冲与叠加 (buffer and overlay)",
                "Buffer, intersection, union, difference, clip and dissolve on CGCS2000 with every area on the ellipsoid (equal to PostGIS's ST_Area on geography).",
                vec!["buffer", "overlay", "缓冲", "叠加"],
                geo_output(
                    "The new shapes with `area_m2` (and `length_m` for clipped lines), and the ids of the features they came from.",
                ),
            )
        }
        "kernel-density" => {
            read_inputs(&mut inputs);
            inputs.insert(
                "bandwidth".into(),
                input(
                    "带宽 (bandwidth, m)",
                    "Search radius in metres; absent: ArcGIS's spatial variant of Silverman's rule.",
                    json!({"type": "number", "exclusiveMinimum": 0}),
                    false,
                ),
            );
            inputs.insert(
                "weight_field".into(),
                input(
                    "权重字段 (weight)",
                    "Weight each feature by this numeric field.",
                    json!({"type": "string"}),
                    false,
                ),
            );
            inputs.insert(
                "set".into(),
                input(
                    "栅格集 (raster set)",
                    "The raster tile set the surface is added to (default density-<collection>).",
                    json!({"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9_-]{0,63}$"}),
                    false,
                ),
            );
            inputs.insert(
                "min_zoom".into(),
                input(
                    "最小级别 (min zoom)",
                    "Web Mercator zoom.",
                    json!({"type": "integer", "minimum": 0, "maximum": 20, "default": 10}),
                    false,
                ),
            );
            inputs.insert(
                "max_zoom".into(),
                input(
                    "最大级别 (max zoom)",
                    "Web Mercator zoom (at most 4,096 tiles in all).",
                    json!({"type": "integer", "minimum": 0, "maximum": 20, "default": 15}),
                    false,
                ),
            );
            let mut outputs = BTreeMap::new();
            outputs.insert(
                "result".into(),
                OutputDescription {
                    title: "密度栅格 (density tiles)".into(),
                    description: "The raster set and slice date of the surface, its bandwidth, peak (per km²), zooms, bounds, and TileJSON and XYZ paths.".into(),
                    schema: json!({"type": "object", "required": ["set", "date", "xyz"], "contentMediaType": "application/json"}),
                },
            );
            (
                "核密度分析 (kernel density)",
                "A heat map with the quartic kernel (QGIS's Heatmap, ArcGIS's Kernel Density) on geodesic distances, published as a raster tile set (XYZ, OGC API – Tiles, WMTS); each run a dated slice. Office or admin accounts.",
                vec!["kernel density", "heat map", "核密度", "热力图"],
                outputs,
            )
        }
        "replay" => {
            inputs.insert(
                "collection".into(),
                input("图层 (collection)", "The layer replayed.", json!({"type": "string"}), true),
            );
            inputs.insert(
                "from".into(),
                input("开始时点 (from)", "The first state.", json!({"type": "string", "format": "date-time"}), true),
            );
            inputs.insert(
                "to".into(),
                input("结束时点 (to)", "The last state.", json!({"type": "string", "format": "date-time"}), true),
            );
            inputs.insert(
                "interval".into(),
                input(
                    "步长 (interval)",
                    "An ISO 8601 duration: PT1H, P1D, P1M (calendar units in Beijing time); at most 1,000 steps.",
                    json!({"type": "string", "examples": ["PT1H", "P1D", "P1M"]}),
                    true,
                ),
            );
            inputs.insert(
                "filter".into(),
                input(
                    "筛选 (CQL2 filter)",
                    "Applied to every state: features edited into it appear, out of it disappear.",
                    json!({"oneOf": [{"type": "string"}, {"type": "object"}]}),
                    false,
                ),
            );
            let mut outputs = BTreeMap::new();
            outputs.insert(
                "result".into(),
                OutputDescription {
                    title: "回放 (replay)".into(),
                    description: "The state at `from`, then per step the features added, changed (as they are then) and removed.".into(),
                    schema: json!({"type": "object", "required": ["initial", "steps"], "contentMediaType": "application/json"}),
                },
            );
            (
                "历史回放 (replay)",
                "Steps a layer through its history at a chosen interval: the first state, then each step's changes, for the map's animation (模拟推演).",
                vec!["replay", "history", "回放", "模拟推演"],
                outputs,
            )
        }
        _ => return None,
    };
    let links = vec![
        Link::new(format!("{base}/processes/{id}"), "self", "application/json", title),
        Link::new(
            format!("{base}/processes/{id}/execution"),
            "http://www.opengis.net/def/rel/ogc/1.0/execute",
            "application/json",
            "执行 (execute)",
        ),
    ];
    Some(ProcessDescription {
        summary: ProcessSummary {
            id: id.into(),
            title: title.into(),
            description: description.into(),
            version: "1.0.0".into(),
            keywords: keywords.into_iter().map(String::from).collect(),
            job_control_options: vec![JobControl::SyncExecute, JobControl::AsyncExecute, JobControl::Dismiss],
            output_transmission: vec!["value".into()],
            links,
        },
        inputs,
        outputs,
    })
}
