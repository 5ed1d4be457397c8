//! `kernel-density`: a heat map of points (quartic kernel, QGIS's and ArcGIS's) rendered as a
//! raster tile set, so every map client (the web map, the apps, WMTS and XYZ clients such as
//! QGIS, offline packages) shows it like imagery.
//!
//! Each run renders Web Mercator PNG tiles from `min_zoom` to `max_zoom` over the points' extent
//! grown by the bandwidth, writes them into an MBTiles file and imports it as a slice of the raster
//! set (`set`, default `density-<collection>`) dated now: the set is a time series of the surfaces
//! computed, as the raster model keeps every acquisition. The colour ramp runs from transparent to
//! dark red over `[0, peak]`, with the peak the surface's highest value at the points themselves
//! (where a quartic surface peaks), so tiles of one run share one scale.

use axum::http::StatusCode;
use shikong_analysis::{LonLat, kde};
use shikong_auth::Role;
use shikong_protocol::api::processes::{DensityResult, KernelDensityInputs};
use shikong_tiles::{TileId, TileMatrixSet};

use super::run::{Ctx, Outcome, Output, analysis_error, bad_input, read_layer, representative};
use crate::access::Caller;
use crate::problem::{ApiError, ApiResult};

/// Most tiles one run renders (each is 65,536 density evaluations).
pub(crate) const MAX_TILES: usize = 4_096;
const SIZE: usize = 256;

/// The colour of a density `v` of `peak`: transparent below 1 %, then yellow → orange → red →
/// dark red with growing opacity.
fn colour(v: f64, peak: f64) -> [u8; 4] {
    let t = if peak > 0.0 { (v / peak).clamp(0.0, 1.0) } else { 0.0 };
    if t < 0.01 {
        return [0, 0, 0, 0];
    }
    let stops: [(f64, [f64; 3]); 4] = [
        (0.0, [255.0, 255.0, 178.0]),
        (0.35, [254.0, 178.0, 76.0]),
        (0.7, [240.0, 59.0, 32.0]),
        (1.0, [128.0, 0.0, 38.0]),
    ];
    let k = stops.windows(2).position(|w| t <= w[1].0).unwrap_or(2);
    let ((t0, c0), (t1, c1)) = (stops[k], stops[k + 1]);
    let f = (t - t0) / (t1 - t0);
    let c = |i: usize| (c0[i] + (c1[i] - c0[i]) * f).round() as u8;
    [c(0), c(1), c(2), (90.0 + 150.0 * t).round() as u8]
}

/// The tiles of zoom `z` covering the box.
fn tiles_over(b: [f64; 4], z: u8) -> Vec<TileId> {
    let tms = TileMatrixSet::WebMercatorQuad;
    let (a, c) = (tms.tile_at(b[0], b[3], z), tms.tile_at(b[2], b[1], z));
    (a.y..=c.y).flat_map(|y| (a.x..=c.x).map(move |x| TileId { z, x, y })).collect()
}

fn png(rgba: Vec<u8>) -> ApiResult<Vec<u8>> {
    let img =
        image::RgbaImage::from_raw(SIZE as u32, SIZE as u32, rgba).ok_or_else(|| ApiError::internal("tile size"))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(ApiError::internal)?;
    Ok(out.into_inner())
}

