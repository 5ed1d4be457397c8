//! Offline packages: MBTiles of the tile sets over an area (`/tiles/packages[/estimate]`).

use super::*;

// ---------------------------------------------------------------------------------------------
// Offline packages

/// A package request body.
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
    let j: Json = serde_json::from_slice(body).map_err(|e| ApiError::bad_body(format!("not JSON: {e}")))?;
    let obj = j.as_object().ok_or_else(|| ApiError::bad_body("expected a JSON object"))?;
    for k in obj.keys() {
        if !["set", "area", "minzoom", "maxzoom", "as-of", "since"].contains(&k.as_str()) {
            return Err(ApiError::bad_body(format!(
                "unknown member `{k}` (known: set, area, minzoom, maxzoom, as-of, since)"
            )));
        }
    }
    let set = obj
        .get("set")
        .and_then(Json::as_str)
        .ok_or_else(|| ApiError::bad_body("`set` (a layer, `a,b`, or a raster set) is required"))?;
    let zoom = |k: &str, d: u8| -> ApiResult<u8> {
        match obj.get(k) {
            None => Ok(d),
            Some(v) => v
                .as_u64()
                .filter(|z| *z <= u64::from(MAX_ZOOM))
                .map(|z| z as u8)
                .ok_or_else(|| ApiError::bad_body(format!("`{k}` must be an integer 0–{MAX_ZOOM}"))),
        }
    };
    let area = match obj.get("area") {
        Some(Json::Object(a)) if a.contains_key("layer") => AreaRef::Feature {
            layer: a.get("layer").and_then(Json::as_str).unwrap_or_default().to_owned(),
            feature: a
                .get("feature")
                .and_then(Json::as_str)
                .ok_or_else(|| {
                    ApiError::bad_body("`area.feature` (an id or entity code) is required with `area.layer`")
                })?
                .to_owned(),
        },
        Some(g @ Json::Object(_)) => {
            AreaRef::Geometry(geojson::from_json(g).map_err(|e| ApiError::bad_body(format!("`area`: {e}")))?)
        }
        _ => {
            return Err(ApiError::bad_body(
                "`area` is required: a GeoJSON polygon (lon/lat) or {\"layer\": …, \"feature\": …}",
            ));
        }
    };
    let as_of = obj
        .get("as-of")
        .and_then(Json::as_str)
        .map(|t| shikong_model::parse_instant(t).map_err(|e| ApiError::bad_body(format!("`as-of`: {e}"))))
        .transpose()?;
    Ok(PackageRequest {
        set: set.to_owned(),
        area,
        minzoom: zoom("minzoom", 12)?,
        maxzoom: zoom("maxzoom", 18)?,
        as_of,
        since: obj.get("since").map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned)),
    })
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
    Ok(json_response(
        "application/json",
        &json!({"tiles": e.tiles, "bytes": e.bytes, "megabytes": (e.bytes as f64 / 1_048_576.0 * 100.0).round() / 100.0, "exact": e.exact, "sampledTiles": e.sampled}),
    ))
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
