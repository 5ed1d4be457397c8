//! The encoder's output decodes to the same features as before its tables were ordered by use
//! (issue 21), and is no larger.
//!
//! `fixtures/manhole-16-53572-26920.mvt` is tile 16/53572/26920 of the benchmark's manhole layer
//! (86 points, an entity id, a code, Chinese names, reals, dates and booleans) exactly as the
//! server encoded it before the change. The test feeds the same features back through
//! [`LayerBuilder`] (tile units turned back into lon/lat) and compares the decoded results.

use shikong_model::{Coord, Geometry, Value};
use shikong_tiles::{DecodedGeometry, EncodeOptions, LayerBuilder, TileId, TileMatrixSet, decode_tile};

const BEFORE: &[u8] = include_bytes!("fixtures/manhole-16-53572-26920.mvt");

#[test]
fn same_features_as_before_and_no_larger() {
    let tile = TileId { z: 16, x: 53_572, y: 26_920 };
    let tms = TileMatrixSet::WebMercatorQuad;
    let opts = EncodeOptions::for_zoom(tile.z);
    let before = decode_tile(BEFORE).unwrap();
    assert_eq!(before.len(), 1);
    let old = &before[0];
    assert_eq!(old.features.len(), 86);

    // Tile units back to lon/lat: the inverse of the tile's projector.
    let n = f64::from(1u32 << tile.z);
    let scale = n * f64::from(opts.extent);
    let lonlat = |(px, py): (i32, i32)| {
        let (lon, lat) =
            tms.lonlat(f64::from(tile.x) / n + f64::from(px) / scale, f64::from(tile.y) / n + f64::from(py) / scale);
        Coord::xy(lon, lat)
    };
    let proj = tms.projector(tile, opts.extent);
    let mut b = LayerBuilder::new(&old.name, opts);
    for f in &old.features {
        let DecodedGeometry::Points(pts) = &f.geometry else { panic!("the fixture holds points") };
        let g = match pts.as_slice() {
            [p] => Geometry::Point(lonlat(*p)),
            many => Geometry::MultiPoint(many.iter().map(|p| lonlat(*p)).collect()),
        };
        assert!(b.add(&g, &proj, f.id, f.properties.iter().map(|(k, v)| (k.as_str(), v))));
    }
    let bytes = b.into_tile_bytes();
    let after = decode_tile(&bytes).unwrap();
    assert_eq!(after, before, "same layer, features, geometry and properties in the same order");
    // What the map relies on (identify reads `id`, labels and replay read `code`) is all there.
    for f in &after[0].features {
        let Some(Value::Text(id)) = f.property("id") else { panic!("no id: {f:?}") };
        assert_eq!(id.len(), 36);
        assert!(matches!(f.property("code"), Some(Value::Text(c)) if c.starts_with("JG-")));
    }
    assert!(bytes.len() <= BEFORE.len(), "{} bytes now, {} before", bytes.len(), BEFORE.len());
}
