//! The processes that make new shapes: `trajectory` (tracks from timed points: segments split at
//! gaps, stops, speeds, lengths, generalised lines, and whether the tracks covered an assigned
//! grid) and `overlay` (buffer, intersection, union, difference, clip and dissolve with areas on
//! the CGCS2000 ellipsoid). Both answer GeoJSON of the new shapes with the ids of the features
//! they came from.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value as Json, json};
use shikong_analysis::overlay::{self, Areal, BufferOptions};
use shikong_analysis::trajectory::coverage::{self, Cells};
use shikong_analysis::trajectory::{self, Fix, GapRule, Track, generalise, stops};
use shikong_model::{Geometry, Value, geojson};
use shikong_protocol::api::processes::{GeoCollection, GeoFeature, OverlayInputs, TrajectoryInputs};
use shikong_protocol::api::{FeatureCollectionType, FeatureType};
use shikong_store::StoredFeature;

use super::run::{Ctx, Outcome, Output, analysis_error, bad_input, read_layer};
use super::spacetime::time_reader;
use crate::problem::ApiResult;

fn collection(features: Vec<GeoFeature>, summary: BTreeMap<String, Json>) -> Outcome {
    let c = GeoCollection {
        kind: FeatureCollectionType::FeatureCollection,
        number_returned: features.len() as u64,
        time_stamp: super::jobs::now_text(),
        summary,
        features,
    };
    Outcome { output: Output::Geo(c), saving: None }
}

fn feature(id: String, geometry: Option<Json>, properties: Map<String, Json>) -> GeoFeature {
    GeoFeature { kind: FeatureType::Feature, id, geometry, properties }
}

fn instant(t: f64) -> Json {
    jiff::Timestamp::from_second(t.floor() as i64).map(shikong_model::time::beijing).map_or(Json::Null, Json::from)
}

fn text_of(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Text(t)) => t.clone(),
        Some(v) => v.to_json().to_string(),
    }
}

