//! `GET /collections/{c}/stats`: counts and sums of any layer's features, grouped, as the layer was
//! at an instant — what the desktop app's 统计 view charts, maps and exports.
//!
//! Parameters: `group-by` (up to [`MAX_TERMS`] comma-separated terms: a field name — code lists,
//! text, integers, booleans; `FIELD:year|month|week|day` on a date or date-time field, periods in
//! Beijing time; `division`: the polygon of the `divisions` layer each feature lies in),
//! `divisions` (the polygon layer; `division-label` names its field to show, default its first of
//! 名称/name/title), `sum` (up to [`MAX_SUMS`] integer or real fields), `filter` (CQL2 text or
//! JSON, `filter-lang`), `bbox`, `datetime` (valid time), `as-of` (transaction time; both layers are
//! read as of it), `geometry=true` (each group carries its division's shape, for a choropleth).
//!
//! The division join loads the division polygons (at most [`MAX_DIVISIONS`], [`MAX_DIVISION_VERTICES`]
//! vertices in all) into an R-tree of their envelopes, then puts each feature's representative
//! point (the point itself, else an interior point) into the first polygon, by code, that holds
//! it (a point on a shared edge goes to the lower code). Everything runs in [`blocking`] under the
//! request's deadline; at most [`MAX_FEATURES`] features are read and [`MAX_GROUPS`] groups
//! made, beyond which the answer is a problem naming the limit. Both layers must be readable by
//! the caller.

use std::cmp::Ordering;
use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use geo::{InteriorPoint as _, Intersects as _};
use jiff::civil::Date;
use rstar::{AABB, RTree, primitives::GeomWithData, primitives::Rectangle};
use shikong_model::{FieldDef, FieldType, Geometry, Value, time};
use shikong_protocol::api::stats::{LayerStats, StatsField, StatsFieldUse, StatsGroup};
use shikong_query::Filter;
use shikong_store::{Layer, Query, StoredFeature};

use crate::access::{Action, Caller};
use crate::ogc::layer_for;
use crate::params::Params;
use crate::problem::{ApiError, ApiResult};
use crate::{AppState, blocking, json_ok};

/// Grouping terms one request may give.
pub const MAX_TERMS: usize = 2;
/// Fields one request may sum.
pub const MAX_SUMS: usize = 4;
/// Groups one answer may hold.
pub const MAX_GROUPS: usize = 1_000;
/// Features one answer may count.
pub const MAX_FEATURES: usize = 2_000_000;
/// Division polygons one answer may join against.
pub const MAX_DIVISIONS: usize = 5_000;
/// Vertices of all division polygons together.
pub const MAX_DIVISION_VERTICES: usize = 2_000_000;

pub fn routes() -> Router<AppState> {
    Router::new().route("/collections/{collection_id}/stats", get(stats))
}

/// A period unit of a date grouping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unit {
    Year,
    Month,
    Week,
    Day,
}

/// One grouping term, resolved against the layer.
#[derive(Debug, Clone)]
enum Term {
    Field(FieldDef),
    Period(FieldDef, Unit),
    Division,
}

fn field_uses(f: &FieldDef) -> Vec<StatsFieldUse> {
    match f.ty {
        FieldType::Code | FieldType::Text | FieldType::Bool => vec![StatsFieldUse::Class],
        FieldType::Integer => vec![StatsFieldUse::Class, StatsFieldUse::Number],
        FieldType::Real => vec![StatsFieldUse::Number],
        FieldType::Date | FieldType::DateTime => vec![StatsFieldUse::Period],
        FieldType::Attachments => vec![],
    }
}

fn usable_fields(l: &Layer) -> Vec<StatsField> {
    l.schema()
        .fields
        .iter()
        .filter(|f| !f.retired)
        .map(|f| StatsField {
            name: f.name.clone(),
            title: f.title.clone().unwrap_or_else(|| f.name.clone()),
            uses: field_uses(f),
            coded: !f.codes.is_empty(),
        })
        .filter(|f| !f.uses.is_empty())
        .collect()
}

/// A field of `l` by name, or a 400 naming the parameter, the field and the fields there are.
fn field<'a>(l: &'a Layer, parameter: &str, name: &str) -> ApiResult<&'a FieldDef> {
    l.schema().fields.iter().find(|f| f.name == name && !f.retired).ok_or_else(|| {
        let names: Vec<&str> = l.schema().fields.iter().filter(|f| !f.retired).map(|f| f.name.as_str()).collect();
        ApiError::bad_parameter(
            parameter,
            format!("`{name}` is not a field of layer `{}` (its fields: {})", l.name(), names.join(", ")),
        )
        .with("field", name)
    })
}

