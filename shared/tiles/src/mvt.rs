//! The Mapbox Vector Tile 2.1 messages (`vector_tile.proto`), declared with `prost` derives.
//!
//! Declaring the dozen fields by hand keeps the build free of `protoc` and build scripts; the
//! field numbers, types and defaults are those of the specification's `.proto` (proto2, packed
//! `tags` and `geometry`). A tile is a bare list of layers (field 3), so the bytes of tiles
//! holding different layers concatenate into one valid tile: the tile server relies on that to
//! assemble layer groups from per-layer cached tiles.

/// A vector tile: its layers.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Tile {
    #[prost(message, repeated, tag = "3")]
    pub layers: Vec<Layer>,
}

/// An attribute value; exactly one field is set.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Value {
    #[prost(string, optional, tag = "1")]
    pub string_value: Option<String>,
    #[prost(float, optional, tag = "2")]
    pub float_value: Option<f32>,
    #[prost(double, optional, tag = "3")]
    pub double_value: Option<f64>,
    #[prost(int64, optional, tag = "4")]
    pub int_value: Option<i64>,
    #[prost(uint64, optional, tag = "5")]
    pub uint_value: Option<u64>,
    #[prost(sint64, optional, tag = "6")]
    pub sint_value: Option<i64>,
    #[prost(bool, optional, tag = "7")]
    pub bool_value: Option<bool>,
}

/// Geometry type of a feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum GeomType {
    Unknown = 0,
    Point = 1,
    Linestring = 2,
    Polygon = 3,
}

/// One feature: attribute index pairs into the layer's keys/values and a command stream.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Feature {
    #[prost(uint64, optional, tag = "1", default = "0")]
    pub id: Option<u64>,
    #[prost(uint32, repeated, packed = "true", tag = "2")]
    pub tags: Vec<u32>,
    #[prost(enumeration = "GeomType", optional, tag = "3", default = "Unknown")]
    pub r#type: Option<i32>,
    #[prost(uint32, repeated, packed = "true", tag = "4")]
    pub geometry: Vec<u32>,
}

/// A named layer with its shared key and value tables.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Layer {
    #[prost(uint32, required, tag = "15", default = "1")]
    pub version: u32,
    #[prost(string, required, tag = "1")]
    pub name: String,
    #[prost(message, repeated, tag = "2")]
    pub features: Vec<Feature>,
    #[prost(string, repeated, tag = "3")]
    pub keys: Vec<String>,
    #[prost(message, repeated, tag = "4")]
    pub values: Vec<Value>,
    #[prost(uint32, optional, tag = "5", default = "4096")]
    pub extent: Option<u32>,
}

/// Command ids of the geometry stream.
pub(crate) const MOVE_TO: u32 = 1;
pub(crate) const LINE_TO: u32 = 2;
pub(crate) const CLOSE_PATH: u32 = 7;

#[inline]
pub(crate) fn command(id: u32, count: u32) -> u32 {
    (id & 0x7) | (count << 3)
}

#[inline]
pub(crate) fn zigzag(v: i32) -> u32 {
    ((v << 1) ^ (v >> 31)) as u32
}

#[inline]
pub(crate) fn unzigzag(v: u32) -> i32 {
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}
