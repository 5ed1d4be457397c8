//! The processes that aggregate features over space and time: `emerging-hotspot` (a space-time
//! cube of bins, Gi* per bin, Mann–Kendall per location, ArcGIS's categories) and `statistics`
//! (count, sum, mean and rates by division or grid cell, by class and period). Both answer
//! GeoJSON of their units (cells or divisions) so a map shows them at once.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use serde_json::{Map, Value as Json};
use shikong_analysis::LonLat;
use shikong_analysis::aggregate::{self, AggFeature, Division, PeriodSpec, Unit, When};
use shikong_analysis::emerging::{self, CubeSpec, EmergingOptions, StPoint, Variable};
use shikong_model::{FieldType, Geometry, Value};
use shikong_protocol::api::processes::{EmergingInputs, GeoCollection, GeoFeature, StatisticsInputs};
use shikong_protocol::api::{FeatureCollectionType, FeatureType};
use shikong_store::{Layer, StoredFeature};

use super::run::{Ctx, Outcome, Output, analysis_error, bad_input, read_layer, representative};
use crate::problem::{ApiError, ApiResult};

fn beijing() -> TimeZone {
    TimeZone::fixed(jiff::tz::offset(8))
}

/// Reads a feature's time (seconds since the epoch) from `field`: a date (its Beijing midnight),
/// a date-time, or `valid_from`.
pub(crate) fn time_reader(
    layer: &Layer,
    input: &str,
    field: &str,
) -> ApiResult<impl Fn(&StoredFeature) -> Option<i64>> {
    if field != "valid_from" {
        match layer.schema().field(field) {
            None => return Err(bad_input(input, format!("`{}` has no field `{field}`", layer.name()))),
            Some(f) if !matches!(f.ty, FieldType::Date | FieldType::DateTime) => {
                return Err(bad_input(input, format!("`{field}` is {}, not a date or date-time", f.ty.name())));
            }
            Some(_) => {}
        }
    }
    let field = field.to_owned();
    Ok(move |f: &StoredFeature| {
        if field == "valid_from" {
            return f.feature.valid.from.map(|t| t.as_second());
        }
        match f.feature.properties.get(&field) {
            Some(Value::DateTime(t)) => Some(t.as_second()),
            Some(Value::Date(d)) => d.to_zoned(beijing()).ok().map(|z| z.timestamp().as_second()),
            _ => None,
        }
    })
}

/// Reads a numeric field, checking it is one.
fn number_reader(layer: &Layer, input: &str, field: &str) -> ApiResult<impl Fn(&StoredFeature) -> Option<f64>> {
    match layer.schema().field(field) {
        None => return Err(bad_input(input, format!("`{}` has no field `{field}`", layer.name()))),
        Some(f) if !matches!(f.ty, FieldType::Integer | FieldType::Real) => {
            return Err(bad_input(input, format!("`{field}` is {}, not a number", f.ty.name())));
        }
        Some(_) => {}
    }
    let field = field.to_owned();
    Ok(move |f: &StoredFeature| match f.feature.properties.get(&field) {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Real(r)) if r.is_finite() => Some(*r),
        _ => None,
    })
}

/// A fixed-length ISO 8601 duration in seconds (days are 24 hours here: bins must be equal).
fn fixed_seconds(input: &str, text: &str) -> ApiResult<i64> {
    let span: jiff::Span = text
        .parse()
        .map_err(|e| bad_input(input, format!("`{text}` is not an ISO 8601 duration such as PT6H or P1D: {e}")))?;
    let secs = span
        .total((jiff::Unit::Second, jiff::SpanRelativeTo::days_are_24_hours()))
        .map_err(|_| bad_input(input, "a duration of fixed length: hours, days or weeks (not months or years)"))?;
    if !(secs >= 1.0 && secs.fract() == 0.0) {
        return Err(bad_input(input, "a whole number of seconds, at least one"));
    }
    Ok(secs as i64)
}

