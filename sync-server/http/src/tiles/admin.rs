//! Administration: raster imports and deletions, tile cache rebuilds.

use shikong_formats::limits::{Exceeded, Limit};

use super::*;

// ---------------------------------------------------------------------------------------------
// Administration: raster imports, cache rebuilds

pub(super) async fn raster_import(
    State(state): State<AppState>,
    caller: Caller,
    Path(set): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    caller.require_role(&[Role::Admin], "raster sets are managed by administrators")?;
    let p = Params::new(q.as_deref())?;
    p.only(&["date", "title", "kind", "crs"])?;
    let date = p
        .get("date")
        .ok_or_else(|| ApiError::bad_parameter("date", "the acquisition date is required (2023-08-01)"))?
        .to_owned();
    shikong_model::parse_instant(&date).map_err(|e| ApiError::bad_parameter("date", e))?;
    let title = p.get("title").map(str::to_owned);
    let kind = p.get("kind").unwrap_or("imagery").to_owned();
    // The datum of the file's tiles: `crs=gcj02` for Amap/Tencent basemaps (served cut into
    // place); checked before the upload is read, so a bad value changes nothing.
    let crs = match p.get("crs") {
        Some(c) => RasterCrs::parse(c).map_err(|e| ApiError::bad_parameter("crs", e))?,
        None => RasterCrs::default(),
    };
    shikong_tileserver::raster::check_set_name(&set)?;
    // Stream the upload to a file (imagery is larger than memory should hold), at most
    // `max_raster_upload` bytes, written on a blocking thread (not the store budget: an upload
    // lasts as long as the client sends). A refused upload leaves nothing: the temporary file
    // is removed when `tmp` drops.
    let max = state.config.max_raster_upload;
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|len| *len > max) {
        return Err(Exceeded::declared(Limit::UploadBytes, "the upload (Content-Length)", len, max).into());
    }
    let dir = state.tiles.config().dir.join("incoming");
    let tmp = blocking(move || {
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        tempfile::Builder::new().tempfile_in(&dir).map_err(ApiError::internal)
    })
    .await?;
    let file = tmp.reopen().map_err(ApiError::internal)?;
    let (chunks, mut incoming) = tokio::sync::mpsc::channel::<axum::body::Bytes>(16);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        use std::io::Write as _;
        let mut file = std::io::BufWriter::with_capacity(1 << 20, file);
        while let Some(chunk) = incoming.blocking_recv() {
            file.write_all(&chunk)?;
        }
        file.flush()
    });
    let mut received = 0u64;
    let mut body = body;
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let frame = frame.map_err(|e| ApiError::bad_body(format!("upload interrupted: {e}")))?;
        if let Ok(data) = frame.into_data() {
            received += data.len() as u64;
            if received > max {
                return Err(Exceeded::stopped(Limit::UploadBytes, "the upload", received, max).into());
            }
            if chunks.send(data).await.is_err() {
                break; // the writer failed: its error follows
            }
        }
    }
    drop(chunks);
    writer.await.map_err(ApiError::internal)?.map_err(ApiError::internal)?;
    let st = state.clone();
    let slice = blocking(move || {
        let imp =
            RasterImport { set: &set, date: &date, title: title.as_deref(), kind: &kind, crs, source: tmp.path() };
        Ok(st.tiles.import_raster(&imp)?)
    })
    .await?;
    let doc = json!({
        "set": slice.set, "date": slice.date, "tileMatrixSet": slice.tms.id(), "format": slice.format.ext(),
        "sourceCrs": slice.crs.as_str(),
        "minzoom": slice.minzoom, "maxzoom": slice.maxzoom, "tiles": slice.tiles, "bytes": slice.bytes,
        "bounds": [slice.bounds.min_x, slice.bounds.min_y, slice.bounds.max_x, slice.bounds.max_y],
    });
    Ok((StatusCode::CREATED, [(header::CONTENT_TYPE, "application/json")], doc.to_string()).into_response())
}

pub(super) async fn raster_delete(
    State(state): State<AppState>,
    caller: Caller,
    Path(set): Path<String>,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    caller.require_role(&[Role::Admin], "raster sets are managed by administrators")?;
    let p = Params::new(q.as_deref())?;
    p.only(&["date"])?;
    let date = p.get("date").map(str::to_owned);
    let st = state.clone();
    let n = blocking(move || Ok(st.tiles.delete_raster(&set, date.as_deref())?)).await?;
    Ok(json_response("application/json", &json!({"deleted": n})))
}

/// `POST /tiles/cache/rebuild?layer=&bbox=`: drops a layer's tiles (in an area, or all), or every
/// layer's. Tiles are regenerated on demand (packages pre-generate the areas they cover).
pub(super) async fn cache_rebuild(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(q): RawQuery,
) -> ApiResult<Response> {
    caller.require_role(EDITORS, "tile caches are rebuilt by office staff (内业) and administrators")?;
    let p = Params::new(q.as_deref())?;
    p.only(&["layer", "bbox"])?;
    let layer = p.get("layer").map(str::to_owned);
    let bbox = p.bbox()?;
    let st = state.clone();
    let n = blocking(move || {
        Ok(match (&layer, bbox) {
            (Some(l), Some(b)) => {
                st.store().layer(l)?;
                st.tiles.invalidate(l, &[b])?
            }
            (Some(l), None) => {
                st.store().layer(l)?;
                st.tiles.invalidate_layer(l)?
            }
            (None, Some(b)) => {
                let mut n = 0;
                for l in st.store().layers()? {
                    n += st.tiles.invalidate(l.name(), &[b])?;
                }
                n
            }
            (None, None) => st.tiles.invalidate_all()?,
        })
    })
    .await?;
    Ok(json_response("application/json", &json!({"deletedTiles": n})))
}
