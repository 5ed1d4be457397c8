//! The unit grid (单元网格) lookup: a location gives its grid cell, street and community.

use serde_json::json;
use shikong_http::grid::{GRID_LAYER, place_of};

use crate::support::*;

fn cell(code: &str, x0: f64, y0: f64, extra: serde_json::Value) -> serde_json::Value {
    let (x1, y1) = (x0 + 0.01, y0 + 0.01);
    let mut props = json!({"grid_code": code});
    if let (Some(p), Some(e)) = (props.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    json!({"type": "Feature", "properties": props, "geometry": {"type": "Polygon",
        "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}})
}

#[test]
fn a_location_gives_its_grid_street_and_community() {
    let env = empty().env();
    assert_eq!(place_of(env.store(), 114.305, 30.505).unwrap(), None, "no grid layer: no place");
    let grid = json!({"type": "FeatureCollection", "features": [
        cell("420111001002001", 114.30, 30.50, json!({})),
        cell("420111001002002", 114.31, 30.50, json!({})),
        // A city whose codes are not 15 digits names street and community itself.
        cell("HS-7", 114.32, 30.50, json!({"street_code": "洪山街", "community_code": "珞南社区"})),
    ]});
    let file = env.dir.path().join("grid.geojson");
    std::fs::write(&file, grid.to_string()).unwrap();
    import(env.store(), &file, GRID_LAYER, Some("单元网格"));

    let p = place_of(env.store(), 114.315, 30.505).unwrap().expect("inside the second cell");
    assert_eq!(
        (p.grid.as_deref(), p.street.as_deref(), p.community.as_deref()),
        (Some("420111001002002"), Some("420111001"), Some("420111001002"))
    );
    let p = place_of(env.store(), 114.325, 30.505).unwrap().expect("inside the third cell");
    assert_eq!((p.street.as_deref(), p.community.as_deref()), (Some("洪山街"), Some("珞南社区")));
    assert_eq!(place_of(env.store(), 114.40, 30.505).unwrap(), None, "outside every cell");
}