fn polygon_json(ring: &[LonLat]) -> Json {
    let mut coords: Vec<Json> = ring.iter().map(|p| Json::from(vec![p[0], p[1]])).collect();
    if ring.first() != ring.last()
        && let Some(first) = ring.first()
    {
        coords.push(Json::from(vec![first[0], first[1]]));
    }
    serde_json::json!({"type": "Polygon", "coordinates": [coords]})
}

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

fn num(v: Option<f64>) -> Json {
    v.filter(|x| x.is_finite()).map_or(Json::Null, Json::from)
}

pub(crate) fn emerging(ctx: &Ctx<'_>, i: EmergingInputs) -> ApiResult<Outcome> {
    let step_s = fixed_seconds("interval", &i.interval)?;
    let alpha = i.alpha.unwrap_or(0.05);
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let time_of = time_reader(&read.layer, "time_field", &i.time_field)?;
    let value_of = i.value_field.as_deref().map(|f| number_reader(&read.layer, "value_field", f)).transpose()?;
    let mut points = Vec::with_capacity(read.features.len());
    let mut skipped = 0usize;
    for f in &read.features {
        let at = f.feature.geometry.as_ref().and_then(representative);
        let t = time_of(f);
        let value = value_of.as_ref().map(|v| v(f));
        match (at, t, value) {
            (Some(p), Some(t), None) => points.push(StPoint { lon: p[0], lat: p[1], t, value: None }),
            (Some(p), Some(t), Some(Some(v))) => points.push(StPoint { lon: p[0], lat: p[1], t, value: Some(v) }),
            _ => skipped += 1,
        }
    }
    if points.is_empty() {
        return Err(bad_input("time_field", "no feature has a place, a time and (when summed) a value"));
    }
    let origin_s = match &i.origin {
        Some(t) => shikong_model::parse_instant(t).map_err(|e| bad_input("origin", e))?.as_second(),
        None => {
            let first = points.iter().map(|p| p.t).min().unwrap_or(0);
            let day = jiff::Timestamp::from_second(first).map_err(ApiError::internal)?.to_zoned(beijing()).date();
            day.to_zoned(beijing()).map_err(ApiError::internal)?.timestamp().as_second()
        }
    };
    ctx.check()?;
    (ctx.progress)(40, "时空立方体 (building the space-time cube)");
    let opts = EmergingOptions {
        cube: CubeSpec {
            cell_m: i.cell_size,
            step_s,
            origin_s,
            variable: if i.value_field.is_some() { Variable::Sum } else { Variable::Count },
            central_meridian: None,
        },
        neighbourhood_m: i.neighbourhood,
        neighbourhood_steps: i.neighbourhood_steps.unwrap_or(1) as usize,
        alpha,
        fdr: i.fdr,
    };
    let result = ctx.analyse(|ctl| emerging::emerging_hot_spots_with(&points, &opts, ctl))?;
    ctx.check()?;
    (ctx.progress)(85, "整理结果 (writing the result)");
    let grid = &result.cube.grid;
    let steps: Vec<Json> = (0..result.cube.steps())
        .map(|s| {
            Json::from(
                jiff::Timestamp::from_second(result.cube.step_start(s))
                    .map(shikong_model::time::beijing)
                    .unwrap_or_default(),
            )
        })
        .collect();
    let features = result
        .locations
        .iter()
        .map(|l| {
            let mut p = Map::new();
            p.insert("category".into(), l.category.as_str().into());
            p.insert("category_zh".into(), l.category.label_zh().into());
            p.insert("trend_z".into(), num(Some(l.z_trend.z)));
            p.insert("trend_p".into(), num(Some(l.z_trend.p)));
            p.insert("values".into(), l.values.clone().into());
            p.insert("z".into(), l.z.iter().map(|z| num(*z)).collect::<Vec<_>>().into());
            p.insert("states".into(), l.states.iter().map(|s| Json::from(s.code())).collect::<Vec<_>>().into());
            GeoFeature {
                kind: FeatureType::Feature,
                id: format!("{}_{}", l.cell[0], l.cell[1]),
                geometry: Some(polygon_json(&grid.cell_polygon(l.cell))),
                properties: p,
            }
        })
        .collect();
    let mut summary = BTreeMap::new();
    for (c, n) in result.tally() {
        if n > 0 {
            summary.insert(c.as_str().to_owned(), Json::from(n));
        }
    }
    summary.insert("steps".into(), Json::from(steps));
    summary.insert("skipped".into(), Json::from(skipped));
    Ok(collection(features, summary))
}

