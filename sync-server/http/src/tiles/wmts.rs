//! WMTS 1.0.0: capabilities, KVP and RESTful GetTile over the raster sets, acquisition dates as
//! the `Time` dimension; errors as OWS exception reports.

use super::*;

// ---------------------------------------------------------------------------------------------
// WMTS 1.0.0

pub(super) fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(super) fn wmts_exception(status: StatusCode, code: &str, locator: &str, text: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ows:ExceptionReport xmlns:ows=\"http://www.opengis.net/ows/1.1\" version=\"1.1.0\" xml:lang=\"zh-CN\"><ows:Exception exceptionCode=\"{code}\" locator=\"{}\"><ows:ExceptionText>{}</ows:ExceptionText></ows:Exception></ows:ExceptionReport>",
        xml_escape(locator),
        xml_escape(text)
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

pub(super) fn capabilities_xml(base: &str, sets: &[RasterSet]) -> String {
    use std::fmt::Write as _;
    let mut x = String::with_capacity(16 * 1024);
    let kvp = format!("{base}/wmts?");
    let op = |name: &str| {
        format!(
            "<ows:Operation name=\"{name}\"><ows:DCP><ows:HTTP><ows:Get xlink:href=\"{}\"><ows:Constraint name=\"GetEncoding\"><ows:AllowedValues><ows:Value>KVP</ows:Value></ows:AllowedValues></ows:Constraint></ows:Get><ows:Get xlink:href=\"{base}/wmts/1.0.0/\"><ows:Constraint name=\"GetEncoding\"><ows:AllowedValues><ows:Value>RESTful</ows:Value></ows:AllowedValues></ows:Constraint></ows:Get></ows:HTTP></ows:DCP></ows:Operation>",
            xml_escape(&kvp)
        )
    };
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Capabilities xmlns=\"http://www.opengis.net/wmts/1.0\" xmlns:ows=\"http://www.opengis.net/ows/1.1\" xmlns:xlink=\"http://www.w3.org/1999/xlink\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:gml=\"http://www.opengis.net/gml\" xsi:schemaLocation=\"http://www.opengis.net/wmts/1.0 http://schemas.opengis.net/wmts/1.0/wmtsGetCapabilities_response.xsd\" version=\"1.0.0\">\n\
<ows:ServiceIdentification><ows:Title>shikong 时空 影像与历史地图 WMTS</ows:Title><ows:Abstract>影像、地形晕渲与历史扫描图的多时相瓦片服务（Time 维度为采集日期）</ows:Abstract><ows:ServiceType>OGC WMTS</ows:ServiceType><ows:ServiceTypeVersion>1.0.0</ows:ServiceTypeVersion></ows:ServiceIdentification>\n\
<ows:OperationsMetadata>{}{}</ows:OperationsMetadata>\n<Contents>\n",
        op("GetCapabilities"),
        op("GetTile")
    );
    let mut used: Vec<(TileMatrixSet, u8)> = Vec::new();
    for r in sets {
        let b = r.bounds();
        let tms = r.tms();
        match used.iter_mut().find(|(t, _)| *t == tms) {
            Some(u) => u.1 = u.1.max(r.maxzoom()),
            None => used.push((tms, r.maxzoom())),
        }
        let ext = r.format().ext();
        let newest = r.slices.last().map(|s| s.date.clone()).unwrap_or_default();
        let _ = write!(
            x,
            "<Layer><ows:Title>{}</ows:Title><ows:Abstract>{}</ows:Abstract><ows:WGS84BoundingBox><ows:LowerCorner>{} {}</ows:LowerCorner><ows:UpperCorner>{} {}</ows:UpperCorner></ows:WGS84BoundingBox><ows:Identifier>{}</ows:Identifier><Style isDefault=\"true\"><ows:Identifier>default</ows:Identifier></Style><Format>{}</Format>",
            xml_escape(r.title()),
            xml_escape(r.kind()),
            b.min_x,
            b.min_y,
            b.max_x,
            b.max_y,
            xml_escape(&r.name),
            r.format().mime()
        );
        let _ = write!(
            x,
            "<Dimension><ows:Identifier>Time</ows:Identifier><ows:Title>采集日期</ows:Title><ows:UOM>ISO8601</ows:UOM><Default>{}</Default><Current>true</Current>",
            xml_escape(&newest)
        );
        for s in &r.slices {
            let _ = write!(x, "<Value>{}</Value>", xml_escape(&s.date));
        }
        let _ = write!(
            x,
            "</Dimension><TileMatrixSetLink><TileMatrixSet>{}</TileMatrixSet><TileMatrixSetLimits>",
            tms.id()
        );
        for z in r.minzoom()..=r.maxzoom() {
            if let Some(l) = tms.tiles_for(&b, z, 0.0) {
                let _ = write!(
                    x,
                    "<TileMatrixLimits><TileMatrix>{z}</TileMatrix><MinTileRow>{}</MinTileRow><MaxTileRow>{}</MaxTileRow><MinTileCol>{}</MinTileCol><MaxTileCol>{}</MaxTileCol></TileMatrixLimits>",
                    l.min_y, l.max_y, l.min_x, l.max_x
                );
            }
        }
        let _ = writeln!(
            x,
            "</TileMatrixSetLimits></TileMatrixSetLink><ResourceURL format=\"{}\" resourceType=\"tile\" template=\"{}/wmts/1.0.0/{}/{{Style}}/{{Time}}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}.{ext}\"/></Layer>",
            r.format().mime(),
            xml_escape(base),
            xml_escape(&r.name)
        );
    }
    for (tms, maxz) in used {
        let (supported, wkss, corner) = match tms {
            TileMatrixSet::WebMercatorQuad => {
                let (ox, oy) = tms.origin();
                (
                    "urn:ogc:def:crs:EPSG::3857",
                    "<WellKnownScaleSet>urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible</WellKnownScaleSet>",
                    format!("{ox:.10} {oy:.10}"),
                )
            }
            // EPSG:4490 axis order is latitude, longitude.
            TileMatrixSet::Cgcs2000Quad => ("urn:ogc:def:crs:EPSG::4490", "", "90 -180".to_owned()),
        };
        let _ = write!(
            x,
            "<TileMatrixSet><ows:Identifier>{}</ows:Identifier><ows:SupportedCRS>{supported}</ows:SupportedCRS>{wkss}",
            tms.id()
        );
        for z in 0..=maxz {
            let (w, h) = tms.matrix_size(z);
            let _ = write!(
                x,
                "<TileMatrix><ows:Identifier>{z}</ows:Identifier><ScaleDenominator>{}</ScaleDenominator><TopLeftCorner>{corner}</TopLeftCorner><TileWidth>256</TileWidth><TileHeight>256</TileHeight><MatrixWidth>{w}</MatrixWidth><MatrixHeight>{h}</MatrixHeight></TileMatrix>",
                tms.scale_denominator(z)
            );
        }
        x.push_str("</TileMatrixSet>\n");
    }
    let _ = write!(
        x,
        "</Contents>\n<ServiceMetadataURL xlink:href=\"{}/wmts/1.0.0/WMTSCapabilities.xml\"/>\n</Capabilities>\n",
        xml_escape(base)
    );
    x
}

