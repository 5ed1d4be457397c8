//! The transverse Mercator of `overlay::tm` against PROJ 9.5 (EPSG:4490 → EPSG:4547, and the
//! same projection with `algo=poder_engsager` further from the meridian), to 1 µm.
//! `tests/fixtures/analysis/make_tm_reference.py` wrote the fixture; no Python runs here.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use shikong_analysis::overlay::tm::TransverseMercator;
use shikong_geodesy::zone::{GkZone, ZoneWidth};

fn fixture() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/analysis/tm_reference.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn pair(v: &Value) -> [f64; 2] {
    [v[0].as_f64().unwrap(), v[1].as_f64().unwrap()]
}

#[test]
fn forward_and_inverse_match_proj_to_a_micrometre() {
    let f = fixture();
    let zone = GkZone::from_longitude(114.3, ZoneWidth::Three).unwrap();
    assert_eq!(zone.epsg(false), 4547);
    let tm = TransverseMercator::gauss_kruger(zone, false);
    let mut checked = 0;
    let mut worst = 0.0f64;
    for set in ["epsg4547", "poder_engsager"] {
        for p in f[set].as_array().unwrap() {
            let (ll, want) = (pair(&p["lonlat"]), pair(&p["xy"]));
            let got = tm.forward(ll);
            let err = (got[0] - want[0]).hypot(got[1] - want[1]);
            worst = worst.max(err);
            assert!(err <= 1e-6, "{set} {ll:?}: ours {got:?}, PROJ {want:?}, {err:.2e} m apart");
            // The inverse, measured in metres on the ground: project the answer back.
            let back = tm.inverse(want);
            let again = tm.forward(back);
            let err = (again[0] - want[0]).hypot(again[1] - want[1]);
            assert!(err <= 1e-6, "{set} inverse {want:?}: {back:?}, {err:.2e} m");
            assert!((back[0] - ll[0]).abs() < 1e-11 && (back[1] - ll[1]).abs() < 1e-11, "{set} {ll:?}: {back:?}");
            checked += 1;
        }
    }
    println!("{checked} points, largest forward difference from PROJ {worst:.1e} m");
    assert!(checked >= 20);
}