fn polygons_of(g: &Geometry) -> Option<Vec<aggregate::Polygon>> {
    let ring = |r: &Vec<shikong_model::geometry::Coord>| r.iter().map(|c| [c.x, c.y]).collect::<Vec<LonLat>>();
    match g {
        Geometry::Polygon(rings) => Some(vec![rings.iter().map(ring).collect()]),
        Geometry::MultiPolygon(ps) => Some(ps.iter().map(|p| p.iter().map(ring).collect()).collect()),
        _ => None,
    }
}

/// The divisions of a polygon layer: id = name field (or entity code), their polygons and
/// population, read as of `as_of` with the caller's read permission.
pub(crate) fn divisions(
    ctx: &Ctx<'_>,
    layer: &str,
    name_field: Option<&str>,
    population_field: Option<&str>,
    as_of: Option<&str>,
) -> ApiResult<(Vec<Division>, Vec<Option<Json>>)> {
    let read = read_layer(ctx, layer, as_of, None).map_err(|e| {
        if e.extra.get("input").is_some_and(|v| v == "collection") { e.with("input", "divisions") } else { e }
    })?;
    let pop = population_field.map(|f| number_reader(&read.layer, "population_field", f)).transpose()?;
    if let Some(f) = name_field
        && read.layer.schema().field(f).is_none()
    {
        return Err(bad_input("division_name_field", format!("`{layer}` has no field `{f}`")));
    }
    let mut out = Vec::new();
    let mut shapes = Vec::new();
    for f in &read.features {
        let Some(polygons) = f.feature.geometry.as_ref().and_then(polygons_of) else { continue };
        let id = match name_field.and_then(|n| f.feature.properties.get(n)) {
            Some(Value::Text(t)) => t.clone(),
            Some(v) if !v.is_null() => v.to_json().to_string(),
            _ => f.feature.code.clone(),
        };
        shapes.push(f.feature.geometry.as_ref().map(shikong_model::geojson::to_json));
        out.push(Division { id, polygons, population: pop.as_ref().and_then(|p| p(f)), area_m2: None });
    }
    if out.is_empty() {
        return Err(bad_input("divisions", format!("`{layer}` has no polygons")));
    }
    Ok((out, shapes))
}