pub(super) async fn wmts_capabilities(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    let base = state.base_url(&headers);
    let st = state.clone();
    let sets = blocking(move || Ok(st.tiles.raster_sets()?)).await?;
    Ok(([(header::CONTENT_TYPE, "application/xml")], capabilities_xml(&base, &sets)).into_response())
}

/// Raster tile errors become OWS exception reports (404s become empty tiles' 204 already).
pub(super) fn wmts_error(e: ApiError) -> Response {
    let code = if e.status == StatusCode::NOT_FOUND { "TileOutOfRange" } else { "InvalidParameterValue" };
    let status = if e.status == StatusCode::NOT_FOUND { StatusCode::NOT_FOUND } else { e.status };
    wmts_exception(status, code, "", &e.detail)
}

pub(super) async fn wmts_kvp(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    // OWS key-value pairs: parameter names are case-insensitive.
    let pairs = kvp_pairs(q.as_deref().unwrap_or(""));
    let get = |k: &str| pairs.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str());
    if get("service").is_some_and(|s| !s.eq_ignore_ascii_case("WMTS")) {
        return wmts_exception(StatusCode::BAD_REQUEST, "InvalidParameterValue", "SERVICE", "SERVICE must be WMTS");
    }
    match get("request").map(str::to_ascii_lowercase).as_deref() {
        Some("getcapabilities") => match wmts_capabilities(State(state), headers).await {
            Ok(r) => r,
            Err(e) => wmts_error(e),
        },
        Some("gettile") => {
            let mut vals = Vec::new();
            for k in ["layer", "tilematrixset", "tilematrix", "tilerow", "tilecol"] {
                match get(k) {
                    Some(v) => vals.push(v.to_owned()),
                    None => {
                        return wmts_exception(
                            StatusCode::BAD_REQUEST,
                            "MissingParameterValue",
                            &k.to_ascii_uppercase(),
                            &format!("GetTile needs {}", k.to_ascii_uppercase()),
                        );
                    }
                }
            }
            let when = match get("time") {
                Some(t)
                    if !t.is_empty() && !t.eq_ignore_ascii_case("default") && !t.eq_ignore_ascii_case("current") =>
                {
                    RasterWhen::Named(t.to_owned())
                }
                _ => RasterWhen::At(None),
            };
            wmts_tile(state, caller, vals, when).await
        }
        _ => wmts_exception(
            StatusCode::BAD_REQUEST,
            "OperationNotSupported",
            "REQUEST",
            "REQUEST must be GetCapabilities or GetTile",
        ),
    }
}

