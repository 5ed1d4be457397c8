//! Reading a registered service's capabilities: which URL describes it (and doubles as its
//! health probe), fetching it bounded in size and time, and the layers it lists.
//!
//! WMS/WMTS/WFS: the `GetCapabilities` XML (roxmltree; elements matched by local name, so any
//! namespace prefix works), OGC API: `/collections?f=json`, ArcGIS REST: `?f=json` (`layers`),
//! XYZ: one tile (`0/0/0`) must answer. The parsers are pure; [`fetch`] does the I/O.

use shikong_protocol::api::services::{ServiceLayer, ServiceType};

use super::upstream::{Upstream, UpstreamError};

/// Largest capabilities document read, bytes.
pub const MAX_CAPABILITIES_BYTES: usize = 8 << 20;
/// Most layers kept from one document.
pub const MAX_LAYERS: usize = 10_000;

/// The URL that describes the service (and that health checks probe).
pub fn describe_url(up: &Upstream) -> String {
    let sep = |u: &str| if u.contains('?') { '&' } else { '?' };
    match up.kind {
        ServiceType::Wms | ServiceType::Wmts | ServiceType::Wfs => {
            if up.base.ends_with(".xml") {
                return up.base_with_query();
            }
            let base = up.base_with_query();
            let service = up.kind.as_str().to_ascii_uppercase();
            format!("{base}{}SERVICE={service}&REQUEST=GetCapabilities", sep(&base))
        }
        ServiceType::OgcApiFeatures | ServiceType::OgcApiTiles => {
            let base = format!("{}/collections", up.base.trim_end_matches('/'));
            match &up.query {
                Some(q) => format!("{base}?{q}&f=json"),
                None => format!("{base}?f=json"),
            }
        }
        ServiceType::ArcgisRest => {
            let base = up.base_with_query();
            format!("{base}{}f=json", sep(&base))
        }
        ServiceType::Xyz => up.tile_url(0, 0, 0),
    }
}

/// Fetches the description and reads its layers.
pub async fn fetch(
    client: &reqwest::Client,
    up: &Upstream,
    title: &str,
    timeout: std::time::Duration,
) -> Result<Vec<ServiceLayer>, UpstreamError> {
    let url = describe_url(up);
    let body = up.get_bounded(client, &url, MAX_CAPABILITIES_BYTES, timeout).await?;
    parse(up.kind, &body, title).map_err(UpstreamError::Document)
}

/// The layers of a capabilities document of `kind` (`title`: the one layer of an XYZ service).
pub fn parse(kind: ServiceType, body: &[u8], title: &str) -> Result<Vec<ServiceLayer>, String> {
    let mut layers = match kind {
        ServiceType::Wms | ServiceType::Wmts | ServiceType::Wfs => parse_xml(kind, body)?,
        ServiceType::OgcApiFeatures | ServiceType::OgcApiTiles => parse_ogcapi(body)?,
        ServiceType::ArcgisRest => parse_arcgis(body)?,
        ServiceType::Xyz => vec![ServiceLayer { name: "tiles".into(), title: Some(title.to_owned()), bbox: None }],
    };
    layers.truncate(MAX_LAYERS);
    Ok(layers)
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.is_element() && c.tag_name().name() == name)
}

fn text_of(n: roxmltree::Node<'_, '_>, name: &str) -> Option<String> {
    child(n, name).and_then(|c| c.text()).map(|t| t.trim().to_owned()).filter(|t| !t.is_empty())
}

fn corners(n: roxmltree::Node<'_, '_>) -> Option<[f64; 4]> {
    let pair = |name: &str| -> Option<(f64, f64)> {
        let t = text_of(n, name)?;
        let mut it = t.split_whitespace().map(|v| v.parse::<f64>().ok());
        Some((it.next()??, it.next()??))
    };
    let (x0, y0) = pair("LowerCorner")?;
    let (x1, y1) = pair("UpperCorner")?;
    Some([x0, y0, x1, y1])
}

fn xml_bbox(layer: roxmltree::Node<'_, '_>) -> Option<[f64; 4]> {
    if let Some(g) = child(layer, "EX_GeographicBoundingBox") {
        let v = |name| text_of(g, name).and_then(|t| t.parse::<f64>().ok());
        return Some([
            v("westBoundLongitude")?,
            v("southBoundLatitude")?,
            v("eastBoundLongitude")?,
            v("northBoundLatitude")?,
        ]);
    }
    if let Some(g) = child(layer, "LatLonBoundingBox").or_else(|| child(layer, "LatLongBoundingBox")) {
        let v = |name| g.attribute(name).and_then(|t| t.parse::<f64>().ok());
        return Some([v("minx")?, v("miny")?, v("maxx")?, v("maxy")?]);
    }
    child(layer, "WGS84BoundingBox").and_then(corners)
}

fn parse_xml(kind: ServiceType, body: &[u8]) -> Result<Vec<ServiceLayer>, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the capabilities are not UTF-8 text".to_owned())?;
    let opts = roxmltree::ParsingOptions { allow_dtd: false, nodes_limit: 2_000_000 };
    let doc = roxmltree::Document::parse_with_options(text, opts)
        .map_err(|e| format!("the capabilities are not well-formed XML: {e}"))?;
    let root = doc.root_element().tag_name().name();
    let (element, name_tag) = match kind {
        ServiceType::Wms => ("Layer", "Name"),
        ServiceType::Wmts => ("Layer", "Identifier"),
        _ => ("FeatureType", "Name"),
    };
    let expected: &[&str] = match kind {
        ServiceType::Wms => &["WMS_Capabilities", "WMT_MS_Capabilities"],
        ServiceType::Wmts => &["Capabilities"],
        _ => &["WFS_Capabilities"],
    };
    if !expected.contains(&root) {
        return Err(format!("expected a {} capabilities document, found <{root}>", kind.as_str()));
    }
    let layers = doc
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == element)
        // WMTS: the Contents' layers (a Layer's child Identifier); WMS: named layers only.
        .filter_map(|n| {
            Some(ServiceLayer { name: text_of(n, name_tag)?, title: text_of(n, "Title"), bbox: xml_bbox(n) })
        })
        .take(MAX_LAYERS)
        .collect();
    Ok(layers)
}