pub(crate) fn statistics(ctx: &Ctx<'_>, i: StatisticsInputs) -> ApiResult<Outcome> {
    let period = match i.period.as_deref() {
        None => None,
        Some("day") => Some(PeriodSpec::Day),
        Some("week") => Some(PeriodSpec::Week),
        Some("month") => Some(PeriodSpec::Month),
        Some("year") => Some(PeriodSpec::Year),
        Some(other) => return Err(bad_input("period", format!("`{other}` is not day, week, month or year"))),
    };
    if period.is_some() != i.time_field.is_some() {
        return Err(bad_input("period", "give `period` and `time_field` together"));
    }
    match (&i.divisions, i.cell_size) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(bad_input(
                "divisions",
                "give a division layer (`divisions`) or a grid (`cell_size`), one of them",
            ));
        }
        _ => {}
    }
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let time_of = i.time_field.as_deref().map(|f| time_reader(&read.layer, "time_field", f)).transpose()?;
    let value_of = i.value_field.as_deref().map(|f| number_reader(&read.layer, "value_field", f)).transpose()?;
    if let Some(c) = &i.class_field
        && read.layer.schema().field(c).is_none()
    {
        return Err(bad_input("class_field", format!("`{}` has no field `{c}`", read.layer.name())));
    }
    let mut feats = Vec::with_capacity(read.features.len());
    for f in &read.features {
        let Some(point) = f.feature.geometry.as_ref().and_then(representative) else { continue };
        let class = i.class_field.as_ref().and_then(|c| match f.feature.properties.get(c) {
            None | Some(Value::Null) => None,
            Some(Value::Text(t)) => Some(t.clone()),
            Some(v) => Some(v.to_json().to_string()),
        });
        let when = match &time_of {
            None => When::None,
            Some(t) => t(f).map_or(When::None, When::Time),
        };
        feats.push(AggFeature { point, class, when, value: value_of.as_ref().and_then(|v| v(f)) });
    }
    ctx.check()?;
    (ctx.progress)(50, "统计 (aggregating)");
    let (agg, shapes, names): (aggregate::Aggregation, Vec<Option<Json>>, Vec<String>) =
        match (&i.divisions, i.cell_size) {
            (Some(layer), _) => {
                let (divs, shapes) = divisions(
                    ctx,
                    layer,
                    i.division_name_field.as_deref(),
                    i.population_field.as_deref(),
                    i.as_of.as_deref(),
                )?;
                let names = divs.iter().map(|d| d.id.clone()).collect();
                (aggregate::aggregate_by_division(&feats, &divs, period).map_err(analysis_error)?, shapes, names)
            }
            (None, Some(cell)) => (
                aggregate::aggregate_by_grid(&feats, cell, None, period).map_err(analysis_error)?,
                Vec::new(),
                Vec::new(),
            ),
            (None, None) => unreachable!("checked above"),
        };
    ctx.check()?;
    let features = agg
        .groups
        .iter()
        .enumerate()
        .map(|(n, g)| {
            let (unit, name, geometry) = match g.unit {
                Unit::Division(d) => (format!("division:{d}"), Json::from(names[d].clone()), shapes[d].clone()),
                Unit::Cell(c) => (
                    format!("cell:{}_{}", c[0], c[1]),
                    Json::from(format!("{}_{}", c[0], c[1])),
                    agg.grid.as_ref().map(|grid| polygon_json(&grid.cell_polygon(c))),
                ),
                Unit::Outside => ("outside".to_owned(), Json::from("区域外 (outside)"), None),
            };
            let mut p = Map::new();
            p.insert("unit".into(), unit.into());
            p.insert("name".into(), name);
            p.insert("class".into(), g.class.clone().map_or(Json::Null, Json::from));
            p.insert("period".into(), g.period.clone().map_or(Json::Null, Json::from));
            p.insert("count".into(), g.count.into());
            p.insert("nulls".into(), g.nulls.into());
            p.insert("sum".into(), num(Some(g.sum)));
            p.insert("mean".into(), num(g.mean));
            p.insert("area_m2".into(), num(g.area_m2));
            p.insert("population".into(), num(g.population));
            p.insert("count_per_km2".into(), num(g.count_per_km2));
            p.insert("count_per_10k_people".into(), num(g.count_per_10k_people));
            p.insert("sum_per_km2".into(), num(g.sum_per_km2));
            p.insert("sum_per_10k_people".into(), num(g.sum_per_10k_people));
            GeoFeature { kind: FeatureType::Feature, id: format!("g{n}"), geometry, properties: p }
        })
        .collect();
    let mut summary = BTreeMap::new();
    summary.insert("features".into(), Json::from(feats.len()));
    summary.insert("outside".into(), Json::from(agg.outside));
    summary.insert("in_several".into(), Json::from(agg.in_several));
    Ok(collection(features, summary))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_durations() {
        assert_eq!(fixed_seconds("interval", "PT6H").unwrap(), 6 * 3600);
        assert_eq!(fixed_seconds("interval", "P7D").unwrap(), 7 * 86400);
        assert!(fixed_seconds("interval", "P1M").unwrap_err().detail.contains("fixed length"));
        assert!(fixed_seconds("interval", "PT0.5S").is_err());
        assert!(fixed_seconds("interval", "weekly").is_err());
    }

    #[test]
    fn open_rings_are_closed_for_geojson() {
        let j = polygon_json(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]);
        assert_eq!(j["coordinates"][0].as_array().unwrap().len(), 4);
    }
}