/// Decoded KVP pairs (invalid percent-escapes are kept as they are: WMTS values are ASCII).
pub(super) fn kvp_pairs(q: &str) -> Vec<(String, String)> {
    let dec = |s: &str| -> String {
        let s = s.replace('+', " ");
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%'
                && let Some(v) = s.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
            out.push(b[i]);
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

/// `vals`: layer, tile matrix set, tile matrix, row, col.
pub(super) async fn wmts_tile(state: AppState, caller: Caller, vals: Vec<String>, when: RasterWhen) -> Response {
    let parsed = (|| -> ApiResult<(TileMatrixSet, (u8, u32, u32))> {
        let tms = TileMatrixSet::from_id(&vals[1]).map_err(|e| ApiError::bad_parameter("TILEMATRIXSET", e))?;
        let z = parse_num("TILEMATRIX", &vals[2])?;
        let row = parse_num("TILEROW", &vals[3])?;
        let (col, _) = match vals[4].split_once('.') {
            Some((c, ext)) => (c.to_owned(), ext),
            None => (vals[4].clone(), ""),
        };
        Ok((tms, (z, parse_num("TILECOL", &col)?, row)))
    })();
    let (tms, zxy) = match parsed {
        Ok(v) => v,
        Err(e) => return wmts_exception(StatusCode::BAD_REQUEST, "InvalidParameterValue", "", &e.detail),
    };
    match raster_tile(state, caller, vals[0].clone(), Some(tms), zxy, when).await {
        Ok(r) => r,
        Err(e) => wmts_error(e),
    }
}

pub(super) async fn wmts_rest(
    State(state): State<AppState>,
    caller: Caller,
    Path((layer, _style, time, tms, z, row, col)): Path<(String, String, String, String, String, String, String)>,
) -> Response {
    let when = if time.eq_ignore_ascii_case("default") || time.eq_ignore_ascii_case("current") || time.is_empty() {
        RasterWhen::At(None)
    } else {
        RasterWhen::Named(time)
    };
    wmts_tile(state, caller, vec![layer, tms, z, row, col], when).await
}