fn bad_use(parameter: &str, f: &FieldDef, what: &str) -> ApiError {
    ApiError::bad_parameter(parameter, format!("field `{}` is of type {:?}: {what}", f.name, f.ty))
        .with("field", f.name.as_str())
}

/// Parses `group-by` against the layer.
fn terms(l: &Layer, text: Option<&str>) -> ApiResult<Vec<Term>> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Ok(Vec::new()) };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() > MAX_TERMS {
        return Err(ApiError::bad_parameter("group-by", format!("at most {MAX_TERMS} terms, {} given", parts.len()))
            .with("limit", "terms")
            .with("max", MAX_TERMS));
    }
    let mut out = Vec::new();
    for part in parts {
        if part == "division" {
            if out.iter().any(|t| matches!(t, Term::Division)) {
                return Err(ApiError::bad_parameter("group-by", "`division` given twice"));
            }
            out.push(Term::Division);
            continue;
        }
        let (name, unit) = match part.rsplit_once(':') {
            Some((n, u)) => (n, Some(u)),
            None => (part, None),
        };
        let f = field(l, "group-by", name)?;
        match unit {
            Some(u) => {
                let unit = match u {
                    "year" => Unit::Year,
                    "month" => Unit::Month,
                    "week" => Unit::Week,
                    "day" => Unit::Day,
                    other => {
                        return Err(ApiError::bad_parameter(
                            "group-by",
                            format!("`{other}` is not a period (year, month, week or day)"),
                        ));
                    }
                };
                if !matches!(f.ty, FieldType::Date | FieldType::DateTime) {
                    return Err(bad_use("group-by", f, "periods need a date or date-time field"));
                }
                out.push(Term::Period(f.clone(), unit));
            }
            None => {
                if !field_uses(f).contains(&StatsFieldUse::Class) {
                    return Err(bad_use(
                        "group-by",
                        f,
                        "group by code, text, integer or boolean fields (dates by `FIELD:month` and the like)",
                    ));
                }
                out.push(Term::Field(f.clone()));
            }
        }
    }
    Ok(out)
}

/// Parses `sum` against the layer.
fn sums(l: &Layer, text: Option<&str>) -> ApiResult<Vec<FieldDef>> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else { return Ok(Vec::new()) };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if parts.len() > MAX_SUMS {
        return Err(ApiError::bad_parameter("sum", format!("at most {MAX_SUMS} fields, {} given", parts.len()))
            .with("limit", "sums")
            .with("max", MAX_SUMS));
    }
    parts
        .into_iter()
        .map(|name| {
            let f = field(l, "sum", name)?;
            if matches!(f.ty, FieldType::Integer | FieldType::Real) {
                Ok(f.clone())
            } else {
                Err(bad_use("sum", f, "only integer and real fields can be summed"))
            }
        })
        .collect()
}

/// The text of a period of `d`.
fn period(d: Date, unit: Unit) -> String {
    match unit {
        Unit::Year => format!("{:04}", d.year()),
        Unit::Month => format!("{:04}-{:02}", d.year(), d.month()),
        Unit::Day => format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day()),
        Unit::Week => {
            let w = d.iso_week_date();
            format!("{:04}-W{:02}", w.year(), w.week())
        }
    }
}

/// The key and label of a feature for a field term.
fn field_key(f: &FieldDef, v: Option<&Value>) -> (Option<String>, Option<String>) {
    let key = match v {
        Some(Value::Text(t)) => Some(t.trim().to_owned()).filter(|t| !t.is_empty()),
        Some(Value::Integer(i)) => Some(i.to_string()),
        Some(Value::Bool(b)) => Some(b.to_string()),
        _ => None,
    };
    let label = match (&key, f.ty) {
        (Some(k), FieldType::Code) => {
            Some(f.codes.iter().find(|c| &c.code == k).map_or_else(|| k.clone(), |c| c.label.clone()))
        }
        (Some(k), FieldType::Bool) => Some(if k == "true" { "是" } else { "否" }.to_owned()),
        (k, _) => k.clone(),
    };
    (key, label)
}

fn period_key(f: &FieldDef, unit: Unit, v: Option<&Value>) -> Option<String> {
    let d = match v {
        Some(Value::Date(d)) => *d,
        Some(Value::DateTime(t)) => t.to_zoned(jiff::tz::TimeZone::fixed(time::BEIJING)).date(),
        _ => return None,
    };
    let _ = f;
    Some(period(d, unit))
}