pub(crate) fn kernel_density(ctx: &Ctx<'_>, i: KernelDensityInputs) -> ApiResult<Outcome> {
    let caller = Caller { principal: ctx.principal.clone(), client: Default::default() };
    caller.require_role(
        &[Role::Admin, Role::Office],
        "publishing a density surface as a raster tile set is office or admin work",
    )?;
    let (min_zoom, max_zoom) = (i.min_zoom.unwrap_or(10), i.max_zoom.unwrap_or(15));
    if min_zoom > max_zoom || max_zoom > 20 {
        return Err(bad_input("max_zoom", "zooms with min_zoom ≤ max_zoom ≤ 20"));
    }
    let set = i.set.clone().unwrap_or_else(|| format!("density-{}", i.collection.replace('_', "-")));
    shikong_tileserver::raster::check_set_name(&set).map_err(|e| bad_input("set", e))?;
    let read = read_layer(ctx, &i.collection, i.as_of.as_deref(), i.filter.as_ref())?;
    let mut points: Vec<LonLat> = Vec::new();
    let mut weights: Vec<f64> = Vec::new();
    for f in &read.features {
        let Some(p) = f.feature.geometry.as_ref().and_then(representative) else { continue };
        let w = match &i.weight_field {
            None => 1.0,
            Some(name) => match f.feature.properties.get(name) {
                Some(shikong_model::Value::Integer(v)) => *v as f64,
                Some(shikong_model::Value::Real(v)) if v.is_finite() => *v,
                _ => continue,
            },
        };
        points.push(p);
        weights.push(w);
    }
    if let Some(name) = &i.weight_field
        && !read
            .layer
            .schema()
            .field(name)
            .is_some_and(|f| matches!(f.ty, shikong_model::FieldType::Integer | shikong_model::FieldType::Real))
    {
        return Err(bad_input("weight_field", format!("`{name}` is not a numeric field of `{}`", read.layer.name())));
    }
    if points.is_empty() {
        return Err(bad_input("collection", "no feature has a geometry (and a weight)"));
    }
    let w = i.weight_field.as_ref().map(|_| weights.as_slice());
    let h = match i.bandwidth {
        Some(h) => h,
        None => kde::silverman_bandwidth(&points, w).map_err(analysis_error)?,
    };
    // The extent grown by the bandwidth (degrees of latitude ≈ 111 km; of longitude by cos φ).
    let (mut b, mid) = ([f64::MAX, f64::MAX, f64::MIN, f64::MIN], points[0][1]);
    for p in &points {
        b = [b[0].min(p[0]), b[1].min(p[1]), b[2].max(p[0]), b[3].max(p[1])];
    }
    let (dy, dx) = (h / 110_574.0, h / (111_320.0 * mid.to_radians().cos().max(0.01)));
    let b = [b[0] - dx, b[1] - dy, b[2] + dx, b[3] + dy];
    let plan: Vec<TileId> = (min_zoom..=max_zoom).flat_map(|z| tiles_over(b, z)).collect();
    if plan.len() > MAX_TILES {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too-many-tiles",
            format!("{} tiles from zoom {min_zoom} to {max_zoom}; at most {MAX_TILES}: lower `max_zoom` or narrow the points with `filter`", plan.len()),
        )
        .with("input", "max_zoom")
        .with("max", MAX_TILES as u64));
    }
    ctx.check()?;
    (ctx.progress)(15, "计算密度峰值 (finding the peak)");
    let peak = ctx.analyse(|ctl| kde::kde_at_with(&points, w, h, &points, ctl))?.into_iter().fold(0.0, f64::max);
    // In the jobs' folder, whose sweep at start removes what a crash leaves.
    std::fs::create_dir_all(ctx.state.processes.dir()).map_err(ApiError::internal)?;
    let dir =
        tempfile::Builder::new().prefix("kde-").tempdir_in(ctx.state.processes.dir()).map_err(ApiError::internal)?;
    let file = dir.path().join("density.mbtiles");
    let db = rusqlite::Connection::open(&file).map_err(ApiError::internal)?;
    db.execute_batch(
        "CREATE TABLE metadata (name TEXT, value TEXT); CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB); BEGIN;",
    )
    .map_err(ApiError::internal)?;
    let tms = TileMatrixSet::WebMercatorQuad;
    let mut written = 0usize;
    for (n, t) in plan.iter().enumerate() {
        ctx.check()?;
        if n % 16 == 0 {
            (ctx.progress)((20 + 75 * n / plan.len()) as u8, "渲染密度瓦片 (rendering tiles)");
        }
        let scale = (1u64 << t.z) as f64 * SIZE as f64;
        let centres: Vec<LonLat> = (0..SIZE * SIZE)
            .map(|k| {
                let (px, py) = ((k % SIZE) as f64 + 0.5, (k / SIZE) as f64 + 0.5);
                let (lon, lat) = tms
                    .lonlat((f64::from(t.x) * SIZE as f64 + px) / scale, (f64::from(t.y) * SIZE as f64 + py) / scale);
                [lon, lat]
            })
            .collect();
        let d = ctx.analyse(|ctl| kde::kde_at_with(&points, w, h, &centres, ctl))?;
        if d.iter().all(|v| *v <= peak * 0.01) {
            continue; // an empty tile: clients show nothing where there is none
        }
        let rgba: Vec<u8> = d.iter().flat_map(|v| colour(*v, peak)).collect();
        let rows = 1u32 << t.z;
        db.execute(
            "INSERT INTO tiles VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![t.z, t.x, rows - 1 - t.y, png(rgba)?],
        )
        .map_err(ApiError::internal)?;
        written += 1;
    }
    if written == 0 {
        return Err(bad_input("collection", "the surface is empty at these zooms"));
    }
    let bounds = format!("{},{},{},{}", b[0], b[1], b[2], b[3]);
    for (k, v) in [
        ("name", set.as_str()),
        ("format", "png"),
        ("type", "overlay"),
        ("bounds", bounds.as_str()),
        ("minzoom", &min_zoom.to_string()),
        ("maxzoom", &max_zoom.to_string()),
    ] {
        db.execute("INSERT INTO metadata VALUES (?1, ?2)", [k, v]).map_err(ApiError::internal)?;
    }
    db.execute_batch("COMMIT; CREATE UNIQUE INDEX tile_index ON tiles (zoom_level, tile_column, tile_row);")
        .map_err(ApiError::internal)?;
    drop(db);
    ctx.check()?;
    // Whole seconds: the raster registry keys slices by their instant at microseconds.
    let now = jiff::Timestamp::from_second(jiff::Timestamp::now().as_second()).map_err(ApiError::internal)?;
    let now = shikong_model::time::beijing(now);
    let title = format!("{} 核密度", read.layer.display_name());
    let imp = shikong_tileserver::raster::RasterImport {
        set: &set,
        date: &now,
        title: Some(&title),
        kind: "density",
        crs: shikong_tileserver::raster::RasterCrs::Cgcs2000,
        source: &file,
    };
    let slice = ctx.state.tiles.import_raster(&imp).map_err(|e| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("importing the density tiles: {e}"))
    })?;
    let doc = DensityResult {
        set: set.clone(),
        date: slice.date.clone(),
        bandwidth_m: h,
        bandwidth_rule: if i.bandwidth.is_some() { "given" } else { "silverman" }.into(),
        peak_per_km2: peak * 1e6,
        points: points.len() as u64,
        tiles: written as u64,
        minzoom: slice.minzoom,
        maxzoom: slice.maxzoom,
        bounds: [slice.bounds.min_x, slice.bounds.min_y, slice.bounds.max_x, slice.bounds.max_y],
        tilejson: format!("/tiles/{set}.json"),
        xyz: format!("/tiles/{set}/{{z}}/{{x}}/{{y}}.png"),
    };
    Ok(Outcome { output: Output::Document(serde_json::to_value(doc).map_err(ApiError::internal)?), saving: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ramp_is_transparent_at_zero_and_opaque_at_the_peak() {
        assert_eq!(colour(0.0, 1.0), [0, 0, 0, 0]);
        assert_eq!(colour(1.0, 1.0), [128, 0, 38, 240]);
        assert_eq!(colour(2.0, 1.0), [128, 0, 38, 240], "clamped");
        let mid = colour(0.5, 1.0);
        assert!(mid[3] > 90 && mid[3] < 240, "{mid:?}");
    }

    #[test]
    fn tiles_cover_the_box() {
        // 0.12° × 0.09° at z12 (tiles about 0.088° wide): three columns, two rows.
        let t = tiles_over([114.33, 30.47, 114.45, 30.56], 12);
        assert_eq!(t.len(), 6, "{t:?}");
        let centre = TileMatrixSet::WebMercatorQuad.tile_at(114.39, 30.515, 12);
        assert!(t.contains(&centre), "{t:?}");
    }
}