fn json_bbox(v: &serde_json::Value) -> Option<[f64; 4]> {
    let a = v.as_array()?;
    let n: Vec<f64> = a.iter().filter_map(serde_json::Value::as_f64).collect();
    match n.as_slice() {
        [a, b, c, d] => Some([*a, *b, *c, *d]),
        [a, b, _, d, e, _] => Some([*a, *b, *d, *e]),
        _ => None,
    }
}

fn parse_ogcapi(body: &[u8]) -> Result<Vec<ServiceLayer>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the collections document is not JSON: {e}"))?;
    let list = doc["collections"].as_array().ok_or("the collections document has no `collections` list")?;
    Ok(list
        .iter()
        .filter_map(|c| {
            Some(ServiceLayer {
                name: c["id"].as_str()?.to_owned(),
                title: c["title"].as_str().map(str::to_owned),
                bbox: json_bbox(&c["extent"]["spatial"]["bbox"][0]),
            })
        })
        .collect())
}

fn parse_arcgis(body: &[u8]) -> Result<Vec<ServiceLayer>, String> {
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("the service description is not JSON: {e}"))?;
    if let Some(err) = doc.get("error") {
        return Err(format!("the service answered an error: {}", err["message"].as_str().unwrap_or("(no message)")));
    }
    let geographic = matches!(doc["fullExtent"]["spatialReference"]["wkid"].as_i64(), Some(4326 | 4490));
    let extent = &doc["fullExtent"];
    let bbox = geographic
        .then(|| {
            Some([
                extent["xmin"].as_f64()?,
                extent["ymin"].as_f64()?,
                extent["xmax"].as_f64()?,
                extent["ymax"].as_f64()?,
            ])
        })
        .flatten();
    let list = doc["layers"].as_array().ok_or("the service description has no `layers` list")?;
    Ok(list
        .iter()
        .filter_map(|l| {
            Some(ServiceLayer {
                name: l["id"].as_i64()?.to_string(),
                title: l["name"].as_str().map(str::to_owned),
                bbox,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wms_wmts_wfs_layers() {
        let wms = r#"<WMS_Capabilities version="1.3.0" xmlns="http://www.opengis.net/wms"><Capability><Layer><Title>root</Title>
            <Layer><Name>roads</Name><Title>道路</Title><EX_GeographicBoundingBox><westBoundLongitude>114</westBoundLongitude>
            <eastBoundLongitude>115</eastBoundLongitude><southBoundLatitude>30</southBoundLatitude><northBoundLatitude>31</northBoundLatitude>
            </EX_GeographicBoundingBox></Layer></Layer></Capability></WMS_Capabilities>"#.as_bytes();
        let l = parse(ServiceType::Wms, wms, "").unwrap();
        assert_eq!(
            l,
            vec![ServiceLayer {
                name: "roads".into(),
                title: Some("道路".into()),
                bbox: Some([114.0, 30.0, 115.0, 31.0])
            }]
        );
        let wmts = r#"<Capabilities xmlns="http://www.opengis.net/wmts/1.0" xmlns:ows="http://www.opengis.net/ows/1.1"><Contents>
            <Layer><ows:Title>井盖</ows:Title><ows:WGS84BoundingBox><ows:LowerCorner>114 30</ows:LowerCorner><ows:UpperCorner>115 31</ows:UpperCorner></ows:WGS84BoundingBox>
            <ows:Identifier>manhole</ows:Identifier></Layer><TileMatrixSet><ows:Identifier>WebMercatorQuad</ows:Identifier></TileMatrixSet></Contents></Capabilities>"#.as_bytes();
        let l = parse(ServiceType::Wmts, wmts, "").unwrap();
        assert_eq!(l[0].name, "manhole");
        assert_eq!(l[0].bbox, Some([114.0, 30.0, 115.0, 31.0]));
        assert_eq!(l.len(), 1);
        assert!(parse(ServiceType::Wfs, wms, "").unwrap_err().contains("WMS_Capabilities"));
        assert!(parse(ServiceType::Wms, b"<a", "").is_err());
    }

    #[test]
    fn json_layers() {
        let c = br#"{"collections":[{"id":"a","title":"A","extent":{"spatial":{"bbox":[[1,2,3,4]]}}},{"id":"b"}]}"#;
        let l = parse(ServiceType::OgcApiFeatures, c, "").unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].bbox, Some([1.0, 2.0, 3.0, 4.0]));
        let a = br#"{"layers":[{"id":0,"name":"Parcels"}],"fullExtent":{"xmin":1,"ymin":2,"xmax":3,"ymax":4,"spatialReference":{"wkid":4490}}}"#;
        let l = parse(ServiceType::ArcgisRest, a, "").unwrap();
        assert_eq!(l[0].name, "0");
        assert_eq!(l[0].bbox, Some([1.0, 2.0, 3.0, 4.0]));
    }
}
