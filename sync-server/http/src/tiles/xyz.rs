//! XYZ tiles: `/tiles/{set}/{z}/{x}/{y}.{ext}` for vector sets (MVT, gzip as stored) and raster
//! sets (PNG/JPEG/WebP acquisitions in effect at `as-of`).

use super::*;

// ---------------------------------------------------------------------------------------------
// Tiles

pub(super) fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|e| e.trim().starts_with("gzip")))
}

/// A vector tile response: gzip as stored when the client accepts it, 204 when empty.
pub(super) fn vector_response(tile: shikong_tileserver::VectorTile, headers: &HeaderMap) -> ApiResult<Response> {
    let mut resp = if tile.gzip.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else if accepts_gzip(headers) {
        let mut r = (StatusCode::OK, tile.gzip).into_response();
        r.headers_mut().insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (StatusCode::OK, shikong_tileserver::gunzip(&tile.gzip)?).into_response()
    };
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(MVT));
    h.insert("x-cache", HeaderValue::from_static(tile.cache.as_str()));
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if let Some(tx) = tile.tx
        && let Ok(v) = HeaderValue::from_str(&tx.0.to_string())
    {
        h.insert("x-as-of-transaction", v);
    }
    Ok(resp)
}

pub(super) fn image_response(data: Option<Vec<u8>>, set: &RasterSet, date: Option<&str>) -> Response {
    let mut resp = match data {
        None => StatusCode::NO_CONTENT.into_response(),
        Some(d) => {
            let mime = shikong_tileserver::raster::ImageFormat::sniff(&d).unwrap_or(set.format()).mime();
            ([(header::CONTENT_TYPE, mime)], d).into_response()
        }
    };
    if let Some(d) = date
        && let Ok(v) = HeaderValue::from_str(d)
    {
        resp.headers_mut().insert("x-acquisition-date", v);
    }
    resp
}

pub(super) async fn vector_tile(
    state: AppState,
    caller: Caller,
    set: String,
    tms: TileMatrixSet,
    (z, x, y): (u8, u32, u32),
    p: Params,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let as_of = p.instant("as-of")?;
    let fields = properties(&p)?;
    // Fast path: a public layer's current tile already in memory is answered on this thread.
    if as_of.is_none()
        && let Ok(tile) = tms.tile(z, x, y)
        && let Some(t) = state.tiles.memory_tile(&set, tms, tile, fields.as_deref(), |l| public_read(&caller, l))
    {
        return vector_response(t, &headers);
    }
    let tile = blocking(move || {
        let layers = vector_only(resolve(&state, &caller, &set)?, &set)?;
        let tile = tms.tile(z, x, y).map_err(TileServerError::from)?;
        let req = VectorRequest { layers: &layers, tms, tile, as_of, fields: fields.as_deref() };
        Ok(state.tiles.vector_tile(state.store(), &req)?)
    })
    .await?;
    vector_response(tile, &headers)
}

pub(super) async fn raster_tile(
    state: AppState,
    caller: Caller,
    set: String,
    tms: Option<TileMatrixSet>,
    (z, x, y): (u8, u32, u32),
    when: RasterWhen,
) -> ApiResult<Response> {
    blocking(move || {
        let r = raster_only(resolve(&state, &caller, &set)?, &set)?;
        if let Some(t) = tms
            && t != r.tms()
        {
            return Err(ApiError::not_found(format!("raster set `{set}` is tiled in {}, not {t}", r.tms())));
        }
        let tile = r.tms().tile(z, x, y).map_err(TileServerError::from)?;
        let slice = match &when {
            RasterWhen::At(t) => r.slice_at(*t),
            RasterWhen::Named(d) => Some(r.slice_named(d).ok_or_else(|| {
                ApiError::not_found(format!(
                    "raster set `{set}` has no acquisition `{d}` (dates: {})",
                    r.slices.iter().map(|s| s.date.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })?),
        };
        let Some(slice) = slice else { return Ok(image_response(None, &r, None)) };
        let data = state.tiles.raster_tile(slice, tile)?;
        Ok(image_response(data, &r, Some(&slice.date)))
    })
    .await
}

#[derive(Debug)]
pub(super) enum RasterWhen {
    At(Option<Timestamp>),
    Named(String),
}

pub(super) async fn xyz(
    State(state): State<AppState>,
    caller: Caller,
    Path((set, z, x, y)): Path<(String, String, String, String)>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    let (y, ext) = shikong_tiles::split_extension(&y).map_err(|e| ApiError::not_found(e.to_string()))?;
    let zxy = (parse_num("z", &z)?, parse_num("x", &x)?, y);
    let p = Params::new(q.as_deref())?;
    match ext {
        "mvt" | "pbf" => {
            p.only(&["as-of", "properties"])?;
            vector_tile(state, caller, set, TileMatrixSet::WebMercatorQuad, zxy, p, headers).await
        }
        "png" | "jpg" | "jpeg" | "webp" => {
            p.only(&["as-of"])?;
            let when = RasterWhen::At(p.instant("as-of")?);
            raster_tile(state, caller, set, None, zxy, when).await
        }
        other => Err(ApiError::not_found(format!("unknown tile format `.{other}` (use .mvt, .png, .jpg or .webp)"))),
    }
}
