//! Offline packages: MBTiles of the tile sets over an area (`/tiles/packages[/estimate]`).

use super::*;
use shikong_protocol::api;

// ---------------------------------------------------------------------------------------------
// Offline packages

/// A package request body, checked: the wire type is [`api::PackageRequest`].
pub(super) struct PackageRequest {
    set: String,
    area: AreaRef,
    minzoom: u8,
    maxzoom: u8,
    as_of: Option<Timestamp>,
    since: Option<String>,
}

pub(super) enum AreaRef {
    Geometry(Geometry),
    Feature { layer: String, feature: String },
}

pub(super) fn package_request(body: &[u8]) -> ApiResult<PackageRequest> {
    let req: api::PackageRequest = serde_json::from_slice(body).map_err(|e| ApiError::bad_body(e.to_string()))?;
    for (k, z) in [("minzoom", req.minzoom), ("maxzoom", req.maxzoom)] {
        if z > MAX_ZOOM {
            return Err(ApiError::bad_body(format!("`{k}` must be an integer 0–{MAX_ZOOM}")));
        }
    }
    let area = match req.area {
        api::PackageArea::Feature(f) => AreaRef::Feature { layer: f.layer, feature: f.feature },
        api::PackageArea::Geometry(g) if g.get("layer").is_some() => {
            return Err(ApiError::bad_body("`area.feature` (an id or entity code) is required with `area.layer`"));
        }
        api::PackageArea::Geometry(g) => {
            AreaRef::Geometry(geojson::from_json(&g).map_err(|e| ApiError::bad_body(format!("`area`: {e}")))?)
        }
    };
    let as_of = req
        .as_of
        .map(|t| shikong_model::parse_instant(&t).map_err(|e| ApiError::bad_body(format!("`as-of`: {e}"))))
        .transpose()?;
    Ok(PackageRequest { set: req.set, area, minzoom: req.minzoom, maxzoom: req.maxzoom, as_of, since: req.since })
}

pub(super) const MAX_PACKAGE_TILES: u64 = 500_000;

/// Runs `f` with the resolved package spec.
pub(super) fn with_package<R>(
    state: &AppState,
    caller: &Caller,
    req: &PackageRequest,
    f: impl FnOnce(&PackageSpec<'_>) -> ApiResult<R>,
) -> ApiResult<R> {
    let set = resolve(state, caller, &req.set)?;
    let area = match &req.area {
        AreaRef::Geometry(g) => g.clone(),
        AreaRef::Feature { layer, feature } => {
            let l = state.store().layer(layer)?;
            caller.allowed(state, &l, Action::Read)?;
            let f = state
                .store()
                .get(layer, &FeatureKey::parse(feature), None)?
                .ok_or_else(|| ApiError::not_found(format!("layer `{layer}`: no feature `{feature}`")))?;
            f.feature.geometry.ok_or_else(|| ApiError::bad_body(format!("feature `{feature}` has no geometry")))?
        }
    };
    if !matches!(area, Geometry::Polygon(_) | Geometry::MultiPolygon(_)) {
        return Err(ApiError::bad_body("`area` must be a polygon or multipolygon"));
    }
    let since_tx = match (&set, &req.since) {
        (TileSet::Vector(_), Some(s)) => Some(shikong_model::TxId(s.parse().map_err(|_| {
            ApiError::bad_body(format!("`since`: `{s}` is not the transaction number of a package (its shikong:tx)"))
        })?)),
        _ => None,
    };
    let since_date = match (&set, &req.since) {
        (TileSet::Raster(_), Some(s)) => Some(s.as_str()),
        _ => None,
    };
    let content = match &set {
        TileSet::Vector(layers) => PackageContent::Vector { layers },
        TileSet::Raster(r) => PackageContent::Raster { set: r, when: req.as_of },
    };
    let spec = PackageSpec {
        area: &area,
        minzoom: req.minzoom,
        maxzoom: req.maxzoom,
        content,
        since_tx,
        since_date,
        max_tiles: MAX_PACKAGE_TILES,
    };
    f(&spec)
}

pub(super) async fn package_estimate(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req = package_request(&body)?;
    let st = state.clone();
    let e =
        blocking(move || with_package(&st, &caller, &req, |spec| Ok(st.tiles.estimate_package(st.store(), spec)?)))
            .await?;
    let answer = api::PackageEstimate {
        tiles: e.tiles,
        bytes: e.bytes,
        megabytes: (e.bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0,
        exact: e.exact,
        sampled_tiles: e.sampled,
    };
    Ok(axum::Json(answer).into_response())
}

pub(super) async fn package_create(
    State(state): State<AppState>,
    caller: Caller,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let req = package_request(&body)?;
    let st = state.clone();
    let name = req.set.replace(',', "+");
    let (info, bytes) = blocking(move || {
        let dir = st.tiles.config().dir.join("packages");
        std::fs::create_dir_all(&dir).map_err(ApiError::internal)?;
        let tmp = tempfile::Builder::new().suffix(".mbtiles").tempfile_in(&dir).map_err(ApiError::internal)?;
        let info =
            with_package(&st, &caller, &req, |spec| Ok(st.tiles.write_package(st.store(), spec, tmp.path())?))?;
        let bytes = std::fs::read(tmp.path()).map_err(ApiError::internal)?;
        Ok((info, bytes))
    })
    .await?;
    let mut resp = ([(header::CONTENT_TYPE, "application/vnd.sqlite3")], bytes).into_response();
    let h = resp.headers_mut();
    for (k, v) in [
        ("x-tiles", info.tiles.to_string()),
        ("x-tile-bytes", info.bytes.to_string()),
        ("x-tile-matrix-set", info.tms.id().to_owned()),
        ("content-disposition", format!("attachment; filename=\"{name}.mbtiles\"")),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    if let Some(tx) = info.tx
        && let Ok(v) = HeaderValue::from_str(&tx.0.to_string())
    {
        h.insert("x-package-transaction", v);
    }
    if let Some(d) = info.date
        && let Ok(v) = HeaderValue::from_str(&d)
    {
        h.insert("x-acquisition-date", v);
    }
    Ok(resp)
}
