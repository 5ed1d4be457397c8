//! Vector tiles from the store: generation of one layer's tile, and serving layers and layer
//! groups through the cache.
//!
//! A group's tile is the concatenation of its layers' one-layer tiles (a tile is a list of
//! layers, so the bytes concatenate into a valid tile): each layer is cached on its own, and an
//! edit in one layer invalidates only that layer's tiles, whatever groups it appears in.

use bytes::Bytes;

use jiff::Timestamp;
use shikong_model::Value;
use shikong_store::{FeatureStore, Layer, Query};
use shikong_tiles::{EncodeOptions, LayerBuilder, TileId, TileMatrixSet};

use crate::cache::CacheKey;
use crate::error::{Result, TileServerError};
use crate::{CacheStatus, TileService, VectorRequest, VectorTile, gunzip, gzip};

/// Attributes every tile feature carries besides the layer's fields.
pub const SYSTEM_ATTRIBUTES: [&str; 2] = ["id", "code"];

/// Renders one layer's tile (uncompressed MVT bytes; empty when no feature falls in the tile).
/// Attributes: `id` (entity UUID), `code`, then the layer's fields in schema order; `fields`
/// keeps only the named ones.
pub fn render_layer(
    store: &dyn FeatureStore,
    layer: &Layer,
    tms: TileMatrixSet,
    tile: TileId,
    as_of: Option<Timestamp>,
    fields: Option<&[String]>,
) -> Result<Vec<u8>> {
    let opts = EncodeOptions::for_zoom(tile.z);
    let bbox = tms.tile_bbox(tile, opts.buffer_fraction());
    let proj = tms.projector(tile, opts.extent);
    let mut builder = LayerBuilder::new(layer.name(), opts);
    let keep = |name: &str| fields.is_none_or(|f| f.iter().any(|k| k == name));
    let (with_id, with_code) = (keep("id"), keep("code"));
    let columns: Vec<&str> =
        layer.schema().fields.iter().map(|f| f.name.as_str()).filter(|n| fields.is_none_or(|_| keep(n))).collect();
    let q = Query { bbox: Some(bbox), as_of, ..Query::layer(layer.name()) };
    let mut props: Vec<(&str, Value)> = Vec::with_capacity(columns.len() + 2);
    store.query(&q, &mut |sf| {
        let f = sf.feature;
        let Some(g) = &f.geometry else { return true };
        props.clear();
        if with_id {
            props.push(("id", Value::Text(f.id.to_string())));
        }
        if with_code {
            props.push(("code", Value::Text(f.code)));
        }
        let mut owned = f.properties;
        for c in &columns {
            if let Some(v) = owned.remove(*c) {
                props.push((c, v));
            }
        }
        builder.add(g, &proj, None, props.iter().map(|(k, v)| (*k, v)));
        true
    })?;
    Ok(builder.into_tile_bytes())
}

/// The cache variant of an attribute selection, after checking every name exists in one of the
/// layers.
pub(crate) fn variant(layers: &[Layer], fields: Option<&[String]>) -> Result<String> {
    let Some(fields) = fields else { return Ok(String::new()) };
    for f in fields {
        let known = SYSTEM_ATTRIBUTES.contains(&f.as_str()) || layers.iter().any(|l| l.schema().field(f).is_some());
        if !known {
            let mut names: Vec<String> = SYSTEM_ATTRIBUTES.iter().map(|s| (*s).to_owned()).collect();
            for l in layers {
                names.extend(l.schema().fields.iter().map(|f| f.name.clone()));
            }
            return Err(TileServerError::NoSuchField { field: f.clone(), known: names.join(", ") });
        }
    }
    let mut v: Vec<&str> = fields.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    Ok(v.join(","))
}

impl TileService {
    /// Serves a vector tile from the cache, generating and caching the layers that are missing.
    pub fn vector_tile(&self, store: &dyn FeatureStore, req: &VectorRequest<'_>) -> Result<VectorTile> {
        if req.layers.is_empty() {
            return Err(TileServerError::Invalid("a tile needs at least one layer".into()));
        }
        self.refresh(store)?;
        let variant = variant(req.layers, req.fields)?;
        let (tx, as_of) = match req.as_of {
            None => (None, None),
            Some(t) => match self.tx_at(store, t)? {
                // Before the store's first transaction: nothing existed.
                None => return Ok(VectorTile { gzip: Bytes::new(), cache: CacheStatus::Hit, tx: None }),
                // Rendering as of the transaction's own instant keeps content and key in step
                // even if a transaction commits meanwhile.
                Some((tx, at)) => (Some(tx), Some(at)),
            },
        };
        let cache = self.cache()?;
        let mut parts = Vec::with_capacity(req.layers.len());
        let (mut hits, mut misses) = (0, 0);
        for layer in req.layers {
            let key = CacheKey {
                layer: layer.name(),
                tms: req.tms.code(),
                z: req.tile.z,
                x: req.tile.x,
                y: req.tile.y,
                tx: tx.map_or(0, |t| t.0),
                variant: &variant,
            };
            if let Some(data) = self.hot.get(&key) {
                self.memory_hit(&key);
                hits += 1;
                parts.push(data);
                continue;
            }
            let epoch = self.epoch();
            if let Some(data) = cache.get(&key)? {
                hits += 1;
                let data = Bytes::from(data);
                self.hot.put(&key, data.clone(), || self.epoch() == epoch);
                parts.push(data);
                continue;
            }
            misses += 1;
            let raw = render_layer(store, layer, req.tms, req.tile, as_of, req.fields)?;
            let gz = Bytes::from(gzip(&raw)?);
            self.hot.put(&key, gz.clone(), || self.epoch() == epoch);
            cache.put(&key, &gz, epoch, &|| self.epoch())?;
            parts.push(gz);
        }
        let status = match (hits, misses) {
            (_, 0) => CacheStatus::Hit,
            (0, _) => CacheStatus::Miss,
            _ => CacheStatus::Partial,
        };
        let gzip = match parts.pop() {
            Some(only) if parts.is_empty() => only,
            last => {
                let mut raw = Vec::new();
                for p in parts.iter().chain(last.as_ref()) {
                    raw.extend(gunzip(p)?);
                }
                Bytes::from(crate::gzip(&raw)?)
            }
        };
        Ok(VectorTile { gzip, cache: status, tx })
    }
}
