//! Unit grid lookup (单元网格): which grid cell, street and community a location is in. The grid is
//! an ordinary layer named [`GRID_LAYER`] (loaded with `shikong import --layer unit_grid FILE`, any
//! format the importer reads), so it has history and as-of reads like any layer, and a redrawn
//! grid applies to cases opened after the edit. A cell's code is read from the first present of
//! [`CODE_FIELDS`]; street and community come from fields of those names when present, else from
//! the 15-digit code's prefixes (GB/T 30428.1).
//!
//! Used by the case runtime (a case's location gives its grid, street and community, and the
//! dispatch rules route by them) and by `GET /grid?lon=&lat=`-style callers in process.

use shikong_model::{Coord, Geometry, Value};
use shikong_store::{FeatureStore, Query, StoreError};
use shikong_workflow::Place;

/// The layer holding the unit grid cells (polygons).
pub const GRID_LAYER: &str = "unit_grid";

/// Fields a cell's code may be in, in order of preference.
pub const CODE_FIELDS: [&str; 3] = ["grid_code", "单元网格编码", "code"];
const STREET_FIELDS: [&str; 2] = ["street_code", "街道编码"];
const COMMUNITY_FIELDS: [&str; 2] = ["community_code", "社区编码"];

fn text(props: &shikong_model::Properties, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match props.get(*n) {
        Some(Value::Text(t)) if !t.trim().is_empty() => Some(t.trim().to_owned()),
        Some(Value::Integer(i)) => Some(i.to_string()),
        _ => None,
    })
}

/// The grid cell containing (`lon`, `lat`) (CGCS2000), as a [`Place`]; `None` when there is no
/// grid layer or no cell contains the point. On a shared edge the first cell the store returns
/// wins (cells of a proper grid do not overlap).
pub fn place_of(store: &dyn FeatureStore, lon: f64, lat: f64) -> Result<Option<Place>, StoreError> {
    match store.layer(GRID_LAYER) {
        Ok(_) => {}
        Err(StoreError::NoSuchLayer(_)) => return Ok(None),
        Err(e) => return Err(e),
    }
    let point = Geometry::Point(Coord::xy(lon, lat));
    let q = Query { intersects: Some(&point), limit: Some(1), ..Query::layer(GRID_LAYER) };
    let mut found = None;
    store.query(&q, &mut |f| {
        let props = &f.feature.properties;
        found = text(props, &CODE_FIELDS).map(|code| {
            let derived = Place::from_grid_code(&code);
            Place {
                street: text(props, &STREET_FIELDS).or_else(|| derived.as_ref().and_then(|d| d.street.clone())),
                community: text(props, &COMMUNITY_FIELDS)
                    .or_else(|| derived.as_ref().and_then(|d| d.community.clone())),
                grid: Some(code),
            }
        });
        false
    })?;
    Ok(found)
}