/// A division polygon: its key (entity code), label and shape.
struct Division {
    key: String,
    label: String,
    shape: geo::Geometry<f64>,
    geometry: Geometry,
}

/// The division polygons with an index of their envelopes.
struct Divisions {
    all: Vec<Division>,
    index: RTree<GeomWithData<Rectangle<[f64; 2]>, usize>>,
}

impl Divisions {
    fn load(st: &AppState, l: &Layer, label_field: Option<&str>, as_of: Option<jiff::Timestamp>) -> ApiResult<Self> {
        let label_field = match label_field {
            Some(n) => Some(field(l, "division-label", n)?.name.clone()),
            None => ["名称", "name", "NAME", "title", "名字"]
                .into_iter()
                .find(|n| l.schema().fields.iter().any(|f| f.name == *n))
                .map(str::to_owned),
        };
        let mut all = Vec::new();
        let mut vertices = 0usize;
        let mut over: Option<ApiError> = None;
        st.store().query(&Query { as_of, ..Query::layer(l.name()) }, &mut |sf| {
            let Some(g) = sf.feature.geometry.as_ref().filter(|g| matches!(g, Geometry::Polygon(_) | Geometry::MultiPolygon(_)))
            else {
                return true;
            };
            vertices += g.coord_count();
            if all.len() >= MAX_DIVISIONS || vertices > MAX_DIVISION_VERTICES {
                let (limit, max) = if all.len() >= MAX_DIVISIONS {
                    ("divisions", MAX_DIVISIONS)
                } else {
                    ("division-vertices", MAX_DIVISION_VERTICES)
                };
                over = Some(
                    ApiError::new(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "too-many-divisions",
                        format!(
                            "parameter `divisions`: layer `{}` has more than {max} {limit}; use a coarser division layer",
                            l.name()
                        ),
                    )
                    .with("parameter", "divisions")
                    .with("limit", limit)
                    .with("max", max),
                );
                return false;
            }
            let key = if sf.feature.code.is_empty() { sf.feature.id.to_string() } else { sf.feature.code.clone() };
            let label = label_field
                .as_ref()
                .and_then(|n| match sf.feature.properties.get(n) {
                    Some(Value::Text(t)) if !t.trim().is_empty() => Some(t.trim().to_owned()),
                    Some(Value::Integer(i)) => Some(i.to_string()),
                    _ => None,
                })
                .unwrap_or_else(|| key.clone());
            all.push(Division { key, label, shape: g.to_geo(), geometry: g.clone() });
            true
        })?;
        if let Some(e) = over {
            return Err(e);
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        let boxes = all
            .iter()
            .enumerate()
            .filter_map(|(i, d)| {
                let b = d.geometry.bbox()?;
                Some(GeomWithData::new(Rectangle::from_corners([b.min_x, b.min_y], [b.max_x, b.max_y]), i))
            })
            .collect();
        Ok(Divisions { all, index: RTree::bulk_load(boxes) })
    }

    /// The division holding `g`'s representative point (the lowest index of those that do).
    fn of(&self, g: &Geometry) -> Option<usize> {
        let p = match g {
            Geometry::Point(c) => geo::Point::new(c.x, c.y),
            other => other.to_geo().interior_point()?,
        };
        self.index
            .locate_in_envelope_intersecting(AABB::from_point([p.x(), p.y()]))
            .map(|r| r.data)
            .filter(|i| self.all[*i].shape.intersects(&p))
            .min()
    }
}

/// Counts and sums of one group.
#[derive(Debug, Clone)]
struct Acc {
    label: Vec<Option<String>>,
    division: Option<usize>,
    count: u64,
    sums: Vec<f64>,
}

/// Orders keys: numbers as numbers, text as text, missing values last.
fn key_order(a: &[Option<String>], b: &[Option<String>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let o = match (x, y) {
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
            (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) => p.total_cmp(&q).then_with(|| x.cmp(y)),
                _ => x.cmp(y),
            },
        };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn number(v: Option<&Value>) -> Option<f64> {
    match v {
        Some(Value::Integer(i)) => Some(*i as f64),
        Some(Value::Real(r)) if r.is_finite() => Some(*r),
        _ => None,
    }
}

/// Everything a request asks for, checked.
struct Ask {
    terms: Vec<Term>,
    sums: Vec<FieldDef>,
    filter: Option<Filter>,
    bbox: Option<shikong_model::Bbox>,
    valid: Option<shikong_model::time::ValidFilter>,
    as_of: Option<jiff::Timestamp>,
    divisions: Option<(Layer, Option<String>)>,
    geometry: bool,
}

/// Counts the layer's features by the asked groups (in the blocking pool).
fn compute(st: &AppState, l: &Layer, ask: &Ask) -> ApiResult<LayerStats> {
    let divisions = match &ask.divisions {
        Some((dl, label)) => Some(Divisions::load(st, dl, label.as_deref(), ask.as_of)?),
        None => None,
    };
    let mut groups: HashMap<Vec<Option<String>>, Acc> = HashMap::new();
    let mut count = 0u64;
    let mut totals = vec![0.0; ask.sums.len()];
    let mut stop: Option<ApiError> = None;
    let q = Query {
        bbox: ask.bbox,
        filter: ask.filter.as_ref(),
        valid: ask.valid,
        as_of: ask.as_of,
        ..Query::layer(l.name())
    };
    let mut seen = 0usize;
    st.store().query(&q, &mut |sf: StoredFeature| {
        seen += 1;
        if seen.is_multiple_of(4096)
            && let Err(e) = shikong_store::cancel::check()
        {
            stop = Some(e.into());
            return false;
        }
        if seen > MAX_FEATURES {
            stop = Some(
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-many-features",
                    format!("more than {MAX_FEATURES} features; narrow them with `filter` or `bbox`"),
                )
                .with("limit", "features")
                .with("max", MAX_FEATURES),
            );
            return false;
        }
        let props = &sf.feature.properties;
        let mut key = Vec::with_capacity(ask.terms.len());
        let mut label = Vec::with_capacity(ask.terms.len());
        let mut division = None;
        for t in &ask.terms {
            match t {
                Term::Field(f) => {
                    let (k, lb) = field_key(f, props.get(&f.name));
                    key.push(k);
                    label.push(lb);
                }
                Term::Period(f, unit) => {
                    let k = period_key(f, *unit, props.get(&f.name));
                    label.push(k.clone());
                    key.push(k);
                }
                Term::Division => {
                    let d = divisions.as_ref().zip(sf.feature.geometry.as_ref()).and_then(|(ds, g)| ds.of(g));
                    division = d;
                    let d = d.and_then(|i| divisions.as_ref().map(|ds| &ds.all[i]));
                    key.push(d.map(|d| d.key.clone()));
                    label.push(d.map(|d| d.label.clone()));
                }
            }
        }
        if !groups.contains_key(&key) && groups.len() >= MAX_GROUPS {
            stop = Some(
                ApiError::bad_parameter(
                    "group-by",
                    format!("more than {MAX_GROUPS} groups; group by a coarser field or period, or filter"),
                )
                .with("limit", "groups")
                .with("max", MAX_GROUPS),
            );
            return false;
        }
        let acc =
            groups.entry(key).or_insert_with(|| Acc { label, division, count: 0, sums: vec![0.0; ask.sums.len()] });
        acc.count += 1;
        count += 1;
        for (i, f) in ask.sums.iter().enumerate() {
            if let Some(x) = number(props.get(&f.name)) {
                acc.sums[i] += x;
                totals[i] += x;
            }
        }
        true
    })?;
    if let Some(e) = stop {
        return Err(e);
    }
    let mut list: Vec<(Vec<Option<String>>, Acc)> = groups.into_iter().collect();
    list.sort_by(|a, b| key_order(&a.0, &b.0));
    let groups = list
        .into_iter()
        .map(|(key, acc)| StatsGroup {
            key,
            label: acc.label,
            count: acc.count,
            sums: acc.sums,
            geometry: match (ask.geometry, acc.division, &divisions) {
                (true, Some(i), Some(ds)) => Some(shikong_model::geojson::to_json(&ds.all[i].geometry)),
                _ => None,
            },
        })
        .collect();
    let term_text = |t: &Term| match t {
        Term::Field(f) => f.name.clone(),
        Term::Period(f, u) => format!("{}:{}", f.name, format!("{u:?}").to_lowercase()),
        Term::Division => "division".to_owned(),
    };
    Ok(LayerStats {
        layer: l.name().to_owned(),
        title: l.display_name().to_owned(),
        group_by: ask.terms.iter().map(term_text).collect(),
        sums: ask.sums.iter().map(|f| f.name.clone()).collect(),
        divisions: ask.divisions.as_ref().map(|(d, _)| d.name().to_owned()),
        as_of: ask.as_of.map(time::beijing),
        count,
        totals,
        groups,
        fields: usable_fields(l),
    })
}

/// The `filter` resolved against the layer (CRS84 geometries).
fn parse_filter(text: &str, lang: &str, l: &Layer) -> ApiResult<Filter> {
    if lang == "cql2-json" { Filter::parse_json(text, l.schema()) } else { Filter::parse_text(text, l.schema()) }
        .map_err(crate::problem::filter_error)
}

async fn stats(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let p = Params::new(q.as_deref())?;
    p.only(&[
        "group-by",
        "sum",
        "divisions",
        "division-label",
        "filter",
        "filter-lang",
        "bbox",
        "datetime",
        "as-of",
        "geometry",
        "f",
    ])?;
    if let Some(f) = p.get("f").filter(|f| *f != "json") {
        return Err(ApiError::bad_parameter("f", format!("`{f}` is not json")));
    }
    let as_of = p.instant("as-of")?;
    let valid = p.datetime()?;
    let bbox = p.bbox()?;
    let lang = p.get("filter-lang").unwrap_or("cql2-text").to_owned();
    if !matches!(lang.as_str(), "cql2-text" | "cql2-json") {
        return Err(ApiError::bad_parameter("filter-lang", format!("`{lang}` is not cql2-text or cql2-json")));
    }
    let geometry = match p.get("geometry") {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(ApiError::bad_parameter("geometry", format!("`{v}` is not true or false"))),
    };
    let l = layer_for(&state, &caller, id, Action::Read).await?;
    let terms = terms(&l, p.get("group-by"))?;
    let sums = sums(&l, p.get("sum"))?;
    let by_division = terms.iter().any(|t| matches!(t, Term::Division));
    let divisions = match (by_division, p.get("divisions")) {
        (true, Some(d)) => {
            let dl = layer_for(&state, &caller, d.to_owned(), Action::Read).await.map_err(|e| {
                if e.status == StatusCode::NOT_FOUND {
                    ApiError::bad_parameter("divisions", format!("there is no layer `{d}`")).with("layer", d)
                } else {
                    e
                }
            })?;
            if !matches!(
                dl.def.geometry_kind,
                shikong_model::GeometryKind::Polygon
                    | shikong_model::GeometryKind::MultiPolygon
                    | shikong_model::GeometryKind::Geometry
            ) {
                return Err(ApiError::bad_parameter(
                    "divisions",
                    format!("layer `{d}` holds {} features, not polygons", dl.def.geometry_kind.name()),
                ));
            }
            Some((dl, p.get("division-label").map(str::to_owned)))
        }
        (true, None) => {
            return Err(ApiError::bad_parameter(
                "divisions",
                "grouping by `division` needs `divisions`: the layer of division polygons",
            ));
        }
        (false, Some(_)) => {
            return Err(ApiError::bad_parameter("divisions", "only with `division` in `group-by`"));
        }
        (false, None) => None,
    };
    if geometry && !by_division {
        return Err(ApiError::bad_parameter("geometry", "only with `division` in `group-by`"));
    }
    let filter_text = p.get("filter").map(str::to_owned);
    let st = state.clone();
    let doc = blocking(move || {
        // Parsed off the async threads, within the query crate's bounds.
        let filter = filter_text.map(|t| parse_filter(&t, &lang, &l)).transpose()?;
        let ask = Ask { terms, sums, filter, bbox, valid, as_of, divisions, geometry };
        compute(&st, &l, &ask)
    })
    .await?;
    json_ok(&doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_and_key_order() {
        let d = jiff::civil::date(2024, 3, 5);
        assert_eq!(period(d, Unit::Year), "2024");
        assert_eq!(period(d, Unit::Month), "2024-03");
        assert_eq!(period(d, Unit::Day), "2024-03-05");
        assert_eq!(period(d, Unit::Week), "2024-W10");
        // 2021-01-01 is in ISO week 53 of 2020.
        assert_eq!(period(jiff::civil::date(2021, 1, 1), Unit::Week), "2020-W53");
        let k = |s: &[Option<&str>]| s.iter().map(|x| x.map(str::to_owned)).collect::<Vec<_>>();
        assert_eq!(key_order(&k(&[Some("9")]), &k(&[Some("10")])), Ordering::Less);
        assert_eq!(key_order(&k(&[None]), &k(&[Some("a")])), Ordering::Greater);
        assert_eq!(key_order(&k(&[Some("a"), Some("2")]), &k(&[Some("a"), Some("10")])), Ordering::Less);
    }
}
