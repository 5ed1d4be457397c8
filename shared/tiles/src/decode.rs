//! Reading vector tiles back: the inverse of the encoder, for tests and for tools that inspect
//! packages. Geometry stays in tile units.

use prost::Message;
use shikong_model::Value;

use crate::error::{Result, TileError};
use crate::mvt::{self, CLOSE_PATH, GeomType, LINE_TO, MOVE_TO, unzigzag};

/// A decoded layer.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedLayer {
    pub name: String,
    pub extent: u32,
    pub features: Vec<DecodedFeature>,
}

/// A decoded feature, properties in tag order.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodedFeature {
    pub id: Option<u64>,
    pub properties: Vec<(String, Value)>,
    pub geometry: DecodedGeometry,
}

impl DecodedFeature {
    pub fn property(&self, key: &str) -> Option<&Value> {
        self.properties.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

/// Geometry in tile units; rings are open (no repeated closing point), exterior rings have
/// positive area (y down) and holes negative.
#[derive(Debug, Clone, PartialEq)]
pub enum DecodedGeometry {
    Points(Vec<(i32, i32)>),
    Lines(Vec<Vec<(i32, i32)>>),
    Polygons(Vec<Vec<(i32, i32)>>),
}

/// Decodes a tile (empty bytes are an empty tile).
pub fn decode_tile(bytes: &[u8]) -> Result<Vec<DecodedLayer>> {
    let tile = mvt::Tile::decode(bytes).map_err(|e| TileError::Decode(e.to_string()))?;
    tile.layers.iter().map(decode_layer).collect()
}

fn decode_layer(l: &mvt::Layer) -> Result<DecodedLayer> {
    let bad = |m: String| TileError::Decode(format!("layer `{}`: {m}", l.name));
    let mut features = Vec::with_capacity(l.features.len());
    for (i, f) in l.features.iter().enumerate() {
        if f.tags.len() % 2 != 0 {
            return Err(bad(format!("feature {i}: odd number of tags")));
        }
        let mut properties = Vec::new();
        for kv in f.tags.chunks(2) {
            let k = l.keys.get(kv[0] as usize).ok_or_else(|| bad(format!("feature {i}: key index {}", kv[0])))?;
            let v = l.values.get(kv[1] as usize).ok_or_else(|| bad(format!("feature {i}: value index {}", kv[1])))?;
            properties.push((k.clone(), value(v)));
        }
        let ty = GeomType::try_from(f.r#type.unwrap_or(0)).unwrap_or(GeomType::Unknown);
        let parts = commands(&f.geometry).map_err(|m| bad(format!("feature {i}: {m}")))?;
        let geometry = match ty {
            GeomType::Point => DecodedGeometry::Points(parts.into_iter().flatten().collect()),
            GeomType::Linestring => DecodedGeometry::Lines(parts),
            GeomType::Polygon => DecodedGeometry::Polygons(parts),
            GeomType::Unknown => return Err(bad(format!("feature {i}: unknown geometry type"))),
        };
        features.push(DecodedFeature { id: f.id, properties, geometry });
    }
    Ok(DecodedLayer { name: l.name.clone(), extent: l.extent.unwrap_or(4096), features })
}

fn value(v: &mvt::Value) -> Value {
    if let Some(s) = &v.string_value {
        Value::Text(s.clone())
    } else if let Some(d) = v.double_value {
        Value::Real(d)
    } else if let Some(f) = v.float_value {
        Value::Real(f64::from(f))
    } else if let Some(i) = v.int_value.or(v.sint_value) {
        Value::Integer(i)
    } else if let Some(u) = v.uint_value {
        i64::try_from(u).map_or(Value::Real(u as f64), Value::Integer)
    } else if let Some(b) = v.bool_value {
        Value::Bool(b)
    } else {
        Value::Null
    }
}

/// Splits a command stream into parts (each MoveTo starts one).
fn commands(g: &[u32]) -> std::result::Result<Vec<Vec<(i32, i32)>>, String> {
    let mut parts: Vec<Vec<(i32, i32)>> = Vec::new();
    let (mut x, mut y) = (0i32, 0i32);
    let mut i = 0;
    while i < g.len() {
        let (id, count) = (g[i] & 0x7, g[i] >> 3);
        i += 1;
        match id {
            MOVE_TO | LINE_TO => {
                for _ in 0..count {
                    let (dx, dy) = match (g.get(i), g.get(i + 1)) {
                        (Some(a), Some(b)) => (unzigzag(*a), unzigzag(*b)),
                        _ => return Err("truncated command parameters".into()),
                    };
                    i += 2;
                    x += dx;
                    y += dy;
                    if id == MOVE_TO {
                        parts.push(vec![(x, y)]);
                    } else {
                        parts.last_mut().ok_or("LineTo before MoveTo")?.push((x, y));
                    }
                }
            }
            CLOSE_PATH => {}
            other => return Err(format!("unknown command {other}")),
        }
    }
    Ok(parts)
}