pub(crate) fn trajectory(ctx: &Ctx<'_>, i: TrajectoryInputs) -> ApiResult<Outcome> {
    let rule = GapRule { max_gap_s: i.max_gap.unwrap_or(300.0), max_jump_m: i.max_jump };
    let (diameter, duration) = (i.stop_diameter.unwrap_or(30.0), i.stop_duration.unwrap_or(180.0));
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let time_of = time_reader(&read.layer, "time_field", &i.time_field)?;
    if let Some(f) = &i.track_field
        && read.layer.schema().field(f).is_none()
    {
        return Err(bad_input("track_field", format!("`{}` has no field `{f}`", read.layer.name())));
    }
    // Fixes per track, in the order tracks first appear.
    let mut tracks: Vec<(String, Vec<Fix>)> = Vec::new();
    let mut slot: HashMap<String, usize> = HashMap::new();
    let mut skipped = 0usize;
    for f in &read.features {
        let (Some(Geometry::Point(c)), Some(t)) = (&f.feature.geometry, time_of(f)) else {
            skipped += 1;
            continue;
        };
        let key = i.track_field.as_ref().map(|n| text_of(f.feature.properties.get(n))).unwrap_or_default();
        let n = *slot.entry(key.clone()).or_insert_with(|| {
            tracks.push((key, Vec::new()));
            tracks.len() - 1
        });
        tracks[n].1.push(Fix::new(c.x, c.y, t as f64));
    }
    if tracks.is_empty() {
        return Err(bad_input("collection", "no point feature has a time"));
    }
    let cells = match &i.cells {
        None => None,
        Some(layer) => {
            let r = read_layer(ctx, layer, i.as_of.as_deref(), None).map_err(|e| e.with("input", "cells"))?;
            let mut rings = Vec::new();
            let mut shapes = Vec::new();
            for f in &r.features {
                let ring = match &f.feature.geometry {
                    Some(Geometry::Polygon(rings)) => rings[0].iter().map(|c| [c.x, c.y]).collect::<Vec<_>>(),
                    Some(Geometry::MultiPolygon(ps)) => ps[0][0].iter().map(|c| [c.x, c.y]).collect(),
                    _ => continue,
                };
                rings.push(ring);
                shapes.push(f);
            }
            if rings.is_empty() {
                return Err(bad_input("cells", format!("`{layer}` has no polygons")));
            }
            Some((Cells::Polygons(rings), shapes.into_iter().cloned().collect::<Vec<StoredFeature>>()))
        }
    };
    let mut features = Vec::new();
    let mut covered_by_any: Option<Vec<bool>> = None;
    let (mut segments_total, mut stops_total, mut length_total) = (0usize, 0usize, 0.0f64);
    let mut per_track = Vec::new();
    for (n, (key, fixes)) in tracks.into_iter().enumerate() {
        ctx.check()?;
        (ctx.progress)((10 + 80 * n / slot.len().max(1)) as u8, "轨迹分析 (analysing tracks)");
        let track = Track::new(fixes).map_err(analysis_error)?;
        let segments = trajectory::split(&track, &rule).map_err(analysis_error)?;
        let fixes = track.fixes();
        let mut track_length = 0.0;
        for (s, range) in segments.iter().enumerate() {
            let st = trajectory::segment_stats(&track, range.clone()).map_err(analysis_error)?;
            track_length += st.length_m;
            let kept: Vec<usize> = match i.simplify {
                Some(tol) if range.len() > 2 => {
                    generalise::douglas_peucker(&track, range.clone(), tol).map_err(analysis_error)?
                }
                _ => range.clone().collect(),
            };
            let geometry = if kept.len() >= 2 {
                json!({"type": "LineString", "coordinates": kept.iter().map(|&k| vec![fixes[k].lon, fixes[k].lat]).collect::<Vec<_>>()})
            } else {
                json!({"type": "Point", "coordinates": [fixes[range.start].lon, fixes[range.start].lat]})
            };
            let mut p = Map::new();
            p.insert("kind".into(), "segment".into());
            p.insert("track".into(), key.clone().into());
            p.insert("segment".into(), s.into());
            p.insert("start".into(), instant(fixes[range.start].t));
            p.insert("end".into(), instant(fixes[range.end - 1].t));
            p.insert("fixes".into(), range.len().into());
            p.insert("length_m".into(), st.length_m.into());
            p.insert("duration_s".into(), st.duration_s.into());
            p.insert("mean_speed".into(), json!(st.mean_speed));
            p.insert("max_speed".into(), json!(st.max_speed));
            features.push(feature(format!("t{n}-s{s}"), Some(geometry), p));
            for (k, stop) in
                stops::stops(&track, range.clone(), diameter, duration).map_err(analysis_error)?.iter().enumerate()
            {
                let mut p = Map::new();
                p.insert("kind".into(), "stop".into());
                p.insert("track".into(), key.clone().into());
                p.insert("segment".into(), s.into());
                p.insert("start".into(), instant(stop.start_t));
                p.insert("end".into(), instant(stop.end_t));
                p.insert("duration_s".into(), stop.duration_s.into());
                p.insert("fixes".into(), (stop.last - stop.first + 1).into());
                let at = json!({"type": "Point", "coordinates": [stop.lon, stop.lat]});
                features.push(feature(format!("t{n}-s{s}-stop{k}"), Some(at), p));
                stops_total += 1;
            }
        }
        segments_total += segments.len();
        length_total += track_length;
        let mut row = json!({"track": key, "fixes": fixes.len(), "dropped_duplicates": track.dropped_duplicates(),
            "segments": segments.len(), "length_m": track_length});
        if let Some((cells, _)) = &cells {
            let c = coverage::coverage(cells, &track, &segments, i.cover_distance.unwrap_or(0.0))
                .map_err(analysis_error)?;
            row["coverage"] = json!(c.fraction);
            let any = covered_by_any.get_or_insert_with(|| vec![false; c.covered.len()]);
            for (a, b) in any.iter_mut().zip(&c.covered) {
                *a |= *b;
            }
        }
        per_track.push(row);
    }
    if let (Some((_, shapes)), Some(any)) = (&cells, &covered_by_any) {
        for (f, covered) in shapes.iter().zip(any) {
            let mut p = Map::new();
            p.insert("kind".into(), "cell".into());
            p.insert("cell".into(), f.feature.code.clone().into());
            p.insert("covered".into(), (*covered).into());
            features.push(feature(
                format!("cell-{}", f.feature.id),
                f.feature.geometry.as_ref().map(geojson::to_json),
                p,
            ));
        }
    }
    let mut summary = BTreeMap::new();
    summary.insert("tracks".into(), Json::from(per_track));
    summary.insert("segments".into(), Json::from(segments_total));
    summary.insert("stops".into(), Json::from(stops_total));
    summary.insert("length_m".into(), Json::from(length_total));
    summary.insert("skipped".into(), Json::from(skipped));
    if let Some(any) = &covered_by_any {
        let covered = any.iter().filter(|c| **c).count();
        summary.insert("covered_cells".into(), Json::from(covered));
        summary.insert("coverage".into(), Json::from(covered as f64 / any.len() as f64));
    }
    Ok(collection(features, summary))
}

fn areal_feature(id: String, a: &Areal, mut p: Map<String, Json>) -> GeoFeature {
    p.insert("area_m2".into(), a.area_m2.into());
    feature(id, Some(geojson::to_json(&a.geometry)), p)
}

/// Geometries of a layer's features (those without one are left out) and the features.
fn shapes_of(features: &[StoredFeature]) -> (Vec<Geometry>, Vec<&StoredFeature>) {
    features.iter().filter_map(|f| f.feature.geometry.clone().map(|g| (g, f))).unzip()
}

fn source(f: &StoredFeature) -> Map<String, Json> {
    let mut p = Map::new();
    p.insert("source_id".into(), f.feature.id.to_string().into());
    p.insert("source_code".into(), f.feature.code.clone().into());
    p
}

pub(crate) fn overlay(ctx: &Ctx<'_>, i: OverlayInputs) -> ApiResult<Outcome> {
    let op = i.operation.as_str();
    if !["buffer", "intersection", "union", "difference", "clip", "dissolve"].contains(&op) {
        return Err(bad_input(
            "operation",
            format!("`{op}` is not buffer, intersection, union, difference, clip or dissolve"),
        ));
    }
    let two = matches!(op, "intersection" | "difference" | "clip");
    if two != i.overlay.is_some() {
        return Err(bad_input(
            "overlay",
            if two {
                "this operation needs a second layer"
            } else {
                "only intersection, difference and clip take a second layer"
            },
        ));
    }
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let (a, a_features) = shapes_of(&read.features);
    let other = match &i.overlay {
        Some(layer) => Some(read_layer(ctx, layer, i.as_of.as_deref(), None).map_err(|e| e.with("input", "overlay"))?),
        None => None,
    };
    ctx.check()?;
    (ctx.progress)(40, "叠加计算 (computing)");
    let mut features = Vec::new();
    match op {
        "buffer" => {
            let d = i.distance.ok_or_else(|| bad_input("distance", "buffer needs a distance in metres"))?;
            let out = overlay::buffer_layer(&a, &BufferOptions::new(d)).map_err(analysis_error)?;
            for (r, f) in out.iter().zip(&a_features) {
                if let Some(r) = r {
                    features.push(areal_feature(f.feature.id.to_string(), r, source(f)));
                }
            }
        }
        "union" => {
            if let Some(r) = overlay::union_all(&a).map_err(analysis_error)? {
                features.push(areal_feature("union".into(), &r, Map::new()));
            }
        }
        "dissolve" => {
            let keys: Vec<String> = match &i.dissolve_field {
                None => vec![String::new(); a.len()],
                Some(field) => {
                    if read.layer.schema().field(field).is_none() {
                        return Err(bad_input(
                            "dissolve_field",
                            format!("`{}` has no field `{field}`", read.layer.name()),
                        ));
                    }
                    a_features.iter().map(|f| text_of(f.feature.properties.get(field))).collect()
                }
            };
            for d in overlay::dissolve(&a, &keys).map_err(analysis_error)? {
                let mut p = Map::new();
                p.insert("key".into(), d.key.clone().into());
                p.insert("members".into(), d.members.len().into());
                features.push(areal_feature(format!("dissolve-{}", features.len()), &d.result, p));
            }
        }
        _ => {
            let Some(other) = other else { return Err(bad_input("overlay", "this operation needs a second layer")) };
            let (b, b_features) = shapes_of(&other.features);
            match op {
                "intersection" => {
                    for x in overlay::intersect_layers(&a, &b).map_err(analysis_error)? {
                        let (fa, fb) = (a_features[x.a], b_features[x.b]);
                        let mut p = source(fa);
                        p.insert("overlay_id".into(), fb.feature.id.to_string().into());
                        p.insert("overlay_code".into(), fb.feature.code.clone().into());
                        features.push(areal_feature(format!("{}-{}", fa.feature.id, fb.feature.id), &x.result, p));
                    }
                }
                _ => {
                    let cut = if op == "clip" { overlay::clip(&a, &b) } else { overlay::erase(&a, &b) }
                        .map_err(analysis_error)?;
                    for c in cut {
                        let f = a_features[c.index];
                        let mut p = source(f);
                        p.insert("area_m2".into(), c.area_m2.into());
                        p.insert("length_m".into(), c.length_m.into());
                        features.push(feature(f.feature.id.to_string(), Some(geojson::to_json(&c.geometry)), p));
                    }
                }
            }
        }
    }
    let total: f64 = features.iter().filter_map(|f| f.properties.get("area_m2").and_then(Json::as_f64)).sum();
    let mut summary = BTreeMap::new();
    summary.insert("operation".into(), Json::from(op));
    summary.insert("area_m2".into(), Json::from(total));
    summary.insert("inputs".into(), Json::from(a.len()));
    Ok(collection(features, summary))
}
